//! Counts and listings for the operator commands (`distans wait`,
//! `distans report`) and the end-to-end tests.

use serde::Deserialize;

use crate::{Client, Error};

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Count {
    count: u64,
}

/// Invoice line identities in ClickHouse (a line written twice, or in
/// several versions, counts once),
/// or only those last written at or after `since` (Unix seconds).
pub async fn current_line_count(db: &Client, since: Option<u32>) -> Result<u64, Error> {
    let query = match since {
        None => db.query("SELECT count() AS count FROM invoice_line_versions FINAL"),
        Some(since) => {
            db.query("SELECT count() AS count FROM invoice_line_versions FINAL WHERE inserted_at >= ?").bind(since)
        }
    };
    Ok(query.fetch_one::<Count>().await?.count)
}

/// Rows of `invoice_line_versions` physically stored: redeliveries and
/// superseded versions not yet merged away included.
pub async fn stored_line_rows(db: &Client) -> Result<u64, Error> {
    Ok(db.query("SELECT count() AS count FROM invoice_line_versions").fetch_one::<Count>().await?.count)
}

/// Lines counted in `agg_monthly`, what the reports read: equal to
/// [`current_line_count`] when the aggregates are current.
pub async fn aggregated_line_count(db: &Client) -> Result<u64, Error> {
    Ok(db.query("SELECT toUInt64(sum(lines)) AS count FROM agg_monthly").fetch_one::<Count>().await?.count)
}

/// Active findings (a finding published twice counts once; withdrawn ones not at all).
pub async fn current_finding_count(db: &Client) -> Result<u64, Error> {
    Ok(db.query("SELECT count() AS count FROM findings_active").fetch_one::<Count>().await?.count)
}

/// [`current_line_count`] of one home region's (`buyer`, organisation
/// number) lines with a visit in `year`: what a generated file holds.
pub async fn region_line_count(db: &Client, buyer: &str, year: i32, since: Option<u32>) -> Result<u64, Error> {
    let query = db
        .query(
            "SELECT count() AS count FROM invoice_line_versions FINAL \
             WHERE buyer_org_number = ? AND toYear(visit_date) = ? AND inserted_at >= ?",
        )
        .bind(buyer)
        .bind(year)
        .bind(since.unwrap_or(0));
    Ok(query.fetch_one::<Count>().await?.count)
}

/// [`current_finding_count`] of one home region's (`buyer`) findings.
pub async fn region_finding_count(db: &Client, buyer: &str) -> Result<u64, Error> {
    let query = db.query("SELECT count() AS count FROM findings_active WHERE buyer_org_number = ?").bind(buyer);
    Ok(query.fetch_one::<Count>().await?.count)
}

/// What ClickHouse holds: the latest version of each line identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct Totals {
    pub lines: u64,
    /// Net of patient fees, credit notes negative, öre.
    pub net_amount_ore: i64,
    /// Contacts: invoices' quantities minus credit notes'.
    pub contacts: i64,
}

/// The lines, net amount and contacts of the latest version of each line
/// identity, each once.
pub async fn totals(db: &Client) -> Result<Totals, Error> {
    db.query(
        "SELECT count() AS lines, sum(signed_net_amount_ore) AS net_amount_ore, \
         sum(if(invoice_type = 'credit_note', -toInt64(quantity), toInt64(quantity))) AS contacts \
         FROM invoice_line_versions FINAL",
    )
    .fetch_one()
    .await
}

/// Findings and amount at stake of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct RuleFindings {
    pub rule_id: String,
    pub findings: u64,
    pub providers: u64,
    /// Öre.
    pub amount_at_stake_ore: i64,
}

/// Active findings per rule (duplicates collapsed), of one home
/// region or all, largest amount at stake first.
pub async fn findings_by_rule(db: &Client, buyer_org_number: Option<&str>) -> Result<Vec<RuleFindings>, Error> {
    let mut sql = String::from(
        "SELECT rule_id, count() AS findings, uniqExact(provider_org_number) AS providers, \
         sum(amount_at_stake_ore) AS amount_at_stake_ore FROM findings_active",
    );
    if buyer_org_number.is_some() {
        sql.push_str(" WHERE buyer_org_number = ?");
    }
    sql.push_str(" GROUP BY rule_id ORDER BY amount_at_stake_ore DESC, rule_id");
    let mut query = db.query(&sql);
    if let Some(buyer) = buyer_org_number {
        query = query.bind(buyer);
    }
    query.fetch_all().await
}

/// Whether `agg_monthly` agrees, month by month, with the lines and findings
/// in ClickHouse: what reports read is up to date.
pub async fn aggregates_fresh(db: &Client) -> Result<bool, Error> {
    Ok(crate::aggregates::stale_months(db).await?.is_empty())
}

/// The messages the webhook refused for good, latest first, at most `limit`.
pub async fn undelivered_alerts(db: &Client, limit: u64) -> Result<Vec<crate::rows::UndeliveredRow>, Error> {
    db.query(
        "SELECT refused_at, kind, rule_id, provider_org_number, finding_ids, status, answer, message, inserted_at \
             FROM undelivered_alerts ORDER BY refused_at DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all()
    .await
}
