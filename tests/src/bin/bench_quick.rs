//! `make bench-quick`: the in-process figures of issue 15, in under a
//! minute, each beside a floor measured in the same run.
//!
//! On a generated year's lines (the synth generator, the default settings):
//!
//! - **floor**: a direct decode of the invoice line, an HMAC-SHA-256 of its
//!   patient id, and an encode of the line carrying the pseudonym: what no
//!   ingester can beat with this codec;
//! - **ingester logic**: `Processor::process`, what the ingester runs per
//!   record (decode, validate, enrich, pseudonymise, encode the enriched
//!   line or the dead letter);
//! - **sink decode + row**: `Table::DECODE` and `Table::row` of an
//!   `EnrichedLine`, what the sink runs per record
//!   (decode the enriched line, the `invoice_line_versions` row);
//! - **sink decode + RowBinary insert**: the same, then
//!   `distans_store::insert_rows` in batches of 5 000 rows (the default
//!   `sink.batch_max_rows`) to the clickhouse crate's in-process mock server
//!   (RowBinary, lz4, HTTP on loopback; the server only receives).
//!
//! Each "before" runs the same logic through the apache-avro `Value` path
//! (`distans_wire::reference`). Figures are lines per CPU-second of this
//! process (one thread: the mock server runs on the same current-thread
//! runtime), so they are per core whatever the machine's load: the minimum,
//! median and maximum of three repetitions of at least 0.4 s each, and the
//! median's ratio to the floor's median.
//!
//! Usage: `distans-bench-quick [LINES]` (default 20 000), in release mode;
//! `distans-bench-quick profile[=STAGE] [LINES]` runs one pass of each
//! "after" path, or ten of one STAGE (`floor`, `ingester`, `row`, `insert`),
//! and prints nothing more (for `perf record` or `valgrind
//! --tool=callgrind`, which counts instructions whatever the machine's load).

#[global_allocator]
static ALLOCATOR: distans_runtime::Allocator = distans_runtime::Allocator;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clickhouse::test::{handlers, Mock};
use distans_domain::enrich::Provenance;
use distans_domain::validate::{validate, Context};
use distans_domain::{EnrichedLine, InvoiceLine, Pseudonymiser, Tariffs, Validation};
use distans_ingester::Processor;
use distans_runtime::Settings;
use distans_sink::Table;
use distans_store::rows::LineRow;
use distans_synth::generate::{generate, Options};
use distans_wire::reference::ReferenceCodec;
use distans_wire::{Codec, DeadLetter};
use hmac::{Hmac, Mac};

const REPETITIONS: usize = 3;
const MIN_CPU: Duration = Duration::from_millis(400);
const BATCH_ROWS: usize = 5_000;
const KEY: [u8; 32] = [7; 32];

