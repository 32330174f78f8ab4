//! An invoice line's whole life: corrections, credit notes, redeliveries and
//! late arrivals give the same active findings in any order.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::testing::enriched_line_on as line;
use crate::{EnrichedLine, InvoiceType};

use super::tests::date;

/// The rules' tests' settings, with small windows so that a few lines reach
/// them: two psychologist contacts in 30 days, two contacts in a week.
fn settings() -> RuleSettings {
    RuleSettings {
        physical_procedures: vec!["AA039".into()],
        psychologist_professions: vec!["PS".into()],
        psychologist_limit: 2,
        psychologist_window_days: 30,
        burst_limit: 2,
        needs_assessment_from: None,
        ..super::tests::settings()
    }
}

/// `l` as the record at `offset` of input partition 0 (its version).
fn at(mut l: EnrichedLine, offset: i64) -> EnrichedLine {
    l.source.partition = 0;
    l.source.offset = offset;
    l
}

/// A credit note on `invoice`, line 1, crediting `credited` (same contact).
fn credit_of(credited: &EnrichedLine, invoice: u32, offset: i64) -> EnrichedLine {
    let mut c = line(invoice, 1);
    c.invoice_type = InvoiceType::CreditNote;
    c.credited_invoice_id = Some(credited.invoice_id.clone());
    c.visit_date = credited.visit_date;
    c.visit_time = credited.visit_time;
    c.net_amount_ore = credited.net_amount_ore;
    c.gross_amount_ore = credited.gross_amount_ore;
    c.invoice_date = credited.invoice_date + chrono::Days::new(10);
    at(c, offset)
}

/// Feeds `lines` in order; returns every change and the active findings as
/// (rule, subject line key, status).
fn run(lines: &[&EnrichedLine]) -> (Vec<Finding>, Vec<(String, String)>) {
    let mut engine = RuleEngine::new(settings());
    let changes: Vec<Finding> = lines.iter().flat_map(|l| engine.observe(l)).collect();
    let mut active: Vec<(String, String)> =
        engine.active_findings().map(|f| (f.rule_id.clone(), f.line_keys[0].clone())).collect();
    active.sort();
    (changes, active)
}

