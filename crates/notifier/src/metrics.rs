//! The notifier's metrics.

use distans_runtime::metrics::ConsumerMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

distans_runtime::metrics! {
    #[derive(Debug, Clone, Default)]
    pub struct Metrics in "distans_notifier" {
        /// Records consumed, offsets not stored, consumer lag.
        #[metric(group)]
        pub consumer: ConsumerMetrics,
        /// Findings read from the alerts topic
        pub findings: Counter,
        /// Findings sent at once, one message each
        #[metric(name = "immediate_messages")]
        pub immediate: Counter,
        /// Digest messages sent (one per rule, provider and day)
        pub digests: Counter,
        /// First-start summaries sent (the findings already there when the
        /// group first started, as one message)
        #[metric(name = "first_start_summaries")]
        pub summaries: Counter,
        /// Webhook calls that failed and were retried
        pub webhook_failures: Counter,
        /// Messages the webhook refused for good (a 4xx other than 408 and
        /// 429): not retried, not delivered
        pub webhook_refused: Counter,
        /// Refused messages written to <alerts>.undelivered for ClickHouse's
        /// undelivered_alerts
        ///
        /// Written and acked.
        #[metric(name = "undelivered_written")]
        pub undelivered: Counter,
        /// Withdrawals sent, for findings staff were told of (at once, in a
        /// digest sent, or in the first start's summary)
        pub withdrawals: Counter,
        /// Findings published again with new figures after staff were told
        /// of them: not sent again
        pub revisions_not_sent: Counter,
        /// Records on the alerts topic that are not findings
        pub undecodable: Counter,
        /// Findings written into a persisted pending digest
        #[metric(name = "digest_findings_persisted")]
        pub persisted: Counter,
        /// Digests persisted and not sent yet
        pub pending_digests: Gauge,
    }
}
