//! The BI user on ClickHouse 18.16 (deploy/local/clickhouse/users.xml.in):
//! it runs every query the report and the Grafana dashboard run, and is
//! refused everything that writes, changes a setting or reaches outside
//! ClickHouse (`url()`, `remote()` with another user's credentials, `file()`),
//! and its quota. The same calls as the default user succeed, so each refusal
//! is the BI user's profile, not a broken call.

use distans_e2e::{ClickHouse, DATABASE};
use distans_runtime::config::ClickHouseSettings;
use distans_runtime::Secret;
use distans_store::panels::{self, PANEL_QUERIES, VARIABLE_QUERIES};

/// The BI quota's queries per hour in deploy/local (20 000), and this test's.
const QUOTA_LINE: &str = "<queries>20000</queries>";
const TEST_QUOTA: u32 = 400;

fn as_user(clickhouse: &ClickHouse, user: &str, password: &str) -> distans_store::Client {
    distans_store::database(&ClickHouseSettings {
        url: clickhouse.url(),
        ca_file: clickhouse.ca_file(),
        database: DATABASE.to_string(),
        user: user.to_string(),
        password: Secret::new(password),
    })
}

/// Runs `sql` and returns ClickHouse's answer: Ok(the rows as text) or the error's text.
async fn run(client: &distans_store::Client, sql: &str) -> Result<String, String> {
    let mut cursor = client.query(sql).fetch_bytes("TSV").map_err(|e| e.to_string())?;
    let bytes = cursor.collect().await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bi_user_reads_and_is_refused_everything_else() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut edited = false;
    let clickhouse = ClickHouse::start_with_users(dir.path(), |users| {
        let small = users.replacen(QUOTA_LINE, &format!("<queries>{TEST_QUOTA}</queries>"), 1);
        edited = small != users;
        small
    })?;
    assert!(edited, "the bi quota's {QUOTA_LINE} is in users.xml.in");
    let server = distans_store::client(&clickhouse.settings());
    distans_store::migrations::migrate(&server, DATABASE).await?;
    let admin = clickhouse.client();
    distans_store::views::recreate(&admin).await?;
    // A table outside the databases bi may read.
    admin.query("CREATE TABLE default.staff_only (secret String) ENGINE = TinyLog").execute().await?;
    admin.query("INSERT INTO default.staff_only VALUES ('not for bi')").execute().await?;
    std::fs::create_dir_all(dir.path().join("clickhouse/data/user_files"))?;
    std::fs::write(dir.path().join("clickhouse/data/user_files/local.csv"), "on the server\n")?;

    let bi = as_user(&clickhouse, "bi", "bi");

    // What the report and the dashboard run, as bi.
    assert_eq!(run(&bi, "SELECT count() FROM invoice_lines_current").await, Ok("0".to_string()));
    for query in &PANEL_QUERIES {
        let rows = panels::run(&bi, query, "2321000230", 2025).await;
        assert!(rows.is_ok(), "panel {} as bi: {rows:?}", query.id);
    }
    for (name, sql) in VARIABLE_QUERIES {
        assert!(run(&bi, sql).await.is_ok(), "variable {name} as bi");
    }

    let (http, tcp) = (clickhouse.http_port, clickhouse.tcp_port);
    let reach_out = [
        // An internal HTTP service: here ClickHouse's own /ping.
        ("url()", format!("SELECT * FROM url('http://127.0.0.1:{http}/ping', TSV, 'x String')"), "Ok."),
        (
            "remote() with the default user's credentials",
            format!("SELECT * FROM remote('127.0.0.1:{tcp}', default.staff_only, 'default', '')"),
            "not for bi",
        ),
        ("file()", "SELECT * FROM file('local.csv', TSV, 'x String')".to_string(), "on the server"),
    ];
    for (what, sql, reached) in &reach_out {
        assert_eq!(run(&admin, sql).await.as_deref(), Ok(*reached), "{what} as default (the control)");
        let refused = run(&bi, sql).await.expect_err(what);
        assert!(refused.contains("Table functions are forbidden in readonly mode"), "{what}: {refused}");
    }
    let denied = run(&bi, "SELECT * FROM default.staff_only").await.expect_err("another database");
    assert!(denied.contains("Access denied to database default"), "{denied}");

    // No raising of limits, however asked.
    let raise = "100000000000";
    let refused = run(&bi, &format!("SET max_memory_usage = {raise}")).await.expect_err("SET");
    assert!(refused.contains("Cannot execute SET query in readonly mode"), "{refused}");
    let refused =
        run(&bi, &format!("SELECT 1 SETTINGS max_memory_usage = {raise}")).await.expect_err("a SETTINGS clause");
    assert!(refused.contains("readonly mode"), "{refused}");
    for (setting, value) in [("max_memory_usage", raise), ("readonly", "0"), ("profile", "default")] {
        let refused =
            run(&bi.clone().with_setting(setting, value), "SELECT 1").await.expect_err("a setting in the query string");
        assert!(refused.contains(&format!("Cannot override setting ({setting}) in readonly mode")), "{refused}");
    }
    assert_eq!(
        run(&admin.clone().with_setting("max_memory_usage", raise), "SELECT 1").await,
        Ok("1".to_string()),
        "the default user may (the control)"
    );
    let refused = run(&bi, "INSERT INTO ref_counties (county_code, name, loaded_at) VALUES ('99', 'x', now())")
        .await
        .expect_err("a write");
    assert!(refused.contains("readonly mode"), "{refused}");

    // A wrong password is refused without echoing it.
    let wrong = run(&as_user(&clickhouse, "bi", "wrong-SECRET-pw"), "SELECT 1").await.expect_err("wrong password");
    assert!(wrong.contains("Wrong password") && !wrong.contains("SECRET"), "{wrong}");

    // The quota: at most TEST_QUOTA queries an hour (the queries above count).
    let mut exceeded = None;
    for _ in 0..=TEST_QUOTA {
        if let Err(e) = run(&bi, "SELECT 1").await {
            exceeded = Some(e);
            break;
        }
    }
    let exceeded = exceeded.expect("refused within the quota");
    assert!(exceeded.contains("Quota for user 'bi'") && exceeded.contains("has been exceeded"), "{exceeded}");
    assert_eq!(run(&admin, "SELECT 1").await, Ok("1".to_string()), "other users are not limited by bi's quota");
    Ok(())
}
