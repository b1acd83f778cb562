//! The polling feed as a fallback: a client that missed a window catches up
//! from its last cursor, long polls wake on publish, and on PostgreSQL the
//! cursor never skips an event while many nodes publish at once.

use crate::cluster::{admin_url, Schema};
use crate::support::{TestApp, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One feed page: event ids and the next cursor.
async fn page(app: &TestApp, t: &str, query: &str) -> (Vec<String>, String) {
    let (s, b) = app
        .admin("GET", &format!("/v1/tenants/{t}/events?{query}"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let ids = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    (
        ids,
        b["next_cursor"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Reads pages of `limit` from `cursor` until an empty page.
async fn drain(app: &TestApp, t: &str, cursor: &mut String, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let q = if cursor.is_empty() {
            format!("limit={limit}")
        } else {
            format!("limit={limit}&after={cursor}")
        };
        let (ids, next) = page(app, t, &q).await;
        *cursor = next;
        if ids.is_empty() {
            return out;
        }
        out.extend(ids);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_catches_up_after_missing_a_window() {
    let app = TestApp::spawn().await;
    app.event_type("status.changed").await;
    app.event_type("other.thing").await;
    let t = app.tenant("poller").await;
    let publish = |n: usize, ty: &'static str| {
        let app = &app;
        let t = t.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..n {
                let b = app
                    .publish(&t, json!({"type": ty, "payload": {"i": i}}))
                    .await;
                ids.push(b["id"].as_str().unwrap().to_owned());
            }
            ids
        }
    };
    let mut cursor = String::new();
    let first = publish(5, "status.changed").await;
    assert_eq!(drain(&app, &t, &mut cursor, 10).await, first);
    let kept = cursor.clone();

    // The client is away while 37 events are published...
    let missed = publish(37, "status.changed").await;
    let noise = publish(3, "other.thing").await;
    // ... and comes back with its last cursor: everything, in order, once.
    let mut c = kept.clone();
    let mut all = missed.clone();
    all.extend(noise);
    assert_eq!(drain(&app, &t, &mut c, 10).await, all);
    let mut c = kept.clone();
    let (typed, _) = page(&app, &t, &format!("after={c}&types=status.*&limit=100")).await;
    assert_eq!(typed, missed, "a type filter keeps the order");
    assert!(drain(&app, &t, &mut c, 100).await.len() == 40);

    // Long poll: an empty answer waits until something is published.
    let started = tokio::time::Instant::now();
    let poll = tokio::spawn({
        let (http, base, t, c) = (app.http.clone(), app.base.clone(), t.clone(), c.clone());
        async move {
            let r = http
                .get(format!("{base}/v1/tenants/{t}/events?after={c}&wait=10s"))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = publish(1, "status.changed").await;
    let (s, b) = poll.await.unwrap();
    let waited = started.elapsed();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"][0]["id"], late[0].as_str());
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "woke on publish after {waited:?}"
    );
    // Nothing new: the poll answers empty when the time is up, cursor unchanged.
    let next = b["next_cursor"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    let (ids, again) = page(&app, &t, &format!("after={next}&wait=1s")).await;
    assert!(ids.is_empty() && again == next);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (s, b) = app
        .admin("GET", &format!("/v1/tenants/{t}/events?wait=2m"), None)
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("wait")),
        "{b}"
    );
    app.stop().await;
}

/// Many publishers on two nodes, one poller following the cursor: every
/// event is seen exactly once. A `seq` drawn from a sequence can commit out
/// of order; per-tenant publish locks make commit order the `seq` order, so
/// a poller never moves past an event that commits later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_feed_never_skips_under_concurrent_publishes_on_two_nodes() {
    let Some(admin) = admin_url() else { return };
    const EVENTS: usize = 400;
    let schema = Schema::create(&admin).await;
    let a = TestApp::spawn_on(&schema.url).await;
    let b = TestApp::spawn_on(&schema.url).await;
    a.event_type("feed.item").await;
    let t = a.tenant("feed").await;
    let published = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(Mutex::new(0usize));
    let mut producers = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (http, t, published, next) =
            (a.http.clone(), t.clone(), published.clone(), next.clone());
        producers.push(tokio::spawn(async move {
            loop {
                let n = {
                    let mut g = next.lock().unwrap();
                    *g += 1;
                    *g
                };
                if n > EVENTS {
                    return;
                }
                let r = http
                    .post(format!("{base}/v1/tenants/{t}/events"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"type": "feed.item", "payload": {"n": n}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let v: Value = r.json().await.unwrap();
                published
                    .lock()
                    .unwrap()
                    .insert(v["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    // The poller reads while the publishes commit.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < EVENTS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "poller stuck at {}",
            seen.len()
        );
        let q = if cursor.is_empty() {
            "limit=50&wait=2s".to_owned()
        } else {
            format!("limit=50&wait=2s&after={cursor}")
        };
        let (ids, next) = page(&b, &t, &q).await;
        cursor = next;
        seen.extend(ids);
    }
    for p in producers {
        p.await.unwrap();
    }
    let (extra, _) = page(&a, &t, &format!("after={cursor}")).await;
    assert!(extra.is_empty(), "nothing after the last event: {extra:?}");
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(unique, *published.lock().unwrap(), "no event skipped");

    // A long poll on one node wakes for a publish on the other.
    let started = tokio::time::Instant::now();
    let poll = tokio::spawn({
        let (http, base, t, c) = (b.http.clone(), b.base.clone(), t.clone(), cursor.clone());
        async move {
            let r = http
                .get(format!("{base}/v1/tenants/{t}/events?after={c}&wait=20s"))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p = a
        .publish(&t, json!({"type": "feed.item", "payload": {}}))
        .await;
    let got = poll.await.unwrap();
    assert_eq!(got["data"][0]["id"], p["id"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    a.stop().await;
    b.stop().await;
    schema.drop_now().await;
}
