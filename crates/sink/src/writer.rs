//! Inserts into ClickHouse: transient failures are retried with backoff
//! until they succeed; rows ClickHouse rejects as bad data are isolated by
//! bisection and handed back, never retried.

use std::time::Duration;

use distans_runtime::retry::{retry, ErrorClass, RetryError, RetryPolicy};
use distans_store::{is_data_error, Client, Row};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use distans_runtime::kafka::Stopped;
use distans_runtime::Health;

#[derive(Debug, Clone)]
pub struct Writer {
    client: Client,
    metrics: Metrics,
    health: Health,
    policy: RetryPolicy,
}

impl Writer {
    pub fn new(
        client: Client,
        metrics: Metrics,
        health: Health,
        retry_initial: Duration,
        retry_max: Duration,
    ) -> Writer {
        Writer { client, metrics, health, policy: RetryPolicy::until_stopped(retry_initial, retry_max) }
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
        let on_retry = |error: &distans_store::Error, retry_in: Duration| {
            self.up(false);
            self.metrics.insert_retries.inc();
            tracing::warn!(%error, rows = rows.len(), retry_in_ms = retry_in.as_millis() as u64,
                "clickhouse insert failed; retrying, no offset moves");
        };
        let attempt = || distans_store::insert(&self.client, table, rows);
        match retry(&self.policy, stop, classify, on_retry, attempt).await {
            Ok(()) => {
                self.up(true);
                Ok(Ok(()))
            }
            Err(RetryError::Permanent(error)) => {
                self.up(true);
                tracing::warn!(%error, rows = rows.len(), "clickhouse rejected the data");
                Ok(Err(error.to_string()))
            }
            // No ceiling on elapsed time: an outage is waited out until the sink stops.
            Err(RetryError::Stopped | RetryError::GaveUp { .. }) => Err(Stopped),
        }
    }

    fn up(&self, up: bool) {
        self.metrics.clickhouse_up.set(i64::from(up));
        self.health.set_ready(up);
    }
}

/// Rows ClickHouse refused as bad data are permanent (isolated by
/// bisection, then dead-lettered); everything else is an outage, retried.
pub fn classify(error: &distans_store::Error) -> ErrorClass {
    if is_data_error(error) {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    }
}
