//! Amounts of money in öre, and how every output writes them.
//!
//! [`Ore`] holds a signed whole number of öre (1 kr = 100 öre), the unit of
//! every amount on an invoice line. Arithmetic is exact integer arithmetic;
//! the operators behave as on `i64` (an overflow panics in debug builds), and
//! [`Ore::checked_add`], [`Ore::checked_sub`] and [`Ore::checked_mul`] return
//! `None` instead where figures come from outside and may be extreme.
//!
//! **One rounding rule.** Whole kronor are rounded half away from zero:
//! 50 öre → 1 kr, 49 öre → 0 kr, −50 öre → −1 kr, −49 öre → 0 kr. The result
//! is always within 50 öre of the exact amount. SQL that reports kronor must
//! round the same way: `intDiv(x + if(x < 0, -50, 50), 100)` (integer
//! division truncates toward zero).
//!
//! **Swedish formatting.** Digits are grouped by three with a regular space
//! (U+0020, not a no-break space, so text stays plain ASCII around digits and
//! terminals and JSON show it as is), the decimal separator is a comma, and the
//! minus sign (ASCII `-`) is kept for every negative amount, also between −1
//! and −99 öre:
//!
//! | öre          | [`Display`](std::fmt::Display) | [`Ore::whole_kronor`] | [`Ore::whole_kronor_number`] |
//! |--------------|--------------------------------|-----------------------|------------------------------|
//! | `123_450`    | `1 234,50 kr`                  | `1 235 kr`            | `1 235`                      |
//! | `65_000`     | `650 kr`                       | `650 kr`              | `650`                        |
//! | `-50`        | `-0,50 kr`                     | `-1 kr`               | `-1`                         |
//!
//! The exact form leaves out `,00` when the amount is whole kronor.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in öre (1/100 kr), signed: credit notes are negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ore(pub i64);

impl Ore {
    pub const ZERO: Ore = Ore(0);

    /// Whole kronor, rounded half away from zero (see the module docs).
    pub fn kronor_rounded(self) -> i64 {
        let (kronor, ore) = (self.0 / 100, self.0 % 100);
        if ore >= 50 {
            kronor + 1
        } else if ore <= -50 {
            kronor - 1
        } else {
            kronor
        }
    }

    /// Rounded to whole kronor, grouped, with the unit: `1 235 kr`. For reports.
    pub fn whole_kronor(self) -> String {
        format!("{} kr", self.whole_kronor_number())
    }

    /// Rounded to whole kronor and grouped, without the unit: `1 235`. For
    /// table cells whose header names the unit.
    pub fn whole_kronor_number(self) -> String {
        group_thousands(self.kronor_rounded())
    }

    pub fn checked_add(self, other: Ore) -> Option<Ore> {
        self.0.checked_add(other.0).map(Ore)
    }

    pub fn checked_sub(self, other: Ore) -> Option<Ore> {
        self.0.checked_sub(other.0).map(Ore)
    }

    /// The amount `times` times (a unit price times a quantity); `None` on overflow.
    pub fn checked_mul(self, times: i64) -> Option<Ore> {
        self.0.checked_mul(times).map(Ore)
    }
}

/// `n` with its digits grouped by three with a space, minus sign kept:
/// `-1 234 568`, `2 275` (four digits are grouped too, so that figures in a
/// column line up).
pub fn group_thousands(n: i64) -> String {
    let digits = group_digits(&n.unsigned_abs().to_string());
    if n < 0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// A run of digits grouped by three from the right with a space: `1234567`
/// → `1 234 567`. Amounts ([`group_thousands`]) and the reports' figures
/// are grouped this way, so one report never shows `2275` beside `2 275`.
pub fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The exact amount: `1 234,50 kr`, `650 kr`, `-0,50 kr` (see the module docs).
impl fmt::Display for Ore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let kronor = group_thousands(i64::try_from(abs / 100).unwrap_or(i64::MAX));
        match abs % 100 {
            0 => write!(f, "{sign}{kronor} kr"),
            ore => write!(f, "{sign}{kronor},{ore:02} kr"),
        }
    }
}

/// Why a text is not an amount as [`Ore`]'s `Display` writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseOreError {
    #[error("an amount ends with \" kr\": {0:?}")]
    NoUnit(String),
    #[error("the kronor of an amount are digits grouped by three with spaces: {0:?}")]
    BadKronor(String),
    #[error("the öre of an amount are two digits after a comma, not 00: {0:?}")]
    BadOre(String),
    #[error("the amount is too large for öre in 64 bits: {0:?}")]
    TooLarge(String),
}

