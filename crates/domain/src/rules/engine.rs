//! [`RuleEngine`]: keeps the latest version of every invoice line and credit
//! note seen, and after each one returns how the active findings changed.
//!
//! A line's identity is [`LineIdentity`] (seller, invoice id, line number);
//! the buyer, dates and amounts are attributes a correction may change. A
//! line seen again with a newer version replaces the old one; an older or
//! the same version changes nothing. After each change the engine judges
//! again everything the change can touch, for the old and the new version:
//! the contact (patient, provider, profession, visit date and time) with its
//! invoice lines and credit notes (line rules, double invoicing,
//! over-crediting), the patient's contacts with the profession (same-day
//! repeats, bursts) and the patient's psychologist contacts. What it finds
//! there now is compared with what was active there before: new or changed
//! findings come back [`FindingStatus::Active`], findings no longer found
//! come back [`FindingStatus::Withdrawn`] with why. So the active findings
//! are always the rules applied to the latest versions, whatever order the
//! lines arrived in.
//!
//! Credit notes: a credit note credits the invoice lines of the same contact
//! on the invoice it names (`credited_invoice_id`). Together, the credit
//! notes of an invoice cancel its lines of that contact whole, in line order,
//! as far as their amount reaches (a partial credit cancels nothing). A
//! cancelled line is not payable: no rule judges it, and it is not a contact.
//! More credit notes than lines they credit, or credit for more than those
//! lines were invoiced, is `over_credited`. A credit note whose line has not
//! arrived is weighed when it does.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use smallvec::SmallVec;

use super::{
    finding_id, Evidence, Finding, FindingStatus, Judged, Judgement, Rule, RuleSettings, Withdrawal, DOUBLE_INVOICING,
    OVER_CREDITED, RULES,
};
use crate::{EnrichedLine, InvoiceType};

/// The engine's maps: keyed by ids that are hashes already, or by finding
/// ids; hashed with foldhash (no denial-of-service hardening needed: the
/// keys are 64-bit hashes under a secret seed, or the finding ids' SHA-256).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The records of one contact (most contacts have one line): inline up to four.
pub(super) type Records = SmallVec<[u32; 4]>;

/// The contacts of one group, sorted (a set; most groups hold one or two):
/// inline up to two.
pub(super) type ContactSet = SmallVec<[u64; 2]>;

fn set_insert(set: &mut ContactSet, contact: u64) {
    if let Err(at) = set.binary_search(&contact) {
        set.insert(at, contact);
    }
}

fn set_remove(set: &mut ContactSet, contact: u64) {
    if let Ok(at) = set.binary_search(&contact) {
        set.remove(at);
    }
}

/// The seed of [`short_hash`]: random per process, so that nobody can
/// choose invoice texts whose ids collide (the ids live only in memory; the
/// state is rebuilt at each start).
static ID_HASHER: LazyLock<foldhash::quality::RandomState> = LazyLock::new(foldhash::quality::RandomState::default);

/// A 64-bit id of `parts` (each followed by a separator, so that
/// ("ab", "c") and ("a", "bc") differ) and `numbers`; in memory only.
pub(super) fn short_hash(parts: &[&str], numbers: &[u64]) -> u64 {
    let mut hasher = ID_HASHER.build_hasher();
    for part in parts {
        hasher.write(part.as_bytes());
        hasher.write_u8(0xff);
    }
    for &number in numbers {
        hasher.write_u64(number);
    }
    hasher.finish()
}

/// A visit time as a number for [`short_hash`]: none is `u64::MAX`.
fn time_number(time: Option<NaiveTime>) -> u64 {
    time.map_or(u64::MAX, |t| u64::from(t.num_seconds_from_midnight()) << 32 | u64::from(t.nanosecond()))
}

/// What makes an invoice line the same line across versions: the seller's
/// organisation number, the seller's invoice number and the line number (an
/// invoice number is unique only within its seller; ML 17 kap 24 §).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineIdentity(u64);

impl LineIdentity {
    pub fn of(line: &EnrichedLine) -> LineIdentity {
        // Sign-extended: any injective mapping of the line number will do.
        LineIdentity(short_hash(&[&line.seller_org_number, &line.invoice_id], &[line.line_number as u64]))
    }
}

