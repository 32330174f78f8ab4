//! Versioned migrations, applied in order at start. Each migration is a SQL
//! file in `migrations/`, compiled in; applied versions are recorded in
//! `schema_migrations`. Every statement is idempotent (`IF NOT EXISTS`), so
//! a migration interrupted half-way is safe to run again.

use clickhouse::Client;

/// (version, name, SQL). Append only: a released migration never changes.
pub const MIGRATIONS: [(u32, &str, &str); 6] = [
    (1, "invoice_lines", include_str!("../migrations/0001_invoice_lines.sql")),
    (2, "report_views", include_str!("../migrations/0002_report_views.sql")),
    (3, "anomalies", include_str!("../migrations/0003_anomalies.sql")),
    (4, "reference", include_str!("../migrations/0004_reference.sql")),
    (5, "listing_and_aggregates", include_str!("../migrations/0005_listing_and_aggregates.sql")),
    (6, "report_questions", include_str!("../migrations/0006_report_questions.sql")),
];

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Applied {
    version: u32,
}

/// Creates the database if needed and applies the migrations it lacks.
/// Returns the versions applied now.
pub async fn migrate(server: &Client, database: &str) -> Result<Vec<u32>, clickhouse::error::Error> {
    server.query(&format!("CREATE DATABASE IF NOT EXISTS `{database}`")).execute().await?;
    let db = server.clone().with_database(database);
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) \
         ENGINE = TinyLog",
    )
    .execute()
    .await?;
    let applied: Vec<u32> = db
        .query("SELECT version FROM schema_migrations")
        .fetch_all::<Applied>()
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect();
    let mut now_applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        for statement in statements(sql) {
            db.query(&statement).execute().await?;
        }
        db.query("INSERT INTO schema_migrations (version, name, applied_at) SELECT ?, ?, now()")
            .bind(version)
            .bind(name)
            .execute()
            .await?;
        tracing::info!(version, name, "applied migration");
        now_applied.push(version);
    }
    Ok(now_applied)
}

/// Splits a migration into statements: comment lines dropped, split on `;`.
/// (No statement here has a `;` inside a string literal.)
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_split() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(statements("-- c\nCREATE A;\n\n-- d\nCREATE B;\n"), ["CREATE A", "CREATE B"]);
        for (_, _, sql) in MIGRATIONS {
            for s in statements(sql) {
                assert!(s.contains("IF NOT EXISTS"), "not idempotent: {s}");
            }
        }
    }
}
