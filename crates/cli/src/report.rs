//! Reports from ClickHouse, as terminal tables.

use std::collections::{BTreeMap, BTreeSet};

use clickhouse::Client;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct MonthProfession {
    /// First day of the visit month, `YYYY-MM-DD`.
    pub month_start: String,
    pub profession_code: String,
    pub contacts: i64,
    pub net_amount_ore: i64,
    pub patients: u64,
}

/// Cost and contacts per visit month and profession, from
/// `report_monthly_profession` (duplicates collapsed, credit notes netted).
pub async fn monthly_by_profession(
    client: &Client,
    buyer_org_number: Option<&str>,
    year: Option<i32>,
) -> clickhouse::error::Result<Vec<MonthProfession>> {
    let mut sql = String::from(
        "SELECT toString(month) AS month_start, profession_code, sum(contacts) AS contacts, \
         sum(net_amount_ore) AS net_amount_ore, sum(patients) AS patients \
         FROM report_monthly_profession WHERE 1 = 1",
    );
    if buyer_org_number.is_some() {
        sql.push_str(" AND buyer_org_number = ?");
    }
    if year.is_some() {
        sql.push_str(" AND toYear(month) = ?");
    }
    sql.push_str(" GROUP BY month_start, profession_code ORDER BY month_start, profession_code");
    let mut query = client.query(&sql);
    if let Some(buyer) = buyer_org_number {
        query = query.bind(buyer);
    }
    if let Some(year) = year {
        query = query.bind(year);
    }
    query.fetch_all().await
}

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

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Freshness {
    lines: u64,
    aggregated_lines: u64,
    flagged_lines: u64,
    aggregated_flagged_lines: u64,
}

/// Whether `agg_monthly` holds every line in ClickHouse and every line a
/// finding names (what reports read is up to date).
pub async fn aggregates_fresh(client: &Client) -> clickhouse::error::Result<bool> {
    let f = client
        .query(
            "SELECT                (SELECT count() FROM invoice_lines FINAL) AS lines,                (SELECT sum(lines) FROM agg_monthly) AS aggregated_lines,                (SELECT uniqExact(line_key) FROM anomalies FINAL) AS flagged_lines,                (SELECT sum(flagged_lines) FROM agg_monthly) AS aggregated_flagged_lines",
        )
        .fetch_one::<Freshness>()
        .await?;
    Ok(f.lines == f.aggregated_lines && f.flagged_lines == f.aggregated_flagged_lines)
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
        let meaning = distans_domain::rules::RULES
            .iter()
            .find(|r| r.id == row.rule_id)
            .map_or(String::new(), |r| r.english.to_string());
        table.add_row([
            row.rule_id.clone(),
            row.findings.to_string(),
            row.providers.to_string(),
            kronor(row.amount_at_stake_ore),
            meaning,
        ]);
    }
    let total: u64 = rows.iter().map(|r| r.findings).sum();
    let at_stake: i64 = rows.iter().map(|r| r.amount_at_stake_ore).sum();
    table.add_row(["Total".to_string(), total.to_string(), String::new(), kronor(at_stake), String::new()]);
    for index in 1..=3 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("Findings per rule\n{table}\n")
}

/// Öre as Swedish kronor with a space every three digits: `1 234 567`.
pub fn kronor(ore: i64) -> String {
    let sek = (ore as f64 / 100.0).round() as i64;
    let digits = sek.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if sek < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Two tables, months down and professions across: contacts, and net cost
/// in SEK, each with totals.
pub fn render(rows: &[MonthProfession]) -> String {
    let professions: BTreeSet<&str> = rows.iter().map(|r| r.profession_code.as_str()).collect();
    let mut by_month: BTreeMap<&str, BTreeMap<&str, &MonthProfession>> = BTreeMap::new();
    for row in rows {
        by_month.entry(&row.month_start[..7.min(row.month_start.len())]).or_default().insert(&row.profession_code, row);
    }
    let table = |title: &str, value: &dyn Fn(&MonthProfession) -> i64, format: &dyn Fn(i64) -> String| {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec![title.to_string()];
        header.extend(professions.iter().map(|p| p.to_string()));
        header.push("Total".into());
        table.set_header(header);
        let mut column_totals: BTreeMap<&str, i64> = BTreeMap::new();
        for (month, cells) in &by_month {
            let mut line = vec![month.to_string()];
            let mut total = 0;
            for profession in &professions {
                let v = cells.get(profession).map_or(0, |r| value(r));
                *column_totals.entry(profession).or_default() += v;
                total += v;
                line.push(format(v));
            }
            line.push(format(total));
            table.add_row(line);
        }
        let mut last = vec!["Total".to_string()];
        last.extend(professions.iter().map(|p| format(column_totals[p])));
        last.push(format(column_totals.values().sum()));
        table.add_row(last);
        for column in table.column_iter_mut().skip(1) {
            column.set_cell_alignment(CellAlignment::Right);
        }
        table.to_string()
    };
    format!(
        "Contacts per month and profession (invoices minus credit notes)\n{}\n\nNet cost per month and profession, SEK\n{}\n",
        table("Month", &|r| r.contacts, &|v| v.to_string()),
        table("Month", &|r| r.net_amount_ore, &kronor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kronor_formatting() {
        assert_eq!(kronor(0), "0");
        assert_eq!(kronor(50_000), "500");
        assert_eq!(kronor(920_000_000), "9 200 000");
        assert_eq!(kronor(-123_456_789), "-1 234 568");
    }

    #[test]
    fn render_pivots_and_totals() {
        let row = |month: &str, p: &str, contacts, net| MonthProfession {
            month_start: month.into(),
            profession_code: p.into(),
            contacts,
            net_amount_ore: net,
            patients: 1,
        };
        let text = render(&[
            row("2025-01-01", "LK", 10, 500_000),
            row("2025-01-01", "SJ", 2, 55_000),
            row("2025-02-01", "LK", 4, 200_000),
        ]);
        assert!(text.contains("2025-01"), "{text}");
        let total_line = text.lines().filter(|l| l.contains("Total") && l.contains("16")).count();
        assert_eq!(total_line, 1, "contacts total 16 once:\n{text}");
        assert!(text.contains("7 550"), "net total 7 550 SEK:\n{text}");
    }
}
