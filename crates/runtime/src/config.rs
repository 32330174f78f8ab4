//! Layered configuration: built-in defaults, then an optional file, then
//! `DISTANS__SECTION__KEY` environment variables. Unknown keys and invalid
//! values are all reported at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use distans_domain::Tariffs;
use serde::Deserialize;

use crate::secret::Secret;

const DEFAULTS: &str = include_str!("defaults.toml");
const ENV_PREFIX: &str = "DISTANS";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub ingester: IngesterSettings,
    pub sink: SinkSettings,
    pub detector: DetectorSettings,
    pub notifier: NotifierSettings,
    pub clickhouse: ClickHouseSettings,
    pub pseudonym: PseudonymSettings,
    pub log: LogSettings,
    pub tariffs: Tariffs,
    pub reporting: ReportingSettings,
    pub validation: distans_domain::ValidationSettings,
}

/// What reports need beyond the lines: how cost is allocated.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportingSettings {
    pub cost_allocation: Vec<CostAllocation>,
    /// Provider organisation number -> provider group, for the digital
    /// providers whose group also runs health centres (compared with the
    /// listing register's `provider_group`).
    #[serde(default)]
    pub provider_groups: BTreeMap<String, String>,
    /// A provider is judged against its peers (per visit month and
    /// profession) only with at least this many contacts …
    pub peer_min_contacts: u32,
    /// … and only when at least this many providers (itself included) have.
    pub peer_min_providers: u32,
    /// Robust z-score (distance from the peers' median in scaled MADs) above
    /// which a provider is far from its peers.
    pub peer_threshold: f64,
}

/// The share of a listed patient's cost that the listing health centre
/// carries in a home region from a date; the region carries the rest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CostAllocation {
    /// SCB county code of the home region.
    pub county: String,
    pub health_centre_percent: u8,
    pub valid_from: chrono::NaiveDate,
    #[serde(default)]
    pub valid_to: Option<chrono::NaiveDate>,
}

impl ReportingSettings {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.peer_min_providers < 3 || self.peer_threshold.is_nan() || self.peer_threshold <= 0.0 {
            p.push("reporting.peer_min_providers must be at least 3 and peer_threshold positive".to_string());
        }
        for (i, a) in self.cost_allocation.iter().enumerate() {
            if a.health_centre_percent > 100 {
                p.push(format!("reporting.cost_allocation[{i}]: health_centre_percent above 100"));
            }
            if a.valid_to.is_some_and(|to| to < a.valid_from) {
                p.push(format!("reporting.cost_allocation[{i}]: valid_to before valid_from"));
            }
            let overlapping = self.cost_allocation[..i].iter().any(|b| {
                b.county == a.county
                    && b.valid_to.is_none_or(|to| to >= a.valid_from)
                    && a.valid_to.is_none_or(|to| to >= b.valid_from)
            });
            if overlapping {
                p.push(format!("reporting.cost_allocation[{i}]: overlaps another entry for county {}", a.county));
            }
        }
        p
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// The largest record distans produces, in bytes (key, value and
    /// framing): the producers' `message.max.bytes`, the `max.message.bytes`
    /// of the topics distans creates, and what the consumers can fetch.
    pub max_record_bytes: usize,
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// A consumer is not ready, and its stall watchdog re-joins the group,
    /// after this long with no partition assigned, or with records to read
    /// on a partition and none read.
    pub stall_timeout_ms: u64,
    /// Where a consumer starts when its committed offset is out of range
    /// (below the log start after retention, or past the end after the
    /// topic was recreated): `earliest`, `latest` or `error`.
    pub offset_reset: String,
    /// The same per consumer group, overriding `offset_reset`.
    #[serde(default)]
    pub offset_reset_by_group: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// The `auto.offset.reset` policy of the consumers in `group_id`.
    pub fn offset_reset_of(&self, group_id: &str) -> &str {
        self.offset_reset_by_group.get(group_id).unwrap_or(&self.offset_reset)
    }

