//! The `distans` operator command, as a library so the end-to-end tests
//! drive the same code: one module per command in [`cmd`], and
//! [`poll::poll_until`] for the waits.

pub mod cmd;
pub mod poll;

/// Writes `text` to standard output: what the commands print goes through
/// here, not `print!`, which panics when the output is gone. Errors: the
/// output is closed, e.g. a pipe whose reader stopped (`distans audit
/// --json | head`), which `main` ends on quietly ([`is_broken_pipe`]).
pub fn print(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    write!(std::io::stdout().lock(), "{text}")
}

/// Whether `error` is the output's reader having gone ([`print`]).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
