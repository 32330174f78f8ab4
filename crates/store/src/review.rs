//! The detector's review: the judgements that report views make over a
//! provider's month (`report_provider_peers`, `report_same_group_listing`),
//! and the findings of those rules already in `anomalies`.

use serde::Deserialize;

use crate::{Client, Error};

/// A provider's month far from its peers' (`report_provider_peers`).
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct FarFromPeers {
    pub buyer_org_number: String,
    /// First day of the visit month, `YYYY-MM-DD`.
    pub month: String,
    pub profession_code: String,
    pub provider_org_number: String,
    pub provider: String,
    pub contacts: i64,
    pub patients: u64,
    pub net_amount_ore: i64,
    pub contacts_per_patient: f64,
    /// 0–1.
    pub repeat_share: f64,
    /// Providers of the profession that month that were compared.
    pub peers: u64,
    pub median_contacts_per_patient: f64,
    pub median_repeat_share: f64,
}

/// A provider's month of contacts by patients listed at a health centre of
/// the provider's own group (`report_same_group_listing`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct SameGroup {
    pub buyer_org_number: String,
    /// First day of the visit month, `YYYY-MM-DD`.
    pub month: String,
    pub provider_org_number: String,
    pub provider: String,
    pub listing_provider_group: String,
    pub listing_unit_hsa_id: String,
    pub listing_unit: String,
    pub contacts: i64,
    pub patients: u64,
    pub net_amount_ore: i64,
}

/// Providers' months that `report_provider_peers` judges far from their peers.
pub async fn far_from_peers(db: &Client) -> Result<Vec<FarFromPeers>, Error> {
    db.query(
        "SELECT buyer_org_number, toString(month) AS month, profession_code, provider_org_number, provider, \
         contacts, patients, net_amount_ore, contacts_per_patient, repeat_share, peers, \
         median_contacts_per_patient, median_repeat_share \
         FROM report_provider_peers WHERE far_from_peers",
    )
    .fetch_all()
    .await
}

/// Providers' months with contacts of patients listed in their own group.
pub async fn same_group_listings(db: &Client) -> Result<Vec<SameGroup>, Error> {
    db.query(
        "SELECT buyer_org_number, toString(month) AS month, provider_org_number, provider, \
         listing_provider_group, listing_unit_hsa_id, listing_unit, contacts, patients, net_amount_ore \
         FROM report_same_group_listing WHERE contacts > 0",
    )
    .fetch_all()
    .await
}

/// A finding of the review's rules as `anomalies` holds it now (the latest
/// version of each).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct Reviewed {
    pub finding_id: String,
    pub rule_id: String,
    pub severity: String,
    /// The subject key (`distans_detector::review`).
    pub line_key: String,
    pub buyer_org_number: String,
    pub provider_org_number: String,
    pub provider_name: String,
    /// `YYYY-MM-DD`, the first day of the month judged.
    pub visit_date: String,
    pub amount_at_stake_ore: i64,
    pub evidence: String,
    /// `active` or `withdrawn`.
    pub status: String,
}

/// Every finding of `rule_ids` in `anomalies`, the latest version of each.
pub async fn published(db: &Client, rule_ids: &[&str]) -> Result<Vec<Reviewed>, Error> {
    db.query(
        "SELECT finding_id, rule_id, severity, line_key, buyer_org_number, provider_org_number, provider_name, \
         toString(visit_date) AS visit_date, amount_at_stake_ore, evidence, status \
         FROM anomalies FINAL WHERE has(?, rule_id)",
    )
    .bind(rule_ids)
    .fetch_all()
    .await
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Count {
    count: u64,
}

/// Whether `anomalies` holds at least as many findings of `rule_ids` as the
/// views judge now: the review has published every judgement.
pub async fn caught_up(db: &Client, rule_ids: &[&str]) -> Result<bool, Error> {
    let judged = db
        .query(
            "SELECT (SELECT count() FROM report_provider_peers WHERE far_from_peers) \
               + (SELECT count() FROM report_same_group_listing WHERE contacts > 0) AS count",
        )
        .fetch_one::<Count>()
        .await?
        .count;
    let published = db
        .query("SELECT count() AS count FROM findings_active WHERE has(?, rule_id)")
        .bind(rule_ids)
        .fetch_one::<Count>()
        .await?
        .count;
    Ok(published >= judged)
}
