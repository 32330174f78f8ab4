//! What the config crate cannot do for credentials and librdkafka
//! properties, applied to the settings tree before it is deserialized.
//!
//! - **Credentials verbatim.** The config crate parses environment values
//!   (`0123` becomes the integer 123, `TRUE` the boolean `true`), which would
//!   change a password. The credentials ([`is_secret_setting`]) and every
//!   `kafka.client` property are taken from the environment as the text
//!   given.
//! - **Credentials from files.** Each credential may be given as
//!   `<name>_file`, the path of a file holding it (Kubernetes and Docker
//!   secrets), e.g. `clickhouse.password_file` or
//!   `DISTANS__CLICKHOUSE__PASSWORD_FILE`; trailing line breaks are trimmed.
//!   So may every `kafka.client` property (`"sasl.password_file"`,
//!   `DISTANS__KAFKA__CLIENT__SASL_PASSWORD_FILE`). A file that cannot be read
//!   is a problem naming the setting and the path, never the content.
//! - **librdkafka properties from the environment.** Their names hold dots,
//!   which an environment variable name cannot, and the config crate reads
//!   dots as nesting. In `kafka.client` keys (environment and file alike) an
//!   underscore stands for a dot: `DISTANS__KAFKA__CLIENT__SASL_USERNAME` is
//!   `sasl.username`. librdkafka 2.12's CONFIGURATION.md has two string
//!   properties whose names hold an underscore, `log_level` and
//!   `enabled_events`, kept as they are (the others with one are callbacks,
//!   set through the C API only), and three whose names end in `.file`
//!   (paths librdkafka reads itself, [`FILE_PROPERTIES`]), whose
//!   environment spelling `…_FILE` is the property, not a file to read.

use std::collections::BTreeMap;
use std::ffi::OsString;

use config::{Map, Value, ValueKind};

/// The settings, besides every `*.password`, that hold a credential.
pub const SECRET_SETTINGS: &[&str] = &["clickhouse.password", "notifier.webhook_url", "pseudonym.key"];

/// The suffix of a setting that names the file holding its value.
pub const FILE_SUFFIX: &str = "_file";

const CLIENT_PATH: &str = "kafka.client";

/// librdkafka string properties whose names hold an underscore.
const UNDERSCORE_PROPERTIES: &[&str] = &["log_level", "enabled_events"];

/// librdkafka properties whose names end in `.file`: each takes a path that
/// librdkafka reads itself.
pub const FILE_PROPERTIES: &[&str] = &[
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.jwt.template.file",
];

/// Whether the setting at `path` (dotted, lower case) holds a credential:
/// one of [`SECRET_SETTINGS`], or any setting named `password`.
pub fn is_secret_setting(path: &str) -> bool {
    SECRET_SETTINGS.contains(&path) || path.rsplit('.').next() == Some("password")
}

/// Whether the librdkafka property `name` holds a credential (so its value
/// is never printed): passwords, secrets, private keys, OAuth configs.
pub fn is_secret_property(name: &str) -> bool {
    ["password", "secret", "key.pem", "private.key", "oauthbearer.config", "jaas"].iter().any(|s| name.contains(s))
}

/// A `kafka.client` key as written (in the environment lower-cased) →
/// the librdkafka property, and whether the value is in a file.
pub fn client_property(key: &str) -> (String, bool) {
    let dotted = |k: &str| if UNDERSCORE_PROPERTIES.contains(&k) { k.to_string() } else { k.replace('_', ".") };
    let whole = dotted(key);
    if FILE_PROPERTIES.contains(&whole.as_str()) {
        return (whole, false);
    }
    match key.strip_suffix(FILE_SUFFIX) {
        Some(base) if !base.is_empty() => (dotted(base), true),
        _ => (whole, false),
    }
}

/// Puts the value `defaults` has at `path` into `tree`, or removes the key
/// where `defaults` has none: after a value of the wrong type at `path` is
/// reported, the rest of the settings can still be read. Returns whether
/// `tree` changed (`false`: the path is not in it, is already the default,
/// or runs through a list, whose items are left alone: removing one would
/// give the next problem in that list the wrong index).
pub fn reset(tree: &mut Value, defaults: &Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((first, rest)) = path.split_first() else {
        if tree == defaults {
            return false;
        }
        *tree = defaults.clone();
        return true;
    };
    let default_child = |key: &str| match &defaults.kind {
        ValueKind::Table(table) => table.get(key),
        _ => None,
    };
    match (first, &mut tree.kind) {
        (Segment::Map { key }, ValueKind::Table(table)) => {
            let default = default_child(key);
            match (table.get_mut(key), default) {
                (Some(child), Some(default)) => reset(child, default, rest),
                (Some(_), None) => table.remove(key).is_some(),
                (None, _) => false,
            }
        }
        _ => false,
    }
}

