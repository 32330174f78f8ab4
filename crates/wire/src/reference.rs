//! The apache-avro path through a generic `Value`: what [`crate::Codec`]
//! did before it read and wrote the records with `serde_avro_fast`.
//!
//! Kept as the reference the tests compare the codec with (the same bytes
//! out, the same records in, on every project schema) and that
//! `make bench-quick` measures as "before". No service uses it.

use std::collections::HashMap;

use apache_avro::types::Value;
use chrono::{NaiveDate, NaiveTime, Timelike};
use distans_domain::enrich::{AgeGroup, Initiative, Provenance, Sex};
use distans_domain::rules::{Finding, FindingStatus, Severity};
use distans_domain::{EnrichedLine, InvoiceLine, InvoiceType, PatientIdKind, ReasonCode, TariffClass};

use crate::records::{field_error, DeadLetter, DeadLetterViolation, FieldError, TimedFinding};
use crate::{frame, unframe, Codec, DecodeError, Subject};

/// The fields of a decoded record, taken out one by one.
struct Fields(HashMap<String, Value>);

impl Fields {
    fn of(value: Value) -> Result<Fields, FieldError> {
        match value {
            Value::Record(fields) => Ok(Fields(fields.into_iter().collect())),
            other => Err(field_error("", format!("expected a record, got {other:?}"))),
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, FieldError> {
        self.0.remove(name).ok_or_else(|| field_error(name, "missing"))
    }

    /// The field `name`, converted by its Rust type.
    fn get<T: AvroField>(&mut self, name: &str) -> Result<T, FieldError> {
        T::from_value(name, self.take(name)?)
    }

    fn timestamp_ms(&mut self, name: &str) -> Result<i64, FieldError> {
        match self.take(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(ms),
            other => Err(field_error(name, format!("expected a timestamp-millis, got {other:?}"))),
        }
    }
}

/// A Rust field type and its Avro value, both ways: the value written
/// (before it is resolved to the schema), and the Rust value read back from
/// the value of the reader's schema, the errors naming the field `name`.
trait AvroField: Sized {
    fn to_value(&self) -> Value;
    fn from_value(name: &str, value: Value) -> Result<Self, FieldError>;
}

/// Fields whose Rust value is what one variant of `Value` holds
/// (`$expected` in the error when the value is another).
macro_rules! variant_field {
    ($($rust:ty: $variant:ident, $expected:literal;)+) => {
        $(
            impl AvroField for $rust {
                fn to_value(&self) -> Value {
                    Value::$variant(self.clone())
                }

                fn from_value(name: &str, value: Value) -> Result<$rust, FieldError> {
                    match value {
                        Value::$variant(v) => Ok(v),
                        other => Err(field_error(name, format!(concat!("expected ", $expected, ", got {:?}"), other))),
                    }
                }
            }
        )+
    };
}

variant_field! {
    String: String, "a string";
    i32: Int, "an int";
    bool: Boolean, "a boolean";
    Vec<u8>: Bytes, "bytes";
}

/// An age in years: an Avro `int`, never negative.
impl AvroField for u32 {
    fn to_value(&self) -> Value {
        Value::Int(i32::try_from(*self).unwrap_or(i32::MAX))
    }

    fn from_value(name: &str, value: Value) -> Result<u32, FieldError> {
        u32::try_from(i32::from_value(name, value)?).map_err(|_| field_error(name, "negative age"))
    }
}

impl AvroField for i64 {
    fn to_value(&self) -> Value {
        Value::Long(*self)
    }

    fn from_value(name: &str, value: Value) -> Result<i64, FieldError> {
        match value {
            Value::Long(i) => Ok(i),
            Value::Int(i) => Ok(i64::from(i)),
            other => Err(field_error(name, format!("expected a long, got {other:?}"))),
        }
    }
}

impl AvroField for Vec<String> {
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(|s| string(s)).collect())
    }

