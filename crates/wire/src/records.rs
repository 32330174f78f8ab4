//! The records distans exchanges, and their Avro shapes.
//!
//! Each record has a serde mirror whose fields are the schema's fields, in
//! the schema's order, with each field's Avro type spelled out: a borrowing
//! one that is serialised (`…Out`, no copy of the domain value) and an owned
//! one that is deserialised (`…In`, each string allocated once and moved
//! into the domain value). For the invoice and enriched lines both are one
//! generic struct (`…Record<S, L>`: strings and arrays borrowed or owned).
//! `serde_avro_fast` reads and writes them straight from and to the datum,
//! without a generic `Value`.
//!
//! Schema resolution is serde's: the writer's fields are read in the
//! writer's order and matched to these fields by name; a writer field the
//! reader does not know is skipped; a reader field the writer lacks takes
//! the reader schema's default (`Option` fields: `null`; `#[serde(default)]`
//! arrays: empty; a finding's `status`: `active`). Whether a writer schema
//! may be read at all is decided once per schema by Avro's rules
//! (`SchemaCompatibility::can_read`, in [`crate::RegistrySchemas::insert`]).
//!
//! What Avro cannot say (a date out of chrono's range, a negative age or
//! time of day, an enumeration's unknown text) is checked here by hand, and
//! the error names the field.

use chrono::{NaiveDate, NaiveTime, Timelike};
use distans_domain::enrich::{AgeGroup, Initiative, Provenance, Sex};
use distans_domain::rules::{Finding, FindingStatus, Severity};
use distans_domain::{EnrichedLine, InvoiceLine, InvoiceType, PatientIdKind, TariffClass};
use serde::{Deserialize, Serialize};

/// A record that could not be processed, as written to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason_code: String,
    pub reason: String,
    pub violations: Vec<DeadLetterViolation>,
    pub stage: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub source_key: Option<Vec<u8>>,
    pub original: Vec<u8>,
    pub failed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterViolation {
    pub code: String,
    pub field: String,
    pub message: String,
}

/// The header of a finding's record on the alerts topic that says it
/// revises a finding published before and still active (the same finding,
/// published again with new figures): value `1`. A record without it is a
/// finding that became active (new, or active again after a withdrawal), or
/// a withdrawal. So a reader can tell each finding once (the notifier
/// does not send a revision of a finding it told of already).
pub const REVISION_HEADER: &str = "distans-finding-revision";

/// A finding with the time it was detected, as on the alerts topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedFinding {
    pub finding: Finding,
    pub detected_at_ms: i64,
}

/// A field whose decoded value distans cannot take (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

pub(crate) fn field_error(field: &str, problem: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), problem: problem.into() }
}

const UNIX_EPOCH_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

/// Avro `date`: days since 1970-01-01.
pub(crate) fn days(date: NaiveDate) -> i32 {
    i32::try_from((date - UNIX_EPOCH_DAY).num_days()).unwrap_or(i32::MAX)
}

pub(crate) fn date(field: &str, days: i32) -> Result<NaiveDate, FieldError> {
    UNIX_EPOCH_DAY
        .checked_add_signed(chrono::Duration::days(i64::from(days)))
        .ok_or_else(|| field_error(field, "date out of range"))
}

/// Avro `time-millis`: milliseconds since midnight.
pub(crate) fn time_millis(time: NaiveTime) -> i32 {
    let ms = time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000;
    i32::try_from(ms).unwrap_or(i32::MAX)
}

pub(crate) fn time(field: &str, ms: i32) -> Result<NaiveTime, FieldError> {
    let ms = u32::try_from(ms).map_err(|_| field_error(field, "negative time of day"))?;
    NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
        .ok_or_else(|| field_error(field, "time of day out of range"))
}

fn parsed<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, FieldError> {
    parse(raw).ok_or_else(|| field_error(field, format!("unknown value {raw:?}")))
}

