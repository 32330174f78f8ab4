//! Kafka clients configured the one way distans uses them: consumers that
//! store offsets only when told to (after the downstream ack), producers
//! that wait for all replicas.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, FutureProducer, Producer as _};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::KafkaSettings;
pub use crate::metrics::{ConsumerLag, PartitionLabels};
use crate::metrics::{ConsumerMetrics, RebalanceLabels};
use crate::progress::{NotReady, Progress};
use crate::retry::{retry, ErrorClass, RetryError, RetryPolicy};

/// A client config with the brokers, `properties`, and then the operator's
/// `kafka.client` properties, which win. librdkafka logs at the most
/// detailed level that `tracing` takes for the target `librdkafka` (see
/// [`log_to_tracing`]; its debug lines also need the librdkafka property
/// `debug`, e.g. `kafka.client.debug = "broker,security"`).
pub fn client_config(settings: &KafkaSettings, properties: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set_log_level(librdkafka_log_level());
    config.set("bootstrap.servers", &settings.brokers);
    for (key, value) in properties {
        config.set(*key, *value);
    }
    for (key, value) in &settings.client {
        config.set(key, value);
    }
    config
}

/// The most detailed librdkafka log level that `tracing` takes for the
/// target `librdkafka` (`RUST_LOG=librdkafka=debug`, or `log.filter`).
fn librdkafka_log_level() -> RDKafkaLogLevel {
    if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    }
}

/// A librdkafka log line as a `tracing` event at its level (syslog levels:
/// emergency to error → ERROR, warning → WARN, notice and info → INFO,
/// debug → DEBUG), target `librdkafka`, with librdkafka's facility
/// (`FAIL`, `SSL`, `SASL`, `OFFSET`, …) as a field.
pub fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// librdkafka's error callback (a broker down, a failed TLS handshake or
/// authentication, all brokers down) as a `tracing` event: ERROR for the
/// errors no retry fixes ([`Misconfigured`]), WARN when all brokers are
/// down, DEBUG for the rest, which librdkafka has logged already (facility
/// `FAIL`) and retries by itself.
pub fn error_to_tracing(error: &KafkaError, reason: &str) {
    if Misconfigured::from_error(error, reason).is_some() {
        tracing::error!(target: "librdkafka", %error, "{reason}");
    } else if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    } else {
        tracing::debug!(target: "librdkafka", %error, "{reason}");
    }
}

/// Client context of producers and admin clients: librdkafka's logs and
/// errors as `tracing` events ([`log_to_tracing`], [`error_to_tracing`]),
/// and the first error that names a misconfiguration ([`Misconfigured`]),
/// kept for [`connect`].
#[derive(Debug, Clone, Default)]
pub struct LogContext {
    misconfigured: Arc<Mutex<Option<Misconfigured>>>,
}

impl LogContext {
    fn misconfigured(&self) -> Option<Misconfigured> {
        self.misconfigured.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        error_to_tracing(&error, reason);
        if let Some(found) = Misconfigured::from_error(&error, reason) {
            self.misconfigured.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(found);
        }
    }
}

/// [`connect`]'s client produces nothing.
impl rdkafka::producer::ProducerContext for LogContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// A broker connection that failed because of the client's settings, not
/// an outage: retrying cannot help, so [`connect`] stops the service with it.
/// `setting` names what to check, in the settings' own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misconfigured {
    pub setting: &'static str,
    pub problem: String,
}

impl Misconfigured {
    /// The misconfiguration an error of librdkafka's error callback reports,
    /// if it is one: a TLS handshake that failed (`Local: SSL error`:
    /// the broker's certificate is not signed by `ssl.ca.location`'s CA, does
    /// not name the host in `kafka.brokers`, or the broker speaks no TLS)
    /// or an authentication refused (`Local: Authentication failure`: SASL
    /// user, password or mechanism).
    pub fn from_error(error: &KafkaError, reason: &str) -> Option<Misconfigured> {
        let setting = match error.rdkafka_error_code()? {
            RDKafkaErrorCode::SSL => tls_setting(reason),
            RDKafkaErrorCode::Authentication => r#"kafka.client."sasl.username", "sasl.password" and "sasl.mechanism""#,
            _ => return None,
        };
        Some(Misconfigured { setting, problem: reason.to_string() })
    }
}

/// The settings a failed TLS handshake points at, from librdkafka's reason.
/// OpenSSL's "certificate verify failed" does not say whether the CA or the
/// host name is wrong (librdkafka does not print the verify result), so
/// both are named.
fn tls_setting(reason: &str) -> &'static str {
    let reason = reason.to_ascii_lowercase();
    if reason.contains("certificate verify failed") || reason.contains("could not be verified") {
        r#"kafka.client."ssl.ca.location" (the CA that signs the broker's certificate) and the host names in kafka.brokers (each must be named in the broker's certificate)"#
    } else {
        r#"kafka.client."security.protocol" (ssl or sasl_ssl only where the broker speaks TLS) and the "ssl.*" properties"#
    }
}

