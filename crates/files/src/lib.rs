//! The files a region's data travels in, read and written: invoice lines
//! as JSON lines or CSV ([`invoices`]), and the listing register as CSV
//! ([`listing`]). Readers take a file whole or not at all: the bad rows are
//! counted and the first twenty reported with their line numbers and the
//! field at fault, and no row is returned.
//!
//! `distans produce` and `distans listing import` read these files; the
//! synthetic-data generator (`distans-synth`) writes them.

pub mod errors;
pub mod invoices;
pub mod listing;

pub use errors::{ReadError, RowError};

/// A CSV reader over `bytes` (comma-separated, a header row, every row as
/// wide as the header) and its header row, its names trimmed. Errors, as line 1: no header
/// row, or one separated by semicolons, as a spreadsheet set to Swedish
/// saves "CSV".
pub(crate) fn csv_with_header(bytes: &[u8]) -> Result<(csv::Reader<&[u8]>, csv::StringRecord), RowError> {
    let mut csv = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::Headers).from_reader(bytes);
    let headers = csv.headers().map_err(|e| RowError { line: 1, message: format!("no header row: {e}") })?.clone();
    if headers.len() == 1 && headers[0].contains(';') {
        let message = "the header is separated by semicolons: save the file as CSV with commas (UTF-8)".to_string();
        return Err(RowError { line: 1, message });
    }
    Ok((csv, headers))
}

/// A CSV row the reader could not take, as a bad row: one that is not
/// UTF-8 says how to save the file (a spreadsheet's plain "CSV" is often
/// Windows-1252).
pub(crate) fn csv_row_error(line: usize, error: &csv::Error) -> RowError {
    let message = match error.kind() {
        csv::ErrorKind::Utf8 { .. } => format!("not UTF-8: save the file as CSV UTF-8 ({error})"),
        _ => error.to_string(),
    };
    RowError { line, message }
}
