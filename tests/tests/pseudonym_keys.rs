//! The pseudonym key recorded with the data: the ingester started with key
//! A records it; started with key B for the same version it refuses to
//! start, saying why; B as a new version without `pseudonym.rotate` is
//! refused too; with it, it starts and B is recorded as version 2; then A
//! (version 1) is refused as superseded. Each line in ClickHouse carries
//! the version of the key that made its pseudonym.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use distans_cli::cmd::produce;
use distans_domain::{InvoiceLine, Pseudonymiser};
use distans_e2e::{wait_for_lines, Env, TEST_KEY};
use distans_runtime::pseudonym_keys;

const TIMEOUT: Duration = Duration::from_secs(120);

const KEY_B: &str = "the-other-key-BBBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// Runs the ingester with `variables` until it exits (at most 60 s):
/// its exit status's success and its output.
fn run_to_exit(env: &Env, variables: &[(&str, &str)]) -> anyhow::Result<(bool, String)> {
    let mut command = env.command("ingester")?;
    command.envs(variables.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("the ingester did not exit within 60 s with {variables:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = String::new();
    child.stdout.take().map(|mut o| o.read_to_string(&mut output));
    child.stderr.take().map(|mut e| e.read_to_string(&mut output));
    Ok((status.success(), output))
}

/// The test line with another invoice id: the same patient.
fn line(invoice_id: &str) -> InvoiceLine {
    InvoiceLine { invoice_id: invoice_id.to_string(), ..distans_domain::testing::invoice_line() }
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Pseudonym {
    invoice_id: String,
    patient_pseudonym: String,
    pseudonym_key_version: u16,
}

fn fingerprint(key: &str) -> String {
    Pseudonymiser::new(key.as_bytes()).expect("key").fingerprint()
}

#[tokio::test(flavor = "multi_thread")]
async fn another_key_is_refused_unless_rotated_explicitly() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    let settings = env.settings();
    let topic = settings.pseudonym_keys_topic();
    let (a, b) = (fingerprint(TEST_KEY), fingerprint(KEY_B));

    // Key A: recorded as version 1 at the first start; its line carries version 1.
    let _sink = env.spawn("sink")?;
    let client = env.clickhouse.client();
    let mut ingester = env.spawn("ingester")?;
    produce::produce_lines(&settings, &[line("ZVF23210001152503000101")], false).await?;
    wait_for_lines(&client, 1, TIMEOUT).await?;
    ingester.terminate(Duration::from_secs(15));
    let recorded = pseudonym_keys::records(&settings.kafka, &topic).await?;
    assert_eq!(recorded.iter().map(|r| (r.version, r.fingerprint.as_str())).collect::<Vec<_>>(), [(1, a.as_str())]);
    assert_eq!(recorded[0].recorded_by, "distans-ingester");

    // Key B for version 1: refused, saying why.
    let (started, output) = run_to_exit(&env, &[("DISTANS__PSEUDONYM__KEY", KEY_B)])?;
    assert!(!started, "{output}");
    for needle in ["not the key recorded for pseudonym.key_version 1", &a, &b, "pseudonym.rotate = true"] {
        assert!(output.contains(needle), "{needle} missing from:\n{output}");
    }
    assert!(!output.contains(KEY_B) && !output.contains(TEST_KEY), "the key itself is never printed:\n{output}");
    eprintln!("key B for version 1:\n{output}");

    // Key B as version 2 without asking for a rotation: refused.
    let b_as_2 = [("DISTANS__PSEUDONYM__KEY", KEY_B), ("DISTANS__PSEUDONYM__KEY_VERSION", "2")];
    let (started, output) = run_to_exit(&env, &b_as_2)?;
    assert!(!started, "{output}");
    assert!(output.contains("pseudonym.key_version 2 is not recorded"), "{output}");
    assert_eq!(pseudonym_keys::records(&settings.kafka, &topic).await?.len(), 1, "nothing recorded");

    // With pseudonym.rotate: accepted and recorded as version 2.
    env.extra_variables.extend(b_as_2.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.extra_variables.insert("DISTANS__PSEUDONYM__ROTATE".into(), "true".into());
    let mut ingester = env.spawn("ingester")?;
    produce::produce_lines(&settings, &[line("ZVF23210001152503000102")], false).await?;
    wait_for_lines(&client, 2, TIMEOUT).await?;
    ingester.terminate(Duration::from_secs(15));
    let recorded = pseudonym_keys::records(&settings.kafka, &topic).await?;
    let versions: Vec<(u32, &str)> = recorded.iter().map(|r| (r.version, r.fingerprint.as_str())).collect();
    assert_eq!(versions, [(1, a.as_str()), (2, b.as_str())]);

    // The same patient under each key: two pseudonyms, each with its version.
    let rows: Vec<Pseudonym> = client
        .query(
            "SELECT invoice_id, patient_pseudonym, pseudonym_key_version FROM invoice_lines_current ORDER BY invoice_id",
        )
        .fetch_all()
        .await?;
    let patient = distans_domain::PatientId::parse("198112189876").expect("valid");
    let expected = |key: &str| Pseudonymiser::new(key.as_bytes()).expect("key").pseudonymise(&patient);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].patient_pseudonym.clone(), rows[0].pseudonym_key_version), (expected(TEST_KEY), 1));
    assert_eq!((rows[1].patient_pseudonym.clone(), rows[1].pseudonym_key_version), (expected(KEY_B), 2));
    assert_eq!(rows[0].invoice_id, "ZVF23210001152503000101");
    assert!(ingester.log_tail(50).contains("pseudonym key rotated"), "{}", ingester.log_tail(50));

    // Version 2 from now on, without rotate; version 1 is superseded.
    env.extra_variables.remove("DISTANS__PSEUDONYM__ROTATE");
    let mut ingester = env.spawn("ingester")?;
    ingester.terminate(Duration::from_secs(15));
    let (started, output) =
        run_to_exit(&env, &[("DISTANS__PSEUDONYM__KEY", TEST_KEY), ("DISTANS__PSEUDONYM__KEY_VERSION", "1")])?;
    assert!(!started, "{output}");
    assert!(output.contains("older than the latest recorded version 2"), "{output}");
    assert_eq!(pseudonym_keys::records(&settings.kafka, &topic).await?.len(), 2);

    // A listing register in clear text is pseudonymised with the same check:
    // with the retired key it is refused before anything is imported.
    let register = env.dir.path().join("listing.csv");
    std::fs::write(
        &register,
        "patient_id,unit_hsa_id,unit_name,unit_provider_org_number,provider_group,valid_from,valid_to\n\
         198112189876,SE2321000230-E000000000001,VC Ett,2321000230,,2024-01-01,\n",
    )?;
    let output = std::process::Command::new(distans_e2e::bin_dir().join("distans"))
        .env_clear()
        .envs(env.variables())
        .envs([("DISTANS__PSEUDONYM__KEY", TEST_KEY), ("DISTANS__PSEUDONYM__KEY_VERSION", "1")])
        .args(["listing", "import", register.to_str().expect("utf-8"), "--county", "23"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("older than the latest recorded version 2"), "{text}");
    Ok(())
}
