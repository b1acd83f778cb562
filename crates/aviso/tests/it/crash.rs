//! Crash safety: `kill -9` the real binary mid-delivery, restart it on the same
//! database, and every accepted event still reaches the receiver.

use crate::support::{temp_db, wait_for, Receiver};
use aviso::bench::child::{Db, Server, KEY};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

async fn start_server(db: &Path) -> Server {
    let exe = Path::new(env!("CARGO_BIN_EXE_aviso"));
    Server::start_binary(exe, &Db::Sqlite(db.to_owned()))
        .await
        .expect("aviso serve starts")
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn ids_by_count(rx: &Receiver) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rx.received() {
        *m.entry(r.headers["webhook-id"].to_str().unwrap().to_owned())
            .or_default() += 1;
    }
    m
}

#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing() {
    const EVENTS: usize = 1000;
    let db = temp_db();
    let rx = Receiver::start_with(Vec::new(), Duration::from_millis(10)).await;
    let mut server = start_server(&db).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    assert_eq!(
        post(
            &http,
            format!("{base}/v1/event-types"),
            json!({"name": "invoice.paid"})
        )
        .await
        .0,
        201
    );
    let (s, t) = post(
        &http,
        format!("{base}/v1/tenants"),
        json!({"uid": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(s, 201);
    let t = t["id"].as_str().unwrap().to_owned();
    let (s, _) = post(
        &http,
        format!("{base}/v1/tenants/{t}/endpoints"),
        json!({"url": rx.url, "policy": {"max_in_flight": 4}}),
    )
    .await;
    assert_eq!(s, 201);

    // Publish from 16 concurrent producers; every one must be accepted.
    let mut tasks = Vec::new();
    for p in 0..16 {
        let (http, url) = (http.clone(), format!("{base}/v1/tenants/{t}/events"));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (p..EVENTS).step_by(16) {
                let (s, b) = post(
                    &http,
                    url.clone(),
                    json!({"type": "invoice.paid", "payload": {"n": n}}),
                )
                .await;
                assert_eq!(s, 202, "{b}");
                ids.push(b["id"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await.unwrap());
    }
    assert_eq!(accepted.len(), EVENTS);

    wait_for(
        "some deliveries before the crash",
        Duration::from_secs(60),
        || async { rx.count() >= 150 },
    )
    .await;
    server.kill().await; // SIGKILL
    let before = rx.count();
    assert!(
        before < EVENTS,
        "the crash must happen mid-way (got {before} already)"
    );

    let mut server = start_server(&db).await;
    wait_for(
        "every accepted event after restart",
        Duration::from_secs(120),
        || async { ids_by_count(&rx).len() >= EVENTS },
    )
    .await;
    let seen = ids_by_count(&rx);
    for id in &accepted {
        assert!(seen.contains_key(id), "event {id} never arrived");
    }
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    println!(
        "crash test: {EVENTS} events, {before} arrived before kill -9, {duplicates} arrived twice"
    );

    // A graceful stop (SIGTERM) exits cleanly.
    let status = server
        .stop()
        .await
        .expect("aviso stops within 30 s of SIGTERM");
    assert!(status.success(), "aviso exited with {status}");
}
