//! The report panels' SQL: one query per question over the report views
//! (`views/reports.sql`). The terminal report, the HTML report and the
//! Grafana dashboard all run these (their titles and charts are
//! `distans_report::panels`), so they never disagree.
//!
//! Queries use two variables, written as Grafana writes them: `${buyer}`
//! (the home region's organisation number) and `${year}`; the findings
//! panels also `${provider}` and `${rule}` (empty: all). Amounts are
//! shown in whole kronor, rounded half away from zero as
//! `distans_domain::money` rounds them ([`kronor_sql!`]).

use serde::Deserialize;
use serde_json::Value;

use crate::{Client, Error};

/// SQL for an amount in öre (a literal SQL expression) as whole kronor,
/// rounded half away from zero (ClickHouse's `intDiv` truncates towards
/// zero): the rounding of `distans_domain::money::Ore::kronor_rounded`.
#[macro_export]
macro_rules! kronor_sql {
    ($ore:literal) => {
        concat!("intDiv(", $ore, " + if(", $ore, " < 0, -50, 50), 100)")
    };
}

/// The query of an initiative panel (`report_initiative`): the column
/// `$first`, then referred, own-initiative and other contacts and the share
/// referred (%, one decimal; NULL without contacts), summed per `$key`,
/// most contacts first.
macro_rules! initiative_sql {
    ($first:literal, $key:literal) => {
        concat!(
            "SELECT ",
            $first,
            ", sum(referred_contacts) AS referred, sum(own_initiative_contacts) AS own_initiative, \
              sum(other_contacts) AS other, \
              if(sum(all_contacts) = 0, NULL, round(100 * sum(referred_contacts) / sum(all_contacts), 1)) AS referred_percent \
              FROM report_initiative WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY ",
            $key,
            " ORDER BY sum(all_contacts) DESC"
        )
    };
}

/// One panel's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PanelQuery {
    pub id: &'static str,
    pub sql: &'static str,
}

impl PanelQuery {
    /// The names of the columns it selects: each top-level item of the
    /// SELECT list, after `AS` where there is one.
    pub fn columns(&self) -> Vec<String> {
        let select = self.sql.trim_start().trim_start_matches("SELECT");
        let (mut depth, mut start, mut items) = (0i32, 0usize, Vec::new());
        for (i, c) in select.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&select[start..i]);
                    start = i + 1;
                }
                _ if depth == 0 && select[i..].starts_with(" FROM ") => {
                    items.push(&select[start..i]);
                    break;
                }
                _ => {}
            }
        }
        items.iter().map(|item| item.rsplit(" AS ").next().unwrap_or(item).trim().to_string()).collect()
    }

    /// The name of the first selected column (the category of a chart).
    pub fn first_column(&self) -> String {
        let select = self.sql.trim_start().trim_start_matches("SELECT").trim_start();
        let mut depth = 0i32;
        let end = select
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                *c == ',' && depth == 0
            })
            .map_or(select.len(), |(i, _)| i);
        let first = &select[..end];
        first.rsplit(" AS ").next().unwrap_or(first).trim().to_string()
    }
}

