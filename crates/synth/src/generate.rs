//! Deterministic synthetic invoice lines shaped like the regions' papers:
//! a home region's year of digital out-of-county contacts, with a chosen
//! share of invalid lines (which the ingester must dead-letter, each for
//! one known reason) and of implausible ones (valid, for the detector).
//!
//! Same options and seed, same lines, byte for byte. Organisation numbers,
//! providers and patients are synthetic; personnummer are Luhn-valid but
//! drawn at random.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Timelike};
use distans_domain::codes::luhn_check_digit;
use distans_domain::rules::{self, Rule, RuleSettings};
use distans_domain::{InvoiceLine, TariffClass, Tariffs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::profile::{new_patient, pick_weighted, region, region_org_number, Patient, REGIONS};
use crate::summary::Summary;

/// The two regions where most digital providers are established.
const SELLERS: [(&str, &str); 2] = [("04", "Region Sörmland"), ("06", "Region Jönköpings län")];

/// The generated sellers' invoice numbering, as `validation.invoice_id_patterns`
/// holds it: every seller numbers by the ZVF convention
/// ([`distans_domain::codes::ZVF_INVOICE_ID_PATTERN`]).
pub fn invoice_id_patterns() -> BTreeMap<String, String> {
    let zvf = distans_domain::codes::ZVF_INVOICE_ID_PATTERN.to_string();
    SELLERS.iter().map(|(county, _)| (region_org_number(county), zvf.clone())).collect()
}

struct Provider {
    seller: usize,
    org_body: &'static str,
    name: &'static str,
    unit: &'static str,
}

/// Fictional providers; any likeness to a real company is not intended.
const PROVIDERS: [Provider; 4] = [
    Provider { seller: 0, org_body: "559100001", name: "Nordvård Digital AB", unit: "E0001" },
    Provider { seller: 0, org_body: "559100002", name: "Läkarlinjen AB", unit: "E0002" },
    Provider { seller: 1, org_body: "559100003", name: "Snabbdoktorn AB", unit: "E0003" },
    Provider { seller: 1, org_body: "559100004", name: "Samtalsrummet AB", unit: "E0004" },
];

/// A provider whose physicians see a few patients four times a month each:
/// far from its peers in contacts per patient (added to years of at least
/// `OUTLIER_MIN_LINES` lines, where the peers have the volume to be judged).
const OUTLIER: Provider = Provider { seller: 1, org_body: "559100005", name: "Vårdflödet AB", unit: "E0005" };
const OUTLIER_PATIENTS: usize = 12;
pub const OUTLIER_MIN_LINES: usize = 3_000;

/// National profession mix (SKR 2020): physicians 67 %, nurses 18 %,
/// physiotherapists 10 %, psychologists 5 %.
const PROFESSIONS: [(&str, f64); 6] =
    [("LK", 0.67), ("SJ", 0.18), ("FT", 0.10), ("PS", 0.03), ("PT", 0.01), ("HK", 0.01)];

const REFERRAL_SHARE: f64 = 0.12;
const CREDIT_NOTE_SHARE: f64 = 0.005;
const DIAGNOSES: [&str; 10] = ["J06.9", "R05", "N39.0", "L30.9", "H10.9", "B34.9", "M54.5", "J02.9", "Z76.0", "R51"];
const PSYCH_DIAGNOSES: [&str; 4] = ["F41.9", "F32.9", "F43.2", "F41.1"];

/// Why a generated line is invalid: the ingester's first reason for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    PatientIdCheckDigit,
    NegativeAmount,
    UnknownProfessionCode,
    CareDateAfterInvoiceDate,
    InvalidHsaId,
}

impl InvalidKind {
    const ALL: [InvalidKind; 5] = [
        InvalidKind::PatientIdCheckDigit,
        InvalidKind::NegativeAmount,
        InvalidKind::UnknownProfessionCode,
        InvalidKind::CareDateAfterInvoiceDate,
        InvalidKind::InvalidHsaId,
    ];

    /// The reason code the dead letter carries.
    pub fn reason_code(self) -> &'static str {
        match self {
            InvalidKind::PatientIdCheckDigit => "patient_id_check_digit",
            InvalidKind::NegativeAmount => "negative_amount",
            InvalidKind::UnknownProfessionCode => "unknown_profession_code",
            InvalidKind::CareDateAfterInvoiceDate => "care_date_after_invoice_date",
            InvalidKind::InvalidHsaId => "invalid_hsa_id",
        }
    }
}

