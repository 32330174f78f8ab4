//! Graceful shutdown: one cancellation token, cancelled on SIGINT or SIGTERM.

use tokio_util::sync::CancellationToken;

/// A token cancelled when the process receives SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM; only SIGINT stops the service");
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// A timer for background work until shutdown (the aggregate refresh, the
/// detector's review): `while ticks.next().await { … }` runs a pass at once
/// and then every `period`; a pass that overruns delays the next rather
/// than bunching them. `next` returns false once `shutdown` is cancelled.
#[derive(Debug)]
pub struct Ticks {
    interval: tokio::time::Interval,
    shutdown: CancellationToken,
}

impl Ticks {
    pub fn every(period: std::time::Duration, shutdown: &CancellationToken) -> Ticks {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks { interval, shutdown: shutdown.clone() }
    }

    /// Waits for the next tick: true, or false when shutdown came first.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.interval.tick() => true,
            _ = self.shutdown.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_at_once_then_every_period_until_shutdown() {
        let shutdown = CancellationToken::new();
        let mut ticks = Ticks::every(Duration::from_secs(1), &shutdown);
        let started = tokio::time::Instant::now();
        assert!(ticks.next().await);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(ticks.next().await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        shutdown.cancel();
        assert!(!ticks.next().await);
    }
}
