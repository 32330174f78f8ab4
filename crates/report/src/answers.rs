//! The answers to the regions' questions: every panel of [`crate::panels`]
//! run against ClickHouse, as terminal tables or as one self-contained HTML
//! page with inline SVG charts (opens from a file, no server, no scripts
//! but a check that the charts laid out).

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use distans_store::Client;
use serde_json::Value;

use distans_domain::codes::org_number_shown;
use distans_domain::text::{self, Language};

use crate::labels;
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
    #[error("cannot list the regions and years in clickhouse")]
    Store(#[from] distans_store::Error),
    /// No aggregated lines at all, so no region to default to.
    #[error("no aggregated lines in ClickHouse yet")]
    NoData,
    /// Several home regions in the data and none chosen (their org numbers).
    #[error("several regions in the data ({0}); choose one with --buyer")]
    SeveralRegions(String),
    /// The chosen region has no aggregated lines (its org number, and the
    /// regions that have).
    #[error("no aggregated lines for {0} (regions in the data: {1})")]
    NoLinesFor(String, String),
    /// The chosen region has no aggregated lines in the chosen year (the
    /// region, the year, and the years it has).
    #[error("no aggregated lines for {0} in {1} (its years: {2})")]
    NoLinesIn(String, i32, String),
}

/// A panel's result: column names and rows of JSON values.
#[derive(Debug, Clone)]
pub struct Answer {
    pub panel: &'static Panel,
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
pub async fn answer(db: &Client, panel: &'static Panel, buyer: &str, year: i32) -> Result<Answer, Error> {
    let rows = distans_store::panels::run(db, panel.query, buyer, year).await?;
    Ok(Answer { panel, columns: rows.columns, rows: rows.rows })
}

/// Every panel of [`PANELS`], in order. Errors: [`Error::Panel`] naming
/// the first panel whose query failed.
pub async fn answer_all(db: &Client, buyer: &str, year: i32) -> Result<Vec<Answer>, Error> {
    let mut answers = Vec::with_capacity(PANELS.len());
    for panel in PANELS.iter() {
        let rows = distans_store::panels::run(db, panel.query, buyer, year)
            .await
            .map_err(|source| Error::Panel { panel: panel.id().to_string(), source })?;
        answers.push(Answer { panel, columns: rows.columns, rows: rows.rows });
    }
    Ok(answers)
}

/// The region and year to report, checked against the data; when not
/// given, the only region in the data and its latest visit year. Returns
/// (organisation number, year). Errors: [`Error::NoData`],
/// [`Error::SeveralRegions`] when no `buyer` is given,
/// [`Error::NoLinesFor`] when the region has no data (a mistyped number),
/// [`Error::NoLinesIn`] when it has none in `year`, or [`Error::Store`].
pub async fn default_scope(db: &Client, buyer: Option<&str>, year: Option<i32>) -> Result<(String, i32), Error> {
    choose_scope(&distans_store::panels::scopes(db).await?, buyer, year)
}

/// [`default_scope`] among `scopes`, the (region, visit year) pairs in the data.
fn choose_scope(scopes: &[(String, i32)], buyer: Option<&str>, year: Option<i32>) -> Result<(String, i32), Error> {
    let buyers: std::collections::BTreeSet<&str> = scopes.iter().map(|(b, _)| b.as_str()).collect();
    let shown = || joined(&buyers.iter().map(|b| org_number_shown(b)).collect());
    let buyer = match buyer {
        Some(b) => b.to_string(),
        None if buyers.len() == 1 => buyers.iter().next().map(|b| b.to_string()).unwrap_or_default(),
        None if buyers.is_empty() => return Err(Error::NoData),
        None => return Err(Error::SeveralRegions(shown())),
    };
    let years: std::collections::BTreeSet<i32> = scopes.iter().filter(|(b, _)| *b == buyer).map(|(_, y)| *y).collect();
    let Some(&latest) = years.last() else {
        return Err(Error::NoLinesFor(org_number_shown(&buyer), shown()));
    };
    match year {
        None => Ok((buyer, latest)),
        Some(year) if years.contains(&year) => Ok((buyer, year)),
        Some(year) => Err(Error::NoLinesIn(org_number_shown(&buyer), year, joined(&years))),
    }
}

fn joined<T: std::fmt::Display>(items: &std::collections::BTreeSet<T>) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

fn is_numeric(answer: &Answer, column: usize) -> bool {
    answer.rows.iter().any(|r| matches!(r.get(column), Some(Value::Number(_))))
        || answer.rows.iter().all(|r| match r.get(column) {
            Some(Value::String(s)) => s.parse::<f64>().is_ok(),
            Some(Value::Null) => true,
            _ => false,
        }) && !answer.rows.is_empty()
}

/// Which report: the home region (organisation number, and its name where
/// `ref_regions` has one), the visit year and the language.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub buyer: &'a str,
    pub region: Option<&'a str>,
    pub year: i32,
    pub language: Language,
}

