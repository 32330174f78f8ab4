//! What a message says, and its JSON for each webhook format. No I/O.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use distans_domain::money::Ore;
use distans_domain::rules::{Rule, Severity};
use distans_wire::TimedFinding;
use serde_json::{json, Value};

/// Line keys shown in one message, at most; the query finds them all.
const MAX_KEYS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Generic,
    Teams,
    Slack,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "generic" => Some(Format::Generic),
            "teams" => Some(Format::Teams),
            "slack" => Some(Format::Slack),
            _ => None,
        }
    }
}

/// The findings of one rule at one provider detected on one day. It is
/// serialised whole while pending (see `pending`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    pub rule_id: String,
    pub severity: Severity,
    pub buyer_org_number: String,
    pub provider_org_number: String,
    pub provider_name: String,
    pub day: NaiveDate,
    pub findings: usize,
    pub amount_at_stake_ore: i64,
    pub line_keys: BTreeSet<String>,
    /// The evidence of one finding, as an example.
    pub example: String,
    /// The latest amount at stake and line key per finding id: a finding
    /// published again with new figures counts once, at its latest amount.
    latest: std::collections::BTreeMap<String, (i64, String)>,
}

impl Digest {
    pub fn new(first: &TimedFinding, day: NaiveDate) -> Digest {
        let f = &first.finding;
        Digest {
            rule_id: f.rule_id.clone(),
            severity: f.severity,
            buyer_org_number: f.buyer_org_number.clone(),
            provider_org_number: f.provider_org_number.clone(),
            provider_name: f.provider_name.clone(),
            day,
            findings: 0,
            amount_at_stake_ore: 0,
            line_keys: BTreeSet::new(),
            example: f.evidence.clone(),
            latest: std::collections::BTreeMap::new(),
        }
    }

    pub fn add(&mut self, timed: &TimedFinding) {
        let f = &timed.finding;
        let key = f.line_keys.first().cloned().unwrap_or_default();
        self.latest.insert(f.finding_id.clone(), (f.amount_at_stake_ore, key));
        self.tally();
    }

    /// Whether the digest holds `finding_id`.
    pub fn holds(&self, finding_id: &str) -> bool {
        self.latest.contains_key(finding_id)
    }

    /// Leaves out a finding withdrawn before the digest was sent. Returns
    /// whether the digest held it.
    pub fn withdraw(&mut self, finding_id: &str) -> bool {
        let held = self.latest.remove(finding_id).is_some();
        self.tally();
        held
    }

    fn tally(&mut self) {
        self.findings = self.latest.len();
        self.amount_at_stake_ore = self.latest.values().map(|(amount, _)| amount).sum();
        self.line_keys = self.latest.values().map(|(_, key)| key.clone()).collect();
    }

    /// The SQL that lists the findings behind the digest.
    pub fn query(&self) -> String {
        distans_store::queries::findings_of_day_sql(&self.rule_id, &self.provider_org_number, &self.day.to_string())
    }
}

fn explanation(rule_id: &str) -> (&'static str, &'static str) {
    Rule::by_id(rule_id).map_or(("", ""), |r| (r.english, r.swedish))
}

/// One finding, sent at once.
pub fn finding(format: Format, timed: &TimedFinding) -> Value {
    let f = &timed.finding;
    let (english, swedish) = explanation(&f.rule_id);
    let title =
        format!("{} finding: {} at {} ({})", f.severity.as_str(), f.rule_id, f.provider_name, f.provider_org_number);
    let text = format!(
        "{}\n{}\nEvidence: {}\nAt stake: {}. Lines: {}. Finding id: {}.",
        english,
        swedish,
        f.evidence,
        Ore(f.amount_at_stake_ore),
        f.line_keys.join(", "),
        f.finding_id
    );
    match format {
        Format::Generic => json!({
            "kind": "finding",
            "finding_id": f.finding_id,
            "rule_id": f.rule_id,
            "severity": f.severity.as_str(),
            "explanation": {"en": english, "sv": swedish},
            "buyer_org_number": f.buyer_org_number,
            "provider_org_number": f.provider_org_number,
            "provider_name": f.provider_name,
            "performing_unit_hsa_id": f.performing_unit_hsa_id,
            "visit_date": f.visit_date.to_string(),
            "amount_at_stake_ore": f.amount_at_stake_ore,
            "evidence": f.evidence,
            "line_keys": f.line_keys,
            "detected_at_ms": timed.detected_at_ms,
        }),
        Format::Teams => teams(&title, &text),
        Format::Slack => json!({"text": format!("*{title}*\n{text}")}),
    }
}

