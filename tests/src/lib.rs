//! A harness for end-to-end runs: a real tansu broker and a real ClickHouse
//! server on free loopback ports in a temporary directory, and the service
//! binaries as child processes that can be stopped, killed with SIGKILL and
//! restarted. Every process is killed when its guard drops, pass or fail.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub mod chaos;
use distans_runtime::config::ClickHouseSettings;
use distans_runtime::Settings;

/// The pseudonymisation key of the tests.
pub const TEST_KEY: &str = "e2e-test-key-0123456789abcdef-0123456789";
pub const DATABASE: &str = "e2e";

/// A port that was free a moment ago and that this process has not handed
/// out before. The kernel may give the same ephemeral port to two binds in
/// a row once the first listener is gone: the ingester and the detector of
/// one chaos run once got the same HTTP port, and the detector, killed and
/// restarted, never served again.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(port) {
            return port;
        }
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// How often [`poll_until`] and [`poll_until_blocking`] look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Waits for a condition: runs `check` every [`POLL_INTERVAL`] until it
/// returns `Ok`, and returns that value. An `Err` means "not yet" and says
/// why; once `timeout` has passed, the wait fails with what it waited for
/// and the last such error:
/// "timed out after 300s waiting for the second copy to be written (last:
/// distans_sink_rows_inserted_total is 2980, want at least 3000)".
pub async fn poll_until<T>(
    what: &str,
    timeout: Duration,
    check: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    poll(what, timeout, check, async || tokio::time::sleep(POLL_INTERVAL).await).await
}

/// [`poll_until`] for code outside an async runtime (starting processes):
/// the same waiting, with the thread asleep in between.
pub fn poll_until_blocking<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    // `check` and the pause are plain calls: the loop never waits on a
    // future, so `block_on` only drives it, the thread asleep in each pause.
    futures::executor::block_on(poll(what, timeout, async || check(), async || std::thread::sleep(POLL_INTERVAL)))
}

/// The loop of [`poll_until`] and [`poll_until_blocking`]: `check` until it
/// settles, `pause` in between.
async fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<T>,
    mut pause: impl AsyncFnMut(),
) -> anyhow::Result<T> {
    let deadline = Deadline::after(what, timeout);
    loop {
        if let Some(settled) = deadline.settles(check().await) {
            return settled;
        }
        pause().await;
    }
}

/// The end of a wait, and what a timeout says.
struct Deadline<'a> {
    what: &'a str,
    timeout: Duration,
    at: Instant,
}

impl Deadline<'_> {
    fn after(what: &str, timeout: Duration) -> Deadline<'_> {
        Deadline { what, timeout, at: Instant::now() + timeout }
    }

    /// What one look settles: the value when the condition holds, the
    /// timeout with the last reason it did not once the time is up, else
    /// nothing yet (`None`: look again).
    fn settles<T>(&self, looked: anyhow::Result<T>) -> Option<anyhow::Result<T>> {
        match looked {
            Ok(value) => Some(Ok(value)),
            Err(_) if Instant::now() < self.at => None,
            Err(last) => Some(Err(anyhow::anyhow!(
                "timed out after {:?} waiting for {} (last: {last:#})",
                self.timeout,
                self.what
            ))),
        }
    }
}

/// Fails, saying what it read, unless the un-labelled metric `name` on the
/// `/metrics` page at `port` is at least `at_least` (a missing one is 0).
pub fn metric_at_least(port: u16, name: &str, at_least: f64) -> anyhow::Result<()> {
    let (_, page) = http_get(port, "/metrics")?;
    let value = metric(&page, name).unwrap_or(0.0);
    anyhow::ensure!(value >= at_least, "{name} is {value}, want at least {at_least}");
    Ok(())
}

/// The directory of this build's binaries: tests run from `target/<profile>/deps`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("deps dir");
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Where deploy/local/install.sh keeps its tools and venvs: `$DISTANS_TOOLS`, else
/// `~/.cache/distans/tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("DISTANS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/distans/tools"))
}

/// The Python with chdb-core (a current ClickHouse in process), installed by
/// deploy/local/install.sh.
pub fn chdb_python() -> anyhow::Result<PathBuf> {
    require(&tools_dir().join("chdb/bin/python"), "run deploy/local/install.sh (make test does)")
}

/// Microsoft's Adaptive Cards renderer and markdown-it (npm), installed by
/// deploy/local/install.sh: the directory holding their `node_modules`.
pub fn adaptivecards_dir() -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join("adaptivecards");
    require(
        &dir.join("node_modules/adaptivecards/dist/adaptivecards.min.js"),
        "run deploy/local/install.sh (make test does)",
    )?;
    Ok(dir)
}

/// Runs headless Chromium (Debian's, installed by deploy/local/install.sh)
/// on a file with `args` (e.g. `--dump-dom`, `--screenshot=…`), in a new
/// empty profile, with no network of its own; returns its stdout.
pub fn chromium(args: &[&str], page: &Path) -> anyhow::Result<String> {
    let profile = tempfile::tempdir()?;
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run chromium (make install puts it there): {e}"))?;
    anyhow::ensure!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn require(path: &Path, hint: &str) -> anyhow::Result<PathBuf> {
    if path.exists() {
        Ok(path.to_path_buf())
    } else {
        bail!("{} not found; {hint}", path.display())
    }
}

/// A certificate authority and a server certificate it signs, made with
/// the openssl CLI in `dir`: the CA is `ca.pem`, the server's certificate
/// (for the DNS name `localhost` only, no IP address) `server.pem` with its
/// key `server.key`. Each call makes a new CA, so a second one is a wrong CA.
#[derive(Debug, Clone)]
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn generate(dir: &Path, name: &str) -> anyhow::Result<TestCa> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )?;
        let subject = format!("/CN=distans test CA {name}");
        let steps: [&[&str]; 3] = [
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"],
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"],
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"],
        ];
        for (i, step) in steps.iter().enumerate() {
            let mut command = Command::new("openssl");
            command.current_dir(&dir).args(*step).args(["-days", "2"]);
            match i {
                0 => command.args(["-subj", &subject]),
                1 => command.args(["-subj", "/CN=localhost"]),
                _ => command.args(["-extfile", "server.ext", "-out", "server.pem"]),
            };
            let output = command.output().context("cannot run openssl (Debian package openssl)")?;
            anyhow::ensure!(output.status.success(), "openssl {step:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(TestCa { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") })
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The Python with confluent-kafka and its Avro serializer, installed by
/// deploy/local/install.sh (the example producer's client library).
pub fn registry_python() -> anyhow::Result<PathBuf> {
    require(&tools_dir().join("registry-py/bin/python"), "run deploy/local/install.sh (make test does)")
}

