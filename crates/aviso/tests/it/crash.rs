//! Crash safety: `kill -9` the real binary mid-delivery, restart it on the same
//! database, and every accepted event still reaches the receiver.

use crate::support::{temp_db, wait_for, Receiver, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `aviso serve` on `db` and returns the child and its base URL.
async fn start_server(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aviso"))
        .arg("serve")
        .env("AVISO_LISTEN", "127.0.0.1:0")
        .env("AVISO_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("AVISO_ADMIN_KEY", ADMIN_KEY)
        .env("AVISO_ALLOW_HTTP", "true")
        .env("AVISO_ALLOW_PRIVATE_DESTINATIONS", "true")
        .env("AVISO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn aviso");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("API:") {
                return url.trim().trim_end_matches("/v1").to_owned();
            }
        }
        panic!("aviso exited before printing its API URL");
    })
    .await
    .expect("aviso printed its URL in time");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(ADMIN_KEY)
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
    let (mut child, base) = start_server(&db).await;
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
    child.kill().await.unwrap(); // SIGKILL
    let before = rx.count();
    assert!(
        before < EVENTS,
        "the crash must happen mid-way (got {before} already)"
    );

    let (mut child, _) = start_server(&db).await;
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
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "aviso exited with {status}");
}
