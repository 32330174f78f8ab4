//! End-to-end: a line's later versions replace its earlier ones in
//! ClickHouse. Lines are sent, then some are sent again (same seller,
//! invoice id and line number) with another buyer, another visit date (in
//! another month) or another amount, some twice: ClickHouse holds each line
//! identity once with its latest values, and the totals and the monthly
//! report equal those of the latest lines.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Datelike;
use distans_cli::cmd::produce;
use distans_domain::InvoiceLine;
use distans_e2e::{metric_at_least, poll_until, wait_for_fresh_aggregates, wait_for_lines, Env, Running};
use distans_synth::generate::{self, Options};
use distans_synth::profile::region_org_number;

const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, clickhouse::Row)]
struct Stored {
    seller_org_number: String,
    invoice_id: String,
    line_number: u32,
    buyer_org_number: String,
    visit_date: String,
    signed_net_amount_ore: i64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct BuyerMonthNet {
    buyer_org_number: String,
    month: String,
    net_amount_ore: i64,
}

fn signed_net(line: &InvoiceLine) -> i64 {
    if line.invoice_type == "381" {
        -line.net_amount_ore
    } else {
        line.net_amount_ore
    }
}

/// What ClickHouse should hold for `lines`, the latest version of each.
fn expected_rows(lines: &[InvoiceLine]) -> Vec<Stored> {
    let mut rows: Vec<Stored> = lines
        .iter()
        .map(|l| Stored {
            seller_org_number: l.seller_org_number.clone(),
            invoice_id: l.invoice_id.clone(),
            line_number: l.line_number as u32,
            buyer_org_number: l.buyer_org_number.clone(),
            visit_date: l.visit_date.to_string(),
            signed_net_amount_ore: signed_net(l),
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrected_line_counts_once_with_its_latest_values() -> anyhow::Result<()> {
    let Running { env, settings, client, services: [_ingester, _sink] } = Env::start()?.run(["ingester", "sink"])?;

    let mut options = Options::new("23", 2025, 1_200, 41, &settings.detector.rules);
    options.invalid_share = 0.0;
    let data = generate::generate(&options, &settings.tariffs).expect("generates");
    let valid = data.summary.valid as u64;
    assert_eq!(valid, data.lines.len() as u64, "every generated line is valid");
    produce::produce_lines(&settings, &data.lines, false).await?;
    wait_for_lines(&client, valid, TIMEOUT).await?;

    // Corrections: every 7th line to another buyer, every 5th to the last
    // day of the month before its visit, every 3rd with another price;
    // lines that are several of these get one version carrying all.
    let other_buyer = region_org_number("25");
    let mut latest = data.lines.clone();
    let mut first_corrections = Vec::new();
    for (i, line) in latest.iter_mut().enumerate() {
        let mut changed = false;
        if i % 7 == 0 {
            line.buyer_org_number = other_buyer.clone();
            changed = true;
        }
        if i % 5 == 0 {
            line.visit_date = line.visit_date.with_day(1).and_then(|d| d.pred_opt()).expect("a day earlier");
            changed = true;
        }
        if i % 3 == 0 {
            line.unit_price_ore += 1_000;
            line.gross_amount_ore = line.unit_price_ore * i64::from(line.quantity);
            line.net_amount_ore = line.gross_amount_ore - line.patient_fee_ore;
            changed = true;
        }
        if changed {
            first_corrections.push(line.clone());
        }
    }
    // Some lines corrected twice: the buyer back and the visit a day
    // earlier again; the second version is the latest.
    let mut second_corrections = Vec::new();
    for (i, line) in latest.iter_mut().enumerate() {
        if i % 35 == 0 {
            line.buyer_org_number = data.lines[i].buyer_org_number.clone();
            line.visit_date = line.visit_date.pred_opt().expect("a day earlier");
            second_corrections.push(line.clone());
        }
    }
    // Shuffled within each round (one line's versions stay in order: the
    // version is the record's place on the line's partition).
    first_corrections.reverse();
    produce::produce_lines(&settings, &first_corrections, false).await?;
    produce::produce_lines(&settings, &second_corrections, false).await?;
    let written = valid + (first_corrections.len() + second_corrections.len()) as u64;
    poll_until("every version to be written", TIMEOUT, async || {
        metric_at_least(env.sink_http, "distans_sink_rows_inserted_total", written as f64)
    })
    .await?;
    let moved_buyer = first_corrections.iter().filter(|l| l.buyer_org_number == other_buyer).count();
    eprintln!(
        "{valid} lines, {} corrected ({moved_buyer} to buyer {other_buyer}), {} corrected again",
        first_corrections.len(),
        second_corrections.len()
    );

    // Each identity once, with the latest version's values.
    let totals = distans_e2e::totals(&client).await?;
    eprintln!("totals now: {totals:?}");
    let want_net: i64 = latest.iter().map(signed_net).sum();
    let want_contacts: i64 = latest
        .iter()
        .map(|l| if l.invoice_type == "381" { -i64::from(l.quantity) } else { i64::from(l.quantity) })
        .sum();
    assert_eq!(
        (totals.lines, totals.net_amount_ore, totals.contacts),
        (valid, want_net, want_contacts),
        "each line once, latest amounts"
    );
    let stored: Vec<Stored> = client
        .query(
            "SELECT seller_org_number, invoice_id, line_number, buyer_org_number, toString(visit_date) AS visit_date, \
             signed_net_amount_ore FROM invoice_lines_current \
             ORDER BY seller_org_number, invoice_id, line_number, buyer_org_number",
        )
        .fetch_all()
        .await?;
    let want = expected_rows(&latest);
    assert_eq!(stored.len(), want.len(), "one row per identity");
    assert!(stored == want, "the stored lines differ from the latest versions");

    // The monthly report, by buyer: rebuilt for the months the old and the
    // new versions fall in.
    wait_for_fresh_aggregates(&client, "fresh aggregates", TIMEOUT).await?;
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for line in &latest {
        let month = line.visit_date.format("%Y-%m").to_string();
        *want.entry((line.buyer_org_number.clone(), month)).or_default() += signed_net(line);
    }
    let months: Vec<BuyerMonthNet> = client
        .query(
            "SELECT buyer_org_number, substring(toString(month), 1, 7) AS month, net_amount_ore \
             FROM report_cost_by_month ORDER BY buyer_org_number, month",
        )
        .fetch_all()
        .await?;
    let got: BTreeMap<(String, String), i64> =
        months.into_iter().map(|m| ((m.buyer_org_number, m.month), m.net_amount_ore)).collect();
    assert_eq!(got, want, "report_cost_by_month by buyer and month");
    assert!(got.keys().any(|(buyer, _)| *buyer == other_buyer), "the corrected buyer has its lines");
    assert!(got.keys().any(|(_, month)| month == "2024-12"), "a January visit moved to December 2024");
    Ok(())
}
