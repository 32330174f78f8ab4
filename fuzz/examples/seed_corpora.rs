//! Writes the fuzz targets' seed corpora from the project's fixtures into
//! `DIR/<target>/` (`DIR` is the first argument, `fuzz/corpus` by default):
//!
//! - `wire_decode`: every subject encoded by the codec from the domain's
//!   test fixtures (`distans_domain::testing`) and from generated lines,
//!   a finding in schema v1 (id 4), and the dead letters the ingester
//!   writes for them.
//! - `invoices_json_lines`, `invoices_csv`: small files of generated lines
//!   (`distans_synth`, seed 42), invalid lines included.
//! - `listing_register`: small registers for those lines, clear text and
//!   pseudonymised.
//!
//! Files are small (a few lines each): libFuzzer mutates small inputs faster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use distans_domain::enrich::Provenance;
use distans_domain::rules::{Withdrawal, DOUBLE_INVOICING, WRONG_PRICE};
use distans_domain::{testing, InvoiceLine, Pseudonymiser};
use distans_ingester::{Processor, Routed};
use distans_runtime::Settings;
use distans_wire::{frame, Codec, EmbeddedSchemas, SchemaResolver, TimedFinding};

/// The key the listing target pseudonymises with.
const KEY: [u8; 32] = [7; 32];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let settings = Settings::load_with_env(None, Some(BTreeMap::new()))?;
    let options = distans_synth::generate::Options::new("23", 2025, 120, 42, &settings.detector.rules);
    let generated = distans_synth::generate::generate(&options, &settings.tariffs)?;
    let register = distans_synth::register::generate(&generated, &options)?;

    wire(&dir.join("wire_decode"), &generated.lines)?;
    invoices(&dir, &generated.lines)?;
    listing(&dir.join("listing_register"), &register.listings)?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn wire(dir: &Path, generated: &[InvoiceLine]) -> Result<(), Box<dyn std::error::Error>> {
    let codec = Codec::embedded();
    let mut lines = vec![testing::invoice_line(), testing::invoice_line_without_optionals()];
    lines.extend(generated.iter().take(20).cloned());
    let key = Pseudonymiser::new(&KEY)?;
    let processor = Processor::new(codec.clone(), testing::tariffs(), key, testing::validation());
    let source = Provenance { topic: "invoice-lines".into(), partition: 0, offset: 0 };
    for (i, line) in lines.iter().enumerate() {
        let bytes = codec.encode_invoice_line(line)?;
        write(dir, &format!("invoice_line_{i:02}"), &bytes)?;
        // What the ingester makes of it: an enriched line or a dead letter.
        let routed = processor.process(Some(line.key().as_bytes()), Some(&bytes), &source, 1_760_000_000_000)?;
        let (kind, payload) = match routed {
            Routed::Valid { payload, .. } => ("enriched_line", payload),
            Routed::DeadLetter { payload, .. } => ("dead_letter", payload),
        };
        write(dir, &format!("{kind}_{i:02}"), &payload)?;
    }
    write(dir, "enriched_line_fixture", &codec.encode_enriched_line(&testing::enriched_line())?)?;
    let garbage = processor.process(None, Some(b"not avro"), &source, 0)?;
    if let Routed::DeadLetter { payload, .. } = garbage {
        write(dir, "dead_letter_garbage", &payload)?;
    }

    let active = TimedFinding { finding: testing::finding(&WRONG_PRICE, "ZVF1:1"), detected_at_ms: 1_760_000_000_000 };
    let mut withdrawn = TimedFinding { finding: testing::finding(&DOUBLE_INVOICING, "ZVF1:2"), ..active.clone() };
    withdrawn.finding.status = distans_domain::rules::FindingStatus::Withdrawn(Withdrawal::Corrected);
    for (name, finding) in [("finding_v2_active", &active), ("finding_v2_withdrawn", &withdrawn)] {
        write(dir, name, &codec.encode_finding(finding)?)?;
    }
    // Schema v1 of findings (id 4), as `round_trip.rs` writes it.
    let schemas = EmbeddedSchemas::load()?;
    let v2 = codec.encode_finding(&active)?;
    let latest = schemas.by_id(5).ok_or("schema 5")?;
    let value = apache_avro::from_avro_datum(&latest.schema, &mut &v2[5..], None)?;
    let apache_avro::types::Value::Record(mut fields) = value else { return Err("a finding is a record".into()) };
    fields.retain(|(name, _)| name != "status" && name != "withdrawn_reason");
    let v1 = schemas.by_id(4).ok_or("schema 4")?;
    let datum = apache_avro::to_avro_datum(&v1.schema, apache_avro::types::Value::Record(fields))?;
    write(dir, "finding_v1", &frame(4, &datum))?;
    Ok(())
}