/// The node_modules with kafkajs and @kafkajs/confluent-schema-registry,
/// installed by deploy/local/install.sh (the JavaScript example's libraries).
pub fn registry_node_modules() -> anyhow::Result<PathBuf> {
    require(&tools_dir().join("registry-js/node_modules/kafkajs"), "run deploy/local/install.sh (make test does)")?;
    Ok(tools_dir().join("registry-js/node_modules"))
}

/// Runs `command` to its end within `timeout`; its stdout, or an error
/// with its status and both outputs.
pub fn run_to_end(mut command: Command, timeout: Duration) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn()?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().map(|mut o| o.read_to_string(&mut out));
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    anyhow::ensure!(status.success(), "{command:?} ended with {status}\nstdout:\n{out}\nstderr:\n{err}");
    Ok(out)
}

/// A test CA and a server certificate it signed for 127.0.0.1 (openssl,
/// installed by deploy/local/install.sh), in `dir`: `(ca.pem, server.pem,
/// server.key)`.
pub fn test_certificates(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let openssl = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = Command::new("openssl");
        command.current_dir(dir).args(args);
        run_to_end(command, Duration::from_secs(60)).map(|_| ())
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")?;
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=distans test CA",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok((dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key")))
}

/// The schema-registry STAND-IN (`tests/registry-standin`, Python standard
/// library: no Confluent-compatible registry server installs from the
/// reachable package registries) with basic auth, its store kept in a file
/// so a restart serves the same ids.
#[derive(Debug)]
pub struct RegistryStandIn {
    pub port: u16,
    pub user: String,
    pub password: String,
    dir: PathBuf,
    /// Its certificate chain and key (PEM), when it serves https.
    tls: Option<(PathBuf, PathBuf)>,
    process: Option<Process>,
}

impl RegistryStandIn {
    pub fn start(dir: &Path, user: &str, password: &str) -> anyhow::Result<RegistryStandIn> {
        Self::start_with(dir, user, password, None)
    }

    /// As [`RegistryStandIn::start`], serving https with `certificate` and `key` (PEM files).
    pub fn start_tls(
        dir: &Path,
        user: &str,
        password: &str,
        certificate: &Path,
        key: &Path,
    ) -> anyhow::Result<RegistryStandIn> {
        Self::start_with(dir, user, password, Some((certificate.to_path_buf(), key.to_path_buf())))
    }

    fn start_with(
        dir: &Path,
        user: &str,
        password: &str,
        tls: Option<(PathBuf, PathBuf)>,
    ) -> anyhow::Result<RegistryStandIn> {
        let dir = dir.join("registry");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("password"), password)?;
        let mut registry = RegistryStandIn {
            port: free_port(),
            user: user.to_string(),
            password: password.to_string(),
            dir,
            tls,
            process: None,
        };
        registry.restart()?;
        Ok(registry)
    }

    /// Starts it (again) on the same port, with the same store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new("python3");
        command.arg(repo_root().join("tests/registry-standin/registry_standin.py"));
        command.args(["--port", &self.port.to_string(), "--user", &self.user]);
        command.arg("--password-file").arg(self.password_file());
        command.arg("--state").arg(self.dir.join("state.json"));
        if let Some((certificate, key)) = &self.tls {
            command.arg("--certfile").arg(certificate).arg("--keyfile").arg(key);
        }
        let port = self.port;
        let log = self.dir.join("registry.log");
        self.process =
            Some(Process::start_ready("registry", command, log, Duration::from_secs(30), || port_open(port))?);
        Ok(())
    }

    /// Stops it (SIGKILL); the store stays in its file.
    pub fn stop(&mut self) {
        self.process = None;
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }
}

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output appended to `log`, and returns at once.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> anyhow::Result<Process> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        command.stdout(out.try_clone()?).stderr(out).stdin(Stdio::null());
        let child = command.spawn().with_context(|| format!("cannot start {name}"))?;
        Ok(Process { name: name.to_string(), child: Some(child), log })
    }

    /// Starts `command` and waits until `ready` holds, failing at once if the
    /// process exits first.
    fn start_ready(
        name: &str,
        command: Command,
        log: PathBuf,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<Process> {
        let mut process = Process::spawn(name, command, log)?;
        poll_until_blocking(&format!("{name} to be ready"), timeout, || {
            if !process.is_running() {
                bail!("{name} exited\n{}", process.log_tail(30));
            }
            anyhow::ensure!(ready(), "{name} is not ready yet");
            Ok(())
        })?;
        Ok(process)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no chance to flush or commit anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`INT`, `TERM`) and waits up to `bound` for the exit:
    /// the exit status code and how long it took, or an error (the process
    /// is then killed when dropped).
    pub fn stop_with(&mut self, signal: &str, bound: Duration) -> anyhow::Result<(Option<i32>, Duration)> {
        let pid = self.pid().context("not started")?;
        let sent = Instant::now();
        let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        let code = self.wait_exit(bound)?;
        Ok((code, sent.elapsed()))
    }

    /// SIGTERM, then SIGKILL if still running after `grace`. Returns the exit status code, if any.
    pub fn terminate(&mut self, grace: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let exited = poll_until_blocking(&format!("{} to exit", self.name), grace, || {
            child.try_wait()?.context("still running")
        });
        if let Ok(status) = exited {
            return status.code();
        }
        let _ = child.kill();
        child.wait().ok().and_then(|s| s.code())
    }

    /// Waits up to `timeout` for the process to exit by itself: its exit
    /// status code (`None` for a signal), or an error if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let name = self.name.clone();
        let child = self.child.as_mut().context("not started")?;
        let status =
            poll_until_blocking(&format!("{name} to exit"), timeout, || child.try_wait()?.context("still running"))?;
        self.child = None;
        Ok(status.code())
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Gives tansu's SQLite file at `db` the index tansu 0.6 lacks for its
/// per-record header lookups (`deploy/local/tansu/header-index.sql`, which
/// says why), before tansu starts; idempotent.
fn index_headers(db: &Path) -> anyhow::Result<()> {
    let sql = std::fs::read(repo_root().join("deploy/local/tansu/header-index.sql"))?;
    let mut sqlite = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run sqlite3 (deploy/local/install.sh installs it)")?;
    std::io::Write::write_all(&mut sqlite.stdin.take().expect("piped stdin"), &sql)?;
    let output = sqlite.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "sqlite3 {}: {}", db.display(), String::from_utf8_lossy(&output.stderr));
    Ok(())
}

