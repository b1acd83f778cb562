//! Publish throughput of each backend, store only (no HTTP). Not part of the
//! suite; run it on purpose:
//! `cargo test --release -p aviso-store --test throughput -- --ignored --nocapture`

#[path = "conformance/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "conformance/support.rs"]
#[allow(dead_code)]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

/// Publishes from `publishers` tasks for `secs`; returns events per second.
async fn measure(db: &Db, publishers: usize, secs: u64) -> f64 {
    let t = tenant(db, "t").await;
    endpoint(db, &t, &[]).await;
    endpoint(db, &t, &["A.*"]).await;
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let (db, t) = (db.clone(), t.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let ev = event(
                        &t,
                        "A.X",
                        json!({"p": p, "n": n, "pad": "x".repeat(200)}),
                        0,
                    );
                    db.publish(ev, Some("bench")).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a test"]
async fn publish_throughput() {
    for publishers in [1, 32, 128] {
        let path = std::env::temp_dir().join(format!(
            "aviso-throughput-{}-{publishers}.db",
            std::process::id()
        ));
        let db: Db = aviso_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let rate = measure(&db, publishers, 5).await;
        println!("sqlite   {publishers:>3} publishers: {rate:>7.0} events/s (2 deliveries each)");
        drop(db);
        let _ = std::fs::remove_file(&path);
        if let Some(admin) = pg::admin_url() {
            let schema = pg::TestSchema::create(&admin).await;
            let db: Db = aviso_store::open(&schema.url).await.unwrap();
            let rate = measure(&db, publishers, 5).await;
            println!(
                "postgres {publishers:>3} publishers: {rate:>7.0} events/s (2 deliveries each)"
            );
            drop(db);
            schema.drop_now().await;
        }
    }
}

/// The store's whole share of a fan-out delivery, as `aviso bench` scenario
/// (b) drives it but without HTTP: `EVENTS` events to 10 endpoints published
/// claimed by 32 tasks, then every delivery's successful outcome recorded in
/// batches of 64. A fixed amount of work, so it can also be counted by
/// `valgrind --tool=callgrind` (instructions, repeatable on a noisy machine):
/// `cargo test --release -p aviso-store --test throughput -- --ignored --nocapture fan_out_write_cost`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a test"]
async fn fan_out_write_cost() {
    use aviso_store::NextStep;
    const EVENTS: usize = 4_000;
    const FAN_OUT: usize = 10;
    let path = std::env::temp_dir().join(format!("aviso-fanout-{}.db", std::process::id()));
    let db: Db = aviso_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let t = tenant(&db, "t").await;
    for _ in 0..FAN_OUT {
        endpoint(&db, &t, &[]).await;
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|p| {
            let (db, t) = (db.clone(), t.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in (p..EVENTS).step_by(32) {
                    let ev = event(
                        &t,
                        "A.X",
                        json!({"p": p, "n": n, "pad": "x".repeat(200)}),
                        0,
                    );
                    let out = db.publish(ev, Some("bench")).await.unwrap();
                    ids.extend(out.jobs.into_iter().map(|j| j.delivery));
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    assert_eq!(ids.len(), EVENTS * FAN_OUT);
    let published = start.elapsed();
    let outcomes: Vec<_> = ids
        .chunks(64)
        .map(|chunk| {
            let db = db.clone();
            let batch: Vec<_> = chunk
                .iter()
                .map(|id| outcome(id, 1, Some(200), NextStep::Succeeded))
                .collect();
            tokio::spawn(async move { db.record_outcomes(batch).await.unwrap() })
        })
        .collect();
    for task in outcomes {
        task.await.unwrap();
    }
    let total = start.elapsed();
    println!(
        "sqlite fan-out {FAN_OUT}: {EVENTS} events published in {:.2}s, {} outcomes recorded in {:.2}s: {:.0} deliveries/s",
        published.as_secs_f64(),
        ids.len(),
        (total - published).as_secs_f64(),
        ids.len() as f64 / total.as_secs_f64()
    );
    drop(db);
    let _ = std::fs::remove_file(&path);
}
