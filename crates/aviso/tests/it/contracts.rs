//! The five provider contracts of CONTRACTS.md, each reproduced by endpoint
//! configuration alone (the JSON of docs/contracts.md, durations scaled down)
//! and checked against a real receiver.

use crate::support::{delivery_ids, wait_delivery, wait_for, Receiver, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn codes(delivery: &Value) -> Vec<u64> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap_or(0))
        .collect()
}

/// Milliseconds from the first of these requests to each of them.
fn offsets(got: &[crate::support::Received]) -> Vec<i64> {
    got.iter()
        .map(|r| (r.at - got[0].at).as_millis() as i64)
        .collect()
}

#[tokio::test]
async fn energy_market_only_201_counts_and_anything_else_is_retried_until_the_deadline() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start_with(vec![200, 500, 201], Duration::ZERO).await;
    app.event_type("CONTRATO.REGISTRADO").await;
    let t = app.tenant("12345678000199").await;
    // docs/contracts.md §1, with `every 5m for 24h` scaled to `200ms for 2s`.
    let ep = app
        .endpoint(
            &t,
            json!({"url": rx.url, "event_types": ["CONTRATO.REGISTRADO"],
                   "policy": {"success": "201", "retry": {"fixed": {"every": "200ms", "for": "2s"}}}}),
        )
        .await;
    assert_eq!(ep["policy"]["success"], "201");
    let payload = json!({"eventoNotificacao": "CONTRATO.REGISTRADO",
                         "metadados": [{"nome": "idContrato", "valor": "42"}],
                         "transactionId": "5f1c7d8e-0000-4000-8000-000000000001"});
    let out = app
        .publish(
            &t,
            json!({"type": "CONTRATO.REGISTRADO", "payload": payload}),
        )
        .await;
    let d = wait_delivery(&app, &t, &delivery_ids(&out)[0], "succeeded").await;
    assert_eq!(codes(&d), vec![200, 500, 201], "200 is not success here");

    // A receiver that only ever answers 200 is retried every 200ms for 2s, then failed.
    rx.answer(200);
    let out = app
        .publish(
            &t,
            json!({"type": "CONTRATO.REGISTRADO", "payload": payload}),
        )
        .await;
    let d = wait_delivery(&app, &t, &delivery_ids(&out)[0], "failed").await;
    let n = codes(&d).len();
    assert!((9..=12).contains(&n), "{n} attempts over 2s at 200ms");
    let at = offsets(&rx.received()[3..]);
    assert!(*at.last().unwrap() <= 2_300, "{at:?}");

    // The audit: the customer lists the results of the notifications sent.
    let ep_id = ep["id"].as_str().unwrap();
    let (s, list) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/endpoints/{ep_id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn document_exchange_sends_its_access_key_and_stops_after_ten_growing_attempts() {
    let app = TestApp::spawn().await;
    let rx = Receiver::always(503, Duration::ZERO).await;
    app.event_type("DOCUMENTO.RECEBIDO").await;
    let t = app.tenant("doc-receiver").await;
    // §4 with `initial 20m, max_interval 3d` scaled down by 120,000.
    app.endpoint(
        &t,
        json!({"url": rx.url, "event_types": ["DOCUMENTO.RECEBIDO"],
               "auth": {"header": "X-Access-Key:ak-7f3e"},
               "policy": {"success": "200", "retry": {"exponential":
                   {"initial": "10ms", "factor": 2, "max_interval": "2160ms",
                    "max_attempts": 10, "max_age": "6s"}}}}),
    )
    .await;
    let out = app
        .publish(
            &t,
            json!({"type": "DOCUMENTO.RECEBIDO", "payload": {"chave": "NFe-1"}}),
        )
        .await;
    let d = wait_delivery(&app, &t, &delivery_ids(&out)[0], "failed").await;
    assert_eq!(codes(&d).len(), 10, "ten attempts, then stop");
    assert_eq!(rx.count(), 10);
    let at = offsets(&rx.received());
    let gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[8] > 8 * gaps[1].max(1), "intervals grow: {gaps:?}");
    assert!(at[9] <= 6_000 + 200, "within the scaled 7 days: {gaps:?}");
    assert!(rx
        .received()
        .iter()
        .all(|r| r.headers["x-access-key"] == "ak-7f3e"));

    // 200 is success whatever the body.
    rx.answer(200);
    let out = app
        .publish(
            &t,
            json!({"type": "DOCUMENTO.RECEBIDO", "payload": {"chave": "NFe-2"}}),
        )
        .await;
    wait_delivery(&app, &t, &delivery_ids(&out)[0], "succeeded").await;
    app.stop().await;
}

