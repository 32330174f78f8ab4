//! `make bench`: every stage of distans through the real broker (tansu)
//! and ClickHouse, side by side in one run, as ratios to the broker's own
//! raw consume rate (issue 15). Prints figures and judges issue 15's
//! targets on them; a figure is never an assertion.
//!
//! Each repetition starts a fresh broker and ClickHouse and measures, in
//! turn, on the same generated lines:
//! - the broker's raw consume rate: an rdkafka consumer that does nothing,
//!   on the input topic (the 100 %; with `--raw-valid` also on the valid topic);
//! - the plain Python pipeline (`tests/bench/python_pipeline.py`: fastavro
//!   decode, HMAC, clickhouse-driver inserts of 5 000), installed into a
//!   venv from PyPI by the bench;
//! - each service alone (the ingester, then the detector, then the sink),
//!   each the only one working on a backlog of the lines, those before it
//!   idle and left running (the sink alone also writes the detector's
//!   findings);
//! - end to end with the three running, caught up: from the first record
//!   produced to the last line queryable in ClickHouse;
//! - produce → queryable latency at a steady rate (p50, p90, p99, max);
//! - CPU seconds per 100 000 lines of every process (the services, tansu,
//!   ClickHouse, Python, the bench) from /proc/<pid>/stat, and each
//!   process's peak RSS (VmHWM).
//!
//! A stage's window runs from the first record read to the last output
//! acknowledged (the ingester: every record's valid line or dead letter;
//! the detector: every line judged and its findings acknowledged) or
//! queryable (the sink, end to end), observed by polling every 20 ms; the
//! services' start-up is outside it. The notifier is not measured: it sends
//! at a pace of its own (`notifier.max_messages_per_second`), by design.
//! The services run with the production defaults (`defaults.toml`), but
//! for the `DISTANS__SECTION__KEY` variables of the bench's own environment,
//! which every service gets (to try a setting side by side).
//!
//! Prints a table of medians with min and max, and writes every figure of
//! every repetition as JSON to `<target dir>/bench/bench-<UTC time>-<commit>.json`.
//!
//! usage: distans-bench [LINES] [--repetitions N] [--latency-rate LINES_PER_S] [--latency-seconds S] [--raw-valid]
//!   LINES: lines per stage (default 30 000); the latency stage sends
//!   rate × seconds lines (default 300 × 20).
//!
//! Why 30 000: a stage then takes several fetches (about 10 MB of records;
//! a fetch brings at most 1 MiB per partition), so it measures a rate, not
//! one round trip: at 8 000 lines one fetch could bring every record and
//! the raw consumer "read" 3 M lines/s. Three repetitions take about five
//! minutes on 2 cores. tansu 0.6, the test broker, looks up each fetched
//! record's headers in a table it gives no index (tansu-storage 0.6.0
//! `src/sql/header_fetch.sql`, once per record; `src/ddl/040-header.sql`):
//! without the index the harness adds (`deploy/local/tansu/header-index.sql`)
//! reading records after the ingester wrote its key-version header on each
//! valid line cost in proportion to the lines read times the lines stored,
//! and at 100 000 lines the sink and the detector read nothing for minutes.

mod latency;
mod procstat;
mod python;
mod report;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use distans_cli::cmd::produce;
use distans_domain::enrich::Provenance;
use distans_e2e::{bin_dir, http_get, metric, metric_sum, physical_rows, repo_root, Env, Process, TEST_KEY};
use distans_ingester::{Processor, Routed};
use distans_runtime::{kafka, Settings};
use distans_synth::generate::{self, Generated, Options};
use distans_wire::Codec;
use procstat::{Sample, Watched};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use rdkafka::{Offset, TopicPartitionList};
use report::{Repetition, Stage};

/// How often a stage's end (and start) is looked for.
const POLL: Duration = Duration::from_millis(20);
/// The raw consumer gives up when no record arrives for this long.
const STALL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, serde::Serialize)]
struct Arguments {
    lines: usize,
    repetitions: usize,
    latency_rate: f64,
    latency_seconds: f64,
    /// Also the raw consume rate of the valid topic (`--raw-valid`).
    raw_valid: bool,
}

