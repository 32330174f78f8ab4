//! A synthetic listing register for a generated year: every patient of the
//! lines, plus a listed population that made no digital contact, spread
//! over the home region's health centres. Most patients are listed all
//! year; some move to another health centre during the year (so lines are
//! joined by visit date), some are not listed at all (reported as
//! unlisted). The summary holds what reports must then show.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use distans_domain::{InvoiceLine, PatientId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use distans_files::listing::ClearListing;

use crate::error::Error;
use crate::generate::{Generated, Options};
use crate::profile::{new_patient, region, region_org_number, REGIONS};
use crate::summary::RegisterSummary;

/// Share of patients with digital contacts who are not listed.
const UNLISTED_SHARE: f64 = 0.06;
/// Share who move to another health centre during the year.
const MOVER_SHARE: f64 = 0.05;
/// Listed people without a digital contact, per patient with one.
const POPULATION_PER_PATIENT: usize = 10;

/// Health centres: (local HSA part, name, provider group, private).
const UNITS: [(&str, &str, &str, bool); 8] = [
    ("HC0001", "Hälsocentralen Centrum", "", false),
    ("HC0002", "Hälsocentralen Norr", "", false),
    ("HC0003", "Hälsocentralen Söder", "", false),
    ("HC0004", "Hälsocentralen Väster", "", false),
    ("HC0005", "Hälsocentralen Fjällen", "", false),
    ("HC0006", "Hälsocentralen Älvdalen", "", false),
    ("HC0007", "Nordvård Vårdcentral", "Nordvård", true),
    ("HC0008", "Läkarhuset Sjöstaden", "Läkarhuset", true),
];

/// The register and what it implies.
#[derive(Debug, Clone)]
pub struct GeneratedRegister {
    pub listings: Vec<ClearListing>,
    pub summary: RegisterSummary,
}

/// The health centre's HSA-id for a region: `SE` + the region's org number.
fn unit_hsa_id(county: &str, local: &str) -> String {
    format!("SE{}-{local}", region_org_number(county))
}

/// The register for `generated` (same seed, same register).
/// Errors: [`Error::UnknownRegion`] or [`Error::YearOutOfRange`] for
/// options [`crate::generate::generate`] would also refuse.
pub fn generate(generated: &Generated, options: &Options) -> Result<GeneratedRegister, Error> {
    let profile = region(&options.county_code).ok_or_else(|| Error::UnknownRegion {
        county: options.county_code.clone(),
        known: REGIONS.iter().map(|r| r.county_code).collect::<Vec<_>>().join(", "),
    })?;
    let county = profile.county_code;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x4c49_5354);
    let year_start = NaiveDate::from_ymd_opt(options.year, 1, 1).ok_or(Error::YearOutOfRange)?;
    let org = region_org_number(county);
    let unit = |i: usize| {
        let (local, name, group, private) = UNITS[i];
        (unit_hsa_id(county, local), name, if private { group.to_string() } else { profile.name.to_string() }, private)
    };
    let listing = |patient_id: &str, i: usize, from: NaiveDate, to: Option<NaiveDate>| {
        let (hsa, name, group, private) = unit(i);
        let provider_org = if private { format!("55920000{i}") } else { org.clone() };
        ClearListing {
            patient_id: patient_id.to_string(),
            unit_hsa_id: hsa,
            unit_name: name.to_string(),
            unit_provider_org_number: provider_org,
            provider_group: group,
            valid_from: from,
            valid_to: to,
        }
    };
    let since = |rng: &mut ChaCha8Rng| year_start - Days::new(rng.random_range(30..3650));

    // Patients of the lines, in order of first appearance (deterministic).
    let mut seen = BTreeSet::new();
    let mut patients = Vec::new();
    for line in &generated.lines {
        if PatientId::parse(&line.patient_id).is_ok() && seen.insert(line.patient_id.clone()) {
            patients.push(line.patient_id.clone());
        }
    }
    let mut listings = Vec::new();
    for id in &patients {
        if rng.random_bool(UNLISTED_SHARE) {
            continue;
        }
        let first = rng.random_range(0..UNITS.len());
        if rng.random_bool(MOVER_SHARE) {
            let moved = year_start + Days::new(rng.random_range(30..330));
            let second = (first + 1 + rng.random_range(0..UNITS.len() - 1)) % UNITS.len();
            let from = since(&mut rng);
            listings.push(listing(id, first, from, moved.pred_opt()));
            listings.push(listing(id, second, moved, None));
        } else {
            let from = since(&mut rng);
            listings.push(listing(id, first, from, None));
        }
    }
    // The listed population without digital contacts.
    let population = patients.len() * POPULATION_PER_PATIENT;
    let mut people = 0;
    while people < population {
        let person = new_patient(&mut rng, &profile, options.year);
        if seen.insert(person.id.clone()) {
            let i = rng.random_range(0..UNITS.len());
            let from = since(&mut rng);
            listings.push(listing(&person.id, i, from, None));
            people += 1;
        }
    }
    let summary = summarise(generated, county, options.year, &listings);
    Ok(GeneratedRegister { listings, summary })
}

