//! The report's panels: each answers one of the regions' questions with one
//! SQL query over the report views. The terminal report, the HTML report
//! and the Grafana dashboard (`deploy/grafana/`, generated from this list by
//! `distans grafana`) all run these queries, so they never disagree.
//!
//! Queries use two variables, written as Grafana writes them: `${buyer}`
//! (the home region's organisation number) and `${year}`.

use serde::Serialize;

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

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Panel {
    pub id: &'static str,
    pub title: &'static str,
    /// The question from the regions' papers this answers.
    pub question: &'static str,
    pub chart: Chart,
    /// Columns drawn as series (the rest are shown in the table).
    pub series: &'static [&'static str],
    pub sql: &'static str,
}

pub const PANELS: [Panel; 15] = [
    Panel {
        id: "cost_by_month",
        title: "Cost and contacts per month",
        question: "What do digital out-of-county contacts cost per month, and how does that compare with the same month last year?",
        chart: Chart::Columns,
        series: &["net_sek", "net_last_year_sek"],
        sql: "SELECT substring(toString(month), 1, 7) AS month, contacts, patients, intDiv(net_amount_ore, 100) AS net_sek, \
              if(net_last_year_ore = 0, NULL, intDiv(net_last_year_ore, 100)) AS net_last_year_sek, net_growth_percent AS growth_percent \
              FROM report_cost_by_month WHERE buyer_org_number = '${buyer}' AND year = ${year} ORDER BY month",
    },
    Panel {
        id: "cost_by_profession",
        title: "Cost per profession",
        question: "Which professions do the region's residents meet digitally, at what cost?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
        sql: "SELECT profession, contacts, patients, intDiv(net_amount_ore, 100) AS net_sek \
              FROM report_cost_by_profession WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC",
    },
    Panel {
        id: "initiative_by_provider",
        title: "Referred or own initiative, per provider",
        question: "How many contacts follow a referral from the region's own units, and how many are the patient's own choice?",
        chart: Chart::StackedBars,
        series: &["referred", "own_initiative", "other"],
        sql: "SELECT provider, sum(referred_contacts) AS referred, sum(own_initiative_contacts) AS own_initiative, \
              sum(other_contacts) AS other, \
              if(sum(all_contacts) = 0, NULL, round(100 * sum(referred_contacts) / sum(all_contacts), 1)) AS referred_percent \
              FROM report_initiative WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY provider ORDER BY sum(all_contacts) DESC",
    },
    Panel {
        id: "initiative_by_health_centre",
        title: "Referred or own initiative, per listing health centre",
        question: "Which health centres' patients go to digital providers on their own initiative?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT if(listing_unit_hsa_id = '', 'unlisted', any(listing_unit)) AS health_centre, \
              sum(referred_contacts) AS referred, sum(own_initiative_contacts) AS own_initiative, \
              sum(other_contacts) AS other, \
              if(sum(all_contacts) = 0, NULL, round(100 * sum(referred_contacts) / sum(all_contacts), 1)) AS referred_percent \
              FROM report_initiative WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY listing_unit_hsa_id ORDER BY sum(all_contacts) DESC",
    },
    Panel {
        id: "cost_by_health_centre",
        title: "Cost per listing health centre, central and health centre share",
        question: "What does each health centre's listed population cost, and who carries it (the health centre or the region centrally)?",
        chart: Chart::StackedBars,
        series: &["health_centre_sek", "central_sek"],
        sql: "SELECT if(listing_unit_hsa_id = '', 'unlisted', listing_unit) AS health_centre, contacts, patients, \
              intDiv(net_amount_ore, 100) AS net_sek, intDiv(health_centre_ore, 100) AS health_centre_sek, \
              intDiv(central_ore, 100) AS central_sek \
              FROM report_cost_by_health_centre WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC",
    },
    Panel {
        id: "contacts_per_1000_listed",
        title: "Contacts per 1 000 listed patients",
        question: "How much do each health centre's listed patients use digital providers, for its size?",
        chart: Chart::StackedBars,
        series: &["per_1000_listed"],
        sql: "SELECT listing_unit AS health_centre, contacts, listed AS listed_1_july, \
              contacts_per_1000_listed AS per_1000_listed \
              FROM report_contacts_per_1000_listed WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY contacts_per_1000_listed DESC",
    },
    Panel {
        id: "cost_by_municipality",
        title: "Cost per municipality of residence",
        question: "Where in the region do the patients live?",
        chart: Chart::StackedBars,
        series: &["net_sek"],
        sql: "SELECT municipality, contacts, patients, intDiv(net_amount_ore, 100) AS net_sek \
              FROM report_cost_by_municipality WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC",
    },
    Panel {
        id: "age_sex",
        title: "Age group and sex, against the listed population",
        question: "Which age groups and sexes use digital care, compared with who is listed?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT age_group, sex, sum(contacts) AS all_contacts, sum(patients) AS all_patients, \
              intDiv(sum(net_amount_ore), 100) AS net_sek, sum(listed) AS listed_1_july, \
              if(sum(listed) = 0, NULL, round(1000 * sum(contacts) / sum(listed), 1)) AS per_1000_listed \
              FROM report_age_sex WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY age_group, sex \
              ORDER BY indexOf(['0-6', '7-18', '19-39', '40-64', '65-74', '75-84', '85+', 'unknown'], age_group), sex",
    },
    Panel {
        id: "diagnosis_groups",
        title: "Diagnosis groups (ICD-10 chapter)",
        question: "What are residents treated for digitally?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT diagnosis_chapter AS chapter, chapter_title, contacts, patients, \
              intDiv(net_amount_ore, 100) AS net_sek \
              FROM report_diagnosis_groups WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY contacts DESC LIMIT 10",
    },
    Panel {
        id: "psychologist_sessions",
        title: "Psychologist sessions per patient, per provider",
        question: "Do some providers offer unusually many psychologist sessions per patient?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT provider, patients, all_sessions AS sessions, sessions_per_patient, \
              most_sessions_one_patient AS most_for_one_patient \
              FROM report_psychologist_sessions WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY sessions_per_patient DESC",
    },
    Panel {
        id: "providers_far_from_peers",
        title: "Providers far from their peers",
        question: "Which providers have far more contacts per patient, or far more repeat contacts, than other providers of the same profession that month?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT substring(toString(month), 1, 7) AS month, profession_code AS profession, provider, contacts, patients, \
              round(contacts_per_patient, 2) AS per_patient, round(median_contacts_per_patient, 2) AS peers_median, \
              round(100 * repeat_share, 1) AS repeat_percent, round(100 * median_repeat_share, 1) AS peers_repeat_percent, \
              peers, round(greatest(contacts_score, repeat_score), 1) AS score \
              FROM report_provider_peers WHERE buyer_org_number = '${buyer}' AND year = ${year} AND far_from_peers \
              ORDER BY month, profession, provider",
    },
    Panel {
        id: "same_group_listing",
        title: "Invoiced digitally by the group of the patient's own health centre",
        question: "Which patients are invoiced digitally, via another region, by a provider whose group also runs the health centre they are listed at?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT provider, listing_provider_group AS provider_group, any(listing_unit) AS health_centre, \
              sum(contacts) AS all_contacts, intDiv(sum(net_amount_ore), 100) AS net_sek \
              FROM report_same_group_listing WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY provider, provider_group, listing_unit_hsa_id ORDER BY sum(net_amount_ore) DESC",
    },
    Panel {
        id: "findings_by_rule",
        title: "Findings per rule",
        question: "What did the detector flag, and how much money is at stake?",
        chart: Chart::StackedBars,
        series: &["amount_at_stake_sek"],
        sql: "SELECT rule_id AS rule, any(severity) AS severity, sum(findings) AS findings, sum(lines) AS lines, \
              intDiv(sum(amount_at_stake_ore), 100) AS amount_at_stake_sek \
              FROM report_findings WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY rule_id ORDER BY sum(amount_at_stake_ore) DESC",
    },
    Panel {
        id: "findings_by_provider",
        title: "Findings per provider and rule",
        question: "Which providers invoice implausibly, and how?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT provider, rule_id AS rule, findings, intDiv(amount_at_stake_ore, 100) AS amount_at_stake_sek \
              FROM report_findings WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY provider, amount_at_stake_ore DESC",
    },
    Panel {
        id: "disputable_share",
        title: "Share of the cost that is disputable",
        question: "How much of what the region pays is on lines with at least one finding?",
        chart: Chart::Table,
        series: &[],
        sql: "SELECT intDiv(all_net_amount_ore, 100) AS net_sek, intDiv(all_flagged_net_ore, 100) AS flagged_sek, \
              all_flagged_contacts AS flagged_contacts, disputable_percent \
              FROM report_disputable_share WHERE buyer_org_number = '${buyer}' AND year = ${year}",
    },
];

