//! The ingester's metrics. Each event that counts also logs, here, so the
//! two never disagree.

use distans_domain::enrich::Provenance;
use distans_domain::ReasonCode;
use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

distans_runtime::metrics! {
    #[derive(Debug, Clone, Default)]
    pub struct Metrics in "distans_ingester" {
        /// Records consumed, offsets not stored, consumer lag.
        #[metric(group)]
        pub consumer: ConsumerMetrics,
        /// Valid lines produced to the valid topic
        #[metric(name = "lines_valid")]
        pub valid: Counter,
        /// Records sent to the dead-letter topic, by reason
        #[metric(name = "records_dead_lettered")]
        pub dead_lettered: Family<ReasonLabels, Counter>,
        /// Valid lines that failed a check configured to warn, by reason
        pub line_warnings: Family<ReasonLabels, Counter>,
        /// Produce attempts that failed and were retried
        pub produce_retries: Counter,
        /// Produced records awaiting the broker's ack
        pub in_flight: Gauge,
        /// Writer schemas fetched from the schema registry
        ///
        /// One per schema id.
        pub schemas_fetched: Counter,
        /// Schema registry calls that failed (unreachable, timeout, 5xx) and
        /// were retried
        pub schema_registry_retries: Counter,
    }
}

impl Metrics {
    /// Shows the warning counter of each of `reasons` (the checks configured
    /// to warn) at 0 from the start: a series that appears only with its
    /// first increment reads as "no data" on a dashboard, and an alert on
    /// its rate misses that first warning.
    pub fn expect_warnings(&self, reasons: &[ReasonCode]) {
        for reason in reasons {
            let _ = self.line_warnings.get_or_create(&ReasonLabels { reason: reason.as_str().to_string() });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_warning_a_line_can_carry_is_shown_from_the_start() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.expect_warnings(&distans_domain::validate::CheckModes::default().warned());
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &registry).expect("encodes");
        for reason in ["visit_before_birth", "implausible_age", "net_amount_mismatch", "invalid_free_text"] {
            assert!(
                page.contains(&format!("distans_ingester_line_warnings_total{{reason=\"{reason}\"}} 0\n")),
                "{page}"
            );
        }
    }
}
