//! Paces webhook calls to a platform's documented rate: calls are spaced at
//! least `1 / rate` seconds apart (no burst), counted from when each call
//! was allowed to start. One pacer per webhook; clones of a [`Sender`]
//! share it.
//!
//! Own code rather than `governor`: a fixed spacing is a dozen lines, and
//! it runs on tokio's clock, so it is tested with tokio's paused clock
//! (governor keeps its own clock).
//!
//! [`Sender`]: crate::Sender

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// At most `rate` calls per second, evenly spaced.
#[derive(Debug, Clone)]
pub struct Pacer {
    spacing: Duration,
    /// The earliest start of the next call.
    next: Arc<Mutex<Option<Instant>>>,
}

impl Pacer {
    /// A pacer for `rate` calls per second. `None` when `rate` is not a
    /// positive finite number.
    pub fn per_second(rate: f64) -> Option<Pacer> {
        (rate.is_finite() && rate > 0.0)
            .then(|| Pacer { spacing: Duration::from_secs_f64(1.0 / rate), next: Arc::new(Mutex::new(None)) })
    }

    /// The time between two calls.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Reserves the next slot and returns when it starts: now, or
    /// `spacing` after the previous slot. Waiters are served in the order
    /// they asked.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.spacing);
        at
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        tokio::time::sleep_until(self.reserve()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_rate_and_an_idle_pacer_lets_the_next_go_at_once() {
        let pacer = Pacer::per_second(2.0).expect("a rate");
        assert_eq!(pacer.spacing(), Duration::from_millis(500));
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..5 {
            pacer.wait().await;
            starts.push(start.elapsed());
        }
        let ms: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1000, 1500, 2000]);

        // Idle for longer than the spacing: the next call goes at once, no
        // burst is saved up for later.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle_end = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(idle_end.elapsed(), Duration::from_millis(500), "one at once, the next a spacing later");
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_the_pace() {
        let pacer = Pacer::per_second(1.0).expect("a rate");
        let start = Instant::now();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    p.wait().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut ms = Vec::new();
        for t in tasks {
            ms.push(t.await.expect("task").as_millis());
        }
        ms.sort_unstable();
        assert_eq!(ms, [0, 1000, 2000]);
    }

    #[test]
    fn a_rate_must_be_positive_and_finite() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Pacer::per_second(rate).is_none(), "{rate}");
        }
        assert_eq!(Pacer::per_second(0.5).expect("a rate").spacing(), Duration::from_secs(2));
    }
}