/// Why [`connect`] returned without the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The service is stopping.
    #[error("stopped before the broker answered")]
    Stopped,
    /// The broker refused the client's TLS or SASL settings.
    #[error("cannot connect to the brokers {brokers}: {}; check {}", .misconfigured.problem, .misconfigured.setting)]
    Misconfigured { brokers: String, misconfigured: Misconfigured },
    /// The client cannot be created (an unknown property, an unreadable
    /// `ssl.ca.location`, a mechanism this build lacks): librdkafka's message
    /// names the property.
    #[error("invalid kafka.client settings: {0}")]
    Client(KafkaError),
    /// No broker answered within the time a command gives it
    /// ([`connect_within`]): down, or not at `kafka.brokers`.
    #[error(
        "no kafka broker answered at {brokers} within {} s: is it running, and is that its address? \
         (kafka.brokers, or DISTANS__KAFKA__BROKERS)",
        .waited.as_secs()
    )]
    NoAnswer { brokers: String, waited: Duration },
}

/// How long one metadata request of [`connect`] waits, so that a shutdown is
/// seen within about this long.
const CONNECT_ATTEMPT: Duration = Duration::from_secs(1);

/// The start-up check of every service: asks the brokers for their metadata
/// until one answers (`Ok`), the answer shows a misconfiguration
/// ([`ConnectError::Misconfigured`], naming the setting: a wrong CA, host
/// name or password is an error at once, not an endless retry), or
/// `shutdown` is cancelled ([`ConnectError::Stopped`]). A broker that is
/// down or unreachable is waited for, its errors logged by librdkafka.
pub async fn connect(
    settings: &KafkaSettings,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<(), ConnectError> {
    let context = LogContext::default();
    let client: BaseProducer<LogContext> =
        client_config(settings, &[]).create_with_context(context.clone()).map_err(ConnectError::Client)?;
    let client = Arc::new(client);
    let started = Instant::now();
    let mut waiting_logged = false;
    loop {
        let attempt = client.clone();
        let answered = tokio::task::spawn_blocking(move || {
            let answer = attempt.client().fetch_metadata(None, CONNECT_ATTEMPT);
            // Serves the log and error events queued so far (librdkafka puts
            // both on the main queue): `poll` serves events until its
            // timeout, and one served per attempt would fall behind the
            // logs of a failing broker, so that the error naming the
            // misconfiguration is seen late or never.
            if answer.is_err() {
                attempt.poll(CONNECT_PAUSE);
            }
            answer
        });
        let answered = tokio::select! {
            _ = shutdown.cancelled() => return Err(ConnectError::Stopped),
            answered = answered => answered,
        };
        if let Some(misconfigured) = context.misconfigured() {
            return Err(ConnectError::Misconfigured { brokers: settings.brokers.clone(), misconfigured });
        }
        match answered {
            Ok(Ok(metadata)) => {
                tracing::info!(brokers = %settings.brokers, known_brokers = metadata.brokers().len(), "connected to kafka");
                return Ok(());
            }
            Ok(Err(error)) if !waiting_logged && started.elapsed() >= Duration::from_secs(5) => {
                waiting_logged = true;
                tracing::warn!(brokers = %settings.brokers, %error, "no broker answers yet; waiting (librdkafka logs why)");
            }
            _ => {}
        }
        // An attempt that failed at once (a name that does not resolve) is
        // not repeated in a busy loop: its events were served for
        // CONNECT_PAUSE.
    }
}

/// [`connect`] for an operator's command, which should not wait for ever:
/// gives up after `within` with [`ConnectError::NoAnswer`].
pub async fn connect_within(settings: &KafkaSettings, within: Duration) -> Result<(), ConnectError> {
    match tokio::time::timeout(within, connect(settings, &tokio_util::sync::CancellationToken::new())).await {
        Ok(connected) => connected,
        Err(_) => Err(ConnectError::NoAnswer { brokers: settings.brokers.clone(), waited: within }),
    }
}

/// The pause between two failed attempts of [`connect`], spent serving the
/// client's events.
const CONNECT_PAUSE: Duration = Duration::from_millis(200);

/// A consumer in `group_id` that never stores an offset by itself: the
/// service calls `store_offset` once the record's output is acknowledged,
/// and the stored offsets are committed in the background. A committed
/// offset out of range is replaced by the group's `offset_reset` policy.
pub fn consumer(
    settings: &KafkaSettings,
    group_id: &str,
    context: LagContext,
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    client_config(
        settings,
        &[
            ("group.id", group_id),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", settings.offset_reset_of(group_id)),
            ("session.timeout.ms", "30000"),
            // The sink holds a batch while ClickHouse is down; give it room
            // before the group evicts it.
            ("max.poll.interval.ms", "600000"),
            ("statistics.interval.ms", "5000"),
            ("max.partition.fetch.bytes", &partition_fetch_bytes(settings).to_string()),
            ("fetch.max.bytes", &fetch_max_bytes(settings).to_string()),
            ("fetch.wait.max.ms", &settings.fetch_wait_max_ms.to_string()),
        ],
    )
    .create_with_context(context)
}

/// A consumer in `group_id` for reading a topic through once: the caller
/// assigns its partitions, a partition without a committed offset starts
/// at the earliest, and nothing is stored or committed automatically. The
/// pseudonym keys' loader, the notifier's pending digests and its first
/// start's backlog read use it.
pub fn reader(settings: &KafkaSettings, group_id: &str) -> Result<StreamConsumer, KafkaError> {
    client_config(
        settings,
        &[
            ("group.id", group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", &settings.fetch_wait_max_ms.to_string()),
        ],
    )
    .create()
}

/// How often the stall watchdog looks at a consumer's progress.
const WATCHDOG_TICK: Duration = Duration::from_secs(1);

/// A service's consumer ([`consumer`]) and its metrics: it counts the
/// records it reads, feeds the lag gauge, logs and counts every assignment
/// and revocation, counts the offsets it cannot store, and keeps each
/// partition's progress, which readiness ([`Input::readiness`]) and the
/// stall watchdog read.
///
/// The watchdog (a task started with the consumer, ticking every second):
/// when a subscribed consumer has had no partition for
/// `kafka.stall_timeout_ms`, or a partition has had records to read and
/// none was read for as long while the service waited for records (a
/// service that holds back by itself, its downstream down, is not ready but
/// keeps its partitions), it leaves the group and subscribes again,
/// backing off while that does not help. It re-joins rather than exiting
/// because the process's in-flight work and state survive a re-join, and a
/// fresh member of the same group is what a restart gives too, without
/// depending on a supervisor.
pub struct Input {
    consumer: Arc<StreamConsumer<LagContext>>,
    group_id: String,
    metrics: ConsumerMetrics,
    progress: Arc<Mutex<Progress>>,
    stall: Duration,
}

impl Input {
    /// A [`consumer`] in `group_id`; subscribe it through
    /// [`Input::consumer`], or assign it with [`Input::assign`].
    pub fn new(settings: &KafkaSettings, group_id: &str, metrics: ConsumerMetrics) -> Result<Input, KafkaError> {
        let progress = Arc::new(Mutex::new(Progress::new(Instant::now())));
        let context =
            LagContext { metrics: metrics.clone(), progress: progress.clone(), group_id: group_id.to_string() };
        let consumer = Arc::new(consumer(settings, group_id, context)?);
        let input =
            Input { consumer, group_id: group_id.to_string(), metrics, progress, stall: settings.stall_timeout() };
        tracing::info!(
            group_id,
            offset_reset = settings.offset_reset_of(group_id),
            stall_timeout_s = input.stall.as_secs(),
            "consumer created"
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let policy = settings.offset_reset_of(group_id).to_string();
            runtime.spawn(watchdog(Arc::downgrade(&input.consumer), input.watch(), policy));
        }
        Ok(input)
    }

    pub fn consumer(&self) -> &StreamConsumer<LagContext> {
        &self.consumer
    }

    /// The ids of `topic`'s partitions, from the broker's metadata (blocks
    /// for up to 10 s). Errors: [`PartitionsError`].
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, PartitionsError> {
        let metadata = self.consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        if partitions.is_empty() {
            return Err(PartitionsError::None(topic.to_string()));
        }
        Ok(partitions)
    }

    /// Assigns `partitions` (no group rebalance), and records them as the
    /// consumer's assignment.
    pub fn assign(&self, partitions: &TopicPartitionList) -> Result<(), KafkaError> {
        self.consumer.assign(partitions)?;
        let assigned = partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        self.consumer.context().on_assigned("assigned", assigned);
        Ok(())
    }

    /// A committed offset out of range that the service handled itself (the
    /// detector's replay): counted with librdkafka's resets.
    pub fn count_offset_reset(&self) {
        self.metrics.offset_resets.inc();
    }

    /// What readiness and the watchdog read of this consumer.
    pub fn watch(&self) -> ConsumerWatch {
        ConsumerWatch {
            group_id: self.group_id.clone(),
            progress: self.progress.clone(),
            metrics: self.metrics.clone(),
            stall: self.stall,
        }
    }

    /// Ready unless no partition is assigned or a partition stalls (see
    /// [`Progress::readiness`]).
    pub fn readiness(&self) -> Result<(), NotReady> {
        self.watch().readiness()
    }

    /// The next record. A consumer error is logged and reading goes on.
    /// Cancel-safe.
    pub async fn recv(&self) -> rdkafka::message::BorrowedMessage<'_> {
        let _waiting = Waiting::start(&self.progress);
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    self.metrics.consumed.inc();
                    self.consumer.context().on_progress(message.topic(), message.partition());
                    return message;
                }
                Err(error) => tracing::warn!(%error, "kafka consumer error; continuing"),
            }
        }
    }

    /// [`store_processed`], counting a failure.
    pub fn store_processed(&self, topic: &str, partition: i32, offset: i64) {
        if store_processed(&*self.consumer, topic, partition, offset) {
            self.consumer.context().on_progress(topic, partition);
        } else {
            self.metrics.offset_store_failures.inc();
        }
    }

    /// [`commit_stored_offsets`]: before the consumer goes away.
    pub fn commit_stored_offsets(&self) {
        commit_stored_offsets(&*self.consumer);
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("group_id", &self.group_id).finish_non_exhaustive()
    }
}

