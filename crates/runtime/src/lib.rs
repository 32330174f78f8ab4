//! What every distans service shares: layered configuration, Kafka clients
//! configured for at-least-once delivery, retries with backoff, telemetry and
//! shutdown.

pub mod config;
pub mod dead_letters;
pub mod kafka;
pub mod metrics;
pub mod progress;
pub mod pseudonym_keys;
pub mod retry;
pub mod schema_registry;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, Settings};
/// The global allocator of every distans binary (mimalloc): per record the
/// services allocate and free many small strings, where it is faster than
/// glibc's malloc (`distans-bench-quick` measures the in-process paths).
/// Each binary declares `#[global_allocator] static ALLOCATOR:
/// distans_runtime::Allocator = distans_runtime::Allocator;`.
pub use mimalloc::MiMalloc as Allocator;
pub use secret::Secret;
pub use telemetry::Health;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