    pub fn stall_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.stall_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Topics {
    pub input: String,
    pub valid: String,
    pub dead_letter: String,
    pub alerts: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngesterSettings {
    pub group_id: String,
    pub max_in_flight: usize,
    pub http_listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SinkSettings {
    pub group_id: String,
    pub batch_max_rows: usize,
    /// Bytes of records (keys and payloads) that close a batch.
    pub batch_max_bytes: usize,
    pub batch_max_wait_ms: u64,
    pub http_listen: SocketAddr,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub anomalies_group_id: String,
    /// How often the sink rebuilds the aggregate months that changed.
    pub aggregate_refresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSettings {
    pub group_id: String,
    pub http_listen: SocketAddr,
    /// How often the review publishes what ClickHouse judges (providers far
    /// from their peers, same-group listings); 0 switches it off.
    pub review_interval_ms: u64,
    pub rules: distans_domain::rules::RuleSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    pub group_id: String,
    pub http_listen: SocketAddr,
    /// Slack's and Teams' incoming-webhook URLs carry their secret in the path.
    pub webhook_url: Secret,
    pub format: String,
    pub immediate_severity: String,
    pub digest_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClickHouseSettings {
    /// `http://host:8123` or `https://host:8443` (the server's `https_port`).
    pub url: String,
    /// A PEM file of CA certificates trusted for an `https://` url, besides
    /// the system's (`/etc/ssl/certs`, or `SSL_CERT_FILE`); empty: the
    /// system's only.
    #[serde(default)]
    pub ca_file: String,
    pub database: String,
    pub user: String,
    pub password: Secret,
}

impl ClickHouseSettings {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            p.push(format!("clickhouse.url must start with http:// or https://, not {:?}", self.url));
        }
        if !self.ca_file.is_empty() {
            match std::fs::read_to_string(&self.ca_file) {
                Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
                Ok(_) => p.push(format!("clickhouse.ca_file {:?} holds no PEM certificate", self.ca_file)),
                Err(error) => p.push(format!("clickhouse.ca_file {:?} cannot be read: {error}", self.ca_file)),
            }
        }
        p
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PseudonymSettings {
    pub key: Secret,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub filter: String,
}

/// Every problem found while loading, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Settings {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, None)
    }

    /// As [`Settings::load`], with the environment given as a map (for tests).
    pub fn load_with_env(file: Option<&Path>, env: Option<BTreeMap<String, String>>) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).required(true));
        }
        let mut environment =
            Environment::with_prefix(ENV_PREFIX).prefix_separator("__").separator("__").try_parsing(true);
        if let Some(env) = env {
            environment = environment.source(Some(env.into_iter().collect()));
        }
        builder = builder.add_source(environment);

        let one = |e: config::ConfigError| ConfigError { problems: vec![e.to_string()] };
        let tree: config::Value = builder.build().map_err(one)?.try_deserialize().map_err(one)?;

