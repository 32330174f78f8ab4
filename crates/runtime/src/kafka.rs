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
use crate::retry::{retry, ErrorClass, RetryError, RetryPolicy};

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
            ("max.partition.fetch.bytes", &partition_fetch_bytes(settings).to_string()),
            ("fetch.max.bytes", &fetch_max_bytes(settings).to_string()),
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

/// What a record takes in a batch besides its key and value: librdkafka
/// counts a record as its key, value and at most this much framing (the v2
/// record's varints and attributes, well under 64 bytes) against
/// `message.max.bytes`.
pub const RECORD_OVERHEAD_BYTES: usize = 64;

/// What a record batch adds to its records (the v2 batch header, 61 bytes),
/// with a margin: a topic's `max.message.bytes` is `kafka.max_record_bytes`
/// plus this, so the broker takes every batch the producer builds.
pub const BATCH_OVERHEAD_BYTES: usize = 1024;

/// Whether a record with this key and value can be produced under
/// `kafka.max_record_bytes`: larger ones are refused by the producer itself
/// (`MessageSizeTooLarge`), so callers dead-letter them before trying.
pub fn fits(settings: &KafkaSettings, key: Option<&[u8]>, payload: &[u8]) -> bool {
    key.map_or(0, <[u8]>::len) + payload.len() + RECORD_OVERHEAD_BYTES <= settings.max_record_bytes
}

/// The consumers' `max.partition.fetch.bytes`: room for the largest record
/// distans produces and its batch, and never below librdkafka's 1 MiB default.
/// (Apache Kafka returns a first batch larger than this anyway, KIP-74.)
fn partition_fetch_bytes(settings: &KafkaSettings) -> usize {
    (settings.max_record_bytes + BATCH_OVERHEAD_BYTES).max(1 << 20)
}

/// The consumers' `fetch.max.bytes`: librdkafka's 50 MiB default, or more
/// when one partition's fetch needs it (librdkafka raises
/// `receive.message.max.bytes` to match).
fn fetch_max_bytes(settings: &KafkaSettings) -> usize {
    partition_fetch_bytes(settings).max(50 << 20)
}

/// A producer that waits for all in-sync replicas and retries on its own,
/// and refuses a record larger than `kafka.max_record_bytes`
/// (`message.max.bytes`) before sending it.
pub fn producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    client_config(
        settings,
        &[
            ("message.max.bytes", &settings.max_record_bytes.to_string()),
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

/// Creates the topics that do not exist yet, each taking batches of up to
/// `kafka.max_record_bytes` (+ [`BATCH_OVERHEAD_BYTES`]) as its
/// `max.message.bytes`. Topics that exist are left as they are.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings, &[]).create()?;
    let max_message_bytes = (settings.max_record_bytes + BATCH_OVERHEAD_BYTES).to_string();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| {
            NewTopic::new(name, settings.partitions, TopicReplication::Fixed(settings.replication_factor))
                .set("max.message.bytes", &max_message_bytes)
        })
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

/// Why [`deliver`] returned without an ack.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The service is stopping (see [`Stopped`]).
    #[error("stopped before the broker acknowledged")]
    Stopped,
    /// A permanent error ([`classify_produce_error`]): trying again gives
    /// the same answer. [`DeliverError::refuses_record`] tells whether it is
    /// about this record (dead-letter it) or about the topic or the client
    /// (every record would fail: stop).
    #[error("produce refused for good: {0}")]
    Refused(KafkaError),
}

impl DeliverError {
    /// The record itself was refused (too large, invalid): a dead letter
    /// with [`ReasonCode::RecordTooLarge`](distans_domain::ReasonCode) or the
    /// like is the answer, and the offset moves on.
    pub fn refuses_record(&self) -> bool {
        matches!(self, DeliverError::Refused(error) if record_refused(error))
    }
}

