//! A broker that stops answering for longer than the consumer group's
//! session timeout, then answers again (as tansu 0.6 did under load on a
//! 2-core machine: requests timed out after 30 s and the group evicted its
//! members). On tansu 0.6 the group then never gives the evicted member's
//! partitions back: the watchdog's re-joins get none, and a restarted
//! process gets only the partitions no ghost member holds (a broker fault,
//! reproduced here; see ARCHITECTURE.md, "Broker faults"). What distans
//! owes then is the truth: once the records waiting have not moved for
//! longer than `kafka.stall_timeout_ms`, `/readyz` must not say ready.

use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_e2e::{http_get, poll_until, Env};
use distans_synth::generate::{self, Options};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// The offsets the ingester's group committed on its input, summed: the
/// records it is done with.
fn committed(settings: &distans_runtime::config::Settings) -> anyhow::Result<i64> {
    let reader: BaseConsumer = distans_runtime::kafka::client_config(
        &settings.kafka,
        &[("group.id", settings.ingester.group_id.as_str()), ("enable.auto.commit", "false")],
    )
    .create()?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..settings.kafka.partitions {
        partitions.add_partition(&settings.topics.input, partition);
    }
    let committed = tokio::task::block_in_place(|| reader.committed_offsets(partitions, Duration::from_secs(10)))?;
    Ok(committed.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_broker_stopped_answering_past_the_session_timeout_readiness_tells_a_stall() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    // A short stall timeout, so the test sees the watchdog and readiness act.
    let stall = Duration::from_secs(20);
    env.extra_variables.insert("DISTANS__KAFKA__STALL_TIMEOUT_MS".into(), stall.as_millis().to_string());
    let settings = env.settings();
    let lines = |seed| {
        let options = Options::new("23", 2024, 200, seed, &settings.detector.rules);
        generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)
    };
    let (first, second) = (lines(1)?, lines(2)?);
    let ingester = env.spawn("ingester")?;
    produce::produce_lines(&settings, &first.lines, false).await?;
    let records = (first.lines.len() + second.lines.len()) as i64;
    poll_until("the first lines read", Duration::from_secs(120), async || {
        let done = committed(&settings)?;
        anyhow::ensure!(done >= first.lines.len() as i64, "{done} records committed");
        Ok(())
    })
    .await?;

    // The broker stops answering for 45 s (SIGSTOP): past the 30 s session timeout.
    let pid = env.broker.process().and_then(|p| p.pid()).expect("the broker runs");
    let signal = |name: &str| std::process::Command::new("kill").args([name, &pid.to_string()]).status();
    signal("-STOP")?;
    tokio::time::sleep(Duration::from_secs(45)).await;
    signal("-CONT")?;
    produce::produce_lines(&settings, &second.lines, false).await?;

    // For the next 2.5 minutes: whenever records have waited without any
    // being committed for longer than the stall timeout (and a margin for
    // the watchdog's 1 s tick), readiness must say not ready.
    let (mut last, mut moved) = (committed(&settings)?, Instant::now());
    let (mut stalled_probes, mut healed) = (0, false);
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(150) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = committed(&settings)?;
        if done != last {
            (last, moved) = (done, Instant::now());
        }
        if done >= records {
            healed = true;
            break;
        }
        if moved.elapsed() > stall + Duration::from_secs(5) {
            let (status, body) = http_get(env.ingester_http, "/readyz")?;
            assert_ne!(
                status,
                200,
                "{} records waiting, none committed for {:?}, yet ready: {body}\n{}",
                records - done,
                moved.elapsed(),
                ingester.log_tail(20)
            );
            stalled_probes += 1;
        }
    }
    println!(
        "healed: {healed}; {last} of {records} records committed; {stalled_probes} probes during a stall, none ready"
    );
    Ok(())
}
