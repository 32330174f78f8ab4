//! The home regions the generator knows, and their synthetic patients:
//! a region's municipalities and yearly volume, a Luhn-valid organisation
//! number, and patients drawn by age group and sex with Luhn-valid
//! personnummer. Shared by the line generator and the listing register.

use chrono::{Datelike, Days, NaiveDate};
use distans_domain::codes::luhn_check_digit;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A home region the generator knows.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub county_code: &'static str,
    pub name: &'static str,
    /// Invoiced contacts in a year (seed figures where the papers give them).
    pub yearly_lines: usize,
    pub municipalities: &'static [&'static str],
    /// The region's share of the two serial digits of its patients'
    /// personnummer, from the first up to the second (before 1990 these
    /// digits told the county of birth): no two regions' shares overlap, so
    /// two regions' generated years share no patient.
    pub serials: (u32, u32),
}

/// Jämtland Härjedalen, Norrbotten and Västmanland.
pub const REGIONS: [Region; 3] = [
    Region {
        county_code: "23",
        name: "Region Jämtland Härjedalen",
        yearly_lines: 23_000,
        municipalities: &["2303", "2305", "2309", "2313", "2321", "2326", "2361", "2380"],
        serials: (0, 33),
    },
    Region {
        county_code: "25",
        name: "Region Norrbotten",
        yearly_lines: 25_812,
        municipalities: &[
            "2505", "2506", "2510", "2513", "2514", "2518", "2521", "2523", "2560", "2580", "2581", "2582", "2583",
            "2584",
        ],
        serials: (33, 66),
    },
    Region {
        county_code: "19",
        name: "Region Västmanland",
        yearly_lines: 20_000,
        municipalities: &["1904", "1907", "1960", "1961", "1962", "1980", "1981", "1982", "1983", "1984"],
        serials: (66, 99),
    },
];

/// The region with this SCB county code (e.g. "23"), if the generator knows it.
pub fn region(county_code: &str) -> Option<Region> {
    REGIONS.iter().copied().find(|r| r.county_code == county_code)
}

/// A synthetic, Luhn-valid organisation number for a region: `2321000` +
/// county code + check digit.
pub fn region_org_number(county_code: &str) -> String {
    let body = format!("2321000{county_code}");
    format!("{body}{}", luhn_check_digit(&body))
}

/// Age groups by Norrbotten's 2020 table (contacts per group), as
/// (lowest age, highest age, weight).
const AGE_GROUPS: [(u32, u32, f64); 7] = [
    (0, 6, 1597.0),
    (7, 18, 3245.0),
    (19, 39, 12927.0),
    (40, 64, 6764.0),
    (65, 74, 1050.0),
    (75, 84, 214.0),
    (85, 99, 15.0),
];

/// Women use the services about twice as often as men (seed 001).
const FEMALE_SHARE: f64 = 0.65;

/// A synthetic patient: personnummer (or samordningsnummer) in clear text,
/// birth date, home municipality (SCB code) and sex.
pub(crate) struct Patient {
    pub(crate) id: String,
    pub(crate) birth: NaiveDate,
    pub(crate) municipality: &'static str,
    pub(crate) female: bool,
}

/// One of `items`, drawn with probability proportional to its weight.
pub(crate) fn pick_weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, weight) in items {
        if x < *weight {
            return item;
        }
        x -= weight;
    }
    &items[items.len() - 1].0
}

fn personnummer(rng: &mut ChaCha8Rng, region: &Region, birth: NaiveDate, female: bool, samordning: bool) -> String {
    let day = birth.day() + if samordning { 60 } else { 0 };
    let serial = rng.random_range(region.serials.0..region.serials.1);
    let sex_digit = {
        let d = rng.random_range(0..5u32) * 2;
        if female {
            d
        } else {
            d + 1
        }
    };
    let body = format!("{:02}{:02}{:02}{:02}{}", birth.year() % 100, birth.month(), day, serial, sex_digit);
    format!("{}{body}{}", birth.year() / 100, luhn_check_digit(&body))
}

pub(crate) fn new_patient(rng: &mut ChaCha8Rng, region: &Region, year: i32) -> Patient {
    let groups: Vec<((u32, u32), f64)> = AGE_GROUPS.iter().map(|(lo, hi, w)| ((*lo, *hi), *w)).collect();
    let (lo, hi) = *pick_weighted(rng, &groups);
    let age = rng.random_range(lo..=hi);
    // Born before the year starts, so that no visit precedes the birth.
    let new_year = NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January exists");
    let birth = new_year
        .checked_sub_days(Days::new(u64::from(age) * 365 + rng.random_range(1..365u64)))
        .expect("a birth date after year 0");
    let female = rng.random_bool(FEMALE_SHARE);
    let samordning = rng.random_bool(0.01);
    Patient {
        id: personnummer(rng, region, birth, female, samordning),
        birth,
        municipality: region.municipalities[rng.random_range(0..region.municipalities.len())],
        female,
    }
}
