//! Fixtures for tests, behind the cargo feature `testing` (always on in
//! this crate's own tests). A crate that wants them enables the feature
//! for its tests only:
//!
//! ```toml
//! [dev-dependencies]
//! distans-domain = { workspace = true, features = ["testing"] }
//! ```
//!
//! Each builder returns one well-known value; a test changes the few fields
//! it is about and says why, e.g.
//! `InvoiceLine { line_number: 3, ..testing::invoice_line() }`.

use chrono::{NaiveDate, NaiveTime};

use crate::enrich::{AgeGroup, Initiative, Provenance, Sex};
use crate::rules::{finding_id, Evidence, Finding, FindingStatus, Rule};
use crate::{EnrichedLine, InvoiceLine, InvoiceType, PatientIdKind, TariffClass, TariffEntry, Tariffs};
use crate::{ReservnummerFormat, Validation, ValidationSettings};

/// Names a hostile seller could put in a free-text field such as its
/// provider name: terminal escape sequences (a CSI that clears the screen,
/// an OSC that sets the window title, an OSC 8 hyperlink), a NUL, a
/// right-to-left override, a Slack mention, a Markdown link and an HTML
/// script. Every output that shows such a name (the notifier's messages, the
/// terminal and HTML reports) is tested with each.
pub const HOSTILE_NAMES: [&str; 8] = [
    "Vård\u{1b}[2J\u{1b}[HAB",
    "Vård\u{1b}]0;owned\u{7}AB",
    "\u{1b}]8;;https://evil.example\u{1b}\\Klicka\u{1b}]8;;\u{1b}\\",
    "Vård\0AB",
    "Vård\u{202E}BA gnidloh",
    "<!channel> <@U024BE7LH> Vård & Co",
    "[Klicka här](https://evil.example) **AB**",
    "<script>alert(1)</script>",
];

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid fixture date")
}

/// A valid invoice line as a region receives it, with every optional field
/// filled (except `credited_invoice_id`: it is an invoice, not a credit
/// note). [`crate::validate_and_enrich`] accepts it.
///
/// - Invoice `ZVF23210001152503000042` (type `380`, line 1) of 2025-03-31
///   from seller 2321000115 to buyer region 2321000198, payable 500 kr.
/// - Patient `198112189876` (personnummer, a man born 1981-12-18, so 43
///   years old on the visit), county 23, municipality 2380, sex 1 (male).
/// - Referred (remittance `R-77`), agreement chapter 4 point 4.1.
/// - A new outpatient visit on 2025-03-02 at 14:05:00 at unit
///   `SE2321000115-094882` of provider 5567000004 "Exempel Digital Vård AB",
///   with a physician (`LK`), by video, after a needs assessment.
/// - Product category 04 (contact fee), one unit at 500 kr, no patient fee:
///   gross and net 500 kr. Diagnosis J06.9, procedure ZV051.
pub fn invoice_line() -> InvoiceLine {
    InvoiceLine {
        invoice_id: "ZVF23210001152503000042".into(),
        invoice_type: "380".into(),
        line_number: 1,
        credited_invoice_id: None,
        seller_org_number: "2321000115".into(),
        buyer_org_number: "2321000198".into(),
        invoice_date: date(2025, 3, 31),
        payable_amount_ore: 50_000,
        patient_id: "198112189876".into(),
        patient_county_code: "23".into(),
        patient_municipality_code: "2380".into(),
        patient_sex: Some(1),
        remittance_number: Some("R-77".into()),
        agreement_chapter: "4".into(),
        agreement_point: "4.1".into(),
        care_type: "outpatient".into(),
        visit_type: "new".into(),
        visit_date: date(2025, 3, 2),
        visit_time: NaiveTime::from_hms_opt(14, 5, 0),
        performing_unit_hsa_id: "SE2321000115-094882".into(),
        provider_org_number: "5567000004".into(),
        provider_name: "Exempel Digital Vård AB".into(),
        profession_code: "LK".into(),
        product_category: "04".into(),
        quantity: 1,
        unit_price_ore: 50_000,
        patient_fee_ore: 0,
        gross_amount_ore: 50_000,
        net_amount_ore: 50_000,
        diagnosis_codes: vec!["J06.9".into()],
        procedure_codes: vec!["ZV051".into()],
        contact_channel: Some("video".into()),
        needs_assessment: Some(true),
    }
}

