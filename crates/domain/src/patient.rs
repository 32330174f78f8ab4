//! Patient identities: personnummer, samordningsnummer and reservnummer,
//! and what each says about the patient (birth date, sex).
//!
//! | kind | shape on the invoice | what it says | source |
//! | --- | --- | --- | --- |
//! | personnummer | `YYYYMMDDNNNC`: birth date, birth number `NNN`, Luhn check digit `C` over the last ten digits | birth date; sex from the third `N` (odd male, even female) | folkbokföringslagen (1991:481) 18 §; Skatteverket SKV 704 |
//! | samordningsnummer | as a personnummer with 60 added to the day (`DD` 61–91) | birth date; sex as above | folkbokföringslagen 18 a §; Skatteverket SKV 707 |
//! | samordningsnummer, birth day unknown | day `60` (day `00` + 60), month `01`–`12` | birth year and month; sex | Skatteverket: where it did not know the day of birth (domain.md; SKV 707) |
//! | samordningsnummer, birth month unknown | month `00`, day `61`–`91` | birth year and day of month; sex | as above, month not known |
//! | samordningsnummer, month and day unknown | month `00`, day `60` (e.g. `198500603835`) | birth year; sex | as above, neither known |
//! | reservnummer | a region's own format, configured per region ([`ReservnummerFormat`]) | what the format says: sex and birth date only where the format places them | the region's rules, see `defaults.toml` `[[validation.reservnummer]]` |
//!
//! The RIV claim (`financial:billing:claim`) carries the patient id as twelve
//! characters with the century, so ten-digit forms are not accepted. A `-`
//! or `+` before the last four digits is tolerated and dropped.
//!
//! **Age when the birth date is partly unknown.** [`PatientId::age_on`]
//! gives the completed years the patient has *certainly* reached: the age
//! counted from the latest birth date the number allows (the last day of the
//! month when the day is unknown; 31 December when the month is unknown; the
//! day in December when only the month is unknown). It is never more than
//! the true age and at most one year less. No birth date is made up:
//! [`PatientId::birth_date`] returns what is known, and
//! [`BirthDate::exact`] is `None` unless year, month and day are.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::codes::luhn_valid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientIdKind {
    /// `YYYYMMDDNNNC`, C a Luhn check digit over the last ten digits.
    Personnummer,
    /// As a personnummer, with 60 added to the day of birth; month `00`
    /// and/or day `60` where Skatteverket did not know them.
    Samordningsnummer,
    /// A region's reservnummer, in one of the configured formats. Stored
    /// as `reserve` (the name the topics and tables already carry).
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
    #[error("patient id is neither twelve digits nor a reservnummer of a format configured for the seller or buyer")]
    Shape,
    #[error("patient id has no valid birth date")]
    BirthDate,
    #[error("patient id fails its Luhn check digit")]
    CheckDigit,
}

/// What an id says about the birth date: the year always, month and day
/// where the number gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    year: i32,
    month: Option<u32>,
    day: Option<u32>,
}

impl BirthDate {
    /// `None` unless the parts can be one real date (day 31 with an unknown
    /// month is possible; 30 February is not).
    pub fn new(year: i32, month: Option<u32>, day: Option<u32>) -> Option<BirthDate> {
        let probe_month = month.unwrap_or(12);
        let probe_day = day.unwrap_or(1);
        NaiveDate::from_ymd_opt(year, probe_month, probe_day)?;
        Some(BirthDate { year, month, day })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> Option<u32> {
        self.month
    }

    pub fn day(&self) -> Option<u32> {
        self.day
    }

    /// The date, when year, month and day are all known.
    pub fn exact(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month?, self.day?)
    }

    /// The earliest date the patient can have been born.
    pub fn earliest(&self) -> NaiveDate {
        let (month, day) = match (self.month, self.day) {
            (Some(m), Some(d)) => (m, d),
            (Some(m), None) => (m, 1),
            (None, None) => (1, 1),
            // Days 1–29 exist in January, and 30–31 as well.
            (None, Some(d)) => (1, d),
        };
        NaiveDate::from_ymd_opt(self.year, month, day).unwrap_or(NaiveDate::MIN)
    }