impl From<DeliverError> for Stopped {
    /// For callers that stop on any failure to deliver: a refused record is
    /// logged by [`deliver`], and no offset moves.
    fn from(_: DeliverError) -> Stopped {
        Stopped
    }
}

/// The produce error codes no retry can change. Everything else (brokers
/// down or moving, timeouts, queue full, not enough replicas, unknown topic
/// while it is being created) is what an outage causes: transient.
const PERMANENT_PRODUCE_ERRORS: [RDKafkaErrorCode; 13] = [
    // The record: too large for the producer (librdkafka checks
    // message.max.bytes before sending) or for the broker or topic.
    RDKafkaErrorCode::MessageSizeTooLarge,
    RDKafkaErrorCode::MessageBatchTooLarge,
    RDKafkaErrorCode::InvalidMessageSize,
    RDKafkaErrorCode::InvalidRecord,
    RDKafkaErrorCode::InvalidMessage,
    RDKafkaErrorCode::InvalidTimestamp,
    // The topic or the client: no record will get through.
    RDKafkaErrorCode::TopicAuthorizationFailed,
    RDKafkaErrorCode::ClusterAuthorizationFailed,
    RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
    RDKafkaErrorCode::InvalidTopic,
    RDKafkaErrorCode::InvalidRequiredAcks,
    RDKafkaErrorCode::PolicyViolation,
    RDKafkaErrorCode::UnsupportedForMessageFormat,
];

/// The codes among [`PERMANENT_PRODUCE_ERRORS`] that are about the record.
const RECORD_ERRORS: [RDKafkaErrorCode; 6] = [
    RDKafkaErrorCode::MessageSizeTooLarge,
    RDKafkaErrorCode::MessageBatchTooLarge,
    RDKafkaErrorCode::InvalidMessageSize,
    RDKafkaErrorCode::InvalidRecord,
    RDKafkaErrorCode::InvalidMessage,
    RDKafkaErrorCode::InvalidTimestamp,
];

