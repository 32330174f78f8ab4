//! End-to-end: generated invoice lines through the real broker, the
//! ingester and the sink binaries, into the real ClickHouse.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use distans_cli::cmd::produce;
use distans_e2e::{
    http_get, metric, metric_at_least, physical_rows, poll_until, wait_for_fresh_aggregates, wait_for_lines, Count,
    Env, MonthNet, Process, Running, Totals,
};
use distans_runtime::dead_letters;
use distans_synth::generate::{self, Generated, Options};
use distans_synth::summary::Summary;
use distans_wire::frame;

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Pseudonym {
    patient_pseudonym: String,
}

const TIMEOUT: Duration = Duration::from_secs(300);

/// How long a SIGKILLed consumer's group membership outlives it (the
/// consumers' 30 s `session.timeout.ms`, and a margin). On tansu 0.6 a
/// consumer that rejoins a group while a SIGKILLed member is still
/// registered was seen never to get an assignment (README); Apache Kafka
/// rebalances either way. Tests that kill a consumer restart it after this,
/// which does not change what they check.
const SESSION_EXPIRY: Duration = Duration::from_secs(32);

/// Lines of one year; different years never share a line key.
fn generated(env: &Env, year: i32, lines: usize, seed: u64, invalid_share: f64) -> Generated {
    let settings = env.settings();
    let mut options = Options::new("23", year, lines, seed, &settings.detector.rules);
    options.invalid_share = invalid_share;
    generate::generate(&options, &settings.tariffs).expect("generates")
}

