//! `distans dead-letters`: reading the dead-letter topic from the start,
//! for operators and tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distans_runtime::Settings;
use distans_wire::{Codec, DeadLetter};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Every dead letter of `topic` up to its current end, once per source
/// record (see [`once_per_source`]). Records that are not dead letters are
/// reported as errors, not skipped.
pub fn read_all(settings: &Settings, topic: &str, timeout: Duration) -> anyhow::Result<Vec<DeadLetter>> {
    let group = format!("distans-cli-{}", std::process::id());
    let config = distans_runtime::kafka::client_config(
        &settings.kafka,
        &[("group.id", group.as_str()), ("enable.auto.commit", "false")],
    );
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    if let Some(error) = metadata.topics().iter().find_map(|t| t.error()) {
        anyhow::bail!(
            "no topic {topic} on the broker ({}): is that the dead-letter topic's name (topics.dead_letter, or \
             DISTANS__TOPICS__DEAD_LETTER)? The ingester creates it at its first start",
            rdkafka::error::RDKafkaErrorCode::from(error)
        );
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
            anyhow::bail!("timed out reading {topic}: partitions {:?} not read to their end", remaining.keys());
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        letters.push(codec.decode_dead_letter(payload).map_err(|e| {
            anyhow::anyhow!("record {}/{} of {topic} is not a dead letter: {e}", message.partition(), message.offset())
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

/// Counts the dead-letter topic's records by reason (with `list`, prints
/// each first: source position, the record's key, which names the invoice
/// line (`invoice id:line number`), reason code, reason). Reads for at most
/// 60 s.
pub async fn run(list: bool, settings: Settings) -> anyhow::Result<()> {
    distans_runtime::kafka::connect_within(&settings.kafka, super::KAFKA_WAIT).await?;
    let topic = settings.topics.dead_letter.clone();
    let letters = tokio::task::spawn_blocking(move || read_all(&settings, &topic, Duration::from_secs(60))).await??;
    if list {
        for l in &letters {
            // The reason may quote what a producer sent: one safe line.
            let reason = distans_domain::text::printable(&l.reason, 4 * distans_domain::text::SHOWN_CHARS);
            let key = l.source_key.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let key = distans_domain::text::printable(&key, distans_domain::text::SHOWN_CHARS);
            crate::print(format_args!(
                "{}/{}@{}\t{key}\t{}\t{reason}\n",
                l.source_topic, l.source_partition, l.source_offset, l.reason_code
            ))?;
        }
    }
    let lines = last_per_line(&letters);
    if lines.len() == letters.len() {
        crate::print(format_args!("{} dead letters\n", letters.len()))?;
    } else {
        crate::print(format_args!(
            "{} dead letters of {} invoice lines (by key; a line sent again is dead-lettered again), by the reason \
             of each line's last:\n",
            letters.len(),
            lines.len()
        ))?;
    }
    for (reason, count) in count_by_reason(lines) {
        crate::print(format_args!("{count:>8}  {reason}\n"))?;
    }
    Ok(())
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
