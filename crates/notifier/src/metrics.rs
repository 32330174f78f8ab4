//! The notifier's metrics.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Records consumed, offsets not stored, consumer lag.
    pub consumer: ConsumerMetrics,
    pub findings: Counter,
    pub immediate: Counter,
    pub digests: Counter,
    pub webhook_failures: Counter,
    /// Messages the webhook refused for good (a 4xx other than 408 and 429).
    pub webhook_refused: Counter,
    /// Refused messages written to `<alerts>.undelivered` (acked).
    pub undelivered: Counter,
    pub undecodable: Counter,
    pub withdrawals: Counter,
    /// Findings written into a persisted digest.
    pub persisted: Counter,
    /// Digests pending (persisted, not sent yet).
    pub pending_digests: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let r = registry.sub_registry_with_prefix("distans_notifier");
        let m = Metrics { consumer: ConsumerMetrics::register(r), ..Metrics::default() };
        r.register("findings", "Findings read from the alerts topic", m.findings.clone());
        r.register("immediate_messages", "Findings sent at once, one message each", m.immediate.clone());
        r.register("digests", "Digest messages sent (one per rule, provider and day)", m.digests.clone());
        r.register("webhook_failures", "Webhook calls that failed and were retried", m.webhook_failures.clone());
        r.register(
            "webhook_refused",
            "Messages the webhook refused for good (a 4xx other than 408 and 429): not retried, not delivered",
            m.webhook_refused.clone(),
        );
        r.register(
            "undelivered_written",
            "Refused messages written to <alerts>.undelivered for ClickHouse's undelivered_alerts",
            m.undelivered.clone(),
        );
        r.register("withdrawals", "Withdrawals sent for findings sent at once", m.withdrawals.clone());
        r.register("undecodable", "Records on the alerts topic that are not findings", m.undecodable.clone());
        r.register(
            "digest_findings_persisted",
            "Findings written into a persisted pending digest",
            m.persisted.clone(),
        );
        r.register("pending_digests", "Digests persisted and not sent yet", m.pending_digests.clone());
        m
    }
}
