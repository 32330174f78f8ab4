//! What the report shows instead of the SQL's names: each column's heading,
//! the names of professions, rules, sexes and severities in the cells, and
//! numbers as Swedish (or English) readers write them.

use distans_domain::codes::{org_number_shown, ICD10_CHAPTERS, PROFESSIONS};
use distans_domain::money::group_digits;
use distans_domain::rules::Rule;
use distans_domain::text::Language;

/// Column name in the panels' SQL → (Swedish, English) heading.
pub const COLUMN_LABELS: [(&str, &str, &str); 44] = [
    ("month", "Månad", "Month"),
    ("contacts", "Kontakter", "Contacts"),
    ("patients", "Patienter", "Patients"),
    ("net_sek", "Nettokostnad, kr", "Net cost, SEK"),
    ("net_last_year_sek", "Nettokostnad året innan, kr", "Net cost a year earlier, SEK"),
    ("growth_percent", "Förändring, %", "Change, %"),
    ("profession", "Yrkesgrupp", "Profession"),
    ("provider", "Vårdgivare", "Provider"),
    ("provider_org_number", "Organisationsnummer", "Organisation number"),
    ("referred", "Remitterade", "Referred"),
    ("own_initiative", "Egen vårdbegäran", "Own initiative"),
    ("other", "Övriga", "Other"),
    ("referred_percent", "Andel remitterade, %", "Referred, %"),
    ("health_centre", "Vårdcentral", "Health centre"),
    ("health_centre_sek", "Vårdcentralens del, kr", "Health centre's share, SEK"),
    ("central_sek", "Regionens centrala del, kr", "Central share, SEK"),
    ("listed_1_july", "Listade 1 juli", "Listed on 1 July"),
    ("per_1000_listed", "Kontakter per 1 000 listade", "Contacts per 1 000 listed"),
    ("municipality", "Hemkommun", "Municipality of residence"),
    ("age_group", "Åldersgrupp", "Age group"),
    ("sex", "Kön", "Sex"),
    ("all_contacts", "Kontakter", "Contacts"),
    ("all_patients", "Patienter", "Patients"),
    ("chapter", "Kapitel", "Chapter"),
    ("chapter_title", "Diagnosgrupp", "Diagnosis group"),
    ("sessions", "Besök", "Sessions"),
    ("sessions_per_patient", "Besök per patient", "Sessions per patient"),
    ("most_for_one_patient", "Flest för en patient", "Most for one patient"),
    ("per_patient", "Kontakter per patient", "Contacts per patient"),
    ("peers_median", "Jämförbaras median", "Peers' median"),
    ("repeat_percent", "Återbesök, %", "Repeat contacts, %"),
    ("peers_repeat_percent", "Jämförbaras återbesök, %", "Peers' repeat contacts, %"),
    ("peers", "Jämförbara vårdgivare", "Peers"),
    ("score", "Avvikelse (robust z)", "Distance (robust z)"),
    ("provider_group", "Koncern", "Provider group"),
    ("rule", "Regel", "Rule"),
    ("severity", "Allvarlighetsgrad", "Severity"),
    ("findings", "Fynd", "Findings"),
    ("lines", "Fakturarader", "Invoice lines"),
    ("amount_at_stake_sek", "Belopp i fråga, kr", "Amount at stake, SEK"),
    ("flagged_sek", "Belopp på flaggade rader, kr", "On flagged lines, SEK"),
    ("flagged_contacts", "Flaggade kontakter", "Flagged contacts"),
    ("disputable_percent", "Andel som kan ifrågasättas, %", "Disputable share, %"),
    ("year", "År", "Year"),
];

/// A column's heading in `language`; the column's name when it has none.
pub fn column(name: &str, language: Language) -> String {
    COLUMN_LABELS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or_else(|| name.to_string(), |(_, sv, en)| language.pick(*sv, *en).to_string())
}

