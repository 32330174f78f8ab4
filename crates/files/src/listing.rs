//! The home region's listing register: which health centre each patient is
//! listed at, and when. Imported from CSV with a header row:
//!
//! ```text
//! patient_id,unit_hsa_id,unit_name,unit_provider_org_number,provider_group,valid_from,valid_to
//! 197001011234,SE2321000230-1001,Hälsocentralen Odenslund,2321000230,Region Jämtland Härjedalen,2020-01-01,
//! ```
//!
//! `patient_id` is a personnummer or samordningsnummer in clear text: it is
//! pseudonymised here with the ingester's key (`pseudonym.key`), so it joins
//! the lines without the clear text reaching ClickHouse. A register already
//! pseudonymised has a `patient_pseudonym` column (32 hex digits) instead.
//! `valid_to` empty means still listed. `unit_provider_org_number` and
//! `provider_group` may be empty.
//!
//! Every bad row is reported (with its line number) and nothing is written;
//! overlapping periods of one patient are errors. An import is a version:
//! its rows are written first, then the import is recorded, and only the
//! latest recorded import of a region is current.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use distans_domain::codes::is_hsa_id;
use distans_domain::{PatientIdFormats, Pseudonymiser, Sex};
use distans_store::rows::clickhouse_time::days_since_epoch;
use sha2::{Digest, Sha256};

use crate::errors::{ReadError, RowError};

pub use distans_store::listing::{Imported, Listing};

/// A parsed register file.
#[derive(Debug, Clone)]
pub struct Register {
    pub listings: Vec<Listing>,
    pub sha256: String,
}

/// Reads and pseudonymises a register file; all bad rows or none.
pub fn read(path: &Path, pseudonymiser: Option<&Pseudonymiser>) -> Result<Register, ReadError> {
    read_with(path, pseudonymiser, &PatientIdFormats::default())
}

/// As [`read`], accepting clear-text reservnummer in the configured
/// `formats` (of any region: the register does not say who issued them).
pub fn read_with(
    path: &Path,
    pseudonymiser: Option<&Pseudonymiser>,
    formats: &PatientIdFormats,
) -> Result<Register, ReadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ReadError::Io { path: shown.clone(), error })?;
    let sha256 = hex_digest(&bytes);
    match parse_register(&bytes, pseudonymiser, formats) {
        // Importing it would make an empty register current.
        Ok(listings) if listings.is_empty() => Err(ReadError::Empty { path: shown, what: "listing periods" }),
        Ok(listings) => Ok(Register { listings, sha256 }),
        Err(errors) => Err(ReadError::rows(shown, errors)),
    }
}

/// The listings of a whole register file's bytes, pseudonymised as
/// [`read_with`] does, or every bad row and overlap (1-based line numbers,
/// in line order). Never panics, whatever the bytes (`fuzz/` checks it).
pub fn parse_register(
    bytes: &[u8],
    pseudonymiser: Option<&Pseudonymiser>,
    formats: &PatientIdFormats,
) -> Result<Vec<Listing>, Vec<RowError>> {
    let (listings, mut errors) = parse(bytes, pseudonymiser, formats);
    errors.extend(overlaps(&listings));
    if errors.is_empty() {
        Ok(listings.into_iter().map(|(_, l)| l).collect())
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows with their 1-based line numbers, and the rows that are not listings.
fn parse(
    bytes: &[u8],
    pseudonymiser: Option<&Pseudonymiser>,
    formats: &PatientIdFormats,
) -> (Vec<(usize, Listing)>, Vec<RowError>) {
    let mut listings = Vec::new();
    let mut errors = Vec::new();
    let (mut csv, headers) = match crate::csv_with_header(bytes) {
        Ok(read) => read,
        Err(error) => return (listings, vec![error]),
    };
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let has_clear = column("patient_id").is_some();
    if has_clear == column("patient_pseudonym").is_some() {
        let message = "the header needs exactly one of patient_id and patient_pseudonym".to_string();
        return (listings, vec![RowError { line: 1, message }]);
    }
    let missing: Vec<&str> =
        ["unit_hsa_id", "unit_name", "valid_from", "valid_to"].into_iter().filter(|c| column(c).is_none()).collect();
    if !missing.is_empty() {
        return (listings, vec![RowError { line: 1, message: format!("missing columns: {}", missing.join(", ")) }]);
    }
    if has_clear && pseudonymiser.is_none() {
        let message = "patient_id in clear text needs pseudonym.key (the ingester's key)".to_string();
        return (listings, vec![RowError { line: 1, message }]);
    }
    for (index, record) in csv.records().enumerate() {
        let line = index + 2;
        let row = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(crate::csv_row_error(line, &e));
                continue;
            }
        };
        let cells: BTreeMap<&str, &str> = headers.iter().zip(row.iter()).map(|(h, v)| (h.trim(), v.trim())).collect();
        match listing(&|name| cells.get(name).copied().unwrap_or(""), pseudonymiser, formats) {
            Ok(l) => listings.push((line, l)),
            Err(problems) => errors.push(RowError { line, message: problems.join("; ") }),
        }
    }
    (listings, errors)
}

