//! `distans grafana`: the dashboard as `deploy/grafana/dashboards/distans.json` holds it.

use distans_domain::text::Language;

/// Prints the dashboard JSON in `language` (`sv` or `en`; no settings needed).
pub fn run(language: &str) -> anyhow::Result<()> {
    let language = Language::parse(language).ok_or_else(|| anyhow::anyhow!("--language must be sv or en"))?;
    crate::print(distans_report::grafana::dashboard_file(language))?;
    Ok(())
}
