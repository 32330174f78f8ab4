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

    /// The value, with a union unwrapped; `None` for null.
    fn take_optional(&mut self, name: &str) -> Result<Option<Value>, FieldError> {
        Ok(match self.take(name)? {
            Value::Union(_, inner) => match *inner {
                Value::Null => None,
                other => Some(other),
            },
            Value::Null => None,
            other => Some(other),
        })
    }

    fn string(&mut self, name: &str) -> Result<String, FieldError> {
        expect_string(name, self.take(name)?)
    }

    fn optional_string(&mut self, name: &str) -> Result<Option<String>, FieldError> {
        self.take_optional(name)?.map(|v| expect_string(name, v)).transpose()
    }

    fn int(&mut self, name: &str) -> Result<i32, FieldError> {
        expect_int(name, self.take(name)?)
    }

    fn optional_int(&mut self, name: &str) -> Result<Option<i32>, FieldError> {
        self.take_optional(name)?.map(|v| expect_int(name, v)).transpose()
    }

    fn long(&mut self, name: &str) -> Result<i64, FieldError> {
        expect_long(name, self.take(name)?)
    }

    fn optional_long(&mut self, name: &str) -> Result<Option<i64>, FieldError> {
        self.take_optional(name)?.map(|v| expect_long(name, v)).transpose()
    }

    fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, FieldError> {
        match self.take_optional(name)? {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(field_error(name, format!("expected a boolean, got {other:?}"))),
        }
    }

    fn bytes(&mut self, name: &str) -> Result<Vec<u8>, FieldError> {
        expect_bytes(name, self.take(name)?)
    }

    fn optional_bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>, FieldError> {
        self.take_optional(name)?.map(|v| expect_bytes(name, v)).transpose()
    }

    fn date(&mut self, name: &str) -> Result<NaiveDate, FieldError> {
        match self.take(name)? {
            Value::Date(days) | Value::Int(days) => {
                date_from_days(days).ok_or_else(|| field_error(name, "date out of range"))
            }
            other => Err(field_error(name, format!("expected a date, got {other:?}"))),
        }
    }

    fn optional_time(&mut self, name: &str) -> Result<Option<NaiveTime>, FieldError> {
        match self.take_optional(name)? {
            None => Ok(None),
            Some(Value::TimeMillis(ms) | Value::Int(ms)) => {
                let ms = u32::try_from(ms).map_err(|_| field_error(name, "negative time of day"))?;
                let time = NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
                    .ok_or_else(|| field_error(name, "time of day out of range"))?;
                Ok(Some(time))
            }
            Some(other) => Err(field_error(name, format!("expected a time-millis, got {other:?}"))),
        }
    }

    fn timestamp_ms(&mut self, name: &str) -> Result<i64, FieldError> {
        match self.take(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(ms),
            other => Err(field_error(name, format!("expected a timestamp-millis, got {other:?}"))),
        }
    }

    fn string_array(&mut self, name: &str) -> Result<Vec<String>, FieldError> {
        match self.take(name)? {
            Value::Array(items) => items.into_iter().map(|v| expect_string(name, v)).collect(),
            other => Err(field_error(name, format!("expected an array, got {other:?}"))),
        }
    }

    fn parsed<T>(&mut self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, FieldError> {
        let raw = self.string(name)?;
        parse(&raw).ok_or_else(|| field_error(name, format!("unknown value {raw:?}")))
    }
}

fn expect_string(name: &str, value: Value) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(field_error(name, format!("expected a string, got {other:?}"))),
    }
}

fn expect_int(name: &str, value: Value) -> Result<i32, FieldError> {
    match value {
        Value::Int(i) => Ok(i),
        other => Err(field_error(name, format!("expected an int, got {other:?}"))),
    }
}

fn expect_long(name: &str, value: Value) -> Result<i64, FieldError> {
    match value {
        Value::Long(i) => Ok(i),
        Value::Int(i) => Ok(i64::from(i)),
        other => Err(field_error(name, format!("expected a long, got {other:?}"))),
    }
}

fn expect_bytes(name: &str, value: Value) -> Result<Vec<u8>, FieldError> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(field_error(name, format!("expected bytes, got {other:?}"))),
    }
}

const UNIX_EPOCH_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