fn arguments() -> anyhow::Result<Arguments> {
    let mut arguments =
        Arguments { lines: 30_000, repetitions: 3, latency_rate: 300.0, latency_seconds: 20.0, raw_valid: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} takes a value"));
        match arg.as_str() {
            "--repetitions" => arguments.repetitions = value(&arg)?.parse()?,
            "--latency-rate" => arguments.latency_rate = value(&arg)?.parse()?,
            "--latency-seconds" => arguments.latency_seconds = value(&arg)?.parse()?,
            "--raw-valid" => arguments.raw_valid = true,
            "-h" | "--help" => {
                println!(
                    "usage: distans-bench [LINES] [--repetitions N] [--latency-rate LINES_PER_S] [--latency-seconds S] [--raw-valid]"
                );
                std::process::exit(0);
            }
            lines => arguments.lines = lines.replace('_', "").parse().with_context(|| format!("LINES: {lines:?}"))?,
        }
    }
    anyhow::ensure!(arguments.lines > 0 && arguments.repetitions > 0, "LINES and --repetitions must be positive");
    anyhow::ensure!(
        arguments.latency_rate > 0.0 && arguments.latency_seconds > 0.0,
        "the latency stage needs a rate and seconds"
    );
    Ok(arguments)
}

/// The generated lines every repetition sends, and their records.
struct Data {
    /// The backlog each stage reads (a year of region 23).
    backlog: Generated,
    backlog_records: Vec<(Vec<u8>, Vec<u8>)>,
    /// The end-to-end stage's lines (the next year).
    second: Generated,
    /// The latency stage's lines (the year after).
    steady: Generated,
    steady_records: Vec<(Vec<u8>, Vec<u8>)>,
    /// The input topic's schema id (the embedded one).
    schema_id: u32,
}

fn valid(generated: &Generated) -> usize {
    generated.summary.valid
}

fn generate_data(arguments: &Arguments, settings: &Settings) -> anyhow::Result<Data> {
    let make = |year, lines, seed| {
        let options = Options::new("23", year, lines, seed, &settings.detector.rules);
        generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)
    };
    let codec = Codec::embedded();
    let records = |g: &Generated| -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        g.lines.iter().map(|l| Ok((l.key().into_bytes(), codec.encode_invoice_line(l)?))).collect()
    };
    let backlog = make(2024, arguments.lines, 1)?;
    let second = make(2025, arguments.lines, 2)?;
    let steady = make(2026, (arguments.latency_rate * arguments.latency_seconds).ceil() as usize, 3)?;
    let backlog_records = records(&backlog)?;
    let steady_records = records(&steady)?;
    let header = backlog_records.first().context("no line generated")?.1.get(1..5).context("a framed record")?;
    let schema_id = u32::from_be_bytes(header.try_into()?);
    Ok(Data { backlog, backlog_records, second, steady, steady_records, schema_id })
}

/// A service's `/metrics` page; empty while it does not answer.
fn page(port: u16) -> String {
    http_get(port, "/metrics").map(|(_, body)| body).unwrap_or_default()
}

/// An un-labelled counter or gauge, 0 when missing.
fn value(page: &str, name: &str) -> f64 {
    metric(page, name).unwrap_or(0.0)
}

