//! Invoice files: JSON lines (one invoice line per line) or CSV with a
//! header row naming the fields (`diagnosis_codes` and `procedure_codes`
//! separated by `|`, empty cells for absent optional fields).

use std::io::Write;
use std::path::Path;

use distans_domain::InvoiceLine;
use serde_json::{Map, Value};

use crate::errors::{ReadError, RowError};

/// What an invoice file holds, by its name: `.csv` (any case) is CSV,
/// anything else JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            Format::Csv
        } else {
            Format::JsonLines
        }
    }
}

/// Reads every line of the file; if any row is bad, reports all of them (up
/// to twenty) and returns none, so a file is sent whole or not at all.
/// Errors: [`ReadError::Io`], [`ReadError::Rows`], and
/// [`ReadError::Empty`] for a file without a line.
pub fn read_lines(path: &Path) -> Result<Vec<InvoiceLine>, ReadError> {
    Ok(read_rows(path)?.into_iter().map(|(_, line)| line).collect())
}

/// As [`read_lines`], each line with its row: its 1-based line number in
/// the file (a CSV's header is line 1), as errors and editors number them.
pub fn read_rows(path: &Path) -> Result<Vec<(usize, InvoiceLine)>, ReadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ReadError::Io { path: shown.clone(), error })?;
    match parse_rows(&bytes, Format::of(path)) {
        Ok(lines) if lines.is_empty() => Err(ReadError::Empty { path: shown, what: "invoice lines" }),
        Ok(lines) => Ok(lines),
        Err(errors) => Err(ReadError::rows(shown, errors)),
    }
}

/// The invoice lines of a whole file's bytes, or every bad row (1-based
/// line numbers, in file order; a row that is not UTF-8 is a bad row).
/// Never panics, whatever the bytes (`fuzz/` checks it).
pub fn parse_lines(bytes: &[u8], format: Format) -> Result<Vec<InvoiceLine>, Vec<RowError>> {
    Ok(parse_rows(bytes, format)?.into_iter().map(|(_, line)| line).collect())
}

/// [`parse_lines`], each line with its 1-based line number in the file.
fn parse_rows(bytes: &[u8], format: Format) -> Result<Vec<(usize, InvoiceLine)>, Vec<RowError>> {
    if let Some(error) = other_format(bytes, format) {
        return Err(vec![error]);
    }
    let (lines, errors) = match format {
        Format::JsonLines => parse_json_lines(bytes),
        Format::Csv => parse_csv(bytes),
    };
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// A file whose first row is plainly of the other format than its name
/// says (a JSON object in a `.csv`, a row of comma-separated names in a
/// JSON lines file), said once instead of as every row's error.
fn other_format(bytes: &[u8], format: Format) -> Option<RowError> {
    let text = String::from_utf8_lossy(bytes.get(..4096).unwrap_or(bytes));
    let (index, first) = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty())?;
    let first = first.trim_start_matches('\u{feff}').trim();
    let message = match format {
        Format::Csv if first.starts_with('{') => {
            "a JSON object, not a CSV header: a JSON lines file's name must not end .csv"
        }
        Format::JsonLines if !first.starts_with('{') && first.contains(',') && first.contains("invoice_id") => {
            "a CSV header, not a JSON object: a CSV file's name must end .csv"
        }
        _ => return None,
    };
    Some(RowError { line: index + 1, message: message.to_string() })
}

fn parse_json_lines(bytes: &[u8]) -> (Vec<(usize, InvoiceLine)>, Vec<RowError>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    // As `BufRead::lines`: `\n` ends a line, a `\r` before it is dropped.
    let rows = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (index, row) in rows.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let row = row.strip_suffix(b"\r").unwrap_or(row);
        let text = match std::str::from_utf8(row) {
            Ok(text) => text,
            Err(e) => {
                errors.push(RowError { line, message: format!("not UTF-8: {e}") });
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match invoice_line(&mut serde_json::Deserializer::from_str(text)) {
            Ok(l) => lines.push((line, l)),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    (lines, errors)
}

/// The invoice line `deserializer` holds, or why not, naming the field:
/// "field invoice_id: invalid type: integer `5`, expected a string".
fn invoice_line<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<InvoiceLine, String> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        if field == "." {
            error.into_inner().to_string()
        } else {
            format!("field {field}: {}", error.into_inner())
        }
    })
}

const NUMBER_FIELDS: [&str; 8] = [
    "line_number",
    "payable_amount_ore",
    "patient_sex",
    "quantity",
    "unit_price_ore",
    "patient_fee_ore",
    "gross_amount_ore",
    "net_amount_ore",
];
const LIST_FIELDS: [&str; 2] = ["diagnosis_codes", "procedure_codes"];