fn date_from_days(days: i32) -> Option<NaiveDate> {
    UNIX_EPOCH_DAY.checked_add_signed(chrono::Duration::days(i64::from(days)))
}

fn days(date: NaiveDate) -> Value {
    let days = (date - UNIX_EPOCH_DAY).num_days();
    Value::Date(i32::try_from(days).unwrap_or(i32::MAX))
}

fn time_millis(time: NaiveTime) -> Value {
    let ms = time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000;
    Value::TimeMillis(i32::try_from(ms).unwrap_or(i32::MAX))
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn optional(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| string(s)).collect())
}

fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub(crate) fn invoice_line_to_value(line: &InvoiceLine) -> Value {
    record(vec![
        ("invoice_id", string(&line.invoice_id)),
        ("invoice_type", string(&line.invoice_type)),
        ("line_number", Value::Int(line.line_number)),
        ("credited_invoice_id", optional(line.credited_invoice_id.as_deref().map(string))),
        ("seller_org_number", string(&line.seller_org_number)),
        ("buyer_org_number", string(&line.buyer_org_number)),
        ("invoice_date", days(line.invoice_date)),
        ("payable_amount_ore", Value::Long(line.payable_amount_ore)),
        ("patient_id", string(&line.patient_id)),
        ("patient_county_code", string(&line.patient_county_code)),
        ("patient_municipality_code", string(&line.patient_municipality_code)),
        ("patient_sex", optional(line.patient_sex.map(Value::Int))),
        ("remittance_number", optional(line.remittance_number.as_deref().map(string))),
        ("agreement_chapter", string(&line.agreement_chapter)),
        ("agreement_point", string(&line.agreement_point)),
        ("care_type", string(&line.care_type)),
        ("visit_type", string(&line.visit_type)),
        ("visit_date", days(line.visit_date)),
        ("visit_time", optional(line.visit_time.map(time_millis))),
        ("performing_unit_hsa_id", string(&line.performing_unit_hsa_id)),
        ("provider_org_number", string(&line.provider_org_number)),
        ("provider_name", string(&line.provider_name)),
        ("profession_code", string(&line.profession_code)),
        ("product_category", string(&line.product_category)),
        ("quantity", Value::Int(line.quantity)),
        ("unit_price_ore", Value::Long(line.unit_price_ore)),
        ("patient_fee_ore", Value::Long(line.patient_fee_ore)),
        ("gross_amount_ore", Value::Long(line.gross_amount_ore)),
        ("net_amount_ore", Value::Long(line.net_amount_ore)),
        ("diagnosis_codes", strings(&line.diagnosis_codes)),
        ("procedure_codes", strings(&line.procedure_codes)),
        ("contact_channel", optional(line.contact_channel.as_deref().map(string))),
        ("needs_assessment", optional(line.needs_assessment.map(Value::Boolean))),
    ])
}

pub(crate) fn invoice_line_from_value(value: Value) -> Result<InvoiceLine, FieldError> {
    let mut f = Fields::of(value)?;
    Ok(InvoiceLine {
        invoice_id: f.string("invoice_id")?,
        invoice_type: f.string("invoice_type")?,
        line_number: f.int("line_number")?,
        credited_invoice_id: f.optional_string("credited_invoice_id")?,
        seller_org_number: f.string("seller_org_number")?,
        buyer_org_number: f.string("buyer_org_number")?,
        invoice_date: f.date("invoice_date")?,
        payable_amount_ore: f.long("payable_amount_ore")?,
        patient_id: f.string("patient_id")?,
        patient_county_code: f.string("patient_county_code")?,
        patient_municipality_code: f.string("patient_municipality_code")?,
        patient_sex: f.optional_int("patient_sex")?,
        remittance_number: f.optional_string("remittance_number")?,
        agreement_chapter: f.string("agreement_chapter")?,
        agreement_point: f.string("agreement_point")?,
        care_type: f.string("care_type")?,
        visit_type: f.string("visit_type")?,
        visit_date: f.date("visit_date")?,
        visit_time: f.optional_time("visit_time")?,
        performing_unit_hsa_id: f.string("performing_unit_hsa_id")?,
        provider_org_number: f.string("provider_org_number")?,
        provider_name: f.string("provider_name")?,
        profession_code: f.string("profession_code")?,
        product_category: f.string("product_category")?,
        quantity: f.int("quantity")?,
        unit_price_ore: f.long("unit_price_ore")?,
        patient_fee_ore: f.long("patient_fee_ore")?,
        gross_amount_ore: f.long("gross_amount_ore")?,
        net_amount_ore: f.long("net_amount_ore")?,
        diagnosis_codes: f.string_array("diagnosis_codes")?,
        procedure_codes: f.string_array("procedure_codes")?,
        contact_channel: f.optional_string("contact_channel")?,
        needs_assessment: f.optional_bool("needs_assessment")?,
    })
}