    /// The latest date the patient can have been born.
    pub fn latest(&self) -> NaiveDate {
        let (month, day) = match (self.month, self.day) {
            (Some(m), Some(d)) => (m, d),
            (Some(m), None) => (m, last_day_of_month(self.year, m)),
            (None, None) => (12, 31),
            (None, Some(d)) => (12, d),
        };
        NaiveDate::from_ymd_opt(self.year, month, day).unwrap_or(NaiveDate::MAX)
    }
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    (28..=31).rev().find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some()).unwrap_or(28)
}

/// Completed years from `birth` to `date`, `None` before the birth.
fn completed_years(birth: NaiveDate, date: NaiveDate) -> Option<u32> {
    if date < birth {
        return None;
    }
    let mut years = date.year() - birth.year();
    if (date.month(), date.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// A parsed, valid patient id. Holds the clear-text id: it must not leave
/// the ingester; use [`crate::Pseudonymiser`] to get the pseudonym.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientId {
    canonical: String,
    kind: PatientIdKind,
    birth_date: Option<BirthDate>,
    sex: Option<crate::Sex>,
}

impl std::fmt::Debug for PatientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the id, even in debug output.
        f.debug_struct("PatientId").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl PatientId {
    /// Parses a personnummer or samordningsnummer, `YYYYMMDDNNNC` (a `-` or
    /// `+` before the last four digits is dropped). Reservnummer need the
    /// region's formats: [`PatientIdFormats::parse`].
    pub fn parse(raw: &str) -> Result<PatientId, PatientIdError> {
        let trimmed = raw.trim();
        let digits: String = trimmed.chars().filter(|c| *c != '-' && *c != '+').collect();
        if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Self::parse_twelve_digits(digits);
        }
        Err(PatientIdError::Shape)
    }

    fn parse_twelve_digits(digits: String) -> Result<PatientId, PatientIdError> {
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range].bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let (year, month, day) = (number(0..4), number(4..6), number(6..8));
        let year = i32::try_from(year).map_err(|_| PatientIdError::BirthDate)?;
        let (kind, month, day) = match (month, day) {
            // Personnummer: always a whole date (SKV 704).
            (1..=12, 1..=31) => (PatientIdKind::Personnummer, Some(month), Some(day)),
            // Samordningsnummer: day + 60; month 00 and day 60 where unknown (SKV 707).
            (0..=12, 60..=91) => {
                let month = (month != 0).then_some(month);
                let day = (day != 60).then_some(day - 60);
                (PatientIdKind::Samordningsnummer, month, day)
            }
            _ => return Err(PatientIdError::BirthDate),
        };
        let birth_date = BirthDate::new(year, month, day).ok_or(PatientIdError::BirthDate)?;
        if !luhn_valid(&digits[2..]) {
            return Err(PatientIdError::CheckDigit);
        }
        let sex = Some(sex_of_digit(digits.as_bytes()[10]));
        Ok(PatientId { canonical: digits, kind, birth_date: Some(birth_date), sex })
    }

    pub fn kind(&self) -> PatientIdKind {
        self.kind
    }

    /// What the id says about the birth date; `None` for a reservnummer
    /// whose format holds no birth date.
    pub fn birth_date(&self) -> Option<BirthDate> {
        self.birth_date
    }

    /// Legal sex from the second-to-last digit: odd male, even female
    /// (SKV 704, SKV 707); for a reservnummer only where its format says
    /// which digit.
    pub fn sex(&self) -> Option<crate::Sex> {
        self.sex
    }

    /// The canonical form that is pseudonymised: twelve digits, or the
    /// upper-cased reservnummer.
    pub(crate) fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Age in completed years on `date` (see the module docs for the rule
    /// when month or day is unknown); `None` when the id gives no birth
    /// date or `date` is before the earliest possible birth date.
    pub fn age_on(&self, date: NaiveDate) -> Option<u32> {
        let birth = self.birth_date?;
        if date < birth.earliest() {
            return None;
        }
        Some(completed_years(birth.latest(), date).unwrap_or(0))
    }

    /// Whether `date` is certainly before the patient was born.
    pub fn born_after(&self, date: NaiveDate) -> bool {
        self.birth_date.is_some_and(|b| date < b.earliest())
    }
}

