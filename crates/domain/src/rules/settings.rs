//! The rules' parameters, from config (`[detector.rules]` in `defaults.toml`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Rule;

/// The rules' parameters, from config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Rule ids switched off.
    #[serde(default)]
    pub disabled: Vec<String>,
    /// Product categories that are contact fees (anything else is `wrong_product`).
    pub contact_product_categories: Vec<String>,
    /// Agreement chapters whose lines need a referral number.
    pub referral_required_chapters: Vec<String>,
    /// Months after the visit within which a line must be invoiced.
    pub late_invoice_months: u32,
    /// Contact channels that are not billable.
    pub non_billable_channels: Vec<String>,
    /// Home region organisation number → its county code.
    #[serde(default)]
    pub home_regions: BTreeMap<String, String>,
    /// KVÅ codes of procedures that need a physical meeting.
    pub physical_procedures: Vec<String>,
    /// Profession codes counted by `excessive_psychologist_contacts`.
    pub psychologist_professions: Vec<String>,
    pub psychologist_limit: usize,
    pub psychologist_window_days: u32,
    /// Contacts per patient, profession and day allowed before `same_day_repeat`.
    pub same_day_limit: usize,
    /// Contacts per patient and profession allowed within `burst_window_days`.
    pub burst_limit: usize,
    pub burst_window_days: u32,
    /// Visit date from which `missing_needs_assessment` applies (Ds 2023:27).
    pub needs_assessment_from: Option<NaiveDate>,
}

impl RuleSettings {
    /// What is wrong with the settings, every problem at once: unknown rule
    /// ids in `disabled`, windows shorter than a day. Empty when they are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for id in &self.disabled {
            if Rule::by_id(id).is_none() {
                p.push(format!("detector.rules.disabled names an unknown rule {id:?}"));
            }
        }
        if self.psychologist_window_days == 0 || self.burst_window_days == 0 {
            p.push("detector.rules: window lengths must be at least 1 day".into());
        }
        p
    }

    /// Whether `rule` is switched on (not in `disabled`).
    pub fn enabled(&self, rule: &Rule) -> bool {
        !self.disabled.iter().any(|d| d == rule.id)
    }
}
