//! Append-only migrations of the tables, applied in order at start.
//!
//! Each migration is a SQL file in `migrations/`, compiled in. Applied
//! versions are recorded in `schema_migrations`, and each applied file's
//! SHA-256 in `schema_migration_checksums`. A migration that was applied
//! and has since been edited is refused with [`MigrateError::Edited`],
//! naming the file: a change to a table goes into a new migration, never
//! into an old one (a database that applied the old text would not see
//! it). Views are not migrations: they live in `views/` and are re-created
//! at every start ([`crate::views`]). Every statement is idempotent, so a
//! migration interrupted half-way is safe to run again: `CREATE … IF NOT
//! EXISTS`, an `ALTER TABLE … ADD COLUMN` (see [`apply`]), or an `INSERT …
//! SELECT` into a ReplacingMergeTree the same migration creates, where rows
//! copied twice are equal in key and version and collapse.
//!
//! Checksums were first recorded in distans 0.1 after migration 6; a
//! database migrated before then has them recorded at its first start with
//! this version (its tables are the ones these files create; the views that
//! the old files also created are re-created from `views/`).

use sha2::{Digest, Sha256};

use crate::{Client, Error};

/// One migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Recorded in `schema_migrations`; strictly increasing, never reused.
    pub version: u32,
    /// The file's name in `crates/store/migrations/`, for messages.
    pub file: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// SHA-256 of the file's text, as 64 hex digits.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration { version: $version, file: $file, sql: include_str!(concat!("../migrations/", $file)) }
    };
}

/// Every migration, in order. Append only: a released migration never changes.
pub const MIGRATIONS: [Migration; 11] = [
    migration!(1, "0001_invoice_lines.sql"),
    migration!(2, "0002_report_views.sql"),
    migration!(3, "0003_anomalies.sql"),
    migration!(4, "0004_reference.sql"),
    migration!(5, "0005_listing_and_aggregates.sql"),
    migration!(6, "0006_report_questions.sql"),
    migration!(7, "0007_finding_status.sql"),
    migration!(8, "0008_invoice_line_versions.sql"),
    migration!(9, "0009_pseudonym_key_version.sql"),
    migration!(10, "0010_ref_regions.sql"),
    migration!(11, "0011_undelivered_alerts.sql"),
];

/// Why the database could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("clickhouse: {}{}", crate::describe(.0), crate::misconfigured(.0).map(|s| format!("; check {s}")).unwrap_or_default())]
    ClickHouse(#[from] Error),
    #[error(
        "migration {file} was edited after database {database} applied it (recorded sha256 {recorded}, \
         the file's is now {current}); migrations are append-only: restore the file and put the change \
         in a new migration"
    )]
    Edited { file: &'static str, database: String, recorded: String, current: String },
}

impl MigrateError {
    /// Whether trying again cannot help: an edited migration, a statement
    /// whose data ClickHouse refused, or a server that refuses this client
    /// (credentials, grants: [`crate::ErrorKind::Refused`]). Anything else (a
    /// server that is down, slow, or busy re-creating a view) is worth
    /// another try.
    pub fn is_permanent(&self) -> bool {
        match self {
            MigrateError::Edited { .. } => true,
            MigrateError::ClickHouse(error) => crate::classify_error(error) != crate::ErrorKind::Transient,
        }
    }
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct AppliedVersion {
    version: u32,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct RecordedChecksum {
    version: u32,
    sha256: String,
}

/// Creates the database if needed, checks that no applied migration was
/// edited, and applies the migrations it lacks. Returns the versions
/// applied now.
pub async fn migrate(server: &Client, database: &str) -> Result<Vec<u32>, MigrateError> {
    migrate_with(server, database, &MIGRATIONS).await
}

/// [`migrate`] with a given list of migrations (tests use an edited copy).
pub async fn migrate_with(server: &Client, database: &str, migrations: &[Migration]) -> Result<Vec<u32>, MigrateError> {
    server.query(&format!("CREATE DATABASE IF NOT EXISTS `{database}`")).execute().await?;
    let db = server.clone().with_database(database);
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) \
         ENGINE = TinyLog",
    )
    .execute()
    .await?;
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migration_checksums \
         (version UInt32, file String, sha256 String, recorded_at DateTime) ENGINE = TinyLog",
    )
    .execute()
    .await?;
    let applied: Vec<u32> = db
        .query("SELECT version FROM schema_migrations")
        .fetch_all::<AppliedVersion>()
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect();
    let recorded: Vec<(u32, String)> = db
        .query("SELECT version, sha256 FROM schema_migration_checksums")
        .fetch_all::<RecordedChecksum>()
        .await?
        .into_iter()
        .map(|r| (r.version, r.sha256))
        .collect();
    check_unedited(&recorded, migrations, database)?;
    let mut now_applied = Vec::new();
    for migration in migrations {
        let is_applied = applied.contains(&migration.version);
        if !is_applied {
            apply(&db, migration).await?;
            db.query("INSERT INTO schema_migrations (version, name, applied_at) SELECT ?, ?, now()")
                .bind(migration.version)
                .bind(migration.file.trim_end_matches(".sql"))
                .execute()
                .await?;
            tracing::info!(version = migration.version, file = migration.file, "applied migration");
            now_applied.push(migration.version);
        }
        if !recorded.iter().any(|(version, _)| *version == migration.version) {
            db.query(
                "INSERT INTO schema_migration_checksums (version, file, sha256, recorded_at) SELECT ?, ?, ?, now()",
            )
            .bind(migration.version)
            .bind(migration.file)
            .bind(migration.sha256())
            .execute()
            .await?;
            if is_applied {
                tracing::info!(
                    version = migration.version,
                    file = migration.file,
                    "recorded the checksum of a migration applied before checksums were kept"
                );
            }
        }
    }
    Ok(now_applied)
}

