//! One record in, one record out: the ingester's logic without Kafka.

use distans_domain::enrich::Provenance;
use distans_domain::validate::Context;
use distans_domain::{validate, Pseudonymiser, ReasonCode, Tariffs, Validation, Violation};
use distans_wire::{Codec, DeadLetter, EncodeError};

/// Where a record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// A valid line, encoded as an enriched line, keyed by its line key,
    /// with the reasons of the checks that warned (counted, not rejected).
    Valid { key: Vec<u8>, payload: Vec<u8>, warnings: Vec<ReasonCode> },
    /// A dead letter, keyed as the original record was.
    DeadLetter { key: Vec<u8>, payload: Vec<u8>, reason: ReasonCode, problems: usize },
}

#[derive(Debug)]
pub struct Processor {
    codec: Codec,
    tariffs: Tariffs,
    pseudonymiser: Pseudonymiser,
    validation: Validation,
}

const STAGE: &str = "ingester";

impl Processor {
    pub fn new(codec: Codec, tariffs: Tariffs, pseudonymiser: Pseudonymiser, validation: Validation) -> Processor {
        Processor { codec, tariffs, pseudonymiser, validation }
    }

    /// Decodes, validates and enriches one record. An error here is a bug
    /// (an encoding that cannot fail did), never bad input.
    pub fn process(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        source: &Provenance,
        now_ms: i64,
    ) -> Result<Routed, EncodeError> {
        let Some(value) = value else {
            let violation = Violation::new(ReasonCode::BadWireHeader, "", "record has no value (a tombstone)");
            return self.dead_letter(key, &[], source, &[violation], now_ms);
        };
        let line = match self.codec.decode_invoice_line(value) {
            Ok(line) => line,
            Err(error) => return self.dead_letter(key, value, source, &[error.into_violation()], now_ms),
        };
        let ctx = Context {
            tariffs: &self.tariffs,
            pseudonymiser: &self.pseudonymiser,
            validation: &self.validation,
            ingested_at_ms: now_ms,
        };
        match validate(&line, source.clone(), ctx) {
            Ok(accepted) => {
                let payload = self.codec.encode_enriched_line(&accepted.line)?;
                let warnings = accepted.warnings.iter().map(|w| w.code).collect();
                Ok(Routed::Valid { key: accepted.line.key().into_bytes(), payload, warnings })
            }
            Err(violations) => self.dead_letter(key, value, source, &violations, now_ms),
        }
    }

    fn dead_letter(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        source: &Provenance,
        violations: &[Violation],
        now_ms: i64,
    ) -> Result<Routed, EncodeError> {
        let dead_letter = DeadLetter::new(STAGE, violations, source, key, value, now_ms);
        let payload = self.codec.encode_dead_letter(&dead_letter)?;
        let reason = violations.first().map_or(ReasonCode::MalformedAvro, |v| v.code);
        Ok(Routed::DeadLetter { key: key.unwrap_or_default().to_vec(), payload, reason, problems: violations.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::testing;

    fn processor() -> Processor {
        let key = Pseudonymiser::new(&[1u8; 32]).expect("key");
        Processor::new(Codec::embedded(), testing::tariffs(), key, testing::validation())
    }

    fn source() -> Provenance {
        Provenance { topic: "invoice-lines".into(), partition: 1, offset: 41 }
    }

    #[test]
    fn a_valid_line_goes_on_pseudonymised() {
        let p = processor();
        let bytes = Codec::embedded().encode_invoice_line(&testing::invoice_line()).expect("encodes");
        let Routed::Valid { key, payload, .. } = p.process(Some(b"k"), Some(&bytes), &source(), 7).expect("ok") else {
            panic!("expected a valid line");
        };
        assert_eq!(key, b"ZVF23210001152503000042:1");
        let enriched = Codec::embedded().decode_enriched_line(&payload).expect("decodes");
        assert_eq!(enriched.source, source());
        assert_eq!(enriched.ingested_at_ms, 7);
        let as_text = String::from_utf8_lossy(&payload);
        assert!(!as_text.contains("8112189876"), "the patient id must not pass the ingester");
    }

    #[test]
    fn bad_records_become_dead_letters_with_the_original_bytes() {
        let p = processor();
        let mut bad = testing::invoice_line();
        bad.patient_id = "198112189875".into();
        bad.net_amount_ore = -1;
        let bad_bytes = Codec::embedded().encode_invoice_line(&bad).expect("encodes");
        let cases: Vec<(Option<&[u8]>, ReasonCode, usize)> = vec![
            (None, ReasonCode::BadWireHeader, 1),
            (Some(&b"not avro"[..]), ReasonCode::BadWireHeader, 1),
            (Some(&[0, 0, 0, 0, 42, 1]), ReasonCode::UnknownSchemaId, 1),
            (Some(&[0, 0, 0, 0, 1, 0xff]), ReasonCode::MalformedAvro, 1),
            (Some(&bad_bytes), ReasonCode::PatientIdCheckDigit, 2),
        ];
        for (value, expected_reason, expected_problems) in cases {
            let routed = p.process(Some(b"key-1"), value, &source(), 9).expect("ok");
            let Routed::DeadLetter { key, payload, reason, problems } = routed else {
                panic!("expected a dead letter for {expected_reason}");
            };
            assert_eq!((reason, problems), (expected_reason, expected_problems));
            assert_eq!(key, b"key-1");
            let dl = Codec::embedded().decode_dead_letter(&payload).expect("decodes");
            assert_eq!(dl.reason_code, expected_reason.as_str());
            assert_eq!(dl.violations.len(), expected_problems);
            assert_eq!(dl.original, value.unwrap_or_default());
            assert_eq!((dl.source_topic.as_str(), dl.source_partition, dl.source_offset), ("invoice-lines", 1, 41));
            assert_eq!(dl.stage, "ingester");
            assert!(!dl.reason.contains("8112189875"), "reasons never repeat the patient id: {}", dl.reason);
        }
    }
}
