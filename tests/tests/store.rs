//! The store's migrations on a real ClickHouse (18.16 here): applied once,
//! recorded with their checksums, an edited one refused with its name, a
//! database migrated before checksums were kept adopted at its next start,
//! and the lines of `invoice_lines` copied to `invoice_line_versions`, where
//! each line identity counts once in its latest version, also in the
//! monthly aggregates; and 18.16's answers to a client it refuses,
//! classified as `Refused` (never retried, never dead letters).

use distans_domain::money::Ore;
use distans_e2e::{insert_lines, ClickHouse};
use distans_store::migrations::{migrate, migrate_with, MigrateError, MIGRATIONS};
use distans_store::rows::LineRow;

#[tokio::test(flavor = "multi_thread")]
async fn an_applied_migration_that_was_edited_is_refused_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    let server = clickhouse.server_client();

    let applied = migrate(&server, "edited").await?;
    assert_eq!(applied, MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    assert!(migrate(&server, "edited").await?.is_empty(), "applied twice");
    let views = distans_store::views::recreate(&server.clone().with_database("edited")).await?;
    assert_eq!(views, 26);

    let mut edited = MIGRATIONS;
    edited[2].sql = "CREATE TABLE IF NOT EXISTS anomalies (finding_id String) ENGINE = TinyLog";
    let error = migrate_with(&server, "edited", &edited).await.expect_err("an edited migration is refused");
    assert!(matches!(error, MigrateError::Edited { file: "0003_anomalies.sql", .. }), "{error}");
    assert!(error.is_permanent());
    let message = error.to_string();
    assert!(message.contains("migration 0003_anomalies.sql was edited after database edited applied it"), "{message}");
    eprintln!("refused as expected: {message}");

    // A migration interrupted after its ALTER ran, before it was recorded:
    // run again, it completes.
    migrate_with(&server, "interrupted", &MIGRATIONS[..6]).await?;
    let interrupted = server.clone().with_database("interrupted");
    for statement in distans_store::statements(MIGRATIONS[6].sql) {
        interrupted.query(&statement).execute().await?;
    }
    assert_eq!(migrate(&server, "interrupted").await?, versions_from(7));

    // A database migrated before checksums were recorded: its checksums are
    // recorded at the next start, and an edit is noticed from then on.
    migrate(&server, "adopted").await?;
    let adopted = server.clone().with_database("adopted");
    adopted.query("DROP TABLE schema_migration_checksums").execute().await?;
    assert!(migrate(&server, "adopted").await?.is_empty(), "nothing applied again");
    let error = migrate_with(&server, "adopted", &edited).await.expect_err("edit noticed after adoption");
    assert!(matches!(error, MigrateError::Edited { file: "0003_anomalies.sql", .. }), "{error}");
    Ok(())
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Rounded {
    ore: i64,
    kronor: i64,
}

/// The reports' SQL rounds amounts to whole kronor exactly as
/// `distans_domain::money` does, so a report never shows one amount two ways.
#[tokio::test(flavor = "multi_thread")]
async fn the_sql_rounds_kronor_as_the_money_type_does() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    let amounts = [-1_000_050_i64, -151, -150, -149, -51, -50, -49, -1, 0, 1, 49, 50, 51, 149, 150, 151, 1_000_050];
    let sql = format!(
        "SELECT ore, {} AS kronor FROM (SELECT arrayJoin([{}]) AS ore) ORDER BY ore",
        distans_store::kronor_sql!("ore"),
        amounts.map(|a| format!("toInt64({a})")).join(", ")
    );
    let rows: Vec<Rounded> = clickhouse.server_client().query(&sql).fetch_all().await?;
    assert_eq!(rows.len(), amounts.len());
    for row in rows {
        assert_eq!(row.kronor, Ore(row.ore).kronor_rounded(), "{} öre", row.ore);
    }
    Ok(())
}

/// A ClickHouse of its own, its data in `dir`, with distans' tables and
/// views; and a client of its database. Dropping the server stops it.
async fn with_schema(dir: &std::path::Path) -> anyhow::Result<(ClickHouse, distans_store::Client)> {
    let clickhouse = ClickHouse::start(dir)?;
    migrate(&clickhouse.server_client(), distans_e2e::DATABASE).await?;
    let db = clickhouse.client();
    distans_store::views::recreate(&db).await?;
    Ok((clickhouse, db))
}

