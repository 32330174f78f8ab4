//! `distans refresh`: every month of the aggregates rebuilt now.

use std::time::Instant;

use distans_runtime::Settings;

/// Rebuilds every month and prints how many, and how long it took.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let client = super::database(settings).await?;
    let started = Instant::now();
    let months = distans_store::aggregates::refresh_all(&client).await?;
    crate::print(format_args!("aggregates rebuilt: {months} months in {:.1} s\n", started.elapsed().as_secs_f64()))?;
    Ok(())
}
