//! Bench results: one row per scenario, as a table and as JSON.

use serde::Serialize;

/// One scenario's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Accepted events per second.
    pub publish_per_s: f64,
    /// Deliveries to healthy endpoints per second.
    pub deliveries_per_s: f64,
    /// Publish-to-arrival latency quantiles, ms.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
    /// Server's peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Server CPU seconds during the measured phase.
    pub cpu_s: f64,
    /// Server CPU microseconds per healthy delivery: the figure least moved by a noisy machine.
    pub cpu_us_per_delivery: f64,
    /// Deliveries that arrived twice at the same endpoint.
    pub duplicates: u64,
    /// Publishes that did not get 202.
    pub failed_publishes: u64,
    /// Raw loopback requests/s of the same client and receiver.
    pub ceiling_per_s: f64,
    /// Deliveries/s as a fraction of the ceiling.
    pub of_ceiling: f64,
    /// Free-form facts (start-up times, backlog size).
    pub notes: String,
}

/// Prints the rows as a table.
pub fn print(rows: &[Row]) {
    println!();
    println!(
        "{:<38} {:>9} {:>10} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>6} {:>5} {:>9} {:>6}",
        "scenario",
        "publish/s",
        "deliver/s",
        "p50ms",
        "p95ms",
        "p99ms",
        "max ms",
        "RSS MiB",
        "CPU s",
        "µs/dl",
        "dups",
        "ceiling/s",
        "of cl"
    );
    for r in rows {
        println!(
            "{:<38} {:>9.0} {:>10.0} {:>7.1} {:>7.1} {:>7.1} {:>8.1} {:>7.0} {:>6.1} {:>6.0} {:>5} {:>9.0} {:>5.0}%",
            r.scenario,
            r.publish_per_s,
            r.deliveries_per_s,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            r.peak_rss_mib,
            r.cpu_s,
            r.cpu_us_per_delivery,
            r.duplicates,
            r.ceiling_per_s,
            r.of_ceiling * 100.0
        );
        if !r.notes.is_empty() {
            println!("    {}", r.notes);
        }
    }
}
