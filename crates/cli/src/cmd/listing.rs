//! `distans listing import`: a register CSV as a new version of a home
//! region's listing register.

use std::path::Path;

use distans_runtime::Settings;

/// Reads and pseudonymises `file` (columns: `distans_files::listing`), then
/// imports it for `county` (SCB county code). With `pseudonym.key` set, the
/// key is first checked against the recorded one (Kafka,
/// `distans_runtime::pseudonym_keys`). Errors: an unknown county, a key not
/// the recorded one, every bad row (nothing written), a register whose
/// region-run health centres are another county's region's
/// (`distans_files::listing::run_by_another_region`), or ClickHouse's error.
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
        distans_files::listing::run_by_another_region(&parsed.listings, county, &settings.detector.rules.home_regions)
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