impl Scope<'_> {
    /// "Region Jämtland Härjedalen (232100-0230)", or the number alone.
    fn region_shown(&self) -> String {
        match self.region {
            Some(name) => format!("{} ({})", text::printable(name, text::SHOWN_CHARS), org_number_shown(self.buyer)),
            None => org_number_shown(self.buyer),
        }
    }
}

/// A cell as shown: a name for a code, a number as readers write it, free
/// text as one safe line (`text::printable`).
fn shown_cell(a: &Answer, row: usize, column: usize, language: Language) -> String {
    let name = a.columns.get(column).map_or("", String::as_str);
    let raw = a.text(row, column);
    let named = labels::cell(name, &raw, language);
    labels::number(&text::printable(&named, text::SHOWN_CHARS), language)
}

/// The explanations of the rules an answer shows.
fn rules_of(a: &Answer, language: Language) -> Vec<(&'static str, &'static str)> {
    let rule_column = a.column("rule");
    let cells = (0..a.rows.len()).filter_map(move |r| rule_column.map(|c| a.text(r, c)));
    labels::rules_shown(a.panel.rules(), cells, language)
}

/// The answers as terminal tables, in `scope.language`. Every cell from
/// the data goes through `text::printable`: no escape sequence, control or
/// bidi character from an invoice reaches the terminal.
pub fn render_terminal(answers: &[Answer], scope: &Scope) -> String {
    let lang = scope.language;
    let mut out = match lang {
        Language::Swedish => {
            format!("distans rapport: {}, besöksår {}\n", scope.region_shown(), scope.year)
        }
        Language::English => format!("distans report: {}, visit year {}\n", scope.region_shown(), scope.year),
    };
    for a in answers {
        let _ = write!(out, "\n{}\n{}\n", a.panel.title_in(lang), a.panel.question_in(lang));
        if a.rows.is_empty() {
            let _ = writeln!(out, "  ({})", lang.pick("inga uppgifter", "no data"));
            continue;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(a.columns.iter().map(|c| labels::column(c, lang)).collect::<Vec<_>>());
        for row in 0..a.rows.len() {
            table.add_row((0..a.columns.len()).map(|c| shown_cell(a, row, c, lang)).collect::<Vec<_>>());
        }
        for c in 0..a.columns.len() {
            if is_numeric(a, c) {
                if let Some(column) = table.column_mut(c) {
                    column.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        let _ = writeln!(out, "{table}");
        for (name, meaning) in rules_of(a, lang) {
            let _ = writeln!(out, "  {name}: {meaning}");
        }
    }
    out
}

const COLOURS: [&str; 4] = ["#1f6fb2", "#e07b24", "#4c9a2a", "#8a5cb8"];

fn escape(s: &str) -> String {
    text::html(s)
}

/// The answers as one HTML page (`lang` set, headings in words, each rule
/// explained beside its findings) with an SVG chart for every charted panel.
pub fn render_html(answers: &[Answer], scope: &Scope, generated_at: &str) -> String {
    let lang = scope.language;
    let region = escape(&scope.region_shown());
    let year = scope.year;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{tag}\"><head><meta charset=\"utf-8\">\
         <title>distans: {region} {year}</title><style>{CSS}</style></head><body>\
         <h1>{heading}: {region}, {year}</h1><p class=\"meta\">{meta}</p>",
        tag = lang.tag(),
        heading = lang.pick("Digital utomlänsvård", "Digital out-of-county care"),
        meta = match lang {
            Language::Swedish => format!(
                "Besöksår {year}. Belopp i kronor, netto efter patientavgift, kreditnotor avdragna. \
                 Skapad {generated_at} ur ClickHouse med <code>distans report --html</code>."
            ),
            Language::English => format!(
                "Visit year {year}. Amounts in SEK, net of patient fees, credit notes deducted. \
                 Generated {generated_at} from ClickHouse by <code>distans report --html</code>."
            ),
        }
    );
    for a in answers {
        let _ = write!(
            html,
            "<section id=\"{id}\"><h2>{title}</h2><p class=\"question\">{question}</p>",
            id = a.panel.id(),
            title = escape(a.panel.title_in(lang)),
            question = escape(a.panel.question_in(lang))
        );
        if a.rows.is_empty() {
            let _ = write!(html, "<p class=\"empty\">{}</p></section>", lang.pick("Inga uppgifter.", "No data."));
            continue;
        }
        if a.panel.chart != Chart::Table {
            html.push_str(&chart_svg(a, lang));
        }
        html.push_str("<table><thead><tr>");
        for c in &a.columns {
            let _ = write!(html, "<th>{}</th>", escape(&labels::column(c, lang)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in 0..a.rows.len() {
            html.push_str("<tr>");
            for c in 0..a.columns.len() {
                let class = if is_numeric(a, c) { " class=\"n\"" } else { "" };
                let _ = write!(html, "<td{class}>{}</td>", escape(&shown_cell(a, row, c, lang)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
        let rules = rules_of(a, lang);
        if !rules.is_empty() {
            let _ = write!(html, "<dl class=\"rules\"><p>{}</p>", lang.pick("Reglerna:", "The rules:"));
            for (name, meaning) in rules {
                let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(meaning));
            }
            html.push_str("</dl>");
        }
        html.push_str("</section>");
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
svg.chart{display:block;margin:.5em 0}svg text{font-size:11px;fill:#333}\
dl.rules{font-size:.85em;color:#333;background:#f7f7f2;padding:.5em 1em}dl.rules dt{font-weight:bold}\
dl.rules dd{margin:0 0 .4em 1em}";

fn series_values(a: &Answer, lang: Language) -> Vec<(String, Vec<f64>)> {
    (0..a.rows.len())
        .map(|r| {
            (shown_cell(a, r, 0, lang), a.panel.series.iter().map(|s| a.number(r, s).unwrap_or(0.0).max(0.0)).collect())
        })
        .collect()
}

fn legend(a: &Answer, x: f64, y: f64, lang: Language) -> String {
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
            escape(&labels::column(s, lang))
        );
    }
    svg
}

fn chart_svg(a: &Answer, lang: Language) -> String {
    let data = series_values(a, lang);
    match a.panel.chart {
        Chart::Columns => columns_svg(a, &data, lang),
        _ => stacked_bars_svg(a, &data, lang),
    }
}

/// Vertical bars per category, series side by side.
fn columns_svg(a: &Answer, data: &[(String, Vec<f64>)], lang: Language) -> String {
    let (width, height, left, bottom, top) = (1000.0, 300.0, 70.0, 40.0, 30.0);
    let max = data.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0_f64, f64::max).max(1.0);
    let plot_h = height - bottom - top;
    let slot = (width - left) / data.len().max(1) as f64;
    let bar = (slot * 0.8) / a.panel.series.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" data-panel=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        a.panel.id()
    );
    svg.push_str(&legend(a, left, 4.0, lang));
    for tick in 0..=4 {
        let v = max * f64::from(tick) / 4.0;
        let y = top + plot_h - plot_h * f64::from(tick) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{width}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            labels::number(&format!("{v:.0}"), lang)
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
                labels::number(&format!("{v:.0}"), lang)
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
fn stacked_bars_svg(a: &Answer, data: &[(String, Vec<f64>)], lang: Language) -> String {
    let (width, left, row_h, top) = (1000.0, 260.0, 22.0, 26.0);
    let height = top + row_h * data.len() as f64 + 10.0;
    let max = data.iter().map(|(_, v)| v.iter().sum::<f64>()).fold(0.0_f64, f64::max).max(1.0);
    let plot_w = width - left - 90.0;
    let mut svg = format!(
        "<svg class=\"chart\" data-panel=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        a.panel.id()
    );
    svg.push_str(&legend(a, left, 4.0, lang));
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
                escape(&labels::column(&a.panel.series[s], lang)),
                labels::number(&format!("{v:.0}"), lang)
            );
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 6.0,
            y + row_h * 0.65,
            labels::number(&format!("{:.0}", values.iter().sum::<f64>()), lang)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_checked_against_the_data() {
        let scopes =
            [("2321000230".to_string(), 2024), ("2321000230".to_string(), 2025), ("1921000120".to_string(), 2025)];
        let chosen = |buyer, year| choose_scope(&scopes, buyer, year).map_err(|e| e.to_string());
        assert_eq!(chosen(Some("2321000230"), None), Ok(("2321000230".to_string(), 2025)));
        assert_eq!(chosen(Some("2321000230"), Some(2024)), Ok(("2321000230".to_string(), 2024)));
        assert_eq!(
            chosen(Some("2321000231"), Some(2025)),
            Err("no aggregated lines for 232100-0231 (regions in the data: 192100-0120, 232100-0230)".to_string())
        );
        assert_eq!(
            chosen(Some("2321000230"), Some(2023)),
            Err("no aggregated lines for 232100-0230 in 2023 (its years: 2024, 2025)".to_string())
        );
        assert_eq!(
            chosen(None, None),
            Err("several regions in the data (192100-0120, 232100-0230); choose one with --buyer".to_string())
        );
        assert_eq!(
            choose_scope(&[], None, None).map_err(|e| e.to_string()),
            Err("no aggregated lines in ClickHouse yet".to_string())
        );
        let one = [("2321000230".to_string(), 2025)];
        assert_eq!(choose_scope(&one, None, None).map_err(|e| e.to_string()), Ok(("2321000230".to_string(), 2025)));
    }
    use serde_json::json;

    fn answer(panel: usize, columns: &[&str], rows: Vec<Vec<Value>>) -> Answer {
        Answer { panel: &PANELS[panel], columns: columns.iter().map(|c| c.to_string()).collect(), rows }
    }

    const SV: Scope<'static> = Scope {
        buyer: "2321000230",
        region: Some("Region Jämtland Härjedalen"),
        year: 2025,
        language: Language::Swedish,
    };

    #[test]
    fn html_has_a_chart_per_charted_panel_with_bars_to_scale() {
        let months = answer(
            0,
            &["month", "contacts", "patients", "net_sek", "net_last_year_sek", "growth_percent"],
            vec![
                vec![json!("2025-01-01"), json!("10"), json!(8), json!("5000"), json!("2500"), json!(100.5)],
                vec![json!("2025-02-01"), json!("5"), json!(5), json!("2500"), json!("0"), Value::Null],
            ],
        );
        let html = render_html(&[months], &SV, "now");
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 4);
        // 5000 is the largest value: the full plot height (230 px); 2500 half of it.
        assert!(html.contains("height=\"230.0\""), "{html}");
        assert!(html.contains("height=\"115.0\""));
        assert!(html.contains("<td class=\"n\">5 000</td>"), "grouped as every figure is");
        assert!(html.contains("<td class=\"n\">100,5</td>"), "a decimal comma");
        assert!(html.contains("<td class=\"n\">–</td>"), "a NULL growth shows as a dash");
    }

    #[test]
    fn the_page_is_swedish_with_headings_in_words() {
        let months = answer(0, &["month", "net_sek"], vec![vec![json!("2025-01"), json!("5000")]]);
        let html = render_html(&[months], &SV, "now");
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"sv\">"), "{html}");
        assert!(html.contains("<h1>Digital utomlänsvård: Region Jämtland Härjedalen (232100-0230), 2025</h1>"));
        assert!(html.contains("<th>Nettokostnad, kr</th>") && !html.contains(">net_sek<"), "{html}");
        assert!(html.contains("<h2>Kostnad och kontakter per månad</h2>"));
        let en = Scope { language: Language::English, region: None, ..SV };
        let html = render_html(&[answer(0, &["month"], vec![])], &en, "now");
        assert!(html.contains("<html lang=\"en\">") && !html.contains("home region"));
        assert!(html.contains("<h1>Digital out-of-county care: 232100-0230, 2025</h1>"), "{html}");
    }

    #[test]
    fn findings_name_and_explain_their_rules() {
        let findings = answer(
            13,
            &["provider", "provider_org_number", "rule", "findings", "amount_at_stake_sek"],
            vec![vec![json!("Vård AB"), json!("5591000010"), json!("wrong_price"), json!("2"), json!("1300")]],
        );
        let html = render_html(std::slice::from_ref(&findings), &SV, "now");
        assert!(html.contains("<td>Fel pris</td>"), "{html}");
        assert!(html.contains(&format!("<dt>Fel pris</dt><dd>{}</dd>", distans_domain::rules::WRONG_PRICE.meaning.sv)));
        let text = render_terminal(&[findings], &SV);
        assert!(text.contains(&format!("Fel pris: {}", distans_domain::rules::WRONG_PRICE.meaning.sv)), "{text}");
        assert!(text.contains("Belopp i fråga, kr"), "{text}");
    }

    #[test]
    fn text_is_escaped_and_tables_are_aligned() {
        let a = answer(
            2,
            &["provider", "referred", "own_initiative", "other", "referred_percent"],
            vec![vec![json!("A & <B>"), json!("1"), json!("2"), json!("0"), json!(33.3)]],
        );
        let html = render_html(std::slice::from_ref(&a), &SV, "now");
        assert!(html.contains("A &amp; &lt;B&gt;") && !html.contains("<B>"));
        let text = render_terminal(&[a], &SV);
        assert!(text.contains("Remiss eller egen vårdbegäran, per vårdgivare"));
        assert!(text.contains("A & <B>"));
        assert!(text.contains("33,3"));
    }

    /// Provider names a hostile seller could send reach neither the
    /// terminal nor the page as they are.
    #[test]
    fn hostile_names_are_made_harmless_in_the_terminal_and_the_page() {
        let long = "x".repeat(900_000);
        let rows: Vec<Vec<Value>> = distans_domain::testing::HOSTILE_NAMES
            .into_iter()
            .chain([long.as_str()])
            .map(|name| vec![json!(name), json!("1"), json!("1"), json!("0"), json!(50.0)])
            .collect();
        let a = answer(2, &["provider", "referred", "own_initiative", "other", "referred_percent"], rows);
        let text = render_terminal(std::slice::from_ref(&a), &SV);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\0') && !text.contains('\u{202E}') && !text.contains('\u{7}')
        );
        assert!(text.len() < 100_000, "a 900 KB name is cut: {} bytes", text.len());
        let html = render_html(&[a], &SV, "now");
        assert!(!html.contains('\u{1b}') && !html.contains('\0') && !html.contains('\u{202E}'));
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.len() < 100_000, "{} bytes", html.len());
    }
}
