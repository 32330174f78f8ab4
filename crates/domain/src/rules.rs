//! Monitoring rules: which valid lines a region would dispute or look into.
//!
//! [`RuleEngine::observe`] takes enriched lines in any order and returns the
//! findings each new line brings to light, about that line or about lines
//! seen before (an early visit arriving late can push a later contact over
//! a limit). The set of findings depends only on the set of lines seen, not
//! on their order, and every finding has a stable id: replaying a topic
//! gives the same findings with the same ids.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Months, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EnrichedLine, InvoiceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }
}

/// A rule's identity and its explanation for monitoring staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// The RIV credit reason it corresponds to, if any (1–9).
    pub riv_reason: Option<u8>,
    pub english: &'static str,
    pub swedish: &'static str,
}

pub const WRONG_PRICE: Rule = Rule {
    id: "wrong_price",
    severity: Severity::Medium,
    riv_reason: Some(2),
    english: "The unit price differs from the tariff for the profession on the visit date.",
    swedish: "Styckpriset avviker från taxan för yrkesgruppen på besöksdagen.",
};
pub const WRONG_PRODUCT: Rule = Rule {
    id: "wrong_product",
    severity: Severity::Medium,
    riv_reason: Some(3),
    english: "The product category is not the contact fee that digital care is invoiced with.",
    swedish: "Produktkategorin är inte den kontaktavgift som digitala vårdkontakter faktureras med.",
};
pub const NO_REFERRAL: Rule = Rule {
    id: "no_referral",
    severity: Severity::Medium,
    riv_reason: Some(5),
    english: "The agreement point requires a referral, but the line has no referral number.",
    swedish: "Avtalspunkten kräver remiss, men raden saknar remissnummer.",
};
pub const LATE_INVOICE: Rule = Rule {
    id: "late_invoice",
    severity: Severity::Medium,
    riv_reason: Some(6),
    english: "Invoiced more than six months after the care was given.",
    swedish: "Fakturerad mer än sex månader efter att vården gavs.",
};
pub const DOUBLE_INVOICING: Rule = Rule {
    id: "double_invoicing",
    severity: Severity::High,
    riv_reason: Some(7),
    english: "The same contact (patient, provider, profession, date and time) is invoiced on more than one line that no credit note cancels.",
    swedish: "Samma kontakt (patient, vårdgivare, yrkesgrupp, datum och tid) är fakturerad på mer än en rad som ingen kreditnota tar bort.",
};
pub const NON_BILLABLE: Rule = Rule {
    id: "non_billable_contact",
    severity: Severity::Medium,
    riv_reason: Some(9),
    english: "The contact was of a kind that is not billable (e.g. phone advice).",
    swedish: "Kontakten är av ett slag som inte är ersättningsberättigat (t.ex. telefonrådgivning).",
};
pub const NOT_RESIDENT: Rule = Rule {
    id: "patient_not_resident",
    severity: Severity::High,
    riv_reason: Some(1),
    english: "The patient's county is not the county of the region invoiced.",
    swedish: "Patientens län är inte länet för den fakturerade regionen.",
};
pub const PHYSICAL_PROCEDURE: Rule = Rule {
    id: "physical_procedure",
    severity: Severity::Medium,
    riv_reason: None,
    english: "A procedure that needs a physical meeting is invoiced as a digital contact.",
    swedish: "En åtgärd som kräver fysiskt möte är fakturerad som digital kontakt.",
};
pub const EXCESSIVE_PSYCHOLOGIST: Rule = Rule {
    id: "excessive_psychologist_contacts",
    severity: Severity::Medium,
    riv_reason: None,
    english: "More psychologist or psychotherapist contacts for one patient within the window than the limit.",
    swedish: "Fler psykolog- eller psykoterapeutkontakter för en patient inom perioden än gränsen.",
};
pub const SAME_DAY_REPEAT: Rule = Rule {
    id: "same_day_repeat",
    severity: Severity::Low,
    riv_reason: None,
    english: "More contacts with one profession on the same day for one patient than the limit.",
    swedish: "Fler kontakter med en yrkesgrupp samma dag för en patient än gränsen.",
};
pub const CONTACT_BURST: Rule = Rule {
    id: "contact_burst",
    severity: Severity::Low,
    riv_reason: None,
    english: "More contacts with one profession for one patient within a few days than the limit.",
    swedish: "Fler kontakter med en yrkesgrupp för en patient inom några dagar än gränsen.",
};
pub const MISSING_NEEDS_ASSESSMENT: Rule = Rule {
    id: "missing_needs_assessment",
    severity: Severity::Medium,
    riv_reason: None,
    english: "The distance contact was not preceded by a needs and suitability assessment (Ds 2023:27), after the date the rule applies from.",
    swedish: "Distanskontakten föregicks inte av en behovs- och lämplighetsbedömning (Ds 2023:27), efter det datum regeln gäller från.",
};

