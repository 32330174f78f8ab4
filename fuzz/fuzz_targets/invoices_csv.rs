//! Any bytes as an invoice file in CSV (`distans produce FILE.csv`):
//! `distans_files::invoices::parse_lines` with `Format::Csv`.
//!
//! Checked, besides "never panics": a rejected file names its bad rows, in
//! order, each on a line from 1 (the header) up; an accepted file's lines
//! are whole invoice lines (they encode as the ingester's input does).
#![no_main]

use std::sync::LazyLock;

use distans_files::invoices::{parse_lines, Format};
use distans_wire::Codec;
use libfuzzer_sys::fuzz_target;

static CODEC: LazyLock<Codec> = LazyLock::new(Codec::embedded);

fuzz_target!(|bytes: &[u8]| {
    match parse_lines(bytes, Format::Csv) {
        Ok(lines) => {
            for line in &lines {
                let encoded = CODEC.encode_invoice_line(line).expect("an accepted line encodes");
                assert_eq!(&CODEC.decode_invoice_line(&encoded).expect("and decodes"), line);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a rejected file names a bad row");
            assert!(errors.windows(2).all(|w| w[0].line < w[1].line), "one error per row, in order");
            assert!(errors.iter().all(|e| e.line >= 1), "line numbers are 1-based");
        }
    }
});
