//! The chaos run (issue 12): a generated year of invoice lines sent in
//! chunks while every service (ingester, sink, detector, notifier) is
//! SIGKILLed at random moments and restarted at once, and the broker and
//! ClickHouse are restarted mid-stream; then what arrived is compared,
//! exactly, with what was sent.
//!
//! One [`run`] serves both the end-to-end test (`tests/tests/chaos.rs`, a
//! short [`Plan`] whose [`Figures`] it asserts) and `make chaos`
//! (`distans-chaos`, a whole year, figures printed).
//!
//! Faults, and why these:
//! - services: SIGKILL (nothing flushed, nothing committed on the way out),
//!   restarted at once. A service is killed again only once it has been
//!   ready for [`MIN_UP`] after its previous kill (or after [`MAX_DEFER`]),
//!   so each recovery is measured on its own.
//! - tansu: SIGKILL, restarted a second later on the same port and storage.
//!   SIGTERM is not used: tansu 0.6 panics while stopping on it.
//! - ClickHouse: SIGKILL, restarted at once on the same data.
//!
//! Known broker fault, not hidden: tansu 0.6's group coordinator assigns
//! no partition to a member that re-joins while its SIGKILLed predecessor's
//! session (30 s) has not expired. Every recovery's time and the last reason
//! `/readyz` gave while it waited are in [`Recovery`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use distans_cli::cmd::produce;
use distans_domain::rules::{Judged, Rule, Severity};
use distans_domain::InvoiceLine;
use distans_runtime::dead_letters;
use distans_synth::summary::Summary;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{http_get, metric, metric_sum, poll_until, Count, Env, MonthNet, Process};

/// The services, in the order they are started.
pub const SERVICES: [&str; 4] = ["ingester", "sink", "detector", "notifier"];

/// How long a kill waits for the service's previous incarnation to become
/// ready before it kills anyway.
pub const MAX_DEFER: Duration = Duration::from_secs(120);

/// How long a service that came back is left running before a kill that
/// fell due meanwhile: else a kill deferred past its moment would strike
/// the moment the service is ready, again and again, and nothing would
/// move between kills.
pub const MIN_UP: Duration = Duration::from_secs(10);

/// What to do to the pipeline while the lines are sent.
#[derive(Debug, Clone)]
pub struct Plan {
    /// SIGKILLs of each service, each restarted at once.
    pub kills_per_service: usize,
    /// SIGKILLs of tansu, each restarted after a second.
    pub broker_restarts: usize,
    /// SIGKILLs of ClickHouse, each restarted at once.
    pub clickhouse_restarts: usize,
    /// The lines are sent in this many chunks, one every `chunk_pause`; the
    /// faults fall at random moments within that stream.
    pub chunks: usize,
    pub chunk_pause: Duration,
    /// Seed of the moments chosen.
    pub seed: u64,
    /// How long everything may take to arrive after the last line was sent
    /// and the last fault injected.
    pub settle_timeout: Duration,
    /// Extra `DISTANS__…` settings of the services.
    pub variables: BTreeMap<String, String>,
    /// Keep the run's directory (services' logs, tansu's and ClickHouse's
    /// data) rather than delete it; its path is in [`Figures::kept`].
    pub keep_dir: bool,
}

/// The lines to send and what the generator says they imply.
#[derive(Debug, Clone)]
pub struct Input {
    pub lines: Vec<InvoiceLine>,
    /// Per line: whether the ingester must reject it.
    pub invalid: Vec<bool>,
    pub summary: Summary,
}

impl Input {
    /// A generated year of Jämtland Härjedalen (county 23): `lines` lines
    /// (`None`: the region's yearly volume), as `distans generate` makes it
    /// with the default settings.
    pub fn generate(year: i32, lines: Option<usize>, seed: u64) -> anyhow::Result<Input> {
        let settings = distans_runtime::Settings::load_with_env(None, Some(BTreeMap::new()))?;
        let region = distans_synth::profile::region("23").context("region 23")?;
        let options = distans_synth::generate::Options::new(
            "23",
            year,
            lines.unwrap_or(region.yearly_lines),
            seed,
            &settings.detector.rules,
        );
        let generated = distans_synth::generate::generate(&options, &settings.tariffs)?;
        Ok(Input { lines: generated.lines, invalid: generated.invalid, summary: generated.summary })
    }
}

