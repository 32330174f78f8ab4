//! Schema ids and the schemas they name.
//!
//! Two resolvers: [`EmbeddedSchemas`], the files in `schemas/` under the ids
//! distans gives them (its own topics, and the input topic when no schema
//! registry is configured), and [`RegistrySchemas`], the input subject's
//! writer schemas under the ids a Confluent-compatible schema registry
//! assigned, fetched by the caller (`distans_runtime::schema_registry`) and
//! cached here, each checked once against the schema distans reads.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use distans_domain::ReasonCode;

use crate::DecodeError;

/// What a schema describes. A record of one subject arriving where another
/// is expected is rejected like an unknown schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    InvoiceLine,
    EnrichedLine,
    DeadLetter,
    Finding,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::InvoiceLine => "invoice_line",
            Subject::EnrichedLine => "enriched_line",
            Subject::DeadLetter => "dead_letter",
            Subject::Finding => "finding",
        }
    }
}

/// A schema under its id, parsed twice: by apache-avro (`schema`: the
/// compatibility checks and the reference codec) and, once, into
/// `serde_avro_fast`'s graph (what the codec reads and writes with).
#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: u32,
    pub subject: Subject,
    pub version: u32,
    pub schema: Schema,
    pub(crate) prepared: serde_avro_fast::Schema,
}

/// A schema that apache-avro or `serde_avro_fast` cannot take.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Avro(#[from] apache_avro::Error),
    #[error("cannot prepare the schema for decoding: {0}")]
    Prepare(#[from] serde_avro_fast::schema::SchemaError),
    #[error("cannot write the schema as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl RegisteredSchema {
    /// `schema` under `id`, prepared for the codec.
    pub fn new(id: u32, subject: Subject, version: u32, schema: Schema) -> Result<RegisteredSchema, SchemaError> {
        let prepared = serde_json::to_string(&schema)?.parse()?;
        Ok(RegisteredSchema { id, subject, version, schema, prepared })
    }

    /// The schema in `text`, parsed by both.
    pub fn parse(id: u32, subject: Subject, version: u32, text: &str) -> Result<RegisteredSchema, SchemaError> {
        Ok(RegisteredSchema { id, subject, version, schema: Schema::parse_str(text)?, prepared: text.parse()? })
    }
}

/// Resolves a schema id from the wire header to the writer's schema.
pub trait SchemaResolver: Send + Sync + std::fmt::Debug {
    fn by_id(&self, id: u32) -> Option<&RegisteredSchema>;
    /// The newest schema of `subject`: the one this build writes and reads.
    fn latest(&self, subject: Subject) -> &RegisteredSchema;
}

/// The schemas of the repository's `schemas/` folder, compiled in.
#[derive(Debug)]
pub struct EmbeddedSchemas {
    schemas: Vec<RegisteredSchema>,
}

/// (id, subject, version, schema text). Ids are never reused: a new version
/// of a subject gets a new id, and old ids stay here so old records decode.
const EMBEDDED: [(u32, Subject, u32, &str); 6] = [
    (1, Subject::InvoiceLine, 1, include_str!("../../../schemas/invoice_line.v1.avsc")),
    (2, Subject::EnrichedLine, 1, include_str!("../../../schemas/enriched_line.v1.avsc")),
    (3, Subject::DeadLetter, 1, include_str!("../../../schemas/dead_letter.v1.avsc")),
    (4, Subject::Finding, 1, include_str!("../../../schemas/finding.v1.avsc")),
    (5, Subject::Finding, 2, include_str!("../../../schemas/finding.v2.avsc")),
    (6, Subject::Finding, 3, include_str!("../../../schemas/finding.v3.avsc")),
];

impl EmbeddedSchemas {
    pub fn load() -> Result<EmbeddedSchemas, SchemaError> {
        let schemas = EMBEDDED
            .iter()
            .map(|(id, subject, version, text)| RegisteredSchema::parse(*id, *subject, *version, text))
            .collect::<Result<Vec<_>, SchemaError>>()?;
        Ok(EmbeddedSchemas { schemas })
    }