/// Runs a migration's statements. Each is idempotent: `CREATE … IF NOT
/// EXISTS`; an `ALTER TABLE … ADD COLUMN` whose "column with this name
/// already exists" (ILLEGAL_COLUMN, code 44, on 18.16 and current releases;
/// 18.16 has no `ADD COLUMN IF NOT EXISTS`) means an earlier, interrupted
/// run already made it; or an `INSERT … SELECT` copy into a
/// ReplacingMergeTree that collapses what a second run copies again.
async fn apply(db: &Client, migration: &Migration) -> Result<(), Error> {
    for statement in crate::statements(migration.sql) {
        match db.query(&statement).execute().await {
            Err(Error::BadResponse(message))
                if is_add_column(&statement)
                    && crate::exception_code(&message) == Some(ILLEGAL_COLUMN)
                    && message.contains("already exists") =>
            {
                tracing::info!(file = migration.file, "column already added by an earlier run");
            }
            result => result?,
        }
    }
    Ok(())
}

const ILLEGAL_COLUMN: u32 = 44;

fn is_add_column(statement: &str) -> bool {
    statement.starts_with("ALTER TABLE") && statement.contains("ADD COLUMN")
}

/// The table an `INSERT INTO table … SELECT` writes, if `statement` is one.
#[cfg(test)]
fn copied_into(statement: &str) -> Option<&str> {
    let rest = statement.strip_prefix("INSERT INTO ")?;
    statement.contains("SELECT").then(|| rest.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or(""))
}

/// `Err(Edited)` for the first migration whose recorded checksum differs
/// from its file's.
fn check_unedited(recorded: &[(u32, String)], migrations: &[Migration], database: &str) -> Result<(), MigrateError> {
    for migration in migrations {
        let current = migration.sha256();
        if let Some((_, sha256)) = recorded.iter().find(|(v, sha256)| *v == migration.version && *sha256 != current) {
            return Err(MigrateError::Edited {
                file: migration.file,
                database: database.to_string(),
                recorded: sha256.clone(),
                current,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_idempotent() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        for migration in MIGRATIONS {
            assert!(migration.file.starts_with(&format!("{:04}_", migration.version)), "{}", migration.file);
            let statements = crate::statements(migration.sql);
            for s in &statements {
                // A copy is idempotent in effect only into a ReplacingMergeTree
                // this migration creates (rows copied twice collapse).
                let collapses = copied_into(s).is_some_and(|table| {
                    statements.iter().any(|c| {
                        c.starts_with(&format!("CREATE TABLE IF NOT EXISTS {table}\n"))
                            && c.contains("ENGINE = ReplacingMergeTree")
                    })
                });
                assert!(s.contains("IF NOT EXISTS") || is_add_column(s) || collapses, "not idempotent: {s}");
                assert!(!s.contains("CREATE VIEW"), "{}: views belong in views/, not in a migration", migration.file);
            }
        }
    }

    #[test]
    fn copies_are_recognised() {
        assert_eq!(copied_into("INSERT INTO t\n(\n    a\n)\nSELECT 1"), Some("t"));
        assert_eq!(copied_into("INSERT INTO t (a) SELECT 1"), Some("t"));
        assert_eq!(copied_into("INSERT INTO t (a) VALUES (1)"), None);
        assert_eq!(copied_into("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = TinyLog"), None);
    }

    #[test]
    fn an_edited_migration_is_named() {
        let recorded: Vec<(u32, String)> = MIGRATIONS.iter().map(|m| (m.version, m.sha256())).collect();
        assert!(check_unedited(&recorded, &MIGRATIONS, "db").is_ok());
        // Not yet recorded: nothing to compare with.
        assert!(check_unedited(&[], &MIGRATIONS, "db").is_ok());
        let mut edited = MIGRATIONS;
        edited[2].sql = "CREATE TABLE IF NOT EXISTS anomalies (finding_id String) ENGINE = TinyLog";
        let error = check_unedited(&recorded, &edited, "db").expect_err("edited");
        assert!(error.is_permanent());
        let message = error.to_string();
        assert!(message.contains("migration 0003_anomalies.sql was edited after database db applied it"), "{message}");
        assert!(message.contains(&MIGRATIONS[2].sha256()) && message.contains(&edited[2].sha256()), "{message}");
    }

    #[test]
    fn outages_are_transient() {
        assert!(!MigrateError::ClickHouse(Error::TimedOut).is_permanent());
        assert!(MigrateError::ClickHouse(Error::BadResponse("Code: 53. DB::Exception: Type mismatch".into()))
            .is_permanent());
    }
}