/// A withdrawn finding's older active record never shows in
/// `findings_active`, even before ClickHouse merged the two.
#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_finding_is_not_active_before_or_after_a_merge() -> anyhow::Result<()> {
    use distans_domain::rules::{FindingStatus, Withdrawal, WRONG_PRICE};
    use distans_store::rows::AnomalyRow;

    let dir = tempfile::tempdir()?;
    let (_clickhouse, db) = with_schema(dir.path()).await?;
    let mut finding = distans_domain::testing::finding(&WRONG_PRICE, "ZVF23210000402503000001:1");
    let active = AnomalyRow::from_finding(&finding, 1_743_400_000_000, 1_743_400_000).expect("row");
    distans_store::insert_rows::<AnomalyRow>(&db, "anomalies", &[active]).await?;
    assert_eq!(distans_store::queries::current_finding_count(&db).await?, 1);
    finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    // Inserted in the same second: the later insert wins.
    let withdrawn = AnomalyRow::from_finding(&finding, 1_743_400_000_500, 1_743_400_000).expect("row");
    distans_store::insert_rows::<AnomalyRow>(&db, "anomalies", &[withdrawn]).await?;
    assert_eq!(distans_store::queries::current_finding_count(&db).await?, 0, "two parts, not merged");
    db.query("OPTIMIZE TABLE anomalies FINAL").execute().await?;
    assert_eq!(distans_store::queries::current_finding_count(&db).await?, 0, "merged");
    assert!(distans_store::queries::findings_by_rule(&db, None).await?.is_empty());
    Ok(())
}

#[derive(Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
struct StoredLine {
    invoice_id: String,
    line_number: u32,
    buyer_org_number: String,
    visit_date: String,
    net_amount_ore: i64,
    version: u64,
}

async fn current_lines(db: &distans_store::Client) -> anyhow::Result<Vec<StoredLine>> {
    Ok(db
        .query(
            "SELECT invoice_id, line_number, buyer_org_number, toString(visit_date) AS visit_date, net_amount_ore, \
             version FROM invoice_lines_current ORDER BY invoice_id, line_number",
        )
        .fetch_all()
        .await?)
}

fn stored(invoice_id: &str, line_number: u32, buyer: &str, visit: &str, net: i64, version: u64) -> StoredLine {
    StoredLine {
        invoice_id: invoice_id.into(),
        line_number,
        buyer_org_number: buyer.into(),
        visit_date: visit.into(),
        net_amount_ore: net,
        version,
    }
}

/// Migration 8 copies the lines written before it into
/// `invoice_line_versions`, where a line that `invoice_lines` kept twice
/// (once per buyer) is one line in its latest version; run again (an
/// interrupted migration), the copy changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_lines_written_before_migration_8_are_copied_once_per_identity() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    let server = clickhouse.server_client();
    let copy = MIGRATIONS.iter().position(|m| m.file == "0008_invoice_line_versions.sql").expect("migration 8");
    migrate_with(&server, distans_e2e::DATABASE, &MIGRATIONS[..copy]).await?;
    let db = clickhouse.client();
    // Line 1 sent with buyer 2321000255 (input offset 1), then corrected to
    // buyer 2321000198 (offset 3): two rows in invoice_lines, both counted.
    // Line 2 once, written twice (a redelivery).
    db.query(
        "INSERT INTO invoice_lines (invoice_id, line_number, seller_org_number, buyer_org_number, visit_date, \
           net_amount_ore, signed_net_amount_ore, source_offset, inserted_at) VALUES \
         ('F1', 1, '2321000040', '2321000255', '2025-03-04', 50000, 50000, 1, now()), \
         ('F1', 1, '2321000040', '2321000198', '2025-02-04', 40000, 40000, 3, now()), \
         ('F1', 2, '2321000040', '2321000198', '2025-03-05', 42500, 42500, 2, now()), \
         ('F1', 2, '2321000040', '2321000198', '2025-03-05', 42500, 42500, 2, now())",
    )
    .execute()
    .await?;
    let before = distans_store::queries::totals(&db).await;
    assert!(before.is_err(), "no invoice_line_versions before migration 8");

    assert_eq!(migrate(&server, distans_e2e::DATABASE).await?, versions_from(8));
    distans_store::views::recreate(&db).await?;
    let want =
        [stored("F1", 1, "2321000198", "2025-02-04", 40000, 3), stored("F1", 2, "2321000198", "2025-03-05", 42500, 2)];
    assert_eq!(current_lines(&db).await?, want);
    assert_eq!(distans_store::queries::totals(&db).await?.net_amount_ore, 82_500);
    // The copy again, as after an interruption before it was recorded.
    for statement in distans_store::statements(MIGRATIONS[copy].sql) {
        db.query(&statement).execute().await?;
    }
    assert_eq!(current_lines(&db).await?, want, "copied twice, still once");
    eprintln!("invoice_lines_current after the copy: {want:?}");
    Ok(())
}