/// Where `message` was read: its topic, partition and offset, as a record
/// the service makes from it (an enriched line, a dead letter, a row)
/// carries them.
pub fn provenance(message: &impl Message) -> distans_domain::enrich::Provenance {
    distans_domain::enrich::Provenance {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
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

/// Marks the service as waiting for a record until dropped (also when the
/// `recv` future is cancelled).
struct Waiting<'a>(&'a Mutex<Progress>);

impl<'a> Waiting<'a> {
    fn start(progress: &'a Mutex<Progress>) -> Waiting<'a> {
        lock(progress).waiting(Some(Instant::now()));
        Waiting(progress)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.0).waiting(None);
    }
}

/// A consumer's progress as readiness sees it (see [`Input::watch`]).
#[derive(Debug, Clone)]
pub struct ConsumerWatch {
    group_id: String,
    progress: Arc<Mutex<Progress>>,
    metrics: ConsumerMetrics,
    stall: Duration,
}

impl ConsumerWatch {
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// See [`Progress::readiness`].
    pub fn readiness(&self) -> Result<(), NotReady> {
        lock(&self.progress).readiness(Instant::now(), self.stall)
    }
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The stall watchdog of a consumer (see [`Input`]), until it is dropped.
async fn watchdog(consumer: Weak<StreamConsumer<LagContext>>, watch: ConsumerWatch, policy: String) {
    let mut ticks = tokio::time::interval(WATCHDOG_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_ready = true;
    let mut checked: HashSet<(String, i32)> = HashSet::new();
    loop {
        ticks.tick().await;
        let Some(consumer) = consumer.upgrade() else { return };
        let readiness = watch.readiness();
        match (&readiness, was_ready) {
            (Err(problem), true) => {
                tracing::warn!(group_id = %watch.group_id, %problem, "consumer not ready")
            }
            (Ok(()), false) => tracing::info!(group_id = %watch.group_id, "consumer ready"),
            _ => {}
        }
        was_ready = readiness.is_ok();
        let subscription = match consumer.subscription() {
            Ok(subscription) if subscription.count() > 0 => subscription,
            // Assigned by hand (the detector, which replays from the start and
            // takes a committed offset past the end as nothing to replay):
            // there is no group to re-join.
            _ => continue,
        };
        reset_past_the_end(&consumer, &watch, &policy, &mut checked);
        let Some(problem) = lock(&watch.progress).should_rejoin(Instant::now(), watch.stall) else { continue };
        let topics: Vec<String> = subscription.elements().iter().map(|e| e.topic().to_string()).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        tracing::warn!(group_id = %watch.group_id, %problem, ?topics, "stall watchdog: leaving and re-joining the group");
        watch.metrics.rejoins.inc();
        lock(&watch.progress).rejoined(Instant::now());
        consumer.unsubscribe();
        if let Err(error) = consumer.subscribe(&topics) {
            tracing::error!(group_id = %watch.group_id, %error, "stall watchdog: cannot subscribe again");
        }
    }
}

/// Seeks, by the group's `offset_reset` policy, each assigned partition
/// whose committed offset is past its high watermark: a committed offset beyond the
/// end (a recreated topic). Apache Kafka answers such a fetch with
/// OFFSET_OUT_OF_RANGE and librdkafka resets by `auto.offset.reset`; tansu
/// 0.6 answers it with no records, so nothing would ever be read. Each
/// partition is looked at once per assignment (a tick with nothing newly
/// assigned asks the broker nothing); the two queries block for at most 5 s
/// each. Logged and counted as an offset reset.
fn reset_past_the_end(
    consumer: &StreamConsumer<LagContext>,
    watch: &ConsumerWatch,
    policy: &str,
    checked: &mut HashSet<(String, i32)>,
) {
    let Ok(assignment) = consumer.assignment() else { return };
    let assigned: HashSet<(String, i32)> =
        assignment.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
    checked.retain(|partition| assigned.contains(partition));
    let mut unchecked = TopicPartitionList::new();
    for (topic, partition) in assigned.iter().filter(|p| !checked.contains(*p)) {
        unchecked.add_partition(topic, *partition);
    }
    if unchecked.count() == 0 {
        return;
    }
    let committed = tokio::task::block_in_place(|| consumer.committed_offsets(unchecked, Duration::from_secs(5)));
    let Ok(committed) = committed else { return };
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let rdkafka::Offset::Offset(position) = element.offset() else {
            // Nothing committed: the group starts by its policy already.
            checked.insert((topic.to_string(), partition));
            continue;
        };
        let watermarks =
            tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)));
        let Ok((low, high)) = watermarks else { continue };
        checked.insert((topic.to_string(), partition));
        if position <= high {
            continue;
        }
        let to = match policy {
            "earliest" => rdkafka::Offset::Offset(low),
            "latest" => rdkafka::Offset::Offset(high),
            _ => {
                tracing::error!(group_id = %watch.group_id, %topic, partition, position, high,
                    "committed offset past the end of the partition; offset_reset is \"error\": not reading it");
                continue;
            }
        };
        watch.metrics.offset_resets.inc();
        tracing::warn!(group_id = %watch.group_id, %topic, partition, position, high, policy,
            "position past the end of the partition; resetting by the offset_reset policy");
        if let Err(error) = consumer.seek(topic, partition, to, Duration::from_secs(5)) {
            tracing::error!(group_id = %watch.group_id, %topic, partition, %error, "cannot seek past-the-end partition");
        }
    }
}

