//! A finding's evidence as figures, written out in the reader's language at
//! output ([`Evidence::text`]): Swedish (the staff's, the default) or
//! English. The English text is exactly what [`Finding::evidence`] has
//! always held (stored in ClickHouse's `anomalies.evidence` and sent in
//! findings' `evidence`), so stored data keeps its meaning; the figures let
//! every output say it in Swedish as well.
//!
//! Amounts as [`Ore`]'s one Swedish form ("1 234,50 kr"), dates as
//! `2025-02-14` (the Swedish standard numeric date, SS-ISO 8601, which
//! Språkrådet's "Svenska skrivregler" gives for dates in figures), Swedish
//! ordinals as "21:a", "23:e" (Språkrådet: `:a` after 1 and 2, `:e` after
//! the others, `:e` after 11 and 12).
//!
//! [`Finding::evidence`]: super::Finding::evidence

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codes::profession_label;
use crate::money::Ore;
use crate::tariff::TariffClass;
use crate::text::Language;

/// What a rule saw, with the figures; one variant per kind of evidence.
/// Serialised (JSON, `"kind"` tagged) where it travels or is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// `wrong_price`: the unit price and the tariff of the class on the visit date.
    WrongPrice { unit_price_ore: i64, tariff_ore: i64, tariff_class: TariffClass, visit_date: NaiveDate },
    /// `wrong_product`: the category and the contact-fee categories.
    WrongProduct { product_category: String, expected: Vec<String> },
    /// `no_referral`: the agreement point that needs a referral.
    NoReferral { agreement_chapter: String, agreement_point: String },
    /// `late_invoice`: days from the visit to the invoice, and the limit.
    LateInvoice { invoice_date: NaiveDate, invoice_id: String, days: i64, limit_months: u32 },
    /// `double_invoicing`: the line that invoices the contact first.
    Double { visit_date: NaiveDate, original_line: String },
    /// `non_billable_contact`: the channel.
    NonBillable { contact_channel: String },
    /// `patient_not_resident`: the patient's county and the invoiced region's (SCB codes).
    NotResident { patient_county: String, invoiced_county: String },
    /// `physical_procedure`: the KVÅ codes that need a physical meeting.
    PhysicalProcedure { procedures: Vec<String> },
    /// `missing_needs_assessment`: the visit.
    NoNeedsAssessment { visit_date: NaiveDate },
    /// `excessive_psychologist_contacts`: the contact's rank in the window.
    PsychologistContacts { rank: usize, window_days: i64, limit: usize },
    /// `same_day_repeat`: the contact's rank that day with the profession (code).
    SameDay { rank: usize, profession: String, visit_date: NaiveDate, limit: usize },
    /// `contact_burst`: the contact's rank in the window up to its day.
    Burst { rank: usize, profession: String, window_days: i64, visit_date: NaiveDate, limit: usize },
    /// `over_credited`: what the credit notes credit against what was invoiced.
    OverCredited { credit_notes: usize, lines: usize, invoice_id: String, credited_ore: i64, invoiced_ore: i64 },
    /// A rule's evidence as the rule words it in both languages, with no
    /// figures of its own: so that a new line rule is one entry of the
    /// catalogue (its judge writes both texts), until its figures earn a
    /// variant here.
    Worded { en: String, sv: String },
}

