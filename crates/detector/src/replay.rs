//! Rebuilding the rules' state at start: which records only feed the rules
//! (replayed), which are judged and published (live), and which wait
//! (held) until every partition has replayed.
//!
//! Every partition is read from its beginning. Records below a partition's
//! committed offset were judged before the offset was committed: they are
//! replayed. Records past it that arrive while another partition is still
//! replaying are held (their partition paused): every replayed line must be
//! seen before any live one, or a finding that only a live line completes
//! could surface at a replayed line and be suppressed. Once every partition
//! reached its committed offset, the held records are released, in the
//! order they were read, and everything after is live.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use distans_domain::enrich::Provenance;
use rdkafka::{Offset, TopicPartitionList};

use crate::Record;

/// What to do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Below its partition's committed offset: feed the rules, publish nothing.
    Replay,
    /// Judge it and publish its findings.
    Live,
    /// Past its partition's committed offset while another partition still
    /// replays: wait (see [`Replay::hold`]).
    Hold,
}

/// Where each partition's replay ends, and the records waiting for it.
#[derive(Debug)]
pub(crate) struct Replay {
    /// Partitions still replaying → their committed offset (the first
    /// record that is not replayed). Empty once the state is rebuilt.
    until: BTreeMap<i32, i64>,
    /// Live records read while replaying, in the order read.
    held: Vec<Record>,
    /// Topic and partition of the held records: paused while replaying.
    paused: BTreeSet<(String, i32)>,
    started: Instant,
}

/// Where a partition's replay ends, from its committed offset and its low
/// and high watermarks (offsets in records): `None` when there is nothing
/// to replay: no committed offset, every record below it deleted by
/// retention, or a committed offset past the end of the log (the topic was
/// recreated, or the group's offsets were set by hand: no record there was
/// judged by this group, and a replay up to it would never end). A
/// committed offset at the end replays every record, and ends with the last.
pub(crate) fn replay_end(committed: Option<Offset>, low_watermark: i64, high_watermark: i64) -> Option<i64> {
    match committed {
        _ if is_past_the_end(committed, high_watermark) => None,
        // Records deleted by retention cannot be replayed: replay what is left.
        Some(Offset::Offset(n)) if n > low_watermark && n > 0 => Some(n),
        _ => None,
    }
}

/// Whether a committed offset is past the end of its partition's log.
pub(crate) fn is_past_the_end(committed: Option<Offset>, high_watermark: i64) -> bool {
    matches!(committed, Some(Offset::Offset(n)) if n > high_watermark)
}

impl Replay {
    /// A replay up to `until` (partition → committed offset, as from
    /// [`replay_end`]); with none, the detector is live at once.
    pub(crate) fn new(until: BTreeMap<i32, i64>) -> Replay {
        Replay { until, held: Vec::new(), paused: BTreeSet::new(), started: Instant::now() }
    }

    /// True until every partition reached its committed offset.
    pub(crate) fn is_replaying(&self) -> bool {
        !self.until.is_empty()
    }

    /// Partitions still replaying → their committed offset.
    pub(crate) fn until(&self) -> &BTreeMap<i32, i64> {
        &self.until
    }

    /// What to do with the record read at `source`.
    pub(crate) fn step(&self, source: &Provenance) -> Step {
        let replayed = self.until.get(&source.partition).is_some_and(|until| source.offset < *until);
        match (replayed, self.is_replaying()) {
            (true, _) => Step::Replay,
            (false, true) => Step::Hold,
            (false, false) => Step::Live,
        }
    }

    /// Keeps a live record until the replay ends. Returns true when its
    /// partition was not paused yet: the caller pauses [`Replay::paused`].
    pub(crate) fn hold(&mut self, record: Record) -> bool {
        let newly_paused = self.paused.insert((record.source.topic.clone(), record.source.partition));
        self.held.push(record);
        newly_paused
    }

    /// Records that a replayed record was fed to the rules. Returns true
    /// when it was the last one: every partition reached its offset.
    pub(crate) fn replayed(&mut self, source: &Provenance) -> bool {
        if self.until.get(&source.partition).is_some_and(|until| source.offset + 1 >= *until) {
            self.until.remove(&source.partition);
        }
        !self.is_replaying()
    }

