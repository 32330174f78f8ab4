//! The rules' tests: each line rule's examples from the catalogue, the
//! boundaries of every rule, and the engine's order independence.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveTime};

use super::evidence::ordinal_english as ordinal;
use super::*;
use crate::text::Language;
// The clean physician line (no rule fires on it) on invoice n, line m.
use crate::testing::enriched_line_on as line;
use crate::{testing, EnrichedLine, InvoiceType, TariffClass};

pub(super) fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

pub(super) fn settings() -> RuleSettings {
    RuleSettings {
        disabled: vec![],
        contact_product_categories: vec!["04".into()],
        referral_required_chapters: vec!["5".into()],
        late_invoice_months: 6,
        non_billable_channels: vec!["phone".into()],
        home_regions: [("2321000230".to_string(), "23".to_string())].into_iter().collect(),
        physical_procedures: vec!["AA039".into(), "AD041".into()],
        psychologist_professions: vec!["PS".into(), "PT".into()],
        psychologist_limit: 20,
        psychologist_window_days: 365,
        same_day_limit: 1,
        burst_limit: 3,
        burst_window_days: 7,
        needs_assessment_from: Some(date("2025-10-01")),
    }
}

fn rule_ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn check(mutate: impl FnOnce(&mut EnrichedLine), expected: &[&str]) {
    let mut engine = RuleEngine::new(settings());
    let mut l = line(1, 1);
    mutate(&mut l);
    assert_eq!(rule_ids(&engine.observe(&l)), expected);
}

#[test]
fn line_rules_with_their_boundaries() {
    check(|_| {}, &[]);
    check(|l| l.unit_price_ore = 50_001, &["wrong_price"]);
    check(|l| l.unit_price_ore = 49_999, &["wrong_price"]);
    check(|l| l.tariff_ore = None, &[]);
    check(|l| l.product_category = "05".into(), &["wrong_product"]);
    check(|l| l.agreement_chapter = "5".into(), &["no_referral"]);
    check(
        |l| {
            l.agreement_chapter = "5".into();
            l.remittance_number = Some("R1".into());
        },
        &[],
    );
    check(|l| l.invoice_date = date("2025-08-14"), &[]); // exactly six months
    check(|l| l.invoice_date = date("2025-08-15"), &["late_invoice"]);
    check(|l| l.contact_channel = Some("phone".into()), &["non_billable_contact"]);
    check(|l| l.patient_county_code = "25".into(), &["patient_not_resident"]);
    check(
        |l| {
            l.patient_county_code = "25".into();
            l.buyer_org_number = "2321000999".into(); // a buyer whose county is not configured
        },
        &[],
    );
    check(|l| l.procedure_codes.push("AA039".into()), &["physical_procedure"]);
    check(
        |l| {
            l.visit_date = date("2025-09-30");
            l.invoice_date = date("2025-10-10");
            l.needs_assessment = Some(false);
        },
        &[],
    );
    check(
        |l| {
            l.visit_date = date("2025-10-01");
            l.invoice_date = date("2025-10-10");
            l.needs_assessment = Some(false);
        },
        &["missing_needs_assessment"],
    );
    check(
        |l| {
            l.visit_date = date("2025-10-01");
            l.invoice_date = date("2025-10-10");
            l.needs_assessment = None;
        },
        &[],
    );
    check(|l| l.invoice_type = InvoiceType::CreditNote, &[]);
}

#[test]
fn evidence_and_amount_at_stake() {
    let mut engine = RuleEngine::new(settings());
    let mut l = line(1, 1);
    l.unit_price_ore = 65_000;
    l.quantity = 2;
    let f = engine.observe(&l).remove(0);
    assert_eq!(f.amount_at_stake_ore, 30_000);
    assert_eq!(f.evidence, "unit price 650 kr, tariff 500 kr for physician on 2025-02-14");
    assert_eq!(f.evidence_in(Language::Swedish), "styckpris 650 kr, taxa 500 kr för läkare den 2025-02-14");
    assert_eq!(f.evidence_in(Language::English), f.evidence);
    assert_eq!(f.finding_id, finding_id("wrong_price", &l.key()));
    assert_eq!(f.line_keys, vec![l.key()]);
    assert!(engine.observe(&l).is_empty(), "a finding is returned once");
}

