//! Durable digests: pending digests survive a SIGKILL of the notifier, are
//! sent once, when their period ends (not a fresh interval after the
//! restart), and nothing already sent is sent again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distans_domain::rules::{
    Finding, FindingStatus, Rule, Withdrawal, DOUBLE_INVOICING, LISTED_AT_SAME_GROUP, WRONG_PRICE,
};
use distans_domain::testing;
use distans_e2e::{metric_at_least, poll_until, Env};
use distans_wire::TimedFinding;
use tokio::sync::mpsc::UnboundedReceiver;

/// Longer than the kill, the session expiry and the restart together.
const DIGEST_INTERVAL: Duration = Duration::from_secs(75);

fn timed(rule: &Rule, key: &str, detected_at_ms: i64) -> TimedFinding {
    TimedFinding { finding: Finding { amount_at_stake_ore: 10_000, ..testing::finding(rule, key) }, detected_at_ms }
}

/// The bodies received until `quiet` passes without one, or `until` is reached.
async fn receive(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    bodies: &mut Vec<(Instant, serde_json::Value)>,
    until: Instant,
    stop_when: impl Fn(&[(Instant, serde_json::Value)]) -> bool,
) -> anyhow::Result<()> {
    while !stop_when(bodies) {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Some(body)) = tokio::time::timeout(left, rx.recv()).await else {
            anyhow::bail!(
                "timed out with {} bodies: {:?}",
                bodies.len(),
                bodies.iter().map(|b| &b.1).collect::<Vec<_>>()
            );
        };
        bodies.push((Instant::now(), serde_json::from_str(&body)?));
    }
    Ok(())
}

