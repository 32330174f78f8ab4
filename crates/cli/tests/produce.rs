//! `distans produce` as the end-to-end tests use it (`produce_lines`).

use distans_cli::cmd::produce::produce_lines;
use distans_domain::InvoiceLine;
use distans_runtime::Settings;

/// A line the broker would refuse stops the file before anything is
/// sent (here, before any broker is asked: none listens).
#[tokio::test]
async fn a_file_with_a_line_too_large_sends_nothing() {
    let mut settings = Settings::load(None).expect("the defaults load");
    settings.kafka.brokers = "127.0.0.1:1".into();
    settings.kafka.max_record_bytes = 2_000;
    let line = distans_domain::testing::invoice_line();
    let large = InvoiceLine { line_number: 2, diagnosis_codes: vec!["J06.9".into(); 400], ..line.clone() };
    let error = produce_lines(&settings, &[line, large.clone()], false).await.expect_err("too large").to_string();
    assert!(
        error.starts_with(
            "1 line(s) larger than kafka.max_record_bytes (2000 bytes) once encoded, so nothing was sent: "
        ) && error.contains(&large.key()),
        "{error}"
    );
}
