//! `distans migrate`: ClickHouse migrations applied and views re-created.

use distans_runtime::Settings;

/// Applies the migrations not yet applied, re-creates the views, and prints both.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let server = distans_store::client(&settings.clickhouse);
    distans_store::answers_within(&server, super::CLICKHOUSE_WAIT).await?;
    let applied = distans_store::migrations::migrate(&server, &settings.clickhouse.database).await?;
    let views = distans_store::views::recreate(&distans_store::database(&settings.clickhouse)).await?;
    crate::print(format_args!("applied migrations: {applied:?}; views re-created: {views}\n"))?;
    Ok(())
}
