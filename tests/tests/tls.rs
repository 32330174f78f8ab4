//! End-to-end over TLS: the broker behind TLS (stunnel in front of tansu,
//! which takes no TLS itself) with SASL/SCRAM-SHA-256 (tansu's own), and
//! ClickHouse 18.16 on its `https_port`, both with a CA the test makes; the
//! ingester and the sink reach them only over TLS (`sasl_ssl`, `https://`).
//! A wrong CA, host name or password stops a service at start with one
//! error that names the setting.

use std::time::Duration;

use anyhow::Context;

use distans_cli::cmd::produce;
use distans_e2e::{wait_for_lines, Env, Process, TestCa};
use distans_synth::generate::{self, Options};

const TIMEOUT: Duration = Duration::from_secs(300);

/// How long a misconfigured service may take to stop: it must stop at its
/// first connection, not retry; the bound only keeps a hung test finite.
const STOPS_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn lines_flow_over_tls_to_the_broker_and_to_clickhouse() -> anyhow::Result<()> {
    let (env, _ca) = Env::start_tls()?;
    assert!(env.clickhouse.url().starts_with("https://"), "{}", env.clickhouse.url());
    let settings = env.settings();
    assert_eq!(settings.kafka.client.get("security.protocol"), Some("sasl_ssl"));
    let ingester = env.spawn("ingester")?;
    let sink = env.spawn("sink")?;

    let mut options = Options::new("23", 2025, 400, 5, &settings.detector.rules);
    options.invalid_share = 0.0;
    let data = generate::generate(&options, &settings.tariffs)?;
    // zstd on the test's own producer: librdkafka is built with it.
    let mut zstd = settings.clone();
    zstd.kafka.client.insert("compression.type", "zstd");
    produce::produce_lines(&zstd, &data.lines, false).await?;

    let totals = wait_for_lines(&env.clickhouse.client(), data.summary.valid as u64, TIMEOUT).await?;
    assert_eq!(totals.lines, data.summary.valid as u64);
    assert_eq!(totals.net_amount_ore, data.summary.valid_net_amount_ore);
    for service in [&ingester, &sink] {
        let log = service.log();
        assert!(log.contains("connected to kafka"), "{}", service.log_tail(20));
        assert!(!log.contains("ERROR"), "no error over TLS:\n{}", service.log_tail(40));
    }
    Ok(())
}

/// Starts `service`, which must stop at start with exit status 1; prints its
/// last log line (the error) and returns it, stopped, for its log.
fn stopped_at_start(env: &Env, service: &str) -> anyhow::Result<Process> {
    let mut process = env.spawn_unchecked(service)?;
    let status = process.wait_exit(STOPS_WITHIN).with_context(|| process.log_tail(30))?;
    assert_eq!(status, Some(1), "{}", process.log_tail(20));
    println!("{}", process.log_tail(1));
    Ok(process)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_or_host_stops_a_service_at_start_naming_the_setting() -> anyhow::Result<()> {
    let (mut env, _ca) = Env::start_tls()?;
    let other = TestCa::generate(env.dir.path(), "other")?;
    let other_ca = other.ca.display().to_string();

    // Kafka: the broker's certificate is not signed by the CA the client trusts.
    env.write_config(&format!("\"ssl.ca.location\" = {other_ca:?}"))?;
    let ingester = stopped_at_start(&env, "ingester")?;
    let log = ingester.log();
    assert!(log.contains(r#"check kafka.client."ssl.ca.location""#), "{}", ingester.log_tail(20));
    assert_eq!(log.matches("distans-ingester: ").count(), 1, "one error:\n{}", ingester.log_tail(20));

    // Kafka: the right CA, but a host name the certificate does not name
    // (it names localhost, not 127.0.0.1).
    env.write_config("")?;
    env.extra_variables.insert("DISTANS__KAFKA__BROKERS".into(), format!("127.0.0.1:{}", env.broker.port));
    let detector = stopped_at_start(&env, "detector")?;
    assert!(detector.log().contains("the host names in kafka.brokers"), "{}", detector.log_tail(20));
    env.extra_variables.clear();

    // Kafka: the wrong SCRAM password.
    env.write_config("\"sasl.password\" = \"not-the-password\"")?;
    env.webhook_port();
    let notifier = stopped_at_start(&env, "notifier")?;
    let log = notifier.log();
    assert!(log.contains(r#"check kafka.client."sasl.username", "sasl.password""#), "{}", notifier.log_tail(20));
    assert!(!log.contains("not-the-password"), "the password is not logged:\n{}", notifier.log_tail(20));
    env.write_config("")?;

    // ClickHouse: Kafka is right, the server's certificate is not signed by clickhouse.ca_file.
    env.extra_variables.insert("DISTANS__CLICKHOUSE__CA_FILE".into(), other_ca);
    let sink = stopped_at_start(&env, "sink")?;
    let log = sink.log();
    assert!(log.contains("check clickhouse.ca_file"), "{}", sink.log_tail(20));
    assert!(log.contains("UnknownIssuer"), "the cause is shown:\n{}", sink.log_tail(20));
    assert_eq!(log.matches("distans-sink: ").count(), 1, "one error:\n{}", sink.log_tail(20));

    // ClickHouse: the right CA, a host the certificate does not name.
    let https_url = env.clickhouse.url();
    env.extra_variables.clear();
    env.extra_variables.insert("DISTANS__CLICKHOUSE__URL".into(), https_url.replacen("localhost", "127.0.0.1", 1));
    let sink = stopped_at_start(&env, "sink")?;
    assert!(sink.log().contains("check clickhouse.url"), "{}", sink.log_tail(20));

    Ok(())
}
