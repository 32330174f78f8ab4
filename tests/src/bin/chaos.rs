//! `make chaos`: the long chaos run. A whole generated year of Jämtland
//! Härjedalen (23 000 lines) sent over four minutes while each service is
//! SIGKILLed four times at random moments and restarted at once, and tansu
//! and ClickHouse are SIGKILLed and restarted twice each; then the figures:
//! kills survived, lines lost and counted twice, sums, findings per rule,
//! dead letters per reason, the longest time without progress and each
//! process's peak memory. Exits 1 unless everything arrived exactly once.
//!
//! Settings (environment): `CHAOS_LINES` (the region's year), `CHAOS_SEED`
//! (1: the faults' moments; the lines' seed is 42), `CHAOS_KILLS` (4 per
//! service), `CHAOS_STORE_RESTARTS` (2 each), `CHAOS_SECONDS` (240: how long
//! the lines take to send).

use std::collections::BTreeMap;
use std::time::Duration;

use distans_e2e::chaos::{self, Input, Plan};

fn setting(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|e| anyhow::anyhow!("{name}={value}: {e}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lines = std::env::var("CHAOS_LINES").ok().map(|v| v.parse()).transpose()?;
    let input = Input::generate(2025, lines, 42)?;
    let seconds = setting("CHAOS_SECONDS", 240)?;
    let store_restarts = setting("CHAOS_STORE_RESTARTS", 2)? as usize;
    let plan = Plan {
        kills_per_service: setting("CHAOS_KILLS", 4)? as usize,
        broker_restarts: store_restarts,
        clickhouse_restarts: store_restarts,
        chunks: (seconds / 2).max(1) as usize,
        chunk_pause: Duration::from_secs(2),
        seed: setting("CHAOS_SEED", 1)?,
        settle_timeout: Duration::from_secs(600),
        variables: BTreeMap::new(),
        keep_dir: true,
    };
    let s = &input.summary;
    println!(
        "chaos: {} lines ({} valid, {} invalid), {} kills of each service, {} restarts of tansu and of ClickHouse, over {} s",
        s.lines, s.valid, s.invalid, plan.kills_per_service, store_restarts, seconds
    );
    let figures = chaos::run(&plan, &input, true).await?;
    println!("{figures}");
    let survived = figures.recoveries.iter().all(|r| r.ready_after.is_some());
    if figures.finished.is_ok() && figures.exact() && survived && figures.unexpected_exits.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the chaos run found a difference (above)")
    }
}
