//! The `main` of every service binary: arguments, config, logging, a
//! runtime, and shutdown on SIGINT/SIGTERM.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::{shutdown, telemetry, Settings};

/// Runs `service` with the settings named on the command line
/// (`--config FILE`, or the `DISTANS_CONFIG` variable) until it returns or
/// a signal asks it to stop.
pub fn main<F, Fut, E>(name: &str, service: F) -> ExitCode
where
    F: FnOnce(Settings, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut args = std::env::args().skip(1);
    let mut config_path = std::env::var_os("DISTANS_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(path) => config_path = Some(PathBuf::from(path)),
                None => return usage(name, "--config needs a file"),
            },
            "--help" | "-h" => {
                println!("usage: {name} [--config FILE]\nSettings: built-in defaults, then FILE (or $DISTANS_CONFIG), then DISTANS__SECTION__KEY variables.");
                return ExitCode::SUCCESS;
            }
            other => return usage(name, &format!("unknown argument {other:?}")),
        }
    }
    let settings = match Settings::load(config_path.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let token = shutdown::on_signal();
        service(settings, token).await
    });
    match result {
        Ok(()) => {
            tracing::info!(service = name, "stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service = name, %error, "failed");
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(name: &str, problem: &str) -> ExitCode {
    eprintln!("{name}: {problem}\nusage: {name} [--config FILE]");
    ExitCode::from(2)
}