#[derive(Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
struct AggregatedMonth {
    buyer_org_number: String,
    month: String,
    lines: u64,
    net_amount_ore: i64,
}

async fn aggregated(db: &distans_store::Client) -> anyhow::Result<Vec<AggregatedMonth>> {
    Ok(db
        .query(
            "SELECT buyer_org_number, toString(month) AS month, sum(lines) AS lines, \
             sum(net_amount_ore) AS net_amount_ore FROM agg_monthly \
             GROUP BY buyer_org_number, month ORDER BY buyer_org_number, month",
        )
        .fetch_all()
        .await?)
}

fn month(buyer: &str, month: &str, lines: u64, net: i64) -> AggregatedMonth {
    AggregatedMonth { buyer_org_number: buyer.into(), month: month.into(), lines, net_amount_ore: net }
}

/// A line corrected to another buyer, another visit month and another
/// amount: the aggregate refresh rebuilds the month of the old version and
/// of the new, whether ClickHouse merged the old version away before the
/// refresh saw it or not.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrected_line_leaves_its_old_month_and_buyer_in_the_aggregates() -> anyhow::Result<()> {
    use distans_store::aggregates::{stale_months, Refresher};

    let dir = tempfile::tempdir()?;
    let (_clickhouse, db) = with_schema(dir.path()).await?;
    let now = || u32::try_from(distans_runtime::now_ms() / 1000).expect("a DateTime");
    let version = |offset: i64, buyer: &str, visit: (i32, u32, u32), net: i64| {
        let mut line = distans_domain::testing::enriched_line();
        line.source.offset = offset;
        line.buyer_org_number = buyer.into();
        line.visit_date = chrono::NaiveDate::from_ymd_opt(visit.0, visit.1, visit.2).expect("a date");
        line.gross_amount_ore = net;
        line.net_amount_ore = net;
        line
    };
    let mut refresher = Refresher::default();

    insert_lines(&db, &[version(10, "2321000230", (2025, 3, 14), 50_000)], now()).await?;
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000230", "2025-03-01", 1, 50_000)]);

    // Corrected: another buyer, February, another amount. Old and new
    // version both stored (not merged): both months rebuilt.
    insert_lines(&db, &[version(11, "2321000255", (2025, 2, 14), 45_000)], now()).await?;
    assert_eq!(distans_store::queries::stored_line_rows(&db).await?, 2);
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-02-01", 1, 45_000)]);
    assert!(stale_months(&db).await?.is_empty());

    // Corrected again, to January, and the February version merged away
    // before the refresh: the month it left no longer matches its lines.
    insert_lines(&db, &[version(12, "2321000255", (2025, 1, 14), 45_000)], now()).await?;
    db.query("OPTIMIZE TABLE invoice_line_versions FINAL").execute().await?;
    assert_eq!(distans_store::queries::stored_line_rows(&db).await?, 1, "merged");
    assert_eq!(stale_months(&db).await?, ["2025-01-01", "2025-02-01"]);
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-01-01", 1, 45_000)]);

    // An old version that arrives late (a redelivery of offset 11) loses
    // to the newer one, and the aggregates stay as they are.
    insert_lines(&db, &[version(11, "2321000255", (2025, 2, 14), 45_000)], now()).await?;
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-01-01", 1, 45_000)]);
    assert_eq!(distans_store::queries::totals(&db).await?.lines, 1);

    // Corrected to another buyer only, within its month: the month's totals
    // are as they were, yet the aggregates are stale until rebuilt (what
    // `distans wait` and the tests wait on must see it).
    insert_lines(&db, &[version(13, "2321000230", (2025, 1, 14), 45_000)], now()).await?;
    assert_eq!(stale_months(&db).await?, ["2025-01-01"]);
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000230", "2025-01-01", 1, 45_000)]);
    assert!(stale_months(&db).await?.is_empty());
    Ok(())
}

