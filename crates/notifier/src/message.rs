//! What a message says, in the staff's language, and its JSON for each
//! webhook format. No I/O.
//!
//! Every message says what was found in words: the rule's name and
//! meaning (from the rule catalogue), the provider, the home region, the
//! evidence, the amount at stake as "1 234,50 kr", the patient's pseudonym
//! only for the rules about one patient's pattern of contacts, and a link
//! to the dashboard filtered to the region, provider and rule.
//!
//! - generic: JSON described by `schemas/alert.v1.json` (`"schema":
//!   "distans.alert.v1"`); free text through [`text::printable`] (one line,
//!   no control or bidi character, at most 256 characters), JSON-escaped:
//!   the receiver escapes it for wherever it shows it.
//! - teams: an Adaptive Card 1.4 in the message a Teams Workflows webhook
//!   ("Post to a channel when a webhook request is received") expects:
//!   `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "content": card}]}`; free
//!   text through [`text::markdown`].
//! - slack: Block Kit (`blocks`, and `text` as the notification's
//!   fallback) for a Slack incoming webhook; free text through
//!   [`text::slack`], so `<!channel>` in a name pings no one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use distans_domain::money::Ore;
use distans_domain::rules::{Rule, Severity, Withdrawal};
use distans_domain::text::{self, Bilingual, Language};
use distans_wire::TimedFinding;

use crate::summary::{Span, Summary};
use reqwest::Url;
use serde_json::{json, Value};

/// The `schema` of generic payloads; `schemas/alert.v1.json` describes it.
pub const GENERIC_SCHEMA: &str = "distans.alert.v1";

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

    /// The messages per second the platform takes from one webhook, the
    /// default of `notifier.max_messages_per_second`:
    /// - Slack: 1. Slack's "Rate limits" (docs.slack.dev/apis/web-api/rate-limits):
    ///   incoming webhooks, one message per second per webhook, short bursts allowed.
    /// - Teams: 0.5. Microsoft's "Create incoming webhooks"
    ///   (learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook):
    ///   more than four requests in one second are throttled; a Workflows
    ///   webhook posts as the Flow bot, and bots posting to one conversation
    ///   are held to 1800 operations an hour ("Optimize your bot with rate
    ///   limiting in Teams", per bot per thread), i.e. 0.5 a second sustained.
    /// - Generic: 10, a receiver of our own; set it to what it takes.
    pub fn default_messages_per_second(self) -> f64 {
        match self {
            Format::Slack => 1.0,
            Format::Teams => 0.5,
            Format::Generic => 10.0,
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
    /// The evidence of one finding, as an example, in English.
    pub example: String,
    /// Its figures, to write it in the message's language (absent from
    /// digests persisted before they were kept, and for findings without).
    #[serde(default)]
    pub example_data: Option<distans_domain::rules::Evidence>,
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
            example_data: f.evidence_data.clone(),
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
    /// The ids of the findings it holds.
    pub fn finding_ids(&self) -> Vec<String> {
        self.latest.keys().cloned().collect()
    }

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
}

/// Free text for the generic payload: one line, no control or bidi
/// character, at most [`text::SHOWN_CHARS`] characters.
fn safe(s: &str) -> String {
    text::printable(s, text::SHOWN_CHARS).into_owned()
}

/// Rules about one patient's pattern of contacts: staff need the
/// pseudonym to find the patient's other lines, so only their messages
/// carry it.
/// What a finding or a digest is about: findings of one rule at one
/// provider, invoiced to one region, and their amount at stake (öre).
struct Findings<'a> {
    rule_id: &'a str,
    severity: Severity,
    buyer_org_number: &'a str,
    provider_org_number: &'a str,
    provider_name: &'a str,
    amount_at_stake_ore: i64,
}

/// The [`Findings`] of a `Finding` or a [`Digest`]: fields both have, by
/// the same names.
macro_rules! findings_of {
    ($f:expr) => {
        Findings {
            rule_id: &$f.rule_id,
            severity: $f.severity,
            buyer_org_number: &$f.buyer_org_number,
            provider_org_number: &$f.provider_org_number,
            provider_name: &$f.provider_name,
            amount_at_stake_ore: $f.amount_at_stake_ore,
        }
    };
}

const PATIENT_RULES: [&str; 3] = ["excessive_psychologist_contacts", "same_day_repeat", "contact_burst"];

/// How the notifier writes its messages: the format, the language, the
/// dashboard messages link to, and the names of the home regions.
#[derive(Debug, Clone)]
pub struct Messages {
    pub format: Format,
    pub language: Language,
    /// The dashboard's URL; each message links to it with `var-buyer`,
    /// `var-provider`, `var-rule` (and `var-year` for one finding). `None`:
    /// no link.
    pub dashboard: Option<Url>,
    /// Home region organisation number → name ("Region Jämtland Härjedalen").
    pub regions: BTreeMap<String, String>,
}

