fn main() -> std::process::ExitCode {
    distans_runtime::service::main("distans-notifier", distans_notifier::run)
}