/// Which version of a line is the latest: the position of its input record
/// (topic partition, offset). Producers key records by line, so every version
/// of a line is on one partition, in the order the seller sent them; two
/// versions on different partitions are taken in arrival order.
/// Packed to 12 bytes (no padding between the two): one is kept per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(super) struct Version {
    partition: i32,
    offset: i64,
}

impl Version {
    fn of(line: &EnrichedLine) -> Version {
        Version { partition: line.source.partition, offset: line.source.offset }
    }

    /// Whether `self` may replace `older`.
    fn replaces(self, older: Version) -> bool {
        let (partition, offset, older_partition, older_offset) =
            (self.partition, self.offset, older.partition, older.offset);
        partition != older_partition || offset > older_offset
    }
}

#[cfg(test)]
mod size_tests {
    /// What one line costs in the arena: the state's memory is mostly this
    /// times the lines (`distans-bench-rules` prints the whole).
    #[test]
    fn a_remembered_line_takes_at_most_128_bytes_in_the_arena() {
        assert_eq!(std::mem::size_of::<super::Version>(), 12);
        assert!(std::mem::size_of::<super::Seen>() <= 128, "{}", std::mem::size_of::<super::Seen>());
    }
}

/// What the rules remember of the latest version of one line or credit note,
/// kept small: the strings many lines share are interned, the pseudonym is
/// 128 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) version: Version,
    pub(super) is_credit: bool,
    /// For a credit note: the invoice it credits (hashed), else 0.
    pub(super) credits_invoice: u64,
    pub(super) invoice_date: NaiveDate,
    /// `invoice_id:line_number`.
    pub(super) key: Box<str>,
    pub(super) invoice_id: u64,
    pub(super) line_number: i32,
    pub(super) visit_date: NaiveDate,
    /// Seconds since midnight; `u32::MAX` when the invoice has no time.
    pub(super) visit_time: u32,
    pub(super) net_amount_ore: i64,
    pub(super) place: u32,
    /// Index into the engine's interned profession codes.
    pub(super) profession: u32,
    pub(super) patient: u128,
    /// The contact: patient, provider, profession, visit date and time.
    pub(super) contact: u64,
    /// The patient and profession.
    pub(super) profession_group: u64,
    pub(super) psychologist: bool,
    /// The line rules' verdicts on this version (computed once per version).
    pub(super) judged: Box<[(&'static Rule, Judgement)]>,
}

impl Seen {
    /// The invoice id part of the key.
    fn invoice_id_text(&self) -> &str {
        self.key.rsplit_once(':').map_or(&self.key, |(id, _)| id)
    }

    /// Order between lines of one contact: invoice date, invoice id, then
    /// line number as a number (line 9 before line 10).
    pub(super) fn invoice_order(&self) -> (NaiveDate, &str, i32) {
        (self.invoice_date, self.invoice_id_text(), self.line_number)
    }

    /// Order between contacts: visit date and time, then line key.
    pub(super) fn visit_order(&self) -> (NaiveDate, u32, &str) {
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

/// A part of the state that is judged as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Scope {
    /// One contact's lines and credit notes: line rules, doubles, over-crediting.
    Contact(u64),
    /// One patient's contacts with one profession: same-day repeats, bursts.
    Profession(u64),
    /// One patient's psychologist contacts.
    Psychologist(u128),
}

/// What one contact's lines and credit notes come to.
#[derive(Debug, Default)]
pub(super) struct ContactState {
    /// Payable lines, in invoice order: the first is the original.
    pub(super) live: Vec<u32>,
    /// Lines a credit note cancels.
    pub(super) cancelled: Vec<u32>,
    /// (credit note, the lines it credits, invoiced and credited öre) where
    /// the credit notes exceed what they credit.
    pub(super) over_credited: Vec<(u32, Vec<u32>, i64, i64)>,
}

/// [`RuleEngine::memory`]: bytes by part of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMemory {
    /// The remembered lines and credit notes (one slot each, with the
    /// vector's spare capacity).
    pub lines: usize,
    /// What those own on the heap: line keys, line rules' verdicts.
    pub line_heap: usize,
    /// Line identity → slot.
    pub identities: usize,
    /// Contact → its lines and credit notes.
    pub contacts: usize,
    /// Patient and profession → contacts; patient → psychologist contacts.
    pub groups: usize,
    /// The active findings and the ids each scope found (not counting the
    /// findings' own strings).
    pub findings: usize,
}

impl StateMemory {
    /// Every part together, bytes.
    pub fn total(&self) -> usize {
        self.lines + self.line_heap + self.identities + self.contacts + self.groups + self.findings
    }
}

/// The bytes of a hashbrown table that holds at least `capacity` entries of
/// `entry` bytes: buckets a power of two at most 7/8 full, one control byte
/// per bucket (and a group's width more).
fn hash_table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets =
        if capacity < 8 { (capacity + 1).next_power_of_two() } else { (capacity * 8 / 7).next_power_of_two() };
    buckets * (entry + 1) + 16
}

