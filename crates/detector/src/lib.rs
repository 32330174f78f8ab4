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
//! acknowledged by the broker, and every line read before it is settled.
//! Publishing is pipelined (see `in_flight`): up to
//! `detector.max_in_flight` lines' findings are on their way at once, with
//! no wait per line, but two versions of one finding never are.

mod in_flight;
mod metrics;
mod replay;
pub mod review;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_domain::rules::{Change, RuleEngine};
use distans_domain::{ReasonCode, Violation};
use distans_runtime::kafka::{self, Stopped};
use distans_runtime::service::{start_then_run, ServiceError, DRAIN_TIMEOUT};
use distans_runtime::telemetry::Server;
use distans_runtime::{now_ms, Health, Settings};
use distans_wire::{Codec, DeadLetter, TimedFinding, REVISION_HEADER};

use in_flight::InFlight;
pub use metrics::Metrics;
use replay::{Replay, Step};

const STAGE: &str = "detector";

/// Runs the detector until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), ServiceError> {
    start_then_run(Detector::start(&settings, shutdown), Detector::run).await
}

/// A running detector: its consumer, its rules, and the replay that
/// rebuilds their state at start.
pub struct Detector {
    /// Assigned every partition of `topics.valid` from its beginning; the
    /// group only commits offsets, stored once a line's findings are acked.
    consumer: kafka::Input,
    /// The rules, and where their findings and dead letters go.
    rules: Rules,
    /// Which records replay, which are live and which wait.
    replay: Replay,
    metrics: Metrics,
    /// Cancelled on SIGINT/SIGTERM, and by the detector when it stops.
    shutdown: CancellationToken,
    /// The /healthz and /metrics server, ready once the state is rebuilt,
    /// until the drain.
    http: Server,
    /// The rules judged in ClickHouse (see `review`), if enabled; stopped by `shutdown`.
    review: Option<JoinHandle<()>>,
    /// Live records' publications awaiting the broker, in read order.
    in_flight: InFlight<Published>,
    /// Stops the publications in flight: cancelled once the drain has given
    /// them [`DRAIN_TIMEOUT`] (not at `shutdown`, so that acks on their way
    /// still store their offsets).
    publish_stop: CancellationToken,
    /// A publication was stopped: no later offset may be stored.
    failed: bool,
}

/// A live record's publication, settled.
struct Published {
    source: Provenance,
    outcome: Result<(), Stopped>,
}

/// What the detector does next.
enum Next {
    Stop,
    Settle(Published),
    Judge(Record),
}

impl Detector {
    /// Starts up: serves /healthz and /metrics, creates the topics that are
    /// missing, assigns every partition of `topics.valid` from its
    /// beginning, and starts the review. Ready at once when there is nothing
    /// to replay. Errors: Kafka, the http listener, or
    /// [`ServiceError::NoPartitions`].
    pub async fn start(settings: &Settings, shutdown: CancellationToken) -> Result<Detector, ServiceError> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let http = Server::start(settings.detector.http_listen, "detector.http_listen", registry, &shutdown).await?;
        let topics = &settings.topics;
        kafka::connect(&settings.kafka, &shutdown).await?;
        kafka::ensure_topics(&settings.kafka, &[&topics.valid, &topics.alerts, &topics.dead_letter]).await?;
        let consumer = kafka::Input::new(&settings.kafka, &settings.detector.group_id, metrics.consumer.clone())?;
        let producer = kafka::producer(&settings.kafka)?;

        http.health.watch(consumer.watch());
        let replay = Replay::new(assign_from_beginning(&consumer, &topics.valid)?);
        let replaying = replay.is_replaying();
        metrics.replaying.set(i64::from(replaying));
        if replaying {
            http.health
                .set_not_ready("replaying the valid lines up to the committed offsets, to rebuild the rules' state");
        } else {
            http.health.set_ready();
        }
        tracing::info!(topic = %topics.valid, replay_until = ?replay.until(), "detector running; rebuilding state up to the committed offsets");

