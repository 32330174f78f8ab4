//! End-to-end: every identity and invoice id that validation newly accepts
//! (issue 11) reaches ClickHouse as a valid line, with the kind, age group
//! and sex the number says, through the real broker, ingester and sink.

use std::time::Duration;

use distans_cli::cmd::produce;
use distans_domain::{testing, InvoiceLine};
use distans_e2e::{http_get, metric, poll_until, wait_for_lines, Env, Running};
use distans_runtime::dead_letters;

const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Partition {
    partition: String,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Stored {
    invoice_id: String,
    line_number: u32,
    patient_id_kind: String,
    age_years: Option<u8>,
    age_group: String,
    sex: String,
}

/// One case: the line's patient id, invoice id and line number (and a
/// change), and what ClickHouse must hold for it: kind, age, age group, sex.
struct Case {
    what: &'static str,
    patient_id: &'static str,
    invoice_id: &'static str,
    line_number: i32,
    change: fn(&mut InvoiceLine),
    /// What ClickHouse holds: the kind of id, age in years, age group, sex.
    expected: (&'static str, Option<u8>, &'static str, &'static str),
}

/// The fixture line (visit 2025-03-02, seller 2321000115, buyer 2321000198,
/// county 23) with the sex left to the patient id.
fn line(case: &Case) -> InvoiceLine {
    let mut line = InvoiceLine {
        patient_id: case.patient_id.into(),
        invoice_id: case.invoice_id.into(),
        line_number: case.line_number,
        patient_sex: None,
        ..testing::invoice_line()
    };
    (case.change)(&mut line);
    line
}

fn unchanged(_: &mut InvoiceLine) {}

/// Region Stockholm (2321000016) as the buyer: its reservnummer format applies.
fn bought_by_stockholm(line: &mut InvoiceLine) {
    line.buyer_org_number = "2321000016".into();
    line.patient_county_code = "01".into();
    line.patient_municipality_code = "0180".into();
}

/// A channel outside video/chat/phone: a check without a source, so a warning.
fn fax(line: &mut InvoiceLine) {
    line.contact_channel = Some("fax".into());
}

const CASES: [Case; 7] = [
    Case {
        what: "samordningsnummer, birth month and day unknown (the issue's example)",
        patient_id: "198500603835",
        invoice_id: "2025-000123",
        line_number: 1,
        change: unchanged,
        expected: ("samordningsnummer", Some(39), "19-39", "male"),
    },
    Case {
        what: "samordningsnummer, birth day unknown (February 1985): 40 after 28 February",
        patient_id: "198502609848",
        invoice_id: "F123456",
        line_number: 1,
        change: unchanged,
        expected: ("samordningsnummer", Some(40), "40-64", "female"),
    },
    Case {
        what: "samordningsnummer, birth month unknown (day 1): 40 only from 1 December",
        patient_id: "198500619856",
        invoice_id: "F123456",
        line_number: 2,
        change: unchanged,
        expected: ("samordningsnummer", Some(39), "19-39", "male"),
    },
    Case {
        what: "reservnummer in Region Stockholm's format, sex from the 11th digit",
        patient_id: "992025123466",
        invoice_id: "2025-000124",
        line_number: 1,
        change: bought_by_stockholm,
        expected: ("reserve", None, "unknown", "female"),
    },
    Case {
        what: "reservnummer in Inera's NRID format (every region), birth date unknown",
        patient_id: "00252040AB14",
        // Shorter than 14 characters: `substring(invoice_id, 14, 4)` is ''.
        invoice_id: "F1",
        line_number: 1,
        change: unchanged,
        expected: ("reserve", None, "unknown", "male"),
    },
    Case {
        what: "the fixture's ZVF invoice id, still accepted (no seller numbering configured)",
        patient_id: "198112189876",
        invoice_id: "ZVF23210001152503000042",
        line_number: 1,
        change: unchanged,
        expected: ("personnummer", Some(43), "40-64", "male"),
    },
    Case {
        what: "a line that fails an unsourced check: accepted, the warning counted",
        patient_id: "198112189876",
        invoice_id: "Faktura 7/2025",
        line_number: 1,
        change: fax,
        expected: ("personnummer", Some(43), "40-64", "male"),
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn newly_accepted_identities_and_invoice_ids_reach_clickhouse() -> anyhow::Result<()> {
    let Running { env, settings, client, services: [_ingester, _sink] } = Env::start()?.run(["ingester", "sink"])?;

    let lines: Vec<InvoiceLine> = CASES.iter().map(line).collect();
    produce::produce_lines(&settings, &lines, false).await?;

    let totals = wait_for_lines(&client, CASES.len() as u64, TIMEOUT).await?;
    assert_eq!(totals.lines, CASES.len() as u64, "every line is valid");

    let stored: Vec<Stored> = client
        .query(
            "SELECT invoice_id, line_number, patient_id_kind, age_years, age_group, sex \
             FROM invoice_lines_current ORDER BY invoice_id, line_number",
        )
        .fetch_all()
        .await?;
    for case in &CASES {
        let row = stored
            .iter()
            .find(|r| r.invoice_id == case.invoice_id && r.line_number == case.line_number as u32)
            .unwrap_or_else(|| panic!("{}: not in ClickHouse ({stored:?})", case.what));
        let got = (row.patient_id_kind.as_str(), row.age_years, row.age_group.as_str(), row.sex.as_str());
        assert_eq!(got, case.expected, "{}", case.what);
        eprintln!("{}: {row:?}", case.what);
    }

    // invoice_line_versions is not partitioned (migration 0008): every
    // line, whatever its id's shape, is in the one partition, so two
    // versions of a line always meet and collapse.
    let partitions: Vec<Partition> = client
        .query(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' AND table = 'invoice_line_versions' \
             AND active ORDER BY partition",
            distans_e2e::DATABASE
        ))
        .fetch_all()
        .await?;
    let partitions: Vec<&str> = partitions.iter().map(|p| p.partition.as_str()).collect();
    eprintln!("invoice_line_versions partitions: {partitions:?}");
    assert_eq!(partitions, ["tuple()"], "one partition");

    // Nothing was dead-lettered, and the unsourced check was counted.
    let letters = dead_letters::read_all(&settings, &settings.topics.dead_letter, Duration::from_secs(5))?;
    assert!(letters.is_empty(), "dead letters: {:?}", dead_letters::count_by_reason(&letters));
    poll_until("the warning to be counted", TIMEOUT, async || {
        let (_, page) = http_get(env.ingester_http, "/metrics")?;
        let name = "distans_ingester_line_warnings_total{reason=\"invalid_contact_channel\"}";
        let value = metric(&page, name).unwrap_or(0.0);
        anyhow::ensure!(value >= 1.0, "{name} is {value}");
        Ok(())
    })
    .await?;
    Ok(())
}