/// A finding sent at once that no longer holds: a short withdrawal.
pub fn withdrawal(format: Format, timed: &TimedFinding) -> Value {
    let f = &timed.finding;
    let reason = f.status.withdrawal().map_or("", |w| w.as_str());
    let title = format!("withdrawn: {} at {} ({})", f.rule_id, f.provider_name, f.provider_org_number);
    let text = format!(
        "The finding {} about line {} no longer holds ({reason}). Återkallad: fyndet gäller inte längre.",
        f.finding_id,
        f.line_keys.first().map_or("", String::as_str)
    );
    match format {
        Format::Generic => json!({
            "kind": "withdrawal",
            "finding_id": f.finding_id,
            "rule_id": f.rule_id,
            "reason": reason,
            "provider_org_number": f.provider_org_number,
            "line_keys": f.line_keys,
            "detected_at_ms": timed.detected_at_ms,
        }),
        Format::Teams => teams(&title, &text),
        Format::Slack => json!({"text": format!("*{title}*\n{text}")}),
    }
}

/// A group of findings, sent as one message.
pub fn digest(format: Format, d: &Digest) -> Value {
    let (english, swedish) = explanation(&d.rule_id);
    let keys: Vec<&String> = d.line_keys.iter().take(MAX_KEYS).collect();
    let title = format!(
        "{} {} finding(s) at {} ({}) on {}",
        d.findings, d.rule_id, d.provider_name, d.provider_org_number, d.day
    );
    let text = format!(
        "{}\n{}\nAt stake: {}. Example: {}\nLines (first {}): {}\nAll of them: {}",
        english,
        swedish,
        Ore(d.amount_at_stake_ore),
        d.example,
        keys.len(),
        keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
        d.query()
    );
    match format {
        Format::Generic => json!({
            "kind": "digest",
            "rule_id": d.rule_id,
            "severity": d.severity.as_str(),
            "explanation": {"en": english, "sv": swedish},
            "buyer_org_number": d.buyer_org_number,
            "provider_org_number": d.provider_org_number,
            "provider_name": d.provider_name,
            "day": d.day.to_string(),
            "findings": d.findings,
            "amount_at_stake_ore": d.amount_at_stake_ore,
            "line_keys": keys,
            "example": d.example,
            "query": d.query(),
        }),
        Format::Teams => teams(&title, &text),
        Format::Slack => json!({"text": format!("*{title}*\n{text}")}),
    }
}