/// Judged in ClickHouse over the aggregates, not by [`RuleEngine`]: the
/// detector's review publishes it (see `distans_detector::review`).
pub const PROVIDER_FAR_FROM_PEERS: Rule = Rule {
    id: "provider_far_from_peers",
    severity: Severity::Medium,
    riv_reason: None,
    english: "The provider's contacts per patient or share of repeat contacts that month are far above those of other providers of the same profession (median and MAD).",
    swedish: "Vårdgivarens kontakter per patient eller andel återbesök den månaden ligger långt över andra vårdgivares inom samma yrkesgrupp (median och MAD).",
};
/// Judged in ClickHouse with the listing register; see [`PROVIDER_FAR_FROM_PEERS`].
pub const LISTED_AT_SAME_GROUP: Rule = Rule {
    id: "listed_at_same_group",
    severity: Severity::Medium,
    riv_reason: None,
    english: "Patients listed at a health centre of the provider's own group were invoiced digitally via another region.",
    swedish: "Patienter listade på en vårdcentral i vårdgivarens egen koncern har fakturerats för digitala kontakter via en annan region.",
};

pub const RULES: [Rule; 14] = [
    WRONG_PRICE,
    WRONG_PRODUCT,
    NO_REFERRAL,
    LATE_INVOICE,
    DOUBLE_INVOICING,
    NON_BILLABLE,
    NOT_RESIDENT,
    PHYSICAL_PROCEDURE,
    EXCESSIVE_PSYCHOLOGIST,
    SAME_DAY_REPEAT,
    CONTACT_BURST,
    MISSING_NEEDS_ASSESSMENT,
    PROVIDER_FAR_FROM_PEERS,
    LISTED_AT_SAME_GROUP,
];

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
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for id in &self.disabled {
            if !RULES.iter().any(|r| r.id == id) {
                p.push(format!("detector.rules.disabled names an unknown rule {id:?}"));
            }
        }
        if self.psychologist_window_days == 0 || self.burst_window_days == 0 {
            p.push("detector.rules: window lengths must be at least 1 day".into());
        }
        p
    }
}

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

pub fn finding_id(rule_id: &str, line_key: &str) -> String {
    let digest = Sha256::new().chain_update(rule_id).chain_update([0u8]).chain_update(line_key).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn short_hash(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    u64::from_be_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
}

/// What the stateful rules remember of one invoice line, kept small: the
/// strings many lines share are interned, the pseudonym is 128 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    invoice_date: NaiveDate,
    key: Box<str>,
    invoice_id: u64,
    visit_date: NaiveDate,
    /// Seconds since midnight; `u32::MAX` when the invoice has no time.
    visit_time: u32,
    net_amount_ore: i64,
    place: u32,
    patient: u128,
}

impl Seen {
    /// Order between lines of one contact: invoice date, then line key.
    fn invoice_order(&self) -> (NaiveDate, &str) {
        (self.invoice_date, &self.key)
    }

    /// Order between contacts: visit date and time, then line key.
    fn visit_order(&self) -> (NaiveDate, u32, &str) {
        (self.visit_date, self.visit_time, &self.key)
    }
}

/// Who invoiced: shared by every line of one buyer, provider and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    buyer: String,
    provider_org: String,
    provider_name: String,
    unit: String,
}

