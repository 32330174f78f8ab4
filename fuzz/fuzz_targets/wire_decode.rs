//! Any bytes as a Kafka value: every decoder of the wire format (Confluent
//! header + Avro), and the ingester's whole path for one record
//! (`Processor::process`: decode, validate, pseudonymise, enrich, encode).
//!
//! Checked, besides "never panics": a decode error carries a wire reason
//! code; the codec (serde_avro_fast) decodes exactly what the reference
//! path through apache-avro's `Value` decodes, to the same value, and
//! encodes it to the same bytes; what decodes encodes again and decodes to
//! the same value; the
//! ingester routes every record (an `Err` from `process` is a bug by its
//! contract) and what it routes decodes: an enriched line, or a dead letter
//! quoting the record's bytes (or a prefix of them).
#![no_main]

use std::sync::LazyLock;

use distans_domain::enrich::Provenance;
use distans_domain::{testing, Pseudonymiser, ReasonCode};
use distans_ingester::{Processor, Routed};
use distans_wire::reference::ReferenceCodec;
use distans_wire::{Codec, DecodeError};
use libfuzzer_sys::fuzz_target;

static CODEC: LazyLock<Codec> = LazyLock::new(Codec::embedded);
static REFERENCE: LazyLock<ReferenceCodec> = LazyLock::new(|| ReferenceCodec::new(Codec::embedded()));
static PROCESSOR: LazyLock<Processor> = LazyLock::new(|| {
    let key = Pseudonymiser::new(&[7u8; 32]).expect("a 32-byte key");
    Processor::new(Codec::embedded(), testing::tariffs(), key, testing::validation())
});

fn wire_reason(error: &DecodeError) {
    assert!(
        matches!(error.code, ReasonCode::BadWireHeader | ReasonCode::UnknownSchemaId | ReasonCode::MalformedAvro),
        "unexpected reason code {:?}",
        error.code
    );
}

/// apache-avro 0.21 reads a union at the end of the input as its first
/// variant (`decode.rs`: an `UnexpectedEof` on the union's index gives
/// `Value::Union(0, Null)`), so it accepts a record whose trailing optional
/// fields are missing; the codec refuses it as truncated, as the Avro
/// specification has it (every field is encoded). The only difference
/// allowed (`crates/wire/tests/reference.rs` keeps such an input).
fn truncated_union_read_as_null<T>(decoded: &Result<T, DecodeError>, reference_ok: bool) -> bool {
    match decoded {
        Err(error) if reference_ok => {
            error.code == ReasonCode::MalformedAvro
                && (error.message.contains("Reached EOF") || error.message.contains("Unexpected end of slice"))
        }
        _ => false,
    }
}

/// `decode` then `encode` then `decode` again gives the first value.
macro_rules! round_trip {
    ($bytes:expr, $decode:ident, $encode:ident) => {
        let decoded = CODEC.$decode($bytes);
        let reference = REFERENCE.$decode($bytes);
        if !truncated_union_read_as_null(&decoded, reference.is_ok()) {
            assert_eq!(decoded.as_ref().ok(), reference.as_ref().ok(), "the codec and the reference decode the same");
        }
        match decoded {
            Ok(value) => {
                let again = CODEC.$encode(&value).expect(concat!("a decoded value encodes: ", stringify!($encode)));
                assert_eq!(Some(&again), REFERENCE.$encode(&value).ok().as_ref(), "the same bytes as the reference");
                assert_eq!(CODEC.$decode(&again).expect("the re-encoded value decodes"), value);
            }
            Err(error) => {
                wire_reason(&error);
                if let Err(reference) = reference {
                    assert_eq!(error.code, reference.code, "the same reason as the reference");
                }
            }
        }
    };
}

fuzz_target!(|bytes: &[u8]| {
    round_trip!(bytes, decode_invoice_line, encode_invoice_line);
    round_trip!(bytes, decode_enriched_line, encode_enriched_line);
    round_trip!(bytes, decode_dead_letter, encode_dead_letter);
    round_trip!(bytes, decode_finding, encode_finding);

    let source = Provenance { topic: "invoice-lines".into(), partition: 0, offset: 0 };
    let routed = PROCESSOR
        .process(Some(b"key"), Some(bytes), &source, 1_760_000_000_000)
        .expect("the ingester routes every record");
    match routed {
        Routed::Valid { payload, .. } => {
            CODEC.decode_enriched_line(&payload).expect("an enriched line the ingester wrote decodes");
        }
        Routed::DeadLetter { payload, .. } => {
            let letter = CODEC.decode_dead_letter(&payload).expect("a dead letter the ingester wrote decodes");
            assert!(bytes.starts_with(&letter.original), "the dead letter quotes the record");
            assert_eq!(letter.source_key.as_deref(), Some(&b"key"[..]));
        }
    }
});
