//! The store's migrations on a real ClickHouse (18.16 here): applied once,
//! recorded with their checksums, an edited one refused with its name, and
//! a database migrated before checksums were kept adopted at its next start.

use distans_domain::money::Ore;
use distans_e2e::ClickHouse;
use distans_store::migrations::{migrate, migrate_with, MigrateError, MIGRATIONS};

#[tokio::test(flavor = "multi_thread")]
async fn an_applied_migration_that_was_edited_is_refused_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clickhouse = ClickHouse::start(dir.path())?;
    let server = clickhouse.server_client();

    let applied = migrate(&server, "edited").await?;
    assert_eq!(applied, MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    assert!(migrate(&server, "edited").await?.is_empty(), "applied twice");
    let views = distans_store::views::recreate(&server.clone().with_database("edited")).await?;
    assert_eq!(views, 25);

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
    assert_eq!(migrate(&server, "interrupted").await?, [7]);

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
