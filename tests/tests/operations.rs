//! Operations: every binary answers `--version` and `--help`; librdkafka's
//! own logs reach the service's log; a service stops soon after SIGINT even
//! when the broker cannot be reached, at start or after it went away.

use std::process::Command;
use std::time::Duration;

use distans_e2e::{bin_dir, free_port, poll_until_blocking, Env, Process};

/// The requirement is a shutdown under 10 s; the bound leaves room for a
/// loaded test machine. Measured figures are printed, not asserted.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(15);

const SERVICES: [&str; 4] = ["ingester", "sink", "detector", "notifier"];

#[test]
fn every_binary_answers_version_and_help() -> anyhow::Result<()> {
    let binaries = SERVICES.iter().map(|s| format!("distans-{s}")).chain(["distans".to_string()]);
    for binary in binaries {
        let path = bin_dir().join(&binary);
        let version = Command::new(&path).arg("--version").output()?;
        assert!(version.status.success(), "{binary} --version: {version:?}");
        let text = String::from_utf8(version.stdout)?;
        assert_eq!(text.trim(), format!("{binary} {}", env!("CARGO_PKG_VERSION")), "{binary} --version");

        let help = Command::new(&path).arg("--help").output()?;
        assert!(help.status.success(), "{binary} --help: {help:?}");
        assert!(String::from_utf8(help.stdout)?.contains("Usage:"), "{binary} --help");

        let wrong = Command::new(&path).arg("--no-such-flag").output()?;
        assert_eq!(wrong.status.code(), Some(2), "{binary} refuses an unknown argument");
    }
    Ok(())
}

/// `distans-<service>` pointed at a port where nothing listens.
fn against_a_closed_port(service: &str, dir: &std::path::Path) -> anyhow::Result<Process> {
    let mut command = Command::new(bin_dir().join(format!("distans-{service}")));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("DISTANS__KAFKA__BROKERS", format!("127.0.0.1:{}", free_port()))
        .env("DISTANS__PSEUDONYM__KEY", distans_e2e::TEST_KEY)
        .env("DISTANS__CLICKHOUSE__URL", format!("http://127.0.0.1:{}", free_port()))
        .env("DISTANS__NOTIFIER__WEBHOOK_URL", format!("http://127.0.0.1:{}/hook", free_port()))
        .env(format!("DISTANS__{}__HTTP_LISTEN", service.to_uppercase()), format!("127.0.0.1:{}", free_port()));
    Process::spawn(service, command, dir.join(format!("{service}.log")))
}

#[test]
fn a_service_logs_librdkafka_and_stops_soon_with_the_broker_unreachable() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("distans-e2e-ops-").tempdir()?;
    for service in SERVICES {
        let mut process = against_a_closed_port(service, dir.path())?;
        // librdkafka's own line, through tracing (none reached the log before).
        poll_until_blocking(
            &format!("{service} to log librdkafka's connection failure"),
            Duration::from_secs(30),
            || {
                let log = process.log();
                anyhow::ensure!(
                    log.contains("librdkafka") && log.contains("Connection refused"),
                    "{}",
                    process.log_tail(5)
                );
                Ok(())
            },
        )?;
        let (status, took) = process.stop_with("INT", SHUTDOWN_BOUND)?;
        println!("distans-{service}: stopped {took:?} after SIGINT, broker unreachable since start");
        assert_eq!(status, Some(0), "{}", process.log_tail(20));
    }
    Ok(())
}

#[test]
fn a_running_service_stops_soon_after_the_broker_went_away() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    let mut running: Vec<(&str, Process)> = Vec::new();
    for service in ["ingester", "sink", "detector"] {
        running.push((service, env.spawn(service)?));
    }
    env.broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    for (service, process) in &mut running {
        let (status, took) = process.stop_with("INT", SHUTDOWN_BOUND)?;
        println!("distans-{service}: stopped {took:?} after SIGINT, broker gone while running");
        assert_eq!(status, Some(0), "{}", process.log_tail(20));
    }
    Ok(())
}
