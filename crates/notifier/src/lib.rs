//! The notifier: reads findings from `topics.alerts` and tells monitoring
//! staff over a webhook (generic JSON, Microsoft Teams or Slack).
//!
//! Grouped, not spammed: findings of at least `immediate_severity` are sent
//! at once, one message each; the others are collected per rule, provider
//! and day of detection and each group is sent as one digest every
//! `digest_interval_ms`. Never lost: a finding's offset is stored only once
//! the message that carries it was accepted (2xx) by the webhook, and only
//! in order; while the webhook is down the notifier retries with backoff
//! and moves no offset. After a crash, messages sent but not yet committed
//! are sent again: people may see a digest twice, never miss one.

pub mod message;
mod metrics;
pub mod sender;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::DateTime;
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use distans_domain::rules::{FindingStatus, Severity};
use distans_runtime::kafka::{self, Stopped};
use distans_runtime::telemetry::Server;
use distans_runtime::Settings;
use distans_wire::{Codec, TimedFinding};

pub use message::{Digest, Format};
pub use metrics::Metrics;
pub use sender::Sender;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot serve http: {0}")]
    Http(#[from] std::io::Error),
    #[error("invalid notifier settings: {0}")]
    Settings(String),
    #[error("cannot build the http client: {0}")]
    Client(#[from] reqwest::Error),
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

/// A digest's group: rule, provider org number, day of detection.
type Group = (String, String, String);
/// Where a finding was read: topic, partition, offset.
type Position = (String, i32, i64);

/// Runs the notifier until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), NotifierError> {
    Notifier::start(&settings, shutdown).await?.run().await;
    Ok(())
}

/// A running notifier: its consumer and webhook, and the findings that
/// wait for the next digest.
#[derive(Debug)]
pub struct Notifier {
    /// Reads `topics.alerts`; offsets are stored only once delivered, in order.
    consumer: kafka::Input,
    /// Posts to the webhook, retrying until it accepts (2xx).
    sender: Sender,
    /// The webhook's message format.
    format: Format,
    /// Findings of at least this severity are sent at once, one message each.
    immediate: Severity,
    /// How often the digests are sent.
    digest_interval: Duration,
    codec: Codec,
    /// Offsets read but not yet delivered.
    tracker: OffsetTracker,
    /// The findings below `immediate` collected since the last tick, per
    /// group, with where each was read.
    digests: BTreeMap<Group, (Digest, Vec<Position>)>,
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
        let format = Format::parse(&config.format).ok_or_else(|| NotifierError::Settings(config.format.clone()))?;
        let immediate = Severity::parse(&config.immediate_severity)
            .ok_or_else(|| NotifierError::Settings(config.immediate_severity.clone()))?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let http = Server::start(config.http_listen, registry, &shutdown).await?;
        kafka::ensure_topics(&settings.kafka, &[&settings.topics.alerts]).await?;
        let consumer = kafka::Input::new(&settings.kafka, &config.group_id, metrics.consumer.clone())?;
        consumer.consumer().subscribe(&[&settings.topics.alerts])?;
        http.health.watch(consumer.watch());
        let sender = Sender::new(&config.webhook_url, metrics.clone(), http.health.clone())?;
        http.health.set_ready(true);
        tracing::info!(topic = %settings.topics.alerts, format = %config.format, "notifier running");
        Ok(Notifier {
            consumer,
            sender,
            format,
            immediate,
            digest_interval: Duration::from_millis(config.digest_interval_ms),
            codec: Codec::embedded(),
            tracker: OffsetTracker::default(),
            digests: BTreeMap::new(),
            metrics,
            shutdown,
            http,
        })
    }

    /// Reads findings and sends them (at once or in the next digest) until
    /// `shutdown` is cancelled; then drains.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.digest_interval);
        tick.tick().await;
        loop {
            let delivered = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => self.send_digests().await,
                message = self.consumer.recv() => {
                    let received = Received {
                        topic: message.topic().to_string(),
                        partition: message.partition(),
                        offset: message.offset(),
                        payload: message.payload().unwrap_or_default().to_vec(),
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

    /// Sends every digest collected since the last tick and stores the
    /// offsets of the findings it carries.
    async fn send_digests(&mut self) -> Result<(), Stopped> {
        for (_, (digest, offsets)) in std::mem::take(&mut self.digests) {
            self.sender.send(&message::digest(self.format, &digest), &self.shutdown).await?;
            self.metrics.digests.inc();
            for (topic, partition, offset) in offsets {
                self.store(&topic, partition, offset);
            }
        }
        Ok(())
    }

    /// Sends a finding of at least `immediate` severity at once, or adds it
    /// to its group's digest; stores the offset of a record that is not a
    /// finding at once.
    async fn handle(&mut self, record: Received) -> Result<(), Stopped> {
        let Received { topic, partition, offset, payload } = record;
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
        if timed.finding.status != FindingStatus::Active {
            return self.withdraw(&timed, topic, partition, offset).await;
        }
        if timed.finding.severity >= self.immediate {
            self.sender.send(&message::finding(self.format, &timed), &self.shutdown).await?;
            self.metrics.immediate.inc();
            self.store(&topic, partition, offset);
        } else {
            let day = DateTime::from_timestamp_millis(timed.detected_at_ms).unwrap_or_default().date_naive();
            let f = &timed.finding;
            let group = (f.rule_id.clone(), f.provider_org_number.clone(), day.to_string());
            let (digest, offsets) = self.digests.entry(group).or_insert_with(|| (Digest::new(&timed, day), Vec::new()));
            digest.add(&timed);
            offsets.push((topic, partition, offset));
        }
        Ok(())
    }

    /// A withdrawn finding: one that was sent at once (at least `immediate`
    /// severity) gets a short withdrawal; one still waiting in a digest is
    /// left out of it (a digest left empty is not sent, its records are
    /// done); one already sent in a digest is not mentioned again.
    async fn withdraw(
        &mut self,
        timed: &TimedFinding,
        topic: String,
        partition: i32,
        offset: i64,
    ) -> Result<(), Stopped> {
        if timed.finding.severity >= self.immediate {
            self.sender.send(&message::withdrawal(self.format, timed), &self.shutdown).await?;
            self.metrics.withdrawals.inc();
        } else {
            let mut emptied = Vec::new();
            for (group, (digest, _)) in self.digests.iter_mut() {
                if digest.withdraw(&timed.finding.finding_id) && digest.findings == 0 {
                    emptied.push(group.clone());
                }
            }
            for group in emptied {
                if let Some((_, offsets)) = self.digests.remove(&group) {
                    for (topic, partition, offset) in offsets {
                        self.store(&topic, partition, offset);
                    }
                }
            }
        }
        self.store(&topic, partition, offset);
        Ok(())
    }

    /// Stopping: commits the stored offsets (undelivered findings are read
    /// again), reports not ready and stops the http server.
    async fn drain(self) {
        self.consumer.commit_stored_offsets();
        self.http.stop().await;
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
