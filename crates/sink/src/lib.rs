//! The sink: reads enriched lines from `topics.valid` and writes them to
//! ClickHouse's `invoice_line_versions` in batches, flushed at a number of
//! records, a number of bytes or a time, whichever comes first. A batch
//! holds each record's bytes once: rows are built from them at flush, and
//! a row ClickHouse rejects becomes a dead letter quoting them.
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
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_domain::{EnrichedLine, ReasonCode, Violation};
use distans_runtime::kafka;
use distans_runtime::retry::{retry, ErrorClass, RetryError, RetryPolicy};
use distans_runtime::service::{ServiceError, DRAIN_TIMEOUT};
use distans_runtime::telemetry::Server;
use distans_runtime::{now_ms, pseudonym_keys, Health, Settings};
use distans_store::migrations::MigrateError;
use distans_store::rows::{AnomalyRow, LineRow, OutOfRange, UndeliveredRow};
use distans_store::{aggregates, reference, views};
use distans_wire::{undelivered_topic, Codec, DeadLetter, DecodeError, TimedFinding, UndeliveredAlert};

pub use distans_runtime::kafka::Stopped;
pub use metrics::{Metrics, RefreshMetrics};
pub use writer::{WriteError, Writer};

const STAGE: &str = "sink";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// What any service can fail with (the broker, the http server, …).
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("cannot bring the clickhouse schema up to date: {0}")]
    Migrate(#[from] MigrateError),
    /// ClickHouse refuses the sink itself (credentials, grants, database).
    #[error(transparent)]
    Write(#[from] WriteError),
}

distans_runtime::service_error!(SinkError);

/// A record type whose topic is written to a table, and how: the record
/// as decoded, then its row, which borrows from it (`Sink<EnrichedLine>`
/// writes lines, and so on). The sink keeps a batch's records until its
/// rows are written.
pub trait Table: Sized + Send + Sync + 'static {
    /// The ClickHouse table.
    const TABLE: &'static str;
    /// The row type, at any lifetime (`LineRow<'static>`); a record's row
    /// is its value borrowing from the record ([`Table::row`]).
    type Row: distans_store::Row;
    /// Reads the record in a payload (a `Codec::decode_*` method). Errors:
    /// a payload that is not this record.
    const DECODE: Decoder<Self>;
    /// The record's row. `key_version`: the record's pseudonym key version
    /// header (`distans_runtime::pseudonym_keys::key_version_of`; `None`:
    /// unreadable). Errors: a value outside its column's range.
    fn row(&self, key_version: Option<u16>, inserted_at_s: u32) -> Result<RowOf<'_, Self>, Violation>;
}

/// How a [`Table`]'s record is read from a payload.
pub type Decoder<T> = fn(&Codec, &[u8]) -> Result<T, DecodeError>;

/// The row of a `T` record, borrowing from it for `'a`.
pub type RowOf<'a, T> = distans_store::RowValue<'a, <T as Table>::Row>;

/// Enriched lines into `invoice_line_versions`, one row per version.
impl Table for EnrichedLine {
    const TABLE: &'static str = "invoice_line_versions";
    const DECODE: Decoder<EnrichedLine> = Codec::decode_enriched_line;
    type Row = LineRow<'static>;

    fn row(&self, key_version: Option<u16>, inserted_at_s: u32) -> Result<LineRow<'_>, Violation> {
        let mut row = LineRow::from_line(self, inserted_at_s).map_err(out_of_range)?;
        row.pseudonym_key_version = key_version.ok_or_else(|| {
            Violation::new(
                ReasonCode::SinkRejected,
                pseudonym_keys::KEY_VERSION_HEADER,
                "is not a pseudonym key version (1 to 65535)",
            )
        })?;
        Ok(row)
    }
}

/// Findings into `anomalies`.
impl Table for TimedFinding {
    const TABLE: &'static str = "anomalies";
    const DECODE: Decoder<TimedFinding> = Codec::decode_finding;
    type Row = AnomalyRow<'static>;

    fn row(&self, _: Option<u16>, inserted_at_s: u32) -> Result<AnomalyRow<'_>, Violation> {
        AnomalyRow::from_finding(&self.finding, self.detected_at_ms, inserted_at_s).map_err(out_of_range)
    }
}