    fn from_value(name: &str, value: Value) -> Result<Vec<String>, FieldError> {
        match value {
            Value::Array(items) => items.into_iter().map(|v| String::from_value(name, v)).collect(),
            other => Err(field_error(name, format!("expected an array, got {other:?}"))),
        }
    }
}

/// Avro `date`: days since 1970-01-01.
impl AvroField for NaiveDate {
    fn to_value(&self) -> Value {
        let days = (*self - UNIX_EPOCH_DAY).num_days();
        Value::Date(i32::try_from(days).unwrap_or(i32::MAX))
    }

    fn from_value(name: &str, value: Value) -> Result<NaiveDate, FieldError> {
        match value {
            Value::Date(days) | Value::Int(days) => UNIX_EPOCH_DAY
                .checked_add_signed(chrono::Duration::days(i64::from(days)))
                .ok_or_else(|| field_error(name, "date out of range")),
            other => Err(field_error(name, format!("expected a date, got {other:?}"))),
        }
    }
}

/// Avro `time-millis`: milliseconds since midnight.
impl AvroField for NaiveTime {
    fn to_value(&self) -> Value {
        let ms = self.num_seconds_from_midnight() * 1000 + self.nanosecond() / 1_000_000;
        Value::TimeMillis(i32::try_from(ms).unwrap_or(i32::MAX))
    }

    fn from_value(name: &str, value: Value) -> Result<NaiveTime, FieldError> {
        match value {
            Value::TimeMillis(ms) | Value::Int(ms) => {
                let ms = u32::try_from(ms).map_err(|_| field_error(name, "negative time of day"))?;
                NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
                    .ok_or_else(|| field_error(name, "time of day out of range"))
            }
            other => Err(field_error(name, format!("expected a time-millis, got {other:?}"))),
        }
    }
}

/// A union with `null`: written as the value or `null` (resolution picks
/// the branch); read with the union unwrapped, `None` for null.
impl<T: AvroField> AvroField for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }

    fn from_value(name: &str, value: Value) -> Result<Option<T>, FieldError> {
        let value = match value {
            Value::Union(_, inner) => *inner,
            other => other,
        };
        match value {
            Value::Null => Ok(None),
            other => T::from_value(name, other).map(Some),
        }
    }
}

/// Enumerations written as their text (`as_str`), read back with `parse`.
macro_rules! text_field {
    ($($enumeration:ty),+) => {
        $(
            impl AvroField for $enumeration {
                fn to_value(&self) -> Value {
                    string(self.as_str())
                }

                fn from_value(name: &str, value: Value) -> Result<$enumeration, FieldError> {
                    let raw = String::from_value(name, value)?;
                    <$enumeration>::parse(&raw).ok_or_else(|| field_error(name, format!("unknown value {raw:?}")))
                }
            }
        )+
    };
}

text_field!(InvoiceType, PatientIdKind, Sex, AgeGroup, Initiative, TariffClass, Severity);

