//! `distans`: the operator's command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use distans_cli::poll::poll_until;
use distans_cli::{answers, dead_letters, files, generate, grafana, listing, panels, produce, register, report};
use distans_domain::money::Ore;
use distans_domain::rules::{LISTED_AT_SAME_GROUP, PROVIDER_FAR_FROM_PEERS};
use distans_runtime::Settings;
use distans_store::queries;

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
        /// Number of lines; defaults to the region's yearly volume.
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
        /// Output file; the summary goes to FILE.summary.json and the listing
        /// register (patients in clear text, as a region exports it) to
        /// FILE.listing.csv beside it.
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
        /// Home region's organisation number (10 digits); default: the only one in the data.
        #[arg(long)]
        buyer: Option<String>,
        /// Visit year; default: the latest in the data.
        #[arg(long)]
        year: Option<i32>,
        /// Also write the report as HTML to this file.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// The home region's listing register.
    Listing {
        #[command(subcommand)]
        command: ListingCommand,
    },
    /// Rebuild every month of the aggregates now. The sink does this as lines
    /// arrive; run it when no sink runs (two rebuilding the same month at
    /// once can leave it wrong until the sink's next check sees and redoes it).
    Refresh,
    /// Print the Grafana dashboard (deploy/grafana/dashboards/distans.json).
    Grafana,
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
}