fn parse_csv(bytes: &[u8]) -> (Vec<(usize, InvoiceLine)>, Vec<RowError>) {
    let (mut csv, headers) = match crate::csv_with_header(bytes) {
        Ok(read) => read,
        Err(error) => return (vec![], vec![error]),
    };
    if let Err(error) = check_header(&headers) {
        return (vec![], vec![error]);
    }
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (index, record) in csv.records().enumerate() {
        let line = index + 2; // 1-based, after the header
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(crate::csv_row_error(line, &e));
                continue;
            }
        };
        let parsed = csv_row_to_json(&headers, &record).and_then(invoice_line);
        match parsed {
            Ok(l) => lines.push((line, l)),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    (lines, errors)
}

/// The header's problems, all at once, as line 1: a field without a
/// column, a column that is not a field of an invoice line (a misspelling;
/// [`InvoiceLine`]'s fields, by serde), or a column named twice. In CSV
/// every field has its column, an optional one with empty cells: a column
/// left out would make every line lack the value (a referral number, a
/// needs assessment), and the rules would judge them so.
fn check_header(headers: &csv::StringRecord) -> Result<(), RowError> {
    let fields = serde_aux::serde_introspection::serde_introspect::<InvoiceLine>();
    let mut problems = Vec::new();
    let missing: Vec<&str> = fields.iter().copied().filter(|f| !headers.iter().any(|h| h == *f)).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "no column {} (every field has its column; leave the cells of an absent value empty)",
            missing.join(", ")
        ));
    }
    let unknown: Vec<&str> = headers.iter().filter(|h| !fields.contains(h)).collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "unknown column(s) {} (the columns are the fields of an invoice line: {})",
            unknown.join(", "),
            fields.join(", ")
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let twice: std::collections::BTreeSet<&str> = headers.iter().filter(|h| !seen.insert(*h)).collect();
    if !twice.is_empty() {
        problems.push(format!("column(s) named twice: {}", twice.into_iter().collect::<Vec<_>>().join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RowError { line: 1, message: problems.join("; ") })
    }
}

fn csv_row_to_json(headers: &csv::StringRecord, record: &csv::StringRecord) -> Result<Value, String> {
    let mut map = Map::new();
    for (name, cell) in headers.iter().zip(record.iter()) {
        let cell = cell.trim();
        let value = if LIST_FIELDS.contains(&name) {
            Value::Array(cell.split('|').filter(|s| !s.is_empty()).map(|s| Value::String(s.to_string())).collect())
        } else if cell.is_empty() {
            Value::Null
        } else if NUMBER_FIELDS.contains(&name) {
            let n: i64 = cell.parse().map_err(|_| format!("{name} must be a whole number, got {cell:?}"))?;
            Value::from(n)
        } else if name == "needs_assessment" {
            let b: bool = cell.parse().map_err(|_| format!("{name} must be true or false, got {cell:?}"))?;
            Value::Bool(b)
        } else {
            Value::String(cell.to_string())
        };
        map.insert(name.to_string(), value);
    }
    Ok(Value::Object(map))
}

