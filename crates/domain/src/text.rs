//! Free text from invoices (provider names, unit names, evidence quoting
//! them) made safe for the places people read it. No I/O.
//!
//! The ingester refuses free text with control characters or over
//! [`MAX_FREE_TEXT_CHARS`] by default (`validate.rs`, reason
//! `invalid_free_text`), but outputs do not trust that: the check may be set
//! to warn, and data written before it, the listing register and
//! ClickHouse's own text pass through here too.
//!
//! - [`printable`]: one line of text with every character that could steer a
//!   terminal or reorder what is shown replaced by U+FFFD (`�`): C0 controls
//!   (NUL, ESC, CR, LF, TAB …), DEL, C1 controls (U+0080–U+009F, including
//!   the 8-bit CSI and OSC), the bidirectional formatting characters
//!   (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069; the "Trojan
//!   Source" set, Unicode TR #9), and the line and paragraph separators
//!   (U+2028, U+2029); cut to `max_chars` characters with `…`. With ESC
//!   gone no escape sequence (clear screen, window title, OSC-8 link) can
//!   start.
//! - [`slack`]: `printable`, then `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`,
//!   the three characters Slack's "Formatting text" guide says to escape,
//!   so `<!channel>` or `<@U123>` in a name is shown, not acted on.
//! - [`markdown`]: `printable`, then a backslash before every character
//!   CommonMark gives a meaning to, for Adaptive Card `TextBlock`s
//!   (Teams renders a subset of Markdown there), so a name cannot make a
//!   link, bold text or a list.
//! - [`Language`]: the language people read the output in; [`Bilingual`]:
//!   a text of distans' own in both.
//! - [`html`]: `printable`, then `&`, `<`, `>`, `"`, `'` as entities, for
//!   text and attribute values.

use std::borrow::Cow;

/// The language people read distans' output in (`notifier.language`,
/// `reporting.language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Swedish,
    English,
}

impl Language {
    /// `sv` or `en`.
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "sv" => Some(Language::Swedish),
            "en" => Some(Language::English),
            _ => None,
        }
    }

    /// The BCP 47 tag: `sv` or `en`.
    pub fn tag(self) -> &'static str {
        match self {
            Language::Swedish => "sv",
            Language::English => "en",
        }
    }

    /// `sv` in Swedish, `en` in English.
    pub fn pick<T>(self, sv: T, en: T) -> T {
        match self {
            Language::Swedish => sv,
            Language::English => en,
        }
    }
}

/// A text in both languages distans speaks, e.g. a rule's name:
/// `Bilingual { sv: "Fel pris", en: "Wrong price" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bilingual {
    pub sv: &'static str,
    pub en: &'static str,
}

impl Bilingual {
    /// The text in `language`.
    pub fn in_language(self, language: Language) -> &'static str {
        language.pick(self.sv, self.en)
    }
}

/// The longest free-text field the ingester accepts, in characters
/// (`validation.checks.invalid_free_text`). distans' own limit: no source
/// defines one for these fields; it is far above any real provider name and
/// far below what would burden a message, a report cell or the detector.
pub const MAX_FREE_TEXT_CHARS: usize = 256;

/// How many characters of a name outputs show at most.
pub const SHOWN_CHARS: usize = MAX_FREE_TEXT_CHARS;

