//! The stateful rules that count a patient's contacts within a window of
//! days: `same_day_repeat` and `contact_burst` (per profession) and
//! `excessive_psychologist_contacts` (psychologists and psychotherapists).
//! A contact counts once, by its original payable line; a contact whose
//! lines are all cancelled does not count. The contacts of a group are
//! sorted by visit; a contact's rank in the window ending at its visit date
//! decides whether it is over the limit, so an early visit that arrives late
//! can push later contacts over it.

use super::engine::{ContactSet, RuleEngine};
use super::{Evidence, Finding, CONTACT_BURST, EXCESSIVE_PSYCHOLOGIST, SAME_DAY_REPEAT};

impl RuleEngine {
    /// The representatives of `contacts`, sorted by visit.
    fn by_visit(&self, contacts: Option<&ContactSet>) -> Vec<u32> {
        let mut lines: Vec<u32> =
            contacts.into_iter().flatten().filter_map(|&contact| self.representative(contact)).collect();
        lines.sort_by(|&a, &b| self.seen[a as usize].visit_order().cmp(&self.seen[b as usize].visit_order()));
        lines
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

    pub(super) fn psychologist_contacts(&self, patient: u128, out: &mut Vec<Finding>) {
        if !self.settings.enabled(&EXCESSIVE_PSYCHOLOGIST) {
            return;
        }
        let window = i64::from(self.settings.psychologist_window_days);
        let limit = self.settings.psychologist_limit;
        let group = self.by_visit(self.psychologist.get(&patient));
        for (contact, rank) in self.ranks_in_window(&group, window) {
            if rank > limit {
                let evidence = Evidence::PsychologistContacts { rank, window_days: window, limit };
                let amount = self.seen[contact as usize].net_amount_ore;
                out.push(self.finding(&EXCESSIVE_PSYCHOLOGIST, contact, &[], amount, evidence));
            }
        }
    }

    pub(super) fn same_day_and_bursts(&self, group: u64, out: &mut Vec<Finding>) {
        let s = &self.settings;
        let contacts = self.by_visit(self.by_profession.get(&group));
        for (rule, window, limit) in
            [(&SAME_DAY_REPEAT, 1, s.same_day_limit), (&CONTACT_BURST, i64::from(s.burst_window_days), s.burst_limit)]
        {
            if !self.settings.enabled(rule) {
                continue;
            }
            for (contact, rank) in self.ranks_in_window(&contacts, window) {
                if rank > limit {
                    let c = &self.seen[contact as usize];
                    let profession = &self.professions[c.profession as usize];
                    let (profession, visit_date) = (profession.to_string(), c.visit_date);
                    let evidence = if window == 1 {
                        Evidence::SameDay { rank, profession, visit_date, limit }
                    } else {
                        Evidence::Burst { rank, profession, window_days: window, visit_date, limit }
                    };
                    out.push(self.finding(rule, contact, &[], c.net_amount_ore, evidence));
                }
            }
        }
    }
}