/// One change of the active findings, as [`RuleEngine::changes`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The finding as it stands now: active, or withdrawn with why.
    pub finding: Finding,
    /// Whether the finding was active before this record, with other
    /// figures (amount, evidence, related lines): the same finding, revised.
    /// False for a finding that became active (new, or active again after a
    /// withdrawal) and for a withdrawal.
    pub revises: bool,
}

/// Evaluates the rules over a stream of lines. Holds the latest version of
/// every line and credit note; see the module docs.
#[derive(Debug)]
pub struct RuleEngine {
    pub(super) settings: RuleSettings,
    /// The latest version of every line and credit note seen, one slot each.
    pub(super) seen: Vec<Seen>,
    identities: HashMap<LineIdentity, u32>,
    /// Lines and credit notes per contact.
    pub(super) contacts: HashMap<u64, Records>,
    /// Contacts per patient and profession.
    pub(super) by_profession: HashMap<u64, ContactSet>,
    /// Psychologist contacts per patient.
    pub(super) psychologist: HashMap<u128, ContactSet>,
    places: Vec<Place>,
    place_ids: HashMap<u64, u32>,
    /// Profession codes, interned.
    pub(super) professions: Vec<String>,
    /// The active findings, by id.
    active: HashMap<String, Finding>,
    /// The ids each scope found when last judged (none: not kept).
    found_in: HashMap<Scope, Vec<String>>,
}

impl RuleEngine {
    /// An engine that has seen no line yet.
    pub fn new(settings: RuleSettings) -> RuleEngine {
        RuleEngine {
            settings,
            seen: Vec::new(),
            identities: HashMap::default(),
            contacts: HashMap::default(),
            by_profession: HashMap::default(),
            psychologist: HashMap::default(),
            places: Vec::new(),
            place_ids: HashMap::default(),
            professions: Vec::new(),
            active: HashMap::default(),
            found_in: HashMap::default(),
        }
    }

    /// The settings the engine judges with.
    pub fn settings(&self) -> &RuleSettings {
        &self.settings
    }

    /// Lines and credit notes remembered, one per identity (for memory figures).
    pub fn remembered_lines(&self) -> usize {
        self.seen.len()
    }

