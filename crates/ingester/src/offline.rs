//! The pipeline in process, without a broker or ClickHouse: for `distans
//! audit` and as the reference the tests compare the pipeline with.
//!
//! Each line goes the way a record goes through the services: encoded as
//! `distans produce` encodes it, through the ingester's [`Processor`]
//! (validation, pseudonymisation, enrichment, the dead letter and its
//! reasons), and a valid line decoded from its payload into the detector's
//! [`RuleEngine`]. Lines are versioned in the order they are taken, on
//! partition 0 of a topic named by the caller (the file name): a later line
//! with the same identity is a correction of an earlier one, as a later
//! record on one partition is. The rules judged in ClickHouse
//! ([`Judged::InClickHouse`]) need the monthly aggregates and are left out
//! ([`Audit::left_out`]).

use distans_domain::enrich::Provenance;
use distans_domain::rules::{Finding, FindingStatus, Judged, Rule, RuleEngine, RuleSettings, RULES};
use distans_domain::{InvoiceLine, Pseudonymiser, ReasonCode, Tariffs, Validation};
use distans_wire::{Codec, DeadLetterViolation};
use serde_json::{json, Value};

use crate::{IngesterError, Processor, Routed};

/// A line the ingester rejects: a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where the line came from: the topic (file name) and its position.
    pub source: Provenance,
    /// The line's row in its file, as the caller numbered it (1-based).
    pub row: usize,
    pub line_key: String,
    /// `net_amount_ore` as the line states it.
    pub net_amount_ore: i64,
    /// The first reason, as the dead-letter topic's `reason_code`.
    pub reason: ReasonCode,
    /// Every reason, as the dead letter carries them.
    pub violations: Vec<DeadLetterViolation>,
}

/// What the pipeline makes of a set of lines.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Lines taken.
    pub lines: usize,
    /// Valid lines with a warning of a check configured to warn.
    pub warned: usize,
    /// The dead letters, in the order the lines were taken.
    pub dead_letters: Vec<Rejected>,
    /// The active findings, in the order of [`RULES`], then by visit date
    /// and line key.
    pub findings: Vec<Finding>,
    /// The enabled rules judged in ClickHouse, which an audit cannot judge.
    pub left_out: Vec<&'static Rule>,
}

/// The ingester and the detector's rules, in process.
#[derive(Debug)]
pub struct InProcess {
    processor: Processor,
    codec: Codec,
    engine: RuleEngine,
    next_offset: i64,
    warned: usize,
    dead_letters: Vec<Rejected>,
}

impl InProcess {
    /// With the ingester's tariffs, key and validation and the detector's rules.
    pub fn new(tariffs: Tariffs, pseudonymiser: Pseudonymiser, validation: Validation, rules: RuleSettings) -> Self {
        InProcess {
            processor: Processor::new(Codec::embedded(), tariffs, pseudonymiser, validation),
            codec: Codec::embedded(),
            engine: RuleEngine::new(rules),
            next_offset: 0,
            warned: 0,
            dead_letters: Vec::new(),
        }
    }

    /// Routes as an ingester with `kafka.max_record_bytes` = `bytes` would:
    /// a line whose enriched record would be larger is a `record_too_large`
    /// dead letter (the default is the setting's default, 1 000 000).
    pub fn with_max_record_bytes(self, bytes: usize) -> Self {
        InProcess { processor: self.processor.with_max_record_bytes(bytes), ..self }
    }

    /// Takes the next line, from `topic` (a file's name) at `row` (its line
    /// in the file, for people), as the newest version of its identity.
    pub fn take(&mut self, topic: &str, row: usize, line: &InvoiceLine) -> Result<(), IngesterError> {
        let source = Provenance { topic: topic.to_string(), partition: 0, offset: self.next_offset };
        self.next_offset += 1;
        let key = line.key().into_bytes();
        let value = self.codec.encode_invoice_line(line)?;
        match self.processor.process(Some(&key), Some(&value), &source, 0)? {
            Routed::Valid { payload, warnings, .. } => {
                let enriched = self.codec.decode_enriched_line(&payload)?;
                self.warned += usize::from(!warnings.is_empty());
                self.engine.observe(&enriched);
            }
            Routed::DeadLetter { payload, reason, .. } => {
                let letter = self.codec.decode_dead_letter(&payload)?;
                self.dead_letters.push(Rejected {
                    source,
                    row,
                    line_key: line.key(),
                    net_amount_ore: line.net_amount_ore,
                    reason,
                    violations: letter.violations,
                });
            }
        }
        Ok(())
    }

