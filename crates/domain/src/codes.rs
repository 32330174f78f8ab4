//! Shape checks for the codes an invoice line carries: Luhn check digits,
//! organisation numbers, HSA-ids, SCB county and municipality codes,
//! ICD-10-SE and KVÅ codes, and invoice ids (any the law allows, and a
//! seller's own stricter numbering where configured).

/// SCB county codes (länskoder) of Sweden's 21 regions.
pub const COUNTY_CODES: [&str; 21] = [
    "01", "03", "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "17", "18", "19", "20", "21", "22", "23",
    "24", "25",
];

/// SCB county code → county name.
pub const COUNTY_NAMES: [(&str, &str); 21] = [
    ("01", "Stockholms län"),
    ("03", "Uppsala län"),
    ("04", "Södermanlands län"),
    ("05", "Östergötlands län"),
    ("06", "Jönköpings län"),
    ("07", "Kronobergs län"),
    ("08", "Kalmar län"),
    ("09", "Gotlands län"),
    ("10", "Blekinge län"),
    ("12", "Skåne län"),
    ("13", "Hallands län"),
    ("14", "Västra Götalands län"),
    ("17", "Värmlands län"),
    ("18", "Örebro län"),
    ("19", "Västmanlands län"),
    ("20", "Dalarnas län"),
    ("21", "Gävleborgs län"),
    ("22", "Västernorrlands län"),
    ("23", "Jämtlands län"),
    ("24", "Västerbottens län"),
    ("25", "Norrbottens län"),
];

/// SCB county code → the name of the region (regionen, the county
/// council) that pays for its residents' care, as the regions call themselves.
pub const REGION_NAMES: [(&str, &str); 21] = [
    ("01", "Region Stockholm"),
    ("03", "Region Uppsala"),
    ("04", "Region Sörmland"),
    ("05", "Region Östergötland"),
    ("06", "Region Jönköpings län"),
    ("07", "Region Kronoberg"),
    ("08", "Region Kalmar län"),
    ("09", "Region Gotland"),
    ("10", "Region Blekinge"),
    ("12", "Region Skåne"),
    ("13", "Region Halland"),
    ("14", "Västra Götalandsregionen"),
    ("17", "Region Värmland"),
    ("18", "Region Örebro län"),
    ("19", "Region Västmanland"),
    ("20", "Region Dalarna"),
    ("21", "Region Gävleborg"),
    ("22", "Region Västernorrland"),
    ("23", "Region Jämtland Härjedalen"),
    ("24", "Region Västerbotten"),
    ("25", "Region Norrbotten"),
];

/// The region of SCB county `county_code` ("23" → "Region Jämtland Härjedalen").
pub fn region_name(county_code: &str) -> Option<&'static str> {
    REGION_NAMES.iter().find(|(code, _)| *code == county_code).map(|(_, name)| *name)
}

/// A RIV profession code's label in Swedish or English ("PS" → "psykolog"
/// or "psychologist"); `None` for a code not in [`PROFESSION_LABELS`].
pub fn profession_label(code: &str, swedish: bool) -> Option<&'static str> {
    PROFESSION_LABELS.iter().find(|(c, _, _)| *c == code).map(|(_, sv, en)| if swedish { *sv } else { *en })
}

/// SCB municipality code → name, for the counties of the regions' papers
/// (Södermanland and Jönköping, where most digital providers are; the
/// home regions Västmanland, Jämtland Härjedalen and Norrbotten). The other
/// counties' municipalities are not listed yet: reports show their codes.
pub const MUNICIPALITY_NAMES: [(&str, &str); 54] = [
    ("0428", "Vingåker"),
    ("0461", "Gnesta"),
    ("0480", "Nyköping"),
    ("0481", "Oxelösund"),
    ("0482", "Flen"),
    ("0483", "Katrineholm"),
    ("0484", "Eskilstuna"),
    ("0486", "Strängnäs"),
    ("0488", "Trosa"),
    ("0604", "Aneby"),
    ("0617", "Gnosjö"),
    ("0642", "Mullsjö"),
    ("0643", "Habo"),
    ("0662", "Gislaved"),
    ("0665", "Vaggeryd"),
    ("0680", "Jönköping"),
    ("0682", "Nässjö"),
    ("0683", "Värnamo"),
    ("0684", "Sävsjö"),
    ("0685", "Vetlanda"),
    ("0686", "Eksjö"),
    ("0687", "Tranås"),
    ("1904", "Skinnskatteberg"),
    ("1907", "Surahammar"),
    ("1960", "Kungsör"),
    ("1961", "Hallstahammar"),
    ("1962", "Norberg"),
    ("1980", "Västerås"),
    ("1981", "Sala"),
    ("1982", "Fagersta"),
    ("1983", "Köping"),
    ("1984", "Arboga"),
    ("2303", "Ragunda"),
    ("2305", "Bräcke"),
    ("2309", "Krokom"),
    ("2313", "Strömsund"),
    ("2321", "Åre"),
    ("2326", "Berg"),
    ("2361", "Härjedalen"),
    ("2380", "Östersund"),
    ("2505", "Arvidsjaur"),
    ("2506", "Arjeplog"),
    ("2510", "Jokkmokk"),
    ("2513", "Överkalix"),
    ("2514", "Kalix"),
    ("2518", "Övertorneå"),
    ("2521", "Pajala"),
    ("2523", "Gällivare"),
    ("2560", "Älvsbyn"),
    ("2580", "Luleå"),
    ("2581", "Piteå"),
    ("2582", "Boden"),
    ("2583", "Haparanda"),
    ("2584", "Kiruna"),
];

