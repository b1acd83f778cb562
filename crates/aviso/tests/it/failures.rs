//! Behaviour under failure, end to end: fairness between endpoints and the
//! destination guard.

use crate::support::{delivery_ids, wait_delivery, wait_for, Receiver, TestApp};
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinSet;

#[tokio::test]
async fn a_sick_endpoint_with_a_10000_backlog_does_not_slow_a_healthy_one() {
    let app = TestApp::spawn().await;
    // Every request to the sick receiver outlives the 1s timeout.
    let sick = Receiver::start_with(Vec::new(), Duration::from_secs(30)).await;
    let healthy = Receiver::start().await;
    app.event_type("carga.medida").await;
    app.event_type("fatura.emitida").await;
    let t = app.tenant("same-tenant").await;
    app.endpoint(
        &t,
        json!({"url": sick.url, "event_types": ["carga.medida"],
               "policy": {"timeout": "1s", "retry": {"fixed": {"every": "1s", "for": "1h"}}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": healthy.url, "event_types": ["fatura.emitida"]}),
    )
    .await;

    let mut publishers = JoinSet::new();
    let app = std::sync::Arc::new(app);
    for p in 0..16 {
        let (app, t) = (app.clone(), t.clone());
        publishers.spawn(async move {
            for i in 0..625 {
                app.publish(
                    &t,
                    json!({"type": "carga.medida", "payload": {"p": p, "i": i}}),
                )
                .await;
            }
        });
    }
    while let Some(r) = publishers.join_next().await {
        r.unwrap();
    }
    wait_for(
        "the sick receiver to be hit",
        Duration::from_secs(10),
        || async { sick.count() > 0 },
    )
    .await;

    let started = tokio::time::Instant::now();
    let mut healthy_dlvs = Vec::new();
    for n in 0..20 {
        let out = app
            .publish(&t, json!({"type": "fatura.emitida", "payload": {"n": n}}))
            .await;
        healthy_dlvs.extend(delivery_ids(&out));
    }
    wait_for(
        "the healthy receiver to get all 20",
        Duration::from_secs(10),
        || async { healthy.count() == 20 },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "healthy deliveries took {:?}",
        started.elapsed()
    );
    for d in &healthy_dlvs {
        wait_delivery(&app, &t, d, "succeeded").await;
    }
    // The sick endpoint is still failing through its backlog.
    assert!(
        sick.count() < 10_000,
        "{} of the backlog tried",
        sick.count()
    );
}

#[tokio::test]
async fn an_endpoint_failing_longer_than_disable_after_is_disabled_with_a_reason() {
    let app = TestApp::spawn_with("[dispatcher]\ncircuit_probe_interval = \"200ms\"").await;
    let rx = Receiver::always(500, Duration::ZERO).await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": rx.url, "policy": {"disable_after": "1s",
                   "retry": {"fixed": {"every": "100ms", "for": "1h"}}}}),
        )
        .await;
    let out = app
        .publish(&t, json!({"type": "invoice.paid", "payload": {}}))
        .await;
    let path = format!("/v1/tenants/{t}/endpoints/{}", ep["id"].as_str().unwrap());
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let (_, b) = app.admin("GET", &path, None).await;
        if b["enabled"] == false {
            break b;
        }
        assert!(tokio::time::Instant::now() < end, "never disabled: {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reason = shown["disabled_reason"].as_str().unwrap();
    assert!(reason.starts_with("disabled by Aviso at 20"), "{reason}");
    assert!(reason.contains("every attempt failed since"), "{reason}");
    let d = wait_delivery(&app, &t, &delivery_ids(&out)[0], "cancelled").await;
    assert!(d["attempts"].as_array().unwrap().len() >= 2);

    // Enabling it again clears the reason.
    let (s, b) = app
        .admin("PATCH", &path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["disabled_reason"].is_null(), "{b}");
}

#[tokio::test]
async fn private_destinations_are_refused_and_recorded_as_blocked() {
    let app = TestApp::spawn_with("allow_private_destinations = false").await;
    let rx = Receiver::start().await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        "http://10.0.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ];
    for url in &urls {
        app.endpoint(
            &t,
            json!({"url": url, "policy": {"retry": {"schedule": []}}}),
        )
        .await;
    }
    let out = app
        .publish(&t, json!({"type": "invoice.paid", "payload": {}}))
        .await;
    let ids = delivery_ids(&out);
    assert_eq!(ids.len(), urls.len());
    for id in &ids {
        let d = wait_delivery(&app, &t, id, "failed").await;
        let attempt = &d["attempts"][0];
        assert_eq!(attempt["error"], "blocked", "{d}");
        assert!(attempt["status_code"].is_null());
    }
    assert_eq!(rx.count(), 0, "nothing reached the loopback receiver");
}