// The mirrors of `invoice_line` and `enriched_line` (`InvoiceLineRecord`,
// `InvoiceLineOut::of`, `InvoiceLineIn::into_line`, and the same for
// `EnrichedLine…`), generated from the schemas by `build.rs`: each field of
// the schema, in its order, with its Avro type. The enumerations of an
// enriched line are borrowed either way, and parsed when read.
include!(concat!(env!("OUT_DIR"), "/line_records.rs"));

/// `finding` v3 (schemas/finding.v3.avsc), as written.
#[derive(Serialize)]
pub(crate) struct FindingOut<'a> {
    finding_id: &'a str,
    rule_id: &'a str,
    severity: &'a str,
    line_keys: &'a [String],
    buyer_org_number: &'a str,
    provider_org_number: &'a str,
    provider_name: &'a str,
    performing_unit_hsa_id: &'a str,
    patient_pseudonym: Option<&'a str>,
    /// date
    visit_date: i32,
    amount_at_stake_ore: i64,
    evidence: &'a str,
    /// timestamp-millis
    detected_at: i64,
    status: &'a str,
    withdrawn_reason: Option<&'a str>,
    /// The evidence's figures as JSON (`distans_domain::rules::Evidence`).
    evidence_data: Option<String>,
}

impl<'a> FindingOut<'a> {
    pub(crate) fn of(timed: &'a TimedFinding) -> FindingOut<'a> {
        let f = &timed.finding;
        FindingOut {
            finding_id: &f.finding_id,
            rule_id: &f.rule_id,
            severity: f.severity.as_str(),
            line_keys: &f.line_keys,
            buyer_org_number: &f.buyer_org_number,
            provider_org_number: &f.provider_org_number,
            provider_name: &f.provider_name,
            performing_unit_hsa_id: &f.performing_unit_hsa_id,
            patient_pseudonym: f.patient_pseudonym.as_deref(),
            visit_date: days(f.visit_date),
            amount_at_stake_ore: f.amount_at_stake_ore,
            evidence: &f.evidence,
            detected_at: timed.detected_at_ms,
            status: f.status.as_str(),
            withdrawn_reason: f.status.withdrawal().map(|w| w.as_str()),
            evidence_data: f.evidence_data.as_ref().map(|e| serde_json::to_string(e).expect("evidence serialises")),
        }
    }
}

fn active() -> String {
    "active".to_string()
}

/// `finding`, as read (v1 has neither `status` nor `withdrawn_reason`:
/// their defaults make it an active finding).
#[derive(Deserialize)]
pub(crate) struct FindingIn<'a> {
    finding_id: String,
    rule_id: String,
    severity: &'a str,
    line_keys: Vec<String>,
    buyer_org_number: String,
    provider_org_number: String,
    provider_name: String,
    performing_unit_hsa_id: String,
    patient_pseudonym: Option<String>,
    visit_date: i32,
    amount_at_stake_ore: i64,
    evidence: String,
    detected_at: i64,
    #[serde(default = "active")]
    status: String,
    withdrawn_reason: Option<String>,
    /// Absent before v3.
    #[serde(default)]
    evidence_data: Option<String>,
}

impl FindingIn<'_> {
    pub(crate) fn into_finding(self) -> Result<TimedFinding, FieldError> {
        let status = FindingStatus::parse(&self.status, self.withdrawn_reason.as_deref()).ok_or_else(|| {
            field_error(
                "status",
                format!(
                    "{:?} with reason {:?} is not active or withdrawn with a reason",
                    self.status, self.withdrawn_reason
                ),
            )
        })?;
        let finding = Finding {
            finding_id: self.finding_id,
            rule_id: self.rule_id,
            severity: parsed("severity", self.severity, Severity::parse)?,
            line_keys: self.line_keys,
            buyer_org_number: self.buyer_org_number,
            provider_org_number: self.provider_org_number,
            provider_name: self.provider_name,
            performing_unit_hsa_id: self.performing_unit_hsa_id,
            patient_pseudonym: self.patient_pseudonym,
            visit_date: date("visit_date", self.visit_date)?,
            amount_at_stake_ore: self.amount_at_stake_ore,
            evidence: self.evidence,
            evidence_data: match self.evidence_data {
                None => None,
                Some(json) => Some(
                    serde_json::from_str(&json)
                        .map_err(|e| field_error("evidence_data", format!("not the JSON of an evidence: {e}")))?,
                ),
            },
            status,
        };
        Ok(TimedFinding { finding, detected_at_ms: self.detected_at })
    }
}

