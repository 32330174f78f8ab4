//! The report's panels: each answers one of the regions' questions with one
//! query over the report views (its SQL is `distans_store::panels`). The
//! terminal report, the HTML report and the Grafana dashboard
//! (`deploy/grafana/`, generated from this list by `distans grafana`) all
//! show these, so they never disagree.

use distans_domain::text::Language;
use distans_store::panels::{PanelQuery, PANEL_QUERIES};
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a panel is drawn. Charts take the first column as the category and
/// the `series` columns as bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    Table,
    /// Vertical bars per category (e.g. months), one colour per series.
    Columns,
    /// Horizontal bars, stacked series (e.g. health centres).
    StackedBars,
}

/// A panel as people see it: one `[[panel]]` table of `panels.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Its id and SQL (`id` in the file: the query's id in [`PANEL_QUERIES`]).
    #[serde(rename = "id", deserialize_with = "query_by_id")]
    pub query: &'static PanelQuery,
    /// Its title in Swedish.
    pub title_sv: String,
    /// The question from the regions' papers this answers, in Swedish.
    pub question_sv: String,
    /// Its title in English.
    pub title_en: String,
    /// The question in English.
    pub question_en: String,
    pub chart: Chart,
    /// Columns drawn as series (the rest are shown in the table).
    pub series: Vec<String>,
}

impl Panel {
    pub fn id(&self) -> &'static str {
        self.query.id
    }

    /// Its title in `language`.
    pub fn title_in(&self, language: Language) -> &str {
        language.pick(&self.title_sv, &self.title_en)
    }

    /// Its question in `language`.
    pub fn question_in(&self, language: Language) -> &str {
        language.pick(&self.question_sv, &self.question_en)
    }

    /// The rules whose findings the panel shows, for the explanation beside
    /// it (the panels with a `rule` column show every rule in their rows).
    pub fn rules(&self) -> &'static [&'static str] {
        match self.id() {
            "providers_far_from_peers" => &["provider_far_from_peers"],
            "same_group_listing" => &["listed_at_same_group"],
            _ => &[],
        }
    }
}

/// As `distans panels` prints it: id, title, question, chart, series, SQL.
impl Serialize for Panel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            title: &'a str,
            question: &'a str,
            chart: Chart,
            series: &'a [String],
            sql: &'a str,
        }
        Shown {
            id: self.query.id,
            title: &self.title_en,
            question: &self.question_en,
            chart: self.chart,
            series: &self.series,
            sql: self.query.sql,
        }
        .serialize(serializer)
    }
}

/// The panel query with the id `panels.toml` names.
fn query_by_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<&'static PanelQuery, D::Error> {
    let id = String::deserialize(deserializer)?;
    PANEL_QUERIES
        .iter()
        .find(|query| query.id == id)
        .ok_or_else(|| serde::de::Error::custom(format!("no panel query has the id {id:?}")))
}

/// The report's panels, in the order it shows them (that of
/// [`PANEL_QUERIES`]), read from `crates/report/panels.toml`, which is
/// compiled in. The file is part of the source and the tests read it, so a
/// malformed one fails the tests, not a command: that is why an error
/// panics, naming the file.
pub static PANELS: LazyLock<Vec<Panel>> = LazyLock::new(|| {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        panel: Vec<Panel>,
    }
    let file: File =
        toml::from_str(include_str!("../panels.toml")).unwrap_or_else(|err| panic!("crates/report/panels.toml: {err}"));
    file.panel
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_one_panel_that_names_its_series() {
        assert_eq!(PANELS.len(), PANEL_QUERIES.len());
        for (panel, query) in PANELS.iter().zip(&PANEL_QUERIES) {
            assert!(!panel.title_sv.is_empty() && !panel.question_sv.is_empty(), "{}", panel.id());
            assert!(!panel.title_en.is_empty() && !panel.question_en.is_empty(), "{}", panel.id());
            assert_eq!(panel.id(), query.id);
            assert_eq!(panel.chart == Chart::Table, panel.series.is_empty(), "{}", panel.id());
            for s in &panel.series {
                assert!(query.sql.contains(&format!("AS {s}")), "{}: series {s} not selected", panel.id());
            }
        }
    }
}