fn produce_error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::MessageProduction(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// The one classification of produce errors, for [`retry`]'s `classify`:
/// permanent for [`PERMANENT_PRODUCE_ERRORS`], transient for the rest.
pub fn classify_produce_error(error: &KafkaError) -> ErrorClass {
    match produce_error_code(error) {
        Some(code) if PERMANENT_PRODUCE_ERRORS.contains(&code) => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// A permanent produce error about the record, not the topic or the client.
fn record_refused(error: &KafkaError) -> bool {
    produce_error_code(error).is_some_and(|code| RECORD_ERRORS.contains(&code))
}

/// Whether a produce error means the record is too large: the reason of
/// the dead letter that replaces it.
pub fn is_too_large(error: &KafkaError) -> bool {
    matches!(
        produce_error_code(error),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
        )
    )
}

/// How `deliver` retries: 100 ms doubling to 5 s, until the service stops.
/// A transient error (an outage) holds the record, and every offset after it,
/// until the broker is back or the service stops: there is no ceiling, as
/// giving up would leave only a dead letter that cannot be produced either.
pub const PRODUCE_RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(100), Duration::from_secs(5));

/// Produces one record and waits for the broker's ack, retrying transient
/// errors ([`classify_produce_error`]) with backoff ([`PRODUCE_RETRY`], with
/// jitter) until it is acked or `stop` is cancelled. A permanent error is
/// returned at once as [`DeliverError::Refused`], logged. `on_retry` is
/// called on each failed attempt (for a metric), which is also logged with
/// the error, topic and wait.
pub async fn deliver(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    stop: &tokio_util::sync::CancellationToken,
    on_retry: impl Fn(),
) -> Result<(), DeliverError> {
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
    retry(&PRODUCE_RETRY, stop, classify_produce_error, log_retry, produce).await.map_err(|error| match error {
        RetryError::Stopped => DeliverError::Stopped,
        RetryError::Permanent(error) | RetryError::GaveUp { error, .. } => {
            tracing::error!(%error, %topic, bytes = payload.len(), "produce refused; not retried");
            DeliverError::Refused(error)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::MessageProduction(code)
    }

    #[test]
    fn produce_errors_are_classified() {
        use ErrorClass::{Permanent, Transient};
        // (error, class, about the record, too large)
        let cases = [
            (produce(RDKafkaErrorCode::MessageSizeTooLarge), Permanent, true, true),
            (produce(RDKafkaErrorCode::MessageBatchTooLarge), Permanent, true, true),
            (produce(RDKafkaErrorCode::InvalidMessageSize), Permanent, true, true),
            (produce(RDKafkaErrorCode::InvalidRecord), Permanent, true, false),
            (produce(RDKafkaErrorCode::TopicAuthorizationFailed), Permanent, false, false),
            (produce(RDKafkaErrorCode::ClusterAuthorizationFailed), Permanent, false, false),
            (produce(RDKafkaErrorCode::InvalidTopic), Permanent, false, false),
            // What an outage causes.
            (produce(RDKafkaErrorCode::MessageTimedOut), Transient, false, false),
            (produce(RDKafkaErrorCode::AllBrokersDown), Transient, false, false),
            (produce(RDKafkaErrorCode::BrokerTransportFailure), Transient, false, false),
            (produce(RDKafkaErrorCode::QueueFull), Transient, false, false),
            (produce(RDKafkaErrorCode::NotLeaderForPartition), Transient, false, false),
            (produce(RDKafkaErrorCode::NotEnoughReplicas), Transient, false, false),
            (produce(RDKafkaErrorCode::RequestTimedOut), Transient, false, false),
            (produce(RDKafkaErrorCode::UnknownTopicOrPartition), Transient, false, false),
            (KafkaError::Canceled, Transient, false, false),
        ];
        for (error, class, record, too_large) in cases {
            assert_eq!(classify_produce_error(&error), class, "{error}");
            assert_eq!(DeliverError::Refused(error.clone()).refuses_record(), record, "{error}");
            assert_eq!(is_too_large(&error), too_large, "{error}");
        }
        assert!(!DeliverError::Stopped.refuses_record());
    }

    #[test]
    fn a_record_fits_under_the_largest_record_with_its_overhead() {
        let settings = KafkaSettings {
            brokers: String::new(),
            partitions: 1,
            replication_factor: 1,
            max_record_bytes: 1_000,
            client: Default::default(),
        };
        let key = [0u8; 36];
        assert!(fits(&settings, Some(&key), &[0; 1_000 - 36 - RECORD_OVERHEAD_BYTES]));
        assert!(!fits(&settings, Some(&key), &[0; 1_000 - 36 - RECORD_OVERHEAD_BYTES + 1]));
        assert!(fits(&settings, None, &[0; 1_000 - RECORD_OVERHEAD_BYTES]));
        assert_eq!(partition_fetch_bytes(&settings), 1 << 20, "never below librdkafka's default");
        let large = KafkaSettings { max_record_bytes: 20_000_000, ..settings };
        assert_eq!(partition_fetch_bytes(&large), 20_000_000 + BATCH_OVERHEAD_BYTES);
        assert_eq!(fetch_max_bytes(&large), 50 << 20);
    }

    #[tokio::test]
    async fn librdkafka_takes_the_sizes_from_the_default_to_a_hundred_megabytes() {
        for max_record_bytes in [1_000, 1_000_000, 20_000_000, 100_000_000] {
            let settings = KafkaSettings {
                brokers: "127.0.0.1:1".into(),
                partitions: 1,
                replication_factor: 1,
                max_record_bytes,
                client: Default::default(),
            };
            if let Err(error) = consumer(&settings, "g", ConsumerLag::default()) {
                panic!("consumer at {max_record_bytes}: {error}");
            }
            if let Err(error) = producer(&settings) {
                panic!("producer at {max_record_bytes}: {error}");
            }
        }
    }
}
