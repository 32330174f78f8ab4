//! The plain Python pipeline (`tests/bench/python_pipeline.py`): its venv,
//! installed from PyPI by the bench, and one run of it timed beside the
//! broker's and ClickHouse's CPU.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use distans_e2e::{repo_root, run_to_end, tools_dir};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::procstat::{Sample, Watched};
use crate::report::Stage;

/// The venv's Python, with `tests/bench/requirements.txt` installed: made
/// under the tools dir (`$DISTANS_TOOLS/bench-py`, where
/// deploy/local/install.sh keeps its venvs) with `python3 -m venv` and
/// pip, again whenever the requirements change.
pub fn ensure_venv() -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join("bench-py");
    let python = dir.join("bin/python");
    let requirements = repo_root().join("tests/bench/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).with_context(|| format!("{}", requirements.display()))?;
    let stamp = dir.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    println!("installing the Python pipeline's packages into {} (PyPI, once)", dir.display());
    let mut venv = std::process::Command::new("python3");
    venv.args(["-m", "venv", "--clear"]).arg(&dir);
    run_to_end(venv, Duration::from_secs(300))
        .context("python3 -m venv (Debian: python3-venv, which make install puts there)")?;
    let mut pip = std::process::Command::new(dir.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&requirements);
    run_to_end(pip, Duration::from_secs(900)).context("pip install -r tests/bench/requirements.txt")?;
    let mut check = std::process::Command::new(&python);
    check.args(["-c", "import confluent_kafka, fastavro, clickhouse_driver"]);
    run_to_end(check, Duration::from_secs(60))?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Where and what the pipeline reads and writes.
pub struct Run<'a> {
    pub python: &'a Path,
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub clickhouse_native_port: u16,
    pub database: String,
    pub schema_id: u32,
    pub key_file: PathBuf,
    pub lines: usize,
    pub timeout: Duration,
    /// The consumer's `fetch.wait.max.ms`, as the services' (`kafka.fetch_wait_max_ms`).
    pub fetch_wait_max_ms: u64,
}

/// What the pipeline said of itself at the end.
#[derive(Debug, serde::Deserialize)]
struct Done {
    lines: usize,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_kib: u64,
}

#[derive(Debug, serde::Deserialize)]
struct Event {
    event: String,
    #[serde(flatten)]
    rest: serde_json::Value,
}

/// Runs the pipeline over `run.lines` records: the stage from its first
/// record to its last insert acknowledged (the bench's clock, the watched
/// processes sampled when it says so), its own CPU seconds in that window
/// as `python`, and its peak RSS in KiB.
pub async fn run(run: &Run<'_>, watched: &Watched) -> anyhow::Result<(Stage, u64)> {
    let script = repo_root().join("tests/bench/python_pipeline.py");
    let schema = repo_root().join("schemas/invoice_line.v1.avsc");
    let mut child = tokio::process::Command::new(run.python)
        .arg(&script)
        .args(["--brokers", &run.brokers, "--topic", &run.topic, "--group", &run.group])
        .args(["--clickhouse-port", &run.clickhouse_native_port.to_string(), "--database", &run.database])
        .arg("--schema")
        .arg(&schema)
        .args(["--schema-id", &run.schema_id.to_string()])
        .arg("--key-file")
        .arg(&run.key_file)
        .args(["--lines", &run.lines.to_string(), "--batch", "5000"])
        .args(["--timeout", &run.timeout.as_secs().to_string()])
        .args(["--fetch-wait-max-ms", &run.fetch_wait_max_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the Python pipeline")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let (mut first, mut done): (Option<Sample>, Option<(Sample, Done)>) = (None, None);
    let reading = async {
        while let Some(line) = lines.next_line().await? {
            let event: Event = serde_json::from_str(&line).with_context(|| format!("the pipeline said {line:?}"))?;
            match event.event.as_str() {
                "first" => first = Some(watched.sample()),
                "done" => done = Some((watched.sample(), serde_json::from_value(event.rest)?)),
                other => anyhow::bail!("unknown event {other:?}"),
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(run.timeout + Duration::from_secs(30), reading)
        .await
        .context("the Python pipeline did not finish")??;
    let status = child.wait().await?;
    let errors = errors.await.unwrap_or_default();
    anyhow::ensure!(status.success(), "the Python pipeline ended with {status}:\n{errors}");
    let (Some(first), Some((last, done))) = (first, done) else {
        anyhow::bail!("the Python pipeline ended without its figures:\n{errors}");
    };
    anyhow::ensure!(done.lines == run.lines, "the Python pipeline wrote {} lines, not {}", done.lines, run.lines);
    let mut cpu = first.cpu_until(&last);
    cpu.insert("python".into(), done.cpu_seconds);
    let seconds = first.seconds_until(&last);
    println!("    (the pipeline's own clock: {:.2} s)", done.seconds);
    Ok((Stage::new(done.lines, seconds, seconds, cpu), done.peak_rss_kib))
}