const UNIX_EPOCH_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A record converted field by field to and from apache-avro's `Value`.
trait AvroRecord: Sized {
    /// The (name, value) pair of each field, in no particular order:
    /// resolution to the schema puts them in its order.
    fn to_fields(&self) -> Vec<(&'static str, Value)>;
    fn from_fields(fields: &mut Fields) -> Result<Self, FieldError>;

    fn to_value(&self) -> Value {
        record(self.to_fields())
    }

    fn from_value(value: Value) -> Result<Self, FieldError> {
        Self::from_fields(&mut Fields::of(value)?)
    }
}

/// [`AvroRecord`] for `$record`: the fields in braces have the Avro field's
/// name and convert by their type ([`AvroField`]); each of the others is
/// written by hand, `to` giving its (name, value) pairs from `$value` (the
/// record) and `from` its Rust value read from `$fields` (after the
/// others).
macro_rules! avro_record {
    (
        $record:ty { $($field:ident),+ $(,)? }
        to($value:ident) [$($to:expr),* $(,)?]
        from($fields:ident) { $($other:ident: $from:expr),* $(,)? }
    ) => {
        impl AvroRecord for $record {
            fn to_fields(&self) -> Vec<(&'static str, Value)> {
                let $value = self;
                vec![$((stringify!($field), $value.$field.to_value()),)+ $($to,)*]
            }

            fn from_fields($fields: &mut Fields) -> Result<$record, FieldError> {
                Ok(Self { $($field: $fields.get(stringify!($field))?,)+ $($other: $from,)* })
            }
        }
    };
}

// invoice_line (schemas/invoice_line.v1.avsc).
avro_record! {
    InvoiceLine {
        invoice_id, invoice_type, line_number, credited_invoice_id, seller_org_number, buyer_org_number, invoice_date,
        payable_amount_ore, patient_id, patient_county_code, patient_municipality_code, patient_sex,
        remittance_number, agreement_chapter, agreement_point, care_type, visit_type, visit_date, visit_time,
        performing_unit_hsa_id, provider_org_number, provider_name, profession_code, product_category, quantity,
        unit_price_ore, patient_fee_ore, gross_amount_ore, net_amount_ore, diagnosis_codes, procedure_codes,
        contact_channel, needs_assessment,
    }
    to(line) []
    from(f) {}
}

// enriched_line (schemas/enriched_line.v*.avsc): the source flattened, the
// ingestion time a timestamp-millis.
avro_record! {
    EnrichedLine {
        invoice_id, line_number, invoice_type, credited_invoice_id, seller_org_number, buyer_org_number,
        invoice_date, patient_pseudonym, patient_id_kind, patient_county_code, patient_municipality_code, sex,
        age_years, age_group, initiative, remittance_number, agreement_chapter, agreement_point, care_type,
        visit_type, visit_date, visit_time, performing_unit_hsa_id, provider_org_number, provider_name,
        profession_code, tariff_class, tariff_ore, product_category, quantity, unit_price_ore, patient_fee_ore,
        gross_amount_ore, net_amount_ore, diagnosis_codes, procedure_codes, contact_channel, needs_assessment,
    }
    to(line) [
        ("source_topic", line.source.topic.to_value()),
        ("source_partition", line.source.partition.to_value()),
        ("source_offset", line.source.offset.to_value()),
        ("ingested_at", Value::TimestampMillis(line.ingested_at_ms)),
    ]
    from(f) {
        source: Provenance {
            topic: f.get("source_topic")?,
            partition: f.get("source_partition")?,
            offset: f.get("source_offset")?,
        },
        ingested_at_ms: f.timestamp_ms("ingested_at")?,
    }
}

// finding (schemas/finding.v*.avsc), but for its detection time (a
// `TimedFinding`'s): the status as a status and a withdrawal reason, the
// evidence's data as JSON text.
avro_record! {
    Finding {
        finding_id, rule_id, severity, line_keys, buyer_org_number, provider_org_number, provider_name,
        performing_unit_hsa_id, patient_pseudonym, visit_date, amount_at_stake_ore, evidence,
    }
    to(finding) [
        ("status", string(finding.status.as_str())),
        ("withdrawn_reason", finding.status.withdrawal().map_or(Value::Null, |w| string(w.as_str()))),
        (
            "evidence_data",
            finding.evidence_data.as_ref().map_or(Value::Null, |e| {
                string(&serde_json::to_string(e).expect("evidence serialises"))
            }),
        ),
    ]
    from(f) {
        evidence_data: match f.get::<Option<String>>("evidence_data")? {
            None => None,
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| field_error("evidence_data", format!("not the JSON of an evidence: {e}")))?,
            ),
        },
        status: {
            let status: String = f.get("status")?;
            let reason: Option<String> = f.get("withdrawn_reason")?;
            FindingStatus::parse(&status, reason.as_deref()).ok_or_else(|| {
                field_error(
                    "status",
                    format!("{status:?} with reason {reason:?} is not active or withdrawn with a reason"),
                )
            })?
        },
    }
}

impl AvroRecord for TimedFinding {
    fn to_fields(&self) -> Vec<(&'static str, Value)> {
        let mut fields = self.finding.to_fields();
        fields.push(("detected_at", Value::TimestampMillis(self.detected_at_ms)));
        fields
    }