/// Why [`Input::partitions`] has no partitions to give.
#[derive(Debug, thiserror::Error)]
pub enum PartitionsError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The broker's metadata lists no partition of the topic.
    #[error("topic {0} has no partitions")]
    None(String),
}

/// The producer every service uses: librdkafka's logs and errors go to
/// `tracing` ([`LogContext`]).
pub type Producer = FutureProducer<LogContext>;

/// A producer that waits for all in-sync replicas and retries on its own,
/// and refuses a record larger than `kafka.max_record_bytes`
/// (`message.max.bytes`) before sending it.
pub fn producer(settings: &KafkaSettings) -> Result<Producer, KafkaError> {
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
    .create_with_context(LogContext::default())
}

/// Records a [`produce_all`] leaves awaiting the broker's ack, at most.
const MAX_IN_FLIGHT: usize = 10_000;

/// Records [`produce_all`] sent that the broker did not acknowledge.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records were not acknowledged; first error: {first}")]
pub struct NotAcknowledged {
    pub failed: usize,
    pub total: usize,
    pub first: KafkaError,
}

/// Sends `(key, value)` records to `topic` as they are with `producer`, at
/// most [`MAX_IN_FLIGHT`] awaiting the broker's ack, and waits for every
/// ack, calling `on_ack` for each. Errors: [`NotAcknowledged`] when any
/// record was not acknowledged (each is tried for `message.timeout.ms`).
pub async fn produce_all(
    producer: &Producer,
    topic: &str,
    records: &[(Vec<u8>, Vec<u8>)],
    mut on_ack: impl FnMut(),
) -> Result<(), NotAcknowledged> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut in_flight = FuturesUnordered::new();
    let (mut failed, mut first) = (0usize, None);
    let mut note = |result: Result<_, (KafkaError, _)>| match result {
        Ok(_) => on_ack(),
        Err((error, _)) => {
            failed += 1;
            first.get_or_insert(error);
        }
    };
    for (key, value) in records {
        if in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(result) = in_flight.next().await {
                note(result);
            }
        }
        let record = rdkafka::producer::FutureRecord::to(topic).key(key).payload(value);
        in_flight.push(producer.send(record, Duration::from_secs(30)));
    }
    while let Some(result) = in_flight.next().await {
        note(result);
    }
    match first {
        Some(first) => Err(NotAcknowledged { failed, total: records.len(), first }),
        None => Ok(()),
    }
}

