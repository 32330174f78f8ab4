//! The detector's publications on their way to the broker: one per live
//! record (its findings, or its dead letter), settled in the order the
//! records were read, at most `detector.max_in_flight` at once.
//!
//! Order. A record's offset is stored only once it and every record read
//! before it are settled, so [`InFlight::next`] yields publications in the
//! order they were pushed, whichever the broker acknowledges first.
//!
//! One finding id at a time. The producer is not idempotent and
//! `kafka::deliver` sends a record again after `message.timeout.ms`, so two
//! versions of one finding in flight at once (raised, then withdrawn) could
//! reach the topic in the other order, and the notifier and `anomalies`
//! would keep the older. [`InFlight`] counts the finding ids in flight; the
//! detector settles earlier publications until a new record's ids are no
//! longer among them ([`InFlight::holds_any`]) before it starts publishing
//! the record's findings, so one id's versions are sent one after the other,
//! each acknowledged before the next is produced.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures::stream::{FuturesOrdered, StreamExt};

/// A publication's future: resolves once its records are acknowledged, or
/// refused, or the detector stops.
pub(crate) type Publishing<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The publications in flight, in read order, and the finding ids they hold.
pub(crate) struct InFlight<T> {
    pending: FuturesOrdered<Tagged<T>>,
    /// Finding id → publications in flight that carry it.
    ids: HashMap<String, usize>,
    /// Publications in flight at most (`detector.max_in_flight`, ≥ 1).
    max: usize,
}

type Tagged<T> = Pin<Box<dyn Future<Output = (Vec<String>, T)> + Send>>;

