//! The home region's listing register in ClickHouse (`listing_register`,
//! `listing_imports`; the view `listing_current`). Reading and checking a
//! register file is the operator command's (`distans listing import`).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use distans_domain::Sex;
use serde::Serialize;

use crate::rows::clickhouse_time::days_since_epoch;
use crate::{Client, Error};

/// One listing period, pseudonymised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub patient_pseudonym: String,
    pub unit_hsa_id: String,
    pub unit_name: String,
    pub unit_provider_org_number: String,
    pub provider_group: String,
    pub birth_year: Option<u16>,
    pub sex: Sex,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct RegisterRow<'a> {
    import_id: u64,
    home_county: &'a str,
    patient_pseudonym: &'a str,
    unit_hsa_id: &'a str,
    unit_name: &'a str,
    unit_provider_org_number: &'a str,
    provider_group: &'a str,
    birth_year: Option<u16>,
    sex: &'static str,
    valid_from: u16,
    valid_to: u16,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct ImportRow<'a> {
    import_id: u64,
    home_county: &'a str,
    file_name: &'a str,
    file_sha256: &'a str,
    rows: u64,
    patients: u64,
    units: u64,
    imported_at: u32,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub import_id: u64,
    pub rows: u64,
    pub patients: u64,
    pub units: u64,
}

/// Writes the register as a new version for `home_county` (SCB code): rows
/// first, then the import record that makes it current.
pub async fn import(
    db: &Client,
    home_county: &str,
    file_name: &str,
    file_sha256: &str,
    listings: &[Listing],
    now_ms: i64,
) -> Result<Imported, Error> {
    let import_id = u64::try_from(now_ms).unwrap_or_default();
    let mut insert = db.insert::<RegisterRow>("listing_register").await?;
    for l in listings {
        insert
            .write(&RegisterRow {
                import_id,
                home_county,
                patient_pseudonym: &l.patient_pseudonym,
                unit_hsa_id: &l.unit_hsa_id,
                unit_name: &l.unit_name,
                unit_provider_org_number: &l.unit_provider_org_number,
                provider_group: &l.provider_group,
                birth_year: l.birth_year,
                sex: l.sex.as_str(),
                valid_from: days_since_epoch(l.valid_from).unwrap_or(0),
                valid_to: l.valid_to.and_then(days_since_epoch).unwrap_or(u16::MAX),
            })
            .await?;
    }
    insert.end().await?;
    let imported = Imported {
        import_id,
        rows: listings.len() as u64,
        patients: listings.iter().map(|l| &l.patient_pseudonym).collect::<BTreeSet<_>>().len() as u64,
        units: listings.iter().map(|l| &l.unit_hsa_id).collect::<BTreeSet<_>>().len() as u64,
    };
    let mut insert = db.insert::<ImportRow>("listing_imports").await?;
    insert
        .write(&ImportRow {
            import_id,
            home_county,
            file_name,
            file_sha256,
            rows: imported.rows,
            patients: imported.patients,
            units: imported.units,
            imported_at: u32::try_from(now_ms / 1000).unwrap_or(u32::MAX),
        })
        .await?;
    insert.end().await?;
    Ok(imported)
}
