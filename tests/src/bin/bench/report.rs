//! What one run of the bench measured, its summary over the repetitions
//! (min, median, max), the targets of issue 15 judged on it, the final
//! table and the JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// One stage of one repetition: `lines` through it in `seconds` (its
/// window: from the first record read to the last output acknowledged or
/// queryable), and the CPU seconds each watched process used over
/// `cpu_window_seconds` (the same window, or longer where said).
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub lines: usize,
    pub seconds: f64,
    pub lines_per_second: f64,
    pub cpu_window_seconds: f64,
    pub cpu_seconds: BTreeMap<String, f64>,
}

impl Stage {
    pub fn new(lines: usize, seconds: f64, cpu_window_seconds: f64, cpu_seconds: BTreeMap<String, f64>) -> Stage {
        Stage { lines, seconds, lines_per_second: lines as f64 / seconds.max(1e-9), cpu_window_seconds, cpu_seconds }
    }

    /// CPU seconds per 100 000 lines of each process.
    pub fn cpu_per_100k(&self) -> BTreeMap<String, f64> {
        self.cpu_seconds.iter().map(|(p, s)| (p.clone(), s * 100_000.0 / self.lines.max(1) as f64)).collect()
    }
}

/// Produce → queryable at a steady rate: the lines stamped when handed to
/// the producer and found in ClickHouse by polling, in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Lines per second asked for, and produced in fact (valid and invalid).
    pub rate: f64,
    pub achieved_rate: f64,
    /// Valid lines stamped; found queryable; not found before the wait ended.
    pub stamped: usize,
    pub found: usize,
    pub not_found: usize,
    /// How often ClickHouse was polled (a line's latency is the start of
    /// the first poll that found it, minus its stamp).
    pub poll_interval_ms: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One repetition: a fresh broker and ClickHouse, every stage in turn.
#[derive(Debug, Default, Serialize)]
pub struct Repetition {
    pub number: usize,
    pub stages: BTreeMap<String, Stage>,
    pub latency: Option<Latency>,
    /// Peak resident memory (VmHWM) of each process, KiB; a service's is
    /// the larger of its run alone and its run end to end.
    pub peak_rss_kib: BTreeMap<String, u64>,
    /// Other figures, in seconds: how long the detector took to rebuild
    /// its state at its restart, end to end until every service caught up
    /// (not only the sink), the aggregates current after the last line.
    pub notes: BTreeMap<String, f64>,
    /// Why the repetition stopped, if it did: its stages so far are kept
    /// but left out of the summary.
    pub error: Option<String>,
}

impl Repetition {
    pub fn peak(&mut self, process: &str, kib: Option<u64>) {
        if let Some(kib) = kib {
            let peak = self.peak_rss_kib.entry(process.to_string()).or_default();
            *peak = (*peak).max(kib);
        }
    }
}

/// What a stage's figure is judged against.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// The 100 %: the broker's raw consume rate.
    Reference,
    /// Shown beside the others, no target.
    Info,
    /// At least this share of the raw consume rate.
    ShareOfRaw(f64),
    /// At least this share of the raw consume rate, and faster than Python.
    ShareOfRawAndPython(f64),
}

pub struct StageSpec {
    pub id: &'static str,
    pub label: &'static str,
    pub goal: Goal,
    /// The raw consume stage of the topic this stage reads, where it is
    /// not the input topic's: the sink and the detector read the valid
    /// topic, which the ingester wrote in its own batches.
    pub reads: Option<&'static str>,
}

pub const RAW: &str = "raw_consume_input";
pub const RAW_VALID: &str = "raw_consume_valid";
pub const PYTHON: &str = "python";

/// The stages, in the order of the table.
pub const STAGES: &[StageSpec] = &[
    StageSpec { id: RAW, label: "broker raw consume, invoice-lines (the limit)", goal: Goal::Reference, reads: None },
    StageSpec { id: RAW_VALID, label: "broker raw consume, invoice-lines.valid", goal: Goal::Info, reads: None },
    StageSpec { id: PYTHON, label: "plain Python pipeline", goal: Goal::Info, reads: None },
    StageSpec { id: "ingester", label: "distans ingester alone", goal: Goal::ShareOfRaw(0.90), reads: None },
    StageSpec { id: "sink", label: "distans sink alone", goal: Goal::ShareOfRaw(0.90), reads: Some(RAW_VALID) },
    StageSpec { id: "detector", label: "distans detector alone", goal: Goal::ShareOfRaw(0.90), reads: Some(RAW_VALID) },
    StageSpec {
        id: "end_to_end",
        label: "distans end to end (produce → queryable)",
        goal: Goal::ShareOfRawAndPython(0.80),
        reads: None,
    },
    StageSpec { id: "produce", label: "distans produce, acks=all (bench)", goal: Goal::Info, reads: None },
    StageSpec { id: "ingester_logic", label: "ingester logic in process, 1 core", goal: Goal::Info, reads: None },
];