fn listing<'a>(
    cell: &dyn Fn(&str) -> &'a str,
    pseudonymiser: Option<&Pseudonymiser>,
    formats: &PatientIdFormats,
) -> Result<Listing, Vec<String>> {
    let mut problems = Vec::new();
    let (patient_pseudonym, birth_year, sex) = match pseudonymiser {
        Some(p) if !cell("patient_id").is_empty() || cell("patient_pseudonym").is_empty() => {
            match formats.parse_any_region(cell("patient_id")) {
                Ok(id) => (
                    p.pseudonymise(&id),
                    id.birth_date().and_then(|d| u16::try_from(d.year()).ok()),
                    id.sex().unwrap_or(Sex::Unknown),
                ),
                Err(e) => {
                    problems.push(e.to_string());
                    (String::new(), None, Sex::Unknown)
                }
            }
        }
        _ => {
            let pseudonym = cell("patient_pseudonym").to_ascii_lowercase();
            if pseudonym.len() != 32 || !pseudonym.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push("patient_pseudonym is not 32 hex digits".to_string());
            }
            (pseudonym, None, Sex::Unknown)
        }
    };
    let unit_hsa_id = cell("unit_hsa_id").to_string();
    if !is_hsa_id(&unit_hsa_id) {
        problems.push(format!("unit_hsa_id {unit_hsa_id:?} is not an HSA-id"));
    }
    if cell("unit_name").is_empty() {
        problems.push("unit_name is empty".to_string());
    }
    let date = |name: &str, problems: &mut Vec<String>| match cell(name) {
        "" => None,
        text => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) if days_since_epoch(d).is_some() => Some(d),
            _ => {
                problems.push(format!("{name} {text:?} is not a date (YYYY-MM-DD, 1970 to 2149)"));
                None
            }
        },
    };
    let valid_from = date("valid_from", &mut problems);
    let valid_to = date("valid_to", &mut problems);
    if cell("valid_from").is_empty() {
        problems.push("valid_from is empty".to_string());
    }
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if to < from {
            problems.push("valid_to is before valid_from".to_string());
        }
    }
    match valid_from {
        Some(valid_from) if problems.is_empty() => Ok(Listing {
            patient_pseudonym,
            unit_hsa_id,
            unit_name: cell("unit_name").to_string(),
            unit_provider_org_number: cell("unit_provider_org_number").to_string(),
            provider_group: cell("provider_group").to_string(),
            birth_year,
            sex,
            valid_from,
            valid_to,
        }),
        _ => Err(problems),
    }
}