/// Evaluates the rules over a stream of lines. Holds the state of the
/// stateful rules; see the module docs.
#[derive(Debug, Default)]
pub struct RuleEngine {
    settings: Option<RuleSettings>,
    /// Every invoice line seen, once; the maps below hold indices into it.
    seen: Vec<Seen>,
    /// The first invoice line of each contact fingerprint (patient, provider,
    /// profession, date, time) …
    contacts: HashMap<u64, u32>,
    /// … and the other lines of the few contacts invoiced more than once.
    repeated: HashMap<u64, Vec<u32>>,
    /// Contacts a credit note cancels on an invoice: (fingerprint, credited invoice id).
    credited: HashSet<(u64, u64)>,
    /// Contacts per patient and profession (one line per fingerprint).
    by_profession: HashMap<u64, Vec<u32>>,
    /// Psychologist contacts per patient (one line per fingerprint).
    psychologist: HashMap<u128, Vec<u32>>,
    places: Vec<Place>,
    place_ids: HashMap<u64, u32>,
    emitted: HashSet<String>,
}

impl RuleEngine {
    pub fn new(settings: RuleSettings) -> RuleEngine {
        RuleEngine { settings: Some(settings), ..RuleEngine::default() }
    }

    fn settings(&self) -> &RuleSettings {
        self.settings.as_ref().expect("RuleEngine::new sets the settings")
    }

    fn enabled(&self, rule: &Rule) -> bool {
        !self.settings().disabled.iter().any(|d| d == rule.id)
    }

    /// Lines remembered by the stateful rules (for memory figures).
    pub fn remembered_lines(&self) -> usize {
        self.seen.len()
    }

    fn lines_of(&self, fingerprint: u64) -> Vec<u32> {
        let mut lines: Vec<u32> = self.contacts.get(&fingerprint).copied().into_iter().collect();
        lines.extend(self.repeated.get(&fingerprint).into_iter().flatten());
        lines
    }

    /// The findings `line` brings to light that were not returned before.
    pub fn observe(&mut self, line: &EnrichedLine) -> Vec<Finding> {
        let mut findings = Vec::new();
        let fingerprint = short_hash(&[
            &line.patient_pseudonym,
            &line.provider_org_number,
            &line.profession_code,
            &line.visit_date.to_string(),
            &line.visit_time.map(|t| t.to_string()).unwrap_or_default(),
        ]);
        if line.invoice_type == InvoiceType::CreditNote {
            if let Some(credited) = &line.credited_invoice_id {
                self.credited.insert((fingerprint, short_hash(&[credited])));
            }
            return findings;
        }
        let key = line.key();
        if self.lines_of(fingerprint).iter().any(|&i| *self.seen[i as usize].key == *key) {
            // A redelivered line: everything it shows was returned the first time.
            return findings;
        }
        let place_id = short_hash(&[
            &line.buyer_org_number,
            &line.provider_org_number,
            &line.provider_name,
            &line.performing_unit_hsa_id,
        ]);
        let place = match self.place_ids.get(&place_id) {
            Some(&index) => index,
            None => {
                self.places.push(Place {
                    buyer: line.buyer_org_number.clone(),
                    provider_org: line.provider_org_number.clone(),
                    provider_name: line.provider_name.clone(),
                    unit: line.performing_unit_hsa_id.clone(),
                });
                let index = u32::try_from(self.places.len() - 1).unwrap_or(u32::MAX);
                self.place_ids.insert(place_id, index);
                index
            }
        };
        let patient = u128::from_str_radix(&line.patient_pseudonym, 16)
            .unwrap_or_else(|_| u128::from(short_hash(&[&line.patient_pseudonym])));
        let index = u32::try_from(self.seen.len()).unwrap_or(u32::MAX);
        self.seen.push(Seen {
            invoice_date: line.invoice_date,
            key: key.into_boxed_str(),
            invoice_id: short_hash(&[&line.invoice_id]),
            visit_date: line.visit_date,
            visit_time: line.visit_time.map_or(u32::MAX, |t| t.num_seconds_from_midnight()),
            net_amount_ore: line.net_amount_ore,
            place,
            patient,
        });
        self.line_rules(line, index, &mut findings);
        let first_of_contact = match self.contacts.get(&fingerprint) {
            None => {
                self.contacts.insert(fingerprint, index);
                true
            }
            Some(_) => {
                self.repeated.entry(fingerprint).or_default().push(index);
                false
            }
        };
        self.double_invoicing(fingerprint, &mut findings);
        if first_of_contact {
            let group = short_hash(&[&line.patient_pseudonym, &line.profession_code]);
            self.insert_by_visit(Grouping::Profession(group), index);
            self.same_day_and_bursts(group, &line.profession_code, &mut findings);
            if self.settings().psychologist_professions.contains(&line.profession_code) {
                self.insert_by_visit(Grouping::Psychologist(patient), index);
                self.psychologist_contacts(patient, &mut findings);
            }
        }
        findings.retain(|f| self.emitted.insert(f.finding_id.clone()));
        findings
    }

