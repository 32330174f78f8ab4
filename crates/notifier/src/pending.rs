//! Pending digests, kept in a compacted Kafka topic so that they survive a
//! restart: one record per digest group (rule, provider, day of detection),
//! keyed by the group, whose value is the whole digest as it stands; a
//! tombstone once the digest was sent or emptied by withdrawals.
//!
//! Why Kafka and not ClickHouse: the notifier already depends on Kafka and
//! nothing else; a keyed record replaced whole is one atomic write (a digest
//! and its "sent" mark cannot disagree); a tombstone deletes at once, where
//! ClickHouse 18.16 deletes by asynchronous mutations; and compaction keeps
//! the topic to about one record per pending digest.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use distans_runtime::config::KafkaSettings;
use distans_runtime::kafka::{self, Stopped, PRODUCE_RETRY};
use distans_runtime::retry::{always_transient, retry, RetryError};

use crate::first_start::{Marker, MARKER_KEY};
use crate::message::Digest;

/// A digest's group: rule, provider org number, day of detection.
pub type Group = (String, String, String);

/// The longest loading the pending digests may take before the notifier
/// gives up starting (and the supervisor restarts it).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A digest not sent yet, and when its first finding was read: it is due
/// `digest_interval` after that, whatever restarts happen in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub digest: Digest,
    pub first_seen_ms: i64,
}