/// The fixture finding is what the engine finds on the clean line at 650 kr,
/// but for the pseudonym, which the engine hashes.
#[test]
fn the_fixture_finding_is_the_engines() {
    let mut l = line(1, 1);
    l.unit_price_ore = 65_000;
    let found = RuleEngine::new(settings()).observe(&l);
    let pseudonym = found.first().and_then(|f| f.patient_pseudonym.clone());
    assert_eq!(found, vec![Finding { patient_pseudonym: pseudonym, ..testing::finding(&WRONG_PRICE, &l.key()) }]);
}

#[test]
fn a_disabled_rule_is_silent() {
    let mut s = settings();
    s.disabled.push("wrong_price".into());
    let mut engine = RuleEngine::new(s);
    let mut l = line(1, 1);
    l.unit_price_ore = 65_000;
    assert!(engine.observe(&l).is_empty());
}

#[test]
fn double_invoicing_in_either_order() {
    let first = line(1, 1);
    let mut double = line(2, 1);
    double.invoice_date = date("2025-04-10");
    for order in [[&first, &double], [&double, &first]] {
        let mut engine = RuleEngine::new(settings());
        let findings: Vec<Finding> = order.iter().flat_map(|l| engine.observe(l)).collect();
        assert_eq!(rule_ids(&findings), ["double_invoicing"]);
        assert_eq!(findings[0].line_keys, vec![double.key(), first.key()]);
        assert_eq!(findings[0].finding_id, finding_id("double_invoicing", &double.key()));
    }
    // Another time of day is another contact (and a same-day repeat).
    let mut engine = RuleEngine::new(settings());
    let mut later = line(2, 1);
    later.visit_time = NaiveTime::from_hms_opt(15, 0, 0);
    engine.observe(&first);
    assert_eq!(rule_ids(&engine.observe(&later)), ["same_day_repeat"]);
}

#[test]
fn a_credit_note_that_cancels_a_line_is_not_a_double() {
    let first = line(1, 1);
    let mut credit = line(3, 1);
    credit.invoice_type = InvoiceType::CreditNote;
    credit.credited_invoice_id = Some(first.invoice_id.clone());
    let mut again = line(2, 1);
    again.invoice_date = date("2025-04-10");
    let mut engine = RuleEngine::new(settings());
    let findings: Vec<Finding> = [&first, &credit, &again].iter().flat_map(|l| engine.observe(l)).collect();
    assert!(findings.is_empty(), "{findings:?}");
}

fn psychologist_visit(n: u32, visit: NaiveDate) -> EnrichedLine {
    let mut l = line(100 + n, 1);
    l.profession_code = "PS".into();
    l.tariff_class = TariffClass::Psychologist;
    l.tariff_ore = Some(42_500);
    l.unit_price_ore = 42_500;
    l.gross_amount_ore = 42_500;
    l.net_amount_ore = 42_500;
    l.visit_date = visit;
    l.invoice_date = visit + chrono::Days::new(20);
    l
}

