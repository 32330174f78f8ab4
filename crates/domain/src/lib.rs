//! The domain of distans: invoice lines for digital out-of-county care
//! ("digital utomlänsvård"), as regions receive them under the national
//! agreement (riksavtalet).
//!
//! This crate does no I/O and knows nothing of Kafka, Avro or ClickHouse:
//! it turns an [`InvoiceLine`] as received into either an [`EnrichedLine`]
//! (validated, pseudonymised, enriched) or a list of [`Violation`]s that say
//! why the line cannot be accepted.

pub mod codes;
pub mod enrich;
pub mod invoice;
pub mod money;
pub mod patient;
pub mod pseudonym;
pub mod rules;
pub mod tariff;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod validate;

pub use enrich::{AgeGroup, EnrichedLine, Initiative, Provenance, Sex};
pub use invoice::{InvoiceLine, InvoiceType};
pub use patient::{BirthDate, PatientId, PatientIdFormats, PatientIdKind, ReservnummerFormat};
pub use pseudonym::Pseudonymiser;
pub use tariff::{TariffClass, TariffEntry, Tariffs};
pub use validate::{
    validate, validate_and_enrich, Accepted, CheckMode, Context, ReasonCode, Validation, ValidationSettings, Violation,
};
