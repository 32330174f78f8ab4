//! The sink: reads enriched lines from `topics.valid` and writes them to
//! ClickHouse's `invoice_line_versions` in batches, flushed on size or time.
//!
//! A batch's offsets are stored only after ClickHouse acknowledged its
//! rows and the broker acknowledged its dead letters. While ClickHouse is
//! down the sink retries with backoff and no offset moves. A line written
//! twice (redelivery after a crash), or in a later version (a correction),
//! collapses in `invoice_line_versions` (a ReplacingMergeTree on the line's
//! identity, keeping the largest version) and every report reads it once.

mod metrics;
mod writer;

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_domain::{ReasonCode, Violation};
use distans_runtime::kafka;
use distans_runtime::retry::{retry, ErrorClass, RetryError, RetryPolicy};
use distans_runtime::telemetry::Server;
use distans_runtime::{now_ms, Health, Settings};
use distans_store::migrations::MigrateError;
use distans_store::rows::{AnomalyRow, LineRow, OutOfRange};
use distans_store::{aggregates, reference, views};
use distans_wire::{Codec, DeadLetter};

pub use distans_runtime::kafka::Stopped;
pub use metrics::Metrics;
pub use writer::Writer;

const STAGE: &str = "sink";
/// How long a stopping sink tries to flush its last batch.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot serve http: {0}")]
    Http(#[from] std::io::Error),
    #[error("cannot bring the clickhouse schema up to date: {0}")]
    Migrate(#[from] MigrateError),
    #[error("cannot encode a dead letter (a bug): {0}")]
    Encode(#[from] distans_wire::EncodeError),
}

/// A topic written to a table: how a record becomes a row.
pub trait Table: Send + Sync + 'static {
    type Row: distans_store::Row;
    const NAME: &'static str;
    fn to_row(codec: &Codec, payload: &[u8], inserted_at_s: u32) -> Result<Self::Row, Violation>;
}

/// Enriched lines into `invoice_line_versions`, one row per version.
#[derive(Debug)]
pub struct Lines;

impl Table for Lines {
    type Row = LineRow;
    const NAME: &'static str = "invoice_line_versions";

    fn to_row(codec: &Codec, payload: &[u8], inserted_at_s: u32) -> Result<LineRow, Violation> {
        let line = codec.decode_enriched_line(payload).map_err(|e| e.into_violation())?;
        LineRow::from_line(&line, inserted_at_s).map_err(out_of_range)
    }
}

/// Findings into `anomalies`.
#[derive(Debug)]
pub struct Anomalies;

impl Table for Anomalies {
    type Row = AnomalyRow;
    const NAME: &'static str = "anomalies";

    fn to_row(codec: &Codec, payload: &[u8], inserted_at_s: u32) -> Result<AnomalyRow, Violation> {
        let timed = codec.decode_finding(payload).map_err(|e| e.into_violation())?;
        AnomalyRow::from_finding(&timed.finding, timed.detected_at_ms, inserted_at_s).map_err(out_of_range)
    }
}

fn out_of_range(e: OutOfRange) -> Violation {
    Violation::new(ReasonCode::SinkRejected, e.field, "is out of range for its ClickHouse column")
}

/// Rebuilds changed aggregate months every `every` until `shutdown`. A
/// failed pass (ClickHouse down) is logged and done again at the next tick.
async fn refresh_aggregates(db: &distans_store::Client, every: Duration, shutdown: &CancellationToken) {
    let mut refresher = aggregates::Refresher::default();
    let mut ticks = distans_runtime::shutdown::Ticks::every(every, shutdown);
    while ticks.next().await {
        let started = Instant::now();
        match refresher.pass(db).await {
            Ok(0) => {}
            Ok(months) => tracing::debug!(months, ms = started.elapsed().as_millis() as u64, "aggregates rebuilt"),
            Err(error) => tracing::warn!(%error, "aggregate refresh failed; it runs again at the next tick"),
        }
    }
}

/// Applies the migrations, re-creates the views and loads the reference
/// data. Returns the migrations applied now.
async fn prepare_clickhouse(server: &distans_store::Client, settings: &Settings) -> Result<Vec<u32>, MigrateError> {
    let applied = distans_store::migrations::migrate(server, &settings.clickhouse.database).await?;
    let database = distans_store::database(&settings.clickhouse);
    views::recreate(&database).await?;
    let loaded_at = u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX);
    reference::load(&database, &settings.tariffs, &settings.reporting, loaded_at).await?;
    Ok(applied)
}

