//! The detector: evaluates the monitoring rules over `topics.valid` and
//! publishes findings to `topics.alerts`, which the sink writes to the
//! `anomalies` table (and the notifier will send to people).
//!
//! State. The stateful rules (double invoicing, contacts per patient) need
//! every line seen so far, across all partitions, so one detector reads all
//! partitions of the valid topic (assigned, not balanced in a group; the
//! group is used only to commit offsets). The state is rebuilt at each start
//! by reading the topic from its beginning: lines below the committed
//! offsets only feed the rules (their findings were published before the
//! offsets were committed); from the committed offsets on, findings are
//! published. Findings have stable ids and the rules' results do not depend
//! on the order of lines, so a line read again after a crash gives the
//! same finding with the same id, and `anomalies` keeps it once.
//!
//! Offsets. A line's offset is stored only after all its findings are
//! acknowledged by the broker.

mod metrics;
pub mod review;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_domain::rules::RuleEngine;
use distans_runtime::kafka::{self, Stopped};
use distans_runtime::{now_ms, telemetry, Health, Settings};
use distans_wire::{Codec, DeadLetter, TimedFinding};

pub use metrics::Metrics;

const STAGE: &str = "detector";

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot serve http: {0}")]
    Http(#[from] std::io::Error),
    #[error("cannot encode a record (a bug): {0}")]
    Encode(#[from] distans_wire::EncodeError),
    #[error("topic {0} has no partitions")]
    NoPartitions(String),
}

/// Runs the detector until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), DetectorError> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let health = Health::default();
    let (_, http) =
        telemetry::serve(settings.detector.http_listen, Arc::new(registry), health.clone(), shutdown.clone()).await?;
    let topics = &settings.topics;
    kafka::ensure_topics(&settings.kafka, &[&topics.valid, &topics.alerts, &topics.dead_letter]).await?;
    let consumer = kafka::consumer(&settings.kafka, &settings.detector.group_id, metrics.lag.clone())?;
    let producer = kafka::producer(&settings.kafka)?;

    // Assign every partition from its beginning; remember where the
    // committed offsets are: below them, lines only rebuild the state.
    let (assignment, mut replay_until) = tokio::task::block_in_place(|| -> Result<_, DetectorError> {
        let metadata = consumer.fetch_metadata(Some(&topics.valid), Duration::from_secs(10))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        if partitions.is_empty() {
            return Err(DetectorError::NoPartitions(topics.valid.clone()));
        }
        let mut wanted = TopicPartitionList::new();
        for p in &partitions {
            wanted.add_partition(&topics.valid, *p);
        }
        let committed = consumer.committed_offsets(wanted, Duration::from_secs(10))?;
        let mut replay_until = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            let (low, _) = consumer.fetch_watermarks(&topics.valid, *p, Duration::from_secs(10))?;
            let until = match committed.find_partition(&topics.valid, *p).map(|e| e.offset()) {
                // Records deleted by retention cannot be replayed: replay what is left.
                Some(Offset::Offset(n)) if n > low => n,
                _ => 0,
            };
            if until > 0 {
                replay_until.insert(*p, until);
            }
            assignment.add_partition_offset(&topics.valid, *p, Offset::Beginning)?;
        }
        Ok((assignment, replay_until))
    })?;
    consumer.assign(&assignment)?;
    let replay_started = Instant::now();
    let mut replaying = !replay_until.is_empty();
    metrics.replaying.set(i64::from(replaying));
    health.set_ready(!replaying);
    tracing::info!(topic = %topics.valid, ?replay_until, "detector running; rebuilding state up to the committed offsets");

    let mut detector = Detector {
        codec: Codec::embedded(),
        engine: RuleEngine::new(settings.detector.rules.clone()),
        producer,
        metrics: metrics.clone(),
        alerts: topics.alerts.clone(),
        dead_letter: topics.dead_letter.clone(),
    };
    // Rules judged in ClickHouse over the aggregates (see `review`).
    let review = (settings.detector.review_interval_ms > 0).then(|| {
        let db = distans_store::database(&settings.clickhouse);
        let (producer, alerts, metrics, stop) =
            (detector.producer.clone(), topics.alerts.clone(), metrics.clone(), shutdown.clone());
        let codec = Codec::embedded();
        let publisher =
            async move |findings| publish(&producer, &codec, &alerts, findings, &metrics, &stop).await.is_ok();
        tokio::spawn(review::run(
            db,
            Duration::from_millis(settings.detector.review_interval_ms),
            settings.detector.rules.disabled.clone(),
            publisher,
            shutdown.clone(),
        ))
    });
    // Records past the committed offsets that arrive while another partition
    // is still replaying wait here (their partition paused): every replayed
    // line must be seen before any live one, or a finding that only a live
    // line completes could surface at a replayed line and be suppressed.
    let mut held: Vec<Record> = Vec::new();
    let mut paused = TopicPartitionList::new();
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "kafka consumer error; continuing");
                continue;
            }
        };
        let record = Record {
            source: Provenance {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
            },
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
        };
        let replayed = replay_until.get(&record.source.partition).is_some_and(|until| record.source.offset < *until);
        if replaying && !replayed {
            if paused.find_partition(&record.source.topic, record.source.partition).is_none() {
                paused.add_partition(&record.source.topic, record.source.partition);
                if let Err(error) = consumer.pause(&paused) {
                    tracing::warn!(%error, "cannot pause a partition; holding its records in memory");
                }
            }
            held.push(record);
            continue;
        }
        if replayed {
            detector.observe(&record, true, &shutdown).await?;
            if record.source.offset + 1 >= replay_until[&record.source.partition] {
                replay_until.remove(&record.source.partition);
            }
            if replay_until.is_empty() {
                replaying = false;
                metrics.replaying.set(0);
                tracing::info!(
                    lines = metrics.lines_replayed.get(),
                    seconds = replay_started.elapsed().as_secs_f64(),
                    held = held.len(),
                    "state rebuilt from the topic"
                );
                let mut stopped = false;
                for record in std::mem::take(&mut held) {
                    if !detector.observe(&record, false, &shutdown).await? {
                        stopped = true;
                        break;
                    }
                    store(&consumer, &record.source);
                }
                if paused.count() > 0 {
                    if let Err(error) = consumer.resume(&paused) {
                        tracing::warn!(%error, "cannot resume paused partitions");
                    }
                }
                health.set_ready(true);
                if stopped {
                    break;
                }
            }
        } else {
            if !detector.observe(&record, false, &shutdown).await? {
                break;
            }
            store(&consumer, &record.source);
        }
        metrics.lines_in_state.set(i64::try_from(detector.engine.remembered_lines()).unwrap_or(i64::MAX));
    }
    kafka::commit_stored_offsets(&consumer);
    health.set_ready(false);
    shutdown.cancel();
    if let Some(review) = review {
        let _ = review.await;
    }
    let _ = http.await;
    Ok(())
}

