//! `aviso bench`: the server as a child on a fresh database, a loopback
//! receiver and publishers through the real API, scenario by scenario. Every
//! figure is also shown as a fraction of the raw loopback rate measured in the
//! same run, because the machine is shared and noisy.

pub mod child;
mod load;
mod receiver;
mod report;
mod scenarios;

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
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    aviso_core::Dur::parse(s)
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

/// Runs the chosen scenarios and prints a table (and JSON when asked).
pub async fn run(args: BenchArgs) -> anyhow::Result<Vec<Row>> {
    let all = args.scenarios.iter().any(|s| s == "all");
    let want = |s: &str| all || args.scenarios.iter().any(|x| x == s);
    let mut rows = Vec::new();
    for (name, publishers) in [("a", 32), ("a", 128)] {
        if want(name) {
            rows.push(
                scenarios::fanout(
                    &args,
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
        rows.push(scenarios::latency(&args, 1000).await?);
    }
    if want("b") {
        rows.push(scenarios::fanout(&args, "b: fan-out 10, 32 publishers", 32, 10, None).await?);
    }
    if want("c") {
        rows.push(
            scenarios::fanout(&args, "c: fan-out 10, 1 answers 500", 32, 10, Some("fail")).await?,
        );
    }
    if want("d") {
        rows.push(
            scenarios::fanout(
                &args,
                "d: fan-out 10, 1 answers after 2s",
                32,
                10,
                Some("slow"),
            )
            .await?,
        );
    }
    if want("e") || want("f") {
        rows.extend(scenarios::backlog(&args).await?);
    }
    report::print(&rows);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
        println!("results written to {}", path.display());
    }
    Ok(rows)
}