/// The messages the notifier's webhook refused for good into
/// `undelivered_alerts`, where staff see what never reached them.
impl Table for UndeliveredAlert {
    const TABLE: &'static str = "undelivered_alerts";
    const DECODE: Decoder<UndeliveredAlert> = |_, payload| {
        UndeliveredAlert::decode(payload).map_err(|e| DecodeError {
            code: ReasonCode::SinkRejected,
            message: format!("the payload is not an undelivered alert's JSON: {e}"),
        })
    };
    type Row = UndeliveredRow;

    fn row(&self, _: Option<u16>, inserted_at_s: u32) -> Result<UndeliveredRow, Violation> {
        Ok(UndeliveredRow {
            refused_at: UndeliveredRow::refused_at(self.refused_at_ms).map_err(out_of_range)?,
            kind: self.kind.clone(),
            rule_id: self.rule_id.clone(),
            provider_org_number: self.provider_org_number.clone(),
            finding_ids: self.finding_ids.clone(),
            status: self.status,
            answer: self.answer.clone(),
            message: self.message.clone(),
            inserted_at: inserted_at_s,
        })
    }
}

/// The sink's consumer group for the undelivered alerts: the findings'
/// group with `-undelivered` appended.
pub fn undelivered_group_id(settings: &Settings) -> String {
    format!("{}-undelivered", settings.sink.anomalies_group_id)
}

fn out_of_range(e: OutOfRange) -> Violation {
    Violation::new(ReasonCode::SinkRejected, e.field, "is out of range for its ClickHouse column")
}

