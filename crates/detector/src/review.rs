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
//! by month and it never marks a line as flagged. Its id is stable. A month
//! fills up as its lines arrive, so a finding is published again, same id,
//! when its amount at stake changed, as a revision (the
//! `distans_wire::REVISION_HEADER`): `anomalies` keeps the newest version,
//! and the notifier counts it once (at its latest amount while its digest
//! waits, not again once the digest was sent). One
//! already in `anomalies` (or published since start) with the same amount
//! is not published again. A provider-month judged far from its peers stays
//! judged: later lines do not withdraw the finding.

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
    finding_id, Change, Finding, FindingStatus, Rule, LISTED_AT_SAME_GROUP, PROVIDER_FAR_FROM_PEERS,
};

/// `ZVF` + org number + YYMM of `month` (`YYYY-MM-DD`), then `:rule:detail`.
fn subject_key(provider_org_number: &str, month: &str, rule: &str, detail: &str) -> String {
    let yymm = format!("{}{}", month.get(2..4).unwrap_or("00"), month.get(5..7).unwrap_or("00"));
    format!("ZVF{provider_org_number}{yymm}:{rule}:{detail}")
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
        finding_id: finding_id(rule.id, &key),
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

/// Publishes new judgements every `every` until `shutdown`, a finding
/// published before (in `anomalies`, or since start) as a revision. A failed pass
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
    // Finding id -> the amount at stake last published.
    let mut published: Option<HashMap<String, i64>> = None;
    let reviewed = [PROVIDER_FAR_FROM_PEERS.id, LISTED_AT_SAME_GROUP.id];
    let mut ticks = Ticks::every(every, &shutdown);
    while ticks.next().await {
        if published.is_none() {
            let read = distans_store::review::published(&db, &reviewed).await;
            answered(distans_store::unanswered_reason("the review", &read));
            match read {
                Ok(rows) => published = Some(rows.into_iter().collect()),
                Err(error) => {
                    tracing::warn!(%error, "review: cannot read the findings already made; trying again");
                    continue;
                }
            }
        }
        let Some(done) = published.as_mut() else { continue };
        let judged = judge(&db, &disabled).await;
        answered(distans_store::unanswered_reason("the review", &judged));
        let findings = match judged {
            Ok(f) => f,
            Err(error) => {
                tracing::warn!(%error, "review: ClickHouse did not answer; trying again at the next tick");
                continue;
            }
        };
        let changed: Vec<Finding> =
            findings.into_iter().filter(|f| done.get(&f.finding_id) != Some(&f.amount_at_stake_ore)).collect();
        if changed.is_empty() {
            continue;
        }
        let amounts: Vec<(String, i64)> =
            changed.iter().map(|f| (f.finding_id.clone(), f.amount_at_stake_ore)).collect();
        let changes = changed
            .into_iter()
            .map(|finding| Change { revises: done.contains_key(&finding.finding_id), finding })
            .collect();
        if publish(changes).await {
            done.extend(amounts);
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

    #[test]
    fn a_provider_far_from_its_peers_says_by_how_much() {
        let row = FarFromPeers {
            buyer_org_number: "2321000230".into(),
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
        };
        let f = far_from_peers(&row);
        // 48 contacts where the peers' rate gives 12: 36 beyond it, at 500 SEK.
        assert_eq!(f.amount_at_stake_ore, 36 * 50_000);
        assert!(f.evidence.contains("4.00 contacts per patient") && f.evidence.contains("median of 1.00"));
        assert_eq!(f.finding_id, far_from_peers(&row).finding_id, "stable");
        assert_eq!(f.visit_date, NaiveDate::from_ymd_opt(2025, 3, 1).expect("date"));
    }
}
