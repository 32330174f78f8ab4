//! Schema evolution through a schema registry's ids: invoice_line v1 → v2
//! (`tests/registry/invoice_line.v2.avsc`: one optional field with a
//! default), both ways, and a writer schema distans cannot read.
//!
//! The input subject's rule is FULL_TRANSITIVE: every version can read, and
//! be read by, every earlier one. That holds for adding or removing an
//! optional field with a default, which these tests exercise.

use std::sync::Arc;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use apache_avro::Schema;
use distans_domain::{testing, ReasonCode};
use distans_wire::{frame, Codec, EmbeddedSchemas, RegistrySchemas, Subject};

const V1: &str = include_str!("../../../schemas/invoice_line.v1.avsc");
const V2: &str = include_str!("../../../tests/registry/invoice_line.v2.avsc");

fn v1_record_of(line: &distans_domain::InvoiceLine) -> Vec<(String, Value)> {
    let bytes = Codec::embedded().encode_invoice_line(line).expect("encodes");
    let v1 = Schema::parse_str(V1).expect("v1 parses");
    match apache_avro::from_avro_datum(&v1, &mut &bytes[5..], None).expect("decodes") {
        Value::Record(fields) => fields,
        other => panic!("a record, not {other:?}"),
    }
}

#[test]
fn v1_and_v2_are_fully_compatible() {
    let (v1, v2) = (Schema::parse_str(V1).expect("v1"), Schema::parse_str(V2).expect("v2"));
    SchemaCompatibility::mutual_read(&v1, &v2).expect("each reads the other");
}

#[test]
fn a_v2_writer_is_read_by_distans_v1_reader() {
    let line = testing::invoice_line();
    let mut fields = v1_record_of(&line);
    fields.push(("external_reference".into(), Value::Union(1, Box::new(Value::String("ref-9".into())))));
    let v2 = Schema::parse_str(V2).expect("v2 parses");
    let datum = apache_avro::to_avro_datum(&v2, Value::Record(fields)).expect("v2 encodes");

    let registry = Arc::new(RegistrySchemas::new(Subject::InvoiceLine, 100).expect("schemas parse"));
    registry.insert(58, V2);
    let codec = Codec::embedded().with_registry(registry);
    // The registry's id 58 is what the producer framed the record with.
    assert_eq!(codec.decode_invoice_line(&frame(58, &datum)).expect("resolves to v1"), line);
}

#[test]
fn a_v1_writer_is_read_by_a_v2_reader_with_the_default() {
    let line = testing::invoice_line();
    let bytes = Codec::embedded().encode_invoice_line(&line).expect("encodes");
    let (v1, v2) = (Schema::parse_str(V1).expect("v1"), Schema::parse_str(V2).expect("v2"));
    let read = apache_avro::from_avro_datum(&v1, &mut &bytes[5..], Some(&v2)).expect("v1 resolves to v2");
    let Value::Record(fields) = read else { panic!("a record") };
    let (last, rest) = fields.split_last().expect("fields");
    assert_eq!(last, &("external_reference".to_string(), Value::Union(0, Box::new(Value::Null))));
    assert_eq!(rest, v1_record_of(&line).as_slice());
}

#[test]
fn an_incompatible_writer_is_an_incompatible_schema_dead_letter() {
    let mut without_quantity: serde_json::Value = serde_json::from_str(V1).expect("json");
    without_quantity["fields"].as_array_mut().expect("fields").retain(|f| f["name"] != "quantity");
    let mut quantity_as_string: serde_json::Value = serde_json::from_str(V1).expect("json");
    for field in quantity_as_string["fields"].as_array_mut().expect("fields") {
        if field["name"] == "quantity" {
            field["type"] = "string".into();
        }
    }
    let registry = Arc::new(RegistrySchemas::new(Subject::InvoiceLine, 100).expect("schemas parse"));
    registry.insert(60, &without_quantity.to_string());
    registry.insert(61, &quantity_as_string.to_string());
    let codec = Codec::embedded().with_registry(registry);
    for id in [60, 61] {
        let error = codec.decode_invoice_line(&frame(id, &[0; 8])).expect_err("not readable");
        assert_eq!(error.code, ReasonCode::IncompatibleSchema, "{id}: {error}");
        assert!(error.message.contains("quantity"), "{id}: the reason names the field: {error}");
    }
    // An id the registry does not know, and an embedded id that is not the
    // registry's, are unknown.
    for id in [62, 1] {
        let error = codec.decode_invoice_line(&frame(id, &[0; 8])).expect_err("unknown");
        assert_eq!(error.code, ReasonCode::UnknownSchemaId, "{id}: {error}");
    }
}

#[test]
fn the_registered_id_frames_what_distans_encodes_for_the_subject_only() {
    let registry = RegistrySchemas::new(Subject::InvoiceLine, 100).expect("schemas parse").with_registered_id(57);
    let codec = Codec::embedded().with_registry(Arc::new(registry));
    let bytes = codec.encode_invoice_line(&testing::invoice_line()).expect("encodes");
    assert_eq!(bytes[..5], [0, 0, 0, 0, 57]);
    assert_eq!(codec.decode_invoice_line(&bytes).expect("decodes"), testing::invoice_line());
    let embedded = EmbeddedSchemas::latest_text(Subject::InvoiceLine);
    assert_eq!(embedded, V1);
}
