-- Messages the notifier's webhook refused for good (a 4xx other than 408
-- and 429): what never reached monitoring staff, with the webhook's status
-- and answer and the message itself, written by the sink from
-- `<topics.alerts>.undelivered` (distans_wire::UndeliveredAlert).
CREATE TABLE IF NOT EXISTS undelivered_alerts
(
    refused_at DateTime,
    kind String,
    rule_id String,
    provider_org_number String,
    finding_ids Array(String),
    status UInt16,
    answer String,
    message String,
    inserted_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(refused_at)
ORDER BY (refused_at, rule_id, provider_org_number);