/// A patient listed at two places on one day.
fn overlaps(listings: &[(usize, Listing)]) -> Vec<RowError> {
    let mut by_patient: BTreeMap<&str, Vec<(NaiveDate, NaiveDate, usize)>> = BTreeMap::new();
    for (line, l) in listings {
        let to = l.valid_to.unwrap_or(NaiveDate::MAX);
        by_patient.entry(&l.patient_pseudonym).or_default().push((l.valid_from, to, *line));
    }
    let mut errors = Vec::new();
    for periods in by_patient.values_mut() {
        periods.sort();
        for pair in periods.windows(2) {
            let ((_, end, first), (start, _, line)) = (pair[0], pair[1]);
            if start <= end {
                errors.push(RowError {
                    line,
                    message: format!("the patient's listing overlaps the one on line {first}"),
                });
            }
        }
    }
    errors
}

/// Writes a register file for listings in clear text (the generator's).
pub fn write_clear_csv(rows: &[ClearListing], out: impl std::io::Write) -> csv::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record([
        "patient_id",
        "unit_hsa_id",
        "unit_name",
        "unit_provider_org_number",
        "provider_group",
        "valid_from",
        "valid_to",
    ])?;
    for r in rows {
        let to = r.valid_to.map(|d| d.to_string()).unwrap_or_default();
        csv.write_record([
            r.patient_id.as_str(),
            &r.unit_hsa_id,
            &r.unit_name,
            &r.unit_provider_org_number,
            &r.provider_group,
            &r.valid_from.to_string(),
            &to,
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// A listing period with the patient in clear text, as a region exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearListing {
    pub patient_id: String,
    pub unit_hsa_id: String,
    pub unit_name: String,
    pub unit_provider_org_number: String,
    pub provider_group: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// The region (organisation number) and its county when every health
/// centre of `listings` that a home region runs (its
/// `unit_provider_org_number` is a key of `home_regions`,
/// `detector.rules.home_regions`) is run by one region, of another county
/// than `county`: the register of another region, given the wrong
/// `--county`. `None` when nothing contradicts `county` (privately run
/// health centres, and units of regions not configured, say nothing).
pub fn run_by_another_region(
    listings: &[Listing],
    county: &str,
    home_regions: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    let regions: BTreeSet<(&String, &String)> =
        listings.iter().filter_map(|l| home_regions.get_key_value(&l.unit_provider_org_number)).collect();
    match regions.into_iter().collect::<Vec<_>>()[..] {
        [(region, its_county)] if its_county != county => Some((region.clone(), its_county.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Pseudonymiser {
        Pseudonymiser::new(&[7u8; 32]).expect("key")
    }

    const HEADER: &str =
        "patient_id,unit_hsa_id,unit_name,unit_provider_org_number,provider_group,valid_from,valid_to\n";

    #[test]
    fn clear_text_is_pseudonymised_with_birth_year_and_sex() {
        let text = format!("{HEADER}194001079120,SE2321000230-1001,HC Ett,2321000230,Region,2020-01-01,\n");
        let (listings, errors) = parse(text.as_bytes(), Some(&key()), &PatientIdFormats::default());
        assert_eq!(errors, vec![]);
        let l = &listings[0].1;
        let id = distans_domain::PatientId::parse("194001079120").expect("valid");
        assert_eq!(l.patient_pseudonym, key().pseudonymise(&id));
        assert!(!l.patient_pseudonym.contains("19400107"));
        assert_eq!((l.birth_year, l.sex, l.valid_to), (Some(1940), Sex::Female, None));
    }

    #[test]
    fn every_bad_row_is_reported_and_overlaps_too() {
        let text = format!(
            "{HEADER}194001079120,SE2321000230-1001,HC Ett,,,2020-01-01,2024-12-31\n\
             194001079121,SE2321000230-1001,HC Ett,,,2020-01-01,\n\
             194001079120,not-hsa,,,,2024-13-01,\n\
             194001079120,SE2321000230-1002,HC Två,,,2024-06-01,\n"
        );
        let (listings, errors) = parse(text.as_bytes(), Some(&key()), &PatientIdFormats::default());
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(errors[0].message.contains("Luhn"), "{}", errors[0].message);
        assert!(errors[1].message.contains("HSA-id") && errors[1].message.contains("unit_name"));
        assert!(errors[1].message.contains("valid_from"));
        let overlapping = overlaps(&listings);
        assert_eq!(overlapping.len(), 1);
        assert_eq!(overlapping[0].line, 5);
        assert!(overlapping[0].message.contains("line 2"));
    }

    #[test]
    fn a_register_without_periods_is_refused() {
        let path = std::env::temp_dir().join(format!("distans-files-{}-empty-register.csv", std::process::id()));
        std::fs::write(&path, HEADER).expect("write");
        let error = read(&path, Some(&key())).expect_err("a header alone").to_string();
        assert!(
            error.ends_with(
                "empty-register.csv holds no listing periods: it is empty, or has blank lines or a header only"
            ),
            "{error}"
        );
    }

    #[test]
    fn pseudonymised_registers_need_no_key() {
        let text = "patient_pseudonym,unit_hsa_id,unit_name,valid_from,valid_to\n\
                    0123456789abcdef0123456789ABCDEF,SE2321000230-1001,HC,2020-01-01,\n\
                    0123,SE2321000230-1001,HC,2020-01-01,\n";
        let (listings, errors) = parse(text.as_bytes(), None, &PatientIdFormats::default());
        assert_eq!(listings.len(), 1);
        assert_eq!(listings[0].1.patient_pseudonym, "0123456789abcdef0123456789abcdef");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        let clear = format!("{HEADER}194001079120,SE2321000230-1001,HC Ett,,,2020-01-01,\n");
        let (_, errors) = parse(clear.as_bytes(), None, &PatientIdFormats::default());
        assert!(errors[0].message.contains("pseudonym.key"));
    }

    #[test]
    fn the_written_csv_reads_back() {
        let rows = vec![ClearListing {
            patient_id: "194001079120".into(),
            unit_hsa_id: "SE2321000230-1001".into(),
            unit_name: "Hälsocentralen, Ett".into(),
            unit_provider_org_number: "2321000230".into(),
            provider_group: "Region".into(),
            valid_from: "2020-01-01".parse().expect("date"),
            valid_to: Some("2025-06-30".parse().expect("date")),
        }];
        let mut out = Vec::new();
        write_clear_csv(&rows, &mut out).expect("write");
        let (listings, errors) = parse(&out, Some(&key()), &PatientIdFormats::default());
        assert_eq!(errors, vec![]);
        assert_eq!(listings[0].1.unit_name, "Hälsocentralen, Ett");
        assert_eq!(listings[0].1.valid_to, rows[0].valid_to);
    }

    #[test]
    fn a_register_of_another_regions_health_centres_is_named() {
        let listing = |provider: &str| Listing {
            patient_pseudonym: "p".into(),
            unit_hsa_id: "SE2321000230-HC1".into(),
            unit_name: "Hälsocentralen".into(),
            unit_provider_org_number: provider.into(),
            provider_group: "g".into(),
            birth_year: None,
            sex: distans_domain::Sex::Unknown,
            valid_from: chrono::NaiveDate::MIN,
            valid_to: None,
        };
        let home_regions: BTreeMap<String, String> =
            [("2321000230", "23"), ("2321000255", "25")].map(|(org, c)| (org.to_string(), c.to_string())).into();
        let jamtland = [listing("2321000230"), listing("5592000001")];
        assert_eq!(
            run_by_another_region(&jamtland, "25", &home_regions),
            Some(("2321000230".to_string(), "23".to_string()))
        );
        assert_eq!(run_by_another_region(&jamtland, "23", &home_regions), None);
        let private_only = [listing("5592000001")];
        assert_eq!(run_by_another_region(&private_only, "25", &home_regions), None);
        let both = [listing("2321000230"), listing("2321000255")];
        assert_eq!(run_by_another_region(&both, "25", &home_regions), None, "listed across a county border");
        assert_eq!(run_by_another_region(&jamtland, "25", &BTreeMap::new()), None, "no home regions configured");
    }
}
