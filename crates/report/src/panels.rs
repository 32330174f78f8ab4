//! The report's panels: each answers one of the regions' questions with one
//! query over the report views (its SQL is `distans_store::panels`). The
//! terminal report, the HTML report and the Grafana dashboard
//! (`deploy/grafana/`, generated from this list by `distans grafana`) all
//! show these, so they never disagree.

use distans_store::panels::{PanelQuery, PANEL_QUERIES};
use serde::{Serialize, Serializer};

/// How a panel is drawn. Charts take the first column as the category and
/// the `series` columns as bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    Table,
    /// Vertical bars per category (e.g. months), one colour per series.
    Columns,
    /// Horizontal bars, stacked series (e.g. health centres).
    StackedBars,
}

#[derive(Debug, Clone, Copy)]
pub struct Panel {
    /// Its id and SQL.
    pub query: &'static PanelQuery,
    pub title: &'static str,
    /// The question from the regions' papers this answers.
    pub question: &'static str,
    pub chart: Chart,
    /// Columns drawn as series (the rest are shown in the table).
    pub series: &'static [&'static str],
}

impl Panel {
    pub fn id(&self) -> &'static str {
        self.query.id
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
            series: &'a [&'a str],
            sql: &'a str,
        }
        Shown {
            id: self.query.id,
            title: self.title,
            question: self.question,
            chart: self.chart,
            series: self.series,
            sql: self.query.sql,
        }
        .serialize(serializer)
    }
}

pub const PANELS: [Panel; 15] = [
    Panel {
        query: &PANEL_QUERIES[0],
        title: "Cost and contacts per month",
        question: "What do digital out-of-county contacts cost per month, and how does that compare with the same month last year?",
        chart: Chart::Columns,
        series: &["net_sek", "net_last_year_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[1],
        title: "Cost per profession",
        question: "Which professions do the region's residents meet digitally, at what cost?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[2],
        title: "Referred or own initiative, per provider",
        question: "How many contacts follow a referral from the region's own units, and how many are the patient's own choice?",
        chart: Chart::StackedBars,
        series: &["referred", "own_initiative", "other"],
    },
    Panel {
        query: &PANEL_QUERIES[3],
        title: "Referred or own initiative, per listing health centre",
        question: "Which health centres' patients go to digital providers on their own initiative?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[4],
        title: "Cost per listing health centre, central and health centre share",
        question: "What does each health centre's listed population cost, and who carries it (the health centre or the region centrally)?",
        chart: Chart::StackedBars,
        series: &["health_centre_sek", "central_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[5],
        title: "Contacts per 1 000 listed patients",
        question: "How much do each health centre's listed patients use digital providers, for its size?",
        chart: Chart::StackedBars,
        series: &["per_1000_listed"],
    },
    Panel {
        query: &PANEL_QUERIES[6],
        title: "Cost per municipality of residence",
        question: "Where in the region do the patients live?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[7],
        title: "Age group and sex, against the listed population",
        question: "Which age groups and sexes use digital care, compared with who is listed?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[8],
        title: "Diagnosis groups (ICD-10 chapter)",
        question: "What are residents treated for digitally?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[9],
        title: "Psychologist sessions per patient, per provider",
        question: "Do some providers offer unusually many psychologist sessions per patient?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[10],
        title: "Providers far from their peers",
        question: "Which providers have far more contacts per patient, or far more repeat contacts, than other providers of the same profession that month?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[11],
        title: "Invoiced digitally by the group of the patient's own health centre",
        question: "Which patients are invoiced digitally, via another region, by a provider whose group also runs the health centre they are listed at?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[12],
        title: "Findings per rule",
        question: "What did the detector flag, and how much money is at stake?",
        chart: Chart::StackedBars,
        series: &["amount_at_stake_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[13],
        title: "Findings per provider and rule",
        question: "Which providers invoice implausibly, and how?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[14],
        title: "Share of the cost that is disputable",
        question: "How much of what the region pays is on lines with at least one finding?",
        chart: Chart::Table,
        series: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_one_panel_that_names_its_series() {
        assert_eq!(PANELS.len(), PANEL_QUERIES.len());
        for (panel, query) in PANELS.iter().zip(&PANEL_QUERIES) {
            assert_eq!(panel.id(), query.id);
            assert_eq!(panel.chart == Chart::Table, panel.series.is_empty(), "{}", panel.id());
            for s in panel.series {
                assert!(query.sql.contains(&format!("AS {s}")), "{}: series {s} not selected", panel.id());
            }
        }
    }
}
