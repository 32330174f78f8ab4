//! Tariffs: the price per contact by profession class, with validity dates.
//! Tariffs are data (from config), never constants in code.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The classes of SKR's recommended price list for digital care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TariffClass {
    /// Physician (läkare).
    Physician,
    /// Psychologist, psychotherapist, counsellor (kurator).
    Psychologist,
    /// Other licensed staff: nurse, physiotherapist, midwife, …
    OtherLicensed,
}

impl TariffClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TariffClass::Physician => "physician",
            TariffClass::Psychologist => "psychologist",
            TariffClass::OtherLicensed => "other_licensed",
        }
    }

    pub fn parse(s: &str) -> Option<TariffClass> {
        match s {
            "physician" => Some(TariffClass::Physician),
            "psychologist" => Some(TariffClass::Psychologist),
            "other_licensed" => Some(TariffClass::OtherLicensed),
            _ => None,
        }
    }
}

/// One price, valid from `valid_from` up to and including `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffEntry {
    pub class: TariffClass,
    pub valid_from: NaiveDate,
    #[serde(default)]
    pub valid_to: Option<NaiveDate>,
    /// Price per contact including the patient fee, öre.
    pub amount_ore: i64,
}

/// The tariff table and the mapping from RIV profession code to class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariffs {
    pub entries: Vec<TariffEntry>,
    /// Profession code → tariff class. A code absent here is unknown.
    pub professions: BTreeMap<String, TariffClass>,
}

impl Tariffs {
    pub fn class_of(&self, profession_code: &str) -> Option<TariffClass> {
        self.professions.get(profession_code).copied()
    }

    /// The price of a contact of `class` on `date`; `None` when no entry
    /// covers that date.
    pub fn price(&self, class: TariffClass, date: NaiveDate) -> Option<i64> {
        self.entries
            .iter()
            .filter(|e| e.class == class && e.valid_from <= date && e.valid_to.is_none_or(|to| date <= to))
            .max_by_key(|e| e.valid_from)
            .map(|e| e.amount_ore)
    }

    /// Problems with the table itself: overlapping periods of one class,
    /// a period that ends before it starts, a non-positive price.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, a) in self.entries.iter().enumerate() {
            if a.amount_ore <= 0 {
                problems.push(format!("tariff entry {i} ({}) has a non-positive amount", a.class.as_str()));
            }
            if a.valid_to.is_some_and(|to| to < a.valid_from) {
                problems.push(format!("tariff entry {i} ({}) ends before it starts", a.class.as_str()));
            }
            for (j, b) in self.entries.iter().enumerate().skip(i + 1) {
                let overlap = a.class == b.class
                    && a.valid_to.is_none_or(|to| b.valid_from <= to)
                    && b.valid_to.is_none_or(|to| a.valid_from <= to);
                if overlap {
                    problems.push(format!("tariff entries {i} and {j} ({}) overlap", a.class.as_str()));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("valid date")
    }

    fn tariffs() -> Tariffs {
        Tariffs {
            entries: vec![
                TariffEntry {
                    class: TariffClass::Physician,
                    valid_from: date("2017-01-01"),
                    valid_to: Some(date("2019-06-30")),
                    amount_ore: 65_000,
                },
                TariffEntry {
                    class: TariffClass::Physician,
                    valid_from: date("2019-07-01"),
                    valid_to: None,
                    amount_ore: 50_000,
                },
                TariffEntry {
                    class: TariffClass::Psychologist,
                    valid_from: date("2019-07-01"),
                    valid_to: None,
                    amount_ore: 42_500,
                },
            ],
            professions: [("LK".to_string(), TariffClass::Physician), ("PS".to_string(), TariffClass::Psychologist)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn price_by_date() {
        let t = tariffs();
        let cases = [
            (TariffClass::Physician, "2016-12-31", None),
            (TariffClass::Physician, "2017-01-01", Some(65_000)),
            (TariffClass::Physician, "2019-06-30", Some(65_000)),
            (TariffClass::Physician, "2019-07-01", Some(50_000)),
            (TariffClass::Psychologist, "2025-03-01", Some(42_500)),
            (TariffClass::OtherLicensed, "2025-03-01", None),
        ];
        for (class, on, expected) in cases {
            assert_eq!(t.price(class, date(on)), expected, "{class:?} {on}");
        }
        assert_eq!(t.class_of("LK"), Some(TariffClass::Physician));
        assert_eq!(t.class_of("XX"), None);
        assert!(t.problems().is_empty());
    }

    #[test]
    fn problems_are_all_reported() {
        let mut t = tariffs();
        t.entries.push(TariffEntry {
            class: TariffClass::Physician,
            valid_from: date("2018-01-01"),
            valid_to: Some(date("2018-12-31")),
            amount_ore: 0,
        });
        t.entries.push(TariffEntry {
            class: TariffClass::OtherLicensed,
            valid_from: date("2020-01-01"),
            valid_to: Some(date("2019-01-01")),
            amount_ore: 27_500,
        });
        let problems = t.problems();
        assert_eq!(problems.len(), 3, "{problems:?}"); // zero amount, overlap with 2017, reversed period
    }
}
