//! Retrying an operation with exponential backoff and jitter, the one way
//! distans retries: until it succeeds, its error is permanent, a ceiling on
//! elapsed time is reached, or the service stops.
//!
//! ```no_run
//! # async fn example(stop: tokio_util::sync::CancellationToken) {
//! use std::time::Duration;
//! use distans_runtime::retry::{retry, RetryPolicy, always_transient};
//!
//! const POLICY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(100), Duration::from_secs(5));
//! let on_retry = |error: &std::io::Error, retry_in: Duration| {
//!     tracing::warn!(%error, retry_in_ms = retry_in.as_millis() as u64, "call failed; retrying");
//! };
//! let result = retry(&POLICY, &stop, always_transient, on_retry, || async { Ok::<_, std::io::Error>(42) }).await;
//! # let _ = result;
//! # }
//! ```
//!
//! The delays come from `backon`'s exponential backoff. The n-th wait
//! (n = 1, 2, …) is drawn uniformly from `[d/2, d)` where
//! `d = min(initial · 2^(n-1), max)` ("equal jitter"): waits grow while
//! below the maximum, never exceed it, and clients that failed together do
//! not retry together.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long to wait between attempts, and for how long to keep trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt, before jitter (which makes
    /// it between half of this and this).
    pub initial: Duration,
    /// The longest wait between two attempts, jitter included.
    pub max: Duration,
    /// A ceiling on the time from the first attempt: when the next wait
    /// would end past it, the last error is returned (`RetryError::GaveUp`).
    /// `None`: retry until the error is permanent or the service stops.
    pub max_elapsed: Option<Duration>,
}

impl RetryPolicy {
    /// Waits from `initial` doubling to `max`, with no ceiling on elapsed
    /// time: transient errors are retried until the service stops.
    pub const fn until_stopped(initial: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy { initial, max, max_elapsed: None }
    }

    /// The same policy, giving up once `max_elapsed` would be exceeded.
    pub const fn with_max_elapsed(self, max_elapsed: Duration) -> RetryPolicy {
        RetryPolicy { max_elapsed: Some(max_elapsed), ..self }
    }

    /// `backon`'s backoff for this policy: half the delays, plus a jitter of
    /// up to as much again (see the module docs), never ending by itself.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(self.initial / 2)
            .with_max_delay(self.max / 2)
            .without_max_times()
    }
}

/// Whether an error is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// It may go away (a broker or webhook down, a timeout): retry.
    Transient,
    /// Trying again gives the same answer (a rejected request): return it at once.
    Permanent,
}

/// A `classify` for callers that retry every error.
pub fn always_transient<E>(_: &E) -> ErrorClass {
    ErrorClass::Transient
}

/// Why [`retry`] returned without a success.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    /// `stop` was cancelled during an attempt or a wait; the operation was
    /// abandoned, not failed.
    #[error("stopped while retrying")]
    Stopped,
    /// `classify` called the error permanent; it was not retried.
    #[error("permanent error: {0}")]
    Permanent(E),
    /// The policy's `max_elapsed` would have been exceeded by the next wait.
    #[error("gave up after {attempts} attempts in {elapsed:?}: {error}")]
    GaveUp {
        /// The last attempt's error.
        error: E,
        /// Attempts made, the failed last one included.
        attempts: u32,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
    },
}

/// Runs `operation` until it succeeds, retrying transient errors with the
/// waits of `policy`.
///
/// - `classify` decides for each error whether it is retried
///   ([`ErrorClass::Transient`]) or returned at once as
///   [`RetryError::Permanent`] (without calling `on_retry`).
/// - `on_retry(error, retry_in)` is called after each failed attempt that
///   will be retried, with the wait before the next one: log and count there.
/// - `stop` cancelled, during an attempt or a wait, returns
///   [`RetryError::Stopped`] promptly (the attempt in flight is dropped).
/// - With `policy.max_elapsed`, returns [`RetryError::GaveUp`] with the last
///   error instead of starting a wait that would end past the ceiling.
pub async fn retry<T, E, Fut>(
    policy: &RetryPolicy,
    stop: &CancellationToken,
    classify: impl Fn(&E) -> ErrorClass,
    on_retry: impl FnMut(&E, Duration),
    operation: impl FnMut() -> Fut,
) -> Result<T, RetryError<E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    retry_honouring(policy, stop, classify, |_| None, on_retry, operation).await
}

