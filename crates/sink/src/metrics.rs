//! The sink's metrics, one set per table it writes.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records consumed, offsets not stored, consumer lag.
    pub consumer: ConsumerMetrics,
    pub inserted: Counter,
    pub batches: Counter,
    pub insert_retries: Counter,
    pub dead_lettered: Counter,
    pub clickhouse_up: Gauge,
    pub batch_seconds: Histogram,
}

impl Metrics {
    pub fn register(registry: &mut Registry, prefix: &str) -> Metrics {
        let r = registry.sub_registry_with_prefix(prefix);
        let m = Metrics {
            consumer: ConsumerMetrics::register(r),
            inserted: Counter::default(),
            batches: Counter::default(),
            insert_retries: Counter::default(),
            dead_lettered: Counter::default(),
            clickhouse_up: Gauge::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        };
        r.register("rows_inserted", "Rows acknowledged by ClickHouse", m.inserted.clone());
        r.register("batches", "Batches acknowledged by ClickHouse", m.batches.clone());
        r.register("insert_retries", "Inserts that failed transiently and were retried", m.insert_retries.clone());
        r.register(
            "records_dead_lettered",
            "Records the sink could not decode or ClickHouse rejected",
            m.dead_lettered.clone(),
        );
        r.register("clickhouse_up", "1 when the last ClickHouse request succeeded", m.clickhouse_up.clone());
        r.register("batch_seconds", "Time from a batch's first record to ClickHouse's ack", m.batch_seconds.clone());
        m
    }
}

/// The aggregate refresh's metrics (`distans_sink_aggregates_…`): an
/// operator sees a refresh that keeps failing (a memory limit, ClickHouse
/// down) before the reports go stale.
#[derive(Debug, Clone)]
pub struct RefreshMetrics {
    pub passes: Counter,
    pub months_rebuilt: Counter,
    pub failures: Counter,
    pub pass_seconds: Histogram,
}

impl RefreshMetrics {
    pub fn register(registry: &mut Registry, prefix: &str) -> RefreshMetrics {
        let r = registry.sub_registry_with_prefix(prefix);
        let m = RefreshMetrics {
            passes: Counter::default(),
            months_rebuilt: Counter::default(),
            failures: Counter::default(),
            pass_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
        };
        r.register("refresh_passes", "Refresh passes that completed (with or without months to rebuild)", m.passes.clone());
        r.register("months_rebuilt", "Months (all home regions) rebuilt in agg_monthly", m.months_rebuilt.clone());
        r.register("refresh_failures", "Refresh passes that failed and were retried after a backoff", m.failures.clone());
        r.register("refresh_seconds", "Duration of a completed refresh pass", m.pass_seconds.clone());
        m
    }
}