    /// The held records, in the order read; none are held after this.
    pub(crate) fn release(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.held)
    }

    /// Records held so far.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// The partitions paused because their records are held.
    pub(crate) fn paused(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &self.paused {
            list.add_partition(topic, *partition);
        }
        list
    }

    /// Time since the replay began.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> Provenance {
        Provenance { topic: "valid".into(), partition, offset }
    }

    fn record(partition: i32, offset: i64) -> Record {
        Record { source: at(partition, offset), key: None, payload: Vec::new() }
    }

    #[test]
    fn replay_ends_at_the_committed_offset_if_its_records_are_left() {
        let check = |committed, low, high, expected| {
            assert_eq!(replay_end(committed, low, high), expected, "{committed:?}, low {low}, high {high}")
        };
        check(None, 0, 9, None);
        check(Some(Offset::Invalid), 0, 9, None);
        check(Some(Offset::Beginning), 0, 9, None);
        check(Some(Offset::Offset(0)), 0, 9, None);
        check(Some(Offset::Offset(5)), 0, 9, Some(5));
        check(Some(Offset::Offset(5)), 4, 9, Some(5));
        check(Some(Offset::Offset(5)), 5, 9, None);
        check(Some(Offset::Offset(5)), 7, 9, None);
        // At the end: every record replays, the last one ends it.
        check(Some(Offset::Offset(9)), 0, 9, Some(9));
        // Past the end (a recreated topic, an offset set by hand): nothing
        // of this log was judged; nothing replays.
        check(Some(Offset::Offset(10)), 0, 9, None);
        check(Some(Offset::Offset(5_000)), 0, 0, None);
        assert!(is_past_the_end(Some(Offset::Offset(10)), 9));
        assert!(!is_past_the_end(Some(Offset::Offset(9)), 9));
        assert!(!is_past_the_end(Some(Offset::End), 9));
    }

    #[test]
    fn nothing_to_replay_is_live_at_once() {
        let replay = Replay::new(BTreeMap::new());
        assert!(!replay.is_replaying());
        assert_eq!(replay.step(&at(0, 0)), Step::Live);
    }

    #[test]
    fn records_below_the_committed_offset_replay_and_the_others_wait() {
        let replay = Replay::new(BTreeMap::from([(0, 3), (1, 1)]));
        let check = |partition, offset, expected| {
            assert_eq!(replay.step(&at(partition, offset)), expected, "{partition}/{offset}")
        };
        check(0, 0, Step::Replay);
        check(0, 2, Step::Replay);
        check(0, 3, Step::Hold);
        check(1, 0, Step::Replay);
        check(1, 1, Step::Hold);
        check(2, 0, Step::Hold);
    }

    #[test]
    fn replay_ends_when_every_partition_reached_its_offset() {
        let mut replay = Replay::new(BTreeMap::from([(0, 2), (1, 1)]));
        assert!(!replay.replayed(&at(0, 0)));
        assert!(!replay.replayed(&at(1, 0)), "partition 0 still replays");
        assert_eq!(replay.until(), &BTreeMap::from([(0, 2)]));
        assert_eq!(replay.step(&at(1, 1)), Step::Hold, "partition 1 is done but 0 is not");
        assert!(replay.replayed(&at(0, 1)));
        assert!(!replay.is_replaying());
        assert_eq!(replay.step(&at(0, 2)), Step::Live);
        assert_eq!(replay.step(&at(1, 1)), Step::Live);
    }

    #[test]
    fn held_records_pause_their_partition_once_and_are_released_in_order() {
        let mut replay = Replay::new(BTreeMap::from([(0, 5)]));
        assert!(replay.hold(record(1, 0)), "first record of partition 1 pauses it");
        assert!(!replay.hold(record(1, 1)));
        assert!(replay.hold(record(2, 0)));
        assert!(replay.hold(record(0, 5)));
        assert_eq!(replay.held(), 4);
        let paused: Vec<(String, i32)> =
            replay.paused().elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        assert_eq!(paused, [("valid".to_string(), 0), ("valid".to_string(), 1), ("valid".to_string(), 2)]);
        let released: Vec<(i32, i64)> =
            replay.release().iter().map(|r| (r.source.partition, r.source.offset)).collect();
        assert_eq!(released, [(1, 0), (1, 1), (2, 0), (0, 5)]);
        assert_eq!(replay.held(), 0);
    }
}