#[test]
fn psychologist_contacts_over_the_limit_by_visit_date() {
    let start = date("2025-01-06");
    let visits: Vec<EnrichedLine> =
        (0..22).map(|i| psychologist_visit(i, start + chrono::Days::new(u64::from(i) * 7))).collect();
    let mut engine = RuleEngine::new(settings());
    // The 2nd to 22nd arrive first: 21 contacts, one over the limit.
    let mut findings: Vec<Finding> = visits[1..].iter().flat_map(|l| engine.observe(l)).collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].line_keys, vec![visits[21].key()]);
    assert_eq!(findings[0].evidence, "21st psychologist/psychotherapist contact in 365 days (limit 20)");
    // The earliest visit arrives late: now the 21st contact is over the limit
    // too, and the last one is the 22nd (its evidence changes, same id).
    findings = engine.observe(&visits[0]);
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(findings[0].line_keys, vec![visits[20].key()]);
    assert_eq!(findings[1].line_keys, vec![visits[21].key()]);
    assert_eq!(findings[1].evidence, "22nd psychologist/psychotherapist contact in 365 days (limit 20)");
    assert!(findings.iter().all(|f| f.status == FindingStatus::Active));
    // A contact a year later starts a fresh window.
    let mut next_year = psychologist_visit(99, start + chrono::Days::new(21 * 7 + 365));
    next_year.invoice_date = next_year.visit_date + chrono::Days::new(1);
    assert!(engine.observe(&next_year).is_empty());
}

#[test]
fn bursts_within_a_week() {
    let day = |n: u64| date("2025-03-03") + chrono::Days::new(n);
    let visit = |n: u32, on: NaiveDate| {
        let mut l = line(200 + n, 1);
        l.visit_date = on;
        l.invoice_date = date("2025-04-10");
        l
    };
    // Four contacts in seven days (days 0, 2, 4, 6): the fourth is a burst.
    let mut engine = RuleEngine::new(settings());
    let visits = [visit(0, day(0)), visit(1, day(2)), visit(2, day(4)), visit(3, day(6))];
    let findings: Vec<Finding> = visits.iter().flat_map(|l| engine.observe(l)).collect();
    assert_eq!(rule_ids(&findings), ["contact_burst"]);
    assert_eq!(findings[0].line_keys, vec![visits[3].key()]);
    assert_eq!(findings[0].evidence, "4th contact with LK within 7 days up to 2025-03-09 (limit 3)");
    // Spread over eight days (0, 2, 4, 7): no burst.
    let mut engine = RuleEngine::new(settings());
    let spread = [visit(0, day(0)), visit(1, day(2)), visit(2, day(4)), visit(3, day(7))];
    assert!(spread.iter().flat_map(|l| engine.observe(l)).next().is_none());
}

#[test]
fn ordinals() {
    let cases =
        [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (21, "21st"), (23, "23rd")];
    for (n, expected) in cases {
        assert_eq!(ordinal(n), expected);
    }
}

#[test]
fn every_rule_has_both_explanations_and_a_unique_id() {
    let ids: HashSet<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), RULES.len());
    for rule in RULES.iter() {
        let texts = [rule.name.sv, rule.name.en, rule.meaning.sv, rule.meaning.en];
        assert!(texts.iter().all(|text| !text.is_empty()), "{}", rule.id);
    }
    assert!(settings().problems().is_empty());
}

/// Every example of every line rule in the catalogue: the rule fires on the
/// changed clean line exactly when the example says, both when judged alone
/// and through the engine with every rule on.
#[test]
fn every_line_rule_follows_its_examples() {
    let mut line_rules = 0;
    for &rule in RULES {
        let Judged::Line { judge, examples } = rule.judged else { continue };
        line_rules += 1;
        assert!(examples.iter().any(|e| e.fires), "{}: an example that fires", rule.id);
        assert!(examples.iter().any(|e| !e.fires), "{}: an example that does not fire", rule.id);
        for example in examples {
            let mut l = line(1, 1);
            (example.change)(&mut l);
            let judged = judge(&l, &settings());
            assert_eq!(judged.is_some(), example.fires, "{}: {}", rule.id, example.case);
            let mut engine = RuleEngine::new(settings());
            let found = engine.observe(&l);
            let finding = found.iter().find(|f| f.rule_id == rule.id);
            assert_eq!(finding.is_some(), example.fires, "{}: {} (engine)", rule.id, example.case);
            if let (Some(finding), Some(judgement)) = (finding, judged) {
                assert_eq!(finding.amount_at_stake_ore, judgement.amount_at_stake.0, "{}", rule.id);
                assert_eq!(finding.evidence_data.as_ref(), Some(&judgement.evidence), "{}", rule.id);
                assert_eq!(finding.evidence, judgement.evidence.text(Language::English), "{}", rule.id);
                // Every rule's evidence speaks Swedish too (each kind's wording: rules/evidence.rs).
                let swedish = finding.evidence_in(Language::Swedish);
                assert!(!swedish.is_empty() && swedish != finding.evidence, "{}: {swedish}", rule.id);
                assert_eq!(finding.severity, rule.severity, "{}", rule.id);
                assert_eq!(finding.finding_id, finding_id(rule.id, &l.key()), "{}", rule.id);
            }
        }
    }
    assert!(line_rules > 0, "the catalogue has line rules");
}