    fn insert_by_visit(&mut self, grouping: Grouping, index: u32) {
        let group = match grouping {
            Grouping::Profession(id) => self.by_profession.entry(id).or_default(),
            Grouping::Psychologist(patient) => self.psychologist.entry(patient).or_default(),
        };
        let seen = &self.seen;
        let at = group.partition_point(|&i| seen[i as usize].visit_order() < seen[index as usize].visit_order());
        group.insert(at, index);
    }

    fn finding(&self, rule: &Rule, about: u32, related: &[u32], amount: i64, evidence: String) -> Finding {
        let about = &self.seen[about as usize];
        let place = &self.places[about.place as usize];
        let mut line_keys = vec![about.key.to_string()];
        line_keys.extend(related.iter().map(|&i| self.seen[i as usize].key.to_string()));
        Finding {
            finding_id: finding_id(rule.id, &about.key),
            rule_id: rule.id.to_string(),
            severity: rule.severity,
            line_keys,
            buyer_org_number: place.buyer.clone(),
            provider_org_number: place.provider_org.clone(),
            provider_name: place.provider_name.clone(),
            performing_unit_hsa_id: place.unit.clone(),
            patient_pseudonym: Some(format!("{:032x}", about.patient)),
            visit_date: about.visit_date,
            amount_at_stake_ore: amount,
            evidence,
        }
    }

    fn line_rules(&self, line: &EnrichedLine, seen: u32, out: &mut Vec<Finding>) {
        let s = self.settings();
        let net = line.net_amount_ore;
        if self.enabled(&WRONG_PRICE) {
            if let Some(tariff) = line.tariff_ore {
                if line.unit_price_ore != tariff {
                    let over = (line.unit_price_ore - tariff).max(0) * i64::from(line.quantity);
                    let evidence = format!(
                        "unit price {} SEK, tariff {} SEK for {} on {}",
                        sek(line.unit_price_ore),
                        sek(tariff),
                        line.tariff_class.as_str(),
                        line.visit_date
                    );
                    out.push(self.finding(&WRONG_PRICE, seen, &[], over, evidence));
                }
            }
        }
        if self.enabled(&WRONG_PRODUCT) && !s.contact_product_categories.contains(&line.product_category) {
            let evidence = format!(
                "product category {}, expected one of {}",
                line.product_category,
                s.contact_product_categories.join(", ")
            );
            out.push(self.finding(&WRONG_PRODUCT, seen, &[], net, evidence));
        }
        if self.enabled(&NO_REFERRAL)
            && s.referral_required_chapters.contains(&line.agreement_chapter)
            && line.remittance_number.is_none()
        {
            let evidence = format!(
                "agreement chapter {} point {} without a referral number",
                line.agreement_chapter, line.agreement_point
            );
            out.push(self.finding(&NO_REFERRAL, seen, &[], net, evidence));
        }
        if self.enabled(&LATE_INVOICE) {
            let deadline = line.visit_date.checked_add_months(Months::new(s.late_invoice_months));
            if deadline.is_some_and(|d| line.invoice_date > d) {
                let days = (line.invoice_date - line.visit_date).num_days();
                let evidence = format!(
                    "invoiced {} on {}, {days} days after the visit (limit {} months)",
                    line.invoice_date, line.invoice_id, s.late_invoice_months
                );
                out.push(self.finding(&LATE_INVOICE, seen, &[], net, evidence));
            }
        }
        if self.enabled(&NON_BILLABLE) {
            if let Some(channel) = line.contact_channel.as_ref().filter(|c| s.non_billable_channels.contains(c)) {
                out.push(self.finding(&NON_BILLABLE, seen, &[], net, format!("contact channel {channel}")));
            }
        }
        if self.enabled(&NOT_RESIDENT) {
            if let Some(home) = s.home_regions.get(&line.buyer_org_number) {
                if *home != line.patient_county_code {
                    let evidence = format!(
                        "patient lives in county {}, invoiced region is county {home}",
                        line.patient_county_code
                    );
                    out.push(self.finding(&NOT_RESIDENT, seen, &[], net, evidence));
                }
            }
        }
        if self.enabled(&PHYSICAL_PROCEDURE) {
            let physical: Vec<&str> =
                line.procedure_codes.iter().filter(|c| s.physical_procedures.contains(c)).map(String::as_str).collect();
            if !physical.is_empty() {
                let evidence = format!("procedure {} needs a physical meeting", physical.join(", "));
                out.push(self.finding(&PHYSICAL_PROCEDURE, seen, &[], net, evidence));
            }
        }
        if self.enabled(&MISSING_NEEDS_ASSESSMENT) {
            let applies = s.needs_assessment_from.is_some_and(|from| line.visit_date >= from);
            if applies && line.needs_assessment == Some(false) {
                let evidence = format!("visit {} reports no needs and suitability assessment", line.visit_date);
                out.push(self.finding(&MISSING_NEEDS_ASSESSMENT, seen, &[], net, evidence));
            }
        }
    }