/// The services whose peak resident memory has a target.
pub const SERVICES: &[&str] = &["ingester", "sink", "detector"];
/// Memory target per service, bytes (100 MB).
pub const RSS_TARGET_BYTES: f64 = 100e6;
/// Latency target: produce → queryable p99, seconds.
pub const P99_TARGET_SECONDS: f64 = 1.0;
/// The processes of the CPU table, in its order.
pub const PROCESSES: &[&str] = &["ingester", "sink", "detector", "tansu", "clickhouse", "python", "bench"];

/// The smallest, middle and largest of some figures (the median of an even
/// count is the mean of the middle two).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { min: v[0], median, max: v[n - 1] })
    }
}

#[derive(Debug, Serialize)]
pub struct StageSummary {
    pub lines_per_second: Spread,
    /// The stage's rate over the raw consume rate of the same repetition.
    pub share_of_raw: Option<Spread>,
    /// The stage's rate over the Python pipeline's of the same repetition.
    pub times_python: Option<Spread>,
    /// The stage's rate over the raw consume rate of the topic it reads
    /// (the valid topic for the sink and the detector), same repetition.
    pub share_of_own_topic_raw: Option<Spread>,
    pub cpu_seconds_per_100k_lines: BTreeMap<String, Spread>,
}

#[derive(Debug, Serialize)]
pub struct Judged {
    pub target: String,
    pub figure: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    /// Repetitions that ran every stage (the others are left out).
    pub repetitions: usize,
    pub stages: BTreeMap<String, StageSummary>,
    pub latency_p50: Option<Spread>,
    pub latency_p90: Option<Spread>,
    pub latency_p99: Option<Spread>,
    pub latency_max: Option<Spread>,
    /// The largest peak of each process over the repetitions, MB (10^6 bytes).
    pub peak_rss_mb: BTreeMap<String, f64>,
    pub targets: Vec<Judged>,
}

fn ratio(reps: &[&Repetition], stage: &str, reference: &str) -> Option<Spread> {
    Spread::of(
        reps.iter()
            .filter_map(|r| Some(r.stages.get(stage)?.lines_per_second / r.stages.get(reference)?.lines_per_second)),
    )
}

pub fn summarise(repetitions: &[Repetition]) -> Summary {
    let reps: Vec<&Repetition> = repetitions.iter().filter(|r| r.error.is_none()).collect();
    let mut stages = BTreeMap::new();
    for spec in STAGES {
        let Some(rates) = Spread::of(reps.iter().filter_map(|r| Some(r.stages.get(spec.id)?.lines_per_second))) else {
            continue;
        };
        let mut cpu = BTreeMap::new();
        for process in PROCESSES {
            let values = reps.iter().filter_map(|r| r.stages.get(spec.id)?.cpu_per_100k().get(*process).copied());
            if let Some(spread) = Spread::of(values) {
                cpu.insert(process.to_string(), spread);
            }
        }
        let summary = StageSummary {
            lines_per_second: rates,
            share_of_raw: ratio(&reps, spec.id, RAW),
            times_python: ratio(&reps, spec.id, PYTHON),
            share_of_own_topic_raw: spec.reads.and_then(|raw| ratio(&reps, spec.id, raw)),
            cpu_seconds_per_100k_lines: cpu,
        };
        stages.insert(spec.id.to_string(), summary);
    }
    let latency = |f: fn(&Latency) -> f64| Spread::of(reps.iter().filter_map(|r| r.latency.as_ref().map(f)));
    let mut peak_rss_mb = BTreeMap::new();
    for r in &reps {
        for (process, kib) in &r.peak_rss_kib {
            let mb = *kib as f64 * 1024.0 / 1e6;
            let peak: &mut f64 = peak_rss_mb.entry(process.clone()).or_default();
            *peak = peak.max(mb);
        }
    }
    let mut summary = Summary {
        repetitions: reps.len(),
        stages,
        latency_p50: latency(|l| l.p50),
        latency_p90: latency(|l| l.p90),
        latency_p99: latency(|l| l.p99),
        latency_max: latency(|l| l.max),
        peak_rss_mb,
        targets: Vec::new(),
    };
    summary.targets = judge(&summary);
    summary
}

