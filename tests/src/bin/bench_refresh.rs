//! The aggregate refresh of one visit month, old (`invoice_line_versions
//! FINAL`) and new (bounded: the month's identities, then their latest
//! version) side by side on one real ClickHouse (18.16 from
//! deploy/local/install.sh): wall time and peak query memory per month.
//!
//! Loads LINES lines (default 204 000: the 4 × 51 k of issue 12) over twelve
//! visit months straight into `invoice_line_versions` through distans_store,
//! in batches of 5 000 with merges stopped (as under heavy insert: many
//! unmerged parts), a tenth of them corrected into another month. Peak
//! memory is `system.processes.peak_memory_usage` polled every 10 ms while
//! the month's `INSERT INTO agg_monthly_staging` runs (the deploy/local
//! server keeps no query_log), so a peak shorter than that may be missed.
//!
//! usage: distans-bench-refresh [LINES]

use std::time::{Duration, Instant};

use distans_e2e::{insert_lines, ClickHouse};

const BATCH: u32 = 5_000;
/// What a month's refresh query contains.
const STAGING: &str = "INSERT INTO agg_monthly_staging";

fn line(i: u32, correction: u32) -> distans_domain::EnrichedLine {
    let mut line = distans_domain::testing::enriched_line_on(i / 8, (i % 8) as i32 + 1);
    line.source.offset = i64::from(i) * 2 + i64::from(correction);
    line.buyer_org_number = ["2321000230", "2321000255", "2321000198", "2321000164"][(i % 4) as usize].into();
    let month = 1 + (i / 7 + 5 * correction) % 12;
    line.visit_date = chrono::NaiveDate::from_ymd_opt(2025, month, 1 + i % 28).expect("a date");
    line.patient_pseudonym = format!("p{}", i % 40_000);
    line.provider_org_number = format!("55910000{:02}", i % 50);
    line.gross_amount_ore = 10_000 + i64::from(i % 900) * 100 + i64::from(correction);
    line.net_amount_ore = line.gross_amount_ore;
    line
}

#[derive(Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
struct MonthTotals {
    lines: u64,
    net_ore: i64,
}

async fn month_totals(db: &distans_store::Client, month: &str) -> anyhow::Result<MonthTotals> {
    Ok(db
        .query("SELECT sum(lines) AS lines, sum(net_amount_ore) AS net_ore FROM agg_monthly WHERE month = toDate(?)")
        .bind(month)
        .fetch_one()
        .await?)
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Peak {
    peak: i64,
}

/// Runs `refresh` and returns its wall time and the largest
/// `peak_memory_usage` seen, while it ran, of the queries containing `text`.
async fn measure<F, T>(db: &distans_store::Client, text: &str, refresh: F) -> anyhow::Result<(Duration, i64)>
where
    F: std::future::Future<Output = Result<T, distans_store::Error>>,
{
    let started = Instant::now();
    let mut refresh = std::pin::pin!(refresh);
    let mut peak = 0i64;
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = &mut refresh => { result?; break; }
            _ = poll.tick() => {
                let seen: Peak = db
                    .query(
                        "SELECT toInt64(max(peak_memory_usage)) AS peak FROM system.processes \
                         WHERE position(query, ?) > 0 AND position(query, 'system.processes') = 0",
                    )
                    .bind(text)
                    .fetch_one()
                    .await?;
                peak = peak.max(seen.peak);
            }
        }
    }
    Ok((started.elapsed(), peak))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(204_000);
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    distans_store::migrations::migrate(&clickhouse.server_client(), distans_e2e::DATABASE).await?;
    let db = clickhouse.client();
    distans_store::views::recreate(&db).await?;
    db.query("SYSTEM STOP MERGES invoice_line_versions").execute().await?;
    let now_s = || u32::try_from(distans_runtime::now_ms() / 1000);
    let loading = Instant::now();
    let mut start = 0;
    while start < total {
        let lines: Vec<_> = (start..(start + BATCH).min(total)).map(|i| line(i, 0)).collect();
        insert_lines(&db, &lines, now_s()?).await?;
        start += BATCH;
    }
    let corrections: Vec<_> = (0..total).step_by(10).map(|i| line(i, 1)).collect();
    for batch in corrections.chunks(BATCH as usize) {
        insert_lines(&db, batch, now_s()?).await?;
    }
    let stored = distans_store::queries::stored_line_rows(&db).await?;
    println!(
        "loaded {total} lines + {} corrections ({stored} rows, merges stopped) in {:.1} s",
        corrections.len(),
        loading.elapsed().as_secs_f64()
    );
    println!("{:<10} {:>10} {:>14} {:>10} {:>14}", "month", "final ms", "final peak MiB", "new ms", "new peak MiB");
    let mib = |bytes: i64| bytes as f64 / 1024.0 / 1024.0;
    let (mut final_total, mut new_total, mut final_peak, mut new_peak) = (Duration::ZERO, Duration::ZERO, 0, 0);
    for month in (1..=12).map(|m| format!("2025-{m:02}-01")) {
        let (old_time, old_peak) =
            measure(&db, STAGING, distans_store::aggregates::refresh_month_final(&db, &month)).await?;
        let old_totals = month_totals(&db, &month).await?;
        let (time, peak) = measure(&db, STAGING, distans_store::aggregates::refresh_month(&db, &month)).await?;
        let totals = month_totals(&db, &month).await?;
        anyhow::ensure!(old_totals == totals, "{month}: the two refreshes disagree: {old_totals:?} and {totals:?}");
        println!(
            "{month} {:>10} {:>14.1} {:>10} {:>14.1}",
            old_time.as_millis(),
            mib(old_peak),
            time.as_millis(),
            mib(peak)
        );
        final_total += old_time;
        new_total += time;
        final_peak = final_peak.max(old_peak);
        new_peak = new_peak.max(peak);
    }
    println!(
        "{:<10} {:>10} {:>14.1} {:>10} {:>14.1}",
        "all",
        final_total.as_millis(),
        mib(final_peak),
        new_total.as_millis(),
        mib(new_peak)
    );
    // The check for stale months (every aggregate_stale_check_ms), which
    // reads the whole table (narrow columns, no FINAL).
    let (time, peak) = measure(&db, "AS flagged_count", distans_store::aggregates::stale_months(&db)).await?;
    println!("stale_months: {} ms, peak {:.1} MiB", time.as_millis(), mib(peak));
    Ok(())
}
