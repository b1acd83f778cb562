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