/// Creates the topics that do not exist yet, each taking batches of up to
/// `kafka.max_record_bytes` (+ [`BATCH_OVERHEAD_BYTES`]) as its
/// `max.message.bytes`. Topics that exist are left as they are.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<LogContext> = client_config(settings, &[]).create_with_context(LogContext::default())?;
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

/// Creates `topic` with `cleanup.policy=compact` and one partition, if it
/// does not exist: the state topics distans reads whole at start (pending
/// digests, pseudonym key fingerprints), few records each.
pub async fn ensure_compacted_topic(settings: &KafkaSettings, topic: &str) -> Result<(), KafkaError> {
    let admin: AdminClient<LogContext> = client_config(settings, &[]).create_with_context(LogContext::default())?;
    let new_topic =
        NewTopic::new(topic, 1, TopicReplication::Fixed(settings.replication_factor)).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&[new_topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// Client context of a consumer: turns librdkafka's statistics into the
/// lag gauge, logs and counts rebalances and offset resets, and keeps the
/// consumer's [`Progress`].
#[derive(Debug, Clone)]
pub struct LagContext {
    metrics: ConsumerMetrics,
    progress: Arc<Mutex<Progress>>,
    group_id: String,
}

impl LagContext {
    fn on_assigned(&self, event: &str, partitions: Vec<(String, i32)>) {
        let now_s = crate::now_ms() / 1000;
        for (topic, partition) in &partitions {
            self.metrics.last_progress.get_or_create(&partition_labels(topic, *partition)).set(now_s);
        }
        self.count(event, partitions.len());
        let mut progress = lock(&self.progress);
        progress.assigned(Instant::now(), partitions.iter().cloned());
        let total = progress.partitions().count();
        self.metrics.assigned.set(total as i64);
        tracing::info!(group_id = %self.group_id, partitions = %describe(&partitions), assigned_now = total, "partitions assigned");
    }

    fn on_revoked(&self, partitions: Vec<(String, i32)>) {
        for (topic, partition) in &partitions {
            let labels = partition_labels(topic, *partition);
            self.metrics.last_progress.remove(&labels);
            self.metrics.lag.remove(&labels);
        }
        self.count("revoked", partitions.len());
        let mut progress = lock(&self.progress);
        progress.revoked(Instant::now(), partitions.iter().cloned());
        let total = progress.partitions().count();
        self.metrics.assigned.set(total as i64);
        tracing::info!(group_id = %self.group_id, partitions = %describe(&partitions), assigned_now = total, "partitions revoked");
    }

    fn on_progress(&self, topic: &str, partition: i32) {
        lock(&self.progress).progressed(Instant::now(), topic, partition);
        self.metrics.last_progress.get_or_create(&partition_labels(topic, partition)).set(crate::now_ms() / 1000);
    }

    fn count(&self, event: &str, partitions: usize) {
        self.metrics.rebalances.get_or_create(&RebalanceLabels { event: event.to_string() }).inc_by(partitions as u64);
    }
}

fn partition_labels(topic: &str, partition: i32) -> PartitionLabels {
    PartitionLabels { topic: topic.to_string(), partition }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<(String, i32)> {
    list.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

fn describe(partitions: &[(String, i32)]) -> String {
    partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>().join(",")
}

/// Whether a librdkafka log line reports an offset reset: "<topic> [<p>]:
/// offset reset (at offset 12 (leader epoch 0), broker 1) to offset
/// BEGINNING: fetch failed due to requested offset not available on the
/// broker: Broker: Offset out of range". librdkafka logs a reset caused by
/// an error (out of range) as a warning; a reset because nothing was
/// committed yet is only debug-logged and is not one.
fn is_offset_reset(facility: &str, message: &str) -> bool {
    facility == "OFFSET" && message.contains("offset reset")
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        let mut progress = lock(&self.progress);
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // librdkafka reports the internal UA partition as -1, and -1 lag when unknown.
                if partition >= 0 && p.consumer_lag >= 0 {
                    progress.lag(&topic, partition, p.consumer_lag);
                    self.metrics.lag.get_or_create(&partition_labels(&topic, partition)).set(p.consumer_lag);
                }
            }
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if is_offset_reset(facility, message) {
            self.metrics.offset_resets.inc();
            tracing::warn!(target: "librdkafka", group_id = %self.group_id, "committed offset out of range, reset by the offset_reset policy: {message}");
            return;
        }
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        error_to_tracing(&error, reason);
    }
}

impl ConsumerContext for LagContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => self.on_assigned("assigned", partitions_of(list)),
            Rebalance::Revoke(list) => self.on_revoked(partitions_of(list)),
            Rebalance::Error(error) => {
                self.count("error", 1);
                tracing::warn!(group_id = %self.group_id, %error, "rebalance failed");
            }
        }
    }
}