/// [`invoice_line`] with every optional field empty (`None`, no codes), as
/// the smallest line a producer may send. Still valid.
pub fn invoice_line_without_optionals() -> InvoiceLine {
    InvoiceLine {
        credited_invoice_id: None,
        patient_sex: None,
        remittance_number: None,
        visit_time: None,
        diagnosis_codes: vec![],
        procedure_codes: vec![],
        contact_channel: None,
        needs_assessment: None,
        ..invoice_line()
    }
}

/// Tariffs for the fixtures: a physician contact (`LK`) costs 500 kr from
/// 2019-07-01 on; psychologists (`PS`) are known, with no tariff.
pub fn tariffs() -> Tariffs {
    Tariffs {
        entries: vec![TariffEntry {
            class: TariffClass::Physician,
            valid_from: date(2019, 7, 1),
            valid_to: None,
            amount_ore: 50_000,
        }],
        professions: [("LK".to_string(), TariffClass::Physician), ("PS".to_string(), TariffClass::Psychologist)]
            .into_iter()
            .collect(),
    }
}

/// The clean line: an enriched line on which no rule fires, with the rules'
/// test settings (see [`crate::rules::Example`], whose examples change it).
/// It is [`enriched_line_on`] invoice 1, line 1.
pub fn enriched_line() -> EnrichedLine {
    enriched_line_on(1, 1)
}

/// The clean line on invoice `ZVF2321000040250{invoice:07}`, line
/// `line_number`: the same contact, so lines on two invoices are the same
/// contact invoiced twice.
///
/// - An invoice (not a credit note) of 2025-03-10 from seller 2321000040 to
///   buyer region 2321000230 (county 23).
/// - Patient pseudonym `p1` (a personnummer), county 23, municipality 2380,
///   a woman of 30 (age group 19-39), on her own initiative (no referral),
///   agreement chapter 4 point 4.1.
/// - A new outpatient visit on 2025-02-14 at 10:00 at unit
///   `SE5591000010-E0001` of provider 5591000010 "Nordvård Digital AB", with
///   a physician (`LK`, tariff class physician, tariff 500 kr), by video,
///   after a needs assessment.
/// - Product category 04, one unit at the tariff of 500 kr, no patient fee:
///   gross and net 500 kr. Diagnosis J06.9, procedure ZV051.
/// - From partition 0, offset 0 of topic `t`, ingested at 0 ms.
pub fn enriched_line_on(invoice: u32, line_number: i32) -> EnrichedLine {
    // What is billed and why: that of [`invoice_line`].
    let billed = invoice_line();
    EnrichedLine {
        invoice_id: format!("ZVF2321000040250{invoice:07}"),
        line_number,
        invoice_type: InvoiceType::Invoice,
        credited_invoice_id: None,
        seller_org_number: "2321000040".into(),
        buyer_org_number: "2321000230".into(),
        invoice_date: date(2025, 3, 10),
        patient_pseudonym: "p1".into(),
        patient_id_kind: PatientIdKind::Personnummer,
        patient_county_code: "23".into(),
        patient_municipality_code: "2380".into(),
        sex: Sex::Female,
        age_years: Some(30),
        age_group: AgeGroup::Age19To39,
        initiative: Initiative::OwnInitiative,
        remittance_number: None,
        agreement_chapter: "4".into(),
        agreement_point: "4.1".into(),
        care_type: "outpatient".into(),
        visit_type: "new".into(),
        visit_date: date(2025, 2, 14),
        visit_time: NaiveTime::from_hms_opt(10, 0, 0),
        performing_unit_hsa_id: "SE5591000010-E0001".into(),
        provider_org_number: "5591000010".into(),
        provider_name: "Nordvård Digital AB".into(),
        profession_code: "LK".into(),
        tariff_class: TariffClass::Physician,
        tariff_ore: Some(50_000),
        product_category: billed.product_category,
        quantity: billed.quantity,
        unit_price_ore: billed.unit_price_ore,
        patient_fee_ore: billed.patient_fee_ore,
        gross_amount_ore: billed.gross_amount_ore,
        net_amount_ore: billed.net_amount_ore,
        diagnosis_codes: billed.diagnosis_codes,
        procedure_codes: billed.procedure_codes,
        contact_channel: billed.contact_channel,
        needs_assessment: billed.needs_assessment,
        source: Provenance { topic: "t".into(), partition: 0, offset: 0 },
        ingested_at_ms: 0,
    }
}