/// A rule switched off in the settings is silent on its own examples.
#[test]
fn every_line_rule_can_be_switched_off() {
    for &rule in RULES {
        let Judged::Line { examples, .. } = rule.judged else { continue };
        let mut s = settings();
        s.disabled.push(rule.id.to_string());
        for example in examples.iter().filter(|e| e.fires) {
            let mut l = line(1, 1);
            (example.change)(&mut l);
            let found = RuleEngine::new(s.clone()).observe(&l);
            assert!(found.iter().all(|f| f.rule_id != rule.id), "{}: {}", rule.id, example.case);
        }
    }
}

#[test]
fn rules_by_id() {
    for &rule in RULES {
        assert!(Rule::by_id(rule.id).is_some_and(|r| std::ptr::eq(r, rule)), "{}", rule.id);
    }
    assert_eq!(Rule::by_id("wrong_price"), Some(&WRONG_PRICE));
    assert!(Rule::by_id("no_such_rule").is_none());
    assert!(matches!(PROVIDER_FAR_FROM_PEERS.judged, Judged::InClickHouse));
    assert!(matches!(LISTED_AT_SAME_GROUP.judged, Judged::InClickHouse));
    assert!(matches!(DOUBLE_INVOICING.judged, Judged::Stateful));
}

#[test]
fn settings_name_their_problems() {
    let mut s = settings();
    s.disabled.push("no_such_rule".into());
    s.burst_window_days = 0;
    assert_eq!(
        s.problems(),
        [
            "detector.rules.disabled names an unknown rule \"no_such_rule\"".to_string(),
            "detector.rules: window lengths must be at least 1 day".to_string()
        ]
    );
}

#[test]
fn memory_counts_every_part_of_the_state() {
    // Doubles, credit notes and a psychologist series: every kind of state.
    let mut lines: Vec<EnrichedLine> = Vec::new();
    for n in 1..=30 {
        let mut l = line(n, 1);
        l.profession_code = "PS".into();
        l.visit_date = date("2025-01-01") + chrono::Days::new(u64::from(n));
        lines.push(l.clone());
        if n % 5 == 0 {
            let mut double = l.clone();
            double.invoice_id = format!("D{n}");
            lines.push(double);
        }
    }
    let mut engine = RuleEngine::new(settings());
    let found: Vec<Finding> = lines.iter().flat_map(|l| engine.observe(l)).collect();
    assert!(rule_ids(&found).contains(&"double_invoicing"), "{:?}", rule_ids(&found));
    assert!(rule_ids(&found).contains(&"excessive_psychologist_contacts"), "{:?}", rule_ids(&found));

    let memory = engine.memory();
    assert_eq!(engine.remembered_lines(), lines.len());
    assert!(memory.lines >= lines.len() * 64, "{memory:?}");
    assert!(memory.identities > 0 && memory.contacts > 0 && memory.groups > 0 && memory.findings > 0, "{memory:?}");
    assert_eq!(
        memory.total(),
        memory.lines + memory.line_heap + memory.identities + memory.contacts + memory.groups + memory.findings
    );
    assert_eq!(RuleEngine::new(settings()).memory().total(), 0);
}