fn active(rules_and_keys: &[(&str, &EnrichedLine)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = rules_and_keys.iter().map(|(r, l)| (r.to_string(), l.key())).collect();
    v.sort();
    v
}

fn withdrawn(changes: &[Finding]) -> Vec<(String, Withdrawal)> {
    changes.iter().filter_map(|f| Some((f.rule_id.clone(), f.status.withdrawal()?))).collect()
}

#[test]
fn a_correction_replaces_the_old_version_and_raises_no_false_double() {
    // One patient's two lines (two days), re-sent with each visit a day earlier.
    let mut a = at(line(1, 1), 1);
    a.visit_date = date("2025-02-14");
    let mut b = at(line(1, 2), 2);
    b.visit_date = date("2025-02-20");
    let mut a2 = a.clone();
    a2.visit_date = date("2025-02-13");
    a2.source.offset = 3;
    let mut b2 = b.clone();
    b2.visit_date = date("2025-02-19");
    b2.source.offset = 4;
    // Before versions, the old and new copies of `a` formed a double (high).
    let (changes, active_now) = run(&[&a, &b, &a2, &b2]);
    assert!(changes.is_empty(), "{changes:?}");
    assert!(active_now.is_empty());
    // An older version arriving after a newer one changes nothing.
    let (_, late_old) = run(&[&a2, &b2, &a, &b]);
    assert!(late_old.is_empty());
}

#[test]
fn a_correction_that_fixes_a_finding_withdraws_it_as_corrected() {
    let mut wrong = at(line(1, 1), 1);
    wrong.unit_price_ore = 65_000;
    let fixed = at(line(1, 1), 2);
    let (changes, active_now) = run(&[&wrong, &fixed]);
    assert_eq!(withdrawn(&changes), [("wrong_price".to_string(), Withdrawal::Corrected)]);
    assert!(active_now.is_empty());
    assert_eq!(changes[0].finding_id, changes[1].finding_id, "withdrawn under the same id");
}

#[test]
fn a_credit_note_before_or_after_the_line_it_credits() {
    let mut wrong = at(line(1, 1), 1);
    wrong.unit_price_ore = 65_000;
    let credit = credit_of(&wrong, 9, 2);
    let (changes, active_now) = run(&[&wrong, &credit]);
    assert_eq!(withdrawn(&changes), [("wrong_price".to_string(), Withdrawal::Credited)]);
    assert!(active_now.is_empty());
    let (changes, active_now) = run(&[&credit, &wrong]);
    assert!(changes.is_empty() && active_now.is_empty(), "{changes:?}");
}

#[test]
fn a_double_credited_later_is_withdrawn_and_the_original_is_by_number() {
    // Line 10 and line 9 of one invoice are the same contact: line 9 is the original.
    let nine = at(line(1, 9), 1);
    let ten = at(line(1, 10), 2);
    let (changes, active_now) = run(&[&ten, &nine]);
    assert_eq!(active_now, active(&[("double_invoicing", &ten)]));
    assert_eq!(changes[0].line_keys, vec![ten.key(), nine.key()]);
    // A credit note for the invoice cancels its lines in line order, as far
    // as it reaches: line 9 (500 kr), so line 10 becomes the original.
    let credit = credit_of(&nine, 5, 3);
    let (changes, active_now) = run(&[&nine, &ten, &credit]);
    assert_eq!(withdrawn(&changes), [("double_invoicing".to_string(), Withdrawal::Superseded)]);
    assert!(active_now.is_empty());
}

#[test]
fn a_re_invoice_before_or_after_the_credit_note_of_the_original() {
    let original = at(line(1, 1), 1);
    let credit = credit_of(&original, 2, 2);
    let mut again = at(line(3, 1), 3);
    again.invoice_date = date("2025-04-10");
    for order in [[&original, &credit, &again], [&original, &again, &credit], [&again, &credit, &original]] {
        let (_, active_now) = run(&order);
        assert!(active_now.is_empty(), "{order:?}: {active_now:?}");
    }
    // Without the credit note the re-invoice is a double.
    let (_, active_now) = run(&[&original, &again]);
    assert_eq!(active_now, active(&[("double_invoicing", &again)]));
}

#[test]
fn credits_beyond_what_was_invoiced_are_over_crediting() {
    let invoiced = at(line(1, 1), 1);
    let first = credit_of(&invoiced, 2, 2);
    let second = credit_of(&invoiced, 3, 3);
    let (changes, active_now) = run(&[&invoiced, &first, &second]);
    assert_eq!(active_now, active(&[("over_credited", &second)]));
    let over = changes.iter().find(|f| f.rule_id == "over_credited").expect("finding");
    assert_eq!(over.amount_at_stake_ore, 50_000);
    assert_eq!(over.line_keys, vec![second.key(), invoiced.key()]);
    assert!(
        over.evidence.contains("500 kr invoiced") && over.evidence.contains("1 000 kr credited"),
        "{}",
        over.evidence
    );
    // One credit note for more than the line: over-credited by the difference.
    let mut large = credit_of(&invoiced, 2, 2);
    large.net_amount_ore = 60_000;
    let (changes, _) = run(&[&large, &invoiced]);
    assert_eq!(changes.iter().find(|f| f.rule_id == "over_credited").map(|f| f.amount_at_stake_ore), Some(10_000));
    // A credit note whose line has not arrived is not judged.
    assert!(run(&[&first, &second]).1.is_empty());
}

/// A psychologist contact on `day` (invoice `invoice`, line 1), as the
/// record at `offset`.
fn psychologist_visit(invoice: u32, day: &str, offset: i64) -> EnrichedLine {
    let mut l = at(line(invoice, 1), offset);
    l.profession_code = "PS".into();
    l.tariff_ore = None;
    l.visit_date = date(day);
    l.invoice_date = date("2025-04-10");
    l
}

#[test]
fn corrections_across_months_buyers_and_out_of_a_window() {
    // Psychologist contacts, limit 2 in 30 days: the third is over.
    let visit = psychologist_visit;
    let (a, b, c) = (visit(1, "2025-03-01", 1), visit(2, "2025-03-08", 2), visit(3, "2025-03-15", 3));
    let (_, before) = run(&[&a, &b, &c]);
    assert_eq!(before, active(&[("excessive_psychologist_contacts", &c)]));
    // The first visit is corrected into January, out of the 30-day window,
    // and to another buyer: the finding about the third goes.
    let mut a2 = visit(1, "2025-01-20", 4);
    a2.buyer_org_number = "2321000198".into();
    let (changes, after) = run(&[&a, &b, &c, &a2]);
    assert!(after.is_empty(), "{after:?}");
    let reasons = withdrawn(&changes);
    assert!(reasons.contains(&("excessive_psychologist_contacts".to_string(), Withdrawal::Superseded)), "{reasons:?}");
    // The corrected buyer is on the line's findings: a new one about it shows it.
    let mut a3 = a2.clone();
    a3.unit_price_ore = 1;
    a3.tariff_ore = Some(42_500);
    a3.source.offset = 5;
    let (changes, _) = run(&[&a, &a2, &a3]);
    let price = changes.iter().find(|f| f.rule_id == "wrong_price").expect("finding");
    assert_eq!(price.buyer_org_number, "2321000198");
}

/// A finding published again with new figures is a revision of the one
/// active before, whatever made it change; one that becomes active, first
/// or again after a withdrawal, is not. Psychologist contacts arriving out
/// of visit order show it: the fourth contact is over the limit with rank
/// 3 until the third arrives and makes it rank 4 (the end-to-end pipeline
/// test's 22nd contact of a limit of 20, arriving before an earlier one).
#[test]
fn a_finding_published_again_with_new_figures_revises_it() {
    let visit = psychologist_visit;
    let first = visit(1, "2025-03-01", 1);
    let second = visit(2, "2025-03-08", 2);
    let third = visit(3, "2025-03-15", 3);
    let fourth = visit(4, "2025-03-22", 4);
    let psychologist = |changes: Vec<Change>| -> Vec<(String, Option<Withdrawal>, bool, String)> {
        changes
            .into_iter()
            .filter(|c| c.finding.rule_id == "excessive_psychologist_contacts")
            .map(|c| (c.finding.line_keys[0].clone(), c.finding.status.withdrawal(), c.revises, c.finding.evidence))
            .collect()
    };
    let mut engine = RuleEngine::new(settings());
    for l in [&first, &second] {
        assert_eq!(psychologist(engine.changes(l)), []);
    }
    let rank = |n: &str| format!("{n} psychologist/psychotherapist contact in 30 days (limit 2)");
    assert_eq!(psychologist(engine.changes(&fourth)), [(fourth.key(), None, false, rank("3rd"))], "raised");
    assert_eq!(
        psychologist(engine.changes(&third)),
        [(third.key(), None, false, rank("3rd")), (fourth.key(), None, true, rank("4th"))],
        "the third raised, the fourth revised"
    );
    // The first visit corrected out of the window: the third is no longer
    // over the limit, the fourth is again the third in its window.
    let moved = visit(1, "2025-01-20", 5);
    assert_eq!(
        psychologist(engine.changes(&moved)),
        [(fourth.key(), None, true, rank("3rd")), (third.key(), Some(Withdrawal::Superseded), false, rank("3rd"))],
    );
    // Back in the window: the third is raised again, not revised.
    let back = visit(1, "2025-03-01", 6);
    assert_eq!(
        psychologist(engine.changes(&back)),
        [(third.key(), None, false, rank("3rd")), (fourth.key(), None, true, rank("4th"))],
    );
}

/// A small world of lines: two patients, three days, two professions,
/// invoices 1–4 with lines 1, 2, 9 and 10, credit notes, corrections.
fn records() -> impl Strategy<Value = Vec<EnrichedLine>> {
    let record = (
        0u8..2,  // patient
        0u8..3,  // visit day
        0u8..2,  // profession
        1u32..5, // invoice
        prop::sample::select(vec![1, 2, 9, 10]),
        0u8..6, // 0: credit note of another invoice, 1: wrong price, else clean
        0u8..3, // invoice date
    );
    prop::collection::vec(record, 1..8).prop_map(|specs| {
        specs
            .into_iter()
            .map(|(patient, day, profession, invoice, number, kind, invoiced)| {
                let mut l = line(invoice, number);
                l.patient_pseudonym = format!("{:032x}", u128::from(patient) + 1);
                l.visit_date = date("2025-03-03") + chrono::Days::new(u64::from(day) * 2);
                l.invoice_date = date("2025-04-01") + chrono::Days::new(u64::from(invoiced));
                if profession == 1 {
                    l.profession_code = "PS".into();
                    l.tariff_ore = None;
                }
                match kind {
                    0 => {
                        l.invoice_type = InvoiceType::CreditNote;
                        l.credited_invoice_id = Some(line(invoice % 4 + 1, 1).invoice_id);
                    }
                    1 => l.unit_price_ore = 65_000,
                    _ => {}
                }
                l
            })
            .collect()
    })
}

/// Versions as a seller sends them: each record at the next offset, so a
/// record with an identity seen before is a correction; some sent twice.
fn with_versions(lines: Vec<EnrichedLine>, duplicates: &[usize]) -> Vec<EnrichedLine> {
    let mut out: Vec<EnrichedLine> = Vec::new();
    for (offset, l) in lines.into_iter().enumerate() {
        out.push(at(l, i64::try_from(offset).unwrap_or(i64::MAX)));
    }
    for &d in duplicates {
        if let Some(l) = out.get(d % out.len().max(1)).cloned() {
            out.push(l);
        }
    }
    out
}

/// The active findings, with everything they say, and a check that the
/// stream of changes adds up to them.
fn outcome(lines: &[EnrichedLine]) -> BTreeMap<String, Finding> {
    let mut engine = RuleEngine::new(settings());
    let mut from_changes: BTreeMap<String, Finding> = BTreeMap::new();
    for l in lines {
        for Change { finding, revises } in engine.changes(l) {
            match finding.status {
                FindingStatus::Active => {
                    assert_eq!(revises, from_changes.contains_key(&finding.finding_id), "revises: was it active?");
                    from_changes.insert(finding.finding_id.clone(), finding)
                }
                FindingStatus::Withdrawn(_) => {
                    assert!(!revises, "a withdrawal revises nothing");
                    from_changes.remove(&finding.finding_id)
                }
            };
        }
    }
    let active: BTreeMap<String, Finding> =
        engine.active_findings().map(|f| (f.finding_id.clone(), f.clone())).collect();
    assert_eq!(from_changes, active, "the changes add up to the active findings");
    active
}

/// Every permutation of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k - 1 {
            heap(k - 1, items, out);
            let j = if k % 2 == 0 { i } else { 0 };
            items.swap(j, k - 1);
        }
        heap(k - 1, items, out);
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

