//! The wire format against the schemas in `schemas/`.

use chrono::NaiveTime;
use distans_domain::enrich::{AgeGroup, Initiative, Provenance};
use distans_domain::rules::{Finding, FindingStatus, Withdrawal, DOUBLE_INVOICING};
use distans_domain::{testing, EnrichedLine, InvoiceLine, InvoiceType, PatientIdKind, ReasonCode, TariffClass};
use distans_wire::{frame, Codec, DeadLetter, DeadLetterViolation, EmbeddedSchemas, SchemaResolver, Subject};

/// The shared fixture on line 3 of an invoice payable 12 500 kr, with a
/// visit time to the millisecond and two diagnoses: values the defaults do
/// not cover.
fn invoice_line() -> InvoiceLine {
    InvoiceLine {
        line_number: 3,
        payable_amount_ore: 1_250_000,
        visit_time: NaiveTime::from_hms_milli_opt(14, 5, 30, 250),
        diagnosis_codes: vec!["J06.9".into(), "R05".into()],
        ..testing::invoice_line()
    }
}

#[test]
fn every_subject_has_a_schema_and_ids_are_unique() {
    let schemas = EmbeddedSchemas::load().expect("schemas parse");
    let ids: Vec<u32> = [Subject::InvoiceLine, Subject::EnrichedLine, Subject::DeadLetter, Subject::Finding]
        .into_iter()
        .map(|s| schemas.latest(s).id)
        .collect();
    assert_eq!(ids, [1, 2, 3, 6], "finding v3 (id 6) is the latest; v1 (id 4) and v2 (id 5) stay");
    assert_eq!(schemas.by_id(4).map(|s| s.version), Some(1));
    assert_eq!(schemas.by_id(5).map(|s| s.version), Some(2));
    assert!(schemas.by_id(7).is_none());
}

#[test]
fn invoice_line_round_trips_with_and_without_optionals() {
    let codec = Codec::embedded();
    let full = invoice_line();
    let bytes = codec.encode_invoice_line(&full).expect("encodes");
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1], "magic byte and schema id 1");
    assert_eq!(codec.decode_invoice_line(&bytes).expect("decodes"), full);

    let bare = testing::invoice_line_without_optionals();
    let bytes = codec.encode_invoice_line(&bare).expect("encodes");
    assert_eq!(codec.decode_invoice_line(&bytes).expect("decodes"), bare);
}

#[test]
fn enriched_line_round_trips() {
    let codec = Codec::embedded();
    // The clean line as a credited, referred psychologist contact: other
    // enum variants, the optionals the other way round, large numbers.
    let line = EnrichedLine {
        invoice_type: InvoiceType::CreditNote,
        credited_invoice_id: Some("ZVF23210001152502000007".into()),
        patient_id_kind: PatientIdKind::Samordningsnummer,
        age_years: Some(85),
        age_group: AgeGroup::Age85Plus,
        initiative: Initiative::Referral,
        remittance_number: Some("R-77".into()),
        visit_type: "return".into(),
        visit_time: None,
        profession_code: "PS".into(),
        tariff_class: TariffClass::Psychologist,
        tariff_ore: None,
        quantity: 2,
        unit_price_ore: 42_500,
        patient_fee_ore: 10_000,
        gross_amount_ore: 85_000,
        net_amount_ore: 75_000,
        procedure_codes: vec![],
        contact_channel: Some("chat".into()),
        needs_assessment: Some(false),
        source: Provenance { topic: "invoice-lines".into(), partition: 2, offset: 12_345 },
        ingested_at_ms: 1_743_400_000_123,
        ..testing::enriched_line()
    };
    let bytes = codec.encode_enriched_line(&line).expect("encodes");
    assert_eq!(bytes[4], 2, "schema id 2");
    assert_eq!(codec.decode_enriched_line(&bytes).expect("decodes"), line);
}

#[test]
fn dead_letter_round_trips() {
    let codec = Codec::embedded();
    let dl = DeadLetter {
        reason_code: "malformed_avro".into(),
        reason: "malformed_avro: x".into(),
        violations: vec![DeadLetterViolation {
            code: "malformed_avro".into(),
            field: String::new(),
            message: "x".into(),
        }],
        stage: "ingester".into(),
        source_topic: "invoice-lines".into(),
        source_partition: 1,
        source_offset: 7,
        source_key: Some(b"k".to_vec()),
        original: vec![0, 1, 2, 255],
        failed_at_ms: 5,
    };
    let bytes = codec.encode_dead_letter(&dl).expect("encodes");
    assert_eq!(codec.decode_dead_letter(&bytes).expect("decodes"), dl);
}

