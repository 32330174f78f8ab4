//! The metrics every service that consumes a topic has. Each service
//! registers them under its own prefix, beside its own metrics, so
//! `distans_sink_records_consumed_total` and
//! `distans_ingester_records_consumed_total` mean the same thing.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::kafka::ConsumerLag;

#[derive(Debug, Clone, Default)]
pub struct ConsumerMetrics {
    /// Records read from the input topic (`records_consumed`).
    pub consumed: Counter,
    /// Offsets that could not be stored (`offset_store_failures`).
    pub offset_store_failures: Counter,
    /// Records behind the end of each input partition (`consumer_lag`), fed
    /// by the consumer's statistics (see [`crate::kafka::Input`]).
    pub lag: ConsumerLag,
}

impl ConsumerMetrics {
    /// Registers the metrics in `registry`, a service's prefixed sub-registry.
    pub fn register(registry: &mut Registry) -> ConsumerMetrics {
        let m = ConsumerMetrics::default();
        registry.register("records_consumed", "Records read from the input topic", m.consumed.clone());
        registry.register(
            "offset_store_failures",
            "Offsets that could not be stored (partition revoked)",
            m.offset_store_failures.clone(),
        );
        registry.register("consumer_lag", "Records behind the end of each input partition", m.lag.clone());
        m
    }
}
