//! Logging and the HTTP endpoints every service serves: `/livez` (the
//! process answers), `/readyz` (it can do its work; `/healthz` is the same)
//! and Prometheus `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;
use crate::kafka::ConsumerWatch;

/// Installs the global tracing subscriber. `RUST_LOG` wins over the config.
pub fn init_tracing(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    // Colour only for a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = if settings.format == "json" { builder.json().try_init() } else { builder.try_init() };
    if let Err(error) = result {
        eprintln!("tracing already initialised: {error}");
    }
}

/// Whether the service can do its work: `/readyz` (and `/healthz`) answer
/// 503, with every reason, until the service says it is ready
/// ([`Health::set_ready`]: started, its state rebuilt, its downstream
/// reachable), while it says why it is not ([`Health::set_not_ready`]),
/// while a part of it that needs a downstream reports it failing
/// ([`Health::part`]: the sink's aggregate refresh, the detector's review)
/// and while any of its consumers ([`Health::watch`]) has no partition
/// assigned or stalls.
#[derive(Debug, Clone)]
pub struct Health {
    /// Why the service or a part of it is not ready, by part (the service
    /// itself is "service"); none: ready.
    not_ready: Arc<Mutex<BTreeMap<&'static str, String>>>,
    consumers: Arc<Mutex<Vec<ConsumerWatch>>>,
}

/// The part of [`Health`] that [`Health::set_ready`] and
/// [`Health::set_not_ready`] speak for.
const SERVICE: &str = "service";

impl Default for Health {
    /// Not ready: starting.
    fn default() -> Health {
        let health = Health { not_ready: Arc::default(), consumers: Arc::default() };
        health.set_not_ready("starting");
        health
    }
}

impl Health {
    pub fn set_ready(&self) {
        self.part(SERVICE, None);
    }

    /// Not ready, because of `reason` (what `/readyz` says): "clickhouse
    /// inserts fail (…); retrying".
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.part(SERVICE, Some(reason.into()));
    }

    /// Whether the part `name` works (`None`) or fails, with the reason
    /// `/readyz` gives, e.g. `Some("the aggregate refresh gets no answer from
    /// clickhouse (…)")`. The service is ready only when every part is.
    pub fn part(&self, name: &'static str, problem: Option<String>) {
        let mut not_ready = self.not_ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match problem {
            Some(problem) => not_ready.insert(name, problem),
            None => not_ready.remove(name),
        };
    }

    /// Readiness also needs `consumer` to have partitions and progress.
    pub fn watch(&self, consumer: ConsumerWatch) {
        self.consumers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(consumer);
    }

    /// Ready, or every reason it is not.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        reasons.extend(self.not_ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned());
        for consumer in self.consumers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            if let Err(problem) = consumer.readiness() {
                reasons.push(format!("consumer {}: {problem}", consumer.group_id()));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }
}

#[derive(Debug, Clone)]
struct Endpoints {
    registry: Arc<Registry>,
    health: Health,
}

/// The process and its async runtime answer: a restart would not help
/// anything that `/readyz` reports.
async fn livez() -> impl IntoResponse {
    (StatusCode::OK, "alive\n")
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    match endpoints.health.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reasons) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", reasons.join("; "))),
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &endpoints.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        ),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], error.to_string()),
    }
}

/// Binds `listen` and serves the endpoints until `shutdown`. Returns the
/// bound address (useful with port 0) and the server task.
pub async fn serve(
    listen: SocketAddr,
    registry: Arc<Registry>,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoints { registry, health });
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = server.await {
            tracing::error!(%error, "http server failed");
        }
    });
    tracing::info!(address = %bound, "serving /livez, /readyz (and /healthz) and /metrics");
    Ok((bound, task))
}

/// A running service's `/healthz` and `/metrics` server, with the health it
/// reports and the shutdown token that stops it.
#[derive(Debug)]
pub struct Server {
    /// Not ready until the service says so.
    pub health: Health,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `registry` and a health that is not ready yet on `listen`
    /// (see [`serve`]) until `shutdown` is cancelled. Errors: the address
    /// cannot be bound (taken, not this host's), the message naming it and
    /// `setting`, the setting it comes from (`ingester.http_listen`).
    pub async fn start(
        listen: SocketAddr,
        setting: &str,
        registry: Registry,
        shutdown: &CancellationToken,
    ) -> std::io::Result<Server> {
        let health = Health::default();
        let (_, task) = serve(listen, Arc::new(registry), health.clone(), shutdown.clone()).await.map_err(|error| {
            let taken =
                if error.kind() == std::io::ErrorKind::AddrInUse { "; another process listens there" } else { "" };
            std::io::Error::new(error.kind(), format!("{listen} ({setting}): {error}{taken}"))
        })?;
        Ok(Server { health, shutdown: shutdown.clone(), task })
    }

    /// Stopping: reports not ready, cancels the shutdown token (which stops
    /// the server and whatever else waits on it) and waits for the server.
    pub async fn stop(self) {
        self.health.set_not_ready("stopping");
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn a_taken_address_is_named_with_its_setting() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = taken.local_addr().expect("addr");
        let error = Server::start(addr, "sink.http_listen", Registry::default(), &CancellationToken::new())
            .await
            .expect_err("the address is taken");
        let message = error.to_string();
        assert!(message.starts_with(&format!("{addr} (sink.http_listen): ")), "{message}");
        assert!(message.ends_with("; another process listens there"), "{message}");
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn healthz_and_metrics_on_a_real_listener() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register("lines_consumed", "Lines consumed", counter.clone());
        counter.inc_by(3);
        let health = Health::default();
        let shutdown = CancellationToken::new();
        let (addr, task) =
            serve("127.0.0.1:0".parse().expect("addr"), Arc::new(registry), health.clone(), shutdown.clone())
                .await
                .expect("binds");

        assert!(get(addr, "/livez").await.starts_with("HTTP/1.1 200"));
        let starting = get(addr, "/readyz").await;
        assert!(starting.starts_with("HTTP/1.1 503") && starting.contains("starting"), "{starting}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 503"));
        health.set_not_ready("clickhouse at http://ch:8123 does not answer: connection refused");
        let down = get(addr, "/readyz").await;
        assert!(
            down.starts_with("HTTP/1.1 503") && down.contains("clickhouse at http://ch:8123 does not answer"),
            "{down}"
        );
        health.set_ready();
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        health.part("review", Some("the review gets no answer from clickhouse".into()));
        let part = get(addr, "/readyz").await;
        assert!(part.starts_with("HTTP/1.1 503") && part.contains("the review gets no answer"), "{part}");
        health.part("review", None);
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("lines_consumed_total 3"), "{metrics}");

        shutdown.cancel();
        task.await.expect("server stops");
    }
}
