//! The catalogue: every monitoring rule once, with its id, severity, RIV
//! credit reason, explanations and how it is judged.
//!
//! A line rule, decided by one line alone, is one entry here: its metadata,
//! its function and examples of lines it flags and lines it does not. The
//! engine runs every line rule of [`RULES`] and the tests check every
//! example, so adding a line rule is adding its entry (and its name to
//! [`RULES`]) and documenting it; nothing else changes.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{Evidence, RuleSettings};
use crate::money::Ore;
use crate::text::Bilingual;
use crate::EnrichedLine;

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

/// A line rule's verdict on a line it flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// What the region may dispute.
    pub amount_at_stake: Ore,
    /// Why, with the figures; its English text is "unit price 650 kr,
    /// tariff 500 kr for physician on 2025-02-14".
    pub evidence: Evidence,
}

/// A line rule: `Some` when the line is flagged, given the rules' settings.
pub type LineRule = fn(&EnrichedLine, &RuleSettings) -> Option<Judgement>;

/// A line a line rule flags or does not: a change to the clean line of the
/// rules' tests, judged with the tests' settings.
///
/// The clean line: a physician (`LK`, tariff class physician) video contact
/// on 2025-02-14 at 10:00, invoiced 2025-03-10 by provider 5591000010 to
/// region 2321000230 (county 23), patient of county 23, agreement chapter
/// 4 point 4.1, product category 04, one unit at the tariff of 500 kr,
/// procedure ZV051, needs assessment made. The settings are
/// `defaults.toml`'s with needs assessments required from 2025-10-01,
/// physical procedures AA039 and AD041, and region 2321000230 at home in
/// county 23.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// What the example shows, for test failures.
    pub case: &'static str,
    pub change: fn(&mut EnrichedLine),
    /// Whether the rule flags the changed line.
    pub fires: bool,
}

/// How a rule is judged.
#[derive(Debug, Clone, Copy)]
pub enum Judged {
    /// On each line alone by `judge`; `examples` show where its boundaries are.
    Line { judge: LineRule, examples: &'static [Example] },
    /// By [`RuleEngine`](super::RuleEngine) over the lines seen so far
    /// (contacts invoiced twice, contacts in a window of days).
    Stateful,
    /// In ClickHouse over the monthly aggregates and the listing register,
    /// published by the detector's review (`distans_detector::review`).
    InClickHouse,
}

/// A rule's identity, its explanation for monitoring staff and how it is judged.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable: stored in findings, `anomalies` and `detector.rules.disabled`.
    pub id: &'static str,
    pub severity: Severity,
    /// The RIV credit reason it corresponds to, if any (1–9).
    pub riv_reason: Option<u8>,
    /// Its name in a few words, for headings and alert titles: "Fel pris",
    /// "Wrong price".
    pub name: Bilingual,
    /// What it means, in a sentence or two.
    pub meaning: Bilingual,
    pub judged: Judged,
}

/// Rules are the same rule when their ids are.
impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.id == other.id
    }
}

impl Eq for Rule {}

impl Rule {
    /// The rule with this id, if there is one.
    pub fn by_id(id: &str) -> Option<&'static Rule> {
        RULES.iter().copied().find(|rule| rule.id == id)
    }
}

/// Every rule, in the order the engine reports a line's findings.
pub static RULES: &[&Rule] = &[
    &WRONG_PRICE,
    &WRONG_PRODUCT,
    &NO_REFERRAL,
    &LATE_INVOICE,
    &DOUBLE_INVOICING,
    &NON_BILLABLE,
    &NOT_RESIDENT,
    &PHYSICAL_PROCEDURE,
    &EXCESSIVE_PSYCHOLOGIST,
    &SAME_DAY_REPEAT,
    &CONTACT_BURST,
    &MISSING_NEEDS_ASSESSMENT,
    &PROVIDER_FAR_FROM_PEERS,
    &LISTED_AT_SAME_GROUP,
    &OVER_CREDITED,
];

/// A date in an example; the literals are valid dates.
fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// For [`MISSING_NEEDS_ASSESSMENT`]'s examples: the line visited on `visit`
/// (around the rule's test start, 2025-10-01), invoiced on 2025-10-10, with
/// `needs_assessment`.
fn assessed(line: &mut EnrichedLine, visit: NaiveDate, needs_assessment: Option<bool>) {
    line.visit_date = visit;
    line.invoice_date = day(2025, 10, 10);
    line.needs_assessment = needs_assessment;
}

/// A line rule's judgement for the line's whole net amount.
fn net(line: &EnrichedLine, evidence: Evidence) -> Option<Judgement> {
    Some(Judgement { amount_at_stake: Ore(line.net_amount_ore), evidence })
}

