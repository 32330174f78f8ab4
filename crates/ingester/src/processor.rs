//! One record in, one record out: the ingester's logic without Kafka.

use distans_domain::enrich::Provenance;
use distans_domain::validate::Context;
use distans_domain::{validate, Pseudonymiser, ReasonCode, Tariffs, Validation, Violation};
use distans_runtime::kafka::RECORD_OVERHEAD_BYTES;
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
    /// `kafka.max_record_bytes`: no routed record is larger.
    max_record_bytes: usize,
}

const STAGE: &str = "ingester";

impl Processor {
    /// A processor whose records may be as large as the default
    /// `kafka.max_record_bytes`; see [`Processor::with_max_record_bytes`].
    pub fn new(codec: Codec, tariffs: Tariffs, pseudonymiser: Pseudonymiser, validation: Validation) -> Processor {
        Processor { codec, tariffs, pseudonymiser, validation, max_record_bytes: 1_000_000 }
    }

    /// Routes no record larger than `max_record_bytes` (key, value and
    /// framing): a valid line whose enriched record would be larger becomes a
    /// dead letter ([`ReasonCode::RecordTooLarge`]), and a dead letter that
    /// would be larger keeps only a prefix of its original.
    pub fn with_max_record_bytes(self, max_record_bytes: usize) -> Processor {
        Processor { max_record_bytes, ..self }
    }

    /// The dead letter for a valid line whose enriched record the broker
    /// refused for good (`error`, e.g. larger than the broker takes).
    pub fn refused(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        source: &Provenance,
        error: &str,
        too_large: bool,
        now_ms: i64,
    ) -> Result<Routed, EncodeError> {
        let code = if too_large { ReasonCode::RecordTooLarge } else { ReasonCode::ProduceRefused };
        let violation = Violation::new(code, "", format!("the broker refused the enriched record: {error}"));
        self.dead_letter(key, value, source, &[violation], now_ms)
    }

    /// The largest value that fits in a record with `key`.
    fn room(&self, key: &[u8]) -> usize {
        self.max_record_bytes.saturating_sub(key.len() + RECORD_OVERHEAD_BYTES)
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
                let line_key = accepted.line.key().into_bytes();
                if payload.len() > self.room(&line_key) {
                    let message = format!(
                        "the enriched record ({} bytes, key {} bytes) is larger than kafka.max_record_bytes ({})",
                        payload.len(),
                        line_key.len(),
                        self.max_record_bytes
                    );
                    let violation = Violation::new(ReasonCode::RecordTooLarge, "", message);
                    return self.dead_letter(key, value, source, &[violation], now_ms);
                }
                let warnings = accepted.warnings.iter().map(|w| w.code).collect();
                Ok(Routed::Valid { key: line_key, payload, warnings })
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
        let payload = self.codec.encode_dead_letter_within(&dead_letter, self.room(key.unwrap_or_default()))?;
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
    fn a_line_too_large_to_forward_is_a_dead_letter_cut_to_fit() {
        let p = processor().with_max_record_bytes(20_000);
        // Large by its many (valid) diagnosis codes: free text is limited
        // by validation (invalid_free_text), codes are not.
        let line = |codes: usize| distans_domain::InvoiceLine {
            diagnosis_codes: vec!["J06.9".to_string(); codes],
            ..testing::invoice_line()
        };
        let codec = Codec::embedded();
        // Larger than can be forwarded: read from the input (its topic may
        // take more), but neither the enriched line nor a whole dead letter fits.
        let large = codec.encode_invoice_line(&line(5_000)).expect("encodes");
        let routed = p.process(Some(b"k"), Some(&large), &source(), 9).expect("ok");
        let Routed::DeadLetter { key, payload, reason, problems } = routed else {
            panic!("expected a dead letter");
        };
        assert_eq!((key.as_slice(), reason, problems), (&b"k"[..], ReasonCode::RecordTooLarge, 1));
        assert!(payload.len() + key.len() + RECORD_OVERHEAD_BYTES <= 20_000, "the dead letter fits: {}", payload.len());
        let dl = codec.decode_dead_letter(&payload).expect("decodes");
        assert_eq!(dl.reason_code, "record_too_large");
        assert!(large.starts_with(&dl.original) && dl.original.len() < large.len(), "a prefix");
        assert!(dl.reason.contains(&format!("of {} bytes, sha256 ", large.len())), "{}", dl.reason);
        // A line that fits goes on.
        let small = codec.encode_invoice_line(&line(10)).expect("encodes");
        assert!(matches!(p.process(Some(b"k"), Some(&small), &source(), 9), Ok(Routed::Valid { .. })));
    }

    #[test]
    fn a_line_the_broker_refused_is_a_dead_letter_with_the_whole_original() {
        let p = processor();
        let bytes = Codec::embedded().encode_invoice_line(&testing::invoice_line()).expect("encodes");
        let routed = p.refused(Some(b"k"), &bytes, &source(), "Broker: Message size too large", true, 9).expect("ok");
        let Routed::DeadLetter { payload, reason, .. } = routed else { panic!("expected a dead letter") };
        assert_eq!(reason, ReasonCode::RecordTooLarge);
        let dl = Codec::embedded().decode_dead_letter(&payload).expect("decodes");
        assert_eq!(dl.original, bytes);
        assert!(dl.reason.contains("Message size too large"), "{}", dl.reason);
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
