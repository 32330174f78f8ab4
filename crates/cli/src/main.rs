//! `distans`: the operator's command. The flags are defined here; each
//! command is one `run` function in `distans_cli::cmd`.

#[global_allocator]
static ALLOCATOR: distans_runtime::Allocator = distans_runtime::Allocator;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use distans_cli::cmd;
use distans_runtime::Settings;

#[derive(Parser)]
#[command(name = "distans", version, about = "Watch the invoices a region pays for digital out-of-county care")]
struct Cli {
    /// Settings file (TOML); also $DISTANS_CONFIG. DISTANS__SECTION__KEY variables override it.
    #[arg(long, global = true, env = "DISTANS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a deterministic synthetic year of invoice lines (JSON lines).
    Generate {
        /// SCB county code of the home region: 23 Jämtland Härjedalen, 25 Norrbotten, 19 Västmanland.
        #[arg(long, default_value = "23")]
        region: String,
        #[arg(long, default_value_t = 2025)]
        year: i32,
        /// Number of ordinary lines (default: the region's yearly volume); the
        /// implausible lines that need lines of their own (double invoices,
        /// repeats, …) come on top, and the printed total counts them.
        #[arg(long)]
        lines: Option<usize>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of lines made invalid (each in one known way).
        #[arg(long, default_value_t = 0.01)]
        invalid_share: f64,
        /// Share of lines made implausible (valid, for the detector).
        #[arg(long, default_value_t = 0.02)]
        implausible_share: f64,
        /// Output file (CSV when it ends .csv, else JSON lines); the summary
        /// goes to FILE.summary.json and the listing register (patients in
        /// clear text, as a region exports it) to FILE.listing.csv beside it.
        #[arg(long)]
        out: PathBuf,
        /// Also send the lines to Kafka.
        #[arg(long)]
        produce: bool,
    },
    /// Send a JSON-lines or CSV invoice file to Kafka in the wire format.
    Produce {
        file: PathBuf,
        #[arg(long)]
        no_progress: bool,
    },
    /// Wait until ClickHouse holds at least N distinct invoice lines.
    Wait {
        #[arg(long, required_unless_present = "summary")]
        lines: Option<u64>,
        /// Take N from a generator summary: its count of valid lines.
        #[arg(long, conflicts_with = "lines")]
        summary: Option<PathBuf>,
        /// Count only lines written at or after this Unix time (seconds).
        #[arg(long)]
        written_since: Option<u32>,
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Answer the regions' questions from ClickHouse: terminal tables, and
    /// with --html a self-contained page with charts.
    Report {
        /// Home region's organisation number (232100-0230 or 2321000230); default: the only one in the data.
        #[arg(long, value_parser = cmd::report::org_number)]
        buyer: Option<String>,
        /// Visit year; default: the latest in the data.
        #[arg(long)]
        year: Option<i32>,
        /// Also write the report as HTML to this file.
        #[arg(long)]
        html: Option<PathBuf>,
        /// `sv` (Swedish) or `en` (English); default: reporting.language.
        #[arg(long)]
        language: Option<String>,
    },
    /// The home region's listing register.
    Listing {
        #[command(subcommand)]
        command: ListingCommand,
    },
    /// Rebuild every month of the aggregates now. The sink does this as lines
    /// arrive; run it when no sink runs, or after changing what the months
    /// are built from (each rebuild swaps in a whole month, also beside a sink).
    Refresh,
    /// Print the Grafana dashboard (deploy/grafana/dashboards/distans.json
    /// is its Swedish output).
    Grafana {
        /// `sv` (Swedish) or `en` (English).
        #[arg(long, default_value = "sv")]
        language: String,
    },
    /// Print the report's panels (id, title, SQL) as JSON.
    Panels,
    /// Count the dead-letter topic's records by reason.
    DeadLetters {
        /// Print each dead letter (reason and source position; never the original bytes).
        #[arg(long)]
        list: bool,
    },
    /// Apply ClickHouse migrations (the sink also does this at start).
    Migrate,
    /// The input schema in the schema registry (schema_registry.url).
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Check invoice files offline: the same validation, pseudonymisation,
    /// enrichment and rules as the pipeline, in process (no broker, no
    /// ClickHouse); prints the dead letters and the active findings. Lines
    /// are versions in file order, files in the order given: a later line
    /// with the same seller, invoice id and line number corrects an earlier one.
    Audit {
        /// JSON-lines or CSV (by extension) invoice files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per line (kind: note, dead_letter or finding) instead of tables.
        #[arg(long)]
        json: bool,
        /// A listing register CSV to check as `distans listing import` reads it.
        #[arg(long, requires = "county")]
        listing: Option<PathBuf>,
        /// SCB county code of the register's home region, e.g. 23.
        #[arg(long, requires = "listing")]
        county: Option<String>,
    },
}

#[derive(Subcommand)]
enum SchemasCommand {
    /// Register schemas/invoice_line.v1.avsc under <topics.input>-value
    /// (TopicNameStrategy) and set that subject's compatibility to
    /// FULL_TRANSITIVE; prints the id the registry assigned. Idempotent.
    Register,
}

#[derive(Subcommand)]
enum ListingCommand {
    /// Import a register CSV as a new version for a home region (columns:
    /// patient_id or patient_pseudonym, unit_hsa_id, unit_name,
    /// unit_provider_org_number, provider_group, valid_from, valid_to; see
    /// the README). Clear-text patient ids are
    /// pseudonymised with pseudonym.key; all bad rows are reported and
    /// nothing is written if there is one.
    Import {
        file: PathBuf,
        /// SCB county code of the home region, e.g. 23.
        #[arg(long)]
        county: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("distans: {e}");
            return ExitCode::from(2);
        }
    };
    // The command's own output is the answer; logs only say what went wrong.
    // librdkafka's own lines are left to RUST_LOG: against a broker that
    // does not answer they repeat for every retry, and the command's error
    // names the setting to check (`kafka::connect_within`).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,librdkafka=off".into());
    distans_runtime::telemetry::init_tracing(&distans_runtime::config::LogSettings { format: "text".into(), filter });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("distans: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clickhouse_url = settings.clickhouse.url.clone();
    match runtime.block_on(execute(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output stopped (`| head`): it has what it wanted.
        Err(e) if distans_cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distans: {e:#}");
            if let Some(hint) = distans_store::unanswered_hint(e.chain(), &clickhouse_url) {
                eprintln!("distans: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Generate { region, year, lines, seed, invalid_share, implausible_share, out, produce } => {
            let args =
                cmd::generate::Args { region, year, lines, seed, invalid_share, implausible_share, out, produce };
            cmd::generate::run(args, &settings).await
        }
        Command::Produce { file, no_progress } => cmd::produce::run(&file, !no_progress, &settings).await,
        Command::Wait { lines, summary, written_since, timeout_secs } => {
            cmd::wait::run(lines, summary.as_deref(), written_since, Duration::from_secs(timeout_secs), &settings).await
        }
        Command::Report { buyer, year, html, language } => {
            cmd::report::run(buyer.as_deref(), year, html.as_deref(), language.as_deref(), &settings).await
        }
        Command::Listing { command: ListingCommand::Import { file, county } } => {
            cmd::listing::run(&file, &county, &settings).await
        }
        Command::Refresh => cmd::refresh::run(&settings).await,
        Command::Grafana { language } => cmd::grafana::run(&language),
        Command::Panels => cmd::panels::run(),
        Command::DeadLetters { list } => cmd::dead_letters::run(list, settings).await,
        Command::Migrate => cmd::migrate::run(&settings).await,
        Command::Schemas { command: SchemasCommand::Register } => cmd::schemas::run_register(&settings).await,
        Command::Audit { files, json, listing, county } => {
            cmd::audit::run(&cmd::audit::Args { files, json, listing: listing.zip(county) }, &settings)
        }
    }
}