impl Pending {
    /// Whether the digest's period has ended at `now_ms`.
    pub fn is_due(&self, now_ms: i64, interval: Duration) -> bool {
        now_ms.saturating_sub(self.first_seen_ms) >= i64::try_from(interval.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The record key of a group: its three parts joined by a unit separator.
pub fn key(group: &Group) -> String {
    format!("{}\u{1f}{}\u{1f}{}", group.0, group.1, group.2)
}

/// The group of a record key; `None` for a key that is not one.
pub fn group_of(key: &str) -> Option<Group> {
    let mut parts = key.split('\u{1f}');
    let group = (parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string());
    parts.next().is_none().then_some(group)
}

/// The pending digests a sequence of records leaves: the latest value per
/// key, a tombstone (`None`) deleting it. Records that cannot be read are
/// returned apart, by key, to be reported.
pub fn fold<'a>(
    records: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> (BTreeMap<Group, Pending>, Vec<String>) {
    let mut pending = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (key, value) in records {
        if key == MARKER_KEY {
            continue;
        }
        let Some(group) = group_of(key) else {
            unreadable.push(key.to_string());
            continue;
        };
        match value.map(serde_json::from_slice::<Pending>) {
            None => {
                pending.remove(&group);
            }
            Some(Ok(digest)) => {
                pending.insert(group, digest);
            }
            Some(Err(_)) => {
                pending.remove(&group);
                unreadable.push(key.to_string());
            }
        }
    }
    (pending, unreadable)
}

/// The first start's marker a sequence of records leaves (see
/// [`crate::first_start`]): the latest value under [`MARKER_KEY`], `None`
/// after a tombstone. One that cannot be read is taken as present with no
/// end (`Some(Err(..))`): a summary may have been sent.
pub fn marker<'a>(
    records: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Option<Result<Marker, serde_json::Error>> {
    records
        .into_iter()
        .filter(|(key, _)| *key == MARKER_KEY)
        .last()
        .and_then(|(_, value)| value.map(serde_json::from_slice::<Marker>))
}

/// Where the pending digests are written.
pub struct PendingStore {
    producer: kafka::Producer,
    topic: String,
}

impl std::fmt::Debug for PendingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingStore").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl PendingStore {
    /// Creates `topic` (compacted, one partition) if missing and reads the
    /// digests pending in it.
    pub async fn open(
        settings: &KafkaSettings,
        topic: &str,
    ) -> Result<(PendingStore, BTreeMap<Group, Pending>, Option<Result<Marker, serde_json::Error>>), KafkaError> {
        kafka::ensure_compacted_topic(settings, topic).await?;
        let (pending, marker) = load(settings, topic).await?;
        let producer = kafka::producer(settings)?;
        Ok((PendingStore { producer, topic: topic.to_string() }, pending, marker))
    }

    /// Writes the first start's marker (acked) before its summary is sent.
    pub async fn save_marker(&self, marker: &Marker, stop: &CancellationToken) -> Result<(), Stopped> {
        let value = serde_json::to_vec(marker).expect("a marker serialises");
        self.produce_to(&self.topic, MARKER_KEY, Some(&value), stop).await
    }

    /// Deletes the first start's marker once the backlog's end is committed.
    pub async fn delete_marker(&self, stop: &CancellationToken) -> Result<(), Stopped> {
        self.produce_to(&self.topic, MARKER_KEY, None, stop).await
    }

    /// Writes `pending` as the group's digest and waits for the broker's
    /// ack (retrying until acked or `stop`).
    pub async fn save(&self, group: &Group, pending: &Pending, stop: &CancellationToken) -> Result<(), Stopped> {
        let value = serde_json::to_vec(pending).expect("a digest serialises");
        self.produce(group, Some(&value), stop).await
    }

    /// Deletes the group's digest (sent, or emptied by withdrawals).
    pub async fn delete(&self, group: &Group, stop: &CancellationToken) -> Result<(), Stopped> {
        self.produce(group, None, stop).await
    }

    async fn produce(&self, group: &Group, value: Option<&[u8]>, stop: &CancellationToken) -> Result<(), Stopped> {
        self.produce_to(&self.topic, &key(group), value, stop).await
    }

    /// Writes `alert` to `topic` (`<alerts>.undelivered`, created at start)
    /// keyed by its rule and provider, and waits for the broker's ack
    /// (retrying until acked or `stop`), with this store's producer.
    pub async fn write_undelivered(
        &self,
        topic: &str,
        alert: &distans_wire::UndeliveredAlert,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let key = format!("{}|{}", alert.rule_id, alert.provider_org_number);
        self.produce_to(topic, &key, Some(&alert.encode()), stop).await
    }

    async fn produce_to(
        &self,
        topic: &str,
        key: &str,
        value: Option<&[u8]>,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let produce = || {
            let key = key.as_bytes();
            async move {
                let mut record = FutureRecord::<[u8], [u8]>::to(topic).key(key);
                if let Some(value) = value {
                    record = record.payload(value);
                }
                self.producer.send(record, Duration::from_secs(5)).await.map(|_| ()).map_err(|(error, _)| error)
            }
        };
        let on_retry = |error: &KafkaError, retry_in: Duration| {
            tracing::warn!(%error, %topic, retry_in_ms = retry_in.as_millis() as u64, "cannot write a pending digest or undelivered alert; retrying, no offset moves");
        };
        retry(&PRODUCE_RETRY, stop, always_transient, on_retry, produce).await.map_err(|error| match error {
            RetryError::Stopped => Stopped,
            RetryError::Permanent(error) | RetryError::GaveUp { error, .. } => {
                tracing::error!(%error, %topic, "write abandoned; no offset moves");
                Stopped
            }
        })
    }
}

/// Reads `topic` from the beginning to its end (as it was when loading
/// began) and folds it into the pending digests and the first start's
/// marker. Outside any consumer group: nothing is committed.
#[allow(clippy::type_complexity)]
async fn load(
    settings: &KafkaSettings,
    topic: &str,
) -> Result<(BTreeMap<Group, Pending>, Option<Result<Marker, serde_json::Error>>), KafkaError> {
    let consumer: StreamConsumer = kafka::reader(settings, "distans-notifier-pending-load")?;
    let ends = tokio::task::block_in_place(|| -> Result<BTreeMap<i32, i64>, KafkaError> {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut ends = BTreeMap::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())) {
            let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            if high > low {
                ends.insert(partition, high);
            }
        }
        Ok(ends)
    })?;
    let mut records: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    if !ends.is_empty() {
        let mut assignment = TopicPartitionList::new();
        for partition in ends.keys() {
            assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut left = ends.clone();
        let deadline = tokio::time::Instant::now() + LOAD_TIMEOUT;
        while !left.is_empty() {
            let message = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            records.push((key, message.payload().map(<[u8]>::to_vec)));
            if left.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
                left.remove(&message.partition());
            }
        }
    }
    let (pending, unreadable) = fold(records.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
    let marker = marker(records.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
    for key in unreadable {
        // Its findings' offsets were stored once it was written: they are
        // in the alerts topic still, but will not be read again by this group.
        tracing::error!(%topic, key = %key.replace('\u{1f}', "/"), "pending digest record cannot be read; left out");
    }
    tracing::info!(%topic, pending = pending.len(), records = records.len(), first_start_marker = marker.is_some(),
        "pending digests loaded");
    Ok((pending, marker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::rules::WRONG_PRICE;
    use distans_wire::TimedFinding;

    fn pending(rule: &str, first_seen_ms: i64) -> Pending {
        let mut finding = distans_domain::testing::finding(&WRONG_PRICE, "ZVF1:1");
        finding.rule_id = rule.to_string();
        let timed = TimedFinding { finding, detected_at_ms: 0 };
        let mut digest = Digest::new(&timed, chrono::NaiveDate::from_ymd_opt(2025, 3, 1).expect("test value"));
        digest.add(&timed);
        Pending { digest, first_seen_ms }
    }

    fn group(rule: &str) -> Group {
        (rule.to_string(), "5560000001".to_string(), "2025-03-01".to_string())
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(group_of(&key(&group("r"))), Some(group("r")));
        assert_eq!(group_of("r\u{1f}p"), None);
        assert_eq!(group_of("a\u{1f}b\u{1f}c\u{1f}d"), None);
    }

    #[test]
    fn the_latest_record_per_group_wins_and_a_tombstone_deletes() {
        let a = serde_json::to_vec(&pending("a", 1)).expect("test value");
        let a2 = serde_json::to_vec(&pending("a", 2)).expect("test value");
        let b = serde_json::to_vec(&pending("b", 3)).expect("test value");
        let (ka, kb) = (key(&group("a")), key(&group("b")));
        let records: Vec<(&str, Option<&[u8]>)> = vec![
            (&ka, Some(&a)),
            (&kb, Some(&b)),
            (&ka, Some(&a2)),
            (&kb, None),
            ("garbage", Some(b"x")),
            (&kb, Some(b"not json")),
        ];
        let (loaded, unreadable) = fold(records);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[&group("a")], pending("a", 2));
        assert_eq!(unreadable, vec!["garbage".to_string(), kb.clone()]);
    }

    #[test]
    fn the_first_start_marker_is_kept_apart_and_a_tombstone_deletes_it() {
        let m =
            serde_json::to_vec(&Marker { ends: [(0, 5)].into_iter().collect(), findings: 2, amount_at_stake_ore: 7 })
                .expect("test value");
        let a = serde_json::to_vec(&pending("a", 1)).expect("test value");
        let ka = key(&group("a"));
        let written: Vec<(&str, Option<&[u8]>)> = vec![(MARKER_KEY, Some(&m)), (&ka, Some(&a))];
        let (loaded, unreadable) = fold(written.clone());
        assert_eq!((loaded.len(), unreadable.len()), (1, 0), "the marker is no digest and not unreadable");
        assert_eq!(marker(written.clone()).map(|m| m.expect("reads").ends[&0]), Some(5));
        let mut deleted = written;
        deleted.push((MARKER_KEY, None));
        assert!(marker(deleted).is_none());
        assert!(marker(vec![(MARKER_KEY, Some(&b"garbage"[..]))]).is_some_and(|m| m.is_err()), "present, unreadable");
    }

    #[test]
    fn a_digest_is_due_an_interval_after_its_first_finding_was_read() {
        let p = pending("a", 1_000);
        assert!(!p.is_due(1_999, Duration::from_secs(1)));
        assert!(p.is_due(2_000, Duration::from_secs(1)));
    }

    #[test]
    fn a_withdrawal_survives_the_round_trip() {
        let mut p = pending("a", 1);
        assert_eq!(p.digest.findings, 1);
        let back: Pending = serde_json::from_slice(&serde_json::to_vec(&p).expect("test value")).expect("test value");
        assert_eq!(back, p);
        let finding_id = distans_domain::testing::finding(&WRONG_PRICE, "ZVF1:1").finding_id;
        let mut back = back;
        assert!(back.digest.withdraw(&finding_id));
        assert!(p.digest.withdraw(&finding_id));
        assert_eq!(back.digest.findings, 0);
        assert_eq!(back, p);
    }
}