fn covers(l: &ClearListing, date: NaiveDate) -> bool {
    l.valid_from <= date && l.valid_to.is_none_or(|to| date <= to)
}

fn summarise(generated: &Generated, county: &str, year: i32, listings: &[ClearListing]) -> RegisterSummary {
    let mut by_patient: BTreeMap<&str, Vec<&ClearListing>> = BTreeMap::new();
    for l in listings {
        by_patient.entry(&l.patient_id).or_default().push(l);
    }
    let mut s = RegisterSummary {
        home_county: county.to_string(),
        rows: listings.len(),
        listed_people: by_patient.len(),
        ..RegisterSummary::default()
    };
    let valid = generated.lines.iter().zip(&generated.invalid).filter(|(_, invalid)| !**invalid);
    for (line, _) in valid {
        let unit = listing_unit(line, county, &by_patient);
        let sign = if line.invoice_type == "381" { -1 } else { 1 };
        if unit.is_empty() {
            s.unlisted_lines += 1;
        } else {
            s.listed_lines += 1;
        }
        *s.net_by_unit.entry(unit.clone()).or_default() += sign * line.net_amount_ore;
        if !unit.is_empty() {
            let key = format!("{} {unit}", line.provider_org_number);
            *s.contacts_by_provider_and_unit.entry(key).or_default() += sign * i64::from(line.quantity);
        }
        *s.contacts_by_unit.entry(unit).or_default() += sign * i64::from(line.quantity);
    }
    if let Some(mid_year) = NaiveDate::from_ymd_opt(year, 7, 1) {
        for l in listings.iter().filter(|l| covers(l, mid_year)) {
            *s.listed_mid_year_by_unit.entry(l.unit_hsa_id.clone()).or_default() += 1;
        }
    }
    s
}

/// The unit a line's patient is listed at on the visit date ("" if none),
/// as the aggregate refresh joins it: by home county and patient.
fn listing_unit(line: &InvoiceLine, county: &str, by_patient: &BTreeMap<&str, Vec<&ClearListing>>) -> String {
    if line.patient_county_code != county {
        return String::new();
    }
    by_patient
        .get(line.patient_id.as_str())
        .and_then(|ls| ls.iter().find(|l| covers(l, line.visit_date)))
        .map(|l| l.unit_hsa_id.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::generate as generate_lines;

    fn year(lines: usize, seed: u64) -> (Generated, Options) {
        let options = crate::generate::tests::options(lines, seed);
        let tariffs = crate::generate::tests::tariffs();
        (generate_lines(&options, &tariffs).expect("generated"), options)
    }

    #[test]
    fn every_valid_line_is_listed_or_unlisted_and_sums_hold() {
        let (generated, options) = year(3000, 7);
        let register = generate(&generated, &options).expect("register");
        let s = &register.summary;
        assert_eq!(s.listed_lines + s.unlisted_lines, generated.summary.valid);
        assert_eq!(s.net_by_unit.values().sum::<i64>(), generated.summary.valid_net_amount_ore);
        assert_eq!(s.contacts_by_unit.values().sum::<i64>(), generated.summary.valid_contacts);
        assert!(s.unlisted_lines > 0 && s.listed_lines > s.unlisted_lines * 5, "{s:?}");
        assert!(s.listed_people > 10 * 900, "population {}", s.listed_people);
        // Some patients move: two periods, back to back.
        let mut periods: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &register.listings {
            *periods.entry(&l.patient_id).or_default() += 1;
        }
        assert!(periods.values().any(|n| *n == 2));
        assert!(periods.values().all(|n| *n <= 2));
    }

    #[test]
    fn same_seed_same_register() {
        let (generated, options) = year(500, 3);
        let a = generate(&generated, &options).expect("register");
        let b = generate(&generated, &options).expect("register");
        assert_eq!(a.listings, b.listings);
        assert_eq!(a.summary, b.summary);
    }
}