/// What the broker and ClickHouse share: the running process (`$name`,
/// logging to `$log` in the server's `dir`) kept in a `process:
/// Option<Process>` field, started by `run_process` (from the server's own
/// `restart`, on the same ports and data), and `kill` and `process`.
macro_rules! server_process {
    ($server:ty, $what:literal, $name:literal, $log:literal) => {
        impl $server {
            /// Starts `command` and waits (up to 30 s) until `ready` holds.
            fn run_process(&mut self, command: Command, ready: impl FnMut() -> bool) -> anyhow::Result<()> {
                let log = self.dir.join($log);
                self.process = Some(Process::start_ready($name, command, log, Duration::from_secs(30), ready)?);
                Ok(())
            }

            /// SIGKILL (dropping the process kills it).
            pub fn kill(&mut self) {
                self.process = None;
            }

            #[doc = concat!("The running ", $what, " process, if it runs.")]
            pub fn process(&self) -> Option<&Process> {
                self.process.as_ref()
            }
        }
    };
}

server_process!(Broker, "broker", "tansu", "tansu.log");
server_process!(ClickHouse, "server", "clickhouse", "stdout.log");

/// tansu with its SQLite storage engine.
#[derive(Debug)]
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    process: Option<Process>,
    /// With TLS: stunnel on `port` (certificate of `ca`) in front of tansu
    /// on `plain_port`, and tansu advertising `localhost:port`.
    tls: Option<(TestCa, u16)>,
    stunnel: Option<Process>,
    /// With SASL/SCRAM-SHA-256: the one user (name, password); tansu then
    /// runs with `--authentication`.
    scram: Option<(String, String)>,
}

/// The SCRAM user of [`Broker::start_tls`].
pub const SCRAM_USER: (&str, &str) = ("distans", "e2e-scram-password");

impl Broker {
    pub fn start(dir: &Path) -> anyhow::Result<Broker> {
        let dir = dir.join("tansu");
        std::fs::create_dir_all(&dir)?;
        let mut broker = Broker { port: free_port(), dir, process: None, tls: None, stunnel: None, scram: None };
        broker.restart()?;
        Ok(broker)
    }

    /// tansu behind TLS: tansu 0.6 takes `--cert`/`--key` but serves every
    /// connection in plain text (`tansu-broker` `src/broker.rs`: the
    /// `TlsAcceptor` is built and never used), so Debian's stunnel4
    /// terminates TLS on [`Broker::port`] and forwards to tansu on a
    /// loopback port of its own; tansu advertises `localhost:<port>`, so
    /// every connection a client makes goes through stunnel. Clients must
    /// authenticate with SASL/SCRAM-SHA-256 as [`SCRAM_USER`]: tansu 0.6
    /// checks SCRAM credentials against the users in its storage
    /// (`tansu-auth` `src/lib.rs`; its PLAIN takes any password), created
    /// here with `tansu user create` before `--authentication` is switched on
    /// (with it on, that command is refused too).
    pub fn start_tls(dir: &Path, ca: &TestCa) -> anyhow::Result<Broker> {
        let dir = dir.join("tansu");
        std::fs::create_dir_all(&dir)?;
        let port = free_port();
        let mut broker = Broker {
            port,
            dir: dir.clone(),
            process: None,
            tls: Some((ca.clone(), free_port())),
            stunnel: None,
            scram: None,
        };
        let (_, plain_port) = broker.tls.clone().context("tls")?;
        let config = format!(
            "foreground = yes\npid =\noutput = {log}\n[kafka]\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{plain_port}\ncert = {cert}\nkey = {key}\n",
            log = dir.join("stunnel.log").display(),
            cert = ca.cert.display(),
            key = ca.key.display(),
        );
        std::fs::write(dir.join("stunnel.conf"), config)?;
        let bin = require(Path::new("/usr/bin/stunnel4"), "run deploy/local/install.sh (make test does)")?;
        let mut command = Command::new(bin);
        command.arg(dir.join("stunnel.conf"));
        broker.stunnel = Some(Process::start_ready(
            "stunnel",
            command,
            dir.join("stunnel.stdout"),
            Duration::from_secs(30),
            || port_open(port),
        )?);
        broker.restart()?;
        let bin = require(&tools_dir().join("bin/tansu"), "run deploy/local/install.sh (make test does)")?;
        let (user, password) = SCRAM_USER;
        let created = Command::new(bin)
            .args(["user", "create", "--mechanism", "scram256", "--broker"])
            .arg(format!("tcp://127.0.0.1:{plain_port}"))
            .args([user, password])
            .output()?;
        anyhow::ensure!(created.status.success(), "tansu user create: {}", String::from_utf8_lossy(&created.stderr));
        broker.kill();
        broker.scram = Some((user.to_string(), password.to_string()));
        broker.restart()?;
        Ok(broker)
    }

