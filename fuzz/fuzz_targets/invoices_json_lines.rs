//! Any bytes as an invoice file in JSON lines (`distans produce`,
//! `distans audit`): `distans_files::invoices::parse_lines`.
//!
//! Checked, besides "never panics": a rejected file names its bad rows,
//! each on a line that exists, in order; an accepted file's lines written
//! back (`write_json_lines`) read back the same.
#![no_main]

use distans_files::invoices::{parse_lines, write_json_lines, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match parse_lines(bytes, Format::JsonLines) {
        Ok(lines) => {
            let mut written = Vec::new();
            write_json_lines(&lines, &mut written).expect("writes to memory");
            assert_eq!(parse_lines(&written, Format::JsonLines).expect("what was written reads back"), lines);
        }
        Err(errors) => {
            let rows = bytes.split(|b| *b == b'\n').count();
            assert!(!errors.is_empty(), "a rejected file names a bad row");
            assert!(errors.windows(2).all(|w| w[0].line < w[1].line), "one error per row, in order");
            assert!(errors.iter().all(|e| e.line >= 1 && e.line <= rows), "every error is on a line of the file");
        }
    }
});
