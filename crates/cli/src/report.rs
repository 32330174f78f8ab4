//! Findings per rule for `distans report`, with what each rule means (the
//! report's panels are in `answers`).

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_store::queries::RuleFindings;

/// Findings per rule with what each rule means.
pub fn render_findings(rows: &[RuleFindings]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["Rule", "Findings", "Providers", "At stake, SEK", "What it means"]);
    for row in rows {
        let meaning = distans_domain::rules::RULES
            .iter()
            .find(|r| r.id == row.rule_id)
            .map_or(String::new(), |r| r.english.to_string());
        table.add_row([
            row.rule_id.clone(),
            row.findings.to_string(),
            row.providers.to_string(),
            kronor(row.amount_at_stake_ore),
            meaning,
        ]);
    }
    let total: u64 = rows.iter().map(|r| r.findings).sum();
    let at_stake: i64 = rows.iter().map(|r| r.amount_at_stake_ore).sum();
    table.add_row(["Total".to_string(), total.to_string(), String::new(), kronor(at_stake), String::new()]);
    for index in 1..=3 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("Findings per rule\n{table}\n")
}

/// Öre as Swedish kronor with a space every three digits: `1 234 567`.
pub fn kronor(ore: i64) -> String {
    let sek = (ore as f64 / 100.0).round() as i64;
    let digits = sek.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if sek < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kronor_formatting() {
        assert_eq!(kronor(0), "0");
        assert_eq!(kronor(50_000), "500");
        assert_eq!(kronor(920_000_000), "9 200 000");
        assert_eq!(kronor(-123_456_789), "-1 234 568");
    }
}
