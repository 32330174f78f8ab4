//! The pseudonym keys in use, by version, recorded with the data: each
//! version's key fingerprint
//! ([`distans_domain::Pseudonymiser::fingerprint`]) in the compacted topic
//! `<topics.valid>.pseudonym-keys` ([`Settings::pseudonym_keys_topic`]).
//!
//! A service that pseudonymises (the ingester, `distans listing import`)
//! calls [`check`] at start, before it pseudonymises anything: the first
//! start records version and fingerprint; a start with another key for a
//! recorded version, with an old version, or with a new version without
//! `pseudonym.rotate = true` is refused with a message that says which, so
//! a patient never silently gets a second pseudonym. A rotation (a new key
//! with a higher `pseudonym.key_version` and `pseudonym.rotate`) is recorded.
//!
//! Why Kafka and not ClickHouse: the ingester talks to Kafka only, and must
//! not depend on ClickHouse to start; the pseudonyms are first written to
//! the valid topic, next to which the record lives. Records are keyed by
//! version *and* fingerprint, so two services started at once with
//! different keys both leave their record (compaction keeps both); the
//! first record of a version, in offset order, is the version's key, and a
//! service that recorded one reads the topic again to see that its record
//! is that first one.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::config::KafkaSettings;
use crate::{kafka, Settings};

/// The header of a valid line's record that carries its pseudonym's key
/// version (decimal text); a record without it is version 1.
pub const KEY_VERSION_HEADER: &str = "distans-pseudonym-key-version";

/// The key version in `headers`: 1 when absent (written before versions),
/// `None` when present and not a version.
pub fn key_version_of(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<u16> {
    use rdkafka::message::Headers;
    let Some(header) = headers.and_then(|h| h.iter().find(|h| h.key == KEY_VERSION_HEADER)) else {
        return Some(1);
    };
    std::str::from_utf8(header.value?).ok()?.parse().ok().filter(|v| *v >= 1)
}

/// The longest reading the topic may take at start.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// One record: a key version and its fingerprint, when and by whom it was
/// first recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub version: u32,
    /// 32 hex digits: [`distans_domain::Pseudonymiser::fingerprint`].
    pub fingerprint: String,
    /// Unix time in milliseconds.
    pub recorded_at_ms: i64,
    /// The service that recorded it (`distans-ingester`, `distans listing import`).
    pub recorded_by: String,
}

impl KeyRecord {
    /// The record's Kafka key: version and fingerprint.
    pub fn key(&self) -> String {
        format!("{}:{}", self.version, self.fingerprint)
    }
}

/// What a service starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentKey {
    pub version: u32,
    pub fingerprint: String,
    pub rotate: bool,
}

/// What to do at start, when the key is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The version is recorded with this key and is the latest.
    Recorded,
    /// Nothing recorded yet: record this version (the first start).
    RecordFirst,
    /// A rotation from `from` (the latest recorded version): record it.
    RecordRotation { from: u32 },
}

/// Why a service must not start with this key. Messages name versions and
/// fingerprints, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefused {
    #[error(
        "pseudonym.key is not the key recorded for pseudonym.key_version {version} (recorded fingerprint {recorded}, \
         this key's {this}): every patient would get a second pseudonym. Start with the recorded key, or rotate: a new \
         key with pseudonym.key_version = {next} and pseudonym.rotate = true (README, \"Rotating the pseudonym key\")"
    )]
    Mismatch { version: u32, recorded: String, this: String, next: u32 },
    #[error(
        "pseudonym.key_version {version} is not recorded (the latest is {latest}): a new key version is a rotation; \
         set pseudonym.rotate = true to record it (README, \"Rotating the pseudonym key\")"
    )]
    RotationNotRequested { version: u32, latest: u32 },
    #[error(
        "pseudonym.key_version {version} is older than the latest recorded version {latest}: start with the key of \
         version {latest}"
    )]
    Superseded { version: u32, latest: u32 },
    #[error("this pseudonym.key is already recorded as version {recorded_as}, not {version}: set pseudonym.key_version = {recorded_as}")]
    RecordedAsAnotherVersion { version: u32, recorded_as: u32 },
}

