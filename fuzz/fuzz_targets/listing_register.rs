//! Any bytes as a listing register (`distans listing import`):
//! `distans_files::listing::parse_register`, with the ingester's key (clear
//! text pseudonymised, the default reservnummer formats) and without one
//! (only pseudonymised registers are accepted).
//!
//! Checked, besides "never panics": an accepted register's listings are
//! what the reader promises (a pseudonym of 32 lowercase hex digits, a
//! non-empty HSA-id and unit name, `valid_from` ≤ `valid_to`, no patient
//! listed twice on one day); a rejected one names its bad rows in order.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use distans_domain::{PatientIdFormats, Pseudonymiser};
use distans_files::listing::{parse_register, Listing};
use distans_files::RowError;
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<Pseudonymiser> = LazyLock::new(|| Pseudonymiser::new(&[7u8; 32]).expect("a 32-byte key"));
static FORMATS: LazyLock<PatientIdFormats> = LazyLock::new(|| {
    let settings = distans_runtime::Settings::load_with_env(None, Some(BTreeMap::new())).expect("the defaults load");
    settings.validation().expect("the default validation compiles").patient_ids().clone()
});

fn check(result: Result<Vec<Listing>, Vec<RowError>>) {
    match result {
        Ok(listings) => {
            let mut periods: BTreeMap<&str, Vec<_>> = BTreeMap::new();
            for l in &listings {
                assert_eq!(l.patient_pseudonym.len(), 32);
                assert!(l.patient_pseudonym.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                assert!(!l.unit_hsa_id.is_empty() && !l.unit_name.is_empty());
                assert!(l.valid_to.is_none_or(|to| l.valid_from <= to));
                periods.entry(&l.patient_pseudonym).or_default().push((l.valid_from, l.valid_to));
            }
            for p in periods.values_mut() {
                p.sort();
                for w in p.windows(2) {
                    assert!(w[0].1.is_some_and(|end| end < w[1].0), "overlapping periods were accepted");
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a rejected register names a bad row");
            assert!(errors.windows(2).all(|w| w[0].line <= w[1].line), "errors in line order");
            assert!(errors.iter().all(|e| e.line >= 1), "line numbers are 1-based");
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    check(parse_register(bytes, Some(&KEY), &FORMATS));
    check(parse_register(bytes, None, &FORMATS));
});