/// What replaces a character that must not reach a reader.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` may steer a terminal or reorder text: C0 and C1 controls,
/// DEL, the bidirectional formatting characters and the line and paragraph
/// separators (see the module docs).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` as one safe line: hostile characters ([`is_hostile`]) as U+FFFD,
/// at most `max_chars` characters (the last one `…` when cut). Borrowed when
/// nothing changes.
pub fn printable(text: &str, max_chars: usize) -> Cow<'_, str> {
    let long = text.chars().nth(max_chars).is_some();
    if !long && !text.chars().any(is_hostile) {
        return Cow::Borrowed(text);
    }
    let keep = if long { max_chars.saturating_sub(1) } else { max_chars };
    let mut out: String = text.chars().take(keep).map(|c| if is_hostile(c) { REPLACEMENT } else { c }).collect();
    if long {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Text for Slack `mrkdwn` or `plain_text`: [`printable`], then `&`, `<`,
/// `>` escaped as Slack's docs ask.
pub fn slack(text: &str) -> String {
    entities(text, false)
}

/// Text for Markdown (Adaptive Card `TextBlock`s): [`printable`], then a
/// backslash before each character CommonMark reads as inline markup
/// (`\\ * _ [ ] < > ` ~`, so no link, emphasis or code span can start) and
/// before a leading `-`, `+`, `#`, `>` or `1.` that would make a list, a
/// heading or a quote. Dates and figures ("2025-02-14", "(limit 20)") stay
/// as they are.
pub fn markdown(text: &str) -> String {
    let shown = printable(text, SHOWN_CHARS);
    let mut out = String::with_capacity(shown.len() + 8);
    let digits = shown.chars().take_while(char::is_ascii_digit).count();
    let numbered = digits > 0 && matches!(shown.chars().nth(digits), Some('.' | ')'));
    for (i, c) in shown.chars().enumerate() {
        let inline = matches!(c, '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '`' | '~');
        let block = (i == 0 && matches!(c, '-' | '+' | '#' | '>')) || (numbered && i == digits);
        if inline || block {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for HTML (element content or a quoted attribute value):
/// [`printable`], then `&`, `<`, `>`, `"`, `'` as entities.
pub fn html(text: &str) -> String {
    entities(text, true)
}

/// [`printable`], then `&`, `<`, `>` as entities, and with `quotes` also
/// `"` and `'` (the escaping [`slack`] and [`html`] share).
fn entities(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in printable(text, SHOWN_CHARS).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names a hostile seller could send, and what must not survive.
    const HOSTILE: [(&str, &str); 7] = [
        ("clear screen", "Vård\u{1b}[2J\u{1b}[HAB"),
        ("window title", "Vård\u{1b}]0;owned\u{7}AB"),
        ("OSC-8 link", "\u{1b}]8;;https://evil.example\u{1b}\\Klicka\u{1b}]8;;\u{1b}\\"),
        ("8-bit CSI", "Vård\u{9b}2JAB"),
        ("NUL", "Vård\0AB"),
        ("right-to-left override", "Vård\u{202E}BA gnidloh"),
        ("line break", "Vård\r\nAB"),
    ];

    #[test]
    fn no_control_or_bidi_character_survives() {
        for (case, name) in HOSTILE {
            for shown in [printable(name, 100).into_owned(), slack(name), markdown(name), html(name)] {
                assert!(!shown.chars().any(is_hostile), "{case}: {shown:?}");
                assert!(shown.contains(REPLACEMENT), "{case}: {shown:?}");
            }
        }
    }

    #[test]
    fn plain_names_are_kept_and_long_ones_cut() {
        assert!(matches!(printable("Kry Vård AB", 100), Cow::Borrowed("Kry Vård AB")));
        let long = "å".repeat(900_000);
        let shown = printable(&long, SHOWN_CHARS);
        assert_eq!(shown.chars().count(), SHOWN_CHARS);
        assert!(shown.ends_with('…'));
        assert_eq!(printable("abc", 3), "abc", "exactly the limit is not cut");
    }

    #[test]
    fn slack_mentions_and_links_are_shown_not_acted_on() {
        assert_eq!(
            slack("<!channel> & <@U024BE7LH> <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;@U024BE7LH&gt; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn markdown_markup_is_escaped() {
        assert_eq!(markdown("[Klicka](https://evil.example) **AB**"), r"\[Klicka\](https://evil.example) \*\*AB\*\*");
        assert_eq!(markdown("- Vård_AB"), r"\- Vård\_AB");
        assert_eq!(markdown("12. Vård"), r"12\. Vård");
        assert_eq!(markdown("visit 2025-02-14 (limit 20)"), "visit 2025-02-14 (limit 20)");
    }

    #[test]
    fn html_text_and_attributes_are_escaped() {
        assert_eq!(
            html(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
