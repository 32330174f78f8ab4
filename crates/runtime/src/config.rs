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

mod sources;
pub use sources::{is_secret_property, is_secret_setting, FILE_SUFFIX, SECRET_SETTINGS};

const DEFAULTS: &str = include_str!("defaults.toml");
const ENV_PREFIX: &str = "DISTANS";

/// How many times [`Settings::load`] reads the settings again after a value
/// of the wrong type: the most type errors one run reports.
const MAX_READS: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub ingester: IngesterSettings,
    pub sink: SinkSettings,
    pub detector: DetectorSettings,
    pub notifier: NotifierSettings,
    pub clickhouse: ClickHouseSettings,
    pub schema_registry: SchemaRegistrySettings,
    pub pseudonym: PseudonymSettings,
    pub log: LogSettings,
    pub tariffs: Tariffs,
    pub reporting: ReportingSettings,
    pub validation: distans_domain::ValidationSettings,
}

/// What reports need beyond the lines: how cost is allocated.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportingSettings {
    /// The language of `distans report` and the Grafana dashboard: "sv" or "en".
    pub language: String,
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
    /// Extra librdkafka properties, by property name (see
    /// [`sources`](self) for how they are spelled in the environment).
    #[serde(default)]
    pub client: ClientProperties,
    /// A consumer is not ready, and its stall watchdog re-joins the group,
    /// after this long with no partition assigned, or with records to read
    /// on a partition and none read.
    pub stall_timeout_ms: u64,
    /// The consumers' `fetch.wait.max.ms`: how long, in milliseconds, a
    /// broker may hold a fetch that finds no new record. Apache Kafka
    /// answers once a record arrives; tansu 0.6 holds every fetch this long
    /// (half of it from 500 up), so there each hop of the pipeline adds it.
    pub fetch_wait_max_ms: u64,
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

/// librdkafka properties given by the operator. `Debug` prints the value of
/// a property that holds a credential ([`is_secret_property`]) as
/// `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientProperties(BTreeMap<String, String>);

impl ClientProperties {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }
}

impl<'a> IntoIterator for &'a ClientProperties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = Secret::default();
        let mut map = f.debug_map();
        for (name, value) in &self.0 {
            let value: &dyn std::fmt::Debug = if is_secret_property(name) { &redacted } else { value };
            map.entry(name, value);
        }
        map.finish()
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
    /// ClickHouse `max_memory_usage` of each aggregate refresh query, bytes;
    /// 0 leaves the server's own.
    pub aggregate_max_memory_bytes: u64,
    /// ClickHouse `max_threads` of each aggregate refresh query; 0 leaves
    /// the server's own.
    pub aggregate_max_threads: u64,
    /// The least time between two checks for aggregate months that no
    /// longer match their lines (a whole-table read), ms.
    pub aggregate_stale_check_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSettings {
    pub group_id: String,
    pub http_listen: SocketAddr,
    /// How often the review publishes what ClickHouse judges (providers far
    /// from their peers, same-group listings); 0 switches it off.
    pub review_interval_ms: u64,
    /// Live records whose findings (or dead letter) await the broker's ack,
    /// at most; beyond it the detector stops reading.
    pub max_in_flight: usize,
    pub rules: distans_domain::rules::RuleSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    pub group_id: String,
    pub http_listen: SocketAddr,
    /// Slack's and Teams' incoming-webhook URLs carry their secret in the path.
    pub webhook_url: Secret,
    pub format: String,
    /// The language of the messages: "sv" (Swedish) or "en" (English).
    pub language: String,
    /// The Grafana dashboard's URL (e.g. `https://grafana.example/d/distans-overview`);
    /// each message links to it filtered to the finding's region, provider
    /// and rule. Empty: no link.
    pub dashboard_url: String,
    pub immediate_severity: String,
    pub digest_interval_ms: u64,
    /// Webhook calls per second at most, retries included, evenly spaced.
    /// Unset: the format's documented rate (slack 1, teams 0.5, generic 10;
    /// `distans_notifier::Format::default_messages_per_second`).
    #[serde(default)]
    pub max_messages_per_second: Option<f64>,
    /// What a first start (the group has no committed offset on the alerts
    /// topic) does with the findings already there: "summary" (one message
    /// counting them, then only new findings) or "all" (each as usual).
    pub first_start: String,
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

/// A Confluent-compatible schema registry (Confluent Schema Registry,
/// Karapace, Redpanda, Apicurio's `ccompat` API) for the input topic's
/// writer schemas; `url` empty: the schemas compiled in from `schemas/`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaRegistrySettings {
    /// Base URL, `http://` or `https://`, without credentials
    /// (e.g. `https://registry.region.se:8081`); empty: no registry.
    pub url: String,
    /// HTTP basic-auth user; empty: no authentication.
    pub user: String,
    pub password: Secret,
    /// A PEM file of CA certificates trusted for `https://`, besides the
    /// public roots (webpki-roots); empty: the public roots only.
    pub ca_file: String,
    /// Writer schemas kept, by id (schemas under an id never change, so
    /// they never expire; the oldest fetched is evicted first).
    pub cache_capacity: usize,
    /// The longest one request to the registry may take, milliseconds; a
    /// request that times out is retried like an unreachable registry.
    pub request_timeout_ms: u64,
}

