//! The invariant "only crates/store speaks SQL" (ARCHITECTURE.md), checked
//! in every test run by the same script `make lint` runs.

use std::process::Command;

#[test]
fn no_sql_outside_the_store() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/lint/sql-only-in-store.sh");
    let output = Command::new("bash").arg(script).output().expect("bash runs the lint script");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