        let rules = Rules {
            engine: RuleEngine::new(settings.detector.rules.clone()),
            outlet: Arc::new(Outlet {
                codec: Codec::embedded(),
                producer,
                metrics: metrics.clone(),
                alerts: topics.alerts.clone(),
                dead_letter: topics.dead_letter.clone(),
                max_record_bytes: settings.kafka.max_record_bytes,
            }),
        };
        let review = spawn_review(settings, &rules.outlet, &http.health, &shutdown);
        let in_flight = InFlight::new(settings.detector.max_in_flight);
        Ok(Detector {
            consumer,
            rules,
            replay,
            metrics,
            shutdown,
            http,
            review,
            in_flight,
            publish_stop: CancellationToken::new(),
            failed: false,
        })
    }

    /// Judges records until `shutdown` is cancelled or a finding cannot be
    /// published (stopping); then drains. Errors: none today (the
    /// `Result` is kept for the callers).
    pub async fn run(mut self) -> Result<(), ServiceError> {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => Next::Stop,
                Some(published) = self.in_flight.next(), if !self.in_flight.is_empty() => Next::Settle(published),
                message = self.consumer.recv(), if self.in_flight.has_room() => Next::Judge(Record::from(&message)),
            };
            let record = match next {
                Next::Stop => break,
                Next::Settle(published) => {
                    if !self.settle(published) {
                        break;
                    }
                    continue;
                }
                Next::Judge(record) => record,
            };
            match self.replay.step(&record.source) {
                Step::Hold => {
                    self.hold(record);
                    continue;
                }
                Step::Replay => {
                    self.rules.replay(&record);
                    if self.replay.replayed(&record.source) && !self.go_live().await {
                        break;
                    }
                }
                Step::Live => {
                    if !self.judge_live(record).await {
                        break;
                    }
                }
            }
            self.metrics.lines_in_state.set(i64::try_from(self.rules.engine.remembered_lines()).unwrap_or(i64::MAX));
        }
        self.drain().await;
        Ok(())
    }

    /// Judges a live record and starts publishing what it finds (or its
    /// dead letter), once there is room in flight and none of its finding
    /// ids is in flight any more (settling earlier records meanwhile).
    /// Returns false when stopping: `shutdown`, or a publication stopped.
    async fn judge_live(&mut self, record: Record) -> bool {
        let judged = self.rules.judge(&record);
        let ids: Vec<String> = match &judged {
            Judged::Findings(changes) => changes.iter().map(|c| c.finding.finding_id.clone()).collect(),
            Judged::DeadLetter(_) => Vec::new(),
        };
        while !self.in_flight.has_room() || self.in_flight.holds_any(ids.iter().map(String::as_str)) {
            if !self.settle_next().await {
                return false;
            }
        }
        if matches!(&judged, Judged::Findings(f) if f.is_empty()) && self.in_flight.is_empty() {
            // Nothing to publish and nothing before it in flight.
            self.store(&record.source);
            return true;
        }
        let (outlet, stop) = (self.rules.outlet.clone(), self.publish_stop.clone());
        let publishing = async move {
            let outcome = match judged {
                Judged::Findings(findings) if findings.is_empty() => Ok(()),
                Judged::Findings(findings) => outlet.publish(findings, &record.source, &stop).await,
                Judged::DeadLetter(violation) => {
                    outlet.dead_letter(violation, &record.source, record.key.as_deref(), &record.payload, &stop).await
                }
            };
            Published { source: record.source, outcome }
        };
        self.in_flight.push(ids, Box::pin(publishing));
        self.metrics.in_flight.set(i64::try_from(self.in_flight.len()).unwrap_or(i64::MAX));
        true
    }

    /// Waits for the earliest publication in flight and settles it. Returns
    /// false when stopping: `shutdown`, or the publication was stopped.
    async fn settle_next(&mut self) -> bool {
        let published = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return false,
            published = self.in_flight.next() => published,
        };
        published.is_none_or(|published| self.settle(published))
    }

    /// A settled publication: its record's offset is stored (every record
    /// before it is settled). Returns false when it was stopped; then no
    /// later offset is stored.
    fn settle(&mut self, published: Published) -> bool {
        self.metrics.in_flight.set(i64::try_from(self.in_flight.len()).unwrap_or(i64::MAX));
        if published.outcome.is_err() {
            self.failed = true;
        }
        if self.failed {
            return false;
        }
        self.store(&published.source);
        true
    }

    /// Keeps a live record read while replaying, pausing its partition.
    fn hold(&mut self, record: Record) {
        if self.replay.hold(record) {
            if let Err(error) = self.consumer.consumer().pause(&self.replay.paused()) {
                tracing::warn!(%error, "cannot pause a partition; holding its records in memory");
            }
        }
    }

    /// The state is rebuilt: judges the held records, resumes their
    /// partitions and reports ready. Returns false when stopping.
    async fn go_live(&mut self) -> bool {
        self.metrics.replaying.set(0);
        tracing::info!(
            lines = self.metrics.lines_replayed.get(),
            seconds = self.replay.elapsed().as_secs_f64(),
            held = self.replay.held(),
            "state rebuilt from the topic"
        );
        let mut stopped = false;
        for record in self.replay.release() {
            if !self.judge_live(record).await {
                stopped = true;
                break;
            }
        }
        let paused = self.replay.paused();
        if paused.count() > 0 {
            if let Err(error) = self.consumer.consumer().resume(&paused) {
                tracing::warn!(%error, "cannot resume paused partitions");
            }
        }
        self.http.health.set_ready();
        !stopped
    }

    /// Stopping: gives the publications in flight [`DRAIN_TIMEOUT`] to be
    /// acknowledged, so that their offsets are stored (what is not acked is
    /// read again and published again under the same ids), commits the
    /// stored offsets, reports not ready, and waits for the review and the
    /// http server to stop.
    async fn drain(mut self) {
        let in_flight = self.in_flight.len();
        let acked = async {
            while let Some(published) = self.in_flight.next().await {
                if !self.settle(published) {
                    break;
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, acked).await.is_err() {
            tracing::warn!(in_flight, "findings still unacked at shutdown; their lines will be read again");
        }
        self.publish_stop.cancel();
        self.consumer.commit_stored_offsets();
        self.http.stop().await;
        if let Some(review) = self.review {
            let _ = review.await;
        }
    }

    /// Stores the offset of a record whose findings are acknowledged.
    fn store(&self, source: &Provenance) {
        self.consumer.store_processed(&source.topic, source.partition, source.offset);
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("replay_until", self.replay.until())
            .field("held", &self.replay.held())
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Assigns every partition of `topic` from its beginning and returns where
/// the committed offsets are (partition → offset): below them, lines only
/// rebuild the state.
/// A committed offset past the end of the log (see [`replay::replay_end`])
/// is logged and counted as an offset reset.
fn assign_from_beginning(input: &kafka::Input, topic: &str) -> Result<BTreeMap<i32, i64>, ServiceError> {
    let consumer = input.consumer();
    let (assignment, replay_until) = tokio::task::block_in_place(|| -> Result<_, ServiceError> {
        let partitions = input.partitions(topic)?;
        let mut wanted = TopicPartitionList::new();
        for p in &partitions {
            wanted.add_partition(topic, *p);
        }
        let committed = consumer.committed_offsets(wanted, Duration::from_secs(10))?;
        let mut replay_until = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            let (low, high) = consumer.fetch_watermarks(topic, *p, Duration::from_secs(10))?;
            let committed_offset = committed.find_partition(topic, *p).map(|e| e.offset());
            if replay::is_past_the_end(committed_offset, high) {
                input.count_offset_reset();
                tracing::warn!(
                    %topic, partition = *p, committed = ?committed_offset, low, high,
                    "committed offset past the end of the log (topic recreated?): nothing to replay, every record is live"
                );
            }
            if let Some(until) = replay::replay_end(committed_offset, low, high) {
                replay_until.insert(*p, until);
            }
            assignment.add_partition_offset(topic, *p, Offset::Beginning)?;
        }
        Ok((assignment, replay_until))
    })?;
    input.assign(&assignment)?;
    Ok(replay_until)
}

/// Starts the rules judged in ClickHouse over the aggregates (see
/// `review`), unless `detector.review_interval_ms` is 0.
fn spawn_review(
    settings: &Settings,
    outlet: &Arc<Outlet>,
    health: &Health,
    shutdown: &CancellationToken,
) -> Option<JoinHandle<()>> {
    (settings.detector.review_interval_ms > 0).then(|| {
        let db = distans_store::database(&settings.clickhouse);
        let (outlet, stop) = (outlet.clone(), shutdown.clone());
        // A review finding stands for no input record.
        let source = Provenance { topic: "review".to_string(), partition: -1, offset: -1 };
        let publisher = async move |findings| outlet.publish(findings, &source, &stop).await.is_ok();
        tokio::spawn(review::run(
            db,
            Duration::from_millis(settings.detector.review_interval_ms),
            settings.detector.rules.disabled.clone(),
            publisher,
            health.clone(),
            shutdown.clone(),
        ))
    })
}

/// One record of the valid topic, owned (it may wait while others replay).
#[derive(Debug)]
struct Record {
    source: Provenance,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl From<&BorrowedMessage<'_>> for Record {
    fn from(message: &BorrowedMessage<'_>) -> Record {
        Record {
            source: kafka::provenance(message),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }
}

/// The rules, and where what they find goes.
struct Rules {
    engine: RuleEngine,
    outlet: Arc<Outlet>,
}

/// What a live record comes to.
enum Judged {
    /// How the active findings changed (often nothing).
    Findings(Vec<Change>),
    /// Not an enriched line: its dead letter's reason.
    DeadLetter(Violation),
}

/// Where findings and dead letters go.
struct Outlet {
    codec: Codec,
    producer: kafka::Producer,
    metrics: Metrics,
    alerts: String,
    dead_letter: String,
    /// `kafka.max_record_bytes`: a dead letter is cut to fit.
    max_record_bytes: usize,
}

impl Rules {
    /// Feeds a record below its partition's committed offset to the rules
    /// (what they find was published before; a record that does not decode
    /// was dead-lettered before).
    fn replay(&mut self, record: &Record) {
        if let Ok(line) = self.outlet.codec.decode_enriched_line(&record.payload) {
            self.engine.observe(&line);
            self.outlet.metrics.lines_observed.inc();
            self.outlet.metrics.lines_replayed.inc();
        }
    }

    /// Feeds a live record to the rules: what they find now, or why the
    /// record is not an enriched line.
    fn judge(&mut self, record: &Record) -> Judged {
        match self.outlet.codec.decode_enriched_line(&record.payload) {
            Ok(line) => {
                let changes = self.engine.changes(&line);
                self.outlet.metrics.lines_observed.inc();
                Judged::Findings(changes)
            }
            Err(error) => Judged::DeadLetter(error.into_violation()),
        }
    }
}

impl Outlet {
    /// Publishes findings, each keyed by its id (a revision with the
    /// [`REVISION_HEADER`]), and waits for every ack. A
    /// finding the broker refuses for good (e.g. larger than
    /// `kafka.max_record_bytes`) becomes a dead letter that carries it (its
    /// source: the line that led to it), so nothing is dropped unseen.
    async fn publish(
        &self,
        changes: Vec<Change>,
        source: &Provenance,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        for Change { finding, revises } in changes {
            let timed = TimedFinding { finding, detected_at_ms: now_ms() };
            let payload = self.codec.encode_finding(&timed).map_err(|error| {
                tracing::error!(%error, "cannot encode a finding (a bug); stopping");
                Stopped
            })?;
            let on_retry = || {
                self.metrics.produce_retries.inc();
            };
            let f = &timed.finding;
            let key = f.finding_id.as_bytes();
            let headers: &[(&str, &[u8])] = if revises { &[(REVISION_HEADER, b"1")] } else { &[] };
            match kafka::deliver_with_headers(
                &self.producer,
                &self.alerts,
                Some(key),
                &payload,
                headers,
                stop,
                on_retry,
            )
            .await
            {
                Ok(()) => {}
                Err(refused) if refused.refuses_record() => {
                    let kafka::DeliverError::Refused(error) = refused else { unreachable!("refuses_record") };
                    let code = if kafka::is_too_large(&error) {
                        ReasonCode::RecordTooLarge
                    } else {
                        ReasonCode::ProduceRefused
                    };
                    let message = format!("the broker refused finding {} ({}): {error}", f.finding_id, f.rule_id);
                    let violation = Violation::new(code, "", message);
                    self.dead_letter(violation, source, Some(key), &payload, stop).await?;
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
            self.metrics.findings.get_or_create(&metrics::RuleLabels { rule: f.rule_id.clone() }).inc();
            tracing::info!(rule = %f.rule_id, finding = %f.finding_id, provider = %f.provider_org_number,
                amount_at_stake_ore = f.amount_at_stake_ore, status = f.status.as_str(), revises, "finding published");
        }
        Ok(())
    }

    /// Sends a dead letter for `original` (cut to fit
    /// `kafka.max_record_bytes`) and counts it once acked. A dead letter the
    /// broker refuses too stops the detector (`Stopped`, logged): the
    /// dead-letter topic cannot be written, and no offset moves.
    async fn dead_letter(
        &self,
        violation: Violation,
        source: &Provenance,
        key: Option<&[u8]>,
        original: &[u8],
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let reason = violation.code;
        let letter = DeadLetter::new(STAGE, &[violation], source, key, original, now_ms());
        let room = self.max_record_bytes.saturating_sub(key.map_or(0, <[u8]>::len) + kafka::RECORD_OVERHEAD_BYTES);
        let encoded = self.codec.encode_dead_letter_within(&letter, room).map_err(|error| {
            tracing::error!(%error, "cannot encode a dead letter (a bug); stopping");
            Stopped
        })?;
        let on_retry = || {
            self.metrics.produce_retries.inc();
        };
        kafka::deliver(&self.producer, &self.dead_letter, key, &encoded, stop, on_retry).await?;
        self.metrics.dead_lettered.inc();
        tracing::warn!(%reason, topic = %source.topic, partition = source.partition, offset = source.offset,
            "record dead-lettered");
        Ok(())
    }
}
