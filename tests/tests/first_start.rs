//! A notifier group's first start (`notifier.first_start`): with
//! "summary" (the default) the findings already in the alerts topic arrive
//! as ONE summary message and each later finding as its own; a restart
//! sends no second summary; a SIGKILL while the summary is being sent
//! sends none twice and loses no later finding; "all" sends each finding.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use distans_domain::rules::{Finding, FindingStatus, Rule, Withdrawal, DOUBLE_INVOICING, WRONG_PRICE};
use distans_domain::testing;
use distans_e2e::{metric_at_least, poll_until, Env};
use distans_wire::TimedFinding;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

const TIMEOUT: Duration = Duration::from_secs(60);

fn timed(rule: &Rule, key: &str, amount_ore: i64, day: u32) -> TimedFinding {
    let finding = Finding {
        amount_at_stake_ore: amount_ore,
        visit_date: NaiveDate::from_ymd_opt(2025, 3, day).expect("a date"),
        ..testing::finding(rule, key)
    };
    TimedFinding { finding, detected_at_ms: chrono::Utc::now().timestamp_millis() }
}

/// The next body, within `TIMEOUT`.
async fn next(rx: &mut UnboundedReceiver<String>) -> anyhow::Result<Value> {
    let body = tokio::time::timeout(TIMEOUT, rx.recv()).await?.ok_or_else(|| anyhow::anyhow!("webhook gone"))?;
    Ok(serde_json::from_str(&body)?)
}

/// Every body that arrives within `quiet`.
async fn more(rx: &mut UnboundedReceiver<String>, quiet: Duration) -> Vec<Value> {
    let mut bodies = Vec::new();
    while let Ok(Some(body)) = tokio::time::timeout(quiet, rx.recv()).await {
        bodies.push(serde_json::from_str(&body).unwrap_or_default());
    }
    bodies
}

/// The backlog: 5 invoiced twice (high: sent at once) at 100 kr, 4 wrong
/// prices (medium: digested) at 250 kr, and one more invoiced twice that
/// was withdrawn (credited) before the notifier started.
fn backlog() -> Vec<TimedFinding> {
    let mut findings: Vec<TimedFinding> =
        (1..=5).map(|i| timed(&DOUBLE_INVOICING, &format!("ZVS1:{i}"), 10_000, 2 + i)).collect();
    findings.extend((1..=4).map(|i| timed(&WRONG_PRICE, &format!("ZVS2:{i}"), 25_000, 10 + i)));
    let mut gone = timed(&DOUBLE_INVOICING, "ZVS1:9", 99_900, 28);
    findings.push(gone.clone());
    gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    findings.push(gone);
    findings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_start_sends_the_backlog_as_one_summary_then_each_new_finding() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.notifier_first_start = "summary";
    let mut rx = env.start_webhook(vec![]).await?;

    env.publish_findings(&backlog()).await?;
    let mut notifier = env.spawn("notifier")?;
    let summary = next(&mut rx).await?;
    assert_eq!(summary["kind"], "summary", "{summary}");
    assert_eq!((&summary["findings"], &summary["withdrawn"]), (&Value::from(9), &Value::from(1)), "{summary}");
    assert_eq!(summary["amount_at_stake_ore"], 5 * 10_000 + 4 * 25_000);
    assert_eq!(summary["amount_at_stake"], "1 500 kr");
    assert_eq!(
        (&summary["first_visit_date"], &summary["last_visit_date"]),
        (&"2025-03-03".into(), &"2025-03-14".into())
    );
    let rules: Vec<(String, u64, i64)> = summary["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let id = r["rule_id"].as_str().unwrap_or_default().to_string();
            (id, r["findings"].as_u64().unwrap_or(0), r["amount_at_stake_ore"].as_i64().unwrap_or(0))
        })
        .collect();
    assert_eq!(
        rules,
        [("wrong_price".to_string(), 4, 100_000), ("double_invoicing".to_string(), 5, 50_000)],
        "per rule, the largest amount first; the withdrawn one not counted"
    );

    // A finding after the start: its own message.
    let new = timed(&DOUBLE_INVOICING, "ZVS3:1", 12_345, 20);
    env.publish_findings(std::slice::from_ref(&new)).await?;
    let message = next(&mut rx).await?;
    assert_eq!((&message["kind"], &message["finding_id"]), (&"finding".into(), &new.finding.finding_id.clone().into()));
    // Nothing of the backlog one by one, and no digest of its wrong prices.
    let late = more(&mut rx, Duration::from_secs(5)).await;
    assert!(late.is_empty(), "nothing else: {late:?}");
    metric_at_least(env.notifier_http, "distans_notifier_first_start_summaries_total", 1.0)?;

    // A restart: no second summary; the next new finding arrives.
    assert_eq!(notifier.terminate(Duration::from_secs(20)), Some(0), "{}", notifier.log_tail(20));
    let _notifier = env.spawn("notifier")?;
    let newer = timed(&DOUBLE_INVOICING, "ZVS3:2", 10_000, 21);
    env.publish_findings(std::slice::from_ref(&newer)).await?;
    let message = next(&mut rx).await?;
    assert_eq!((&message["kind"], &message["finding_id"]), (&"finding".into(), &newer.finding.finding_id.into()));
    let late = more(&mut rx, Duration::from_secs(5)).await;
    assert!(late.is_empty(), "no second summary, nothing again: {late:?}");
    Ok(())
}