/// Commits the stored offsets before the consumer goes away. Nothing stored
/// since the last automatic commit is not a failure.
pub fn commit_stored_offsets<C: Consumer<LagContext>>(consumer: &C) {
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

/// The produce error codes no retry can change, about the record: too large
/// for the producer (librdkafka checks message.max.bytes before sending) or
/// for the broker or topic, or malformed.
const RECORD_ERRORS: [RDKafkaErrorCode; 6] = [
    RDKafkaErrorCode::MessageSizeTooLarge,
    RDKafkaErrorCode::MessageBatchTooLarge,
    RDKafkaErrorCode::InvalidMessageSize,
    RDKafkaErrorCode::InvalidRecord,
    RDKafkaErrorCode::InvalidMessage,
    RDKafkaErrorCode::InvalidTimestamp,
];

/// The produce error codes no retry can change, about the topic or the
/// client: no record will get through. With [`RECORD_ERRORS`], the
/// permanent ones; everything else (brokers down or moving, timeouts, queue
/// full, not enough replicas, unknown topic while it is being created) is
/// what an outage causes: transient.
const TOPIC_OR_CLIENT_ERRORS: [RDKafkaErrorCode; 7] = [
    RDKafkaErrorCode::TopicAuthorizationFailed,
    RDKafkaErrorCode::ClusterAuthorizationFailed,
    RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
    RDKafkaErrorCode::InvalidTopic,
    RDKafkaErrorCode::InvalidRequiredAcks,
    RDKafkaErrorCode::PolicyViolation,
    RDKafkaErrorCode::UnsupportedForMessageFormat,
];

fn produce_error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::MessageProduction(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// The one classification of produce errors, for [`retry`]'s `classify`:
/// permanent for [`RECORD_ERRORS`] and [`TOPIC_OR_CLIENT_ERRORS`], transient for the rest.
pub fn classify_produce_error(error: &KafkaError) -> ErrorClass {
    match produce_error_code(error) {
        Some(code) if RECORD_ERRORS.contains(&code) || TOPIC_OR_CLIENT_ERRORS.contains(&code) => ErrorClass::Permanent,
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
    producer: &Producer,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    stop: &tokio_util::sync::CancellationToken,
    on_retry: impl Fn(),
) -> Result<(), DeliverError> {
    deliver_with_headers(producer, topic, key, payload, &[], stop, on_retry).await
}

/// As [`deliver`], with record headers (name, value).
pub async fn deliver_with_headers(
    producer: &Producer,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    headers: &[(&str, &[u8])],
    stop: &tokio_util::sync::CancellationToken,
    on_retry: impl Fn(),
) -> Result<(), DeliverError> {
    let produce = || async move {
        let mut record = rdkafka::producer::FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            let owned = headers.iter().fold(rdkafka::message::OwnedHeaders::new(), |all, (name, value)| {
                all.insert(rdkafka::message::Header { key: name, value: Some(*value) })
            });
            record = record.headers(owned);
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
pub fn store_processed<C: Consumer<LagContext>>(consumer: &C, topic: &str, partition: i32, offset: i64) -> bool {
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

    /// Settings for a client of `brokers` (any string librdkafka takes) and
    /// records of at most `max_record_bytes`.
    fn test_settings(brokers: impl Into<String>, max_record_bytes: usize) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            partitions: 1,
            replication_factor: 1,
            max_record_bytes,
            client: Default::default(),
            stall_timeout_ms: 60_000,
            fetch_wait_max_ms: 100,
            offset_reset: "earliest".into(),
            offset_reset_by_group: Default::default(),
        }
    }

    #[test]
    fn a_record_fits_under_the_largest_record_with_its_overhead() {
        let settings = test_settings(String::new(), 1_000);
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
            let settings = test_settings("127.0.0.1:1", max_record_bytes);
            if let Err(error) = Input::new(&settings, "g", ConsumerMetrics::default()) {
                panic!("consumer at {max_record_bytes}: {error}");
            }
            if let Err(error) = producer(&settings) {
                panic!("producer at {max_record_bytes}: {error}");
            }
        }
    }

    #[test]
    fn librdkafka_is_built_with_tls_sasl_scram_and_zstd() {
        let native = ClientConfig::new().create_native_config().expect("native config");
        let features = native.get("builtin.features").expect("builtin.features");
        for feature in ["ssl", "sasl_plain", "sasl_scram", "zstd", "gzip"] {
            assert!(features.split(',').any(|f| f == feature), "{feature} missing from {features}");
        }
        for (protocol, mechanism) in
            [("sasl_ssl", "SCRAM-SHA-512"), ("sasl_ssl", "SCRAM-SHA-256"), ("sasl_ssl", "PLAIN")]
        {
            let created: Result<BaseProducer<LogContext>, _> = ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:1")
                .set("security.protocol", protocol)
                .set("sasl.mechanism", mechanism)
                .set("sasl.username", "u")
                .set("sasl.password", "p")
                .set("compression.type", "zstd")
                .create_with_context(LogContext::default());
            if let Err(error) = created {
                panic!("{protocol} {mechanism} with zstd: {error}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn connect_waits_for_a_broker_until_stopped_or_given_up_and_refuses_a_bad_property() {
        let settings = test_settings("127.0.0.1:1", 1_000_000);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cancel.cancel();
        });
        let waited = connect(&settings, &shutdown).await;
        assert!(matches!(waited, Err(ConnectError::Stopped)), "{waited:?}");
        let unanswered = connect_within(&settings, Duration::from_millis(1500)).await;
        let Err(error @ ConnectError::NoAnswer { .. }) = unanswered else { panic!("{unanswered:?}") };
        assert!(error.to_string().contains("at 127.0.0.1:1 within 1 s") && error.to_string().contains("kafka.brokers"));

        let mut bad = settings;
        bad.client.insert("security.protocol", "ssl");
        bad.client.insert("ssl.ca.location", "/no/such/ca.pem");
        let refused = connect(&bad, &tokio_util::sync::CancellationToken::new()).await;
        let Err(error @ ConnectError::Client(_)) = refused else { panic!("{refused:?}") };
        assert!(error.to_string().contains("ssl.ca.location"), "{error}");
    }

    /// A TLS client against a broker port that speaks no TLS is a
    /// misconfiguration `connect` names, also when librdkafka's debug logs
    /// flood the queue its error arrives on (a regression: `connect` served
    /// one event per attempt, so the error sat behind the logs and the
    /// service retried for minutes; the TLS e2e test flaked on it).
    #[tokio::test(flavor = "multi_thread")]
    async fn connect_names_a_tls_misconfiguration_behind_a_flood_of_logs() {
        // A "broker" that answers every connection with bytes that are no TLS.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                use std::io::Write;
                let mut stream = stream;
                let _ = stream.write_all(&[0u8; 64]);
            }
        });
        let mut settings = test_settings(format!("127.0.0.1:{port}"), 1_000_000);
        settings.client.insert("security.protocol", "ssl");
        settings.client.insert("debug", "all");
        settings.client.insert("log_level", "7");
        settings.client.insert("reconnect.backoff.ms", "1");
        settings.client.insert("reconnect.backoff.max.ms", "10");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        let checked = tokio::spawn(async move { connect(&settings, &stop).await });
        let answer = tokio::time::timeout(Duration::from_secs(30), checked).await;
        shutdown.cancel();
        let Ok(Ok(Err(ConnectError::Misconfigured { misconfigured, .. }))) = answer else {
            panic!("not named as a misconfiguration within 30 s: {answer:?}")
        };
        assert!(misconfigured.setting.contains("security.protocol"), "{misconfigured:?}");
    }

    #[test]
    fn tls_and_authentication_errors_name_the_setting_and_outages_do_not() {
        let global = KafkaError::Global;
        let cases = [
            (
                global(RDKafkaErrorCode::SSL),
                "ssl://broker:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate \
                 verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured",
                Some(r#"kafka.client."ssl.ca.location""#),
            ),
            (
                global(RDKafkaErrorCode::SSL),
                "ssl://broker:9092/bootstrap: SSL handshake failed: error:0A00010B:SSL routines::wrong version number",
                Some(r#"kafka.client."security.protocol""#),
            ),
            (
                global(RDKafkaErrorCode::Authentication),
                "SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof",
                Some(r#"kafka.client."sasl.username", "sasl.password""#),
            ),
            (global(RDKafkaErrorCode::BrokerTransportFailure), "Connect to ipv4#127.0.0.1:1 failed: Connection refused", None),
            (global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down", None),
            (global(RDKafkaErrorCode::Resolve), "Failed to resolve 'kafka:9092'", None),
        ];
        for (error, reason, names) in cases {
            let found = Misconfigured::from_error(&error, reason);
            match names {
                Some(setting) => {
                    let found = found.unwrap_or_else(|| panic!("{reason}: not a misconfiguration"));
                    assert!(found.setting.starts_with(setting), "{reason}: {}", found.setting);
                    assert_eq!(found.problem, reason);
                }
                None => assert_eq!(found, None, "{reason}"),
            }
        }
    }

    #[test]
    fn offset_resets_are_recognised_in_librdkafka_logs() {
        let check = |facility, message, expected| assert_eq!(is_offset_reset(facility, message), expected, "{message}");
        check(
            "OFFSET",
            "invoice-lines [0]: offset reset (at offset 5000 (leader epoch -1), broker 1) to offset BEGINNING \
             (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range",
            true,
        );
        check("OFFSET", "invoice-lines [0]: stored offset 12, committed offset 10", false);
        check("FETCH", "offset reset", false);
    }
}
