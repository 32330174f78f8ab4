//! The `distans` binary's output, as an operator's shell sees it.

use std::process::Command;

/// `distans audit --json FILE | head -n 1`: the reader stops after one
/// line; distans stops writing without a panic and exits 0 (it panicked
/// with "failed printing to stdout: Broken pipe").
#[test]
fn output_to_a_pipe_whose_reader_stopped_ends_quietly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = env!("CARGO_BIN_EXE_distans");
    let lines = dir.path().join("lines.jsonl");
    let generated = Command::new(bin)
        .args(["generate", "--lines", "20000", "--out"])
        .arg(&lines)
        .output()
        .expect("distans generate runs");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    // More output than a pipe holds (64 KiB), so that distans writes after
    // head has gone; PIPESTATUS[0] is distans' exit status.
    let script = r#""$0" audit --json "$1" 2>"$2" | head -n 1 >/dev/null; echo "${PIPESTATUS[0]}""#;
    let stderr = dir.path().join("stderr");
    let piped = Command::new("bash").args(["-c", script, bin]).arg(&lines).arg(&stderr).output().expect("bash runs");
    let errors = std::fs::read_to_string(&stderr).expect("stderr was written");
    assert_eq!(String::from_utf8_lossy(&piped.stdout).trim(), "0", "{errors}");
    assert!(!errors.contains("panicked"), "{errors}");
    let full = Command::new(bin).args(["audit", "--json"]).arg(&lines).output().expect("distans audit runs");
    assert!(full.stdout.len() > 64 * 1024, "only {} bytes: the pipe never filled", full.stdout.len());
}