/// SIGKILL while the summary waits for a webhook that is down: the
/// restart cannot know whether the webhook took it, so it sends no summary
/// (never twice), and every finding published after the backlog's end —
/// during the first start and while the notifier was down — arrives as its
/// own message.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_while_the_summary_is_sent_sends_none_twice_and_loses_no_new_finding() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.notifier_first_start = "summary";
    let port = env.webhook_port();

    env.publish_findings(&backlog()).await?;
    // Nobody listens on the webhook's port: the summary is retried.
    let mut notifier = env.spawn_alive("notifier")?;
    poll_until("the summary retried", TIMEOUT, async || {
        metric_at_least(env.notifier_http, "distans_notifier_webhook_failures_total", 2.0)
    })
    .await?;
    let during = timed(&DOUBLE_INVOICING, "ZVS4:1", 10_000, 22);
    env.publish_findings(std::slice::from_ref(&during)).await?;
    notifier.kill();
    let after = timed(&DOUBLE_INVOICING, "ZVS4:2", 10_000, 23);
    env.publish_findings(std::slice::from_ref(&after)).await?;

    let mut rx = distans_e2e::serve_webhook(port, vec![]).await?;
    let started = Instant::now();
    let notifier = env.spawn("notifier")?;
    let mut bodies = vec![next(&mut rx).await?];
    bodies.extend(more(&mut rx, Duration::from_secs(8)).await);
    // Keyed by finding id, the two may sit in different partitions: any order.
    let mut ids: Vec<(&str, &str)> =
        bodies.iter().map(|b| (b["kind"].as_str().unwrap_or("?"), b["finding_id"].as_str().unwrap_or("-"))).collect();
    ids.sort_unstable();
    let mut expected =
        [("finding", during.finding.finding_id.as_str()), ("finding", after.finding.finding_id.as_str())];
    expected.sort_unstable();
    assert_eq!(
        ids,
        expected,
        "the two new findings; no summary, nothing of the backlog ({:?} after the restart)\n{}",
        started.elapsed(),
        notifier.log_tail(30)
    );
    assert!(
        notifier.log_tail(200).contains("not sent again"),
        "the restart says what it did: {}",
        notifier.log_tail(30)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_all_sends_each_finding_of_the_backlog() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.notifier_first_start = "all";
    let mut rx = env.start_webhook(vec![]).await?;

    let findings: Vec<TimedFinding> =
        (1..=3).map(|i| timed(&DOUBLE_INVOICING, &format!("ZVS5:{i}"), 10_000, i)).collect();
    env.publish_findings(&findings).await?;
    let _notifier = env.spawn("notifier")?;
    let mut bodies = vec![next(&mut rx).await?];
    bodies.extend(more(&mut rx, Duration::from_secs(5)).await);
    let mut kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap_or("?")).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["finding", "finding", "finding"], "one message each, no summary: {bodies:?}");
    Ok(())
}