/// Records read since the last flush.
#[derive(Debug)]
struct Batch<R> {
    rows: Vec<R>,
    /// For each row: where it came from, its key and bytes (a rejected row
    /// becomes a dead letter holding them).
    origins: Vec<(Provenance, Option<Vec<u8>>, Vec<u8>)>,
    dead_letters: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    /// The highest offset read per (topic, partition).
    high_offsets: BTreeMap<(String, i32), i64>,
    started: Option<Instant>,
}

impl<R> Default for Batch<R> {
    fn default() -> Self {
        Batch {
            rows: Vec::new(),
            origins: Vec::new(),
            dead_letters: Vec::new(),
            high_offsets: BTreeMap::new(),
            started: None,
        }
    }
}

impl<R> Batch<R> {
    fn len(&self) -> usize {
        self.rows.len() + self.dead_letters.len()
    }

    fn note(&mut self, source: &Provenance) {
        self.started.get_or_insert_with(Instant::now);
        let high = self.high_offsets.entry((source.topic.clone(), source.partition)).or_insert(source.offset);
        *high = (*high).max(source.offset);
    }
}

struct Sink<T> {
    table: std::marker::PhantomData<T>,
    consumer: kafka::Input,
    producer: FutureProducer,
    codec: Codec,
    writer: Writer,
    metrics: Metrics,
    dead_letter_topic: String,
}

/// Runs the sink until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), SinkError> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry, "distans_sink");
    let anomaly_metrics = Metrics::register(&mut registry, "distans_sink_anomalies");
    let http = Server::start(settings.sink.http_listen, registry, &shutdown).await?;

    let server = distans_store::client(&settings.clickhouse);
    let policy = RetryPolicy::until_stopped(
        Duration::from_millis(settings.sink.retry_initial_ms),
        Duration::from_millis(settings.sink.retry_max_ms),
    );
    let classify = |error: &MigrateError| {
        if error.is_permanent() {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        }
    };
    let on_retry = |error: &MigrateError, retry_in: Duration| {
        tracing::warn!(%error, retry_in_ms = retry_in.as_millis() as u64, "clickhouse not reachable for migrations and reference data");
    };
    match retry(&policy, &shutdown, classify, on_retry, || prepare_clickhouse(&server, &settings)).await {
        Ok(applied) => {
            tracing::info!(?applied, database = %settings.clickhouse.database, "clickhouse schema, views and reference data up to date");
        }
        Err(RetryError::Permanent(error) | RetryError::GaveUp { error, .. }) => return Err(error.into()),
        Err(RetryError::Stopped) => return Ok(()),
    }
    http.health.set_ready(true);
    metrics.clickhouse_up.set(1);

    let topics = &settings.topics;
    kafka::ensure_topics(&settings.kafka, &[&topics.valid, &topics.alerts, &topics.dead_letter]).await?;
    let database = distans_store::database(&settings.clickhouse);
    let lines: Sink<Lines> =
        Sink::new(&settings, &topics.valid, &settings.sink.group_id, &database, metrics, &http.health)?;
    let anomalies: Sink<Anomalies> = Sink::new(
        &settings,
        &topics.alerts,
        &settings.sink.anomalies_group_id,
        &database,
        anomaly_metrics,
        &http.health,
    )?;
    tracing::info!(lines = %topics.valid, findings = %topics.alerts, "sink running");
    let refresh = refresh_aggregates(&database, Duration::from_millis(settings.sink.aggregate_refresh_ms), &shutdown);
    let result =
        tokio::try_join!(lines.consume(&settings, &shutdown), anomalies.consume(&settings, &shutdown), async {
            refresh.await;
            Ok(())
        });
    http.stop().await;
    result.map(|_| ())
}