/// A panel's SQL for one region and year. The organisation number must be
/// ten digits, so nothing but digits reaches the query text.
pub fn sql_for(panel: &Panel, buyer_org_number: &str, year: i32) -> Result<String, String> {
    if buyer_org_number.len() != 10 || !buyer_org_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("organisation number must be ten digits, not {buyer_org_number:?}"));
    }
    Ok(panel.sql.replace("${buyer}", buyer_org_number).replace("${year}", &year.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_distinct_use_both_variables_and_name_their_series() {
        let ids: std::collections::BTreeSet<&str> = PANELS.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), PANELS.len());
        for p in PANELS {
            assert!(p.sql.contains("'${buyer}'") && p.sql.contains("${year}"), "{}", p.id);
            assert!(!p.sql.contains('?'), "{}: the clickhouse crate binds '?'", p.id);
            assert_eq!(p.chart == Chart::Table, p.series.is_empty(), "{}", p.id);
            for s in p.series {
                assert!(p.sql.contains(&format!("AS {s}")), "{}: series {s} not selected", p.id);
            }
        }
    }

    #[test]
    fn only_digits_reach_the_sql() {
        let p = &PANELS[0];
        let sql = sql_for(p, "2321000230", 2025).expect("valid");
        assert!(sql.contains("buyer_org_number = '2321000230' AND year = 2025"));
        assert!(sql_for(p, "2321000230' OR 1=1 --", 2025).is_err());
        assert!(sql_for(p, "232100023", 2025).is_err());
    }
}
