//! Produce → queryable at a steady rate: each line stamped when it is
//! handed to the producer, and found in ClickHouse by polling for the
//! input record's (partition, offset), which the sink stores with the line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distans_runtime::{kafka, Settings};
use rdkafka::producer::FutureRecord;

use crate::report::Latency;

/// How often ClickHouse is asked which lines it holds.
pub const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Version {
    source_partition: i32,
    source_offset: i64,
}

/// A delivered record: its line's index, stamp, partition and offset.
type Delivered = (usize, Instant, Result<(i32, i64), String>);

/// Sends `records` (key, value) to the input topic at `rate` per second,
/// the i-th at `i / rate` s after the start, and measures each valid one's
/// (`!invalid[i]`) produce → queryable time. Waits for the last line at
/// most `grace` after the last was sent.
pub async fn measure(
    settings: &Settings,
    client: &distans_store::Client,
    records: &[(Vec<u8>, Vec<u8>)],
    invalid: &[bool],
    rate: f64,
    grace: Duration,
) -> anyhow::Result<Latency> {
    let producer = kafka::producer(&settings.kafka)?;
    let topic = settings.topics.input.clone();
    let (delivered, mut deliveries) = tokio::sync::mpsc::unbounded_channel::<Delivered>();
    let started = Instant::now();
    let sender = async {
        for (i, (key, value)) in records.iter().enumerate() {
            tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
            let (producer, topic, delivered) = (producer.clone(), topic.clone(), delivered.clone());
            let (key, value) = (key.clone(), value.clone());
            let stamped = Instant::now();
            tokio::spawn(async move {
                let record = FutureRecord::to(&topic).key(&key).payload(&value);
                let result = producer.send(record, Duration::from_secs(30)).await;
                let _ = delivered.send((
                    i,
                    stamped,
                    result.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e.to_string()),
                ));
            });
        }
        drop(delivered);
        started.elapsed().as_secs_f64()
    };
    let poller = async {
        // Per partition: offset → stamp of the valid lines not yet found.
        let mut pending: BTreeMap<i32, BTreeMap<i64, Instant>> = BTreeMap::new();
        let (mut latencies, mut stamped, mut open) = (Vec::new(), 0usize, true);
        let mut last_sent: Option<Instant> = None;
        loop {
            while let Some((i, at, result)) = match deliveries.try_recv() {
                Ok(d) => Some(d),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    None
                }
            } {
                let (partition, offset) = result.map_err(|e| anyhow::anyhow!("line {i} not produced: {e}"))?;
                if !invalid[i] {
                    pending.entry(partition).or_default().insert(offset, at);
                    stamped += 1;
                }
            }
            if !open {
                last_sent.get_or_insert_with(Instant::now);
                if pending.values().all(BTreeMap::is_empty) {
                    break;
                }
            }
            if last_sent.is_some_and(|at| at.elapsed() > grace) {
                break;
            }
            let polled = Instant::now();
            let conditions: Vec<String> = pending
                .iter()
                .filter_map(|(p, offsets)| {
                    let (lowest, _) = offsets.first_key_value()?;
                    Some(format!("(source_partition = {p} AND source_offset >= {lowest})"))
                })
                .collect();
            if !conditions.is_empty() {
                let sql = format!(
                    "SELECT source_partition, source_offset FROM invoice_line_versions WHERE {}",
                    conditions.join(" OR ")
                );
                for row in client.query(&sql).fetch_all::<Version>().await? {
                    if let Some(at) = pending.get_mut(&row.source_partition).and_then(|o| o.remove(&row.source_offset))
                    {
                        latencies.push(polled.duration_since(at).as_secs_f64());
                    }
                }
            }
            tokio::time::sleep_until((polled + POLL).into()).await;
        }
        let not_found = pending.values().map(BTreeMap::len).sum::<usize>();
        anyhow::Ok((latencies, stamped, not_found))
    };
    let (sending_seconds, polled) = tokio::join!(sender, poller);
    let (mut latencies, stamped, not_found) = polled?;
    anyhow::ensure!(!latencies.is_empty(), "no line of the {stamped} stamped became queryable");
    latencies.sort_by(f64::total_cmp);
    let rank = |p: f64| latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1];
    Ok(Latency {
        rate,
        achieved_rate: records.len().saturating_sub(1) as f64 / sending_seconds.max(1e-9),
        stamped,
        found: latencies.len(),
        not_found,
        poll_interval_ms: POLL.as_millis() as u64,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: latencies[latencies.len() - 1],
    })
}