#[tokio::test]
async fn identity_service_filters_statuses_caps_concurrency_and_retries_exponentially() {
    let app = TestApp::spawn().await;
    let slow = Receiver::start_with(Vec::new(), Duration::from_millis(150)).await;
    let failing = Receiver::always(500, Duration::ZERO).await;
    let keyed = Receiver::start().await;
    app.event_type("verification.finished").await;
    let t = app.tenant("idv-customer").await;
    // §5: Basic as `user:pass`, statuses 2-5 only, at most 3 at once.
    app.endpoint(
        &t,
        json!({"url": slow.url, "auth": {"basic": "integrador:s3nha"},
               "filter": {"/status": {"in": [2, 3, 4, 5]}},
               "policy": {"success": "2xx", "max_in_flight": 3, "timeout": "5s",
                          "retry": {"exponential": {"initial": "50ms", "factor": 2, "max_attempts": 3}}}}),
    )
    .await;
    // API key as `header:value`, and as a bare value sent as Authorization.
    app.endpoint(
        &t,
        json!({"url": failing.url, "auth": {"header": "X-Api-Key:k-456"},
               "filter": {"/status": {"eq": 5}},
               "policy": {"retry": {"exponential": {"initial": "50ms", "factor": 2, "max_attempts": 3}}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": keyed.url, "auth": {"header": "k-789"}, "filter": {"/status": {"eq": 4}}}),
    )
    .await;
    for (i, status) in [3, 1, 3, 3, 2, 3, 3, 4, 3, 3, 5, 3, 3, 1]
        .iter()
        .enumerate()
    {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        app.publish(
            &t,
            json!({"type": "verification.finished", "payload": {"id": id, "status": status}}),
        )
        .await;
    }
    wait_for("the slow receiver to get statuses 2-5", WAIT, || async {
        slow.count() == 12
    })
    .await;
    assert_eq!(slow.peak_in_flight(), 3, "never more than 3 at once");
    assert!(slow
        .received()
        .iter()
        .all(|r| r.headers["authorization"] == "Basic aW50ZWdyYWRvcjpzM25oYQ=="));
    let sent: Vec<Value> = slow
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        sent.iter().all(|p| p["status"] != 1),
        "status 1 filtered out"
    );

    wait_for("three tries of the failing endpoint", WAIT, || async {
        failing.count() == 3
    })
    .await;
    assert!(failing
        .received()
        .iter()
        .all(|r| r.headers["x-api-key"] == "k-456"));
    wait_for("the bare API key", WAIT, || async { keyed.count() == 1 }).await;
    assert_eq!(keyed.received()[0].headers["authorization"], "k-789");
    // The fallback polling feed reads the same events.
    let (s, feed) = app
        .admin("GET", &format!("/v1/tenants/{t}/events"), None)
        .await;
    assert_eq!(s, 200, "{feed}");
    assert_eq!(feed["data"].as_array().unwrap().len(), 14);
    app.stop().await;
}

#[tokio::test]
async fn invoicing_uses_bearer_or_basic_tokens_https_only_and_active_inactive() {
    let strict = TestApp::spawn_with("allow_http = false").await;
    let t = strict.tenant("12345678000100").await;
    let (s, b) = strict
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/endpoints"),
            Some(json!({"url": "http://erp.example.com/hook"})),
        )
        .await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("url")), "{b}");
    strict.stop().await;

    let app = TestApp::spawn().await;
    let bearer = Receiver::start().await;
    let basic = Receiver::start().await;
    app.event_type("nfe.autorizada").await;
    let t = app.tenant("12345678000100").await;
    // §3: type 2 (Bearer token) and type 1 (Basic with a given token).
    app.endpoint(
        &t,
        json!({"url": bearer.url, "description": "NF-e", "event_types": ["nfe.*"],
               "auth": {"bearer": {"token": "tok-abc"}}}),
    )
    .await;
    let inactive = app
        .endpoint(
            &t,
            json!({"url": basic.url, "description": "NF-e (Basic)", "event_types": ["nfe.*"],
                   "enabled": false, "auth": {"header": "Basic dG9rLWRlZg=="}}),
        )
        .await;
    app.publish(&t, json!({"type": "nfe.autorizada", "payload": {"n": 1}}))
        .await;
    wait_for("the bearer receiver", WAIT, || async {
        bearer.count() == 1
    })
    .await;
    assert_eq!(
        bearer.received()[0].headers["authorization"],
        "Bearer tok-abc"
    );
    assert_eq!(basic.count(), 0, "an inactive webhook gets nothing");

    let id = inactive["id"].as_str().unwrap();
    let (s, b) = app
        .admin(
            "PATCH",
            &format!("/v1/tenants/{t}/endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    app.publish(&t, json!({"type": "nfe.autorizada", "payload": {"n": 2}}))
        .await;
    wait_for("the reactivated receiver", WAIT, || async {
        basic.count() == 1
    })
    .await;
    assert_eq!(
        basic.received()[0].headers["authorization"],
        "Basic dG9rLWRlZg=="
    );
    app.stop().await;
}

#[tokio::test]
async fn grid_portal_integrations_pick_their_products_and_auth() {
    let app = TestApp::spawn().await;
    let (a, b, c) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    for name in [
        "BOLETIM.PUBLICADO",
        "BOLETIM.REVISADO",
        "RESULTADO.PUBLICADO",
    ] {
        app.event_type(name).await;
    }
    let t = app.tenant("agente-123").await;
    // §2: Basic, an Authorization key, and none; each with its own products.
    app.endpoint(
        &t,
        json!({"url": a.url, "description": "boletins", "event_types": ["BOLETIM.*"],
               "auth": {"basic": {"username": "u", "password": "p"}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": b.url, "description": "resultados", "event_types": ["RESULTADO.PUBLICADO"],
               "auth": {"header": {"value": "chave-xyz"}}}),
    )
    .await;
    app.endpoint(
        &t,
        json!({"url": c.url, "description": "revisões", "event_types": ["BOLETIM.REVISADO"]}),
    )
    .await;
    for ty in [
        "BOLETIM.PUBLICADO",
        "BOLETIM.REVISADO",
        "RESULTADO.PUBLICADO",
    ] {
        let payload = json!({"dataProduto": "2026-11-01", "macroprocesso": "Contabilização",
                             "nome": ty, "inicioPeriodo": "2026-10-01", "fimPeriodo": "2026-10-31",
                             "processo": "Resultados", "uri": "https://files.example.com/p.zip"});
        app.publish(&t, json!({"type": ty, "payload": payload}))
            .await;
    }
    wait_for("every integration to get its products", WAIT, || async {
        (a.count(), b.count(), c.count()) == (2, 1, 1)
    })
    .await;
    assert!(a
        .received()
        .iter()
        .all(|r| r.headers["authorization"] == "Basic dTpw"));
    assert_eq!(b.received()[0].headers["authorization"], "chave-xyz");
    assert!(c.received()[0].headers.get("authorization").is_none());
    let names = |rx: &Receiver| -> Vec<String> {
        rx.received()
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["nome"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(names(&b), vec!["RESULTADO.PUBLICADO"]);
    assert_eq!(names(&c), vec!["BOLETIM.REVISADO"]);
    app.stop().await;
}
