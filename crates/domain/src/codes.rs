//! Shape checks for the codes an invoice line carries: Luhn check digits,
//! organisation numbers, HSA-ids, SCB county and municipality codes,
//! ICD-10-SE and KVÅ codes, and invoice ids (any the law allows, and a
//! seller's own stricter numbering where configured), and the reference
//! tables of those codes' names, read from the CSV files in `data/`.

use std::sync::LazyLock;

/// SCB county codes (länskoder) of Sweden's 21 regions.
pub const COUNTY_CODES: [&str; 21] = [
    "01", "03", "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "17", "18", "19", "20", "21", "22", "23",
    "24", "25",
];

/// Declares a reference table compiled in from `crates/domain/data/FILE`:
/// its row type (one `String` field per CSV column, by the header's names)
/// and a static of its rows, parsed at first use by [`table`].
macro_rules! reference_table {
    ($(#[$doc:meta])* $table:ident from $file:literal: $(#[$row_doc:meta])* $row:ident { $($field:ident),+ }) => {
        $(#[$row_doc])*
        #[derive(Debug, serde::Deserialize)]
        pub struct $row {
            $(pub $field: String,)+
        }

        $(#[$doc])*
        pub static $table: LazyLock<Vec<$row>> =
            LazyLock::new(|| table($file, include_str!(concat!("../data/", $file))));
    };
}

reference_table! {
    /// Sweden's 21 counties, in code order. Source: SCB.
    COUNTIES from "counties.csv":
    /// A county: its SCB county code (länskod, "23"), its name ("Jämtlands
    /// län") and the name of the region (regionen, the county council) that
    /// pays for its residents' care, as the regions call themselves ("Region
    /// Jämtland Härjedalen").
    County { county_code, county_name, region_name }
}

/// The region of SCB county `county_code` ("23" → "Region Jämtland Härjedalen").
pub fn region_name(county_code: &str) -> Option<&'static str> {
    COUNTIES.iter().find(|c| c.county_code == county_code).map(|c| c.region_name.as_str())
}

reference_table! {
    /// The municipalities of the counties of the regions' papers
    /// (Södermanland and Jönköping, where most digital providers are; the
    /// home regions Västmanland, Jämtland Härjedalen and Norrbotten), each
    /// county complete. The other counties' municipalities are not listed
    /// yet: reports show their codes. Source: SCB.
    MUNICIPALITIES from "municipalities.csv":
    /// A municipality: its SCB municipality code (kommunkod, the county code
    /// and two digits, "2380") and name ("Östersund").
    Municipality { municipality_code, name }
}

reference_table! {
    /// The profession codes of distans' tariff table with their labels.
    PROFESSIONS from "professions.csv":
    /// A RIV profession code ("PS") with its Swedish and English label, for
    /// reports ("psykolog", "psychologist").
    Profession { profession_code, label_sv, label_en }
}

/// A RIV profession code's label in Swedish or English ("PS" → "psykolog"
/// or "psychologist"); `None` for a code not in [`PROFESSIONS`].
pub fn profession_label(code: &str, swedish: bool) -> Option<&'static str> {
    let profession = PROFESSIONS.iter().find(|p| p.profession_code == code)?;
    Some(if swedish { &profession.label_sv } else { &profession.label_en })
}

reference_table! {
    /// The 22 ICD-10 chapters, in chapter order. Reports group lines by the
    /// chapter of their first diagnosis code (the same ranges are in the
    /// sink's refresh SQL, `crates/store/sql/refresh_month.sql`, which a test
    /// in `distans_store::reference` holds to this table). Source:
    /// Socialstyrelsen's ICD-10-SE and WHO's ICD-10.
    ICD10_CHAPTERS from "icd10_chapters.csv":
    /// An ICD-10 chapter: its Roman numeral ("V"), its first and last
    /// three-character code ("F00", "F99", both included) and its title in
    /// Swedish and English.
    Icd10Chapter { chapter, first_code, last_code, title_sv, title_en }
}

/// The rows of a reference table compiled in from `crates/domain/data/`: CSV
/// with a header row, `#` lines are comments. The files are part of the
/// source and a unit test reads each, so a malformed one fails the tests,
/// not a service: that is why a parse error panics, naming the file.
fn table<Row: serde::de::DeserializeOwned>(file: &str, text: &str) -> Vec<Row> {
    csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("crates/domain/data/{file}: {err}"))
}

