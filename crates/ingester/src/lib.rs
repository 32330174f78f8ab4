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
mod schemas;

use std::future::Future;

use futures::stream::{FuturesOrdered, StreamExt};
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

use distans_domain::enrich::Provenance;
use distans_domain::ReasonCode;
use distans_runtime::config::Topics;
use distans_runtime::kafka::DeliverError;
use distans_runtime::service::{start_then_run, ServiceError, DRAIN_TIMEOUT};
use distans_runtime::telemetry::Server;
use distans_runtime::{kafka, now_ms, pseudonym_keys, Settings};
use distans_wire::Codec;

pub use metrics::Metrics;
pub use processor::{Processor, Routed};

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error(transparent)]
    Config(#[from] distans_runtime::ConfigError),
    /// What any service can fail with (the broker, the http server, …).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The key is not the one recorded for its version, or a new version
    /// without `pseudonym.rotate` (`distans_runtime::pseudonym_keys`).
    #[error(transparent)]
    PseudonymKey(#[from] distans_runtime::pseudonym_keys::CheckError),
    #[error("a record the ingester encoded does not decode (a bug): {0}")]
    Decode(#[from] distans_wire::DecodeError),
    /// The schema registry refused distans for good (credentials, a CA
    /// file, a request it does not take): every record would wait on it.
    #[error(transparent)]
    SchemaRegistry(#[from] distans_runtime::schema_registry::RegistryError),
    /// The broker refused a produce for good, and a dead letter cannot take
    /// the record's place: the topic is not writable (e.g. not authorised)
    /// or takes less than `kafka.max_record_bytes`. Every later record
    /// would fail too; the offset was not stored.
    #[error("cannot produce to {topic} (record at {}/{}@{}): {error}; check the topic's ACLs and that the broker takes kafka.max_record_bytes", .record.topic, .record.partition, .record.offset)]
    Refused { topic: String, record: Box<Provenance>, error: rdkafka::error::KafkaError },
}

distans_runtime::service_error!(IngesterError);

/// Runs the ingester until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), IngesterError> {
    start_then_run(Ingester::start(&settings, shutdown), Ingester::run).await
}

/// A running ingester: its clients, its logic, and what it reports.
pub struct Ingester {
    /// Reads `topics.input`; offsets are stored only after the downstream ack.
    consumer: kafka::Input,
    /// Writes valid lines and dead letters, waiting for all replicas.
    producer: kafka::Producer,
    /// One record in, one routed record out (no I/O).
    processor: Processor,
    /// The input topic's writer schemas from a schema registry, if configured.
    schemas: Option<schemas::InputSchemas>,
    /// Input, valid and dead-letter topic names.
    topics: Topics,
    /// `pseudonym.key_version` as checked at start, as text: the header
    /// (`pseudonym_keys::KEY_VERSION_HEADER`) of every valid line.
    key_version: String,
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
    /// missing, checks the pseudonym key against the recorded one (recording
    /// it on a first start or an explicit rotation), subscribes to
    /// `topics.input`, then reports ready.
    pub async fn start(settings: &Settings, shutdown: CancellationToken) -> Result<Ingester, IngesterError> {
        let pseudonymiser = settings.pseudonymiser()?;
        let validation = settings.validation()?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.expect_warnings(&settings.validation.checks.warned());
        let http = Server::start(settings.ingester.http_listen, "ingester.http_listen", registry, &shutdown).await?;

        let topics = settings.topics.clone();
        kafka::connect(&settings.kafka, &shutdown).await?;
        kafka::ensure_topics(&settings.kafka, &[&topics.input, &topics.valid, &topics.dead_letter]).await?;
        // Before any line is pseudonymised: a key other than the recorded
        // one would give every patient a second pseudonym.
        let key_version = pseudonym_keys::check(settings, "distans-ingester").await?;
        let consumer = kafka::Input::new(&settings.kafka, &settings.ingester.group_id, metrics.consumer.clone())?;
        consumer.consumer().subscribe(&[&topics.input])?;
        http.health.watch(consumer.watch());
        let producer = kafka::producer(&settings.kafka)?;
        let schemas = schemas::InputSchemas::connect(settings).await?;
        let codec = match &schemas {
            Some(schemas) => schemas.codec(Codec::embedded()),
            None => Codec::embedded(),
        };
        let processor = Processor::new(codec, settings.tariffs.clone(), pseudonymiser, validation)
            .with_max_record_bytes(settings.kafka.max_record_bytes);
        http.health.set_ready();
        tracing::info!(input = %topics.input, valid = %topics.valid, dead_letter = %topics.dead_letter, "ingester running");
        let max_in_flight = settings.ingester.max_in_flight;
        let key_version = key_version.to_string();
        Ok(Ingester {
            consumer,
            producer,
            processor,
            schemas,
            topics,
            key_version,
            max_in_flight,
            metrics,
            shutdown,
            http,
        })
    }

    /// Reads, routes and produces records until `shutdown` is cancelled, a
    /// record cannot be delivered (stopping), the broker refuses a record
    /// that no dead letter can replace, or a record cannot be encoded (a
    /// bug); then drains.
    pub async fn run(self) -> Result<(), IngesterError> {
        // Each entry resolves once its downstream record is acked, refused,
        // or the ingester is stopping; FuturesOrdered yields them in read order.
        let mut pending: FuturesOrdered<Delivery> = FuturesOrdered::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break Ok(()),
                Some(delivered) = pending.next(), if !pending.is_empty() => {
                    match self.settle(delivered) {
                        Ok(Settled::Stored) => {
                            self.metrics.in_flight.dec();
                        }
                        // In its place, first in line: nothing after it is stored before it.
                        Ok(Settled::Replaced(dead_letter)) => pending.push_front(dead_letter),
                        Ok(Settled::Stopped) => break Ok(()),
                        Err(error) => break Err(error),
                    }
                }
                message = self.consumer.recv(), if pending.len() < self.max_in_flight => {
                    if let Some(schemas) = &self.schemas {
                        // The writer's schema, fetched before the record is decoded; while the
                        // registry is unreachable the record waits here (and so does every later one).
                        match schemas.fetch_for(message.payload(), &self.shutdown, &self.metrics, &self.http.health).await {
                            Ok(()) => {}
                            Err(schemas::FetchFailed::Stopped) => break Ok(()),
                            Err(schemas::FetchFailed::Refused(error)) => break Err(error.into()),
                        }
                    }
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
    /// the returned future resolves once it is acked or refused (see [`deliver`]).
    fn produce(&self, message: &BorrowedMessage<'_>) -> Result<Delivery, IngesterError> {
        let source = kafka::provenance(message);
        let routed = self.processor.process(message.key(), message.payload(), &source, now_ms())?;
        let outgoing = match routed {
            Routed::Valid { key, payload, warnings } => Outgoing {
                topic: self.topics.valid.clone(),
                key,
                payload,
                route: Route::Valid {
                    warnings,
                    // Kept while in flight: should the broker refuse the line,
                    // its dead letter carries the original.
                    original_key: message.key().map(<[u8]>::to_vec),
                    original: message.payload().unwrap_or_default().to_vec(),
                },
                source,
            },
            Routed::DeadLetter { key, payload, reason, problems } => Outgoing {
                topic: self.topics.dead_letter.clone(),
                key,
                payload,
                route: Route::DeadLetter { reason, problems },
                source,
            },
        };
        self.metrics.in_flight.inc();
        Ok(self.deliver(outgoing))
    }

    fn deliver(&self, outgoing: Outgoing) -> Delivery {
        let (producer, metrics, shutdown) = (self.producer.clone(), self.metrics.clone(), self.shutdown.clone());
        let key_version = matches!(outgoing.route, Route::Valid { .. }).then(|| self.key_version.clone());
        Box::pin(deliver(producer, outgoing, key_version, metrics, shutdown))
    }

    /// What a finished delivery means: a delivered record is counted and its
    /// offset stored; a valid line the broker refused is replaced by its dead
    /// letter; anything else refused stops the ingester with the error.
    fn settle(&self, delivered: Delivered) -> Result<Settled, IngesterError> {
        let (outgoing, error) = match delivered {
            Delivered::Stopped => return Ok(Settled::Stopped),
            Delivered::Acked(outgoing) => {
                match &outgoing.route {
                    Route::Valid { warnings, .. } => {
                        self.metrics.valid.inc();
                        for reason in warnings {
                            self.metrics.warned(*reason, &outgoing.source);
                        }
                    }
                    Route::DeadLetter { reason, problems } => {
                        self.metrics.dead_lettered(*reason, &outgoing.source, *problems);
                    }
                }
                let source = &outgoing.source;
                self.consumer.store_processed(&source.topic, source.partition, source.offset);
                return Ok(Settled::Stored);
            }
            Delivered::Refused(outgoing, error) => (outgoing, error),
        };
        let Outgoing { topic, route, source, .. } = outgoing;
        match route {
            Route::Valid { original_key, original, .. } if error.refuses_record() => {
                let DeliverError::Refused(error) = error else { unreachable!("refuses_record") };
                let too_large = kafka::is_too_large(&error);
                let routed = self.processor.refused(
                    original_key.as_deref(),
                    &original,
                    &source,
                    &error.to_string(),
                    too_large,
                    now_ms(),
                )?;
                let Routed::DeadLetter { key, payload, reason, problems } = routed else {
                    unreachable!("refused routes a dead letter")
                };
                let topic = self.topics.dead_letter.clone();
                let route = Route::DeadLetter { reason, problems };
                Ok(Settled::Replaced(self.deliver(Outgoing { topic, key, payload, route, source })))
            }
            _ => {
                let error = match error {
                    DeliverError::Refused(error) => error,
                    DeliverError::Stopped => return Ok(Settled::Stopped),
                };
                Err(IngesterError::Refused { topic, record: Box::new(source), error })
            }
        }
    }

    /// Stopping: gives records already produced a moment to be acked, so
    /// their offsets can be stored (whatever is not acked is read again),
    /// commits the stored offsets, reports not ready and stops the http server.
    async fn drain(self, mut pending: FuturesOrdered<Delivery>) {
        let acked = async {
            while let Some(delivered) = pending.next().await {
                match self.settle(delivered) {
                    Ok(Settled::Stored) => {
                        self.metrics.in_flight.dec();
                    }
                    Ok(Settled::Replaced(dead_letter)) => pending.push_front(dead_letter),
                    Ok(Settled::Stopped) => break,
                    Err(error) => {
                        tracing::error!(%error, "stopping; the record will be read again");
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, acked).await.is_err() {
            tracing::warn!("records still unacked at shutdown; they will be read again");
        }
        self.consumer.commit_stored_offsets();
        self.http.stop().await;
    }
}

/// A downstream record on its way, with what to count once it is acked.
struct Outgoing {
    topic: String,
    key: Vec<u8>,
    payload: Vec<u8>,
    route: Route,
    /// The input record it stands for.
    source: Provenance,
}

enum Route {
    Valid { warnings: Vec<ReasonCode>, original_key: Option<Vec<u8>>, original: Vec<u8> },
    DeadLetter { reason: ReasonCode, problems: usize },
}

/// How a delivery ended.
enum Delivered {
    Acked(Outgoing),
    Refused(Outgoing, DeliverError),
    Stopped,
}

/// What the ingester did with a finished delivery.
enum Settled {
    /// Counted, and its offset stored.
    Stored,
    /// A refused valid line: its dead letter, to deliver in its place.
    Replaced(Delivery),
    /// Stopping: nothing after it may be stored.
    Stopped,
}

type Delivery = std::pin::Pin<Box<dyn Future<Output = Delivered> + Send>>;

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

/// Produces one record, retrying transient errors until the broker acks
/// it; a permanent error ends it at once (see [`kafka::deliver`]).
/// A valid line carries its pseudonym's `key_version` in a header.
async fn deliver(
    producer: kafka::Producer,
    outgoing: Outgoing,
    key_version: Option<String>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Delivered {
    let on_retry = || {
        metrics.produce_retries.inc();
    };
    let headers: Vec<(&str, &[u8])> =
        key_version.iter().map(|v| (pseudonym_keys::KEY_VERSION_HEADER, v.as_bytes())).collect();
    let (topic, key, payload) = (&outgoing.topic, Some(outgoing.key.as_slice()), &outgoing.payload);
    let result = kafka::deliver_with_headers(&producer, topic, key, payload, &headers, &shutdown, on_retry).await;
    match result {
        Ok(()) => Delivered::Acked(outgoing),
        Err(DeliverError::Stopped) => Delivered::Stopped,
        Err(error) => Delivered::Refused(outgoing, error),
    }
}
