-- Views over the detector's findings (anomalies).

-- Every finding as it stands now, active or withdrawn (status,
-- withdrawn_reason): the latest record of each finding_id.
CREATE VIEW anomalies_current AS
SELECT * FROM anomalies FINAL;

-- The findings that hold now: what reports, the disputable share and the
-- aggregates count. FINAL is applied in the subquery, before the status is
-- filtered, so a withdrawn finding's older active record never shows.
CREATE VIEW findings_active AS
SELECT * FROM (SELECT * FROM anomalies FINAL) WHERE status = 'active';

-- Per rule and provider: the findings and the amount at stake.
CREATE VIEW report_findings_by_rule AS
SELECT
    buyer_org_number,
    rule_id,
    provider_org_number,
    any(provider_name) AS provider,
    count() AS findings,
    sum(amount_at_stake_ore) AS amount_at_stake_ore
FROM findings_active
GROUP BY buyer_org_number, rule_id, provider_org_number;
