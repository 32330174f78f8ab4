//! What a consumer knows about its own progress: which partitions the group
//! assigned it, how far behind each one is, and when each last moved. From
//! it, whether the consumer is ready ([`Progress::readiness`]) and whether
//! the stall watchdog should re-join the group ([`Progress::should_rejoin`]).
//!
//! Pure: the caller passes the time, so the rules are tested without a
//! broker or a clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partition {
    /// Records behind the end, as librdkafka last reported it (-1: unknown).
    lag: i64,
    /// When a record of it was last read or processed, or when it was
    /// assigned: a partition gets the stall time to start moving.
    last_progress: Instant,
}

/// Why a consumer is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The group has assigned it no partition, for this long.
    NoPartitions { for_: Duration },
    /// A partition has records to read and none moved for this long.
    Stalled { topic: String, partition: i32, lag: i64, for_: Duration },
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::NoPartitions { for_ } => write!(f, "no partition assigned for {} s", for_.as_secs()),
            NotReady::Stalled { topic, partition, lag, for_ } => {
                write!(f, "{topic}/{partition}: {lag} records behind and no progress for {} s", for_.as_secs())
            }
        }
    }
}

/// A consumer's assignment and progress.
#[derive(Debug, Clone)]
pub struct Progress {
    partitions: BTreeMap<(String, i32), Partition>,
    /// When the assignment last changed (or the consumer started).
    assignment_changed: Instant,
    /// When the watchdog last re-joined, and how many times in a row
    /// without the consumer becoming healthy (for the backoff).
    last_rejoin: Option<Instant>,
    rejoins_in_a_row: u32,
    /// Since when the service has been waiting for a record (in `recv`),
    /// if it is: a stall while it waits is the broker's or the group's,
    /// which a re-join may heal; a stall while it does not wait is the
    /// service's own (a downstream down, too much in flight), which a
    /// re-join would not heal.
    waiting_since: Option<Instant>,
}

impl Progress {
    pub fn new(now: Instant) -> Progress {
        Progress {
            partitions: BTreeMap::new(),
            assignment_changed: now,
            last_rejoin: None,
            rejoins_in_a_row: 0,
            waiting_since: None,
        }
    }

    /// The service waits for a record from now on (`Some`), or no longer
    /// (`None`).
    pub fn waiting(&mut self, since: Option<Instant>) {
        self.waiting_since = since;
    }

    /// The group assigned these partitions (in addition to any it had).
    pub fn assigned(&mut self, now: Instant, partitions: impl IntoIterator<Item = (String, i32)>) {
        for key in partitions {
            self.partitions.entry(key).or_insert(Partition { lag: -1, last_progress: now });
        }
        self.assignment_changed = now;
    }

    /// The group took these partitions away.
    pub fn revoked(&mut self, now: Instant, partitions: impl IntoIterator<Item = (String, i32)>) {
        for key in partitions {
            self.partitions.remove(&key);
        }
        self.assignment_changed = now;
    }

    /// Every partition was taken away (an unsubscribe, a lost assignment).
    pub fn revoked_all(&mut self, now: Instant) {
        self.partitions.clear();
        self.assignment_changed = now;
    }

