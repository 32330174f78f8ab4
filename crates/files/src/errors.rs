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
    /// `total` bad rows; `errors` holds the first of them by line number
    /// (at most [`MAX_REPORTED`]).
    #[error(
        "{total} bad row(s) in {path}{}:\n  {}",
        if *.total > .errors.len() { format!(", the first {}", .errors.len()) } else { String::new() },
        .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Rows { path: String, total: usize, errors: Vec<RowError> },
    /// The file holds no row at all (empty, blank lines, or a header
    /// alone): an empty file sent by mistake must not pass for one read.
    #[error("{path} holds no {what}: it is empty, or has blank lines or a header only")]
    Empty { path: String, what: &'static str },
}

/// How many bad rows a [`ReadError::Rows`] shows.
pub const MAX_REPORTED: usize = 20;

impl ReadError {
    /// The bad rows `errors` of the file at `path`: their count, and the
    /// first [`MAX_REPORTED`].
    pub fn rows(path: String, mut errors: Vec<RowError>) -> ReadError {
        let total = errors.len();
        errors.truncate(MAX_REPORTED);
        ReadError::Rows { path, total, errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_are_counted_and_the_first_shown() {
        let bad = |n| (1..=n).map(|line| RowError { line, message: "bad".into() }).collect::<Vec<_>>();
        let few = ReadError::rows("a.csv".into(), bad(2)).to_string();
        assert_eq!(few, "2 bad row(s) in a.csv:\n  line 1: bad\n  line 2: bad");
        let many = ReadError::rows("a.csv".into(), bad(25)).to_string();
        assert!(many.starts_with("25 bad row(s) in a.csv, the first 20:\n  line 1: bad"), "{many}");
        assert!(many.ends_with("line 20: bad"), "{many}");
    }
}
