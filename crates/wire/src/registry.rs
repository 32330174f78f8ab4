//! Schema ids and the schemas they name.

use apache_avro::Schema;

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

#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: u32,
    pub subject: Subject,
    pub version: u32,
    pub schema: Schema,
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
const EMBEDDED: [(u32, Subject, u32, &str); 5] = [
    (1, Subject::InvoiceLine, 1, include_str!("../../../schemas/invoice_line.v1.avsc")),
    (2, Subject::EnrichedLine, 1, include_str!("../../../schemas/enriched_line.v1.avsc")),
    (3, Subject::DeadLetter, 1, include_str!("../../../schemas/dead_letter.v1.avsc")),
    (4, Subject::Finding, 1, include_str!("../../../schemas/finding.v1.avsc")),
    (5, Subject::Finding, 2, include_str!("../../../schemas/finding.v2.avsc")),
];

impl EmbeddedSchemas {
    pub fn load() -> Result<EmbeddedSchemas, apache_avro::Error> {
        let schemas = EMBEDDED
            .iter()
            .map(|(id, subject, version, text)| {
                Ok(RegisteredSchema { id: *id, subject: *subject, version: *version, schema: Schema::parse_str(text)? })
            })
            .collect::<Result<Vec<_>, apache_avro::Error>>()?;
        Ok(EmbeddedSchemas { schemas })
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