pub(crate) fn enriched_line_to_value(line: &EnrichedLine) -> Value {
    record(vec![
        ("invoice_id", string(&line.invoice_id)),
        ("line_number", Value::Int(line.line_number)),
        ("invoice_type", string(line.invoice_type.as_str())),
        ("credited_invoice_id", optional(line.credited_invoice_id.as_deref().map(string))),
        ("seller_org_number", string(&line.seller_org_number)),
        ("buyer_org_number", string(&line.buyer_org_number)),
        ("invoice_date", days(line.invoice_date)),
        ("patient_pseudonym", string(&line.patient_pseudonym)),
        ("patient_id_kind", string(line.patient_id_kind.as_str())),
        ("patient_county_code", string(&line.patient_county_code)),
        ("patient_municipality_code", string(&line.patient_municipality_code)),
        ("sex", string(line.sex.as_str())),
        ("age_years", optional(line.age_years.map(|a| Value::Int(i32::try_from(a).unwrap_or(i32::MAX))))),
        ("age_group", string(line.age_group.as_str())),
        ("initiative", string(line.initiative.as_str())),
        ("remittance_number", optional(line.remittance_number.as_deref().map(string))),
        ("agreement_chapter", string(&line.agreement_chapter)),
        ("agreement_point", string(&line.agreement_point)),
        ("care_type", string(&line.care_type)),
        ("visit_type", string(&line.visit_type)),
        ("visit_date", days(line.visit_date)),
        ("visit_time", optional(line.visit_time.map(time_millis))),
        ("performing_unit_hsa_id", string(&line.performing_unit_hsa_id)),
        ("provider_org_number", string(&line.provider_org_number)),
        ("provider_name", string(&line.provider_name)),
        ("profession_code", string(&line.profession_code)),
        ("tariff_class", string(line.tariff_class.as_str())),
        ("tariff_ore", optional(line.tariff_ore.map(Value::Long))),
        ("product_category", string(&line.product_category)),
        ("quantity", Value::Int(line.quantity)),
        ("unit_price_ore", Value::Long(line.unit_price_ore)),
        ("patient_fee_ore", Value::Long(line.patient_fee_ore)),
        ("gross_amount_ore", Value::Long(line.gross_amount_ore)),
        ("net_amount_ore", Value::Long(line.net_amount_ore)),
        ("diagnosis_codes", strings(&line.diagnosis_codes)),
        ("procedure_codes", strings(&line.procedure_codes)),
        ("contact_channel", optional(line.contact_channel.as_deref().map(string))),
        ("needs_assessment", optional(line.needs_assessment.map(Value::Boolean))),
        ("source_topic", string(&line.source.topic)),
        ("source_partition", Value::Int(line.source.partition)),
        ("source_offset", Value::Long(line.source.offset)),
        ("ingested_at", Value::TimestampMillis(line.ingested_at_ms)),
    ])
}