/// One environment variable taken verbatim.
#[derive(Debug, PartialEq, Eq)]
enum Verbatim {
    /// A credential or its `_file`: the dotted path, e.g. `clickhouse.password_file`.
    Setting(String),
    /// A `kafka.client` property: the key as given (lower case).
    Client(String),
}

/// The environment split in two: what the config crate reads, and what is
/// taken verbatim and applied to the tree by [`Environment::apply`].
pub struct Environment {
    /// `DISTANS__…` variables for the config crate, by their names.
    pub parsed: BTreeMap<String, String>,
    verbatim: Vec<(Verbatim, String)>,
    /// Variables that could not be read (named, their values never shown).
    pub problems: Vec<String>,
}

impl Environment {
    /// Splits `vars` (name, value) by the prefix `{prefix}__`. A variable
    /// that looks like a setting with one underscore after the prefix
    /// (`DISTANS_KAFKA__BROKERS`) is a problem, not silently ignored; other
    /// `{prefix}_…` variables (the deploy scripts') are left alone.
    pub fn split(prefix: &str, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Environment {
        let head = format!("{prefix}__").to_lowercase();
        let single = format!("{prefix}_").to_lowercase();
        let mut env = Environment { parsed: BTreeMap::new(), verbatim: Vec::new(), problems: Vec::new() };
        for (name, value) in vars {
            let Ok(name) = name.into_string() else { continue };
            let lower = name.to_lowercase();
            if let Some(rest) = lower.strip_prefix(&single).filter(|rest| !rest.starts_with('_') && rest.contains("__"))
            {
                let meant = format!("{prefix}__{}", rest.to_uppercase());
                env.problems.push(format!(
                    "environment variable {name} is not read: a setting takes two underscores after {prefix} ({meant})"
                ));
                continue;
            }
            let Some(rest) = lower.strip_prefix(&head) else { continue };
            let Ok(value) = value.into_string() else {
                env.problems.push(format!("environment variable {name} is not valid UTF-8"));
                continue;
            };
            let path = rest.replace("__", ".");
            let kind = if let Some(key) = path.strip_prefix("kafka.client.") {
                Some(Verbatim::Client(key.to_string()))
            } else {
                let base = path.strip_suffix(FILE_SUFFIX).unwrap_or(&path);
                is_secret_setting(base).then(|| Verbatim::Setting(path.clone()))
            };
            match kind {
                Some(kind) => env.verbatim.push((kind, value)),
                None => {
                    env.parsed.insert(name, value);
                }
            }
        }
        env
    }

    /// Applies the verbatim variables, the `kafka.client` spelling and the
    /// `_file` settings to `tree`; returns the problems found.
    pub fn apply(self, tree: &mut Value) -> Vec<String> {
        let mut problems = self.problems;
        let Some(root) = table_mut(tree) else {
            return problems;
        };
        let mut client = normalise_client(root, &mut problems);
        for (kind, value) in self.verbatim {
            match kind {
                Verbatim::Setting(path) => set_string(root, &path, value),
                Verbatim::Client(key) => {
                    let (name, from_file) = client_property(&key);
                    client.insert(name, (value, from_file, format!("DISTANS__KAFKA__CLIENT__{}", key.to_uppercase())));
                }
            }
        }
        let mut properties = Map::new();
        for (name, (value, from_file, given_as)) in client {
            let value = if from_file { read_secret_file(&given_as, &value, &mut problems) } else { Some(value) };
            if let Some(value) = value {
                properties.insert(name, Value::new(None, ValueKind::String(value)));
            }
        }
        set_value(root, CLIENT_PATH, ValueKind::Table(properties));
        resolve_files(root, "", &mut problems);
        problems
    }
}

/// The `kafka.client` table of the tree (file and defaults) by property
/// name: (value, whether it names a file, the key as written).
fn normalise_client(
    root: &mut Map<String, Value>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, (String, bool, String)> {
    let mut client = BTreeMap::new();
    let Some(table) = take_value(root, CLIENT_PATH) else {
        return client;
    };
    let table = match table.kind {
        ValueKind::Table(table) => table,
        ValueKind::Nil => Map::new(),
        _ => {
            problems.push(format!("{CLIENT_PATH} must be a table of librdkafka properties"));
            Map::new()
        }
    };
    for (key, value) in table {
        let (name, from_file) = client_property(&key);
        let given_as = format!("{CLIENT_PATH}.\"{key}\"");
        let Some(text) = scalar_text(&value) else {
            problems.push(format!("{given_as} must be a string (librdkafka takes text)"));
            continue;
        };
        if let Some((_, _, earlier)) = client.get(&name) {
            problems.push(format!("{given_as} and {earlier} both set the librdkafka property {name}"));
            continue;
        }
        client.insert(name, (text, from_file, given_as));
    }
    client
}

/// Replaces every credential's `<name>_file` in `table` (at `prefix`) by the
/// file's content under `<name>`.
fn resolve_files(table: &mut Map<String, Value>, prefix: &str, problems: &mut Vec<String>) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        if path == CLIENT_PATH {
            continue;
        }
        if let Some(Value { kind: ValueKind::Table(inner), .. }) = table.get_mut(&key) {
            resolve_files(inner, &path, problems);
            continue;
        }
        let Some(base) = key.strip_suffix(FILE_SUFFIX) else { continue };
        let base_path = path.strip_suffix(FILE_SUFFIX).unwrap_or(&path).to_string();
        if !is_secret_setting(&base_path) {
            continue; // an unknown key, reported as such
        }
        let Some(file) = table.remove(&key) else { continue };
        let Some(file) = scalar_text(&file).filter(|f| !f.is_empty()) else {
            continue; // empty: not given
        };
        let given = table.get(base).and_then(scalar_text).is_some_and(|v| !v.is_empty());
        if given {
            problems.push(format!("{base_path} and {path} are both set: give the credential one way"));
            continue;
        }
        if let Some(value) = read_secret_file(&path, &file, problems) {
            table.insert(base.to_string(), Value::new(None, ValueKind::String(value)));
        }
    }
}