impl Evidence {
    /// The evidence in `language`. English is [`Finding::evidence`]'s text.
    ///
    /// [`Finding::evidence`]: super::Finding::evidence
    pub fn text(&self, language: Language) -> String {
        use Language::{English, Swedish};
        match self {
            Evidence::WrongPrice { unit_price_ore, tariff_ore, tariff_class, visit_date } => {
                let (price, tariff) = (Ore(*unit_price_ore), Ore(*tariff_ore));
                match language {
                    English => {
                        format!("unit price {price}, tariff {tariff} for {} on {visit_date}", tariff_class.as_str())
                    }
                    Swedish => format!(
                        "styckpris {price}, taxa {tariff} för {} den {visit_date}",
                        tariff_class_swedish(*tariff_class)
                    ),
                }
            }
            Evidence::WrongProduct { product_category, expected } => {
                let expected = expected.join(", ");
                match language {
                    English => format!("product category {product_category}, expected one of {expected}"),
                    Swedish if expected.contains(',') => {
                        format!("produktkategori {product_category}, förväntad en av {expected}")
                    }
                    Swedish => format!("produktkategori {product_category}, förväntad {expected}"),
                }
            }
            Evidence::NoReferral { agreement_chapter: chapter, agreement_point: point } => match language {
                English => format!("agreement chapter {chapter} point {point} without a referral number"),
                Swedish => format!("avtalets kapitel {chapter} punkt {point} utan remissnummer"),
            },
            Evidence::LateInvoice { invoice_date, invoice_id, days, limit_months } => match language {
                English => format!(
                    "invoiced {invoice_date} on {invoice_id}, {days} days after the visit (limit {limit_months} months)"
                ),
                Swedish => format!(
                    "fakturerad {invoice_date} på {invoice_id}, {days} dagar efter besöket (gräns {limit_months} månader)"
                ),
            },
            Evidence::Double { visit_date, original_line } => match language {
                English => format!("the contact of {visit_date} is also invoiced on line {original_line}"),
                Swedish => format!("kontakten den {visit_date} är också fakturerad på rad {original_line}"),
            },
            Evidence::NonBillable { contact_channel } => {
                format!("{} {contact_channel}", language.pick("kontaktsätt", "contact channel"))
            }
            Evidence::NotResident { patient_county, invoiced_county } => match language {
                English => {
                    format!("patient lives in county {patient_county}, invoiced region is county {invoiced_county}")
                }
                Swedish => format!(
                    "patienten är folkbokförd i län {patient_county}, den fakturerade regionen är län {invoiced_county}"
                ),
            },
            Evidence::PhysicalProcedure { procedures } => {
                let procedures = procedures.join(", ");
                match language {
                    English => format!("procedure {procedures} needs a physical meeting"),
                    Swedish => format!("åtgärd {procedures} kräver fysiskt möte"),
                }
            }
            Evidence::NoNeedsAssessment { visit_date } => match language {
                English => format!("visit {visit_date} reports no needs and suitability assessment"),
                Swedish => format!("besöket den {visit_date} saknar behovs- och lämplighetsbedömning"),
            },
            Evidence::PsychologistContacts { rank, window_days, limit } => match language {
                English => format!(
                    "{} psychologist/psychotherapist contact in {window_days} days (limit {limit})",
                    ordinal_english(*rank)
                ),
                Swedish => format!(
                    "{} psykolog- eller psykoterapeutkontakten på {window_days} dagar (gräns {limit})",
                    ordinal_swedish(*rank)
                ),
            },
            Evidence::SameDay { rank, profession, visit_date, limit } => match language {
                English => {
                    format!("{} contact with {profession} on {visit_date} (limit {limit})", ordinal_english(*rank))
                }
                Swedish => format!(
                    "{} kontakten med {} den {visit_date} (gräns {limit})",
                    ordinal_swedish(*rank),
                    profession_swedish(profession)
                ),
            },
            Evidence::Burst { rank, profession, window_days, visit_date, limit } => match language {
                English => format!(
                    "{} contact with {profession} within {window_days} days up to {visit_date} (limit {limit})",
                    ordinal_english(*rank)
                ),
                Swedish => format!(
                    "{} kontakten med {} inom {window_days} dagar till och med {visit_date} (gräns {limit})",
                    ordinal_swedish(*rank),
                    profession_swedish(profession)
                ),
            },
            Evidence::OverCredited { credit_notes, lines, invoice_id, credited_ore, invoiced_ore } => {
                let (credited, invoiced) = (Ore(*credited_ore), Ore(*invoiced_ore));
                match language {
                    English => format!(
                        "{credit_notes} credit note(s) credit {lines} line(s) of invoice {invoice_id}: {credited} credited against {invoiced} invoiced"
                    ),
                    Swedish => format!(
                        "{credit_notes} {} krediterar {lines} {} på faktura {invoice_id}: {credited} krediterat mot {invoiced} fakturerat",
                        if *credit_notes == 1 { "kreditnota" } else { "kreditnotor" },
                        if *lines == 1 { "rad" } else { "rader" },
                    ),
                }
            }
            Evidence::Worded { en, sv } => language.pick(sv, en).clone(),
        }
    }
}

/// The tariff class in Swedish, as the agreement's price list names it.
fn tariff_class_swedish(class: TariffClass) -> &'static str {
    match class {
        TariffClass::Physician => "läkare",
        TariffClass::Psychologist => "psykolog",
        TariffClass::OtherLicensed => "övrig legitimerad personal",
    }
}

/// "läkare (LK)"; a code without a label as it is.
fn profession_swedish(code: &str) -> String {
    match profession_label(code, true) {
        Some(label) => format!("{label} ({code})"),
        None => code.to_string(),
    }
}

