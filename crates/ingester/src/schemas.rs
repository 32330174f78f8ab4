//! The input topic's writer schemas from a schema registry, when one is
//! configured (`[schema_registry]`).
//!
//! Before a record is decoded, the schema id in its header is looked up in
//! the cache ([`RegistrySchemas`]) and, the first time, fetched from the
//! registry (`GET /schemas/ids/{id}`). An unreachable registry (refused
//! connection, timeout, 5xx) is retried with backoff until it answers or
//! the ingester stops, the record held (nothing after it is stored, the
//! ingester reports not ready): good lines are never dead-lettered for an
//! outage. A 404 leaves the id out of the cache, so the record is an
//! `unknown_schema_id` dead letter; a schema distans cannot read is cached
//! as such (`incompatible_schema`). A 401/403 or another refusal stops the
//! ingester with the error: every later record would fail the same way.

use std::sync::Arc;
use std::time::Duration;

use distans_runtime::retry::{retry, RetryError, RetryPolicy};
use distans_runtime::schema_registry::{value_subject, RegistryError, SchemaRegistry};
use distans_runtime::{Health, Settings};
use distans_wire::{unframe, Codec, EmbeddedSchemas, RegistrySchemas, Subject};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// 200 ms doubling to 30 s (with jitter), until the registry answers or
/// the ingester stops.
const RETRY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(200), Duration::from_secs(30));

/// The registry client and the cache the ingester's codec reads.
#[derive(Debug)]
pub(crate) struct InputSchemas {
    registry: SchemaRegistry,
    schemas: Arc<RegistrySchemas>,
}

/// Why the writer schema of a record could not be made known.
#[derive(Debug)]
pub(crate) enum FetchFailed {
    /// The ingester is stopping.
    Stopped,
    /// The registry refused for good (wrong credentials, a bad request).
    Refused(RegistryError),
}

impl InputSchemas {
    /// The client and an empty cache, or `None` when no registry is
    /// configured. Looks up the id of distans' own input schema under
    /// `<topics.input>-value`, which tells at once whether the registry is
    /// reachable and the credentials are right: refused credentials are an
    /// error; an unreachable registry, or the schema not registered, only
    /// a warning (records wait for the registry; producers may register
    /// their own version).
    pub(crate) async fn connect(settings: &Settings) -> Result<Option<InputSchemas>, RegistryError> {
        let Some(registry) = SchemaRegistry::new(&settings.schema_registry)? else {
            return Ok(None);
        };
        let subject = value_subject(&settings.topics.input);
        let cache = RegistrySchemas::new(Subject::InvoiceLine, settings.schema_registry.cache_capacity)
            .map_err(|e| RegistryError::Setup(format!("the embedded schemas do not parse (a bug): {e}")))?;
        let schemas = match registry.id_of(&subject, EmbeddedSchemas::latest_text(Subject::InvoiceLine)).await {
            Ok(id) => {
                tracing::info!(url = registry.url(), %subject, id, "schema registry: distans' invoice_line schema is registered");
                cache.with_registered_id(id)
            }
            Err(RegistryError::NotFound { .. }) => {
                tracing::warn!(url = registry.url(), %subject, "schema registry: distans' invoice_line schema is not registered under the subject (distans schemas register)");
                cache
            }
            Err(error @ RegistryError::Unavailable { .. }) => {
                tracing::warn!(%error, "schema registry not reachable at start; records wait for it");
                cache
            }
            Err(error) => return Err(error),
        };
        Ok(Some(InputSchemas { registry, schemas: Arc::new(schemas) }))
    }

    /// `codec` reading the input subject through the registry's ids.
    pub(crate) fn codec(&self, codec: Codec) -> Codec {
        codec.with_registry(Arc::clone(&self.schemas))
    }

    /// Makes the writer schema of `payload` known to the codec: fetched
    /// once per id, retried while the registry is unreachable. A record
    /// with no header, or an id the registry does not know, is left for the
    /// processor to dead-letter.
    pub(crate) async fn fetch_for(
        &self,
        payload: Option<&[u8]>,
        stop: &CancellationToken,
        metrics: &Metrics,
        health: &Health,
    ) -> Result<(), FetchFailed> {
        let Some(Ok((id, _))) = payload.map(unframe) else { return Ok(()) };
        if self.schemas.contains(id) {
            return Ok(());
        }
        let on_retry = |error: &RegistryError, retry_in: Duration| {
            metrics.schema_registry_retries.inc();
            health.set_not_ready(format!("schema registry calls fail ({error}); retrying"));
            tracing::warn!(%error, id, retry_in_ms = retry_in.as_millis() as u64, "schema registry call failed; retrying, no offset moves");
        };
        let result = retry(&RETRY, stop, RegistryError::class, on_retry, || self.registry.schema_by_id(id)).await;
        health.set_ready();
        match result {
            Ok(text) => {
                self.schemas.insert(id, &text);
                metrics.schemas_fetched.inc();
                tracing::info!(id, "schema registry: writer schema fetched");
                Ok(())
            }
            Err(RetryError::Permanent(RegistryError::NotFound { .. })) => Ok(()),
            Err(RetryError::Permanent(error @ RegistryError::NotAvro { .. })) => {
                self.schemas.insert_unreadable(id, error.to_string());
                Ok(())
            }
            Err(RetryError::Permanent(error) | RetryError::GaveUp { error, .. }) => Err(FetchFailed::Refused(error)),
            Err(RetryError::Stopped) => Err(FetchFailed::Stopped),
        }
    }
}
