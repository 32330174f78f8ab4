//! POSTs messages to the webhook. Each failed call is classified once
//! ([`classify_status`]): a 4xx other than 408 and 429 is the webhook
//! refusing the message for good (counted, logged, not retried); 5xx, 408,
//! 429 and connection errors are transient, retried with backoff until the
//! webhook accepts, honouring `Retry-After` on 429 and 503.

use std::time::Duration;

use chrono::{DateTime, Utc};
use distans_runtime::kafka::Stopped;
use distans_runtime::retry::{retry_honouring, ErrorClass, RetryError, RetryPolicy};
use distans_runtime::Health;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// 200 ms doubling to 30 s (with jitter), until the webhook accepts or the
/// notifier stops; longer when the webhook asks for it (`Retry-After`, at
/// most `distans_runtime::retry::MAX_RETRY_AFTER`).
const RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(200), Duration::from_secs(30));

/// How much of a refusing webhook's answer is logged.
const BODY_EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: String,
    metrics: Metrics,
    health: Health,
}

/// What became of a message.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The webhook accepted it (2xx).
    Accepted,
    /// The webhook refused it for good ([`classify_status`]): it was not
    /// delivered and is not retried. Counted in
    /// `distans_notifier_webhook_refused_total` and logged as an error with
    /// the status; the finding itself stays in the alerts topic and in
    /// ClickHouse's `anomalies`, where the reports show it.
    Refused(StatusCode),
}

/// Why one webhook call did not deliver the message.
#[derive(Debug, thiserror::Error)]
enum CallFailed {
    #[error("webhook answered {status}")]
    Status {
        status: StatusCode,
        /// The answer's `Retry-After`, on a 429 or 503.
        retry_after: Option<Duration>,
        /// The start of the answer's body, for the log of a refusal.
        body: String,
    },
    #[error(transparent)]
    Transport(reqwest::Error),
}

/// The webhook's answer as a retry class: a client error (4xx) other than
/// 408 Request Timeout and 429 Too Many Requests will be the same answer
/// for the same message (RFC 9110 15.5: "the client seems to have erred"),
/// so it is permanent; 408, 429, every 5xx and anything else are transient.
pub fn classify_status(status: StatusCode) -> ErrorClass {
    let retryable = [StatusCode::REQUEST_TIMEOUT, StatusCode::TOO_MANY_REQUESTS];
    if status.is_client_error() && !retryable.contains(&status) {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    }
}

fn classify(problem: &CallFailed) -> ErrorClass {
    match problem {
        CallFailed::Status { status, .. } => classify_status(*status),
        // Connection refused or reset, DNS, timeouts: the webhook is down.
        CallFailed::Transport(_) => ErrorClass::Transient,
    }
}

/// The wait a `Retry-After` value asks for (RFC 9110 10.2.3): a number of
/// seconds, or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`) from `now`
/// (a date in the past is no wait). `None` when it is neither.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

impl Sender {
    pub fn new(url: &str, metrics: Metrics, health: Health) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Sender { client, url: url.to_string(), metrics, health })
    }

    /// Sends `body` until the webhook answers 2xx ([`Delivery::Accepted`])
    /// or refuses it for good ([`Delivery::Refused`]), or `stop` is
    /// cancelled. Transient failures are retried; while failing, and after
    /// a refusal until the next acceptance, the notifier is not ready.
    pub async fn send(&self, body: &serde_json::Value, stop: &CancellationToken) -> Result<Delivery, Stopped> {
        let call = || async {
            let response = self.client.post(&self.url).json(body).send().await.map_err(CallFailed::Transport)?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let retry_after = [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]
                .contains(&status)
                .then(|| response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok().map(str::to_string))
                .flatten()
                .and_then(|value| retry_after(&value, Utc::now()));
            let body = response.text().await.unwrap_or_default().chars().take(BODY_EXCERPT_CHARS).collect();
            Err(CallFailed::Status { status, retry_after, body })
        };
        let asked = |problem: &CallFailed| match problem {
            CallFailed::Status { retry_after, .. } => *retry_after,
            CallFailed::Transport(_) => None,
        };
        let on_retry = |problem: &CallFailed, retry_in: Duration| {
            self.metrics.webhook_failures.inc();
            self.health.set_ready(false);
            tracing::warn!(%problem, retry_in_ms = retry_in.as_millis() as u64, "webhook call failed; retrying, no offset moves");
        };
        match retry_honouring(&RETRY, stop, classify, asked, on_retry, call).await {
            Ok(()) => {
                self.health.set_ready(true);
                Ok(Delivery::Accepted)
            }
            Err(RetryError::Stopped) => Err(Stopped),
            Err(RetryError::Permanent(CallFailed::Status { status, body, .. })) => {
                self.metrics.webhook_refused.inc();
                self.health.set_ready(false);
                tracing::error!(%status, answer = %body,
                    "webhook refused the message for good; not retried, counted in webhook_refused (the finding stays in clickhouse)");
                Ok(Delivery::Refused(status))
            }
            // Not reached: a transport error is transient and there is no
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
    use super::*;

    #[test]
    fn client_errors_but_408_and_429_are_permanent() {
        let cases = [
            (400, ErrorClass::Permanent),
            (401, ErrorClass::Permanent),
            (403, ErrorClass::Permanent),
            (404, ErrorClass::Permanent),
            (410, ErrorClass::Permanent),
            (413, ErrorClass::Permanent),
            (422, ErrorClass::Permanent),
            (408, ErrorClass::Transient),
            (429, ErrorClass::Transient),
            (500, ErrorClass::Transient),
            (502, ErrorClass::Transient),
            (503, ErrorClass::Transient),
            (504, ErrorClass::Transient),
            (302, ErrorClass::Transient),
        ];
        for (code, class) in cases {
            let status = StatusCode::from_u16(code).expect("a status");
            assert_eq!(classify_status(status), class, "{code}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T16:00:00Z").expect("date").with_timezone(&Utc);
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            ("Sun, 29 Nov 2026 16:00:30 GMT", Some(Duration::from_secs(30))),
            ("Sun, 29 Nov 2026 15:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(retry_after(value, now), expected, "{value:?}");
        }
    }
}