fn sex_of_digit(digit: u8) -> crate::Sex {
    if (digit - b'0') % 2 == 1 {
        crate::Sex::Male
    } else {
        crate::Sex::Female
    }
}

/// A region's reservnummer format, from config (`[[validation.reservnummer]]`).
///
/// Reservnummer have no national format: each region issues its own (the
/// national NRID format of Inera is one of them). Examples with their
/// sources are in `defaults.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservnummerFormat {
    /// Who issues it, for people ("Region Stockholm").
    pub region: String,
    /// Organisation numbers (ten digits) of the regions whose invoices use
    /// it, as seller or buyer; `"*"` for every region.
    pub org_numbers: Vec<String>,
    /// A regular expression (the `regex` crate's syntax, where `\d` is any
    /// Unicode digit: write `[0-9]`) the whole upper-cased id must match;
    /// anchored by distans.
    pub pattern: String,
    /// 1-based position of a digit that gives the sex, odd male and even
    /// female, where the format has one.
    pub sex_digit: Option<usize>,
    /// 1-based position of an eight-digit `YYYYMMDD` birth date, where the
    /// format has one; a number whose date there is not a real date is
    /// still accepted, with the birth date unknown.
    pub birth_date_at: Option<usize>,
    /// Where the format is described.
    #[serde(default)]
    pub source: String,
}

/// The configured reservnummer formats, compiled.
#[derive(Debug, Clone, Default)]
pub struct PatientIdFormats {
    formats: Vec<(ReservnummerFormat, regex::Regex)>,
}