    /// Where the state's memory goes, by part, in bytes: each part's
    /// allocated capacity times its element size, plus the heap blocks its
    /// elements own. An estimate from the types (a hash map's table is taken
    /// as hashbrown lays it out: a power of two of buckets, one control byte
    /// each); the allocator's own overhead is not counted. Walks the whole
    /// state: for figures, not for every line.
    pub fn memory(&self) -> StateMemory {
        let map = |capacity: usize, entry: usize| hash_table_bytes(capacity, entry);
        let seen_heap: usize =
            self.seen.iter().map(|s| s.key.len() + s.judged.len() * std::mem::size_of::<(&Rule, Judgement)>()).sum();
        StateMemory {
            lines: self.seen.capacity() * std::mem::size_of::<Seen>(),
            line_heap: seen_heap,
            identities: map(self.identities.capacity(), std::mem::size_of::<(LineIdentity, u32)>()),
            contacts: map(self.contacts.capacity(), std::mem::size_of::<(u64, Records)>())
                + self.contacts.values().filter(|r| r.spilled()).map(|r| r.capacity() * 4).sum::<usize>(),
            groups: map(self.by_profession.capacity(), std::mem::size_of::<(u64, ContactSet)>())
                + map(self.psychologist.capacity(), std::mem::size_of::<(u128, ContactSet)>())
                + self
                    .by_profession
                    .values()
                    .chain(self.psychologist.values())
                    .filter(|c| c.spilled())
                    .map(|c| c.capacity() * 8)
                    .sum::<usize>(),
            findings: map(self.active.capacity(), std::mem::size_of::<(String, Finding)>())
                + map(self.found_in.capacity(), std::mem::size_of::<(Scope, Vec<String>)>()),
        }
    }

