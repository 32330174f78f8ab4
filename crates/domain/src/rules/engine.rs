//! [`RuleEngine`]: runs the line rules of the catalogue on each line and
//! keeps what the stateful rules need of the lines seen so far.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, Timelike};
use sha2::{Digest, Sha256};

use super::{finding_id, Finding, Judged, Judgement, Rule, RuleSettings, DOUBLE_INVOICING, RULES};
use crate::{EnrichedLine, InvoiceType};

fn short_hash(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    u64::from_be_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
}

/// Which sorted group of contacts a contact joins.
pub(super) enum Grouping {
    /// Contacts of one patient with one profession (hash of both).
    Profession(u64),
    /// Psychologist contacts of one patient (the pseudonym as 128 bits).
    Psychologist(u128),
}

/// What the stateful rules remember of one invoice line, kept small: the
/// strings many lines share are interned, the pseudonym is 128 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) invoice_date: NaiveDate,
    pub(super) key: Box<str>,
    pub(super) invoice_id: u64,
    pub(super) visit_date: NaiveDate,
    /// Seconds since midnight; `u32::MAX` when the invoice has no time.
    pub(super) visit_time: u32,
    pub(super) net_amount_ore: i64,
    pub(super) place: u32,
    pub(super) patient: u128,
}

impl Seen {
    /// Order between lines of one contact: invoice date, then line key.
    pub(super) fn invoice_order(&self) -> (NaiveDate, &str) {
        (self.invoice_date, &self.key)
    }

    /// Order between contacts: visit date and time, then line key.
    pub(super) fn visit_order(&self) -> (NaiveDate, u32, &str) {
        (self.visit_date, self.visit_time, &self.key)
    }
}

/// Who invoiced: shared by every line of one buyer, provider and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) buyer: String,
    pub(super) provider_org: String,
    pub(super) provider_name: String,
    pub(super) unit: String,
}

/// Evaluates the rules over a stream of lines. Holds the state of the
/// stateful rules; see the [rules module](super).
#[derive(Debug)]
pub struct RuleEngine {
    pub(super) settings: RuleSettings,
    /// Every invoice line seen, once; the maps below hold indices into it.
    pub(super) seen: Vec<Seen>,
    /// The first invoice line of each contact fingerprint (patient, provider,
    /// profession, date, time) …
    pub(super) contacts: HashMap<u64, u32>,
    /// … and the other lines of the few contacts invoiced more than once.
    pub(super) repeated: HashMap<u64, Vec<u32>>,
    /// Contacts a credit note cancels on an invoice: (fingerprint, credited invoice id).
    pub(super) credited: HashSet<(u64, u64)>,
    /// Contacts per patient and profession (one line per fingerprint).
    pub(super) by_profession: HashMap<u64, Vec<u32>>,
    /// Psychologist contacts per patient (one line per fingerprint).
    pub(super) psychologist: HashMap<u128, Vec<u32>>,
    pub(super) places: Vec<Place>,
    pub(super) place_ids: HashMap<u64, u32>,
    pub(super) emitted: HashSet<String>,
}

impl RuleEngine {
    /// An engine that has seen no line yet.
    pub fn new(settings: RuleSettings) -> RuleEngine {
        RuleEngine {
            settings,
            seen: Vec::new(),
            contacts: HashMap::new(),
            repeated: HashMap::new(),
            credited: HashSet::new(),
            by_profession: HashMap::new(),
            psychologist: HashMap::new(),
            places: Vec::new(),
            place_ids: HashMap::new(),
            emitted: HashSet::new(),
        }
    }

    /// The settings the engine judges with.
    pub fn settings(&self) -> &RuleSettings {
        &self.settings
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
            if self.settings.psychologist_professions.contains(&line.profession_code) {
                self.insert_by_visit(Grouping::Psychologist(patient), index);
                self.psychologist_contacts(patient, &mut findings);
            }
        }
        findings.retain(|f| self.emitted.insert(f.finding_id.clone()));
        findings
    }

    pub(super) fn finding(&self, rule: &Rule, about: u32, related: &[u32], amount: i64, evidence: String) -> Finding {
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

    /// Every line rule of [`RULES`] that is switched on, in the table's order.
    fn line_rules(&self, line: &EnrichedLine, seen: u32, out: &mut Vec<Finding>) {
        for &rule in RULES {
            let Judged::Line { judge, .. } = rule.judged else { continue };
            if !self.settings.enabled(rule) {
                continue;
            }
            if let Some(Judgement { amount_at_stake, evidence }) = judge(line, &self.settings) {
                out.push(self.finding(rule, seen, &[], amount_at_stake.0, evidence));
            }
        }
    }

    /// Every uncancelled invoice line of a contact but the first (by
    /// invoice date, invoice id, line number) is a double.
    fn double_invoicing(&self, fingerprint: u64, out: &mut Vec<Finding>) {
        if !self.settings.enabled(&DOUBLE_INVOICING) {
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
}
