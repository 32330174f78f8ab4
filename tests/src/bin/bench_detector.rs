//! The detector service alone on the real broker: lines per second from its
//! start until every valid line is judged and every finding acknowledged.
//! Compares detector binaries (e.g. a build of main and of a branch) on the
//! same topic in one run, each run in turn under a new consumer group, so
//! each judges the whole topic live. Prints figures; asserts nothing about
//! speed.
//!
//! usage: distans-bench-detector LINES REPETITIONS [DETECTOR-BINARY …]
//! (default: 46 000 lines, 3 repetitions, this build's distans-detector)

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_e2e::{bin_dir, free_port, http_get, metric, poll_until, Env, Process};
use distans_synth::generate::{self, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(46_000);
    let repetitions: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let mut binaries: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if binaries.is_empty() {
        binaries.push(bin_dir().join("distans-detector"));
    }
    let env = Env::start()?;
    let settings = env.settings();
    let options = Options::new("23", 2025, lines, 1, &settings.detector.rules);
    let generated = generate::generate(&options, &settings.tariffs).map_err(anyhow::Error::msg)?;
    produce::produce_lines(&settings, &generated.lines, false).await?;
    let ingester = env.spawn("ingester")?;
    let expected = generated.lines.len() as f64;
    poll_until("the ingester to consume every record", Duration::from_secs(600), async || {
        let (_, page) = http_get(env.ingester_http, "/metrics")?;
        let consumed = metric(&page, "distans_ingester_records_consumed_total").unwrap_or(0.0);
        let in_flight = metric(&page, "distans_ingester_in_flight");
        anyhow::ensure!(consumed >= expected && in_flight == Some(0.0), "{consumed} consumed, {in_flight:?} in flight");
        Ok(())
    })
    .await?;
    drop(ingester);
    let valid = generated.summary.valid as f64;
    println!(
        "distans-bench-detector: {} valid lines on {}, debug={}",
        generated.summary.valid,
        settings.topics.valid,
        cfg!(debug_assertions)
    );

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); binaries.len()];
    for repetition in 0..repetitions {
        for (i, binary) in binaries.iter().enumerate() {
            let port = free_port();
            let mut command = Command::new(binary);
            command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("RUST_LOG", "info");
            for (key, value) in env.variables() {
                command.env(key, value);
            }
            command
                .env("DISTANS__DETECTOR__HTTP_LISTEN", format!("127.0.0.1:{port}"))
                .env("DISTANS__DETECTOR__GROUP_ID", format!("bench-detector-{repetition}-{i}"));
            let log = env.dir.path().join(format!("detector-{repetition}-{i}.log"));
            let started = Instant::now();
            let mut process = Process::spawn("detector", command, log)?;
            // Every line judged, and (where the binary counts them) no finding awaiting its ack.
            let judged = poll_until("the detector to judge every line", Duration::from_secs(600), async || {
                let (_, page) = http_get(port, "/metrics")?;
                let observed = metric(&page, "distans_detector_lines_observed_total").unwrap_or(0.0);
                let in_flight = metric(&page, "distans_detector_in_flight").unwrap_or(0.0);
                anyhow::ensure!(observed >= valid && in_flight == 0.0, "{observed} observed, {in_flight} in flight");
                Ok(distans_e2e::metric_sum(&page, "distans_detector_findings_total"))
            })
            .await;
            let findings = match judged {
                Ok(findings) => findings,
                Err(error) => anyhow::bail!("{error}\n{}", process.log_tail(30)),
            };
            let seconds = started.elapsed().as_secs_f64();
            let rss = process.peak_rss_kib().unwrap_or(0) / 1024;
            process.terminate(Duration::from_secs(15));
            rates[i].push(valid / seconds);
            println!(
                "repetition {repetition} {}: {valid} lines in {seconds:.2} s = {:.0} lines/s (incl. start), {findings} findings, peak RSS {rss} MiB",
                binary.display(),
                valid / seconds
            );
        }
    }
    for (binary, mut rates) in binaries.iter().zip(rates) {
        rates.sort_by(f64::total_cmp);
        let (min, median, max) = (rates[0], rates[rates.len() / 2], rates[rates.len() - 1]);
        println!("{}: min {min:.0} / median {median:.0} / max {max:.0} lines/s", binary.display());
    }
    Ok(())
}