#[derive(Subcommand)]
enum ListingCommand {
    /// Import a register CSV as a new version for a home region (see
    /// `distans_cli::listing` for the columns). Clear-text patient ids are
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
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    distans_runtime::telemetry::init_tracing(&distans_runtime::config::LogSettings { format: "text".into(), filter });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("distans: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distans: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Generate { region, year, lines, seed, invalid_share, implausible_share, out, produce } => {
            let profile = generate::region(&region).with_context(|| format!("unknown region {region}"))?;
            let lines = lines.unwrap_or(profile.yearly_lines);
            let mut options = generate::Options::new(&region, year, lines, seed, &settings.detector.rules);
            options.invalid_share = invalid_share;
            options.implausible_share = implausible_share;
            let generated = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
            let file = std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
            files::write_json_lines(&generated.lines, file)?;
            let generated_register = register::generate(&generated, &options).map_err(anyhow::Error::msg)?;
            let listing_path = sibling(&out, ".listing.csv");
            let file = std::fs::File::create(&listing_path)
                .with_context(|| format!("cannot create {}", listing_path.display()))?;
            listing::write_clear_csv(&generated_register.listings, file)?;
            let mut generated = generated;
            generated.summary.listing = Some(generated_register.summary);
            let summary_path = sibling(&out, ".summary.json");
            std::fs::write(&summary_path, serde_json::to_string_pretty(&generated.summary)?)?;
            let s = &generated.summary;
            println!(
                "generated {} lines for {} {} ({} valid, {} invalid, {} credit notes, net {}) -> {} and {}",
                s.lines,
                s.region,
                s.year,
                s.valid,
                s.invalid,
                s.credit_notes,
                Ore(s.valid_net_amount_ore).whole_kronor(),
                out.display(),
                summary_path.display()
            );
            println!(
                "listing register: {} people at {} health centres -> {}",
                s.listing.as_ref().map_or(0, |l| l.listed_people),
                s.listing.as_ref().map_or(0, |l| l.listed_mid_year_by_unit.len()),
                listing_path.display()
            );
            if produce {
                let produced = produce::produce_lines(&settings, &generated.lines, true).await?;
                print_produced(&settings, produced);
            }
        }
        Command::Produce { file, no_progress } => {
            let lines = files::read_lines(&file)?;
            let produced = produce::produce_lines(&settings, &lines, !no_progress).await?;
            print_produced(&settings, produced);
        }
        Command::Wait { lines, summary, written_since, timeout_secs } => {
            let (lines, findings) = match (lines, summary) {
                (Some(lines), _) => (lines, 0),
                (None, Some(path)) => {
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let summary = serde_json::from_str::<generate::Summary>(&text)?;
                    (summary.valid as u64, summary.expected_findings.values().sum::<usize>() as u64)
                }
                (None, None) => anyhow::bail!("give --lines or --summary"),
            };
            let client = distans_store::database(&settings.clickhouse);
            let started = Instant::now();
            let deadline = started + Duration::from_secs(timeout_secs);
            let timed_out = |last: String| anyhow::anyhow!("timed out after {timeout_secs} s: {last}");
            let count = poll_until(deadline, async || {
                let count = queries::current_line_count(&client, written_since).await.unwrap_or(0);
                if count >= lines {
                    Ok(count)
                } else {
                    Err(format!("{count} of {lines} lines in ClickHouse"))
                }
            })
            .await
            .map_err(timed_out)?;
            println!("{count} lines in ClickHouse after {:.1} s", started.elapsed().as_secs_f64());
            // The findings a generated file should give (the anomalies it injected).
            if findings > 0 {
                let count = poll_until(deadline, async || {
                    let count = queries::current_finding_count(&client).await.unwrap_or(0);
                    if count >= findings {
                        Ok(count)
                    } else {
                        Err(format!("{count} of {findings} findings in ClickHouse"))
                    }
                })
                .await
                .map_err(timed_out)?;
                println!("{count} findings in ClickHouse after {:.1} s", started.elapsed().as_secs_f64());
            }
            // The aggregates that reports read: rebuilt by the sink as lines arrive.
            let reviewed = [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id];
            poll_until(deadline, async || {
                let fresh = queries::aggregates_fresh(&client).await.unwrap_or(false)
                    && (settings.detector.review_interval_ms == 0
                        || distans_store::review::caught_up(&client, &reviewed).await.unwrap_or(false));
                if fresh {
                    Ok(())
                } else {
                    Err("aggregates not up to date".to_string())
                }
            })
            .await
            .map_err(timed_out)?;
            println!(
                "aggregates (and the review's findings) up to date after {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Report { buyer, year, html } => {
            let client = distans_store::database(&settings.clickhouse);
            let (buyer, year) = answers::default_scope(&client, buyer.as_deref(), year).await?;
            let all = answers::answer_all(&client, &buyer, year).await?;
            print!("{}", answers::render_terminal(&all, &buyer, year));
            let findings = queries::findings_by_rule(&client, Some(&buyer)).await?;
            if !findings.is_empty() {
                print!("\nWhat the rules mean (all years)\n{}", report::render_findings(&findings));
            }
            if let Some(path) = html {
                let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
                std::fs::write(&path, answers::render_html(&all, &buyer, year, &now))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("\nHTML report: {}", path.display());
            }
        }
        Command::Listing { command: ListingCommand::Import { file, county } } => {
            if distans_domain::codes::COUNTY_NAMES.iter().all(|(code, _)| *code != county) {
                anyhow::bail!("{county:?} is not an SCB county code");
            }
            let pseudonymiser = settings.pseudonymiser().ok();
            let parsed = listing::read(&file, pseudonymiser.as_ref())?;
            let client = distans_store::database(&settings.clickhouse);
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let imported = distans_store::listing::import(
                &client,
                &county,
                &name,
                &parsed.sha256,
                &parsed.listings,
                distans_runtime::now_ms(),
            )
            .await?;
            println!(
                "imported listing register version {} for county {county}: {} periods, {} patients, {} health centres \
                 (the sink rebuilds the aggregates now; without a running sink, run `distans refresh`)",
                imported.import_id, imported.rows, imported.patients, imported.units
            );
        }
        Command::Refresh => {
            let client = distans_store::database(&settings.clickhouse);
            let started = Instant::now();
            let months = distans_store::aggregates::refresh_all(&client).await?;
            println!("aggregates rebuilt: {months} months in {:.1} s", started.elapsed().as_secs_f64());
        }
        Command::Grafana => print!("{}", grafana::dashboard_file()),
        Command::Panels => println!("{}", serde_json::to_string_pretty(&panels::PANELS)?),
        Command::DeadLetters { list } => {
            let topic = settings.topics.dead_letter.clone();
            let letters =
                tokio::task::spawn_blocking(move || dead_letters::read_all(&settings, &topic, Duration::from_secs(60)))
                    .await??;
            if list {
                for l in &letters {
                    println!(
                        "{}/{}@{}\t{}\t{}",
                        l.source_topic, l.source_partition, l.source_offset, l.reason_code, l.reason
                    );
                }
            }
            println!("{} dead letters", letters.len());
            for (reason, count) in dead_letters::count_by_reason(&letters) {
                println!("{count:>8}  {reason}");
            }
        }
        Command::Migrate => {
            let applied = distans_store::migrations::migrate(
                &distans_store::client(&settings.clickhouse),
                &settings.clickhouse.database,
            )
            .await?;
            let views = distans_store::views::recreate(&distans_store::database(&settings.clickhouse)).await?;
            println!("applied migrations: {applied:?}; views re-created: {views}");
        }
    }
    Ok(())
}

/// `FILE` + `suffix`, beside `FILE`.
fn sibling(out: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    out.with_file_name(name)
}

fn print_produced(settings: &Settings, produced: produce::Produced) {
    println!(
        "produced {} records to {} in {:.1} s ({:.0} records/s)",
        produced.records,
        settings.topics.input,
        produced.seconds,
        produced.records as f64 / produced.seconds.max(1e-9)
    );
}