    /// Starts the broker (again) on the same port and storage.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let bin = require(&tools_dir().join("bin/tansu"), "run deploy/local/install.sh (make test does)")?;
        let (listener, advertised, port) = match &self.tls {
            None => (format!("tcp://127.0.0.1:{}", self.port), format!("tcp://127.0.0.1:{}", self.port), self.port),
            Some((_, plain)) => (format!("tcp://127.0.0.1:{plain}"), format!("tcp://localhost:{}", self.port), *plain),
        };
        index_headers(&self.dir.join("tansu.db"))?;
        let mut command = Command::new(bin);
        command
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"]);
        if self.scram.is_some() {
            command.arg("--authentication");
        }
        self.run_process(command, || port_open(port))
    }

    pub fn brokers(&self) -> String {
        match &self.tls {
            None => format!("127.0.0.1:{}", self.port),
            Some(_) => format!("localhost:{}", self.port),
        }
    }

    /// The `[kafka.client]` properties a client needs to reach this broker
    /// (TLS with the test CA, SASL/SCRAM-SHA-256), as TOML lines.
    pub fn client_toml(&self) -> String {
        let mut toml = String::new();
        if let Some((ca, _)) = &self.tls {
            let protocol = if self.scram.is_some() { "sasl_ssl" } else { "ssl" };
            toml += &format!(
                "\"security.protocol\" = {protocol:?}\n\"ssl.ca.location\" = {:?}\n",
                ca.ca.display().to_string()
            );
            toml += "\"broker.address.family\" = \"v4\"\n";
        }
        if let Some((user, password)) = &self.scram {
            toml += &format!("\"sasl.mechanism\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = {user:?}\n\"sasl.password\" = {password:?}\n");
        }
        toml
    }
}

/// A ClickHouse server with its own data directory.
#[derive(Debug)]
pub struct ClickHouse {
    pub http_port: u16,
    /// The native protocol's port (what `remote()` connects to).
    pub tcp_port: u16,
    dir: PathBuf,
    process: Option<Process>,
    /// With TLS: the server's `https_port` and the CA of its certificate.
    tls: Option<(u16, TestCa)>,
}

const CONFIG_TEMPLATE: &str = include_str!("../../deploy/local/clickhouse/config.xml.in");
const USERS_TEMPLATE: &str = include_str!("../../deploy/local/clickhouse/users.xml.in");

impl ClickHouse {
    pub fn start(dir: &Path) -> anyhow::Result<ClickHouse> {
        Self::start_with(dir, None, |users| users)
    }

    /// As [`ClickHouse::start`], with the users file (deploy/local's, filled
    /// in) passed through `edit` first (a test's own quota).
    pub fn start_with_users(dir: &Path, edit: impl FnOnce(String) -> String) -> anyhow::Result<ClickHouse> {
        Self::start_with(dir, None, edit)
    }

    /// A server that also listens on an `https_port` with `ca`'s server
    /// certificate (for `localhost`); [`ClickHouse::url`] is then
    /// `https://localhost:<https_port>`.
    pub fn start_tls(dir: &Path, ca: &TestCa) -> anyhow::Result<ClickHouse> {
        Self::start_with(dir, Some(ca), |users| users)
    }

    fn start_with(dir: &Path, ca: Option<&TestCa>, edit: impl FnOnce(String) -> String) -> anyhow::Result<ClickHouse> {
        let dir = dir.join("clickhouse");
        std::fs::create_dir_all(&dir)?;
        let (http, tcp) = (free_port(), free_port());
        let fill = |template: &str| {
            template
                .replace("@DATA@", &dir.display().to_string())
                .replace("@HTTP_PORT@", &http.to_string())
                .replace("@TCP_PORT@", &tcp.to_string())
        };
        let mut config = fill(CONFIG_TEMPLATE);
        let tls = ca.map(|ca| (free_port(), ca.clone()));
        if let Some((https, ca)) = &tls {
            // ClickHouse 18.16's server TLS: https_port and the openSSL.server section.
            let server = format!(
                "    <https_port>{https}</https_port>\n    <openSSL><server>\n        \
                 <certificateFile>{}</certificateFile>\n        <privateKeyFile>{}</privateKeyFile>\n        \
                 <verificationMode>none</verificationMode>\n        <loadDefaultCAFile>false</loadDefaultCAFile>\n        \
                 <cacheSessions>true</cacheSessions>\n        <disableProtocols>sslv2,sslv3</disableProtocols>\n        \
                 <preferServerCiphers>true</preferServerCiphers>\n    </server></openSSL>\n</yandex>",
                ca.cert.display(),
                ca.key.display()
            );
            config = config.replace("</yandex>", &server);
        }
        std::fs::write(dir.join("config.xml"), config)?;
        std::fs::write(dir.join("users.xml"), edit(fill(USERS_TEMPLATE)))?;
        let mut clickhouse = ClickHouse { http_port: http, tcp_port: tcp, dir, process: None, tls };
        clickhouse.restart()?;
        Ok(clickhouse)
    }

