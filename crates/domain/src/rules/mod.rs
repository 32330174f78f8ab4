//! Monitoring rules: which valid lines a region would dispute or look into.
//!
//! - [`catalogue`]: every rule once ([`RULES`]): id, severity, RIV credit
//!   reason, explanations, and how it is judged; a line rule carries its
//!   function and examples.
//! - [`settings`]: [`RuleSettings`], the rules' parameters from config.
//! - [`engine`]: [`RuleEngine`], which runs the line rules of the table and
//!   keeps the state of the stateful ones.
//! - `windows`: the stateful rules that count contacts within a window of days.
//!
//! [`RuleEngine::observe`] takes enriched lines in any order and returns the
//! findings each new line brings to light, about that line or about lines
//! seen before (an early visit arriving late can push a later contact over
//! a limit). The set of findings depends only on the set of lines seen, not
//! on their order, and every finding has a stable id: replaying a topic
//! gives the same findings with the same ids.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod catalogue;
pub mod engine;
pub mod settings;
mod windows;

#[cfg(test)]
mod tests;

pub use catalogue::{
    Example, Judged, Judgement, LineRule, Rule, Severity, CONTACT_BURST, DOUBLE_INVOICING, EXCESSIVE_PSYCHOLOGIST,
    LATE_INVOICE, LISTED_AT_SAME_GROUP, MISSING_NEEDS_ASSESSMENT, NON_BILLABLE, NOT_RESIDENT, NO_REFERRAL,
    PHYSICAL_PROCEDURE, PROVIDER_FAR_FROM_PEERS, RULES, SAME_DAY_REPEAT, WRONG_PRICE, WRONG_PRODUCT,
};
pub use engine::RuleEngine;
pub use settings::RuleSettings;

/// Something a region's monitoring staff should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable: the same rule on the same line(s) always gives the same id.
    pub finding_id: String,
    pub rule_id: String,
    pub severity: Severity,
    /// The line the finding is about first, then related lines.
    pub line_keys: Vec<String>,
    pub buyer_org_number: String,
    pub provider_org_number: String,
    pub provider_name: String,
    pub performing_unit_hsa_id: String,
    pub patient_pseudonym: Option<String>,
    pub visit_date: NaiveDate,
    /// What the region may dispute, öre.
    pub amount_at_stake_ore: i64,
    /// Why, with the figures: "23rd psychologist contact in 365 days (limit 20)".
    pub evidence: String,
}

/// A finding's id: the first 128 bits of SHA-256 over the rule id, a zero
/// byte and the key of the line (or subject) it is about, as 32 hex digits.
pub fn finding_id(rule_id: &str, line_key: &str) -> String {
    let digest = Sha256::new().chain_update(rule_id).chain_update([0u8]).chain_update(line_key).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}