    /// The text of the newest schema of `subject`, as in `schemas/` (what
    /// `distans schemas register` registers).
    pub fn latest_text(subject: Subject) -> &'static str {
        EMBEDDED
            .iter()
            .filter(|(_, s, _, _)| *s == subject)
            .max_by_key(|(_, _, version, _)| *version)
            .map(|(_, _, _, text)| *text)
            .unwrap_or_else(|| panic!("no embedded schema for subject {}", subject.as_str()))
    }
}

impl SchemaResolver for EmbeddedSchemas {
    fn by_id(&self, id: u32) -> Option<&RegisteredSchema> {
        self.schemas.iter().find(|s| s.id == id)
    }

    fn latest(&self, subject: Subject) -> &RegisteredSchema {
        self.schemas
            .iter()
            .filter(|s| s.subject == subject)
            .max_by_key(|s| s.version)
            .unwrap_or_else(|| panic!("no embedded schema for subject {}", subject.as_str()))
    }
}

/// The writer schemas of one subject (the input topic's invoice lines) by
/// the ids a schema registry assigned. A [`crate::Codec`] built
/// `with_registry` takes that subject's writer schemas from here and
/// everything else (other subjects, every reader schema) from its resolver.
///
/// The registry's ids replace the embedded ids for that subject only: a
/// record on the input topic carries the id its producer got from the
/// registry. The cache holds what the caller fetched
/// ([`RegistrySchemas::insert`]); an id not in it is `unknown_schema_id`,
/// so the caller fetches every id it has not seen ([`RegistrySchemas::contains`])
/// before decoding. A schema registered under an id never changes, so
/// entries never expire; at most `capacity` are kept (the one fetched
/// longest ago is evicted first, and fetched again if it comes back).
#[derive(Debug)]
pub struct RegistrySchemas {
    subject: Subject,
    /// The schema distans reads the subject with (the newest embedded one).
    reader: RegisteredSchema,
    /// The registry's id for `reader`, when known: what records distans
    /// encodes for the subject carry.
    registered_id: Option<u32>,
    capacity: usize,
    cache: RwLock<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<u32, Result<Arc<RegisteredSchema>, String>>,
    order: VecDeque<u32>,
}

impl RegistrySchemas {
    /// A cache of `subject`'s writer schemas, keeping at most `capacity`
    /// (at least 1).
    pub fn new(subject: Subject, capacity: usize) -> Result<RegistrySchemas, SchemaError> {
        let embedded = EmbeddedSchemas::load()?;
        let latest = embedded.latest(subject);
        let reader =
            RegisteredSchema::parse(latest.id, subject, latest.version, EmbeddedSchemas::latest_text(subject))?;
        Ok(RegistrySchemas {
            subject,
            reader,
            registered_id: None,
            capacity: capacity.max(1),
            cache: RwLock::new(Cache::default()),
        })
    }

    /// Records distans encodes for the subject carry `id`: the id the
    /// registry gave the embedded schema (looked up by the caller).
    pub fn with_registered_id(mut self, id: u32) -> RegistrySchemas {
        self.registered_id = Some(id);
        self.insert(id, EmbeddedSchemas::latest_text(self.subject));
        self
    }

    pub fn subject(&self) -> Subject {
        self.subject
    }

    pub fn registered_id(&self) -> Option<u32> {
        self.registered_id
    }