impl<T: Table> Sink<T> {
    fn new(
        settings: &Settings,
        topic: &str,
        group_id: &str,
        database: &distans_store::Client,
        metrics: Metrics,
        health: &Health,
    ) -> Result<Sink<T>, SinkError> {
        let consumer = kafka::Input::new(&settings.kafka, group_id, metrics.consumer.clone())?;
        consumer.consumer().subscribe(&[topic])?;
        health.watch(consumer.watch());
        let writer = Writer::new(
            database.clone(),
            metrics.clone(),
            health.clone(),
            Duration::from_millis(settings.sink.retry_initial_ms),
            Duration::from_millis(settings.sink.retry_max_ms),
        );
        Ok(Sink {
            table: std::marker::PhantomData,
            consumer,
            producer: kafka::producer(&settings.kafka)?,
            codec: Codec::embedded(),
            writer,
            metrics,
            dead_letter_topic: settings.topics.dead_letter.clone(),
        })
    }
    async fn consume(&self, settings: &Settings, shutdown: &CancellationToken) -> Result<(), SinkError> {
        let max_rows = settings.sink.batch_max_rows;
        let max_wait = Duration::from_millis(settings.sink.batch_max_wait_ms);
        let mut batch = Batch::default();
        loop {
            let deadline = batch.started.map(|s| s + max_wait);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let batch = std::mem::take(&mut batch);
                    if self.flush(batch, shutdown).await.is_err() {
                        break;
                    }
                }
                message = self.consumer.recv() => {
                    let source = Provenance {
                        topic: message.topic().to_string(),
                        partition: message.partition(),
                        offset: message.offset(),
                    };
                    let key = message.key().map(<[u8]>::to_vec);
                    let payload = message.payload().unwrap_or_default().to_vec();
                    batch.note(&source);
                    let inserted_at = u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX);
                    match T::to_row(&self.codec, &payload, inserted_at) {
                        Ok(row) => {
                            batch.rows.push(row);
                            batch.origins.push((source, key, payload));
                        }
                        Err(violation) => {
                            let dead_letter = DeadLetter::new(STAGE, &[violation], &source, key.as_deref(), &payload, now_ms());
                            batch.dead_letters.push((key, self.codec.encode_dead_letter(&dead_letter)?));
                        }
                    }
                    if batch.len() >= max_rows {
                        let batch = std::mem::take(&mut batch);
                        if self.flush(batch, shutdown).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        // Stopping: one last bounded attempt at the batch in hand.
        if batch.len() > 0 {
            let drain = CancellationToken::new();
            let cancel_after = drain.clone();
            tokio::spawn(async move {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
                cancel_after.cancel();
            });
            if self.flush(batch, &drain).await.is_err() {
                tracing::warn!("last batch not written at shutdown; it will be read again");
            }
        }
        self.consumer.commit_stored_offsets();
        Ok(())
    }

    /// Writes the batch's rows, then its dead letters, then stores its
    /// offsets. `Err` when stopped before all of it was acknowledged: then
    /// no offset of this batch is stored.
    async fn flush(&self, mut batch: Batch<T::Row>, stop: &CancellationToken) -> Result<(), Stopped> {
        let started = batch.started.unwrap_or_else(Instant::now);
        let rejected = self.writer.insert(T::NAME, &batch.rows, stop).await?;
        let inserted = batch.rows.len() - rejected.len();
        for (index, message) in rejected {
            let (source, key, original) = &batch.origins[index];
            let violation =
                Violation::new(ReasonCode::SinkRejected, "", format!("clickhouse rejected the row: {message}"));
            let dead_letter = DeadLetter::new(STAGE, &[violation], source, key.as_deref(), original, now_ms());
            match self.codec.encode_dead_letter(&dead_letter) {
                Ok(payload) => batch.dead_letters.push((key.clone(), payload)),
                Err(error) => {
                    tracing::error!(%error, "cannot encode a dead letter; the batch will be read again");
                    return Err(Stopped);
                }
            }
        }
        for (key, payload) in &batch.dead_letters {
            self.send_dead_letter(key.as_deref(), payload, stop).await?;
            self.metrics.dead_lettered.inc();
        }
        for ((topic, partition), offset) in &batch.high_offsets {
            self.consumer.store_processed(topic, *partition, *offset);
        }
        self.metrics.inserted.inc_by(inserted as u64);
        self.metrics.batches.inc();
        self.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        tracing::debug!(rows = inserted, dead_letters = batch.dead_letters.len(), "batch written");
        Ok(())
    }

    async fn send_dead_letter(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        kafka::deliver(&self.producer, &self.dead_letter_topic, key, payload, stop, || {}).await
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
