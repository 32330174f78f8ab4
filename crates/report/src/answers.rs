//! The answers to the regions' questions: every panel of [`crate::panels`]
//! run against ClickHouse, as terminal tables or as one self-contained HTML
//! page with inline SVG charts (opens from a file, no server, no scripts
//! but a check that the charts laid out).

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_store::Client;
use serde_json::Value;

use crate::panels::{Chart, Panel, PANELS};

/// Why the regions' questions could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ClickHouse refused or failed a panel's query.
    #[error("panel {panel}")]
    Panel {
        panel: String,
        #[source]
        source: distans_store::Error,
    },
    /// ClickHouse could not list the regions and years in the data.
    #[error(transparent)]
    Store(#[from] distans_store::Error),
    /// No aggregated lines at all, so no region to default to.
    #[error("no aggregated lines in ClickHouse yet")]
    NoData,
    /// Several home regions in the data and none chosen (their org numbers).
    #[error("several regions in the data ({0}); choose one with --buyer")]
    SeveralRegions(String),
    /// The chosen region has no aggregated lines (its org number).
    #[error("no aggregated lines for {0}")]
    NoLinesFor(String),
}

/// A panel's result: column names and rows of JSON values.
#[derive(Debug, Clone)]
pub struct Answer {
    pub panel: Panel,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Answer {
    /// The column's index by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// A cell as a number (ClickHouse quotes 64-bit integers in JSON).
    pub fn number(&self, row: usize, column: &str) -> Option<f64> {
        let value = self.rows.get(row)?.get(self.column(column)?)?;
        match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A cell as text: strings as they are, NULL or missing as "–".
    pub fn text(&self, row: usize, column: usize) -> String {
        match self.rows.get(row).and_then(|r| r.get(column)) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "–".to_string(),
            Some(v) => v.to_string(),
        }
    }
}

/// Runs one panel for a region (`buyer`: the home region's 10-digit
/// organisation number) and visit year. Errors: [`Error::Store`] when
/// ClickHouse fails the query.
pub async fn answer(db: &Client, panel: &Panel, buyer: &str, year: i32) -> Result<Answer, Error> {
    let rows = distans_store::panels::run(db, panel.query, buyer, year).await?;
    Ok(Answer { panel: *panel, columns: rows.columns, rows: rows.rows })
}

/// Every panel of [`PANELS`], in order. Errors: [`Error::Panel`] naming
/// the first panel whose query failed.
pub async fn answer_all(db: &Client, buyer: &str, year: i32) -> Result<Vec<Answer>, Error> {
    let mut answers = Vec::with_capacity(PANELS.len());
    for panel in &PANELS {
        let rows = distans_store::panels::run(db, panel.query, buyer, year)
            .await
            .map_err(|source| Error::Panel { panel: panel.id().to_string(), source })?;
        answers.push(Answer { panel: *panel, columns: rows.columns, rows: rows.rows });
    }
    Ok(answers)
}

/// The region and year to report when not given: the only region in the
/// data, and its latest visit year. Returns (organisation number, year).
/// Errors: [`Error::NoData`], [`Error::SeveralRegions`] when no `buyer` is
/// given, [`Error::NoLinesFor`] when the region has no data, or
/// [`Error::Store`].
pub async fn default_scope(db: &Client, buyer: Option<&str>, year: Option<i32>) -> Result<(String, i32), Error> {
    let scopes = distans_store::panels::scopes(db).await?;
    let buyers: std::collections::BTreeSet<&str> = scopes.iter().map(|(b, _)| b.as_str()).collect();
    let buyer = match buyer {
        Some(b) => b.to_string(),
        None if buyers.len() == 1 => buyers.iter().next().map(|b| b.to_string()).unwrap_or_default(),
        None if buyers.is_empty() => return Err(Error::NoData),
        None => return Err(Error::SeveralRegions(itertools_join(&buyers))),
    };
    let year = match year {
        Some(y) => y,
        None => scopes
            .iter()
            .filter(|(b, _)| *b == buyer)
            .map(|(_, y)| *y)
            .max()
            .ok_or_else(|| Error::NoLinesFor(buyer.clone()))?,
    };
    Ok((buyer, year))
}

fn itertools_join(items: &std::collections::BTreeSet<&str>) -> String {
    items.iter().copied().collect::<Vec<_>>().join(", ")
}

fn is_numeric(answer: &Answer, column: usize) -> bool {
    answer.rows.iter().any(|r| matches!(r.get(column), Some(Value::Number(_))))
        || answer.rows.iter().all(|r| match r.get(column) {
            Some(Value::String(s)) => s.parse::<f64>().is_ok(),
            Some(Value::Null) => true,
            _ => false,
        }) && !answer.rows.is_empty()
}

/// Numbers with a space every three digits, as Swedish reports write them.
fn grouped(text: &str) -> String {
    let (sign, rest) = text.strip_prefix('-').map_or(("", text), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.len() <= 4 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return text.to_string();
    }
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// The answers as terminal tables.
pub fn render_terminal(answers: &[Answer], buyer: &str, year: i32) -> String {
    let mut out = format!("distans report for home region {buyer}, visit year {year}\n");
    for a in answers {
        let _ = write!(out, "\n{}\n{}\n", a.panel.title, a.panel.question);
        if a.rows.is_empty() {
            out.push_str("  (no data)\n");
            continue;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(a.columns.clone());
        for row in 0..a.rows.len() {
            table.add_row((0..a.columns.len()).map(|c| grouped(&a.text(row, c))).collect::<Vec<_>>());
        }
        for c in 0..a.columns.len() {
            if is_numeric(a, c) {
                if let Some(column) = table.column_mut(c) {
                    column.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        let _ = writeln!(out, "{table}");
    }
    out
}

const COLOURS: [&str; 4] = ["#1f6fb2", "#e07b24", "#4c9a2a", "#8a5cb8"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The answers as one HTML page with an SVG chart for every charted panel.
pub fn render_html(answers: &[Answer], buyer: &str, year: i32, generated_at: &str) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>distans report {buyer} {year}</title><style>{CSS}</style></head><body>\
         <h1>Digital out-of-county care: home region {buyer}, {year}</h1>\
         <p class=\"meta\">Visit year {year}. Amounts in SEK, net of patient fees, credit notes deducted. \
         Generated {generated_at} from ClickHouse by <code>distans report --html</code>.</p>",
        buyer = escape(buyer)
    );
    for a in answers {
        let _ = write!(
            html,
            "<section id=\"{id}\"><h2>{title}</h2><p class=\"question\">{question}</p>",
            id = a.panel.id(),
            title = escape(a.panel.title),
            question = escape(a.panel.question)
        );
        if a.rows.is_empty() {
            html.push_str("<p class=\"empty\">No data.</p></section>");
            continue;
        }
        if a.panel.chart != Chart::Table {
            html.push_str(&chart_svg(a));
        }
        html.push_str("<table><thead><tr>");
        for c in &a.columns {
            let _ = write!(html, "<th>{}</th>", escape(c));
        }
        html.push_str("</tr></thead><tbody>");
        for row in 0..a.rows.len() {
            html.push_str("<tr>");
            for c in 0..a.columns.len() {
                let class = if is_numeric(a, c) { " class=\"n\"" } else { "" };
                let _ = write!(html, "<td{class}>{}</td>", escape(&grouped(&a.text(row, c))));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></section>");
    }
    // Marks every chart with how many bars laid out with a non-zero size, so
    // a headless browser can tell that the charts drew.
    html.push_str(
        "<script>for (const svg of document.querySelectorAll('svg.chart')) {\
         const drawn = [...svg.querySelectorAll('rect.bar')].filter(r => r.getBBox().width > 0 && r.getBBox().height > 0).length;\
         svg.setAttribute('data-drawn-bars', drawn); }</script></body></html>\n",
    );
    html
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}\
.question,.meta{color:#555;font-style:italic}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}\
th,td{border:1px solid #ddd;padding:.2em .6em}th{background:#f3f3f3}td.n{text-align:right}\
svg.chart{display:block;margin:.5em 0}svg text{font-size:11px;fill:#333}";

fn series_values(a: &Answer) -> Vec<(String, Vec<f64>)> {
    (0..a.rows.len())
        .map(|r| (a.text(r, 0), a.panel.series.iter().map(|s| a.number(r, s).unwrap_or(0.0).max(0.0)).collect()))
        .collect()
}

fn legend(a: &Answer, x: f64, y: f64) -> String {
    let mut svg = String::new();
    for (i, s) in a.panel.series.iter().enumerate() {
        let lx = x + i as f64 * 170.0;
        let _ = write!(
            svg,
            "<rect x=\"{lx}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            COLOURS[i % COLOURS.len()],
            lx + 16.0,
            y + 10.0,
            escape(s)
        );
    }
    svg
}

fn chart_svg(a: &Answer) -> String {
    let data = series_values(a);
    match a.panel.chart {
        Chart::Columns => columns_svg(a, &data),
        _ => stacked_bars_svg(a, &data),
    }
}

/// Vertical bars per category, series side by side.
fn columns_svg(a: &Answer, data: &[(String, Vec<f64>)]) -> String {
    let (width, height, left, bottom, top) = (1000.0, 300.0, 70.0, 40.0, 30.0);
    let max = data.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0_f64, f64::max).max(1.0);
    let plot_h = height - bottom - top;
    let slot = (width - left) / data.len().max(1) as f64;
    let bar = (slot * 0.8) / a.panel.series.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" data-panel=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        a.panel.id()
    );
    svg.push_str(&legend(a, left, 4.0));
    for tick in 0..=4 {
        let v = max * f64::from(tick) / 4.0;
        let y = top + plot_h - plot_h * f64::from(tick) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{width}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            grouped(&format!("{v:.0}"))
        );
    }
    for (i, (label, values)) in data.iter().enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.1;
        for (s, v) in values.iter().enumerate() {
            let h = plot_h * v / max;
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                x0 + bar * s as f64,
                top + plot_h - h,
                bar,
                COLOURS[s % COLOURS.len()],
                escape(label),
                grouped(&format!("{v:.0}"))
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x0 + slot * 0.4,
            height - bottom + 16.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars per category, series stacked.
fn stacked_bars_svg(a: &Answer, data: &[(String, Vec<f64>)]) -> String {
    let (width, left, row_h, top) = (1000.0, 260.0, 22.0, 26.0);
    let height = top + row_h * data.len() as f64 + 10.0;
    let max = data.iter().map(|(_, v)| v.iter().sum::<f64>()).fold(0.0_f64, f64::max).max(1.0);
    let plot_w = width - left - 90.0;
    let mut svg = format!(
        "<svg class=\"chart\" data-panel=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        a.panel.id()
    );
    svg.push_str(&legend(a, left, 4.0));
    for (i, (label, values)) in data.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + row_h * 0.65,
            escape(label)
        );
        let mut x = left;
        for (s, v) in values.iter().enumerate() {
            let w = plot_w * v / max;
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                y + 3.0,
                row_h - 6.0,
                COLOURS[s % COLOURS.len()],
                escape(a.panel.series[s]),
                grouped(&format!("{v:.0}"))
            );
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 6.0,
            y + row_h * 0.65,
            grouped(&format!("{:.0}", values.iter().sum::<f64>()))
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(panel: usize, columns: &[&str], rows: Vec<Vec<Value>>) -> Answer {
        Answer { panel: PANELS[panel], columns: columns.iter().map(|c| c.to_string()).collect(), rows }
    }

    #[test]
    fn numbers_group_by_thousands() {
        assert_eq!(grouped("9336450"), "9 336 450");
        assert_eq!(grouped("-1234567.5"), "-1 234 567.5");
        assert_eq!(grouped("2025"), "2025");
        assert_eq!(grouped("2025-01-01"), "2025-01-01");
    }

    #[test]
    fn html_has_a_chart_per_charted_panel_with_bars_to_scale() {
        let months = answer(
            0,
            &["month", "contacts", "patients", "net_sek", "net_last_year_sek", "growth_percent"],
            vec![
                vec![json!("2025-01-01"), json!("10"), json!(8), json!("5000"), json!("2500"), json!(100.0)],
                vec![json!("2025-02-01"), json!("5"), json!(5), json!("2500"), json!("0"), Value::Null],
            ],
        );
        let html = render_html(&[months], "2321000230", 2025, "now");
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 4);
        // 5000 is the largest value: the full plot height (230 px); 2500 half of it.
        assert!(html.contains("height=\"230.0\""), "{html}");
        assert!(html.contains("height=\"115.0\""));
        assert!(html.contains("<td class=\"n\">5000</td>"));
        assert!(html.contains("<td class=\"n\">–</td>"), "a NULL growth shows as a dash");
    }

    #[test]
    fn text_is_escaped_and_tables_are_aligned() {
        let a = answer(
            2,
            &["provider", "referred", "own_initiative", "other", "referred_percent"],
            vec![vec![json!("A & <B>"), json!("1"), json!("2"), json!("0"), json!(33.3)]],
        );
        let html = render_html(std::slice::from_ref(&a), "2321000230", 2025, "now");
        assert!(html.contains("A &amp; &lt;B&gt;") && !html.contains("<B>"));
        let text = render_terminal(&[a], "2321000230", 2025);
        assert!(text.contains("Referred or own initiative, per provider"));
        assert!(text.contains("A & <B>"));
    }
}