pub(crate) fn enriched_line_from_value(value: Value) -> Result<EnrichedLine, FieldError> {
    let mut f = Fields::of(value)?;
    Ok(EnrichedLine {
        invoice_id: f.string("invoice_id")?,
        line_number: f.int("line_number")?,
        invoice_type: f.parsed("invoice_type", InvoiceType::parse)?,
        credited_invoice_id: f.optional_string("credited_invoice_id")?,
        seller_org_number: f.string("seller_org_number")?,
        buyer_org_number: f.string("buyer_org_number")?,
        invoice_date: f.date("invoice_date")?,
        patient_pseudonym: f.string("patient_pseudonym")?,
        patient_id_kind: f.parsed("patient_id_kind", PatientIdKind::parse)?,
        patient_county_code: f.string("patient_county_code")?,
        patient_municipality_code: f.string("patient_municipality_code")?,
        sex: f.parsed("sex", Sex::parse)?,
        age_years: f
            .optional_int("age_years")?
            .map(|a| u32::try_from(a).map_err(|_| field_error("age_years", "negative age")))
            .transpose()?,
        age_group: f.parsed("age_group", AgeGroup::parse)?,
        initiative: f.parsed("initiative", Initiative::parse)?,
        remittance_number: f.optional_string("remittance_number")?,
        agreement_chapter: f.string("agreement_chapter")?,
        agreement_point: f.string("agreement_point")?,
        care_type: f.string("care_type")?,
        visit_type: f.string("visit_type")?,
        visit_date: f.date("visit_date")?,
        visit_time: f.optional_time("visit_time")?,
        performing_unit_hsa_id: f.string("performing_unit_hsa_id")?,
        provider_org_number: f.string("provider_org_number")?,
        provider_name: f.string("provider_name")?,
        profession_code: f.string("profession_code")?,
        tariff_class: f.parsed("tariff_class", TariffClass::parse)?,
        tariff_ore: f.optional_long("tariff_ore")?,
        product_category: f.string("product_category")?,
        quantity: f.int("quantity")?,
        unit_price_ore: f.long("unit_price_ore")?,
        patient_fee_ore: f.long("patient_fee_ore")?,
        gross_amount_ore: f.long("gross_amount_ore")?,
        net_amount_ore: f.long("net_amount_ore")?,
        diagnosis_codes: f.string_array("diagnosis_codes")?,
        procedure_codes: f.string_array("procedure_codes")?,
        contact_channel: f.optional_string("contact_channel")?,
        needs_assessment: f.optional_bool("needs_assessment")?,
        source: Provenance {
            topic: f.string("source_topic")?,
            partition: f.int("source_partition")?,
            offset: f.long("source_offset")?,
        },
        ingested_at_ms: f.timestamp_ms("ingested_at")?,
    })
}

pub(crate) fn finding_to_value(timed: &TimedFinding) -> Value {
    let f = &timed.finding;
    record(vec![
        ("finding_id", string(&f.finding_id)),
        ("rule_id", string(&f.rule_id)),
        ("severity", string(f.severity.as_str())),
        ("line_keys", strings(&f.line_keys)),
        ("buyer_org_number", string(&f.buyer_org_number)),
        ("provider_org_number", string(&f.provider_org_number)),
        ("provider_name", string(&f.provider_name)),
        ("performing_unit_hsa_id", string(&f.performing_unit_hsa_id)),
        ("patient_pseudonym", optional(f.patient_pseudonym.as_deref().map(string))),
        ("visit_date", days(f.visit_date)),
        ("amount_at_stake_ore", Value::Long(f.amount_at_stake_ore)),
        ("evidence", string(&f.evidence)),
        ("detected_at", Value::TimestampMillis(timed.detected_at_ms)),
        ("status", string(f.status.as_str())),
        ("withdrawn_reason", optional(f.status.withdrawal().map(|w| string(w.as_str())))),
        (
            "evidence_data",
            optional(f.evidence_data.as_ref().map(|e| string(&serde_json::to_string(e).expect("evidence serialises")))),
        ),
    ])
}

pub(crate) fn finding_from_value(value: Value) -> Result<TimedFinding, FieldError> {
    let mut f = Fields::of(value)?;
    let finding = Finding {
        finding_id: f.string("finding_id")?,
        rule_id: f.string("rule_id")?,
        severity: f.parsed("severity", Severity::parse)?,
        line_keys: f.string_array("line_keys")?,
        buyer_org_number: f.string("buyer_org_number")?,
        provider_org_number: f.string("provider_org_number")?,
        provider_name: f.string("provider_name")?,
        performing_unit_hsa_id: f.string("performing_unit_hsa_id")?,
        patient_pseudonym: f.optional_string("patient_pseudonym")?,
        visit_date: f.date("visit_date")?,
        amount_at_stake_ore: f.long("amount_at_stake_ore")?,
        evidence: f.string("evidence")?,
        evidence_data: match f.optional_string("evidence_data")? {
            None => None,
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| field_error("evidence_data", format!("not the JSON of an evidence: {e}")))?,
            ),
        },
        status: {
            let status = f.string("status")?;
            let reason = f.optional_string("withdrawn_reason")?;
            FindingStatus::parse(&status, reason.as_deref()).ok_or_else(|| {
                field_error(
                    "status",
                    format!("{status:?} with reason {reason:?} is not active or withdrawn with a reason"),
                )
            })?
        },
    };
    Ok(TimedFinding { finding, detected_at_ms: f.timestamp_ms("detected_at")? })
}

