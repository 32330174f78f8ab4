//! The rule engine at national volume, in process: lines per second with
//! every rule on, and the memory its state takes. Prints figures.
//!
//! usage: distans-bench-rules [LINES]   (default 3 000 000: a year of national volume)
//!
//! Two runs over the same lines, side by side, each in a process of its
//! own: the engine as the detector replays a topic (room reserved for the
//! topic's records at start, [`RuleEngine::reserve`]), and an engine that
//! grows as the lines come (live lines after the replay). The rate counts
//! only the engine's time (`RuleEngine::observe`), not the bench's copying
//! of template lines into new ones; the bench runs on the detector's
//! allocator.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: distans_runtime::Allocator = distans_runtime::Allocator;

use distans_domain::rules::{RuleEngine, RuleSettings, StateMemory};
use distans_domain::EnrichedLine;
use distans_e2e::{arg, Enrichment};
use distans_synth::generate::{self, Options};
use distans_synth::profile;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// What one run measured.
struct Run {
    lines_per_s: f64,
    findings: usize,
    lines_in_state: usize,
    memory: StateMemory,
}

/// Observes `total` lines made from `template` (copies with other invoice
/// ids and patients stand in for the other regions and years).
fn run(rules: &RuleSettings, template: &[EnrichedLine], total: usize, reserve: bool) -> Run {
    let mut engine = RuleEngine::new(rules.clone());
    if reserve {
        engine.reserve(total);
    }
    let mut engine_time = Duration::ZERO;
    let (mut observed, mut findings, mut copy) = (0usize, 0usize, 0usize);
    while observed < total {
        for line in template.iter().take(total - observed) {
            let mut line = line.clone();
            line.invoice_id = format!("{copy:04}{}", line.invoice_id);
            line.credited_invoice_id = line.credited_invoice_id.map(|c| format!("{copy:04}{c}"));
            // Still 32 hex digits, as the ingester's pseudonyms are.
            line.patient_pseudonym = format!("{copy:04x}{}", line.patient_pseudonym.get(4..).unwrap_or_default());
            let started = Instant::now();
            findings += engine.observe(&line).len();
            engine_time += started.elapsed();
            observed += 1;
        }
        copy += 1;
    }
    Run {
        lines_per_s: observed as f64 / engine_time.as_secs_f64(),
        findings,
        lines_in_state: engine.remembered_lines(),
        memory: engine.memory(),
    }
}

fn main() -> anyhow::Result<()> {
    let total: usize = arg(1, 3_000_000)?;
    match std::env::args().nth(2).as_deref() {
        Some(variant @ ("replay" | "growing")) => return measure(total, variant == "replay"),
        Some(other) => anyhow::bail!("unknown variant {other:?}: replay or growing"),
        None => {}
    }
    // Each variant in a fresh process of its own: the allocator keeps what
    // one run freed, which would make the next look faster and smaller.
    println!("rule engine, all rules on, {total} lines, each variant in a process of its own:");
    let mut outputs = Vec::new();
    for variant in ["replay", "growing"] {
        let output = std::process::Command::new(std::env::current_exe()?)
            .args([total.to_string(), variant.to_string()])
            .output()?;
        anyhow::ensure!(output.status.success(), "{variant}: {}", String::from_utf8_lossy(&output.stderr));
        outputs.push(String::from_utf8(output.stdout)?);
    }
    for output in &outputs {
        print!("{output}");
    }
    let findings: Vec<&str> = outputs.iter().filter_map(|o| o.lines().find(|l| l.contains("findings:"))).collect();
    anyhow::ensure!(findings.len() == 2 && findings[0] == findings[1], "the variants judged differently: {findings:?}");
    Ok(())
}

/// One variant: `reserve` as the detector replaying a topic, or growing
/// as lines come.
fn measure(total: usize, reserve: bool) -> anyhow::Result<()> {
    let settings = distans_runtime::Settings::load_with_env(None, Some(Default::default()))?;
    let mut rules = settings.detector.rules.clone();
    rules.home_regions.insert(profile::region_org_number("23"), "23".into());
    // One generated region-year, enriched once.
    let options = Options::new("23", 2025, 25_000, 7, &rules);
    let generated = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
    let enrichment = Enrichment::new(&settings)?;
    let template: Vec<_> = generated.lines.iter().filter_map(|l| enrichment.enrich(l)).collect();

    let before = rss_kib();
    let run = run(&rules, &template, total, reserve);
    let after = rss_kib();
    let per_line = |bytes: usize| bytes as f64 / run.lines_in_state.max(1) as f64;
    let name = if reserve { "replay (room reserved for the topic's records)" } else { "growing as lines come" };
    println!("{name}: {:.0} lines/s", run.lines_per_s);
    println!("  findings: {}; lines in state: {}", run.findings, run.lines_in_state);
    println!(
        "  resident memory: {} MiB before, {} MiB after ({:.0} bytes per line in state)",
        before / 1024,
        after / 1024,
        per_line((after.saturating_sub(before) * 1024) as usize)
    );
    println!("  state by part, bytes per line (from the types, allocator overhead not counted):");
    let m = run.memory;
    for (part, bytes) in [
        ("lines (slots, with spare capacity)", m.lines),
        ("their keys and verdicts on the heap", m.line_heap),
        ("line identities", m.identities),
        ("contacts", m.contacts),
        ("profession and psychologist groups", m.groups),
        ("active findings", m.findings),
        ("all", m.total()),
    ] {
        println!("    {part:<40} {:>5.0}", per_line(bytes));
    }
    Ok(())
}