/// Whether `digits` (ASCII digits only) ends in a valid Luhn check digit.
///
/// Swedish personnummer (the last ten digits) and organisation numbers use
/// the Luhn algorithm with weights 2, 1, 2, … from the left.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The Luhn check digit that completes `digits`.
pub fn luhn_check_digit(digits: &str) -> u8 {
    for candidate in 0..10u8 {
        let mut full = String::with_capacity(digits.len() + 1);
        full.push_str(digits);
        full.push(char::from(b'0' + candidate));
        if luhn_valid(&full) {
            return candidate;
        }
    }
    unreachable!("one of ten check digits always completes a Luhn sum")
}

/// A Swedish organisation number: ten digits with a Luhn check digit,
/// written `2321000230` or, as Bolagsverket writes it, `232100-0230` (a
/// hyphen after the sixth digit). Returns the ten digits; `None` for any
/// other text or a wrong check digit.
pub fn normalise_org_number(raw: &str) -> Option<String> {
    let digits = match raw.split_once('-') {
        Some((first, last)) if first.len() == 6 && last.len() == 4 => format!("{first}{last}"),
        Some(_) => return None,
        None => raw.to_string(),
    };
    if digits.len() != 10 || !luhn_valid(&digits) {
        return None;
    }
    Some(digits)
}

/// An organisation number as people read it: `232100-0230` for the ten
/// digits `2321000230` (Bolagsverket's form); any other text as it is.
pub fn org_number_shown(digits: &str) -> String {
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}", &digits[..6], &digits[6..])
    } else {
        digits.to_string()
    }
}

