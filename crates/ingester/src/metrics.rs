//! The ingester's metrics. Each event that counts also logs, here, so the
//! two never disagree.

use distans_domain::enrich::Provenance;
use distans_domain::ReasonCode;
use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Records consumed, offsets not stored, consumer lag.
    pub consumer: ConsumerMetrics,
    pub valid: Counter,
    pub dead_lettered: Family<ReasonLabels, Counter>,
    pub line_warnings: Family<ReasonLabels, Counter>,
    pub produce_retries: Counter,
    pub in_flight: Gauge,
    /// Writer schemas fetched from the schema registry (one per id).
    pub schemas_fetched: Counter,
    /// Schema registry calls that failed and were retried (unreachable, 5xx).
    pub schema_registry_retries: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let r = registry.sub_registry_with_prefix("distans_ingester");
        let m = Metrics { consumer: ConsumerMetrics::register(r), ..Metrics::default() };
        r.register("lines_valid", "Valid lines produced to the valid topic", m.valid.clone());
        r.register(
            "records_dead_lettered",
            "Records sent to the dead-letter topic, by reason",
            m.dead_lettered.clone(),
        );
        r.register(
            "line_warnings",
            "Valid lines that failed a check configured to warn, by reason",
            m.line_warnings.clone(),
        );
        r.register("produce_retries", "Produce attempts that failed and were retried", m.produce_retries.clone());
        r.register("in_flight", "Produced records awaiting the broker's ack", m.in_flight.clone());
        r.register("schemas_fetched", "Writer schemas fetched from the schema registry", m.schemas_fetched.clone());
        r.register(
            "schema_registry_retries",
            "Schema registry calls that failed (unreachable, timeout, 5xx) and were retried",
            m.schema_registry_retries.clone(),
        );
        m
    }

    /// A valid line failed a check configured to warn (`[validation.checks]`).
    pub fn warned(&self, reason: ReasonCode, source: &Provenance) {
        self.line_warnings.get_or_create(&ReasonLabels { reason: reason.as_str().to_string() }).inc();
        tracing::info!(
            reason = reason.as_str(),
            topic = %source.topic,
            partition = source.partition,
            offset = source.offset,
            "line accepted with a warning"
        );
    }

    pub fn dead_lettered(&self, reason: ReasonCode, source: &Provenance, problems: usize) {
        self.dead_lettered.get_or_create(&ReasonLabels { reason: reason.as_str().to_string() }).inc();
        tracing::warn!(
            reason = reason.as_str(),
            problems,
            topic = %source.topic,
            partition = source.partition,
            offset = source.offset,
            "record dead-lettered"
        );
    }
}
