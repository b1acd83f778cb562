//! Publish → receive: payload bytes, signatures, auth, retries, routing.

use crate::support::{wait_for, Receiver, TestApp};
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn delivery_status(app: &TestApp, tenant: &str, dlv: &str) -> Value {
    let (s, b) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{tenant}/deliveries/{dlv}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn wait_status(app: &TestApp, tenant: &str, dlv: &str, want: &str) -> Value {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let d = delivery_status(app, tenant, dlv).await;
        if d["status"] == want {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "delivery {dlv} never became {want}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn receiver_gets_exact_bytes_signed_with_auth_and_headers() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    app.event_type("CONTRATO.REGISTRADO").await;
    let t = app.tenant("12345678000199").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": rx.url, "event_types": ["CONTRATO.REGISTRADO"],
                   "auth": {"basic": {"username": "agente", "password": "s3nha"}},
                   "headers": {"X-Env": "prod"}}),
        )
        .await;
    // Odd spacing and key order must survive byte for byte.
    let payload = r#"{"eventoNotificacao":"CONTRATO.REGISTRADO", "metadados":[{"nome":"id","valor":"42"}],"transactionId":"9b1f"}"#;
    let body = format!(r#"{{"type":"CONTRATO.REGISTRADO","payload":{payload}}}"#);
    let (s, out) = app
        .raw(
            "POST",
            &format!("/v1/tenants/{t}/events"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(s, 202, "{out}");
    assert_eq!(out["deliveries"].as_array().unwrap().len(), 1);

    wait_for("the receiver to get the event", WAIT, || async {
        rx.count() == 1
    })
    .await;
    let got = &rx.received()[0];
    assert_eq!(got.body.as_ref(), payload.as_bytes());
    assert_eq!(got.headers["webhook-id"], out["id"].as_str().unwrap());
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["authorization"], "Basic YWdlbnRlOnMzbmhh");
    assert_eq!(got.headers["x-env"], "prod");
    let wh = Webhook::new(ep["secret"].as_str().unwrap()).unwrap();
    wh.verify(&got.body, &got.headers)
        .expect("signature verifies with the standardwebhooks crate");
    let other = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert!(
        other.verify(&got.body, &got.headers).is_err(),
        "a wrong secret must not verify"
    );

    let dlv = out["deliveries"][0]["id"].as_str().unwrap();
    let d = wait_status(&app, &t, dlv, "succeeded").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(d["attempts"][0]["status_code"], 200);
    app.stop().await;
}

#[tokio::test]
async fn bearer_and_header_auth_reach_the_receiver() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "auth": {"bearer": {"token": "tok-1"}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "auth": {"header": {"name": "X-Api-Key", "value": "k-2"}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "auth": {"header": {"value": "bare-3"}}}),
    )
    .await;
    app.publish(&t, json!({"type": "invoice.paid", "payload": {"n": 1}}))
        .await;
    wait_for("three requests", WAIT, || async { rx.count() == 3 }).await;
    let got = rx.received();
    let auths: Vec<_> = got
        .iter()
        .map(|r| {
            let h = &r.headers;
            h.get("authorization")
                .or(h.get("x-api-key"))
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for want in ["Bearer tok-1", "k-2", "bare-3"] {
        assert!(auths.iter().any(|a| a == want), "{want} not in {auths:?}");
    }
    app.stop().await;
}

/// The dispatcher prepares each endpoint's URI and fixed headers once; a
/// change to the endpoint must still reach the very next delivery.
#[tokio::test]
async fn changed_headers_auth_and_url_reach_the_next_delivery() {
    let app = TestApp::spawn().await;
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": first.url, "headers": {"X-Env": "test"},
                   "auth": {"bearer": {"token": "tok-1"}}}),
        )
        .await;
    let path = format!("/v1/tenants/{t}/endpoints/{}", ep["id"].as_str().unwrap());
    let publish = |n: u32| app.publish(&t, json!({"type": "invoice.paid", "payload": {"n": n}}));
    publish(1).await;
    wait_for("the first delivery", WAIT, || async { first.count() == 1 }).await;
    let got = &first.received()[0];
    assert_eq!(got.headers["x-env"], "test");
    assert_eq!(got.headers["authorization"], "Bearer tok-1");

    let (s, b) = app
        .admin(
            "PATCH",
            &path,
            Some(json!({"headers": {"X-Env": "prod"}, "auth": {"bearer": {"token": "tok-2"}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    publish(2).await;
    wait_for("the second delivery", WAIT, || async { first.count() == 2 }).await;
    let got = &first.received()[1];
    assert_eq!(got.headers["x-env"], "prod");
    assert_eq!(got.headers["authorization"], "Bearer tok-2");

    let (s, b) = app
        .admin("PATCH", &path, Some(json!({"url": second.url})))
        .await;
    assert_eq!(s, 200, "{b}");
    publish(3).await;
    wait_for("the third delivery", WAIT, || async { second.count() == 1 }).await;
    assert_eq!(first.count(), 2, "nothing more goes to the old URL");
    assert_eq!(second.received()[0].body.as_ref(), br#"{"n":3}"#);
    app.stop().await;
}

#[tokio::test]
async fn failing_twice_then_ok_records_three_attempts() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start_with(vec![500, 500], Duration::ZERO).await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "policy": {"retry": {"schedule": ["100ms", "100ms", "100ms"]}}}),
    )
    .await;
    let out = app
        .publish(&t, json!({"type": "invoice.paid", "payload": {"n": 1}}))
        .await;
    let dlv = out["deliveries"][0]["id"].as_str().unwrap();
    let d = wait_status(&app, &t, dlv, "succeeded").await;
    let codes: Vec<_> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), json!(500), json!(200)]);
    assert_eq!(d["attempts"][0]["error"], "status");
    assert_eq!(rx.count(), 3);
    app.stop().await;
}