/// One service's way back after a SIGKILL.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub service: &'static str,
    /// Since the run started.
    pub killed_at: Duration,
    /// From the kill until `/readyz` answered 200; `None`: never.
    pub ready_after: Option<Duration>,
    /// The last reason `/readyz` gave while not ready.
    pub last_not_ready: String,
    /// Times its stall watchdog re-joined the group before it was ready.
    pub group_rejoins: f64,
}

/// A restart of the broker or ClickHouse.
#[derive(Debug, Clone)]
pub struct Outage {
    pub what: &'static str,
    /// Since the run started.
    pub at: Duration,
    /// From the SIGKILL until it answered again.
    pub down_for: Duration,
}

/// A stretch in which ClickHouse held fewer lines than had been sent and
/// did not gain one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stall {
    /// Since the run started.
    pub from: Duration,
    pub lasted: Duration,
}

/// Expected and found, with what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared<T> {
    pub expected: T,
    pub found: T,
}

impl<T: PartialEq> Compared<T> {
    pub fn equal(&self) -> bool {
        self.expected == self.found
    }
}

/// What the run did and what it found.
#[derive(Debug, Clone)]
pub struct Figures {
    pub lines_sent: usize,
    /// Records on the input topic (more than the lines sent: the producer
    /// sent some twice, e.g. an ack lost in a broker restart).
    pub input_records: i64,
    /// Chunks sent again because the producer gave up on one.
    pub chunks_resent: usize,
    /// Whether everything arrived within the settle timeout; else what was
    /// still missing.
    pub finished: Result<(), String>,
    pub seconds: f64,
    pub recoveries: Vec<Recovery>,
    pub outages: Vec<Outage>,
    /// Services that exited by themselves (restarted then), with their log.
    pub unexpected_exits: Vec<(&'static str, String)>,
    /// Valid lines sent whose identity is not in `invoice_line_versions FINAL`.
    pub lines_lost: usize,
    /// Identities in ClickHouse that were not sent as valid lines.
    pub lines_unexpected: usize,
    /// Rows of `invoice_line_versions FINAL` beyond one per identity.
    pub lines_counted_twice: u64,
    /// Lines the aggregates every report reads count (`agg_monthly.lines`),
    /// against the valid lines.
    pub report_lines: Compared<u64>,
    /// Rows stored, redeliveries not yet merged away included.
    pub physical_rows: u64,
    /// Net amount (öre) and contacts of the latest versions.
    pub net_amount_ore: Compared<i64>,
    pub contacts: Compared<i64>,
    /// Net amount (öre) per visit month in `report_cost_by_month`.
    pub net_by_month: Compared<BTreeMap<String, i64>>,
    /// Active findings per rule (the rules judged in ClickHouse left out:
    /// the review is off).
    pub findings: Compared<BTreeMap<String, usize>>,
    /// Rows of `anomalies FINAL` beyond one per finding id.
    pub findings_counted_twice: u64,
    /// Dead letters per reason, once per source line.
    pub dead_letters: Compared<BTreeMap<String, usize>>,
    /// Dead letters of one source line beyond the first (a line the
    /// producer sent twice is two records).
    pub dead_letters_repeated: usize,
    /// Findings of at least the notifier's immediate severity sent to the
    /// webhook, distinct, and messages beyond one per finding.
    pub immediate: Compared<usize>,
    pub immediate_sent_twice: usize,
    /// Findings in digests per rule (a digest sent twice counts twice).
    pub digested: Compared<BTreeMap<String, usize>>,
    /// (rule, line key) named by more than one digest, and when each
    /// arrived (seconds into the run).
    pub digested_twice: BTreeMap<(String, String), Vec<f64>>,
    /// Records on the alerts topic, and distinct findings among them (the
    /// detector publishes a finding again when it judges a line again after
    /// a kill).
    pub alert_records: i64,
    pub longest_stall: Stall,
    /// Peak resident memory (VmHWM, KiB) per process, the largest of its
    /// incarnations.
    pub peak_rss_kib: BTreeMap<&'static str, u64>,
    /// The run's directory, when kept.
    pub kept: Option<std::path::PathBuf>,
}

impl Figures {
    /// Kills of `service` and how many of them it came back from (ready again).
    pub fn kills(&self, service: &str) -> (usize, usize) {
        let of: Vec<&Recovery> = self.recoveries.iter().filter(|r| r.service == service).collect();
        (of.len(), of.iter().filter(|r| r.ready_after.is_some()).count())
    }

