//! The review: rules that judge a provider's month against its peers, or
//! need the listing register, cannot be decided line by line as lines
//! stream in. They are judged in ClickHouse, over the monthly aggregates the
//! sink keeps (`report_provider_peers`, `report_same_group_listing`), and the
//! review publishes each judgement once as a finding on the alerts topic, so
//! it reaches `anomalies` and the notifier like every other finding.
//!
//! A finding is about a provider's month, not one line: its key is a subject
//! key in the line-key format (`ZVF` + provider org number + YYMM, then the
//! rule and the profession or health centre), so `anomalies` partitions it
//! by month and it never marks a line as flagged. Its id is stable, and
//! names the home region too ([`review_id`]): a provider serves several
//! regions, each judged on its own. A month fills up as its lines arrive,
//! so a finding is published again, same id, when its amount at stake
//! changed, as a revision (the `distans_wire::REVISION_HEADER`):
//! `anomalies` keeps the newest version, and the notifier counts it once
//! (at its latest amount while its digest waits, not again once the digest
//! was sent). One already in `anomalies` (or published since start) with
//! the same amount is not published again.
//! A provider-month judged far from its peers stays judged: later lines do
//! not withdraw the finding. A `listed_at_same_group` finding follows the
//! listing register: when a new import no longer gives it, it is withdrawn
//! (`superseded`). So is a finding made before ids named the region (two
//! regions then shared one id, and the review republished it for each in
//! turn, for ever): its region's finding is published under its own id.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use distans_runtime::shutdown::Ticks;
use distans_runtime::Health;
use distans_store::review::{FarFromPeers, SameGroup};
use distans_store::Client;
use tokio_util::sync::CancellationToken;

use distans_domain::money::Ore;
use distans_domain::rules::{
    finding_id, Change, Finding, FindingStatus, Rule, Severity, Withdrawal, LISTED_AT_SAME_GROUP,
    PROVIDER_FAR_FROM_PEERS,
};
use distans_store::review::Reviewed;

/// `ZVF` + org number + YYMM of `month` (`YYYY-MM-DD`), then `:rule:detail`.
fn subject_key(provider_org_number: &str, month: &str, rule: &str, detail: &str) -> String {
    let yymm = format!("{}{}", month.get(2..4).unwrap_or("00"), month.get(5..7).unwrap_or("00"));
    format!("ZVF{provider_org_number}{yymm}:{rule}:{detail}")
}

/// The id of the review's finding of `rule` about `subject` (a subject key)
/// for the home region `buyer_org_number`.
fn review_id(rule_id: &str, subject: &str, buyer_org_number: &str) -> String {
    finding_id(rule_id, &format!("{subject}:{buyer_org_number}"))
}

/// A finding about one provider's month, keyed by a subject key.
fn month_finding(
    rule: &Rule,
    detail: &str,
    month: &str,
    who: (&str, &str, &str),
    amount: i64,
    evidence: String,
) -> Finding {
    let (buyer_org_number, provider_org_number, provider_name) = who;
    let key = subject_key(provider_org_number, month, rule.id, detail);
    Finding {
        finding_id: review_id(rule.id, &key, buyer_org_number),
        rule_id: rule.id.to_string(),
        severity: rule.severity,
        status: FindingStatus::Active,
        line_keys: vec![key],
        buyer_org_number: buyer_org_number.to_string(),
        provider_org_number: provider_org_number.to_string(),
        provider_name: provider_name.to_string(),
        performing_unit_hsa_id: String::new(),
        patient_pseudonym: None,
        visit_date: NaiveDate::parse_from_str(month, "%Y-%m-%d").unwrap_or_default(),
        amount_at_stake_ore: amount,
        evidence: format!("{}{evidence}", &month[..7.min(month.len())]),
        // The review's evidence is English text only (not yet figures).
        evidence_data: None,
    }
}

