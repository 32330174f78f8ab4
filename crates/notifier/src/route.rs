//! What the notifier does with one finding read from the alerts topic,
//! decided without I/O from the record, whether it revises a finding
//! published before ([`distans_wire::REVISION_HEADER`]) and the digests
//! waiting: so the whole life of a finding (raised, revised, withdrawn;
//! before or after its digest was sent) is tested here.
//!
//! Staff are told of each finding once while it stands, and once when it
//! is withdrawn. The detector publishes a finding again under its id when
//! its figures change (an early visit arriving late gives a later contact
//! a new rank) and withdrawn when the lines no longer show it; which
//! version comes when depends on the order lines arrive in across
//! partitions, and so does whether the digest holding the first version
//! was sent before the next arrives. So:
//!
//! - a finding still waiting in a digest is updated there (counted once, at
//!   its latest figures), whichever day its new version was detected on, or
//!   left out of it when withdrawn;
//! - a revision of a finding no digest holds was told already (at once, in
//!   a digest sent, or in the first start's summary): not told again;
//! - a withdrawal of a finding no digest holds was told already: a
//!   withdrawal message, whatever its severity;
//! - a finding that became active (new, or again after a withdrawal) is
//!   sent at once from the immediate severity, else goes into the digest of
//!   its rule, provider and day of detection.

use std::collections::BTreeMap;

use chrono::DateTime;
use distans_domain::rules::{FindingStatus, Severity};
use distans_wire::TimedFinding;

use crate::pending::{Group, Pending};

/// What to do with one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Send it now, one message: it became active, at least the immediate
    /// severity.
    Now,
    /// Into the pending digest of this group: the one it waits in, or its
    /// rule's, provider's and day's.
    Digest(Group),
    /// Withdrawn while it waits: left out of these digests (no message).
    LeaveOut(Vec<Group>),
    /// Withdrawn after staff were told of it: a withdrawal message.
    Withdrawal,
    /// Revised after staff were told of it: nothing to send (the dashboard
    /// shows its figures).
    Told,
}

/// The digest group of `timed`: its rule, provider and day of detection.
pub fn group_of(timed: &TimedFinding) -> Group {
    let f = &timed.finding;
    let day = DateTime::from_timestamp_millis(timed.detected_at_ms).unwrap_or_default().date_naive();
    (f.rule_id.clone(), f.provider_org_number.clone(), day.to_string())
}