    /// Everything sent arrived exactly once, with the same sums, findings
    /// and dead letters.
    pub fn exact(&self) -> bool {
        self.lines_lost == 0
            && self.lines_unexpected == 0
            && self.lines_counted_twice == 0
            && self.report_lines.equal()
            && self.net_amount_ore.equal()
            && self.contacts.equal()
            && self.net_by_month.equal()
            && self.findings.equal()
            && self.findings_counted_twice == 0
            && self.dead_letters.equal()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn check<T: PartialEq + fmt::Debug>(f: &mut fmt::Formatter<'_>, what: &str, c: &Compared<T>) -> fmt::Result {
    if c.equal() {
        writeln!(f, "  {what}: {:?} (as sent)", c.found)
    } else {
        writeln!(f, "  {what}: DIFFERS\n    expected {:?}\n    found    {:?}", c.expected, c.found)
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "chaos run: {} lines sent in {:.0} s", self.lines_sent, self.seconds)?;
        match &self.finished {
            Ok(()) => writeln!(f, "  finished: everything arrived")?,
            Err(missing) => writeln!(f, "  NOT FINISHED: {missing}")?,
        }
        let killed = self.recoveries.len();
        let survived = self.recoveries.iter().filter(|r| r.ready_after.is_some()).count();
        writeln!(f, "  kills survived: {survived} of {killed} SIGKILLs")?;
        for service in SERVICES {
            let (k, s) = self.kills(service);
            let times: Vec<String> = self
                .recoveries
                .iter()
                .filter(|r| r.service == service)
                .map(|r| match r.ready_after {
                    Some(d) if r.group_rejoins > 0.0 => format!("{} ({} re-joins)", secs(d), r.group_rejoins),
                    Some(d) => secs(d),
                    None => format!("never ({})", r.last_not_ready),
                })
                .collect();
            writeln!(f, "    {service}: {s} of {k}, ready again after {}", times.join(", "))?;
        }
        let waited: Vec<String> = self
            .recoveries
            .iter()
            .filter(|r| r.ready_after.is_some_and(|d| d >= Duration::from_secs(20)))
            .map(|r| format!("{} at {}: \"{}\"", r.service, secs(r.killed_at), r.last_not_ready))
            .collect();
        if !waited.is_empty() {
            writeln!(f, "    waited 20 s or more (tansu keeps a killed member's session 30 s): {}", waited.join("; "))?;
        }
        for o in &self.outages {
            writeln!(f, "  {} SIGKILLed at {}, answering again after {}", o.what, secs(o.at), secs(o.down_for))?;
        }
        for (service, log) in &self.unexpected_exits {
            writeln!(f, "  {service} EXITED BY ITSELF:\n{log}")?;
        }
        writeln!(
            f,
            "  input topic: {} records for {} lines ({} chunks re-sent)",
            self.input_records, self.lines_sent, self.chunks_resent
        )?;
        writeln!(f, "  lines lost: {}", self.lines_lost)?;
        writeln!(
            f,
            "  lines counted twice: {} (FINAL), reports count {} lines for {} sent",
            self.lines_counted_twice, self.report_lines.found, self.report_lines.expected
        )?;
        writeln!(f, "  lines not sent but stored: {}", self.lines_unexpected)?;
        writeln!(
            f,
            "  rows stored: {} (redeliveries collapsed by FINAL: {})",
            self.physical_rows,
            self.physical_rows.saturating_sub(self.report_lines.expected)
        )?;
        check(f, "net amount (öre)", &self.net_amount_ore)?;
        check(f, "contacts", &self.contacts)?;
        if self.net_by_month.equal() {
            writeln!(f, "  net per month in report_cost_by_month: {} months as sent", self.net_by_month.found.len())?;
        } else {
            check(f, "net per month in report_cost_by_month", &self.net_by_month)?;
        }
        check(f, "findings per rule", &self.findings)?;
        writeln!(f, "  findings counted twice: {}", self.findings_counted_twice)?;
        check(f, "dead letters per reason", &self.dead_letters)?;
        writeln!(f, "  dead letters repeated for one line: {}", self.dead_letters_repeated)?;
        writeln!(
            f,
            "  webhook: {} of {} immediate findings ({} sent twice); digested per rule {}",
            self.immediate.found,
            self.immediate.expected,
            self.immediate_sent_twice,
            if self.digested.equal() {
                "as found".to_string()
            } else {
                format!("{:?} of {:?}", self.digested.found, self.digested.expected)
            }
        )?;
        if !self.digested_twice.is_empty() {
            writeln!(f, "  digests naming a line again (rule, line key: arrivals in s):")?;
            for ((rule, key), at) in &self.digested_twice {
                let at: Vec<String> = at.iter().map(|s| format!("{s:.1}")).collect();
                writeln!(f, "    {rule} {key}: {}", at.join(", "))?;
            }
        }
        writeln!(
            f,
            "  alerts topic: {} records for {} findings",
            self.alert_records,
            self.findings.found.values().sum::<usize>()
        )?;
        writeln!(
            f,
            "  longest time without progress: {} (from {}; ClickHouse held fewer lines than sent and gained none)",
            secs(self.longest_stall.lasted),
            secs(self.longest_stall.from)
        )?;
        let peaks: Vec<String> = self.peak_rss_kib.iter().map(|(p, kib)| format!("{p} {} MiB", kib / 1024)).collect();
        writeln!(f, "  peak RSS: {}", peaks.join(", "))?;
        if let Some(dir) = &self.kept {
            writeln!(f, "  logs and data kept in {}", dir.display())?;
        }
        Ok(())
    }
}

/// A fault at a moment of the stream.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill(&'static str),
    Broker,
    ClickHouse,
}

/// The faults of `plan` at random moments within a stream of `window`.
fn schedule(plan: &Plan, window: Duration) -> VecDeque<(Duration, Fault)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(plan.seed);
    let mut at = |from: f64, to: f64| window.mul_f64(rng.random_range(from..to));
    let mut faults = Vec::new();
    for service in SERVICES {
        for _ in 0..plan.kills_per_service {
            faults.push((at(0.05, 0.9), Fault::Kill(service)));
        }
    }
    for _ in 0..plan.broker_restarts {
        faults.push((at(0.2, 0.8), Fault::Broker));
    }
    for _ in 0..plan.clickhouse_restarts {
        faults.push((at(0.2, 0.8), Fault::ClickHouse));
    }
    faults.sort_by_key(|(at, _)| *at);
    faults.into()
}