/// RIV credit reason 2. At stake: what the unit price exceeds the tariff by,
/// times the quantity (nothing when it is below).
pub static WRONG_PRICE: Rule = Rule {
    id: "wrong_price",
    name: Bilingual { sv: "Fel pris", en: "Wrong price" },
    severity: Severity::Medium,
    riv_reason: Some(2),
    meaning: Bilingual {
        sv: "Styckpriset avviker från taxan för yrkesgruppen på besöksdagen.",
        en: "The unit price differs from the tariff for the profession on the visit date.",
    },
    judged: Judged::Line {
        judge: |line, _| {
            let tariff = line.tariff_ore?;
            if line.unit_price_ore == tariff {
                return None;
            }
            let over = (line.unit_price_ore - tariff).max(0).saturating_mul(i64::from(line.quantity));
            let evidence = Evidence::WrongPrice {
                unit_price_ore: line.unit_price_ore,
                tariff_ore: tariff,
                tariff_class: line.tariff_class,
                visit_date: line.visit_date,
            };
            Some(Judgement { amount_at_stake: Ore(over), evidence })
        },
        examples: &[
            Example { case: "one öre above the tariff", change: |l| l.unit_price_ore = 50_001, fires: true },
            Example { case: "one öre below the tariff", change: |l| l.unit_price_ore = 49_999, fires: true },
            Example { case: "no tariff known", change: |l| l.tariff_ore = None, fires: false },
            Example { case: "at the tariff", change: |_| {}, fires: false },
        ],
    },
};

/// RIV credit reason 3. Contact fees are `contact_product_categories`.
pub static WRONG_PRODUCT: Rule = Rule {
    id: "wrong_product",
    name: Bilingual { sv: "Fel produktkategori", en: "Wrong product category" },
    severity: Severity::Medium,
    riv_reason: Some(3),
    meaning: Bilingual {
        sv: "Produktkategorin är inte den kontaktavgift som digitala vårdkontakter faktureras med.",
        en: "The product category is not the contact fee that digital care is invoiced with.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            if s.contact_product_categories.contains(&line.product_category) {
                return None;
            }
            let evidence = Evidence::WrongProduct {
                product_category: line.product_category.clone(),
                expected: s.contact_product_categories.clone(),
            };
            net(line, evidence)
        },
        examples: &[
            Example { case: "another product", change: |l| l.product_category = "05".into(), fires: true },
            Example { case: "the contact fee", change: |_| {}, fires: false },
        ],
    },
};

/// RIV credit reason 5. Chapters needing a referral are `referral_required_chapters`.
pub static NO_REFERRAL: Rule = Rule {
    id: "no_referral",
    name: Bilingual { sv: "Remiss saknas", en: "Referral missing" },
    severity: Severity::Medium,
    riv_reason: Some(5),
    meaning: Bilingual {
        sv: "Avtalspunkten kräver remiss, men raden saknar remissnummer.",
        en: "The agreement point requires a referral, but the line has no referral number.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            if !s.referral_required_chapters.contains(&line.agreement_chapter) || line.remittance_number.is_some() {
                return None;
            }
            let evidence = Evidence::NoReferral {
                agreement_chapter: line.agreement_chapter.clone(),
                agreement_point: line.agreement_point.clone(),
            };
            net(line, evidence)
        },
        examples: &[
            Example { case: "chapter 5 without a referral", change: |l| l.agreement_chapter = "5".into(), fires: true },
            Example {
                case: "chapter 5 with a referral",
                change: |l| {
                    l.agreement_chapter = "5".into();
                    l.remittance_number = Some("R1".into());
                },
                fires: false,
            },
        ],
    },
};

/// RIV credit reason 6: invoiced more than `late_invoice_months` after the visit.
pub static LATE_INVOICE: Rule = Rule {
    id: "late_invoice",
    name: Bilingual { sv: "Sen faktura", en: "Late invoice" },
    severity: Severity::Medium,
    riv_reason: Some(6),
    meaning: Bilingual {
        sv: "Fakturerad mer än sex månader efter att vården gavs.",
        en: "Invoiced more than six months after the care was given.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            let deadline = line.visit_date.checked_add_months(Months::new(s.late_invoice_months))?;
            if line.invoice_date <= deadline {
                return None;
            }
            let days = (line.invoice_date - line.visit_date).num_days();
            let evidence = Evidence::LateInvoice {
                invoice_date: line.invoice_date,
                invoice_id: line.invoice_id.clone(),
                days,
                limit_months: s.late_invoice_months,
            };
            net(line, evidence)
        },
        examples: &[
            Example { case: "a day after six months", change: |l| l.invoice_date = day(2025, 8, 15), fires: true },
            Example { case: "exactly six months", change: |l| l.invoice_date = day(2025, 8, 14), fires: false },
        ],
    },
};

