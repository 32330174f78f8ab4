//! The ingester: reads invoice lines from `topics.input`, and for each
//! record produces exactly one record downstream: the validated,
//! pseudonymised, enriched line to `topics.valid`, or a dead letter with
//! every reason to `topics.dead_letter`. Nothing is dropped.
//!
//! Offsets are stored only once the downstream record is acknowledged by
//! the broker, in the order the records were read: a record whose produce
//! has not succeeded holds back every offset after it.

mod metrics;
pub mod offline;
mod processor;

use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_runtime::config::Topics;
use distans_runtime::telemetry::Server;
use distans_runtime::{kafka, now_ms, Settings};
use distans_wire::Codec;

pub use metrics::Metrics;
pub use processor::{Processor, Routed};

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error(transparent)]
    Config(#[from] distans_runtime::ConfigError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot serve http: {0}")]
    Http(#[from] std::io::Error),
    #[error("cannot encode a record (a bug: the line was valid): {0}")]
    Encode(#[from] distans_wire::EncodeError),
    #[error("a record the ingester encoded does not decode (a bug): {0}")]
    Decode(#[from] distans_wire::DecodeError),
}

/// How long a stopping ingester waits for acks of records already produced.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the ingester until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), IngesterError> {
    Ingester::start(&settings, shutdown).await?.run().await
}

/// A running ingester: its clients, its logic, and what it reports.
pub struct Ingester {
    /// Reads `topics.input`; offsets are stored only after the downstream ack.
    consumer: kafka::Input,
    /// Writes valid lines and dead letters, waiting for all replicas.
    producer: FutureProducer,
    /// One record in, one routed record out (no I/O).
    processor: Processor,
    /// Input, valid and dead-letter topic names.
    topics: Topics,
    /// Records produced but not yet acked at most (backpressure on Kafka).
    max_in_flight: usize,
    metrics: Metrics,
    /// Cancelled on SIGINT/SIGTERM, and by the ingester when it stops.
    shutdown: CancellationToken,
    /// The /healthz and /metrics server, ready from start-up to the drain.
    http: Server,
}

impl Ingester {
    /// Starts up: serves /healthz and /metrics, creates the topics that are
    /// missing, subscribes to `topics.input`, then reports ready.
    pub async fn start(settings: &Settings, shutdown: CancellationToken) -> Result<Ingester, IngesterError> {
        let pseudonymiser = settings.pseudonymiser()?;
        let validation = settings.validation()?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let http = Server::start(settings.ingester.http_listen, registry, &shutdown).await?;

        let topics = settings.topics.clone();
        kafka::ensure_topics(&settings.kafka, &[&topics.input, &topics.valid, &topics.dead_letter]).await?;
        let consumer = kafka::Input::new(&settings.kafka, &settings.ingester.group_id, metrics.consumer.clone())?;
        consumer.consumer().subscribe(&[&topics.input])?;
        http.health.watch(consumer.watch());
        let producer = kafka::producer(&settings.kafka)?;
        let processor = Processor::new(Codec::embedded(), settings.tariffs.clone(), pseudonymiser, validation);
        http.health.set_ready(true);
        tracing::info!(input = %topics.input, valid = %topics.valid, dead_letter = %topics.dead_letter, "ingester running");
        let max_in_flight = settings.ingester.max_in_flight;
        Ok(Ingester { consumer, producer, processor, topics, max_in_flight, metrics, shutdown, http })
    }

    /// Reads, routes and produces records until `shutdown` is cancelled, a
    /// record cannot be delivered (stopping) or a record cannot be encoded
    /// (a bug, returned); then drains.
    pub async fn run(self) -> Result<(), IngesterError> {
        // Each entry resolves once its downstream record is acked (or the
        // ingester is stopping); FuturesOrdered yields them in read order.
        let mut pending = FuturesOrdered::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break Ok(()),
                Some(delivered) = pending.next(), if !pending.is_empty() => {
                    self.metrics.in_flight.dec();
                    if !self.store(delivered) {
                        break Ok(());
                    }
                }
                message = self.consumer.recv(), if pending.len() < self.max_in_flight => {
                    match self.produce(&message) {
                        Ok(delivery) => pending.push_back(delivery),
                        Err(error) => break Err(error),
                    }
                }
            }
        };
        self.drain(pending).await;
        result
    }

    /// Routes one record and starts producing its downstream record;
    /// the returned future resolves once it is acked (see [`deliver`]).
    fn produce(
        &self,
        message: &BorrowedMessage<'_>,
    ) -> Result<impl Future<Output = Option<Provenance>> + use<>, IngesterError> {
        let source =
            Provenance { topic: message.topic().to_string(), partition: message.partition(), offset: message.offset() };
        let routed = self.processor.process(message.key(), message.payload(), &source, now_ms())?;
        let (topic, key, payload) = match routed {
            Routed::Valid { key, payload, warnings } => {
                self.metrics.valid.inc();
                for reason in warnings {
                    self.metrics.warned(reason, &source);
                }
                (self.topics.valid.clone(), key, payload)
            }
            Routed::DeadLetter { key, payload, reason, problems } => {
                self.metrics.dead_lettered(reason, &source, problems);
                (self.topics.dead_letter.clone(), key, payload)
            }
        };
        self.metrics.in_flight.inc();
        let (producer, metrics, shutdown) = (self.producer.clone(), self.metrics.clone(), self.shutdown.clone());
        Ok(deliver(producer, topic, key, payload, source, metrics, shutdown))
    }

    /// Stopping: gives records already produced a moment to be acked, so
    /// their offsets can be stored (whatever is not acked is read again),
    /// commits the stored offsets, reports not ready and stops the http server.
    async fn drain<F: Future<Output = Option<Provenance>>>(self, mut pending: FuturesOrdered<F>) {
        let acked = async {
            while let Some(delivered) = pending.next().await {
                self.metrics.in_flight.dec();
                if !self.store(delivered) {
                    break;
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, acked).await.is_err() {
            tracing::warn!("records still unacked at shutdown; they will be read again");
        }
        self.consumer.commit_stored_offsets();
        self.http.stop().await;
    }

    /// Stores the offset of a delivered record. Returns false when the record
    /// was not delivered: nothing after it may be stored.
    fn store(&self, delivered: Option<Provenance>) -> bool {
        let Some(source) = delivered else {
            return false;
        };
        self.consumer.store_processed(&source.topic, source.partition, source.offset);
        true
    }
}

impl std::fmt::Debug for Ingester {
    /// By hand: the producer has no `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingester")
            .field("consumer", &self.consumer)
            .field("topics", &self.topics)
            .field("max_in_flight", &self.max_in_flight)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Produces one record, retrying until the broker acks it. Resolves to the
/// source position once acked, or `None` if the ingester stops first.
async fn deliver(
    producer: FutureProducer,
    topic: String,
    key: Vec<u8>,
    payload: Vec<u8>,
    source: Provenance,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Option<Provenance> {
    let on_retry = || {
        metrics.produce_retries.inc();
    };
    kafka::deliver(&producer, &topic, Some(&key), &payload, &shutdown, on_retry).await.ok()?;
    Some(source)
}