    /// Starts the server (again) on the same ports and data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let bin = std::env::var_os("DISTANS_CLICKHOUSE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/clickhouse-server"));
        let bin = require(&bin, "run deploy/local/install.sh (make test does)")?;
        let mut command = Command::new(bin);
        command.current_dir(&self.dir).arg(format!("--config-file={}", self.dir.join("config.xml").display()));
        let port = self.http_port;
        self.run_process(command, || http_get(port, "/ping").is_ok_and(|(status, _)| status == 200))
    }

    pub fn url(&self) -> String {
        match &self.tls {
            None => format!("http://127.0.0.1:{}", self.http_port),
            Some((https, _)) => format!("https://localhost:{https}"),
        }
    }

    /// The CA file of an `https://` url ([`ClickHouse::start_tls`]), else empty.
    pub fn ca_file(&self) -> String {
        self.tls.as_ref().map(|(_, ca)| ca.ca.display().to_string()).unwrap_or_default()
    }

    /// The settings of the test database, as the `default` user.
    pub fn settings(&self) -> ClickHouseSettings {
        ClickHouseSettings {
            url: self.url(),
            ca_file: self.ca_file(),
            database: DATABASE.to_string(),
            user: "default".to_string(),
            password: distans_runtime::Secret::default(),
        }
    }

    /// A client for the test database.
    pub fn client(&self) -> distans_store::Client {
        distans_store::database(&self.settings())
    }

    /// A client for the server, no database selected.
    pub fn server_client(&self) -> distans_store::Client {
        distans_store::client(&self.settings())
    }
}

/// A minimal HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The sum of a labelled metric's series (`name{…} value` lines) in a
/// Prometheus text page; 0 when it has none.
pub fn metric_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| rest.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}

/// The value of an un-labelled metric in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A `count` column read back from ClickHouse (`SELECT count() AS count …`).
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct Count {
    pub count: u64,
}

/// A month's net amount read back from ClickHouse (`month` as text,
/// `net_amount_ore` in öre).
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct MonthNet {
    pub month: String,
    pub net_amount_ore: i64,
}

/// A test environment: broker, ClickHouse, and the settings that reach them.
#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
    pub broker: Broker,
    pub clickhouse: ClickHouse,
    pub ingester_http: u16,
    pub sink_http: u16,
    pub detector_http: u16,
    pub notifier_http: u16,
    /// Where the notifier posts, if one runs.
    pub webhook_url: Option<String>,
    /// The notifier's digest interval: short (1 s) unless a test waits
    /// across a restart.
    pub digest_interval_ms: u64,
    /// `notifier.first_start`: "all" unless a test checks the first
    /// start's summary (tests/tests/first_start.rs): the other tests
    /// publish findings before the notifier starts and count each one's
    /// message. The product's default is "summary".
    pub notifier_first_start: &'static str,
    /// Small batches by default, so that a crash lands mid-stream.
    pub sink_batch_rows: usize,
    /// The sink's byte bound on a batch; the default's 16 MiB unless set.
    pub sink_batch_bytes: Option<usize>,
    /// The detector's review of rules judged in ClickHouse; off (0) unless a
    /// test checks those rules, so the others count only streaming findings.
    pub review_interval_ms: u64,
    /// More `DISTANS__…` variables, set last: a test's own settings (they win).
    pub extra_variables: BTreeMap<String, String>,
    /// A settings file for the services and the test's clients
    /// (`--config` / `DISTANS_CONFIG`): written by [`Env::start_tls`] with
    /// the `[kafka.client]` TLS properties, which no variable can set
    /// (their names hold dots).
    pub config_file: Option<PathBuf>,
}

impl Env {
    pub fn start() -> anyhow::Result<Env> {
        let dir = tempfile::Builder::new().prefix("distans-e2e-").tempdir()?;
        let broker = Broker::start(dir.path())?;
        let clickhouse = ClickHouse::start(dir.path())?;
        Ok(Self::with(dir, broker, clickhouse))
    }

    /// As [`Env::start`], with TLS everywhere: the broker behind stunnel
    /// ([`Broker::start_tls`]) and ClickHouse on its `https_port`
    /// ([`ClickHouse::start_tls`]), both with a new [`TestCa`]'s certificate
    /// (returned), and a settings file ([`Env::config_file`]) with which
    /// every client trusts that CA.
    pub fn start_tls() -> anyhow::Result<(Env, TestCa)> {
        let dir = tempfile::Builder::new().prefix("distans-e2e-tls-").tempdir()?;
        let ca = TestCa::generate(dir.path(), "ca")?;
        let broker = Broker::start_tls(dir.path(), &ca)?;
        let clickhouse = ClickHouse::start_tls(dir.path(), &ca)?;
        let mut env = Self::with(dir, broker, clickhouse);
        env.write_config("")?;
        Ok((env, ca))
    }

    /// Writes [`Env::config_file`]: the broker's `[kafka.client]`
    /// properties, then `kafka_client` (TOML lines that replace some).
    pub fn write_config(&mut self, kafka_client: &str) -> anyhow::Result<PathBuf> {
        let mut properties: BTreeMap<String, String> = BTreeMap::new();
        for line in self.broker.client_toml().lines().chain(kafka_client.lines()) {
            if let Some((key, value)) = line.split_once(" = ") {
                properties.insert(key.to_string(), value.to_string());
            }
        }
        let lines: Vec<String> = properties.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let path = self.dir.path().join("distans.toml");
        std::fs::write(&path, format!("[kafka.client]\n{}\n", lines.join("\n")))?;
        self.config_file = Some(path.clone());
        Ok(path)
    }

