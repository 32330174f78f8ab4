//! `distans wait`: until ClickHouse holds the lines (and the findings a
//! generated file should give), and the aggregates are up to date.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use distans_domain::rules::{LISTED_AT_SAME_GROUP, PROVIDER_FAR_FROM_PEERS};
use distans_runtime::Settings;
use distans_store::queries;
use distans_synth::summary::Summary;

use crate::poll::poll_until;

/// Waits for `lines` distinct lines (written at or after `written_since`,
/// Unix seconds), or for the valid lines and expected findings of a
/// generator `summary`, counted in its region (and year, for lines) only;
/// then for fresh aggregates (and, when the detector reviews, its review).
/// Errors: "timed out after N s" with what was missing.
pub async fn run(
    lines: Option<u64>,
    summary: Option<&Path>,
    written_since: Option<u32>,
    timeout: Duration,
    settings: &Settings,
) -> anyhow::Result<()> {
    let (lines, findings, region) = match (lines, summary) {
        (Some(lines), _) => (lines, 0, None),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let summary = serde_json::from_str::<Summary>(&text).with_context(|| {
                format!("{} is not a generator summary (the FILE.summary.json that generate writes)", path.display())
            })?;
            let findings = summary.expected_findings.values().sum::<usize>() as u64;
            (summary.valid as u64, findings, Some((summary.buyer_org_number, summary.year)))
        }
        (None, None) => anyhow::bail!("give --lines or --summary"),
    };
    // A summary's lines are its region's and year's: others in ClickHouse
    // do not count towards them.
    let what = match &region {
        Some((buyer, year)) => format!("lines of {buyer} in {year}"),
        None => "lines".to_string(),
    };
    let started = Instant::now();
    let client = super::database(settings).await?;
    let deadline = started + timeout;
    let timeout_secs = timeout.as_secs();
    let timed_out = |last: String| anyhow::anyhow!("timed out after {timeout_secs} s: {last}");
    at_least(started, deadline, lines, &what, async || match &region {
        Some((buyer, year)) => queries::region_line_count(&client, buyer, *year, written_since).await.unwrap_or(0),
        None => queries::current_line_count(&client, written_since).await.unwrap_or(0),
    })
    .await
    .map_err(timed_out)?;
    // The findings a generated file should give (the anomalies it injected).
    if let (true, Some((buyer, _))) = (findings > 0, &region) {
        at_least(started, deadline, findings, &format!("findings of {buyer}"), async || {
            queries::region_finding_count(&client, buyer).await.unwrap_or(0)
        })
        .await
        .map_err(timed_out)?;
    }
    // The aggregates that reports read: rebuilt by the sink as lines arrive.
    let reviewed = [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id];
    poll_until(deadline, async || {
        let fresh = queries::aggregates_fresh(&client).await.unwrap_or(false)
            && (settings.detector.review_interval_ms == 0
                || distans_store::review::caught_up(&client, &reviewed).await.unwrap_or(false));
        if fresh {
            Ok(())
        } else {
            Err("aggregates not up to date".to_string())
        }
    })
    .await
    .map_err(timed_out)?;
    crate::print(format_args!(
        "aggregates (and the review's findings) up to date after {:.1} s\n",
        started.elapsed().as_secs_f64()
    ))?;
    Ok(())
}

/// Polls `count` until it is at least `target`, then prints it with the
/// time since `started`. Err: the last "N of TARGET WHAT in ClickHouse".
async fn at_least(
    started: Instant,
    deadline: Instant,
    target: u64,
    what: &str,
    count: impl AsyncFn() -> u64,
) -> Result<(), String> {
    let count = poll_until(deadline, async || {
        let count = count().await;
        if count >= target {
            Ok(count)
        } else {
            Err(format!("{count} of {target} {what} in ClickHouse"))
        }
    })
    .await?;
    crate::print(format_args!("{count} {what} in ClickHouse after {:.1} s\n", started.elapsed().as_secs_f64()))
        .map_err(|e| e.to_string())
}
