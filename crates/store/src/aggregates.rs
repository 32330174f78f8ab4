//! The monthly aggregates (`agg_monthly`) that reports and BI tools read.
//!
//! Not a ClickHouse materialized view: one fed by inserts would sum every
//! row inserted, and `invoice_line_versions` receives a line again after a
//! redelivery, and a new version of it after a correction; and a new listing
//! register changes the health centre of lines already written. Instead a
//! visit month is rebuilt from the latest version of each line
//! (`sql/refresh_month.sql`) into a staging table of that rebuild's own,
//! then swapped in with `REPLACE PARTITION`, so readers see the month
//! before or after, never half of it, and two rebuilds at once (several
//! sink instances, `distans refresh` beside a sink) each swap in a whole
//! month. (`agg_monthly_staging`, which migration 0005 made for all
//! rebuilds to share, is no longer used.)
//!
//! [`Refresher`] finds the months to rebuild: those of every stored version
//! of the lines written since its last pass (by `inserted_at`, with the last
//! second read again, so nothing written during a pass is missed): the new
//! version's month and the months of the older versions not yet merged
//! away; the months of findings written since; and those whose aggregates
//! no longer match the lines ([`stale_months`]: a corrected line that left
//! its month after ClickHouse merged its old version away), or every month
//! when the listing register or the cost allocation changed.
//!
//! Bounded: a month's refresh reads the identities with a version in that
//! month and the versions of those alone, never `invoice_line_versions
//! FINAL` (which merges every part of the whole, unpartitioned table in
//! memory; under heavy insert it exceeded 3.73 GiB per query, issue 12).
//! [`RefreshLimits`] caps each refresh query's memory and threads, and
//! [`stale_months`], which still reads the whole table (six narrow columns,
//! without FINAL either), runs at most once per [`Refresher::new`]'s
//! `stale_check_every`. Figures: `distans-bench-refresh`.

use serde::Deserialize;

use crate::{Client, Error};

const REFRESH_MONTH: &str = include_str!("../sql/refresh_month.sql");
/// The lines [`REFRESH_MONTH`] reads, between these two comment lines: the
/// reference refresh reads `invoice_line_versions FINAL` in their place.
const LATEST_LINES_BEGIN: &str = "-- latest lines: begin";
const LATEST_LINES_END: &str = "-- latest lines: end";

/// [`REFRESH_MONTH`] through `invoice_line_versions FINAL`: the reference
/// that tests and the refresh benchmark compare it with (what the refresh
/// read before issue 12), derived so the two differ only in their lines.
fn refresh_month_final_sql() -> Result<String, Error> {
    let missing = || Error::Custom("sql/refresh_month.sql lost its \"-- latest lines\" markers".to_string());
    let (before, rest) = REFRESH_MONTH.split_once(LATEST_LINES_BEGIN).ok_or_else(missing)?;
    let (_, after) = rest.split_once(LATEST_LINES_END).ok_or_else(missing)?;
    Ok(format!("{before}invoice_line_versions FINAL{after}"))
}

/// Per-query limits of the aggregate refresh (ClickHouse settings sent with
/// each of its queries); 0 leaves the server's (or user profile's) own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshLimits {
    /// `max_memory_usage`: bytes one query may use; over it the query fails
    /// ("Memory limit (for query) exceeded") and the refresh is retried.
    pub max_memory_usage: u64,
    /// `max_threads`: threads one query may use.
    pub max_threads: u64,
}

