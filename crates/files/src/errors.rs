//! What is wrong with a file: it cannot be read, or rows are bad.

/// A row that is not an invoice line, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

/// Why a file was not read: nothing of it is returned.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read. (`error` is not a `source`:
    /// the message already says it, and `{:#}` would say it twice.)
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// Bad rows, the first twenty by line number.
    #[error("{} bad row(s) in {path}:\n  {}", .errors.len(), .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Rows { path: String, errors: Vec<RowError> },
}