fn far_from_peers(row: &FarFromPeers) -> Finding {
    // What the contacts beyond the peers' rate cost, at the provider's own average.
    let expected_contacts = row.median_contacts_per_patient * row.patients as f64;
    let excess = (row.contacts as f64 - expected_contacts).max(0.0);
    let per_contact = if row.contacts > 0 { row.net_amount_ore as f64 / row.contacts as f64 } else { 0.0 };
    month_finding(
        &PROVIDER_FAR_FROM_PEERS,
        &row.profession_code,
        &row.month,
        (&row.buyer_org_number, &row.provider_org_number, &row.provider),
        (excess * per_contact).round() as i64,
        format!(
            " {}: {:.2} contacts per patient ({} contacts, {} patients) against a median of {:.2} among {} providers; \
             {:.0} % repeat contacts against a median of {:.0} %",
            row.profession_code,
            row.contacts_per_patient,
            row.contacts,
            row.patients,
            row.median_contacts_per_patient,
            row.peers,
            100.0 * row.repeat_share,
            100.0 * row.median_repeat_share
        ),
    )
}

fn same_group(row: &SameGroup) -> Finding {
    month_finding(
        &LISTED_AT_SAME_GROUP,
        &row.listing_unit_hsa_id,
        &row.month,
        (&row.buyer_org_number, &row.provider_org_number, &row.provider),
        row.net_amount_ore,
        format!(
            ": {} contacts ({}) of {} patients listed at {} ({}), a health centre of the provider's group {}",
            row.contacts,
            Ore(row.net_amount_ore),
            row.patients,
            row.listing_unit,
            row.listing_unit_hsa_id,
            row.listing_provider_group
        ),
    )
}

/// What ClickHouse judges now, as findings.
pub async fn judge(db: &Client, disabled: &[String]) -> Result<Vec<Finding>, distans_store::Error> {
    let mut findings = Vec::new();
    if !disabled.iter().any(|d| d == PROVIDER_FAR_FROM_PEERS.id) {
        findings.extend(distans_store::review::far_from_peers(db).await?.iter().map(far_from_peers));
    }
    if !disabled.iter().any(|d| d == LISTED_AT_SAME_GROUP.id) {
        findings.extend(distans_store::review::same_group_listings(db).await?.iter().map(same_group));
    }
    Ok(findings)
}

/// What the review knows of a finding it made: the amount at stake last
/// published, and the finding while it stands.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    amount: i64,
    standing: Option<Finding>,
}

impl Known {
    /// From `anomalies`' latest version of the finding.
    fn of(row: Reviewed) -> (String, Known) {
        let standing = (row.status == FindingStatus::Active.as_str()).then(|| Finding {
            finding_id: row.finding_id.clone(),
            rule_id: row.rule_id,
            severity: Severity::parse(&row.severity).unwrap_or(Severity::Medium),
            status: FindingStatus::Active,
            line_keys: vec![row.line_key],
            buyer_org_number: row.buyer_org_number,
            provider_org_number: row.provider_org_number,
            provider_name: row.provider_name,
            performing_unit_hsa_id: String::new(),
            patient_pseudonym: None,
            visit_date: NaiveDate::parse_from_str(&row.visit_date, "%Y-%m-%d").unwrap_or_default(),
            amount_at_stake_ore: row.amount_at_stake_ore,
            evidence: row.evidence,
            evidence_data: None,
        });
        (row.finding_id, Known { amount: row.amount_at_stake_ore, standing })
    }
}