/// Issue 15's targets through the broker, judged on the medians (memory on
/// the largest peak).
fn judge(summary: &Summary) -> Vec<Judged> {
    let mut judged = Vec::new();
    for spec in STAGES {
        let Some(stage) = summary.stages.get(spec.id) else { continue };
        let share = stage.share_of_raw.map(|s| s.median);
        let (Goal::ShareOfRaw(goal) | Goal::ShareOfRawAndPython(goal)) = spec.goal else { continue };
        if let Some(share) = share {
            judged.push(Judged {
                target: format!("{}: ≥ {:.0} % of raw consume", spec.label, goal * 100.0),
                figure: format!("{:.0} %", share * 100.0),
                met: share >= goal,
            });
        }
        if let (Goal::ShareOfRawAndPython(_), Some(times)) = (spec.goal, stage.times_python) {
            judged.push(Judged {
                target: format!("{}: faster than the Python pipeline", spec.label),
                figure: format!("{:.2} × Python", times.median),
                met: times.median > 1.0,
            });
        }
    }
    if let Some(p99) = summary.latency_p99 {
        judged.push(Judged {
            target: format!("latency produce → queryable: p99 < {P99_TARGET_SECONDS} s"),
            figure: format!("{:.2} s", p99.median),
            met: p99.median < P99_TARGET_SECONDS,
        });
    }
    for service in SERVICES {
        if let Some(mb) = summary.peak_rss_mb.get(*service) {
            judged.push(Judged {
                target: format!("{service}: peak RSS < {:.0} MB", RSS_TARGET_BYTES / 1e6),
                figure: format!("{mb:.0} MB"),
                met: mb * 1e6 < RSS_TARGET_BYTES,
            });
        }
    }
    judged
}

/// `1234567.8` as `1 234 568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "NOT MET"
    }
}

