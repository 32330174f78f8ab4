//! Inserts into ClickHouse, each error classified once
//! ([`distans_store::classify_error`]): transient failures are retried with
//! backoff until they succeed; rows ClickHouse rejects as bad data are
//! isolated by bisection and handed back, never retried; a server that
//! refuses the sink itself (credentials, grants, database) is returned as
//! [`WriteError::Refused`], and no row becomes a dead letter for it.

use std::time::Duration;

use distans_runtime::retry::{retry, RetryError, RetryPolicy};
use distans_store::{classify_error, Client, ErrorKind, Row, RowValue};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use distans_runtime::kafka::Stopped;
use distans_runtime::Health;

/// Why [`Writer::insert`] did not write the rows.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sink is stopping.
    #[error("stopped before clickhouse acknowledged")]
    Stopped,
    /// ClickHouse refuses the sink whatever it sends ([`ErrorKind::Refused`]):
    /// the sink stops with this error rather than dead-letter good rows or
    /// retry what an operator has to fix.
    #[error(
        "clickhouse refused the sink for good (check clickhouse.url, user, password and database, and the \
         user's grants): {0}"
    )]
    Refused(distans_store::Error),
}

impl From<Stopped> for WriteError {
    fn from(_: Stopped) -> WriteError {
        WriteError::Stopped
    }
}

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
    /// by index, with its message; [`WriteError::Refused`] when ClickHouse
    /// refuses the sink itself (then none of `rows` is known to be written).
    pub async fn insert<R: Row>(
        &self,
        table: &str,
        rows: &[RowValue<'_, R>],
        stop: &CancellationToken,
    ) -> Result<Vec<(usize, String)>, WriteError> {
        let mut rejected = Vec::new();
        // A stack of index ranges still to insert; a rejected range is split in two.
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        ranges.push(0..rows.len());
        while let Some(range) = ranges.pop() {
            if range.is_empty() {
                continue;
            }
            match self.insert_retrying::<R>(table, &rows[range.clone()], stop).await? {
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
        rows: &[RowValue<'_, R>],
        stop: &CancellationToken,
    ) -> Result<Result<(), String>, WriteError> {
        let on_retry = |error: &distans_store::Error, retry_in: Duration| {
            self.down(format!("clickhouse inserts fail ({error}); retrying"));
            self.metrics.insert_retries.inc();
            tracing::warn!(%error, rows = rows.len(), retry_in_ms = retry_in.as_millis() as u64,
                "clickhouse insert failed; retrying, no offset moves");
        };
        let attempt = || distans_store::insert_rows::<R>(&self.client, table, rows);
        let classify = |error: &distans_store::Error| classify_error(error).retry_class();
        match retry(&self.policy, stop, classify, on_retry, attempt).await {
            Ok(()) => {
                self.up();
                Ok(Ok(()))
            }
            Err(RetryError::Permanent(error)) if classify_error(&error) == ErrorKind::Data => {
                self.up();
                tracing::warn!(%error, rows = rows.len(), "clickhouse rejected the data");
                Ok(Err(error.to_string()))
            }
            Err(RetryError::Permanent(error)) => {
                self.down(format!("clickhouse refused the sink: {error}"));
                tracing::error!(%error, rows = rows.len(), "clickhouse refused the sink; stopping, no offset moves");
                Err(WriteError::Refused(error))
            }
            // No ceiling on elapsed time: an outage is waited out until the sink stops.
            Err(RetryError::Stopped | RetryError::GaveUp { .. }) => Err(WriteError::Stopped),
        }
    }

    fn up(&self) {
        self.metrics.clickhouse_up.set(1);
        self.health.set_ready();
    }

    /// ClickHouse cannot take the rows, for `reason` (what `/readyz` says).
    fn down(&self, reason: String) {
        self.metrics.clickhouse_up.set(0);
        self.health.set_not_ready(reason);
    }
}