fn kinds(bodies: &[(Instant, serde_json::Value)]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for (_, body) in bodies {
        *kinds.entry(body["kind"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    kinds
}

/// A fresh environment whose notifier sends digests every `interval` to a
/// webhook on loopback that accepts all; the bodies it received.
async fn env_with_webhook(interval: Duration) -> anyhow::Result<(Env, UnboundedReceiver<String>)> {
    let mut env = Env::start()?;
    env.digest_interval_ms = interval.as_millis() as u64;
    let rx = env.start_webhook(vec![]).await?;
    Ok((env, rx))
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_digests_survive_a_sigkill_and_are_sent_once_when_due() -> anyhow::Result<()> {
    let (env, mut rx) = env_with_webhook(DIGEST_INTERVAL).await?;

    let now = chrono::Utc::now().timestamp_millis();
    // 5 wrong prices and 3 same-group listings in two digests, then 3 sent
    // at once (behind the digested ones in their partitions).
    let mut findings: Vec<TimedFinding> = (1..=5).map(|i| timed(&WRONG_PRICE, &format!("ZVF2:{i}"), now)).collect();
    findings.extend((1..=3).map(|i| timed(&LISTED_AT_SAME_GROUP, &format!("ZVF3:{i}"), now)));
    findings.extend((1..=3).map(|i| timed(&DOUBLE_INVOICING, &format!("ZVF1:{i}"), now)));
    let withdrawn = findings[1].clone(); // a wrong price, waiting in its digest

    let started = Instant::now();
    let mut notifier = env.spawn("notifier")?;
    env.publish_findings(&findings).await?;
    let mut bodies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    receive(&mut rx, &mut bodies, deadline, |b| b.len() >= 3).await?;
    poll_until("the digest findings persisted", Duration::from_secs(60), async || {
        metric_at_least(env.notifier_http, "distans_notifier_digest_findings_persisted_total", 8.0)
    })
    .await?;
    // The immediate messages' offsets are committed right after each 2xx
    // (the counter moves just before): a SIGKILL between the two is the one
    // documented way to send a message twice, so the kill waits past it.
    poll_until("the immediate messages counted", Duration::from_secs(60), async || {
        metric_at_least(env.notifier_http, "distans_notifier_immediate_messages_total", 3.0)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Killed before the digests are due.
    notifier.kill();
    assert_eq!(kinds(&bodies), BTreeMap::from([("finding".to_string(), 3)]), "only the immediate ones so far");

    // After the killed member's session expired (tansu 0.6 keeps its
    // partitions otherwise); a withdrawal arrives while the notifier is down.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let mut gone = withdrawn.clone();
    gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    env.publish_findings(&[gone]).await?;
    let restarted = Instant::now();
    let _notifier = env.spawn("notifier")?;

    let deadline = started + DIGEST_INTERVAL + Duration::from_secs(60);
    receive(&mut rx, &mut bodies, deadline, |b| kinds(b).get("digest").copied().unwrap_or(0) >= 2).await?;
    let last_digest = bodies.iter().rev().find(|(_, b)| b["kind"] == "digest").map(|(at, _)| *at).expect("a digest");
    assert!(
        last_digest < restarted + DIGEST_INTERVAL - Duration::from_secs(20),
        "the digests are due an interval after their first finding was read, not after the restart: sent {:?} after the restart",
        last_digest - restarted
    );
    // Anything sent twice would arrive now.
    let _ = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(body) = rx.recv().await {
            bodies.push((Instant::now(), serde_json::from_str(&body).unwrap_or_default()));
        }
    })
    .await;
    assert_eq!(
        kinds(&bodies),
        BTreeMap::from([("digest".to_string(), 2), ("finding".to_string(), 3)]),
        "each message once, no withdrawal for a finding still in a digest: {bodies:?}"
    );
    let digests: BTreeMap<String, u64> = bodies
        .iter()
        .filter(|(_, b)| b["kind"] == "digest")
        .map(|(_, b)| (b["rule_id"].as_str().unwrap_or_default().to_string(), b["findings"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        digests,
        BTreeMap::from([(WRONG_PRICE.id.to_string(), 4), (LISTED_AT_SAME_GROUP.id.to_string(), 3)]),
        "every digested finding once, the withdrawn one left out"
    );
    let wrong_price = bodies.iter().find(|(_, b)| b["rule_id"] == WRONG_PRICE.id).map(|(_, b)| b).expect("digest");
    let key = withdrawn.finding.line_keys[0].as_str();
    assert!(!wrong_price["line_keys"].as_array().is_some_and(|k| k.iter().any(|k| k == key)), "{wrong_price}");
    poll_until("no digest pending", Duration::from_secs(10), async || {
        let (_, page) = distans_e2e::http_get(env.notifier_http, "/metrics")?;
        anyhow::ensure!(distans_e2e::metric(&page, "distans_notifier_pending_digests") == Some(0.0), "{page}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_notifier_exits_promptly_keeps_its_pending_digest_and_sends_it_once_when_due() -> anyhow::Result<()> {
    const INTERVAL: Duration = Duration::from_secs(25);
    let (env, mut rx) = env_with_webhook(INTERVAL).await?;

    let now = chrono::Utc::now().timestamp_millis();
    let findings: Vec<TimedFinding> = (1..=3).map(|i| timed(&WRONG_PRICE, &format!("ZVF2:{i}"), now)).collect();
    let started = Instant::now();
    let mut notifier = env.spawn("notifier")?;
    env.publish_findings(&findings).await?;
    poll_until("the digest findings persisted", Duration::from_secs(60), async || {
        metric_at_least(env.notifier_http, "distans_notifier_digest_findings_persisted_total", 3.0)
    })
    .await?;
    // SIGTERM before the digest is due: it is not sent early, and the
    // notifier does not wait for it.
    let stopping = Instant::now();
    let status = notifier.terminate(Duration::from_secs(20));
    assert_eq!(status, Some(0), "{}", notifier.log_tail(20));
    assert!(stopping.elapsed() < Duration::from_secs(10), "stopped in {:?}", stopping.elapsed());
    assert!(rx.try_recv().is_err(), "nothing sent before the digest is due");

    let _notifier = env.spawn("notifier")?;
    let mut bodies = Vec::new();
    receive(&mut rx, &mut bodies, started + INTERVAL + Duration::from_secs(60), |b| !b.is_empty()).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(body) = rx.recv().await {
            bodies.push((Instant::now(), serde_json::from_str(&body).unwrap_or_default()));
        }
    })
    .await;
    assert_eq!(bodies.len(), 1, "one digest, once: {bodies:?}");
    assert_eq!(bodies[0].1["kind"], "digest");
    assert_eq!(bodies[0].1["findings"], 3);
    assert!(
        bodies[0].0 < started + INTERVAL + Duration::from_secs(10),
        "sent when due, not an interval after the restart"
    );
    Ok(())
}

/// A finding written into a pending digest is not read again after a
/// SIGKILL, once that digest was sent. Its offset used to be only stored
/// (committed by the next auto-commit, immediate message or digest), so a
/// notifier killed within that second and restarted at once sent the
/// loaded digest when due and then, given the partitions (tansu: after the
/// killed member's 30 s session), read the same findings into a new digest
/// and sent them again. Seen in the chaos run: a line digested at 11.3 s
/// and again at 40.5 s, the notifier killed at 9.7 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_digested_finding_is_not_sent_again_after_a_sigkill_and_an_immediate_restart() -> anyhow::Result<()> {
    let (env, mut rx) = env_with_webhook(Duration::from_millis(5_000)).await?;

    let now = chrono::Utc::now().timestamp_millis();
    let findings: Vec<TimedFinding> = (1..=4).map(|i| timed(&WRONG_PRICE, &format!("ZVF4:{i}"), now)).collect();
    let mut notifier = env.spawn("notifier")?;
    env.publish_findings(&findings).await?;
    poll_until("the findings persisted in a digest", Duration::from_secs(60), async || {
        metric_at_least(env.notifier_http, "distans_notifier_digest_findings_persisted_total", 4.0)
    })
    .await?;
    notifier.kill();
    let restarted = env.spawn_alive("notifier")?;
    // The loaded digest is sent when due; then the restarted notifier gets
    // the partitions and must find nothing new to send.
    poll_until("the restarted notifier to get its partitions", Duration::from_secs(150), async || {
        let (status, body) = distans_e2e::http_get(env.notifier_http, "/readyz")?;
        anyhow::ensure!(status == 200, "{status} {body}");
        Ok(())
    })
    .await
    .inspect_err(|_| eprintln!("{}", restarted.log_tail(30)))?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut digested = Vec::new();
    while let Ok(body) = rx.try_recv() {
        let body: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(body["kind"], "digest", "{body}");
        digested.extend(body["line_keys"].as_array().cloned().unwrap_or_default());
    }
    digested.sort_by_key(|k| k.to_string());
    assert_eq!(digested, ["ZVF4:1", "ZVF4:2", "ZVF4:3", "ZVF4:4"], "each finding digested once");
    Ok(())
}