        let mut problems = Vec::new();
        let settings: Result<Settings, _> = serde_ignored::deserialize(tree, |path| {
            problems.push(format!("unknown key `{path}`"));
        });
        let settings = match settings {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        if let Some(s) = &settings {
            problems.extend(s.problems());
        }
        match settings {
            Some(s) if problems.is_empty() => Ok(s),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Value checks that types alone cannot make.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.kafka.brokers.trim().is_empty() {
            p.push("kafka.brokers is empty".to_string());
        }
        if self.kafka.partitions < 1 {
            p.push("kafka.partitions must be at least 1".to_string());
        }
        let policies = std::iter::once(("kafka.offset_reset".to_string(), &self.kafka.offset_reset)).chain(
            self.kafka.offset_reset_by_group.iter().map(|(g, v)| (format!("kafka.offset_reset_by_group.{g}"), v)),
        );
        for (key, policy) in policies {
            if !["earliest", "latest", "error"].contains(&policy.as_str()) {
                p.push(format!("{key} must be earliest, latest or error, not {policy:?}"));
            }
        }
        if self.kafka.stall_timeout_ms < 1000 {
            p.push("kafka.stall_timeout_ms must be at least 1000".to_string());
        }
        if self.ingester.max_in_flight == 0 {
            p.push("ingester.max_in_flight must be at least 1".to_string());
        }
        if self.sink.batch_max_rows == 0 {
            p.push("sink.batch_max_rows must be at least 1".to_string());
        }
        if self.sink.batch_max_bytes == 0 {
            p.push("sink.batch_max_bytes must be at least 1".to_string());
        }
        if self.sink.retry_initial_ms == 0 || self.sink.retry_max_ms < self.sink.retry_initial_ms {
            p.push("sink.retry_initial_ms must be positive and at most sink.retry_max_ms".to_string());
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            p.push(format!("log.format must be text or json, not {:?}", self.log.format));
        }
        let topics = [&self.topics.input, &self.topics.valid, &self.topics.dead_letter, &self.topics.alerts];
        let distinct: std::collections::BTreeSet<&String> = topics.iter().copied().collect();
        if topics.iter().any(|t| t.is_empty()) || distinct.len() != topics.len() {
            p.push("topics.input, valid, dead_letter and alerts must be distinct and non-empty".to_string());
        }
        p.extend(self.detector.rules.problems());
        if !["generic", "teams", "slack"].contains(&self.notifier.format.as_str()) {
            p.push(format!("notifier.format must be generic, teams or slack, not {:?}", self.notifier.format));
        }
        if distans_domain::rules::Severity::parse(&self.notifier.immediate_severity).is_none() {
            p.push("notifier.immediate_severity must be low, medium or high".to_string());
        }
        if self.notifier.digest_interval_ms == 0 {
            p.push("notifier.digest_interval_ms must be positive".to_string());
        }
        p.extend(self.tariffs.problems().into_iter().map(|m| format!("tariffs: {m}")));
        p.extend(self.reporting.problems());
        p.extend(self.validation.problems());
        p.extend(self.clickhouse.problems());
        if self.sink.aggregate_refresh_ms == 0 {
            p.push("sink.aggregate_refresh_ms must be positive".to_string());
        }
        p
    }

    /// The validation settings, compiled (checked at load, so only a
    /// settings value built by hand can fail here).
    pub fn validation(&self) -> Result<distans_domain::Validation, ConfigError> {
        distans_domain::Validation::new(&self.validation).map_err(|problems| ConfigError { problems })
    }

    /// The pseudonymisation key; an error unless it is set and long enough.
    pub fn pseudonymiser(&self) -> Result<distans_domain::Pseudonymiser, ConfigError> {
        distans_domain::Pseudonymiser::new(self.pseudonym.key.expose().as_bytes()).map_err(|e| ConfigError {
            problems: vec![format!(
                "pseudonym.key: {e} (set DISTANS__PSEUDONYM__KEY or pseudonym.key in the config file)"
            )],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.topics.input, "invoice-lines");
        assert_eq!(s.tariffs.class_of("LK"), Some(distans_domain::TariffClass::Physician));
        assert_eq!(s.tariffs.class_of("HK"), Some(distans_domain::TariffClass::Psychologist));
        let on = "2025-06-01".parse().expect("date");
        assert_eq!(s.tariffs.price(distans_domain::TariffClass::Physician, on), Some(50_000));
        assert!(s.pseudonymiser().is_err(), "no key by default");
        let validation = s.validation().expect("default validation compiles");
        let stockholm = validation.patient_ids().parse("992025123456", &["2321000016"]).expect("Stockholm's format");
        assert_eq!(stockholm.kind(), distans_domain::PatientIdKind::Reserve);
        assert!(validation.patient_ids().parse("00252040AB14", &["2321000198"]).is_ok(), "NRID in every region");
    }

    #[test]
    fn file_then_env_override() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(file, "[kafka]\nbrokers = \"file:1\"\n[sink]\nbatch_max_rows = 10").expect("write");
        let s = Settings::load_with_env(
            Some(file.path()),
            env(&[
                ("DISTANS__KAFKA__BROKERS", "env:2"),
                ("DISTANS__PSEUDONYM__KEY", "k".repeat(32).as_str()),
                ("DISTANS__DETECTOR__RULES__HOME_REGIONS__2321000230", "23"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.kafka.brokers, "env:2");
        let home = &s.detector.rules.home_regions;
        assert_eq!(home.get("2321000230").map(String::as_str), Some("23"), "{home:?}");
        assert_eq!(s.detector.rules.needs_assessment_from, "2025-10-01".parse().ok());
        assert_eq!(s.sink.batch_max_rows, 10);
        assert!(s.pseudonymiser().is_ok());
        assert!(!format!("{:?}", s.pseudonym).contains("kkkk"));
    }

    #[test]
    fn the_clickhouse_url_and_ca_file_are_checked_at_load() {
        let mut pem = tempfile::Builder::new().suffix(".pem").tempfile().expect("temp file");
        writeln!(pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").expect("write");
        let pem_path = pem.path().display().to_string();
        let loaded = |url: &str, ca_file: &str| {
            Settings::load_with_env(
                None,
                env(&[("DISTANS__CLICKHOUSE__URL", url), ("DISTANS__CLICKHOUSE__CA_FILE", ca_file)]),
            )
        };
        let s = loaded("https://ch.region.se:8443", &pem_path).expect("https with a CA file");
        assert_eq!(s.clickhouse.ca_file, pem_path);
        assert!(loaded("http://127.0.0.1:8123", "").is_ok(), "no CA file: the system's roots");
        let cases = [
            ("tcp://ch:9000", "", "clickhouse.url must start with http:// or https://"),
            ("https://ch:8443", "/no/such/ca.pem", "clickhouse.ca_file \"/no/such/ca.pem\" cannot be read"),
            ("https://ch:8443", "Cargo.toml", "holds no PEM certificate"),
        ];
        for (url, ca_file, problem) in cases {
            let text = loaded(url, ca_file).expect_err(problem).to_string();
            assert!(text.contains(problem), "{problem} missing from:\n{text}");
        }
    }

    #[test]
    fn all_problems_reported_at_once() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(file, "[kafka]\nbrokerz = \"x\"\npartitions = 0\n[sink]\nbatch_max_rows = 0\n[log]\nformat = \"xml\"")
            .expect("write");
        let err = Settings::load_with_env(Some(file.path()), env(&[("DISTANS__INGESTER__COLOUR", "red")]))
            .expect_err("invalid");
        let text = err.to_string();
        for needle in ["kafka.brokerz", "ingester.colour", "kafka.partitions", "sink.batch_max_rows", "log.format"] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(err.problems.len(), 5, "{text}");
    }

    /// Bad patterns and organisation numbers are value problems: reported
    /// with every other one. An unknown key or a bad mode stops the reading
    /// (`deny_unknown_fields`, a type error) and is reported by its path.
    #[test]
    fn validation_problems_are_reported_with_the_others() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(
            file,
            "[kafka]\npartitions = 0\n[validation.invoice_id_patterns]\n2321000115 = \"ZVF([\"\n\
             [[validation.reservnummer]]\nregion = \"X\"\norg_numbers = [\"1\"]\npattern = \"R[0-9]+\""
        )
        .expect("write");
        let err = Settings::load_with_env(Some(file.path()), env(&[])).expect_err("invalid");
        let text = err.to_string();
        for needle in ["kafka.partitions", "invoice_id_patterns.2321000115", "validation.reservnummer[0]"] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(err.problems.len(), 3, "{text}");

        for (key, value) in
            [("DISTANS__VALIDATION__CHECKS__IMPLAUSIBLE_AGE", "maybe"), ("DISTANS__VALIDATION__COLOUR", "1")]
        {
            let err = Settings::load_with_env(None, env(&[(key, value)])).expect_err("invalid");
            let text = err.to_string();
            let path = key.trim_start_matches("DISTANS__").to_lowercase().replace("__", ".");
            let last = path.rsplit('.').next().unwrap_or_default().to_string();
            assert!(text.contains(&last), "{key} missing from:\n{text}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/distans.toml")), env(&[])).expect_err("missing");
        assert_eq!(err.problems.len(), 1);
    }
}