#[test]
fn a_dead_letter_too_large_keeps_a_prefix_its_size_and_sha256() {
    let codec = Codec::embedded();
    let original: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let dl = DeadLetter {
        reason_code: "record_too_large".into(),
        reason: "too large".into(),
        violations: vec![],
        stage: "ingester".into(),
        source_topic: "invoice-lines".into(),
        source_partition: 0,
        source_offset: 3,
        source_key: Some(b"k".to_vec()),
        original: original.clone(),
        failed_at_ms: 5,
    };
    let whole = codec.encode_dead_letter(&dl).expect("encodes");
    assert_eq!(codec.encode_dead_letter_within(&dl, whole.len()).expect("encodes"), whole, "fits: unchanged");
    for max_bytes in [whole.len() - 1, 20_000, 1_000] {
        let bytes = codec.encode_dead_letter_within(&dl, max_bytes).expect("encodes");
        assert!(bytes.len() <= max_bytes, "{} > {max_bytes}", bytes.len());
        assert!(bytes.len() + 40 >= max_bytes, "uses the room it has: {} of {max_bytes}", bytes.len());
        let cut = codec.decode_dead_letter(&bytes).expect("decodes");
        assert!(original.starts_with(&cut.original), "a prefix of the original");
        let expected = format!(
            "too large; original cut to its first {} of 50000 bytes, sha256 {}",
            cut.original.len(),
            hex_sha256(&original)
        );
        assert_eq!(cut.reason, expected);
        assert_eq!((cut.reason_code.as_str(), cut.source_offset), ("record_too_large", 3));
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bad_input_gets_a_reason() {
    let codec = Codec::embedded();
    let good = codec.encode_invoice_line(&invoice_line()).expect("encodes");
    let cases: Vec<(&str, Vec<u8>, ReasonCode)> = vec![
        ("empty", vec![], ReasonCode::BadWireHeader),
        ("short header", vec![0, 0, 0], ReasonCode::BadWireHeader),
        ("bad magic", vec![7, 0, 0, 0, 1, 2], ReasonCode::BadWireHeader),
        ("unknown id", frame(99, &good[5..]), ReasonCode::UnknownSchemaId),
        ("wrong subject", frame(2, &good[5..]), ReasonCode::UnknownSchemaId),
        ("truncated", good[..good.len() / 2].to_vec(), ReasonCode::MalformedAvro),
        ("trailing bytes", [good.clone(), vec![1, 2, 3]].concat(), ReasonCode::MalformedAvro),
        ("garbage", frame(1, &[0xff; 64]), ReasonCode::MalformedAvro),
        // A string whose zig-zag length claims ~2^62 bytes: an error, not an allocation.
        ("huge length", frame(1, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), ReasonCode::MalformedAvro),
    ];
    for (name, bytes, expected) in cases {
        let err = codec.decode_invoice_line(&bytes).expect_err(name);
        assert_eq!(err.code, expected, "{name}: {err}");
    }
}

#[test]
fn decoding_never_panics_on_prefixes_or_bit_flips() {
    let codec = Codec::embedded();
    let good = codec.encode_invoice_line(&invoice_line()).expect("encodes");
    for len in 0..good.len() {
        let _ = codec.decode_invoice_line(&good[..len]);
    }
    for i in 5..good.len() {
        for bit in 0..8 {
            let mut flipped = good.clone();
            flipped[i] ^= 1 << bit;
            let _ = codec.decode_invoice_line(&flipped);
        }
    }
}

/// A resolver with an older version of the invoice line (without the two
/// optional fields added last), as a producer on an older release writes it.
#[derive(Debug)]
struct WithOldVersion {
    embedded: EmbeddedSchemas,
    old: distans_wire::RegisteredSchema,
}

impl SchemaResolver for WithOldVersion {
    fn by_id(&self, id: u32) -> Option<&distans_wire::RegisteredSchema> {
        if id == self.old.id {
            Some(&self.old)
        } else {
            self.embedded.by_id(id)
        }
    }

    fn latest(&self, subject: Subject) -> &distans_wire::RegisteredSchema {
        self.embedded.latest(subject)
    }
}

#[test]
fn an_older_writer_schema_is_resolved_to_the_current_one() {
    let current: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/invoice_line.v1.avsc")).expect("schema json");
    let mut old = current.clone();
    let fields = old["fields"].as_array_mut().expect("fields");
    fields.retain(|f| f["name"] != "contact_channel" && f["name"] != "needs_assessment");
    let old_schema = apache_avro::Schema::parse_str(&old.to_string()).expect("old schema parses");

    // Encode with the old schema: the current record minus the two fields.
    let current_codec = Codec::embedded();
    let line = invoice_line();
    let bytes = current_codec.encode_invoice_line(&line).expect("encodes");
    let current_schema = EmbeddedSchemas::load().expect("schemas").latest(Subject::InvoiceLine).schema.clone();
    let value = apache_avro::from_avro_datum(&current_schema, &mut &bytes[5..], None).expect("decodes");
    let apache_avro::types::Value::Record(mut record) = value else { panic!("a record") };
    record.retain(|(name, _)| name != "contact_channel" && name != "needs_assessment");
    let old_datum =
        apache_avro::to_avro_datum(&old_schema, apache_avro::types::Value::Record(record)).expect("old encodes");

    let resolver = WithOldVersion {
        embedded: EmbeddedSchemas::load().expect("schemas"),
        old: distans_wire::RegisteredSchema::new(100, Subject::InvoiceLine, 0, old_schema)
            .expect("old schema prepares"),
    };
    let codec = Codec::new(std::sync::Arc::new(resolver));
    let decoded = codec.decode_invoice_line(&frame(100, &old_datum)).expect("resolves to the current schema");
    let mut expected = line;
    expected.contact_channel = None;
    expected.needs_assessment = None;
    assert_eq!(decoded, expected);
}

#[test]
fn finding_round_trips() {
    let codec = Codec::embedded();
    let timed = distans_wire::TimedFinding {
        finding: Finding {
            line_keys: vec!["ZVF1:2".into(), "ZVF0:1".into()],
            patient_pseudonym: None,
            amount_at_stake_ore: 50_000,
            evidence: "the contact of 2025-02-14 is also invoiced on line ZVF0:1".into(),
            evidence_data: Some(distans_domain::rules::Evidence::Double {
                visit_date: chrono::NaiveDate::from_ymd_opt(2025, 2, 14).expect("date"),
                original_line: "ZVF0:1".into(),
            }),
            ..testing::finding(&DOUBLE_INVOICING, "ZVF1:2")
        },
        detected_at_ms: 1_760_000_000_000,
    };
    let bytes = codec.encode_finding(&timed).expect("encodes");
    assert_eq!(bytes[4], 6, "schema id 6");
    assert_eq!(codec.decode_finding(&bytes).expect("decodes"), timed);
    let mut withdrawn = timed.clone();
    withdrawn.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    let bytes = codec.encode_finding(&withdrawn).expect("encodes");
    assert_eq!(codec.decode_finding(&bytes).expect("decodes"), withdrawn);
}

/// A finding written with v1 of the schema (id 4, before findings had a
/// status) reads as an active finding.
#[test]
fn a_v1_finding_reads_as_active() {
    let codec = Codec::embedded();
    let schemas = EmbeddedSchemas::load().expect("schemas parse");
    let timed = distans_wire::TimedFinding {
        finding: testing::finding(&DOUBLE_INVOICING, "ZVF1:2"),
        detected_at_ms: 1_760_000_000_000,
    };
    let v3 = codec.encode_finding(&timed).expect("encodes");
    let latest = schemas.by_id(6).expect("v3");
    let value = apache_avro::from_avro_datum(&latest.schema, &mut &v3[5..], None).expect("reads");
    let apache_avro::types::Value::Record(mut fields) = value else { panic!("a record") };
    fields.retain(|(name, _)| name != "status" && name != "withdrawn_reason" && name != "evidence_data");
    let v1 = schemas.by_id(4).expect("v1");
    let datum = apache_avro::to_avro_datum(&v1.schema, apache_avro::types::Value::Record(fields)).expect("v1 datum");
    let decoded = codec.decode_finding(&frame(4, &datum)).expect("decodes");
    let mut expected = timed.clone();
    expected.finding.evidence_data = None;
    assert_eq!(decoded, expected, "no evidence data before v3: the English text only");
    assert_eq!(decoded.finding.status, FindingStatus::Active);
}

/// v3 (id 6) adds `evidence_data` with a default: a v2 record (id 5) reads
/// with none, and a v2 reader reads a v3 record (the field ignored); Avro's
/// own check agrees both ways (FULL compatibility).
#[test]
fn finding_v3_and_v2_read_each_other() {
    let codec = Codec::embedded();
    let schemas = EmbeddedSchemas::load().expect("schemas parse");
    let (v2, v3) = (schemas.by_id(5).expect("v2"), schemas.by_id(6).expect("v3"));
    let checker = apache_avro::schema_compatibility::SchemaCompatibility::can_read;
    assert!(checker(&v2.schema, &v3.schema).is_ok(), "v3 reads v2");
    assert!(checker(&v3.schema, &v2.schema).is_ok(), "v2 reads v3");
    let timed = distans_wire::TimedFinding {
        finding: testing::finding(&DOUBLE_INVOICING, "ZVF1:2"),
        detected_at_ms: 1_760_000_000_000,
    };
    assert!(timed.finding.evidence_data.is_some());
    let bytes = codec.encode_finding(&timed).expect("encodes");
    let value = apache_avro::from_avro_datum(&v3.schema, &mut &bytes[5..], Some(&v2.schema)).expect("v2 reads v3");
    let apache_avro::types::Value::Record(fields) = value else { panic!("a record") };
    assert!(fields.iter().all(|(name, _)| name != "evidence_data"));
    let datum = apache_avro::to_avro_datum(&v2.schema, apache_avro::types::Value::Record(fields)).expect("v2 datum");
    let decoded = codec.decode_finding(&frame(5, &datum)).expect("decodes");
    assert_eq!(decoded.finding.evidence_data, None);
    assert_eq!(decoded.finding.evidence, timed.finding.evidence);
}
