//! Views, re-created at every start from `views/*.sql`, so that a view can
//! change without a migration. Each file holds `CREATE VIEW name AS …`
//! statements; [`recreate`] drops each view and creates it again, files in
//! [`VIEW_FILES`] order (a view that reads another comes after it). A view
//! removed from these files is not dropped: that needs a migration.

use crate::{Client, Error};

/// (file in `crates/store/views/`, its SQL), in the order they are created.
pub const VIEW_FILES: [(&str, &str); 5] = [
    ("lines.sql", include_str!("../views/lines.sql")),
    ("anomalies.sql", include_str!("../views/anomalies.sql")),
    ("reference.sql", include_str!("../views/reference.sql")),
    ("listing.sql", include_str!("../views/listing.sql")),
    ("reports.sql", include_str!("../views/reports.sql")),
];

/// The name a `CREATE VIEW name AS …` statement creates.
pub fn view_name(statement: &str) -> Option<&str> {
    let rest = statement.strip_prefix("CREATE VIEW ")?;
    let name = rest.split_whitespace().next()?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(name)
}

/// Drops and creates every view. Returns how many were created.
pub async fn recreate(db: &Client) -> Result<usize, Error> {
    let mut created = 0;
    for (file, sql) in VIEW_FILES {
        for statement in crate::statements(sql) {
            let name = view_name(&statement)
                .ok_or_else(|| Error::Custom(format!("views/{file}: not a CREATE VIEW statement: {statement:.60}")))?;
            // `DROP TABLE` drops a view on every ClickHouse release; `DROP VIEW` is newer.
            db.query(&format!("DROP TABLE IF EXISTS {name}")).execute().await?;
            db.query(&statement).execute().await?;
            created += 1;
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_creates_one_named_view_once() {
        let mut names = std::collections::BTreeSet::new();
        for (file, sql) in VIEW_FILES {
            for statement in crate::statements(sql) {
                let name = view_name(&statement).unwrap_or_else(|| panic!("{file}: {statement:.80}"));
                assert!(names.insert(name.to_string()), "{file}: {name} created twice");
            }
        }
        assert_eq!(names.len(), 26);
        assert_eq!(view_name("CREATE VIEW a_b AS SELECT 1"), Some("a_b"));
        assert_eq!(view_name("CREATE TABLE a (x UInt8)"), None);
        assert_eq!(view_name("CREATE VIEW a;DROP AS"), None);
    }
}
