//! `aviso bench`: the server as a child on a fresh database, a loopback
//! receiver and publishers through the real API, scenario by scenario. Every
//! figure is also shown as a fraction of the raw loopback rate measured in the
//! same run, because the machine is shared and noisy.

pub mod child;
mod load;
mod receiver;
mod report;
mod scenarios;

use anyhow::Context;
pub use report::Row;
use std::path::PathBuf;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenarios to run: a, a-latency, b, c, d, e (e includes f), or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub scenarios: Vec<String>,
    /// Measured publishing time per scenario.
    #[arg(long, default_value = "10s", value_parser = parse_dur)]
    pub duration: Duration,
    /// Pending deliveries piled up for the dead endpoint in scenario e.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: u64,
    /// Use this (empty, disposable) database instead of a fresh SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Serve with this aviso binary instead of this one (the publishers and
    /// the receiver stay this binary's).
    #[arg(long, value_name = "PATH")]
    pub server: Option<PathBuf>,
    /// Compare: run every scenario with this other aviso binary as the server
    /// too, alternating the two round by round, and print both sides' medians.
    #[arg(long, value_name = "PATH")]
    pub against: Option<PathBuf>,
    /// Rounds of the chosen scenarios (each server once per round; with
    /// `--against`, the order alternates so neither always runs first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

impl BenchArgs {
    /// The binary whose `serve` is measured.
    fn server_exe(&self) -> anyhow::Result<PathBuf> {
        match &self.server {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe().context("finding the aviso binary"),
        }
    }
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    aviso_core::Dur::parse(s)
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

/// Runs the chosen scenarios (each round, against each server) and prints
/// a table, a comparison of medians when there is more than one run of a
/// scenario, and the JSON when asked.
pub async fn run(args: BenchArgs) -> anyhow::Result<Vec<Row>> {
    let mut servers = vec![(label(args.server.as_deref()), args.server_exe()?)];
    if let Some(other) = &args.against {
        let mut name = label(Some(other));
        if name == servers[0].0 {
            name.push_str(" (again)");
        }
        servers.push((name, other.clone()));
    }
    let compared = servers.len() > 1 || args.rounds > 1;
    for (_, exe) in &servers {
        anyhow::ensure!(exe.is_file(), "no aviso binary at {}", exe.display());
    }
    let mut rows = Vec::new();
    for round in 1..=args.rounds {
        let mut order: Vec<_> = servers.iter().collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for (name, exe) in order {
            if compared {
                eprintln!("== round {round} of {}: {name}", args.rounds);
            }
            let pass = BenchArgs {
                server: Some(exe.clone()),
                ..args.clone()
            };
            for mut row in scenarios_once(&pass).await? {
                row.server = name.clone();
                row.round = round;
                rows.push(row);
            }
        }
    }
    report::print(&rows, compared);
    if compared {
        let names: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
        report::print_medians(&rows, &names);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
        println!("results written to {}", path.display());
    }
    Ok(rows)
}

/// How a server binary is named in the results: its path as given, or
/// `this binary` for the one running the bench.
fn label(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "this binary".to_owned(), |p| p.display().to_string())
}

/// One pass over the chosen scenarios with `args.server`.
async fn scenarios_once(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let all = args.scenarios.iter().any(|s| s == "all");
    let want = |s: &str| all || args.scenarios.iter().any(|x| x == s);
    let mut rows = Vec::new();
    for (name, publishers) in [("a", 32), ("a", 128)] {
        if want(name) {
            rows.push(
                scenarios::fanout(
                    args,
                    &format!("a: 1 endpoint, {publishers} publishers"),
                    publishers,
                    1,
                    None,
                )
                .await?,
            );
        }
    }
    if want("a-latency") {
        rows.push(scenarios::latency(args, 1000).await?);
    }
    if want("b") {
        rows.push(scenarios::fanout(args, "b: fan-out 10, 32 publishers", 32, 10, None).await?);
    }
    if want("c") {
        rows.push(
            scenarios::fanout(args, "c: fan-out 10, 1 answers 500", 32, 10, Some("fail")).await?,
        );
    }
    if want("d") {
        rows.push(
            scenarios::fanout(
                args,
                "d: fan-out 10, 1 answers after 2s",
                32,
                10,
                Some("slow"),
            )
            .await?,
        );
    }
    if want("e") || want("f") {
        rows.extend(scenarios::backlog(args).await?);
    }
    Ok(rows)
}
