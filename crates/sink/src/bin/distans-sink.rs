#[global_allocator]
static ALLOCATOR: distans_runtime::Allocator = distans_runtime::Allocator;

fn main() -> std::process::ExitCode {
    distans_runtime::service::main("distans-sink", distans_sink::run)
}
