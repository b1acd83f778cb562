//! Bulk operations as background tasks through the HTTP API: resend failed
//! (over a thousand deliveries, with live traffic flowing), send latest,
//! replay; idempotent, scoped to the owner. SQLite, and PostgreSQL when
//! `AVISO_TEST_DATABASE_URL` is set.

use crate::cluster::{admin_url, Schema};
use crate::operations::{no_retry, stats, wait_stats, WAIT};
use crate::support::{wait_for, Receiver, TestApp, ADMIN_KEY};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Publishes `n` events of `ty` with `concurrency` requests in flight.
async fn publish_many(app: &TestApp, t: &str, ty: &str, n: usize, concurrency: usize) {
    let next = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, t, ty, next) = (
            app.http.clone(),
            app.base.clone(),
            t.to_owned(),
            ty.to_owned(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut g = next.lock().unwrap();
                    *g += 1;
                    *g
                };
                if i > n {
                    return;
                }
                let r = http
                    .post(format!("{base}/v1/tenants/{t}/events"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"type": ty, "payload": {"i": i}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_failed_over_1000_deliveries_while_live_traffic_flows_on_sqlite() {
    let app = TestApp::spawn().await;
    resend_failed_story(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_failed_over_1000_deliveries_while_live_traffic_flows_on_postgres() {
    let Some(admin) = admin_url() else { return };
    let schema = Schema::create(&admin).await;
    let app = TestApp::spawn_on(&schema.url).await;
    resend_failed_story(&app).await;
    app.stop().await;
    schema.drop_now().await;
}

async fn resend_failed_story(app: &TestApp) {
    const FAILED: u64 = 1000;
    let failing = Receiver::always(500, Duration::ZERO).await;
    let live = Receiver::start().await;
    app.event_type("bulk.item").await;
    app.event_type("live.tick").await;
    let t = app.tenant("bulk").await;
    let other = app.tenant("other").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": failing.url, "event_types": ["bulk.*"], "policy": no_retry("2xx")}),
        )
        .await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    app.endpoint(&t, json!({"url": live.url, "event_types": ["live.*"]}))
        .await;
    publish_many(app, &t, "bulk.item", FAILED as usize, 16).await;
    wait_stats(app, &t, &ep, "failed", FAILED).await;
    failing.answer(200);

    // Live traffic to the other endpoint, every few ms, for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
    let producer = tokio::spawn({
        let (http, base, t, stop, sent) = (
            app.http.clone(),
            app.base.clone(),
            t.clone(),
            stop.clone(),
            sent.clone(),
        );
        async move {
            while !stop.load(Ordering::Relaxed) {
                let at = tokio::time::Instant::now();
                let r = http
                    .post(format!("{base}/v1/tenants/{t}/events"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"type": "live.tick", "payload": {}}))
                    .send()
                    .await
                    .unwrap();
                let b: Value = r.json().await.unwrap();
                sent.lock()
                    .unwrap()
                    .push((b["id"].as_str().unwrap().to_owned(), at));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (tk, tenant_key) = {
        let (s, k) = app
            .admin("POST", "/v1/api-keys", Some(json!({"tenant": t})))
            .await;
        assert_eq!(s, 201, "{k}");
        let (s, o) = app
            .admin("POST", "/v1/api-keys", Some(json!({"tenant": other})))
            .await;
        assert_eq!(s, 201, "{o}");
        (
            k["key"].as_str().unwrap().to_owned(),
            o["key"].as_str().unwrap().to_owned(),
        )
    };
    let path = format!("/v1/tenants/{t}/endpoints/{ep}/resend-failed");
    let started = tokio::time::Instant::now();
    let (s, h, task) = app
        .call_with("POST", &path, &tk, &[("idempotency-key", "resend-1")], None)
        .await;
    assert_eq!(s, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(h["location"], format!("/v1/tasks/{id}").as_str());
    let (s, h, again) = app
        .call_with("POST", &path, &tk, &[("idempotency-key", "resend-1")], None)
        .await;
    assert_eq!(
        (s, again["id"].as_str()),
        (202, Some(id.as_str())),
        "same key, same task"
    );
    assert_eq!(h["idempotent-replayed"], "true");
    let (s, _, clash) = app
        .call_with(
            "POST",
            &format!("/v1/tenants/{t}/endpoints/{ep}/send-latest"),
            &tk,
            &[("idempotency-key", "resend-1")],
            None,
        )
        .await;
    assert_eq!(s, 409, "a key names one operation: {clash}");
    let (s, _) = app
        .call("GET", &format!("/v1/tasks/{id}"), &tenant_key, None)
        .await;
    assert_eq!(s, 404, "another tenant's key does not see the task");

    let done = app.wait_task(&tk, &id, WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        (
            done["total"].as_u64(),
            done["processed"].as_u64(),
            done["queued"].as_u64()
        ),
        (Some(FAILED), Some(FAILED), Some(FAILED)),
        "{done}"
    );
    wait_for(
        "every failed delivery delivered again",
        Duration::from_secs(60),
        || async { failing.count() as u64 >= 2 * FAILED },
    )
    .await;
    let resent_in = started.elapsed();
    wait_stats(app, &t, &ep, "succeeded", FAILED).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();

    // Live events published while the resends went out all arrived, promptly.
    let arrived: std::collections::HashMap<String, tokio::time::Instant> = live
        .received()
        .iter()
        .map(|r| (r.headers["webhook-id"].to_str().unwrap().to_owned(), r.at))
        .collect();
    let during: Vec<_> = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at >= started && *at <= started + resent_in)
        .cloned()
        .collect();
    assert!(
        during.len() >= 3,
        "live traffic kept flowing during the resend: {}",
        during.len()
    );
    wait_for("every live event", WAIT, || async {
        let n = live.count();
        n >= sent.lock().unwrap().len()
    })
    .await;
    let arrived: std::collections::HashMap<String, tokio::time::Instant> = live
        .received()
        .iter()
        .map(|r| (r.headers["webhook-id"].to_str().unwrap().to_owned(), r.at))
        .chain(arrived)
        .collect();
    let worst = during
        .iter()
        .map(|(id, at)| arrived[id].duration_since(*at))
        .max()
        .unwrap();
    println!(
        "resend-failed: {FAILED} deliveries resent and delivered in {resent_in:?}; {} live events meanwhile, worst publish-to-arrival {worst:?}",
        during.len()
    );
    assert!(
        worst < Duration::from_secs(5),
        "live deliveries were held up: {worst:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_latest_and_replay_reach_events_from_before_the_endpoint_on_sqlite() {
    let app = TestApp::spawn().await;
    history_story(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_latest_and_replay_reach_events_from_before_the_endpoint_on_postgres() {
    let Some(admin) = admin_url() else { return };
    let schema = Schema::create(&admin).await;
    let app = TestApp::spawn_on(&schema.url).await;
    history_story(&app).await;
    app.stop().await;
    schema.drop_now().await;
}

async fn history_story(app: &TestApp) {
    let rx = Receiver::start().await;
    for ty in ["A.one", "A.two", "B.other"] {
        app.event_type(ty).await;
    }
    let t = app.tenant("history").await;
    let since = aviso_core::Timestamp::now().to_rfc3339();
    for (ty, n) in [("A.one", 1), ("A.two", 2), ("A.one", 3), ("B.other", 4)] {
        app.publish(&t, json!({"type": ty, "payload": {"n": n}}))
            .await;
    }
    // The endpoint is created after the events: no delivery exists yet.
    let ep = app
        .endpoint(
            &t,
            json!({"url": rx.url, "event_types": ["A.*"], "filter": {"/n": {"in": [1, 2, 3]}}}),
        )
        .await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    let (_, st) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{ep}/status-by-type"),
            None,
        )
        .await;
    let rows = st["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{st}");
    assert!(
        rows.iter()
            .all(|r| r["event"].is_object() && r["delivery"].is_null()),
        "{st}"
    );

    let ops = format!("/v1/tenants/{t}/endpoints/{ep}");
    let (s, task) = app.admin("POST", &format!("{ops}/send-latest"), None).await;
    assert_eq!(s, 202, "{task}");
    let done = app
        .wait_task(ADMIN_KEY, task["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(
        (done["status"].as_str(), done["queued"].as_u64()),
        (Some("succeeded"), Some(2)),
        "{done}"
    );
    wait_for("the latest of each type", WAIT, || async {
        rx.count() == 2
    })
    .await;
    let mut got: Vec<i64> = rx
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![2, 3], "the latest A.one (n=3) and A.two (n=2)");

    let (s, b) = app
        .admin(
            "POST",
            &format!("{ops}/replay"),
            Some(json!({"since": since, "until": since})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("since")),
        "{b}"
    );
    let (s, b) = app
        .admin(
            "POST",
            &format!("{ops}/replay"),
            Some(json!({"since": "last week"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("since")),
        "{b}"
    );
    let (s, task) = app
        .admin(
            "POST",
            &format!("{ops}/replay"),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(s, 202, "{task}");
    let done = app
        .wait_task(ADMIN_KEY, task["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        (done["total"].as_u64(), done["queued"].as_u64()),
        (Some(4), Some(3)),
        "every event of the window looked at, the matching ones sent: {done}"
    );
    wait_for("the replayed events", WAIT, || async { rx.count() == 5 }).await;

    // Only the failed delivery of the latest event of each type.
    rx.answer(500);
    let (_, _) = app
        .admin(
            "PATCH",
            &ops,
            Some(json!({"policy": {"retry": {"schedule": []}, "adaptive": false}})),
        )
        .await;
    for n in [1, 3] {
        app.publish(&t, json!({"type": "A.one", "payload": {"n": n}}))
            .await;
    }
    wait_for("two more failures", WAIT, || async {
        stats(app, &t, &ep, "").await["by_status"]["failed"] == 2
    })
    .await;
    rx.answer(200);
    let (s, task) = app
        .admin(
            "POST",
            &format!("{ops}/resend-failed"),
            Some(json!({"latest_per_type": true})),
        )
        .await;
    assert_eq!(s, 202, "{task}");
    let done = app
        .wait_task(ADMIN_KEY, task["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(
        (done["total"].as_u64(), done["queued"].as_u64()),
        (Some(1), Some(1)),
        "{done}"
    );
    wait_for("the latest failed A.one again", WAIT, || async {
        rx.count() == 8
    })
    .await;

    let (s, _) = app
        .admin("PATCH", &ops, Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200);
    let (s, b) = app.admin("POST", &format!("{ops}/send-latest"), None).await;
    assert_eq!(s, 409, "a disabled endpoint takes no bulk sends: {b}");
}

/// Tasks live in the database: created through one node, visible (to the
/// owner only) and run to the end through any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_visible_on_every_node_on_postgres() {
    let Some(admin) = admin_url() else { return };
    let schema = Schema::create(&admin).await;
    let (a, b) = (
        TestApp::spawn_on(&schema.url).await,
        TestApp::spawn_on(&schema.url).await,
    );
    let rx = Receiver::start().await;
    a.event_type("doc.signed").await;
    let t = a.tenant("nodes").await;
    let other = a.tenant("someone-else").await;
    let since = aviso_core::Timestamp::now().to_rfc3339();
    for n in 0..5 {
        a.publish(&t, json!({"type": "doc.signed", "payload": {"n": n}}))
            .await;
    }
    let ep = a.endpoint(&t, json!({"url": rx.url})).await;
    let ep = ep["id"].as_str().unwrap();
    let (s, task) = a
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/endpoints/{ep}/replay"),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(s, 202, "{task}");
    let id = task["id"].as_str().unwrap();
    let (s, k) = b
        .admin("POST", "/v1/api-keys", Some(json!({"tenant": other})))
        .await;
    assert_eq!(s, 201, "{k}");
    let (s, _) = b
        .call(
            "GET",
            &format!("/v1/tasks/{id}"),
            k["key"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(s, 404, "only the owner sees it");
    let done = b.wait_task(ADMIN_KEY, id, WAIT).await;
    assert_eq!(
        (done["status"].as_str(), done["queued"].as_u64()),
        (Some("succeeded"), Some(5)),
        "{done}"
    );
    wait_for("the replayed events", WAIT, || async { rx.count() == 5 }).await;
    a.stop().await;
    b.stop().await;
    schema.drop_now().await;
}