/// A finding of `rule` about the line `line_key`, at the provider, unit,
/// buyer, patient and visit date of the clean line ([`enriched_line`]), with
/// the severity of the rule. Its amount (150 kr) and evidence are those of
/// `wrong_price` on the clean line invoiced at 650 kr.
pub fn finding(rule: &Rule, line_key: &str) -> Finding {
    let line = enriched_line();
    Finding {
        finding_id: finding_id(rule.id, line_key),
        rule_id: rule.id.into(),
        severity: rule.severity,
        status: FindingStatus::Active,
        line_keys: vec![line_key.into()],
        buyer_org_number: line.buyer_org_number,
        provider_org_number: line.provider_org_number,
        provider_name: line.provider_name,
        performing_unit_hsa_id: line.performing_unit_hsa_id,
        patient_pseudonym: Some(line.patient_pseudonym),
        visit_date: line.visit_date,
        amount_at_stake_ore: 15_000,
        evidence: "unit price 650 kr, tariff 500 kr for physician on 2025-02-14".into(),
        evidence_data: Some(Evidence::WrongPrice {
            unit_price_ore: 65_000,
            tariff_ore: 50_000,
            tariff_class: line.tariff_class,
            visit_date: line.visit_date,
        }),
    }
}

/// Validation as the tests configure it: the default check modes, one
/// reservnummer format for every region (`R` + seven digits, the sex in the
/// last), and the ZVF numbering ([`crate::codes::ZVF_INVOICE_ID_PATTERN`])
/// for the fixture's seller 2321000115.
pub fn validation() -> Validation {
    let settings = ValidationSettings {
        reservnummer: vec![ReservnummerFormat {
            region: "test".into(),
            org_numbers: vec!["*".into()],
            pattern: "R[0-9]{7}".into(),
            sex_digit: Some(8),
            birth_date_at: None,
            source: "the tests".into(),
        }],
        invoice_id_patterns: [("2321000115".to_string(), crate::codes::ZVF_INVOICE_ID_PATTERN.to_string())].into(),
        ..ValidationSettings::default()
    };
    Validation::new(&settings).expect("valid test settings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{validate_and_enrich, Context, Pseudonymiser};

    #[test]
    fn both_invoice_lines_are_valid() {
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let validation = validation();
        let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, validation: &validation, ingested_at_ms: 1 };
        for line in [invoice_line(), invoice_line_without_optionals()] {
            let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
            let enriched = validate_and_enrich(&line, source, ctx).expect("valid");
            assert_eq!((enriched.age_years, enriched.tariff_ore), (Some(43), Some(50_000)));
        }
    }

    /// As a producer writes them in JSON: optional fields left out.
    #[test]
    fn invoice_lines_read_from_json_without_their_empty_fields() {
        for line in [invoice_line(), invoice_line_without_optionals()] {
            let mut json = serde_json::to_value(&line).expect("serialises");
            let fields = json.as_object_mut().expect("an object");
            fields.retain(|_, value| !value.is_null() && *value != serde_json::json!([]));
            assert_eq!(serde_json::from_value::<InvoiceLine>(json).expect("parses"), line);
        }
    }
}