impl SchemaRegistrySettings {
    pub fn is_configured(&self) -> bool {
        !self.url.trim().is_empty()
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.is_configured() {
            let url = self.url.trim();
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            match rest {
                None => p.push(format!("schema_registry.url must start with http:// or https://, not {url:?}")),
                Some(rest) if rest.split('/').next().unwrap_or_default().contains('@') => p.push(
                    "schema_registry.url must not hold credentials: set schema_registry.user and password".to_string(),
                ),
                Some(_) => {}
            }
        }
        if self.user.is_empty() && !self.password.is_empty() {
            p.push("schema_registry.password is set but schema_registry.user is empty".to_string());
        }
        if self.cache_capacity == 0 {
            p.push("schema_registry.cache_capacity must be at least 1".to_string());
        }
        if self.request_timeout_ms == 0 {
            p.push("schema_registry.request_timeout_ms must be positive".to_string());
        }
        p
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PseudonymSettings {
    pub key: Secret,
    /// The version of `key`, from 1. A new key is a new version; its
    /// fingerprint is recorded in `<topics.valid>.pseudonym-keys`
    /// ([`crate::pseudonym_keys`]).
    pub key_version: u16,
    /// Accept a `key_version` never recorded (with its new key) and record
    /// it: an explicit rotation. Without it a service refuses to start.
    pub rotate: bool,
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
        let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = match env {
            Some(env) => env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            None => std::env::vars_os().collect(),
        };
        // Credentials and librdkafka properties are taken verbatim and applied
        // below; the config crate parses the rest.
        let environment = sources::Environment::split(ENV_PREFIX, vars);
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(environment.parsed.clone().into_iter().collect())),
        );

        let one = |e: config::ConfigError| ConfigError { problems: vec![e.to_string()] };
        let mut tree: config::Value = builder.build().map_err(one)?.try_deserialize().map_err(one)?;

