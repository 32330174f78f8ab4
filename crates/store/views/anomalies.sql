-- Views over the detector's findings (anomalies).

CREATE VIEW anomalies_current AS
SELECT * FROM anomalies FINAL;

-- Per rule and provider: the findings and the amount at stake.
CREATE VIEW report_findings_by_rule AS
SELECT
    buyer_org_number,
    rule_id,
    provider_org_number,
    any(provider_name) AS provider,
    count() AS findings,
    sum(amount_at_stake_ore) AS amount_at_stake_ore
FROM anomalies FINAL
GROUP BY buyer_org_number, rule_id, provider_org_number;