    fn from_fields(fields: &mut Fields) -> Result<TimedFinding, FieldError> {
        let finding = Finding::from_fields(fields)?;
        Ok(TimedFinding { finding, detected_at_ms: fields.timestamp_ms("detected_at")? })
    }
}

avro_record! {
    DeadLetterViolation { code, field, message }
    to(violation) []
    from(f) {}
}

// dead_letter (schemas/dead_letter.v*.avsc): the violations an array of
// records, the failure time a timestamp-millis.
avro_record! {
    DeadLetter {
        reason_code, reason, stage, source_topic, source_partition, source_offset, source_key, original,
    }
    to(letter) [
        ("violations", Value::Array(letter.violations.iter().map(AvroRecord::to_value).collect())),
        ("failed_at", Value::TimestampMillis(letter.failed_at_ms)),
    ]
    from(f) {
        violations: match f.take("violations")? {
            Value::Array(items) => items.into_iter().map(DeadLetterViolation::from_value).collect::<Result<_, _>>()?,
            other => return Err(field_error("violations", format!("expected an array, got {other:?}"))),
        },
        failed_at_ms: f.timestamp_ms("failed_at")?,
    }
}

/// `$encode` and `$decode` of [`ReferenceCodec`] for `$record`, the records
/// of `$subject`.
macro_rules! record_methods {
    ($($record:ty, $subject:ident: $encode:ident, $decode:ident;)+) => {
        $(
            pub fn $encode(&self, record: &$record) -> Result<Vec<u8>, apache_avro::Error> {
                self.encode(Subject::$subject, record)
            }

            pub fn $decode(&self, bytes: &[u8]) -> Result<$record, DecodeError> {
                self.decode(Subject::$subject, bytes)
            }
        )+
    };
}

/// The codec's decoding and encoding through apache-avro's generic `Value`
/// (the writer's schema resolved to the reader's per record, the record
/// converted field by field), over the same schemas and framing as the
/// [`Codec`] it is built from.
#[derive(Debug, Clone)]
pub struct ReferenceCodec {
    codec: Codec,
}

impl ReferenceCodec {
    pub fn new(codec: Codec) -> ReferenceCodec {
        ReferenceCodec { codec }
    }

    record_methods! {
        InvoiceLine, InvoiceLine: encode_invoice_line, decode_invoice_line;
        EnrichedLine, EnrichedLine: encode_enriched_line, decode_enriched_line;
        DeadLetter, DeadLetter: encode_dead_letter, decode_dead_letter;
        TimedFinding, Finding: encode_finding, decode_finding;
    }

    fn encode(&self, subject: Subject, record: &impl AvroRecord) -> Result<Vec<u8>, apache_avro::Error> {
        let value = record.to_value();
        let latest = self.codec.resolver.latest(subject);
        let datum = apache_avro::to_avro_datum(&latest.schema, value.resolve(&latest.schema)?)?;
        Ok(frame(self.codec.id_for(subject), &datum))
    }

    fn decode<R: AvroRecord>(&self, subject: Subject, bytes: &[u8]) -> Result<R, DecodeError> {
        let (id, mut datum) = unframe(bytes).map_err(|e| DecodeError::new(ReasonCode::BadWireHeader, e.to_string()))?;
        let writer = self.codec.writer(subject, id)?;
        let latest = self.codec.resolver.latest(subject);
        let reader = (!std::ptr::eq(&*writer, latest)).then_some(&latest.schema);
        let value = apache_avro::from_avro_datum(&writer.schema, &mut datum, reader)
            .map_err(|e| DecodeError::new(ReasonCode::MalformedAvro, e.to_string()))?;
        if !datum.is_empty() {
            return Err(DecodeError::new(
                ReasonCode::MalformedAvro,
                format!("{} bytes left over after the datum", datum.len()),
            ));
        }
        Ok(R::from_value(value)?)
    }
}