    /// The dead letters and the findings active after every line taken.
    pub fn finish(self) -> Audit {
        let rank = |rule_id: &str| RULES.iter().position(|r| r.id == rule_id).unwrap_or(RULES.len());
        let mut findings: Vec<Finding> =
            self.engine.active_findings().filter(|f| f.status == FindingStatus::Active).cloned().collect();
        findings.sort_by(|a, b| {
            (rank(&a.rule_id), a.visit_date, &a.line_keys).cmp(&(rank(&b.rule_id), b.visit_date, &b.line_keys))
        });
        let settings = self.engine.settings();
        let left_out = RULES
            .iter()
            .copied()
            .filter(|rule| matches!(rule.judged, Judged::InClickHouse) && settings.enabled(rule))
            .collect();
        Audit {
            lines: usize::try_from(self.next_offset).unwrap_or(usize::MAX),
            warned: self.warned,
            dead_letters: self.dead_letters,
            findings,
            left_out,
        }
    }
}

impl Audit {
    /// What was judged and what was left out, in a sentence.
    pub fn note(&self) -> String {
        let ids: Vec<&str> = self.left_out.iter().map(|r| r.id).collect();
        format!(
            "{} lines, {} dead letter(s), {} active finding(s). Left out (judged in ClickHouse over a month's \
             lines and the listing register): {}.",
            self.lines,
            self.dead_letters.len(),
            self.findings.len(),
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        )
    }

