//! POSTs messages to the webhook, retrying until it accepts them.

use std::time::Duration;

use distans_runtime::kafka::Stopped;
use distans_runtime::Health;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: String,
    metrics: Metrics,
    health: Health,
}

impl Sender {
    pub fn new(url: &str, metrics: Metrics, health: Health) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Sender { client, url: url.to_string(), metrics, health })
    }

    /// Sends `body` until the webhook answers 2xx, or `stop` is cancelled.
    pub async fn send(&self, body: &serde_json::Value, stop: &CancellationToken) -> Result<(), Stopped> {
        let mut backoff = RETRY_INITIAL;
        loop {
            let attempt = self.client.post(&self.url).json(body).send();
            let outcome = tokio::select! {
                outcome = attempt => outcome,
                _ = stop.cancelled() => return Err(Stopped),
            };
            let problem = match outcome {
                Ok(response) if response.status().is_success() => {
                    self.health.set_ready(true);
                    return Ok(());
                }
                Ok(response) => format!("webhook answered {}", response.status()),
                Err(error) => error.to_string(),
            };
            self.metrics.webhook_failures.inc();
            self.health.set_ready(false);
            tracing::warn!(%problem, retry_in_ms = backoff.as_millis() as u64, "webhook call failed; retrying, no offset moves");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return Err(Stopped),
            }
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}
