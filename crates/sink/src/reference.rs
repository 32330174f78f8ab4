//! Reference data written at start: county names and profession labels
//! from the domain's tables, tariffs from config.

use clickhouse::Client;
use distans_domain::codes::{COUNTY_NAMES, ICD10_CHAPTERS, MUNICIPALITY_NAMES, PROFESSION_LABELS};
use distans_domain::Tariffs;
use distans_runtime::config::ReportingSettings;
use serde::Serialize;

use crate::row::clickhouse_time::days_since_epoch;

#[derive(Debug, Serialize, clickhouse::Row)]
struct County {
    county_code: &'static str,
    name: &'static str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Municipality {
    municipality_code: &'static str,
    name: &'static str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Profession {
    profession_code: String,
    label_sv: String,
    label_en: String,
    tariff_class: &'static str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Tariff {
    tariff_class: &'static str,
    valid_from: u16,
    valid_to: u16,
    amount_ore: i64,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Allocation<'a> {
    home_county: &'a str,
    valid_from: u16,
    valid_to: u16,
    health_centre_percent: u8,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Chapter {
    chapter: &'static str,
    first_code: &'static str,
    last_code: &'static str,
    title_sv: &'static str,
    title_en: &'static str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct ProviderGroup<'a> {
    provider_org_number: &'a str,
    provider_group: &'a str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Parameter {
    name: &'static str,
    value: f64,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct Load {
    loaded_at: u32,
}

/// Writes the reference tables (the newest load wins), and records the load
/// last, so the `*_current` views switch to it only once it is complete.
pub async fn load(
    db: &Client,
    tariffs: &Tariffs,
    reporting: &ReportingSettings,
    loaded_at: u32,
) -> Result<(), clickhouse::error::Error> {
    let mut insert = db.insert::<County>("ref_counties").await?;
    for (county_code, name) in COUNTY_NAMES {
        insert.write(&County { county_code, name, loaded_at }).await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Municipality>("ref_municipalities").await?;
    for (municipality_code, name) in MUNICIPALITY_NAMES {
        insert.write(&Municipality { municipality_code, name, loaded_at }).await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Profession>("ref_professions").await?;
    for (code, class) in &tariffs.professions {
        let labels = PROFESSION_LABELS.iter().find(|(c, _, _)| c == code);
        insert
            .write(&Profession {
                profession_code: code.clone(),
                label_sv: labels.map_or(code.clone(), |l| l.1.to_string()),
                label_en: labels.map_or(code.clone(), |l| l.2.to_string()),
                tariff_class: class.as_str(),
                loaded_at,
            })
            .await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Chapter>("ref_icd10_chapters").await?;
    for (chapter, first_code, last_code, title_sv, title_en) in ICD10_CHAPTERS {
        insert.write(&Chapter { chapter, first_code, last_code, title_sv, title_en, loaded_at }).await?;
    }
    insert.end().await?;

    // A date past ClickHouse's last Date reads as open-ended.
    let days = |d| days_since_epoch(d).unwrap_or(u16::MAX);
    let mut insert = db.insert::<Allocation>("ref_cost_allocation").await?;
    for a in &reporting.cost_allocation {
        insert
            .write(&Allocation {
                home_county: &a.county,
                valid_from: days(a.valid_from),
                valid_to: a.valid_to.map_or(u16::MAX, days),
                health_centre_percent: a.health_centre_percent,
                loaded_at,
            })
            .await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Tariff>("ref_tariffs").await?;
    for entry in &tariffs.entries {
        insert
            .write(&Tariff {
                tariff_class: entry.class.as_str(),
                valid_from: days(entry.valid_from),
                valid_to: entry.valid_to.map_or(u16::MAX, days),
                amount_ore: entry.amount_ore,
                loaded_at,
            })
            .await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<ProviderGroup>("ref_provider_groups").await?;
    for (provider_org_number, provider_group) in &reporting.provider_groups {
        insert.write(&ProviderGroup { provider_org_number, provider_group, loaded_at }).await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Parameter>("ref_parameters").await?;
    for (name, value) in [
        ("peer_min_contacts", f64::from(reporting.peer_min_contacts)),
        ("peer_min_providers", f64::from(reporting.peer_min_providers)),
        ("peer_threshold", reporting.peer_threshold),
    ] {
        insert.write(&Parameter { name, value, loaded_at }).await?;
    }
    insert.end().await?;

    let mut insert = db.insert::<Load>("ref_loads").await?;
    insert.write(&Load { loaded_at }).await?;
    insert.end().await
}
