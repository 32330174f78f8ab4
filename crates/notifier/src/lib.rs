//! The notifier: reads findings from `topics.alerts` and tells monitoring
//! staff over a webhook (generic JSON, Microsoft Teams or Slack).
//!
//! Grouped, not spammed: findings of at least `immediate_severity` are sent
//! at once, one message each; the others are collected per rule, provider
//! and day of detection and each group is sent as one digest
//! `digest_interval_ms` after its first finding was read. Pending digests
//! are durable: each is written whole, keyed by its group, to a compacted
//! topic (`<alerts>.digests.<group id>`, see [`pending`]) before the offsets of the
//! findings it holds are stored, read back at start, and deleted (a
//! tombstone) once sent; the interval counts from the persisted first-seen
//! time, so a restart neither restarts it nor sends anything again.
//!
//! Told once: a finding is published again under its id when its figures
//! change and when it is withdrawn, and which version comes when depends on
//! the order lines reached the detector. A finding still waiting in a
//! digest is updated there (whatever day the new version was detected) or
//! left out of it; a revision of one told already (the record carries
//! `distans_wire::REVISION_HEADER`) is not sent again; a withdrawal of one
//! told already, at once or in a digest, is sent as a withdrawal. So what
//! staff were told, less what was withdrawn, is what stands ([`route`]).
//!
//! A first start (the group has never committed an offset on the alerts
//! topic) tells the findings already there as ONE summary and then each
//! new finding as usual (`notifier.first_start = "summary"`, the default;
//! see [`first_start`] for its order and restart safety).
//!
//! Paced: webhook calls, retries included, are spaced to
//! `max_messages_per_second` (by default the platform's documented rate,
//! [`Format::default_messages_per_second`]), so a backlog does not burst
//! past Slack's or Teams' throttling.
//!
//! Never lost: a finding's offset is stored only once the message that
//! carries it was accepted (2xx) by the webhook or the digest that holds it
//! was acknowledged by the broker, and only in order; while the webhook is
//! down (5xx, 408, 429, no connection) the notifier retries with backoff,
//! honouring `Retry-After`, and moves no offset. A message the webhook
//! refuses for good (another 4xx: the same message would be refused again)
//! is not retried: it is counted (`webhook_refused`) and logged with the
//! status, the notifier is not ready until the webhook next accepts one,
//! it is written to `<alerts>.undelivered` (the sink writes it into
//! ClickHouse's `undelivered_alerts`) and, once the broker acked that, the
//! offset moves on. Offsets are
//! committed (synchronously) after each message sent at once, after each
//! finding written into a persisted digest and before any digest is sent,
//! so a finding already sent or digested is not read again after a crash;
//! only a crash between the webhook's 2xx (or the digest's ack) and that
//! commit (or the tombstone) sends one message twice.

pub mod first_start;
pub mod message;
mod metrics;
pub mod pacer;
pub mod pending;
pub mod route;
pub mod sender;
pub mod summary;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use distans_domain::rules::Severity;
use distans_runtime::kafka::{self, Stopped};
use distans_runtime::service::{start_then_run, ServiceError};
use distans_runtime::telemetry::Server;
use distans_runtime::Settings;
use distans_wire::{undelivered_topic, Codec, TimedFinding, UndeliveredAlert, REVISION_HEADER};

pub use distans_domain::text::Language;
pub use message::{Digest, Format, Messages};
pub use metrics::Metrics;
pub use pacer::Pacer;
pub use pending::{Group, Pending, PendingStore};
pub use route::Route;
pub use sender::{Delivery, Refusal, Sender};

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// What any service can fail with (the broker, the http server, …).
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("invalid notifier settings: {0}")]
    Settings(String),
    #[error("cannot build the http client: {0}")]
    Client(#[from] reqwest::Error),
    /// Stopped (SIGINT/SIGTERM) while starting, e.g. while sending the
    /// first start's summary.
    #[error("stopped while starting")]
    Stopped,
}

distans_runtime::service_error!(NotifierError, stopped: NotifierError::Stopped);

