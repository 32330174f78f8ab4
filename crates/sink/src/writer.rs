//! Inserts into ClickHouse: transient failures are retried with backoff
//! until they succeed; rows ClickHouse rejects as bad data are isolated by
//! bisection and handed back, never retried.

use std::time::Duration;

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
            match distans_store::insert(&self.client, table, rows).await {
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