/// `dead_letter` (schemas/dead_letter.v1.avsc), as written.
#[derive(Serialize)]
pub(crate) struct DeadLetterOut<'a> {
    reason_code: &'a str,
    reason: &'a str,
    violations: &'a [DeadLetterViolation],
    stage: &'a str,
    source_topic: &'a str,
    source_partition: i32,
    source_offset: i64,
    source_key: Option<&'a serde_bytes::Bytes>,
    original: &'a serde_bytes::Bytes,
    /// timestamp-millis
    failed_at: i64,
}

impl<'a> DeadLetterOut<'a> {
    pub(crate) fn of(dl: &'a DeadLetter) -> DeadLetterOut<'a> {
        DeadLetterOut {
            reason_code: &dl.reason_code,
            reason: &dl.reason,
            violations: &dl.violations,
            stage: &dl.stage,
            source_topic: &dl.source_topic,
            source_partition: dl.source_partition,
            source_offset: dl.source_offset,
            source_key: dl.source_key.as_deref().map(serde_bytes::Bytes::new),
            original: serde_bytes::Bytes::new(&dl.original),
            failed_at: dl.failed_at_ms,
        }
    }
}

/// `dead_letter`, as read.
#[derive(Deserialize)]
pub(crate) struct DeadLetterIn {
    reason_code: String,
    reason: String,
    #[serde(default)]
    violations: Vec<DeadLetterViolation>,
    stage: String,
    source_topic: String,
    source_partition: i32,
    source_offset: i64,
    source_key: Option<serde_bytes::ByteBuf>,
    original: serde_bytes::ByteBuf,
    failed_at: i64,
}

impl DeadLetterIn {
    pub(crate) fn into_dead_letter(self) -> DeadLetter {
        DeadLetter {
            reason_code: self.reason_code,
            reason: self.reason,
            violations: self.violations,
            stage: self.stage,
            source_topic: self.source_topic,
            source_partition: self.source_partition,
            source_offset: self.source_offset,
            source_key: self.source_key.map(serde_bytes::ByteBuf::into_vec),
            original: self.original.into_vec(),
            failed_at_ms: self.failed_at,
        }
    }
}

impl DeadLetter {
    /// A dead letter for the record at `source`, carrying every violation.
    /// `violations` must not be empty: a record is rejected for a reason.
    pub fn new(
        stage: &str,
        violations: &[distans_domain::Violation],
        source: &Provenance,
        key: Option<&[u8]>,
        original: &[u8],
        failed_at_ms: i64,
    ) -> DeadLetter {
        let reason_code = violations.first().map_or("unknown", |v| v.code.as_str()).to_string();
        let reason = violations
            .iter()
            .map(|v| if v.field.is_empty() { v.message.clone() } else { format!("{} {}", v.field, v.message) })
            .collect::<Vec<_>>()
            .join("; ");
        DeadLetter {
            reason_code,
            reason,
            violations: violations
                .iter()
                .map(|v| DeadLetterViolation {
                    code: v.code.as_str().to_string(),
                    field: v.field.clone(),
                    message: v.message.clone(),
                })
                .collect(),
            stage: stage.to_string(),
            source_topic: source.topic.clone(),
            source_partition: source.partition,
            source_offset: source.offset,
            source_key: key.map(<[u8]>::to_vec),
            original: original.to_vec(),
            failed_at_ms,
        }
    }
}
