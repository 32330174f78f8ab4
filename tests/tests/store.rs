//! The store's migrations on a real ClickHouse (18.16 here): applied once,
//! recorded with their checksums, an edited one refused with its name, a
//! database migrated before checksums were kept adopted at its next start,
//! and the lines of `invoice_lines` copied to `invoice_line_versions`, where
//! each line identity counts once in its latest version, also in the
//! monthly aggregates; and 18.16's answers to a client it refuses,
//! classified as `Refused` (never retried, never dead letters).

use distans_domain::money::Ore;
use distans_e2e::ClickHouse;
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

/// A withdrawn finding's older active record never shows in
/// `findings_active`, even before ClickHouse merged the two.
#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_finding_is_not_active_before_or_after_a_merge() -> anyhow::Result<()> {
    use distans_domain::rules::{FindingStatus, Withdrawal, WRONG_PRICE};
    use distans_store::rows::AnomalyRow;

    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    migrate(&clickhouse.server_client(), distans_e2e::DATABASE).await?;
    let db = clickhouse.client();
    distans_store::views::recreate(&db).await?;
    let mut finding = distans_domain::testing::finding(&WRONG_PRICE, "ZVF23210000402503000001:1");
    let active = AnomalyRow::from_finding(&finding, 1_743_400_000_000, 1_743_400_000).expect("row");
    distans_store::insert(&db, "anomalies", &[active]).await?;
    assert_eq!(distans_store::queries::current_finding_count(&db).await?, 1);
    finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    // Inserted in the same second: the later insert wins.
    let withdrawn = AnomalyRow::from_finding(&finding, 1_743_400_000_500, 1_743_400_000).expect("row");
    distans_store::insert(&db, "anomalies", &[withdrawn]).await?;
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
    let clickhouse = ClickHouse::start(dir.path())?;
    migrate(&clickhouse.server_client(), distans_e2e::DATABASE).await?;
    let db = clickhouse.client();
    distans_store::views::recreate(&db).await?;
    let now = || u32::try_from(distans_runtime::now_ms() / 1000).expect("a DateTime");
    let version = |offset: i64, buyer: &str, visit: (i32, u32, u32), net: i64| {
        let mut line = distans_domain::testing::enriched_line();
        line.source.offset = offset;
        line.buyer_org_number = buyer.into();
        line.visit_date = chrono::NaiveDate::from_ymd_opt(visit.0, visit.1, visit.2).expect("a date");
        line.gross_amount_ore = net;
        line.net_amount_ore = net;
        LineRow::from_line(&line, now()).expect("a row")
    };
    let mut refresher = Refresher::default();

    distans_store::insert(&db, "invoice_line_versions", &[version(10, "2321000230", (2025, 3, 14), 50_000)]).await?;
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000230", "2025-03-01", 1, 50_000)]);

    // Corrected: another buyer, February, another amount. Old and new
    // version both stored (not merged): both months rebuilt.
    distans_store::insert(&db, "invoice_line_versions", &[version(11, "2321000255", (2025, 2, 14), 45_000)]).await?;
    assert_eq!(distans_store::queries::stored_line_rows(&db).await?, 2);
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-02-01", 1, 45_000)]);
    assert!(stale_months(&db).await?.is_empty());

    // Corrected again, to January, and the February version merged away
    // before the refresh: the month it left no longer matches its lines.
    distans_store::insert(&db, "invoice_line_versions", &[version(12, "2321000255", (2025, 1, 14), 45_000)]).await?;
    db.query("OPTIMIZE TABLE invoice_line_versions FINAL").execute().await?;
    assert_eq!(distans_store::queries::stored_line_rows(&db).await?, 1, "merged");
    assert_eq!(stale_months(&db).await?, ["2025-01-01", "2025-02-01"]);
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-01-01", 1, 45_000)]);

    // An old version that arrives late (a redelivery of offset 11) loses
    // to the newer one, and the aggregates stay as they are.
    distans_store::insert(&db, "invoice_line_versions", &[version(11, "2321000255", (2025, 2, 14), 45_000)]).await?;
    refresher.pass(&db).await?;
    assert_eq!(aggregated(&db).await?, [month("2321000255", "2025-01-01", 1, 45_000)]);
    assert_eq!(distans_store::queries::totals(&db).await?.lines, 1);

    // Corrected to another buyer only, within its month: the month's totals
    // are as they were, yet the aggregates are stale until rebuilt (what
    // `distans wait` and the tests wait on must see it).
    distans_store::insert(&db, "invoice_line_versions", &[version(13, "2321000230", (2025, 1, 14), 45_000)]).await?;
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
    let row = LineRow::from_line(&distans_domain::testing::enriched_line(), 0).expect("a row");
    let db = distans_e2e::DATABASE;
    let cases = [
        ("wrong password", as_user("default", "wrong", db)),
        ("unknown user", as_user("nobody", "", db)),
        ("a database the user may not read", as_user("bi", "bi", "default")),
        ("a readonly user's insert", as_user("bi", "bi", db)),
        ("an unknown database", as_user("default", "", "missing")),
    ];
    for (what, client) in cases {
        let error =
            distans_store::insert(&client, "invoice_line_versions", std::slice::from_ref(&row)).await.expect_err(what);
        eprintln!("{what}: {error}");
        assert_eq!(classify_error(&error), ErrorKind::Refused, "{what}: {error}");
    }
    let mut wrong = clickhouse.settings();
    wrong.password = distans_runtime::Secret::new("wrong");
    let error = migrate(&distans_store::client(&wrong), db).await.expect_err("wrong password");
    assert!(error.is_permanent(), "migrations give up at once: {error}");
    // The same row as the right user is written: the refusals were about the client.
    distans_store::insert(&clickhouse.client(), "invoice_line_versions", &[row]).await?;
    Ok(())
}

/// The versions of the migrations from `first` on, in order: what a
/// database that has the ones before applies.
fn versions_from(first: u32) -> Vec<u32> {
    MIGRATIONS.iter().map(|m| m.version).filter(|v| *v >= first).collect()
}
