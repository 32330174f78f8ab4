//! The metrics every service that consumes a topic has. Each service
//! registers them under its own prefix, beside its own metrics, so
//! `distans_sink_records_consumed_total` and
//! `distans_ingester_records_consumed_total` mean the same thing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
#[doc(hidden)]
pub use prometheus_client::registry::Registry;

/// A topic partition, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// Consumer lag per partition, as librdkafka reports it in its statistics.
pub type ConsumerLag = Family<PartitionLabels, Gauge>;

/// What happened to a partition in a rebalance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RebalanceLabels {
    /// `assigned`, `revoked` or `error`.
    pub event: String,
}

crate::metrics! {
    /// The metrics every service that consumes a topic has.
    #[derive(Debug, Clone, Default)]
    pub struct ConsumerMetrics {
        /// Records read from the input topic
        #[metric(name = "records_consumed")]
        pub consumed: Counter,
        /// Offsets that could not be stored (partition revoked)
        pub offset_store_failures: Counter,
        /// Records behind the end of each input partition
        ///
        /// Fed by the consumer's statistics (see [`crate::kafka::Input`]).
        #[metric(name = "consumer_lag")]
        pub lag: ConsumerLag,
        /// Partitions assigned or revoked by the consumer group, and failed
        /// rebalances
        ///
        /// Counted per partition; `event` is `assigned`, `revoked` or `error`.
        #[metric(name = "partition_rebalances")]
        pub rebalances: Family<RebalanceLabels, Counter>,
        /// Input partitions assigned to this consumer now
        #[metric(name = "partitions_assigned")]
        pub assigned: Gauge,
        /// Unix time a record of the partition was last read or processed (or
        /// it was assigned)
        ///
        /// In seconds.
        #[metric(name = "partition_last_progress_seconds")]
        pub last_progress: Family<PartitionLabels, Gauge>,
        /// Committed offsets out of range replaced by the auto.offset.reset
        /// policy
        ///
        /// Out of range: below the log start or past its end.
        pub offset_resets: Counter,
        /// Times the stall watchdog re-joined the consumer group
        #[metric(name = "group_rejoins")]
        pub rejoins: Counter,
    }
}

/// The help text of a metric: the first paragraph of its doc comment (the
/// lines up to the first blank one), each line trimmed, joined with spaces,
/// as clap takes a command's `about` from its doc comment.
pub fn help_from_doc(doc: &[&str]) -> String {
    let paragraph = doc.iter().map(|line| line.trim()).take_while(|line| !line.is_empty());
    paragraph.collect::<Vec<_>>().join(" ")
}

/// Declares a set of metrics: a struct whose fields are the metrics, and
/// `register_in(registry) -> Self`, which makes each field and registers it
/// in `registry`, in the order declared.
///
/// - A field's metric name is the field's name, or the one in
///   `#[metric(name = "...")]`; its help text is the first paragraph of its
///   doc comment ([`help_from_doc`]), so the two cannot disagree.
/// - A field is made with `Default::default()`, or with the expression after
///   `=` (`pub batch_seconds: Histogram = Histogram::new(...),`).
/// - A field marked `#[metric(group)]` is itself a set declared with this
///   macro (e.g. [`ConsumerMetrics`]) and registers its own metrics in the
///   same registry.
/// - With `in "prefix"` after the struct's name, `register(registry)`
///   registers the set in `registry`'s sub-registry with that prefix.
///
/// Docs must come before `#[metric(...)]`, and every field is `pub` and ends
/// with a comma.
#[macro_export]
macro_rules! metrics {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $(in $prefix:literal)? {
            $(
                $(#[doc = $doc:literal])*
                $(#[metric($($option:tt)*)])?
                pub $field:ident: $ty:ty $(= $init:expr)?,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl $name {
            /// Makes each metric and registers it in `registry`, in the order
            /// declared.
            pub fn register_in(registry: &mut $crate::metrics::Registry) -> $name {
                $(
                    let $field = $crate::metrics!(
                        @field registry, [$($($option)*)?], $field, $ty, [$($doc),*], [$($init)?]
                    );
                )*
                $name { $($field),* }
            }

            $(
                /// Registers the set in `registry`'s sub-registry with the
                /// prefix this set was declared with.
                pub fn register(registry: &mut $crate::metrics::Registry) -> $name {
                    $name::register_in(registry.sub_registry_with_prefix($prefix))
                }
            )?
        }
    };
    (@field $registry:ident, [group], $field:ident, $ty:ty, $doc:tt, []) => {
        <$ty>::register_in($registry)
    };
    (@field $registry:ident, [name = $metric:literal], $field:ident, $ty:ty, $doc:tt, $init:tt) => {
        $crate::metrics!(@metric $registry, $metric, $ty, $doc, $init)
    };
    (@field $registry:ident, [], $field:ident, $ty:ty, $doc:tt, $init:tt) => {
        $crate::metrics!(@metric $registry, stringify!($field), $ty, $doc, $init)
    };
    (@metric $registry:ident, $metric:expr, $ty:ty, [$($doc:literal),*], [$($init:tt)*]) => {{
        let metric: $ty = $crate::metrics!(@new $ty, [$($init)*]);
        $registry.register($metric, $crate::metrics::help_from_doc(&[$($doc),*]), metric.clone());
        metric
    }};
    (@new $ty:ty, []) => {
        <$ty as ::std::default::Default>::default()
    };
    (@new $ty:ty, [$($init:tt)+]) => {
        $($init)+
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::Histogram;

    crate::metrics! {
        /// A set as a service declares one.
        pub struct Example in "example" {
            /// The group's metrics come first.
            #[metric(group)]
            pub consumer: ConsumerMetrics,
            /// Help on two
            /// lines
            ///
            /// Not in the help.
            #[metric(name = "renamed")]
            pub counter: Counter,
            /// Made by its expression
            pub seconds: Histogram = Histogram::new([1.0].into_iter()),
        }
    }

    #[test]
    fn help_is_the_first_paragraph_of_the_doc() {
        assert_eq!(help_from_doc(&[" Help on two", " lines", "", " Not in the help."]), "Help on two lines");
        assert_eq!(help_from_doc(&[]), "");
    }

    #[test]
    fn a_declared_set_registers_its_group_then_its_metrics_under_their_names() {
        let mut registry = Registry::default();
        let example = Example::register(&mut registry);
        example.consumer.consumed.inc();
        example.counter.inc();
        example.seconds.observe(0.5);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        let help: Vec<&str> = text.lines().filter(|line| line.starts_with("# HELP")).collect();
        assert_eq!(help.len(), 10, "{text}");
        assert_eq!(help[0], "# HELP example_records_consumed Records read from the input topic.");
        assert_eq!(help[8], "# HELP example_renamed Help on two lines.");
        assert_eq!(help[9], "# HELP example_seconds Made by its expression.");
        assert!(text.contains("example_records_consumed_total 1\n"), "{text}");
        assert!(text.contains("example_renamed_total 1\n"), "{text}");
        assert!(text.contains("example_seconds_bucket{le=\"1.0\"} 1\n"), "{text}");
    }
}
