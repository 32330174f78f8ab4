//! The codec (serde_avro_fast, no generic `Value`) against the reference
//! path through apache-avro's `Value` (`distans_wire::reference`): the same
//! bytes out for every project schema, and the same records (or errors)
//! in, on a generated year and on edge cases.

use chrono::{NaiveDate, NaiveTime};
use distans_domain::codes::PROFESSIONS;
use distans_domain::enrich::Provenance;
use distans_domain::rules::{FindingStatus, Withdrawal, DOUBLE_INVOICING, WRONG_PRICE};
use distans_domain::tariff::TariffEntry;
use distans_domain::validate::{validate, Context};
use distans_domain::{testing, EnrichedLine, InvoiceLine, Pseudonymiser, TariffClass, Tariffs};
use distans_synth::generate::{generate, Options};
use distans_wire::reference::ReferenceCodec;
use distans_wire::{frame, Codec, DeadLetter, DeadLetterViolation, TimedFinding};

fn codecs() -> (Codec, ReferenceCodec) {
    (Codec::embedded(), ReferenceCodec::new(Codec::embedded()))
}

/// A generated year's invoice lines (1 % invalid, credit notes, every
/// profession) and the enriched lines of the valid ones.
fn generated() -> (Vec<InvoiceLine>, Vec<EnrichedLine>) {
    let options = Options {
        county_code: "23".into(),
        year: 2025,
        lines: 3_000,
        seed: 15,
        invalid_share: 0.01,
        implausible_share: 0.02,
        needs_assessment_from: None,
        psychologist_limit: 10,
    };
    let tariffs = every_profession_priced();
    let lines = generate(&options, &tariffs).expect("generates").lines;
    let key = Pseudonymiser::new(&[7u8; 32]).expect("a 32-byte key");
    let validation = testing::validation();
    let enriched = lines
        .iter()
        .enumerate()
        .filter_map(|(offset, line)| {
            let source = Provenance { topic: "invoice-lines".into(), partition: 0, offset: offset as i64 };
            let ctx = Context { tariffs: &tariffs, pseudonymiser: &key, validation: &validation, ingested_at_ms: 1 };
            validate(line, source, ctx).ok().map(|accepted| accepted.line)
        })
        .collect::<Vec<_>>();
    assert!(enriched.len() > 2_500, "most generated lines are valid: {}", enriched.len());
    (lines, enriched)
}

/// A price for every tariff class since 2019, every known profession
/// in its class.
fn every_profession_priced() -> Tariffs {
    let classes = [TariffClass::Physician, TariffClass::Psychologist, TariffClass::OtherLicensed];
    let entries = classes
        .into_iter()
        .map(|class| TariffEntry {
            class,
            valid_from: NaiveDate::from_ymd_opt(2019, 1, 1).expect("a date"),
            valid_to: None,
            amount_ore: 50_000,
        })
        .collect();
    let professions = PROFESSIONS
        .iter()
        .map(|p| {
            let code = p.profession_code.as_str();
            let class = match code {
                "LK" => TariffClass::Physician,
                "PS" | "PT" | "HK" => TariffClass::Psychologist,
                _ => TariffClass::OtherLicensed,
            };
            (code.to_string(), class)
        })
        .collect();
    Tariffs { entries, professions }
}

/// Lines at the edges: empty strings, unicode, the largest and smallest
/// numbers, every optional absent and present, long arrays.
fn edge_invoice_lines() -> Vec<InvoiceLine> {
    let base = testing::invoice_line();
    vec![
        base.clone(),
        testing::invoice_line_without_optionals(),
        InvoiceLine {
            invoice_id: String::new(),
            invoice_type: String::new(),
            credited_invoice_id: Some(String::new()),
            provider_name: String::new(),
            remittance_number: Some(String::new()),
            contact_channel: Some(String::new()),
            diagnosis_codes: vec![String::new()],
            procedure_codes: vec![],
            ..base.clone()
        },
        InvoiceLine {
            provider_name: "Vårdcentralen Åre – läkare 👩‍⚕️ \u{202e}ǅ\u{0}".into(),
            patient_id: "19121212-1212\u{feff}".into(),
            diagnosis_codes: (0..300).map(|i| format!("Ü{i}")).collect(),
            ..base.clone()
        },
        InvoiceLine {
            line_number: i32::MAX,
            quantity: i32::MIN,
            patient_sex: Some(i32::MIN),
            payable_amount_ore: i64::MAX,
            unit_price_ore: i64::MIN,
            patient_fee_ore: -1,
            gross_amount_ore: 0,
            net_amount_ore: 63,
            invoice_date: NaiveDate::from_ymd_opt(-200_000, 1, 1).expect("a date"),
            visit_date: NaiveDate::from_ymd_opt(200_000, 12, 31).expect("a date"),
            visit_time: NaiveTime::from_hms_milli_opt(23, 59, 59, 999),
            needs_assessment: Some(false),
            ..base.clone()
        },
        InvoiceLine {
            line_number: 0,
            patient_sex: Some(64),
            invoice_date: NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date"),
            visit_time: NaiveTime::from_hms_opt(0, 0, 0),
            needs_assessment: Some(true),
            ..base
        },
    ]
}