pub(crate) fn dead_letter_to_value(dl: &DeadLetter) -> Value {
    let violations = dl
        .violations
        .iter()
        .map(|v| record(vec![("code", string(&v.code)), ("field", string(&v.field)), ("message", string(&v.message))]))
        .collect();
    record(vec![
        ("reason_code", string(&dl.reason_code)),
        ("reason", string(&dl.reason)),
        ("violations", Value::Array(violations)),
        ("stage", string(&dl.stage)),
        ("source_topic", string(&dl.source_topic)),
        ("source_partition", Value::Int(dl.source_partition)),
        ("source_offset", Value::Long(dl.source_offset)),
        ("source_key", optional(dl.source_key.clone().map(Value::Bytes))),
        ("original", Value::Bytes(dl.original.clone())),
        ("failed_at", Value::TimestampMillis(dl.failed_at_ms)),
    ])
}

pub(crate) fn dead_letter_from_value(value: Value) -> Result<DeadLetter, FieldError> {
    let mut f = Fields::of(value)?;
    let violations = match f.take("violations")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let mut v = Fields::of(item)?;
                Ok(DeadLetterViolation {
                    code: v.string("code")?,
                    field: v.string("field")?,
                    message: v.string("message")?,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?,
        other => return Err(field_error("violations", format!("expected an array, got {other:?}"))),
    };
    Ok(DeadLetter {
        reason_code: f.string("reason_code")?,
        reason: f.string("reason")?,
        violations,
        stage: f.string("stage")?,
        source_topic: f.string("source_topic")?,
        source_partition: f.int("source_partition")?,
        source_offset: f.long("source_offset")?,
        source_key: f.optional_bytes("source_key")?,
        original: f.bytes("original")?,
        failed_at_ms: f.timestamp_ms("failed_at")?,
    })
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

    pub fn encode_invoice_line(&self, line: &InvoiceLine) -> Result<Vec<u8>, apache_avro::Error> {
        self.encode(Subject::InvoiceLine, invoice_line_to_value(line))
    }

    pub fn decode_invoice_line(&self, bytes: &[u8]) -> Result<InvoiceLine, DecodeError> {
        Ok(invoice_line_from_value(self.decode(Subject::InvoiceLine, bytes)?)?)
    }

    pub fn encode_enriched_line(&self, line: &EnrichedLine) -> Result<Vec<u8>, apache_avro::Error> {
        self.encode(Subject::EnrichedLine, enriched_line_to_value(line))
    }

    pub fn decode_enriched_line(&self, bytes: &[u8]) -> Result<EnrichedLine, DecodeError> {
        Ok(enriched_line_from_value(self.decode(Subject::EnrichedLine, bytes)?)?)
    }

    pub fn encode_dead_letter(&self, dead_letter: &DeadLetter) -> Result<Vec<u8>, apache_avro::Error> {
        self.encode(Subject::DeadLetter, dead_letter_to_value(dead_letter))
    }

    pub fn decode_dead_letter(&self, bytes: &[u8]) -> Result<DeadLetter, DecodeError> {
        Ok(dead_letter_from_value(self.decode(Subject::DeadLetter, bytes)?)?)
    }

    pub fn encode_finding(&self, finding: &TimedFinding) -> Result<Vec<u8>, apache_avro::Error> {
        self.encode(Subject::Finding, finding_to_value(finding))
    }

    pub fn decode_finding(&self, bytes: &[u8]) -> Result<TimedFinding, DecodeError> {
        Ok(finding_from_value(self.decode(Subject::Finding, bytes)?)?)
    }

    fn encode(&self, subject: Subject, value: Value) -> Result<Vec<u8>, apache_avro::Error> {
        let latest = self.codec.resolver.latest(subject);
        let datum = apache_avro::to_avro_datum(&latest.schema, value.resolve(&latest.schema)?)?;
        Ok(frame(self.codec.id_for(subject), &datum))
    }

    fn decode(&self, subject: Subject, bytes: &[u8]) -> Result<Value, DecodeError> {
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
        Ok(value)
    }
}
