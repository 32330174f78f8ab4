//! Waiting for a condition, for the commands that wait on ClickHouse.

use std::time::Duration;

use tokio::time::Instant;

/// How often [`poll_until`] asks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Calls `check` every [`POLL_INTERVAL`] until it returns `Ok`, and returns
/// that value; after `deadline`, returns `check`'s last `Err` (what was
/// still missing, for the message).
pub async fn poll_until<T>(
    deadline: impl Into<Instant>,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = deadline.into();
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(missing) if Instant::now() >= deadline => return Err(missing),
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_or_the_last_word() {
        let mut calls = 0;
        let found = poll_until(Instant::now() + Duration::from_secs(5), async || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(format!("{calls} calls"))
            }
        })
        .await;
        assert_eq!(found, Ok(3));
        let missing: Result<(), String> =
            poll_until(Instant::now() + Duration::from_secs(1), async || Err("never".to_string())).await;
        assert_eq!(missing, Err("never".to_string()));
    }
}
