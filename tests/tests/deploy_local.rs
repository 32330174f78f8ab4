//! The local scripts' process handling (deploy/local/common.sh): a
//! SIGKILLed service is not "running", a restart appends to its log, logs
//! are rotated at a size cap, at a start and while a service writes. Runs deploy/local/test-liveness.sh, which
//! starts a dummy program, not the broker or ClickHouse.

use std::path::Path;
use std::process::Command;

#[test]
fn a_killed_service_is_not_running_and_a_restart_appends_to_its_log() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/test-liveness.sh");
    let output = Command::new("bash").arg(&script).output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed:\n{stdout}\n{stderr}", script.display());
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