/// RIV credit reason 7. Judged over the contacts seen: every uncancelled
/// invoice line of a contact but the first is a double.
pub static DOUBLE_INVOICING: Rule = Rule {
    id: "double_invoicing",
    name: Bilingual { sv: "Dubbelfakturering", en: "Invoiced twice" },
    severity: Severity::High,
    riv_reason: Some(7),
    meaning: Bilingual {
        sv: "Samma kontakt (patient, vårdgivare, yrkesgrupp, datum och tid) är fakturerad på mer än en rad som ingen kreditnota tar bort.",
        en: "The same contact (patient, provider, profession, date and time) is invoiced on more than one line that no credit note cancels.",
    },
    judged: Judged::Stateful,
};

/// RIV credit reason 9. Channels that are not billable are `non_billable_channels`.
pub static NON_BILLABLE: Rule = Rule {
    id: "non_billable_contact",
    name: Bilingual { sv: "Ej ersättningsberättigad kontakt", en: "Contact not billable" },
    severity: Severity::Medium,
    riv_reason: Some(9),
    meaning: Bilingual {
        sv: "Kontakten är av ett slag som inte är ersättningsberättigat (t.ex. telefonrådgivning).",
        en: "The contact was of a kind that is not billable (e.g. phone advice).",
    },
    judged: Judged::Line {
        judge: |line, s| {
            let channel = line.contact_channel.as_ref().filter(|c| s.non_billable_channels.contains(c))?;
            net(line, Evidence::NonBillable { contact_channel: channel.clone() })
        },
        examples: &[
            Example { case: "a phone contact", change: |l| l.contact_channel = Some("phone".into()), fires: true },
            Example { case: "no channel given", change: |l| l.contact_channel = None, fires: false },
        ],
    },
};

/// RIV credit reason 1. Only for buyers in `home_regions`, whose county is known.
pub static NOT_RESIDENT: Rule = Rule {
    id: "patient_not_resident",
    name: Bilingual { sv: "Patienten är inte folkbokförd i regionen", en: "Patient not resident in the region" },
    severity: Severity::High,
    riv_reason: Some(1),
    meaning: Bilingual {
        sv: "Patientens län är inte länet för den fakturerade regionen.",
        en: "The patient's county is not the county of the region invoiced.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            let home = s.home_regions.get(&line.buyer_org_number)?;
            if *home == line.patient_county_code {
                return None;
            }
            let evidence = Evidence::NotResident {
                patient_county: line.patient_county_code.clone(),
                invoiced_county: home.clone(),
            };
            net(line, evidence)
        },
        examples: &[
            Example {
                case: "a patient of another county",
                change: |l| l.patient_county_code = "25".into(),
                fires: true,
            },
            Example {
                case: "a buyer whose county is not configured",
                change: |l| {
                    l.patient_county_code = "25".into();
                    l.buyer_org_number = "2321000999".into();
                },
                fires: false,
            },
        ],
    },
};

/// No RIV reason. Procedures needing a physical meeting are `physical_procedures` (KVÅ).
pub static PHYSICAL_PROCEDURE: Rule = Rule {
    id: "physical_procedure",
    name: Bilingual { sv: "Åtgärd som kräver fysiskt besök", en: "Procedure that needs a physical visit" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "En åtgärd som kräver fysiskt möte är fakturerad som digital kontakt.",
        en: "A procedure that needs a physical meeting is invoiced as a digital contact.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            let procedures: Vec<String> =
                line.procedure_codes.iter().filter(|c| s.physical_procedures.contains(c)).cloned().collect();
            if procedures.is_empty() {
                return None;
            }
            net(line, Evidence::PhysicalProcedure { procedures })
        },
        examples: &[
            Example {
                case: "a neurological examination",
                change: |l| l.procedure_codes.push("AA039".into()),
                fires: true,
            },
            Example { case: "a digital procedure", change: |_| {}, fires: false },
        ],
    },
};

/// Judged over each patient's psychologist and psychotherapist contacts
/// (`psychologist_professions`): more than `psychologist_limit` within
/// `psychologist_window_days` days.
pub static EXCESSIVE_PSYCHOLOGIST: Rule = Rule {
    id: "excessive_psychologist_contacts",
    name: Bilingual { sv: "Många psykologkontakter", en: "Many psychologist contacts" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Fler psykolog- eller psykoterapeutkontakter för en patient inom perioden än gränsen.",
        en: "More psychologist or psychotherapist contacts for one patient within the window than the limit.",
    },
    judged: Judged::Stateful,
};