        let mut problems = environment.apply(&mut tree);
        // A value of the wrong type stops serde: it is reported, replaced by
        // its default, and the settings read again, so that every problem
        // is reported in one run (at most MAX_READS type errors). The
        // defaults' own tree is built only then.
        let mut defaults: Option<config::Value> = None;
        let mut settings: Option<Settings> = None;
        for _ in 0..MAX_READS {
            let mut unknown = Vec::new();
            let read = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(tree.clone(), &mut |path| {
                unknown.push(format!("unknown key `{path}`"));
            }));
            match read {
                Ok(s) => {
                    problems.extend(unknown);
                    settings = Some(s);
                    break;
                }
                Err(error) => {
                    let at: Vec<serde_path_to_error::Segment> = error.path().iter().cloned().collect();
                    // The config crate's type errors name the key; serde's own do not.
                    let (path, inner) = (error.path().to_string(), error.into_inner().to_string());
                    problems.push(if at.is_empty() || inner.contains(&path) {
                        inner
                    } else {
                        format!("{path}: {inner}")
                    });
                    let defaults = match &mut defaults {
                        Some(defaults) => defaults,
                        None => defaults.insert(
                            Config::builder()
                                .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
                                .build()
                                .and_then(Config::try_deserialize)
                                .map_err(one)?,
                        ),
                    };
                    if !sources::reset(&mut tree, defaults, &at) {
                        break;
                    }
                }
            }
        }
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
        if self.detector.max_in_flight == 0 {
            p.push("detector.max_in_flight must be at least 1".to_string());
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
            p.push(format!(
                "notifier.format must be generic, teams (Adaptive Card through a Workflows webhook) or slack, not {:?}",
                self.notifier.format
            ));
        }
        if !["sv", "en"].contains(&self.notifier.language.as_str()) {
            p.push(format!("notifier.language must be sv or en, not {:?}", self.notifier.language));
        }
        p.extend(webhook_url_problem(self.notifier.webhook_url.expose()));
        let url = &self.notifier.dashboard_url;
        if !url.is_empty() && !url.starts_with("https://") && !url.starts_with("http://") {
            p.push(format!("notifier.dashboard_url must be an http(s) URL, not {:?}", self.notifier.dashboard_url));
        }
        if !["sv", "en"].contains(&self.reporting.language.as_str()) {
            p.push(format!("reporting.language must be sv or en, not {:?}", self.reporting.language));
        }
        if distans_domain::rules::Severity::parse(&self.notifier.immediate_severity).is_none() {
            p.push("notifier.immediate_severity must be low, medium or high".to_string());
        }
        if let Some(rate) = self.notifier.max_messages_per_second {
            if !(rate.is_finite() && rate > 0.0) {
                p.push(format!("notifier.max_messages_per_second must be a positive number, not {rate}"));
            }
        }
        if !["summary", "all"].contains(&self.notifier.first_start.as_str()) {
            p.push(format!("notifier.first_start must be summary or all, not {:?}", self.notifier.first_start));
        }
        if self.notifier.digest_interval_ms == 0 {
            p.push("notifier.digest_interval_ms must be positive".to_string());
        }
        p.extend(self.tariffs.problems().into_iter().map(|m| format!("tariffs: {m}")));
        p.extend(self.reporting.problems());
        p.extend(self.validation.problems());
        p.extend(self.clickhouse.problems());
        if self.pseudonym.key_version == 0 {
            p.push("pseudonym.key_version must be at least 1".to_string());
        }
        p.extend(self.schema_registry.problems());
        if self.sink.aggregate_refresh_ms == 0 {
            p.push("sink.aggregate_refresh_ms must be positive".to_string());
        }
        p
    }

    /// The topic recording each pseudonym key version's fingerprint.
    pub fn pseudonym_keys_topic(&self) -> String {
        format!("{}.pseudonym-keys", self.topics.valid)
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
                "pseudonym.key: {e} (set pseudonym.key_file, a file holding the key, or pseudonym.key; \
                 DISTANS__PSEUDONYM__KEY_FILE or DISTANS__PSEUDONYM__KEY)"
            )],
        })
    }
}

