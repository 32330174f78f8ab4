//! Counts and findings from ClickHouse for `distans wait` and `distans report`
//! (the report's panels are in `answers`).

use clickhouse::Client;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_domain::money::Ore;
use distans_domain::rules::Rule;
use serde::Deserialize;

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Count {
    count: u64,
}

/// Distinct invoice lines in ClickHouse (a line written twice counts once),
/// or only those last written at or after `since` (Unix seconds).
pub async fn current_line_count(client: &Client, since: Option<u32>) -> clickhouse::error::Result<u64> {
    let query = match since {
        None => client.query("SELECT count() AS count FROM invoice_lines FINAL"),
        Some(since) => {
            client.query("SELECT count() AS count FROM invoice_lines FINAL WHERE inserted_at >= ?").bind(since)
        }
    };
    Ok(query.fetch_one::<Count>().await?.count)
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct RuleFindings {
    pub rule_id: String,
    pub findings: u64,
    pub providers: u64,
    pub amount_at_stake_ore: i64,
}

/// Findings per rule from `anomalies` (duplicates collapsed).
pub async fn findings_by_rule(
    client: &Client,
    buyer_org_number: Option<&str>,
) -> clickhouse::error::Result<Vec<RuleFindings>> {
    let mut sql = String::from(
        "SELECT rule_id, count() AS findings, uniqExact(provider_org_number) AS providers, \
         sum(amount_at_stake_ore) AS amount_at_stake_ore FROM anomalies FINAL",
    );
    if buyer_org_number.is_some() {
        sql.push_str(" WHERE buyer_org_number = ?");
    }
    sql.push_str(" GROUP BY rule_id ORDER BY amount_at_stake_ore DESC, rule_id");
    let mut query = client.query(&sql);
    if let Some(buyer) = buyer_org_number {
        query = query.bind(buyer);
    }
    query.fetch_all().await
}

/// Whether `agg_monthly` agrees, month by month, with the lines and findings
/// in ClickHouse: what reports read is up to date.
pub async fn aggregates_fresh(client: &Client) -> clickhouse::error::Result<bool> {
    Ok(distans_sink::aggregates::stale_months(client).await?.is_empty())
}

/// Whether the detector's review has published every judgement the views
/// make now (providers far from their peers, same-group listings).
pub async fn review_caught_up(client: &Client) -> clickhouse::error::Result<bool> {
    let judged = client
        .query(
            "SELECT (SELECT count() FROM report_provider_peers WHERE far_from_peers) \
               + (SELECT count() FROM report_same_group_listing WHERE contacts > 0) AS count",
        )
        .fetch_one::<Count>()
        .await?
        .count;
    let published = client
        .query(
            "SELECT count() AS count FROM anomalies FINAL \
             WHERE rule_id IN ('provider_far_from_peers', 'listed_at_same_group')",
        )
        .fetch_one::<Count>()
        .await?
        .count;
    Ok(published >= judged)
}

/// Findings in `anomalies` (a finding published twice counts once).
pub async fn current_finding_count(client: &Client) -> clickhouse::error::Result<u64> {
    Ok(client.query("SELECT count() AS count FROM anomalies FINAL").fetch_one::<Count>().await?.count)
}

/// Findings per rule with what each rule means.
pub fn render_findings(rows: &[RuleFindings]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["Rule", "Findings", "Providers", "At stake, SEK", "What it means"]);
    for row in rows {
        let meaning = Rule::by_id(&row.rule_id).map_or("", |r| r.english);
        table.add_row([
            row.rule_id.clone(),
            row.findings.to_string(),
            row.providers.to_string(),
            Ore(row.amount_at_stake_ore).whole_kronor_number(),
            meaning.to_string(),
        ]);
    }
    let total: u64 = rows.iter().map(|r| r.findings).sum();
    let at_stake: Ore = rows.iter().map(|r| Ore(r.amount_at_stake_ore)).sum();
    table.add_row([
        "Total".to_string(),
        total.to_string(),
        String::new(),
        at_stake.whole_kronor_number(),
        String::new(),
    ]);
    for index in 1..=3 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("Findings per rule\n{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_per_rule_in_whole_kronor_with_their_meaning() {
        let rows = [
            RuleFindings { rule_id: "wrong_price".into(), findings: 2, providers: 1, amount_at_stake_ore: 920_000_050 },
            RuleFindings { rule_id: "retired_rule".into(), findings: 1, providers: 1, amount_at_stake_ore: -149 },
        ];
        let text = render_findings(&rows);
        assert!(text.contains("9 200 001"), "{text}");
        assert!(text.contains(" -1 "), "{text}");
        assert!(text.contains(distans_domain::rules::WRONG_PRICE.english), "{text}");
        assert!(text.contains("9 199 999"), "total: {text}");
    }
}
