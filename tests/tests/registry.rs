//! End-to-end: producers on the real client libraries, through a schema
//! registry, into ClickHouse.
//!
//! The registry is the STAND-IN of `tests/registry-standin` (no
//! Confluent-compatible registry server installs from the reachable package
//! registries); its ids start at 57, so a record framed with distans'
//! embedded id 1 would not decode. The producers are the examples of
//! `examples/`: Python's confluent-kafka `AvroSerializer` and kafkajs with
//! `@kafkajs/confluent-schema-registry`, both with basic auth.
//!
//! What it shows: `distans schemas register` registers the input subject
//! (FULL_TRANSITIVE); records framed with the registry's ids are read, a
//! v2 writer (one more optional field) by distans' v1 reader too; a writer
//! schema distans cannot read is an `incompatible_schema` dead letter, an
//! id the registry does not know `unknown_schema_id`; while the registry is
//! down a record with a new id waits (the ingester retries and is not
//! ready) and arrives once it is back, with no dead letter.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use distans_cli::cmd::{produce, schemas};
use distans_e2e::{
    http_get, metric, poll_until, registry_node_modules, registry_python, repo_root, run_to_end, wait_for_lines, Env,
    RegistryStandIn,
};
use distans_runtime::dead_letters;
use distans_runtime::schema_registry::{value_subject, SchemaRegistry};

const TIMEOUT: Duration = Duration::from_secs(300);
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the Python example producer with `args`; its report line.
fn python_example(env: &Env, registry: &RegistryStandIn, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new(registry_python()?);
    command.arg(repo_root().join("examples/python/produce_invoice_lines.py"));
    command.args(["--bootstrap", &env.broker.brokers(), "--registry", &registry.url()]);
    command.args(["--registry-user", &registry.user]).arg("--registry-password-file").arg(registry.password_file());
    command.args(args);
    run_to_end(command, EXAMPLE_TIMEOUT)
}

/// Runs the JavaScript example producer with `args`; its report line.
fn javascript_example(env: &Env, registry: &RegistryStandIn, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("node");
    command.env("NODE_PATH", registry_node_modules()?).env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    command.arg(repo_root().join("examples/javascript/produce-invoice-lines.js"));
    command.args(["--bootstrap", &env.broker.brokers(), "--registry", &registry.url()]);
    command.args(["--registry-user", &registry.user]).arg("--registry-password-file").arg(registry.password_file());
    command.args(args);
    run_to_end(command, EXAMPLE_TIMEOUT)
}

