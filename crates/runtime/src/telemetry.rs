//! Logging and the HTTP endpoints every service serves: `/healthz` and
//! Prometheus `/metrics`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global tracing subscriber. `RUST_LOG` wins over the config.
pub fn init_tracing(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if settings.format == "json" { builder.json().try_init() } else { builder.try_init() };
    if let Err(error) = result {
        eprintln!("tracing already initialised: {error}");
    }
}

/// Whether the service can do its work; `/healthz` answers 503 until it can.
#[derive(Debug, Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
struct Endpoints {
    registry: Arc<Registry>,
    health: Health,
}

async fn healthz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    if endpoints.health.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting or degraded\n")
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
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Endpoints { registry, health });
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = server.await {
            tracing::error!(%error, "http server failed");
        }
    });
    tracing::info!(address = %bound, "serving /healthz and /metrics");
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
    /// (see [`serve`]) until `shutdown` is cancelled.
    pub async fn start(
        listen: SocketAddr,
        registry: Registry,
        shutdown: &CancellationToken,
    ) -> std::io::Result<Server> {
        let health = Health::default();
        let (_, task) = serve(listen, Arc::new(registry), health.clone(), shutdown.clone()).await?;
        Ok(Server { health, shutdown: shutdown.clone(), task })
    }

    /// Stopping: reports not ready, cancels the shutdown token (which stops
    /// the server and whatever else waits on it) and waits for the server.
    pub async fn stop(self) {
        self.health.set_ready(false);
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

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 503"));
        health.set_ready(true);
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("lines_consumed_total 3"), "{metrics}");

        shutdown.cancel();
        task.await.expect("server stops");
    }
}
