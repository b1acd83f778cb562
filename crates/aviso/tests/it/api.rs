//! The API's resources, keys and bad input, through real HTTP.

use crate::support::{TestApp, ADMIN_KEY};
use serde_json::{json, Value};

async fn tenant_key(app: &TestApp, tenant: &str) -> String {
    let (s, b) = app
        .admin(
            "POST",
            "/v1/api-keys",
            Some(json!({"tenant": tenant, "name": "ci"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["key"].as_str().unwrap().to_owned()
}

fn field(b: &Value) -> &str {
    b["error"]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn health_probes_answer() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn catalogue_tenants_endpoints_round_trip() {
    let app = TestApp::spawn().await;
    let (s, et) = app
        .admin(
            "POST",
            "/v1/event-types",
            Some(
                json!({"name": "CONTRATO.REGISTRADO", "description": "Contrato registrado",
                        "group": "Contratos/Registro", "example": {"id": 1}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{et}");
    let (s, _) = app
        .admin(
            "POST",
            "/v1/event-types",
            Some(json!({"name": "CONTRATO.REGISTRADO"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, b) = app
        .admin(
            "PATCH",
            "/v1/event-types/CONTRATO.REGISTRADO",
            Some(json!({"group": null})),
        )
        .await;
    assert_eq!((s, b["group"].clone()), (200, Value::Null));

    let t = app.tenant("12345678000199").await;
    let (s, by_uid) = app.admin("GET", "/v1/tenants/12345678000199", None).await;
    assert_eq!((s, by_uid["id"].as_str().unwrap()), (200, t.as_str()));
    let (s, _) = app
        .admin(
            "POST",
            "/v1/tenants",
            Some(json!({"uid": "12345678000199", "name": "dup"})),
        )
        .await;
    assert_eq!(s, 409);

    let ep = app
        .endpoint(
            &t,
            json!({"url": "https://example.com/hook", "event_types": ["CONTRATO.*"],
                   "auth": {"basic": {"username": "u", "password": "p"}},
                   "policy": {"success": "201", "retry": {"fixed": {"every": "5m", "for": "24h"}}}}),
        )
        .await;
    assert!(ep["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(ep["policy"]["success"], "201");
    assert_eq!(
        ep["policy"]["retry"],
        json!({"fixed": {"every": "5m", "for": "1d"}})
    );
    assert_eq!(
        ep["policy"]["max_in_flight"], 16,
        "unset fields come from the server defaults"
    );
    assert_eq!(
        ep["auth"]["basic"]["password"], "********",
        "secrets are not read back"
    );
    let id = ep["id"].as_str().unwrap();
    let path = format!("/v1/tenants/{t}/endpoints/{id}");

    let (s, got) = app.admin("GET", &path, None).await;
    assert_eq!(s, 200);
    assert!(got.get("secret").is_none());
    let (s, patched) = app
        .admin(
            "PATCH",
            &path,
            Some(json!({"description": "ERP", "policy": {"max_in_flight": 4}})),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["description"], "ERP");
    assert_eq!(patched["policy"]["max_in_flight"], 4);
    assert_eq!(
        patched["policy"]["success"], "201",
        "PATCH keeps other policy fields"
    );
    assert_eq!(
        patched["auth"]["basic"]["username"], "u",
        "PATCH keeps auth"
    );
    let (s, replaced) = app
        .admin(
            "PUT",
            &path,
            Some(json!({"url": "https://example.com/other"})),
        )
        .await;
    assert_eq!(s, 200, "{replaced}");
    assert_eq!(replaced["auth"], "none", "PUT replaces everything");
    let (s, sec) = app.admin("GET", &format!("{path}/secret"), None).await;
    assert_eq!((s, sec["secret"].clone()), (200, ep["secret"].clone()));
    let (s, _) = app.admin("DELETE", &path, None).await;
    assert_eq!(s, 204);
    let (s, b) = app.admin("GET", &path, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn lists_paginate_with_cursors() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.tenant(&format!("t{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (s, page) = app
            .admin("GET", &format!("/v1/tenants?limit=3{q}"), None)
            .await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["uid"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
    let (s, b) = app.admin("GET", "/v1/tenants?limit=251", None).await;
    assert_eq!((s, field(&b)), (400, "limit"));
    let (s, b) = app.admin("GET", "/v1/tenants?cursor=%%%", None).await;
    assert_eq!(s, 400, "{b}");
    app.stop().await;
}

#[tokio::test]
async fn events_feed_pages_in_commit_order_and_filters_types() {
    let app = TestApp::spawn().await;
    app.event_type("CONTRATO.REGISTRADO").await;
    app.event_type("MONTANTE.AJUSTADO").await;
    let t = app.tenant("acme").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let ty = if n % 2 == 0 {
            "CONTRATO.REGISTRADO"
        } else {
            "MONTANTE.AJUSTADO"
        };
        ids.push(
            app.publish(&t, json!({"type": ty, "payload": {"n": n}}))
                .await["id"]
                .clone(),
        );
    }
    let (_, p1) = app
        .admin("GET", &format!("/v1/tenants/{t}/events?limit=2"), None)
        .await;
    let c = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/events?limit=10&after={c}"),
            None,
        )
        .await;
    let all: Vec<_> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["data"].as_array().unwrap())
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(all, ids);
    assert_eq!(p2["data"][0]["payload"], json!({"n": 2}));
    let c2 = p2["next_cursor"].as_str().unwrap();
    let (_, empty) = app
        .admin("GET", &format!("/v1/tenants/{t}/events?after={c2}"), None)
        .await;
    assert_eq!(empty["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        empty["next_cursor"].as_str(),
        Some(c2),
        "an empty page keeps the cursor"
    );
    let (_, only) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/events?types=CONTRATO.*"),
            None,
        )
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 3);
    let (s, one) = app
        .admin(
            "GET",
            &format!("/v1/tenants/{t}/events/{}", ids[0].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (s, one["deliveries"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_key_sees_only_its_tenant() {
    let app = TestApp::spawn().await;
    app.event_type("invoice.paid").await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let b_ep = app
        .endpoint(&b, json!({"url": "https://example.com/b"}))
        .await;
    let b_evt = app
        .publish(&b, json!({"type": "invoice.paid", "payload": {}}))
        .await;
    let key = tenant_key(&app, &a).await;

    let (s, _) = app
        .call("GET", &format!("/v1/tenants/{a}"), &key, None)
        .await;
    assert_eq!(s, 200);
    let (s, own) = app
        .call(
            "POST",
            &format!("/v1/tenants/{a}/endpoints"),
            &key,
            Some(json!({"url": "https://example.com/a"})),
        )
        .await;
    assert_eq!(s, 201, "{own}");
    let (_, list) = app.call("GET", "/v1/tenants", &key, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let b_ep_id = b_ep["id"].as_str().unwrap();
    let b_evt_id = b_evt["id"].as_str().unwrap();
    for path in [
        format!("/v1/tenants/{b}"),
        "/v1/tenants/b".to_string(),
        format!("/v1/tenants/{b}/endpoints"),
        format!("/v1/tenants/{b}/endpoints/{b_ep_id}"),
        format!("/v1/tenants/{b}/events/{b_evt_id}"),
        format!("/v1/tenants/{a}/endpoints/{b_ep_id}"),
        format!("/v1/tenants/{a}/events/{b_evt_id}"),
    ] {
        let (s, body) = app.call("GET", &path, &key, None).await;
        assert_eq!(s, 404, "{path}: {body}");
    }
    let (s, _) = app
        .call(
            "POST",
            &format!("/v1/tenants/{b}/events"),
            &key,
            Some(json!({"type": "invoice.paid", "payload": {}})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/v1/tenants/{b}/endpoints/{b_ep_id}"),
            &key,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(
            "POST",
            "/v1/tenants",
            &key,
            Some(json!({"uid": "c", "name": "c"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call("POST", "/v1/api-keys", &key, Some(json!({"tenant": a})))
        .await;
    assert_eq!(s, 403);
    let (s, b_still) = app
        .admin("GET", &format!("/v1/tenants/{b}/endpoints/{b_ep_id}"), None)
        .await;
    assert_eq!(s, 200, "{b_still}");

    let (s, k) = app
        .admin("POST", "/v1/api-keys", Some(json!({"tenant": a})))
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .admin(
            "DELETE",
            &format!("/v1/api-keys/{}", k["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(
            "GET",
            &format!("/v1/tenants/{a}"),
            k["key"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(s, 401, "a revoked key stops working at once");
    app.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_keys_are_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(format!("{}/v1/tenants", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "unauthorized");
    let (s, _) = app.call("GET", "/v1/tenants", "avk_wrong", None).await;
    assert_eq!(s, 401);
    let (s, _) = app
        .call("GET", "/v1/tenants", &format!("{ADMIN_KEY}x"), None)
        .await;
    assert_eq!(s, 401);
    app.stop().await;
}

/// Every kind of bad input answers 4xx with the error shape naming the field,
/// and changes nothing.
#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn_with("allow_http = false\n[limits]\nmax_body_bytes = 4096\n").await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("acme").await;
    let eps = format!("/v1/tenants/{t}/endpoints");
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"url": "https://x.com", "colour": "red"}), 422, ""),
        (json!({"url": "ftp://x.com"}), 422, "url"),
        (json!({"url": "https://user:pw@x.com"}), 422, "url"),
        (
            json!({"url": format!("https://x.com/{}", "a".repeat(2100))}),
            422,
            "url",
        ),
        (json!({"url": "http://x.com"}), 422, "url"),
        (
            json!({"url": "https://x.com", "headers": {"X-A": "1\r\nX-Evil: 2"}}),
            422,
            "headers.X-A",
        ),
        (
            json!({"url": "https://x.com", "headers": {"X A": "1"}}),
            422,
            "headers.X A",
        ),
        (
            json!({"url": "https://x.com", "auth": {"bearer": {"token": "a\nb"}}}),
            422,
            "auth.bearer.token",
        ),
        (
            json!({"url": "https://x.com", "event_types": ["nope.missing"]}),
            422,
            "event_types[0]",
        ),
        (
            json!({"url": "https://x.com", "event_types": ["bad name"]}),
            422,
            "event_types[0]",
        ),
        (
            json!({"url": "https://x.com", "policy": {"success": "999"}}),
            422,
            "policy.success",
        ),
        (
            json!({"url": "https://x.com", "policy": {"max_in_flight": 0}}),
            422,
            "policy.max_in_flight",
        ),
        (
            json!({"url": "https://x.com", "policy": {"max_in_flight": 501}}),
            422,
            "policy.max_in_flight",
        ),
        (
            json!({"url": "https://x.com", "policy": {"retry": {"schedule": ["5 minutes"]}}}),
            422,
            "policy.retry.schedule[0]",
        ),
        (
            json!({"url": "https://x.com", "policy": {"retry": {"linear": {}}}}),
            422,
            "policy.retry",
        ),
        (
            json!({"url": "https://x.com", "policy": {"timeout": "1h"}}),
            422,
            "policy.timeout",
        ),
    ];
    for (body, status, want_field) in cases {
        let (s, b) = app.admin("POST", &eps, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{b}"
        );
        if !want_field.is_empty() {
            assert_eq!(field(&b), want_field, "{body}: {b}");
        }
    }
    let (s, b) = app.raw("POST", &eps, b"{\"url\": ".to_vec()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("bad_request")));
    let (s, b) = app.raw("POST", &eps, b"[1,2]".to_vec()).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = app.raw("POST", &eps, vec![b' '; 5000]).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (_, list) = app.admin("GET", &eps, None).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );

    let events = format!("/v1/tenants/{t}/events");
    for (body, want_field) in [
        (json!({"type": "nope.missing", "payload": {}}), "type"),
        (json!({"type": "invoice.paid"}), ""),
        (
            json!({"type": "invoice.paid", "payload": {}, "extra": 1}),
            "",
        ),
        (json!({"type": "in valid", "payload": {}}), "type"),
    ] {
        let (s, b) = app.admin("POST", &events, Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {b}");
        if !want_field.is_empty() {
            assert_eq!(field(&b), want_field, "{b}");
        }
    }
    let big = json!({"type": "invoice.paid", "payload": {"x": "a".repeat(5000)}});
    let (s, _) = app.admin("POST", &events, Some(big)).await;
    assert_eq!(s, 413);
    let (s, b) = app
        .admin("POST", "/v1/event-types", Some(json!({"name": "a..b"})))
        .await;
    assert_eq!((s, field(&b)), (422, "name"));
    let (s, _) = app
        .admin(
            "PATCH",
            "/v1/event-types/invoice.paid",
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = app
        .admin(
            "POST",
            &events,
            Some(json!({"type": "invoice.paid", "payload": {}})),
        )
        .await;
    assert_eq!(
        (s, field(&b)),
        (422, "type"),
        "archived types take no events: {b}"
    );
    let (_, feed) = app.admin("GET", &events, None).await;
    assert_eq!(
        feed["data"].as_array().unwrap().len(),
        0,
        "no event was stored"
    );

    let (s, b) = app.admin("GET", "/v1/nowhere", None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, b) = app.admin("PUT", "/v1/tenants", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    app.stop().await;
}

/// The API caches tenants and event types; every change made through the API
/// is visible to the very next request.
#[tokio::test]
async fn cached_catalogue_sees_changes_at_once() {
    let app = TestApp::spawn().await;
    app.event_type("invoice.paid").await;
    let t = app.tenant("old-uid").await;
    app.publish("old-uid", json!({"type": "invoice.paid", "payload": {}}))
        .await;

    let (s, _) = app
        .admin("DELETE", "/v1/event-types/invoice.paid", None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = app
        .admin(
            "POST",
            "/v1/tenants/old-uid/events",
            Some(json!({"type": "invoice.paid", "payload": {}})),
        )
        .await;
    assert_eq!(
        (s, field(&b)),
        (422, "type"),
        "archived right after use: {b}"
    );
    let (s, _) = app
        .admin(
            "PATCH",
            "/v1/event-types/invoice.paid",
            Some(json!({"archived": false})),
        )
        .await;
    assert_eq!(s, 200);
    app.publish("old-uid", json!({"type": "invoice.paid", "payload": {}}))
        .await;

    let (s, _) = app
        .admin(
            "PATCH",
            &format!("/v1/tenants/{t}"),
            Some(json!({"uid": "new-uid"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.admin("GET", "/v1/tenants/old-uid", None).await;
    assert_eq!(s, 404, "the old uid is gone at once");
    let (s, _) = app.admin("GET", "/v1/tenants/new-uid", None).await;
    assert_eq!(s, 200);
    let (s, _) = app.admin("DELETE", &format!("/v1/tenants/{t}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = app
        .admin(
            "POST",
            &format!("/v1/tenants/{t}/events"),
            Some(json!({"type": "invoice.paid", "payload": {}})),
        )
        .await;
    assert_eq!(s, 404, "a deleted tenant takes no events");
    app.stop().await;
}
