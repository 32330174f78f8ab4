//! Inserts into ClickHouse: transient failures are retried with backoff
//! until they succeed; rows ClickHouse rejects as bad data are isolated by
//! bisection and handed back, never retried.

use std::time::Duration;

use clickhouse::Client;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use distans_runtime::kafka::Stopped;
use distans_runtime::Health;

/// ClickHouse error codes that mean the data itself is bad: retrying the
/// same rows cannot succeed. Every other error is treated as transient, so
/// an outage or a misconfiguration never sends good lines to the dead
/// letters.
const DATA_ERROR_CODES: [u32; 12] = [
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
];

/// The `Code: N.` of a ClickHouse exception in an error response.
pub fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn is_data_error(error: &clickhouse::error::Error) -> bool {
    match error {
        clickhouse::error::Error::BadResponse(message) => {
            exception_code(message).is_some_and(|code| DATA_ERROR_CODES.contains(&code))
        }
        _ => false,
    }
}

/// A row type the writer can insert.
pub trait Row: clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync {}
impl<R: clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync> Row for R {}

#[derive(Debug, Clone)]
pub struct Writer {
    client: Client,
    metrics: Metrics,
    health: Health,
    retry_initial: Duration,
    retry_max: Duration,
}

impl Writer {
    pub fn new(
        client: Client,
        metrics: Metrics,
        health: Health,
        retry_initial: Duration,
        retry_max: Duration,
    ) -> Writer {
        Writer { client, metrics, health, retry_initial, retry_max }
    }

    async fn insert_once<R: Row>(&self, table: &str, rows: &[R]) -> Result<(), clickhouse::error::Error> {
        let mut insert = self.client.insert::<R>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Inserts `rows`, retrying transient failures until ClickHouse acks or
    /// `stop` is cancelled. Returns the rows ClickHouse rejected as bad data,
    /// by index, with its message.
    pub async fn insert<R: Row>(
        &self,
        table: &str,
        rows: &[R],
        stop: &CancellationToken,
    ) -> Result<Vec<(usize, String)>, Stopped> {
        let mut rejected = Vec::new();
        // A stack of index ranges still to insert; a rejected range is split in two.
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        ranges.push(0..rows.len());
        while let Some(range) = ranges.pop() {
            if range.is_empty() {
                continue;
            }
            match self.insert_retrying(table, &rows[range.clone()], stop).await? {
                Ok(()) => {}
                Err(message) if range.len() == 1 => rejected.push((range.start, message)),
                Err(_) => {
                    let middle = range.start + range.len() / 2;
                    ranges.push(middle..range.end);
                    ranges.push(range.start..middle);
                }
            }
        }
        Ok(rejected)
    }

    /// One insert, retried while the failure is transient. The inner
    /// result is `Err` when ClickHouse rejected the data.
    async fn insert_retrying<R: Row>(
        &self,
        table: &str,
        rows: &[R],
        stop: &CancellationToken,
    ) -> Result<Result<(), String>, Stopped> {
        let mut backoff = self.retry_initial;
        loop {
            match self.insert_once(table, rows).await {
                Ok(()) => {
                    self.up(true);
                    return Ok(Ok(()));
                }
                Err(error) if is_data_error(&error) => {
                    self.up(true);
                    tracing::warn!(%error, rows = rows.len(), "clickhouse rejected the data");
                    return Ok(Err(error.to_string()));
                }
                Err(error) => {
                    self.up(false);
                    self.metrics.insert_retries.inc();
                    tracing::warn!(%error, rows = rows.len(), retry_in_ms = backoff.as_millis() as u64,
                        "clickhouse insert failed; retrying, no offset moves");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return Err(Stopped),
            }
            backoff = (backoff * 2).min(self.retry_max);
        }
    }

    fn up(&self, up: bool) {
        self.metrics.clickhouse_up.set(i64::from(up));
        self.health.set_ready(up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes() {
        let cases = [
            ("Code: 27. DB::Exception: Cannot parse input", Some(27)),
            ("bad response: Code: 252, e.displayText() = DB::Exception: Too many parts", Some(252)),
            ("connection refused", None),
            ("Code: x", None),
        ];
        for (message, expected) in cases {
            assert_eq!(exception_code(message), expected, "{message}");
        }
        assert!(is_data_error(&clickhouse::error::Error::BadResponse("Code: 53. DB::Exception: Type mismatch".into())));
        assert!(!is_data_error(&clickhouse::error::Error::BadResponse("Code: 252. Too many parts".into())));
        assert!(!is_data_error(&clickhouse::error::Error::TimedOut));
    }
}