/// What one message says, before it is written in a format: plain text,
/// escaped by each format's writer.
struct Content {
    title: String,
    summary: String,
    facts: Vec<(&'static str, String)>,
    /// A second table under the facts (the first start's summary: one row
    /// per rule); empty for the other messages.
    breakdown: Vec<(String, String)>,
    link: Option<Url>,
}

impl Messages {
    /// Messages in `format` and `language`, without a dashboard link or
    /// region names.
    pub fn new(format: Format, language: Language) -> Messages {
        Messages { format, language, dashboard: None, regions: BTreeMap::new() }
    }

    fn say(&self, sv: &'static str, en: &'static str) -> &'static str {
        self.language.pick(sv, en)
    }

    fn rule_words(&self, rule_id: &str) -> (String, &'static str) {
        match Rule::by_id(rule_id) {
            Some(rule) => (rule.name.in_language(self.language).to_string(), rule.meaning.in_language(self.language)),
            None => (rule_id.to_string(), ""),
        }
    }

    fn severity(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::High => self.say("hög", "high"),
            Severity::Medium => self.say("medel", "medium"),
            Severity::Low => self.say("låg", "low"),
        }
    }

    fn region(&self, org_number: &str) -> String {
        match self.regions.get(org_number) {
            Some(name) => format!("{name} ({org_number})"),
            None => org_number.to_string(),
        }
    }

    /// The dashboard filtered to a region, provider and rule (and visit year).
    pub fn dashboard_link(&self, buyer: &str, provider: &str, rule_id: &str, year: Option<i32>) -> Option<Url> {
        let mut url = self.dashboard.clone()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("var-buyer", buyer);
            if let Some(year) = year {
                query.append_pair("var-year", &year.to_string());
            }
            query.append_pair("var-provider", provider);
            query.append_pair("var-rule", rule_id);
        }
        Some(url)
    }

    fn line_keys(keys: &[&str]) -> String {
        let shown: Vec<&str> = keys.iter().take(MAX_KEYS).copied().collect();
        let more = keys.len().saturating_sub(MAX_KEYS);
        if more == 0 {
            shown.join(", ")
        } else {
            format!("{} (+{more})", shown.join(", "))
        }
    }

    /// One finding, sent at once.
    pub fn finding(&self, timed: &TimedFinding) -> Value {
        let f = &timed.finding;
        let (rule_name, meaning) = self.rule_words(&f.rule_id);
        let amount = Ore(f.amount_at_stake_ore).to_string();
        let link =
            self.dashboard_link(&f.buyer_org_number, &f.provider_org_number, &f.rule_id, Some(f.visit_date.year()));
        let pseudonym = f.patient_pseudonym.as_ref().filter(|_| PATIENT_RULES.contains(&f.rule_id.as_str()));
        let title = match self.language {
            Language::Swedish => format!("{rule_name} hos {}", f.provider_name),
            Language::English => format!("{rule_name} at {}", f.provider_name),
        };
        if self.format == Format::Generic {
            let about = findings_of!(f);
            let details = json!({
                "finding_id": f.finding_id,
                "performing_unit_hsa_id": f.performing_unit_hsa_id,
                "visit_date": f.visit_date.to_string(),
                "evidence": safe(&f.evidence_in(self.language)),
                "line_keys": f.line_keys,
                "patient_pseudonym": pseudonym,
                "detected_at_ms": timed.detected_at_ms,
            });
            return self.generic("finding", &title, &about, link.as_ref(), details);
        }
        let keys: Vec<&str> = f.line_keys.iter().map(String::as_str).collect();
        let mut facts = vec![
            (self.say("Vårdgivare", "Provider"), format!("{} ({})", f.provider_name, f.provider_org_number)),
            (self.say("Belopp i fråga", "Amount at stake"), amount),
            (self.say("Underlag", "Evidence"), f.evidence_in(self.language)),
            (self.say("Besöksdag", "Visit date"), f.visit_date.to_string()),
            (self.say("Region", "Region"), self.region(&f.buyer_org_number)),
            (self.say("Allvarlighetsgrad", "Severity"), self.severity(f.severity).to_string()),
        ];
        if let Some(pseudonym) = pseudonym {
            facts.push((self.say("Patient (pseudonym)", "Patient (pseudonym)"), pseudonym.clone()));
        }
        facts.push((self.say("Fakturarader", "Invoice lines"), Self::line_keys(&keys)));
        facts.push((self.say("Fynd-id", "Finding id"), f.finding_id.clone()));
        self.write(Content { title, summary: meaning.to_string(), facts, breakdown: Vec::new(), link })
    }

    /// A finding sent at once that no longer holds: a short withdrawal.
    pub fn withdrawal(&self, timed: &TimedFinding) -> Value {
        let f = &timed.finding;
        let (rule_name, _) = self.rule_words(&f.rule_id);
        let withdrawal = f.status.withdrawal();
        let reason = withdrawal.map_or("", Withdrawal::as_str);
        let why = match withdrawal {
            Some(Withdrawal::Corrected) => {
                self.say("Raden har rättats i en ny version.", "The line was corrected in a new version.")
            }
            Some(Withdrawal::Credited) => {
                self.say("En kreditnota har tagit bort raden.", "A credit note cancelled the line.")
            }
            Some(Withdrawal::Superseded) => self.say(
                "Andra rader har ändrats så att fyndet inte längre gäller.",
                "Other lines changed, so the finding no longer holds.",
            ),
            None => "",
        };
        let link = self.dashboard_link(&f.buyer_org_number, &f.provider_org_number, &f.rule_id, None);
        let title = match self.language {
            Language::Swedish => format!("Återkallat: {rule_name} hos {}", f.provider_name),
            Language::English => format!("Withdrawn: {rule_name} at {}", f.provider_name),
        };
        if self.format == Format::Generic {
            return json!({
                "schema": GENERIC_SCHEMA,
                "kind": "withdrawal",
                "language": self.language.tag(),
                "title": safe(&title),
                "text": why,
                "finding_id": f.finding_id,
                "rule_id": f.rule_id,
                "rule_name": rule_name,
                "reason": reason,
                "buyer_org_number": f.buyer_org_number,
                "provider_org_number": f.provider_org_number,
                "provider_name": safe(&f.provider_name),
                "line_keys": f.line_keys,
                "detected_at_ms": timed.detected_at_ms,
                "dashboard_url": link.as_ref().map(Url::as_str),
            });
        }
        let summary = format!(
            "{} {why}",
            self.say("Fyndet gäller inte längre och kan strykas.", "The finding no longer holds and can be set aside.")
        );
        let keys: Vec<&str> = f.line_keys.iter().map(String::as_str).collect();
        let facts = vec![
            (self.say("Vårdgivare", "Provider"), format!("{} ({})", f.provider_name, f.provider_org_number)),
            (self.say("Fakturarader", "Invoice lines"), Self::line_keys(&keys)),
            (self.say("Fynd-id", "Finding id"), f.finding_id.clone()),
        ];
        self.write(Content { title, summary, facts, breakdown: Vec::new(), link })
    }

    /// A group of findings, sent as one message.
    pub fn digest(&self, d: &Digest) -> Value {
        let (rule_name, meaning) = self.rule_words(&d.rule_id);
        let amount = Ore(d.amount_at_stake_ore).to_string();
        let link = self.dashboard_link(&d.buyer_org_number, &d.provider_org_number, &d.rule_id, None);
        let keys: Vec<&str> = d.line_keys.iter().map(String::as_str).collect();
        let title = match self.language {
            Language::Swedish => format!("{} fynd: {rule_name} hos {}", d.findings, d.provider_name),
            Language::English => format!(
                "{} {}: {rule_name} at {}",
                d.findings,
                if d.findings == 1 { "finding" } else { "findings" },
                d.provider_name
            ),
        };
        if self.format == Format::Generic {
            let about = findings_of!(d);
            let shown: Vec<&str> = keys.iter().take(MAX_KEYS).copied().collect();
            let details = json!({
                "day": d.day.to_string(),
                "findings": d.findings,
                "line_keys": shown,
                "example": safe(&self.example(d)),
            });
            return self.generic("digest", &title, &about, link.as_ref(), details);
        }
        let facts = vec![
            (self.say("Vårdgivare", "Provider"), format!("{} ({})", d.provider_name, d.provider_org_number)),
            (self.say("Antal fynd", "Findings"), d.findings.to_string()),
            (self.say("Belopp i fråga", "Amount at stake"), amount),
            (self.say("Exempel", "Example"), self.example(d)),
            (self.say("Upptäckt", "Detected"), d.day.to_string()),
            (self.say("Region", "Region"), self.region(&d.buyer_org_number)),
            (self.say("Allvarlighetsgrad", "Severity"), self.severity(d.severity).to_string()),
            (self.say("Fakturarader", "Invoice lines"), Self::line_keys(&keys)),
        ];
        self.write(Content { title, summary: meaning.to_string(), facts, breakdown: Vec::new(), link })
    }

    /// A generic message about `about`: its `kind`, `title`, the rule's
    /// meaning, name, severity and explanation in both languages, the region,
    /// the provider, the amount at stake and the dashboard `link`; then the
    /// fields of `details` (a JSON object) that only its kind has.
    fn generic(&self, kind: &str, title: &str, about: &Findings<'_>, link: Option<&Url>, details: Value) -> Value {
        let (rule_name, meaning) = self.rule_words(about.rule_id);
        let explanation = Rule::by_id(about.rule_id).map_or(Bilingual { sv: "", en: "" }, |r| r.meaning);
        let mut message = json!({
            "schema": GENERIC_SCHEMA,
            "kind": kind,
            "language": self.language.tag(),
            "title": safe(title),
            "text": meaning,
            "rule_id": about.rule_id,
            "rule_name": rule_name,
            "severity": about.severity.as_str(),
            "explanation": {"en": explanation.en, "sv": explanation.sv},
            "buyer_org_number": about.buyer_org_number,
            "buyer_name": self.regions.get(about.buyer_org_number),
            "provider_org_number": about.provider_org_number,
            "provider_name": safe(about.provider_name),
            "amount_at_stake_ore": about.amount_at_stake_ore,
            "amount_at_stake": Ore(about.amount_at_stake_ore).to_string(),
            "dashboard_url": link.map(Url::as_str),
        });
        if let (Value::Object(message), Value::Object(details)) = (&mut message, details) {
            message.extend(details);
        }
        message
    }

    /// A digest's example evidence in the message's language (English when
    /// only its text is known).
    fn example(&self, d: &Digest) -> String {
        d.example_data.as_ref().map_or_else(|| d.example.clone(), |e| e.text(self.language))
    }

    /// "12 fynd, 3 450 kr" / "12 findings, 3 450 kr".
    fn count_and_amount(&self, findings: usize, amount_ore: i64) -> String {
        let amount = Ore(amount_ore);
        match self.language {
            Language::Swedish => format!("{findings} fynd, {amount}"),
            Language::English if findings == 1 => format!("1 finding, {amount}"),
            Language::English => format!("{findings} findings, {amount}"),
        }
    }

    /// The first start's summary: the findings already in the alerts topic
    /// when this notifier group first started, as one message (per rule:
    /// open findings and amount at stake, largest first; the totals; the
    /// visit dates; the withdrawn ones as a number), linking to the
    /// dashboard (filtered to the home region when there is one).
    pub fn summary(&self, s: &Summary) -> Value {
        let rules = s.rules_by_amount();
        let amount = Ore(s.amount_at_stake_ore).to_string();
        let buyer = (s.buyers.len() == 1).then(|| s.buyers.iter().next()).flatten();
        let link = self.dashboard.clone().map(|mut url| {
            if let Some(buyer) = buyer {
                url.query_pairs_mut().append_pair("var-buyer", buyer);
            }
            url
        });
        let title = match self.language {
            Language::Swedish => format!("Sammanfattning: {} öppna fynd från före start", s.findings),
            Language::English if s.findings == 1 => "Summary: 1 open finding from before the start".to_string(),
            Language::English => format!("Summary: {} open findings from before the start", s.findings),
        };
        let text = self.say(
            "Aviseringen startade för första gången och fann fynd som redan fanns. De skickas inte ett och ett: \
             här är de per regel, och alla finns i dashboarden. Nya fynd skickas som vanligt.",
            "The notifier started for the first time and found findings already there. They are not sent one \
             by one: here they are per rule, and all are in the dashboard. New findings are sent as usual.",
        );
        let visits = match s.visits {
            Some(Span { first, last }) if first == last => first.to_string(),
            Some(Span { first, last }) => format!("{first} – {last}"),
            None => String::new(),
        };
        if self.format == Format::Generic {
            let rules: Vec<Value> = rules
                .iter()
                .map(|(id, t)| {
                    json!({
                        "rule_id": id,
                        "rule_name": self.rule_words(id).0,
                        "severity": t.severity.as_str(),
                        "findings": t.findings,
                        "amount_at_stake_ore": t.amount_at_stake_ore,
                        "amount_at_stake": Ore(t.amount_at_stake_ore).to_string(),
                    })
                })
                .collect();
            return json!({
                "schema": GENERIC_SCHEMA,
                "kind": "summary",
                "language": self.language.tag(),
                "title": title,
                "text": text,
                "findings": s.findings,
                "amount_at_stake_ore": s.amount_at_stake_ore,
                "amount_at_stake": amount,
                "withdrawn": s.withdrawn,
                "rules": rules,
                "first_visit_date": s.visits.map(|v| v.first.to_string()),
                "last_visit_date": s.visits.map(|v| v.last.to_string()),
                "first_detected_at_ms": s.detected_ms.map(|t| t.first),
                "last_detected_at_ms": s.detected_ms.map(|t| t.last),
                "buyer_org_numbers": s.buyers,
                "dashboard_url": link.as_ref().map(Url::as_str),
            });
        }
        let regions: Vec<String> = s.buyers.iter().map(|b| self.region(b)).collect();
        let mut facts = vec![
            (self.say("Öppna fynd", "Open findings"), s.findings.to_string()),
            (self.say("Belopp i fråga", "Amount at stake"), amount),
            (self.say("Besöksdagar", "Visit dates"), visits),
            (self.say("Region", "Region"), regions.join(", ")),
        ];
        if s.withdrawn > 0 {
            facts.push((self.say("Återkallade (ej räknade)", "Withdrawn (not counted)"), s.withdrawn.to_string()));
        }
        let breakdown = rules
            .iter()
            .map(|(id, t)| (self.rule_words(id).0, self.count_and_amount(t.findings, t.amount_at_stake_ore)))
            .collect();
        self.write(Content { title, summary: text.to_string(), facts, breakdown, link })
    }

    fn write(&self, content: Content) -> Value {
        match self.format {
            Format::Teams => self.adaptive_card(&content),
            Format::Slack | Format::Generic => self.block_kit(&content),
        }
    }

    /// The Teams Workflows message: one Adaptive Card 1.4 attachment.
    fn adaptive_card(&self, c: &Content) -> Value {
        let facts: Vec<Value> =
            c.facts.iter().map(|(title, value)| json!({"title": title, "value": text::markdown(value)})).collect();
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            // No `lang`: optional (it only localises date functions), and
            // the Adaptive Cards renderer 3.0.6 checks it with a global
            // regex that rejects every second card (see alert_previews.rs).
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "text": text::markdown(&c.title), "weight": "Bolder", "size": "Medium", "wrap": true},
                {"type": "TextBlock", "text": text::markdown(&c.summary), "wrap": true},
                {"type": "FactSet", "facts": facts},
            ],
        });
        if !c.breakdown.is_empty() {
            let rows: Vec<Value> = c
                .breakdown
                .iter()
                .map(|(title, value)| json!({"title": text::markdown(title), "value": text::markdown(value)}))
                .collect();
            if let Some(body) = card["body"].as_array_mut() {
                body.push(json!({"type": "TextBlock", "text": self.say("Per regel", "Per rule"),
                    "weight": "Bolder", "spacing": "Medium", "wrap": true}));
                body.push(json!({"type": "FactSet", "facts": rows}));
            }
        }
        if let Some(url) = &c.link {
            card["actions"] = json!([{
                "type": "Action.OpenUrl",
                "title": self.say("Öppna i dashboarden", "Open in the dashboard"),
                "url": url.as_str(),
            }]);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        })
    }

    /// Slack Block Kit: a header, the rule's meaning, the facts as fields
    /// and a button to the dashboard; `text` is the notification's fallback.
    fn block_kit(&self, c: &Content) -> Value {
        // A header's text is at most 150 characters.
        let title = text::slack(&text::printable(&c.title, 150));
        let fields: Vec<Value> = c
            .facts
            .iter()
            .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", text::slack(value))}))
            .collect();
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": title, "emoji": false}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": text::slack(&c.summary)}}),
            json!({"type": "section", "fields": fields}),
        ];
        if !c.breakdown.is_empty() {
            // One line per rule in one section (a section takes at most 10
            // fields, and there are more rules; a text at most 3 000
            // characters: the catalogue's names keep each line far below 100).
            let lines: Vec<String> = c
                .breakdown
                .iter()
                .map(|(rule, value)| format!("• *{}*: {}", text::slack(rule), text::slack(value)))
                .collect();
            let heading = self.say("Per regel", "Per rule");
            let body = format!("*{heading}*\n{}", lines.join("\n"));
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": body}}));
        }
        if let Some(url) = &c.link {
            blocks.push(json!({"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": self.say("Öppna i dashboarden", "Open in the dashboard")},
                "url": url.as_str(),
            }]}));
        }
        json!({"text": format!("{title}: {}", text::slack(&c.summary)), "blocks": blocks})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distans_domain::rules::{
        Finding, FindingStatus, CONTACT_BURST, DOUBLE_INVOICING, LISTED_AT_SAME_GROUP, WRONG_PRICE,
    };
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

    fn messages(format: Format, language: Language) -> Messages {
        Messages {
            dashboard: Some(Url::parse("https://grafana.example/d/distans-overview?orgId=1").expect("url")),
            regions: [("2321000230".to_string(), "Region Jämtland Härjedalen".to_string())].into_iter().collect(),
            ..Messages::new(format, language)
        }
    }

    fn digest_of(findings: &[TimedFinding]) -> Digest {
        let mut d = Digest::new(&findings[0], "2025-03-01".parse().expect("date"));
        for f in findings {
            d.add(f);
        }
        d
    }

    fn summary_of(findings: &[TimedFinding]) -> Summary {
        let mut backlog = crate::summary::Backlog::default();
        for f in findings {
            backlog.add(f.clone());
        }
        backlog.summary()
    }

    /// Every text a person reads in a Teams card or a Slack message.
    fn shown(message: &Value) -> String {
        fn walk(v: &Value, out: &mut String) {
            match v {
                Value::String(s) => {
                    out.push_str(s);
                    out.push('\n');
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Object(map) => map.values().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = String::new();
        walk(message, &mut out);
        out
    }

    #[test]
    fn a_digest_counts_and_sums() {
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let d = digest_of(&[a.clone(), a, timed(&WRONG_PRICE, "ZVF1:2")]);
        let v = messages(Format::Generic, Language::Swedish).digest(&d);
        assert_eq!(v["findings"], 2);
        assert_eq!(v["amount_at_stake_ore"], 30_000);
        assert_eq!(v["amount_at_stake"], "300 kr");
        assert_eq!(v["line_keys"], json!(["ZVF1:1", "ZVF1:2"]));
        assert!(v["explanation"]["sv"].as_str().is_some_and(|s| s.contains("taxan")));
        assert_eq!(v["title"], "2 fynd: Fel pris hos Nordvård Digital AB");
    }

    #[test]
    fn a_finding_published_again_counts_once_at_its_latest_amount() {
        let first = timed(&LISTED_AT_SAME_GROUP, "ZVF559100001225 01:listed_at_same_group:HC");
        let mut again = first.clone();
        again.finding.amount_at_stake_ore = 40_000;
        let d = digest_of(&[first, again]);
        assert_eq!((d.findings, d.amount_at_stake_ore), (1, 40_000));
    }

    #[test]
    fn teams_gets_an_adaptive_card_for_a_workflows_webhook() {
        let mut a = timed(&WRONG_PRICE, "ZVF1:1");
        a.finding.amount_at_stake_ore = 123_450;
        let v = messages(Format::Teams, Language::Swedish).finding(&a);
        assert_eq!(v["type"], "message");
        let attachment = &v["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &attachment["content"];
        assert_eq!((&card["type"], &card["version"]), (&json!("AdaptiveCard"), &json!("1.4")));
        assert_eq!(card["body"][0]["text"], "Fel pris hos Nordvård Digital AB");
        assert_eq!(card["body"][1]["text"], WRONG_PRICE.meaning.sv);
        let facts = &card["body"][2]["facts"];
        assert_eq!(facts[0], json!({"title": "Vårdgivare", "value": "Nordvård Digital AB (5591000010)"}));
        assert_eq!(facts[1], json!({"title": "Belopp i fråga", "value": "1 234,50 kr"}));
        assert!(shown(&v).contains("Region Jämtland Härjedalen (2321000230)"), "{v}");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            card["actions"][0]["url"],
            "https://grafana.example/d/distans-overview?orgId=1&var-buyer=2321000230&var-year=2025&var-provider=5591000010&var-rule=wrong_price"
        );
    }

    #[test]
    fn slack_gets_block_kit_with_a_fallback_text() {
        let a = timed(&DOUBLE_INVOICING, "ZVF1:1");
        let v = messages(Format::Slack, Language::Swedish).finding(&a);
        let blocks = v["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Dubbelfakturering hos Nordvård Digital AB");
        assert_eq!(blocks[1]["text"]["text"], DOUBLE_INVOICING.meaning.sv);
        assert_eq!(blocks[2]["fields"][1]["text"], "*Belopp i fråga*\n150 kr");
        assert_eq!(blocks[3]["elements"][0]["type"], "button");
        assert!(blocks[3]["elements"][0]["url"].as_str().is_some_and(|u| u.ends_with("var-rule=double_invoicing")));
        assert!(v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Dubbelfakturering hos Nordvård Digital AB: Samma kontakt")));
        assert!(
            blocks.len() <= 50 && blocks[2]["fields"].as_array().is_some_and(|f| f.len() <= 10),
            "Block Kit limits"
        );
    }

    #[test]
    fn the_evidence_speaks_the_messages_language() {
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let sv = messages(Format::Teams, Language::Swedish).finding(&a);
        assert_eq!(
            sv["attachments"][0]["content"]["body"][2]["facts"][2],
            json!({"title": "Underlag", "value": "styckpris 650 kr, taxa 500 kr för läkare den 2025-02-14"})
        );
        let en = messages(Format::Generic, Language::English).finding(&a);
        assert_eq!(en["evidence"], "unit price 650 kr, tariff 500 kr for physician on 2025-02-14");
        let digest = messages(Format::Generic, Language::Swedish).digest(&digest_of(std::slice::from_ref(&a)));
        assert_eq!(digest["example"], "styckpris 650 kr, taxa 500 kr för läkare den 2025-02-14");
        // A finding with only the English text (a v2 record, the review's): that text.
        let mut old = a;
        old.finding.evidence_data = None;
        let v = messages(Format::Generic, Language::Swedish).finding(&old);
        assert_eq!(v["evidence"], "unit price 650 kr, tariff 500 kr for physician on 2025-02-14");
    }

    #[test]
    fn english_is_a_setting() {
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let v = messages(Format::Slack, Language::English).finding(&a);
        assert_eq!(v["blocks"][0]["text"]["text"], "Wrong price at Nordvård Digital AB");
        assert_eq!(v["blocks"][1]["text"]["text"], WRONG_PRICE.meaning.en);
        assert!(!shown(&v).contains(WRONG_PRICE.meaning.sv), "one language at a time");
        let d = messages(Format::Generic, Language::English).digest(&digest_of(&[a]));
        assert_eq!(
            (&d["language"], &d["title"]),
            (&json!("en"), &json!("1 finding: Wrong price at Nordvård Digital AB"))
        );
    }

    #[test]
    fn the_pseudonym_only_where_the_rule_is_about_one_patient() {
        for format in [Format::Generic, Format::Teams, Format::Slack] {
            let m = messages(format, Language::Swedish);
            let line = m.finding(&timed(&DOUBLE_INVOICING, "ZVF1:1"));
            assert!(!shown(&line).lines().any(|l| l == "ab" || l.ends_with("\nab")), "{format:?}: {line}");
            assert!(!line.to_string().contains("\"ab\""), "{format:?}: {line}");
            let patient = m.finding(&timed(&CONTACT_BURST, "ZVF1:1"));
            assert!(patient.to_string().contains("ab\""), "{format:?}: {patient}");
        }
    }

    #[test]
    fn amounts_read_as_swedish_kronor_with_their_sign() {
        let mut a = timed(&WRONG_PRICE, "ZVF1:1");
        a.finding.amount_at_stake_ore = -50;
        let slack = messages(Format::Slack, Language::English).digest(&digest_of(&[a]));
        assert!(shown(&slack).contains("*Amount at stake*\n-0,50 kr"), "{slack}");
    }

    #[test]
    fn a_digest_ends_with_a_link_not_sql() {
        let d = digest_of(&[timed(&WRONG_PRICE, "ZVF1:1")]);
        for format in [Format::Generic, Format::Teams, Format::Slack] {
            let v = messages(format, Language::Swedish).digest(&d);
            assert!(!v.to_string().contains("anomalies_current"), "no query: {format:?}: {v}");
            assert!(v.to_string().contains("var-provider=5591000010&var-rule=wrong_price"), "{format:?}: {v}");
        }
        let no_link = Messages::new(Format::Generic, Language::Swedish).digest(&d);
        assert_eq!(no_link["dashboard_url"], Value::Null);
        assert!(Messages::new(Format::Teams, Language::Swedish).digest(&d)["attachments"][0]["content"]["actions"]
            .is_null());
    }

    #[test]
    fn a_withdrawn_finding_leaves_the_digest_and_a_short_withdrawal_names_it() {
        use distans_domain::rules::Withdrawal;
        let a = timed(&WRONG_PRICE, "ZVF1:1");
        let b = timed(&WRONG_PRICE, "ZVF1:2");
        let mut d = digest_of(&[a.clone(), b]);
        assert!(d.withdraw(&a.finding.finding_id));
        assert!(!d.withdraw(&a.finding.finding_id), "held once");
        assert_eq!((d.findings, d.amount_at_stake_ore), (1, 15_000));
        assert_eq!(d.line_keys.iter().collect::<Vec<_>>(), ["ZVF1:2"]);
        let mut gone = timed(&DOUBLE_INVOICING, "ZVF1:3");
        gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
        let v = messages(Format::Generic, Language::Swedish).withdrawal(&gone);
        assert_eq!(v["kind"], "withdrawal");
        assert_eq!(v["reason"], "credited");
        assert_eq!(v["finding_id"], gone.finding.finding_id);
        let slack = messages(Format::Slack, Language::Swedish).withdrawal(&gone);
        assert_eq!(slack["blocks"][0]["text"]["text"], "Återkallat: Dubbelfakturering hos Nordvård Digital AB");
        assert!(shown(&slack).contains("En kreditnota har tagit bort raden."), "{slack}");
    }

    #[test]
    fn the_first_start_summary_counts_per_rule_in_every_format() {
        let mut big = timed(&DOUBLE_INVOICING, "ZVF1:3");
        big.finding.amount_at_stake_ore = 123_450;
        let mut gone = timed(&WRONG_PRICE, "ZVF1:9");
        gone.finding.status = FindingStatus::Withdrawn(distans_domain::rules::Withdrawal::Credited);
        let s = summary_of(&[timed(&WRONG_PRICE, "ZVF1:1"), timed(&WRONG_PRICE, "ZVF1:2"), big, gone]);

        let v = messages(Format::Generic, Language::Swedish).summary(&s);
        assert_eq!((&v["kind"], &v["findings"], &v["withdrawn"]), (&json!("summary"), &json!(3), &json!(1)));
        assert_eq!((&v["amount_at_stake_ore"], &v["amount_at_stake"]), (&json!(153_450), &json!("1 534,50 kr")));
        assert_eq!(v["title"], "Sammanfattning: 3 öppna fynd från före start");
        assert_eq!(v["rules"][0]["rule_id"], "double_invoicing", "the largest amount first");
        assert_eq!(v["rules"][0]["amount_at_stake"], "1 234,50 kr");
        assert_eq!((&v["rules"][1]["rule_name"], &v["rules"][1]["findings"]), (&json!("Fel pris"), &json!(2)));
        assert_eq!(v["dashboard_url"], "https://grafana.example/d/distans-overview?orgId=1&var-buyer=2321000230");

        let teams = messages(Format::Teams, Language::Swedish).summary(&s);
        let body = &teams["attachments"][0]["content"]["body"];
        assert_eq!(body[0]["text"], "Sammanfattning: 3 öppna fynd från före start");
        assert!(shown(&teams).contains("Region Jämtland Härjedalen (2321000230)"), "{teams}");
        assert_eq!(body[2]["facts"][4], json!({"title": "Återkallade (ej räknade)", "value": "1"}));
        assert_eq!(body[3]["text"], "Per regel");
        assert_eq!(body[4]["facts"][0], json!({"title": "Dubbelfakturering", "value": "1 fynd, 1 234,50 kr"}));
        assert_eq!(body[4]["facts"][1], json!({"title": "Fel pris", "value": "2 fynd, 300 kr"}));

        let slack = messages(Format::Slack, Language::English).summary(&s);
        let blocks = slack["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["text"]["text"], "Summary: 3 open findings from before the start");
        assert_eq!(
            blocks[3]["text"]["text"],
            "*Per rule*\n• *Invoiced twice*: 1 finding, 1 234,50 kr\n• *Wrong price*: 2 findings, 300 kr"
        );
        assert_eq!(blocks[4]["elements"][0]["type"], "button");
        assert!(!shown(&slack).contains("fynd"), "one language at a time: {slack}");
    }

    /// Every generic payload validates against `schemas/alert.v1.json`.
    #[test]
    fn generic_payloads_follow_their_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/alert.v1.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("json");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        compiler.add_resource("alert.v1.json", schema).expect("resource");
        let index = compiler.compile("alert.v1.json", &mut schemas).expect("the schema compiles");
        let mut gone = timed(&DOUBLE_INVOICING, "ZVF1:3");
        gone.finding.status = FindingStatus::Withdrawn(distans_domain::rules::Withdrawal::Superseded);
        let burst = timed(&CONTACT_BURST, "ZVF1:4");
        let digest = digest_of(&[timed(&WRONG_PRICE, "ZVF1:1"), timed(&WRONG_PRICE, "ZVF1:2")]);
        let summary = summary_of(&[timed(&WRONG_PRICE, "ZVF1:1"), burst.clone(), gone.clone()]);
        for m in [messages(Format::Generic, Language::Swedish), Messages::new(Format::Generic, Language::English)] {
            for payload in [
                m.finding(&timed(&WRONG_PRICE, "ZVF1:1")),
                m.finding(&burst),
                m.withdrawal(&gone),
                m.digest(&digest),
                m.summary(&summary),
            ] {
                if let Err(e) = schemas.validate(&payload, index) {
                    panic!("{payload}\ndoes not follow alert.v1.json: {e:#}");
                }
            }
        }
        let mut bad = messages(Format::Generic, Language::Swedish).digest(&digest);
        bad["amount_at_stake"] = json!("300.00 SEK");
        assert!(schemas.validate(&bad, index).is_err(), "the schema checks the amount's form");
        bad["amount_at_stake"] = json!("300 kr");
        bad["query"] = json!("a query");
        assert!(schemas.validate(&bad, index).is_err(), "no field outside the schema");
    }

    /// Names a hostile seller could send reach no one as they are: no
    /// escape sequence, NUL or bidi override in any format, no Slack
    /// mention, no Markdown link in Teams, nothing longer than 256 characters.
    #[test]
    fn hostile_names_are_escaped_in_every_format() {
        let long = "x".repeat(900_000);
        for name in testing::HOSTILE_NAMES.into_iter().chain([long.as_str()]) {
            let mut f = timed(&WRONG_PRICE, "ZVF1:1");
            f.finding.provider_name = name.to_string();
            f.finding.evidence = format!("unit price 650 kr at {name}");
            // The English text as written (a finding without its figures).
            f.finding.evidence_data = None;
            let digest = digest_of(&[f.clone()]);
            for format in [Format::Generic, Format::Teams, Format::Slack] {
                let m = messages(format, Language::Swedish);
                for v in [m.finding(&f), m.digest(&digest)] {
                    let seen = shown(&v);
                    for bad in ['\u{1b}', '\0', '\u{7}', '\u{202E}'] {
                        assert!(!seen.contains(bad), "{format:?} {bad:?} in {seen:?}");
                    }
                    assert!(v.to_string().len() < 20_000, "{format:?}: a long name is cut");
                    if format == Format::Slack {
                        assert!(!seen.contains("<!channel>") && !seen.contains("<@U"), "{seen}");
                    }
                    if format == Format::Teams {
                        assert!(!seen.contains("[Klicka här](") && !seen.contains("**AB**"), "{seen}");
                    }
                }
            }
        }
        let mut f = timed(&WRONG_PRICE, "ZVF1:1");
        f.finding.provider_name = "<!channel> Vård & Co".into();
        let slack = messages(Format::Slack, Language::Swedish).finding(&f);
        assert_eq!(slack["blocks"][0]["text"]["text"], "Fel pris hos &lt;!channel&gt; Vård &amp; Co");
        f.finding.provider_name = "[Klicka](https://evil.example)".into();
        let teams = messages(Format::Teams, Language::Swedish).finding(&f);
        assert_eq!(
            teams["attachments"][0]["content"]["body"][0]["text"],
            r"Fel pris hos \[Klicka\](https://evil.example)"
        );
    }
}
