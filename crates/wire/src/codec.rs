//! Encoding and decoding of whole Kafka values.
//!
//! Records are read and written with `serde_avro_fast` straight from and to
//! the datum, through the serde mirrors of `records.rs`: no generic Avro
//! `Value` on the way. Each schema is prepared once (parsed into
//! `serde_avro_fast`'s graph when its [`RegisteredSchema`] is built: at
//! start for the embedded ones, when fetched for a registry's), never per
//! record.

use std::io::BufRead;
use std::ops::Deref;
use std::sync::Arc;

use distans_domain::{EnrichedLine, InvoiceLine, ReasonCode};
use serde::{Deserialize, Serialize};
use serde_avro_fast::de::read::SliceRead;
use serde_avro_fast::de::{DeserializerConfig, DeserializerState};
use serde_avro_fast::ser::SerializerConfig;

use crate::framing::header;
use crate::records::{
    DeadLetter, DeadLetterIn, DeadLetterOut, EnrichedLineIn, EnrichedLineOut, FieldError, FindingIn, FindingOut,
    InvoiceLineIn, InvoiceLineOut, TimedFinding,
};
use crate::{unframe, EmbeddedSchemas, RegisteredSchema, RegistrySchemas, SchemaResolver, Subject};

/// The largest allocation a single decoded value may ask for. A corrupt
/// length prefix must give an error, not exhaust memory: a string or bytes
/// field is never longer than the record holding it (`serde_avro_fast`
/// borrows it from the record), and an array holds at most this many items.
const MAX_ALLOCATION_BYTES: usize = 16 * 1024 * 1024;

/// Room for a line's datum and header, so that encoding allocates once.
const LINE_CAPACITY: usize = 768;

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
    source: serde_avro_fast::ser::SerError,
}

/// A writer's schema: one of the resolver's, or one a registry fetched.
pub(crate) enum Writer<'c> {
    Resolved(&'c RegisteredSchema),
    Fetched(Arc<RegisteredSchema>),
}

impl Deref for Writer<'_> {
    type Target = RegisteredSchema;

    fn deref(&self) -> &RegisteredSchema {
        match self {
            Writer::Resolved(schema) => schema,
            Writer::Fetched(schema) => schema,
        }
    }
}

/// Encodes and decodes distans records in the Confluent wire format.
#[derive(Debug, Clone)]
pub struct Codec {
    pub(crate) resolver: Arc<dyn SchemaResolver>,
    /// One subject's writer schemas under a schema registry's ids, when a
    /// registry is configured.
    registry: Option<Arc<RegistrySchemas>>,
}

impl Codec {
    pub fn new(resolver: Arc<dyn SchemaResolver>) -> Codec {
        // apache-avro still parses schemas and serves the reference codec.
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
        self.encode(Subject::InvoiceLine, &InvoiceLineOut::of(line), LINE_CAPACITY)
    }

    pub fn decode_invoice_line(&self, bytes: &[u8]) -> Result<InvoiceLine, DecodeError> {
        Ok(self.decode::<InvoiceLineIn>(Subject::InvoiceLine, bytes)?.into_line()?)
    }