/// `n` with its English ordinal suffix: 1st, 2nd, 3rd, 4th, 11th, 21st.
pub fn ordinal_english(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `n` as a Swedish ordinal in figures: 1:a, 2:a, 3:e, 11:e, 12:e, 21:a, 22:a.
pub fn ordinal_swedish(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11 | 12) => "e",
        (1 | 2, _) => "a",
        _ => "e",
    };
    format!("{n}:{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    /// Each kind of evidence in both languages: (evidence, English, Swedish).
    #[test]
    fn every_kind_reads_in_english_and_swedish() {
        let cases = [
            (
                Evidence::Worded { en: "2 contacts on one line".into(), sv: "2 kontakter på en rad".into() },
                "2 contacts on one line",
                "2 kontakter på en rad",
            ),
            (
                Evidence::WrongPrice {
                    unit_price_ore: 123_450,
                    tariff_ore: 50_000,
                    tariff_class: TariffClass::Physician,
                    visit_date: day(2025, 2, 14),
                },
                "unit price 1 234,50 kr, tariff 500 kr for physician on 2025-02-14",
                "styckpris 1 234,50 kr, taxa 500 kr för läkare den 2025-02-14",
            ),
            (
                Evidence::WrongProduct { product_category: "05".into(), expected: vec!["04".into(), "06".into()] },
                "product category 05, expected one of 04, 06",
                "produktkategori 05, förväntad en av 04, 06",
            ),
            (
                Evidence::WrongProduct { product_category: "05".into(), expected: vec!["04".into()] },
                "product category 05, expected one of 04",
                "produktkategori 05, förväntad 04",
            ),
            (
                Evidence::NoReferral { agreement_chapter: "5".into(), agreement_point: "4.1".into() },
                "agreement chapter 5 point 4.1 without a referral number",
                "avtalets kapitel 5 punkt 4.1 utan remissnummer",
            ),
            (
                Evidence::LateInvoice {
                    invoice_date: day(2025, 8, 15),
                    invoice_id: "ZVF1".into(),
                    days: 182,
                    limit_months: 6,
                },
                "invoiced 2025-08-15 on ZVF1, 182 days after the visit (limit 6 months)",
                "fakturerad 2025-08-15 på ZVF1, 182 dagar efter besöket (gräns 6 månader)",
            ),
            (
                Evidence::Double { visit_date: day(2025, 2, 14), original_line: "ZVF0:1".into() },
                "the contact of 2025-02-14 is also invoiced on line ZVF0:1",
                "kontakten den 2025-02-14 är också fakturerad på rad ZVF0:1",
            ),
            (Evidence::NonBillable { contact_channel: "phone".into() }, "contact channel phone", "kontaktsätt phone"),
            (
                Evidence::NotResident { patient_county: "25".into(), invoiced_county: "23".into() },
                "patient lives in county 25, invoiced region is county 23",
                "patienten är folkbokförd i län 25, den fakturerade regionen är län 23",
            ),
            (
                Evidence::PhysicalProcedure { procedures: vec!["AA039".into(), "AD041".into()] },
                "procedure AA039, AD041 needs a physical meeting",
                "åtgärd AA039, AD041 kräver fysiskt möte",
            ),
            (
                Evidence::NoNeedsAssessment { visit_date: day(2025, 10, 1) },
                "visit 2025-10-01 reports no needs and suitability assessment",
                "besöket den 2025-10-01 saknar behovs- och lämplighetsbedömning",
            ),
            (
                Evidence::PsychologistContacts { rank: 21, window_days: 365, limit: 20 },
                "21st psychologist/psychotherapist contact in 365 days (limit 20)",
                "21:a psykolog- eller psykoterapeutkontakten på 365 dagar (gräns 20)",
            ),
            (
                Evidence::SameDay { rank: 4, profession: "LK".into(), visit_date: day(2025, 3, 9), limit: 3 },
                "4th contact with LK on 2025-03-09 (limit 3)",
                "4:e kontakten med läkare (LK) den 2025-03-09 (gräns 3)",
            ),
            (
                Evidence::Burst {
                    rank: 4,
                    profession: "XX".into(),
                    window_days: 7,
                    visit_date: day(2025, 3, 9),
                    limit: 3,
                },
                "4th contact with XX within 7 days up to 2025-03-09 (limit 3)",
                "4:e kontakten med XX inom 7 dagar till och med 2025-03-09 (gräns 3)",
            ),
            (
                Evidence::OverCredited {
                    credit_notes: 2,
                    lines: 1,
                    invoice_id: "ZVF9".into(),
                    credited_ore: 100_000,
                    invoiced_ore: 50_000,
                },
                "2 credit note(s) credit 1 line(s) of invoice ZVF9: 1 000 kr credited against 500 kr invoiced",
                "2 kreditnotor krediterar 1 rad på faktura ZVF9: 1 000 kr krediterat mot 500 kr fakturerat",
            ),
        ];
        for (evidence, english, swedish) in cases {
            assert_eq!(evidence.text(Language::English), english);
            assert_eq!(evidence.text(Language::Swedish), swedish);
            let json = serde_json::to_string(&evidence).expect("serialises");
            assert_eq!(serde_json::from_str::<Evidence>(&json).expect("reads"), evidence, "{json}");
        }
    }

    #[test]
    fn ordinals() {
        let swedish: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].map(ordinal_swedish).to_vec();
        assert_eq!(
            swedish,
            ["1:a", "2:a", "3:e", "4:e", "11:e", "12:e", "13:e", "21:a", "22:a", "23:e", "101:a", "111:e"]
        );
        let english: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23].map(ordinal_english).to_vec();
        assert_eq!(english, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd"]);
    }
}