    fn with(dir: tempfile::TempDir, broker: Broker, clickhouse: ClickHouse) -> Env {
        let (ingester_http, sink_http, detector_http, notifier_http) =
            (free_port(), free_port(), free_port(), free_port());
        Env {
            broker,
            clickhouse,
            ingester_http,
            sink_http,
            detector_http,
            notifier_http,
            webhook_url: None,
            digest_interval_ms: 1000,
            notifier_first_start: "all",
            sink_batch_rows: 400,
            sink_batch_bytes: None,
            review_interval_ms: 0,
            extra_variables: BTreeMap::new(),
            config_file: None,
            dir,
        }
    }

    /// The `DISTANS__…` variables for the services and the CLI code.
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut variables = [
            ("DISTANS__KAFKA__BROKERS", self.broker.brokers()),
            ("DISTANS__CLICKHOUSE__URL", self.clickhouse.url()),
            ("DISTANS__CLICKHOUSE__CA_FILE", self.clickhouse.ca_file()),
            ("DISTANS__CLICKHOUSE__DATABASE", DATABASE.to_string()),
            ("DISTANS__PSEUDONYM__KEY", TEST_KEY.to_string()),
            ("DISTANS__INGESTER__HTTP_LISTEN", format!("127.0.0.1:{}", self.ingester_http)),
            ("DISTANS__SINK__HTTP_LISTEN", format!("127.0.0.1:{}", self.sink_http)),
            ("DISTANS__DETECTOR__HTTP_LISTEN", format!("127.0.0.1:{}", self.detector_http)),
            ("DISTANS__SINK__BATCH_MAX_ROWS", self.sink_batch_rows.to_string()),
            ("DISTANS__SINK__BATCH_MAX_WAIT_MS", "200".to_string()),
            ("DISTANS__SINK__RETRY_MAX_MS", "1000".to_string()),
            ("DISTANS__DETECTOR__REVIEW_INTERVAL_MS", self.review_interval_ms.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<BTreeMap<String, String>>();
        // The generated digital provider whose group runs a generated health centre.
        variables.insert("DISTANS__REPORTING__PROVIDER_GROUPS__5591000012".into(), "Nordvård".into());
        // The generated home regions, for `patient_not_resident`.
        for county in ["23", "19"] {
            let home = distans_synth::profile::region_org_number(county);
            variables.insert(format!("DISTANS__DETECTOR__RULES__HOME_REGIONS__{home}"), county.to_string());
        }
        if let Some(bytes) = self.sink_batch_bytes {
            variables.insert("DISTANS__SINK__BATCH_MAX_BYTES".into(), bytes.to_string());
        }
        variables.insert("DISTANS__NOTIFIER__HTTP_LISTEN".into(), format!("127.0.0.1:{}", self.notifier_http));
        if let Some(url) = &self.webhook_url {
            variables.insert("DISTANS__NOTIFIER__WEBHOOK_URL".into(), url.clone());
            variables.insert("DISTANS__NOTIFIER__DIGEST_INTERVAL_MS".into(), self.digest_interval_ms.to_string());
            variables.insert("DISTANS__NOTIFIER__FIRST_START".into(), self.notifier_first_start.to_string());
        }
        variables.extend(self.extra_variables.clone());
        variables
    }

    pub fn settings(&self) -> Settings {
        Settings::load_with_env(self.config_file.as_deref(), Some(self.variables())).expect("test settings are valid")
    }

    /// Starts `distans-<service>` from this build, logging into the temp
    /// dir, and waits until it is ready (`/readyz`: partitions assigned).
    pub fn spawn(&self, service: &str) -> anyhow::Result<Process> {
        self.spawn_on(service, self.http_port(service), "/readyz")
    }

    /// As [`Env::spawn`], but waits only until it is alive (`/livez`): a
    /// consumer that may get no partition.
    pub fn spawn_alive(&self, service: &str) -> anyhow::Result<Process> {
        self.spawn_on(service, self.http_port(service), "/livez")
    }

    /// The HTTP port of `service`.
    pub fn http_port(&self, service: &str) -> u16 {
        match service {
            "ingester" => self.ingester_http,
            "detector" => self.detector_http,
            "notifier" => self.notifier_http,
            _ => self.sink_http,
        }
    }

    /// Starts `distans-<service>` serving HTTP on `port` (a second instance
    /// of a service), waiting until `probe` answers 200.
    pub fn spawn_on(&self, service: &str, port: u16, probe: &str) -> anyhow::Result<Process> {
        let mut command = self.command(service)?;
        let listen = format!("DISTANS__{}__HTTP_LISTEN", service.to_uppercase());
        command.env(listen, format!("127.0.0.1:{port}"));
        let log = self.dir.path().join(format!("{service}-{port}.log"));
        let process = Process::start_ready(service, command, log, Duration::from_secs(60), || {
            http_get(port, probe).is_ok_and(|(status, _)| status == 200)
        })?;
        Ok(process)
    }

    /// Starts `distans-<service>` and returns at once, ready or not (a
    /// service expected to stop by itself: see [`Process::wait_exit`]).
    pub fn spawn_unchecked(&self, service: &str) -> anyhow::Result<Process> {
        let port = self.http_port(service);
        let mut command = self.command(service)?;
        command.env(format!("DISTANS__{}__HTTP_LISTEN", service.to_uppercase()), format!("127.0.0.1:{port}"));
        Process::spawn(service, command, self.dir.path().join(format!("{service}-{port}.log")))
    }
}

impl Env {
    /// As [`Env::start`], with the production defaults (`defaults.toml`)
    /// where the tests shorten them (the sink's batch bounds, wait and retry
    /// ceiling, the detector's review interval): what the benches measure.
    /// Then every `DISTANS__…` variable of the bench's own environment (a
    /// setting to try) goes to every service.
    pub fn start_for_bench() -> anyhow::Result<Env> {
        let defaults = Settings::load_with_env(None, Some(BTreeMap::new()))?;
        let mut env = Env::start()?;
        env.sink_batch_rows = defaults.sink.batch_max_rows;
        env.sink_batch_bytes = Some(defaults.sink.batch_max_bytes);
        env.review_interval_ms = defaults.detector.review_interval_ms;
        for (key, value) in [
            ("DISTANS__SINK__BATCH_MAX_WAIT_MS", defaults.sink.batch_max_wait_ms),
            ("DISTANS__SINK__RETRY_MAX_MS", defaults.sink.retry_max_ms),
        ] {
            env.extra_variables.insert(key.into(), value.to_string());
        }
        env.extra_variables.extend(settings_tried());
        Ok(env)
    }
}

/// The `DISTANS__SECTION__KEY` variables of this process's environment: the
/// settings a bench tries, which [`Env::start_for_bench`] gives every service.
pub fn settings_tried() -> Vec<(String, String)> {
    std::env::vars().filter(|(key, _)| key.starts_with("DISTANS__")).collect()
}

/// A bench's command-line argument at `position` (1 for the first),
/// parsed; `default` where the command line has none.
pub fn arg<T>(position: usize, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(std::env::args().nth(position).map(|a| a.parse()).transpose()?.unwrap_or(default))
}

/// The ingester's validation and enrichment in process, as the benches
/// prepare their input: the tests' key ([`TEST_KEY`]) and the tariffs and
/// validation of `settings`; each line ingested at 0 ms from topic "bench",
/// partition 0, offset 0.
#[derive(Debug)]
pub struct Enrichment<'a> {
    tariffs: &'a distans_domain::Tariffs,
    pseudonymiser: distans_domain::Pseudonymiser,
    validation: distans_domain::Validation,
}