/// An HSA-id: `SE`, a ten-digit organisation number, `-`, and a local part
/// of letters and digits (at most 31 characters in all).
pub fn is_hsa_id(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("SE") else {
        return false;
    };
    let Some((org, local)) = rest.split_once('-') else {
        return false;
    };
    raw.len() <= 31
        && org.len() == 10
        && org.bytes().all(|b| b.is_ascii_digit())
        && !local.is_empty()
        && local.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn is_county_code(raw: &str) -> bool {
    COUNTY_CODES.contains(&raw)
}

/// A municipality code is four digits whose first two are a county code.
pub fn is_municipality_code(raw: &str) -> bool {
    raw.len() == 4 && raw.bytes().all(|b| b.is_ascii_digit()) && is_county_code(&raw[..2])
}

/// An ICD-10-SE code: a letter, two digits, then optionally a dot and up to
/// four letters or digits (`J06.9`, `F321`, `Z76.0`).
pub fn is_icd10_code(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.len() < 3 || bytes.len() > 8 {
        return false;
    }
    if !bytes[0].is_ascii_uppercase() || !bytes[1].is_ascii_digit() || !bytes[2].is_ascii_digit() {
        return false;
    }
    let tail = raw[3..].strip_prefix('.').unwrap_or(&raw[3..]);
    tail.len() <= 4 && tail.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A KVÅ procedure code: two capital letters and three letters or digits
/// (`AA039`, `ZV051`, `UDH02`).
pub fn is_kva_code(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.len() == 5
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The longest invoice id accepted, in characters: the document number of
/// UN/EDIFACT INVOIC (`BGM` 1004, an..35), which the Swedish e-invoice
/// formats (Svefaktura, SFTI) inherit. The VAT act asks only for a unique
/// number in one or more series (mervärdesskattelagen 2023:200, 17 kap 24 §).
pub const INVOICE_ID_MAX_CHARS: usize = 35;

/// An invoice id as the law allows it: 1 to [`INVOICE_ID_MAX_CHARS`]
/// printable characters (no control characters), without leading or
/// trailing white space. Any stricter shape is a seller's own convention,
/// configured per seller ([`InvoiceIdPattern`]).
pub fn is_invoice_id(raw: &str) -> bool {
    let chars = raw.chars().count();
    (1..=INVOICE_ID_MAX_CHARS).contains(&chars) && !raw.chars().any(char::is_control) && raw.trim() == raw
}

/// The numbering convention of the test data and the generator: `ZVF` +
/// the seller's organisation number + `YYMM` + a six-digit counter. One
/// seller's convention, not a national rule; `{seller}` stands for the
/// seller's ten-digit organisation number.
pub const ZVF_INVOICE_ID_PATTERN: &str = "ZVF{seller}[0-9]{2}(0[1-9]|1[0-2])[0-9]{6}";

/// A seller's own invoice numbering, from config
/// (`validation.invoice_id_patterns`): a regular expression (the `regex`
/// crate's syntax, where `\d` is any Unicode digit: write `[0-9]`) the
/// whole id must match, where `{seller}` stands for the seller's
/// organisation number. Compiled to a DFA once; checked per line.
#[derive(Debug, Clone)]
pub struct InvoiceIdPattern {
    own: regex::Regex,
    any_seller: Option<regex::Regex>,
}

/// How an id fares against a seller's [`InvoiceIdPattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceIdMatch {
    Matches,
    /// The pattern would match with another seller's organisation number.
    OtherSeller,
    DoesNotMatch,
}

impl InvoiceIdPattern {
    /// Compiles `pattern` for the seller `seller_org_number`.
    pub fn new(pattern: &str, seller_org_number: &str) -> Result<InvoiceIdPattern, regex::Error> {
        let anchored = |p: String| regex::Regex::new(&format!("^(?:{p})$"));
        let own = anchored(pattern.replace("{seller}", seller_org_number))?;
        let any_seller =
            if pattern.contains("{seller}") { Some(anchored(pattern.replace("{seller}", "[0-9]{10}"))?) } else { None };
        Ok(InvoiceIdPattern { own, any_seller })
    }

    pub fn check(&self, invoice_id: &str) -> InvoiceIdMatch {
        if self.own.is_match(invoice_id) {
            InvoiceIdMatch::Matches
        } else if self.any_seller.as_ref().is_some_and(|re| re.is_match(invoice_id)) {
            InvoiceIdMatch::OtherSeller
        } else {
            InvoiceIdMatch::DoesNotMatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_table() {
        let cases = [
            ("8112189876", true), // Skatteverket's example personnummer (last ten digits)
            ("8112189875", false),
            ("2321000115", true), // the org number in the HSA-id example of domain.md
            ("2321000116", false),
            ("", false),
            ("12a4", false),
        ];
        for (digits, expected) in cases {
            assert_eq!(luhn_valid(digits), expected, "{digits}");
        }
        assert_eq!(luhn_check_digit("811218987"), 6);
        assert_eq!(luhn_check_digit("232100011"), 5);
    }

    #[test]
    fn org_numbers() {
        assert_eq!(normalise_org_number("232100-0115").as_deref(), Some("2321000115"));
        assert_eq!(normalise_org_number("2321000115").as_deref(), Some("2321000115"));
        assert_eq!(normalise_org_number("2321000114"), None);
        assert_eq!(normalise_org_number("23210001150"), None);
        assert_eq!(normalise_org_number("2321-000115"), None, "the hyphen goes after the sixth digit");
        assert_eq!(normalise_org_number("232100--0115"), None);
        assert_eq!(org_number_shown("2321000115"), "232100-0115");
        assert_eq!(org_number_shown("232100-0115"), "232100-0115");
        assert_eq!(org_number_shown("unlisted"), "unlisted");
    }

    #[test]
    fn hsa_ids() {
        let cases = [
            ("SE2321000115-094882", true),
            ("SE2321000115-E000000000001", true),
            ("SE232100011-094882", false),
            ("SE2321000115-", false),
            ("SE2321000115094882", false),
            ("XE2321000115-094882", false),
            ("SE2321000115-09 4882", false),
            ("SE2321000115-0123456789012345678", false), // 32 characters
        ];
        for (raw, expected) in cases {
            assert_eq!(is_hsa_id(raw), expected, "{raw}");
        }
    }

    #[test]
    fn every_county_has_a_name() {
        let named: Vec<&str> = COUNTIES.iter().map(|c| c.county_code.as_str()).collect();
        assert_eq!(named, COUNTY_CODES);
    }

    #[test]
    fn municipality_names_are_valid_codes_once_each() {
        let codes: std::collections::BTreeSet<&str> =
            MUNICIPALITIES.iter().map(|m| m.municipality_code.as_str()).collect();
        assert_eq!(codes.len(), MUNICIPALITIES.len());
        assert!(codes.iter().all(|c| is_municipality_code(c)), "{codes:?}");
        // The counties listed are complete: as many as SCB has in each.
        for (county, count) in [("04", 9), ("06", 13), ("19", 10), ("23", 8), ("25", 14)] {
            assert_eq!(codes.iter().filter(|c| c.starts_with(county)).count(), count, "county {county}");
        }
    }

    #[test]
    fn geography() {
        assert!(is_county_code("23"));
        assert!(!is_county_code("02"));
        assert!(!is_county_code("26"));
        assert!(is_municipality_code("2380"));
        assert!(!is_municipality_code("0280"));
        assert!(!is_municipality_code("238"));
        assert!(!is_municipality_code("23a0"));
    }

    #[test]
    fn clinical_codes() {
        for ok in ["J06.9", "J069", "F32", "Z76.0", "F43.1A"] {
            assert!(is_icd10_code(ok), "{ok}");
        }
        for bad in ["j06.9", "J6", "06.9", "J06.99999", "J06-9"] {
            assert!(!is_icd10_code(bad), "{bad}");
        }
        for ok in ["AA039", "ZV051", "UDH02", "AD041"] {
            assert!(is_kva_code(ok), "{ok}");
        }
        for bad in ["aa039", "A0391", "AA03", "AA0391"] {
            assert!(!is_kva_code(bad), "{bad}");
        }
    }

    #[test]
    fn invoice_ids() {
        let ok = ["ZVF23210001152501000001", "2025-000123", "F123456", "1", "Faktura 12/2025", "Å-2025:7"];
        for id in ok {
            assert!(is_invoice_id(id), "{id}");
        }
        let max = "9".repeat(INVOICE_ID_MAX_CHARS);
        assert!(is_invoice_id(&max));
        let bad = ["", " F1", "F1 ", "F\t1", "F\n1"];
        for id in bad.iter().map(|s| s.to_string()).chain([format!("{max}9")]) {
            assert!(!is_invoice_id(&id), "{id:?}");
        }
    }

    #[test]
    fn the_zvf_convention_as_a_seller_pattern() {
        let p = InvoiceIdPattern::new(ZVF_INVOICE_ID_PATTERN, "2321000115").expect("compiles");
        let cases = [
            ("ZVF23210001152501000001", InvoiceIdMatch::Matches),
            ("ZVF23210001152512000001", InvoiceIdMatch::Matches),
            ("ZVF2321000115250100001", InvoiceIdMatch::DoesNotMatch), // one digit short
            ("ZVF23210001152513000001", InvoiceIdMatch::DoesNotMatch), // month 13
            ("ZVF23210001152500000001", InvoiceIdMatch::DoesNotMatch), // month 00
            ("ZVF23210001982501000001", InvoiceIdMatch::OtherSeller),
            ("ABC23210001152501000001", InvoiceIdMatch::DoesNotMatch),
            ("2025-000123", InvoiceIdMatch::DoesNotMatch),
        ];
        for (id, expected) in cases {
            assert_eq!(p.check(id), expected, "{id}");
        }
        let plain = InvoiceIdPattern::new("F[0-9]{6}", "2321000115").expect("compiles");
        assert_eq!(plain.check("F123456"), InvoiceIdMatch::Matches);
        assert_eq!(plain.check("F12345"), InvoiceIdMatch::DoesNotMatch);
        assert!(InvoiceIdPattern::new("([", "2321000115").is_err());
    }

    #[test]
    fn professions_are_two_letter_codes_once_each_with_both_labels() {
        let codes: std::collections::BTreeSet<&str> = PROFESSIONS.iter().map(|p| p.profession_code.as_str()).collect();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.len(), PROFESSIONS.len(), "a code twice");
        for p in PROFESSIONS.iter() {
            assert!(p.profession_code.len() == 2 && p.profession_code.bytes().all(|b| b.is_ascii_uppercase()), "{p:?}");
            assert!(!p.label_sv.is_empty() && !p.label_en.is_empty(), "{p:?}");
        }
        assert_eq!(profession_label("PS", true), Some("psykolog"));
        assert_eq!(profession_label("PS", false), Some("psychologist"));
        assert_eq!(profession_label("XX", true), None);
        assert_eq!(region_name("23"), Some("Region Jämtland Härjedalen"));
        assert_eq!(region_name("02"), None);
    }

    #[test]
    fn icd10_chapters_are_the_22_in_order_with_ranges_that_do_not_overlap() {
        let numerals: Vec<&str> = ICD10_CHAPTERS.iter().map(|c| c.chapter.as_str()).collect();
        assert_eq!(
            numerals,
            [
                "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI",
                "XVII", "XVIII", "XIX", "XX", "XXI", "XXII"
            ]
        );
        let mut ranges: Vec<(&str, &str)> =
            ICD10_CHAPTERS.iter().map(|c| (c.first_code.as_str(), c.last_code.as_str())).collect();
        for (chapter, (first, last)) in ICD10_CHAPTERS.iter().zip(&ranges) {
            assert!(first.len() == 3 && is_icd10_code(first), "{chapter:?}");
            assert!(last.len() == 3 && is_icd10_code(last), "{chapter:?}");
            assert!(first <= last, "{chapter:?}");
            assert!(!chapter.title_sv.is_empty() && !chapter.title_en.is_empty(), "{chapter:?}");
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 < pair[1].0, "overlapping chapters {pair:?}");
        }
    }

    #[test]
    #[should_panic(expected = "crates/domain/data/broken.csv")]
    fn a_malformed_table_names_its_file() {
        let _: Vec<Profession> = table("broken.csv", "profession_code,label_sv,label_en\nLK,läkare\n");
    }
}