/// Every panel's query, in the report's order.
pub const PANEL_QUERIES: [PanelQuery; 15] = [
    PanelQuery {
        id: "cost_by_month",
        sql: concat!(
            "SELECT substring(toString(month), 1, 7) AS month, contacts, patients, ",
            kronor_sql!("net_amount_ore"),
            " AS net_sek, \
              if(net_last_year_ore = 0, NULL, ",
            kronor_sql!("net_last_year_ore"),
            ") AS net_last_year_sek, net_growth_percent AS growth_percent \
              FROM report_cost_by_month WHERE buyer_org_number = '${buyer}' AND year = ${year} ORDER BY month"
        ),
    },
    PanelQuery {
        id: "cost_by_profession",
        sql: concat!(
            "SELECT profession, contacts, patients, ",
            kronor_sql!("net_amount_ore"),
            " AS net_sek \
              FROM report_cost_by_profession WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC"
        ),
    },
    PanelQuery {
        id: "initiative_by_provider",
        sql: initiative_sql!("provider", "provider"),
    },
    PanelQuery {
        id: "initiative_by_health_centre",
        sql: initiative_sql!(
            "if(listing_unit_hsa_id = '', 'unlisted', any(listing_unit)) AS health_centre",
            "listing_unit_hsa_id"
        ),
    },
    PanelQuery {
        id: "cost_by_health_centre",
        sql: concat!(
            "SELECT if(listing_unit_hsa_id = '', 'unlisted', listing_unit) AS health_centre, contacts, patients, \
              ",
            kronor_sql!("net_amount_ore"),
            " AS net_sek, ",
            kronor_sql!("health_centre_ore"),
            " AS health_centre_sek, \
              ",
            kronor_sql!("central_ore"),
            " AS central_sek \
              FROM report_cost_by_health_centre WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC"
        ),
    },
    PanelQuery {
        id: "contacts_per_1000_listed",
        sql: "SELECT listing_unit AS health_centre, contacts, listed AS listed_1_july, \
              contacts_per_1000_listed AS per_1000_listed \
              FROM report_contacts_per_1000_listed WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY contacts_per_1000_listed DESC",
    },
    PanelQuery {
        id: "cost_by_municipality",
        sql: concat!(
            "SELECT municipality, contacts, patients, ",
            kronor_sql!("net_amount_ore"),
            " AS net_sek \
              FROM report_cost_by_municipality WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY net_amount_ore DESC"
        ),
    },
    PanelQuery {
        id: "age_sex",
        sql: concat!(
            "SELECT age_group, sex, sum(contacts) AS all_contacts, sum(patients) AS all_patients, \
              ",
            kronor_sql!("sum(net_amount_ore)"),
            " AS net_sek, sum(listed) AS listed_1_july, \
              if(sum(listed) = 0, NULL, round(1000 * sum(contacts) / sum(listed), 1)) AS per_1000_listed \
              FROM report_age_sex WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY age_group, sex \
              ORDER BY indexOf(['0-6', '7-18', '19-39', '40-64', '65-74', '75-84', '85+', 'unknown'], age_group), sex"
        ),
    },
    PanelQuery {
        id: "diagnosis_groups",
        sql: concat!(
            "SELECT diagnosis_chapter AS chapter, chapter_title, contacts, patients, \
              ",
            kronor_sql!("net_amount_ore"),
            " AS net_sek \
              FROM report_diagnosis_groups WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY contacts DESC LIMIT 10"
        ),
    },
    PanelQuery {
        id: "psychologist_sessions",
        sql: "SELECT provider, patients, all_sessions AS sessions, sessions_per_patient, \
              most_sessions_one_patient AS most_for_one_patient \
              FROM report_psychologist_sessions WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              ORDER BY sessions_per_patient DESC",
    },
    PanelQuery {
        id: "providers_far_from_peers",
        sql: "SELECT substring(toString(month), 1, 7) AS month, profession_code AS profession, provider, contacts, patients, \
              round(contacts_per_patient, 2) AS per_patient, round(median_contacts_per_patient, 2) AS peers_median, \
              round(100 * repeat_share, 1) AS repeat_percent, round(100 * median_repeat_share, 1) AS peers_repeat_percent, \
              peers, round(greatest(contacts_score, repeat_score), 1) AS score \
              FROM report_provider_peers WHERE buyer_org_number = '${buyer}' AND year = ${year} AND far_from_peers \
              ORDER BY month, profession, provider",
    },
    PanelQuery {
        id: "same_group_listing",
        sql: concat!(
            "SELECT provider, listing_provider_group AS provider_group, any(listing_unit) AS health_centre, \
              sum(contacts) AS all_contacts, ",
            kronor_sql!("sum(net_amount_ore)"),
            " AS net_sek \
              FROM report_same_group_listing WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              GROUP BY provider, provider_group, listing_unit_hsa_id ORDER BY sum(net_amount_ore) DESC"
        ),
    },
    PanelQuery {
        id: "findings_by_rule",
        sql: concat!(
            "SELECT rule_id AS rule, any(severity) AS severity, sum(findings) AS findings, sum(lines) AS lines, \
              ",
            kronor_sql!("sum(amount_at_stake_ore)"),
            " AS amount_at_stake_sek \
              FROM report_findings WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              AND ('${provider}' = '' OR provider_org_number = '${provider}') AND ('${rule}' = '' OR rule_id = '${rule}') \
              GROUP BY rule_id ORDER BY sum(amount_at_stake_ore) DESC"
        ),
    },
    PanelQuery {
        id: "findings_by_provider",
        sql: concat!(
            "SELECT provider, provider_org_number, rule_id AS rule, findings, ",
            kronor_sql!("amount_at_stake_ore"),
            " AS amount_at_stake_sek \
              FROM report_findings WHERE buyer_org_number = '${buyer}' AND year = ${year} \
              AND ('${provider}' = '' OR provider_org_number = '${provider}') AND ('${rule}' = '' OR rule_id = '${rule}') \
              ORDER BY provider, amount_at_stake_ore DESC"
        ),
    },
    PanelQuery {
        id: "disputable_share",
        sql: concat!(
            "SELECT ",
            kronor_sql!("all_net_amount_ore"),
            " AS net_sek, ",
            kronor_sql!("all_flagged_net_ore"),
            " AS flagged_sek, \
              all_flagged_contacts AS flagged_contacts, disputable_percent \
              FROM report_disputable_share WHERE buyer_org_number = '${buyer}' AND year = ${year}"
        ),
    },
];

/// The query of panel `id`.
pub fn panel_query(id: &str) -> Option<&'static PanelQuery> {
    PANEL_QUERIES.iter().find(|q| q.id == id)
}

