//! `distans panels`: the report's panels (id, title, SQL) as JSON.

/// Prints the panels as a pretty JSON array (no settings needed).
pub fn run() -> anyhow::Result<()> {
    crate::print(format_args!("{}\n", serde_json::to_string_pretty(&*distans_report::panels::PANELS)?))?;
    Ok(())
}