/// One record of the valid topic, owned (it may wait while others replay).
#[derive(Debug)]
struct Record {
    source: Provenance,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

struct Detector {
    codec: Codec,
    engine: RuleEngine,
    producer: rdkafka::producer::FutureProducer,
    metrics: Metrics,
    alerts: String,
    dead_letter: String,
}

impl Detector {
    /// Feeds the record to the rules; unless `replayed`, publishes what they
    /// find (or dead-letters a record that is not an enriched line). Returns
    /// false when stopped before the broker acknowledged.
    async fn observe(
        &mut self,
        record: &Record,
        replayed: bool,
        stop: &CancellationToken,
    ) -> Result<bool, DetectorError> {
        let outcome = match self.codec.decode_enriched_line(&record.payload) {
            Ok(line) => {
                let findings = self.engine.observe(&line);
                self.metrics.lines_observed.inc();
                if replayed {
                    self.metrics.lines_replayed.inc();
                    Ok(())
                } else {
                    publish(&self.producer, &self.codec, &self.alerts, findings, &self.metrics, stop).await
                }
            }
            Err(_) if replayed => Ok(()),
            Err(error) => {
                let violation = error.into_violation();
                let letter = DeadLetter::new(
                    STAGE,
                    &[violation],
                    &record.source,
                    record.key.as_deref(),
                    &record.payload,
                    now_ms(),
                );
                let encoded = self.codec.encode_dead_letter(&letter)?;
                self.metrics.dead_lettered.inc();
                let on_retry = || {
                    self.metrics.produce_retries.inc();
                };
                kafka::deliver(&self.producer, &self.dead_letter, record.key.as_deref(), &encoded, stop, on_retry).await
            }
        };
        Ok(outcome.is_ok())
    }
}

/// Stores the offset of a record whose findings are acknowledged.
fn store<C: Consumer<kafka::LagContext>>(consumer: &C, source: &Provenance) {
    kafka::store_processed(consumer, &source.topic, source.partition, source.offset);
}

/// Publishes findings, each keyed by its id, and waits for every ack.
async fn publish(
    producer: &rdkafka::producer::FutureProducer,
    codec: &Codec,
    topic: &str,
    findings: Vec<distans_domain::rules::Finding>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<(), Stopped> {
    for finding in findings {
        let timed = TimedFinding { finding, detected_at_ms: now_ms() };
        let payload = codec.encode_finding(&timed).map_err(|error| {
            tracing::error!(%error, "cannot encode a finding (a bug); stopping");
            Stopped
        })?;
        let on_retry = || {
            metrics.produce_retries.inc();
        };
        kafka::deliver(producer, topic, Some(timed.finding.finding_id.as_bytes()), &payload, stop, on_retry).await?;
        let f = &timed.finding;
        metrics.findings.get_or_create(&metrics::RuleLabels { rule: f.rule_id.clone() }).inc();
        tracing::info!(rule = %f.rule_id, finding = %f.finding_id, provider = %f.provider_org_number,
            amount_at_stake_ore = f.amount_at_stake_ore, "finding published");
    }
    Ok(())
}
