//! Patient identifiers: personnummer, samordningsnummer and reserve numbers.

use chrono::{Datelike, NaiveDate};

use crate::codes::luhn_valid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientIdKind {
    /// `YYYYMMDDNNNC`, C a Luhn check digit over the last ten digits.
    Personnummer,
    /// As a personnummer, with 60 added to the day of birth.
    Samordningsnummer,
    /// A region's local reserve number: letters and digits, not a
    /// personnummer. Birth date and sex cannot be derived from it.
    Reserve,
}

impl PatientIdKind {
    pub fn parse(s: &str) -> Option<PatientIdKind> {
        match s {
            "personnummer" => Some(PatientIdKind::Personnummer),
            "samordningsnummer" => Some(PatientIdKind::Samordningsnummer),
            "reserve" => Some(PatientIdKind::Reserve),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PatientIdKind::Personnummer => "personnummer",
            PatientIdKind::Samordningsnummer => "samordningsnummer",
            PatientIdKind::Reserve => "reserve",
        }
    }
}

/// Why a patient id was rejected. The messages never repeat the id itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatientIdError {
    #[error("patient id is neither twelve digits nor a reserve number")]
    Shape,
    #[error("patient id has no valid birth date")]
    BirthDate,
    #[error("patient id fails its Luhn check digit")]
    CheckDigit,
}

/// A parsed, valid patient id. Holds the clear-text id: it must not leave
/// the ingester; use [`crate::Pseudonymiser`] to get the pseudonym.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientId {
    canonical: String,
    kind: PatientIdKind,
    birth_date: Option<NaiveDate>,
}

impl std::fmt::Debug for PatientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the id, even in debug output.
        f.debug_struct("PatientId").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl PatientId {
    /// Parses `YYYYMMDDNNNN` (an optional `-` or `+` before the last four
    /// digits is accepted) or a reserve number (4 to 16 letters and digits,
    /// at least one letter).
    pub fn parse(raw: &str) -> Result<PatientId, PatientIdError> {
        let trimmed = raw.trim();
        let digits: String = trimmed.chars().filter(|c| *c != '-' && *c != '+').collect();
        if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Self::parse_twelve_digits(digits);
        }
        let is_reserve = (4..=16).contains(&trimmed.len())
            && trimmed.bytes().all(|b| b.is_ascii_alphanumeric())
            && trimmed.bytes().any(|b| b.is_ascii_alphabetic());
        if is_reserve {
            return Ok(PatientId {
                canonical: trimmed.to_ascii_uppercase(),
                kind: PatientIdKind::Reserve,
                birth_date: None,
            });
        }
        Err(PatientIdError::Shape)
    }

    fn parse_twelve_digits(digits: String) -> Result<PatientId, PatientIdError> {
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range].bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let (year, month, mut day) = (number(0..4), number(4..6), number(6..8));
        let mut kind = PatientIdKind::Personnummer;
        if day > 60 {
            day -= 60;
            kind = PatientIdKind::Samordningsnummer;
        }
        let year = i32::try_from(year).map_err(|_| PatientIdError::BirthDate)?;
        let birth_date = NaiveDate::from_ymd_opt(year, month, day).ok_or(PatientIdError::BirthDate)?;
        if year < 1870 {
            return Err(PatientIdError::BirthDate);
        }
        if !luhn_valid(&digits[2..]) {
            return Err(PatientIdError::CheckDigit);
        }
        Ok(PatientId { canonical: digits, kind, birth_date: Some(birth_date) })
    }

    pub fn kind(&self) -> PatientIdKind {
        self.kind
    }

    pub fn birth_date(&self) -> Option<NaiveDate> {
        self.birth_date
    }

    /// Legal sex from the second-to-last digit: odd male, even female.
    /// Unknown for reserve numbers.
    pub fn sex(&self) -> Option<crate::Sex> {
        if self.kind == PatientIdKind::Reserve {
            return None;
        }
        let digit = self.canonical.as_bytes()[10] - b'0';
        Some(if digit % 2 == 1 { crate::Sex::Male } else { crate::Sex::Female })
    }

    /// The canonical form that is pseudonymised: twelve digits, or the
    /// upper-cased reserve number.
    pub(crate) fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Age in whole years on `date`, if the birth date is known.
    pub fn age_on(&self, date: NaiveDate) -> Option<u32> {
        let birth = self.birth_date?;
        if date < birth {
            return None;
        }
        let mut years = date.year() - birth.year();
        if (date.month(), date.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        u32::try_from(years).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn parse_table() {
        let cases: [(&str, Result<PatientIdKind, PatientIdError>); 10] = [
            ("198112189876", Ok(PatientIdKind::Personnummer)),
            ("19811218-9876", Ok(PatientIdKind::Personnummer)),
            ("198112189875", Err(PatientIdError::CheckDigit)),
            ("198113189876", Err(PatientIdError::BirthDate)),
            ("198102309876", Err(PatientIdError::BirthDate)),
            // samordningsnummer: day 18 + 60 = 78, check digit recomputed
            ("198112789873", Ok(PatientIdKind::Samordningsnummer)),
            ("R1234567", Ok(PatientIdKind::Reserve)),
            ("8112189876", Err(PatientIdError::Shape)),
            ("19811218987", Err(PatientIdError::Shape)),
            ("", Err(PatientIdError::Shape)),
        ];
        for (raw, expected) in cases {
            assert_eq!(PatientId::parse(raw).map(|p| p.kind()), expected, "{raw}");
        }
    }

    #[test]
    fn samordningsnummer_birth_date() {
        let id = PatientId::parse("198112789873").expect("valid samordningsnummer");
        assert_eq!(id.birth_date(), Some(date(1981, 12, 18)));
    }

    #[test]
    fn sex_and_age() {
        let id = PatientId::parse("198112189876").expect("valid");
        assert_eq!(id.sex(), Some(crate::Sex::Male)); // 7 is odd
        assert_eq!(id.age_on(date(2025, 12, 17)), Some(43));
        assert_eq!(id.age_on(date(2025, 12, 18)), Some(44));
        assert_eq!(id.age_on(date(1981, 12, 17)), None);
        let reserve = PatientId::parse("r1234567").expect("valid reserve");
        assert_eq!(reserve.sex(), None);
        assert_eq!(reserve.age_on(date(2025, 1, 1)), None);
        assert_eq!(reserve.canonical(), "R1234567");
    }

    #[test]
    fn debug_hides_the_id() {
        let id = PatientId::parse("198112189876").expect("valid");
        assert!(!format!("{id:?}").contains("9876"));
    }
}
