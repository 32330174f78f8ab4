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

/// The demo's pseudonymisation key file (common.sh `pseudonym_key_file`):
/// made once, 0600, and made 0600 again when found world-readable.
#[test]
fn the_demo_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let common = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/common.sh");
    let data = tempfile::tempdir().expect("temp dir");
    let make = || {
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && pseudonym_key_file", common.display()))
            .env("DISTANS_DATA_DIR", data.path())
            .output()
            .expect("bash runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let mode = std::fs::metadata(&path).expect("the key file").permissions().mode() & 0o777;
        (path.clone(), mode, std::fs::read_to_string(&path).expect("read"))
    };
    let (path, mode, key) = make();
    assert_eq!(mode, 0o600, "{path}");
    assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key:?}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (_, mode, again) = make();
    assert_eq!(mode, 0o600, "an older release's 0644 file is made 0600");
    assert_eq!(again, key, "made once, kept");
}
