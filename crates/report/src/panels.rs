//! The report's panels: each answers one of the regions' questions with one
//! query over the report views (its SQL is `distans_store::panels`). The
//! terminal report, the HTML report and the Grafana dashboard
//! (`deploy/grafana/`, generated from this list by `distans grafana`) all
//! show these, so they never disagree.

use distans_domain::text::Language;
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
    /// Its title in English.
    pub title: &'static str,
    /// The question from the regions' papers this answers, in English.
    pub question: &'static str,
    /// Its title in Swedish.
    pub title_sv: &'static str,
    /// The question in Swedish.
    pub question_sv: &'static str,
    pub chart: Chart,
    /// Columns drawn as series (the rest are shown in the table).
    pub series: &'static [&'static str],
}

impl Panel {
    pub fn id(&self) -> &'static str {
        self.query.id
    }

    /// Its title in `language`.
    pub fn title_in(&self, language: Language) -> &'static str {
        language.pick(self.title_sv, self.title)
    }

    /// Its question in `language`.
    pub fn question_in(&self, language: Language) -> &'static str {
        language.pick(self.question_sv, self.question)
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
        title_sv: "Kostnad och kontakter per månad",
        question_sv: "Vad kostar digitala utomlänskontakter per månad, och hur står det sig mot samma månad förra året?",
        title: "Cost and contacts per month",
        question: "What do digital out-of-county contacts cost per month, and how does that compare with the same month last year?",
        chart: Chart::Columns,
        series: &["net_sek", "net_last_year_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[1],
        title_sv: "Kostnad per yrkesgrupp",
        question_sv: "Vilka yrkesgrupper möter regionens invånare digitalt, och till vilken kostnad?",
        title: "Cost per profession",
        question: "Which professions do the region's residents meet digitally, at what cost?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[2],
        title_sv: "Remiss eller egen vårdbegäran, per vårdgivare",
        question_sv: "Hur många kontakter följer på en remiss från regionens egna enheter, och hur många är patientens eget val?",
        title: "Referred or own initiative, per provider",
        question: "How many contacts follow a referral from the region's own units, and how many are the patient's own choice?",
        chart: Chart::StackedBars,
        series: &["referred", "own_initiative", "other"],
    },
    Panel {
        query: &PANEL_QUERIES[3],
        title_sv: "Remiss eller egen vårdbegäran, per listningsvårdcentral",
        question_sv: "Vilka vårdcentralers patienter söker sig till digitala vårdgivare på eget initiativ?",
        title: "Referred or own initiative, per listing health centre",
        question: "Which health centres' patients go to digital providers on their own initiative?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[4],
        title_sv: "Kostnad per listningsvårdcentral: vårdcentralens del och regionens centrala del",
        question_sv: "Vad kostar varje vårdcentrals listade befolkning, och vem bär kostnaden (vårdcentralen eller regionen centralt)?",
        title: "Cost per listing health centre, central and health centre share",
        question: "What does each health centre's listed population cost, and who carries it (the health centre or the region centrally)?",
        chart: Chart::StackedBars,
        series: &["health_centre_sek", "central_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[5],
        title_sv: "Kontakter per 1 000 listade patienter",
        question_sv: "Hur mycket använder varje vårdcentrals listade patienter digitala vårdgivare, i förhållande till vårdcentralens storlek?",
        title: "Contacts per 1 000 listed patients",
        question: "How much do each health centre's listed patients use digital providers, for its size?",
        chart: Chart::StackedBars,
        series: &["per_1000_listed"],
    },
    Panel {
        query: &PANEL_QUERIES[6],
        title_sv: "Kostnad per hemkommun",
        question_sv: "Var i regionen bor patienterna?",
        title: "Cost per municipality of residence",
        question: "Where in the region do the patients live?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[7],
        title_sv: "Åldersgrupp och kön, jämfört med de listade",
        question_sv: "Vilka åldersgrupper och kön använder digital vård, jämfört med vilka som är listade?",
        title: "Age group and sex, against the listed population",
        question: "Which age groups and sexes use digital care, compared with who is listed?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[8],
        title_sv: "Diagnosgrupper (ICD-10-kapitel)",
        question_sv: "Vad får invånarna digital vård för?",
        title: "Diagnosis groups (ICD-10 chapter)",
        question: "What are residents treated for digitally?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[9],
        title_sv: "Psykologbesök per patient, per vårdgivare",
        question_sv: "Erbjuder några vårdgivare ovanligt många psykologbesök per patient?",
        title: "Psychologist sessions per patient, per provider",
        question: "Do some providers offer unusually many psychologist sessions per patient?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[10],
        title_sv: "Vårdgivare som avviker från jämförbara",
        question_sv: "Vilka vårdgivare har betydligt fler kontakter per patient, eller betydligt fler återbesök, än andra vårdgivare inom samma yrkesgrupp samma månad?",
        title: "Providers far from their peers",
        question: "Which providers have far more contacts per patient, or far more repeat contacts, than other providers of the same profession that month?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[11],
        title_sv: "Fakturerat digitalt av koncernen bakom patientens egen vårdcentral",
        question_sv: "Vilka patienter faktureras digitalt, via en annan region, av en vårdgivare vars koncern också driver vårdcentralen där de är listade?",
        title: "Invoiced digitally by the group of the patient's own health centre",
        question: "Which patients are invoiced digitally, via another region, by a provider whose group also runs the health centre they are listed at?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[12],
        title_sv: "Fynd per regel",
        question_sv: "Vad flaggade kontrollerna, och hur mycket pengar gäller det?",
        title: "Findings per rule",
        question: "What did the detector flag, and how much money is at stake?",
        chart: Chart::StackedBars,
        series: &["amount_at_stake_sek"],
    },
    Panel {
        query: &PANEL_QUERIES[13],
        title_sv: "Fynd per vårdgivare och regel",
        question_sv: "Vilka vårdgivare fakturerar på ett sätt som inte stämmer, och hur?",
        title: "Findings per provider and rule",
        question: "Which providers invoice implausibly, and how?",
        chart: Chart::Table,
        series: &[],
    },
    Panel {
        query: &PANEL_QUERIES[14],
        title_sv: "Andel av kostnaden som kan ifrågasättas",
        question_sv: "Hur stor del av det regionen betalar gäller rader med minst ett fynd?",
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
