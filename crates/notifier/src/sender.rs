//! POSTs messages to the webhook, retrying until it accepts them.
//!
//! The URL is a credential (Slack's and Teams' incoming webhooks carry their
//! secret in the path): it is kept as a [`Secret`] and no error that is
//! logged or returned carries it (`reqwest::Error::without_url`).

use std::time::Duration;

use distans_runtime::kafka::Stopped;
use distans_runtime::retry::{always_transient, retry, RetryError, RetryPolicy};
use distans_runtime::{Health, Secret};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// 200 ms doubling to 30 s (with jitter), until the webhook accepts or the
/// notifier stops.
const RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(200), Duration::from_secs(30));

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: Secret,
    metrics: Metrics,
    health: Health,
}

/// Why one webhook call did not deliver the message.
#[derive(Debug, thiserror::Error)]
enum CallFailed {
    #[error("webhook answered {0}")]
    Status(reqwest::StatusCode),
    /// Without its URL.
    #[error(transparent)]
    Transport(reqwest::Error),
}

impl CallFailed {
    fn transport(error: reqwest::Error) -> CallFailed {
        CallFailed::Transport(error.without_url())
    }
}

impl Sender {
    /// A sender to `url` (the webhook's, secret). Errors: the HTTP client
    /// cannot be built (its error carries no URL).
    pub fn new(url: &str, metrics: Metrics, health: Health) -> Result<Sender, reqwest::Error> {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.without_url())?;
        Ok(Sender { client, url: Secret::new(url), metrics, health })
    }

    /// Sends `body` until the webhook answers 2xx, or `stop` is cancelled.
    /// Every failure is retried; while failing, the notifier is not ready.
    pub async fn send(&self, body: &serde_json::Value, stop: &CancellationToken) -> Result<(), Stopped> {
        let call = || async {
            let response =
                self.client.post(self.url.expose()).json(body).send().await.map_err(CallFailed::transport)?;
            match response.status() {
                status if status.is_success() => Ok(()),
                status => Err(CallFailed::Status(status)),
            }
        };
        let on_retry = |problem: &CallFailed, retry_in: Duration| {
            self.metrics.webhook_failures.inc();
            self.health.set_ready(false);
            tracing::warn!(%problem, retry_in_ms = retry_in.as_millis() as u64, "webhook call failed; retrying, no offset moves");
        };
        match retry(&RETRY, stop, always_transient, on_retry, call).await {
            Ok(()) => {
                self.health.set_ready(true);
                Ok(())
            }
            Err(RetryError::Stopped) => Err(Stopped),
            // Not reached while every failure is transient and there is no
            // ceiling; should that change, the message is not delivered and
            // no offset moves, as when stopped.
            Err(RetryError::Permanent(problem) | RetryError::GaveUp { error: problem, .. }) => {
                tracing::error!(%problem, "webhook call abandoned; no offset moves");
                Err(Stopped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the sender logs, captured.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Sends to `url` for `for_ms`, then stops; returns the log.
    async fn log_of_sending_to(url: &str, for_ms: u64) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let sender = Sender::new(url, Metrics::default(), Health::default()).expect("client");
        assert!(!format!("{sender:?}").contains("SECRETPATH"));
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(for_ms)).await;
            stopping.cancel();
        });
        assert!(sender.send(&serde_json::json!({"text": "finding"}), &stop).await.is_err(), "not delivered");
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(log.contains("webhook call failed"), "the failure is logged: {log}");
        log
    }

    /// Slack's webhook URLs are `https://hooks.slack.com/services/T…/B…/<secret>`.
    #[tokio::test]
    async fn a_failing_webhook_call_never_logs_the_url() {
        // Nobody listens: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let log = log_of_sending_to(&format!("http://127.0.0.1:{port}/services/T0/B0/SECRETPATH"), 700).await;
        assert!(!log.contains("SECRETPATH") && !log.contains("/services/"), "{log}");

        // A host that does not resolve (a DNS error names the URL too).
        let log = log_of_sending_to("http://distans-no-such-host.invalid/services/T0/B0/SECRETPATH", 700).await;
        assert!(!log.contains("SECRETPATH") && !log.contains("no-such-host"), "{log}");

        // A webhook that refuses (403).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ =
                    socket.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            }
        });
        let log = log_of_sending_to(&format!("http://127.0.0.1:{port}/services/T0/B0/SECRETPATH"), 700).await;
        assert!(log.contains("403"), "{log}");
        assert!(!log.contains("SECRETPATH"), "{log}");
    }
}
