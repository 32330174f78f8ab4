//! What `distans audit` prints as terminal tables: the dead letters and the
//! active findings of an in-process run (`distans_ingester::offline::Audit`).

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_domain::money::Ore;
use distans_ingester::offline::Audit;

/// The dead letters and the active findings as terminal tables; text from
/// the invoices (a rejected line's key, evidence) as one safe line each
/// (`distans_domain::text::printable`), so no escape sequence reaches the terminal.
pub fn render_tables(audit: &Audit) -> String {
    let safe = |s: &str| distans_domain::text::printable(s, distans_domain::text::SHOWN_CHARS).into_owned();
    let mut dead = table(&["File", "Row", "Line", "Reason", "Net, SEK", "Problems"]);
    for d in &audit.dead_letters {
        let problems: Vec<String> =
            d.violations.iter().map(|v| safe(&format!("{} {}: {}", v.code, v.field, v.message))).collect();
        dead.add_row([
            d.source.topic.clone(),
            d.row.to_string(),
            safe(&d.line_key),
            d.reason.to_string(),
            Ore(d.net_amount_ore).whole_kronor_number(),
            problems.join("\n"),
        ]);
    }
    let mut found = table(&["Rule", "Severity", "Line", "Visit", "Provider", "At stake, SEK", "Evidence"]);
    for f in &audit.findings {
        found.add_row([
            f.rule_id.clone(),
            f.severity.as_str().to_string(),
            f.line_keys.iter().map(|k| safe(k)).collect::<Vec<_>>().join("\n"),
            f.visit_date.to_string(),
            distans_domain::codes::org_number_shown(&f.provider_org_number),
            Ore(f.amount_at_stake_ore).whole_kronor_number(),
            safe(&f.evidence),
        ]);
    }
    let at_stake: Ore = audit.findings.iter().map(|f| Ore(f.amount_at_stake_ore)).sum();
    right_align(&mut dead, 4);
    right_align(&mut found, 5);
    format!(
        "Dead letters: {}\n{dead}\nActive findings: {} (at stake {})\n{found}\n",
        audit.dead_letters.len(),
        audit.findings.len(),
        at_stake.whole_kronor()
    )
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

fn right_align(table: &mut Table, column: usize) {
    if let Some(column) = table.column_mut(column) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}