/// Grafana's query variables: (name, query listing its values). A query
/// with two columns gives each value (the first) a label (the second): the
/// home regions by name, from `ref_regions_current` (org number where none).
/// `${provider}` and `${rule}` are text variables (empty: every provider or
/// rule) that only the findings panels filter by; alerts link with them.
pub const VARIABLE_QUERIES: [(&str, &str); 2] = [
    (
        "buyer",
        "SELECT buyer_org_number, if(name = '', buyer_org_number, concat(name, ' (', buyer_org_number, ')')) AS region \
         FROM (SELECT DISTINCT buyer_org_number FROM agg_monthly) AS used \
         ANY LEFT JOIN (SELECT buyer_org_number, name FROM ref_regions_current) AS names USING (buyer_org_number) \
         ORDER BY region",
    ),
    ("year", "SELECT DISTINCT toYear(month) AS year FROM agg_monthly ORDER BY year DESC"),
];

/// A panel's SQL for one region and year, every provider and rule
/// (`${provider}` and `${rule}` empty). The organisation number must be
/// ten digits, so nothing but digits reaches the query text.
pub fn sql_for(query: &PanelQuery, buyer_org_number: &str, year: i32) -> Result<String, String> {
    if buyer_org_number.len() != 10 || !buyer_org_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("organisation number must be ten digits, not {buyer_org_number:?}"));
    }
    Ok(query
        .sql
        .replace("${buyer}", buyer_org_number)
        .replace("${year}", &year.to_string())
        .replace("${provider}", "")
        .replace("${rule}", ""))
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct RegionRow {
    buyer_org_number: String,
    name: String,
}

/// The home regions' names (organisation number → "Region Jämtland
/// Härjedalen") of the latest reference load.
pub async fn region_names(db: &Client) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let rows: Vec<RegionRow> = db.query("SELECT buyer_org_number, name FROM ref_regions_current").fetch_all().await?;
    Ok(rows.into_iter().map(|r| (r.buyer_org_number, r.name)).collect())
}

/// A query's result: column names and rows of JSON values (ClickHouse
/// quotes 64-bit integers in JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct JsonCompact {
    meta: Vec<Meta>,
    data: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: String,
}

/// Runs a panel for one region and year. An invalid organisation number is
/// `Error::Custom`.
pub async fn run(db: &Client, query: &PanelQuery, buyer_org_number: &str, year: i32) -> Result<Rows, Error> {
    let sql = sql_for(query, buyer_org_number, year).map_err(Error::Custom)?;
    let mut cursor = db.query(&sql).fetch_bytes("JSONCompact")?;
    let bytes = cursor.collect().await?;
    let parsed: JsonCompact =
        serde_json::from_slice(&bytes).map_err(|e| Error::Custom(format!("panel {}: {e}", query.id)))?;
    Ok(Rows { columns: parsed.meta.into_iter().map(|m| m.name).collect(), rows: parsed.data })
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct BuyerYear {
    buyer_org_number: String,
    year: u16,
}

/// Every (home region's organisation number, visit year) with aggregated
/// lines, in order.
pub async fn scopes(db: &Client) -> Result<Vec<(String, i32)>, Error> {
    let rows: Vec<BuyerYear> = db
        .query(
            "SELECT buyer_org_number, toUInt16(toYear(month)) AS year FROM agg_monthly \
             GROUP BY buyer_org_number, year ORDER BY buyer_org_number, year",
        )
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|r| (r.buyer_org_number, i32::from(r.year))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_distinct_and_use_both_variables() {
        let ids: std::collections::BTreeSet<&str> = PANEL_QUERIES.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), PANEL_QUERIES.len());
        for p in PANEL_QUERIES {
            assert!(p.sql.contains("'${buyer}'") && p.sql.contains("${year}"), "{}", p.id);
            assert!(!p.sql.contains('?'), "{}: the clickhouse crate binds '?'", p.id);
            assert!(!p.sql.contains("intDiv(net") || p.sql.contains("+ if("), "{}: amounts are rounded", p.id);
        }
    }

    #[test]
    fn columns_are_the_names_selected() {
        let q = panel_query("findings_by_provider").expect("panel");
        assert_eq!(q.columns(), ["provider", "provider_org_number", "rule", "findings", "amount_at_stake_sek"]);
        assert_eq!(PANEL_QUERIES[0].columns()[0], PANEL_QUERIES[0].first_column());
    }

    #[test]
    fn kronor_rounds_half_away_from_zero() {
        assert_eq!(crate::kronor_sql!("x"), "intDiv(x + if(x < 0, -50, 50), 100)");
    }

    #[test]
    fn only_digits_reach_the_sql() {
        let p = &PANEL_QUERIES[0];
        let sql = sql_for(p, "2321000230", 2025).expect("valid");
        assert!(sql.contains("buyer_org_number = '2321000230' AND year = 2025"));
        let findings = sql_for(panel_query("findings_by_provider").expect("panel"), "2321000230", 2025).expect("valid");
        assert!(findings.contains("('' = '' OR provider_org_number = '')") && !findings.contains('$'), "{findings}");
        assert!(sql_for(p, "2321000230' OR 1=1 --", 2025).is_err());
        assert!(sql_for(p, "232100023", 2025).is_err());
    }
}