/// Declares [`ImplausibleKind`] from one list of its kinds, each with the
/// rule that should flag it: the enum, [`ImplausibleKind::rule`] and
/// `ImplausibleKind::ALL` (the kinds in the order the generator draws from).
macro_rules! implausible_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $rule:ident,)+) => {
        /// Valid lines a monitoring rule should flag; each injected kind gives a
        /// known number of findings of the rule of the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ImplausibleKind {
            $($(#[doc = $doc])* $kind,)+
        }

        impl ImplausibleKind {
            /// The rule that should flag it; its id names the kind in the summary.
            pub fn rule(self) -> &'static Rule {
                match self {
                    $(ImplausibleKind::$kind => &rules::$rule,)+
                }
            }

            const ALL: &[ImplausibleKind] = &[$(ImplausibleKind::$kind,)+];
        }
    };
}

implausible_kinds! {
    /// Unit price above the tariff for the profession and visit date.
    WrongPrice => WRONG_PRICE,
    /// The same contact invoiced again on another invoice.
    DoubleInvoicing => DOUBLE_INVOICING,
    /// A procedure that needs a physical meeting (AA039 neurological examination).
    PhysicalProcedure => PHYSICAL_PROCEDURE,
    /// Invoiced more than six months after the visit.
    LateInvoice => LATE_INVOICE,
    /// Another product than the contact fee.
    WrongProduct => WRONG_PRODUCT,
    /// A phone contact.
    NonBillableContact => NON_BILLABLE,
    /// Agreement chapter 5 (referral required) without a referral number.
    NoReferral => NO_REFERRAL,
    /// A patient living in another county.
    PatientNotResident => NOT_RESIDENT,
    /// No needs assessment, on a visit after the rule applies.
    MissingNeedsAssessment => MISSING_NEEDS_ASSESSMENT,
    /// A second contact with the same profession the same day.
    SameDayRepeat => SAME_DAY_REPEAT,
    /// A patient with two psychologist contacts more than the limit.
    ExcessivePsychologistContacts => EXCESSIVE_PSYCHOLOGIST,
    /// Three more contacts with the same profession on the next days.
    ContactBurst => CONTACT_BURST,
}

/// What to generate: region (SCB county code), visit year, number of lines,
/// seed, and the shares (0 to 1) of invalid and implausible lines.
#[derive(Debug, Clone)]
pub struct Options {
    pub county_code: String,
    pub year: i32,
    /// Ordinary lines, credit notes and spoilt lines included. The
    /// implausible lines that need lines of their own (a double invoice's
    /// second, a same-day or burst repeat, a psychologist patient's weekly
    /// sessions, the provider far from its peers) come on top:
    /// [`Summary::lines`] is the total.
    pub lines: usize,
    pub seed: u64,
    pub invalid_share: f64,
    pub implausible_share: f64,
    /// From which visit date a missing needs assessment is flagged (the
    /// detector's setting); `None`: inject none.
    pub needs_assessment_from: Option<NaiveDate>,
    /// The detector's limit of psychologist contacts per patient and year.
    pub psychologist_limit: usize,
}

impl Options {
    /// A year of `lines` for the region, with 1 % invalid and 2 % implausible
    /// lines, injected to match the detector's `rules`.
    pub fn new(county_code: &str, year: i32, lines: usize, seed: u64, rules: &RuleSettings) -> Options {
        Options {
            county_code: county_code.to_string(),
            year,
            lines,
            seed,
            invalid_share: 0.01,
            implausible_share: 0.02,
            needs_assessment_from: rules.needs_assessment_from,
            psychologist_limit: rules.psychologist_limit,
        }
    }
}

/// The lines, in order, with their summary.
#[derive(Debug, Clone)]
pub struct Generated {
    pub lines: Vec<InvoiceLine>,
    pub summary: Summary,
    /// Per line: whether the ingester must reject it.
    pub invalid: Vec<bool>,
}

fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).expect("valid month")
}