/// Rebuilds changed aggregate months every `sink.aggregate_refresh_ms` until
/// `shutdown`, each query within `sink.aggregate_max_memory_bytes` and
/// `sink.aggregate_max_threads`. A failed pass (ClickHouse down, a memory
/// limit) is logged and done again after a backoff doubling from
/// `aggregate_refresh_ms` to `retry_max_ms`, so a failing refresh does not
/// hammer ClickHouse every tick. While ClickHouse does not answer the
/// refresh, the sink is not ready (`health`), also when no line arrives.
async fn refresh_aggregates(
    db: &distans_store::Client,
    settings: &distans_runtime::config::SinkSettings,
    metrics: &RefreshMetrics,
    health: &Health,
    shutdown: &CancellationToken,
) {
    let every = Duration::from_millis(settings.aggregate_refresh_ms);
    let limits = aggregates::RefreshLimits {
        max_memory_usage: settings.aggregate_max_memory_bytes,
        max_threads: settings.aggregate_max_threads,
    };
    let mut refresher = aggregates::Refresher::new(limits, Duration::from_millis(settings.aggregate_stale_check_ms));
    let max_backoff = Duration::from_millis(settings.retry_max_ms).max(every);
    let mut backoff = every;
    let mut ticks = distans_runtime::shutdown::Ticks::every(every, shutdown);
    while ticks.next().await {
        let started = Instant::now();
        let passed = refresher.pass(db).await;
        health.part("aggregate refresh", distans_store::unanswered_reason("the aggregate refresh", &passed));
        match passed {
            Ok(months) => {
                backoff = every;
                metrics.passes.inc();
                metrics.months_rebuilt.inc_by(months as u64);
                metrics.pass_seconds.observe(started.elapsed().as_secs_f64());
                if months > 0 {
                    tracing::debug!(months, ms = started.elapsed().as_millis() as u64, "aggregates rebuilt");
                }
            }
            Err(error) => {
                metrics.failures.inc();
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "aggregate refresh failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(max_backoff);
            }
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
    reference::load(
        &database,
        &settings.tariffs,
        &settings.reporting,
        &settings.detector.rules.home_regions,
        loaded_at,
    )
    .await?;
    Ok(applied)
}

/// A record read and not yet written: the one copy of its bytes the sink
/// holds. Its row is built from these bytes at flush, and a rejected row's
/// dead letter quotes them.
#[derive(Debug)]
struct Record {
    source: Provenance,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    /// Its pseudonym key version header (1 when absent, `None` when unreadable).
    key_version: Option<u16>,
}

/// When a batch is full: whichever bound is reached first.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_rows: usize,
    max_bytes: usize,
}

/// Records read since the last flush.
#[derive(Debug, Default)]
struct Batch {
    records: Vec<Record>,
    /// Bytes of the records' keys and payloads.
    bytes: usize,
    /// The highest offset read per (topic, partition).
    high_offsets: BTreeMap<(String, i32), i64>,
    started: Option<Instant>,
}

impl Batch {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn push(&mut self, record: Record) {
        self.started.get_or_insert_with(Instant::now);
        let source = &record.source;
        let high = self.high_offsets.entry((source.topic.clone(), source.partition)).or_insert(source.offset);
        *high = (*high).max(source.offset);
        self.bytes += record.payload.len() + record.key.as_ref().map_or(0, Vec::len);
        self.records.push(record);
    }

    /// Full once it holds `max_rows` records or `max_bytes` bytes: a batch
    /// exceeds the byte bound by one record at most (a record larger than
    /// the bound is written in a batch that holds little else).
    fn is_full(&self, bounds: Bounds) -> bool {
        self.records.len() >= bounds.max_rows || self.bytes >= bounds.max_bytes
    }
}

/// Why a flush did not complete; no offset of its batch is stored.
#[derive(Debug)]
enum FlushError {
    /// Stopped before ClickHouse or the broker acknowledged all of it.
    Stopped,
    /// A dead letter cannot be encoded (a bug).
    Encode(distans_wire::EncodeError),
    /// ClickHouse refuses the sink itself: the sink stops with the error.
    Refused(WriteError),
}

impl From<Stopped> for FlushError {
    fn from(_: Stopped) -> FlushError {
        FlushError::Stopped
    }
}

impl From<WriteError> for FlushError {
    fn from(error: WriteError) -> FlushError {
        match error {
            WriteError::Stopped => FlushError::Stopped,
            refused @ WriteError::Refused(_) => FlushError::Refused(refused),
        }
    }
}

struct Sink<T> {
    table: std::marker::PhantomData<T>,
    consumer: kafka::Input,
    producer: kafka::Producer,
    codec: Codec,
    writer: Writer,
    metrics: Metrics,
    dead_letter_topic: String,
    /// `kafka.max_record_bytes`: a dead letter is cut to fit.
    max_record_bytes: usize,
}

/// Runs the sink until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), SinkError> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry, "distans_sink");
    let anomaly_metrics = Metrics::register(&mut registry, "distans_sink_anomalies");
    let undelivered_metrics = Metrics::register(&mut registry, "distans_sink_undelivered");
    let refresh_metrics = RefreshMetrics::register(&mut registry);
    let http = Server::start(settings.sink.http_listen, "sink.http_listen", registry, &shutdown).await?;

    match kafka::connect(&settings.kafka, &shutdown).await {
        Ok(()) => {}
        Err(kafka::ConnectError::Stopped) => return Ok(()),
        Err(error) => return Err(error.into()),
    }
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
    metrics.clickhouse_up.set(1);

    let topics = &settings.topics;
    let undelivered_topic = undelivered_topic(&topics.alerts);
    kafka::ensure_topics(&settings.kafka, &[&topics.valid, &topics.alerts, &topics.dead_letter, &undelivered_topic])
        .await?;
    let database = distans_store::database(&settings.clickhouse);
    let lines: Sink<EnrichedLine> =
        Sink::new(&settings, &topics.valid, &settings.sink.group_id, &database, metrics, &http.health)?;
    let anomalies: Sink<TimedFinding> = Sink::new(
        &settings,
        &topics.alerts,
        &settings.sink.anomalies_group_id,
        &database,
        anomaly_metrics,
        &http.health,
    )?;
    let undelivered: Sink<UndeliveredAlert> = Sink::new(
        &settings,
        &undelivered_topic,
        &undelivered_group_id(&settings),
        &database,
        undelivered_metrics,
        &http.health,
    )?;
    // Ready only now that all consumers are watched: before, readiness
    // had no consumer to ask and said 200 while the sink could not reach
    // the broker (tests/tests/health.rs).
    http.health.set_ready();
    tracing::info!(lines = %topics.valid, findings = %topics.alerts, "sink running");
    let refresh = refresh_aggregates(&database, &settings.sink, &refresh_metrics, &http.health, &shutdown);
    let result = tokio::try_join!(
        lines.consume(&settings, &shutdown),
        anomalies.consume(&settings, &shutdown),
        undelivered.consume(&settings, &shutdown),
        async {
            refresh.await;
            Ok(())
        }
    );
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
            max_record_bytes: settings.kafka.max_record_bytes,
        })
    }
    async fn consume(&self, settings: &Settings, shutdown: &CancellationToken) -> Result<(), SinkError> {
        let bounds = Bounds { max_rows: settings.sink.batch_max_rows, max_bytes: settings.sink.batch_max_bytes };
        let max_wait = Duration::from_millis(settings.sink.batch_max_wait_ms);
        let mut batch = Batch::default();
        loop {
            let deadline = batch.started.map(|s| s + max_wait);
            let flush_now = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline), if deadline.is_some() => true,
                message = self.consumer.recv() => {
                    batch.push(Record {
                        source: kafka::provenance(&message),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        key_version: pseudonym_keys::key_version_of(message.headers()),
                    });
                    batch.is_full(bounds)
                }
            };
            if flush_now {
                match self.flush(std::mem::take(&mut batch), shutdown).await {
                    Ok(()) => {}
                    Err(FlushError::Stopped) => break,
                    Err(FlushError::Encode(error)) => return Err(error.into()),
                    Err(FlushError::Refused(error)) => return Err(error.into()),
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

    /// Builds the batch's rows from its records, writes them, then the dead
    /// letters (records that are no row, rows ClickHouse rejected), then
    /// stores the batch's offsets. `Err` when not all of it was
    /// acknowledged: then no offset of this batch is stored.
    async fn flush(&self, batch: Batch, stop: &CancellationToken) -> Result<(), FlushError> {
        let started = batch.started.unwrap_or_else(Instant::now);
        let inserted_at = u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX);
        // Kept until the rows that borrow from them are written.
        let decoded: Vec<Result<T, Violation>> = batch
            .records
            .iter()
            .map(|record| (T::DECODE)(&self.codec, &record.payload).map_err(DecodeError::into_violation))
            .collect();
        let mut rows = Vec::with_capacity(batch.len());
        // For each row, the index of its record.
        let mut row_records = Vec::with_capacity(batch.len());
        let mut dead_letters = Vec::new();
        for (index, (record, decoded)) in batch.records.iter().zip(&decoded).enumerate() {
            match decoded.as_ref().map_err(Violation::clone).and_then(|d| d.row(record.key_version, inserted_at)) {
                Ok(row) => {
                    rows.push(row);
                    row_records.push(index);
                }
                Err(violation) => dead_letters.push(self.dead_letter(record, violation)?),
            }
        }
        let rejected = self.writer.insert::<T::Row>(T::TABLE, &rows, stop).await?;
        let inserted = rows.len() - rejected.len();
        drop(rows);
        drop(decoded);
        for (row, message) in rejected {
            let violation =
                Violation::new(ReasonCode::SinkRejected, "", format!("clickhouse rejected the row: {message}"));
            dead_letters.push(self.dead_letter(&batch.records[row_records[row]], violation)?);
        }
        for (key, payload) in &dead_letters {
            self.send_dead_letter(key.as_deref(), payload, stop).await?;
            self.metrics.dead_lettered.inc();
        }
        for ((topic, partition), offset) in &batch.high_offsets {
            self.consumer.store_processed(topic, *partition, *offset);
        }
        self.metrics.inserted.inc_by(inserted as u64);
        self.metrics.batches.inc();
        self.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        tracing::debug!(rows = inserted, dead_letters = dead_letters.len(), bytes = batch.bytes, "batch written");
        Ok(())
    }

    /// The dead letter of `record` (its original bytes and the reason), with
    /// the record's key.
    fn dead_letter(&self, record: &Record, violation: Violation) -> Result<(Option<Vec<u8>>, Vec<u8>), FlushError> {
        let dead_letter =
            DeadLetter::new(STAGE, &[violation], &record.source, record.key.as_deref(), &record.payload, now_ms());
        match self.codec.encode_dead_letter_within(&dead_letter, self.dead_letter_room(record.key.as_deref())) {
            Ok(payload) => Ok((record.key.clone(), payload)),
            Err(error) => {
                tracing::error!(%error, "cannot encode a dead letter; the sink stops and the batch will be read again");
                Err(FlushError::Encode(error))
            }
        }
    }

    /// The largest dead letter with `key` that fits `kafka.max_record_bytes`.
    fn dead_letter_room(&self, key: Option<&[u8]>) -> usize {
        self.max_record_bytes.saturating_sub(key.map_or(0, <[u8]>::len) + kafka::RECORD_OVERHEAD_BYTES)
    }

    /// Sends one dead letter (already cut to fit). One the broker refuses for
    /// good (the dead-letter topic is not writable, or takes less than
    /// `kafka.max_record_bytes`) stops the whole sink (`stop` cancelled, the
    /// error logged): no offset of the batch moves, and no pipeline keeps
    /// running while this one cannot.
    async fn send_dead_letter(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        match kafka::deliver(&self.producer, &self.dead_letter_topic, key, payload, stop, || {}).await {
            Ok(()) => Ok(()),
            Err(kafka::DeliverError::Stopped) => Err(Stopped),
            Err(kafka::DeliverError::Refused(error)) => {
                tracing::error!(%error, topic = %self.dead_letter_topic,
                    "a dead letter was refused for good; stopping the sink (check the topic's ACLs and that the broker takes kafka.max_record_bytes)");
                stop.cancel();
                Err(Stopped)
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: Option<&[u8]>, payload_len: usize) -> Record {
        Record {
            source: Provenance { topic: "valid".to_string(), partition: 0, offset },
            key: key.map(<[u8]>::to_vec),
            payload: vec![7; payload_len],
            key_version: Some(1),
        }
    }

    /// (bounds, (key, payload length) of each record pushed, full after each push)
    #[test]
    fn a_batch_is_full_at_whichever_bound_comes_first() {
        type Pushes<'a> = &'a [(Option<&'a [u8]>, usize)];
        let cases: &[(Bounds, Pushes, &[bool])] = &[
            // Bytes first: 400 + 400 + 300 reach 1 000 at the third record.
            (Bounds { max_rows: 10, max_bytes: 1000 }, &[(None, 400), (None, 400), (None, 300)], &[false, false, true]),
            // Keys count: 2 + 998 is exactly the bound.
            (Bounds { max_rows: 10, max_bytes: 1000 }, &[(Some(b"k1"), 500), (Some(b"k2"), 496)], &[false, true]),
            // Rows first: small records.
            (Bounds { max_rows: 3, max_bytes: 1 << 20 }, &[(None, 10), (None, 10), (None, 10)], &[false, false, true]),
            // One record larger than the bound fills a batch on its own.
            (Bounds { max_rows: 10, max_bytes: 1000 }, &[(None, 5000)], &[true]),
            // An empty payload weighs nothing but still counts as a row.
            (Bounds { max_rows: 2, max_bytes: 1000 }, &[(None, 0), (None, 0)], &[false, true]),
        ];
        for (bounds, records, expected) in cases {
            let mut batch = Batch::default();
            let full: Vec<bool> = records
                .iter()
                .enumerate()
                .map(|(offset, (key, len))| {
                    batch.push(record(offset as i64, *key, *len));
                    batch.is_full(*bounds)
                })
                .collect();
            assert_eq!(&full, expected, "{bounds:?} {records:?}");
        }
    }

    #[test]
    fn a_batch_counts_bytes_and_the_highest_offset_per_partition() {
        let mut batch = Batch::default();
        batch.push(record(5, Some(b"abc"), 100));
        batch.push(record(3, None, 50));
        let mut other = record(9, None, 1);
        other.source.partition = 1;
        batch.push(other);
        assert_eq!(batch.bytes, 3 + 100 + 50 + 1);
        assert_eq!(batch.len(), 3);
        assert!(batch.started.is_some());
        let highs: Vec<_> = batch.high_offsets.iter().map(|((_, p), o)| (*p, *o)).collect();
        assert_eq!(highs, [(0, 5), (1, 9)]);
    }
}
