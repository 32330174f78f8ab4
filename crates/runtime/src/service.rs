//! The `main` of every service binary: arguments, config, logging, a
//! runtime, and shutdown on SIGINT/SIGTERM; the errors every service shares
//! ([`ServiceError`]) and its start-then-run step ([`start_then_run`]).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::kafka::ConnectError;
use crate::{shutdown, telemetry, Settings};

/// How long a stopping service gives what it has in flight (the broker's
/// acks of records produced, the sink's last batch) before it stops
/// anyway; what did not finish is read again at the next start.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What any service can fail with: the broker, the start-up check of its
/// connection, its /healthz and /metrics server, and a record it cannot
/// encode. A service with no failures of its own returns it as it is. Each service's error
/// holds it as `Service(ServiceError)`, with `From` for its sources by
/// [`service_error!`](crate::service_error).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The start-up check of the broker connection failed (a TLS or SASL
    /// setting, named) or was stopped.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The broker's metadata lists no partition of a topic the service
    /// reads ([`crate::kafka::Input::partitions`], `PartitionsError::None`).
    #[error("topic {0} has no partitions")]
    NoPartitions(String),
    #[error("cannot serve http: {0}")]
    Http(#[from] std::io::Error),
    /// A record the service made that distans' own schema refuses: a bug.
    #[error("cannot encode a record (a bug): {0}")]
    Encode(#[from] distans_wire::EncodeError),
}

impl From<crate::kafka::PartitionsError> for ServiceError {
    fn from(error: crate::kafka::PartitionsError) -> ServiceError {
        match error {
            crate::kafka::PartitionsError::Kafka(error) => ServiceError::Kafka(error),
            crate::kafka::PartitionsError::None(topic) => ServiceError::NoPartitions(topic),
        }
    }
}

impl ServiceError {
    /// The service was stopped (SIGINT/SIGTERM) before the broker answered
    /// its start-up check: a clean stop, not a failure.
    pub fn is_stop(&self) -> bool {
        matches!(self, ServiceError::Connect(ConnectError::Stopped))
    }
}

/// Implements, for a service's error type `$error` with a variant
/// `Service(ServiceError)`: `From` each source of [`ServiceError`]
/// (rdkafka's `KafkaError`, [`ConnectError`], `std::io::Error`,
/// `distans_wire::EncodeError`), so that `?`
/// works on them, and [`StopWhileStarting`]: a [`ServiceError::is_stop`],
/// or any variant matching the pattern after `stopped:`.
#[macro_export]
macro_rules! service_error {
    ($error:ident $(, stopped: $stopped:pat)?) => {
        $crate::service_error!(@from $error:
            $crate::service::KafkaError, $crate::kafka::ConnectError, ::std::io::Error,
            $crate::service::EncodeError);
        impl $crate::service::StopWhileStarting for $error {
            fn is_stop(&self) -> bool {
                #[allow(unreachable_patterns)]
                match self {
                    $error::Service(error) => error.is_stop(),
                    $($stopped => true,)?
                    _ => false,
                }
            }
        }
    };
    (@from $error:ident: $($source:ty),+) => {
        $(impl From<$source> for $error {
            fn from(source: $source) -> Self {
                Self::Service($crate::service::ServiceError::from(source))
            }
        })+
    };
}

#[doc(hidden)]
pub use distans_wire::EncodeError;
#[doc(hidden)]
pub use rdkafka::error::KafkaError;

/// A service's error that may be a clean stop while it started.
pub trait StopWhileStarting {
    /// Stopped (SIGINT/SIGTERM) while starting: nothing failed.
    fn is_stop(&self) -> bool;
}

impl StopWhileStarting for ServiceError {
    fn is_stop(&self) -> bool {
        ServiceError::is_stop(self)
    }
}

/// Starts a service (`start`) and, once started, runs it (`run`) until it
/// stops; a stop asked for while it started ([`StopWhileStarting`]) is
/// `Ok`, any other error of either step is returned.
pub async fn start_then_run<S, E, R>(
    start: impl Future<Output = Result<S, E>>,
    run: impl FnOnce(S) -> R,
) -> Result<(), E>
where
    R: Future<Output = Result<(), E>>,
    E: StopWhileStarting,
{
    match start.await {
        Ok(service) => run(service).await,
        Err(error) if error.is_stop() => Ok(()),
        Err(error) => Err(error),
    }
}

/// Runs `service` with the settings named on the command line
/// (`--config FILE`, or the `DISTANS_CONFIG` variable) until it returns or
/// a signal asks it to stop.
pub fn main<F, Fut, E>(name: &'static str, service: F) -> ExitCode
where
    F: FnOnce(Settings, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let config_path = match arguments(name).try_get_matches() {
        Ok(matches) => matches.get_one::<PathBuf>("config").cloned(),
        // --help and --version print and succeed; a bad argument fails (status 2).
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
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

/// The command line of every service: `--config FILE` (or `DISTANS_CONFIG`),
/// `--help`, `--version` (the workspace's version, which every binary shares).
fn arguments(name: &'static str) -> clap::Command {
    clap::Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(format!("{name}: a distans service; stops cleanly on SIGINT or SIGTERM"))
        .after_help(
            "Settings: built-in defaults, then FILE (or $DISTANS_CONFIG), then DISTANS__SECTION__KEY \
             environment variables (e.g. DISTANS__KAFKA__BROKERS). Logs: RUST_LOG or log.filter \
             (librdkafka's own lines under the target `librdkafka`).",
        )
        .arg(
            clap::Arg::new("config")
                .long("config")
                .value_name("FILE")
                .env("DISTANS_CONFIG")
                .value_parser(clap::value_parser!(PathBuf))
                .help("A TOML file of settings over the built-in defaults"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_takes_config_help_and_version() {
        arguments("distans-test").debug_assert();
        let matches = arguments("distans-test").try_get_matches_from(["distans-test", "--config", "a.toml"]);
        let config = matches.expect("valid").get_one::<PathBuf>("config").cloned();
        assert_eq!(config, Some(PathBuf::from("a.toml")));
        for (flag, kind) in
            [("--version", clap::error::ErrorKind::DisplayVersion), ("--help", clap::error::ErrorKind::DisplayHelp)]
        {
            let error = arguments("distans-test").try_get_matches_from(["distans-test", flag]).expect_err(flag);
            assert_eq!(error.kind(), kind, "{flag}");
            assert!(!error.use_stderr(), "{flag} prints to stdout and succeeds");
        }
        let error = arguments("distans-test").try_get_matches_from(["distans-test", "--bogus"]).expect_err("bogus");
        assert!(error.use_stderr(), "an unknown argument is an error");
    }
}
