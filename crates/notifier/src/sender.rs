//! POSTs messages to the webhook. Each failed call is classified once
//! ([`classify_status`]): a 4xx other than 408 and 429 is the webhook
//! refusing the message for good (counted, logged, not retried); 5xx, 408,
//! 429 and connection errors are transient, retried with backoff until the
//! webhook accepts, honouring `Retry-After` on 429 and 503.
//!
//! Every call, retries included, waits for its turn at the webhook's pace
//! ([`Sender::paced`], [`crate::pacer`]): Slack and Teams throttle a burst.
//!
//! The URL is a credential (Slack's and Teams' incoming webhooks carry their
//! secret in the path): it is kept as a [`Secret`] and no error that is
//! logged or returned carries it (`reqwest::Error::without_url`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use distans_runtime::kafka::Stopped;
use distans_runtime::retry::{retry_honouring, ErrorClass, RetryError, RetryPolicy};
use distans_runtime::{Health, Secret};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pacer::Pacer;

/// 200 ms doubling to 30 s (with jitter), until the webhook accepts or the
/// notifier stops; longer when the webhook asks for it (`Retry-After`, at
/// most `distans_runtime::retry::MAX_RETRY_AFTER`).
const RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(200), Duration::from_secs(30));

/// How much of a refusing webhook's answer is logged.
const BODY_EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: Secret,
    metrics: Metrics,
    health: Health,
    /// Spaces every call, retries included; `None`: unpaced.
    pacer: Option<Pacer>,
}

/// What became of a message.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The webhook accepted it (2xx).
    Accepted,
    /// The webhook refused it for good ([`classify_status`]): it was not
    /// delivered and is not retried. Counted in
    /// `distans_notifier_webhook_refused_total` and logged as an error with
    /// the status; the notifier writes it to `<alerts>.undelivered`, which
    /// the sink writes into ClickHouse's `undelivered_alerts`.
    Refused(Refusal),
}

/// A webhook's refusal: its status and the start of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// At most 200 characters.
    pub answer: String,
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
    /// Without its URL.
    #[error(transparent)]
    Transport(reqwest::Error),
}

impl CallFailed {
    fn transport(error: reqwest::Error) -> CallFailed {
        CallFailed::Transport(error.without_url())
    }
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
    /// A sender to `url` (the webhook's, secret). Errors: the HTTP client
    /// cannot be built (its error carries no URL).
    pub fn new(url: &str, metrics: Metrics, health: Health) -> Result<Sender, reqwest::Error> {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.without_url())?;
        Ok(Sender { client, url: Secret::new(url), metrics, health, pacer: None })
    }

    /// This sender with every webhook call (retries included) paced to at
    /// most `pacer`'s rate; its clones share the pace.
    pub fn paced(self, pacer: Pacer) -> Sender {
        Sender { pacer: Some(pacer), ..self }
    }

    /// Sends `body` until the webhook answers 2xx ([`Delivery::Accepted`])
    /// or refuses it for good ([`Delivery::Refused`]), or `stop` is
    /// cancelled. Transient failures are retried; while failing, and after
    /// a refusal until the next acceptance, the notifier is not ready.
    pub async fn send(&self, body: &serde_json::Value, stop: &CancellationToken) -> Result<Delivery, Stopped> {
        let call = || async {
            if let Some(pacer) = &self.pacer {
                // Stopping while waiting: the call is made at once and the
                // retry loop, which sees `stop`, ends.
                tokio::select! {
                    () = pacer.wait() => {}
                    () = stop.cancelled() => {}
                }
            }
            let response =
                self.client.post(self.url.expose()).json(body).send().await.map_err(CallFailed::transport)?;
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
            self.health.set_not_ready(format!("webhook calls fail ({problem}); retrying"));
            tracing::warn!(%problem, retry_in_ms = retry_in.as_millis() as u64, "webhook call failed; retrying, no offset moves");
        };
        match retry_honouring(&RETRY, stop, classify, asked, on_retry, call).await {
            Ok(()) => {
                self.health.set_ready();
                Ok(Delivery::Accepted)
            }
            Err(RetryError::Stopped) => Err(Stopped),
            Err(RetryError::Permanent(CallFailed::Status { status, body, .. })) => {
                self.metrics.webhook_refused.inc();
                self.health.set_not_ready(format!("the webhook refused a message for good (HTTP {status})"));
                tracing::error!(%status, answer = %body,
                    "webhook refused the message for good; not retried, counted in webhook_refused, kept in undelivered_alerts");
                Ok(Delivery::Refused(Refusal { status, answer: body }))
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
        let outcome = sender.send(&serde_json::json!({"text": "finding"}), &stop).await;
        assert!(!matches!(outcome, Ok(Delivery::Accepted)), "not delivered: {outcome:?}");
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(log.contains("webhook call failed") || log.contains("webhook refused"), "the failure is logged: {log}");
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