impl<T: Send + 'static> InFlight<T> {
    /// Nothing in flight; room for `max` publications (at least 1).
    pub(crate) fn new(max: usize) -> InFlight<T> {
        InFlight { pending: FuturesOrdered::new(), ids: HashMap::new(), max: max.max(1) }
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether another publication may start (fewer than `max` in flight).
    pub(crate) fn has_room(&self) -> bool {
        self.pending.len() < self.max
    }

    /// Whether a publication in flight carries any of `ids`.
    pub(crate) fn holds_any<'a>(&self, mut ids: impl Iterator<Item = &'a str>) -> bool {
        !self.ids.is_empty() && ids.any(|id| self.ids.contains_key(id))
    }

    /// Starts tracking `publishing`, which carries the finding `ids`, after
    /// every publication pushed before it.
    pub(crate) fn push(&mut self, ids: Vec<String>, publishing: Publishing<T>) {
        for id in &ids {
            *self.ids.entry(id.clone()).or_default() += 1;
        }
        self.pending.push_back(Box::pin(async move { (ids, publishing.await) }));
    }

    /// The earliest publication once it is settled (waiting for it: later
    /// ones that settle first wait their turn); `None` when nothing is in
    /// flight. Its finding ids are no longer held.
    pub(crate) async fn next(&mut self) -> Option<T> {
        let (ids, outcome) = self.pending.next().await?;
        for id in ids {
            if let Some(count) = self.ids.get_mut(&id) {
                *count -= 1;
                if *count == 0 {
                    self.ids.remove(&id);
                }
            }
        }
        Some(outcome)
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use tokio::sync::oneshot;

    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// The broker acknowledges a publication.
    fn ack(sender: Option<oneshot::Sender<()>>) {
        sender.expect("a publication not acked yet").send(()).expect("its publication is tracked");
    }

    /// A publication that settles with `value` when its sender is used.
    fn publication(value: u32) -> (oneshot::Sender<()>, Publishing<u32>) {
        let (ack, acked) = oneshot::channel::<()>();
        (ack, Box::pin(async move { acked.await.map(|()| value).unwrap_or(u32::MAX) }))
    }

    #[tokio::test]
    async fn publications_settle_in_the_order_they_were_pushed_whatever_the_broker_acks_first() {
        let mut in_flight = InFlight::new(10);
        let mut acks = Vec::new();
        for value in 0..4 {
            let (ack, publishing) = publication(value);
            in_flight.push(ids(&[]), publishing);
            acks.push(ack);
        }
        // The broker acknowledges the last first, then the second.
        let mut acks: Vec<Option<oneshot::Sender<()>>> = acks.into_iter().map(Some).collect();
        ack(acks[3].take());
        ack(acks[1].take());
        assert_eq!(in_flight.next().now_or_never(), None, "the first is not acked: nothing settles");
        ack(acks[0].take());
        assert_eq!(in_flight.next().await, Some(0));
        assert_eq!(in_flight.next().await, Some(1));
        assert_eq!(in_flight.next().now_or_never(), None, "the third is not acked: the fourth waits");
        ack(acks[2].take());
        assert_eq!(in_flight.next().await, Some(2));
        assert_eq!(in_flight.next().await, Some(3));
        assert_eq!(in_flight.next().await, None);
    }

    #[tokio::test]
    async fn room_ends_at_the_bound_and_comes_back_as_publications_settle() {
        let mut in_flight = InFlight::new(2);
        let (first, a) = publication(1);
        let (second, b) = publication(2);
        assert!(in_flight.has_room());
        in_flight.push(ids(&[]), a);
        assert!(in_flight.has_room());
        in_flight.push(ids(&[]), b);
        assert!(!in_flight.has_room(), "two in flight of at most two");
        assert_eq!(in_flight.len(), 2);
        ack(Some(first));
        assert_eq!(in_flight.next().await, Some(1));
        assert!(in_flight.has_room());
        ack(Some(second));
        assert_eq!(in_flight.next().await, Some(2));
        assert!(in_flight.is_empty());
        // A bound of 0 would never let a record through: it is taken as 1.
        let zero: InFlight<u32> = InFlight::new(0);
        assert!(zero.has_room());
    }

    #[tokio::test]
    async fn a_finding_id_is_held_until_every_publication_carrying_it_settles() {
        let mut in_flight = InFlight::new(10);
        let (first, a) = publication(1);
        let (second, b) = publication(2);
        in_flight.push(ids(&["f1", "f2"]), a);
        in_flight.push(ids(&["f2"]), b);
        assert!(in_flight.holds_any(["f1"].into_iter()));
        assert!(in_flight.holds_any(["x", "f2"].into_iter()));
        assert!(!in_flight.holds_any(["x", "y"].into_iter()));
        ack(Some(first));
        in_flight.next().await;
        assert!(!in_flight.holds_any(["f1"].into_iter()), "f1's only publication settled");
        assert!(in_flight.holds_any(["f2"].into_iter()), "f2 is still in the second");
        ack(Some(second));
        in_flight.next().await;
        assert!(!in_flight.holds_any(["f2"].into_iter()));
    }

    /// What the detector does with a record whose finding is in flight:
    /// settles earlier publications until it is not, then publishes. The
    /// versions of one finding reach the broker one after the other.
    #[tokio::test]
    async fn versions_of_one_finding_are_never_in_flight_together() {
        let mut in_flight: InFlight<u32> = InFlight::new(100);
        let mut acks = std::collections::VecDeque::new();
        let mut settled_before = Vec::new();
        for (version, id) in [(1, "f"), (2, "g"), (3, "f"), (4, "f"), (5, "h")] {
            let mut settled = Vec::new();
            while in_flight.holds_any([id].into_iter()) {
                // The broker acks the earliest in flight.
                ack(acks.pop_front());
                settled.push(in_flight.next().await.expect("an id is held: something is in flight"));
            }
            settled_before.push((version, settled));
            let (ack, publishing) = publication(version);
            in_flight.push(ids(&[id]), publishing);
            acks.push_back(ack);
            assert!(in_flight.ids.values().all(|&n| n == 1), "two versions of one id in flight: {:?}", in_flight.ids);
        }
        // Version 3 of f starts once 1 is acked; 4 once 2 (read before it) and 3 are; h waits for nothing.
        let expected: Vec<(u32, Vec<u32>)> = vec![(1, vec![]), (2, vec![]), (3, vec![1]), (4, vec![2, 3]), (5, vec![])];
        assert_eq!(settled_before, expected);
        assert_eq!(in_flight.len(), 2, "f (4) and h (5) in flight");
    }
}
