//! `distans dead-letters`: the dead-letter topic counted by reason
//! (`distans_runtime::dead_letters` reads it).

use std::time::Duration;

use distans_runtime::dead_letters::{count_by_reason, last_per_line, read_all};
use distans_runtime::Settings;

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
            "{} dead letters of {} invoice lines (by key; a line sent again is dead-lettered again), counted by \
             the reason of each line's last dead letter:\n",
            letters.len(),
            lines.len()
        ))?;
    }
    for (reason, count) in count_by_reason(lines) {
        crate::print(format_args!("{count:>8}  {reason}\n"))?;
    }
    Ok(())
}
