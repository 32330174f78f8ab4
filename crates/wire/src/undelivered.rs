//! A message the webhook refused for good, as the notifier writes it to
//! `<topics.alerts>.undelivered` ([`undelivered_topic`]) and the sink into
//! ClickHouse's `undelivered_alerts`, where staff see what never reached
//! them. JSON (`serde_json`), like the notifier's pending digests: a topic
//! internal to distans, written and read by the same build.

use serde::{Deserialize, Serialize};

/// The topic of the undelivered messages of the findings on `alerts`.
pub fn undelivered_topic(alerts: &str) -> String {
    format!("{alerts}.undelivered")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredAlert {
    /// `finding`, `withdrawal` or `digest`.
    pub kind: String,
    pub rule_id: String,
    pub provider_org_number: String,
    /// The findings the message was about (a digest holds several).
    pub finding_ids: Vec<String>,
    /// The webhook's HTTP status, e.g. 400.
    pub status: u16,
    /// The start of the webhook's answer (at most 200 characters).
    pub answer: String,
    /// The message as it was sent (JSON), to resend it by hand.
    pub message: String,
    /// When the webhook refused it, Unix milliseconds.
    pub refused_at_ms: i64,
}

impl UndeliveredAlert {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an undelivered alert serialises")
    }

    /// Errors: the payload is not an undelivered alert's JSON.
    pub fn decode(payload: &[u8]) -> Result<UndeliveredAlert, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_payloads() {
        let alert = UndeliveredAlert {
            kind: "finding".into(),
            rule_id: "wrong_price".into(),
            provider_org_number: "5560000001".into(),
            finding_ids: vec!["f1".into()],
            status: 400,
            answer: "invalid card".into(),
            message: "{}".into(),
            refused_at_ms: 1_764_000_000_000,
        };
        assert_eq!(UndeliveredAlert::decode(&alert.encode()).expect("decodes"), alert);
        assert!(UndeliveredAlert::decode(b"\0\0\0\0\x01avro").is_err());
        assert_eq!(undelivered_topic("invoice-alerts"), "invoice-alerts.undelivered");
    }
}