fn edge_enriched_lines() -> Vec<EnrichedLine> {
    let base = testing::enriched_line();
    vec![
        base.clone(),
        EnrichedLine {
            invoice_id: "Å".repeat(1000),
            credited_invoice_id: Some(String::new()),
            age_years: Some(i32::MAX as u32),
            tariff_ore: Some(i64::MIN),
            visit_time: None,
            diagnosis_codes: vec![],
            procedure_codes: vec!["ZV051".into(); 70],
            contact_channel: None,
            needs_assessment: None,
            source: Provenance { topic: String::new(), partition: i32::MIN, offset: i64::MAX },
            ingested_at_ms: i64::MIN,
            ..base.clone()
        },
        EnrichedLine { age_years: None, tariff_ore: None, remittance_number: None, ..base },
    ]
}

fn findings() -> Vec<TimedFinding> {
    let active = TimedFinding { finding: testing::finding(&WRONG_PRICE, "ZVF1:1"), detected_at_ms: 1_760_000_000_000 };
    let mut withdrawn = TimedFinding { finding: testing::finding(&DOUBLE_INVOICING, "ZVF1:2"), ..active.clone() };
    withdrawn.finding.status = FindingStatus::Withdrawn(Withdrawal::Superseded);
    withdrawn.finding.patient_pseudonym = None;
    withdrawn.finding.line_keys = vec![];
    withdrawn.finding.evidence = "ö€😀".into();
    withdrawn.finding.amount_at_stake_ore = i64::MIN;
    withdrawn.detected_at_ms = i64::MAX;
    vec![active, withdrawn]
}

fn dead_letters() -> Vec<DeadLetter> {
    let base = DeadLetter {
        reason_code: "malformed_avro".into(),
        reason: "visit_date är fel; ✗".into(),
        violations: vec![
            DeadLetterViolation { code: "a".into(), field: String::new(), message: "x".into() },
            DeadLetterViolation { code: String::new(), field: "visit_date".into(), message: String::new() },
        ],
        stage: "ingester".into(),
        source_topic: "invoice-lines".into(),
        source_partition: 3,
        source_offset: i64::MAX,
        source_key: Some(vec![]),
        original: (0..=255u8).collect(),
        failed_at_ms: -5,
    };
    vec![
        base.clone(),
        DeadLetter { violations: vec![], source_key: None, original: vec![], ..base.clone() },
        DeadLetter { original: vec![0; 70_000], source_key: Some(vec![255; 3]), ..base },
    ]
}

/// Each of `$values` encodes to the same bytes with the codec and the
/// reference (`$encode`), and both decode those bytes (`$decode`) to it.
macro_rules! assert_same_bytes_and_values {
    ($values:expr, $encode:ident, $decode:ident) => {
        let (codec, reference) = codecs();
        for value in $values {
            let bytes = codec.$encode(&value).expect("encodes");
            assert_eq!(bytes, reference.$encode(&value).expect("reference encodes"), "{value:?}");
            assert_eq!(codec.$decode(&bytes).as_ref(), Ok(&value));
            assert_eq!(reference.$decode(&bytes).as_ref(), Ok(&value));
        }
    };
}

#[test]
fn invoice_and_enriched_lines_encode_to_the_same_bytes_and_decode_the_same() {
    let (invoice_lines, enriched_lines) = generated();
    let invoice_lines = invoice_lines.into_iter().chain(edge_invoice_lines());
    assert_same_bytes_and_values!(invoice_lines, encode_invoice_line, decode_invoice_line);
    let enriched_lines = enriched_lines.into_iter().chain(edge_enriched_lines());
    assert_same_bytes_and_values!(enriched_lines, encode_enriched_line, decode_enriched_line);
}

#[test]
fn findings_and_dead_letters_encode_to_the_same_bytes_and_decode_the_same() {
    assert_same_bytes_and_values!(findings(), encode_finding, decode_finding);
    assert_same_bytes_and_values!(dead_letters(), encode_dead_letter, decode_dead_letter);
}

