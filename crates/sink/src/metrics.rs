//! The sink's metrics, one set per table it writes.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

distans_runtime::metrics! {
    #[derive(Debug, Clone)]
    pub struct Metrics {
        /// Records consumed, offsets not stored, consumer lag.
        #[metric(group)]
        pub consumer: ConsumerMetrics,
        /// Rows acknowledged by ClickHouse
        #[metric(name = "rows_inserted")]
        pub inserted: Counter,
        /// Batches acknowledged by ClickHouse
        pub batches: Counter,
        /// Inserts that failed transiently and were retried
        pub insert_retries: Counter,
        /// Records the sink could not decode or ClickHouse rejected
        #[metric(name = "records_dead_lettered")]
        pub dead_lettered: Counter,
        /// 1 when this table's last insert succeeded (while no line arrives,
        /// the sink's /readyz also follows the aggregate refresh's requests)
        pub clickhouse_up: Gauge,
        /// Time from a batch's first record to ClickHouse's ack
        pub batch_seconds: Histogram = Histogram::new(exponential_buckets(0.005, 2.0, 14)),
    }
}

impl Metrics {
    /// Registers the set in `registry`'s sub-registry with `prefix` (one per
    /// table the sink writes).
    pub fn register(registry: &mut Registry, prefix: &str) -> Metrics {
        Metrics::register_in(registry.sub_registry_with_prefix(prefix))
    }
}

distans_runtime::metrics! {
    /// The aggregate refresh's metrics (`distans_sink_aggregates_…`): an
    /// operator sees a refresh that keeps failing (a memory limit, ClickHouse
    /// down) before the reports go stale.
    #[derive(Debug, Clone)]
    pub struct RefreshMetrics in "distans_sink_aggregates" {
        /// Refresh passes that completed (with or without months to rebuild)
        #[metric(name = "refresh_passes")]
        pub passes: Counter,
        /// Months (all home regions) rebuilt in agg_monthly
        pub months_rebuilt: Counter,
        /// Refresh passes that failed and were retried after a backoff
        #[metric(name = "refresh_failures")]
        pub failures: Counter,
        /// Duration of a completed refresh pass
        #[metric(name = "refresh_seconds")]
        pub pass_seconds: Histogram = Histogram::new(exponential_buckets(0.005, 2.0, 16)),
    }
}
