//! `distans audit FILE…`: what the pipeline makes of invoice files, with no
//! broker and no ClickHouse: the dead letters and the active findings, as
//! tables or as JSON lines. The pipeline in process is
//! `distans_ingester::offline`, the tables `distans_report::audit`; this
//! module reads the files and prints.

use std::path::{Path, PathBuf};

use anyhow::Context;
use distans_domain::Pseudonymiser;
use distans_ingester::offline::InProcess;
use distans_runtime::Settings;
use serde_json::Value;

/// The command's flags (see `distans audit --help`).
#[derive(Debug, Clone)]
pub struct Args {
    /// Invoice files (JSON lines, or CSV by extension), taken in this order.
    pub files: Vec<PathBuf>,
    /// One JSON object per line instead of tables.
    pub json: bool,
    /// A listing register CSV to check, with the SCB county code of its region.
    pub listing: Option<(PathBuf, String)>,
}

/// Reads every file (all of them readable or nothing is judged), runs the
/// pipeline in process and prints what it reports.
pub fn run(args: &Args, settings: &Settings) -> anyhow::Result<()> {
    let pseudonymiser = match settings.pseudonymiser() {
        Ok(key) => key,
        Err(_) => {
            eprintln!(
                "distans audit: no pseudonym.key configured; patients are pseudonymised with a random key for \
                 this run only (pseudonyms differ from the pipeline's, findings do not)"
            );
            Pseudonymiser::new(&ephemeral_key())?
        }
    };
    let validation = settings.validation()?;
    let mut files = Vec::with_capacity(args.files.len());
    for file in &args.files {
        files.push((topic_of(file), distans_files::invoices::read_rows(file)?));
    }
    let register = match &args.listing {
        Some((file, county)) => {
            if !distans_domain::codes::is_county_code(county) {
                anyhow::bail!("{county:?} is not an SCB county code");
            }
            let read = distans_files::listing::read_with(file, Some(&pseudonymiser), validation.patient_ids())?;
            Some((county.clone(), read.listings.len()))
        }
        None => None,
    };
    let mut pipeline =
        InProcess::new(settings.tariffs.clone(), pseudonymiser, validation, settings.detector.rules.clone())
            .with_max_record_bytes(settings.kafka.max_record_bytes);
    for (topic, lines) in &files {
        for (row, line) in lines {
            pipeline.take(topic, *row, line).with_context(|| format!("line {} of {topic}", line.key()))?;
        }
    }
    let audit = pipeline.finish();
    if args.json {
        for (index, mut value) in audit.json_lines().into_iter().enumerate() {
            if let (0, Some(message)) = (index, value.get_mut("message")) {
                *message = Value::String(format!("{}{}", audit.note(), register_note(register.as_ref())));
            }
            crate::print(format_args!("{value}\n"))?;
        }
    } else {
        eprintln!("{}{}", audit.note(), register_note(register.as_ref()));
        crate::print(distans_report::audit::render_tables(&audit))?;
    }
    Ok(())
}

/// The topic a file's lines are versioned on: its file name.
fn topic_of(file: &Path) -> String {
    file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().to_string())
}

/// A key for this run only: 128 bits of the process's hash randomness
/// (`RandomState`, seeded by the OS), spread over 32 bytes; never stored.
fn ephemeral_key() -> [u8; 32] {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let mut key = [0u8; 32];
    for (index, chunk) in key.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&state.hash_one((index, std::time::SystemTime::now())).to_le_bytes());
    }
    key
}

/// The register read, for the note: its county and how many periods it has.
fn register_note(register: Option<&(String, usize)>) -> String {
    register.map_or_else(String::new, |(county, periods)| {
        format!(" The listing register of county {county} is readable ({periods} periods); the rule that uses it is judged in ClickHouse.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let settings = Settings::load_with_env(None, Some(Default::default())).expect("defaults");
        let args = Args { files: vec!["/nonexistent/march.jsonl".into()], json: true, listing: None };
        let error = run(&args, &settings).expect_err("no such file");
        let expected = "cannot read /nonexistent/march.jsonl: No such file or directory (os error 2)";
        assert_eq!(format!("{error:#}"), expected, "said once");
    }
}
