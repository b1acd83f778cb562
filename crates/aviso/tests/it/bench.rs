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
}
