//! The enriched line: what the ingester passes on. It carries a pseudonym,
//! never the patient id, plus what reporting needs (age group, sex,
//! referral vs own initiative, the tariff price).

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::{InvoiceType, TariffClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Sex> {
        match s {
            "female" => Some(Sex::Female),
            "male" => Some(Sex::Male),
            "unknown" => Some(Sex::Unknown),
            _ => None,
        }
    }

    /// ISO 5218 as used in the invoice: 1 male, 2 female, 0 and 9 unknown.
    pub fn from_iso5218(code: i32) -> Option<Sex> {
        match code {
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            0 | 9 => Some(Sex::Unknown),
            _ => None,
        }
    }
}

/// The age groups the regions report by (0-6, 7-18, 19-39, 40-64, 65-74,
/// 75-84, 85+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AgeGroup {
    #[serde(rename = "0-6")]
    Age0To6,
    #[serde(rename = "7-18")]
    Age7To18,
    #[serde(rename = "19-39")]
    Age19To39,
    #[serde(rename = "40-64")]
    Age40To64,
    #[serde(rename = "65-74")]
    Age65To74,
    #[serde(rename = "75-84")]
    Age75To84,
    #[serde(rename = "85+")]
    Age85Plus,
    #[serde(rename = "unknown")]
    Unknown,
}

impl AgeGroup {
    pub const ALL: [AgeGroup; 8] = [
        AgeGroup::Age0To6,
        AgeGroup::Age7To18,
        AgeGroup::Age19To39,
        AgeGroup::Age40To64,
        AgeGroup::Age65To74,
        AgeGroup::Age75To84,
        AgeGroup::Age85Plus,
        AgeGroup::Unknown,
    ];

    pub fn of_age(age: Option<u32>) -> AgeGroup {
        match age {
            None => AgeGroup::Unknown,
            Some(0..=6) => AgeGroup::Age0To6,
            Some(7..=18) => AgeGroup::Age7To18,
            Some(19..=39) => AgeGroup::Age19To39,
            Some(40..=64) => AgeGroup::Age40To64,
            Some(65..=74) => AgeGroup::Age65To74,
            Some(75..=84) => AgeGroup::Age75To84,
            Some(_) => AgeGroup::Age85Plus,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgeGroup::Age0To6 => "0-6",
            AgeGroup::Age7To18 => "7-18",
            AgeGroup::Age19To39 => "19-39",
            AgeGroup::Age40To64 => "40-64",
            AgeGroup::Age65To74 => "65-74",
            AgeGroup::Age75To84 => "75-84",
            AgeGroup::Age85Plus => "85+",
            AgeGroup::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AgeGroup> {
        AgeGroup::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How the contact came about: referred by one of the region's own units,
/// or on the patient's own initiative (agreement chapter 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiative {
    Referral,
    OwnInitiative,
    /// Neither a referral number nor chapter 4: another payment commitment.
    Other,
}

impl Initiative {
    pub fn classify(remittance_number: Option<&str>, agreement_chapter: &str) -> Initiative {
        if remittance_number.is_some_and(|r| !r.trim().is_empty()) {
            Initiative::Referral
        } else if agreement_chapter.trim() == "4" {
            Initiative::OwnInitiative
        } else {
            Initiative::Other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Initiative::Referral => "referral",
            Initiative::OwnInitiative => "own_initiative",
            Initiative::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Initiative> {
        match s {
            "referral" => Some(Initiative::Referral),
            "own_initiative" => Some(Initiative::OwnInitiative),
            "other" => Some(Initiative::Other),
            _ => None,
        }
    }
}

/// Where a record came from on Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A valid, pseudonymised, enriched invoice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichedLine {
    pub invoice_id: String,
    pub line_number: i32,
    pub invoice_type: InvoiceType,
    pub credited_invoice_id: Option<String>,
    pub seller_org_number: String,
    pub buyer_org_number: String,
    pub invoice_date: NaiveDate,

    /// Keyed hash of the patient id (see [`crate::Pseudonymiser`]).
    pub patient_pseudonym: String,
    pub patient_id_kind: crate::PatientIdKind,
    pub patient_county_code: String,
    pub patient_municipality_code: String,
    pub sex: Sex,
    /// Age in whole years on the visit date, when the id gives a birth date.
    pub age_years: Option<u32>,
    pub age_group: AgeGroup,

    pub initiative: Initiative,
    pub remittance_number: Option<String>,
    pub agreement_chapter: String,
    pub agreement_point: String,

    pub care_type: String,
    pub visit_type: String,
    pub visit_date: NaiveDate,
    pub visit_time: Option<NaiveTime>,
    pub performing_unit_hsa_id: String,
    pub provider_org_number: String,
    pub provider_name: String,
    pub profession_code: String,
    pub tariff_class: TariffClass,
    /// The tariff price on the visit date, öre; `None` when no tariff covers it.
    pub tariff_ore: Option<i64>,

    pub product_category: String,
    pub quantity: i32,
    pub unit_price_ore: i64,
    pub patient_fee_ore: i64,
    pub gross_amount_ore: i64,
    pub net_amount_ore: i64,

    pub diagnosis_codes: Vec<String>,
    pub procedure_codes: Vec<String>,
    pub contact_channel: Option<String>,
    pub needs_assessment: Option<bool>,

    pub source: Provenance,
    /// When the ingester accepted the line, milliseconds since the epoch.
    pub ingested_at_ms: i64,
}

impl EnrichedLine {
    pub fn key(&self) -> String {
        crate::invoice::line_key(&self.invoice_id, self.line_number)
    }

    /// The net amount with the sign of the document: negative for a credit note.
    pub fn signed_net_amount_ore(&self) -> i64 {
        self.invoice_type.sign() * self.net_amount_ore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_group_boundaries() {
        let cases = [
            (None, AgeGroup::Unknown),
            (Some(0), AgeGroup::Age0To6),
            (Some(6), AgeGroup::Age0To6),
            (Some(7), AgeGroup::Age7To18),
            (Some(18), AgeGroup::Age7To18),
            (Some(19), AgeGroup::Age19To39),
            (Some(39), AgeGroup::Age19To39),
            (Some(40), AgeGroup::Age40To64),
            (Some(64), AgeGroup::Age40To64),
            (Some(65), AgeGroup::Age65To74),
            (Some(74), AgeGroup::Age65To74),
            (Some(75), AgeGroup::Age75To84),
            (Some(84), AgeGroup::Age75To84),
            (Some(85), AgeGroup::Age85Plus),
            (Some(112), AgeGroup::Age85Plus),
        ];
        for (age, expected) in cases {
            assert_eq!(AgeGroup::of_age(age), expected, "{age:?}");
            assert_eq!(AgeGroup::parse(expected.as_str()), Some(expected));
        }
    }

    #[test]
    fn initiative_table() {
        let cases = [
            (Some("R-123"), "4", Initiative::Referral),
            (Some("R-123"), "5", Initiative::Referral),
            (Some("  "), "4", Initiative::OwnInitiative),
            (None, "4", Initiative::OwnInitiative),
            (None, "5", Initiative::Other),
        ];
        for (remittance, chapter, expected) in cases {
            assert_eq!(Initiative::classify(remittance, chapter), expected, "{remittance:?} {chapter}");
        }
    }

    #[test]
    fn iso5218() {
        assert_eq!(Sex::from_iso5218(1), Some(Sex::Male));
        assert_eq!(Sex::from_iso5218(2), Some(Sex::Female));
        assert_eq!(Sex::from_iso5218(9), Some(Sex::Unknown));
        assert_eq!(Sex::from_iso5218(3), None);
    }
}
