//! The SQL on a current ClickHouse release. The other end-to-end tests run
//! every statement on the ClickHouse that installs here (18.16); production
//! runs a current release, which this test runs in process (chdb-core, see
//! tests/sql/current_clickhouse.py): every migration, a month's aggregate
//! refresh with the figures checked, and every report panel's query.

use std::process::Command;

use distans_report::panels::PANELS;
use distans_store::panels::VARIABLE_QUERIES;
use distans_store::views::VIEW_FILES;

#[test]
fn the_sql_runs_on_a_current_clickhouse_release() -> anyhow::Result<()> {
    let python = distans_e2e::chdb_python()?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let panels = tempfile::NamedTempFile::new()?;
    let views: Vec<&str> = VIEW_FILES.iter().map(|(file, _)| *file).collect();
    std::fs::write(
        panels.path(),
        serde_json::to_vec(&serde_json::json!({ "views": views, "panels": &*PANELS, "variables": VARIABLE_QUERIES }))?,
    )?;
    let output = Command::new(python)
        .arg(format!("{root}/tests/sql/current_clickhouse.py"))
        .arg(root)
        .arg(panels.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{} report queries ran; aggregates as expected", PANELS.len())), "{stdout}");
    eprintln!("{stdout}");
    Ok(())
}