/// A Microsoft Teams incoming-webhook MessageCard.
fn teams(title: &str, text: &str) -> Value {
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title,
        "title": title,
        "text": text.replace('\n', "\n\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::rules::{Finding, DOUBLE_INVOICING, LISTED_AT_SAME_GROUP, WRONG_PRICE};
    use distans_domain::testing;

    /// The fixture finding with the amount these tests add up and a
    /// pseudonym they look for in the messages.
    fn timed(rule: &Rule, key: &str) -> TimedFinding {
        let finding = Finding {
            amount_at_stake_ore: 15_000,
            patient_pseudonym: Some("ab".into()),
            ..testing::finding(rule, key)
        };
        TimedFinding { finding, detected_at_ms: 0 }
    }

    #[test]
    fn a_digest_counts_and_sums() {
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let mut d = Digest::new(&a, "2025-03-01".parse().expect("date"));
        d.add(&a);
        d.add(&timed(&WRONG_PRICE, "ZVF1:2"));
        let v = digest(Format::Generic, &d);
        assert_eq!(v["findings"], 2);
        assert_eq!(v["amount_at_stake_ore"], 30_000);
        assert_eq!(v["line_keys"], json!(["ZVF1:1", "ZVF1:2"]));
        assert_eq!(v["query"], distans_store::queries::findings_of_day_sql("wrong_price", "5591000010", "2025-03-01"));
        assert!(v["explanation"]["sv"].as_str().is_some_and(|s| s.contains("taxan")));
    }

    #[test]
    fn a_finding_published_again_counts_once_at_its_latest_amount() {
        let first = timed(&LISTED_AT_SAME_GROUP, "ZVF559100001225 01:listed_at_same_group:HC");
        let mut again = first.clone();
        again.finding.amount_at_stake_ore = 40_000;
        let mut d = Digest::new(&first, "2025-03-01".parse().expect("date"));
        d.add(&first);
        d.add(&again);
        assert_eq!((d.findings, d.amount_at_stake_ore), (1, 40_000));
    }

    #[test]
    fn formats() {
        let a = timed(&DOUBLE_INVOICING, "ZVF1:1");
        let teams = finding(Format::Teams, &a);
        assert_eq!(teams["@type"], "MessageCard");
        assert!(teams["title"].as_str().is_some_and(|t| t.contains("double_invoicing")));
        let slack = finding(Format::Slack, &a);
        assert!(slack["text"].as_str().is_some_and(|t| t.starts_with("*high finding: double_invoicing")));
        let generic = finding(Format::Generic, &a);
        assert_eq!(generic["kind"], "finding");
        assert_eq!(generic["finding_id"], a.finding.finding_id);
        assert!(!generic.to_string().contains("\"ab\""), "no pseudonym in alerts to people");
    }

    #[test]
    fn amounts_read_as_swedish_kronor_with_their_sign() {
        let mut a = timed(&WRONG_PRICE, "ZVF1:1");
        a.finding.amount_at_stake_ore = 123_450;
        let slack = finding(Format::Slack, &a);
        assert!(slack["text"].as_str().is_some_and(|t| t.contains("At stake: 1 234,50 kr.")), "{slack}");
        a.finding.amount_at_stake_ore = -50;
        let mut d = Digest::new(&a, "2025-03-01".parse().expect("date"));
        d.add(&a);
        let slack = digest(Format::Slack, &d);
        assert!(slack["text"].as_str().is_some_and(|t| t.contains("At stake: -0,50 kr.")), "{slack}");
    }

    #[test]
    fn a_withdrawn_finding_leaves_the_digest_and_a_short_withdrawal_names_it() {
        use distans_domain::rules::{FindingStatus, Withdrawal, DOUBLE_INVOICING, WRONG_PRICE};
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let b = timed(&WRONG_PRICE, "ZVF1:2");
        let mut d = Digest::new(&a, "2025-03-01".parse().expect("date"));
        d.add(&a);
        d.add(&b);
        assert!(d.withdraw(&a.finding.finding_id));
        assert!(!d.withdraw(&a.finding.finding_id), "held once");
        assert_eq!((d.findings, d.amount_at_stake_ore), (1, 15_000));
        assert_eq!(d.line_keys.iter().collect::<Vec<_>>(), ["ZVF1:2"]);
        let mut gone = timed(&DOUBLE_INVOICING, "ZVF1:3");
        gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
        let v = withdrawal(Format::Generic, &gone);
        assert_eq!(v["kind"], "withdrawal");
        assert_eq!(v["reason"], "credited");
        assert_eq!(v["finding_id"], gone.finding.finding_id);
        let slack = withdrawal(Format::Slack, &gone);
        assert!(slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("withdrawn: double_invoicing") && t.contains("credited")));
    }
}
