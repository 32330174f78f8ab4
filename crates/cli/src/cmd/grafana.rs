//! `distans grafana`: the dashboard as `deploy/grafana/dashboards/distans.json` holds it.

/// Prints the dashboard JSON (no settings needed).
pub fn run() -> anyhow::Result<()> {
    print!("{}", distans_report::grafana::dashboard_file());
    Ok(())
}
