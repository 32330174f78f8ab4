//! The rows of `invoice_line_versions` and `anomalies` as ClickHouse stores them
//! (RowBinary: `Date` as days, `DateTime` as seconds).

use clickhouse_time::{days_since_epoch, seconds_since_epoch};
use distans_domain::rules::Finding;
use distans_domain::EnrichedLine;
use serde::Serialize;

/// One row of `invoice_line_versions` (one version of a line), borrowing
/// the line's strings; field order is the table's column order.
#[derive(Debug, Clone, PartialEq, Serialize, clickhouse::Row)]
pub struct LineRow<'a> {
    pub invoice_id: &'a str,
    pub line_number: u32,
    pub invoice_type: &'static str,
    pub credited_invoice_id: Option<&'a str>,
    pub seller_org_number: &'a str,
    pub buyer_org_number: &'a str,
    pub invoice_date: u16,
    pub patient_pseudonym: &'a str,
    pub patient_id_kind: &'static str,
    pub patient_county_code: &'a str,
    pub patient_municipality_code: &'a str,
    pub sex: &'static str,
    pub age_years: Option<u8>,
    pub age_group: &'static str,
    pub initiative: &'static str,
    pub remittance_number: Option<&'a str>,
    pub agreement_chapter: &'a str,
    pub agreement_point: &'a str,
    pub care_type: &'a str,
    pub visit_type: &'a str,
    pub visit_date: u16,
    pub visit_time_ms: Option<u32>,
    pub performing_unit_hsa_id: &'a str,
    pub provider_org_number: &'a str,
    pub provider_name: &'a str,
    pub profession_code: &'a str,
    pub tariff_class: &'static str,
    pub tariff_ore: Option<i64>,
    pub product_category: &'a str,
    pub quantity: u32,
    pub unit_price_ore: i64,
    pub patient_fee_ore: i64,
    pub gross_amount_ore: i64,
    pub net_amount_ore: i64,
    pub signed_net_amount_ore: i64,
    pub diagnosis_codes: &'a [String],
    pub procedure_codes: &'a [String],
    pub contact_channel: Option<&'a str>,
    pub needs_assessment: Option<u8>,
    pub source_topic: &'a str,
    pub source_partition: i32,
    pub source_offset: i64,
    pub ingested_at: u32,
    pub inserted_at: u32,
    /// Which version of the line identity this is: the offset of its input
    /// record (`source_offset`), larger for a later version (producers key
    /// records by line, so one line's versions share a partition). The
    /// table keeps the largest (migration 0008).
    pub version: u64,
    /// The version of the key that made `patient_pseudonym`
    /// (`pseudonym.key_version`; migration 0009). Pseudonyms of two
    /// versions never denote the same patient by equality: a report that
    /// counts patients across a rotation joins through a mapping.
    pub pseudonym_key_version: u16,
}

/// Why a line cannot be a row (a value outside the column's range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is out of range for its column")]
pub struct OutOfRange {
    pub field: &'static str,
}

impl<'a> LineRow<'a> {
    /// The row of `line`. Errors: a value outside its column's range.
    pub fn from_line(line: &'a EnrichedLine, inserted_at_s: u32) -> Result<LineRow<'a>, OutOfRange> {
        let range = |field| OutOfRange { field };
        Ok(LineRow {
            invoice_id: &line.invoice_id,
            line_number: u32::try_from(line.line_number).map_err(|_| range("line_number"))?,
            invoice_type: line.invoice_type.as_str(),
            credited_invoice_id: line.credited_invoice_id.as_deref(),
            seller_org_number: &line.seller_org_number,
            buyer_org_number: &line.buyer_org_number,
            invoice_date: days_since_epoch(line.invoice_date).ok_or(range("invoice_date"))?,
            patient_pseudonym: &line.patient_pseudonym,
            patient_id_kind: line.patient_id_kind.as_str(),
            patient_county_code: &line.patient_county_code,
            patient_municipality_code: &line.patient_municipality_code,
            sex: line.sex.as_str(),
            age_years: line.age_years.map(|a| u8::try_from(a).map_err(|_| range("age_years"))).transpose()?,
            age_group: line.age_group.as_str(),
            initiative: line.initiative.as_str(),
            remittance_number: line.remittance_number.as_deref(),
            agreement_chapter: &line.agreement_chapter,
            agreement_point: &line.agreement_point,
            care_type: &line.care_type,
            visit_type: &line.visit_type,
            visit_date: days_since_epoch(line.visit_date).ok_or(range("visit_date"))?,
            visit_time_ms: line.visit_time.map(seconds_and_millis),
            performing_unit_hsa_id: &line.performing_unit_hsa_id,
            provider_org_number: &line.provider_org_number,
            provider_name: &line.provider_name,
            profession_code: &line.profession_code,
            tariff_class: line.tariff_class.as_str(),
            tariff_ore: line.tariff_ore,
            product_category: &line.product_category,
            quantity: u32::try_from(line.quantity).map_err(|_| range("quantity"))?,
            unit_price_ore: line.unit_price_ore,
            patient_fee_ore: line.patient_fee_ore,
            gross_amount_ore: line.gross_amount_ore,
            net_amount_ore: line.net_amount_ore,
            signed_net_amount_ore: line.signed_net_amount_ore(),
            diagnosis_codes: &line.diagnosis_codes,
            procedure_codes: &line.procedure_codes,
            contact_channel: line.contact_channel.as_deref(),
            needs_assessment: line.needs_assessment.map(u8::from),
            source_topic: &line.source.topic,
            source_partition: line.source.partition,
            source_offset: line.source.offset,
            ingested_at: seconds_since_epoch(line.ingested_at_ms).ok_or(range("ingested_at"))?,
            inserted_at: inserted_at_s,
            version: u64::try_from(line.source.offset).map_err(|_| range("source_offset"))?,
            // The sink sets it from the record's header; 1 is every line
            // pseudonymised before keys had versions.
            pseudonym_key_version: 1,
        })
    }
}

fn seconds_and_millis(time: chrono::NaiveTime) -> u32 {
    use chrono::Timelike;
    time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000
}

pub mod clickhouse_time {
    //! ClickHouse's `Date` is days since 1970-01-01 as `UInt16` (up to
    //! 2149-06-06); `DateTime` is seconds as `UInt32`.
    use chrono::NaiveDate;

