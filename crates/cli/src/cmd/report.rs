//! `distans report`: the regions' questions answered as terminal tables,
//! the findings per rule, and with `--html` one page with charts.

use std::path::Path;

use anyhow::Context;
use distans_domain::text::Language;
use distans_report::answers::{self, Scope};
use distans_report::findings;
use distans_runtime::Settings;

/// `--buyer`: a Swedish organisation number, `232100-0230` or `2321000230`,
/// as its ten digits. Errors: any other text, or a wrong check digit.
pub fn org_number(raw: &str) -> Result<String, String> {
    distans_domain::codes::normalise_org_number(raw.trim()).ok_or_else(|| {
        "not an organisation number: ten digits, as 232100-0230 or 2321000230, whose last is the Luhn \
         check digit of the other nine"
            .to_string()
    })
}

/// Reports for `buyer` (10-digit organisation number; default: the only
/// region in the data) and visit `year` (default: its latest), in
/// `language` (`sv` or `en`; default `reporting.language`).
pub async fn run(
    buyer: Option<&str>,
    year: Option<i32>,
    html: Option<&Path>,
    language: Option<&str>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let language = language.unwrap_or(&settings.reporting.language);
    let language = Language::parse(language).ok_or_else(|| anyhow::anyhow!("--language must be sv or en"))?;
    let client = super::database(settings).await?;
    let (buyer, year) = answers::default_scope(&client, buyer, year).await?;
    let all = answers::answer_all(&client, &buyer, year).await?;
    let regions = distans_store::panels::region_names(&client).await?;
    let scope = Scope { buyer: &buyer, region: regions.get(&buyer).map(String::as_str), year, language };
    let rule_findings = distans_store::queries::findings_by_rule(&client, Some(&buyer)).await?;
    // The file first: a reader of the terminal output that stops early
    // (`| head`) ends the command, and must not cost the file.
    if let Some(path) = html {
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        std::fs::write(path, answers::render_html(&all, &scope, &now))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::print(answers::render_terminal(&all, &scope))?;
    if !rule_findings.is_empty() {
        crate::print(format_args!("\n{}", findings::render_findings(&rule_findings, language)))?;
    }
    if let Some(path) = html {
        crate::print(format_args!("\n{}: {}\n", language.pick("HTML-rapport", "HTML report"), path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_organisation_number_is_taken_as_people_write_it() {
        assert_eq!(super::org_number("232100-0230"), Ok("2321000230".to_string()));
        assert_eq!(super::org_number("2321000230"), Ok("2321000230".to_string()));
        for wrong in ["2321000231", "23", "232100 0230", "SE2321000230-1"] {
            let error = super::org_number(wrong).expect_err(wrong);
            assert!(error.contains("232100-0230 or 2321000230") && error.contains("check digit"), "{error}");
        }
    }
}
