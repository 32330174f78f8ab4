//! End-to-end: records larger than distans can forward
//! (`kafka.max_record_bytes`) among normal ones. The ingester moves on: each
//! becomes a dead letter (`record_too_large` for a valid line), cut to fit
//! with its size and SHA-256, and every other line reaches ClickHouse.
//!
//! The limit is distans' own setting, made small here; the test does not
//! rely on the broker's limits (tansu 0.6 enforces none on produce).

use std::time::Duration;

use distans_cli::cmd::produce;
use distans_e2e::{http_get, poll_until, wait_for_lines, Env};
use distans_runtime::dead_letters;
use distans_runtime::kafka;
use distans_synth::generate::{self, Options};

const TIMEOUT: Duration = Duration::from_secs(300);

/// The services' largest record: a normal enriched line is well under 1 KB.
const MAX_RECORD_BYTES: usize = 20_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_record_too_large_to_forward_is_dead_lettered_and_the_rest_arrives() -> anyhow::Result<()> {
    let mut env = Env::start()?;
    env.extra_variables.insert("DISTANS__KAFKA__MAX_RECORD_BYTES".into(), MAX_RECORD_BYTES.to_string());
    let settings = env.settings();
    assert_eq!(settings.kafka.max_record_bytes, MAX_RECORD_BYTES);
    // The regions' side may send larger records than distans forwards: the
    // input topic is created (by the producer) with the default limit
    // before the ingester would create it with its own.
    let mut regions = settings.clone();
    regions.kafka.max_record_bytes = 1_000_000;
    kafka::ensure_topics(&regions.kafka, &[&settings.topics.input]).await?;

    let _ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;

    let mut options = Options::new("23", 2025, 1_000, 21, &settings.detector.rules);
    options.invalid_share = 0.0;
    let data = generate::generate(&options, &settings.tariffs).expect("generates");
    assert_eq!(data.summary.valid, data.lines.len());
    let template = data.lines.iter().find(|l| l.invoice_type == "380").expect("an invoice line").clone();
    // A valid line with 6 000 diagnosis codes (about 36 KB; free text is
    // limited to 256 characters, codes are not): its enriched record would
    // be larger than the limit.
    let mut too_large = template.clone();
    too_large.line_number = 900;
    too_large.diagnosis_codes = vec!["J06.9".to_string(); 6_000];
    // An invalid line as large: its dead letter cannot hold all of it.
    let mut invalid_too_large = too_large.clone();
    invalid_too_large.line_number = 0;
    let mut lines = data.lines.clone();
    lines.insert(lines.len() / 3, too_large.clone());
    lines.insert(2 * lines.len() / 3, invalid_too_large.clone());
    produce::produce_lines(&regions, &lines, false).await?;

    let client = env.clickhouse.client();
    let totals = wait_for_lines(&client, data.summary.valid as u64, TIMEOUT).await?;
    assert_eq!(totals.lines, data.summary.valid as u64, "every other line, and only them");
    assert_eq!(totals.net_amount_ore, data.summary.valid_net_amount_ore);

    let letters = poll_until("two dead letters", TIMEOUT, async || {
        let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(30))?;
        anyhow::ensure!(letters.len() >= 2, "{} dead letters", letters.len());
        Ok(letters)
    })
    .await?;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (letter, line, reason) in
        [(&letters, &too_large, "record_too_large"), (&letters, &invalid_too_large, "invalid_line_number")].map(
            |(letters, line, reason)| {
                let key = line.key().into_bytes();
                let letter = letters.iter().find(|l| l.source_key.as_deref() == Some(&key[..])).expect("dead-lettered");
                (letter, line, reason)
            },
        )
    {
        let original = distans_wire::Codec::embedded().encode_invoice_line(line)?;
        assert_eq!(letter.reason_code, reason, "{}", letter.reason);
        assert!(original.len() > MAX_RECORD_BYTES, "the input was larger than can be forwarded");
        assert!(original.starts_with(&letter.original), "a prefix of the original");
        assert!(letter.original.len() > MAX_RECORD_BYTES / 2, "most of it: {}", letter.original.len());
        let size = format!("of {} bytes, sha256 ", original.len());
        assert!(letter.reason.contains(&size), "{}", letter.reason);
        assert_eq!(letter.source_topic, settings.topics.input);
    }

    // Counted once delivered.
    let (_, page) = http_get(env.ingester_http, "/metrics")?;
    for reason in ["record_too_large", "invalid_line_number"] {
        let line = format!("distans_ingester_records_dead_lettered_total{{reason=\"{reason}\"}} 1");
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }
    Ok(())
}