    pub fn days_since_epoch(date: NaiveDate) -> Option<u16> {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        u16::try_from((date - epoch).num_days()).ok()
    }

    pub fn seconds_since_epoch(ms: i64) -> Option<u32> {
        u32::try_from(ms.div_euclid(1000)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::clickhouse_time::*;

    #[test]
    fn date_and_time_ranges() {
        let date = |s: &str| s.parse().expect("date");
        assert_eq!(days_since_epoch(date("1970-01-01")), Some(0));
        assert_eq!(days_since_epoch(date("2025-03-02")), Some(20149));
        assert_eq!(days_since_epoch(date("1969-12-31")), None);
        assert_eq!(days_since_epoch(date("2149-06-06")), Some(u16::MAX));
        assert_eq!(days_since_epoch(date("2149-06-07")), None);
        assert_eq!(seconds_since_epoch(1_743_400_000_999), Some(1_743_400_000));
        assert_eq!(seconds_since_epoch(-1), None);
    }

    #[test]
    fn a_line_row_is_versioned_by_its_input_offset() {
        use super::{LineRow, OutOfRange};
        let mut line = distans_domain::testing::enriched_line();
        line.source.offset = 41;
        assert_eq!(LineRow::from_line(&line, 0).map(|row| row.version), Ok(41));
        line.source.offset = -1;
        assert_eq!(LineRow::from_line(&line, 0), Err(OutOfRange { field: "source_offset" }));
    }
}

/// One row of `anomalies`, borrowing the finding's strings; field order is
/// the table's column order.
#[derive(Debug, Clone, PartialEq, Serialize, clickhouse::Row)]
pub struct AnomalyRow<'a> {
    pub finding_id: &'a str,
    pub rule_id: &'a str,
    pub severity: &'static str,
    pub line_key: &'a str,
    pub related_line_keys: &'a [String],
    pub buyer_org_number: &'a str,
    pub provider_org_number: &'a str,
    pub provider_name: &'a str,
    pub performing_unit_hsa_id: &'a str,
    pub patient_pseudonym: Option<&'a str>,
    pub visit_date: u16,
    pub amount_at_stake_ore: i64,
    pub evidence: &'a str,
    pub detected_at: u32,
    pub inserted_at: u32,
    /// `active` or `withdrawn` (migration 0007).
    pub status: &'static str,
    /// `corrected`, `credited`, `superseded`, or empty when active.
    pub withdrawn_reason: &'static str,
}

impl<'a> AnomalyRow<'a> {
    /// The row of finding `f`, detected at `detected_at_ms` (Unix ms).
    /// Errors: no line key, or a time outside its column's range.
    pub fn from_finding(f: &'a Finding, detected_at_ms: i64, inserted_at_s: u32) -> Result<AnomalyRow<'a>, OutOfRange> {
        let range = |field| OutOfRange { field };
        let (line_key, related) = f.line_keys.split_first().ok_or(range("line_keys"))?;
        Ok(AnomalyRow {
            finding_id: &f.finding_id,
            rule_id: &f.rule_id,
            severity: f.severity.as_str(),
            line_key,
            related_line_keys: related,
            buyer_org_number: &f.buyer_org_number,
            provider_org_number: &f.provider_org_number,
            provider_name: &f.provider_name,
            performing_unit_hsa_id: &f.performing_unit_hsa_id,
            patient_pseudonym: f.patient_pseudonym.as_deref(),
            visit_date: clickhouse_time::days_since_epoch(f.visit_date).ok_or(range("visit_date"))?,
            amount_at_stake_ore: f.amount_at_stake_ore,
            evidence: &f.evidence,
            detected_at: clickhouse_time::seconds_since_epoch(detected_at_ms).ok_or(range("detected_at"))?,
            inserted_at: inserted_at_s,
            status: f.status.as_str(),
            withdrawn_reason: f.status.withdrawal().map_or("", |w| w.as_str()),
        })
    }
}

/// One row of `undelivered_alerts` (migration 0011); field order is the
/// table's column order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, clickhouse::Row)]
pub struct UndeliveredRow {
    /// Unix seconds.
    pub refused_at: u32,
    /// `finding`, `withdrawal` or `digest`.
    pub kind: String,
    pub rule_id: String,
    pub provider_org_number: String,
    pub finding_ids: Vec<String>,
    /// The webhook's HTTP status.
    pub status: u16,
    /// The start of the webhook's answer.
    pub answer: String,
    /// The message as sent (JSON).
    pub message: String,
    /// Unix seconds.
    pub inserted_at: u32,
}

impl UndeliveredRow {
    /// `refused_at_ms`: Unix milliseconds. Errors: a time outside
    /// ClickHouse's `DateTime` (1970 to 2106).
    pub fn refused_at(refused_at_ms: i64) -> Result<u32, OutOfRange> {
        clickhouse_time::seconds_since_epoch(refused_at_ms).ok_or(OutOfRange { field: "refused_at" })
    }
}