    /// The findings active now, in no particular order.
    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.active.values()
    }

    /// Takes `line` (a new line, a new version of one, or one seen before)
    /// and returns how the active findings changed: findings that became
    /// active or changed (amount, evidence, related lines), then findings
    /// withdrawn. Empty for a line seen before at this version or later.
    /// [`RuleEngine::changes`] says which are revisions.
    pub fn observe(&mut self, line: &EnrichedLine) -> Vec<Finding> {
        self.changes(line).into_iter().map(|change| change.finding).collect()
    }

    /// As [`RuleEngine::observe`], each change saying whether it revises a
    /// finding that was active before ([`Change::revises`]): what a
    /// publisher needs so that readers tell a finding once, not once per
    /// version (an early visit arriving late publishes a later contact's
    /// finding again with its new rank).
    pub fn changes(&mut self, line: &EnrichedLine) -> Vec<Change> {
        let identity = LineIdentity::of(line);
        let version = Version::of(line);
        let old = self.identities.get(&identity).copied();
        if let Some(slot) = old {
            if !version.replaces(self.seen[slot as usize].version) {
                return Vec::new();
            }
        }
        let seen = self.remember(line, version);
        let mut scopes: BTreeSet<Scope> = BTreeSet::new();
        let slot = match old {
            Some(slot) => {
                scopes.extend(self.scopes_of(slot));
                self.forget(slot);
                self.seen[slot as usize] = seen;
                slot
            }
            None => {
                let slot = u32::try_from(self.seen.len()).unwrap_or(u32::MAX);
                self.seen.push(seen);
                self.identities.insert(identity, slot);
                slot
            }
        };
        self.index(slot);
        scopes.extend(self.scopes_of(slot));
        self.judge_again(&scopes, slot)
    }

    /// What the rules keep of `line`.
    fn remember(&mut self, line: &EnrichedLine, version: Version) -> Seen {
        let place = self.place(line);
        let profession = match self.professions.iter().position(|p| *p == line.profession_code) {
            Some(index) => index,
            None => {
                self.professions.push(line.profession_code.clone());
                self.professions.len() - 1
            }
        };
        let profession = u32::try_from(profession).unwrap_or(u32::MAX);
        let patient = u128::from_str_radix(&line.patient_pseudonym, 16)
            .unwrap_or_else(|_| u128::from(short_hash(&[&line.patient_pseudonym], &[])));
        let is_credit = line.invoice_type == InvoiceType::CreditNote;
        let judged = if is_credit {
            Box::default()
        } else {
            RULES
                .iter()
                .filter(|rule| self.settings.enabled(rule))
                .filter_map(|&rule| match rule.judged {
                    Judged::Line { judge, .. } => judge(line, &self.settings).map(|j| (rule, j)),
                    _ => None,
                })
                .collect()
        };
        Seen {
            version,
            is_credit,
            credits_invoice: line
                .credited_invoice_id
                .as_deref()
                .filter(|_| is_credit)
                .map_or(0, |c| short_hash(&[c], &[])),
            invoice_date: line.invoice_date,
            key: line.key().into_boxed_str(),
            invoice_id: short_hash(&[&line.invoice_id], &[]),
            line_number: line.line_number,
            visit_date: line.visit_date,
            visit_time: line.visit_time.map_or(u32::MAX, |t| t.num_seconds_from_midnight()),
            net_amount_ore: line.net_amount_ore,
            place,
            profession,
            patient,
            contact: short_hash(
                &[&line.patient_pseudonym, &line.provider_org_number, &line.profession_code],
                &[line.visit_date.num_days_from_ce() as u64, time_number(line.visit_time)],
            ),
            profession_group: short_hash(&[&line.patient_pseudonym, &line.profession_code], &[]),
            psychologist: self.settings.psychologist_professions.contains(&line.profession_code),
            judged,
        }
    }

    /// The interned place of `line`.
    fn place(&mut self, line: &EnrichedLine) -> u32 {
        let id = short_hash(
            &[&line.buyer_org_number, &line.provider_org_number, &line.provider_name, &line.performing_unit_hsa_id],
            &[],
        );
        if let Some(&index) = self.place_ids.get(&id) {
            return index;
        }
        self.places.push(Place {
            buyer: line.buyer_org_number.clone(),
            provider_org: line.provider_org_number.clone(),
            provider_name: line.provider_name.clone(),
            unit: line.performing_unit_hsa_id.clone(),
        });
        let index = u32::try_from(self.places.len() - 1).unwrap_or(u32::MAX);
        self.place_ids.insert(id, index);
        index
    }

    /// Adds `slot` to its contact and the contact to its groups.
    fn index(&mut self, slot: u32) {
        let s = &self.seen[slot as usize];
        let (contact, group, patient, psychologist) = (s.contact, s.profession_group, s.patient, s.psychologist);
        self.contacts.entry(contact).or_default().push(slot);
        set_insert(self.by_profession.entry(group).or_default(), contact);
        if psychologist {
            set_insert(self.psychologist.entry(patient).or_default(), contact);
        }
    }

    /// Removes `slot` from its contact, and the contact from its groups when
    /// nothing is left of it.
    fn forget(&mut self, slot: u32) {
        let s = &self.seen[slot as usize];
        let (contact, group, patient) = (s.contact, s.profession_group, s.patient);
        let Some(lines) = self.contacts.get_mut(&contact) else { return };
        lines.retain(|i| *i != slot);
        if lines.is_empty() {
            self.contacts.remove(&contact);
            if let Some(set) = self.by_profession.get_mut(&group) {
                set_remove(set, contact);
            }
            if let Some(set) = self.psychologist.get_mut(&patient) {
                set_remove(set, contact);
            }
        }
    }

    /// The scopes a record is part of.
    fn scopes_of(&self, slot: u32) -> Vec<Scope> {
        let s = &self.seen[slot as usize];
        let mut scopes = vec![Scope::Contact(s.contact), Scope::Profession(s.profession_group)];
        if s.psychologist {
            scopes.push(Scope::Psychologist(s.patient));
        }
        scopes
    }

    /// Judges `scopes` again and returns the changes against what they found
    /// before. `changed` is the record just replaced or added.
    fn judge_again(&mut self, scopes: &BTreeSet<Scope>, changed: u32) -> Vec<Change> {
        let mut before: Vec<String> = Vec::new();
        let mut now: Vec<Finding> = Vec::new();
        for &scope in scopes {
            before.extend(self.found_in.remove(&scope).unwrap_or_default());
            let found = self.judge(scope);
            // Only scopes that found something are kept: most find nothing,
            // and an entry each would cost more than the line itself.
            if !found.is_empty() {
                self.found_in.insert(scope, found.iter().map(|f| f.finding_id.clone()).collect());
            }
            now.extend(found);
        }
        let found_now: BTreeSet<&str> = now.iter().map(|f| f.finding_id.as_str()).collect();
        let mut withdrawn: Vec<Finding> = Vec::new();
        before.sort();
        before.dedup();
        for id in before.iter().filter(|id| !found_now.contains(id.as_str())) {
            if let Some(mut finding) = self.active.remove(id) {
                finding.status = FindingStatus::Withdrawn(self.why_withdrawn(&finding, changed, scopes));
                withdrawn.push(finding);
            }
        }
        let mut changes: Vec<Change> = Vec::new();
        for finding in now {
            let revises = match self.active.get(&finding.finding_id) {
                Some(active) if *active == finding => continue,
                active => active.is_some(),
            };
            self.active.insert(finding.finding_id.clone(), finding.clone());
            changes.push(Change { finding, revises });
        }
        changes.extend(withdrawn.into_iter().map(|finding| Change { finding, revises: false }));
        changes
    }

    /// Why `finding` no longer holds: the line it is about was credited, or
    /// corrected (it is the record just changed), or something else changed
    /// around it (superseded).
    /// The line is looked for in the contacts of the scopes just judged,
    /// where every finding they withdraw was found.
    fn why_withdrawn(&self, finding: &Finding, changed: u32, scopes: &BTreeSet<Scope>) -> Withdrawal {
        let subject = finding.line_keys.first().map(String::as_str);
        let is_subject = |&i: &u32| Some(&*self.seen[i as usize].key) == subject && !self.seen[i as usize].is_credit;
        let contacts = scopes.iter().flat_map(|scope| -> Vec<u64> {
            match scope {
                Scope::Contact(contact) => vec![*contact],
                Scope::Profession(group) => self.by_profession.get(group).into_iter().flatten().copied().collect(),
                Scope::Psychologist(patient) => self.psychologist.get(patient).into_iter().flatten().copied().collect(),
            }
        });
        let slot = contacts.filter_map(|c| self.contacts.get(&c)).flatten().copied().find(is_subject);
        match slot {
            Some(slot) if self.contact_state(self.seen[slot as usize].contact).cancelled.contains(&slot) => {
                Withdrawal::Credited
            }
            Some(slot) if slot == changed => Withdrawal::Corrected,
            _ if Some(&*self.seen[changed as usize].key) == subject => Withdrawal::Corrected,
            _ => Withdrawal::Superseded,
        }
    }

    /// What `scope` finds now, in a stable order.
    fn judge(&self, scope: Scope) -> Vec<Finding> {
        let mut out = Vec::new();
        match scope {
            Scope::Contact(contact) => {
                let state = self.contact_state(contact);
                for &line in &state.live {
                    for (rule, judgement) in &self.seen[line as usize].judged {
                        out.push(self.finding(
                            rule,
                            line,
                            &[],
                            judgement.amount_at_stake.0,
                            judgement.evidence.clone(),
                        ));
                    }
                }
                self.double_invoicing(&state, &mut out);
                self.over_crediting(&state, &mut out);
            }
            Scope::Profession(group) => self.same_day_and_bursts(group, &mut out),
            Scope::Psychologist(patient) => self.psychologist_contacts(patient, &mut out),
        }
        out
    }

    /// The contact's payable lines, cancelled lines and over-credits.
    pub(super) fn contact_state(&self, contact: u64) -> ContactState {
        let mut state = ContactState::default();
        let records = self.contacts.get(&contact).map(|r| r.as_slice()).unwrap_or_default();
        let seen = |i: u32| &self.seen[i as usize];
        let mut lines: Vec<u32> = records.iter().copied().filter(|&i| !seen(i).is_credit).collect();
        lines.sort_by(|&a, &b| seen(a).invoice_order().cmp(&seen(b).invoice_order()));
        let mut credits: Vec<u32> = records.iter().copied().filter(|&i| seen(i).is_credit).collect();
        credits.sort_by(|&a, &b| seen(a).invoice_order().cmp(&seen(b).invoice_order()));
        let invoices: BTreeSet<u64> = credits.iter().map(|&c| seen(c).credits_invoice).collect();
        for invoice in invoices {
            let credited: Vec<u32> = lines.iter().copied().filter(|&l| seen(l).invoice_id == invoice).collect();
            if credited.is_empty() {
                // The credited line is not here (yet): nothing to weigh it against.
                continue;
            }
            let notes: Vec<u32> = credits.iter().copied().filter(|&c| seen(c).credits_invoice == invoice).collect();
            let invoiced: i64 = credited.iter().map(|&l| seen(l).net_amount_ore).sum();
            let credited_ore: i64 = notes.iter().map(|&c| seen(c).net_amount_ore).sum();
            // The credits cancel whole lines in line order, as far as they reach.
            let mut remaining = credited_ore;
            for &line in &credited {
                if remaining < seen(line).net_amount_ore {
                    break;
                }
                remaining -= seen(line).net_amount_ore;
                state.cancelled.push(line);
            }
            if notes.len() > credited.len() || credited_ore > invoiced {
                if let Some(&last) = notes.last() {
                    state.over_credited.push((last, credited, invoiced, credited_ore));
                }
            }
        }
        state.live = lines.into_iter().filter(|l| !state.cancelled.contains(l)).collect();
        state
    }

    /// The contact's representative: its original payable line.
    pub(super) fn representative(&self, contact: u64) -> Option<u32> {
        let records = self.contacts.get(&contact).map(|r| r.as_slice()).unwrap_or_default();
        let seen = |i: u32| &self.seen[i as usize];
        if records.iter().all(|&i| !seen(i).is_credit) {
            // No credit note: every line is payable, the first in invoice order is the original.
            return records.iter().copied().min_by(|&a, &b| seen(a).invoice_order().cmp(&seen(b).invoice_order()));
        }
        self.contact_state(contact).live.first().copied()
    }

    pub(super) fn finding(&self, rule: &Rule, about: u32, related: &[u32], amount: i64, evidence: Evidence) -> Finding {
        let about = &self.seen[about as usize];
        let place = &self.places[about.place as usize];
        let mut line_keys = vec![about.key.to_string()];
        line_keys.extend(related.iter().map(|&i| self.seen[i as usize].key.to_string()));
        Finding {
            finding_id: finding_id(rule.id, &about.key),
            rule_id: rule.id.to_string(),
            severity: rule.severity,
            status: FindingStatus::Active,
            line_keys,
            buyer_org_number: place.buyer.clone(),
            provider_org_number: place.provider_org.clone(),
            provider_name: place.provider_name.clone(),
            performing_unit_hsa_id: place.unit.clone(),
            patient_pseudonym: Some(format!("{:032x}", about.patient)),
            visit_date: about.visit_date,
            amount_at_stake_ore: amount,
            evidence: evidence.text(crate::text::Language::English),
            evidence_data: Some(evidence),
        }
    }

    /// Every payable line of a contact but the original (the earliest by
    /// invoice date, invoice id, line number) is a double.
    fn double_invoicing(&self, state: &ContactState, out: &mut Vec<Finding>) {
        if !self.settings.enabled(&DOUBLE_INVOICING) {
            return;
        }
        if let Some((&first, doubles)) = state.live.split_first() {
            for &double in doubles {
                let d = &self.seen[double as usize];
                let evidence = Evidence::Double {
                    visit_date: d.visit_date,
                    original_line: self.seen[first as usize].key.to_string(),
                };
                out.push(self.finding(&DOUBLE_INVOICING, double, &[first], d.net_amount_ore, evidence));
            }
        }
    }

    /// Credit notes beyond the lines they credit, or for more than those were
    /// invoiced: at stake, what was credited beyond what was invoiced.
    fn over_crediting(&self, state: &ContactState, out: &mut Vec<Finding>) {
        if !self.settings.enabled(&OVER_CREDITED) {
            return;
        }
        for (note, lines, invoiced, credited) in &state.over_credited {
            let notes = self.contacts[&self.seen[*note as usize].contact]
                .iter()
                .filter(|&&c| {
                    let s = &self.seen[c as usize];
                    s.is_credit && s.credits_invoice == self.seen[*note as usize].credits_invoice
                })
                .count();
            let evidence = Evidence::OverCredited {
                credit_notes: notes,
                lines: lines.len(),
                invoice_id: self.seen[lines[0] as usize].invoice_id_text().to_string(),
                credited_ore: *credited,
                invoiced_ore: *invoiced,
            };
            out.push(self.finding(&OVER_CREDITED, *note, lines, (credited - invoiced).max(0), evidence));
        }
    }
}