/// Why `url` (`notifier.webhook_url`; empty: not set, which the notifier
/// itself refuses) cannot be called: not a URL, not http(s), or no host.
/// The text is never quoted: Slack's and Teams' URLs carry their secret.
fn webhook_url_problem(url: &str) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if !["http", "https"].contains(&parsed.scheme()) => Some(format!(
            "notifier.webhook_url must be an http(s) URL, not {}: (its text is not shown)",
            parsed.scheme()
        )),
        Ok(_) => None,
        Err(error) => Some(format!("notifier.webhook_url is not a URL: {error} (its text is not shown)")),
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

    /// A reservnummer format that leaves out `sex_digit` or `birth_date_at`
    /// in TOML has it `None` (serde's derive reads a missing `Option` as
    /// `None`; the formats in `defaults.toml` leave out one or the other).
    #[test]
    fn reservnummer_formats_without_their_optional_positions() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        let positions = |region: &str| {
            let format = s.validation.reservnummer.iter().find(|f| f.region == region).expect(region);
            (format.sex_digit, format.birth_date_at)
        };
        assert_eq!(positions("Region Stockholm"), (Some(11), None));
        assert_eq!(positions("Region Skåne"), (None, Some(1)));
    }

    #[test]
    fn schema_registry_settings_are_checked() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert!(!s.schema_registry.is_configured(), "no registry by default");
        let https = env(&[
            ("DISTANS__SCHEMA_REGISTRY__URL", "https://registry.example:8081"),
            ("DISTANS__SCHEMA_REGISTRY__USER", "distans"),
            ("DISTANS__SCHEMA_REGISTRY__PASSWORD", "s3cret"),
        ]);
        let s = Settings::load_with_env(None, https).expect("valid");
        assert!(s.schema_registry.is_configured());
        assert_eq!(format!("{:?}", s.schema_registry.password), "<redacted>");
        let bad = env(&[
            ("DISTANS__SCHEMA_REGISTRY__URL", "https://u:s3cret@registry.example"),
            ("DISTANS__SCHEMA_REGISTRY__PASSWORD", "s3cret"),
            ("DISTANS__SCHEMA_REGISTRY__CACHE_CAPACITY", "0"),
        ]);
        let problems = Settings::load_with_env(None, bad).expect_err("invalid").problems;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().all(|p| p.starts_with("schema_registry.")), "{problems:?}");
        let ftp = env(&[("DISTANS__SCHEMA_REGISTRY__URL", "ftp://registry")]);
        assert!(Settings::load_with_env(None, ftp).is_err());
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
    fn the_notifier_pace_is_unset_by_default_and_must_be_positive() {
        let key = ("DISTANS__PSEUDONYM__KEY", "k".repeat(32));
        let s = Settings::load_with_env(None, env(&[(key.0, key.1.as_str())])).expect("valid");
        assert_eq!(s.notifier.max_messages_per_second, None, "the format's rate");
        let s = Settings::load_with_env(
            None,
            env(&[(key.0, key.1.as_str()), ("DISTANS__NOTIFIER__MAX_MESSAGES_PER_SECOND", "2")]),
        )
        .expect("valid");
        assert_eq!(s.notifier.max_messages_per_second, Some(2.0));
        for bad in ["0", "-1"] {
            let err = Settings::load_with_env(
                None,
                env(&[(key.0, key.1.as_str()), ("DISTANS__NOTIFIER__MAX_MESSAGES_PER_SECOND", bad)]),
            )
            .expect_err("invalid");
            assert!(err.to_string().contains("notifier.max_messages_per_second must be a positive number"), "{err}");
        }
    }

    /// Unknown keys, values of the wrong type and bad values, from the file
    /// and the environment, in one run (a wrong type stopped the reading,
    /// so the rest showed only in the next run).
    #[test]
    fn all_problems_reported_at_once() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(
            file,
            "[kafka]\nbrokerz = \"x\"\npartitions = 0\n[sink]\nbatch_max_rows = 0\nbatch_max_wait_ms = \"soon\"\n\
             [log]\nformat = \"xml\""
        )
        .expect("write");
        let env = env(&[("DISTANS__INGESTER__COLOUR", "red"), ("DISTANS__DETECTOR__MAX_IN_FLIGHT", "many")]);
        let err = Settings::load_with_env(Some(file.path()), env).expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "kafka.brokerz",
            "ingester.colour",
            "kafka.partitions",
            "sink.batch_max_rows",
            "log.format",
            "invalid type: string \"soon\", expected an integer for key `sink.batch_max_wait_ms`",
            "invalid type: string \"many\", expected an integer for key `detector.max_in_flight`",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(err.problems.len(), 7, "{text}");
    }

    #[test]
    fn a_webhook_url_that_cannot_be_called_is_a_problem_and_not_shown() {
        let problem = |url: &str| {
            let env = env(&[("DISTANS__NOTIFIER__WEBHOOK_URL", url)]);
            Settings::load_with_env(None, env).err().map(|e| e.to_string())
        };
        assert_eq!(problem("https://hooks.slack.com/services/T0/B0/secret"), None);
        assert_eq!(problem("http://127.0.0.1:9/hook"), None);
        for (url, expected) in [
            ("hooks.slack.com/services/T0/B0/secret", "notifier.webhook_url is not a URL: relative URL without a base"),
            ("https://hooks slack.com/secret", "notifier.webhook_url is not a URL: invalid international domain name"),
            ("ftp://example.org/secret", "notifier.webhook_url must be an http(s) URL, not ftp:"),
        ] {
            let text = problem(url).expect(url);
            assert!(text.contains(expected), "{url}: {text}");
            assert!(!text.contains("secret"), "the URL's text is not shown: {text}");
        }
    }

    /// A bad item of a list is named by its own index, and stops the
    /// reading there (after it, an index could no longer be trusted).
    #[test]
    fn a_bad_list_item_is_named_by_its_index() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(
            file,
            "[[reporting.cost_allocation]]\ncounty = \"23\"\nhealth_centre_percent = 20\nvalid_from = \"2025-01-01\"\n\
             [[reporting.cost_allocation]]\ncounty = \"25\"\nhealth_centre_percent = 20\nvalid_from = \"2025-13-01\""
        )
        .expect("write");
        let err = Settings::load_with_env(Some(file.path()), env(&[])).expect_err("invalid");
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].contains("cost_allocation[1]"), "{err}");
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

    /// A setting misspelled with one underscore after the prefix is named;
    /// the deploy scripts' own `DISTANS_…` variables are not settings.
    #[test]
    fn a_setting_with_one_underscore_after_the_prefix_is_a_problem() {
        let problems = Settings::load_with_env(
            None,
            env(&[("DISTANS_KAFKA__BROKERS", "kafka:9092"), ("DISTANS_RUN_DIR", "/run"), ("DISTANS_CONFIG", "x")]),
        )
        .expect_err("a misspelled setting")
        .problems;
        assert_eq!(
            problems,
            ["environment variable DISTANS_KAFKA__BROKERS is not read: a setting takes two underscores after \
              DISTANS (DISTANS__KAFKA__BROKERS)"]
        );
    }

    /// librdkafka properties from the environment: an underscore stands for
    /// a dot (today's `SASL.USERNAME` spelling works too), values verbatim.
    #[test]
    fn kafka_client_properties_from_the_environment_and_the_file() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(file, "[kafka.client]\n\"security.protocol\" = \"sasl_plaintext\"\n\"sasl.mechanism\" = \"PLAIN\"")
            .expect("write");
        let s = Settings::load_with_env(
            Some(file.path()),
            env(&[
                ("DISTANS__KAFKA__CLIENT__SASL_USERNAME", "distans"),
                ("DISTANS__KAFKA__CLIENT__SASL.PASSWORD", "0123"),
                ("DISTANS__KAFKA__CLIENT__SASL_MECHANISM", "SCRAM-SHA-512"),
                ("DISTANS__KAFKA__CLIENT__LOG_LEVEL", "7"),
                ("DISTANS__KAFKA__CLIENT__ENABLE_SSL_CERTIFICATE_VERIFICATION", "TRUE"),
            ]),
        )
        .expect("valid");
        let client = &s.kafka.client;
        assert_eq!(client.get("security.protocol"), Some("sasl_plaintext"), "from the file");
        assert_eq!(client.get("sasl.username"), Some("distans"));
        assert_eq!(client.get("sasl.password"), Some("0123"), "verbatim, not the integer 123");
        assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-512"), "the environment wins over the file");
        assert_eq!(client.get("log_level"), Some("7"));
        assert_eq!(client.get("enable.ssl.certificate.verification"), Some("TRUE"));
        assert_eq!(client.iter().count(), 6, "{client:?}");
        let shown = format!("{s:?}");
        assert!(shown.contains("\"sasl.username\": \"distans\""), "{shown}");
        assert!(shown.contains("\"sasl.password\": <redacted>"), "{shown}");
        assert!(!shown.contains("0123"), "{shown}");
    }

    #[test]
    fn credentials_verbatim_and_from_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let password = write("ch", "s3cr3t-from-file\n");
        let sasl = write("sasl", "sasl-from-file\r\n");
        let key = write("key", &format!("{}\n", "k".repeat(40)));
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
        writeln!(file, "[pseudonym]\nkey_file = \"{key}\"").expect("write");
        let s = Settings::load_with_env(
            Some(file.path()),
            env(&[
                ("DISTANS__CLICKHOUSE__PASSWORD_FILE", password.as_str()),
                ("DISTANS__KAFKA__CLIENT__SASL_PASSWORD_FILE", sasl.as_str()),
                ("DISTANS__NOTIFIER__WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/0123"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.clickhouse.password.expose(), "s3cr3t-from-file", "trailing newline trimmed");
        assert_eq!(s.kafka.client.get("sasl.password"), Some("sasl-from-file"));
        assert_eq!(s.pseudonym.key.expose(), "k".repeat(40));
        assert_eq!(s.notifier.webhook_url.expose(), "https://hooks.slack.com/services/T0/B0/0123");
        let shown = format!("{s:?}");
        for secret in ["s3cr3t", "sasl-from-file", "kkkk", "hooks.slack.com"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }

        // A password that the config crate would parse as a number or a
        // boolean stays as given.
        for value in ["0123", "1e3", "TRUE", " spaced "] {
            let s = Settings::load_with_env(None, env(&[("DISTANS__CLICKHOUSE__PASSWORD", value)])).expect("valid");
            assert_eq!(s.clickhouse.password.expose(), value);
        }
    }

    #[test]
    fn unreadable_credential_files_are_problems_naming_the_setting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let present = dir.path().join("present");
        std::fs::write(&present, "secret-value-9").expect("write");
        let missing = dir.path().join("missing").display().to_string();
        let err = Settings::load_with_env(
            None,
            env(&[
                ("DISTANS__CLICKHOUSE__PASSWORD_FILE", missing.as_str()),
                ("DISTANS__KAFKA__CLIENT__SASL_PASSWORD_FILE", missing.as_str()),
                ("DISTANS__PSEUDONYM__KEY", "secret-value-8"),
                ("DISTANS__PSEUDONYM__KEY_FILE", present.to_str().expect("utf-8")),
                ("DISTANS__KAFKA__BROKERS_FILE", "/etc/hostname"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "clickhouse.password_file: cannot read the file",
            "DISTANS__KAFKA__CLIENT__SASL_PASSWORD_FILE: cannot read the file",
            "pseudonym.key and pseudonym.key_file are both set",
            "unknown key `kafka.brokers_file`",
            &missing,
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(!text.contains("secret-value"), "{text}");
        assert_eq!(err.problems.len(), 4, "{text}");
    }

    /// Every setting whose `Debug` is `<redacted>` (a `Secret`) can be given
    /// from a file and verbatim, and every such setting is a `Secret`.
    #[test]
    fn every_secret_is_a_secret_setting() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults");
        let shown = format!("{s:#?}");
        let mut path: Vec<String> = Vec::new();
        let mut redacted = Vec::new();
        for line in shown.lines() {
            let depth = (line.len() - line.trim_start().len()) / 4;
            let Some((name, value)) = line.trim_start().split_once(": ") else { continue };
            if !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            path.truncate(depth.saturating_sub(1));
            path.push(name.to_string());
            if value.trim_end_matches(',') == "<redacted>" {
                redacted.push(path.join("."));
            }
        }
        for setting in &redacted {
            assert!(is_secret_setting(setting), "{setting} is a Secret but not in SECRET_SETTINGS");
        }
        for setting in SECRET_SETTINGS {
            assert!(redacted.iter().any(|r| r == setting), "{setting} is not a Secret: {redacted:?}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/distans.toml")), env(&[])).expect_err("missing");
        assert_eq!(err.problems.len(), 1);
    }
}
