//! The metrics every service that consumes a topic has. Each service
//! registers them under its own prefix, beside its own metrics, so
//! `distans_sink_records_consumed_total` and
//! `distans_ingester_records_consumed_total` mean the same thing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A topic partition, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// Consumer lag per partition, as librdkafka reports it in its statistics.
pub type ConsumerLag = Family<PartitionLabels, Gauge>;

/// What happened to a partition in a rebalance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RebalanceLabels {
    /// `assigned`, `revoked` or `error`.
    pub event: String,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerMetrics {
    /// Records read from the input topic (`records_consumed`).
    pub consumed: Counter,
    /// Offsets that could not be stored (`offset_store_failures`).
    pub offset_store_failures: Counter,
    /// Records behind the end of each input partition (`consumer_lag`), fed
    /// by the consumer's statistics (see [`crate::kafka::Input`]).
    pub lag: ConsumerLag,
    /// Partitions assigned and revoked, and failed rebalances
    /// (`partition_rebalances{event}`), counted per partition.
    pub rebalances: Family<RebalanceLabels, Counter>,
    /// Partitions assigned now (`partitions_assigned`).
    pub assigned: Gauge,
    /// Unix time (seconds) a record of each assigned partition was last
    /// read or processed, or it was assigned (`partition_last_progress_seconds`).
    pub last_progress: Family<PartitionLabels, Gauge>,
    /// Committed offsets out of range (below the log start or past its
    /// end) that the `auto.offset.reset` policy replaced (`offset_resets`).
    pub offset_resets: Counter,
    /// Times the stall watchdog re-joined the group (`group_rejoins`).
    pub rejoins: Counter,
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
        registry.register(
            "partition_rebalances",
            "Partitions assigned or revoked by the consumer group, and failed rebalances",
            m.rebalances.clone(),
        );
        registry.register("partitions_assigned", "Input partitions assigned to this consumer now", m.assigned.clone());
        registry.register(
            "partition_last_progress_seconds",
            "Unix time a record of the partition was last read or processed (or it was assigned)",
            m.last_progress.clone(),
        );
        registry.register(
            "offset_resets",
            "Committed offsets out of range replaced by the auto.offset.reset policy",
            m.offset_resets.clone(),
        );
        registry.register("group_rejoins", "Times the stall watchdog re-joined the consumer group", m.rejoins.clone());
        m
    }
}
