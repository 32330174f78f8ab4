fn main() -> std::process::ExitCode {
    distans_runtime::service::main("distans-detector", distans_detector::run)
}
