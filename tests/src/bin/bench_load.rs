//! The aggregates under load (issue 12): four generated years of 51 000
//! lines each (two regions × two years) sent in two minutes while the
//! ingester, sink and detector run with the production defaults, on the
//! real broker and ClickHouse. Samples, once a second, the lines queryable
//! in ClickHouse and the lines `agg_monthly` (what reports read) counts, and
//! prints how far the aggregates trail the lines: at each sample, the time
//! since the line count was last at or below what the aggregates hold.
//! Prints figures; asserts nothing about speed.
//!
//! usage: distans-bench-load [LINES_PER_YEAR] [SECONDS]   (default 51 000 and 120)

use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_e2e::{arg, http_get, metric, poll_until, wait_for_lines, Env};
use distans_synth::generate::{self, Options};

/// One sample: seconds since the first record was sent, lines queryable,
/// lines the aggregates count.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    lines: u64,
    aggregated: u64,
}

/// How far the aggregates trail the lines at each sample: the time since
/// the newest earlier sample whose line count the aggregates already
/// cover (0 when they cover the lines of this very sample).
fn trailing(samples: &[Sample]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .enumerate()
        .map(|(i, now)| {
            let covered = samples[..=i].iter().rev().find(|s| s.lines <= now.aggregated);
            let since = covered.map_or(now.at, |s| now.at - s.at);
            (now.at, since)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let per_year: usize = arg(1, 51_000)?;
    let seconds: u64 = arg(2, 120)?;
    // The production defaults where the test harness shortens them.
    let mut env = Env::start_for_bench()?;
    let settings = env.settings();
    let mut years = Vec::new();
    for (seed, (county, year)) in [("23", 2024), ("19", 2024), ("23", 2025), ("19", 2025)].into_iter().enumerate() {
        let options = Options::new(county, year, per_year, seed as u64 + 1, &settings.detector.rules);
        years.push(generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?);
    }
    let lines: Vec<_> = years.iter().flat_map(|g| g.lines.iter().cloned()).collect();
    // Line identities the valid lines make: the generated years share some
    // invoice numbers, and a later line with an earlier one's identity is
    // its new version, as in ClickHouse.
    let identities: std::collections::HashSet<(&str, &str, i32)> = years
        .iter()
        .flat_map(|g| g.lines.iter().zip(&g.invalid))
        .filter(|(_, invalid)| !**invalid)
        .map(|(l, _)| (l.seller_org_number.as_str(), l.invoice_id.as_str(), l.line_number))
        .collect();
    let valid = identities.len();
    println!(
        "distans bench-load: {} lines ({valid} valid line identities) in {seconds} s, debug={}",
        lines.len(),
        cfg!(debug_assertions)
    );

    let ingester = env.spawn("ingester")?;
    let sink = env.spawn("sink")?;
    let detector = env.spawn("detector")?;
    let result = measure(&env, &settings, &lines, valid, seconds, &sink).await;
    if let Err(error) = &result {
        println!("failed: {error:#}");
        for process in [&ingester, &sink, &detector] {
            println!("{}", process.log_tail(40));
        }
        // Kept for a look: the run's directory, every log in it (services,
        // broker, ClickHouse); the processes still stop with `env`.
        env.dir.disable_cleanup(true);
        println!("logs kept in {}", env.dir.path().display());
    }
    result
}

async fn measure(
    env: &Env,
    settings: &distans_runtime::config::Settings,
    lines: &[distans_domain::InvoiceLine],
    valid: usize,
    seconds: u64,
    sink: &distans_e2e::Process,
) -> anyhow::Result<()> {
    let client = env.clickhouse.client();
    poll_until("the sink to be ready", Duration::from_secs(120), async || {
        let (status, body) = http_get(env.sink_http, "/readyz")?;
        anyhow::ensure!(status == 200, "{status} {body}");
        Ok(())
    })
    .await?;

    // Sent in chunks, evenly over `seconds`.
    let chunks = 24usize;
    let chunk = lines.len().div_ceil(chunks);
    let started = Instant::now();
    let send = {
        let settings = settings.clone();
        let lines = lines.to_vec();
        tokio::spawn(async move {
            for (i, part) in lines.chunks(chunk).enumerate() {
                let due = Duration::from_secs_f64(seconds as f64 * i as f64 / chunks as f64);
                tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
                produce::produce_lines(&settings, part, false).await?;
            }
            anyhow::Ok(started.elapsed().as_secs_f64())
        })
    };

    let mut samples = Vec::new();
    let deadline = Duration::from_secs(seconds + 900);
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    let mut send = send;
    let mut sent = None;
    loop {
        every_second.tick().await;
        let at = started.elapsed().as_secs_f64();
        let lines_now = distans_store::queries::current_line_count(&client, None).await?;
        let aggregated = distans_store::queries::aggregated_line_count(&client).await?;
        samples.push(Sample { at, lines: lines_now, aggregated });
        if samples.len() % 10 == 0 {
            let (_, page) = http_get(env.ingester_http, "/metrics")?;
            let consumed = metric(&page, "distans_ingester_records_consumed_total").unwrap_or(0.0);
            println!(
                "{at:6.1} s: {consumed} consumed by the ingester, {lines_now} lines stored, {aggregated} aggregated"
            );
        }
        if send.is_finished() && sent.is_none() {
            sent = Some((&mut send).await??);
        }
        // Both count line identities (the latest version of each).
        if lines_now >= valid as u64 && aggregated >= valid as u64 {
            break;
        }
        anyhow::ensure!(started.elapsed() < deadline, "not done after {deadline:?}: {samples:?}");
    }
    let sent_in = match sent {
        Some(seconds) => seconds,
        None => send.await??,
    };
    wait_for_lines(&client, valid as u64, Duration::from_secs(60)).await?;
    let last_line_at = samples.iter().find(|s| s.lines >= valid as u64).map_or(0.0, |s| s.at);
    let current_at = samples.last().map_or(0.0, |s| s.at);
    poll_until("the aggregates to match the lines", Duration::from_secs(600), async || {
        anyhow::ensure!(distans_store::queries::aggregates_fresh(&client).await?, "aggregates not yet current");
        Ok(())
    })
    .await?;
    let fresh_at = started.elapsed().as_secs_f64();

    let trail = trailing(&samples);
    let worst = trail.iter().copied().fold((0.0, 0.0), |w, t| if t.1 > w.1 { t } else { w });
    let mut lags: Vec<f64> = trail.iter().map(|t| t.1).collect();
    lags.sort_by(f64::total_cmp);
    let p = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    println!("sent:                   {} lines in {sent_in:.1} s", lines.len());
    println!("last line queryable:    {last_line_at:.1} s after the first was sent");
    println!("aggregates count it:    {current_at:.1} s ({:.1} s after the last line)", current_at - last_line_at);
    println!("aggregates fresh:       {fresh_at:.1} s (every month's lines, amounts and findings agree)");
    println!(
        "aggregates trail lines: max {:.1} s (at {:.1} s), p50 {:.1} s, p90 {:.1} s over {} samples",
        worst.1,
        worst.0,
        p(0.5),
        p(0.9),
        lags.len()
    );
    let (_, page) = http_get(env.sink_http, "/metrics")?;
    for name in [
        "distans_sink_aggregates_refresh_passes_total",
        "distans_sink_aggregates_months_rebuilt_total",
        "distans_sink_aggregates_refresh_failures_total",
    ] {
        println!("{name}: {}", metric(&page, name).unwrap_or(f64::NAN));
    }
    println!("refresh failures in the sink's log: {}", sink.log().matches("aggregate refresh failed").count());
    println!("peak RSS sink: {} MiB", sink.peak_rss_kib().unwrap_or(0) / 1024);
    if let Some(clickhouse) = env.clickhouse.process() {
        println!("peak RSS ClickHouse: {} MiB", clickhouse.peak_rss_kib().unwrap_or(0) / 1024);
    }
    Ok(())
}
