//! `distans produce`: sending invoice lines to Kafka in the wire format.

use std::path::Path;
use std::time::Instant;

use distans_domain::InvoiceLine;
use distans_runtime::kafka;
use distans_runtime::Settings;
use indicatif::{ProgressBar, ProgressStyle};

/// What was sent: records acknowledged, and the seconds it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Produced {
    pub records: usize,
    pub seconds: f64,
}

/// Encodes `lines` and sends them to the input topic, keyed by line key;
/// with a schema registry configured, framed with the registry's id.
/// Errors: a line whose record would exceed `kafka.max_record_bytes`
/// (nothing is sent), or one the broker does not acknowledge.
pub async fn produce_lines(settings: &Settings, lines: &[InvoiceLine], progress: bool) -> anyhow::Result<Produced> {
    let codec = super::schemas::input_codec(settings).await?;
    let records = lines
        .iter()
        .map(|line| Ok((line.key().into_bytes(), codec.encode_invoice_line(line)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The broker would refuse such a record and take the others: a file is
    // sent whole or not at all.
    let max = settings.kafka.max_record_bytes;
    let too_large: Vec<String> = lines
        .iter()
        .zip(&records)
        .filter(|(_, (key, value))| !kafka::fits(&settings.kafka, Some(key), value))
        .map(|(line, (key, value))| format!("{} ({} bytes)", line.key(), key.len() + value.len()))
        .collect();
    if !too_large.is_empty() {
        anyhow::bail!(
            "{} line(s) larger than kafka.max_record_bytes ({max} bytes) once encoded, so nothing was sent: {}",
            too_large.len(),
            too_large.join(", ")
        );
    }
    send(settings, &settings.topics.input, records, progress).await
}

/// Sends `(key, value)` records to `topic` as they are, waiting for every
/// ack (`kafka::produce_all`). Fails if any record is not acknowledged.
pub async fn send(
    settings: &Settings,
    topic: &str,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    progress: bool,
) -> anyhow::Result<Produced> {
    kafka::connect_within(&settings.kafka, super::KAFKA_WAIT).await?;
    kafka::ensure_topics(&settings.kafka, &[topic]).await?;
    let producer = kafka::producer(&settings.kafka)?;
    let bar = if progress { ProgressBar::new(records.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("producing to {topic}"));
    let started = Instant::now();
    let sent = kafka::produce_all(&producer, topic, &records, || bar.inc(1)).await;
    bar.finish_and_clear();
    sent?;
    Ok(Produced { records: records.len(), seconds: started.elapsed().as_secs_f64() })
}

/// `distans produce FILE`: reads a JSON-lines or CSV invoice file (all rows
/// good or nothing sent) and sends it to the input topic.
pub async fn run(file: &Path, progress: bool, settings: &Settings) -> anyhow::Result<()> {
    let lines = distans_files::invoices::read_lines(file)?;
    let produced = produce_lines(settings, &lines, progress).await?;
    print_produced(settings, produced)?;
    Ok(())
}

/// Prints how many records went to the input topic, and how fast.
pub fn print_produced(settings: &Settings, produced: Produced) -> std::io::Result<()> {
    crate::print(format_args!(
        "produced {} records to {} in {:.1} s ({:.0} records/s)\n",
        produced.records,
        settings.topics.input,
        produced.seconds,
        produced.records as f64 / produced.seconds.max(1e-9)
    ))
}
