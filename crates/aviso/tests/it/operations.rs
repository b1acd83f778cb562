//! Audit and operations through the HTTP API: filtered delivery lists that
//! page exactly while rows arrive, status-by-type, stats, test sends, and the
//! bulk tasks (resend failed, send latest, replay).

use crate::cluster::{admin_url, Schema};
use crate::support::{wait_for, Receiver, TestApp, ADMIN_KEY};
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Fails on the first non-success answer: no retries.
fn no_retry(success: &str) -> Value {
    json!({"success": success, "retry": {"schedule": []}, "adaptive": false, "max_in_flight": 32})
}

async fn stats(app: &TestApp, t: &str, ep: &str, query: &str) -> Value {
    let (s, b) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{ep}/stats{query}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn wait_stats(app: &TestApp, t: &str, ep: &str, status: &str, n: u64) {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let b = stats(app, t, ep, "").await;
        if b["by_status"][status] == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "never {n} {status} deliveries: {b}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn list_ids(app: &TestApp, path: &str) -> Vec<String> {
    let (s, b) = app.admin("GET", path, None).await;
    assert_eq!(s, 200, "{path}: {b}");
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_filters_pages_status_by_type_and_stats() {
    let app = TestApp::spawn().await;
    // Success is exactly 201; the receiver answers 200 until told otherwise.
    let rx = Receiver::always(200, Duration::ZERO).await;
    for ty in ["A.created", "A.updated", "B.done", "C.never"] {
        app.event_type(ty).await;
    }
    let t = app.tenant("audit").await;
    let ep = app
        .endpoint(&t, json!({"url": rx.url, "policy": no_retry("201")}))
        .await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    let mut failed_events = Vec::new();
    for ty in ["A.created", "A.created", "A.created", "B.done", "B.done"] {
        let b = app.publish(&t, json!({"type": ty, "payload": {}})).await;
        failed_events.push(b["id"].as_str().unwrap().to_owned());
    }
    wait_stats(&app, &t, &ep, "failed", 5).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mid = aviso_core::Timestamp::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(5)).await;
    rx.answer(201);
    let mut last_created = String::new();
    for ty in ["A.updated", "A.updated", "A.created"] {
        let b = app.publish(&t, json!({"type": ty, "payload": {}})).await;
        last_created = b["id"].as_str().unwrap().to_owned();
    }
    wait_stats(&app, &t, &ep, "succeeded", 3).await;

    let base = format!("/v1/tenants/{t}/endpoints/{ep}/deliveries");
    assert_eq!(
        list_ids(&app, &format!("{base}?status=failed")).await.len(),
        5
    );
    assert_eq!(
        list_ids(&app, &format!("{base}?event_type=A.*"))
            .await
            .len(),
        6
    );
    assert_eq!(
        list_ids(&app, &format!("{base}?event_type=B.done"))
            .await
            .len(),
        2
    );
    assert_eq!(
        list_ids(&app, &format!("{base}?since={mid}")).await.len(),
        3
    );
    assert_eq!(
        list_ids(&app, &format!("{base}?until={mid}")).await.len(),
        5
    );
    assert_eq!(
        list_ids(
            &app,
            &format!("{base}?status=failed&event_type=A.created&until={mid}")
        )
        .await
        .len(),
        3
    );
    let (s, b) = app
        .admin("GET", &format!("{base}?status=bogus"), None)
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("status")),
        "{b}"
    );
    let (s, b) = app
        .admin("GET", &format!("{base}?since=yesterday"), None)
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("since")),
        "{b}"
    );

    // Paging while new rows arrive: the pages started before still add up
    // to exactly the rows that existed, once each.
    let all_before: HashSet<String> = list_ids(&app, &format!("{base}?limit=100"))
        .await
        .into_iter()
        .collect();
    assert_eq!(all_before.len(), 8);
    let (_, first) = app.admin("GET", &format!("{base}?limit=3"), None).await;
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    for _ in 0..4 {
        app.publish(&t, json!({"type": "B.done", "payload": {}}))
            .await;
    }
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (s, page) = app
            .admin("GET", &format!("{base}?limit=3&cursor={c}"), None)
            .await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 8, "no row twice, none skipped: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all_before);

    // One failed delivery with its attempt: time, duration, status, error
    // class, response headers.
    let (_, ev) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/events/{}", failed_events[0]),
            None,
        )
        .await;
    let dlv = ev["deliveries"][0]["id"].as_str().unwrap();
    let (s, d) = app
        .admin("GET", &format!("/v1/tenants/{t}/deliveries/{dlv}"), None)
        .await;
    assert_eq!(s, 200, "{d}");
    let a = &d["attempts"][0];
    assert_eq!(a["status_code"], 200);
    assert_eq!(a["error"], "status");
    assert!(a["duration_ms"].is_u64() && a["at"].is_string(), "{a}");
    assert!(!a["response_headers"].as_array().unwrap().is_empty(), "{a}");

    // Status by type: the latest event of each subscribed catalogue type.
    wait_stats(&app, &t, &ep, "succeeded", 7).await;
    let (s, b) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{ep}/status-by-type"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let rows = b["data"].as_array().unwrap();
    let row = |ty: &str| rows.iter().find(|r| r["event_type"] == ty).unwrap().clone();
    assert_eq!(rows.len(), 4, "{b}");
    assert_eq!(row("A.created")["event"]["id"], last_created.as_str());
    assert_eq!(row("A.created")["delivery"]["status"], "succeeded");
    assert_eq!(row("A.updated")["delivery"]["status"], "succeeded");
    assert_eq!(row("B.done")["delivery"]["status"], "succeeded");
    assert_eq!(row("C.never")["event"], Value::Null);

    let all = stats(&app, &t, &ep, "").await;
    assert_eq!(all["total"], 12, "{all}");
    assert_eq!(all["by_status"]["failed"], 5, "{all}");
    let early = stats(&app, &t, &ep, &format!("?until={mid}")).await;
    assert_eq!(
        (
            early["total"].as_u64(),
            early["by_status"]["succeeded"].as_u64()
        ),
        (Some(5), Some(0)),
        "{early}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sends_are_signed_recorded_and_guarded() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let (s, b) = app
        .admin(
            "POST",
            "/v1/event-types",
            Some(json!({"name": "order.paid", "example": {"order": 7}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    app.event_type("order.bare").await;
    let t = app.tenant("tester").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": rx.url, "auth": {"bearer": {"token": "tok"}}}),
        )
        .await;
    let (id, secret) = (ep["id"].as_str().unwrap(), ep["secret"].as_str().unwrap());
    let path = format!("/v1/tenants/{t}/endpoints/{id}/test");

    let (s, r) = app.admin("POST", &path, None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["succeeded"].as_bool(), r["type"].as_str()),
        (Some(true), Some("aviso.test")),
        "{r}"
    );
    assert_eq!(r["attempt"]["status_code"], 200);
    assert_eq!(rx.count(), 1, "the answer comes after the one attempt");
    let got = &rx.received()[0];
    assert_eq!(got.headers["webhook-id"], r["event"].as_str().unwrap());
    assert_eq!(got.headers["authorization"], "Bearer tok");
    Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .expect("signed like a delivery");

    let (s, r) = app
        .admin("POST", &path, Some(json!({"type": "order.paid"})))
        .await;
    assert_eq!(s, 200, "{r}");
    let body: Value = serde_json::from_slice(&rx.received()[1].body).unwrap();
    assert_eq!(body, json!({"order": 7}), "the catalogue example is sent");

    let (s, r) = app
        .admin("POST", &path, Some(json!({"type": "order.bare"})))
        .await;
    assert_eq!(
        (s, r["error"]["field"].as_str()),
        (422, Some("payload")),
        "{r}"
    );
    let (s, r) = app
        .admin("POST", &path, Some(json!({"type": "nope.nope"})))
        .await;
    assert_eq!(
        (s, r["error"]["field"].as_str()),
        (422, Some("type")),
        "{r}"
    );

    rx.answer(503);
    let (s, r) = app
        .admin(
            "POST",
            &path,
            Some(json!({"type": "order.bare", "payload": {"x": 1}})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["succeeded"].as_bool(), r["attempt"]["error"].as_str()),
        (Some(false), Some("status")),
        "{r}"
    );
    assert_eq!(r["attempt"]["status_code"], 503);

    let (s, list) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{id}/tests"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let kinds: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["type"].as_str().unwrap().to_owned(),
                x["succeeded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("order.bare".into(), false),
            ("order.paid".into(), true),
            ("aviso.test".into(), true)
        ]
    );
    app.stop().await;

    // The destination guard applies to tests as to deliveries.
    let guarded = TestApp::spawn_with("allow_private_destinations = false\n").await;
    let t = guarded.tenant("guarded").await;
    let ep = guarded.endpoint(&t, json!({"url": rx.url})).await;
    let (s, r) = guarded
        .admin(
            "POST",
            &format!(
                "/v1/tenants/{t}/endpoints/{}/test",
                ep["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["attempt"]["error"], "blocked", "{r}");
    assert_eq!(rx.count(), 3, "a blocked test never reaches the receiver");
    guarded.stop().await;
}

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
    publish_many(&app, &t, "bulk.item", FAILED as usize, 16).await;
    wait_stats(&app, &t, &ep, "failed", FAILED).await;
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
    wait_stats(&app, &t, &ep, "succeeded", FAILED).await;
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
        stats(&app, &t, &ep, "").await["by_status"]["failed"] == 2
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
