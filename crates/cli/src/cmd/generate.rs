//! `distans generate`: a synthetic year of lines, its summary and listing
//! register, written beside each other (and with `--produce` sent to Kafka).

use std::path::{Path, PathBuf};

use anyhow::Context;
use distans_domain::money::Ore;
use distans_files::{invoices, listing};
use distans_runtime::Settings;
use distans_synth::{generate, profile, register};

use crate::cmd::produce;

/// The command's flags (see `distans generate --help`).
#[derive(Debug, Clone)]
pub struct Args {
    /// SCB county code of the home region.
    pub region: String,
    pub year: i32,
    /// Number of lines; `None`: the region's yearly volume.
    pub lines: Option<usize>,
    pub seed: u64,
    pub invalid_share: f64,
    pub implausible_share: f64,
    /// The lines' file; the summary and register are written beside it.
    pub out: PathBuf,
    /// Also send the lines to the input topic.
    pub produce: bool,
}

/// Writes `out` (CSV when its name ends `.csv`, else JSON lines),
/// `out.summary.json` and `out.listing.csv`.
pub async fn run(args: Args, settings: &Settings) -> anyhow::Result<()> {
    let Args { region, year, lines, seed, invalid_share, implausible_share, out, produce } = args;
    let profile = profile::region(&region).with_context(|| {
        let known: Vec<&str> = profile::REGIONS.iter().map(|r| r.county_code).collect();
        format!("no generator profile for region {region} (county codes it has: {})", known.join(", "))
    })?;
    let lines = lines.unwrap_or(profile.yearly_lines);
    let mut options = generate::Options::new(&region, year, lines, seed, &settings.detector.rules);
    options.invalid_share = invalid_share;
    options.implausible_share = implausible_share;
    let mut generated = generate::generate(&options, &settings.tariffs)?;
    invoices::write_lines(&generated.lines, invoices::Format::of(&out), create(&out)?)?;
    let generated_register = register::generate(&generated, &options)?;
    let listing_path = sibling(&out, ".listing.csv");
    listing::write_clear_csv(&generated_register.listings, create(&listing_path)?)?;
    generated.summary.listing = Some(generated_register.summary);
    let summary_path = sibling(&out, ".summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&generated.summary)?)?;
    let s = &generated.summary;
    crate::print(format_args!(
        "generated {} lines for {} {} ({} valid, {} invalid, {} credit notes, net {}) -> {} and {}\n",
        s.lines,
        s.region,
        s.year,
        s.valid,
        s.invalid,
        s.credit_notes,
        Ore(s.valid_net_amount_ore).whole_kronor(),
        out.display(),
        summary_path.display()
    ))?;
    crate::print(format_args!(
        "listing register: {} people at {} health centres -> {}\n",
        s.listing.as_ref().map_or(0, |l| l.listed_people),
        s.listing.as_ref().map_or(0, |l| l.listed_mid_year_by_unit.len()),
        listing_path.display()
    ))?;
    if produce {
        let produced = produce::produce_lines(settings, &generated.lines, true).await?;
        produce::print_produced(settings, produced)?;
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// `FILE` + `suffix`, beside `FILE`.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    out.with_file_name(name)
}
