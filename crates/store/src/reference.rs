//! Reference data written at every start: county, municipality and
//! profession names and ICD-10 chapters from the domain's tables
//! (`distans_domain::codes`, read from `crates/domain/data/*.csv`), the home regions' names (by their county
//! in `detector.rules.home_regions`), tariffs, cost allocation, provider groups and
//! peer parameters from config.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use distans_domain::codes::{region_name, COUNTIES, ICD10_CHAPTERS, MUNICIPALITIES, PROFESSIONS};
use distans_domain::Tariffs;
use distans_runtime::config::ReportingSettings;
use serde::Serialize;

use crate::rows::clickhouse_time::days_since_epoch;
use crate::{insert, Client, Error, Row};

#[derive(Debug, Serialize, clickhouse::Row)]
struct County {
    county_code: &'static str,
    name: &'static str,
    loaded_at: u32,
}

#[derive(Debug, Serialize, clickhouse::Row)]
struct RegionName {
    buyer_org_number: String,
    county_code: String,
    name: String,
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
struct Allocation {
    home_county: String,
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
struct ProviderGroup {
    provider_org_number: String,
    provider_group: String,
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
/// (`ref_loads`) last, so the `*_current` views switch to it only once it
/// is complete. `home_regions` is `detector.rules.home_regions` (home
/// region organisation number → SCB county code), which names the regions
/// (`ref_regions`; a county code no region has is left out). `loaded_at` is
/// Unix seconds.
pub async fn load(
    db: &Client,
    tariffs: &Tariffs,
    reporting: &ReportingSettings,
    home_regions: &BTreeMap<String, String>,
    loaded_at: u32,
) -> Result<(), Error> {
    let counties = COUNTIES.iter().map(|c| County { county_code: &c.county_code, name: &c.county_name, loaded_at });
    write(db, "ref_counties", counties).await?;
    let regions = home_regions.iter().filter_map(|(org, county)| {
        let name = region_name(county)?.to_string();
        Some(RegionName { buyer_org_number: org.clone(), county_code: county.clone(), name, loaded_at })
    });
    write(db, "ref_regions", regions).await?;
    let municipalities = MUNICIPALITIES.iter().map(|m| Municipality {
        municipality_code: &m.municipality_code,
        name: &m.name,
        loaded_at,
    });
    write(db, "ref_municipalities", municipalities).await?;
    let professions = tariffs.professions.iter().map(|(code, class)| {
        let labels = PROFESSIONS.iter().find(|p| p.profession_code == *code);
        Profession {
            profession_code: code.clone(),
            label_sv: labels.map_or(code.clone(), |l| l.label_sv.clone()),
            label_en: labels.map_or(code.clone(), |l| l.label_en.clone()),
            tariff_class: class.as_str(),
            loaded_at,
        }
    });
    write(db, "ref_professions", professions).await?;
    let chapters = ICD10_CHAPTERS.iter().map(|c| Chapter {
        chapter: &c.chapter,
        first_code: &c.first_code,
        last_code: &c.last_code,
        title_sv: &c.title_sv,
        title_en: &c.title_en,
        loaded_at,
    });
    write(db, "ref_icd10_chapters", chapters).await?;
    let allocations = reporting.cost_allocation.iter().map(|a| {
        let (valid_from, valid_to) = validity(a.valid_from, a.valid_to);
        let health_centre_percent = a.health_centre_percent;
        Allocation { home_county: a.county.clone(), valid_from, valid_to, health_centre_percent, loaded_at }
    });
    write(db, "ref_cost_allocation", allocations).await?;
    let tariff_rows = tariffs.entries.iter().map(|entry| {
        let (valid_from, valid_to) = validity(entry.valid_from, entry.valid_to);
        Tariff { tariff_class: entry.class.as_str(), valid_from, valid_to, amount_ore: entry.amount_ore, loaded_at }
    });
    write(db, "ref_tariffs", tariff_rows).await?;
    let groups = reporting.provider_groups.iter().map(|(org, group)| ProviderGroup {
        provider_org_number: org.clone(),
        provider_group: group.clone(),
        loaded_at,
    });
    write(db, "ref_provider_groups", groups).await?;
    let parameters = [
        ("peer_min_contacts", f64::from(reporting.peer_min_contacts)),
        ("peer_min_providers", f64::from(reporting.peer_min_providers)),
        ("peer_threshold", reporting.peer_threshold),
    ]
    .map(|(name, value)| Parameter { name, value, loaded_at });
    insert(db, "ref_parameters", &parameters).await?;
    insert(db, "ref_loads", &[Load { loaded_at }]).await
}

/// Writes `rows` into `table`.
async fn write<R: Row + clickhouse::RowOwned>(
    db: &Client,
    table: &str,
    rows: impl Iterator<Item = R>,
) -> Result<(), Error> {
    insert(db, table, &rows.collect::<Vec<R>>()).await
}

/// A validity period as ClickHouse Dates (days since the epoch): `from`,
/// and `to` or, when there is none, open-ended (`u16::MAX`). A date past
/// ClickHouse's last Date reads as open-ended too.
fn validity(from: NaiveDate, to: Option<NaiveDate>) -> (u16, u16) {
    let days = |d| days_since_epoch(d).unwrap_or(u16::MAX);
    (days(from), to.map_or(u16::MAX, days))
}

#[cfg(test)]
mod tests {
    use distans_domain::codes::ICD10_CHAPTERS;

    /// The chapter the aggregate refresh gives a first diagnosis code's
    /// first three characters: its `multiIf` of thresholds, read from the
    /// SQL and applied as ClickHouse does (the first `code < threshold`
    /// wins, else the last chapter named).
    fn chapter_in_refresh_sql(code: &str) -> String {
        let sql = include_str!("../sql/refresh_month.sql");
        let quoted = |text: &str| text.split('\'').nth(1).map(str::to_string);
        let mut otherwise = None;
        for line in sql.lines().map(str::trim) {
            if let Some(test) = line.strip_prefix("substring(diagnosis_codes[1], 1, 3) < ") {
                let (threshold, chapter) = test.split_once(", ").expect("threshold, chapter");
                if code < quoted(threshold).expect("a quoted threshold").as_str() {
                    return quoted(chapter).expect("a quoted chapter");
                }
            } else if line.ends_with(")) AS diagnosis_chapter,") {
                otherwise = quoted(line);
            }
        }
        otherwise.expect("the multiIf's last chapter")
    }

    #[test]
    fn the_refresh_sql_puts_each_chapters_codes_in_it() {
        for chapter in ICD10_CHAPTERS.iter() {
            for code in [&chapter.first_code, &chapter.last_code] {
                assert_eq!(chapter_in_refresh_sql(code), chapter.chapter, "{code}");
            }
        }
        assert_eq!(chapter_in_refresh_sql("J06"), "X");
    }
}