const CSV_HEADER: [&str; 33] = [
    "invoice_id",
    "invoice_type",
    "line_number",
    "credited_invoice_id",
    "seller_org_number",
    "buyer_org_number",
    "invoice_date",
    "payable_amount_ore",
    "patient_id",
    "patient_county_code",
    "patient_municipality_code",
    "patient_sex",
    "remittance_number",
    "agreement_chapter",
    "agreement_point",
    "care_type",
    "visit_type",
    "visit_date",
    "visit_time",
    "performing_unit_hsa_id",
    "provider_org_number",
    "provider_name",
    "profession_code",
    "product_category",
    "quantity",
    "unit_price_ore",
    "patient_fee_ore",
    "gross_amount_ore",
    "net_amount_ore",
    "diagnosis_codes",
    "procedure_codes",
    "contact_channel",
    "needs_assessment",
];

/// A line as a CSV row in the reader's format: lists joined by `|`, absent
/// optionals empty.
fn csv_row(line: &InvoiceLine) -> Result<Vec<String>, serde_json::Error> {
    let value = serde_json::to_value(line)?;
    Ok(CSV_HEADER
        .iter()
        .map(|name| match &value[*name] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join("|"),
            other => other.to_string(),
        })
        .collect())
}

fn invoices(dir: &Path, generated: &[InvoiceLine]) -> Result<(), Box<dyn std::error::Error>> {
    let mut fixtures = vec![testing::invoice_line(), testing::invoice_line_without_optionals()];
    fixtures.extend(generated.iter().cloned());
    for (i, chunk) in fixtures.chunks(4).enumerate().take(24) {
        let mut json = Vec::new();
        distans_files::invoices::write_json_lines(chunk, &mut json)?;
        write(&dir.join("invoices_json_lines"), &format!("lines_{i:02}.jsonl"), &json)?;
        let mut csv = CSV_HEADER.join(",");
        for line in chunk {
            csv.push('\n');
            csv.push_str(&csv_row(line)?.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        }
        csv.push('\n');
        write(&dir.join("invoices_csv"), &format!("lines_{i:02}.csv"), csv.as_bytes())?;
    }
    Ok(())
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

fn listing(dir: &Path, listings: &[distans_files::listing::ClearListing]) -> Result<(), Box<dyn std::error::Error>> {
    let key = Pseudonymiser::new(&KEY)?;
    for (i, chunk) in listings.chunks(5).enumerate().take(16) {
        let mut clear = Vec::new();
        distans_files::listing::write_clear_csv(chunk, &mut clear)?;
        write(dir, &format!("clear_{i:02}.csv"), &clear)?;
        // The same register pseudonymised (the other header a region may send).
        let parsed = distans_files::listing::parse_register(&clear, Some(&key), &Default::default())
            .map_err(|errors| format!("the generated register reads: {errors:?}"))?;
        let mut text = String::from(
            "patient_pseudonym,unit_hsa_id,unit_name,unit_provider_org_number,provider_group,valid_from,valid_to\n",
        );
        for l in parsed {
            let to = l.valid_to.map(|d| d.to_string()).unwrap_or_default();
            text.push_str(&format!(
                "{},{},{},{},{},{},{to}\n",
                l.patient_pseudonym,
                l.unit_hsa_id,
                quote(&l.unit_name),
                l.unit_provider_org_number,
                quote(&l.provider_group),
                l.valid_from
            ));
        }
        write(dir, &format!("pseudonymised_{i:02}.csv"), text.as_bytes())?;
    }
    Ok(())
}