/// Reads the exact form back: `"-1 234,50 kr"` → `Ore(-123_450)`.
///
/// # Errors
/// A [`ParseOreError`] for any text `Display` would not write.
impl FromStr for Ore {
    type Err = ParseOreError;

    fn from_str(text: &str) -> Result<Ore, ParseOreError> {
        let amount = text.strip_suffix(" kr").ok_or_else(|| ParseOreError::NoUnit(text.to_string()))?;
        let (negative, amount) = amount.strip_prefix('-').map_or((false, amount), |rest| (true, rest));
        let (kronor, ore) = amount.split_once(',').map_or((amount, None), |(k, o)| (k, Some(o)));
        let groups: Vec<&str> = kronor.split(' ').collect();
        let well_grouped = groups.iter().enumerate().all(|(i, g)| {
            let size_ok = if i == 0 { (1..=3).contains(&g.len()) } else { g.len() == 3 };
            size_ok && g.bytes().all(|b| b.is_ascii_digit())
        }) && (groups[0] != "0" || groups.len() == 1)
            && !(groups[0].starts_with('0') && groups[0].len() > 1);
        if !well_grouped {
            return Err(ParseOreError::BadKronor(text.to_string()));
        }
        let kronor: u128 = groups.concat().parse().map_err(|_| ParseOreError::BadKronor(text.to_string()))?;
        let ore: u128 = match ore {
            None => 0,
            Some(o) if o.len() == 2 && o.bytes().all(|b| b.is_ascii_digit()) && o != "00" => {
                o.parse().map_err(|_| ParseOreError::BadOre(text.to_string()))?
            }
            Some(_) => return Err(ParseOreError::BadOre(text.to_string())),
        };
        if negative && kronor == 0 && ore == 0 {
            return Err(ParseOreError::BadKronor(text.to_string()));
        }
        let too_large = || ParseOreError::TooLarge(text.to_string());
        let magnitude = kronor.checked_mul(100).and_then(|k| k.checked_add(ore)).ok_or_else(too_large)?;
        let magnitude = i128::try_from(magnitude).map_err(|_| too_large())?;
        i64::try_from(if negative { -magnitude } else { magnitude }).map(Ore).map_err(|_| too_large())
    }
}

impl Add for Ore {
    type Output = Ore;
    fn add(self, other: Ore) -> Ore {
        Ore(self.0 + other.0)
    }
}

impl Sub for Ore {
    type Output = Ore;
    fn sub(self, other: Ore) -> Ore {
        Ore(self.0 - other.0)
    }
}

impl Neg for Ore {
    type Output = Ore;
    fn neg(self) -> Ore {
        Ore(-self.0)
    }
}

impl AddAssign for Ore {
    fn add_assign(&mut self, other: Ore) {
        self.0 += other.0;
    }
}

impl SubAssign for Ore {
    fn sub_assign(&mut self, other: Ore) {
        self.0 -= other.0;
    }
}