/// What Avro cannot express is refused by both, naming the field, with the
/// same reason code.
#[test]
fn values_distans_cannot_take_are_refused_by_both_naming_the_field() {
    let (codec, reference) = codecs();
    let line = testing::enriched_line();
    let good = codec.encode_enriched_line(&line).expect("encodes");
    // The enriched line's `sex` is "female", "male" or "unknown"; swap the
    // text for another of the same length.
    let sex = line.sex.as_str().as_bytes();
    let at = good.windows(sex.len()).position(|w| w == sex).expect("the sex is in the datum");
    let mut unknown_sex = good.clone();
    unknown_sex[at..at + sex.len()].copy_from_slice(&b"xyzxyzxyz"[..sex.len()]);
    let codec_error = codec.decode_enriched_line(&unknown_sex).expect_err("unknown sex");
    let reference_error = reference.decode_enriched_line(&unknown_sex).expect_err("unknown sex");
    assert_eq!(codec_error, reference_error);
    assert!(codec_error.message.starts_with("field sex: unknown value"), "{codec_error}");

    // A visit time of -1 ms: the record as the reference writes it, then
    // read by both.
    let invoice = testing::invoice_line();
    let bytes = codec.encode_invoice_line(&invoice).expect("encodes");
    let schemas = distans_wire::EmbeddedSchemas::load().expect("schemas");
    let schema = &distans_wire::SchemaResolver::latest(&schemas, distans_wire::Subject::InvoiceLine).schema;
    let value = apache_avro::from_avro_datum(schema, &mut &bytes[5..], None).expect("decodes");
    let apache_avro::types::Value::Record(mut fields) = value else { panic!("a record") };
    for (name, value) in &mut fields {
        if name == "visit_time" {
            *value = apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::TimeMillis(-1)));
        }
    }
    let datum = apache_avro::to_avro_datum(schema, apache_avro::types::Value::Record(fields)).expect("encodes");
    let negative_time = frame(1, &datum);
    let codec_error = codec.decode_invoice_line(&negative_time).expect_err("negative time");
    assert_eq!(codec_error, reference.decode_invoice_line(&negative_time).expect_err("negative time"));
    assert_eq!(codec_error.message, "field visit_time: negative time of day");
}

/// A malformed datum's error names the field where decoding stopped, and
/// is a `malformed_avro` for both.
#[test]
fn a_malformed_datum_names_the_field_it_stopped_at() {
    let (codec, reference) = codecs();
    let good = codec.encode_invoice_line(&testing::invoice_line()).expect("encodes");
    // The first field is invoice_id: a string whose length runs past the end.
    let mut bytes = good[..5].to_vec();
    bytes.extend_from_slice(&[0x7e, b'Z']);
    let error = codec.decode_invoice_line(&bytes).expect_err("truncated");
    assert_eq!(error.code, distans_domain::ReasonCode::MalformedAvro);
    assert!(error.message.starts_with("field invoice_id: "), "{error}");
    assert_eq!(reference.decode_invoice_line(&bytes).expect_err("truncated").code, error.code);
}

/// A record cut before its trailing optional fields. apache-avro 0.21 reads
/// a union at the end of the input as null (`decode.rs`: `UnexpectedEof` on
/// the index gives `Union(0, Null)`) and accepts it; the codec refuses it as
/// truncated, as the Avro specification has it. The first input is the one
/// the fuzz target `wire_decode` found (the empty line, an array of one
/// empty string in a block of negative count, `contact_channel` null, no
/// `needs_assessment`).
#[test]
fn a_record_cut_before_its_last_union_is_refused_where_apache_avro_reads_null() {
    let (codec, reference) = codecs();
    let mut found_by_fuzzing = vec![0, 0, 0, 0, 1];
    found_by_fuzzing.extend_from_slice(&[0; 30]);
    found_by_fuzzing.extend_from_slice(&[1, 0, 0, 0, 0]);
    let line = testing::invoice_line_without_optionals();
    let whole = codec.encode_invoice_line(&line).expect("encodes");
    let cut = whole[..whole.len() - 1].to_vec();
    assert_eq!(reference.decode_invoice_line(&cut).as_ref(), Ok(&line), "apache-avro reads the missing union as null");
    for bytes in [found_by_fuzzing, cut] {
        assert!(reference.decode_invoice_line(&bytes).is_ok());
        let error = codec.decode_invoice_line(&bytes).expect_err("truncated");
        assert_eq!(error.code, distans_domain::ReasonCode::MalformedAvro);
        assert!(error.message.starts_with("field needs_assessment: "), "{error}");
    }
}
