//! A message the webhook refuses for good (400) is kept where staff can see
//! it: the notifier writes it to `<alerts>.undelivered` and the sink into
//! ClickHouse's `undelivered_alerts`, with the status, while the next
//! message goes through.

use std::time::Duration;

use distans_domain::rules::{Finding, DOUBLE_INVOICING};
use distans_domain::testing;
use distans_e2e::{poll_until, Env};
use distans_runtime::kafka;
use distans_wire::{Codec, TimedFinding};
use rdkafka::producer::FutureRecord;

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_message_is_a_row_of_undelivered_alerts_with_its_status() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    // The first message is refused with 400, the next accepted.
    let mut rx = env.start_webhook(vec![400]).await?;

    let _sink = env.spawn("sink")?;
    let _notifier = env.spawn("notifier")?;
    // Double invoicing is of high severity: each finding is sent at once.
    let now = chrono::Utc::now().timestamp_millis();
    let findings: Vec<TimedFinding> = ["ZVU1:1", "ZVU1:2"]
        .iter()
        .map(|key| TimedFinding {
            finding: Finding { amount_at_stake_ore: 10_000, ..testing::finding(&DOUBLE_INVOICING, key) },
            detected_at_ms: now,
        })
        .collect();
    let settings = env.settings();
    let producer = kafka::producer(&settings.kafka)?;
    let codec = Codec::embedded();
    // One at a time, in one partition's order: the refused one first.
    for timed in &findings {
        let payload = codec.encode_finding(timed)?;
        let record = FutureRecord::to(&settings.topics.alerts).key("one-key".as_bytes()).payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
    }

    // The second goes through: the refusal blocks nothing.
    let body = tokio::time::timeout(TIMEOUT, rx.recv()).await?.expect("a delivered message");
    let delivered: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(delivered["kind"], "finding", "{delivered}");

    let client = env.clickhouse.client();
    let rows = poll_until("the refused message in undelivered_alerts", TIMEOUT, async || {
        let rows = distans_store::queries::undelivered_alerts(&client, 10).await?;
        anyhow::ensure!(!rows.is_empty(), "no undelivered alert yet");
        Ok(rows)
    })
    .await?;
    assert_eq!(rows.len(), 1, "only the refused one: {rows:?}");
    let row = &rows[0];
    assert_eq!(row.status, 400);
    assert_eq!(row.kind, "finding");
    assert_eq!(row.rule_id, DOUBLE_INVOICING.id);
    assert_eq!(row.finding_ids, vec![findings[0].finding.finding_id.clone()]);
    let message: serde_json::Value = serde_json::from_str(&row.message)?;
    assert_eq!(message["kind"], "finding", "the message as sent: {message}");
    assert_ne!(
        serde_json::to_string(&message)?,
        body,
        "the refused message is the first finding's, not the delivered one's"
    );
    let refused_age = chrono::Utc::now().timestamp() - i64::from(row.refused_at);
    assert!((0..600).contains(&refused_age), "refused just now: {refused_age} s ago");
    Ok(())
}
