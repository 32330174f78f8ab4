//! A credential that never reaches a log, an error message or `/metrics`.
//!
//! `Secret` wraps the text of a password, key or secret-bearing URL. Its
//! `Debug` and `Display` print `<redacted>`; the text is read only through
//! [`Secret::expose`], at the one place that hands it to a client library.

use serde::Deserialize;

/// A credential read from configuration. Deserializes from a plain string.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The clear text, for the client library that needs it; never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_text() {
        let s = Secret::new("hunter2-xyz");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2-xyz");
    }

    #[test]
    fn deserializes_from_a_string() {
        use serde::de::value::{Error, StrDeserializer};
        let s = Secret::deserialize(StrDeserializer::<Error>::new("p@ss")).expect("a string");
        assert_eq!(s.expose(), "p@ss");
    }
}
