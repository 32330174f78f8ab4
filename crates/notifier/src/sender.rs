//! POSTs messages to the webhook, retrying until it accepts them.

use std::time::Duration;

use distans_runtime::kafka::Stopped;
use distans_runtime::retry::{always_transient, retry, RetryError, RetryPolicy};
use distans_runtime::Health;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// 200 ms doubling to 30 s (with jitter), until the webhook accepts or the
/// notifier stops.
const RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(200), Duration::from_secs(30));

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: String,
    metrics: Metrics,
    health: Health,
}

/// Why one webhook call did not deliver the message.
#[derive(Debug, thiserror::Error)]
enum CallFailed {
    #[error("webhook answered {0}")]
    Status(reqwest::StatusCode),
    #[error(transparent)]
    Transport(reqwest::Error),
}

impl Sender {
    pub fn new(url: &str, metrics: Metrics, health: Health) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Sender { client, url: url.to_string(), metrics, health })
    }

    /// Sends `body` until the webhook answers 2xx, or `stop` is cancelled.
    /// Every failure is retried; while failing, the notifier is not ready.
    pub async fn send(&self, body: &serde_json::Value, stop: &CancellationToken) -> Result<(), Stopped> {
        let call = || async {
            let response = self.client.post(&self.url).json(body).send().await.map_err(CallFailed::Transport)?;
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