/// The route of `timed` (a revision when `revises`), with the digests
/// `pending` and findings of at least `immediate` severity sent at once.
pub fn route(pending: &BTreeMap<Group, Pending>, timed: &TimedFinding, revises: bool, immediate: Severity) -> Route {
    let f = &timed.finding;
    let mut holding: Vec<Group> =
        pending.iter().filter(|(_, p)| p.digest.holds(&f.finding_id)).map(|(g, _)| g.clone()).collect();
    if f.status != FindingStatus::Active {
        return if holding.is_empty() { Route::Withdrawal } else { Route::LeaveOut(holding) };
    }
    if !holding.is_empty() {
        // One at most (digests persisted before this rule may hold a
        // finding twice, under two days: the first is updated).
        return Route::Digest(holding.swap_remove(0));
    }
    if revises {
        return Route::Told;
    }
    if f.severity >= immediate {
        return Route::Now;
    }
    Route::Digest(group_of(timed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Digest;
    use distans_domain::rules::{Finding, Rule, Withdrawal, DOUBLE_INVOICING, EXCESSIVE_PSYCHOLOGIST};
    use distans_domain::testing;

    const DAY_MS: i64 = 86_400_000;

    /// What staff were told over the webhook, per finding id: counted in a
    /// message sent at once or in a digest sent, less withdrawals; and the
    /// digests waiting.
    #[derive(Default)]
    struct Webhook {
        pending: BTreeMap<Group, Pending>,
        told: BTreeMap<String, i64>,
    }

    impl Webhook {
        /// Reads one record as the notifier does.
        fn read(&mut self, timed: &TimedFinding, revises: bool) {
            let id = timed.finding.finding_id.clone();
            match route(&self.pending, timed, revises, Severity::High) {
                Route::Now => *self.told.entry(id).or_default() += 1,
                Route::Withdrawal => *self.told.entry(id).or_default() -= 1,
                Route::Told => {}
                Route::Digest(group) => {
                    let pending = self
                        .pending
                        .entry(group.clone())
                        .or_insert_with(|| Pending { digest: Digest::new(timed, day(&group)), first_seen_ms: 0 });
                    pending.digest.add(timed);
                }
                Route::LeaveOut(groups) => {
                    for group in groups {
                        let pending = self.pending.get_mut(&group).expect("a digest holding it");
                        pending.digest.withdraw(&id);
                        if pending.digest.findings == 0 {
                            self.pending.remove(&group);
                        }
                    }
                }
            }
        }

        /// Sends every digest waiting.
        fn send_digests(&mut self) {
            for (_, pending) in std::mem::take(&mut self.pending) {
                for id in pending.digest.finding_ids() {
                    *self.told.entry(id).or_default() += 1;
                }
            }
        }
    }

    fn day(group: &Group) -> chrono::NaiveDate {
        group.2.parse().expect("a day")
    }

    /// A version of the finding of `rule` about `key`: active with `amount`
    /// at stake, or withdrawn (superseded), detected on day `day` of 2025.
    fn version(rule: &Rule, key: &str, amount: i64, withdrawn: bool, day: i64) -> TimedFinding {
        let mut finding = Finding { amount_at_stake_ore: amount, ..testing::finding(rule, key) };
        if withdrawn {
            finding.status = FindingStatus::Withdrawn(Withdrawal::Superseded);
        }
        TimedFinding { finding, detected_at_ms: 1_735_689_600_000 + day * DAY_MS }
    }

    /// The end-to-end pipeline test's failure: the 22nd psychologist
    /// contact of a limit of 20 arrived before an earlier one, so its
    /// finding was published with rank 21, then (another contact's finding
    /// between) again with rank 22. Whenever the digests were sent, staff
    /// are told of two findings, each once.
    #[test]
    fn a_finding_revised_after_its_digest_was_sent_is_not_told_again() {
        let (k134, k135) = ("ZVF23210000652505023001:134", "ZVF23210000652505023001:135");
        let mut rank_22 = version(&EXCESSIVE_PSYCHOLOGIST, k135, 42_500, false, 0);
        rank_22.finding.evidence = "22nd psychologist/psychotherapist contact in 365 days (limit 20)".into();
        let records = [
            (version(&EXCESSIVE_PSYCHOLOGIST, k135, 42_500, false, 0), false),
            (version(&EXCESSIVE_PSYCHOLOGIST, k134, 42_500, false, 0), false),
            (rank_22, true),
        ];
        for sent_after in 0..=records.len() {
            let mut webhook = Webhook::default();
            for (i, (timed, revises)) in records.iter().enumerate() {
                if i == sent_after {
                    webhook.send_digests();
                }
                webhook.read(timed, *revises);
            }
            webhook.send_digests();
            let told: Vec<(&str, i64)> = webhook.told.iter().map(|(id, n)| (id.as_str(), *n)).collect();
            let id = |key| distans_domain::rules::finding_id(EXCESSIVE_PSYCHOLOGIST.id, key);
            let mut expected = [(id(k134), 1), (id(k135), 1)];
            expected.sort();
            let expected: Vec<(&str, i64)> = expected.iter().map(|(id, n)| (id.as_str(), *n)).collect();
            assert_eq!(told, expected, "digests sent before record {sent_after}");
        }
    }

    /// A finding's whole life (raised, revised, withdrawn, raised again,
    /// revised; some versions detected on the next days), with the digests
    /// sent between any of its records: staff are told of it once while it
    /// stands and once withdrawn when it no longer does, whatever its
    /// severity.
    #[test]
    fn staff_are_told_each_finding_once_whenever_the_digests_go_out() {
        for rule in [&EXCESSIVE_PSYCHOLOGIST, &DOUBLE_INVOICING] {
            let v = |amount, withdrawn, day| version(rule, "ZVF1:1", amount, withdrawn, day);
            // (record, revises, told after it once every digest is sent)
            let life = [
                (v(100, false, 0), false, 1),
                (v(200, false, 0), true, 1),
                (v(300, false, 1), true, 1),
                (v(300, true, 1), false, 0),
                (v(400, false, 1), false, 1),
                (v(500, false, 2), true, 1),
                (v(500, true, 3), false, 0),
            ];
            for sends in 0u32..1 << life.len() {
                let mut webhook = Webhook::default();
                for (i, (timed, revises, told)) in life.iter().enumerate() {
                    webhook.read(timed, *revises);
                    if sends & (1 << i) != 0 {
                        webhook.send_digests();
                    }
                    let mut after = Webhook { pending: webhook.pending.clone(), told: webhook.told.clone() };
                    after.send_digests();
                    let now = after.told.values().sum::<i64>();
                    assert_eq!(now, *told, "{}: after record {i}, digests sent after {sends:#b}", rule.id);
                }
            }
        }
    }

    /// A finding revised on the next day while its digest still waits is
    /// updated in that digest, not counted in the new day's as well.
    #[test]
    fn a_finding_revised_on_another_day_stays_in_the_digest_it_waits_in() {
        let first = version(&EXCESSIVE_PSYCHOLOGIST, "ZVF1:1", 100, false, 0);
        let next_day = version(&EXCESSIVE_PSYCHOLOGIST, "ZVF1:1", 200, false, 1);
        let mut pending = BTreeMap::new();
        pending.insert(
            group_of(&first),
            Pending { digest: Digest::new(&first, "2025-01-01".parse().expect("day")), first_seen_ms: 0 },
        );
        pending.get_mut(&group_of(&first)).expect("there").digest.add(&first);
        assert_ne!(group_of(&first), group_of(&next_day));
        assert_eq!(route(&pending, &next_day, true, Severity::High), Route::Digest(group_of(&first)));
        // A record of it again that is no revision (a re-send) too.
        assert_eq!(route(&pending, &next_day, false, Severity::High), Route::Digest(group_of(&first)));
    }

    #[test]
    fn routes() {
        let none = BTreeMap::new();
        let medium = version(&EXCESSIVE_PSYCHOLOGIST, "ZVF1:1", 100, false, 0);
        let high = version(&DOUBLE_INVOICING, "ZVF1:2", 100, false, 0);
        assert_eq!(route(&none, &medium, false, Severity::High), Route::Digest(group_of(&medium)));
        assert_eq!(route(&none, &high, false, Severity::High), Route::Now);
        assert_eq!(route(&none, &medium, false, Severity::Medium), Route::Now);
        let low = version(&distans_domain::rules::SAME_DAY_REPEAT, "ZVF1:3", 100, false, 0);
        assert_eq!(route(&none, &low, false, Severity::Medium), Route::Digest(group_of(&low)));
    }
}
