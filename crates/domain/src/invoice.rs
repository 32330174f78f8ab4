//! The invoice line as a billing region sends it (after Inera RIV
//! `financial:billing:claim`), before any validation.
//!
//! Fields keep the types of the wire so that a bad value can be reported
//! rather than fail to parse: codes are strings, amounts are signed öre.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// One line of an invoice or credit note, as received.
///
/// Read from JSON lines or CSV (`distans_files::invoices`, for `distans
/// produce`): a field left out of a JSON line, or an empty CSV cell, is
/// `None` (an `Option`) or empty (the code lists); any other field left
/// out, or a field it does not know, is an error. A CSV header names every
/// field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLine {
    /// The seller's invoice number: 1 to 35 printable characters (ML 17 kap
    /// 24 §: a unique number in one or more series); a seller may have a
    /// stricter numbering configured (`validation.invoice_id_patterns`).
    pub invoice_id: String,
    /// `380` invoice, `381` credit note.
    pub invoice_type: String,
    /// 1-based line number within the invoice.
    pub line_number: i32,
    /// For a credit note: the invoice it credits.
    pub credited_invoice_id: Option<String>,
    pub seller_org_number: String,
    /// The home region that pays.
    pub buyer_org_number: String,
    pub invoice_date: NaiveDate,
    /// The invoice's payable amount, öre (header field, repeated on each line).
    pub payable_amount_ore: i64,

    /// Personnummer, samordningsnummer or reserve number, in clear text.
    pub patient_id: String,
    pub patient_county_code: String,
    pub patient_municipality_code: String,
    /// ISO 5218: 0 not known, 1 male, 2 female, 9 not applicable.
    pub patient_sex: Option<i32>,

    /// Referral number (remittanceNumber), when the contact was referred.
    pub remittance_number: Option<String>,
    /// Chapter of the agreement; 4 = the patient's own choice.
    pub agreement_chapter: String,
    /// Agreement point, e.g. 4.1 = outpatient care without referral requirement.
    pub agreement_point: String,

    /// `outpatient` or `inpatient`.
    pub care_type: String,
    /// `new` or `return`.
    pub visit_type: String,
    pub visit_date: NaiveDate,
    /// Local Swedish time of the visit, no zone.
    pub visit_time: Option<NaiveTime>,
    pub performing_unit_hsa_id: String,
    pub provider_org_number: String,
    pub provider_name: String,
    /// RIV profession code: LK physician, SJ nurse, PS psychologist, …
    pub profession_code: String,

    /// `04` = contact fee.
    pub product_category: String,
    pub quantity: i32,
    pub unit_price_ore: i64,
    pub patient_fee_ore: i64,
    pub gross_amount_ore: i64,
    pub net_amount_ore: i64,

    #[serde(default)]
    pub diagnosis_codes: Vec<String>,
    #[serde(default)]
    pub procedure_codes: Vec<String>,
    /// `video`, `chat` or `phone`, where the provider reports it.
    pub contact_channel: Option<String>,
    /// Whether a needs and suitability assessment preceded the contact (Ds 2023:27).
    pub needs_assessment: Option<bool>,
}

impl InvoiceLine {
    /// The record key on Kafka and the line's identity everywhere:
    /// invoice id and line number.
    pub fn key(&self) -> String {
        line_key(&self.invoice_id, self.line_number)
    }
}

pub fn line_key(invoice_id: &str, line_number: i32) -> String {
    format!("{invoice_id}:{line_number}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceType {
    Invoice,
    CreditNote,
}

impl InvoiceType {
    pub fn from_code(code: &str) -> Option<InvoiceType> {
        match code {
            "380" => Some(InvoiceType::Invoice),
            "381" => Some(InvoiceType::CreditNote),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceType::Invoice => "invoice",
            InvoiceType::CreditNote => "credit_note",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceType> {
        match s {
            "invoice" => Some(InvoiceType::Invoice),
            "credit_note" => Some(InvoiceType::CreditNote),
            _ => None,
        }
    }

    /// +1 for an invoice, -1 for a credit note: amounts on the wire are
    /// never negative, the type says which way they go.
    pub fn sign(self) -> i64 {
        match self {
            InvoiceType::Invoice => 1,
            InvoiceType::CreditNote => -1,
        }
    }
}