/// Whether a record's `headers` say it revises a finding published before
/// ([`REVISION_HEADER`] with value `1`).
fn revises(headers: Option<&rdkafka::message::BorrowedHeaders>) -> bool {
    use rdkafka::message::Headers;
    headers.is_some_and(|h| h.iter().any(|h| h.key == REVISION_HEADER && h.value == Some(b"1".as_slice())))
}

/// Offsets read but not yet delivered, per partition: stored in order, up
/// to the first one still waiting.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, BTreeMap<i64, bool>>,
}

impl OffsetTracker {
    pub fn read(&mut self, partition: i32, offset: i64) {
        self.partitions.entry(partition).or_default().insert(offset, false);
    }

    /// Marks delivered; returns the highest offset of `partition` now safe to store.
    pub fn delivered(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let offsets = self.partitions.get_mut(&partition)?;
        offsets.insert(offset, true);
        let mut safe = None;
        while let Some(entry) = offsets.first_entry() {
            if !*entry.get() {
                break;
            }
            safe = Some(*entry.key());
            entry.remove();
        }
        safe
    }
}

/// What a message is about, for the record of an undelivered one.
struct About<'a> {
    kind: &'static str,
    rule_id: &'a str,
    provider: &'a str,
    finding_ids: Vec<String>,
}

impl<'a> About<'a> {
    fn finding(kind: &'static str, timed: &'a TimedFinding) -> About<'a> {
        let f = &timed.finding;
        About { kind, rule_id: &f.rule_id, provider: &f.provider_org_number, finding_ids: vec![f.finding_id.clone()] }
    }
}

/// How long the notifier may spend at shutdown sending the digests that
/// are due; those it cannot send stay pending (persisted).
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// How often the notifier looks for digests that are due, at most.
const DUE_CHECK: Duration = Duration::from_secs(1);

/// The compacted topic holding the pending digests of the notifier group
/// `group_id` reading `alerts`: one per group, so that two notifiers with
/// their own webhooks (and groups) never overwrite each other's digests.
/// One notifier runs per group: the digests are not split by partition.
pub fn digests_topic(alerts: &str, group_id: &str) -> String {
    format!("{alerts}.digests.{group_id}")
}

/// The pace of webhook calls: `notifier.max_messages_per_second`, or the
/// format's documented rate ([`Format::default_messages_per_second`]).
/// Errors: [`NotifierError::Settings`] for an unknown format or a rate that
/// is not a positive number.
pub fn pacer(settings: &Settings) -> Result<Pacer, NotifierError> {
    let config = &settings.notifier;
    let format = Format::parse(&config.format).ok_or_else(|| NotifierError::Settings(config.format.clone()))?;
    let rate = config.max_messages_per_second.unwrap_or_else(|| format.default_messages_per_second());
    Pacer::per_second(rate).ok_or_else(|| {
        NotifierError::Settings(format!("notifier.max_messages_per_second must be positive, not {rate}"))
    })
}

/// How the notifier writes its messages, from `[notifier]` (format,
/// language, dashboard URL) and `detector.rules.home_regions` (the home
/// regions' names). Errors: [`NotifierError::Settings`] naming the bad value.
pub fn messages(settings: &Settings) -> Result<Messages, NotifierError> {
    let config = &settings.notifier;
    let format = Format::parse(&config.format).ok_or_else(|| NotifierError::Settings(config.format.clone()))?;
    let language = Language::parse(&config.language).ok_or_else(|| NotifierError::Settings(config.language.clone()))?;
    let dashboard = match config.dashboard_url.as_str() {
        "" => None,
        url => Some(
            reqwest::Url::parse(url)
                .map_err(|e| NotifierError::Settings(format!("notifier.dashboard_url {url:?}: {e}")))?,
        ),
    };
    let regions = settings
        .detector
        .rules
        .home_regions
        .iter()
        .filter_map(|(org, county)| {
            distans_domain::codes::region_name(county).map(|name| (org.clone(), name.to_string()))
        })
        .collect();
    Ok(Messages { format, language, dashboard, regions })
}

/// Runs the notifier until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), NotifierError> {
    start_then_run(Notifier::start(&settings, shutdown), |notifier| async move {
        notifier.run().await;
        Ok(())
    })
    .await
}