/// One incarnation of a service.
struct Running {
    process: Process,
    started_at: Duration,
    ready_at: Option<Duration>,
    /// The kill it replaces: index into the recoveries.
    recovering: Option<usize>,
    last_not_ready: String,
}

/// What the fault-injecting thread saw.
#[derive(Default)]
struct Injected {
    recoveries: Vec<Recovery>,
    outages: Vec<Outage>,
    unexpected_exits: Vec<(&'static str, String)>,
    peak_rss_kib: BTreeMap<&'static str, u64>,
}

/// Runs the faults on its own thread (starting and killing processes
/// blocks): services' readiness and memory sampled every 250 ms, faults
/// injected when due. Returns once `stop` is set, with everything still
/// running (the caller drops it).
struct Injector {
    env: Env,
    started: Instant,
    services: BTreeMap<&'static str, Running>,
    injected: Injected,
    verbose: bool,
}

impl Injector {
    fn note(&self, text: &str) {
        if self.verbose {
            eprintln!("[chaos {:>6.1} s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    fn peak(&mut self, name: &'static str, kib: Option<u64>) {
        if let Some(kib) = kib {
            let peak = self.injected.peak_rss_kib.entry(name).or_default();
            *peak = (*peak).max(kib);
        }
    }

    fn launch(&mut self, service: &'static str, recovering: Option<usize>) -> anyhow::Result<()> {
        let process = self.env.spawn_unchecked(service)?;
        let running = Running {
            process,
            started_at: self.started.elapsed(),
            ready_at: None,
            recovering,
            last_not_ready: String::new(),
        };
        self.services.insert(service, running);
        Ok(())
    }

    /// Readiness, exits and memory of every service; the broker's and
    /// ClickHouse's memory.
    fn sample(&mut self) -> anyhow::Result<()> {
        let now = self.started.elapsed();
        let mut exited = Vec::new();
        let mut peaks = Vec::new();
        for (&service, running) in self.services.iter_mut() {
            peaks.push((service, running.process.peak_rss_kib()));
            if !running.process.is_running() {
                exited.push(service);
                continue;
            }
            if running.ready_at.is_some() {
                continue;
            }
            let port = self.env.http_port(service);
            match http_get(port, "/readyz") {
                Ok((200, _)) => {
                    running.ready_at = Some(now);
                    if let Some(index) = running.recovering {
                        let recovery = &mut self.injected.recoveries[index];
                        recovery.ready_after = Some(now.saturating_sub(recovery.killed_at));
                        recovery.last_not_ready = running.last_not_ready.clone();
                        let page = http_get(port, "/metrics").map(|(_, page)| page).unwrap_or_default();
                        recovery.group_rejoins = metric_sum(&page, &format!("distans_{service}_group_rejoins_total"))
                            + metric(&page, &format!("distans_{service}_group_rejoins_total")).unwrap_or(0.0);
                    }
                }
                Ok((status, body)) => running.last_not_ready = format!("{status} {}", body.trim()),
                Err(error) => running.last_not_ready = format!("no answer: {error}"),
            }
        }
        for (service, kib) in peaks {
            self.peak(service, kib);
        }
        let broker = self.env.broker.process().and_then(Process::peak_rss_kib);
        self.peak("tansu", broker);
        let clickhouse = self.env.clickhouse.process().and_then(Process::peak_rss_kib);
        self.peak("clickhouse", clickhouse);
        for service in exited {
            let running = self.services.remove(service).expect("sampled");
            let log = running.process.log_tail(30);
            self.note(&format!("{service} exited by itself; restarting it"));
            self.injected.unexpected_exits.push((service, log));
            self.launch(service, running.recovering)?;
        }
        Ok(())
    }

    /// Injects `fault` now, or returns false when it must wait (the service
    /// not yet ready after its previous kill).
    fn inject(&mut self, fault: Fault) -> anyhow::Result<bool> {
        let now = self.started.elapsed();
        match fault {
            Fault::Kill(service) => {
                let running = self.services.get_mut(service).context("service not running")?;
                let up_long_enough = running.ready_at.is_some_and(|ready| now.saturating_sub(ready) >= MIN_UP);
                if !up_long_enough && now.saturating_sub(running.started_at) < MAX_DEFER {
                    return Ok(false);
                }
                let kib = running.process.peak_rss_kib();
                running.process.kill();
                self.peak(service, kib);
                self.injected.recoveries.push(Recovery {
                    service,
                    killed_at: now,
                    ready_after: None,
                    last_not_ready: String::new(),
                    group_rejoins: 0.0,
                });
                let index = self.injected.recoveries.len() - 1;
                self.note(&format!("SIGKILL {service}, restarting it at once"));
                self.launch(service, Some(index))?;
            }
            Fault::Broker => {
                self.note("SIGKILL tansu");
                self.env.broker.kill();
                std::thread::sleep(Duration::from_secs(1));
                self.env.broker.restart()?;
                let down_for = self.started.elapsed() - now;
                self.note(&format!("tansu answers again after {}", secs(down_for)));
                self.injected.outages.push(Outage { what: "tansu", at: now, down_for });
            }
            Fault::ClickHouse => {
                self.note("SIGKILL ClickHouse");
                let kib = self.env.clickhouse.process().and_then(Process::peak_rss_kib);
                self.peak("clickhouse", kib);
                self.env.clickhouse.kill();
                self.env.clickhouse.restart()?;
                let down_for = self.started.elapsed() - now;
                self.note(&format!("ClickHouse answers again after {}", secs(down_for)));
                self.injected.outages.push(Outage { what: "clickhouse", at: now, down_for });
            }
        }
        Ok(true)
    }

    fn drive(
        mut self,
        mut faults: VecDeque<(Duration, Fault)>,
        faults_done: &AtomicBool,
        stop: &AtomicBool,
    ) -> anyhow::Result<(Env, BTreeMap<&'static str, Running>, Injected)> {
        loop {
            self.sample()?;
            if let Some(&(at, fault)) = faults.front() {
                if at <= self.started.elapsed() {
                    faults.pop_front();
                    if !self.inject(fault)? {
                        // Not ready yet after its previous kill: try again in a second.
                        let later = self.started.elapsed() + Duration::from_secs(1);
                        let index = faults.iter().position(|(at, _)| *at > later).unwrap_or(faults.len());
                        faults.insert(index, (later, fault));
                    }
                    continue;
                }
            } else {
                // Done once every service came back from its last kill (or
                // had MAX_DEFER to): each recovery is measured.
                let now = self.started.elapsed();
                let back = self
                    .services
                    .values()
                    .all(|r| r.ready_at.is_some() || now.saturating_sub(r.started_at) >= MAX_DEFER);
                if back {
                    faults_done.store(true, Ordering::SeqCst);
                }
            }
            if stop.load(Ordering::SeqCst) {
                // The last incarnations' memory.
                self.sample()?;
                return Ok((self.env, self.services, self.injected));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Identity {
    seller_org_number: String,
    invoice_id: String,
    line_number: u32,
}

/// The rules the streaming detector judges (the review, judged in
/// ClickHouse, is off in the chaos run).
fn streaming(rule_id: &str) -> bool {
    !matches!(Rule::by_id(rule_id), Some(Rule { judged: Judged::InClickHouse, .. }))
}

fn immediate(rule_id: &str) -> bool {
    Rule::by_id(rule_id).is_some_and(|r| r.severity >= Severity::High)
}

/// What reached the webhook.
#[derive(Debug, Default)]
struct Webhook {
    immediate: BTreeMap<String, usize>,
    digested: BTreeMap<String, usize>,
    /// When (seconds into the run) a digest named each (rule, line key).
    digested_keys: BTreeMap<(String, String), Vec<f64>>,
}

impl Webhook {
    /// Takes the messages received so far, each with when it arrived.
    fn take(&mut self, rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Duration, String)>) {
        while let Ok((arrived, body)) = rx.try_recv() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&body) else { continue };
            match message["kind"].as_str() {
                Some("finding") => {
                    *self
                        .immediate
                        .entry(message["finding_id"].as_str().unwrap_or_default().to_string())
                        .or_default() += 1
                }
                Some("digest") => {
                    let rule = message["rule_id"].as_str().unwrap_or_default().to_string();
                    *self.digested.entry(rule.clone()).or_default() +=
                        message["findings"].as_u64().unwrap_or(0) as usize;
                    for key in message["line_keys"].as_array().into_iter().flatten() {
                        let key = key.as_str().unwrap_or_default().to_string();
                        self.digested_keys.entry((rule.clone(), key)).or_default().push(arrived.as_secs_f64());
                    }
                }
                _ => {}
            }
        }
    }
}

/// Records on `topic`: the sum of its partitions' high watermarks.
fn topic_records(settings: &distans_runtime::Settings, topic: &str) -> anyhow::Result<i64> {
    let config = distans_runtime::kafka::client_config(&settings.kafka, &[("group.id", "distans-chaos-count")]);
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut records = 0;
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
        records += high - low;
    }
    Ok(records)
}

/// Runs `plan` over `input` on a fresh broker and ClickHouse and returns
/// the figures; an error only when the run itself could not be carried out
/// (a process that cannot be started, a query that fails at the end).
/// `verbose`: each fault and wait on stderr as it happens.
pub async fn run(plan: &Plan, input: &Input, verbose: bool) -> anyhow::Result<Figures> {
    let mut env = Env::start()?;
    env.extra_variables.extend(plan.variables.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    env.webhook_url = Some(format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port()));
    let (bodies, mut arriving) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(crate::webhook(listener, vec![], bodies));
    let settings = env.settings();
    let client = env.clickhouse.client();
    let summary = &input.summary;

    // All four up and ready before the first line.
    let started = Instant::now();
    let (stamped, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(body) = arriving.recv().await {
            let _ = stamped.send((started.elapsed(), body));
        }
    });
    let env = tokio::task::spawn_blocking(move || -> anyhow::Result<(Env, BTreeMap<&'static str, Running>)> {
        let mut services = BTreeMap::new();
        for service in SERVICES {
            let process = env.spawn(service)?;
            let running = Running {
                process,
                started_at: Duration::ZERO,
                ready_at: Some(Duration::ZERO),
                recovering: None,
                last_not_ready: String::new(),
            };
            services.insert(service, running);
        }
        Ok((env, services))
    })
    .await??;
    let (env, services) = env;
    let window = plan.chunk_pause * plan.chunks as u32;
    let faults = schedule(plan, window);
    let faults_done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let injector = Injector { env, started, services, injected: Injected::default(), verbose };
    let injector = {
        let (faults_done, stop) = (faults_done.clone(), stop.clone());
        std::thread::spawn(move || injector.drive(faults, &faults_done, &stop))
    };

    // Progress: ClickHouse's line count against the valid lines sent so far.
    let valid_sent = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (client, valid_sent, sampling) = (client.clone(), valid_sent.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut longest = Stall::default();
            let mut since: Option<(Duration, u64)> = None;
            let mut noted = Duration::ZERO;
            while sampling.load(Ordering::SeqCst) {
                let now = started.elapsed();
                let stored = distans_store::queries::current_line_count(&client, None).await;
                let sent = valid_sent.load(Ordering::SeqCst);
                if verbose && now >= noted + Duration::from_secs(10) {
                    noted = now;
                    let stored = stored.as_ref().map_or_else(|e| format!("? ({e})"), u64::to_string);
                    eprintln!(
                        "[chaos {:>6.1} s] ClickHouse holds {stored} of the {sent} valid lines sent",
                        now.as_secs_f64()
                    );
                }
                let stored = stored.ok();
                since = match (since, stored) {
                    (_, Some(stored)) if stored >= sent => None,
                    (Some((_, before)), Some(stored)) if stored > before => Some((now, stored)),
                    (None, Some(stored)) => Some((now, stored)),
                    (None, None) => Some((now, 0)),
                    (kept, _) => kept,
                };
                if let Some((from, _)) = since {
                    let lasted = now - from;
                    if lasted > longest.lasted {
                        longest = Stall { from, lasted };
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            longest
        })
    };

    // The stream: chunk after chunk; a chunk the producer gave up on (the
    // broker down longer than its 30 s) is sent again.
    let chunk_size = input.lines.len().div_ceil(plan.chunks.max(1));
    let mut chunks_resent = 0;
    for (index, chunk) in input.lines.chunks(chunk_size).enumerate() {
        let next = started + plan.chunk_pause * index as u32;
        tokio::time::sleep_until(next.into()).await;
        while let Err(error) = produce::produce_lines(&settings, chunk, false).await {
            chunks_resent += 1;
            if verbose {
                eprintln!("[chaos] chunk {index} not acknowledged ({error:#}); sending it again");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let valid = input.invalid[index * chunk_size..][..chunk.len()].iter().filter(|i| !**i).count();
        valid_sent.fetch_add(valid as u64, Ordering::SeqCst);
    }
    if verbose {
        eprintln!("[chaos {:>6.1} s] all {} lines sent", started.elapsed().as_secs_f64(), input.lines.len());
    }
    while !faults_done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Everything must arrive: lines, findings, dead letters, aggregates, webhook.
    let expected_findings: BTreeMap<String, usize> =
        summary.expected_findings.iter().filter(|(rule, _)| streaming(rule)).map(|(r, n)| (r.clone(), *n)).collect();
    let findings_total: usize = expected_findings.values().sum();
    let immediate_total: usize = expected_findings.iter().filter(|(r, _)| immediate(r)).map(|(_, n)| n).sum();
    let digested_expected: BTreeMap<String, usize> =
        expected_findings.iter().filter(|(r, _)| !immediate(r)).map(|(r, n)| (r.clone(), *n)).collect();
    let mut webhook = Webhook::default();
    let finished = poll_until("everything to arrive", plan.settle_timeout, async || {
        let lines = distans_store::queries::current_line_count(&client, None).await?;
        anyhow::ensure!(lines >= summary.valid as u64, "{lines} of {} lines in ClickHouse", summary.valid);
        let findings: usize = crate::findings_by_rule(&client).await?.values().sum();
        anyhow::ensure!(findings >= findings_total, "{findings} of {findings_total} findings in ClickHouse");
        let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(30))?;
        anyhow::ensure!(letters.len() >= summary.invalid, "{} of {} dead letters", letters.len(), summary.invalid);
        anyhow::ensure!(distans_store::queries::aggregates_fresh(&client).await?, "the aggregates are not fresh yet");
        webhook.take(&mut received);
        let digested: usize = webhook.digested.values().sum();
        anyhow::ensure!(
            webhook.immediate.len() >= immediate_total && digested >= findings_total - immediate_total,
            "webhook: {} of {immediate_total} immediate, {digested} of {} digested",
            webhook.immediate.len(),
            findings_total - immediate_total
        );
        Ok(())
    })
    .await
    .map_err(|e| format!("{e:#}"));
    if verbose {
        eprintln!("[chaos {:>6.1} s] settled: {finished:?}", started.elapsed().as_secs_f64());
    }
    // Late duplicates land, then the comparison.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sampling.store(false, Ordering::SeqCst);
    let longest_stall = sampler.await?;
    webhook.take(&mut received);

    let expected_ids: BTreeSet<(String, String, u32)> = input
        .lines
        .iter()
        .zip(&input.invalid)
        .filter(|(_, invalid)| !**invalid)
        .map(|(l, _)| (l.seller_org_number.clone(), l.invoice_id.clone(), l.line_number as u32))
        .collect();
    let stored: Vec<Identity> = client
        .query("SELECT seller_org_number, invoice_id, line_number FROM invoice_line_versions FINAL")
        .fetch_all()
        .await?;
    let stored_rows = stored.len() as u64;
    let stored_ids: BTreeSet<(String, String, u32)> =
        stored.into_iter().map(|i| (i.seller_org_number, i.invoice_id, i.line_number)).collect();
    let report_lines: Count = client.query("SELECT sum(lines) AS count FROM agg_monthly").fetch_one().await?;
    let totals = crate::totals(&client).await?;
    let months: Vec<MonthNet> = client
        .query("SELECT substring(toString(month), 1, 7) AS month, sum(net_amount_ore) AS net_amount_ore FROM report_cost_by_month GROUP BY month")
        .fetch_all()
        .await?;
    let findings = crate::findings_by_rule(&client).await?;
    let anomalies: Count =
        client.query("SELECT count() - uniqExact(finding_id) AS count FROM anomalies FINAL").fetch_one().await?;
    let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(60))?;
    let keys: BTreeSet<&[u8]> = letters.iter().filter_map(|l| l.source_key.as_deref()).collect();
    let per_line: BTreeMap<Vec<u8>, &distans_wire::DeadLetter> =
        letters.iter().map(|l| (l.source_key.clone().unwrap_or_default(), l)).collect();
    let once: Vec<distans_wire::DeadLetter> = per_line.values().map(|l| (*l).clone()).collect();
    let input_records = topic_records(&settings, &settings.topics.input)?;
    let physical_rows = crate::physical_rows(&client).await?;
    let alert_records = topic_records(&settings, &settings.topics.alerts)?;

    stop.store(true, Ordering::SeqCst);
    let (env, services, injected) = injector.join().map_err(|_| anyhow::anyhow!("the fault thread panicked"))??;
    drop(services);
    let Env { dir, broker, clickhouse, .. } = env;
    drop((broker, clickhouse));
    let kept = plan.keep_dir.then(|| dir.keep());

    Ok(Figures {
        lines_sent: input.lines.len(),
        input_records,
        chunks_resent,
        finished,
        seconds: started.elapsed().as_secs_f64(),
        recoveries: injected.recoveries,
        outages: injected.outages,
        unexpected_exits: injected.unexpected_exits,
        lines_lost: expected_ids.difference(&stored_ids).count(),
        lines_unexpected: stored_ids.difference(&expected_ids).count(),
        lines_counted_twice: stored_rows - stored_ids.len() as u64,
        report_lines: Compared { expected: summary.valid as u64, found: report_lines.count },
        physical_rows,
        net_amount_ore: Compared { expected: summary.valid_net_amount_ore, found: totals.net_amount_ore },
        contacts: Compared { expected: summary.valid_contacts, found: totals.contacts },
        net_by_month: Compared {
            expected: summary.valid_net_by_month.clone(),
            found: months.into_iter().map(|m| (m.month, m.net_amount_ore)).collect(),
        },
        findings: Compared { expected: expected_findings, found: findings },
        findings_counted_twice: anomalies.count,
        dead_letters: Compared {
            expected: summary.invalid_by_reason.clone(),
            found: dead_letters::count_by_reason(&once),
        },
        dead_letters_repeated: letters.len() - keys.len(),
        immediate: Compared { expected: immediate_total, found: webhook.immediate.len() },
        immediate_sent_twice: webhook.immediate.values().map(|n| n - 1).sum(),
        digested: Compared { expected: digested_expected, found: webhook.digested },
        digested_twice: webhook.digested_keys.into_iter().filter(|(_, at)| at.len() > 1).collect(),
        alert_records,
        longest_stall,
        peak_rss_kib: injected.peak_rss_kib,
        kept,
    })
}
