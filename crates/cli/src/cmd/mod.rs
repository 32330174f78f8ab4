//! One module per `distans` command, each a `run` function taking the
//! command's arguments and the settings (as mini-redis's `cmd/`).

use std::time::Duration;

pub mod audit;
pub mod dead_letters;
pub mod generate;
pub mod grafana;
pub mod listing;
pub mod migrate;
pub mod panels;
pub mod produce;
pub mod refresh;
pub mod report;
pub mod schemas;
pub mod wait;

/// How long a command waits for a Kafka broker to answer before it stops
/// and names `kafka.brokers` (`distans_runtime::kafka::connect_within`).
pub const KAFKA_WAIT: Duration = Duration::from_secs(15);

/// How long a command waits for ClickHouse's first answer before it stops
/// (`distans_store::answers_within`; `main` then names `clickhouse.url`).
pub const CLICKHOUSE_WAIT: Duration = Duration::from_secs(15);

/// A client of the configured database, once ClickHouse has answered
/// within [`CLICKHOUSE_WAIT`]. Errors: ClickHouse's, or no answer in time.
pub async fn database(settings: &distans_runtime::Settings) -> Result<distans_store::Client, distans_store::Error> {
    let client = distans_store::database(&settings.clickhouse);
    distans_store::answers_within(&client, CLICKHOUSE_WAIT).await?;
    Ok(client)
}
