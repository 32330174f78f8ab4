//! The rule engine at national volume, in process: lines per second with
//! every rule on, and the memory its state takes, in all and by part.
//! Prints figures.
//!
//! usage: distans-bench-rules [LINES]   (default 3 000 000: a year of national volume)
//!
//! The rate counts only the engine's time (`RuleEngine::observe`), not the
//! bench's copying of template lines into new ones; the bench runs on the
//! detector's allocator.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: distans_runtime::Allocator = distans_runtime::Allocator;

use distans_domain::rules::RuleEngine;
use distans_e2e::{arg, Enrichment};
use distans_synth::generate::{self, Options};
use distans_synth::profile;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let total: usize = arg(1, 3_000_000)?;
    let settings = distans_runtime::Settings::load_with_env(None, Some(Default::default()))?;
    let mut rules = settings.detector.rules.clone();
    rules.home_regions.insert(profile::region_org_number("23"), "23".into());
    // One generated region-year, enriched once; copies with other keys and
    // patients stand in for the other regions and years.
    let options = Options::new("23", 2025, 25_000, 7, &rules);
    let generated = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
    let enrichment = Enrichment::new(&settings)?;
    let template: Vec<_> = generated.lines.iter().filter_map(|l| enrichment.enrich(l)).collect();

    let mut engine = RuleEngine::new(rules);
    let before = rss_kib();
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
    let seconds = engine_time.as_secs_f64();
    let after = rss_kib();
    let lines = engine.remembered_lines();
    let per_line = |bytes: usize| bytes as f64 / lines.max(1) as f64;
    println!(
        "rule engine, all rules on: {observed} lines in {seconds:.1} s = {:.0} lines/s",
        observed as f64 / seconds
    );
    println!("findings: {findings}; lines in state: {lines}");
    println!(
        "resident memory: {} MiB before, {} MiB after ({:.0} bytes per line in state)",
        before / 1024,
        after / 1024,
        per_line((after.saturating_sub(before) * 1024) as usize)
    );
    println!("state by part, bytes per line (from the types, allocator overhead not counted):");
    let m = engine.memory();
    for (part, bytes) in [
        ("lines (slots, with spare capacity)", m.lines),
        ("their keys and verdicts on the heap", m.line_heap),
        ("line identities", m.identities),
        ("contacts", m.contacts),
        ("profession and psychologist groups", m.groups),
        ("active findings", m.findings),
        ("all", m.total()),
    ] {
        println!("  {part:<40} {:>5.0}", per_line(bytes));
    }
    Ok(())
}