impl RefreshLimits {
    /// `db` with these limits as settings of every query it sends.
    pub fn apply(&self, db: &Client) -> Client {
        let mut db = db.clone();
        if self.max_memory_usage > 0 {
            db = db.with_setting("max_memory_usage", self.max_memory_usage.to_string());
        }
        if self.max_threads > 0 {
            db = db.with_setting("max_threads", self.max_threads.to_string());
        }
        db
    }
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Month {
    month: String,
}

#[derive(Debug, PartialEq, Eq, Deserialize, clickhouse::Row)]
struct MonthFigures {
    month: String,
    buyer_org_number: String,
    line_count: u64,
    net_ore: i64,
    flagged_count: u64,
}

/// Months (`YYYY-MM-01`) where `agg_monthly` disagrees with the lines and
/// findings in ClickHouse, per home region (buyer): in its count of lines,
/// net amount or lines with a finding. Catches what `inserted_at` cannot: a
/// corrected line that moved to another month leaves its old month, where
/// nothing new was written; and, per buyer, a line corrected to another
/// buyer within its month, which leaves the month's totals as they were.
/// Reads the key, version, visit date, buyer and net amount of every stored
/// version and takes each identity's latest itself (not FINAL, whose merge
/// of many unmerged parts takes far more memory: 369 MiB against 66 MiB on
/// 224 k rows in 45 parts, `distans-bench-refresh`).
pub async fn stale_months(db: &Client) -> Result<Vec<String>, Error> {
    let direct: Vec<MonthFigures> = db
        .query(
            "SELECT month, buyer_org_number, count() AS line_count, sum(signed_net_amount_ore) AS net_ore, \
               toUInt64(sum(flagged)) AS flagged_count \
             FROM \
             ( \
               SELECT toString(toStartOfMonth(visit_date)) AS month, buyer_org_number, signed_net_amount_ore, \
                 concat(invoice_id, ':', toString(line_number)) AS line_key \
               FROM \
               ( \
                 SELECT seller_org_number, invoice_id, line_number, visit_date, buyer_org_number, \
                   signed_net_amount_ore \
                 FROM invoice_line_versions \
                 ORDER BY version DESC, inserted_at DESC \
                 LIMIT 1 BY seller_org_number, invoice_id, line_number \
               ) AS latest \
             ) AS line \
             ANY LEFT JOIN (SELECT line_key, toUInt8(1) AS flagged FROM findings_active GROUP BY line_key) AS finding \
             USING (line_key) \
             GROUP BY month, buyer_org_number",
        )
        .fetch_all()
        .await?;
    let aggregated: Vec<MonthFigures> = db
        .query(
            "SELECT toString(month) AS month, buyer_org_number, sum(lines) AS line_count, \
               sum(net_amount_ore) AS net_ore, sum(flagged_lines) AS flagged_count \
             FROM agg_monthly GROUP BY month, buyer_org_number",
        )
        .fetch_all()
        .await?;
    let key = |m: &MonthFigures| (m.month.clone(), m.buyer_org_number.clone());
    let aggregated: std::collections::BTreeMap<(String, String), &MonthFigures> =
        aggregated.iter().map(|m| (key(m), m)).collect();
    let direct_keys: std::collections::BTreeSet<(String, String)> = direct.iter().map(key).collect();
    let mut stale: Vec<String> =
        direct.iter().filter(|m| aggregated.get(&key(m)) != Some(m)).map(|m| m.month.clone()).collect();
    // Months and buyers that only the aggregates still hold.
    stale.extend(aggregated.keys().filter(|k| !direct_keys.contains(*k)).map(|(month, _)| month.clone()));
    stale.sort();
    stale.dedup();
    Ok(stale)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clickhouse::Row)]
struct Marks {
    lines: u32,
    findings: u32,
    /// Rows stored: a write in the same second as the last mark changes
    /// these, not the newest `inserted_at`.
    line_rows: u64,
    finding_rows: u64,
    listing_import: u64,
    reference_loaded: u32,
}

/// Rebuilds one visit month (`YYYY-MM-01`) of `agg_monthly` from the
/// latest version of each line whose visit is in it (`sql/refresh_month.sql`).
/// Errors: a `month` not the first day of a month, or ClickHouse's.
pub async fn refresh_month(db: &Client, month: &str) -> Result<(), Error> {
    rebuild_month(db, month, REFRESH_MONTH).await
}

/// As [`refresh_month`] through `invoice_line_versions FINAL`
/// ([`refresh_month_final_sql`], what [`refresh_month`] ran before issue
/// 12): the reference that tests and the refresh benchmark compare it with.
/// Reads and merges the whole table; not for production.
pub async fn refresh_month_final(db: &Client, month: &str) -> Result<(), Error> {
    rebuild_month(db, month, &refresh_month_final_sql()?).await
}

/// Builds the month in a staging table of this rebuild's own, swaps it in,
/// and drops the staging table. Its own: two rebuilds of one month at once
/// (two sink instances, or `distans refresh` beside a sink) that shared one
/// staging table would both insert into it before either swapped it in,
/// and the month would count twice (`store::refreshes_at_once_never_count_a_month_twice`).
async fn rebuild_month(db: &Client, month: &str, sql: &str) -> Result<(), Error> {
    let partition = month_partition(month)
        .ok_or_else(|| Error::Custom(format!("not the first day of a month as YYYY-MM-01: {month:?}")))?;
    let staging = staging_table(chrono::Utc::now().timestamp(), rand::random());
    db.query(&format!("CREATE TABLE {staging} AS agg_monthly")).execute().await?;
    let rebuilt = swap_in(db, month, sql, &partition, &staging).await;
    let dropped = db.query(&format!("DROP TABLE IF EXISTS {staging}")).execute().await;
    rebuilt.and(dropped)
}