/// The content of the file at `file` given as `setting`, trailing line
/// breaks trimmed; a problem naming both if it cannot be read.
fn read_secret_file(setting: &str, file: &str, problems: &mut Vec<String>) -> Option<String> {
    match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
            Err(_) => {
                problems.push(format!("{setting}: the file {file} is not UTF-8 text"));
                None
            }
        },
        Err(e) => {
            problems.push(format!("{setting}: cannot read the file {file}: {e}"));
            None
        }
    }
}

fn table_mut(value: &mut Value) -> Option<&mut Map<String, Value>> {
    match &mut value.kind {
        ValueKind::Table(table) => Some(table),
        _ => None,
    }
}

/// The text of a scalar (a file's `port = 5` is "5"); none for a table or array.
fn scalar_text(value: &Value) -> Option<String> {
    match &value.kind {
        ValueKind::Table(_) | ValueKind::Array(_) | ValueKind::Nil => None,
        _ => value.clone().into_string().ok(),
    }
}

fn take_value(root: &mut Map<String, Value>, path: &str) -> Option<Value> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut table = root;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        table = table_mut(table.get_mut(segment)?)?;
    }
    table.remove(last)
}

/// Sets `path` (dotted) to `kind`, creating the tables on the way.
fn set_value(root: &mut Map<String, Value>, path: &str, kind: ValueKind) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or_default();
    let mut table = root;
    for segment in segments {
        let entry = table.entry(segment.to_string()).or_insert_with(|| Value::new(None, ValueKind::Table(Map::new())));
        if !matches!(entry.kind, ValueKind::Table(_)) {
            entry.kind = ValueKind::Table(Map::new());
        }
        let ValueKind::Table(inner) = &mut entry.kind else { unreachable!("made a table above") };
        table = inner;
    }
    table.insert(last.to_string(), Value::new(None, kind));
}

fn set_string(root: &mut Map<String, Value>, path: &str, value: String) {
    set_value(root, path, ValueKind::String(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_map_to_librdkafka_properties() {
        for (key, expected) in [
            ("sasl_username", ("sasl.username", false)),
            ("sasl.username", ("sasl.username", false)),
            ("security_protocol", ("security.protocol", false)),
            ("ssl_ca_location", ("ssl.ca.location", false)),
            ("log_level", ("log_level", false)),
            ("enabled_events", ("enabled_events", false)),
            ("sasl_password_file", ("sasl.password", true)),
            ("sasl.password_file", ("sasl.password", true)),
            ("sasl_oauthbearer_assertion_file", ("sasl.oauthbearer.assertion.file", false)),
            ("sasl.oauthbearer.assertion.private.key.file", ("sasl.oauthbearer.assertion.private.key.file", false)),
            ("_file", (".file", false)),
        ] {
            let (name, from_file) = client_property(key);
            assert_eq!((name.as_str(), from_file), expected, "{key}");
        }
    }

    #[test]
    fn secret_settings_and_properties() {
        for path in ["clickhouse.password", "notifier.webhook_url", "pseudonym.key", "schema_registry.password"] {
            assert!(is_secret_setting(path), "{path}");
        }
        for path in ["clickhouse.user", "clickhouse.url", "kafka.brokers", "pseudonym.key_version"] {
            assert!(!is_secret_setting(path), "{path}");
        }
        for name in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(is_secret_property(name), "{name}");
        }
        for name in ["sasl.username", "security.protocol", "ssl.ca.location", "sasl.mechanism"] {
            assert!(!is_secret_property(name), "{name}");
        }
    }
}