/// Writes lines as JSON lines.
pub fn write_json_lines(lines: &[InvoiceLine], out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for line in lines {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes lines in `format`: JSON lines, or CSV as [`read_lines`] reads it
/// (a header of every field, code lists joined by `|`, an absent value an
/// empty cell).
pub fn write_lines(lines: &[InvoiceLine], format: Format, out: impl Write) -> std::io::Result<()> {
    match format {
        Format::JsonLines => write_json_lines(lines, out),
        Format::Csv => write_csv(lines, out),
    }
}

fn write_csv(lines: &[InvoiceLine], out: impl Write) -> std::io::Result<()> {
    let fields = serde_aux::serde_introspection::serde_introspect::<InvoiceLine>();
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(fields)?;
    for line in lines {
        let Value::Object(map) = serde_json::to_value(line).map_err(std::io::Error::other)? else {
            unreachable!("an invoice line serialises as an object");
        };
        csv.write_record(fields.iter().map(|field| match map.get(*field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
            Some(other) => other.to_string(),
        }))?;
    }
    csv.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"invoice_id":"ZVF23210001152503000042","invoice_type":"380","line_number":1,"seller_org_number":"2321000115","buyer_org_number":"2321000198","invoice_date":"2025-03-31","payable_amount_ore":50000,"patient_id":"198112189876","patient_county_code":"23","patient_municipality_code":"2380","agreement_chapter":"4","agreement_point":"4.1","care_type":"outpatient","visit_type":"new","visit_date":"2025-03-02","performing_unit_hsa_id":"SE2321000115-094882","provider_org_number":"5567000004","provider_name":"Exempel","profession_code":"LK","product_category":"04","quantity":1,"unit_price_ore":50000,"patient_fee_ore":0,"gross_amount_ore":50000,"net_amount_ore":50000}"#;

    fn temp(name: &str, content: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("distans-files-{}-{name}", std::process::id()));
        std::fs::write(&dir, content).expect("write temp file");
        dir
    }

    #[test]
    fn json_lines_with_a_bad_row_name_its_line() {
        let path = temp("bad.jsonl", &format!("{JSON}\n\n{{\"invoice_id\": 5}}\n{JSON}\n"));
        let err = read_lines(&path).expect_err("bad row");
        let text = err.to_string();
        assert!(text.contains("line 3: field invoice_id: invalid type: integer `5`, expected a string"), "{text}");
        let ReadError::Rows { errors, .. } = err else { panic!("rows error") };
        assert_eq!(errors.len(), 1);
        let good = temp("good.jsonl", &format!("{JSON}\n{JSON}\n"));
        assert_eq!(read_lines(&good).expect("reads").len(), 2);
    }

    /// A row that is not UTF-8 is a bad row with its line number, like any
    /// other (it was an I/O error for the whole file); `\r\n` ends a line.
    #[test]
    fn a_row_that_is_not_utf8_is_a_bad_row() {
        let mut bytes = format!("{JSON}\r\n").into_bytes();
        bytes.extend_from_slice(b"{\"invoice_id\": \"\xff\"}\n");
        bytes.extend_from_slice(format!("{JSON}\n").as_bytes());
        let errors = parse_lines(&bytes, Format::JsonLines).expect_err("bad row");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.starts_with("not UTF-8"), "{}", errors[0].message);
        let good = format!("{JSON}\r\n\r\n{JSON}");
        assert_eq!(parse_lines(good.as_bytes(), Format::JsonLines).expect("reads").len(), 2);
        assert_eq!(parse_lines(b"", Format::JsonLines).expect("an empty file"), vec![]);
        assert_eq!(Format::of(Path::new("a.CSV")), Format::Csv);
        assert_eq!(Format::of(Path::new("a.jsonl")), Format::JsonLines);
    }

    #[test]
    fn csv_round_trips_the_json_line() {
        let line: InvoiceLine = serde_json::from_str(JSON).expect("fixture");
        let header = "invoice_id,invoice_type,line_number,credited_invoice_id,seller_org_number,buyer_org_number,invoice_date,payable_amount_ore,patient_id,patient_county_code,patient_municipality_code,patient_sex,remittance_number,agreement_chapter,agreement_point,care_type,visit_type,visit_date,visit_time,performing_unit_hsa_id,provider_org_number,provider_name,profession_code,product_category,quantity,unit_price_ore,patient_fee_ore,gross_amount_ore,net_amount_ore,diagnosis_codes,procedure_codes,contact_channel,needs_assessment";
        let row = "ZVF23210001152503000042,380,1,,2321000115,2321000198,2025-03-31,50000,198112189876,23,2380,,,4,4.1,outpatient,new,2025-03-02,,SE2321000115-094882,5567000004,Exempel,LK,04,1,50000,0,50000,50000,,,,";
        let bad = "ZVF23210001152503000042,380,one,,2321000115,2321000198,2025-03-31,50000,198112189876,23,2380,,,4,4.1,outpatient,new,2025-03-02,,SE2321000115-094882,5567000004,Exempel,LK,04,1,50000,0,50000,50000,J06.9|R05,ZV051,video,true";
        let path = temp("ok.csv", &format!("{header}\n{row}\n"));
        assert_eq!(read_lines(&path).expect("reads"), vec![line]);
        let path = temp("bad.csv", &format!("{header}\n{row}\n{bad}\n"));
        let text = read_lines(&path).expect_err("bad").to_string();
        assert!(text.contains("line 3: line_number must be a whole number"), "{text}");
        let semicolons = format!("{}\n{}\n", header.replace(',', ";"), row.replace(',', ";"));
        let errors = parse_lines(semicolons.as_bytes(), Format::Csv).expect_err("semicolons");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("save the file as CSV with commas"), "{}", errors[0].message);

        // The header's problems are said once, of line 1, not of every row.
        let rows = format!("{row}\n").repeat(3);
        let misspelt = header.replace("visit_date", "visitdate").replace("quantity", "qty");
        let errors = parse_lines(
            format!("{misspelt},care_type\n{}", rows.replace('\n', ",outpatient\n")).as_bytes(),
            Format::Csv,
        )
        .expect_err("unknown columns");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 1);
        assert!(
            errors[0].message.starts_with(
                "no column visit_date, quantity (every field has its column; leave the cells of an absent value \
                 empty); unknown column(s) visitdate, qty (the columns are the fields of an invoice line: invoice_id, "
            ),
            "{}",
            errors[0].message
        );
        assert!(errors[0].message.ends_with("; column(s) named twice: care_type"), "{}", errors[0].message);
        let without = |column: &str| {
            let at = header.split(',').position(|h| h == column).expect("a column");
            let drop = |text: &str| {
                text.split(',').enumerate().filter(|(i, _)| *i != at).map(|(_, c)| c).collect::<Vec<_>>().join(",")
            };
            format!("{}\n{}", drop(header), format!("{}\n", drop(row)).repeat(3))
        };
        for column in ["visit_date", "remittance_number"] {
            let errors = parse_lines(without(column).as_bytes(), Format::Csv).expect_err("a column left out");
            let message =
                format!("no column {column} (every field has its column; leave the cells of an absent value empty)");
            assert_eq!(errors, vec![RowError { line: 1, message }], "required and optional alike");
        }
        let spaced = format!("{}\n{row}\n", header.replace(',', ", "));
        assert_eq!(parse_lines(spaced.as_bytes(), Format::Csv).expect("spaces around names").len(), 1);
    }

    #[test]
    fn lines_written_as_csv_read_back() {
        let mut line: InvoiceLine = serde_json::from_str(JSON).expect("fixture");
        line.provider_name = "Vård, \"Nära\" AB".into();
        line.diagnosis_codes = vec!["J06.9".into(), "R05".into()];
        line.needs_assessment = Some(true);
        line.visit_time = Some("14:05:00".parse().expect("time"));
        let lines = vec![line.clone(), InvoiceLine { line_number: 2, diagnosis_codes: vec![], ..line }];
        let mut csv = Vec::new();
        write_lines(&lines, Format::Csv, &mut csv).expect("writes");
        assert!(csv.starts_with(b"invoice_id,invoice_type,line_number,"), "{}", String::from_utf8_lossy(&csv));
        assert_eq!(parse_lines(&csv, Format::Csv).expect("reads back"), lines);
    }

    #[test]
    fn a_file_of_the_other_format_is_named_once() {
        let mut csv = Vec::new();
        let line: InvoiceLine = serde_json::from_str(JSON).expect("fixture");
        write_lines(&vec![line; 3], Format::Csv, &mut csv).expect("writes");
        let errors = parse_lines(&csv, Format::JsonLines).expect_err("CSV read as JSON lines");
        assert_eq!(
            errors,
            vec![RowError {
                line: 1,
                message: "a CSV header, not a JSON object: a CSV file's name must end .csv".into()
            }]
        );
        let json = format!("\n{JSON}\n{JSON}\n");
        let errors = parse_lines(json.as_bytes(), Format::Csv).expect_err("JSON lines read as CSV");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        // A spreadsheet's "CSV UTF-8" starts with a byte order mark.
        let bom = [b"\xef\xbb\xbf".as_slice(), &csv].concat();
        assert_eq!(parse_lines(&bom, Format::Csv).expect("a BOM is no column").len(), 3);
    }

    #[test]
    fn a_csv_row_in_latin_1_says_to_save_as_utf_8() {
        let mut csv = Vec::new();
        let line: InvoiceLine = serde_json::from_str(JSON).expect("fixture");
        write_lines(&[InvoiceLine { provider_name: "Vård".into(), ..line }], Format::Csv, &mut csv).expect("writes");
        let latin1: Vec<u8> = String::from_utf8(csv).expect("utf-8").chars().map(|c| c as u32 as u8).collect();
        let errors = parse_lines(&latin1, Format::Csv).expect_err("Latin-1");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.starts_with("not UTF-8: save the file as CSV UTF-8 ("), "{}", errors[0].message);
    }

    #[test]
    fn a_file_without_lines_is_refused() {
        let header = serde_aux::serde_introspection::serde_introspect::<InvoiceLine>().join(",") + "\n";
        for (name, content) in [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("header.csv", header.as_str())] {
            let error = read_lines(&temp(name, content)).expect_err(name).to_string();
            assert!(
                error.ends_with(&format!(
                    "{name} holds no invoice lines: it is empty, or has blank lines or a header only"
                )),
                "{error}"
            );
        }
    }
}
