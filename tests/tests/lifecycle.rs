//! End-to-end: an invoice line's whole life. A generated year, then
//! corrections of some of its lines (buyer, visit date, amount) and credit
//! notes, sent in a shuffled order, through the real broker, ingester, sink
//! and detector into the real ClickHouse. ClickHouse must count each line
//! identity once with its latest values, every report view must sum to the
//! latest lines, and the active findings must equal `distans audit`'s (the
//! pipeline in process) on the same lines in the same order.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Datelike;
use distans_cli::cmd::produce;
use distans_domain::InvoiceLine;
use distans_e2e::{poll_until, wait_for_fresh_aggregates, Env, MonthNet, Running};
use distans_ingester::offline::InProcess;
use distans_synth::generate::{self, Options};
use distans_synth::profile::region_org_number;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct RuleLine {
    rule_id: String,
    line_key: String,
}

/// Corrections and credit notes of some of the valid invoice lines: every
/// 40th moves its visit 45 days on (often into another month), the next
/// group changes buyer (to a region whose county is not the patient's), the
/// next is repriced at 650 kr, and the next is credited in full.
fn changes(lines: &[InvoiceLine], valid: &dyn Fn(&InvoiceLine) -> bool) -> Vec<InvoiceLine> {
    let other_buyer = region_org_number("19");
    let mut out = Vec::new();
    let invoices: Vec<&InvoiceLine> = lines.iter().filter(|l| l.invoice_type == "380" && valid(l)).collect();
    for (i, line) in invoices.iter().enumerate() {
        let mut changed = (*line).clone();
        match i % 40 {
            0 => changed.visit_date = line.visit_date + chrono::Days::new(45),
            13 => changed.buyer_org_number = other_buyer.clone(),
            27 => {
                changed.unit_price_ore = 65_000;
                changed.gross_amount_ore = 65_000 * i64::from(line.quantity);
                changed.net_amount_ore = changed.gross_amount_ore - line.patient_fee_ore;
                changed.payable_amount_ore = changed.net_amount_ore;
            }
            33 => {
                let date = line.invoice_date + chrono::Days::new(30);
                changed.invoice_type = "381".into();
                changed.credited_invoice_id = Some(line.invoice_id.clone());
                changed.invoice_id = format!(
                    "ZVF{}{:02}{:02}{:06}",
                    line.seller_org_number,
                    date.year() % 100,
                    date.month(),
                    950_000 + i
                );
                changed.line_number = 1;
                changed.invoice_date = date;
            }
            _ => continue,
        }
        if changed.visit_date > changed.invoice_date {
            changed.invoice_date = changed.visit_date;
        }
        out.push(changed);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn corrections_and_credit_notes_in_any_order_leave_the_latest_lines_and_the_audits_findings() -> anyhow::Result<()>
{
    let Running { env: _env, settings, client: db, services: [_ingester, _sink, _detector] } =
        Env::start()?.run(["ingester", "sink", "detector"])?;

    let options = Options::new("23", 2025, 2_000, 17, &settings.detector.rules);
    let year = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;

    // The reference: the pipeline in process, on the originals and then the
    // changes, in the order they are sent.
    let mut audit = InProcess::new(
        settings.tariffs.clone(),
        settings.pseudonymiser()?,
        settings.validation()?,
        settings.detector.rules.clone(),
    );
    for (index, line) in year.lines.iter().enumerate() {
        audit.take("invoice-lines", index + 1, line)?;
    }
    let rejected: std::collections::HashSet<String> =
        audit_keys_rejected(&settings, &year.lines)?.into_iter().collect();
    let mut changed = changes(&year.lines, &|l| !rejected.contains(&l.key()));
    changed.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(17));
    for (index, line) in changed.iter().enumerate() {
        audit.take("invoice-lines", year.lines.len() + index + 1, line)?;
    }
    let audit = audit.finish();
    assert!(changed.len() >= 150, "{} changes", changed.len());

    // The latest version of each valid line, by identity, in sending order.
    let mut latest: BTreeMap<(String, String, i32), &InvoiceLine> = BTreeMap::new();
    for line in year.lines.iter().chain(&changed) {
        if !rejected.contains(&line.key()) {
            latest.insert((line.seller_org_number.clone(), line.invoice_id.clone(), line.line_number), line);
        }
    }
    let signed = |l: &InvoiceLine| if l.invoice_type == "381" { -l.net_amount_ore } else { l.net_amount_ore };
    let expected_net: i64 = latest.values().map(|l| signed(l)).sum();
    let mut expected_months: BTreeMap<String, i64> = BTreeMap::new();
    for line in latest.values() {
        *expected_months.entry(line.visit_date.format("%Y-%m").to_string()).or_default() += signed(line);
    }
    let mut expected_findings: Vec<(String, String)> =
        audit.findings.iter().map(|f| (f.rule_id.clone(), f.line_keys[0].clone())).collect();
    expected_findings.sort();
    assert!(expected_findings.iter().any(|(rule, _)| rule == "patient_not_resident"));

    // Originals first (each acked), then the changes: every version of a
    // line is on one partition, in that order.
    produce::produce_lines(&settings, &year.lines, false).await?;
    produce::produce_lines(&settings, &changed, false).await?;

    let want = latest.len() as u64;
    let totals = poll_until("each line identity once, with its latest values", TIMEOUT, async || {
        let totals = distans_store::queries::totals(&db).await?;
        if totals.lines == want && totals.net_amount_ore == expected_net {
            Ok(totals)
        } else {
            anyhow::bail!("{totals:?}, want {want} lines and {expected_net} öre net")
        }
    })
    .await?;
    assert_eq!(totals.lines, want);

    // The active findings are the audit's.
    let found = poll_until("the audit's active findings", TIMEOUT, async || {
        let mut rows: Vec<RuleLine> =
            db.query("SELECT rule_id, line_key FROM findings_active").fetch_all::<RuleLine>().await?;
        rows.sort_by(|a, b| (&a.rule_id, &a.line_key).cmp(&(&b.rule_id, &b.line_key)));
        let found: Vec<(String, String)> = rows.into_iter().map(|r| (r.rule_id, r.line_key)).collect();
        if found == expected_findings {
            Ok(found)
        } else {
            anyhow::bail!("{} active findings in ClickHouse, the audit has {}", found.len(), expected_findings.len())
        }
    })
    .await?;
    eprintln!(
        "{} lines, {} changes, {} active findings, {} dead letters: ClickHouse agrees with the audit",
        want,
        changed.len(),
        found.len(),
        audit.dead_letters.len()
    );

    // The report views sum to the latest lines, month by month.
    wait_for_fresh_aggregates(&db, "fresh aggregates", TIMEOUT).await?;
    let buyers: Vec<String> = latest
        .values()
        .map(|l| l.buyer_org_number.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut months: BTreeMap<String, i64> = BTreeMap::new();
    for buyer in &buyers {
        let rows: Vec<MonthNet> = db
            .query(
                "SELECT substring(toString(month), 1, 7) AS month, net_amount_ore FROM report_cost_by_month \
                 WHERE buyer_org_number = ?",
            )
            .bind(buyer)
            .fetch_all()
            .await?;
        for row in rows {
            *months.entry(row.month).or_default() += row.net_amount_ore;
        }
    }
    months.retain(|_, net| *net != 0);
    expected_months.retain(|_, net| *net != 0);
    assert_eq!(months, expected_months, "cost by month equals the latest lines'");
    Ok(())
}

/// The keys of the lines the ingester rejects (their own audit, alone).
fn audit_keys_rejected(settings: &distans_runtime::Settings, lines: &[InvoiceLine]) -> anyhow::Result<Vec<String>> {
    let mut alone = InProcess::new(
        settings.tariffs.clone(),
        settings.pseudonymiser()?,
        settings.validation()?,
        settings.detector.rules.clone(),
    );
    for (index, line) in lines.iter().enumerate() {
        alone.take("invoice-lines", index + 1, line)?;
    }
    Ok(alone.finish().dead_letters.into_iter().map(|d| d.line_key).collect())
}
