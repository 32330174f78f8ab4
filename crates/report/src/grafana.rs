//! The Grafana dashboard, generated from [`crate::panels::PANELS`] so it runs
//! the report's own queries. `distans grafana` prints it; the file in
//! `deploy/grafana/dashboards/` is its output, and a test keeps them equal.
//! Data source: the ClickHouse plugin (`grafana-clickhouse-datasource`),
//! provisioned in `deploy/grafana/provisioning/` with the read-only `bi` user.

use serde_json::{json, Value};

use distans_store::panels::VARIABLE_QUERIES;

use distans_domain::text::Language;

use crate::labels;
use crate::panels::{Chart, PANELS};

/// The data source uid the provisioning file gives.
pub const DATASOURCE_UID: &str = "distans-clickhouse";

/// The dashboard as JSON, its texts in `language`: the variables (home
/// region, shown by name; visit year; provider and rule, empty for all,
/// which the findings panels filter by and alerts link with) and one
/// Grafana panel per report panel, running the same SQL, its columns
/// renamed to the report's headings.
pub fn dashboard(language: Language) -> Value {
    let datasource = json!({ "type": "grafana-clickhouse-datasource", "uid": DATASOURCE_UID });
    let mut y = 0;
    let panels: Vec<Value> = PANELS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (kind, height) = match p.chart {
                Chart::Columns => ("barchart", 9),
                Chart::StackedBars => ("barchart", 10),
                Chart::Table => ("table", 8),
            };
            let mut panel = json!({
                "id": i + 1,
                "type": kind,
                "title": p.title_in(language),
                "description": p.question_in(language),
                "datasource": datasource,
                "gridPos": { "x": 0, "y": y, "w": 24, "h": height },
                "targets": [{
                    "refId": "A",
                    "datasource": datasource,
                    "editorType": "sql",
                    "format": 1,
                    "queryType": "table",
                    "rawSql": p.query.sql,
                }],
            });
            // Every column under the report's heading for it.
            let renames: serde_json::Map<String, Value> = p.query.columns()
                .into_iter()
                .map(|name| {
                    let heading = labels::column(&name, language);
                    (name, Value::String(heading))
                })
                .collect();
            let organize = json!({ "id": "organize", "options": { "renameByName": renames } });
            panel["transformations"] = json!([organize]);
            if kind == "barchart" {
                panel["options"] = json!({
                    "orientation": if p.chart == Chart::Columns { "vertical" } else { "horizontal" },
                    "stacking": if p.chart == Chart::StackedBars { "normal" } else { "none" },
                    "xField": "",
                    "showValue": "auto",
                    "legend": { "showLegend": true, "displayMode": "list", "placement": "bottom" },
                });
                // Only the category and the series are drawn; the query's other
                // columns are for the report's tables.
                panel["transformations"] = json!([{
                    "id": "filterFieldsByName",
                    "options": { "include": { "names": std::iter::once(p.query.first_column()).chain(p.series.iter().map(|s| s.to_string())).collect::<Vec<_>>() } }
                }, organize]);
            }
            y += height;
            panel
        })
        .collect();
    json!({
        "uid": "distans-overview",
        "title": language.pick("distans: digital utomlänsvård", "distans: digital out-of-county care"),
        "description": language.pick(
            "Regionernas frågor om vad de betalar för digital utomlänsvård. Samma SQL som `distans report`.",
            "The regions' questions about what they pay for digital out-of-county care. Same SQL as `distans report`."
        ),
        "tags": ["distans"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": { "from": "now-2y", "to": "now" },
        "templating": { "list": [
            {
                "name": "buyer",
                "label": "Region",
                "description": language.pick("Hemregionen som fakturerats", "The home region invoiced"),
                "type": "query",
                "datasource": datasource,
                "query": variable_query("buyer"),
                "refresh": 1,
            },
            {
                "name": "year",
                "label": language.pick("Besöksår", "Visit year"),
                "type": "query",
                "datasource": datasource,
                "query": variable_query("year"),
                "refresh": 1,
            },
            {
                "name": "provider",
                "label": language.pick("Vårdgivare (organisationsnummer)", "Provider (organisation number)"),
                "description": language.pick("Tomt: alla. Gäller fynden.", "Empty: all. Filters the findings."),
                "type": "textbox",
                "query": "",
                "current": { "text": "", "value": "" },
            },
            {
                "name": "rule",
                "label": language.pick("Regel (id)", "Rule (id)"),
                "description": language.pick("Tomt: alla. Gäller fynden.", "Empty: all. Filters the findings."),
                "type": "textbox",
                "query": "",
                "current": { "text": "", "value": "" },
            },
        ]},
        "panels": panels,
    })
}

/// The query that lists a dashboard variable's values.
fn variable_query(name: &str) -> &'static str {
    VARIABLE_QUERIES.iter().find(|(n, _)| *n == name).map_or("", |(_, sql)| sql)
}

/// The dashboard as the committed file holds it (Swedish); `distans grafana
/// --language en` prints it in English.
pub fn dashboard_file(language: Language) -> String {
    let mut text = serde_json::to_string_pretty(&dashboard(language)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_dashboard_is_generated_from_the_panels() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/dashboards/distans.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == dashboard_file(Language::Swedish),
            "deploy/grafana/dashboards/distans.json is stale: run `distans grafana > deploy/grafana/dashboards/distans.json`"
        );
    }

    #[test]
    fn every_panel_runs_its_report_query() {
        let d = dashboard(Language::Swedish);
        let panels = d["panels"].as_array().expect("panels");
        assert_eq!(panels.len(), PANELS.len());
        for (g, p) in panels.iter().zip(PANELS.iter()) {
            assert_eq!(g["targets"][0]["rawSql"], p.query.sql);
        }
        assert_eq!(PANELS[0].query.first_column(), "month");
        assert_eq!(PANELS[4].query.first_column(), "health_centre");
        assert_eq!(panels[0]["title"], "Kostnad och kontakter per månad");
        assert_eq!(panels[0]["transformations"][1]["options"]["renameByName"]["net_sek"], "Nettokostnad, kr");
        let variables = d["templating"]["list"].as_array().expect("variables");
        let names: Vec<&str> = variables.iter().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(names, ["buyer", "year", "provider", "rule"]);
        assert!(variables[0]["query"].as_str().is_some_and(|q| q.contains("ref_regions_current")), "named regions");
    }
}
