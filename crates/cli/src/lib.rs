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

/// What to tell the operator besides `error` when it says ClickHouse did
/// not answer (`distans_store::unanswered`): the address distans used
/// (`clickhouse_url`) and the setting that holds it. `None` for any other
/// error.
pub fn hint(error: &anyhow::Error, clickhouse_url: &str) -> Option<String> {
    let unanswered =
        error.chain().filter_map(|cause| cause.downcast_ref::<distans_store::Error>()).any(distans_store::unanswered);
    unanswered.then(|| {
        format!(
            "ClickHouse does not answer at {clickhouse_url}: is it running, and is that its address? \
             (clickhouse.url, or DISTANS__CLICKHOUSE__URL)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_runtime::Settings;

    #[tokio::test]
    async fn an_unanswered_clickhouse_is_named_with_its_setting() {
        let mut settings = Settings::load(None).expect("the defaults load");
        settings.clickhouse.url = "http://127.0.0.1:1".to_string();
        let db = distans_store::database(&settings.clickhouse);
        let refused = distans_store::panels::scopes(&db).await.expect_err("nothing listens on port 1");
        let error = anyhow::Error::from(refused).context("cannot list the regions");
        let hint = hint(&error, &settings.clickhouse.url).expect("a hint");
        assert!(hint.contains("at http://127.0.0.1:1") && hint.contains("clickhouse.url"), "{hint}");

        let answered = anyhow::Error::from(distans_store::Error::BadResponse("Code: 60. Unknown table".into()));
        assert_eq!(super::hint(&answered, &settings.clickhouse.url), None);
    }
}
