//! `distans listing import`: a register CSV as a new version of a home
//! region's listing register.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use distans_runtime::Settings;
use distans_store::listing::Listing;

/// Reads and pseudonymises `file` (columns: `distans_files::listing`), then
/// imports it for `county` (SCB county code). With `pseudonym.key` set, the
/// key is first checked against the recorded one (Kafka,
/// `distans_runtime::pseudonym_keys`). Errors: an unknown county, a key not
/// the recorded one, every bad row (nothing written), a register whose
/// region-run health centres are another county's region's
/// ([`run_by_another_region`]), or ClickHouse's error.
pub async fn run(file: &Path, county: &str, settings: &Settings) -> anyhow::Result<()> {
    if !distans_domain::codes::is_county_code(county) {
        anyhow::bail!("{county:?} is not an SCB county code");
    }
    let pseudonymiser = settings.pseudonymiser().ok();
    if pseudonymiser.is_some() {
        // Clear-text ids are pseudonymised with this key: it must be the
        // ingester's, or no line would join its listing. The broker keeps
        // the key's record: one that does not answer is named as such.
        distans_runtime::kafka::connect_within(&settings.kafka, super::KAFKA_WAIT).await?;
        distans_runtime::pseudonym_keys::check(settings, "distans listing import").await?;
    }
    let validation = settings.validation()?;
    let parsed = distans_files::listing::read_with(file, pseudonymiser.as_ref(), validation.patient_ids())?;
    if let Some((region, its_county)) =
        run_by_another_region(&parsed.listings, county, &settings.detector.rules.home_regions)
    {
        anyhow::bail!(
            "{}: its health centres run by a region are run by {region}, the region of county {its_county} \
             (detector.rules.home_regions), not of county {county}: check --county",
            file.display()
        );
    }
    let client = super::database(settings).await?;
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let imported = distans_store::listing::import(
        &client,
        county,
        &name,
        &parsed.sha256,
        &parsed.listings,
        distans_runtime::now_ms(),
    )
    .await?;
    crate::print(format_args!(
        "imported listing register version {} for county {county}: {} periods, {} patients, {} health centres \
         (the sink rebuilds the aggregates now; without a running sink, run `distans refresh`)\n",
        imported.import_id, imported.rows, imported.patients, imported.units
    ))?;
    Ok(())
}

/// The region (organisation number) and its county when every health
/// centre of `listings` that a home region runs (its
/// `unit_provider_org_number` is a key of `home_regions`,
/// `detector.rules.home_regions`) is run by one region, of another county
/// than `county`: the register of another region, given the wrong
/// `--county`. `None` when nothing contradicts `county` (privately run
/// health centres, and units of regions not configured, say nothing).
fn run_by_another_region(
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