    /// Every uncancelled invoice line of a contact but the first (by
    /// invoice date, invoice id, line number) is a double.
    fn double_invoicing(&self, fingerprint: u64, out: &mut Vec<Finding>) {
        if !self.enabled(&DOUBLE_INVOICING) {
            return;
        }
        let mut live: Vec<u32> = self
            .lines_of(fingerprint)
            .into_iter()
            .filter(|&i| !self.credited.contains(&(fingerprint, self.seen[i as usize].invoice_id)))
            .collect();
        live.sort_by(|&a, &b| self.seen[a as usize].invoice_order().cmp(&self.seen[b as usize].invoice_order()));
        if let Some((&first, doubles)) = live.split_first() {
            for &double in doubles {
                let d = &self.seen[double as usize];
                let evidence = format!(
                    "the contact of {} is also invoiced on line {}",
                    d.visit_date, self.seen[first as usize].key
                );
                out.push(self.finding(&DOUBLE_INVOICING, double, &[first], d.net_amount_ore, evidence));
            }
        }
    }

    /// For each contact of a group (sorted by visit), its rank among the
    /// group's contacts within `window_days` ending at its visit date.
    fn ranks_in_window(&self, group: &[u32], window_days: i64) -> Vec<(u32, usize)> {
        let mut ranks = Vec::with_capacity(group.len());
        let mut start = 0;
        for (i, &index) in group.iter().enumerate() {
            let date = self.seen[index as usize].visit_date;
            while (date - self.seen[group[start] as usize].visit_date).num_days() >= window_days {
                start += 1;
            }
            ranks.push((index, i - start + 1));
        }
        ranks
    }

    fn psychologist_contacts(&self, patient: u128, out: &mut Vec<Finding>) {
        if !self.enabled(&EXCESSIVE_PSYCHOLOGIST) {
            return;
        }
        let window = i64::from(self.settings().psychologist_window_days);
        let limit = self.settings().psychologist_limit;
        let group = &self.psychologist[&patient];
        for (contact, rank) in self.ranks_in_window(group, window) {
            if rank > limit {
                let evidence =
                    format!("{} psychologist/psychotherapist contact in {window} days (limit {limit})", ordinal(rank));
                let amount = self.seen[contact as usize].net_amount_ore;
                out.push(self.finding(&EXCESSIVE_PSYCHOLOGIST, contact, &[], amount, evidence));
            }
        }
    }

