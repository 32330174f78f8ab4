//! The detector's metrics.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

distans_runtime::metrics! {
    #[derive(Debug, Clone, Default)]
    pub struct Metrics in "distans_detector" {
        /// Records consumed, offsets not stored, consumer lag.
        #[metric(group)]
        pub consumer: ConsumerMetrics,
        /// Valid lines evaluated by the rules
        pub lines_observed: Counter,
        /// Lines read again at start to rebuild the rules' state
        pub lines_replayed: Counter,
        /// Findings published, by rule
        pub findings: Family<RuleLabels, Counter>,
        /// Produce attempts that failed and were retried
        pub produce_retries: Counter,
        /// Records of the valid topic that could not be decoded
        #[metric(name = "records_dead_lettered")]
        pub dead_lettered: Counter,
        /// 1 while the state is being rebuilt from the topic
        pub replaying: Gauge,
        /// Invoice lines the stateful rules remember
        pub lines_in_state: Gauge,
        /// Live records whose findings or dead letter await the broker's ack
        pub in_flight: Gauge,
    }
}