/// What ClickHouse 18.16 answers a client it refuses (wrong password,
/// unknown user, a database not allowed or missing, a readonly user's
/// insert) is classified [`ErrorKind::Refused`]: the sink stops with it
/// rather than retry forever or dead-letter good rows, and migrations at
/// start give up at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_client_is_refused_not_transient_nor_bad_data() -> anyhow::Result<()> {
    use distans_store::{classify_error, ErrorKind};
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    migrate(&clickhouse.server_client(), distans_e2e::DATABASE).await?;
    let as_user = |user: &str, password: &str, database: &str| {
        let mut settings = clickhouse.settings();
        settings.user = user.to_string();
        settings.password = distans_runtime::Secret::new(password);
        settings.database = database.to_string();
        distans_store::database(&settings)
    };
    let line = distans_domain::testing::enriched_line();
    let row = LineRow::from_line(&line, 0).expect("a row");
    let db = distans_e2e::DATABASE;
    let cases = [
        ("wrong password", as_user("default", "wrong", db)),
        ("unknown user", as_user("nobody", "", db)),
        ("a database the user may not read", as_user("bi", "bi", "default")),
        ("a readonly user's insert", as_user("bi", "bi", db)),
        ("an unknown database", as_user("default", "", "missing")),
    ];
    for (what, client) in cases {
        let error = distans_store::insert_rows::<LineRow>(&client, "invoice_line_versions", std::slice::from_ref(&row))
            .await
            .expect_err(what);
        eprintln!("{what}: {error}");
        assert_eq!(classify_error(&error), ErrorKind::Refused, "{what}: {error}");
    }
    let mut wrong = clickhouse.settings();
    wrong.password = distans_runtime::Secret::new("wrong");
    let error = migrate(&distans_store::client(&wrong), db).await.expect_err("wrong password");
    assert!(error.is_permanent(), "migrations give up at once: {error}");
    // The same row as the right user is written: the refusals were about the client.
    distans_store::insert_rows::<LineRow>(&clickhouse.client(), "invoice_line_versions", &[row]).await?;
    Ok(())
}

/// The versions of the migrations from `first` on, in order: what a
/// database that has the ones before applies.
fn versions_from(first: u32) -> Vec<u32> {
    MIGRATIONS.iter().map(|m| m.version).filter(|v| *v >= first).collect()
}

/// One row of `agg_monthly` with its patients counted, for comparing two
/// refreshes column by column.
#[derive(Debug, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
struct AggregateRow {
    month: String,
    buyer_org_number: String,
    home_county: String,
    listing_unit_hsa_id: String,
    provider_org_number: String,
    provider_name: String,
    age_group: String,
    sex: String,
    diagnosis_chapter: String,
    contacts: i64,
    lines: u64,
    patients: u64,
    gross_amount_ore: i64,
    net_amount_ore: i64,
    health_centre_ore: i64,
    flagged_lines: u64,
}

async fn aggregate_rows(db: &distans_store::Client) -> anyhow::Result<Vec<AggregateRow>> {
    Ok(db
        .query(
            "SELECT toString(month) AS month, buyer_org_number, home_county, listing_unit_hsa_id, \
             provider_org_number, provider_name, age_group, sex, diagnosis_chapter, contacts, lines, \
             finalizeAggregation(patients) AS patients, gross_amount_ore, net_amount_ore, health_centre_ore, \
             flagged_lines FROM agg_monthly \
             ORDER BY month, buyer_org_number, home_county, provider_org_number, age_group, sex, \
             diagnosis_chapter, lines, net_amount_ore",
        )
        .fetch_all()
        .await?)
}