/// RIV profession code → (Swedish, English) label, for reports.
pub const PROFESSION_LABELS: [(&str, &str, &str); 10] = [
    ("LK", "läkare", "physician"),
    ("PS", "psykolog", "psychologist"),
    ("PT", "psykoterapeut", "psychotherapist"),
    ("HK", "kurator", "counsellor"),
    ("SJ", "sjuksköterska", "nurse"),
    ("FT", "fysioterapeut", "physiotherapist"),
    ("BM", "barnmorska", "midwife"),
    ("AT", "arbetsterapeut", "occupational therapist"),
    ("DT", "dietist", "dietitian"),
    ("LO", "logoped", "speech therapist"),
];

/// ICD-10 chapters: (chapter, first code, last code, Swedish, English title).
/// Reports group lines by the chapter of their first diagnosis code (the
/// same ranges are in the sink's refresh SQL).
pub const ICD10_CHAPTERS: [(&str, &str, &str, &str, &str); 22] = [
    ("I", "A00", "B99", "Vissa infektionssjukdomar och parasitsjukdomar", "Infectious and parasitic diseases"),
    ("II", "C00", "D48", "Tumörer", "Neoplasms"),
    ("III", "D50", "D89", "Sjukdomar i blod och immunsystem", "Diseases of the blood and immune system"),
    (
        "IV",
        "E00",
        "E90",
        "Endokrina sjukdomar, nutritionsrubbningar och ämnesomsättningssjukdomar",
        "Endocrine, nutritional and metabolic diseases",
    ),
    ("V", "F00", "F99", "Psykiska sjukdomar och syndrom samt beteendestörningar", "Mental and behavioural disorders"),
    ("VI", "G00", "G99", "Sjukdomar i nervsystemet", "Diseases of the nervous system"),
    ("VII", "H00", "H59", "Sjukdomar i ögat och närliggande organ", "Diseases of the eye and adnexa"),
    ("VIII", "H60", "H95", "Sjukdomar i örat och mastoidutskottet", "Diseases of the ear and mastoid process"),
    ("IX", "I00", "I99", "Cirkulationsorganens sjukdomar", "Diseases of the circulatory system"),
    ("X", "J00", "J99", "Andningsorganens sjukdomar", "Diseases of the respiratory system"),
    ("XI", "K00", "K93", "Matsmältningsorganens sjukdomar", "Diseases of the digestive system"),
    ("XII", "L00", "L99", "Hudens och underhudens sjukdomar", "Diseases of the skin"),
    (
        "XIII",
        "M00",
        "M99",
        "Sjukdomar i muskuloskeletala systemet och bindväven",
        "Diseases of the musculoskeletal system",
    ),
    ("XIV", "N00", "N99", "Sjukdomar i urin- och könsorganen", "Diseases of the genitourinary system"),
    ("XV", "O00", "O99", "Graviditet, förlossning och barnsängstid", "Pregnancy and childbirth"),
    ("XVI", "P00", "P96", "Vissa perinatala tillstånd", "Perinatal conditions"),
    ("XVII", "Q00", "Q99", "Medfödda missbildningar", "Congenital malformations"),
    ("XVIII", "R00", "R99", "Symtom, sjukdomstecken och onormala fynd", "Symptoms, signs and abnormal findings"),
    ("XIX", "S00", "T98", "Skador och förgiftningar", "Injury and poisoning"),
    ("XX", "V01", "Y98", "Yttre orsaker till sjukdom och död", "External causes"),
    (
        "XXI",
        "Z00",
        "Z99",
        "Faktorer av betydelse för hälsotillståndet och för kontakter med hälso- och sjukvården",
        "Factors influencing health status and contact with health services",
    ),
    ("XXII", "U00", "U99", "Koder för särskilda ändamål", "Codes for special purposes"),
];

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

/// A Swedish organisation number: ten digits (an optional hyphen after the
/// sixth is accepted) with a Luhn check digit. Returns the ten digits.
pub fn normalise_org_number(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| *c != '-').collect();
    if digits.len() != 10 || !luhn_valid(&digits) {
        return None;
    }
    Some(digits)
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
        let named: Vec<&str> = COUNTY_NAMES.iter().map(|(code, _)| *code).collect();
        assert_eq!(named, COUNTY_CODES);
    }

    #[test]
    fn municipality_names_are_valid_codes_once_each() {
        let codes: std::collections::BTreeSet<&str> = MUNICIPALITY_NAMES.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes.len(), MUNICIPALITY_NAMES.len());
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
}