    pub fn encode_enriched_line(&self, line: &EnrichedLine) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::EnrichedLine, &EnrichedLineOut::of(line), LINE_CAPACITY)
    }

    pub fn decode_enriched_line(&self, bytes: &[u8]) -> Result<EnrichedLine, DecodeError> {
        Ok(self.decode::<EnrichedLineIn>(Subject::EnrichedLine, bytes)?.into_line()?)
    }

    pub fn encode_dead_letter(&self, dead_letter: &DeadLetter) -> Result<Vec<u8>, EncodeError> {
        let capacity = LINE_CAPACITY + dead_letter.original.len() + dead_letter.reason.len();
        self.encode(Subject::DeadLetter, &DeadLetterOut::of(dead_letter), capacity)
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
        Ok(self.decode::<DeadLetterIn>(Subject::DeadLetter, bytes)?.into_dead_letter())
    }

    pub fn encode_finding(&self, finding: &TimedFinding) -> Result<Vec<u8>, EncodeError> {
        self.encode(Subject::Finding, &FindingOut::of(finding), LINE_CAPACITY)
    }

    pub fn decode_finding(&self, bytes: &[u8]) -> Result<TimedFinding, DecodeError> {
        Ok(self.decode::<FindingIn>(Subject::Finding, bytes)?.into_finding()?)
    }

    /// The schema id records of `subject` are framed with: the registry's
    /// for its subject when it knows distans' schema, else the embedded one.
    pub(crate) fn id_for(&self, subject: Subject) -> u32 {
        let latest = self.resolver.latest(subject).id;
        match &self.registry {
            Some(registry) if registry.subject() == subject => registry.registered_id().unwrap_or(latest),
            _ => latest,
        }
    }

    /// `record` in the wire format: the header, then the datum written with
    /// the newest schema of `subject`, into one allocation of `capacity`
    /// bytes when it fits.
    fn encode<T: Serialize>(&self, subject: Subject, record: &T, capacity: usize) -> Result<Vec<u8>, EncodeError> {
        let latest = self.resolver.latest(subject);
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&header(self.id_for(subject)));
        let mut config = SerializerConfig::new(&latest.prepared);
        serde_avro_fast::to_datum(record, out, &mut config)
            .map_err(|source| EncodeError { subject: subject.as_str(), source })
    }

    /// The writer's schema of `id`, which must be a `subject` schema.
    pub(crate) fn writer(&self, subject: Subject, id: u32) -> Result<Writer<'_>, DecodeError> {
        let writer = match &self.registry {
            Some(registry) if registry.subject() == subject => Writer::Fetched(registry.writer(id)?),
            _ => Writer::Resolved(self.resolver.by_id(id).ok_or_else(|| {
                DecodeError::new(ReasonCode::UnknownSchemaId, format!("schema id {id} is not known"))
            })?),
        };
        if writer.subject != subject {
            return Err(DecodeError::new(
                ReasonCode::UnknownSchemaId,
                format!("schema id {id} is a {} schema, expected {}", writer.subject.as_str(), subject.as_str()),
            ));
        }
        Ok(writer)
    }

    /// The record framed in `bytes`, read with its writer's schema into the
    /// reader's mirror `T` (see `records.rs` for how fields are resolved);
    /// every byte of the datum must be used.
    fn decode<'b, T: Deserialize<'b>>(&self, subject: Subject, bytes: &'b [u8]) -> Result<T, DecodeError> {
        let (id, datum) = unframe(bytes).map_err(|e| DecodeError::new(ReasonCode::BadWireHeader, e.to_string()))?;
        let writer = self.writer(subject, id)?;
        let mut config = DeserializerConfig::new(&writer.prepared);
        config.max_seq_size = MAX_ALLOCATION_BYTES;
        let mut state = DeserializerState::with_config(SliceRead::new(datum), config.clone());
        let record = match T::deserialize(state.deserializer()) {
            Ok(record) => record,
            Err(_) => return Err(malformed_at_field::<T>(datum, config)),
        };
        let mut rest = state.into_reader();
        let left = rest.fill_buf().map_or(0, <[u8]>::len);
        if left > 0 {
            return Err(DecodeError::new(ReasonCode::MalformedAvro, format!("{left} bytes left over after the datum")));
        }
        Ok(record)
    }
}

/// The error of a datum that did not decode, naming the field it stopped
/// at: decoded again with the path tracked (only on this error path, so a
/// good record pays nothing for it).
#[cold]
fn malformed_at_field<'b, T: Deserialize<'b>>(datum: &'b [u8], config: DeserializerConfig<'_>) -> DecodeError {
    let mut state = DeserializerState::with_config(SliceRead::new(datum), config);
    let message = match serde_path_to_error::deserialize::<_, T>(state.deserializer()) {
        Ok(_) => "the datum decoded only the second time".to_string(),
        Err(error) if error.path().iter().next().is_none() => error.into_inner().to_string(),
        Err(error) => format!("field {}: {}", error.path(), error.inner()),
    };
    DecodeError::new(ReasonCode::MalformedAvro, message)
}

impl DecodeError {
    /// The error as a violation of the record as a whole.
    pub fn into_violation(self) -> distans_domain::Violation {
        distans_domain::Violation::new(self.code, "", self.message)
    }
}
