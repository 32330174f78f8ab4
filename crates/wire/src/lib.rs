//! distans on the wire.
//!
//! Every Kafka value is in the Confluent wire format: a zero magic byte, a
//! four-byte big-endian schema id, then one Avro datum. Schema ids resolve
//! through a [`SchemaResolver`]; the first one, [`EmbeddedSchemas`], holds
//! the schemas in the repository's `schemas/` folder; [`RegistrySchemas`]
//! holds the input subject's writer schemas under a schema registry's ids.
//! A record is decoded
//! with the schema it was written with and resolved to the schema this
//! build reads, so a producer on an older or newer compatible version is
//! understood. Records are read and written with `serde_avro_fast`, without
//! a generic Avro `Value`; [`reference`] keeps the apache-avro path the tests
//! and `make bench-quick` compare with.
//!
//! Topics internal to the notifier are JSON, not Avro: its pending digests
//! (`distans_notifier::pending`) and the messages its webhook refused for
//! good ([`UndeliveredAlert`] on `<alerts>.undelivered`, read by the sink).

mod codec;
mod framing;
mod records;
pub mod reference;
mod registry;
mod undelivered;

pub use codec::{Codec, DecodeError, EncodeError};
pub use framing::{frame, unframe, FramingError, MAGIC_BYTE};
pub use records::{DeadLetter, DeadLetterViolation, TimedFinding, REVISION_HEADER};
pub use registry::{EmbeddedSchemas, RegisteredSchema, RegistrySchemas, SchemaError, SchemaResolver, Subject};
pub use undelivered::{undelivered_topic, UndeliveredAlert};
