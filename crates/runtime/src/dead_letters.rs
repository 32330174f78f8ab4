//! Reading the dead-letter topic (`topics.dead_letter`) from the start:
//! for `distans dead-letters` and the tests that count what was rejected.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distans_wire::{Codec, DeadLetter, DecodeError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::Settings;

/// Why the dead-letter topic could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The broker has no such topic (a misspelt `topics.dead_letter`, or
    /// no ingester has started yet).
    #[error(
        "no topic {topic} on the broker ({code}): is that the dead-letter topic's name (topics.dead_letter, or \
         DISTANS__TOPICS__DEAD_LETTER)? The ingester creates it at its first start"
    )]
    NoTopic { topic: String, code: RDKafkaErrorCode },
    #[error("timed out reading {topic}: partitions {partitions:?} not read to their end")]
    TimedOut { topic: String, partitions: Vec<i32> },
    /// A record on the topic that is not a dead letter: reported, not skipped.
    #[error("record {partition}/{offset} of {topic} is not a dead letter: {error}")]
    NotADeadLetter { topic: String, partition: i32, offset: i64, error: DecodeError },
}

/// Every dead letter of `topic` up to its current end, once per source
/// record (see [`once_per_source`]), within `timeout`. Errors:
/// [`ReadError`].
pub fn read_all(settings: &Settings, topic: &str, timeout: Duration) -> Result<Vec<DeadLetter>, ReadError> {
    let group = format!("distans-cli-{}", std::process::id());
    let config =
        crate::kafka::client_config(&settings.kafka, &[("group.id", group.as_str()), ("enable.auto.commit", "false")]);
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    if let Some(error) = metadata.topics().iter().find_map(|t| t.error()) {
        return Err(ReadError::NoTopic { topic: topic.to_string(), code: RDKafkaErrorCode::from(error) });
    }
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut assignment = TopicPartitionList::new();
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        if high > low {
            remaining.insert(*partition, high);
            assignment.add_partition_offset(topic, *partition, Offset::Offset(low))?;
        }
    }
    consumer.assign(&assignment)?;
    let codec = Codec::embedded();
    let mut letters = Vec::new();
    let deadline = Instant::now() + timeout;
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(ReadError::TimedOut { topic: topic.to_string(), partitions: remaining.into_keys().collect() });
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        letters.push(codec.decode_dead_letter(payload).map_err(|error| ReadError::NotADeadLetter {
            topic: topic.to_string(),
            partition: message.partition(),
            offset: message.offset(),
            error,
        })?);
        if remaining.get(&message.partition()).is_some_and(|high| message.offset() + 1 >= *high) {
            remaining.remove(&message.partition());
        }
    }
    Ok(once_per_source(letters))
}

/// One dead letter per source record (topic, partition, offset), the last
/// one read: a record read again after a restart is dead-lettered again,
/// and it is still one record that went wrong. Order: by source.
pub fn once_per_source(letters: Vec<DeadLetter>) -> Vec<DeadLetter> {
    let mut by_source: BTreeMap<(String, i32, i64), DeadLetter> = BTreeMap::new();
    for letter in letters {
        by_source.insert((letter.source_topic.clone(), letter.source_partition, letter.source_offset), letter);
    }
    by_source.into_values().collect()
}

/// Dead letters counted by reason code.
pub fn count_by_reason<'a>(letters: impl IntoIterator<Item = &'a DeadLetter>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for letter in letters {
        *counts.entry(letter.reason_code.clone()).or_default() += 1;
    }
    counts
}

/// The last dead letter of each invoice line, by the record's key
/// (`invoice id:line number`; a record without a key is a line of its own).
/// A file sent again is dead-lettered again, record by record: staff ask
/// how many lines are wrong, and why each is, now.
pub fn last_per_line(letters: &[DeadLetter]) -> Vec<&DeadLetter> {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Line<'a> {
        Key(&'a [u8]),
        Position(&'a str, i32, i64),
    }
    let mut by_line: BTreeMap<Line, &DeadLetter> = BTreeMap::new();
    for letter in letters {
        let line = match letter.source_key.as_deref() {
            Some(key) => Line::Key(key),
            None => Line::Position(&letter.source_topic, letter.source_partition, letter.source_offset),
        };
        by_line.insert(line, letter);
    }
    by_line.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::enrich::Provenance;
    use distans_domain::{ReasonCode, Violation};

    fn letter(offset: i64, reason: ReasonCode) -> DeadLetter {
        keyed(offset, None, reason)
    }

    fn keyed(offset: i64, key: Option<&str>, reason: ReasonCode) -> DeadLetter {
        let source = Provenance { topic: "invoice-lines".into(), partition: 1, offset };
        DeadLetter::new("ingester", &[Violation::new(reason, "f", "bad")], &source, key.map(str::as_bytes), b"x", 0)
    }

    #[test]
    fn a_line_sent_again_counts_once_by_its_last_reason() {
        let letters = vec![
            keyed(1, Some("ZVF1:1"), ReasonCode::InvalidPatientId),
            keyed(2, Some("ZVF1:2"), ReasonCode::NegativeAmount),
            keyed(3, None, ReasonCode::MalformedAvro),
            keyed(4, None, ReasonCode::MalformedAvro),
            // The same file again, and line 1 corrected but still wrong.
            keyed(11, Some("ZVF1:1"), ReasonCode::NegativeAmount),
            keyed(12, Some("ZVF1:2"), ReasonCode::NegativeAmount),
        ];
        let lines = last_per_line(&letters);
        let mut offsets: Vec<i64> = lines.iter().map(|l| l.source_offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [3, 4, 11, 12]);
        let counts = count_by_reason(lines);
        assert_eq!(counts.get("negative_amount"), Some(&2));
        assert_eq!(counts.get("malformed_avro"), Some(&2), "records without a key are lines of their own");
        assert_eq!(counts.get("invalid_patient_id"), None, "line 1's last reason counts");
    }

    #[test]
    fn a_redelivered_record_counts_once() {
        let letters = vec![
            letter(7, ReasonCode::InvalidPatientId),
            letter(8, ReasonCode::NegativeAmount),
            letter(7, ReasonCode::InvalidPatientId),
        ];
        let once = once_per_source(letters);
        assert_eq!(once.iter().map(|l| l.source_offset).collect::<Vec<_>>(), [7, 8]);
        assert_eq!(count_by_reason(&once).values().sum::<usize>(), 2);
    }
}
