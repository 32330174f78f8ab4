//! What the generator made, for checking the pipeline's results against:
//! the lines' summary (written to `FILE.summary.json`) and what the listing
//! register implies for the reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What was generated, for checking the pipeline's results against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub region: String,
    pub buyer_org_number: String,
    pub year: i32,
    pub seed: u64,
    pub lines: usize,
    pub valid: usize,
    pub invalid: usize,
    pub invalid_by_reason: BTreeMap<String, usize>,
    pub implausible_by_kind: BTreeMap<String, usize>,
    /// Findings the detector should make, by rule id: exactly these.
    pub expected_findings: BTreeMap<String, usize>,
    pub credit_notes: usize,
    /// Sum of net amounts of the valid lines, credit notes negative, öre.
    pub valid_net_amount_ore: i64,
    /// Invoices minus credit notes, in contacts, of the valid lines.
    pub valid_contacts: i64,
    /// Valid net amount per visit month (`YYYY-MM`), öre.
    pub valid_net_by_month: BTreeMap<String, i64>,
    /// The listing register written beside the lines, and what it implies.
    #[serde(default)]
    pub listing: Option<RegisterSummary>,
}

/// What the register implies for the generated year's valid lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterSummary {
    pub home_county: String,
    pub rows: usize,
    pub listed_people: usize,
    /// Valid lines whose patient is listed on the visit date, and the rest.
    pub listed_lines: usize,
    pub unlisted_lines: usize,
    /// Net amount of valid lines per listing unit HSA-id ("" = unlisted),
    /// credit notes negative, öre.
    pub net_by_unit: BTreeMap<String, i64>,
    /// Contacts (credit notes negative) per listing unit ("" = unlisted).
    pub contacts_by_unit: BTreeMap<String, i64>,
    /// Contacts per invoicing provider and listing unit, keyed
    /// `"<provider org number> <unit HSA-id>"` (listed lines only).
    pub contacts_by_provider_and_unit: BTreeMap<String, i64>,
    /// People listed on 1 July of the year per unit.
    pub listed_mid_year_by_unit: BTreeMap<String, usize>,
}
