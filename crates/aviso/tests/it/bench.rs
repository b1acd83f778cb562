//! `aviso bench` works end to end: a short run produces sane, complete rows.
//! (Speed is not asserted here; BENCHMARKS.md carries the figures.)

use serde_json::Value;

#[tokio::test]
async fn bench_runs_a_short_fanout_scenario() {
    let out = crate::support::temp_db().with_extension("json");
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_aviso"))
        .args(["bench", "--scenarios", "c", "--duration", "1s", "--json"])
        .arg(&out)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert!(r["publish_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["deliveries_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["ceiling_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(
        r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(),
        "{r}"
    );
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["failed_publishes"], 0, "{r}");
    assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0, "{r}");
    assert_eq!(r["healthy_endpoints"], 9, "{r}");
}

/// `--against` runs each scenario with both server binaries in every round,
/// in alternating order, and prints both sides' medians.
#[tokio::test]
async fn bench_compares_two_servers_in_alternating_rounds() {
    let out = crate::support::temp_db().with_extension("json");
    let exe = env!("CARGO_BIN_EXE_aviso");
    let run = tokio::process::Command::new(exe)
        .args(["bench", "--scenarios", "a-latency", "--duration", "1s"])
        .args(["--server", exe, "--against", exe, "--rounds", "2", "--json"])
        .arg(&out)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let again = format!("{exe} (again)");
    let order: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r["round"].as_u64().unwrap(), r["server"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [(1, exe), (1, again.as_str()), (2, again.as_str()), (2, exe)],
        "each server once per round, the order alternating"
    );
    for r in &rows {
        assert!(r["deliveries_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["duplicates"], 0, "{r}");
    }
    assert!(stdout.contains("medians over 2 round(s)"), "{stdout}");
    assert!(
        stdout.contains(&format!("{exe} against {again}")),
        "{stdout}"
    );
}
