fn main() -> std::process::ExitCode {
    distans_runtime::service::main("distans-sink", distans_sink::run)
}