    /// Whether `id` was fetched (readable or not); an id not fetched must be
    /// fetched and inserted before a record carrying it is decoded.
    pub fn contains(&self, id: u32) -> bool {
        self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).entries.contains_key(&id)
    }

    /// Adds the registry's schema text for `id`. It is parsed and checked
    /// once against the reader schema by Avro's resolution rules
    /// (`SchemaCompatibility::can_read`), and prepared once for the codec:
    /// a schema that does not parse or cannot be read is kept as
    /// incompatible, and every record written with it is an
    /// `incompatible_schema` dead letter with this explanation.
    pub fn insert(&self, id: u32, schema_text: &str) {
        let entry = match Schema::parse_str(schema_text) {
            Err(error) => Err(format!("the registry's schema {id} is not a valid Avro schema: {error}")),
            Ok(writer) => match SchemaCompatibility::can_read(&writer, &self.reader.schema) {
                Err(error) => Err(format!(
                    "the registry's schema {id} cannot be read as {} v{} by Avro's resolution rules: {error}",
                    self.subject.as_str(),
                    self.reader.version
                )),
                Ok(()) => match schema_text.parse() {
                    Err(error) => Err(format!("the registry's schema {id} cannot be prepared for decoding: {error}")),
                    Ok(prepared) => Ok(Arc::new(RegisteredSchema {
                        id,
                        subject: self.subject,
                        version: 0,
                        schema: writer,
                        prepared,
                    })),
                },
            },
        };
        self.put(id, entry);
    }

    fn put(&self, id: u32, entry: Result<Arc<RegisteredSchema>, String>) {
        let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.entries.insert(id, entry).is_none() {
            cache.order.push_back(id);
        }
        while cache.order.len() > self.capacity {
            if let Some(oldest) = cache.order.pop_front() {
                cache.entries.remove(&oldest);
            }
        }
    }

    /// Records `id` as a schema distans cannot read, for `reason` (e.g. the
    /// registry holds a Protobuf schema under it).
    pub fn insert_unreadable(&self, id: u32, reason: String) {
        self.put(id, Err(reason));
    }

    /// The writer's schema of `id` (version 0: the registry's versions are
    /// per subject, not per id); `unknown_schema_id` when it was not
    /// fetched (the registry does not know it), `incompatible_schema` when
    /// distans cannot read it.
    pub fn writer(&self, id: u32) -> Result<Arc<RegisteredSchema>, DecodeError> {
        let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.entries.get(&id) {
            Some(Ok(schema)) => Ok(Arc::clone(schema)),
            Some(Err(reason)) => Err(DecodeError::new(ReasonCode::IncompatibleSchema, reason.clone())),
            None => Err(DecodeError::new(
                ReasonCode::UnknownSchemaId,
                format!("schema id {id} is not in the schema registry"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_at_most_its_capacity_oldest_out_first() {
        let schemas = RegistrySchemas::new(Subject::InvoiceLine, 2).expect("schemas parse");
        let text = EmbeddedSchemas::latest_text(Subject::InvoiceLine);
        for id in [57, 58, 59] {
            schemas.insert(id, text);
        }
        assert!(!schemas.contains(57));
        assert!(schemas.contains(58) && schemas.contains(59));
        assert_eq!(schemas.writer(57).expect_err("evicted").code, ReasonCode::UnknownSchemaId);
        assert_eq!(schemas.writer(59).expect("cached").id, 59);
        // Inserting an id again does not count it twice.
        schemas.insert(59, text);
        assert!(schemas.contains(58));
    }

    #[test]
    fn unparsable_and_unreadable_schemas_are_incompatible() {
        let schemas = RegistrySchemas::new(Subject::InvoiceLine, 10).expect("schemas parse");
        schemas.insert(7, "{not json");
        let other = r#"{"type":"record","name":"Patient","fields":[{"name":"id","type":"string"}]}"#;
        schemas.insert(8, other);
        for (id, says) in [(7, "not a valid Avro schema"), (8, "cannot be read as invoice_line v1")] {
            let error = schemas.writer(id).expect_err("incompatible");
            assert_eq!(error.code, ReasonCode::IncompatibleSchema, "{id}");
            assert!(error.message.contains(says), "{id}: {}", error.message);
        }
    }

    #[test]
    fn the_registered_id_is_cached_as_readable() {
        let schemas = RegistrySchemas::new(Subject::InvoiceLine, 10).expect("parses").with_registered_id(57);
        assert_eq!(schemas.registered_id(), Some(57));
        assert!(schemas.writer(57).is_ok());
    }
}