/// Polls every [`POLL`]: the window opens at the first look where `opened`
/// holds and closes at the first look after that where `closed` holds; an
/// error from either ends the wait.
async fn window(
    watched: &Watched,
    what: &str,
    timeout: Duration,
    mut opened: impl AsyncFnMut() -> anyhow::Result<bool>,
    mut closed: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<(Sample, Sample)> {
    let deadline = Instant::now() + timeout;
    let mut start = None;
    loop {
        let looked = Instant::now();
        if start.is_none() && opened().await? {
            start = Some(watched.sample());
        }
        if let Some(start) = &start {
            if closed().await? {
                return Ok((start.clone(), watched.sample()));
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} ({})",
            if start.is_some() { "started" } else { "not started" }
        );
        tokio::time::sleep_until((looked + POLL).into()).await;
    }
}

fn stage(lines: usize, start: &Sample, end: &Sample) -> Stage {
    let seconds = start.seconds_until(end);
    Stage::new(lines, seconds, seconds, start.cpu_until(end))
}

fn print_stage(label: &str, stage: &Stage) {
    println!(
        "  {label:<36} {:>9} lines/s  ({} lines in {:.2} s)",
        report::thousands(stage.lines_per_second),
        stage.lines,
        stage.seconds
    );
}

/// The broker's rate with a consumer that does nothing: every partition of
/// `topic` assigned from the beginning (no group to join), each record
/// received and dropped, from the first record to the `lines`-th. The
/// client's settings are the services' consumers' fetch sizes and wait.
async fn raw_consume(
    settings: &Settings,
    topic: &str,
    lines: usize,
    watched: &Watched,
    timeout: Duration,
) -> anyhow::Result<Stage> {
    let partition_fetch = (settings.kafka.max_record_bytes + kafka::BATCH_OVERHEAD_BYTES).max(1 << 20);
    let consumer: StreamConsumer = kafka::client_config(
        &settings.kafka,
        &[
            ("group.id", "distans-bench-raw"),
            ("enable.auto.commit", "false"),
            ("max.partition.fetch.bytes", &partition_fetch.to_string()),
            ("fetch.max.bytes", &partition_fetch.max(50 << 20).to_string()),
            ("fetch.wait.max.ms", &settings.kafka.fetch_wait_max_ms.to_string()),
        ],
    )
    .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let (mut start, mut read) = (None, 0usize);
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    while read < lines {
        let message = match tokio::time::timeout(STALL, consumer.recv()).await {
            Ok(message) => message?,
            Err(_) => bail!("{topic}: no record for {STALL:?} after {read} of {lines} (last offsets read: {last:?})"),
        };
        last.insert(message.partition(), message.offset());
        drop(message);
        start.get_or_insert_with(|| watched.sample());
        read += 1;
        anyhow::ensure!(Instant::now() < deadline, "{topic}: {read} of {lines} records read in {timeout:?}");
    }
    Ok(stage(lines, &start.context("no record")?, &watched.sample()))
}

/// Runs `service` alone on its backlog of `lines` records: started (its
/// start-up outside the window), the window open at its first record
/// consumed, closed when `finished` holds for its metrics page. Returns
/// the stage and the process, still running.
async fn alone(
    env: &Env,
    service: &str,
    lines: usize,
    watched: &Watched,
    timeout: Duration,
    mut finished: impl AsyncFnMut(&str) -> anyhow::Result<bool>,
) -> anyhow::Result<(Stage, Process)> {
    let mut process = env.spawn_unchecked(service)?;
    let watched = watched.with(service, process.pid());
    let port = env.http_port(service);
    let consumed = format!("distans_{service}_records_consumed_total");
    let (start, end) = window(
        &watched,
        &format!("the {service} alone to finish {lines} lines"),
        timeout,
        async || Ok(value(&page(port), &consumed) > 0.0),
        async || {
            if !process.is_running() {
                bail!("the {service} exited\n{}", process.log_tail(30));
            }
            finished(&page(port)).await
        },
    )
    .await?;
    Ok((stage(lines, &start, &end), process))
}

/// The ingester's outputs acknowledged: valid lines and dead letters.
fn ingester_outputs(page: &str) -> f64 {
    value(page, "distans_ingester_lines_valid_total") + metric_sum(page, "distans_ingester_records_dead_lettered_total")
}

/// Lines the detector judged, 0 findings awaiting the broker (when it has that gauge).
fn detector_judged(page: &str) -> f64 {
    if metric(page, "distans_detector_in_flight").unwrap_or(0.0) > 0.0 {
        return 0.0;
    }
    value(page, "distans_detector_lines_observed_total")
}

async fn repetition(
    number: usize,
    arguments: &Arguments,
    data: &Data,
    defaults: &Settings,
    python: &std::path::Path,
) -> Repetition {
    let mut rep = Repetition { number, ..Repetition::default() };
    if let Err(error) = measure(&mut rep, arguments, data, defaults, python).await {
        println!("  repetition {number} stopped: {error:#}");
        rep.error = Some(format!("{error:#}"));
    }
    rep
}

async fn measure(
    rep: &mut Repetition,
    arguments: &Arguments,
    data: &Data,
    defaults: &Settings,
    python: &std::path::Path,
) -> anyhow::Result<()> {
    // Generous: at least 1 000 lines/s, whatever the stage.
    let timeout = Duration::from_secs(120 + arguments.lines as u64 / 1000);
    let (lines, valid1, valid2) = (data.backlog.lines.len(), valid(&data.backlog), valid(&data.second));
    // The end-to-end stage sends the second year, which the generator makes
    // with its own count of lines (not always the backlog's).
    let lines2 = data.second.lines.len();

    // In process, no broker: decode, validate, enrich, pseudonymise, encode.
    let watched = Watched::bench();
    let processor = Processor::new(
        Codec::embedded(),
        defaults.tariffs.clone(),
        distans_domain::Pseudonymiser::new(TEST_KEY.as_bytes())?,
        defaults.validation()?,
    );
    let source = Provenance { topic: "bench".into(), partition: 0, offset: 0 };
    let start = watched.sample();
    let mut routed_valid = 0usize;
    for (_, bytes) in &data.backlog_records {
        if let Routed::Valid { .. } = processor.process(None, Some(bytes), &source, 0)? {
            routed_valid += 1;
        }
    }
    let end = watched.sample();
    anyhow::ensure!(routed_valid == valid1, "{routed_valid} lines valid in process, the generator says {valid1}");
    record(rep, "ingester_logic", "ingester logic in process, 1 core", stage(lines, &start, &end));

    let env = Env::start_for_bench()?;
    let settings = env.settings();
    let client = env.clickhouse.client();
    let watched = watched
        .with("tansu", env.broker.process().and_then(Process::pid))
        .with("clickhouse", env.clickhouse.process().and_then(Process::pid));

    // The backlog into the input topic.
    let start = watched.sample();
    let produced = produce::produce_lines(&settings, &data.backlog.lines, false).await?;
    let end = watched.sample();
    let seconds = produced.seconds;
    record(
        rep,
        "produce",
        "distans produce (acks=all)",
        Stage::new(lines, seconds, start.seconds_until(&end), start.cpu_until(&end)),
    );

    let raw = raw_consume(&settings, &settings.topics.input, lines, &watched, timeout).await?;
    record(rep, report::RAW, "broker raw consume, input", raw);

    let key_file = env.dir.path().join("python-key");
    std::fs::write(&key_file, TEST_KEY)?;
    let run = python::Run {
        python,
        brokers: env.broker.brokers(),
        topic: settings.topics.input.clone(),
        group: "distans-bench-python".into(),
        clickhouse_native_port: env.clickhouse.tcp_port,
        database: "bench_python".into(),
        schema_id: data.schema_id,
        key_file,
        lines,
        timeout,
        fetch_wait_max_ms: settings.kafka.fetch_wait_max_ms,
    };
    let (python_stage, python_rss) = python::run(&run, &watched).await?;
    rep.peak("python", Some(python_rss));
    record(rep, report::PYTHON, "plain Python pipeline", python_stage);

    // Each service alone: the only one working, those before it idle (caught
    // up) and left running. Stopping a service between stages (its consumer
    // leaving the group) left tansu 0.6 busy for minutes, answering no
    // client (issue 15's notes); the detector runs before the sink, so the
    // sink alone also writes the detector's findings (a few per 100 lines).
    let (ingester, mut ingester_process) =
        alone(&env, "ingester", lines, &watched, timeout, async |page| Ok(ingester_outputs(page) >= lines as f64))
            .await?;
    record(rep, "ingester", "ingester alone", ingester);

    // The sink's and the detector's input, in the ingester's batches: only
    // on request (with tansu 0.6 it once read nothing for minutes).
    if arguments.raw_valid {
        let raw_valid = raw_consume(&settings, &settings.topics.valid, valid1, &watched, timeout).await?;
        record(rep, report::RAW_VALID, "broker raw consume, valid", raw_valid);
    }

    let (detector, mut detector_process) =
        alone(&env, "detector", valid1, &watched, timeout, async |page| Ok(detector_judged(page) >= valid1 as f64))
            .await?;
    record(rep, "detector", "detector alone", detector);
    let findings = metric_sum(&page(env.detector_http), "distans_detector_findings_total");
    println!("    ({findings} findings published)");

    let (sink, mut sink_process) = alone(&env, "sink", valid1, &watched, timeout, async |_| {
        Ok(physical_rows(&client).await.unwrap_or(0) >= valid1 as u64)
    })
    .await?;
    record(rep, "sink", "sink alone", sink);

    // End to end: the three running, caught up, then the next year produced.
    settle(&env, &client, findings, timeout).await;
    let (ingester, sink, detector) = (&mut ingester_process, &mut sink_process, &mut detector_process);
    let watched = watched.with("ingester", ingester.pid()).with("sink", sink.pid()).with("detector", detector.pid());
    // Rows ClickHouse acknowledged to the sink (an insert is queryable once
    // acknowledged). Not a count of stored rows: the second year shares some
    // line identities with the first, and ClickHouse's merges collapse them
    // (a stored-row count then never reached its target at 46 000 lines).
    let inserted = || value(&page(env.sink_http), "distans_sink_rows_inserted_total");
    let rows = inserted();
    let outputs = ingester_outputs(&page(env.ingester_http));
    let judged = value(&page(env.detector_http), "distans_detector_lines_observed_total");
    let start = watched.sample();
    let produced = produce::produce_lines(&settings, &data.second.lines, false).await?;
    rep.notes.insert("end_to_end_produce_seconds".into(), produced.seconds);
    let (_, queryable) = window(
        &watched,
        "end to end: every line queryable",
        timeout,
        async || Ok(true),
        async || Ok(inserted() >= rows + valid2 as f64),
    )
    .await?;
    let (_, caught_up) = window(
        &watched,
        "end to end: every service caught up",
        timeout,
        async || Ok(true),
        async || {
            for process in [&mut *ingester, &mut *sink, &mut *detector] {
                if !process.is_running() {
                    bail!("a service exited\n{}", process.log_tail(30));
                }
            }
            Ok(ingester_outputs(&page(env.ingester_http)) >= outputs + lines2 as f64
                && detector_judged(&page(env.detector_http)) >= judged + valid2 as f64)
        },
    )
    .await?;
    let seconds = start.seconds_until(&queryable);
    let end_to_end = Stage::new(lines2, seconds, start.seconds_until(&caught_up), start.cpu_until(&caught_up));
    rep.notes.insert("end_to_end_all_caught_up_seconds".into(), end_to_end.cpu_window_seconds);
    record(rep, "end_to_end", "end to end", end_to_end);
    let queryable_at = Instant::now();
    distans_e2e::wait_for_fresh_aggregates(&client, "the aggregates to match the lines", timeout).await?;
    rep.notes.insert("aggregates_current_after_queryable_seconds".into(), queryable_at.elapsed().as_secs_f64());

    // Latency at a steady rate, the three running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let latency = latency::measure(
        &settings,
        &client,
        &data.steady_records,
        &data.steady.invalid,
        arguments.latency_rate,
        Duration::from_secs(30),
    )
    .await?;
    println!(
        "  latency at {:.0} lines/s (sent at {:.0}/s): p50 {:.2} s, p90 {:.2} s, p99 {:.2} s, max {:.2} s; {} of {} valid lines found",
        latency.rate, latency.achieved_rate, latency.p50, latency.p90, latency.p99, latency.max, latency.found, latency.stamped
    );
    rep.latency = Some(latency);

    for (name, process) in [("ingester", &*ingester), ("sink", &*sink), ("detector", &*detector)] {
        rep.peak(name, process.peak_rss_kib());
    }
    rep.peak("tansu", env.broker.process().and_then(Process::peak_rss_kib));
    rep.peak("clickhouse", env.clickhouse.process().and_then(Process::peak_rss_kib));
    Ok(())
}

