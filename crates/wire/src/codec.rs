//! Encoding and decoding of whole Kafka values.

use std::sync::Arc;

use apache_avro::types::Value;
use distans_domain::{EnrichedLine, InvoiceLine, ReasonCode};

use crate::records::{self, DeadLetter, FieldError, TimedFinding};
use crate::{frame, unframe, EmbeddedSchemas, RegistrySchemas, SchemaResolver, Subject};

/// The largest allocation a single decoded value may ask for. A corrupt
/// length prefix must give an error, not exhaust memory.
const MAX_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;

/// Why a value could not be decoded; `code` is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub code: ReasonCode,
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(code: ReasonCode, message: impl Into<String>) -> DecodeError {
        DecodeError { code, message: message.into() }
    }
}

impl From<FieldError> for DecodeError {
    fn from(err: FieldError) -> DecodeError {
        DecodeError::new(ReasonCode::MalformedAvro, err.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {subject} record: {source}")]
pub struct EncodeError {
    subject: &'static str,
    #[source]
    source: apache_avro::Error,
}

/// Encodes and decodes distans records in the Confluent wire format.
#[derive(Debug, Clone)]
pub struct Codec {
    resolver: Arc<dyn SchemaResolver>,
    /// One subject's writer schemas under a schema registry's ids, when a
    /// registry is configured.
    registry: Option<Arc<RegistrySchemas>>,
}

impl Codec {
    pub fn new(resolver: Arc<dyn SchemaResolver>) -> Codec {
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
        Codec { resolver, registry: None }
    }

    /// The same codec, taking `registry.subject()`'s writer schemas (and
    /// the id it encodes that subject with, when registered) from a schema
    /// registry's ids.
    pub fn with_registry(self, registry: Arc<RegistrySchemas>) -> Codec {
        Codec { registry: Some(registry), ..self }
    }

    /// A codec over the schemas compiled in from `schemas/`.
    pub fn embedded() -> Codec {
        let schemas = EmbeddedSchemas::load().expect("the schemas in schemas/ parse (checked by the wire tests)");
        Codec::new(Arc::new(schemas))
    }

    pub fn encode_invoice_line(&self, line: &InvoiceLine) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::InvoiceLine, records::invoice_line_to_value(line))
    }

    pub fn decode_invoice_line(&self, bytes: &[u8]) -> Result<InvoiceLine, DecodeError> {
        Ok(records::invoice_line_from_value(self.decode(Subject::InvoiceLine, bytes)?)?)
    }

    pub fn encode_enriched_line(&self, line: &EnrichedLine) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::EnrichedLine, records::enriched_line_to_value(line))
    }

    pub fn decode_enriched_line(&self, bytes: &[u8]) -> Result<EnrichedLine, DecodeError> {
        Ok(records::enriched_line_from_value(self.decode(Subject::EnrichedLine, bytes)?)?)
    }

    pub fn encode_dead_letter(&self, dead_letter: &DeadLetter) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::DeadLetter, records::dead_letter_to_value(dead_letter))
    }

    /// [`Codec::encode_dead_letter`], at most `max_bytes` long: a dead letter
    /// that would be larger keeps only a prefix of its original, and says in
    /// its reason how long the original was and its SHA-256 (hex), so the
    /// record can still be found and checked at its source.
    pub fn encode_dead_letter_within(
        &self,
        dead_letter: &DeadLetter,
        max_bytes: usize,
    ) -> Result<Vec<u8>, EncodeError> {
        let whole = self.encode_dead_letter(dead_letter)?;
        if whole.len() <= max_bytes {
            return Ok(whole);
        }
        let original = &dead_letter.original;
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(original));
        let cut = |prefix: usize| {
            let mut letter = dead_letter.clone();
            letter.reason = format!(
                "{}; original cut to its first {prefix} of {} bytes, sha256 {sha256}",
                dead_letter.reason,
                original.len()
            );
            letter.original = original[..prefix].to_vec();
            letter
        };
        // The letter without its original, with the longest note; the
        // original's length prefix takes at most 10 bytes more.
        let rest = self.encode_dead_letter(&cut(0))?.len() + 2 * original.len().to_string().len() + 10;
        let mut prefix = max_bytes.saturating_sub(rest).min(original.len());
        loop {
            let encoded = self.encode_dead_letter(&cut(prefix))?;
            if encoded.len() <= max_bytes || prefix == 0 {
                return Ok(encoded);
            }
            prefix = prefix.saturating_sub(encoded.len() - max_bytes);
        }
    }

    pub fn decode_dead_letter(&self, bytes: &[u8]) -> Result<DeadLetter, DecodeError> {
        Ok(records::dead_letter_from_value(self.decode(Subject::DeadLetter, bytes)?)?)
    }

    pub fn encode_finding(&self, finding: &TimedFinding) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::Finding, records::finding_to_value(finding))
    }

    pub fn decode_finding(&self, bytes: &[u8]) -> Result<TimedFinding, DecodeError> {
        Ok(records::finding_from_value(self.decode(Subject::Finding, bytes)?)?)
    }

    fn encode(&self, subject: Subject, value: Value) -> Result<Vec<u8>, EncodeError> {
        let latest = self.resolver.latest(subject);
        let datum = value
            .resolve(&latest.schema)
            .and_then(|resolved| apache_avro::to_avro_datum(&latest.schema, resolved))
            .map_err(|source| EncodeError { subject: subject.as_str(), source })?;
        let id = match &self.registry {
            Some(registry) if registry.subject() == subject => registry.registered_id().unwrap_or(latest.id),
            _ => latest.id,
        };
        Ok(frame(id, &datum))
    }

    fn decode(&self, subject: Subject, bytes: &[u8]) -> Result<Value, DecodeError> {
        let (id, mut datum) = unframe(bytes).map_err(|e| DecodeError::new(ReasonCode::BadWireHeader, e.to_string()))?;
        let from_registry;
        let writer = match &self.registry {
            Some(registry) if registry.subject() == subject => {
                from_registry = registry.writer(id)?;
                &*from_registry
            }
            _ => self
                .resolver
                .by_id(id)
                .ok_or_else(|| DecodeError::new(ReasonCode::UnknownSchemaId, format!("schema id {id} is not known")))?,
        };
        if writer.subject != subject {
            return Err(DecodeError::new(
                ReasonCode::UnknownSchemaId,
                format!("schema id {id} is a {} schema, expected {}", writer.subject.as_str(), subject.as_str()),
            ));
        }
        let latest = self.resolver.latest(subject);
        // Resolution is only needed when the writer used another schema
        // (a registry's id may equal an embedded one: compare the schemas).
        let reader = (!std::ptr::eq(writer, latest)).then_some(&latest.schema);
        let value = apache_avro::from_avro_datum(&writer.schema, &mut datum, reader)
            .map_err(|e| DecodeError::new(ReasonCode::MalformedAvro, e.to_string()))?;
        if !datum.is_empty() {
            return Err(DecodeError::new(
                ReasonCode::MalformedAvro,
                format!("{} bytes left over after the datum", datum.len()),
            ));
        }
        Ok(value)
    }
}

impl DecodeError {
    /// The error as a violation of the record as a whole.
    pub fn into_violation(self) -> distans_domain::Violation {
        distans_domain::Violation::new(self.code, "", self.message)
    }
}