/// The measured failures of issue 12, at the default limit (1 000 000 bytes):
/// a valid line of about 1 MB (many diagnosis codes) whose enriched record is
/// over the limit, and an invalid line just under it whose dead letter
/// (original + reasons) is over it. Both used to be retried forever, stalling
/// the ingester; now both are dead letters and the lines after them arrive.
#[tokio::test(flavor = "multi_thread")]
async fn lines_of_about_a_megabyte_at_the_default_limit_do_not_stall_the_ingester() -> anyhow::Result<()> {
    let env = Env::start()?;
    let settings = env.settings();
    assert_eq!(settings.kafka.max_record_bytes, 1_000_000, "the default");
    let _ingester = env.spawn("ingester")?;
    let _sink = env.spawn("sink")?;

    let mut options = Options::new("23", 2025, 200, 22, &settings.detector.rules);
    options.invalid_share = 0.0;
    let data = generate::generate(&options, &settings.tariffs).expect("generates");
    let template = data.lines.iter().find(|l| l.invoice_type == "380").expect("an invoice line").clone();
    let codec = distans_wire::Codec::embedded();
    // As large as the producer takes: diagnosis codes (free text is limited
    // to 256 characters, codes are not) and a few characters of the name
    // that fill the record to the limit (the enriched line, with its
    // pseudonym and enrichment, is larger).
    let sized = |line_number: i32| -> anyhow::Result<distans_domain::InvoiceLine> {
        let mut line = template.clone();
        line.line_number = line_number;
        let size = |line: &distans_domain::InvoiceLine| -> anyhow::Result<usize> {
            Ok(codec.encode_invoice_line(line)?.len() + line.key().len() + kafka::RECORD_OVERHEAD_BYTES)
        };
        let codes = (1_000_000 - size(&line)?) / 6 - 4;
        line.diagnosis_codes.extend(std::iter::repeat_n("J06.9".to_string(), codes));
        let short = 1_000_000 - size(&line)?;
        line.provider_name = format!("{}{}", line.provider_name, "x".repeat(short));
        while size(&line)? > 1_000_000 {
            line.provider_name.pop();
        }
        anyhow::ensure!(line.provider_name.chars().count() <= 256, "the name stays within the limit");
        Ok(line)
    };
    let valid = sized(901)?;
    let invalid = sized(0)?;
    let mut lines = data.lines.clone();
    lines.insert(50, valid.clone());
    lines.insert(150, invalid.clone());
    produce::produce_lines(&settings, &lines, false).await?;

    let client = env.clickhouse.client();
    let totals = wait_for_lines(&client, data.summary.valid as u64, TIMEOUT).await?;
    assert_eq!(totals.lines, data.summary.valid as u64);
    let letters = poll_until("two dead letters", TIMEOUT, async || {
        let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(30))?;
        anyhow::ensure!(letters.len() >= 2, "{} dead letters", letters.len());
        Ok(letters)
    })
    .await?;
    let reason_of = |line: &distans_domain::InvoiceLine| {
        let key = line.key().into_bytes();
        letters.iter().find(|l| l.source_key.as_deref() == Some(&key[..])).map(|l| l.reason_code.clone())
    };
    assert_eq!(reason_of(&valid).as_deref(), Some("record_too_large"));
    assert_eq!(reason_of(&invalid).as_deref(), Some("invalid_line_number"));
    Ok(())
}
