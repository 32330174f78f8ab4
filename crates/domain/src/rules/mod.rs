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
//! [`RuleEngine::observe`] takes enriched lines, corrections and credit notes
//! in any order and returns how the active findings changed: findings that
//! became active or changed, about that line or about lines seen before (an
//! early visit arriving late can push a later contact over a limit), and
//! findings withdrawn (a correction, a credit note). The active findings
//! depend only on the latest version of each line, not on the order the
//! lines arrived in, and every finding has a stable id: replaying a topic
//! gives the same findings with the same ids. The way there does depend on
//! the order: a finding may be published, then published again with new
//! figures or withdrawn. [`RuleEngine::changes`] says which changes revise
//! a finding that was active ([`Change::revises`]), so that what reads them
//! can tell each finding once.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod catalogue;
pub mod engine;
pub mod evidence;
pub mod settings;
mod windows;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;

pub use catalogue::{
    Example, Judged, Judgement, LineRule, Rule, Severity, CONTACT_BURST, DOUBLE_INVOICING, EXCESSIVE_PSYCHOLOGIST,
    LATE_INVOICE, LISTED_AT_SAME_GROUP, MISSING_NEEDS_ASSESSMENT, NON_BILLABLE, NOT_RESIDENT, NO_REFERRAL,
    OVER_CREDITED, PHYSICAL_PROCEDURE, PROVIDER_FAR_FROM_PEERS, RULES, SAME_DAY_REPEAT, WRONG_PRICE, WRONG_PRODUCT,
};
pub use engine::{Change, LineIdentity, RuleEngine, StateMemory};
pub use evidence::Evidence;
pub use settings::RuleSettings;

/// Something a region's monitoring staff should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable: the same rule on the same line(s) always gives the same id.
    pub finding_id: String,
    pub rule_id: String,
    pub severity: Severity,
    /// Whether the finding holds now, or was withdrawn (and why).
    pub status: FindingStatus,
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
    /// Why, with the figures, in English: "23rd psychologist contact in 365
    /// days (limit 20)" (as stored in `anomalies.evidence`).
    pub evidence: String,
    /// The same figures, for saying it in the reader's language
    /// ([`Finding::evidence_in`]); `None` for findings that carry only the
    /// English text (the review's, and findings read from the wire).
    #[serde(default)]
    pub evidence_data: Option<Evidence>,
}

impl Finding {
    /// The evidence in `language`: from [`Finding::evidence_data`] when it
    /// is there, else the English [`Finding::evidence`].
    pub fn evidence_in(&self, language: crate::text::Language) -> String {
        match &self.evidence_data {
            Some(evidence) => evidence.text(language),
            None => self.evidence.clone(),
        }
    }
}

/// Whether a finding holds. A finding keeps its id for life: it is published
/// again with [`FindingStatus::Withdrawn`] when the lines no longer show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Active,
    Withdrawn(Withdrawal),
}

impl FindingStatus {
    /// `active` or `withdrawn`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Active => "active",
            FindingStatus::Withdrawn(_) => "withdrawn",
        }
    }

    /// Why it was withdrawn, if it was.
    pub fn withdrawal(self) -> Option<Withdrawal> {
        match self {
            FindingStatus::Active => None,
            FindingStatus::Withdrawn(why) => Some(why),
        }
    }

    /// From the stored `status` and `withdrawn_reason`.
    pub fn parse(status: &str, reason: Option<&str>) -> Option<FindingStatus> {
        match (status, reason) {
            ("active", _) => Some(FindingStatus::Active),
            ("withdrawn", Some(reason)) => Withdrawal::parse(reason).map(FindingStatus::Withdrawn),
            _ => None,
        }
    }
}

/// Why a finding no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withdrawal {
    /// A new version of the line it is about changed what the rules see.
    Corrected,
    /// A credit note cancelled the line it is about.
    Credited,
    /// Other lines changed: e.g. the original of a double was credited, or
    /// an earlier contact in a window was corrected away.
    Superseded,
}

impl Withdrawal {
    pub fn as_str(self) -> &'static str {
        match self {
            Withdrawal::Corrected => "corrected",
            Withdrawal::Credited => "credited",
            Withdrawal::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Withdrawal> {
        [Withdrawal::Corrected, Withdrawal::Credited, Withdrawal::Superseded].into_iter().find(|w| w.as_str() == s)
    }
}

/// A finding's id: the first 128 bits of SHA-256 over the rule id, a zero
/// byte and the key of the line (or subject) it is about, as 32 hex digits.
pub fn finding_id(rule_id: &str, line_key: &str) -> String {
    let digest = Sha256::new().chain_update(rule_id).chain_update([0u8]).chain_update(line_key).finalize();
    hex::encode(&digest[..16])
}
