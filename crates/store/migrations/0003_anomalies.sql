-- Findings of the detector, one row per finding written. A finding published
-- again (a redelivery after a crash) has the same finding_id; the
-- ReplacingMergeTree keeps one, and reports read through FINAL or
-- anomalies_current. As in invoice_lines, the partition comes from the key:
-- the invoice month in the line key (finding ids are per rule and line key).
CREATE TABLE IF NOT EXISTS anomalies
(
    finding_id String,
    rule_id String,
    severity String,
    line_key String,
    related_line_keys Array(String),
    buyer_org_number String,
    provider_org_number String,
    provider_name String,
    performing_unit_hsa_id String,
    patient_pseudonym Nullable(String),
    visit_date Date,
    amount_at_stake_ore Int64,
    evidence String,
    detected_at DateTime,
    inserted_at DateTime
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY substring(line_key, 14, 4)
ORDER BY (buyer_org_number, rule_id, finding_id);