/// The bounded refresh (the identities with a version in the month, then
/// the latest version of those; no FINAL) gives exactly the aggregates of
/// the refresh through `invoice_line_versions FINAL`, on lines corrected
/// once and twice across months and buyers, credit notes, late old
/// versions and redeliveries, spread over many unmerged parts and again
/// after they are merged; and both match the latest versions counted here.
/// January and April end up holding only superseded versions: both leave
/// them empty.
#[tokio::test(flavor = "multi_thread")]
async fn the_bounded_refresh_gives_the_aggregates_of_the_final_one() -> anyhow::Result<()> {
    use distans_domain::InvoiceType;
    use distans_store::aggregates::{refresh_month, refresh_month_final};
    use std::collections::BTreeMap;

    let dir = tempfile::tempdir()?;
    let (_clickhouse, db) = with_schema(dir.path()).await?;
    db.query("SYSTEM STOP MERGES invoice_line_versions").execute().await?;
    let buyers = ["2321000230", "2321000255", "2321000198"];
    let version = |i: u32, correction: u32| {
        let mut line = distans_domain::testing::enriched_line_on(i / 4, (i % 4) as i32 + 1);
        line.source.offset = i64::from(10 * i + correction);
        line.buyer_org_number = buyers[((i + correction) % 3) as usize].into();
        let month = 1 + (i + 2 * correction) % 6;
        line.visit_date = chrono::NaiveDate::from_ymd_opt(2025, month, 1 + (i + correction) % 27).expect("a date");
        line.patient_pseudonym = format!("p{}", i % 37);
        line.age_years = Some(18 + i % 60);
        line.gross_amount_ore = 1_000 + i64::from(i) * 7 + i64::from(correction) * 100;
        line.net_amount_ore = line.gross_amount_ore;
        if i % 10 == 7 {
            line.invoice_type = InvoiceType::CreditNote;
        }
        line
    };
    let now = u32::try_from(distans_runtime::now_ms() / 1000)?;
    let mut latest: BTreeMap<u32, distans_domain::EnrichedLine> = BTreeMap::new();
    // Six inserts (six parts): first versions, then corrections of every
    // third line, corrections again of every ninth, late old versions and
    // redeliveries.
    for batch in 0..6u32 {
        let mut lines = Vec::new();
        for i in 0..600u32 {
            let correction = match batch {
                0 | 1 if i % 2 == batch => Some(0),
                2 if i % 3 == 0 => Some(1),
                3 if i % 9 == 0 => Some(2),
                4 if i % 9 == 0 => Some(1), // an old version, late
                5 if i % 5 == 0 => Some(if i % 9 == 0 {
                    2
                } else if i % 3 == 0 {
                    1
                } else {
                    0
                }), // redelivered
                _ => None,
            };
            if let Some(correction) = correction {
                let line = version(i, correction);
                if latest.get(&i).is_none_or(|l| l.source.offset <= line.source.offset) {
                    latest.insert(i, line.clone());
                }
                lines.push(line);
            }
        }
        insert_lines(&db, &lines, now).await?;
    }
    assert!(distans_store::queries::stored_line_rows(&db).await? > 600, "old versions stored, unmerged");
    let mut want: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for line in latest.values() {
        let entry = want.entry(line.visit_date.format("%Y-%m-01").to_string()).or_default();
        entry.0 += 1;
        entry.1 += line.signed_net_amount_ore();
    }
    let months: Vec<String> = (1..=6).map(|m| format!("2025-{m:02}-01")).collect();

    for merged in [false, true] {
        for month in &months {
            refresh_month_final(&db, month).await?;
        }
        let through_final = aggregate_rows(&db).await?;
        // Each month's partition replaced again, now by the bounded refresh.
        for month in &months {
            refresh_month(&db, month).await?;
        }
        let bounded = aggregate_rows(&db).await?;
        assert_eq!(bounded, through_final, "merged: {merged}");
        let mut got: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for row in &bounded {
            let entry = got.entry(row.month.clone()).or_default();
            entry.0 += row.lines;
            entry.1 += row.net_amount_ore;
        }
        assert_eq!(got, want, "merged: {merged}");
        eprintln!("merged: {merged}: {} aggregate rows alike, per month (lines, net öre): {got:?}", bounded.len());
        db.query("SYSTEM START MERGES invoice_line_versions").execute().await?;
        db.query("OPTIMIZE TABLE invoice_line_versions FINAL").execute().await?;
        assert_eq!(distans_store::queries::stored_line_rows(&db).await?, 600, "merged");
    }
    Ok(())
}