impl<'a> Enrichment<'a> {
    pub fn new(settings: &'a Settings) -> anyhow::Result<Enrichment<'a>> {
        Ok(Enrichment {
            tariffs: &settings.tariffs,
            pseudonymiser: distans_domain::Pseudonymiser::new(TEST_KEY.as_bytes())?,
            validation: settings.validation()?,
        })
    }

    /// The enriched line the ingester would write for `line`, or `None`
    /// where it would refuse the line (a dead letter).
    pub fn enrich(&self, line: &distans_domain::InvoiceLine) -> Option<distans_domain::EnrichedLine> {
        let ctx = distans_domain::validate::Context {
            tariffs: self.tariffs,
            pseudonymiser: &self.pseudonymiser,
            validation: &self.validation,
            ingested_at_ms: 0,
        };
        let source = distans_domain::enrich::Provenance { topic: "bench".into(), partition: 0, offset: 0 };
        distans_domain::validate_and_enrich(line, source, ctx).ok()
    }
}

/// An environment with services running, as most end-to-end tests begin:
/// the [`Env`], its settings, a client for the test database, and the
/// services in the order [`Env::run`] was given them. Dropping the `Env`
/// stops the broker and ClickHouse, dropping a process kills it: bind each
/// that must keep running (`_name` for one the test does not touch, never
/// a bare `_`, which drops it at once).
#[derive(Debug)]
pub struct Running<const N: usize> {
    pub env: Env,
    pub settings: Settings,
    pub client: distans_store::Client,
    pub services: [Process; N],
}

impl Env {
    /// Starts `services` in order, each waited for as [`Env::spawn`] does
    /// (`/readyz`), with the settings and a database client beside them:
    /// `let Running { env, settings, client, services: [_ingester, _sink] } =
    /// Env::start()?.run(["ingester", "sink"])?;`.
    pub fn run<const N: usize>(self, services: [&str; N]) -> anyhow::Result<Running<N>> {
        let settings = self.settings();
        let client = self.clickhouse.client();
        let mut started = Vec::with_capacity(N);
        for service in services {
            started.push(self.spawn(service)?);
        }
        let services = started.try_into().unwrap_or_else(|_| unreachable!("one process per service"));
        Ok(Running { env: self, settings, client, services })
    }

    /// Points the notifier at a webhook on a free loopback port
    /// (`http://127.0.0.1:<port>/hook`, nobody listening yet: see
    /// [`serve_webhook`]) and returns the port.
    pub fn webhook_port(&mut self) -> u16 {
        let port = free_port();
        self.webhook_url = Some(format!("http://127.0.0.1:{port}/hook"));
        port
    }

