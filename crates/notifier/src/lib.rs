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
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use distans_domain::rules::Severity;
use distans_runtime::kafka;
use distans_runtime::{telemetry, Health, Settings};
use distans_wire::Codec;

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
    let config = &settings.notifier;
    if config.webhook_url.is_empty() {
        return Err(NotifierError::Settings("notifier.webhook_url is empty".into()));
    }
    let format = Format::parse(&config.format).ok_or_else(|| NotifierError::Settings(config.format.clone()))?;
    let immediate = Severity::parse(&config.immediate_severity)
        .ok_or_else(|| NotifierError::Settings(config.immediate_severity.clone()))?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let health = Health::default();
    let (_, http) = telemetry::serve(config.http_listen, Arc::new(registry), health.clone(), shutdown.clone()).await?;
    kafka::ensure_topics(&settings.kafka, &[&settings.topics.alerts]).await?;
    let consumer = kafka::consumer(&settings.kafka, &config.group_id, metrics.lag.clone())?;
    consumer.subscribe(&[&settings.topics.alerts])?;
    let sender = Sender::new(&config.webhook_url, metrics.clone(), health.clone())?;
    health.set_ready(true);
    tracing::info!(topic = %settings.topics.alerts, format = %config.format, "notifier running");

    let codec = Codec::embedded();
    let mut tracker = OffsetTracker::default();
    let mut digests: BTreeMap<Group, (Digest, Vec<Position>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.digest_interval_ms));
    tick.tick().await;
    'run: loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                for (_, (digest, offsets)) in std::mem::take(&mut digests) {
                    if sender.send(&message::digest(format, &digest), &shutdown).await.is_err() {
                        break 'run;
                    }
                    metrics.digests.inc();
                    for (topic, partition, offset) in offsets {
                        store(&consumer, &mut tracker, &topic, partition, offset);
                    }
                }
            }
            received = consumer.recv() => {
                let message = match received {
                    Ok(m) => m,
                    Err(error) => {
                        tracing::warn!(%error, "kafka consumer error; continuing");
                        continue;
                    }
                };
                let (topic, partition, offset) = (message.topic().to_string(), message.partition(), message.offset());
                tracker.read(partition, offset);
                let timed = match codec.decode_finding(message.payload().unwrap_or_default()) {
                    Ok(t) => t,
                    Err(error) => {
                        // Not a finding: nothing to tell anyone; say so loudly and move on.
                        metrics.undecodable.inc();
                        tracing::error!(%error, partition, offset, "record on the alerts topic is not a finding");
                        store(&consumer, &mut tracker, &topic, partition, offset);
                        continue;
                    }
                };
                metrics.findings.inc();
                if timed.finding.severity >= immediate {
                    if sender.send(&message::finding(format, &timed), &shutdown).await.is_err() {
                        break;
                    }
                    metrics.immediate.inc();
                    store(&consumer, &mut tracker, &topic, partition, offset);
                } else {
                    let day = DateTime::from_timestamp_millis(timed.detected_at_ms).unwrap_or_default().date_naive();
                    let f = &timed.finding;
                    let group = (f.rule_id.clone(), f.provider_org_number.clone(), day.to_string());
                    let (digest, offsets) = digests.entry(group).or_insert_with(|| (Digest::new(&timed, day), Vec::new()));
                    digest.add(&timed);
                    offsets.push((topic, partition, offset));
                }
            }
        }
    }
    kafka::commit_stored_offsets(&consumer);
    health.set_ready(false);
    shutdown.cancel();
    let _ = http.await;
    Ok(())
}

fn store<C: Consumer<kafka::LagContext>>(
    consumer: &C,
    tracker: &mut OffsetTracker,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    if let Some(safe) = tracker.delivered(partition, offset) {
        kafka::store_processed(consumer, topic, partition, safe);
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
