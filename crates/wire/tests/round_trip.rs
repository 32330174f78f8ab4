//! The wire format against the schemas in `schemas/`.

use distans_domain::enrich::{AgeGroup, Initiative, Provenance, Sex};
use distans_domain::{EnrichedLine, InvoiceLine, InvoiceType, PatientIdKind, ReasonCode, TariffClass};
use distans_wire::{frame, Codec, DeadLetter, DeadLetterViolation, EmbeddedSchemas, SchemaResolver, Subject};

fn invoice_line() -> InvoiceLine {
    serde_json::from_value(serde_json::json!({
        "invoice_id": "ZVF23210001152503000042",
        "invoice_type": "380",
        "line_number": 3,
        "seller_org_number": "2321000115",
        "buyer_org_number": "2321000198",
        "invoice_date": "2025-03-31",
        "payable_amount_ore": 1_250_000,
        "patient_id": "198112189876",
        "patient_county_code": "23",
        "patient_municipality_code": "2380",
        "patient_sex": 1,
        "remittance_number": "R-77",
        "agreement_chapter": "4",
        "agreement_point": "4.1",
        "care_type": "outpatient",
        "visit_type": "new",
        "visit_date": "2025-03-02",
        "visit_time": "14:05:30.250",
        "performing_unit_hsa_id": "SE2321000115-094882",
        "provider_org_number": "5567000004",
        "provider_name": "Exempel Digital Vård AB",
        "profession_code": "LK",
        "product_category": "04",
        "quantity": 1,
        "unit_price_ore": 50000,
        "patient_fee_ore": 0,
        "gross_amount_ore": 50000,
        "net_amount_ore": 50000,
        "diagnosis_codes": ["J06.9", "R05"],
        "procedure_codes": ["ZV051"],
        "contact_channel": "video",
        "needs_assessment": true
    }))
    .expect("fixture parses")
}

#[test]
fn every_subject_has_a_schema_and_ids_are_unique() {
    let schemas = EmbeddedSchemas::load().expect("schemas parse");
    let ids: Vec<u32> = [Subject::InvoiceLine, Subject::EnrichedLine, Subject::DeadLetter, Subject::Finding]
        .into_iter()
        .map(|s| schemas.latest(s).id)
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert!(schemas.by_id(5).is_none());
}

#[test]
fn invoice_line_round_trips_with_and_without_optionals() {
    let codec = Codec::embedded();
    let full = invoice_line();
    let bytes = codec.encode_invoice_line(&full).expect("encodes");
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1], "magic byte and schema id 1");
    assert_eq!(codec.decode_invoice_line(&bytes).expect("decodes"), full);

    let mut bare = invoice_line();
    bare.patient_sex = None;
    bare.remittance_number = None;
    bare.visit_time = None;
    bare.diagnosis_codes.clear();
    bare.procedure_codes.clear();
    bare.contact_channel = None;
    bare.needs_assessment = None;
    let bytes = codec.encode_invoice_line(&bare).expect("encodes");
    assert_eq!(codec.decode_invoice_line(&bytes).expect("decodes"), bare);
}

#[test]
fn enriched_line_round_trips() {
    let codec = Codec::embedded();
    let line = EnrichedLine {
        invoice_id: "ZVF23210001152503000042".into(),
        line_number: 3,
        invoice_type: InvoiceType::CreditNote,
        credited_invoice_id: Some("ZVF23210001152502000007".into()),
        seller_org_number: "2321000115".into(),
        buyer_org_number: "2321000198".into(),
        invoice_date: "2025-03-31".parse().expect("date"),
        patient_pseudonym: "00112233445566778899aabbccddeeff".into(),
        patient_id_kind: PatientIdKind::Samordningsnummer,
        patient_county_code: "23".into(),
        patient_municipality_code: "2380".into(),
        sex: Sex::Female,
        age_years: Some(85),
        age_group: AgeGroup::Age85Plus,
        initiative: Initiative::Referral,
        remittance_number: Some("R-77".into()),
        agreement_chapter: "4".into(),
        agreement_point: "4.1".into(),
        care_type: "outpatient".into(),
        visit_type: "return".into(),
        visit_date: "2025-03-02".parse().expect("date"),
        visit_time: None,
        performing_unit_hsa_id: "SE2321000115-094882".into(),
        provider_org_number: "5567000004".into(),
        provider_name: "Exempel".into(),
        profession_code: "PS".into(),
        tariff_class: TariffClass::Psychologist,
        tariff_ore: None,
        product_category: "04".into(),
        quantity: 2,
        unit_price_ore: 42_500,
        patient_fee_ore: 10_000,
        gross_amount_ore: 85_000,
        net_amount_ore: 75_000,
        diagnosis_codes: vec!["F43.1".into()],
        procedure_codes: vec![],
        contact_channel: Some("chat".into()),
        needs_assessment: Some(false),
        source: Provenance { topic: "invoice-lines".into(), partition: 2, offset: 12_345 },
        ingested_at_ms: 1_743_400_000_123,
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
        old: distans_wire::RegisteredSchema { id: 100, subject: Subject::InvoiceLine, version: 0, schema: old_schema },
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
        finding: distans_domain::rules::Finding {
            finding_id: distans_domain::rules::finding_id("double_invoicing", "ZVF1:2"),
            rule_id: "double_invoicing".into(),
            severity: distans_domain::rules::Severity::High,
            line_keys: vec!["ZVF1:2".into(), "ZVF0:1".into()],
            buyer_org_number: "2321000230".into(),
            provider_org_number: "5591000010".into(),
            provider_name: "Nordvård Digital AB".into(),
            performing_unit_hsa_id: "SE5591000010-E0001".into(),
            patient_pseudonym: None,
            visit_date: "2025-02-14".parse().expect("date"),
            amount_at_stake_ore: 50_000,
            evidence: "the contact of 2025-02-14 is also invoiced on line ZVF0:1".into(),
        },
        detected_at_ms: 1_760_000_000_000,
    };
    let bytes = codec.encode_finding(&timed).expect("encodes");
    assert_eq!(bytes[4], 4, "schema id 4");
    assert_eq!(codec.decode_finding(&bytes).expect("decodes"), timed);
}