/// The decision for `current` given the `records` in topic order (pure).
/// The first record of each version is that version's key.
pub fn decide(records: &[KeyRecord], current: &CurrentKey) -> Result<Decision, KeyRefused> {
    let mut first: BTreeMap<u32, &KeyRecord> = BTreeMap::new();
    for record in records {
        first.entry(record.version).or_insert(record);
    }
    let Some(latest) = first.keys().next_back().copied() else {
        return Ok(Decision::RecordFirst);
    };
    let same_key = first.values().find(|r| r.fingerprint == current.fingerprint).map(|r| r.version);
    match first.get(&current.version) {
        Some(recorded) if recorded.fingerprint != current.fingerprint => Err(KeyRefused::Mismatch {
            version: current.version,
            recorded: recorded.fingerprint.clone(),
            this: current.fingerprint.clone(),
            next: latest + 1,
        }),
        Some(_) if current.version < latest => Err(KeyRefused::Superseded { version: current.version, latest }),
        Some(_) => Ok(Decision::Recorded),
        None => match same_key {
            Some(recorded_as) => Err(KeyRefused::RecordedAsAnotherVersion { version: current.version, recorded_as }),
            None if current.version < latest => Err(KeyRefused::Superseded { version: current.version, latest }),
            None if !current.rotate => Err(KeyRefused::RotationNotRequested { version: current.version, latest }),
            None => Ok(Decision::RecordRotation { from: latest }),
        },
    }
}

/// Why [`check`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Refused(#[from] KeyRefused),
    #[error("pseudonym keys topic {topic}: {error}")]
    Kafka { topic: String, error: KafkaError },
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
}

/// Checks the configured key against the recorded ones, recording it on a
/// first start or an explicit rotation (see the module's doc). `service`
/// names the recorder. Returns the key version in use.
pub async fn check(settings: &Settings, service: &str) -> Result<u16, CheckError> {
    let fingerprint = settings.pseudonymiser()?.fingerprint();
    let topic = settings.pseudonym_keys_topic();
    let kafka_error = |error| CheckError::Kafka { topic: topic.clone(), error };
    let current =
        CurrentKey { version: settings.pseudonym.key_version.into(), fingerprint, rotate: settings.pseudonym.rotate };
    kafka::ensure_compacted_topic(&settings.kafka, &topic).await.map_err(kafka_error)?;
    let records = load(&settings.kafka, &topic).await.map_err(kafka_error)?;
    let decision = decide(&records, &current)?;
    if decision == Decision::Recorded {
        if current.rotate {
            tracing::warn!(
                version = current.version,
                "pseudonym.rotate is set but the key version is recorded already; unset it"
            );
        }
        tracing::info!(%topic, version = current.version, fingerprint = %current.fingerprint, "pseudonym key as recorded");
        return Ok(settings.pseudonym.key_version);
    }
    let record = KeyRecord {
        version: current.version,
        fingerprint: current.fingerprint.clone(),
        recorded_at_ms: crate::now_ms(),
        recorded_by: service.to_string(),
    };
    let producer = kafka::producer(&settings.kafka).map_err(kafka_error)?;
    let value = serde_json::to_vec(&record).expect("a key record serialises");
    let key = record.key();
    producer
        .send(FutureRecord::<str, [u8]>::to(&topic).key(&key).payload(&value), Duration::from_secs(30))
        .await
        .map_err(|(error, _)| kafka_error(error))?;
    // Another service may have recorded another key for this version at the
    // same time: the first record wins, and the loser is refused.
    let records = load(&settings.kafka, &topic).await.map_err(kafka_error)?;
    decide(&records, &CurrentKey { rotate: false, ..current.clone() })?;
    match decision {
        Decision::RecordRotation { from } => tracing::warn!(
            %topic, from, to = current.version, fingerprint = %current.fingerprint,
            "pseudonym key rotated: lines from now on carry new pseudonyms; unset pseudonym.rotate"
        ),
        _ => {
            tracing::info!(%topic, version = current.version, fingerprint = %current.fingerprint, "pseudonym key recorded")
        }
    }
    Ok(settings.pseudonym.key_version)
}

/// The records of `topic` in offset order (one partition); unreadable
/// records are logged and left out.
pub async fn records(settings: &KafkaSettings, topic: &str) -> Result<Vec<KeyRecord>, KafkaError> {
    load(settings, topic).await
}