#[tokio::test]
async fn exhausted_schedule_fails_and_resend_delivers() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start_with(vec![503, 503], Duration::ZERO).await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "policy": {"retry": {"schedule": ["50ms"]}}}),
    )
    .await;
    let out = app
        .publish(&t, json!({"type": "invoice.paid", "payload": {}}))
        .await;
    let dlv = out["deliveries"][0]["id"].as_str().unwrap();
    let d = wait_status(&app, &t, dlv, "failed").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 2);

    let (s, b) = app
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/deliveries/{dlv}/resend"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let d = wait_status(&app, &t, dlv, "succeeded").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3);
    let (s, b) = app
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/deliveries/{dlv}/resend"),
            None,
        )
        .await;
    assert_eq!(s, 202, "a succeeded delivery can be sent again: {b}");
    app.stop().await;
}

#[tokio::test]
async fn wildcards_route_and_disabled_endpoints_get_nothing() {
    let app = TestApp::spawn().await;
    let contratos = Receiver::start().await;
    let montantes = Receiver::start().await;
    let disabled = Receiver::start().await;
    for n in [
        "CONTRATO.REGISTRADO",
        "CONTRATO.VALIDADO",
        "MONTANTE_ENERGIA.AJUSTADO",
    ] {
        app.event_type(n).await;
    }
    let t = app.tenant("agente").await;
    let c = app
        .endpoint(
            &t,
            json!({"url": contratos.url, "event_types": ["CONTRATO.*"]}),
        )
        .await;
    app.endpoint(
        &t,
        json!({"url": montantes.url, "event_types": ["MONTANTE_ENERGIA.AJUSTADO"]}),
    )
    .await;
    app.endpoint(&t, json!({"url": disabled.url, "enabled": false}))
        .await;

    let out = app
        .publish(
            &t,
            json!({"type": "CONTRATO.VALIDADO", "payload": {"id": 1}}),
        )
        .await;
    let ds = out["deliveries"].as_array().unwrap();
    assert_eq!(ds.len(), 1, "{out}");
    assert_eq!(ds[0]["endpoint"], c["id"]);
    wait_for("the wildcard endpoint", WAIT, || async {
        contratos.count() == 1
    })
    .await;
    let out = app
        .publish(
            &t,
            json!({"type": "MONTANTE_ENERGIA.AJUSTADO", "payload": {"id": 2}}),
        )
        .await;
    assert_eq!(out["deliveries"].as_array().unwrap().len(), 1);
    wait_for("the exact endpoint", WAIT, || async {
        montantes.count() == 1
    })
    .await;
    assert_eq!(contratos.count(), 1);
    assert_eq!(disabled.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_old_and_new_secret() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let ep = app.endpoint(&t, json!({"url": rx.url})).await;
    let old = ep["secret"].as_str().unwrap().to_owned();
    let id = ep["id"].as_str().unwrap();
    let (s, rotated) = app
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/endpoints/{id}/secret/rotate"),
            Some(json!({"grace": "1h"})),
        )
        .await;
    assert_eq!(s, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    app.publish(&t, json!({"type": "invoice.paid", "payload": {"n": 1}}))
        .await;
    wait_for("the event", WAIT, || async { rx.count() == 1 }).await;
    let got = &rx.received()[0];
    let sigs = got.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
    Webhook::new(&old)
        .unwrap()
        .verify(&got.body, &got.headers)
        .expect("old secret verifies");
    Webhook::new(&new)
        .unwrap()
        .verify(&got.body, &got.headers)
        .expect("new secret verifies");
    app.stop().await;
}

#[tokio::test]
async fn idempotent_publish_delivers_once() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let ep = app.endpoint(&t, json!({"url": rx.url})).await;
    let body = json!({"type": "invoice.paid", "payload": {"n": 1}, "idempotency_key": "inv-1"});
    let first = app.publish(&t, body.clone()).await;
    let again = app.publish(&t, body).await;
    assert_eq!(first["id"], again["id"]);
    let ids = |b: &Value| -> Vec<Value> {
        b["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&first),
        ids(&again),
        "a repeat returns the first event's deliveries"
    );
    assert_eq!(ids(&first).len(), 1);
    // The same key in the header is the same event.
    let resp = app
        .http
        .post(format!("{}/v1/tenants/{t}/events", app.base))
        .bearer_auth(crate::support::ADMIN_KEY)
        .header("Idempotency-Key", "inv-1")
        .json(&json!({"type": "invoice.paid", "payload": {"n": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    let third: Value = resp.json().await.unwrap();
    assert_eq!(third["id"], first["id"]);
    let dlv = first["deliveries"][0]["id"].as_str().unwrap();
    wait_status(&app, &t, dlv, "succeeded").await;
    let epid = ep["id"].as_str().unwrap();
    let (_, list) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{epid}/deliveries"),
            None,
        )
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(rx.count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn max_in_flight_caps_concurrency() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start_with(Vec::new(), Duration::from_millis(50)).await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    app.endpoint(&t, json!({"url": rx.url, "policy": {"max_in_flight": 2}}))
        .await;
    for n in 0..12 {
        app.publish(&t, json!({"type": "invoice.paid", "payload": {"n": n}}))
            .await;
    }
    wait_for("12 deliveries", WAIT, || async { rx.count() == 12 }).await;
    assert!(rx.peak_in_flight() <= 2, "peak {}", rx.peak_in_flight());
    assert!(rx.peak_in_flight() >= 1);
    app.stop().await;
}
