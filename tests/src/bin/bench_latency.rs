//! Latency from produce to queryable at a steady rate: valid lines produced
//! to the input topic at RATE lines/s for SECONDS, through the real broker,
//! ingester and sink into the real ClickHouse (18.16); prints p50, p99 and
//! the maximum. A line counts as queryable once `invoice_line_versions`
//! holds as many rows as lines produced up to it (lines are spread over
//! partitions, so this is close, not exact, per line). Asserts nothing.
//!
//! usage: distans-bench-latency [RATE] [SECONDS] [DISTANS__SECTION__KEY=VALUE …]
//! (default 300 lines/s for 30 s with the built-in defaults; variables
//! after them, e.g. DISTANS__SINK__BATCH_MAX_WAIT_MS=200, go to every service)

use std::time::{Duration, Instant};

use distans_e2e::{arg, physical_rows, Enrichment, Env};
use distans_runtime::kafka;
use distans_synth::generate::{self, Options};
use distans_wire::Codec;
use rdkafka::producer::FutureRecord;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate: f64 = arg(1, 300.0)?;
    let seconds: f64 = arg(2, 30.0)?;
    let mut env = Env::start_for_bench()?;
    for variable in std::env::args().skip(3) {
        let (key, value) = variable.split_once('=').ok_or_else(|| anyhow::anyhow!("not KEY=VALUE: {variable}"))?;
        env.extra_variables.insert(key.to_string(), value.to_string());
    }
    let settings = env.settings();
    let total = (rate * seconds) as usize;
    let options = Options::new("23", 2025, total * 11 / 10 + 100, 3, &settings.detector.rules);
    let generated = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
    let enrichment = Enrichment::new(&settings)?;
    // Only lines the ingester accepts reach ClickHouse; each line once.
    let mut keys = std::collections::HashSet::new();
    let lines: Vec<_> = generated
        .lines
        .iter()
        .filter(|l| l.invoice_type == "380" && keys.insert(l.key()) && enrichment.enrich(l).is_some())
        .take(total)
        .collect();
    let codec = Codec::embedded();
    let records: Vec<(Vec<u8>, Vec<u8>)> = lines
        .iter()
        .map(|l| Ok((l.key().into_bytes(), codec.encode_invoice_line(l)?)))
        .collect::<anyhow::Result<_>>()?;
    println!(
        "distans-bench-latency: {} lines at {rate} lines/s, settings: {:?}, debug={}",
        records.len(),
        env.extra_variables,
        cfg!(debug_assertions)
    );
    kafka::ensure_topics(&settings.kafka, &[&settings.topics.input]).await?;
    let _ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;
    let client = env.clickhouse.client();
    let producer = kafka::producer(&settings.kafka)?;

    // The poller: when the table first held n rows.
    let (counts_tx, counts_rx) = tokio::sync::watch::channel(false);
    let poller = {
        let client = client.clone();
        let expected = records.len() as u64;
        tokio::spawn(async move {
            let mut seen_at: Vec<(u64, Instant)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let rows = physical_rows(&client).await.unwrap_or(0);
                if seen_at.last().is_none_or(|(n, _)| *n < rows) {
                    seen_at.push((rows, Instant::now()));
                }
                if rows >= expected || Instant::now() > deadline || *counts_rx.borrow() {
                    break seen_at;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let started = Instant::now();
    let mut sent_at = Vec::with_capacity(records.len());
    let mut deliveries = Vec::with_capacity(records.len());
    for (i, (key, value)) in records.iter().enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let record = FutureRecord::to(&settings.topics.input).key(key).payload(value);
        sent_at.push(Instant::now());
        deliveries.push(producer.send_result(record).map_err(|(error, _)| error)?);
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(error, _)| error)?;
    }
    let seen_at = poller.await?;
    let _ = counts_tx.send(true);
    let mut latencies: Vec<f64> = Vec::with_capacity(sent_at.len());
    for (i, sent) in sent_at.iter().enumerate() {
        let Some((_, at)) = seen_at.iter().find(|(n, _)| *n > i as u64) else { continue };
        latencies.push(at.saturating_duration_since(*sent).as_secs_f64());
    }
    anyhow::ensure!(
        latencies.len() == sent_at.len(),
        "only {} of {} lines became queryable",
        latencies.len(),
        sent_at.len()
    );
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "produce → queryable: p50 {:.3} s, p99 {:.3} s, max {:.3} s over {} lines; inserts: see the sink's metrics",
        at(0.5),
        at(0.99),
        at(1.0),
        latencies.len()
    );
    Ok(())
}