    /// librdkafka's lag for a partition; ignored unless it is assigned.
    pub fn lag(&mut self, topic: &str, partition: i32, lag: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.lag = lag;
        }
    }

    /// A record of the partition was read or processed.
    pub fn progressed(&mut self, now: Instant, topic: &str, partition: i32) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.last_progress = now;
        }
    }

    /// Assigned partitions and when each last moved.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, i64, Instant)> + '_ {
        self.partitions.iter().map(|((topic, partition), p)| (topic.as_str(), *partition, p.lag, p.last_progress))
    }

    /// Ready, unless no partition is assigned, or a partition with records
    /// to read (lag > 0) has not moved for `stall`.
    pub fn readiness(&self, now: Instant, stall: Duration) -> Result<(), NotReady> {
        if self.partitions.is_empty() {
            return Err(NotReady::NoPartitions { for_: now.saturating_duration_since(self.assignment_changed) });
        }
        let stalled = self
            .partitions
            .iter()
            .filter(|(_, p)| p.lag > 0 && now.saturating_duration_since(p.last_progress) >= stall)
            .max_by_key(|(_, p)| now.saturating_duration_since(p.last_progress));
        match stalled {
            None => Ok(()),
            Some(((topic, partition), p)) => Err(NotReady::Stalled {
                topic: topic.clone(),
                partition: *partition,
                lag: p.lag,
                for_: now.saturating_duration_since(p.last_progress),
            }),
        }
    }

    /// Whether the stall watchdog should re-join the group now: the
    /// consumer has had no partition for `stall`, or a partition has been
    /// stalled for `stall` while the service waited for records all along
    /// (see [`Progress::waiting`]), and the last re-join is long enough ago (`stall`,
    /// doubling with each re-join that did not help, at most 16 × `stall`,
    /// so an idle member of a group with more members than partitions
    /// does not keep the group rebalancing).
    pub fn should_rejoin(&mut self, now: Instant, stall: Duration) -> Option<NotReady> {
        let problem = match self.readiness(now, stall) {
            Ok(()) => {
                self.rejoins_in_a_row = 0;
                return None;
            }
            Err(problem) => problem,
        };
        match problem {
            NotReady::NoPartitions { for_ } if for_ < stall => return None,
            NotReady::Stalled { .. }
                if self.waiting_since.is_none_or(|since| now.saturating_duration_since(since) < stall) =>
            {
                return None;
            }
            _ => {}
        }
        let backoff = stall.saturating_mul(1 << self.rejoins_in_a_row.min(4));
        if self.last_rejoin.is_some_and(|last| now.saturating_duration_since(last) < backoff) {
            return None;
        }
        Some(problem)
    }

    /// The watchdog re-joined the group.
    pub fn rejoined(&mut self, now: Instant) {
        self.last_rejoin = Some(now);
        self.rejoins_in_a_row = self.rejoins_in_a_row.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(60);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn tp(partition: i32) -> (String, i32) {
        ("valid".to_string(), partition)
    }

    #[test]
    fn not_ready_without_partitions_and_ready_once_assigned() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        assert_eq!(progress.readiness(t0 + s(5), STALL), Err(NotReady::NoPartitions { for_: s(5) }));
        progress.assigned(t0 + s(6), [tp(0), tp(1)]);
        assert_eq!(progress.readiness(t0 + s(7), STALL), Ok(()));
        progress.revoked(t0 + s(8), [tp(0)]);
        assert_eq!(progress.readiness(t0 + s(9), STALL), Ok(()));
        progress.revoked_all(t0 + s(10));
        assert_eq!(progress.readiness(t0 + s(11), STALL), Err(NotReady::NoPartitions { for_: s(1) }));
    }

    #[test]
    fn lag_without_progress_for_the_stall_time_is_not_ready() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        progress.assigned(t0, [tp(0), tp(1)]);
        let check = |progress: &Progress, at: u64, expected: Result<(), NotReady>| {
            assert_eq!(progress.readiness(t0 + s(at), STALL), expected, "at {at} s")
        };
        // Unknown or zero lag: an idle partition is healthy however long.
        check(&progress, 600, Ok(()));
        progress.lag("valid", 0, 0);
        progress.lag("valid", 1, 5);
        check(&progress, 59, Ok(()));
        let stalled = |for_| Err(NotReady::Stalled { topic: "valid".into(), partition: 1, lag: 5, for_: s(for_) });
        check(&progress, 60, stalled(60));
        progress.progressed(t0 + s(61), "valid", 1);
        check(&progress, 62, Ok(()));
        check(&progress, 121, stalled(60));
        // Lag of a partition not assigned is ignored.
        progress.lag("valid", 7, 100);
        progress.lag("valid", 1, 0);
        check(&progress, 500, Ok(()));
    }

    #[test]
    fn the_watchdog_rejoins_after_the_stall_time_and_backs_off() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        assert_eq!(progress.should_rejoin(t0 + s(59), STALL), None, "starting up");
        assert!(progress.should_rejoin(t0 + s(60), STALL).is_some());
        progress.rejoined(t0 + s(60));
        assert_eq!(progress.should_rejoin(t0 + s(100), STALL), None, "re-joined 40 s ago");
        // The re-join revoked everything: the clock starts again, and the
        // backoff doubles to 120 s.
        progress.revoked_all(t0 + s(60));
        assert_eq!(progress.should_rejoin(t0 + s(170), STALL), None, "backing off");
        assert!(progress.should_rejoin(t0 + s(180), STALL).is_some());
        progress.rejoined(t0 + s(180));
        progress.revoked_all(t0 + s(180));
        // Healed: assigned, the backoff starts over.
        progress.assigned(t0 + s(200), [tp(0)]);
        assert_eq!(progress.should_rejoin(t0 + s(201), STALL), None);
        progress.revoked_all(t0 + s(300));
        assert!(progress.should_rejoin(t0 + s(360), STALL).is_some(), "backoff reset by the healthy check");
    }

    #[test]
    fn a_stall_of_the_service_itself_is_not_healed_by_a_rejoin() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        progress.assigned(t0, [tp(0)]);
        progress.lag("valid", 0, 10);
        // Not reading (ClickHouse down, too much in flight): not ready, no re-join.
        assert!(progress.readiness(t0 + s(61), STALL).is_err());
        assert_eq!(progress.should_rejoin(t0 + s(61), STALL), None);
        // Waiting for records that do not come, for the stall time: re-join.
        progress.waiting(Some(t0 + s(61)));
        assert_eq!(progress.should_rejoin(t0 + s(100), STALL), None, "waiting for 39 s only");
        assert!(progress.should_rejoin(t0 + s(121), STALL).is_some());
        progress.waiting(None);
        assert_eq!(progress.should_rejoin(t0 + s(122), STALL), None);
    }

    #[test]
    fn backoff_is_at_most_sixteen_times_the_stall_time() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        let mut now = t0 + STALL;
        for _ in 0..10 {
            progress.rejoined(now);
            now += STALL * 16;
            assert!(progress.should_rejoin(now, STALL).is_some());
        }
    }
}