/// CPU time of this process (user + system), from `/proc/self/stat` in
/// clock ticks of 10 ms (`CLK_TCK` = 100 on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) end at ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `pass` (one pass over the data, returning how many lines it took)
/// until at least [`MIN_CPU`] of CPU time went by; lines per CPU-second.
fn measure(mut pass: impl FnMut() -> usize) -> f64 {
    let (cpu_start, wall_start) = (process_cpu(), Instant::now());
    let mut lines = 0;
    loop {
        lines += pass();
        let cpu = process_cpu().saturating_sub(cpu_start);
        // Wall time as a guard when the ticks do not move (a loaded machine).
        if cpu >= MIN_CPU && wall_start.elapsed() >= MIN_CPU / 2 {
            return lines as f64 / cpu.as_secs_f64();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    min: f64,
    median: f64,
    max: f64,
}

fn repeated(mut pass: impl FnMut() -> usize) -> Figures {
    let mut rates: Vec<f64> = (0..REPETITIONS).map(|_| measure(&mut pass)).collect();
    rates.sort_by(f64::total_cmp);
    Figures { min: rates[0], median: rates[REPETITIONS / 2], max: rates[REPETITIONS - 1] }
}

fn thousands(rate: f64) -> String {
    format!("{:.0} k", rate / 1000.0)
}

fn show(figures: Option<Figures>) -> String {
    figures
        .map_or_else(|| "-".into(), |f| format!("{} ({}–{})", thousands(f.median), thousands(f.min), thousands(f.max)))
}

/// The floor: decode, HMAC the patient id, encode the line with the pseudonym.
fn floor(codec: &Codec, payloads: &[Vec<u8>]) -> usize {
    for payload in payloads {
        let mut line: InvoiceLine = codec.decode_invoice_line(payload).expect("the generated lines decode");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&KEY).expect("any key length");
        mac.update(line.patient_id.as_bytes());
        line.patient_id = hex::encode(&mac.finalize().into_bytes()[..16]);
        std::hint::black_box(codec.encode_invoice_line(&line).expect("encodes"));
    }
    payloads.len()
}

/// The ingester's logic through the reference path: what
/// `Processor::process` did before the codec changed.
struct ReferenceIngester {
    reference: ReferenceCodec,
    tariffs: Tariffs,
    pseudonymiser: Pseudonymiser,
    validation: Validation,
}

impl ReferenceIngester {
    fn process(&self, payload: &[u8], source: &Provenance) -> Vec<u8> {
        let line = match self.reference.decode_invoice_line(payload) {
            Ok(line) => line,
            Err(error) => return self.dead_letter(payload, source, &[error.into_violation()]),
        };
        let ctx = Context {
            tariffs: &self.tariffs,
            pseudonymiser: &self.pseudonymiser,
            validation: &self.validation,
            ingested_at_ms: 1,
        };
        match validate(&line, source.clone(), ctx) {
            Ok(accepted) => self.reference.encode_enriched_line(&accepted.line).expect("encodes"),
            Err(violations) => self.dead_letter(payload, source, &violations),
        }
    }

    fn dead_letter(&self, payload: &[u8], source: &Provenance, violations: &[distans_domain::Violation]) -> Vec<u8> {
        let letter = DeadLetter::new("ingester", violations, source, Some(b"key"), payload, 1);
        self.reference.encode_dead_letter(&letter).expect("encodes")
    }
}

/// A line's row, as the sink makes it (`Table::row`).
fn row_of(line: &EnrichedLine) -> LineRow<'_> {
    line.row(Some(1), 1).expect("a row")
}

fn sink_rows(payloads: &[Vec<u8>], decode: &impl Fn(&[u8]) -> EnrichedLine) -> usize {
    for payload in payloads {
        let line = decode(payload);
        std::hint::black_box(row_of(&line));
    }
    payloads.len()
}

