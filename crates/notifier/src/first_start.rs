//! A notifier group's first start (`notifier.first_start = "summary"`,
//! the default): the findings already in the alerts topic are told as ONE
//! summary message ([`crate::summary`]), and only the findings after them
//! one by one (or in digests).
//!
//! "First start": the group has no committed offset on any partition of
//! the alerts topic. Then, before the group consumer subscribes:
//! 1. the partitions' high watermarks are the backlog's end;
//! 2. the backlog (from each partition's low watermark to that end) is read
//!    outside the group (nothing committed) and folded into a [`Summary`];
//! 3. a marker with the backlog's end is written to the notifier's
//!    compacted digests topic (acked) — "a summary is being sent";
//! 4. the summary is sent (retried until the webhook accepts; one it refuses
//!    for good goes to `<alerts>.undelivered` like any message);
//! 5. the backlog's end is committed as the group's offsets (synchronously);
//! 6. the marker is deleted (a tombstone).
//!
//! Then the group subscribes and reads from the backlog's end: every
//! finding published after it is delivered as usual.
//!
//! Restart-safe, the summary at most once:
//! - killed before 3: nothing was sent or committed; the next start is a
//!   first start again, with the watermarks of then.
//! - killed between 3 and 5 (while sending, or after the webhook accepted
//!   and before the commit): the next start finds the marker and no
//!   committed offset; it cannot know whether the webhook took the summary,
//!   so it does NOT send it again: it logs the marker's totals as a warning,
//!   commits the marker's end (not the watermarks of then: findings
//!   published since are new and are delivered one by one) and deletes the
//!   marker. A summary killed while the webhook was down is thus lost
//!   (the warning says so; the findings are in ClickHouse and the dashboard);
//!   none is ever sent twice, and no new finding is skipped.
//! - killed between 5 and 6: the offsets are committed, so the next start
//!   is not a first start; it deletes the stale marker.
//!
//! An empty backlog (or one whose findings were all withdrawn) sends
//! nothing; with findings all withdrawn the end is committed.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use distans_runtime::config::KafkaSettings;
use distans_wire::Codec;

use crate::summary::{Backlog, Summary};

/// The key of the marker record in the digests topic (a digest's key
/// always holds two U+001F separators, this one none).
pub const MARKER_KEY: &str = "first-start-summary";

/// The longest the backlog's reading may take before the notifier gives
/// up starting (and the supervisor restarts it).
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// "A first-start summary is being sent": written before it is sent,
/// deleted once the backlog's end is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The backlog's end: partition → the offset to read from next.
    pub ends: BTreeMap<i32, i64>,
    /// Open findings and their amount at stake (öre), for the log should
    /// the summary's fate be unknown.
    pub findings: usize,
    pub amount_at_stake_ore: i64,
}

/// What the group's committed offsets say about this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Some partition has a committed offset: read on from it.
    Resumed,
    /// No partition has one: the backlog is each partition's
    /// `[low, high)`, by partition (empty ranges left out).
    First { ranges: BTreeMap<i32, (i64, i64)> },
}

/// The alerts topic's partitions, whether `consumer`'s group has a
/// committed offset on any, and each partition's watermarks.
pub fn inspect(
    consumer: &StreamConsumer<impl rdkafka::consumer::ConsumerContext>,
    topic: &str,
) -> Result<Start, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut wanted = TopicPartitionList::new();
    for p in &partitions {
        wanted.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(wanted, Duration::from_secs(10))?;
    if committed.elements().iter().any(|e| matches!(e.offset(), Offset::Offset(_))) {
        return Ok(Start::Resumed);
    }
    let mut ranges = BTreeMap::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        ranges.insert(p, (low, high));
    }
    Ok(Start::First { ranges })
}

/// Commits `ends` as the group's offsets on `topic`, waiting for the broker.
pub fn commit(
    consumer: &StreamConsumer<impl rdkafka::consumer::ConsumerContext>,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    let mut offsets = TopicPartitionList::new();
    for (partition, end) in ends {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*end))?;
    }
    if offsets.count() == 0 {
        return Ok(());
    }
    consumer.commit(&offsets, CommitMode::Sync)
}

/// Reads `topic`'s records in `ranges` (partition → `[from, to)`) outside
/// any consumer group and folds the findings among them.
pub async fn read_backlog(
    settings: &KafkaSettings,
    topic: &str,
    ranges: &BTreeMap<i32, (i64, i64)>,
    codec: &Codec,
) -> Result<Summary, KafkaError> {
    let mut backlog = Backlog::default();
    let mut left: BTreeMap<i32, i64> =
        ranges.iter().filter(|(_, (from, to))| to > from).map(|(p, (_, to))| (*p, *to)).collect();
    if left.is_empty() {
        return Ok(backlog.summary());
    }
    let consumer: StreamConsumer = distans_runtime::kafka::reader(settings, "distans-notifier-first-start")?;
    let mut assignment = TopicPartitionList::new();
    for (partition, (from, _)) in ranges.iter().filter(|(p, _)| left.contains_key(p)) {
        assignment.add_partition_offset(topic, *partition, Offset::Offset(*from))?;
    }
    consumer.assign(&assignment)?;
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut records = 0u64;
    while !left.is_empty() {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
        let Some(end) = left.get(&message.partition()).copied() else { continue };
        if message.offset() >= end {
            left.remove(&message.partition());
            continue;
        }
        records += 1;
        match codec.decode_finding(message.payload().unwrap_or_default()) {
            Ok(timed) => backlog.add(timed),
            Err(error) => {
                backlog.undecodable += 1;
                tracing::error!(%error, partition = message.partition(), offset = message.offset(),
                    "record on the alerts topic is not a finding (first-start backlog); left out");
            }
        }
        if message.offset() + 1 >= end {
            left.remove(&message.partition());
        }
    }
    let summary = backlog.summary();
    tracing::info!(%topic, records, open = summary.findings, withdrawn = summary.withdrawn,
        amount_at_stake_ore = summary.amount_at_stake_ore, "first start: backlog read");
    Ok(summary)
}

/// The backlog's end: partition → high watermark.
pub fn ends(ranges: &BTreeMap<i32, (i64, i64)>) -> BTreeMap<i32, i64> {
    ranges.iter().map(|(p, (_, high))| (*p, *high)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips() {
        let marker = Marker { ends: [(0, 12), (1, 7)].into_iter().collect(), findings: 3, amount_at_stake_ore: 45_000 };
        let json = serde_json::to_vec(&marker).expect("serialises");
        assert_eq!(serde_json::from_slice::<Marker>(&json).expect("reads"), marker);
        assert!(crate::pending::group_of(MARKER_KEY).is_none(), "no digest's key");
    }

    #[test]
    fn the_end_is_each_partitions_high_watermark() {
        let ranges = [(0, (3, 12)), (1, (0, 0))].into_iter().collect();
        assert_eq!(ends(&ranges), [(0, 12), (1, 0)].into_iter().collect());
    }
}