/// Before the end-to-end stage: the sink has written the detector's
/// `findings` and the aggregates are current, so it starts from quiet. A
/// wait that times out is reported and the stage runs all the same.
async fn settle(env: &Env, client: &distans_store::Client, findings: f64, timeout: Duration) {
    let inserted = distans_e2e::poll_until("the sink to write the findings", timeout, async || {
        let written = value(&page(env.sink_http), "distans_sink_anomalies_rows_inserted_total");
        anyhow::ensure!(written >= findings, "{written} of {findings} findings written");
        Ok(())
    })
    .await;
    let fresh = distans_e2e::wait_for_fresh_aggregates(client, "the aggregates to be current", timeout).await;
    for waited in [inserted, fresh] {
        if let Err(error) = waited {
            println!("    (not quiet before the end-to-end stage: {error:#})");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn record(rep: &mut Repetition, id: &str, label: &str, stage: Stage) {
    print_stage(label, &stage);
    rep.stages.insert(id.to_string(), stage);
}

fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git").arg("-C").arg(repo_root()).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(serde::Serialize)]
struct Run<'a> {
    started_at: String,
    finished_at: String,
    commit: Option<String>,
    /// Tracked files changed since the commit.
    commit_dirty: bool,
    release_build: bool,
    cpus: usize,
    load_average_start: String,
    load_average_end: String,
    arguments: &'a Arguments,
    /// The production defaults the services ran with, where the test
    /// harness would set others.
    sink_batch_max_rows: usize,
    sink_batch_max_wait_ms: u64,
    detector_review_interval_ms: u64,
    lines_valid: [usize; 3],
    repetitions: &'a [Repetition],
    summary: &'a report::Summary,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = arguments()?;
    let started_at = chrono::Utc::now();
    let defaults = Settings::load_with_env(None, Some(BTreeMap::new()))?;
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    let load_start = load_average();
    println!(
        "distans bench: {} lines per stage, {} repetition(s), latency at {} lines/s for {} s; commit {}{}; {} build; {cpus} CPUs, load average {load_start}",
        report::thousands(arguments.lines as f64),
        arguments.repetitions,
        arguments.latency_rate,
        arguments.latency_seconds,
        commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("unknown"),
        if dirty { " (with uncommitted changes)" } else { "" },
        if cfg!(debug_assertions) { "DEBUG (figures meaningless: run `make bench`)" } else { "release" },
    );
    let tried: Vec<String> = distans_e2e::settings_tried().iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !tried.is_empty() {
        println!("settings tried, for every service: {}", tried.join(" "));
    }
    let python = python::ensure_venv()?;
    let data = generate_data(&arguments, &defaults)?;
    println!(
        "generated: {} + {} + {} lines ({} + {} + {} valid)",
        data.backlog.lines.len(),
        data.second.lines.len(),
        data.steady.lines.len(),
        valid(&data.backlog),
        valid(&data.second),
        valid(&data.steady)
    );
    let mut repetitions = Vec::new();
    for number in 1..=arguments.repetitions {
        println!("repetition {number} of {}:", arguments.repetitions);
        repetitions.push(repetition(number, &arguments, &data, &defaults, &python).await);
    }
    let summary = report::summarise(&repetitions);
    print!("{}", report::table(&summary, arguments.lines, arguments.latency_rate));

    let run = Run {
        started_at: started_at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        commit: commit.clone(),
        commit_dirty: dirty,
        release_build: !cfg!(debug_assertions),
        cpus,
        load_average_start: load_start,
        load_average_end: load_average(),
        arguments: &arguments,
        sink_batch_max_rows: defaults.sink.batch_max_rows,
        sink_batch_max_wait_ms: defaults.sink.batch_max_wait_ms,
        detector_review_interval_ms: defaults.detector.review_interval_ms,
        lines_valid: [valid(&data.backlog), valid(&data.second), valid(&data.steady)],
        repetitions: &repetitions,
        summary: &summary,
    };
    let dir = bin_dir().parent().map(|p| p.join("bench")).context("no target directory")?;
    std::fs::create_dir_all(&dir)?;
    let short = commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("unknown");
    let path = dir.join(format!("bench-{}-{short}.json", started_at.format("%Y%m%dT%H%M%SZ")));
    std::fs::write(&path, serde_json::to_string_pretty(&run)?)?;
    println!("\nevery figure of every repetition: {}", path.display());
    let failed = repetitions.iter().filter(|r| r.error.is_some()).count();
    anyhow::ensure!(failed == 0, "{failed} of {} repetition(s) stopped (see above)", repetitions.len());
    Ok(())
}