/// The rows inserted in batches into the mock server, as the sink's writer
/// inserts them.
fn sink_insert(
    runtime: &tokio::runtime::Runtime,
    mock: &Mock,
    client: &clickhouse::Client,
    payloads: &[Vec<u8>],
    decode: &impl Fn(&[u8]) -> EnrichedLine,
) -> usize {
    for batch in payloads.chunks(BATCH_ROWS) {
        let lines: Vec<EnrichedLine> = batch.iter().map(|payload| decode(payload)).collect();
        let rows: Vec<LineRow> = lines.iter().map(row_of).collect();
        let _received = mock.add(handlers::record::<LineRow>());
        runtime
            .block_on(distans_store::insert_rows::<LineRow>(client, EnrichedLine::TABLE, &rows))
            .expect("the mock server takes the rows");
    }
    payloads.len()
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let profile =
        args.first().and_then(|a| a.strip_prefix("profile")).map(|stage| stage.trim_start_matches('=').to_string());
    if profile.is_some() {
        args.remove(0);
    }
    let lines: usize = match args.first() {
        Some(n) => n.parse().context("LINES is a number of lines")?,
        None => 20_000,
    };
    let mut settings = Settings::load_with_env(None, Some(BTreeMap::new())).context("the default settings")?;
    settings.validation.invoice_id_patterns = distans_synth::generate::invoice_id_patterns();
    let validation = settings.validation().context("the default validation")?;
    let options = Options::new("23", 2025, lines, 15, &settings.detector.rules);
    let generated = generate(&options, &settings.tariffs).context("generating the lines")?;
    let codec = Codec::embedded();
    let invoice_payloads: Vec<Vec<u8>> =
        generated.lines.iter().map(|line| codec.encode_invoice_line(line)).collect::<Result<_, _>>()?;
    let source = Provenance { topic: "invoice-lines".into(), partition: 0, offset: 0 };
    let pseudonymiser = || Pseudonymiser::new(&KEY).expect("a 32-byte key");
    let processor = Processor::new(codec.clone(), settings.tariffs.clone(), pseudonymiser(), validation.clone());
    let enriched_payloads: Vec<Vec<u8>> = invoice_payloads
        .iter()
        .filter_map(|payload| match processor.process(Some(b"key"), Some(payload), &source, 1) {
            Ok(distans_ingester::Routed::Valid { payload, .. }) => Some(payload),
            _ => None,
        })
        .collect();
    let reference = ReferenceIngester {
        reference: ReferenceCodec::new(codec.clone()),
        tariffs: settings.tariffs.clone(),
        pseudonymiser: pseudonymiser(),
        validation,
    };
    if let Some(stage) = profile {
        let passes = |name: &str| match stage.as_str() {
            "" => 1,
            _ if stage == name => 10,
            _ => 0,
        };
        for _ in 0..passes("floor") {
            floor(&codec, &invoice_payloads);
        }
        for _ in 0..passes("ingester") {
            for payload in &invoice_payloads {
                std::hint::black_box(processor.process(Some(b"key"), Some(payload), &source, 1).expect("routes"));
            }
        }
        let decode = |payload: &[u8]| (EnrichedLine::DECODE)(&codec, payload).expect("decodes");
        for _ in 0..passes("row") {
            sink_rows(&enriched_payloads, &decode);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mock = runtime.block_on(async { Mock::new() });
        settings.clickhouse.url = mock.url().to_string();
        let client = runtime.block_on(async { distans_store::database(&settings.clickhouse) });
        for _ in 0..passes("insert") {
            sink_insert(&runtime, &mock, &client, &enriched_payloads, &decode);
        }
        return Ok(());
    }
    println!(
        "distans-bench-quick: {} generated lines ({} valid), {REPETITIONS} repetitions of ≥ {} ms CPU each; \
         lines per CPU-second (per core), median (min–max)",
        invoice_payloads.len(),
        enriched_payloads.len(),
        MIN_CPU.as_millis()
    );

    let floor_figures = repeated(|| floor(&codec, &invoice_payloads));
    let ingester_after = repeated(|| {
        for payload in &invoice_payloads {
            std::hint::black_box(processor.process(Some(b"key"), Some(payload), &source, 1).expect("routes"));
        }
        invoice_payloads.len()
    });
    let ingester_before = repeated(|| {
        for payload in &invoice_payloads {
            std::hint::black_box(reference.process(payload, &source));
        }
        invoice_payloads.len()
    });

    let reference_codec = ReferenceCodec::new(codec.clone());
    let decode_after = |payload: &[u8]| (EnrichedLine::DECODE)(&codec, payload).expect("decodes");
    let decode_before = |payload: &[u8]| reference_codec.decode_enriched_line(payload).expect("decodes");
    let sink_after = repeated(|| sink_rows(&enriched_payloads, &decode_after));
    let sink_before = repeated(|| sink_rows(&enriched_payloads, &decode_before));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mock = runtime.block_on(async { Mock::new() });
    settings.clickhouse.url = mock.url().to_string();
    let client = runtime.block_on(async { distans_store::database(&settings.clickhouse) });
    let insert_after = repeated(|| sink_insert(&runtime, &mock, &client, &enriched_payloads, &decode_after));
    let insert_before = repeated(|| sink_insert(&runtime, &mock, &client, &enriched_payloads, &decode_before));

    println!();
    println!("{:<40} {:>26} {:>26} {:>10} {:>8}", "stage", "before (apache-avro Value)", "after", "÷ floor", "target");
    let row = |name: &str, before: Option<Figures>, after: Figures, target: &str| {
        println!(
            "{name:<40} {:>26} {:>26} {:>10} {:>8}",
            show(before),
            show(Some(after)),
            format!("{:.2}", after.median / floor_figures.median),
            target
        );
    };
    row("floor: decode + HMAC + encode", None, floor_figures, "");
    row("ingester logic (Processor::process)", Some(ingester_before), ingester_after, "500 k");
    row("sink decode + row (Table for EnrichedLine)", Some(sink_before), sink_after, "");
    row("sink decode + RowBinary insert (mock)", Some(insert_before), insert_after, "1 000 k");
    println!();
    for (name, figures, target) in
        [("ingester logic", ingester_after, 500_000.0), ("sink decode + RowBinary", insert_after, 1_000_000.0)]
    {
        let verdict = if figures.median >= target { "met" } else { "not met" };
        println!(
            "{name}: median {} lines/s per core, target {}: {verdict}",
            thousands(figures.median),
            thousands(target)
        );
    }
    Ok(())
}
