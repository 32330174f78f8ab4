-- A finding's status (issue: an invoice line's whole life). The detector
-- publishes a finding again, same finding_id, when it is withdrawn: a new
-- version of its line, a credit note or other lines no longer show it.
-- anomalies keeps the latest record of each finding (ReplacingMergeTree on
-- inserted_at; records of one finding are inserted in the order published),
-- so status is the finding's state now. Findings written before this
-- migration are active. ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS:
-- one ALTER adds both, and the migration runner takes "column already
-- exists" from an ALTER ... ADD COLUMN as already done.
ALTER TABLE anomalies ADD COLUMN status String DEFAULT 'active', ADD COLUMN withdrawn_reason String DEFAULT '';