/// What to publish after a judgement: each finding judged now that is new,
/// not standing, or of another amount; then, withdrawn (`superseded`),
/// each standing finding not judged now that should no longer stand: a
/// `listed_at_same_group` one (the register changed), or one whose id is
/// not the one its rule, subject and region give ([`review_id`]: made
/// before ids named the region). Only findings of `judged_rules` (the
/// rules judged in this pass: not disabled) are withdrawn.
fn to_publish(known: &HashMap<String, Known>, judged: Vec<Finding>, judged_rules: &[&str]) -> Vec<Finding> {
    let judged_ids: std::collections::HashSet<String> = judged.iter().map(|f| f.finding_id.clone()).collect();
    let mut out: Vec<Finding> = judged
        .into_iter()
        .filter(|f| known.get(&f.finding_id).is_none_or(|k| k.standing.is_none() || k.amount != f.amount_at_stake_ore))
        .collect();
    let mut withdrawn: Vec<Finding> = known
        .values()
        .filter_map(|k| k.standing.as_ref())
        .filter(|f| !judged_ids.contains(&f.finding_id) && judged_rules.contains(&f.rule_id.as_str()))
        .filter(|f| {
            let subject = f.line_keys.first().map_or("", String::as_str);
            f.rule_id == LISTED_AT_SAME_GROUP.id || review_id(&f.rule_id, subject, &f.buyer_org_number) != f.finding_id
        })
        .map(|f| Finding { status: FindingStatus::Withdrawn(Withdrawal::Superseded), ..f.clone() })
        .collect();
    withdrawn.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
    out.extend(withdrawn);
    out
}