/// The refresher's limits reach ClickHouse as settings of its queries: with
/// `max_memory_usage` of 1 byte its pass fails with the server's memory
/// error (what the sink then logs and retries after a backoff), and with the
/// defaults' limits the same pass goes through.
#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_runs_within_its_memory_limit() -> anyhow::Result<()> {
    use distans_store::aggregates::{RefreshLimits, Refresher};
    use std::time::Duration;

    let dir = tempfile::tempdir()?;
    let (_clickhouse, db) = with_schema(dir.path()).await?;
    insert_lines(&db, &[distans_domain::testing::enriched_line()], 1_750_000_000).await?;

    let tiny = RefreshLimits { max_memory_usage: 1, max_threads: 1 };
    let error = Refresher::new(tiny, Duration::ZERO).pass(&db).await.expect_err("over its memory limit");
    assert!(error.to_string().contains("Memory limit"), "{error}");
    assert!(aggregated(&db).await?.is_empty());

    let settings = distans_runtime::Settings::load_with_env(None, Some(Default::default()))?;
    let limits = RefreshLimits {
        max_memory_usage: settings.sink.aggregate_max_memory_bytes,
        max_threads: settings.sink.aggregate_max_threads,
    };
    assert_eq!(Refresher::new(limits, Duration::ZERO).pass(&db).await?, 1);
    assert_eq!(aggregated(&db).await?, [month("2321000230", "2025-02-01", 1, 50_000)]);
    Ok(())
}

/// Two refreshes of one month at once (two sink instances, or `distans
/// refresh` beside a running sink) each swap in the whole month, never
/// both refreshes' rows together: the month's lines and net amount are
/// the lines' own after every round.
#[tokio::test(flavor = "multi_thread")]
async fn refreshes_at_once_never_count_a_month_twice() -> anyhow::Result<()> {
    use distans_store::aggregates::refresh_month;

    let dir = tempfile::tempdir()?;
    let (_clickhouse, db) = with_schema(dir.path()).await?;
    let lines: Vec<distans_domain::EnrichedLine> = (0..400u32)
        .map(|i| {
            let mut line = distans_domain::testing::enriched_line_on(i / 4, (i % 4) as i32 + 1);
            line.visit_date = chrono::NaiveDate::from_ymd_opt(2025, 3, 1 + i % 28).expect("a date");
            line.patient_pseudonym = format!("p{}", i % 53);
            line
        })
        .collect();
    insert_lines(&db, &lines, u32::try_from(distans_runtime::now_ms() / 1000)?).await?;
    let want = (lines.len() as u64, lines.iter().map(|l| l.signed_net_amount_ore()).sum::<i64>());
    let refresher = |db: distans_store::Client| async move {
        for _ in 0..4 {
            refresh_month(&db, "2025-03-01").await?;
        }
        anyhow::Ok(())
    };
    for round in 0..8 {
        tokio::try_join!(refresher(db.clone()), refresher(db.clone()), refresher(db.clone()))?;
        let rows = aggregate_rows(&db).await?;
        let got = (rows.iter().map(|r| r.lines).sum::<u64>(), rows.iter().map(|r| r.net_amount_ore).sum::<i64>());
        assert_eq!(got, want, "round {round}: (lines, net öre) of March");
    }
    let staging_tables = async || -> anyhow::Result<Vec<String>> {
        let sql = "SELECT name FROM system.tables WHERE database = currentDatabase() \
                   AND startsWith(name, 'agg_monthly_staging_') ORDER BY name";
        Ok(String::from_utf8(db.query(sql).fetch_bytes("TSV")?.collect().await?.to_vec())?
            .lines()
            .map(String::from)
            .collect())
    };
    assert_eq!(staging_tables().await?, Vec::<String>::new(), "each rebuild drops its staging table");
    // What a process killed mid-rebuild leaves: dropped a day later.
    let now = distans_runtime::now_ms() / 1000;
    let (abandoned, recent) =
        (format!("agg_monthly_staging_{}_00000001", now - 2 * 86_400), format!("agg_monthly_staging_{now}_00000002"));
    for table in [&abandoned, &recent] {
        db.query(&format!("CREATE TABLE {table} AS agg_monthly")).execute().await?;
    }
    distans_store::aggregates::refresh_all(&db).await?;
    assert_eq!(staging_tables().await?, vec![recent], "only the abandoned one is dropped");
    Ok(())
}
