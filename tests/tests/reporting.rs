//! End-to-end: a generated year with known totals and its listing register
//! through the real broker, services and ClickHouse; every report view must
//! return the known totals, and the HTML report must draw in Chromium.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_domain::rules::{LISTED_AT_SAME_GROUP, PROVIDER_FAR_FROM_PEERS};
use distans_e2e::{poll_until, wait_for_fresh_aggregates, wait_for_lines, Env, Running};
use distans_files::listing;
use distans_report::answers::{self, Answer};
use distans_report::panels::Chart;
use distans_synth::generate::{self, Options};
use distans_synth::register;

const TIMEOUT: Duration = Duration::from_secs(300);
/// Västmanland: 20 % of a listed patient's cost on the health centre (default config).
const COUNTY: &str = "19";
const HEALTH_CENTRE_PERCENT: i64 = 20;

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct UnitCost {
    listing_unit_hsa_id: String,
    contacts: i64,
    net_amount_ore: i64,
    health_centre_ore: i64,
    central_ore: i64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Sum {
    contacts: i64,
    net_amount_ore: i64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Listed {
    listing_unit_hsa_id: String,
    listed: u64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct FarFromPeers {
    month: String,
    profession_code: String,
    provider_org_number: String,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct SameGroup {
    provider_org_number: String,
    listing_unit_hsa_id: String,
    contacts: i64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct SameGroupMonth {
    month: String,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct RuleTotal {
    rule_id: String,
    findings: u64,
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_answer_with_the_known_totals_and_the_html_report_draws() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.review_interval_ms = 500;
    let Running { env, settings, client: db, services: [_ingester, _sink, mut detector] } =
        env.run(["ingester", "sink", "detector"])?;

    let options = Options::new(COUNTY, 2025, 4_000, 5, &settings.detector.rules);
    let data = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
    let register = register::generate(&data, &options).map_err(anyhow::Error::msg)?;
    let summary = &data.summary;
    let expected = &register.summary;
    let buyer = summary.buyer_org_number.clone();

    let produced_at = Instant::now();
    produce::produce_lines(&settings, &data.lines, false).await?;
    wait_for_lines(&db, summary.valid as u64, TIMEOUT).await?;
    wait_for_fresh_aggregates(&db, "fresh aggregates", TIMEOUT).await?;
    eprintln!(
        "lines, findings and aggregates fresh {:.1} s after produce started",
        produced_at.elapsed().as_secs_f64()
    );
    // `distans wait --summary` counts the summary's region and year only:
    // this year's file waits for nothing more, another region's (never
    // sent) is not taken for done because these lines are in ClickHouse.
    let summaries = tempfile::tempdir()?;
    let summary_file = |name: &str, summary: &distans_synth::summary::Summary| -> anyhow::Result<_> {
        let path = summaries.path().join(name);
        std::fs::write(&path, serde_json::to_string(summary)?)?;
        Ok(path)
    };
    let sent = summary_file("sent.json", summary)?;
    distans_cli::cmd::wait::run(None, Some(&sent), None, TIMEOUT, &settings).await?;
    let mut other = summary.clone();
    other.buyer_org_number = "2321000255".to_string();
    let never_sent = summary_file("never-sent.json", &other)?;
    let waited = distans_cli::cmd::wait::run(None, Some(&never_sent), None, Duration::from_secs(2), &settings).await;
    let message = waited.expect_err("another region's lines were never sent").to_string();
    assert!(message.contains(&format!("0 of {} lines of 2321000255 in 2025", summary.valid)), "{message}");

    // Before the register: every line is unlisted, and central.
    let units = unit_costs(&db, &buyer).await?;
    assert_eq!(units.len(), 1, "{units:?}");
    assert_eq!((units[0].listing_unit_hsa_id.as_str(), units[0].net_amount_ore), ("", summary.valid_net_amount_ore));

    // The register, in clear text as a region exports it, imported after the
    // lines: the sink sees the new version and rebuilds every month.
    let file = env.dir.path().join("listing.csv");
    listing::write_clear_csv(&register.listings, std::fs::File::create(&file)?)?;
    let parsed = listing::read(&file, Some(&settings.pseudonymiser()?))?;
    distans_store::listing::import(
        &db,
        COUNTY,
        "listing.csv",
        &parsed.sha256,
        &parsed.listings,
        distans_runtime::now_ms(),
    )
    .await?;
    let unlisted_contacts = expected.contacts_by_unit[""];
    poll_until("the register joined", TIMEOUT, async || {
        let sum: Sum = db
            .query(
                "SELECT sum(contacts) AS contacts, sum(net_amount_ore) AS net_amount_ore \
                 FROM report_cost_by_health_centre WHERE listing_unit_hsa_id = ''",
            )
            .fetch_one()
            .await?;
        anyhow::ensure!(
            sum.contacts == unlisted_contacts,
            "{} unlisted contacts, want {unlisted_contacts}",
            sum.contacts
        );
        Ok(())
    })
    .await?;

    // Cost per health centre: the known amounts per unit, the unlisted
    // counted, the split summing to the whole.
    let units = unit_costs(&db, &buyer).await?;
    let net_by_unit: BTreeMap<String, i64> =
        units.iter().map(|u| (u.listing_unit_hsa_id.clone(), u.net_amount_ore)).collect();
    assert_eq!(net_by_unit, expected.net_by_unit);
    let contacts_by_unit: BTreeMap<String, i64> =
        units.iter().map(|u| (u.listing_unit_hsa_id.clone(), u.contacts)).collect();
    assert_eq!(contacts_by_unit, expected.contacts_by_unit);
    for u in &units {
        assert_eq!(u.health_centre_ore + u.central_ore, u.net_amount_ore, "{u:?}");
        let share = if u.listing_unit_hsa_id.is_empty() { 0 } else { u.net_amount_ore * HEALTH_CENTRE_PERCENT / 100 };
        assert_eq!(u.health_centre_ore, share, "{u:?}");
    }

    // Groups sum to the whole in every view.
    let whole = (summary.valid_contacts, summary.valid_net_amount_ore);
    for (view, contacts, net) in [
        ("report_cost_by_month", "contacts", "net_amount_ore"),
        ("report_cost_by_profession", "contacts", "net_amount_ore"),
        ("report_cost_by_health_centre", "contacts", "net_amount_ore"),
        ("report_age_sex", "contacts", "net_amount_ore"),
        ("report_cost_by_municipality", "contacts", "net_amount_ore"),
        ("report_diagnosis_groups", "contacts", "net_amount_ore"),
        ("report_initiative", "all_contacts", "all_net_amount_ore"),
    ] {
        let sum: Sum = db
            .query(&format!(
                "SELECT sum({contacts}) AS total_contacts, sum({net}) AS total_net FROM {view} WHERE buyer_org_number = ?"
            ))
            .bind(&buyer)
            .fetch_one()
            .await?;
        assert_eq!((sum.contacts, sum.net_amount_ore), whole, "{view}");
    }

    // Municipalities by name: Västmanland's ten, and the other counties'
    // of the patients not resident (the generator uses listed counties only).
    let municipalities = answers::answer(&db, panel("cost_by_municipality"), &buyer, 2025).await?;
    let named = (0..municipalities.rows.len()).map(|r| municipalities.text(r, 0)).collect::<Vec<_>>();
    assert!(named.iter().all(|n| !n.chars().all(|c| c.is_ascii_digit())), "a municipality without a name: {named:?}");
    let home = distans_domain::codes::MUNICIPALITIES.iter().filter(|m| m.municipality_code.starts_with(COUNTY));
    for municipality in home {
        let name = &municipality.name;
        assert!(named.iter().any(|n| n == name), "{name} missing: {named:?}");
    }

    // Cost per month: the generator's months.
    let months = answers::answer(&db, &distans_report::panels::PANELS[0], &buyer, 2025).await?;
    let by_month: BTreeMap<String, i64> = (0..months.rows.len())
        .map(|r| (months.text(r, 0), months.number(r, "net_sek").unwrap_or_default() as i64 * 100))
        .collect();
    let want: BTreeMap<String, i64> =
        summary.valid_net_by_month.iter().map(|(m, v)| (m.clone(), v / 100 * 100)).collect();
    assert_eq!(by_month, want);

    // List sizes on 1 July, per health centre.
    let listed: Vec<Listed> = db
        .query(
            "SELECT listing_unit_hsa_id, listed FROM report_contacts_per_1000_listed \
             WHERE buyer_org_number = ? AND year = 2025",
        )
        .bind(&buyer)
        .fetch_all()
        .await?;
    let listed: BTreeMap<String, usize> =
        listed.into_iter().map(|l| (l.listing_unit_hsa_id, l.listed as usize)).collect();
    assert_eq!(listed, expected.listed_mid_year_by_unit);

    // Providers far from their peers: the generator's outlier (physicians,
    // four contacts a month per patient), in every month where enough
    // providers have enough physician contacts to be judged; nobody else.
    let reporting = &settings.reporting;
    let mut physician_contacts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (line, _) in data.lines.iter().zip(&data.invalid).filter(|(l, invalid)| !**invalid && l.profession_code == "LK")
    {
        let sign = if line.invoice_type == "381" { -1 } else { 1 };
        let month = line.visit_date.format("%Y-%m").to_string();
        *physician_contacts.entry((month, line.provider_org_number.clone())).or_default() += sign;
    }
    let mut judged_providers: BTreeMap<String, u32> = BTreeMap::new();
    for ((month, _), contacts) in &physician_contacts {
        if *contacts >= i64::from(reporting.peer_min_contacts) {
            *judged_providers.entry(month.clone()).or_default() += 1;
        }
    }
    let outlier_months: Vec<String> =
        judged_providers.iter().filter(|(_, n)| **n >= reporting.peer_min_providers).map(|(m, _)| m.clone()).collect();
    assert!(outlier_months.len() >= 10, "the generated year has peers to judge: {judged_providers:?}");
    let far: Vec<FarFromPeers> = db
        .query(
            "SELECT substring(toString(month), 1, 7) AS month, profession_code, provider_org_number \
             FROM report_provider_peers WHERE far_from_peers ORDER BY month",
        )
        .fetch_all()
        .await?;
    assert!(far.iter().all(|f| f.provider_org_number == "5591000053" && f.profession_code == "LK"), "{far:?}");
    assert_eq!(far.iter().map(|f| f.month.clone()).collect::<Vec<_>>(), outlier_months);

    // Listed at a health centre of the provider's own group (config
    // reporting.provider_groups, set by the harness): exactly the
    // generator's lines of that provider whose patient is listed there.
    let same: Vec<SameGroup> = db
        .query(
            "SELECT provider_org_number, listing_unit_hsa_id, sum(contacts) AS contacts FROM report_same_group_listing \
             WHERE buyer_org_number = ? AND year = 2025 GROUP BY provider_org_number, listing_unit_hsa_id",
        )
        .bind(&buyer)
        .fetch_all()
        .await?;
    let got: BTreeMap<String, i64> =
        same.iter().map(|s| (format!("{} {}", s.provider_org_number, s.listing_unit_hsa_id), s.contacts)).collect();
    let want: BTreeMap<String, i64> = expected
        .contacts_by_provider_and_unit
        .iter()
        .filter(|(k, v)| k.starts_with("5591000012 ") && k.ends_with("-HC0007") && **v != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(want.len(), 1, "the generated year has such patients");
    assert_eq!(got, want);

    // Findings per rule: exactly the injected ones from the stream, and from
    // the review one per outlier month and one per month with same-group
    // contacts.
    let same_group_months: Vec<SameGroupMonth> = db
        .query(
            "SELECT toString(month) AS month FROM report_same_group_listing \
             WHERE buyer_org_number = ? AND contacts > 0 ORDER BY month",
        )
        .bind(&buyer)
        .fetch_all()
        .await?;
    assert!(same_group_months.iter().all(|m| m.month.starts_with("2025-")), "{same_group_months:?}");
    let mut want = summary.expected_findings.clone();
    want.insert("provider_far_from_peers".into(), outlier_months.len());
    want.insert("listed_at_same_group".into(), same_group_months.len());
    poll_until("all findings", TIMEOUT, async || {
        let rules: Vec<RuleTotal> = db
            .query("SELECT rule_id, sum(findings) AS findings FROM report_findings GROUP BY rule_id")
            .fetch_all()
            .await?;
        let got: BTreeMap<String, usize> = rules.into_iter().map(|r| (r.rule_id, r.findings as usize)).collect();
        anyhow::ensure!(got == want, "findings per rule {got:?}");
        Ok(())
    })
    .await?;
    let rules: Vec<RuleTotal> =
        db.query("SELECT rule_id, sum(findings) AS findings FROM report_findings GROUP BY rule_id").fetch_all().await?;
    assert_eq!(rules.into_iter().map(|r| (r.rule_id, r.findings as usize)).collect::<BTreeMap<_, _>>(), want);
    wait_for_fresh_aggregates(&db, "fresh aggregates with the findings", TIMEOUT).await?;
    // The review's findings carry the figures of the whole month: published
    // again, same id, as the month filled up.
    poll_until("the review's amounts up to date", TIMEOUT, async || {
        let at_stake: Sum = db
            .query(
                "SELECT toInt64(count()) AS findings, sum(amount_at_stake_ore) AS at_stake FROM anomalies FINAL \
                 WHERE rule_id = 'listed_at_same_group'",
            )
            .fetch_one()
            .await?;
        let listed: Sum = db
            .query(
                "SELECT sum(contacts) AS all_contacts, sum(net_amount_ore) AS all_net FROM report_same_group_listing \
                 WHERE contacts > 0",
            )
            .fetch_one()
            .await?;
        if at_stake.net_amount_ore != listed.net_amount_ore {
            let state = format!("review amounts: published {at_stake:?}, judged now {listed:?}");
            eprintln!("{state}");
            anyhow::bail!(state);
        }
        Ok(())
    })
    .await?;

    // A detector killed and restarted raises none of the review's findings
    // again: it publishes nothing for those rules over several reviews.
    detector.kill();
    let _detector = env.spawn("detector")?;
    tokio::time::sleep(Duration::from_millis(10 * env.review_interval_ms)).await;
    let (_, page) = distans_e2e::http_get(env.detector_http, "/metrics")?;
    for rule in ["provider_far_from_peers", "listed_at_same_group"] {
        let published = distans_e2e::metric(&page, &format!("distans_detector_findings_total{{rule=\"{rule}\"}}"));
        assert_eq!(published, None, "{rule} published again after the restart:\n{page}");
    }
    assert!(page.contains("distans_detector_lines_observed_total"), "the restarted detector serves its metrics");

    // The report: every panel answers; the terminal tables carry the known figures.
    let all = answers::answer_all(&db, &buyer, 2025).await?;
    let regions = distans_store::panels::region_names(&db).await?;
    let scope = answers::Scope {
        buyer: &buyer,
        region: regions.get(&buyer).map(String::as_str),
        year: 2025,
        language: distans_domain::text::Language::Swedish,
    };
    assert!(
        scope.region.is_some_and(|r| r.starts_with("Region ")),
        "the harness's home region has a name: {regions:?}"
    );
    let text = answers::render_terminal(&all, &scope);
    // Grafana's variables run here too; the region selector shows the name.
    for (name, sql) in distans_store::panels::VARIABLE_QUERIES {
        let values = String::from_utf8(db.query(sql).fetch_bytes("TSV")?.collect().await?.to_vec())?;
        if name == "buyer" {
            assert!(values.contains(&format!("\t{} ({buyer})", scope.region.unwrap_or_default())), "{values}");
        }
    }
    let disputable = all.iter().find(|a| a.panel.id() == "disputable_share").expect("panel");
    let flagged_sek = disputable.number(0, "flagged_sek").unwrap_or_default();
    assert!(flagged_sek > 0.0 && flagged_sek < (summary.valid_net_amount_ore / 100) as f64, "{flagged_sek}");
    // Findings about a provider's month flag no invoice line: no count of lines.
    let by_rule = all.iter().find(|a| a.panel.id() == "findings_by_rule").expect("panel");
    let rule_column = by_rule.column("rule").expect("a rule column");
    let mut reviewed = 0;
    for row in 0..by_rule.rows.len() {
        let (rule, lines) = (by_rule.text(row, rule_column), by_rule.number(row, "lines"));
        if [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id].contains(&rule.as_str()) {
            reviewed += 1;
            assert_eq!(lines, None, "{rule} counts no invoice lines");
        } else {
            assert!(lines.is_some_and(|l| l >= 1.0), "{rule}: {lines:?} lines");
        }
    }
    assert_eq!(reviewed, 2, "both of the review's rules found something");
    let health_centres = all.iter().find(|a| a.panel.id() == "cost_by_health_centre").expect("panel");
    let unlisted_row = (0..health_centres.rows.len()).find(|r| health_centres.text(*r, 0) == "unlisted");
    assert!(unlisted_row.is_some(), "the unlisted are a row of their own:\n{text}");

    // The HTML report, rendered by Chromium from a file: every chart drew its bars.
    let html_path = env.dir.path().join("report.html");
    std::fs::write(&html_path, answers::render_html(&all, &scope, "test"))?;
    let dom = distans_e2e::chromium(&["--dump-dom"], &html_path)?;
    for answer in all.iter().filter(|a| a.panel.chart != Chart::Table) {
        let drawn = drawn_bars(&dom, answer.panel.id());
        assert_eq!(drawn, Some(bars_expected(answer)), "panel {}", answer.panel.id());
    }
    let shot = env.dir.path().join("report.png");
    distans_e2e::chromium(&["--window-size=1200,3000", &format!("--screenshot={}", shot.display())], &html_path)?;
    let png = std::fs::read(&shot)?;
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a screenshot with content");
    if let Ok(dir) = std::env::var("DISTANS_REPORT_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&dir).join("report.png"))?;
        std::fs::copy(&html_path, Path::new(&dir).join("report.html"))?;
    }

    // Age and sex against the listed: only this region's register. Its
    // patients resident in county 25 (the generator's not-resident lines)
    // brought all of county 25's listed people in once its register was
    // imported (found by a newcomer run); here the same people, as 25's.
    // Last: the import changes what the rest of this test checks.
    let listed_by_age_and_sex = async || -> anyhow::Result<f64> {
        let rows = answers::answer(&db, panel("age_sex"), &buyer, 2025).await?;
        Ok((0..rows.rows.len()).filter_map(|r| rows.number(r, "listed_1_july")).sum())
    };
    let own = listed_by_age_and_sex().await?;
    assert!(own > 0.0, "the register's people by age and sex");
    let now = distans_runtime::now_ms();
    distans_store::listing::import(&db, "25", "other.csv", "other", &parsed.listings, now).await?;
    assert_eq!(listed_by_age_and_sex().await?, own, "another county's register counted");
    Ok(())
}

/// `report_cost_by_health_centre` for the generated year.
async fn unit_costs(db: &distans_store::Client, buyer: &str) -> Result<Vec<UnitCost>, distans_store::Error> {
    db.query(
        "SELECT listing_unit_hsa_id, contacts, net_amount_ore, health_centre_ore, central_ore \
         FROM report_cost_by_health_centre WHERE buyer_org_number = ? AND year = 2025",
    )
    .bind(buyer)
    .fetch_all()
    .await
}

fn panel(id: &str) -> &'static distans_report::panels::Panel {
    distans_report::panels::PANELS.iter().find(|p| p.id() == id).expect("a panel with that id")
}

/// Bars with a value above zero: what the chart must draw.
fn bars_expected(answer: &Answer) -> usize {
    (0..answer.rows.len())
        .map(|r| answer.panel.series.iter().filter(|s| answer.number(r, s).is_some_and(|v| v > 0.0)).count())
        .sum()
}

/// The `data-drawn-bars` the page's script set on a chart after layout.
fn drawn_bars(dom: &str, panel: &str) -> Option<usize> {
    let start = dom.find(&format!("data-panel=\"{panel}\""))?;
    let tag_end = start + dom[start..].find('>')?;
    let tag = &dom[start..tag_end];
    let value = tag.split("data-drawn-bars=\"").nth(1)?;
    value.split('"').next()?.parse().ok()
}