/// A running notifier: its consumer and webhook, and the findings that
/// wait for the next digest.
#[derive(Debug)]
pub struct Notifier {
    /// Reads `topics.alerts`; offsets are stored only once delivered, in order.
    consumer: kafka::Input,
    /// Posts to the webhook, retrying until it accepts (2xx).
    sender: Sender,
    /// How messages are written: format, language, dashboard link.
    messages: Messages,
    /// Findings of at least this severity are sent at once, one message each.
    immediate: Severity,
    /// A digest is sent this long after its first finding was read.
    digest_interval: Duration,
    codec: Codec,
    /// Offsets read but not yet delivered.
    tracker: OffsetTracker,
    /// The findings below `immediate` not sent yet, per group; each as
    /// persisted in `store`.
    digests: BTreeMap<Group, Pending>,
    /// Where `digests` are persisted.
    pending_store: PendingStore,
    /// `<alerts>.undelivered`: the messages the webhook refused for good.
    undelivered_topic: String,
    metrics: Metrics,
    /// Cancelled on SIGINT/SIGTERM, and by the notifier when it stops.
    shutdown: CancellationToken,
    /// The /healthz and /metrics server, ready while the webhook accepts
    /// (the sender sets it).
    http: Server,
}

/// One record of the alerts topic, owned.
struct Received {
    topic: String,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
    /// It carries the [`REVISION_HEADER`]: it revises a finding published before.
    revises: bool,
}

impl Notifier {
    /// Starts up: checks the settings, serves /healthz and /metrics, creates
    /// the alerts topic if missing, subscribes to it, then reports ready.
    /// Errors: [`NotifierError::Settings`] for an empty webhook URL, or a
    /// format or severity it does not know.
    pub async fn start(settings: &Settings, shutdown: CancellationToken) -> Result<Notifier, NotifierError> {
        let config = &settings.notifier;
        if config.webhook_url.is_empty() {
            return Err(NotifierError::Settings("notifier.webhook_url is empty".into()));
        }
        let messages = messages(settings)?;
        let pacer = pacer(settings)?;
        let immediate = Severity::parse(&config.immediate_severity)
            .ok_or_else(|| NotifierError::Settings(config.immediate_severity.clone()))?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let http = Server::start(config.http_listen, "notifier.http_listen", registry, &shutdown).await?;
        kafka::connect(&settings.kafka, &shutdown).await?;
        let undelivered_topic = undelivered_topic(&settings.topics.alerts);
        kafka::ensure_topics(&settings.kafka, &[&settings.topics.alerts, &undelivered_topic]).await?;
        // Before subscribing: the digests pending are known before any
        // finding is read again.
        let (store, digests, marker) =
            PendingStore::open(&settings.kafka, &digests_topic(&settings.topics.alerts, &config.group_id)).await?;
        metrics.pending_digests.set(i64::try_from(digests.len()).unwrap_or(i64::MAX));
        let consumer = kafka::Input::new(&settings.kafka, &config.group_id, metrics.consumer.clone())?;
        let sender =
            Sender::new(config.webhook_url.expose(), metrics.clone(), http.health.clone())?.paced(pacer.clone());
        let summarise = match config.first_start.as_str() {
            "summary" => true,
            "all" => false,
            other => return Err(NotifierError::Settings(format!("notifier.first_start {other:?}"))),
        };
        let notifier = Notifier {
            consumer,
            sender,
            messages,
            immediate,
            digest_interval: Duration::from_millis(config.digest_interval_ms),
            codec: Codec::embedded(),
            tracker: OffsetTracker::default(),
            digests,
            pending_store: store,
            undelivered_topic,
            metrics,
            shutdown,
            http,
        };
        if summarise {
            notifier.first_start(&settings.kafka, &settings.topics.alerts, marker).await?;
        } else if marker.is_some() {
            // Left by a start with first_start = "summary": its end was
            // committed or will never be; nothing to resume.
            notifier.pending_store.delete_marker(&notifier.shutdown).await.map_err(|_| NotifierError::Stopped)?;
        }
        notifier.consumer.consumer().subscribe(&[&settings.topics.alerts])?;
        notifier.http.health.watch(notifier.consumer.watch());
        notifier.http.health.set_ready();
        tracing::info!(topic = %settings.topics.alerts, format = %config.format,
            spacing_ms = pacer.spacing().as_millis() as u64, "notifier running");
        Ok(notifier)
    }