/// A cell's text for people: codes and ids in a column that holds them as
/// names (professions, rules, severities, sexes, the unlisted, diagnosis
/// groups) in `language`, organisation numbers as `559100-0020`; anything
/// else as it is.
pub fn cell(column: &str, raw: &str, language: Language) -> String {
    let named = match column {
        _ if column.ends_with("org_number") => Some(org_number_shown(raw)),
        "profession" => PROFESSIONS
            .iter()
            .find(|p| raw == p.profession_code || raw == p.label_sv || raw == p.label_en)
            .map(|p| capitalised(language.pick(&p.label_sv, &p.label_en))),
        "rule" => Rule::by_id(raw).map(|r| r.name.in_language(language).to_string()),
        "severity" => match raw {
            "high" => Some(language.pick("hög", "high").to_string()),
            "medium" => Some(language.pick("medel", "medium").to_string()),
            "low" => Some(language.pick("låg", "low").to_string()),
            _ => None,
        },
        "sex" => match raw {
            "female" => Some(language.pick("kvinnor", "women").to_string()),
            "male" => Some(language.pick("män", "men").to_string()),
            "unknown" => Some(language.pick("okänt", "unknown").to_string()),
            _ => None,
        },
        "age_group" if raw == "unknown" => Some(language.pick("okänd", "unknown").to_string()),
        "health_centre" if raw == "unlisted" => Some(language.pick("Ej listade", "Unlisted").to_string()),
        "chapter_title" if raw == "no diagnosis given" => {
            Some(language.pick("Ingen diagnos angiven", "No diagnosis given").to_string())
        }
        "chapter_title" => ICD10_CHAPTERS
            .iter()
            .find(|c| raw == c.title_sv || raw == c.title_en)
            .map(|c| language.pick(&c.title_sv, &c.title_en).to_string()),
        _ => None,
    };
    named.unwrap_or_else(|| raw.to_string())
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// A number as text for people: digits grouped by three with a space, as
/// amounts are ([`group_digits`]: "2 275", "1 234 567"), and
/// in Swedish a decimal comma ("1 234 567,5"). Text that is not a plain
/// number is returned as it is. Identifiers made of digits are not numbers:
/// see [`cell`].
pub fn number(text: &str, language: Language) -> String {
    let (sign, rest) = text.strip_prefix('-').map_or(("", text), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return text.to_string();
    }
    let out = group_digits(int);
    match frac {
        Some(f) => format!("{sign}{out}{}{f}", language.pick(',', '.')),
        None => format!("{sign}{out}"),
    }
}

/// The explanations of the rules whose findings an answer shows: the
/// panel's own rules and every rule named in its `rule` column, once each,
/// as (name, meaning) in `language`.
pub fn rules_shown(
    panel_rules: &[&str],
    rule_cells: impl Iterator<Item = String>,
    language: Language,
) -> Vec<(&'static str, &'static str)> {
    let mut ids: Vec<String> = panel_rules.iter().map(|r| r.to_string()).collect();
    for id in rule_cells {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.iter()
        .filter_map(|id| Rule::by_id(id))
        .map(|r| (r.name.in_language(language), r.meaning.in_language(language)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_store::panels::PANEL_QUERIES;

    #[test]
    fn every_column_of_every_panel_has_a_heading_in_both_languages() {
        for query in PANEL_QUERIES {
            let columns = query.columns();
            assert!(!columns.is_empty(), "{}", query.id);
            for c in columns {
                assert!(COLUMN_LABELS.iter().any(|(n, _, _)| *n == c), "{}: no heading for {c}", query.id);
            }
        }
        assert_eq!(column("net_sek", Language::Swedish), "Nettokostnad, kr");
        assert_eq!(column("per_1000_listed", Language::English), "Contacts per 1 000 listed");
    }

    #[test]
    fn codes_read_as_names() {
        assert_eq!(cell("profession", "psychologist", Language::Swedish), "Psykolog");
        assert_eq!(cell("profession", "LK", Language::Swedish), "Läkare");
        assert_eq!(cell("profession", "LK", Language::English), "Physician");
        assert_eq!(cell("rule", "wrong_price", Language::Swedish), "Fel pris");
        assert_eq!(cell("rule", "retired_rule", Language::Swedish), "retired_rule");
        assert_eq!(cell("sex", "female", Language::Swedish), "kvinnor");
        assert_eq!(cell("health_centre", "unlisted", Language::Swedish), "Ej listade");
        assert_eq!(cell("provider", "unlisted", Language::Swedish), "unlisted", "only in its column");
        assert_eq!(cell("provider_org_number", "5591000020", Language::Swedish), "559100-0020");
        assert_eq!(
            number(&cell("provider_org_number", "5591000020", Language::Swedish), Language::Swedish),
            "559100-0020"
        );
    }

    #[test]
    fn numbers_as_swedish_readers_write_them() {
        assert_eq!(number("9336450", Language::Swedish), "9 336 450");
        assert_eq!(number("-1234567.5", Language::Swedish), "-1 234 567,5");
        assert_eq!(number("-1234567.5", Language::English), "-1 234 567.5");
        assert_eq!(number("33.3", Language::Swedish), "33,3");
        assert_eq!(number("2275", Language::Swedish), "2 275", "as the findings' table groups it");
        assert_eq!(number("999", Language::Swedish), "999");
        assert_eq!(number("2025-01", Language::Swedish), "2025-01");
        assert_eq!(number("1.2.3", Language::Swedish), "1.2.3");
        assert_eq!(number("Vård 1.0", Language::Swedish), "Vård 1.0");
    }

    #[test]
    fn each_rule_shown_is_explained_once() {
        let shown = rules_shown(
            &["provider_far_from_peers"],
            ["wrong_price", "wrong_price", "retired_rule"].into_iter().map(String::from),
            Language::Swedish,
        );
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[1], ("Fel pris", distans_domain::rules::WRONG_PRICE.meaning.sv));
    }
}