/// The prefix of the rebuilds' staging tables ([`staging_table`]).
const STAGING_PREFIX: &str = "agg_monthly_staging_";

/// A rebuild's staging table: [`STAGING_PREFIX`], when it was made (Unix
/// seconds), and a random number, so that [`drop_abandoned_staging`] can
/// tell one a stopped process left behind.
fn staging_table(made_at_s: i64, random: u32) -> String {
    format!("{STAGING_PREFIX}{made_at_s}_{random:08x}")
}

/// How old a staging table is when [`drop_abandoned_staging`] drops it: far
/// longer than a month's rebuild takes (seconds; `distans-bench-refresh`).
const ABANDONED_AFTER_S: i64 = 24 * 3600;

/// Drops the staging tables of rebuilds that a process stopped half-way (a
/// kill, a crash) left behind: those made over [`ABANDONED_AFTER_S`] ago.
/// Returns how many.
pub async fn drop_abandoned_staging(db: &Client) -> Result<usize, Error> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Table {
        name: String,
    }
    let tables = db
        .query("SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, ?)")
        .bind(STAGING_PREFIX)
        .fetch_all::<Table>()
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut dropped = 0;
    for table in tables {
        let made_at = table.name[STAGING_PREFIX.len()..].split('_').next().and_then(|s| s.parse::<i64>().ok());
        if made_at.is_some_and(|made_at| now - made_at > ABANDONED_AFTER_S) {
            db.query(&format!("DROP TABLE IF EXISTS {}", table.name)).execute().await?;
            tracing::info!(table = %table.name, "dropped a staging table a stopped refresh left behind");
            dropped += 1;
        }
    }
    Ok(dropped)
}

async fn swap_in(db: &Client, month: &str, sql: &str, partition: &str, staging: &str) -> Result<(), Error> {
    for statement in crate::statements(&sql.replace("{month}", month).replace("{staging}", staging)) {
        db.query(&statement).execute().await?;
    }
    db.query(&format!("ALTER TABLE agg_monthly REPLACE PARTITION {partition} FROM {staging}")).execute().await?;
    db.query(
        "INSERT INTO agg_refreshes (month, lines, refreshed_at) \
         SELECT toDate(?), sum(lines), now() FROM agg_monthly WHERE month = toDate(?)",
    )
    .bind(month)
    .bind(month)
    .execute()
    .await
}

/// Rebuilds every month that has lines (in any stored version), and clears
/// months that no longer do; first drops abandoned staging tables
/// ([`drop_abandoned_staging`]).
pub async fn refresh_all(db: &Client) -> Result<usize, Error> {
    drop_abandoned_staging(db).await?;
    let months = db
        .query(
            "SELECT DISTINCT toString(toStartOfMonth(visit_date)) AS month FROM invoice_line_versions \
             UNION ALL SELECT DISTINCT toString(month) AS month FROM agg_monthly",
        )
        .fetch_all::<Month>()
        .await?;
    let mut distinct: Vec<String> = months.into_iter().map(|m| m.month).collect();
    distinct.sort();
    distinct.dedup();
    for month in &distinct {
        refresh_month(db, month).await?;
    }
    Ok(distinct.len())
}

/// `YYYYMM` of a `YYYY-MM-01` date, the partition id of `agg_monthly`.
fn month_partition(month: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(month, "%Y-%m-%d").ok()?;
    (chrono::Datelike::day(&date) == 1).then(|| date.format("%Y%m").to_string())
}

/// Keeps `agg_monthly` up to date with what was written since the last pass.
/// `Default`: no limits, [`stale_months`] at every pass.
#[derive(Debug, Default)]
pub struct Refresher {
    /// What the last complete pass saw; `None` before the first.
    marks: Option<Marks>,
    limits: RefreshLimits,
    stale_check_every: std::time::Duration,
    /// When [`stale_months`] last answered; `None` before it first did.
    stale_checked: Option<std::time::Instant>,
}