    /// A first start with `first_start = "summary"`: the findings already
    /// in the alerts topic as one summary, the backlog's end committed (see
    /// [`first_start`] for the order and what a crash at each step does).
    /// Nothing to do when the group has committed offsets.
    async fn first_start(
        &self,
        kafka_settings: &distans_runtime::config::KafkaSettings,
        topic: &str,
        marker: Option<Result<first_start::Marker, serde_json::Error>>,
    ) -> Result<(), NotifierError> {
        let consumer = self.consumer.consumer();
        let start = tokio::task::block_in_place(|| first_start::inspect(consumer, topic))?;
        let stop = &self.shutdown;
        let ranges = match (start, marker) {
            (first_start::Start::Resumed, None) => return Ok(()),
            (first_start::Start::Resumed, Some(_)) => {
                // Killed after the commit, before the tombstone.
                self.pending_store.delete_marker(stop).await.map_err(|_| NotifierError::Stopped)?;
                return Ok(());
            }
            (first_start::Start::First { .. }, Some(marker)) => {
                let ends = match marker {
                    Ok(marker) => {
                        tracing::warn!(findings = marker.findings, amount_at_stake_ore = marker.amount_at_stake_ore,
                            "the previous first start stopped while sending its summary: whether the webhook took it is \
                             unknown, so it is not sent again (at most once); the findings are in the dashboard. \
                             Findings published since are delivered one by one");
                        marker.ends
                    }
                    Err(error) => {
                        // Cannot happen unless the topic was written by
                        // another program; the backlog's end is lost, so
                        // the watermarks of now stand in for it.
                        tracing::error!(%error, "first-start marker cannot be read; taking today's end as the backlog's");
                        match tokio::task::block_in_place(|| first_start::inspect(consumer, topic))? {
                            first_start::Start::First { ranges } => first_start::ends(&ranges),
                            first_start::Start::Resumed => BTreeMap::new(),
                        }
                    }
                };
                tokio::task::block_in_place(|| first_start::commit(consumer, topic, &ends))?;
                self.pending_store.delete_marker(stop).await.map_err(|_| NotifierError::Stopped)?;
                return Ok(());
            }
            (first_start::Start::First { ranges }, None) => ranges,
        };
        let ends = first_start::ends(&ranges);
        let summary = tokio::select! {
            summary = first_start::read_backlog(kafka_settings, topic, &ranges, &self.codec) => summary?,
            () = stop.cancelled() => return Err(NotifierError::Stopped),
        };
        if !summary.is_empty() {
            let marker = first_start::Marker {
                ends: ends.clone(),
                findings: summary.findings,
                amount_at_stake_ore: summary.amount_at_stake_ore,
            };
            self.pending_store.save_marker(&marker, stop).await.map_err(|_| NotifierError::Stopped)?;
            let about = About { kind: "summary", rule_id: "", provider: "", finding_ids: Vec::new() };
            let message = self.messages.summary(&summary);
            if self.deliver(&message, about, stop).await.map_err(|_| NotifierError::Stopped)? {
                self.metrics.summaries.inc();
            }
        }
        tokio::task::block_in_place(|| first_start::commit(consumer, topic, &ends))?;
        if !summary.is_empty() {
            self.pending_store.delete_marker(stop).await.map_err(|_| NotifierError::Stopped)?;
        }
        tracing::info!(open = summary.findings, withdrawn = summary.withdrawn, ends = ?ends,
            sent = !summary.is_empty(), "first start: backlog summarised; reading on from its end");
        Ok(())
    }

