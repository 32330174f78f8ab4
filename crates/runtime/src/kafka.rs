//! Kafka clients configured the one way distans uses them: consumers that
//! store offsets only when told to (after the downstream ack), producers
//! that wait for all replicas.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::config::KafkaSettings;
use crate::metrics::ConsumerMetrics;
use crate::retry::{always_transient, retry, RetryError, RetryPolicy};

/// A client config with the brokers, `properties`, and then the operator's
/// `kafka.client` properties, which win.
pub fn client_config(settings: &KafkaSettings, properties: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.brokers);
    for (key, value) in properties {
        config.set(*key, *value);
    }
    for (key, value) in &settings.client {
        config.set(key, value);
    }
    config
}

/// A consumer in `group_id` that never stores an offset by itself: the
/// service calls `store_offset` once the record's output is acknowledged,
/// and the stored offsets are committed in the background.
pub fn consumer(
    settings: &KafkaSettings,
    group_id: &str,
    lag: ConsumerLag,
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    client_config(
        settings,
        &[
            ("group.id", group_id),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "30000"),
            // The sink holds a batch while ClickHouse is down; give it room
            // before the group evicts it.
            ("max.poll.interval.ms", "600000"),
            ("statistics.interval.ms", "5000"),
        ],
    )
    .create_with_context(LagContext { lag })
}

/// A service's consumer ([`consumer`]) and its metrics: it counts the
/// records it reads, feeds the lag gauge and counts the offsets it cannot
/// store.
pub struct Input {
    consumer: StreamConsumer<LagContext>,
    group_id: String,
    metrics: ConsumerMetrics,
}

impl Input {
    /// A [`consumer`] in `group_id`; subscribe or assign it through
    /// [`Input::consumer`].
    pub fn new(settings: &KafkaSettings, group_id: &str, metrics: ConsumerMetrics) -> Result<Input, KafkaError> {
        let consumer = consumer(settings, group_id, metrics.lag.clone())?;
        Ok(Input { consumer, group_id: group_id.to_string(), metrics })
    }

    pub fn consumer(&self) -> &StreamConsumer<LagContext> {
        &self.consumer
    }

    /// The next record. A consumer error is logged and reading goes on.
    pub async fn recv(&self) -> rdkafka::message::BorrowedMessage<'_> {
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    self.metrics.consumed.inc();
                    return message;
                }
                Err(error) => tracing::warn!(%error, "kafka consumer error; continuing"),
            }
        }
    }

    /// [`store_processed`], counting a failure.
    pub fn store_processed(&self, topic: &str, partition: i32, offset: i64) {
        if !store_processed(&self.consumer, topic, partition, offset) {
            self.metrics.offset_store_failures.inc();
        }
    }

    /// [`commit_stored_offsets`]: before the consumer goes away.
    pub fn commit_stored_offsets(&self) {
        commit_stored_offsets(&self.consumer);
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("group_id", &self.group_id).finish_non_exhaustive()
    }
}

/// A producer that waits for all in-sync replicas and retries on its own.
pub fn producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    client_config(
        settings,
        &[
            ("acks", "all"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "30000"),
            ("queue.buffering.max.messages", "200000"),
            // The Java client's partitioner, so that keys land where other
            // producers would put them.
            ("partitioner", "murmur2_random"),
        ],
    )
    .create()
}

/// Creates the topics that do not exist yet. Topics that exist are left as
/// they are.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings, &[]).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| NewTopic::new(name, settings.partitions, TopicReplication::Fixed(settings.replication_factor)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(|_| tracing::error!(%topic, "cannot create topic"));
            }
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// Consumer lag per partition, as librdkafka reports it in its statistics.
pub type ConsumerLag = Family<PartitionLabels, Gauge>;

/// Client context that turns librdkafka's statistics into the lag gauge.
#[derive(Debug, Clone)]
pub struct LagContext {
    lag: ConsumerLag,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // librdkafka reports the internal UA partition as -1, and -1 lag when unknown.
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.lag.get_or_create(&PartitionLabels { topic: topic.clone(), partition }).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// Commits the stored offsets before the consumer goes away. Nothing stored
/// since the last automatic commit is not a failure.
pub fn commit_stored_offsets<C: rdkafka::consumer::Consumer<LagContext>>(consumer: &C) {
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "final offset commit failed; records since the last commit will be read again")
        }
    }
}

/// The service is stopping: the operation was abandoned, not failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before the broker acknowledged")]
pub struct Stopped;

/// How `deliver` retries: 100 ms doubling to 5 s, until the service stops.
pub const PRODUCE_RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(100), Duration::from_secs(5));

/// Produces one record and waits for the broker's ack, retrying every
/// error with backoff ([`PRODUCE_RETRY`], with jitter) until it is acked or
/// `stop` is cancelled. `on_retry` is called on each failed attempt (for a
/// metric), which is also logged with the error, topic and wait.
pub async fn deliver(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    stop: &tokio_util::sync::CancellationToken,
    on_retry: impl Fn(),
) -> Result<(), Stopped> {
    let produce = || async move {
        let mut record = rdkafka::producer::FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        producer.send(record, Duration::from_secs(5)).await.map(|_| ()).map_err(|(error, _)| error)
    };
    let log_retry = |error: &KafkaError, retry_in: Duration| {
        on_retry();
        tracing::warn!(%error, %topic, retry_in_ms = retry_in.as_millis() as u64, "produce failed; retrying");
    };
    retry(&PRODUCE_RETRY, stop, always_transient, log_retry, produce).await.map_err(|error| match error {
        RetryError::Stopped => Stopped,
        // Not reached while every error is transient and there is no
        // ceiling; should that change, the record is not acked, which
        // callers handle as they handle a stop: no offset moves.
        RetryError::Permanent(error) | RetryError::GaveUp { error, .. } => {
            tracing::error!(%error, %topic, "produce abandoned");
            Stopped
        }
    })
}

/// Marks `offset` of `topic`/`partition` as processed: librdkafka stores
/// offset + 1 (the next record to read) and commits it in the background.
/// Returns false, with a warning, when it cannot (the partition was revoked):
/// the record will then be read again, which the idempotent outputs absorb.
pub fn store_processed<C: rdkafka::consumer::Consumer<LagContext>>(
    consumer: &C,
    topic: &str,
    partition: i32,
    offset: i64,
) -> bool {
    match consumer.store_offset(topic, partition, offset) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, %topic, partition, offset, "cannot store offset (partition revoked?); the record will be read again");
            false
        }
    }
}