/// invoice_line v1 with `edit` applied to its JSON, written to `dir/name`.
fn schema_file(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> anyhow::Result<String> {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/invoice_line.v1.avsc")).expect("schema json");
    edit(&mut schema);
    let path = dir.join(name);
    std::fs::write(&path, schema.to_string())?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn producers_on_confluent_clients_through_a_schema_registry_reach_clickhouse() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    let mut registry = RegistryStandIn::start(env.dir.path(), "distans-producer", "s3cret-registry-pw")?;
    for (key, value) in
        [("URL", registry.url()), ("USER", registry.user.clone()), ("PASSWORD", registry.password.clone())]
    {
        env.extra_variables.insert(format!("DISTANS__SCHEMA_REGISTRY__{key}"), value);
    }
    let settings = env.settings();
    let registered = schemas::register(&settings).await?;
    assert_eq!(registered.subject, "invoice-lines-value");
    assert_eq!(registered.compatibility, "FULL_TRANSITIVE");
    assert_eq!(registered.id, 57, "the registry's id, not distans' embedded 1");
    assert_eq!(schemas::register(&settings).await?.id, 57, "registering again keeps the id");

    let ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;

    // Python, distans' v1 schema: the registry's id 57.
    let out = python_example(&env, &registry, &["--lines", "3", "--first-counter", "100"])?;
    assert!(out.contains("sent 3 lines to invoice-lines with schema id 57"), "{out}");
    // Python, a v2 schema (one optional field more): a new id, read by distans' v1 reader.
    let v2 = repo_root().join("tests/registry/invoice_line.v2.avsc").display().to_string();
    let args = ["--lines", "2", "--first-counter", "200", "--schema", &v2, "--external-reference", "ref-200"];
    let out = python_example(&env, &registry, &args)?;
    assert!(out.contains("sent 2 lines to invoice-lines with schema id 58"), "{out}");
    // JavaScript, distans' v1 schema.
    let out = javascript_example(&env, &registry, &["--lines", "2", "--first-counter", "300"])?;
    assert!(out.contains("sent 2 lines to invoice-lines with schema id 57"), "{out}");
    // distans produce frames with the registry's id too.
    let fixture = distans_domain::testing::invoice_line();
    produce::produce_lines(&settings, std::slice::from_ref(&fixture), false).await?;

    // A writer schema distans cannot read: `quantity` removed (no default
    // in distans' reader). The stand-in, unlike a registry enforcing
    // FULL_TRANSITIVE, takes it.
    let no_quantity = schema_file(env.dir.path(), "no_quantity.avsc", |schema| {
        schema["fields"].as_array_mut().expect("fields").retain(|f| f["name"] != "quantity");
    })?;
    let out = python_example(&env, &registry, &["--lines", "1", "--first-counter", "400", "--schema", &no_quantity])?;
    assert!(out.contains("with schema id 59"), "{out}");
    // An id the registry does not know.
    let unknown_key = b"ZVF23210001152503000999:1".to_vec();
    let unknown = distans_wire::frame(999, &[0; 16]);
    produce::send(&settings, &settings.topics.input, vec![(unknown_key.clone(), unknown)], false).await?;

    let client = env.clickhouse.client();
    let totals = wait_for_lines(&client, 8, TIMEOUT).await?;
    assert_eq!(totals.lines, 8, "3 + 2 from Python, 2 from JavaScript, 1 from distans produce");

    // The registry goes down; a record with an id the ingester has not
    // fetched (a v1 with another doc: a new schema, id 60) waits for it.
    let v1_again = schema_file(env.dir.path(), "v1_again.avsc", |schema| {
        schema["doc"] = "invoice_line v1, registered again with another doc".into();
    })?;
    let client_of_registry = SchemaRegistry::new(&settings.schema_registry)?.expect("configured");
    let id = client_of_registry
        .register(&value_subject(&settings.topics.input), &std::fs::read_to_string(&v1_again)?)
        .await?;
    assert_eq!(id, 60);
    registry.stop();
    let waiting = distans_domain::InvoiceLine { invoice_id: "ZVF23210001152503000500".into(), ..fixture.clone() };
    let datum = distans_wire::Codec::embedded().encode_invoice_line(&waiting)?[5..].to_vec();
    let record = (waiting.key().into_bytes(), distans_wire::frame(id, &datum));
    produce::send(&settings, &settings.topics.input, vec![record], false).await?;
    poll_until("the ingester to retry the registry and report not ready", TIMEOUT, async || {
        let (_, page) = http_get(env.ingester_http, "/metrics")?;
        let retries = metric(&page, "distans_ingester_schema_registry_retries_total").unwrap_or(0.0);
        anyhow::ensure!(retries >= 2.0, "{retries} retries");
        let (status, body) = http_get(env.ingester_http, "/readyz")?;
        anyhow::ensure!(status == 503 && body.contains("schema registry calls fail"), "readyz {status}: {body}");
        Ok(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", ingester.log_tail(20)))?;
    registry.restart()?;
    let totals = wait_for_lines(&client, 9, TIMEOUT).await?;
    assert_eq!(totals.lines, 9, "the held line arrived once the registry was back");
    let (status, _) = http_get(env.ingester_http, "/readyz")?;
    assert_eq!(status, 200, "ready again");

    let letters = poll_until("two dead letters", TIMEOUT, async || {
        let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(30))?;
        anyhow::ensure!(letters.len() >= 2, "{} dead letters", letters.len());
        Ok(letters)
    })
    .await?;
    let mut reasons: Vec<(String, Option<Vec<u8>>)> =
        letters.iter().map(|l| (l.reason_code.clone(), l.source_key.clone())).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("incompatible_schema".to_string(), Some(b"ZVF23210001152503000400:1".to_vec())),
            ("unknown_schema_id".to_string(), Some(unknown_key)),
        ],
        "only these two, and none for the line that waited for the registry"
    );
    let incompatible = letters.iter().find(|l| l.reason_code == "incompatible_schema").expect("found");
    assert!(incompatible.reason.contains("quantity"), "the reason names the field: {}", incompatible.reason);

    let (_, page) = http_get(env.ingester_http, "/metrics")?;
    let fetched = metric(&page, "distans_ingester_schemas_fetched_total").unwrap_or(0.0);
    assert_eq!(fetched, 3.0, "58, 59 and 60 fetched once each (57 known at start): {page}");
    Ok(())
}

/// The registry over https: trusted through `schema_registry.ca_file`; with
/// the public roots only, or a wrong password, one clear error that names
/// the setting (permanent: the ingester stops at start instead of retrying).
#[tokio::test(flavor = "multi_thread")]
async fn the_registry_over_https_is_trusted_through_the_ca_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (ca, certificate, key) = distans_e2e::test_certificates(dir.path())?;
    let registry = RegistryStandIn::start_tls(dir.path(), "distans", "tls-pw", &certificate, &key)?;
    assert!(registry.url().starts_with("https://"));
    let settings = |ca_file: &Path, password: &str| -> anyhow::Result<distans_runtime::Settings> {
        let env = [
            ("DISTANS__SCHEMA_REGISTRY__URL", registry.url()),
            ("DISTANS__SCHEMA_REGISTRY__USER", "distans".to_string()),
            ("DISTANS__SCHEMA_REGISTRY__PASSWORD", password.to_string()),
            ("DISTANS__SCHEMA_REGISTRY__CA_FILE", ca_file.display().to_string()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Ok(distans_runtime::Settings::load_with_env(None, Some(env))?)
    };
    let registered = schemas::register(&settings(&ca, "tls-pw")?).await?;
    assert_eq!(registered.id, 57);

    let untrusted = schemas::register(&settings(Path::new(""), "tls-pw")?).await.expect_err("not trusted");
    let text = format!("{untrusted:#}");
    assert!(text.contains("not trusted") && text.contains("schema_registry.ca_file"), "{text}");
    let wrong = schemas::register(&settings(&ca, "wrong-pw")?).await.expect_err("unauthorised");
    let text = format!("{wrong:#}");
    assert!(text.contains("401") && text.contains("schema_registry.password"), "{text}");
    assert!(!text.contains("wrong-pw"), "{text}");
    Ok(())
}
