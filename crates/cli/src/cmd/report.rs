//! `distans report`: the regions' questions answered as terminal tables,
//! the findings per rule, and with `--html` one page with charts.

use std::path::Path;

use anyhow::Context;
use distans_report::{answers, findings};
use distans_runtime::Settings;

/// Reports for `buyer` (10-digit organisation number; default: the only
/// region in the data) and visit `year` (default: its latest).
pub async fn run(
    buyer: Option<&str>,
    year: Option<i32>,
    html: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let client = distans_store::database(&settings.clickhouse);
    let (buyer, year) = answers::default_scope(&client, buyer, year).await?;
    let all = answers::answer_all(&client, &buyer, year).await?;
    print!("{}", answers::render_terminal(&all, &buyer, year));
    let rule_findings = distans_store::queries::findings_by_rule(&client, Some(&buyer)).await?;
    if !rule_findings.is_empty() {
        print!("\nWhat the rules mean (all years)\n{}", findings::render_findings(&rule_findings));
    }
    if let Some(path) = html {
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        std::fs::write(path, answers::render_html(&all, &buyer, year, &now))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nHTML report: {}", path.display());
    }
    Ok(())
}
