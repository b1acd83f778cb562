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
    /// The server binary measured (`this binary`, or the path given).
    pub server: String,
    /// Which round of the run (from 1).
    pub round: u32,
    /// Endpoints that answer 2xx (0 where the scenario does not count them).
    pub healthy_endpoints: u64,
}

/// Prints the rows as a table (naming each row's round and server when
/// there is more than one run of a scenario).
pub fn print(rows: &[Row], compared: bool) {
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
        if compared {
            println!("    round {}, server {}", r.round, r.server);
        }
    }
}

/// Prints, per scenario and server, the medians over the rounds; with two
/// servers, in how many rounds each was ahead of the other (see
/// [`ahead_of`]), and the ratio of their medians.
pub fn print_medians(rows: &[Row], servers: &[&str]) {
    let rounds = rows.iter().map(|r| r.round).max().unwrap_or(0);
    println!();
    println!("medians over {rounds} round(s); each server once per round, in alternating order");
    println!(
        "{:<38} {:<24} {:>9} {:>10} {:>7} {:>6} {:>6} {:>7}",
        "scenario", "server", "publish/s", "deliver/s", "p99ms", "µs/dl", "of cl", "ahead"
    );
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows {
        if r.deliveries_per_s > 0.0 && !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for scenario in scenarios {
        let of = |server: &str| -> Vec<&Row> {
            rows.iter()
                .filter(|r| r.scenario == scenario && r.server == server)
                .collect()
        };
        let mut shown = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            let mine = of(server);
            let m = |f: fn(&Row) -> f64| median(mine.iter().map(|r| f(r)).collect());
            let other = (servers.len() == 2).then(|| servers[1 - i]);
            let ahead = match other {
                Some(other) => {
                    let theirs = of(other);
                    let won = mine
                        .iter()
                        .filter(|r| theirs.iter().any(|o| o.round == r.round && ahead_of(r, o)))
                        .count();
                    format!("{won} of {}", mine.len())
                }
                None => String::new(),
            };
            let (dl, cpu) = (m(|r| r.deliveries_per_s), m(|r| r.cpu_us_per_delivery));
            println!(
                "{:<38} {:<24} {:>9.0} {:>10.0} {:>7.1} {:>6.1} {:>5.0}% {:>7}",
                if i == 0 { scenario } else { "" },
                server,
                m(|r| r.publish_per_s),
                dl,
                m(|r| r.p99_ms),
                cpu,
                m(|r| r.of_ceiling) * 100.0,
                ahead
            );
            shown.push((dl, cpu));
        }
        for server in servers {
            print_against_b(rows, scenario, server);
        }
        if let [(dl0, cpu0), (dl1, cpu1)] = shown[..] {
            println!(
                "    {} against {}: deliveries/s {:.3}×, CPU per delivery {:.3}×",
                servers[0],
                servers[1],
                dl0 / dl1,
                cpu0 / cpu1
            );
        }
    }
}

/// For (c) and (d): each round's rate per healthy endpoint as a share of
/// (b)'s in the same round with the same server (the target: at least 90 %).
fn print_against_b(rows: &[Row], scenario: &str, server: &str) {
    let shares = shares_of_b(rows, scenario, server);
    if shares.is_empty() {
        return;
    }
    let each: Vec<String> = shares
        .iter()
        .map(|x| format!("{:.0} %", x * 100.0))
        .collect();
    println!(
        "    {server}: per healthy endpoint, of (b) in the same round: median {:.0} % ({})",
        median(shares.clone()) * 100.0,
        each.join(", ")
    );
}

/// The shares [`print_against_b`] prints, in round order (none for a
/// scenario other than (c) and (d), or without (b) beside it).
fn shares_of_b(rows: &[Row], scenario: &str, server: &str) -> Vec<f64> {
    if !(scenario.starts_with("c:") || scenario.starts_with("d:")) {
        return Vec::new();
    }
    let per_endpoint = |r: &Row| r.deliveries_per_s / r.healthy_endpoints.max(1) as f64;
    rows.iter()
        .filter(|r| r.scenario == scenario && r.server == server)
        .filter_map(|r| {
            let b = rows.iter().find(|b| {
                b.scenario.starts_with("b:") && b.server == server && b.round == r.round
            })?;
            Some(per_endpoint(r) / per_endpoint(b))
        })
        .collect()
}

/// Whether `r` did better than `o`: a lower p99 where events were offered
/// at a fixed rate (both deliver what is offered), else more deliveries/s.
fn ahead_of(r: &Row, o: &Row) -> bool {
    if r.scenario.contains("offered") {
        r.p99_ms < o.p99_ms
    } else {
        r.deliveries_per_s > o.deliveries_per_s
    }
}

/// The median (the mean of the middle two for an even count; NaN for none).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, server: &str, round: u32, per_s: f64, healthy: u64) -> Row {
        Row {
            scenario: scenario.into(),
            server: server.into(),
            round,
            deliveries_per_s: per_s,
            healthy_endpoints: healthy,
            ..Row::default()
        }
    }

    /// (d) is compared per healthy endpoint with (b) of its own round and
    /// server only.
    #[test]
    fn d_is_a_share_of_b_in_the_same_round_and_server() {
        let rows = [
            row("b: fan-out 10", "x", 1, 30_000.0, 10),
            row("d: fan-out 10, slow", "x", 1, 27_000.0, 9),
            row("b: fan-out 10", "y", 1, 10_000.0, 10),
            row("b: fan-out 10", "x", 2, 20_000.0, 10),
            row("d: fan-out 10, slow", "x", 2, 9_000.0, 9),
            row("d: fan-out 10, slow", "x", 3, 9_000.0, 9),
        ];
        assert_eq!(shares_of_b(&rows, "d: fan-out 10, slow", "x"), [1.0, 0.5]);
        assert!(shares_of_b(&rows, "b: fan-out 10", "x").is_empty());
        assert!(shares_of_b(&rows, "d: fan-out 10, slow", "y").is_empty());
    }

    /// At a fixed offered rate the lower p99 is ahead; elsewhere the higher rate.
    #[test]
    fn ahead_means_the_lower_p99_only_where_the_rate_is_offered() {
        let mut fast = row("a: latency at 1000 events/s offered", "x", 1, 999.0, 0);
        let mut slow = row("a: latency at 1000 events/s offered", "y", 1, 1000.0, 0);
        (fast.p99_ms, slow.p99_ms) = (2.0, 9.0);
        assert!(ahead_of(&fast, &slow) && !ahead_of(&slow, &fast));
        let more = row("b: fan-out 10", "x", 1, 31_000.0, 10);
        let less = row("b: fan-out 10", "y", 1, 30_000.0, 10);
        assert!(ahead_of(&more, &less) && !ahead_of(&less, &more));
    }

    #[test]
    fn medians_of_odd_even_and_no_rounds() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
