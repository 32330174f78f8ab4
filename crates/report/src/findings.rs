//! Findings per rule for `distans report`, with what each rule means (the
//! report's panels are in `answers`).

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_domain::money::{group_digits, Ore};
use distans_domain::rules::Rule;
use distans_domain::text::{self, Language};
use distans_store::queries::RuleFindings;

/// Findings per rule (all years) with what each rule means, in `language`.
pub fn render_findings(rows: &[RuleFindings], language: Language) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(match language {
        Language::Swedish => ["Regel", "Fynd", "Vårdgivare", "Belopp i fråga, kr", "Vad den betyder"],
        Language::English => ["Rule", "Findings", "Providers", "At stake, SEK", "What it means"],
    });
    for row in rows {
        let rule = Rule::by_id(&row.rule_id);
        let meaning = rule.map_or("", |r| r.meaning.in_language(language));
        let name = rule.map_or_else(
            || text::printable(&row.rule_id, text::SHOWN_CHARS).into_owned(),
            |r| r.name.in_language(language).to_string(),
        );
        table.add_row([
            name,
            group_digits(&row.findings.to_string()),
            group_digits(&row.providers.to_string()),
            Ore(row.amount_at_stake_ore).whole_kronor_number(),
            meaning.to_string(),
        ]);
    }
    let total: u64 = rows.iter().map(|r| r.findings).sum();
    let at_stake: Ore = rows.iter().map(|r| Ore(r.amount_at_stake_ore)).sum();
    table.add_row([
        language.pick("Totalt", "Total").to_string(),
        group_digits(&total.to_string()),
        String::new(),
        at_stake.whole_kronor_number(),
        String::new(),
    ]);
    for index in 1..=3 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{}\n{table}\n", language.pick("Fynd per regel (alla år)", "Findings per rule (all years)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_per_rule_in_whole_kronor_with_their_meaning() {
        let rows = [
            RuleFindings { rule_id: "wrong_price".into(), findings: 2, providers: 1, amount_at_stake_ore: 920_000_050 },
            RuleFindings { rule_id: "retired_rule".into(), findings: 1, providers: 1, amount_at_stake_ore: -149 },
        ];
        let text = render_findings(&rows, Language::English);
        assert!(text.contains("9 200 001"), "{text}");
        assert!(text.contains(" -1 "), "{text}");
        assert!(text.contains(distans_domain::rules::WRONG_PRICE.meaning.en), "{text}");
        assert!(text.contains("9 199 999"), "total: {text}");
        let text = render_findings(&rows, Language::Swedish);
        assert!(text.contains("Fel pris") && text.contains(distans_domain::rules::WRONG_PRICE.meaning.sv), "{text}");
        assert!(text.contains("Totalt") && text.contains("retired_rule"), "{text}");
    }

    #[test]
    fn counts_are_grouped_as_amounts_are() {
        let rows = [RuleFindings {
            rule_id: "wrong_price".into(),
            findings: 2_275,
            providers: 3,
            amount_at_stake_ore: 227_500,
        }];
        let text = render_findings(&rows, Language::Swedish);
        assert_eq!(text.matches("2 275").count(), 4, "findings and amount, in the row and the total: {text}");
    }
}
