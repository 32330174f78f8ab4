//! Findings per rule for `distans report`, with what each rule means (the
//! report's panels are in `answers`).

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_domain::money::Ore;
use distans_domain::rules::Rule;
use distans_store::queries::RuleFindings;

/// Findings per rule with what each rule means.
pub fn render_findings(rows: &[RuleFindings]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["Rule", "Findings", "Providers", "At stake, SEK", "What it means"]);
    for row in rows {
        let meaning = Rule::by_id(&row.rule_id).map_or("", |r| r.english);
        table.add_row([
            row.rule_id.clone(),
            row.findings.to_string(),
            row.providers.to_string(),
            Ore(row.amount_at_stake_ore).whole_kronor_number(),
            meaning.to_string(),
        ]);
    }
    let total: u64 = rows.iter().map(|r| r.findings).sum();
    let at_stake: Ore = rows.iter().map(|r| Ore(r.amount_at_stake_ore)).sum();
    table.add_row([
        "Total".to_string(),
        total.to_string(),
        String::new(),
        at_stake.whole_kronor_number(),
        String::new(),
    ]);
    for index in 1..=3 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("Findings per rule\n{table}\n")
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
        let text = render_findings(&rows);
        assert!(text.contains("9 200 001"), "{text}");
        assert!(text.contains(" -1 "), "{text}");
        assert!(text.contains(distans_domain::rules::WRONG_PRICE.english), "{text}");
        assert!(text.contains("9 199 999"), "total: {text}");
    }
}