/// Publishes new judgements, and withdraws those that no longer stand
/// ([`to_publish`]), every `every` until `shutdown`; a finding standing
/// before (in `anomalies`, or since start) goes out as a revision. A failed pass
/// (ClickHouse or the broker down) is logged and done again; while
/// ClickHouse does not answer, the detector is not ready (`health`).
pub async fn run(
    db: Client,
    every: Duration,
    disabled: Vec<String>,
    mut publish: impl AsyncFnMut(Vec<Change>) -> bool,
    health: Health,
    shutdown: CancellationToken,
) {
    let answered = |reason| health.part("review", reason);
    // Finding id -> what the review last published of it.
    let mut published: Option<HashMap<String, Known>> = None;
    let reviewed = [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id];
    let mut ticks = Ticks::every(every, &shutdown);
    while ticks.next().await {
        if published.is_none() {
            let read = distans_store::review::published(&db, &reviewed).await;
            answered(distans_store::unanswered_reason("the review", &read));
            match read {
                Ok(rows) => published = Some(rows.into_iter().map(Known::of).collect()),
                Err(error) => {
                    tracing::warn!(%error, "review: cannot read the findings already made; trying again");
                    continue;
                }
            }
        }
        let Some(known) = published.as_mut() else { continue };
        let judged = judge(&db, &disabled).await;
        answered(distans_store::unanswered_reason("the review", &judged));
        let findings = match judged {
            Ok(f) => f,
            Err(error) => {
                tracing::warn!(%error, "review: ClickHouse did not answer; trying again at the next tick");
                continue;
            }
        };
        let judged_rules: Vec<&str> = reviewed.iter().copied().filter(|r| !disabled.iter().any(|d| d == r)).collect();
        let changed = to_publish(known, findings, &judged_rules);
        if changed.is_empty() {
            continue;
        }
        let now_known: Vec<(String, Known)> = changed
            .iter()
            .map(|f| {
                let standing = (f.status == FindingStatus::Active).then(|| f.clone());
                (f.finding_id.clone(), Known { amount: f.amount_at_stake_ore, standing })
            })
            .collect();
        let changes = changed
            .into_iter()
            .map(|finding| {
                let revises = known.get(&finding.finding_id).is_some_and(|k| k.standing.is_some());
                Change { revises, finding }
            })
            .collect();
        if publish(changes).await {
            known.extend(now_known);
        } else {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_keys_partition_by_month_and_name_the_subject() {
        let key = subject_key("5591000053", "2025-03-01", "provider_far_from_peers", "LK");
        assert_eq!(key, "ZVF559100005325 03:provider_far_from_peers:LK".replace(' ', ""));
        // The sink partitions `anomalies` by characters 14 to 17: YYMM.
        assert_eq!(&key[13..17], "2503");
    }

    fn peers_row(buyer: &str) -> FarFromPeers {
        FarFromPeers {
            buyer_org_number: buyer.into(),
            month: "2025-03-01".into(),
            profession_code: "LK".into(),
            provider_org_number: "5591000053".into(),
            provider: "Vårdflödet AB".into(),
            contacts: 48,
            patients: 12,
            net_amount_ore: 48 * 50_000,
            contacts_per_patient: 4.0,
            repeat_share: 0.75,
            peers: 5,
            median_contacts_per_patient: 1.0,
            median_repeat_share: 0.02,
        }
    }

    const REVIEWED: [&str; 2] = [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id];

    fn standing(f: &Finding) -> (String, Known) {
        (f.finding_id.clone(), Known { amount: f.amount_at_stake_ore, standing: Some(f.clone()) })
    }

    /// Two regions served by one provider in one month are two findings:
    /// with one id they took turns in `anomalies`, republished every pass.
    #[test]
    fn each_region_has_its_own_finding_and_publishes_it_once() {
        let (jamtland, vastmanland) =
            (far_from_peers(&peers_row("2321000230")), far_from_peers(&peers_row("2321000198")));
        assert_ne!(jamtland.finding_id, vastmanland.finding_id);
        let judged = vec![jamtland.clone(), vastmanland.clone()];
        assert_eq!(to_publish(&HashMap::new(), judged.clone(), &REVIEWED).len(), 2);
        let known: HashMap<String, Known> = judged.iter().map(standing).collect();
        assert_eq!(to_publish(&known, judged.clone(), &REVIEWED), vec![], "published once");
        // Withdrawn, then judged again: it stands again.
        let mut withdrawn = known.clone();
        withdrawn.insert(jamtland.finding_id.clone(), Known { amount: jamtland.amount_at_stake_ore, standing: None });
        assert_eq!(to_publish(&withdrawn, judged, &REVIEWED), vec![jamtland]);
    }

    #[test]
    fn what_no_longer_stands_is_withdrawn_but_a_month_far_from_its_peers_stays() {
        let far = far_from_peers(&peers_row("2321000230"));
        let listed = same_group(&SameGroup {
            buyer_org_number: "2321000230".into(),
            month: "2025-03-01".into(),
            provider_org_number: "5591000012".into(),
            provider: "Nordvård Digital AB".into(),
            listing_provider_group: "Nordvård".into(),
            listing_unit_hsa_id: "SE2321000230-HC1".into(),
            listing_unit: "Nordvård Vårdcentral".into(),
            contacts: 12,
            patients: 4,
            net_amount_ore: 12 * 50_000,
        });
        // Made before ids named the region: the same finding, another id.
        let legacy = Finding { finding_id: finding_id(&far.rule_id, &far.line_keys[0]), ..far.clone() };
        let known: HashMap<String, Known> = [&far, &listed, &legacy].into_iter().map(standing).collect();
        let published = to_publish(&known, vec![], &REVIEWED);
        let withdrawn: Vec<(&str, FindingStatus)> =
            published.iter().map(|f| (f.finding_id.as_str(), f.status)).collect();
        let superseded = FindingStatus::Withdrawn(Withdrawal::Superseded);
        let mut expected = vec![(listed.finding_id.as_str(), superseded), (legacy.finding_id.as_str(), superseded)];
        expected.sort_by_key(|(id, _)| *id);
        assert_eq!(withdrawn, expected, "the register's finding and the old id; not the month far from its peers");
        assert_eq!(published[0].amount_at_stake_ore, known[published[0].finding_id.as_str()].amount, "as it stood");
        // A rule disabled is not judged: its findings stay as they are.
        assert_eq!(to_publish(&known, vec![], &[]), vec![]);
    }

    #[test]
    fn a_provider_far_from_its_peers_says_by_how_much() {
        let row = peers_row("2321000230");
        let f = far_from_peers(&row);
        // 48 contacts where the peers' rate gives 12: 36 beyond it, at 500 SEK.
        assert_eq!(f.amount_at_stake_ore, 36 * 50_000);
        assert!(f.evidence.contains("4.00 contacts per patient") && f.evidence.contains("median of 1.00"));
        assert_eq!(f.finding_id, far_from_peers(&row).finding_id, "stable");
        assert_eq!(f.visit_date, NaiveDate::from_ymd_opt(2025, 3, 1).expect("date"));
    }
}
