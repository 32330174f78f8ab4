//! The detector's metrics.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Records consumed, offsets not stored, consumer lag.
    pub consumer: ConsumerMetrics,
    pub lines_observed: Counter,
    pub lines_replayed: Counter,
    pub findings: Family<RuleLabels, Counter>,
    pub produce_retries: Counter,
    pub dead_lettered: Counter,
    pub replaying: Gauge,
    pub lines_in_state: Gauge,
    /// Live records whose publication awaits the broker.
    pub in_flight: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let r = registry.sub_registry_with_prefix("distans_detector");
        let m = Metrics { consumer: ConsumerMetrics::register(r), ..Metrics::default() };
        r.register("lines_observed", "Valid lines evaluated by the rules", m.lines_observed.clone());
        r.register("lines_replayed", "Lines read again at start to rebuild the rules' state", m.lines_replayed.clone());
        r.register("findings", "Findings published, by rule", m.findings.clone());
        r.register("produce_retries", "Produce attempts that failed and were retried", m.produce_retries.clone());
        r.register(
            "records_dead_lettered",
            "Records of the valid topic that could not be decoded",
            m.dead_lettered.clone(),
        );
        r.register("replaying", "1 while the state is being rebuilt from the topic", m.replaying.clone());
        r.register("lines_in_state", "Invoice lines the stateful rules remember", m.lines_in_state.clone());
        r.register(
            "in_flight",
            "Live records whose findings or dead letter await the broker's ack",
            m.in_flight.clone(),
        );
        m
    }
}
