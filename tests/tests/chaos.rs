//! The chaos run, short (issue 12): a generated year of 4 000 lines sent
//! over about 80 s while each service is SIGKILLed twice at random moments
//! and restarted at once, and tansu and ClickHouse are SIGKILLed and
//! restarted once each. Everything must arrive, exactly once: lines, sums,
//! findings per rule, dead letters per reason. `make chaos` runs a whole
//! year with more faults and prints the same figures.

use std::collections::BTreeMap;
use std::time::Duration;

use distans_e2e::chaos::{self, Input, Plan, SERVICES};

#[tokio::test(flavor = "multi_thread")]
async fn a_year_through_killed_services_and_restarted_stores_arrives_exactly_once() -> anyhow::Result<()> {
    let input = Input::generate(2025, Some(4_000), 42)?;
    let plan = Plan {
        kills_per_service: 2,
        broker_restarts: 1,
        clickhouse_restarts: 1,
        chunks: 40,
        chunk_pause: Duration::from_secs(2),
        seed: 7,
        settle_timeout: Duration::from_secs(240),
        variables: BTreeMap::new(),
        keep_dir: false,
    };
    let figures = chaos::run(&plan, &input, true).await?;
    eprintln!("{figures}");

    assert_eq!(figures.finished, Ok(()), "everything arrived in time");
    for service in SERVICES {
        assert_eq!(figures.kills(service), (2, 2), "{service} killed twice and ready again each time");
    }
    assert_eq!(figures.outages.len(), 2, "tansu and ClickHouse restarted");
    assert!(figures.unexpected_exits.is_empty(), "no service exited by itself");
    assert_eq!(figures.lines_lost, 0, "no line lost");
    assert_eq!(figures.lines_counted_twice, 0, "no line counted twice");
    assert!(figures.exact(), "totals, findings and dead letters as sent:\n{figures}");
    // The webhook: every finding reached people at least once.
    assert_eq!(figures.immediate.found, figures.immediate.expected);
    for (rule, expected) in &figures.digested.expected {
        assert!(figures.digested.found.get(rule).is_some_and(|n| n >= expected), "digested {rule}: {figures}");
    }
    Ok(())
}
