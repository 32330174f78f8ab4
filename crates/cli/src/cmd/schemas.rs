//! `distans schemas register`: the input schema registered in a schema
//! registry under the input topic's subject, with the subject's
//! compatibility rule.

use distans_runtime::schema_registry::{value_subject, SchemaRegistry, INPUT_COMPATIBILITY};
use distans_runtime::Settings;
use distans_wire::{Codec, EmbeddedSchemas, RegistrySchemas, Subject};

/// What was registered: the subject, its compatibility level and the id
/// the registry gave distans' invoice_line schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub subject: String,
    pub compatibility: &'static str,
    pub id: u32,
}

/// Sets `<topics.input>-value` to FULL_TRANSITIVE and registers
/// `schemas/invoice_line.v1.avsc` under it (a schema already registered
/// keeps its id). Only the input subject: distans' own topics carry the
/// embedded ids of `schemas/` (2 enriched_line, 3 dead_letter, 5 finding),
/// not a registry's.
pub async fn register(settings: &Settings) -> anyhow::Result<Registered> {
    let registry = client(settings)?;
    let subject = value_subject(&settings.topics.input);
    registry.set_compatibility(&subject, INPUT_COMPATIBILITY).await?;
    let id = registry.register(&subject, EmbeddedSchemas::latest_text(Subject::InvoiceLine)).await?;
    Ok(Registered { subject, compatibility: INPUT_COMPATIBILITY, id })
}

pub async fn run_register(settings: &Settings) -> anyhow::Result<()> {
    let registered = register(settings).await?;
    crate::print(format_args!(
        "registered invoice_line under {} ({}): id {}\n",
        registered.subject, registered.compatibility, registered.id
    ))?;
    Ok(())
}

/// The codec `distans produce` encodes invoice lines with: with a registry
/// configured, framed with the id the registry gave distans' schema under
/// the input subject (an error if it is not registered there).
pub async fn input_codec(settings: &Settings) -> anyhow::Result<Codec> {
    let Some(registry) = SchemaRegistry::new(&settings.schema_registry)? else {
        return Ok(Codec::embedded());
    };
    let subject = value_subject(&settings.topics.input);
    let id = registry.id_of(&subject, EmbeddedSchemas::latest_text(Subject::InvoiceLine)).await.map_err(|e| {
        anyhow::anyhow!("distans' invoice_line schema under {subject}: {e} (run `distans schemas register` first)")
    })?;
    let schemas = RegistrySchemas::new(Subject::InvoiceLine, settings.schema_registry.cache_capacity)?;
    Ok(Codec::embedded().with_registry(std::sync::Arc::new(schemas.with_registered_id(id))))
}

fn client(settings: &Settings) -> anyhow::Result<SchemaRegistry> {
    SchemaRegistry::new(&settings.schema_registry)?.ok_or_else(|| {
        anyhow::anyhow!("no schema registry configured: set schema_registry.url (DISTANS__SCHEMA_REGISTRY__URL)")
    })
}