/// Reads `topic` from its beginning to its end as it was when reading
/// began, outside any consumer group.
async fn load(settings: &KafkaSettings, topic: &str) -> Result<Vec<KeyRecord>, KafkaError> {
    let consumer: StreamConsumer = kafka::reader(settings, "distans-pseudonym-keys-load")?;
    let (low, high) = tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)))?;
    let mut records = Vec::new();
    if high <= low {
        return Ok(records);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = tokio::time::Instant::now() + LOAD_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
        match message.payload().map(serde_json::from_slice::<KeyRecord>) {
            Some(Ok(record)) => records.push(record),
            _ => tracing::error!(%topic, offset = message.offset(), "pseudonym key record cannot be read; left out"),
        }
        if message.offset() + 1 >= high {
            return Ok(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccc";

    fn record(version: u32, fingerprint: &str) -> KeyRecord {
        KeyRecord { version, fingerprint: fingerprint.to_string(), recorded_at_ms: 0, recorded_by: "test".to_string() }
    }

    fn current(version: u32, fingerprint: &str, rotate: bool) -> CurrentKey {
        CurrentKey { version, fingerprint: fingerprint.to_string(), rotate }
    }

    #[test]
    fn decisions() {
        let one = [record(1, A)];
        let rotated = [record(1, A), record(2, B)];
        let raced = [record(1, A), record(1, B)];
        let cases: &[(&[KeyRecord], CurrentKey, Result<Decision, &str>)] = &[
            (&[], current(1, A, false), Ok(Decision::RecordFirst)),
            (&[], current(3, A, true), Ok(Decision::RecordFirst)),
            (&one, current(1, A, false), Ok(Decision::Recorded)),
            (&one, current(1, A, true), Ok(Decision::Recorded)),
            (&one, current(1, B, false), Err("not the key recorded for pseudonym.key_version 1")),
            (&one, current(1, B, true), Err("not the key recorded for pseudonym.key_version 1")),
            (&one, current(2, B, false), Err("set pseudonym.rotate = true")),
            (&one, current(2, B, true), Ok(Decision::RecordRotation { from: 1 })),
            (&one, current(2, A, true), Err("already recorded as version 1")),
            (&rotated, current(2, B, false), Ok(Decision::Recorded)),
            (&rotated, current(1, A, false), Err("older than the latest recorded version 2")),
            (&rotated, current(2, C, true), Err("not the key recorded for pseudonym.key_version 2")),
            (&rotated, current(3, C, true), Ok(Decision::RecordRotation { from: 2 })),
            (&raced, current(1, A, false), Ok(Decision::Recorded)),
            (&raced, current(1, B, false), Err("not the key recorded")),
        ];
        for (records, current, expected) in cases {
            let got = decide(records, current);
            match (expected, &got) {
                (Ok(decision), Ok(got)) => assert_eq!(got, decision, "{current:?} after {records:?}"),
                (Err(needle), Err(refused)) => {
                    assert!(refused.to_string().contains(needle), "{current:?}: {refused}")
                }
                _ => panic!("{current:?} after {records:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_key_version_header() {
        use rdkafka::message::{Header, OwnedHeaders};
        let with = |value: &str| {
            OwnedHeaders::new()
                .insert(Header { key: "other", value: Some("9") })
                .insert(Header { key: KEY_VERSION_HEADER, value: Some(value) })
        };
        assert_eq!(key_version_of(None), Some(1), "no headers: written before versions");
        assert_eq!(key_version_of(Some(OwnedHeaders::new().as_borrowed())), Some(1));
        assert_eq!(key_version_of(Some(with("2").as_borrowed())), Some(2));
        for bad in ["0", "x", "70000", ""] {
            assert_eq!(key_version_of(Some(with(bad).as_borrowed())), None, "{bad:?}");
        }
    }

    #[test]
    fn the_mismatch_message_names_versions_and_fingerprints_and_what_to_do() {
        let refused = decide(&[record(1, A)], &current(1, B, false)).expect_err("refused");
        let text = refused.to_string();
        for needle in [A, B, "second pseudonym", "pseudonym.key_version = 2", "pseudonym.rotate = true"] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
    }
}