proptest! {
    // 256 cases in every test run; `PROPTEST_CASES=10000 cargo test --release -p distans-domain lifecycle` for the full run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    /// Any arrival order, redeliveries, and a replay from the middle give the
    /// active findings of the canonical order (the order the seller sent).
    #[test]
    fn the_active_findings_do_not_depend_on_arrival_order(
        lines in records(),
        duplicates in prop::collection::vec(0usize..8, 0..2),
        shuffles in prop::collection::vec(any::<prop::sample::Index>(), 8),
        middle in any::<prop::sample::Index>(),
    ) {
        let canonical = with_versions(lines, &duplicates);
        let expected = outcome(&canonical);
        if canonical.len() <= 6 {
            for order in permutations(&canonical) {
                prop_assert_eq!(&outcome(&order), &expected);
            }
        } else {
            for seed in &shuffles {
                let mut order = canonical.clone();
                let n = order.len();
                for i in (1..n).rev() {
                    order.swap(i, seed.index(i + 1).min(i));
                }
                order.rotate_left(seed.index(n));
                prop_assert_eq!(&outcome(&order), &expected);
            }
        }
        // A replay from the middle: what was read before a crash, read again.
        let cut = middle.index(canonical.len() + 1);
        let replayed: Vec<EnrichedLine> = canonical[..cut].iter().chain(&canonical).cloned().collect();
        prop_assert_eq!(&outcome(&replayed), &expected);
    }
}