impl Refresher {
    /// A refresher whose queries run with `limits` and that looks for
    /// [`stale_months`] (a whole-table read) at most once per
    /// `stale_check_every` (0: at every pass). What it alone finds, a line
    /// whose old version was merged away before a pass saw it, is then at
    /// most that much late; everything else is found at the next pass.
    pub fn new(limits: RefreshLimits, stale_check_every: std::time::Duration) -> Refresher {
        Refresher { marks: None, limits, stale_check_every, stale_checked: None }
    }

    /// One pass: rebuilds the months that changed and returns how many.
    /// On an error nothing is marked done, so the next pass does it again.
    pub async fn pass(&mut self, db: &Client) -> Result<usize, Error> {
        let db = &self.limits.apply(db);
        let marks = db
            .query(
                "SELECT \
                   (SELECT toUInt32(max(inserted_at)) FROM invoice_line_versions) AS lines, \
                   (SELECT toUInt32(max(inserted_at)) FROM anomalies) AS findings, \
                   (SELECT count() FROM invoice_line_versions) AS line_rows, \
                   (SELECT count() FROM anomalies) AS finding_rows, \
                   (SELECT max(import_id) FROM listing_imports) AS listing_import, \
                   (SELECT toUInt32(max(loaded_at)) FROM ref_loads) AS reference_loaded",
            )
            .fetch_one::<Marks>()
            .await?;
        let refreshed = match self.marks {
            Some(last) if last == marks => 0,
            Some(last)
                if (last.listing_import, last.reference_loaded) == (marks.listing_import, marks.reference_loaded) =>
            {
                // Every stored version of each line written since: the new
                // version's month and the old one's (until merged away;
                // then stale_months notices the month it left).
                let months = db
                    .query(
                        "SELECT DISTINCT toString(toStartOfMonth(visit_date)) AS month FROM invoice_line_versions \
                         WHERE (seller_org_number, invoice_id, line_number) IN \
                         (SELECT seller_org_number, invoice_id, line_number FROM invoice_line_versions \
                          WHERE inserted_at >= toDateTime(?)) \
                         UNION ALL SELECT DISTINCT toString(toStartOfMonth(visit_date)) AS month FROM anomalies \
                         WHERE inserted_at >= toDateTime(?)",
                    )
                    .bind(last.lines)
                    .bind(last.findings)
                    .fetch_all::<Month>()
                    .await?;
                let mut months: Vec<String> = months.into_iter().map(|m| m.month).collect();
                let stale_due = self.stale_checked.is_none_or(|at| at.elapsed() >= self.stale_check_every);
                if stale_due {
                    // A failed check (e.g. over its memory limit) must not
                    // hold back the months known to have changed: it is
                    // logged and due again at the next pass.
                    match stale_months(db).await {
                        Ok(stale) => {
                            months.extend(stale);
                            self.stale_checked = Some(std::time::Instant::now());
                        }
                        Err(error) => tracing::warn!(%error, "checking for stale aggregate months failed"),
                    }
                }
                months.sort();
                months.dedup();
                for month in &months {
                    refresh_month(db, month).await?;
                }
                months.len()
            }
            _ => refresh_all(db).await?,
        };
        self.marks = Some(marks);
        Ok(refreshed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_tables_tell_when_they_were_made() {
        assert_eq!(staging_table(1_764_000_000, 0xab), "agg_monthly_staging_1764000000_000000ab");
    }

    #[test]
    fn partitions_of_months() {
        assert_eq!(month_partition("2025-03-01").as_deref(), Some("202503"));
        assert_eq!(month_partition("2025-03-02"), None);
        assert_eq!(month_partition("2025-3-1x"), None);
    }

    #[test]
    fn the_refresh_sql_has_one_statement_and_a_month() {
        let reference = refresh_month_final_sql().expect("the markers are there");
        for sql in [REFRESH_MONTH, reference.as_str()] {
            let statements = crate::statements(sql);
            assert_eq!(statements.len(), 1);
            assert!(statements[0].starts_with("INSERT INTO {staging}"));
            assert!(statements[0].contains("toDate('{month}')"));
        }
        assert!(!crate::statements(REFRESH_MONTH)[0].contains("FINAL"), "the refresh reads no FINAL");
        let reference = crate::statements(&reference).remove(0);
        assert!(reference.contains("FROM\n                    invoice_line_versions FINAL\n"), "{reference}");
        assert!(!reference.contains("LIMIT 1 BY"), "the reference reads no latest-version subquery");
    }
}
