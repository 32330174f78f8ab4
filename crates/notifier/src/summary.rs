//! The first start's summary: the findings already in the alerts topic when
//! a notifier group starts for the first time, folded into one message
//! instead of one message each. No I/O (the reading is in `first_start`).
//!
//! A finding is counted once, as its latest record says (the detector
//! publishes a finding again when its figures change, and once more as
//! withdrawn when it no longer holds): the open ones are counted per rule
//! with their amount at stake; the withdrawn ones only as a number.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use distans_domain::rules::{FindingStatus, Severity};
use distans_wire::TimedFinding;
use serde::{Deserialize, Serialize};

/// The latest record of each finding in the backlog, by finding id.
#[derive(Debug, Default)]
pub struct Backlog {
    latest: BTreeMap<String, TimedFinding>,
    /// Records on the topic that were not findings.
    pub undecodable: u64,
}

impl Backlog {
    /// Takes `timed` as its finding's latest record (records are read in
    /// partition order, and the detector keys a finding's records by its
    /// id, so a later record is a later state).
    pub fn add(&mut self, timed: TimedFinding) {
        self.latest.insert(timed.finding.finding_id.clone(), timed);
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for timed in self.latest.values() {
            let f = &timed.finding;
            if f.status != FindingStatus::Active {
                s.withdrawn += 1;
                continue;
            }
            let tally = s.rules.entry(f.rule_id.clone()).or_insert(RuleTally {
                severity: f.severity,
                findings: 0,
                amount_at_stake_ore: 0,
            });
            tally.findings += 1;
            tally.amount_at_stake_ore += f.amount_at_stake_ore;
            tally.severity = tally.severity.max(f.severity);
            s.findings += 1;
            s.amount_at_stake_ore += f.amount_at_stake_ore;
            s.visits = Some(Span::including(s.visits, f.visit_date));
            s.detected_ms = Some(Span::including(s.detected_ms, timed.detected_at_ms));
            s.buyers.insert(f.buyer_org_number.clone());
        }
        s
    }
}

/// One rule's open findings in the backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTally {
    /// The highest severity among them (a rule's findings share one).
    pub severity: Severity,
    pub findings: usize,
    /// Öre, signed.
    pub amount_at_stake_ore: i64,
}

/// What the first start's summary message says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Open findings per rule id.
    pub rules: BTreeMap<String, RuleTally>,
    /// Open findings in all.
    pub findings: usize,
    /// Their amount at stake, öre.
    pub amount_at_stake_ore: i64,
    /// Findings whose latest record is a withdrawal: not counted above.
    pub withdrawn: usize,
    /// The visit dates of the open findings, first and last.
    pub visits: Option<Span<NaiveDate>>,
    /// When the open findings were detected, first and last (ms since the epoch).
    pub detected_ms: Option<Span<i64>>,
    /// The home regions invoiced (organisation numbers).
    pub buyers: BTreeSet<String>,
}

/// The first and the last of the values seen (visit dates, detection
/// times); there is a span only once there is a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span<T> {
    pub first: T,
    pub last: T,
}

impl<T: Ord + Copy> Span<T> {
    /// `span` widened to take in `value`; `value` alone when there is no
    /// span yet.
    pub fn including(span: Option<Span<T>>, value: T) -> Span<T> {
        match span {
            None => Span { first: value, last: value },
            Some(Span { first, last }) => Span { first: first.min(value), last: last.max(value) },
        }
    }
}

impl Summary {
    /// The rules, the largest amount at stake first (then by id).
    pub fn rules_by_amount(&self) -> Vec<(&str, &RuleTally)> {
        let mut rules: Vec<(&str, &RuleTally)> = self.rules.iter().map(|(id, t)| (id.as_str(), t)).collect();
        rules.sort_by(|a, b| b.1.amount_at_stake_ore.cmp(&a.1.amount_at_stake_ore).then(a.0.cmp(b.0)));
        rules
    }

    /// Whether there is anything to tell: an empty backlog, or one whose
    /// findings were all withdrawn, sends no summary.
    pub fn is_empty(&self) -> bool {
        self.findings == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::rules::{Withdrawal, DOUBLE_INVOICING, WRONG_PRICE};
    use distans_domain::testing;

    fn timed(rule: &distans_domain::rules::Rule, key: &str, amount: i64, day: u32, detected: i64) -> TimedFinding {
        let mut finding = testing::finding(rule, key);
        finding.amount_at_stake_ore = amount;
        finding.visit_date = NaiveDate::from_ymd_opt(2025, 3, day).expect("test date");
        TimedFinding { finding, detected_at_ms: detected }
    }

    #[test]
    fn open_findings_are_counted_per_rule_at_their_latest_figures() {
        let mut b = Backlog::default();
        b.add(timed(&WRONG_PRICE, "ZVF1:1", 15_000, 3, 100));
        b.add(timed(&WRONG_PRICE, "ZVF1:2", 10_000, 9, 300));
        // Published again with a new amount: counted once, at 20 000.
        b.add(timed(&WRONG_PRICE, "ZVF1:1", 20_000, 3, 200));
        b.add(timed(&DOUBLE_INVOICING, "ZVF1:3", 50_000, 1, 50));
        // Withdrawn after it was published: not open.
        let mut gone = timed(&DOUBLE_INVOICING, "ZVF1:4", 99_900, 28, 400);
        b.add(gone.clone());
        gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
        b.add(gone);
        let s = b.summary();
        assert_eq!((s.findings, s.amount_at_stake_ore, s.withdrawn), (3, 80_000, 1));
        assert_eq!(s.rules["wrong_price"].findings, 2);
        assert_eq!(s.rules["wrong_price"].amount_at_stake_ore, 30_000);
        assert_eq!(s.rules["double_invoicing"].amount_at_stake_ore, 50_000);
        assert_eq!(
            s.rules_by_amount().iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            ["double_invoicing", "wrong_price"]
        );
        assert_eq!(
            s.visits.map(|v| (v.first.to_string(), v.last.to_string())),
            Some(("2025-03-01".into(), "2025-03-09".into())),
            "the withdrawn finding's date is not in the span"
        );
        assert_eq!(s.detected_ms, Some(Span { first: 50, last: 300 }));
        assert_eq!(s.buyers.iter().collect::<Vec<_>>(), ["2321000230"]);
    }

    #[test]
    fn a_backlog_of_withdrawn_findings_is_empty() {
        let mut b = Backlog::default();
        assert!(b.summary().is_empty());
        let mut gone = timed(&WRONG_PRICE, "ZVF1:1", 15_000, 3, 100);
        gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Corrected);
        b.add(gone);
        let s = b.summary();
        assert!(s.is_empty());
        assert_eq!(s.withdrawn, 1);
    }
}