    /// One JSON object per line: a note (`kind` `note`, `left_out`,
    /// `message`), the dead letters, then the active findings. Each of these
    /// has `kind` (`dead_letter`, `finding`), `reason` (the dead letter's
    /// [`ReasonCode`]) or `rule`, `line_key` (for a finding, the line it is
    /// about; the others in `related_line_keys`), `status` (`rejected`,
    /// `active`) and `amount_at_stake_ore` (for a dead letter, its net amount).
    pub fn json_lines(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "kind": "note",
            "left_out": self.left_out.iter().map(|r| r.id).collect::<Vec<_>>(),
            "message": self.note(),
        })];
        out.extend(self.dead_letters.iter().map(|d| {
            let problems: Vec<Value> =
                d.violations.iter().map(|v| json!({"code": v.code, "field": v.field, "message": v.message})).collect();
            json!({
                "kind": "dead_letter",
                "reason": d.reason.as_str(),
                "line_key": d.line_key,
                "status": "rejected",
                "amount_at_stake_ore": d.net_amount_ore,
                "file": d.source.topic,
                "row": d.row,
                "problems": problems,
            })
        }));
        out.extend(self.findings.iter().map(|f| {
            json!({
                "kind": "finding",
                "rule": f.rule_id,
                "severity": f.severity.as_str(),
                "line_key": f.line_keys.first(),
                "related_line_keys": f.line_keys.get(1..).unwrap_or_default(),
                "status": f.status.as_str(),
                "amount_at_stake_ore": f.amount_at_stake_ore,
                "finding_id": f.finding_id,
                "provider_org_number": f.provider_org_number,
                "visit_date": f.visit_date.to_string(),
                "evidence": f.evidence,
            })
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use distans_runtime::Settings;
    use distans_synth::generate::{generate, invoice_id_patterns, Options};
    use distans_synth::profile::region_org_number;

    use super::*;
    use distans_domain::testing::invoice_line;

    /// `invoice_line()` on invoice `ZVF232100011525030000NN`, visited on `day` of March 2025.
    fn line(invoice: u32, day: u32, unit_price_ore: i64) -> InvoiceLine {
        let mut l = invoice_line();
        l.invoice_id = format!("ZVF2321000115250300{invoice:04}");
        l.visit_date = format!("2025-03-{day:02}").parse().expect("date");
        (l.unit_price_ore, l.gross_amount_ore, l.net_amount_ore, l.payable_amount_ore) =
            (unit_price_ore, unit_price_ore, unit_price_ore, unit_price_ore);
        l
    }

    /// A small file through the pipeline in process: a valid line, an invalid
    /// one, a wrong price corrected, a double invoicing, and a credit note
    /// that cancels a line with a wrong price.
    #[test]
    fn a_small_file_gives_its_dead_letters_and_active_findings() {
        let valid = line(42, 2, 50_000);
        let invalid = InvoiceLine { patient_id: "198112189875".into(), ..line(43, 3, 50_000) };
        let wrong_price = line(44, 5, 60_000);
        let corrected = line(44, 5, 50_000);
        let double = line(45, 2, 50_000);
        let credited = line(46, 9, 65_000);
        let credit_note = InvoiceLine {
            invoice_type: "381".into(),
            credited_invoice_id: Some(credited.invoice_id.clone()),
            ..line(47, 9, 65_000)
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("march.jsonl");
        let lines = [valid, invalid, wrong_price, corrected, double, credited, credit_note];
        let file = std::fs::File::create(&path).expect("creates");
        distans_files::invoices::write_json_lines(&lines, file).expect("writes");

        let settings = Settings::load_with_env(None, Some(BTreeMap::new())).expect("defaults");
        let key = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let validation = settings.validation().expect("compiles");
        let mut pipeline = InProcess::new(settings.tariffs.clone(), key, validation, settings.detector.rules.clone());
        for (row, line) in distans_files::invoices::read_rows(&path).expect("reads") {
            pipeline.take("march.jsonl", row, &line).expect("no bug");
        }
        let expected = [
            json!({
                "kind": "note",
                "left_out": ["provider_far_from_peers", "listed_at_same_group"],
                "message": "7 lines, 1 dead letter(s), 1 active finding(s). Left out (judged in ClickHouse over a \
                            month's lines and the listing register): provider_far_from_peers, listed_at_same_group.",
            }),
            json!({
                "kind": "dead_letter",
                "reason": "patient_id_check_digit",
                "line_key": "ZVF23210001152503000043:1",
                "status": "rejected",
                "amount_at_stake_ore": 50_000,
                "file": "march.jsonl",
                "row": 2,
                "problems": [{
                    "code": "patient_id_check_digit",
                    "field": "patient_id",
                    "message": "patient id fails its Luhn check digit",
                }],
            }),
            json!({
                "kind": "finding",
                "rule": "double_invoicing",
                "severity": "high",
                "line_key": "ZVF23210001152503000045:1",
                "related_line_keys": ["ZVF23210001152503000042:1"],
                "status": "active",
                "amount_at_stake_ore": 50_000,
                "finding_id": distans_domain::rules::finding_id("double_invoicing", "ZVF23210001152503000045:1"),
                "provider_org_number": "5567000004",
                "visit_date": "2025-03-02",
                "evidence": "the contact of 2025-03-02 is also invoiced on line ZVF23210001152503000042:1",
            }),
        ];
        assert_eq!(pipeline.finish().json_lines(), expected);
    }

    /// The audit routes as an ingester with the configured record limit
    /// would: a line whose enriched record is over it is a dead letter.
    #[test]
    fn a_line_over_the_record_limit_is_a_record_too_large_dead_letter() {
        let mut large = line(42, 2, 50_000);
        large.diagnosis_codes = (0..400).map(|i| format!("J{:02}.{}", i % 100, i % 10)).collect();
        let settings = Settings::load_with_env(None, Some(BTreeMap::new())).expect("defaults");
        let reasons = |limit: Option<usize>| {
            let key = Pseudonymiser::new(&[7u8; 32]).expect("key");
            let validation = settings.validation().expect("compiles");
            let mut pipeline =
                InProcess::new(settings.tariffs.clone(), key, validation, settings.detector.rules.clone());
            if let Some(bytes) = limit {
                pipeline = pipeline.with_max_record_bytes(bytes);
            }
            pipeline.take("big.jsonl", 1, &large).expect("no bug");
            pipeline.finish().dead_letters.iter().map(|d| d.reason).collect::<Vec<_>>()
        };
        assert_eq!(reasons(None), [], "within the default 1 000 000 bytes");
        assert_eq!(reasons(Some(2_000)), [ReasonCode::RecordTooLarge]);
    }

    /// A generated year through the pipeline in process gives the findings
    /// the generator injected, except those judged in ClickHouse, and a dead
    /// letter for each line it made invalid, with its reason.
    #[test]
    fn a_generated_year_gives_the_expected_findings() {
        let mut settings = Settings::load_with_env(None, Some(BTreeMap::new())).expect("defaults");
        settings.detector.rules.home_regions.insert(region_org_number("23"), "23".into());
        settings.validation.invoice_id_patterns = invoice_id_patterns();
        for (seed, lines) in [(5, 3_000), (42, 12_000)] {
            let mut options = Options::new("23", 2025, lines, seed, &settings.detector.rules);
            options.implausible_share = 0.06;
            let generated = generate(&options, &settings.tariffs).expect("generates");
            let key = Pseudonymiser::new(&[7u8; 32]).expect("key");
            let validation = settings.validation().expect("compiles");
            let mut pipeline =
                InProcess::new(settings.tariffs.clone(), key, validation, settings.detector.rules.clone());
            for (index, line) in generated.lines.iter().enumerate() {
                pipeline.take("year.jsonl", index + 1, line).expect("no bug");
            }
            let audit = pipeline.finish();
            let left_out: Vec<&str> = audit.left_out.iter().map(|r| r.id).collect();
            assert_eq!(left_out, ["provider_far_from_peers", "listed_at_same_group"]);
            let mut found: BTreeMap<String, usize> = BTreeMap::new();
            for finding in &audit.findings {
                *found.entry(finding.rule_id.clone()).or_default() += 1;
            }
            let mut expected = generated.summary.expected_findings.clone();
            expected.retain(|rule, _| !left_out.contains(&rule.as_str()));
            assert_eq!(found, expected, "seed {seed}");
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for letter in &audit.dead_letters {
                *reasons.entry(letter.reason.as_str().to_string()).or_default() += 1;
            }
            assert_eq!(reasons, generated.summary.invalid_by_reason, "seed {seed}");
            assert_eq!(audit.lines, generated.lines.len());
        }
    }
}