impl Sum for Ore {
    fn sum<I: Iterator<Item = Ore>>(iter: I) -> Ore {
        iter.fold(Ore::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Ore> for Ore {
    fn sum<I: Iterator<Item = &'a Ore>>(iter: I) -> Ore {
        iter.copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_form() {
        let cases = [
            (0, "0 kr"),
            (50_000, "500 kr"),
            (65_000, "650 kr"),
            (51_250, "512,50 kr"),
            (123_450, "1 234,50 kr"),
            (100_000_000, "1 000 000 kr"),
            (5, "0,05 kr"),
            (-50, "-0,50 kr"),
            (-1, "-0,01 kr"),
            (-99, "-0,99 kr"),
            (-123_456_789, "-1 234 567,89 kr"),
        ];
        for (ore, text) in cases {
            assert_eq!(Ore(ore).to_string(), text, "{ore} öre");
            assert_eq!(text.parse::<Ore>(), Ok(Ore(ore)), "{text}");
        }
    }

    /// The old `rules::sek(-50)` wrote "0.50": the minus sign of amounts
    /// between -1 and -99 öre was lost.
    #[test]
    fn the_minus_sign_of_less_than_a_krona_is_kept() {
        assert_eq!(Ore(-50).to_string(), "-0,50 kr");
        assert_eq!(Ore(-99).whole_kronor(), "-1 kr");
        assert_eq!(Ore(-49).whole_kronor(), "0 kr");
    }

    #[test]
    fn whole_kronor_round_half_away_from_zero() {
        let cases = [(0, 0), (49, 0), (50, 1), (149, 1), (150, 2), (-49, 0), (-50, -1), (-150, -2), (-151, -2)];
        for (ore, kronor) in cases {
            assert_eq!(Ore(ore).kronor_rounded(), kronor, "{ore} öre");
        }
        assert_eq!(Ore(i64::MIN).kronor_rounded(), i64::MIN / 100); // ends in -08 öre
        assert_eq!(Ore(i64::MIN + 58).kronor_rounded(), i64::MIN / 100); // -50 öre: away from zero
        assert_eq!(Ore(i64::MAX).kronor_rounded(), i64::MAX / 100); // ends in 07 öre
        assert_eq!(Ore(i64::MAX - 57).kronor_rounded(), i64::MAX / 100); // 50 öre: away from zero
    }

    /// What `report::kronor` wrote, now `whole_kronor_number`.
    #[test]
    fn whole_kronor_forms() {
        assert_eq!(Ore(0).whole_kronor_number(), "0");
        assert_eq!(Ore(50_000).whole_kronor_number(), "500");
        assert_eq!(Ore(920_000_000).whole_kronor_number(), "9 200 000");
        assert_eq!(Ore(-123_456_789).whole_kronor_number(), "-1 234 568");
        assert_eq!(Ore(123_450).whole_kronor(), "1 235 kr");
    }

    #[test]
    fn texts_that_are_not_amounts() {
        for text in [
            "", "kr", "12", "1 234", "1234 kr", "01 kr", "0 001 kr", "1 23 kr", "1,5 kr", "1,00 kr", "-0 kr", "- 1 kr",
            "1,050 kr", "+1 kr", "1.50 kr",
        ] {
            assert!(text.parse::<Ore>().is_err(), "{text:?}");
        }
        assert!(matches!("99 999 999 999 999 999 kr".parse::<Ore>(), Err(ParseOreError::TooLarge(_))));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(Ore(150) + Ore(-200), Ore(-50));
        assert_eq!(Ore(150) - Ore(200), Ore(-50));
        assert_eq!(-Ore(50), Ore(-50));
        assert_eq!([Ore(1), Ore(2), Ore(-4)].iter().sum::<Ore>(), Ore(-1));
        let mut total = Ore::ZERO;
        total += Ore(7);
        total -= Ore(2);
        assert_eq!(total, Ore(5));
        assert_eq!(Ore(i64::MAX).checked_add(Ore(1)), None);
        assert_eq!(Ore(i64::MIN).checked_sub(Ore(1)), None);
        assert_eq!(Ore(i64::MAX).checked_mul(2), None);
        assert_eq!(Ore(15_000).checked_mul(2), Some(Ore(30_000)));
    }

    proptest! {
        #[test]
        fn rounding_is_half_away_from_zero_and_within_50_ore(ore in any::<i64>()) {
            let kronor = i128::from(Ore(ore).kronor_rounded());
            let exact = i128::from(ore);
            let error = kronor * 100 - exact;
            prop_assert!(error.abs() <= 50, "{ore} öre -> {kronor} kr");
            if error.abs() == 50 {
                // A tie goes away from zero.
                prop_assert_eq!(kronor.signum(), exact.signum());
                prop_assert!(kronor.abs() * 100 > exact.abs());
            }
        }

        #[test]
        fn the_exact_form_reads_back(ore in any::<i64>()) {
            let text = Ore(ore).to_string();
            prop_assert_eq!(text.parse::<Ore>(), Ok(Ore(ore)), "{}", text);
        }

        #[test]
        fn the_sign_is_kept(ore in any::<i64>()) {
            prop_assert_eq!(Ore(ore).to_string().starts_with('-'), ore < 0);
            let rounded = Ore(ore).kronor_rounded();
            prop_assert_eq!(Ore(ore).whole_kronor().starts_with('-'), rounded < 0);
            prop_assert!(rounded == 0 || rounded.signum() == ore.signum());
        }

        #[test]
        fn digits_are_grouped_by_three(n in any::<i64>()) {
            let text = group_thousands(n);
            let digits = text.trim_start_matches('-');
            let groups: Vec<&str> = digits.split(' ').collect();
            prop_assert!((1..=3).contains(&groups[0].len()));
            prop_assert!(groups[1..].iter().all(|g| g.len() == 3));
            prop_assert_eq!(groups.concat(), n.unsigned_abs().to_string());
            prop_assert_eq!(text.starts_with('-'), n < 0);
        }
    }
}
