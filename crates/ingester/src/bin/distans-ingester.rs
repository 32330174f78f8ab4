fn main() -> std::process::ExitCode {
    distans_runtime::service::main("distans-ingester", distans_ingester::run)
}