    /// Reads findings and sends them (at once or in the next digest) until
    /// `shutdown` is cancelled; then drains.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.digest_interval.min(DUE_CHECK));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let delivered = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let stop = self.shutdown.clone();
                    self.send_due_digests(&stop).await
                }
                message = self.consumer.recv() => {
                    let received = Received {
                        topic: message.topic().to_string(),
                        partition: message.partition(),
                        offset: message.offset(),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        revises: revises(message.headers()),
                    };
                    self.handle(received).await
                }
            };
            if delivered.is_err() {
                break;
            }
        }
        self.drain().await;
    }

    /// Sends the digests whose period has ended, each then deleted from
    /// the store. The offsets of their findings were stored when they were
    /// persisted; they are committed first, so that a crash after the send
    /// does not read those findings again into a new digest.
    async fn send_due_digests(&mut self, stop: &CancellationToken) -> Result<(), Stopped> {
        let now = Utc::now().timestamp_millis();
        let due: Vec<Group> =
            self.digests.iter().filter(|(_, p)| p.is_due(now, self.digest_interval)).map(|(g, _)| g.clone()).collect();
        if due.is_empty() {
            return Ok(());
        }
        self.commit_now();
        for group in due {
            let Some(pending) = self.digests.get(&group) else { continue };
            let d = &pending.digest;
            let about = About {
                kind: "digest",
                rule_id: &d.rule_id,
                provider: &d.provider_org_number,
                finding_ids: d.finding_ids(),
            };
            if self.deliver(&self.messages.digest(d), about, stop).await? {
                self.metrics.digests.inc();
            }
            // The tombstone is the "sent" mark: one record, so a digest is
            // either pending or gone.
            self.pending_store.delete(&group, stop).await?;
            self.digests.remove(&group);
            self.set_pending_gauge();
        }
        Ok(())
    }

    /// Does what [`route::route`] says with a finding (a revision when
    /// `revises`): sends it at once, writes it into its group's digest (or
    /// updates it in the digest it waits in), leaves a withdrawn one out of
    /// its digest, sends a withdrawal, or nothing for a revision of a
    /// finding told already; stores the offset of a record that is not a
    /// finding at once.
    async fn handle(&mut self, record: Received) -> Result<(), Stopped> {
        let Received { topic, partition, offset, payload, revises } = record;
        self.tracker.read(partition, offset);
        let timed = match self.codec.decode_finding(&payload) {
            Ok(t) => t,
            Err(error) => {
                // Not a finding: nothing to tell anyone; say so loudly and move on.
                self.metrics.undecodable.inc();
                tracing::error!(%error, partition, offset, "record on the alerts topic is not a finding");
                self.store(&topic, partition, offset);
                return Ok(());
            }
        };
        self.metrics.findings.inc();
        let route = route::route(&self.digests, &timed, revises, self.immediate);
        match route {
            Route::Now | Route::Withdrawal => {
                let (kind, message, sent) = if route == Route::Now {
                    ("finding", self.messages.finding(&timed), &self.metrics.immediate)
                } else {
                    ("withdrawal", self.messages.withdrawal(&timed), &self.metrics.withdrawals)
                };
                if self.deliver(&message, About::finding(kind, &timed), &self.shutdown).await? {
                    sent.inc();
                }
                self.store(&topic, partition, offset);
                self.commit_now();
            }
            Route::Told => {
                // Staff were told of it; its new figures are in the dashboard.
                self.metrics.revisions_not_sent.inc();
                tracing::debug!(finding = %timed.finding.finding_id, rule = %timed.finding.rule_id,
                    "a finding told already was revised: not sent again");
                self.store(&topic, partition, offset);
            }
            Route::Digest(group) => {
                let now = Utc::now().timestamp_millis();
                let mut pending = self.digests.get(&group).cloned().unwrap_or_else(|| {
                    let day = group.2.parse().unwrap_or_default();
                    Pending { digest: Digest::new(&timed, day), first_seen_ms: now }
                });
                pending.digest.add(&timed);
                // Persisted first, then the offset: a finding is in Kafka's
                // alerts topic or in a durable digest, never in neither.
                self.pending_store.save(&group, &pending, &self.shutdown).await?;
                self.metrics.persisted.inc();
                self.digests.insert(group, pending);
                self.set_pending_gauge();
                self.store(&topic, partition, offset);
                // Committed now, not at the next auto-commit: a notifier killed
                // in between and restarted sends the persisted digest when due,
                // and would then read the finding again into a new digest.
                self.commit_now();
            }
            Route::LeaveOut(groups) => {
                // Withdrawn while waiting in a digest: left out of it (a
                // digest left empty is not sent, its record is deleted).
                for group in groups {
                    let Some(mut pending) = self.digests.get(&group).cloned() else { continue };
                    pending.digest.withdraw(&timed.finding.finding_id);
                    if pending.digest.findings == 0 {
                        self.pending_store.delete(&group, &self.shutdown).await?;
                        self.digests.remove(&group);
                    } else {
                        self.pending_store.save(&group, &pending, &self.shutdown).await?;
                        self.digests.insert(group, pending);
                    }
                    self.set_pending_gauge();
                }
                self.store(&topic, partition, offset);
            }
        }
        Ok(())
    }

    /// Stopping: sends the digests that are due, for at most
    /// [`SHUTDOWN_FLUSH`] (the others stay persisted: sending them early
    /// would split a day's digest at every restart), commits the stored
    /// offsets (undelivered findings are read again), reports not ready and
    /// stops the http server.
    async fn drain(mut self) {
        let deadline = CancellationToken::new();
        let cancel = deadline.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(SHUTDOWN_FLUSH).await;
            cancel.cancel();
        });
        if self.send_due_digests(&deadline).await.is_err() {
            tracing::warn!(
                pending = self.digests.len(),
                "shutdown: due digests not all sent in time; they stay pending"
            );
        }
        timer.abort();
        self.consumer.commit_stored_offsets();
        tracing::info!(pending = self.digests.len(), "notifier stopped; pending digests kept");
        self.http.stop().await;
    }

    /// Sends `message`; returns whether the webhook accepted it. One it
    /// refused for good is written, with the refusal, to
    /// `<alerts>.undelivered` (acked by the broker before this returns, so
    /// before the finding's offset moves), for the sink to write into
    /// ClickHouse's `undelivered_alerts`.
    async fn deliver(
        &self,
        message: &serde_json::Value,
        about: About<'_>,
        stop: &CancellationToken,
    ) -> Result<bool, Stopped> {
        match self.sender.send(message, stop).await? {
            Delivery::Accepted => Ok(true),
            Delivery::Refused(refusal) => {
                let alert = UndeliveredAlert {
                    kind: about.kind.to_string(),
                    rule_id: about.rule_id.to_string(),
                    provider_org_number: about.provider.to_string(),
                    finding_ids: about.finding_ids,
                    status: refusal.status.as_u16(),
                    answer: refusal.answer,
                    message: message.to_string(),
                    refused_at_ms: Utc::now().timestamp_millis(),
                };
                self.pending_store.write_undelivered(&self.undelivered_topic, &alert, stop).await?;
                self.metrics.undelivered.inc();
                Ok(false)
            }
        }
    }

    /// Commits the stored offsets now, waiting for the broker.
    fn commit_now(&self) {
        tokio::task::block_in_place(|| self.consumer.commit_stored_offsets());
    }

    fn set_pending_gauge(&self) {
        self.metrics.pending_digests.set(i64::try_from(self.digests.len()).unwrap_or(i64::MAX));
    }

    /// Marks a finding delivered and stores the offsets now safe to store.
    fn store(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(safe) = self.tracker.delivered(partition, offset) {
            self.consumer.store_processed(topic, partition, safe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stored_in_order_only() {
        let mut t = OffsetTracker::default();
        for offset in 10..15 {
            t.read(0, offset);
        }
        t.read(1, 3);
        assert_eq!(t.delivered(0, 12), None, "10 and 11 still wait");
        assert_eq!(t.delivered(0, 10), Some(10));
        assert_eq!(t.delivered(1, 3), Some(3));
        assert_eq!(t.delivered(0, 11), Some(12), "11 completes the run up to 12");
        assert_eq!(t.delivered(0, 14), None);
        assert_eq!(t.delivered(0, 13), Some(14));
    }
}