/// The final table: every stage side by side, the ratios, the CPU per
/// process, latency, memory and the targets.
pub fn table(summary: &Summary, lines: usize, latency_rate: f64) -> String {
    let mut out = String::new();
    let w = 46;
    let _ = writeln!(
        out,
        "\nthroughput, {} lines per stage; median [min – max] of {} repetition(s); ratios within each repetition",
        thousands(lines as f64),
        summary.repetitions
    );
    let _ = writeln!(out, "{:<w$} {:>28} {:>20} {:>10}  target", "stage", "lines/s", "% of raw consume", "× Python");
    for spec in STAGES {
        let Some(stage) = summary.stages.get(spec.id) else {
            let _ = writeln!(out, "{:<w$} {:>28}", spec.label, "not measured");
            continue;
        };
        let r = stage.lines_per_second;
        let rate = format!("{} [{} – {}]", thousands(r.median), thousands(r.min), thousands(r.max));
        let share = stage
            .share_of_raw
            .map(|s| format!("{:.0} % [{:.0}–{:.0}]", s.median * 100.0, s.min * 100.0, s.max * 100.0))
            .unwrap_or_default();
        let python = stage.times_python.map(|s| format!("{:.2}", s.median)).unwrap_or_default();
        let target = match spec.goal {
            Goal::Reference => "100 %".to_string(),
            Goal::Info => String::new(),
            Goal::ShareOfRaw(goal) => {
                format!("≥ {:.0} %: {}", goal * 100.0, met(stage.share_of_raw.is_some_and(|s| s.median >= goal)))
            }
            Goal::ShareOfRawAndPython(goal) => format!(
                "≥ {:.0} %: {}; > Python: {}",
                goal * 100.0,
                met(stage.share_of_raw.is_some_and(|s| s.median >= goal)),
                met(stage.times_python.is_some_and(|s| s.median > 1.0))
            ),
        };
        let own = stage
            .share_of_own_topic_raw
            .map(|s| format!("   [{:.0} % of invoice-lines.valid's]", s.median * 100.0))
            .unwrap_or_default();
        let _ = writeln!(out, "{:<w$} {rate:>28} {share:>20} {python:>10}  {target}{own}", spec.label);
    }

    if let (Some(p50), Some(p90), Some(p99), Some(max)) =
        (summary.latency_p50, summary.latency_p90, summary.latency_p99, summary.latency_max)
    {
        let s = |s: Spread| format!("{:.2} s [{:.2}–{:.2}]", s.median, s.min, s.max);
        let _ = writeln!(
            out,
            "\nlatency at a steady {latency_rate:.0} lines/s, produce → queryable: p50 {}, p90 {}, p99 {}, max {}; p99 < {P99_TARGET_SECONDS} s: {}",
            s(p50),
            s(p90),
            s(p99),
            s(max),
            met(p99.median < P99_TARGET_SECONDS)
        );
    }

    let _ = writeln!(out, "\nCPU-seconds per 100 000 lines, per process (median of the repetitions)");
    let _ = write!(out, "{:<w$}", "stage");
    for process in PROCESSES {
        let _ = write!(out, " {process:>10}");
    }
    let _ = writeln!(out, " {:>10}", "total");
    for spec in STAGES {
        let Some(stage) = summary.stages.get(spec.id) else { continue };
        let _ = write!(out, "{:<w$}", spec.label);
        let mut total = 0.0;
        for process in PROCESSES {
            match stage.cpu_seconds_per_100k_lines.get(*process) {
                Some(cpu) => {
                    total += cpu.median;
                    let _ = write!(out, " {:>10.2}", cpu.median);
                }
                None => {
                    let _ = write!(out, " {:>10}", "–");
                }
            }
        }
        let _ = writeln!(out, " {total:>10.2}");
    }

    let _ = write!(out, "\npeak RSS, MB (largest of the repetitions):");
    for (process, mb) in &summary.peak_rss_mb {
        let _ = write!(out, " {process} {mb:.0};");
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "\ntargets (issue 15), judged on the medians, memory on the largest peak:");
    for judged in &summary.targets {
        let _ = writeln!(out, "  {:<8} {:<70} {}", met(judged.met), judged.target, judged.figure);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(raw: f64, python: f64, ingester: f64, rss_mb: u64) -> Repetition {
        let stage = |rate: f64| Stage::new(100_000, 100_000.0 / rate, 1.0, BTreeMap::from([("tansu".into(), 2.0)]));
        Repetition {
            stages: BTreeMap::from([
                (RAW.to_string(), stage(raw)),
                (PYTHON.to_string(), stage(python)),
                ("ingester".to_string(), stage(ingester)),
            ]),
            peak_rss_kib: BTreeMap::from([("ingester".to_string(), rss_mb * 1_000_000 / 1024)]),
            ..Repetition::default()
        }
    }

    #[test]
    fn spreads_take_the_middle() {
        let s = Spread::of([3.0, 1.0, 2.0]).expect("three");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of([1.0, 4.0]).expect("two").median, 2.5);
        assert!(Spread::of([]).is_none());
    }

    #[test]
    fn ratios_are_taken_within_each_repetition_and_judged_on_the_median() {
        // Repetition 2 is slow all round: its ingester is still 95 % of its raw rate.
        let reps = [
            rep(30_000.0, 20_000.0, 24_000.0, 40),
            rep(10_000.0, 8_000.0, 9_500.0, 120),
            rep(30_000.0, 20_000.0, 27_000.0, 50),
        ];
        let summary = summarise(&reps);
        let ingester = &summary.stages["ingester"];
        let share = ingester.share_of_raw.expect("share");
        assert!((share.min - 0.8).abs() < 1e-9 && (share.median - 0.9).abs() < 1e-9 && (share.max - 0.95).abs() < 1e-9);
        assert!((ingester.cpu_seconds_per_100k_lines["tansu"].median - 2.0).abs() < 1e-9);
        let judged: Vec<(&str, bool)> = summary.targets.iter().map(|j| (j.target.as_str(), j.met)).collect();
        assert_eq!(
            judged,
            [("distans ingester alone: ≥ 90 % of raw consume", true), ("ingester: peak RSS < 100 MB", false)]
        );
        let printed = table(&summary, 100_000, 300.0);
        assert!(printed.contains("≥ 90 %: met"), "{printed}");
        assert!(printed.contains("NOT MET  ingester: peak RSS < 100 MB"), "{printed}");
    }

    #[test]
    fn a_failed_repetition_is_left_out() {
        let mut failed = rep(1.0, 1.0, 1.0, 500);
        failed.error = Some("the sink exited".into());
        let summary = summarise(&[rep(30_000.0, 20_000.0, 27_000.0, 40), failed]);
        assert_eq!(summary.repetitions, 1);
        assert_eq!(summary.peak_rss_mb["ingester"].round(), 40.0);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1_234_567.8), "1 234 568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
    }
}