/// Judged over each patient's contacts per profession: more than `same_day_limit` on one day.
pub static SAME_DAY_REPEAT: Rule = Rule {
    id: "same_day_repeat",
    name: Bilingual { sv: "Upprepade kontakter samma dag", en: "Repeated contacts on one day" },
    severity: Severity::Low,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Fler kontakter med en yrkesgrupp samma dag för en patient än gränsen.",
        en: "More contacts with one profession on the same day for one patient than the limit.",
    },
    judged: Judged::Stateful,
};

/// Judged over each patient's contacts per profession: more than
/// `burst_limit` within `burst_window_days` days.
pub static CONTACT_BURST: Rule = Rule {
    id: "contact_burst",
    name: Bilingual { sv: "Många kontakter på kort tid", en: "Many contacts in a few days" },
    severity: Severity::Low,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Fler kontakter med en yrkesgrupp för en patient inom några dagar än gränsen.",
        en: "More contacts with one profession for one patient within a few days than the limit.",
    },
    judged: Judged::Stateful,
};

/// Ds 2023:27, for visits from `needs_assessment_from`. A line that does not
/// say whether an assessment was made is not flagged.
pub static MISSING_NEEDS_ASSESSMENT: Rule = Rule {
    id: "missing_needs_assessment",
    name: Bilingual { sv: "Behovsbedömning saknas", en: "Needs assessment missing" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Distanskontakten föregicks inte av en behovs- och lämplighetsbedömning (Ds 2023:27), efter det datum regeln gäller från.",
        en: "The distance contact was not preceded by a needs and suitability assessment (Ds 2023:27), after the date the rule applies from.",
    },
    judged: Judged::Line {
        judge: |line, s| {
            let applies = s.needs_assessment_from.is_some_and(|from| line.visit_date >= from);
            if !applies || line.needs_assessment != Some(false) {
                return None;
            }
            net(line, Evidence::NoNeedsAssessment { visit_date: line.visit_date })
        },
        examples: &[
            Example {
                case: "no assessment on the day the rule applies from",
                change: |l| assessed(l, day(2025, 10, 1), Some(false)),
                fires: true,
            },
            Example {
                case: "no assessment the day before",
                change: |l| assessed(l, day(2025, 9, 30), Some(false)),
                fires: false,
            },
            Example { case: "not said whether assessed", change: |l| assessed(l, day(2025, 10, 1), None), fires: false },
        ],
    },
};

/// Judged in ClickHouse over the aggregates by the view `report_provider_peers`,
/// published by the detector's review (see `distans_detector::review`).
pub static PROVIDER_FAR_FROM_PEERS: Rule = Rule {
    id: "provider_far_from_peers",
    name: Bilingual { sv: "Vårdgivare som avviker från jämförbara", en: "Provider far from its peers" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Vårdgivarens kontakter per patient eller andel återbesök den månaden ligger långt över andra vårdgivares inom samma yrkesgrupp (median och MAD).",
        en: "The provider's contacts per patient or share of repeat contacts that month are far above those of other providers of the same profession (median and MAD).",
    },
    judged: Judged::InClickHouse,
};

/// Judged in ClickHouse with the listing register by the view
/// `report_same_group_listing`; see [`PROVIDER_FAR_FROM_PEERS`].
pub static LISTED_AT_SAME_GROUP: Rule = Rule {
    id: "listed_at_same_group",
    name: Bilingual { sv: "Listad i vårdgivarens egen koncern", en: "Listed within the provider's own group" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Patienter listade på en vårdcentral i vårdgivarens egen koncern har fakturerats för digitala kontakter via en annan region.",
        en: "Patients listed at a health centre of the provider's own group were invoiced digitally via another region.",
    },
    judged: Judged::InClickHouse,
};

/// Credit notes that credit a contact's line on an invoice more than once, or
/// for more than it was invoiced: the region got back more than it paid, so
/// its books no longer match the seller's. At stake: what was credited beyond
/// what was invoiced.
pub static OVER_CREDITED: Rule = Rule {
    id: "over_credited",
    name: Bilingual { sv: "Överkrediterad rad", en: "Credited more than invoiced" },
    severity: Severity::Medium,
    riv_reason: None,
    meaning: Bilingual {
        sv: "Kreditnotor krediterar en rad mer än en gång, eller med mer än vad som fakturerades: regionens bokföring stämmer inte längre med säljarens.",
        en: "Credit notes credit a line more than once, or for more than it was invoiced: the region's books no longer match the seller's.",
    },
    judged: Judged::Stateful,
};