    fn same_day_and_bursts(&self, group: u64, profession: &str, out: &mut Vec<Finding>) {
        let s = self.settings();
        let contacts = &self.by_profession[&group];
        for (rule, window, limit) in
            [(&SAME_DAY_REPEAT, 1, s.same_day_limit), (&CONTACT_BURST, i64::from(s.burst_window_days), s.burst_limit)]
        {
            if !self.enabled(rule) {
                continue;
            }
            for (contact, rank) in self.ranks_in_window(contacts, window) {
                if rank > limit {
                    let c = &self.seen[contact as usize];
                    let evidence = if window == 1 {
                        format!("{} contact with {profession} on {} (limit {limit})", ordinal(rank), c.visit_date)
                    } else {
                        format!(
                            "{} contact with {profession} within {window} days up to {} (limit {limit})",
                            ordinal(rank),
                            c.visit_date
                        )
                    };
                    out.push(self.finding(rule, contact, &[], c.net_amount_ore, evidence));
                }
            }
        }
    }
}

enum Grouping {
    Profession(u64),
    Psychologist(u128),
}

/// Öre as SEK for evidence texts: `500` or `512.50`.
pub fn sek(ore: i64) -> String {
    if ore % 100 == 0 {
        format!("{}", ore / 100)
    } else {
        format!("{}.{:02}", ore / 100, (ore % 100).abs())
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{AgeGroup, Initiative, Provenance, Sex};
    use crate::{PatientIdKind, TariffClass};
    use chrono::NaiveTime;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn settings() -> RuleSettings {
        RuleSettings {
            disabled: vec![],
            contact_product_categories: vec!["04".into()],
            referral_required_chapters: vec!["5".into()],
            late_invoice_months: 6,
            non_billable_channels: vec!["phone".into()],
            home_regions: [("2321000230".to_string(), "23".to_string())].into_iter().collect(),
            physical_procedures: vec!["AA039".into(), "AD041".into()],
            psychologist_professions: vec!["PS".into(), "PT".into()],
            psychologist_limit: 20,
            psychologist_window_days: 365,
            same_day_limit: 1,
            burst_limit: 3,
            burst_window_days: 7,
            needs_assessment_from: Some(date("2025-10-01")),
        }
    }

    /// A clean physician line: no rule fires on it.
    fn line(invoice: u32, number: i32) -> EnrichedLine {
        EnrichedLine {
            invoice_id: format!("ZVF2321000040250{invoice:07}"),
            line_number: number,
            invoice_type: InvoiceType::Invoice,
            credited_invoice_id: None,
            seller_org_number: "2321000040".into(),
            buyer_org_number: "2321000230".into(),
            invoice_date: date("2025-03-10"),
            patient_pseudonym: "p1".into(),
            patient_id_kind: PatientIdKind::Personnummer,
            patient_county_code: "23".into(),
            patient_municipality_code: "2380".into(),
            sex: Sex::Female,
            age_years: Some(30),
            age_group: AgeGroup::Age19To39,
            initiative: Initiative::OwnInitiative,
            remittance_number: None,
            agreement_chapter: "4".into(),
            agreement_point: "4.1".into(),
            care_type: "outpatient".into(),
            visit_type: "new".into(),
            visit_date: date("2025-02-14"),
            visit_time: NaiveTime::from_hms_opt(10, 0, 0),
            performing_unit_hsa_id: "SE5591000010-E0001".into(),
            provider_org_number: "5591000010".into(),
            provider_name: "Nordvård Digital AB".into(),
            profession_code: "LK".into(),
            tariff_class: TariffClass::Physician,
            tariff_ore: Some(50_000),
            product_category: "04".into(),
            quantity: 1,
            unit_price_ore: 50_000,
            patient_fee_ore: 0,
            gross_amount_ore: 50_000,
            net_amount_ore: 50_000,
            diagnosis_codes: vec!["J06.9".into()],
            procedure_codes: vec!["ZV051".into()],
            contact_channel: Some("video".into()),
            needs_assessment: Some(true),
            source: Provenance { topic: "t".into(), partition: 0, offset: 0 },
            ingested_at_ms: 0,
        }
    }

    fn rule_ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule_id.as_str()).collect()
    }

    fn check(mutate: impl FnOnce(&mut EnrichedLine), expected: &[&str]) {
        let mut engine = RuleEngine::new(settings());
        let mut l = line(1, 1);
        mutate(&mut l);
        assert_eq!(rule_ids(&engine.observe(&l)), expected);
    }

    #[test]
    fn line_rules_with_their_boundaries() {
        check(|_| {}, &[]);
        check(|l| l.unit_price_ore = 50_001, &["wrong_price"]);
        check(|l| l.unit_price_ore = 49_999, &["wrong_price"]);
        check(|l| l.tariff_ore = None, &[]);
        check(|l| l.product_category = "05".into(), &["wrong_product"]);
        check(|l| l.agreement_chapter = "5".into(), &["no_referral"]);
        check(
            |l| {
                l.agreement_chapter = "5".into();
                l.remittance_number = Some("R1".into());
            },
            &[],
        );
        check(|l| l.invoice_date = date("2025-08-14"), &[]); // exactly six months
        check(|l| l.invoice_date = date("2025-08-15"), &["late_invoice"]);
        check(|l| l.contact_channel = Some("phone".into()), &["non_billable_contact"]);
        check(|l| l.patient_county_code = "25".into(), &["patient_not_resident"]);
        check(
            |l| {
                l.patient_county_code = "25".into();
                l.buyer_org_number = "2321000999".into(); // a buyer whose county is not configured
            },
            &[],
        );
        check(|l| l.procedure_codes.push("AA039".into()), &["physical_procedure"]);
        check(
            |l| {
                l.visit_date = date("2025-09-30");
                l.invoice_date = date("2025-10-10");
                l.needs_assessment = Some(false);
            },
            &[],
        );
        check(
            |l| {
                l.visit_date = date("2025-10-01");
                l.invoice_date = date("2025-10-10");
                l.needs_assessment = Some(false);
            },
            &["missing_needs_assessment"],
        );
        check(
            |l| {
                l.visit_date = date("2025-10-01");
                l.invoice_date = date("2025-10-10");
                l.needs_assessment = None;
            },
            &[],
        );
        check(|l| l.invoice_type = InvoiceType::CreditNote, &[]);
    }

    #[test]
    fn evidence_and_amount_at_stake() {
        let mut engine = RuleEngine::new(settings());
        let mut l = line(1, 1);
        l.unit_price_ore = 65_000;
        l.quantity = 2;
        let f = engine.observe(&l).remove(0);
        assert_eq!(f.amount_at_stake_ore, 30_000);
        assert_eq!(f.evidence, "unit price 650 SEK, tariff 500 SEK for physician on 2025-02-14");
        assert_eq!(f.finding_id, finding_id("wrong_price", &l.key()));
        assert_eq!(f.line_keys, vec![l.key()]);
        assert!(engine.observe(&l).is_empty(), "a finding is returned once");
    }

    #[test]
    fn a_disabled_rule_is_silent() {
        let mut s = settings();
        s.disabled.push("wrong_price".into());
        let mut engine = RuleEngine::new(s);
        let mut l = line(1, 1);
        l.unit_price_ore = 65_000;
        assert!(engine.observe(&l).is_empty());
    }

    #[test]
    fn double_invoicing_in_either_order() {
        let first = line(1, 1);
        let mut double = line(2, 1);
        double.invoice_date = date("2025-04-10");
        for order in [[&first, &double], [&double, &first]] {
            let mut engine = RuleEngine::new(settings());
            let findings: Vec<Finding> = order.iter().flat_map(|l| engine.observe(l)).collect();
            assert_eq!(rule_ids(&findings), ["double_invoicing"]);
            assert_eq!(findings[0].line_keys, vec![double.key(), first.key()]);
            assert_eq!(findings[0].finding_id, finding_id("double_invoicing", &double.key()));
        }
        // Another time of day is another contact (and a same-day repeat).
        let mut engine = RuleEngine::new(settings());
        let mut later = line(2, 1);
        later.visit_time = NaiveTime::from_hms_opt(15, 0, 0);
        engine.observe(&first);
        assert_eq!(rule_ids(&engine.observe(&later)), ["same_day_repeat"]);
    }

    #[test]
    fn a_credit_note_that_cancels_a_line_is_not_a_double() {
        let first = line(1, 1);
        let mut credit = line(3, 1);
        credit.invoice_type = InvoiceType::CreditNote;
        credit.credited_invoice_id = Some(first.invoice_id.clone());
        let mut again = line(2, 1);
        again.invoice_date = date("2025-04-10");
        let mut engine = RuleEngine::new(settings());
        let findings: Vec<Finding> = [&first, &credit, &again].iter().flat_map(|l| engine.observe(l)).collect();
        assert!(findings.is_empty(), "{findings:?}");
    }

    fn psychologist_visit(n: u32, visit: NaiveDate) -> EnrichedLine {
        let mut l = line(100 + n, 1);
        l.profession_code = "PS".into();
        l.tariff_class = TariffClass::Psychologist;
        l.tariff_ore = Some(42_500);
        l.unit_price_ore = 42_500;
        l.gross_amount_ore = 42_500;
        l.net_amount_ore = 42_500;
        l.visit_date = visit;
        l.invoice_date = visit + chrono::Days::new(20);
        l
    }

    #[test]
    fn psychologist_contacts_over_the_limit_by_visit_date() {
        let start = date("2025-01-06");
        let visits: Vec<EnrichedLine> =
            (0..22).map(|i| psychologist_visit(i, start + chrono::Days::new(u64::from(i) * 7))).collect();
        let mut engine = RuleEngine::new(settings());
        // The 2nd to 22nd arrive first: 21 contacts, one over the limit.
        let mut findings: Vec<Finding> = visits[1..].iter().flat_map(|l| engine.observe(l)).collect();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].line_keys, vec![visits[21].key()]);
        assert_eq!(findings[0].evidence, "21st psychologist/psychotherapist contact in 365 days (limit 20)");
        // The earliest visit arrives late: now the 21st contact is over the limit too.
        findings = engine.observe(&visits[0]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].line_keys, vec![visits[20].key()]);
        // A contact a year later starts a fresh window.
        let mut next_year = psychologist_visit(99, start + chrono::Days::new(21 * 7 + 365));
        next_year.invoice_date = next_year.visit_date + chrono::Days::new(1);
        assert!(engine.observe(&next_year).is_empty());
    }

    #[test]
    fn bursts_within_a_week() {
        let day = |n: u64| date("2025-03-03") + chrono::Days::new(n);
        let visit = |n: u32, on: NaiveDate| {
            let mut l = line(200 + n, 1);
            l.visit_date = on;
            l.invoice_date = date("2025-04-10");
            l
        };
        // Four contacts in seven days (days 0, 2, 4, 6): the fourth is a burst.
        let mut engine = RuleEngine::new(settings());
        let visits = [visit(0, day(0)), visit(1, day(2)), visit(2, day(4)), visit(3, day(6))];
        let findings: Vec<Finding> = visits.iter().flat_map(|l| engine.observe(l)).collect();
        assert_eq!(rule_ids(&findings), ["contact_burst"]);
        assert_eq!(findings[0].line_keys, vec![visits[3].key()]);
        assert_eq!(findings[0].evidence, "4th contact with LK within 7 days up to 2025-03-09 (limit 3)");
        // Spread over eight days (0, 2, 4, 7): no burst.
        let mut engine = RuleEngine::new(settings());
        let spread = [visit(0, day(0)), visit(1, day(2)), visit(2, day(4)), visit(3, day(7))];
        assert!(spread.iter().flat_map(|l| engine.observe(l)).next().is_none());
    }

    #[test]
    fn ordinals() {
        let cases =
            [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (21, "21st"), (23, "23rd")];
        for (n, expected) in cases {
            assert_eq!(ordinal(n), expected);
        }
    }

    #[test]
    fn every_rule_has_both_explanations_and_a_unique_id() {
        let ids: HashSet<&str> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            assert!(!rule.english.is_empty() && !rule.swedish.is_empty(), "{}", rule.id);
        }
        assert!(settings().problems().is_empty());
    }
}
