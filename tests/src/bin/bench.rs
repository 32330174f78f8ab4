//! Throughput of each stage of the pipeline, and end to end, on the real
//! broker and ClickHouse. Prints figures; asserts nothing about speed.
//!
//! usage: distans-bench [LINES]   (default 46 000: two years of Jämtland Härjedalen)

use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_domain::enrich::Provenance;
use distans_e2e::{http_get, metric, metric_at_least, poll_until, wait_for_lines, Env, TEST_KEY};
use distans_ingester::{Processor, Routed};
use distans_synth::generate::{self, Options};
use distans_wire::Codec;

fn rate(n: usize, seconds: f64) -> String {
    format!("{n} lines in {seconds:.2} s = {:.0} lines/s", n as f64 / seconds.max(1e-9))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lines: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(46_000);
    let mut env = Env::start()?;
    env.sink_batch_rows = 5_000; // the production default
    let settings = env.settings();
    let make = |year, seed| {
        let options = Options::new("23", year, lines, seed, &settings.detector.rules);
        generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)
    };
    let first = make(2024, 1)?;
    let second = make(2025, 2)?;
    println!(
        "distans bench: {} + {} generated lines, debug={}",
        first.lines.len(),
        second.lines.len(),
        cfg!(debug_assertions)
    );

    // 1. The ingester's logic alone, in process: decode, validate, pseudonymise, encode.
    let codec = Codec::embedded();
    let encoded: Vec<Vec<u8>> = first.lines.iter().map(|l| codec.encode_invoice_line(l)).collect::<Result<_, _>>()?;
    let processor = Processor::new(
        Codec::embedded(),
        settings.tariffs.clone(),
        distans_domain::Pseudonymiser::new(TEST_KEY.as_bytes())?,
        settings.validation()?,
    );
    let source = Provenance { topic: "bench".into(), partition: 0, offset: 0 };
    let started = Instant::now();
    let mut valid = 0usize;
    for bytes in &encoded {
        if let Routed::Valid { .. } = processor.process(None, Some(bytes), &source, 0)? {
            valid += 1;
        }
    }
    println!("ingester logic, in process:      {}", rate(encoded.len(), started.elapsed().as_secs_f64()));
    assert_eq!(valid, first.summary.valid);

    // 2. The broker alone: produce with acks from all replicas.
    let started = Instant::now();
    produce::produce_lines(&settings, &first.lines, false).await?;
    println!("produce to tansu:                {}", rate(first.lines.len(), started.elapsed().as_secs_f64()));

    // 3. The ingester service: records consumed, validated and produced on.
    let started = Instant::now();
    let ingester = env.spawn("ingester")?;
    let expected = first.lines.len() as f64;
    poll_until("the ingester to consume every record", Duration::from_secs(600), async || {
        let (_, page) = http_get(env.ingester_http, "/metrics")?;
        let consumed = metric(&page, "distans_ingester_records_consumed_total").unwrap_or(0.0);
        let in_flight = metric(&page, "distans_ingester_in_flight");
        anyhow::ensure!(consumed >= expected && in_flight == Some(0.0), "{consumed} consumed, {in_flight:?} in flight");
        Ok(())
    })
    .await?;
    println!("ingester service (incl. start):  {}", rate(first.lines.len(), started.elapsed().as_secs_f64()));

    // 4. The sink service: enriched lines into ClickHouse.
    let client = env.clickhouse.client();
    let started = Instant::now();
    let sink = env.spawn("sink")?;
    wait_for_lines(&client, first.summary.valid as u64, Duration::from_secs(600)).await?;
    println!("sink service (incl. start):      {}", rate(first.summary.valid, started.elapsed().as_secs_f64()));

    // 4b. The detector service: every valid line through all rules, findings published.
    let started = Instant::now();
    let detector = env.spawn("detector")?;
    let valid = first.summary.valid as f64;
    poll_until("the detector to observe every valid line", Duration::from_secs(600), async || {
        metric_at_least(env.detector_http, "distans_detector_lines_observed_total", valid)
    })
    .await?;
    println!("detector service (incl. start):  {}", rate(first.summary.valid, started.elapsed().as_secs_f64()));

    // 5. End to end with all three running: from the first record produced to the last line queryable.
    let started = Instant::now();
    produce::produce_lines(&settings, &second.lines, false).await?;
    let produced = started.elapsed().as_secs_f64();
    wait_for_lines(&client, (first.summary.valid + second.summary.valid) as u64, Duration::from_secs(600)).await?;
    let total = started.elapsed().as_secs_f64();
    println!("end to end:                      {} (produce took {produced:.2} s; last line queryable {:.2} s after produce ended)",
        rate(second.lines.len(), total), total - produced);
    // The aggregates (agg_monthly, what reports read) agreeing with those lines.
    let queryable = Instant::now();
    poll_until("the aggregates to match the lines", Duration::from_secs(600), async || {
        anyhow::ensure!(distans_store::queries::aggregates_fresh(&client).await?, "aggregates not yet current");
        Ok(())
    })
    .await?;
    println!(
        "aggregates current:              {:.2} s after the last line was queryable",
        queryable.elapsed().as_secs_f64()
    );

    for (name, process) in [("ingester", &ingester), ("sink", &sink), ("detector", &detector)] {
        println!("peak RSS {name}: {} MiB", process.peak_rss_kib().unwrap_or(0) / 1024);
    }
    Ok(())
}
