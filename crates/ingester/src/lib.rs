//! The ingester: reads invoice lines from `topics.input`, and for each
//! record produces exactly one record downstream: the validated,
//! pseudonymised, enriched line to `topics.valid`, or a dead letter with
//! every reason to `topics.dead_letter`. Nothing is dropped.
//!
//! Offsets are stored only once the downstream record is acknowledged by
//! the broker, in the order the records were read: a record whose produce
//! has not succeeded holds back every offset after it.

mod metrics;
mod processor;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_runtime::{kafka, now_ms, telemetry, Health, Settings};
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
}

/// How long a stopping ingester waits for acks of records already produced.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the ingester until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), IngesterError> {
    let pseudonymiser = settings.pseudonymiser()?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let health = Health::default();
    let (_, http) =
        telemetry::serve(settings.ingester.http_listen, Arc::new(registry), health.clone(), shutdown.clone()).await?;

    let topics = &settings.topics;
    kafka::ensure_topics(&settings.kafka, &[&topics.input, &topics.valid, &topics.dead_letter]).await?;
    let consumer = kafka::consumer(&settings.kafka, &settings.ingester.group_id, metrics.lag.clone())?;
    consumer.subscribe(&[&topics.input])?;
    let producer = kafka::producer(&settings.kafka)?;
    let processor = Processor::new(Codec::embedded(), settings.tariffs.clone(), pseudonymiser);
    health.set_ready(true);
    tracing::info!(input = %topics.input, valid = %topics.valid, dead_letter = %topics.dead_letter, "ingester running");

    // Each entry resolves once its downstream record is acked (or the
    // ingester is stopping); FuturesOrdered yields them in read order.
    let mut pending = FuturesOrdered::new();
    let max_in_flight = settings.ingester.max_in_flight;
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            Some(delivered) = pending.next(), if !pending.is_empty() => {
                metrics.in_flight.dec();
                if !store(&consumer, &metrics, delivered) {
                    break Ok(());
                }
            }
            received = consumer.recv(), if pending.len() < max_in_flight => {
                let message = match received {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "kafka consumer error; continuing");
                        continue;
                    }
                };
                metrics.consumed.inc();
                let source = Provenance {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                };
                let routed = match processor.process(message.key(), message.payload(), &source, now_ms()) {
                    Ok(routed) => routed,
                    Err(error) => break Err(error.into()),
                };
                let (topic, key, payload) = match routed {
                    Routed::Valid { key, payload } => {
                        metrics.valid.inc();
                        (topics.valid.clone(), key, payload)
                    }
                    Routed::DeadLetter { key, payload, reason, problems } => {
                        metrics.dead_lettered(reason, &source, problems);
                        (topics.dead_letter.clone(), key, payload)
                    }
                };
                metrics.in_flight.inc();
                pending.push_back(deliver(producer.clone(), topic, key, payload, source, metrics.clone(), shutdown.clone()));
            }
        }
    };

    // Stopping: give records already produced a moment to be acked, so
    // their offsets can be stored; whatever is not acked is read again.
    let drain = async {
        while let Some(delivered) = pending.next().await {
            metrics.in_flight.dec();
            if !store(&consumer, &metrics, delivered) {
                break;
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("records still unacked at shutdown; they will be read again");
    }
    kafka::commit_stored_offsets(&consumer);
    health.set_ready(false);
    shutdown.cancel();
    let _ = http.await;
    result
}

/// Stores the offset of a delivered record. Returns false when the record
/// was not delivered: nothing after it may be stored.
fn store<C: Consumer<kafka::LagContext>>(consumer: &C, metrics: &Metrics, delivered: Option<Provenance>) -> bool {
    let Some(source) = delivered else {
        return false;
    };
    if !kafka::store_processed(consumer, &source.topic, source.partition, source.offset) {
        metrics.offset_store_failures.inc();
    }
    true
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