impl PatientIdFormats {
    /// Compiles `formats`; every problem at once, each naming its entry.
    pub fn new(formats: &[ReservnummerFormat]) -> Result<PatientIdFormats, Vec<String>> {
        let mut problems = Vec::new();
        let mut compiled = Vec::new();
        for (i, f) in formats.iter().enumerate() {
            let at = format!("validation.reservnummer[{i}] ({})", f.region);
            if f.org_numbers.is_empty() {
                problems.push(format!("{at}: org_numbers is empty (use \"*\" for every region)"));
            }
            for org in &f.org_numbers {
                if org != "*" && crate::codes::normalise_org_number(org).as_deref() != Some(org.as_str()) {
                    problems.push(format!("{at}: {org:?} is not a ten-digit organisation number or \"*\""));
                }
            }
            if f.sex_digit == Some(0) || f.birth_date_at == Some(0) {
                problems.push(format!("{at}: positions count from 1"));
            }
            match regex::Regex::new(&format!("^(?:{})$", f.pattern)) {
                Ok(re) => compiled.push((f.clone(), re)),
                Err(e) => problems.push(format!("{at}: pattern: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(PatientIdFormats { formats: compiled })
        } else {
            Err(problems)
        }
    }

    /// Parses `raw` as a reservnummer in a format of one of `regions`
    /// (organisation numbers: the line's seller and buyer), or else as a
    /// personnummer or samordningsnummer. Formats are tried first, so a
    /// format must not match real personnummer: Region Stockholm's start
    /// with the "century" 99, the others hold letters.
    pub fn parse(&self, raw: &str, regions: &[&str]) -> Result<PatientId, PatientIdError> {
        let candidate = raw.trim().to_uppercase();
        for (format, re) in &self.formats {
            let applies = format.org_numbers.iter().any(|o| o == "*" || regions.contains(&o.as_str()));
            if applies && re.is_match(&candidate) {
                return Ok(reservnummer(candidate, format));
            }
        }
        PatientId::parse(raw)
    }

    /// As [`PatientIdFormats::parse`], with the formats of every region (for
    /// a register that does not say which region issued a number).
    pub fn parse_any_region(&self, raw: &str) -> Result<PatientId, PatientIdError> {
        let all: Vec<&str> = self.formats.iter().flat_map(|(f, _)| f.org_numbers.iter().map(String::as_str)).collect();
        self.parse(raw, &all)
    }
}

fn reservnummer(canonical: String, format: &ReservnummerFormat) -> PatientId {
    let bytes = canonical.as_bytes();
    let sex = format
        .sex_digit
        .and_then(|p| bytes.get(p.checked_sub(1)?))
        .filter(|b| b.is_ascii_digit())
        .map(|b| sex_of_digit(*b));
    let birth_date = format.birth_date_at.and_then(|p| {
        let start = p.checked_sub(1)?;
        let text = canonical.get(start..start + 8)?;
        let date = NaiveDate::parse_from_str(text, "%Y%m%d").ok()?;
        BirthDate::new(date.year(), Some(date.month()), Some(date.day()))
    });
    PatientId { canonical, kind: PatientIdKind::Reserve, birth_date, sex }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sex;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// Twelve digits with the Luhn check digit computed for the first eleven.
    fn with_check(first_eleven: &str) -> String {
        let check = crate::codes::luhn_check_digit(&first_eleven[2..]);
        format!("{first_eleven}{check}")
    }

    type Expected = Result<(PatientIdKind, Option<i32>, Option<u32>, Option<u32>), PatientIdError>;

    /// (id, kind, birth year, month, day) or the error: every boundary of
    /// the personnummer and samordningsnummer dates.
    #[test]
    fn personnummer_and_samordningsnummer_table() {
        use PatientIdKind::{Personnummer as P, Samordningsnummer as S};
        let ok = |k, y, m, d| -> Expected { Ok((k, Some(y), m, d)) };
        let cases: Vec<(String, Expected)> = vec![
            // Skatteverket's example personnummer, with and without separator.
            ("198112189876".into(), ok(P, 1981, Some(12), Some(18))),
            ("19811218-9876".into(), ok(P, 1981, Some(12), Some(18))),
            ("198112189875".into(), Err(PatientIdError::CheckDigit)),
            // Month and day ranges.
            (with_check("19811318987"), Err(PatientIdError::BirthDate)),
            (with_check("19810018987"), Err(PatientIdError::BirthDate)), // month 00 is not a personnummer
            (with_check("19811200987"), Err(PatientIdError::BirthDate)), // day 00
            (with_check("19811231987"), ok(P, 1981, Some(12), Some(31))),
            (with_check("19811232987"), Err(PatientIdError::BirthDate)),
            (with_check("19810431987"), Err(PatientIdError::BirthDate)), // 31 April
            // Leap days, including the century rules (2000 leap, 1900 not).
            (with_check("20000229987"), ok(P, 2000, Some(2), Some(29))),
            (with_check("19000229987"), Err(PatientIdError::BirthDate)),
            (with_check("20240229987"), ok(P, 2024, Some(2), Some(29))),
            (with_check("20230229987"), Err(PatientIdError::BirthDate)),
            (with_check("20230289987"), Err(PatientIdError::BirthDate)), // samordningsnummer 29 Feb 2023
            (with_check("20240289987"), ok(S, 2024, Some(2), Some(29))),
            // Century change: the twelve digits carry the century.
            (with_check("18991231987"), ok(P, 1899, Some(12), Some(31))),
            (with_check("19000101987"), ok(P, 1900, Some(1), Some(1))),
            (with_check("19991231987"), ok(P, 1999, Some(12), Some(31))),
            (with_check("20000101987"), ok(P, 2000, Some(1), Some(1))),
            // Samordningsnummer: day + 60, 61 to 91.
            ("198112789873".into(), ok(S, 1981, Some(12), Some(18))),
            (with_check("19811261987"), ok(S, 1981, Some(12), Some(1))),
            (with_check("19811291987"), ok(S, 1981, Some(12), Some(31))),
            (with_check("19811292987"), Err(PatientIdError::BirthDate)),
            (with_check("19811159987"), Err(PatientIdError::BirthDate)), // 32..59: neither kind
            (with_check("19811191987"), Err(PatientIdError::BirthDate)), // 31 November
            // Unknown day (60), unknown month (00), both.
            (with_check("19851260987"), ok(S, 1985, Some(12), None)),
            (with_check("19850260987"), ok(S, 1985, Some(2), None)),
            (with_check("19851360987"), Err(PatientIdError::BirthDate)),
            (with_check("19850061987"), ok(S, 1985, None, Some(1))),
            (with_check("19850091987"), ok(S, 1985, None, Some(31))),
            (with_check("19850092987"), Err(PatientIdError::BirthDate)),
            ("198500603835".into(), ok(S, 1985, None, None)),
            ("198500603836".into(), Err(PatientIdError::CheckDigit)),
            // Shapes.
            ("8112189876".into(), Err(PatientIdError::Shape)), // no century
            ("19811218987".into(), Err(PatientIdError::Shape)),
            ("R1234567".into(), Err(PatientIdError::Shape)), // a reservnummer needs a format
            ("".into(), Err(PatientIdError::Shape)),
        ];
        for (raw, expected) in cases {
            let got = PatientId::parse(&raw).map(|p| {
                let b = p.birth_date();
                (p.kind(), b.map(|b| b.year()), b.and_then(|b| b.month()), b.and_then(|b| b.day()))
            });
            assert_eq!(got, expected, "{raw}");
        }
    }

    #[test]
    fn the_issue_example_is_a_samordningsnummer_with_month_and_day_unknown() {
        let id = PatientId::parse("198500603835").expect("valid samordningsnummer");
        assert_eq!(id.kind(), PatientIdKind::Samordningsnummer);
        let birth = id.birth_date().expect("a birth year");
        assert_eq!((birth.year(), birth.month(), birth.day(), birth.exact()), (1985, None, None, None));
        assert_eq!(id.sex(), Some(Sex::Male)); // 3 is odd
    }

    /// The age rule at its boundaries: completed years from the latest
    /// possible birth date; `None` before the earliest. Per id, the dates it
    /// is tried on, each with the age expected (`none` for `None`).
    #[test]
    fn age_with_unknown_month_or_day() {
        let cases = [
            // Exact date: the birthday itself.
            ("198112189876".to_string(), "2025-12-17 43, 2025-12-18 44, 1981-12-17 none"),
            // Month and day unknown (1985): the birthday counts on 31 December.
            ("198500603835".to_string(), "2025-12-30 39, 2025-12-31 40, 2026-01-01 40, 1985-01-01 0, 1984-12-31 none"),
            // Day unknown, February of a leap year: the birthday counts on the 29th.
            (
                with_check("20000260987"),
                "2025-02-28 24, 2025-03-01 25, 2028-02-28 27, 2028-02-29 28, 2000-02-01 0, 2000-01-31 none",
            ),
            // Day unknown, December.
            (with_check("19851260987"), "2025-12-30 39, 2025-12-31 40"),
            // Month unknown, day 15: the birthday counts on 15 December.
            (with_check("19850075987"), "2025-12-14 39, 2025-12-15 40, 1985-01-15 0, 1985-01-14 none"),
        ];
        for (raw, ages) in cases {
            let id = PatientId::parse(&raw).expect(&raw);
            for age in ages.split(", ") {
                let (on, expected) = age.split_once(' ').expect(age);
                let on: NaiveDate = on.parse().expect(on);
                let expected = match expected {
                    "none" => None,
                    years => Some(years.parse::<u32>().expect(years)),
                };
                assert_eq!(id.age_on(on), expected, "{raw} on {on}");
            }
        }
    }

    #[test]
    fn age_group_boundary_with_an_unknown_date_is_never_early() {
        // Born some time in 1960: 65 only once 65 is certain (31 Dec 2025).
        let id = PatientId::parse(&with_check("19600060987")).expect("valid");
        assert_eq!(crate::AgeGroup::of_age(id.age_on(date(2025, 12, 30))), crate::AgeGroup::Age40To64);
        assert_eq!(crate::AgeGroup::of_age(id.age_on(date(2025, 12, 31))), crate::AgeGroup::Age65To74);
    }

    fn formats() -> PatientIdFormats {
        let format = |region: &str, orgs: &[&str], pattern: &str, sex, birth| ReservnummerFormat {
            region: region.into(),
            org_numbers: orgs.iter().map(|o| o.to_string()).collect(),
            pattern: pattern.into(),
            sex_digit: sex,
            birth_date_at: birth,
            source: String::new(),
        };
        PatientIdFormats::new(&[
            format("Region Stockholm", &["2321000016"], "99[0-9]{10}", Some(11), None),
            format(
                "Region Skåne",
                &["2321000255"],
                "(19|20)[0-9]{6}([A-Z][A-Z0-9]{3}|[0-9][A-Z][A-Z0-9]{2}|[0-9]{2}[A-Z][A-Z0-9]|[0-9]{3}[A-Z])",
                None,
                Some(1),
            ),
            format("Inera NRID", &["*"], "[0-9]{8}[A-HJ-NPRSTUX-Z]{2}[0-9]{2}", Some(11), None),
        ])
        .expect("valid formats")
    }

    #[test]
    fn reservnummer_table() {
        use PatientIdKind::Reserve;
        const STOCKHOLM: &str = "2321000016";
        const SKANE: &str = "2321000255";
        const OTHER: &str = "2321000115";
        let f = formats();
        type Said = Result<(PatientIdKind, Option<Sex>, Option<i32>), PatientIdError>;
        let cases: [(&str, &[&str], Said); 12] = [
            // Stockholm: 99 + century + year of issue + six digits, sex in the 11th.
            ("992025123456", &[STOCKHOLM], Ok((Reserve, Some(Sex::Male), None))),
            ("992025123466", &[OTHER, STOCKHOLM], Ok((Reserve, Some(Sex::Female), None))),
            ("992025123456", &[OTHER], Err(PatientIdError::BirthDate)), // not Stockholm's: a bad personnummer
            ("99202512345", &[STOCKHOLM], Err(PatientIdError::Shape)),
            // Skåne: a date and four characters, at least one a letter.
            ("19900101T123", &[SKANE], Ok((Reserve, None, Some(1990)))),
            ("19900101123a", &[SKANE], Ok((Reserve, None, Some(1990)))), // upper-cased
            ("19900101T123", &[STOCKHOLM], Err(PatientIdError::Shape)),
            ("199001011234", &[SKANE], Err(PatientIdError::CheckDigit)), // all digits: a personnummer
            ("19901301T123", &[SKANE], Ok((Reserve, None, None))),       // no real date: unknown
            // Inera's national NRID, any region: unknown date, letters not I O Q V W.
            ("00252040AB14", &[OTHER], Ok((Reserve, Some(Sex::Male), None))),
            ("00252040AI14", &[OTHER], Err(PatientIdError::Shape)),
            ("", &[OTHER], Err(PatientIdError::Shape)),
        ];
        for (raw, regions, expected) in cases {
            let got = f.parse(raw, regions).map(|p| (p.kind(), p.sex(), p.birth_date().map(|b| b.year())));
            assert_eq!(got, expected, "{raw} {regions:?}");
        }
        assert_eq!(f.parse("19900101t123", &[SKANE]).expect("valid").canonical(), "19900101T123");
        assert!(f.parse_any_region("992025123456").is_ok());
    }

    #[test]
    fn bad_formats_are_all_reported() {
        let bad = ReservnummerFormat {
            region: "X".into(),
            org_numbers: vec!["123".into()],
            pattern: "([".into(),
            sex_digit: Some(0),
            birth_date_at: None,
            source: String::new(),
        };
        let problems = PatientIdFormats::new(&[bad]).expect_err("invalid");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn debug_hides_the_id() {
        let id = PatientId::parse("198112189876").expect("valid");
        assert!(!format!("{id:?}").contains("9876"));
    }
}
