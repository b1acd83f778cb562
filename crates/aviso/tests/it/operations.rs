//! Audit and test sends through the HTTP API: filtered delivery lists that
//! page exactly while rows arrive, status-by-type, stats, test sends.

use crate::support::{Receiver, TestApp};
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use std::collections::HashSet;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// Fails on the first non-success answer: no retries.
pub fn no_retry(success: &str) -> Value {
    json!({"success": success, "retry": {"schedule": []}, "adaptive": false, "max_in_flight": 32})
}

pub async fn stats(app: &TestApp, t: &str, ep: &str, query: &str) -> Value {
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

pub async fn wait_stats(app: &TestApp, t: &str, ep: &str, status: &str, n: u64) {
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