/// Generates `options.lines` lines (credit notes included) for the
/// region's year, and the implausible lines that come on top (see
/// [`Options::lines`]).
/// Errors: an unknown region, a share outside 0 to 0.5, or a profession or
/// tariff missing from `tariffs` ([`Error`]).
pub fn generate(options: &Options, tariffs: &Tariffs) -> Result<Generated, Error> {
    let region = region(&options.county_code).ok_or_else(|| {
        let known: Vec<&str> = REGIONS.iter().map(|r| r.county_code).collect();
        Error::UnknownRegion { county: options.county_code.clone(), known: known.join(", ") }
    })?;
    for (name, share) in [("invalid share", options.invalid_share), ("implausible share", options.implausible_share)] {
        if !(0.0..=0.5).contains(&share) {
            return Err(Error::ShareOutOfRange { name, share });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let buyer = region_org_number(region.county_code);
    let sellers: Vec<String> = SELLERS.iter().map(|(county, _)| region_org_number(county)).collect();
    let providers: Vec<String> =
        PROVIDERS.iter().map(|p| format!("{}{}", p.org_body, luhn_check_digit(p.org_body))).collect();
    let patient_count = (options.lines / 3).max(1);
    // Distinct personnummer: two patients sharing one would be one patient to the rules.
    let mut ids = std::collections::HashSet::new();
    let mut patients: Vec<Patient> = Vec::with_capacity(patient_count);
    while patients.len() < patient_count {
        let patient = new_patient(&mut rng, &region, options.year);
        if ids.insert(patient.id.clone()) {
            patients.push(patient);
        }
    }

    // Visits first, then invoices: one invoice per seller and visit month.
    let mut visits: Vec<InvoiceLine> = Vec::with_capacity(options.lines);
    let mut counters: BTreeMap<String, u32> = BTreeMap::new();
    let mut line_numbers: BTreeMap<String, i32> = BTreeMap::new();
    let mut summary = Summary {
        region: region.name.to_string(),
        buyer_org_number: buyer.clone(),
        year: options.year,
        seed: options.seed,
        ..Summary::default()
    };
    let start = NaiveDate::from_ymd_opt(options.year, 1, 1).ok_or(Error::YearOutOfRange)?;
    let days_in_year = if NaiveDate::from_ymd_opt(options.year, 2, 29).is_some() { 366 } else { 365 };

    // A seller invoices each home region on invoices of its own: the
    // buyer's county code leads the counter (county 23: 023001, 023002, …),
    // so that the years generated for two regions never share an invoice
    // (a line identity is seller, invoice id and line number).
    // (The regions' county codes are two digits: a test holds them to it.)
    let buyer_numbers = region.county_code.parse::<u32>().unwrap_or(0) * 1_000;
    let mut invoice_id_for = |seller: usize, year: i32, month: u32, credit: bool| -> (String, i32) {
        // Credit notes get invoices of their own, numbered from 900000.
        let bucket = format!("{seller}-{year}-{month}-{credit}");
        let next = buyer_numbers + counters.len() as u32 + 1;
        let counter = *counters.entry(bucket).or_insert(if credit { 900_000 + next } else { next });
        // The ZVF convention (`invoice_id_patterns`).
        let id = format!("ZVF{}{:02}{:02}{:06}", sellers[seller], year % 100, month, counter);
        let number = line_numbers.entry(id.clone()).or_insert(0);
        *number += 1;
        (id, *number)
    };

    // (patient index, profession, visit date) of every contact made so far.
    let mut taken: std::collections::HashSet<(usize, &str, NaiveDate)> = std::collections::HashSet::new();
    let mut credited: std::collections::HashSet<(String, i32)> = std::collections::HashSet::new();
    while visits.len() < options.lines {
        let patient = &patients[rng.random_range(0..patients.len())];
        let provider_index = rng.random_range(0..PROVIDERS.len());
        let provider = &PROVIDERS[provider_index];
        let profession = *pick_weighted(&mut rng, &PROFESSIONS);
        let class = tariffs.class_of(profession).ok_or_else(|| Error::UnknownProfession(profession.to_string()))?;
        // One contact per patient, profession and day: the rest of the same
        // day would be a finding nobody injected.
        let patient_index = patients.iter().position(|p| std::ptr::eq(p, patient)).unwrap_or(0);
        // At most one other contact with the profession within six days either
        // side, so no week holds a burst nobody injected.
        let visit_date = loop {
            let date = start + Days::new(rng.random_range(0..days_in_year));
            let near = (-6i64..=6).filter(|d| taken.contains(&(patient_index, profession, date + TimeDelta::days(*d))));
            if !taken.contains(&(patient_index, profession, date)) && near.count() <= 1 {
                taken.insert((patient_index, profession, date));
                break date;
            }
        };
        let price =
            tariffs.price(class, visit_date).ok_or(Error::NoTariffOn { class: class.as_str(), date: visit_date })?;
        let age = visit_date.years_since(patient.birth).unwrap_or(0);
        let fee = if (20..85).contains(&age) && rng.random_bool(0.3) { 10_000 } else { 0 };
        let (invoice_id, line_number) = invoice_id_for(provider.seller, visit_date.year(), visit_date.month(), false);
        let referred = rng.random_bool(REFERRAL_SHARE);
        let diagnosis = if class == TariffClass::Psychologist {
            PSYCH_DIAGNOSES[rng.random_range(0..PSYCH_DIAGNOSES.len())]
        } else {
            DIAGNOSES[rng.random_range(0..DIAGNOSES.len())]
        };
        let hour = rng.random_range(7..22u32);
        let minute = rng.random_range(0..60u32);
        visits.push(InvoiceLine {
            invoice_id,
            invoice_type: "380".into(),
            line_number,
            credited_invoice_id: None,
            seller_org_number: sellers[provider.seller].clone(),
            buyer_org_number: buyer.clone(),
            invoice_date: last_day_of_month(visit_date.year(), visit_date.month()) + Days::new(10),
            payable_amount_ore: 0,
            patient_id: patient.id.clone(),
            patient_county_code: region.county_code.into(),
            patient_municipality_code: patient.municipality.into(),
            patient_sex: Some(if patient.female { 2 } else { 1 }),
            remittance_number: referred.then(|| format!("REM{:08}", rng.random_range(0..100_000_000u32))),
            agreement_chapter: if referred { "5".into() } else { "4".into() },
            agreement_point: if referred { "5.1".into() } else { "4.1".into() },
            care_type: "outpatient".into(),
            visit_type: if rng.random_bool(0.7) { "new".into() } else { "return".into() },
            visit_date,
            visit_time: NaiveTime::from_hms_opt(hour, minute, 0),
            performing_unit_hsa_id: format!("SE{}-{}", providers[provider_index], provider.unit),
            provider_org_number: providers[provider_index].clone(),
            provider_name: provider.name.into(),
            profession_code: profession.into(),
            product_category: "04".into(),
            quantity: 1,
            unit_price_ore: price,
            patient_fee_ore: fee,
            gross_amount_ore: price,
            net_amount_ore: price - fee,
            diagnosis_codes: vec![diagnosis.into()],
            procedure_codes: vec!["ZV051".into()],
            contact_channel: Some(if rng.random_bool(0.55) { "video".into() } else { "chat".into() }),
            needs_assessment: Some(true),
        });
        // Now and then a credit note cancels the line just invoiced.
        if rng.random_bool(CREDIT_NOTE_SHARE) && visits.len() < options.lines {
            let original = visits[visits.len() - 1].clone();
            credited.insert((original.invoice_id.clone(), original.line_number));
            let (invoice_id, line_number) =
                invoice_id_for(provider.seller, original.visit_date.year(), original.visit_date.month(), true);
            visits.push(InvoiceLine {
                invoice_id,
                invoice_type: "381".into(),
                line_number,
                credited_invoice_id: Some(original.invoice_id.clone()),
                invoice_date: original.invoice_date + Days::new(20),
                ..original
            });
            summary.credit_notes += 1;
        }
    }

    let patient_index_of: std::collections::HashMap<&str, usize> =
        patients.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();
    // Spoil a share of lines, each in one known way, and make a share implausible.
    let mut invalid = vec![false; visits.len()];
    let mut to_double = Vec::new();
    let mut to_repeat = Vec::new();
    let mut excessive = 0usize;
    let mut kinds_used = 0usize;
    for (index, line) in visits.iter_mut().enumerate() {
        if line.invoice_type == "381" {
            continue;
        }
        if rng.random_bool(options.invalid_share) {
            let kind = InvalidKind::ALL[kinds_used % InvalidKind::ALL.len()];
            kinds_used += 1;
            spoil(line, kind);
            invalid[index] = true;
            *summary.invalid_by_reason.entry(kind.reason_code().to_string()).or_default() += 1;
        } else if rng.random_bool(options.implausible_share) {
            let mut kind = ImplausibleKind::ALL[rng.random_range(0..ImplausibleKind::ALL.len())];
            // A credited line is not payable: the rules do not judge it (its
            // findings would be withdrawn), so it is left as it is.
            if credited.contains(&(line.invoice_id.clone(), line.line_number)) {
                continue;
            }
            // A repeat or a burst must not meet the patient's other contacts
            // with the profession, or it would show more than one finding.
            let patient = patient_index_of.get(line.patient_id.as_str()).copied().unwrap_or(usize::MAX);
            let profession = PROFESSIONS.iter().map(|(p, _)| *p).find(|p| *p == line.profession_code).unwrap_or("");
            let lonely = (-6i64..=9)
                .all(|d| d == 0 || !taken.contains(&(patient, profession, line.visit_date + TimeDelta::days(d))));
            let assessed = options.needs_assessment_from.is_some_and(|from| line.visit_date >= from);
            // Each excessive-contacts patient adds limit + 2 lines: one per 10 000 lines at most.
            let excessive_full = excessive >= (options.lines / 10_000).max(1);
            if (kind == ImplausibleKind::MissingNeedsAssessment && !assessed)
                || (kind == ImplausibleKind::ExcessivePsychologistContacts && excessive_full)
                || (matches!(kind, ImplausibleKind::SameDayRepeat | ImplausibleKind::ContactBurst) && !lonely)
            {
                kind = ImplausibleKind::WrongPrice;
            }
            let findings = match kind {
                ImplausibleKind::DoubleInvoicing => {
                    to_double.push(index);
                    1
                }
                ImplausibleKind::SameDayRepeat => {
                    to_repeat.push((index, 0));
                    1
                }
                ImplausibleKind::ContactBurst => {
                    // Three more on the next three days: four in a week, one over the limit of 3.
                    for day in 1..=3 {
                        to_repeat.push((index, day));
                        taken.insert((patient, profession, line.visit_date + Days::new(day)));
                    }
                    1
                }
                ImplausibleKind::ExcessivePsychologistContacts => {
                    excessive += 1;
                    2
                }
                _ => {
                    make_implausible(line, kind, region.county_code);
                    1
                }
            };
            *summary.implausible_by_kind.entry(kind.rule().id.to_string()).or_default() += 1;
            *summary.expected_findings.entry(kind.rule().id.to_string()).or_default() += findings;
        }
    }
    // Double invoicing: the same contact again, on an invoice of a later month.
    // Same-day repeats: another contact with the same profession, hours later.
    // Bursts: the same contact again on each of the next days.
    let doubles = to_double.into_iter().map(|i| (i, None));
    for (index, repeat_day) in doubles.chain(to_repeat.into_iter().map(|(i, day)| (i, Some(day)))) {
        let mut line = visits[index].clone();
        let seller = sellers.iter().position(|s| *s == line.seller_org_number).unwrap_or(0);
        match repeat_day {
            None => line.invoice_date = line.invoice_date + Days::new(25),
            Some(0) => {
                line.visit_time =
                    line.visit_time
                        .map(|t| if t.hour() < 12 { t + TimeDelta::hours(6) } else { t - TimeDelta::hours(6) });
            }
            Some(day) => {
                line.visit_date = line.visit_date + Days::new(day);
                line.invoice_date = line.invoice_date.max(line.visit_date);
            }
        }
        let (invoice_id, line_number) =
            invoice_id_for(seller, line.invoice_date.year(), line.invoice_date.month(), false);
        line.invoice_id = invoice_id;
        line.line_number = line_number;
        visits.push(line);
        invalid.push(false);
    }
    // Excessive psychologist contacts: a patient seen weekly, two sessions over the limit.
    for _ in 0..excessive {
        let patient = new_patient(&mut rng, &region, options.year);
        let provider = &PROVIDERS[3]; // the psychology provider
        let org = &providers[3];
        for week in 0..options.psychologist_limit + 2 {
            let visit_date = start + Days::new(7 * week as u64);
            let price = tariffs.price(TariffClass::Psychologist, visit_date).ok_or(Error::NoTariff("psychologist"))?;
            let (invoice_id, line_number) =
                invoice_id_for(provider.seller, visit_date.year(), visit_date.month(), false);
            let mut line = own_choice_contact(&patient, provider, org, "PS", visit_date, price);
            (line.invoice_id, line.line_number) = (invoice_id, line_number);
            (line.seller_org_number, line.buyer_org_number) = (sellers[provider.seller].clone(), buyer.clone());
            line.visit_type = if week == 0 { "new".into() } else { "return".into() };
            line.visit_time = NaiveTime::from_hms_opt(16, 0, 0);
            line.diagnosis_codes = vec!["F43.1".into()];
            visits.push(line);
            invalid.push(false);
        }
    }
    // The provider far from its peers: its patients seen every eight days
    // (four contacts a month, never a burst or a same-day repeat).
    if options.lines >= OUTLIER_MIN_LINES {
        let org = format!("{}{}", OUTLIER.org_body, luhn_check_digit(OUTLIER.org_body));
        for _ in 0..OUTLIER_PATIENTS {
            let patient = new_patient(&mut rng, &region, options.year);
            let mut visit_date = start + Days::new(rng.random_range(0..8u64));
            while visit_date.year() == options.year {
                let price = tariffs.price(TariffClass::Physician, visit_date).ok_or(Error::NoTariff("physician"))?;
                let (invoice_id, line_number) =
                    invoice_id_for(OUTLIER.seller, visit_date.year(), visit_date.month(), false);
                let mut line = own_choice_contact(&patient, &OUTLIER, &org, "LK", visit_date, price);
                (line.invoice_id, line.line_number) = (invoice_id, line_number);
                (line.seller_org_number, line.buyer_org_number) = (sellers[OUTLIER.seller].clone(), buyer.clone());
                visits.push(line);
                invalid.push(false);
                visit_date = visit_date + Days::new(8);
            }
        }
    }

    // Every invoice's payable amount: the sum of its lines.
    let mut payable: BTreeMap<String, i64> = BTreeMap::new();
    for line in &visits {
        *payable.entry(line.invoice_id.clone()).or_default() += line.net_amount_ore.max(0);
    }
    for line in visits.iter_mut() {
        line.payable_amount_ore = payable[&line.invoice_id];
    }

    summary.lines = visits.len();
    summary.invalid = summary.invalid_by_reason.values().sum();
    summary.valid = summary.lines - summary.invalid;
    for (line, _) in visits.iter().zip(&invalid).filter(|(_, invalid)| !**invalid) {
        let sign = if line.invoice_type == "381" { -1 } else { 1 };
        summary.valid_net_amount_ore += sign * line.net_amount_ore;
        summary.valid_contacts += sign * i64::from(line.quantity);
        let month = format!("{}-{:02}", line.visit_date.year(), line.visit_date.month());
        *summary.valid_net_by_month.entry(month).or_default() += sign * line.net_amount_ore;
    }
    Ok(Generated { lines: visits, summary, invalid })
}

/// A valid video contact on the patient's own initiative at the tariff
/// price, with no patient fee, at 10:00, invoiced the month after; the
/// caller sets the invoice and the parties.
fn own_choice_contact(
    patient: &Patient,
    provider: &Provider,
    provider_org: &str,
    profession: &str,
    visit_date: NaiveDate,
    price: i64,
) -> InvoiceLine {
    InvoiceLine {
        invoice_id: String::new(),
        invoice_type: "380".into(),
        line_number: 0,
        credited_invoice_id: None,
        seller_org_number: String::new(),
        buyer_org_number: String::new(),
        invoice_date: last_day_of_month(visit_date.year(), visit_date.month()) + Days::new(10),
        payable_amount_ore: 0,
        patient_id: patient.id.clone(),
        patient_county_code: patient.municipality[..2].into(),
        patient_municipality_code: patient.municipality.into(),
        patient_sex: Some(if patient.female { 2 } else { 1 }),
        remittance_number: None,
        agreement_chapter: "4".into(),
        agreement_point: "4.1".into(),
        care_type: "outpatient".into(),
        visit_type: "return".into(),
        visit_date,
        visit_time: NaiveTime::from_hms_opt(10, 0, 0),
        performing_unit_hsa_id: format!("SE{provider_org}-{}", provider.unit),
        provider_org_number: provider_org.into(),
        provider_name: provider.name.into(),
        profession_code: profession.into(),
        product_category: "04".into(),
        quantity: 1,
        unit_price_ore: price,
        patient_fee_ore: 0,
        gross_amount_ore: price,
        net_amount_ore: price,
        diagnosis_codes: vec!["J06.9".into()],
        procedure_codes: vec!["ZV051".into()],
        contact_channel: Some("video".into()),
        needs_assessment: Some(true),
    }
}

fn spoil(line: &mut InvoiceLine, kind: InvalidKind) {
    match kind {
        InvalidKind::PatientIdCheckDigit => {
            // Change the check digit: still twelve digits, no longer Luhn-valid.
            let last = line.patient_id.pop().and_then(|c| c.to_digit(10)).unwrap_or(0);
            line.patient_id.push(char::from_digit((last + 1) % 10, 10).unwrap_or('0'));
        }
        InvalidKind::NegativeAmount => {
            line.net_amount_ore = -line.net_amount_ore.max(1);
        }
        InvalidKind::UnknownProfessionCode => line.profession_code = "XX".into(),
        InvalidKind::CareDateAfterInvoiceDate => line.visit_date = line.invoice_date + Days::new(3),
        InvalidKind::InvalidHsaId => line.performing_unit_hsa_id = line.performing_unit_hsa_id.replacen("SE", "XE", 1),
    }
}

fn make_implausible(line: &mut InvoiceLine, kind: ImplausibleKind, home_county: &str) {
    match kind {
        ImplausibleKind::WrongPrice => {
            line.unit_price_ore += 15_000;
            line.gross_amount_ore = line.unit_price_ore * i64::from(line.quantity);
            line.net_amount_ore = line.gross_amount_ore - line.patient_fee_ore;
        }
        ImplausibleKind::PhysicalProcedure => line.procedure_codes.push("AA039".into()),
        ImplausibleKind::LateInvoice => line.invoice_date = line.visit_date + Days::new(200),
        ImplausibleKind::WrongProduct => line.product_category = "05".into(),
        ImplausibleKind::NonBillableContact => line.contact_channel = Some("phone".into()),
        ImplausibleKind::NoReferral => {
            line.agreement_chapter = "5".into();
            line.agreement_point = "5.1".into();
            line.remittance_number = None;
        }
        ImplausibleKind::PatientNotResident => {
            let (county, municipality) = if home_county == "25" { ("23", "2380") } else { ("25", "2580") };
            line.patient_county_code = county.into();
            line.patient_municipality_code = municipality.into();
        }
        ImplausibleKind::MissingNeedsAssessment => line.needs_assessment = Some(false),
        // Added once all lines exist.
        ImplausibleKind::DoubleInvoicing
        | ImplausibleKind::SameDayRepeat
        | ImplausibleKind::ContactBurst
        | ImplausibleKind::ExcessivePsychologistContacts => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use distans_domain::enrich::Provenance;
    use distans_domain::validate::Context;
    use distans_domain::{validate_and_enrich, Pseudonymiser, TariffEntry, Validation, ValidationSettings};

    /// Validation with the generated sellers' ZVF numbering configured, so
    /// the tests also check the generator keeps to it.
    fn validation() -> Validation {
        let settings =
            ValidationSettings { invoice_id_patterns: invoice_id_patterns(), ..ValidationSettings::default() };
        Validation::new(&settings).expect("valid settings")
    }

    pub(crate) fn tariffs() -> Tariffs {
        let entry = |class, amount_ore| TariffEntry {
            class,
            valid_from: "2019-07-01".parse().expect("date"),
            valid_to: None,
            amount_ore,
        };
        Tariffs {
            entries: vec![
                entry(TariffClass::Physician, 50_000),
                entry(TariffClass::Psychologist, 42_500),
                entry(TariffClass::OtherLicensed, 27_500),
            ],
            professions: [
                ("LK", TariffClass::Physician),
                ("PS", TariffClass::Psychologist),
                ("PT", TariffClass::Psychologist),
                ("HK", TariffClass::Psychologist),
                ("SJ", TariffClass::OtherLicensed),
                ("FT", TariffClass::OtherLicensed),
            ]
            .into_iter()
            .map(|(c, t)| (c.to_string(), t))
            .collect(),
        }
    }

    pub(crate) fn options(lines: usize, seed: u64) -> Options {
        Options {
            county_code: "23".into(),
            year: 2025,
            lines,
            seed,
            invalid_share: 0.02,
            implausible_share: 0.03,
            needs_assessment_from: "2025-10-01".parse().ok(),
            psychologist_limit: 20,
        }
    }

    #[test]
    fn same_seed_same_lines() {
        let a = generate(&options(500, 7), &tariffs()).expect("generates");
        let b = generate(&options(500, 7), &tariffs()).expect("generates");
        let c = generate(&options(500, 8), &tariffs()).expect("generates");
        assert_eq!(a.lines, b.lines);
        assert_ne!(a.lines, c.lines);
    }

    /// The summary is checked against the domain's own validation of every
    /// generated line: counts by reason, valid total and contacts.
    #[test]
    fn summary_agrees_with_validation() {
        let t = tariffs();
        let generated = generate(&options(5_000, 42), &t).expect("generates");
        let p = Pseudonymiser::new(&[3u8; 32]).expect("key");
        let validation = validation();
        let ctx = Context { tariffs: &t, pseudonymiser: &p, validation: &validation, ingested_at_ms: 0 };
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let (mut net, mut contacts, mut valid) = (0i64, 0i64, 0usize);
        for line in &generated.lines {
            let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
            match validate_and_enrich(line, source, ctx) {
                Ok(e) => {
                    valid += 1;
                    net += e.signed_net_amount_ore();
                    contacts += e.invoice_type.sign() * i64::from(e.quantity);
                }
                Err(v) => {
                    assert_eq!(v.len(), 1, "each invalid line has one known problem: {v:?}");
                    *reasons.entry(v[0].code.as_str().to_string()).or_default() += 1;
                }
            }
        }
        let s = &generated.summary;
        assert_eq!(s.lines, generated.lines.len());
        assert_eq!(s.valid, valid);
        assert_eq!(s.invalid_by_reason, reasons);
        assert_eq!(s.valid_net_amount_ore, net);
        assert_eq!(s.valid_contacts, contacts);
        assert_eq!(s.valid_net_by_month.values().sum::<i64>(), net);
        assert!(s.invalid > 50 && s.credit_notes > 5, "{s:?}");
        assert_eq!(s.implausible_by_kind.len(), 12, "{s:?}");
        let keys: std::collections::HashSet<String> = generated.lines.iter().map(InvoiceLine::key).collect();
        assert_eq!(keys.len(), generated.lines.len(), "line keys are unique");
    }

    #[test]
    fn a_year_looks_like_the_seeds() {
        let generated = generate(&options(23_000, 1), &tariffs()).expect("generates");
        let s = &generated.summary;
        // ~23 000 visits and ~9.2 MSEK for Jämtland Härjedalen in 2025 (seed 000).
        let msek = s.valid_net_amount_ore as f64 / 100.0 / 1e6;
        assert!((8.5..10.5).contains(&msek), "net {msek:.2} MSEK");
        let physicians = generated.lines.iter().filter(|l| l.profession_code == "LK").count() as f64;
        let share = physicians / generated.lines.len() as f64;
        assert!((0.64..0.70).contains(&share), "physician share {share:.3}");
    }

    /// The years generated for two home regions share no line identity
    /// (seller, invoice id, line number): sent to one pipeline, neither
    /// replaces the other's lines. Nor a patient: the rules would take one
    /// person for a resident of two counties. Same seed and size for all,
    /// as an operator trying several regions would run it.
    #[test]
    fn regions_never_share_an_invoice_line_or_a_patient() {
        let mut seen: std::collections::HashMap<(String, String, i32), &str> = std::collections::HashMap::new();
        let mut patients: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for region in &crate::profile::REGIONS {
            assert_eq!(region.county_code.len(), 2, "the invoice counter takes two digits");
            assert!(region.county_code.parse::<u32>().is_ok(), "{}", region.county_code);
            let mut options = options(2_000, 7);
            options.county_code = region.county_code.to_string();
            let generated = generate(&options, &tariffs()).expect("generates");
            for line in &generated.lines {
                let patient = patients.entry(line.patient_id.clone()).or_insert(region.county_code);
                assert_eq!(*patient, region.county_code, "patient {} in two regions", line.patient_id);
                let identity = (line.seller_org_number.clone(), line.invoice_id.clone(), line.line_number);
                if let Some(other) = seen.insert(identity.clone(), region.county_code) {
                    assert_eq!(
                        other, region.county_code,
                        "{identity:?} generated for {other} and {}",
                        region.county_code
                    );
                }
            }
        }
    }

    /// The injected findings are exactly what the rules find, no more.
    #[test]
    fn expected_findings_agree_with_the_rules() {
        for seed in [5, 21, 22, 31, 42] {
            expected_findings_agree_for(seed, 12_000);
            expected_findings_agree_for(seed, 3_000);
        }
    }

    fn expected_findings_agree_for(seed: u64, lines: usize) {
        let t = tariffs();
        let mut options = options(lines, seed);
        options.implausible_share = 0.06;
        let generated = generate(&options, &t).expect("generates");
        let rules = distans_domain::rules::RuleSettings {
            disabled: vec![],
            contact_product_categories: vec!["04".into()],
            referral_required_chapters: vec!["5".into()],
            late_invoice_months: 6,
            non_billable_channels: vec!["phone".into()],
            home_regions: [(region_org_number("23"), "23".to_string())].into_iter().collect(),
            physical_procedures: vec!["AA039".into()],
            psychologist_professions: vec!["PS".into(), "PT".into()],
            psychologist_limit: options.psychologist_limit,
            psychologist_window_days: 365,
            same_day_limit: 1,
            burst_limit: 3,
            burst_window_days: 7,
            needs_assessment_from: options.needs_assessment_from,
        };
        let mut engine = distans_domain::rules::RuleEngine::new(rules);
        let p = Pseudonymiser::new(&[3u8; 32]).expect("key");
        let validation = validation();
        let ctx = Context { tariffs: &t, pseudonymiser: &p, validation: &validation, ingested_at_ms: 0 };
        let mut found: BTreeMap<String, usize> = BTreeMap::new();
        // In a shuffled order: the findings do not depend on the order of lines.
        let mut order: Vec<&InvoiceLine> = generated.lines.iter().collect();
        {
            use rand::seq::SliceRandom;
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        }
        for line in order {
            let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
            if let Ok(enriched) = validate_and_enrich(line, source, ctx) {
                engine.observe(&enriched);
            }
        }
        for finding in engine.active_findings() {
            *found.entry(finding.rule_id.clone()).or_default() += 1;
        }
        assert_eq!(found, generated.summary.expected_findings, "seed {seed}");
        assert_eq!(found.len(), 12, "every rule is exercised: {found:?}");
    }
}
