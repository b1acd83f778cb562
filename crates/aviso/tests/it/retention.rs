//! Retention through the real server: old finished work is purged in the
//! background, what was purged answers 410 `expired`, pending work stays.

use crate::support::{delivery_ids, wait_delivery, wait_for, Receiver, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn old_finished_work_is_purged_and_answers_expired() {
    let app =
        TestApp::spawn_with("[retention]\nperiod = \"1s\"\nevery = \"100ms\"\nbatch = 2\n").await;
    let ok = Receiver::start().await;
    let sick = Receiver::always(500, Duration::ZERO).await;
    app.event_type("A.X").await;
    app.event_type("B.Y").await;
    let t = app.tenant("t").await;
    app.endpoint(&t, json!({"url": ok.url, "event_types": ["A.X"]}))
        .await;
    app.endpoint(
        &t,
        json!({"url": sick.url, "event_types": ["B.Y"],
               "policy": {"retry": {"fixed": {"every": "1h", "for": "1d"}}}}),
    )
    .await;

    let mut done = Vec::new();
    for n in 0..5 {
        let e = app
            .publish(&t, json!({"type": "A.X", "payload": {"n": n}}))
            .await;
        let dlv = delivery_ids(&e)[0].clone();
        wait_delivery(&app, &t, &dlv, "succeeded").await;
        done.push((e["id"].as_str().unwrap().to_owned(), dlv));
    }
    // A polling client that read the first event and then went away.
    let (s, page) = app
        .admin("GET", &format!("/v1/tenants/{t}/events?limit=1"), None)
        .await;
    assert_eq!(s, 200, "{page}");
    let stale_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let pending = app
        .publish(&t, json!({"type": "B.Y", "payload": {"n": 99}}))
        .await;
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    wait_for(
        "the sick receiver's first attempt",
        Duration::from_secs(10),
        || async { sick.count() >= 1 },
    )
    .await;

    // Five finished deliveries in batches of two: several batches, one run or more.
    for (evt, dlv) in &done {
        let path = format!("/v1/tenants/{t}/events/{evt}");
        wait_for(
            "the event to be purged",
            Duration::from_secs(15),
            || async { app.admin("GET", &path, None).await.0 == 410 },
        )
        .await;
        let (s, b) = app.admin("GET", &path, None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (410, Some("expired")),
            "{b}"
        );
        let (s, b) = app
            .admin("GET", &format!("/v1/tenants/{t}/deliveries/{dlv}"), None)
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (410, Some("expired")),
            "{b}"
        );
    }

    // Older than the period too, but still pending: kept whole.
    let (s, b) = app
        .admin("GET", &format!("/v1/tenants/{t}/events/{pending_id}"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["deliveries"][0]["status"], "pending", "{b}");
    let (s, feed) = app
        .admin("GET", &format!("/v1/tenants/{t}/events"), None)
        .await;
    assert_eq!(s, 200, "{feed}");
    let ids: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [pending_id.as_str()],
        "the feed holds only what is kept"
    );
    let (s, b) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/events?after={stale_cursor}"),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (410, Some("expired")),
        "{b}"
    );

    // A recent id that never existed is simply not found.
    let fresh = aviso_core::EventId::new();
    let (s, _) = app
        .admin("GET", &format!("/v1/tenants/{t}/events/{fresh}"), None)
        .await;
    assert_eq!(s, 404);
}