/// The longest wait a server's own hint ([`retry_honouring`]) may ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// As [`retry`], honouring the wait the other side asks for:
/// `retry_after(error)` (e.g. an HTTP `Retry-After` on a 429 or 503), when
/// `Some`, is the least wait before the next attempt (capped at
/// [`MAX_RETRY_AFTER`]); the backoff's own wait applies when it is longer.
/// `on_retry` is told the wait actually taken.
pub async fn retry_honouring<T, E, Fut>(
    policy: &RetryPolicy,
    stop: &CancellationToken,
    classify: impl Fn(&E) -> ErrorClass,
    retry_after: impl Fn(&E) -> Option<Duration>,
    mut on_retry: impl FnMut(&E, Duration),
    operation: impl FnMut() -> Fut,
) -> Result<T, RetryError<E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempts: u32 = 1;
    let within_ceiling =
        |wait: &Duration| policy.max_elapsed.is_none_or(|ceiling| started.elapsed() + *wait <= ceiling);
    let attempt = operation
        .retry(policy.backoff())
        .when(|error| classify(error) == ErrorClass::Transient)
        // backon computes the jitter in f32: clamp, so that a rounding never exceeds the max.
        .adjust(|error, wait| {
            wait.map(|wait| {
                let wait = wait.min(policy.max);
                retry_after(error).map_or(wait, |asked| wait.max(asked.min(MAX_RETRY_AFTER)))
            })
            .filter(|wait| within_ceiling(wait))
        })
        .notify(|error, wait| {
            attempts += 1;
            on_retry(error, wait);
        });
    let result = tokio::select! {
        // An attempt that succeeded as the service stops still counts.
        biased;
        result = attempt => result,
        _ = stop.cancelled() => return Err(RetryError::Stopped),
    };
    result.map_err(|error| match classify(&error) {
        ErrorClass::Permanent => RetryError::Permanent(error),
        ErrorClass::Transient => RetryError::GaveUp { error, attempts, elapsed: started.elapsed() },
    })
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Failure {
        Down,
        Rejected,
    }

    fn classify(error: &Failure) -> ErrorClass {
        match error {
            Failure::Down => ErrorClass::Transient,
            Failure::Rejected => ErrorClass::Permanent,
        }
    }

    /// Attempt `attempt` (counted from 1) of an operation that is down
    /// before attempt `up_at`: [`Failure::Down`], then `Ok(attempt)`.
    fn down_before(up_at: usize, attempt: usize) -> std::future::Ready<Result<usize, Failure>> {
        std::future::ready(if attempt < up_at { Err(Failure::Down) } else { Ok(attempt) })
    }

    const POLICY: RetryPolicy = RetryPolicy::until_stopped(Duration::from_millis(100), Duration::from_secs(5));

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let retries = Cell::new(0);
        let operation = || {
            calls.set(calls.get() + 1);
            down_before(4, calls.get())
        };
        let result =
            retry(&POLICY, &CancellationToken::new(), classify, |_, _| retries.set(retries.get() + 1), operation).await;
        assert_eq!(result.ok(), Some(4));
        assert_eq!(retries.get(), 3, "on_retry once per failed attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_error_is_returned_at_once() {
        let calls = Cell::new(0);
        let retries = Cell::new(0);
        let started = Instant::now();
        let operation = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Failure::Rejected) }
        };
        let result =
            retry(&POLICY, &CancellationToken::new(), classify, |_, _| retries.set(retries.get() + 1), operation).await;
        assert!(matches!(result, Err(RetryError::Permanent(Failure::Rejected))), "{result:?}");
        assert_eq!((calls.get(), retries.get()), (1, 0));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_elapsed_ceiling() {
        let policy = POLICY.with_max_elapsed(Duration::from_secs(20));
        let calls = Cell::new(0u32);
        let started = Instant::now();
        let operation = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Failure::Down) }
        };
        let result = retry(&policy, &CancellationToken::new(), classify, |_, _| {}, operation).await;
        let Err(RetryError::GaveUp { error, attempts, elapsed }) = result else {
            panic!("expected to give up, got {result:?}");
        };
        assert_eq!(error, Failure::Down);
        assert_eq!(attempts, calls.get());
        assert!(attempts > 5, "kept trying until near the ceiling: {attempts} attempts");
        assert!(elapsed <= Duration::from_secs(20), "{elapsed:?}");
        assert!(
            elapsed > Duration::from_secs(20) - POLICY.max,
            "gave up only when the next wait would pass it: {elapsed:?}"
        );
        assert_eq!(started.elapsed(), elapsed);
    }

    /// (the other side's hint, the first wait taken): a hint longer than the
    /// backoff's wait is honoured up to `MAX_RETRY_AFTER`, a shorter one
    /// does not shorten the backoff.
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_hint_is_the_least_wait() {
        let cases = [
            (Some(Duration::from_secs(7)), Duration::from_secs(7)),
            (Some(Duration::from_secs(3600)), MAX_RETRY_AFTER),
            (Some(Duration::ZERO), POLICY.initial),
            (None, POLICY.initial),
        ];
        for (hint, expected) in cases {
            let calls = Cell::new(0);
            let waits = RefCell::new(Vec::new());
            let started = Instant::now();
            let operation = || {
                calls.set(calls.get() + 1);
                down_before(2, calls.get())
            };
            let on_retry = |_: &Failure, wait| waits.borrow_mut().push(wait);
            let result =
                retry_honouring(&POLICY, &CancellationToken::new(), classify, |_| hint, on_retry, operation).await;
            assert!(result.is_ok());
            let waits = waits.into_inner();
            assert_eq!(waits.len(), 1);
            // The backoff's first wait is drawn from [initial/2, initial).
            let (low, high) = if expected == POLICY.initial { (expected / 2, expected) } else { (expected, expected) };
            assert!(waits[0] >= low && waits[0] <= high, "hint {hint:?}: waited {:?}", waits[0]);
            assert!(started.elapsed() >= waits[0], "the wait was taken");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_a_wait() {
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            cancel.cancel();
        });
        let started = Instant::now();
        let result = retry(&POLICY, &stop, classify, |_, _| {}, || async { Err::<(), _>(Failure::Down) }).await;
        assert!(matches!(result, Err(RetryError::Stopped)), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(60), "returned as soon as stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_an_attempt() {
        let stop = CancellationToken::new();
        stop.cancel();
        let result = retry(&POLICY, &stop, classify, |_, _| {}, std::future::pending::<Result<(), Failure>>).await;
        assert!(matches!(result, Err(RetryError::Stopped)), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_grow_and_never_exceed_the_max() {
        let waits = RefCell::new(Vec::new());
        let attempts_at = RefCell::new(Vec::new());
        let operation = || {
            attempts_at.borrow_mut().push(Instant::now());
            down_before(20, attempts_at.borrow().len())
        };
        let on_retry = |_: &Failure, wait| waits.borrow_mut().push(wait);
        let result = retry(&POLICY, &CancellationToken::new(), classify, on_retry, operation).await;
        assert!(result.is_ok());
        let waits = waits.into_inner();
        assert_eq!(waits.len(), 19);
        // backon computes in f32: allow for its rounding.
        let rounding = Duration::from_micros(1);
        let mut ceiling = POLICY.initial;
        for (n, wait) in waits.iter().enumerate() {
            assert!(
                *wait + rounding >= ceiling / 2 && *wait <= ceiling,
                "wait {n} = {wait:?}, not in [{ceiling:?}/2, {ceiling:?}]"
            );
            assert!(*wait <= POLICY.max, "wait {n} = {wait:?} exceeds the max");
            ceiling = (ceiling * 2).min(POLICY.max);
        }
        assert!(waits.iter().any(|wait| *wait >= POLICY.max / 2), "reached the max: {waits:?}");
        for pair in waits.windows(2).take_while(|pair| pair[1] < POLICY.max / 2) {
            assert!(pair[0] <= pair[1] + rounding, "waits grow below the max: {waits:?}");
        }
        // tokio's timer rounds a wait up to the next millisecond.
        let attempts_at = attempts_at.into_inner();
        for (n, pair) in attempts_at.windows(2).enumerate() {
            let waited = pair[1] - pair[0];
            assert!(
                waited >= waits[n] && waited <= waits[n] + Duration::from_millis(1),
                "attempt {n}: waited {waited:?}, reported {:?}",
                waits[n]
            );
        }
    }
}