/// Waits for `lines` lines in ClickHouse ([`wait_for_lines`]). On a timeout
/// prints, for the tansu hang (see README), how many records the restarted
/// `service` of `env` says it consumed and the last lines of each log
/// (name, process, lines), then fails.
async fn wait_for_lines_or_report(
    client: &distans_store::Client,
    lines: u64,
    (env, service): (&Env, &str),
    logs: &[(&str, &Process, usize)],
) -> anyhow::Result<Totals> {
    let error = match wait_for_lines(client, lines, TIMEOUT).await {
        Ok(totals) => return Ok(totals),
        Err(error) => error,
    };
    let consumed = http_get(env.http_port(service), "/metrics")
        .ok()
        .and_then(|(_, page)| metric(&page, &format!("distans_{service}_records_consumed_total")));
    eprintln!("restarted {service} consumed {consumed:?} records");
    for (name, process, tail) in logs {
        eprintln!("{name} log:\n{}", process.log_tail(*tail));
    }
    Err(error)
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_lines_reach_clickhouse_and_invalid_ones_the_dead_letters() -> anyhow::Result<()> {
    let Running { env, settings, client, services: [_ingester, _sink] } = Env::start()?.run(["ingester", "sink"])?;

    let data = generated(&env, 2025, 3_000, 11, 0.03);
    produce::produce_lines(&settings, &data.lines, false).await?;
    // Records that are not invoice lines at all.
    let garbage = vec![
        (b"g1".to_vec(), b"not avro at all".to_vec()), // no magic byte
        (b"g2".to_vec(), frame(77, &[2, 4, 6])),       // unknown schema id
        (b"g3".to_vec(), frame(1, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00])), // malformed datum
        (b"g4".to_vec(), frame(2, &[0])),              // an enriched-line id on the input topic
    ];
    produce::send(&settings, &settings.topics.input, garbage, false).await?;

    let summary = &data.summary;
    let totals = wait_for_lines(&client, summary.valid as u64, TIMEOUT).await?;
    assert_eq!(totals.lines, summary.valid as u64, "exactly the valid lines");
    assert_eq!(totals.net_amount_ore, summary.valid_net_amount_ore, "net amounts add up");
    assert_eq!(totals.contacts, summary.valid_contacts, "contacts add up, credit notes netted");

    // Every invalid line and every garbage record is a dead letter with its reason.
    let mut expected: BTreeMap<String, usize> = summary.invalid_by_reason.clone();
    for reason in ["bad_wire_header", "unknown_schema_id", "malformed_avro", "unknown_schema_id"] {
        *expected.entry(reason.to_string()).or_default() += 1;
    }
    let expected_count: usize = expected.values().sum();
    let letters = poll_until("all dead letters", TIMEOUT, async || {
        let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(30))?;
        anyhow::ensure!(letters.len() >= expected_count, "{} of {expected_count} dead letters", letters.len());
        Ok(letters)
    })
    .await?;
    assert_eq!(dead_letters::count_by_reason(&letters), expected);
    for letter in &letters {
        assert_eq!(letter.stage, "ingester");
        assert_eq!(letter.source_topic, settings.topics.input);
        assert!(!letter.original.is_empty() || letter.reason_code == "bad_wire_header");
    }
    let garbage_letter = letters.iter().find(|l| l.source_key.as_deref() == Some(b"g1")).expect("g1 dead-lettered");
    assert_eq!(garbage_letter.original, b"not avro at all");

    // No clear-text patient id reaches ClickHouse.
    let pseudonyms: Vec<Pseudonym> =
        client.query("SELECT patient_pseudonym FROM invoice_line_versions").fetch_all().await?;
    let pseudonyms: Vec<String> = pseudonyms.into_iter().map(|p| p.patient_pseudonym).collect();
    let clear: HashSet<&str> = data.lines.iter().map(|l| l.patient_id.as_str()).collect();
    assert!(!pseudonyms.is_empty());
    for p in &pseudonyms {
        assert!(p.len() == 32 && p.bytes().all(|b| b.is_ascii_hexdigit()), "pseudonym {p:?}");
        assert!(!clear.contains(p.as_str()));
    }

    // Reference data for names in reports: every county, every configured
    // profession, and the tariffs of the latest load.
    for (table, expected) in [
        ("ref_counties FINAL", 21),
        ("ref_professions FINAL", settings.tariffs.professions.len()),
        ("ref_tariffs_current", settings.tariffs.entries.len()),
    ] {
        let count: Count = client.query(&format!("SELECT count() AS count FROM {table}")).fetch_one().await?;
        assert_eq!(count.count as usize, expected, "{table}");
    }

    // The BI user reads, and cannot write.
    let bi = env.clickhouse.client().with_user("bi").with_password("bi");
    let count: Count = bi.query("SELECT count() AS count FROM invoice_lines_current").fetch_one().await?;
    assert_eq!(count.count, summary.valid as u64);
    let write =
        bi.query("INSERT INTO ref_counties (county_code, name, loaded_at) VALUES ('99', 'x', now())").execute().await;
    assert!(write.is_err(), "the BI user must not write");
    assert!(bi.query("CREATE TABLE x (a UInt8) ENGINE = TinyLog").execute().await.is_err());

    // The ingester's metrics agree.
    let (status, page) = http_get(env.ingester_http, "/metrics")?;
    assert_eq!(status, 200);
    assert_eq!(metric(&page, "distans_ingester_records_consumed_total"), Some((summary.lines + 4) as f64));
    assert_eq!(metric(&page, "distans_ingester_lines_valid_total"), Some(summary.valid as f64));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn services_killed_mid_stream_lose_nothing_and_count_nothing_twice() -> anyhow::Result<()> {
    let env = Env::start()?;
    let settings = env.settings();
    let first = generated(&env, 2024, 4_000, 12, 0.01);
    let second = generated(&env, 2025, 4_000, 13, 0.01);
    let client = env.clickhouse.client();

    let mut ingester = env.spawn("ingester")?;
    let mut sink = env.spawn("sink")?;
    produce::produce_lines(&settings, &first.lines, false).await?;
    // Let part of the stream through, then SIGKILL both: nothing is flushed
    // or committed on the way out.
    wait_for_lines(&client, 1, TIMEOUT).await?;
    sink.kill();
    ingester.kill();
    let at_kill = distans_e2e::totals(&client).await?.lines;
    // More lines arrive while both are down.
    produce::produce_lines(&settings, &second.lines, false).await?;
    // Restart once the killed members' sessions have expired (tansu, see
    // SESSION_EXPIRY).
    tokio::time::sleep(SESSION_EXPIRY).await;

    let restarted_ingester = env.spawn("ingester")?;
    let restarted_sink = env.spawn("sink")?;
    let valid = (first.summary.valid + second.summary.valid) as u64;
    let totals = wait_for_lines_or_report(
        &client,
        valid,
        (&env, "ingester"),
        &[("ingester", &restarted_ingester, 40), ("sink", &restarted_sink, 20)],
    )
    .await?;
    // Give redeliveries time to land, then check nothing counts twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let totals_after = distans_e2e::totals(&client).await?;
    assert_eq!(totals, totals_after);
    assert_eq!(totals.lines, valid);
    assert_eq!(totals.net_amount_ore, first.summary.valid_net_amount_ore + second.summary.valid_net_amount_ore);
    assert_eq!(totals.contacts, first.summary.valid_contacts + second.summary.valid_contacts);
    let physical = physical_rows(&client).await?;
    eprintln!(
        "killed at {at_kill} lines; {physical} rows stored for {} lines (duplicates collapsed: {})",
        totals.lines,
        physical - totals.lines
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_down_moves_no_offset_and_loses_nothing() -> anyhow::Result<()> {
    let Running { mut env, settings, client, services: [_ingester, mut sink] } =
        Env::start()?.run(["ingester", "sink"])?;

    let first = generated(&env, 2024, 1_000, 13, 0.0);
    produce::produce_lines(&settings, &first.lines, false).await?;
    wait_for_lines(&client, first.summary.valid as u64, TIMEOUT).await?;

    // ClickHouse goes away. Idle, the sink still says so: its aggregate
    // refresh gets no answer (it said ready until a line arrived).
    env.clickhouse.kill();
    poll_until("the idle sink to report ClickHouse down", TIMEOUT, async || {
        let (health, body) = http_get(env.sink_http, "/readyz")?;
        anyhow::ensure!(
            health == 503 && body.contains("the aggregate refresh gets no answer from clickhouse"),
            "/readyz answers {health} {body}"
        );
        Ok(())
    })
    .await?;
    // More lines arrive.
    let second = generated(&env, 2025, 1_000, 14, 0.0);
    produce::produce_lines(&settings, &second.lines, false).await?;
    poll_until("the sink to retry and report unhealthy", TIMEOUT, async || {
        metric_at_least(env.sink_http, "distans_sink_insert_retries_total", 2.0)?;
        // The answer names the downstream that fails.
        let (health, body) = http_get(env.sink_http, "/healthz")?;
        anyhow::ensure!(health == 503 && body.contains("clickhouse inserts fail"), "/healthz answers {health} {body}");
        Ok(())
    })
    .await?;
    // Kill the sink while it waits: if it had moved an offset past the
    // unwritten lines, they would now be lost.
    sink.kill();
    env.clickhouse.restart()?;
    tokio::time::sleep(SESSION_EXPIRY).await;
    let restarted_sink = env.spawn("sink")?;

    let expected_lines = (first.summary.valid + second.summary.valid) as u64;
    let totals =
        wait_for_lines_or_report(&client, expected_lines, (&env, "sink"), &[("sink", &restarted_sink, 30)]).await?;
    assert_eq!(totals.lines, expected_lines);
    assert_eq!(totals.net_amount_ore, first.summary.valid_net_amount_ore + second.summary.valid_net_amount_ore);
    Ok(())
}

/// Waits until the sink has written `copies` rows for each valid line of
/// `summary` (`copy` names the last copy sent), then checks that ClickHouse
/// counts each line once, with the net amount of one copy.
async fn written_and_counted_once(
    env: &Env,
    client: &distans_store::Client,
    summary: &Summary,
    copies: u64,
    copy: &str,
) -> anyhow::Result<()> {
    let expected_rows = copies * summary.valid as u64;
    poll_until(&format!("{copy} to be written"), TIMEOUT, async || {
        metric_at_least(env.sink_http, "distans_sink_rows_inserted_total", expected_rows as f64)
    })
    .await?;
    let totals = distans_e2e::totals(client).await?;
    assert_eq!(totals.lines, summary.valid as u64);
    assert_eq!(totals.net_amount_ore, summary.valid_net_amount_ore);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_sent_twice_counts_once() -> anyhow::Result<()> {
    let Running { env, settings, client, services: [_ingester, _sink] } = Env::start()?.run(["ingester", "sink"])?;
    let data = generated(&env, 2025, 1_500, 15, 0.0);
    produce::produce_lines(&settings, &data.lines, false).await?;
    wait_for_lines(&client, data.summary.valid as u64, TIMEOUT).await?;
    produce::produce_lines(&settings, &data.lines, false).await?;
    written_and_counted_once(&env, &client, &data.summary, 2, "the second copy").await?;
    // A corrected file: the same lines (same keys), each visit a day
    // earlier, so many move to another visit month. The newest version
    // replaces the old one; nothing counts twice.
    let corrected: Vec<_> = data
        .lines
        .iter()
        .cloned()
        .map(|mut l| {
            l.visit_date = l.visit_date.pred_opt().expect("a day earlier");
            l
        })
        .collect();
    produce::produce_lines(&settings, &corrected, false).await?;
    written_and_counted_once(&env, &client, &data.summary, 3, "the corrected copy").await?;
    // The aggregates the reports read: rebuilt from the newest versions, so
    // each moved line counts once, in its new visit month.
    wait_for_fresh_aggregates(&client, "fresh aggregates", TIMEOUT).await?;
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for line in &corrected {
        let sign = if line.invoice_type == "381" { -1 } else { 1 };
        *want.entry(line.visit_date.format("%Y-%m").to_string()).or_default() += sign * line.net_amount_ore;
    }
    let months: Vec<MonthNet> = client
        .query(
            "SELECT substring(toString(month), 1, 7) AS month, net_amount_ore FROM report_cost_by_month \
             ORDER BY month",
        )
        .fetch_all()
        .await?;
    let got: BTreeMap<String, i64> = months.into_iter().map(|m| (m.month, m.net_amount_ore)).collect();
    assert_eq!(got, want);
    assert!(got.contains_key("2024-12"), "a January 1st visit moved to December 2024");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_broker_loses_nothing() -> anyhow::Result<()> {
    let Running { mut env, settings, client, services: [_ingester, _sink] } =
        Env::start()?.run(["ingester", "sink"])?;
    let first = generated(&env, 2024, 2_000, 16, 0.01);
    let second = generated(&env, 2025, 2_000, 17, 0.01);

    produce::produce_lines(&settings, &first.lines, false).await?;
    wait_for_lines(&client, 1, TIMEOUT).await?;
    // SIGKILL the broker mid-stream, bring it back on the same port and
    // storage; the services reconnect by themselves.
    env.broker.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.broker.restart()?;
    produce::produce_lines(&settings, &second.lines, false).await?;

    let valid = (first.summary.valid + second.summary.valid) as u64;
    let totals = wait_for_lines(&client, valid, TIMEOUT).await?;
    assert_eq!(totals.lines, valid);
    assert_eq!(totals.net_amount_ore, first.summary.valid_net_amount_ore + second.summary.valid_net_amount_ore);
    Ok(())
}

fn merged(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    let mut all = a.clone();
    for (rule, n) in b {
        *all.entry(rule.clone()).or_default() += n;
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_detector_finds_exactly_the_injected_anomalies_across_a_kill() -> anyhow::Result<()> {
    let env = Env::start()?;
    let settings = env.settings();
    let client = env.clickhouse.client();
    // More anomalies than the default share: 6 %.
    let options = |year, seed| {
        let mut o = Options::new("23", year, 3_000, seed, &settings.detector.rules);
        o.implausible_share = 0.06;
        o
    };
    let first = generate::generate(&options(2025, 21), &settings.tariffs).expect("generates");
    let second = generate::generate(&options(2024, 22), &settings.tariffs).expect("generates");
    let expected = merged(&first.summary.expected_findings, &second.summary.expected_findings);

    let _ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;
    let mut detector = env.spawn("detector")?;
    produce::produce_lines(&settings, &first.lines, false).await?;
    poll_until("first findings in ClickHouse", TIMEOUT, async || {
        // More than 500 lines.
        metric_at_least(env.detector_http, "distans_detector_lines_observed_total", 501.0)
    })
    .await?;
    // Past an automatic offset commit (every second), SIGKILL mid-stream: the
    // restarted detector rebuilds its state from the topic and must neither
    // lose a finding nor raise one twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    detector.kill();
    produce::produce_lines(&settings, &second.lines, false).await?;
    let _detector = env.spawn("detector")?;
    let (_, page) = http_get(env.detector_http, "/metrics")?;
    assert!(
        metric(&page, "distans_detector_lines_replayed_total").unwrap_or(0.0) > 0.0,
        "state rebuilt from the topic"
    );

    let total: usize = expected.values().sum();
    let all_found = poll_until("every injected finding in ClickHouse", TIMEOUT, async || {
        let found = distans_e2e::findings_by_rule(&client).await?;
        anyhow::ensure!(found.values().sum::<usize>() >= total, "{found:?}");
        Ok(())
    })
    .await;
    // On a timeout, the comparison below says what is missing.
    if let Err(timed_out) = all_found {
        eprintln!("{timed_out:#}");
    }
    // Let late duplicates land, then compare: exactly the injected findings.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(distans_e2e::findings_by_rule(&client).await?, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_reach_people_grouped_and_none_is_lost_while_the_webhook_is_down() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    // The webhook is down to begin with: a port nobody listens on.
    let port = env.webhook_port();
    let settings = env.settings();
    let client = env.clickhouse.client();
    let mut options = Options::new("23", 2025, 3_000, 31, &settings.detector.rules);
    options.implausible_share = 0.06;
    let data = generate::generate(&options, &settings.tariffs).expect("generates");
    let expected = &data.summary.expected_findings;
    let total: usize = expected.values().sum();
    let high: usize = ["double_invoicing", "patient_not_resident"].iter().filter_map(|r| expected.get(*r)).sum();

    let _ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;
    let _detector = env.spawn("detector")?;
    let _notifier = env.spawn("notifier")?;
    produce::produce_lines(&settings, &data.lines, false).await?;
    poll_until("the notifier to fail against the down webhook", TIMEOUT, async || {
        metric_at_least(env.notifier_http, "distans_notifier_webhook_failures_total", 2.0)
    })
    .await?;

    // The webhook comes up; everything found must arrive, grouped. Lines
    // reach the detector in any order across partitions, so a window rule
    // may publish a finding that a later line supersedes; its withdrawal
    // follows. It may also publish a finding again with new figures (the
    // 22nd psychologist contact, arriving before an earlier one, first
    // ranks 21st), which the notifier counts once whether or not the
    // digest that held it was sent meanwhile. So messages are read until
    // what stands (sent less withdrawn) is what was injected: a finding
    // sent twice, or one never sent, never gets there.
    let mut rx = distans_e2e::serve_webhook(port, vec![]).await?;
    let (mut immediate, mut digested) = (0i64, BTreeMap::<String, i64>::new());
    let mut expected_digested: BTreeMap<String, i64> = expected.iter().map(|(r, n)| (r.clone(), *n as i64)).collect();
    expected_digested.remove("double_invoicing");
    expected_digested.remove("patient_not_resident");
    let is_high = |rule: &str| ["double_invoicing", "patient_not_resident"].contains(&rule);
    let mut groups = HashSet::new();
    // (rule, line key) named by a digest and not withdrawn since: counts
    // alone would let a finding counted twice stand in for one not sent yet.
    let mut named = HashSet::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while immediate != high as i64 || digested != expected_digested {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(Some(body)) = tokio::time::timeout(left, rx.recv()).await else {
            anyhow::bail!("timed out: {immediate} immediate and {digested:?} digested of {expected:?}");
        };
        let message: serde_json::Value = serde_json::from_str(&body)?;
        let rule = message["rule_id"].as_str().unwrap_or_default().to_string();
        match message["kind"].as_str() {
            Some("finding") => {
                immediate += 1;
                // The evidence in the messages' language (Swedish by default).
                let evidence = message["evidence"].as_str().unwrap_or_default();
                assert!(
                    evidence.starts_with("kontakten den ") || evidence.starts_with("patienten är folkbokförd i län "),
                    "Swedish evidence: {body}"
                );
            }
            Some("digest") => {
                let group = (rule.clone(), message["provider_org_number"].to_string(), message["day"].to_string());
                groups.insert(group);
                for key in message["line_keys"].as_array().into_iter().flatten() {
                    assert!(named.insert((rule.clone(), key.to_string())), "a digest names {key} again: {body}");
                }
                *digested.entry(rule).or_default() += message["findings"].as_i64().unwrap_or(0);
                let example = message["example"].as_str().unwrap_or_default();
                assert!(
                    [
                        "styckpris",
                        "produktkategori",
                        "avtalets",
                        "fakturerad",
                        "kontaktsätt",
                        "åtgärd",
                        "besöket",
                        "kontakten",
                        "psykolog",
                        "kreditnot",
                    ]
                    .iter()
                    .any(|w| example.contains(w)),
                    "Swedish example: {body}"
                );
            }
            Some("withdrawal") if message["reason"] == "superseded" => {
                eprintln!("superseded: {rule} {}", message["line_keys"]);
                if is_high(&rule) {
                    immediate -= 1;
                } else {
                    named.remove(&(rule.clone(), message["line_keys"][0].to_string()));
                    *digested.entry(rule).or_default() -= 1;
                }
            }
            other => anyhow::bail!("unexpected message kind {other:?}: {body}"),
        }
        digested.retain(|_, n| *n != 0);
    }
    assert!(groups.len() < total - high, "grouped: {} digests for {} findings", groups.len(), total - high);
    // And ClickHouse holds the same findings (the sink writes them in batches).
    let stored = poll_until("the findings in ClickHouse", TIMEOUT, async || {
        let stored = distans_e2e::findings_by_rule(&client).await?;
        anyhow::ensure!(stored.values().sum::<usize>() >= total, "{stored:?}");
        Ok(stored)
    })
    .await?;
    assert_eq!(stored, *expected);
    Ok(())
}

/// The sink closes a batch at its byte bound even when its row bound is far
/// off: with a bound of one byte every record is a batch of its own, and
/// every line still arrives once.
#[tokio::test(flavor = "multi_thread")]
async fn the_sink_bounds_a_batch_by_bytes() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.sink_batch_rows = 100_000;
    env.sink_batch_bytes = Some(1);
    let Running { env, settings, client, services: [_ingester, _sink] } = env.run(["ingester", "sink"])?;

    let data = generated(&env, 2024, 200, 5, 0.0);
    produce::produce_lines(&settings, &data.lines, false).await?;
    let valid = data.summary.valid as u64;
    let totals = wait_for_lines(&client, valid, TIMEOUT).await?;
    assert_eq!(totals.lines, valid);

    // The counter follows ClickHouse's ack, so it may trail the rows
    // queryable by a moment.
    let page = poll_until("the rows counted", TIMEOUT, async || {
        let (_, page) = http_get(env.sink_http, "/metrics")?;
        let counted = metric(&page, "distans_sink_rows_inserted_total").unwrap_or_default();
        anyhow::ensure!(counted >= valid as f64, "{counted} rows counted");
        Ok(page)
    })
    .await?;
    assert_eq!(metric(&page, "distans_sink_rows_inserted_total"), Some(valid as f64));
    // One batch per record (a redelivered record would add one).
    let batches = metric(&page, "distans_sink_batches_total").unwrap_or_default();
    assert!(batches >= valid as f64, "{batches} batches for {valid} records, each over the byte bound");
    Ok(())
}