    /// [`Env::webhook_port`] with a [`webhook`] listening on it at once,
    /// answering `statuses` in turn: the bodies it accepts arrive on the
    /// returned receiver.
    pub async fn start_webhook(
        &mut self,
        statuses: Vec<u16>,
    ) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<String>> {
        serve_webhook(self.webhook_port(), statuses).await
    }
}

/// A [`webhook`] on loopback `port`, running in a task: the bodies it
/// accepts arrive on the returned receiver.
pub async fn serve_webhook(
    port: u16,
    statuses: Vec<u16>,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<String>> {
    let (bodies, received) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(webhook(listener, statuses, bodies));
    Ok(received)
}

impl Env {
    /// Publishes `findings` to the alerts topic as the detector does (Avro,
    /// keyed by finding id), creating the topic first; each acknowledged.
    pub async fn publish_findings(&self, findings: &[distans_wire::TimedFinding]) -> anyhow::Result<()> {
        let settings = self.settings();
        distans_runtime::kafka::ensure_topics(&settings.kafka, &[&settings.topics.alerts]).await?;
        let producer = distans_runtime::kafka::producer(&settings.kafka)?;
        let codec = distans_wire::Codec::embedded();
        for finding in findings {
            let payload = codec.encode_finding(finding)?;
            let record = rdkafka::producer::FutureRecord::to(&settings.topics.alerts)
                .key(finding.finding.finding_id.as_bytes())
                .payload(&payload);
            producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
        }
        Ok(())
    }
}

impl Env {
    /// `distans-<service>` from this build with this environment's
    /// variables and nothing else, not started (a test that expects it to
    /// refuse to start runs it to its end), with [`Env::config_file`] as
    /// `DISTANS_CONFIG`.
    pub fn command(&self, service: &str) -> anyhow::Result<Command> {
        let bin = require(
            &bin_dir().join(format!("distans-{service}")),
            "run `cargo build --workspace --bins` first (make test does)",
        )?;
        let mut command = Command::new(bin);
        command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("RUST_LOG", "info");
        for (key, value) in self.variables() {
            command.env(key, value);
        }
        if let Some(config) = &self.config_file {
            command.env("DISTANS_CONFIG", config);
        }
        Ok(command)
    }
}

pub use distans_store::queries::Totals;

/// Inserts `lines` into `invoice_line_versions` in one INSERT, as rows
/// inserted at `inserted_at_s` (Unix seconds), as the sink writes them.
pub async fn insert_lines(
    client: &distans_store::Client,
    lines: &[distans_domain::EnrichedLine],
    inserted_at_s: u32,
) -> anyhow::Result<()> {
    use distans_store::rows::LineRow;
    let rows = lines.iter().map(|line| LineRow::from_line(line, inserted_at_s)).collect::<Result<Vec<_>, _>>()?;
    Ok(distans_store::insert_rows::<LineRow>(client, "invoice_line_versions", &rows).await?)
}

/// What ClickHouse holds, with duplicates collapsed.
pub async fn totals(client: &distans_store::Client) -> anyhow::Result<Totals> {
    Ok(distans_store::queries::totals(client).await?)
}

/// Rows physically stored, duplicates included.
pub async fn physical_rows(client: &distans_store::Client) -> anyhow::Result<u64> {
    Ok(distans_store::queries::stored_line_rows(client).await?)
}

/// Findings in `anomalies` per rule, duplicates collapsed.
pub async fn findings_by_rule(client: &distans_store::Client) -> anyhow::Result<BTreeMap<String, usize>> {
    let rows = distans_store::queries::findings_by_rule(client, None).await?;
    Ok(rows.into_iter().map(|r| (r.rule_id, r.findings as usize)).collect())
}

/// Waits until ClickHouse holds `lines` distinct lines.
pub async fn wait_for_lines(client: &distans_store::Client, lines: u64, timeout: Duration) -> anyhow::Result<Totals> {
    poll_until(&format!("ClickHouse to hold {lines} lines"), timeout, async || {
        let current = totals(client).await?;
        anyhow::ensure!(current.lines >= lines, "ClickHouse holds {current:?}");
        Ok(current)
    })
    .await
}

/// Waits until the aggregates the reports read are fresh.
pub async fn wait_for_fresh_aggregates(
    client: &distans_store::Client,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    poll_until(what, timeout, async || {
        anyhow::ensure!(distans_store::queries::aggregates_fresh(client).await?, "the aggregates are not fresh yet");
        Ok(())
    })
    .await
}

/// A webhook on loopback for the notifier: answers `statuses` in turn (then
/// 200; a 429 or 503 with `Retry-After: 2`) and passes each accepted body on.
pub async fn webhook(
    listener: tokio::net::TcpListener,
    statuses: Vec<u16>,
    bodies: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let (timed, mut received) = tokio::sync::mpsc::unbounded_channel();
    let forward = async move {
        while let Some((_, body)) = received.recv().await {
            if bodies.send(body).is_err() {
                return;
            }
        }
    };
    tokio::join!(webhook_timed(listener, statuses, timed), forward);
}

/// As [`webhook`], passing on with each accepted body the time its request
/// had arrived whole.
pub async fn webhook_timed(
    listener: tokio::net::TcpListener,
    mut statuses: Vec<u16>,
    bodies: tokio::sync::mpsc::UnboundedSender<(std::time::Instant, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    statuses.reverse();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        let body = loop {
            let Ok(n) = stream.read(&mut buffer).await else { break None };
            if n == 0 {
                break None;
            }
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break Some(body.to_string());
                }
            }
        };
        let arrived = std::time::Instant::now();
        let status = statuses.pop().unwrap_or(200);
        let retry_after = if [429, 503].contains(&status) { "retry-after: 2\r\n" } else { "" };
        let response = format!("HTTP/1.1 {status} X\r\n{retry_after}content-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        if let (Some(body), 200) = (body, status) {
            let _ = bodies.send((arrived, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_returns_what_it_waited_for_or_what_it_last_saw() {
        let mut looks = 0;
        let looked = poll_until("a third look", Duration::from_secs(5), async || {
            looks += 1;
            anyhow::ensure!(looks == 3, "look {looks}");
            Ok(looks)
        })
        .await
        .expect("in time");
        assert_eq!(looked, 3);

        let mut looks = 0;
        let timed_out = poll_until::<()>("a fourth look", Duration::from_millis(300), async || {
            looks += 1;
            bail!("look {looks}")
        })
        .await
        .expect_err("times out");
        assert_eq!(
            timed_out.to_string(),
            format!("timed out after 300ms waiting for a fourth look (last: look {looks})")
        );
        assert!(looks >= 2, "looked again: {looks}");
    }

    #[test]
    fn a_blocking_wait_says_the_same() {
        let timed_out =
            poll_until_blocking::<()>("nothing", Duration::ZERO, || bail!("not yet")).expect_err("times out");
        assert_eq!(timed_out.to_string(), "timed out after 0ns waiting for nothing (last: not yet)");
        assert_eq!(poll_until_blocking("at once", Duration::ZERO, || Ok(7)).expect("at once"), 7);
    }
}
