//! Partners: one partner endpoint covers several of the partner's tenants
//! and gets each covered event once; the key decides what is managed. Runs
//! on SQLite, and on PostgreSQL when `AVISO_TEST_DATABASE_URL` is set.

use crate::cluster::{admin_url, Schema};
use crate::support::{wait_for, Receiver, TestApp};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_endpoint_gets_each_covered_tenants_events_once_on_sqlite() {
    let app = TestApp::spawn().await;
    partner_story(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_endpoint_gets_each_covered_tenants_events_once_on_postgres() {
    let Some(admin) = admin_url() else { return };
    let schema = Schema::create(&admin).await;
    let app = TestApp::spawn_on(&schema.url).await;
    partner_story(&app).await;
    app.stop().await;
    schema.drop_now().await;
}

async fn key(app: &TestApp, body: Value) -> String {
    let (s, b) = app.admin("POST", "/v1/api-keys", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    b["key"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> HashSet<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn partner_story(app: &TestApp) {
    let rx = Receiver::start().await;
    let own = Receiver::start().await;
    app.event_type("nfe.autorizada").await;
    let (s, p) = app
        .admin("POST", "/v1/partners", Some(json!({"name": "Integrador"})))
        .await;
    assert_eq!(s, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();
    assert!(pid.starts_with("par_"));
    let (s, other) = app
        .admin("POST", "/v1/partners", Some(json!({"name": "Outro"})))
        .await;
    assert_eq!(s, 201, "{other}");
    let pk = key(app, json!({"partner": pid})).await;

    // The partner key creates and lists its own tenants.
    let mut tenants = Vec::new();
    for uid in ["11111111000101", "22222222000102", "33333333000103"] {
        let (s, t) = app
            .call(
                "POST",
                "/v1/tenants",
                &pk,
                Some(json!({"uid": uid, "name": uid})),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        assert_eq!(t["partner"], pid.as_str());
        tenants.push(t["id"].as_str().unwrap().to_owned());
    }
    let (s, b) = app
        .call(
            "POST",
            "/v1/tenants",
            &pk,
            Some(json!({"uid": "x", "name": "x", "partner": other["id"]})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("partner")),
        "{b}"
    );
    let fourth = app.tenant("44444444000104").await;
    let (s, list) = app.call("GET", "/v1/tenants", &pk, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(ids(&list), tenants.iter().cloned().collect());
    let (s, _) = app
        .call("GET", &format!("/v1/tenants/{fourth}"), &pk, None)
        .await;
    assert_eq!(s, 404, "a partner key sees only its tenants");

    // One partner endpoint over the three (one named by uid).
    let eps = format!("/v1/partners/{pid}/endpoints");
    let (s, b) = app
        .call(
            "POST",
            &eps,
            &pk,
            Some(json!({"url": rx.url, "tenants": [fourth]})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("tenants[0]")),
        "{b}"
    );
    let (s, b) = app
        .call("POST", &eps, &pk, Some(json!({"url": rx.url})))
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (422, Some("tenants")),
        "{b}"
    );
    let (s, ep) = app
        .call(
            "POST",
            &eps,
            &pk,
            Some(json!({"url": rx.url, "tenants": [tenants[0], tenants[1], "33333333000103"]})),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    assert_eq!(ep["partner"], pid.as_str());
    assert_eq!(ep["tenants"].as_array().unwrap().len(), 3);
    // The first tenant also has its own endpoint: the partner's still gets the event once.
    app.endpoint(&tenants[0], json!({"url": own.url})).await;

    let mut covered = HashSet::new();
    for t in &tenants {
        let b = app
            .publish(t, json!({"type": "nfe.autorizada", "payload": {"t": t}}))
            .await;
        covered.insert(b["id"].as_str().unwrap().to_owned());
    }
    let b = app
        .publish(&fourth, json!({"type": "nfe.autorizada", "payload": {}}))
        .await;
    assert!(
        b["deliveries"].as_array().unwrap().is_empty(),
        "the fourth tenant's event goes to no partner endpoint: {b}"
    );
    wait_for("the three covered events", WAIT, || async {
        rx.count() >= 3
    })
    .await;
    wait_for("the tenant's own endpoint", WAIT, || async {
        own.count() >= 1
    })
    .await;
    let got: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 3, "each covered event once: {got:?}");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), covered);

    // The partner key sees its endpoint's deliveries for every covered tenant.
    let dl = format!("{eps}/{ep_id}/deliveries");
    let (s, list) = app.call("GET", &dl, &pk, None).await;
    assert_eq!(s, 200, "{list}");
    let seen: HashSet<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tenant"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, tenants.iter().cloned().collect());
    let dlv = list["data"][0]["id"].as_str().unwrap();
    let (s, d) = app
        .call(
            "GET",
            &format!("/v1/partners/{pid}/deliveries/{dlv}"),
            &pk,
            None,
        )
        .await;
    assert_eq!(s, 200, "{d}");

    // ... and nothing else.
    let t0 = &tenants[0];
    let (s, _) = app
        .call("GET", &format!("/v1/tenants/{t0}/endpoints"), &pk, None)
        .await;
    assert_eq!(s, 404, "a partner key does not manage tenant endpoints");
    let (s, _) = app
        .call(
            "POST",
            &format!("/v1/tenants/{t0}/events"),
            &pk,
            Some(json!({"type": "nfe.autorizada", "payload": {}})),
        )
        .await;
    assert_eq!(s, 404);
    let own_dlv = {
        let (_, l) = app
            .admin("GET", &format!("/v1/tenants/{t0}/endpoints"), None)
            .await;
        let own_ep = l["data"][0]["id"].as_str().unwrap().to_owned();
        let (_, d) = app
            .admin(
                "GET",
                &format!("/v1/tenants/{t0}/endpoints/{own_ep}/deliveries"),
                None,
            )
            .await;
        d["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let (s, _) = app
        .call(
            "GET",
            &format!("/v1/partners/{pid}/deliveries/{own_dlv}"),
            &pk,
            None,
        )
        .await;
    assert_eq!(s, 404, "a tenant endpoint's delivery is not the partner's");
    let (s, _) = app
        .call(
            "GET",
            &format!("/v1/partners/{}", other["id"].as_str().unwrap()),
            &pk,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // A tenant key cannot see or modify the partner endpoint.
    let tk = key(app, json!({"tenant": t0})).await;
    let pep = format!("{eps}/{ep_id}");
    for (m, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"enabled": false}))),
        ("DELETE", None),
    ] {
        let (s, b) = app.call(m, &pep, &tk, body).await;
        assert_eq!(s, 404, "{m} with a tenant key: {b}");
    }
    let (s, _) = app
        .call(
            "GET",
            &format!("/v1/tenants/{t0}/endpoints/{ep_id}"),
            &tk,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(
            "GET",
            &format!("/v1/partners/{pid}/deliveries/{dlv}"),
            &tk,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, b) = app.call("GET", &pep, &pk, None).await;
    assert_eq!((s, b["enabled"].as_bool()), (200, Some(true)), "{b}");

    // An all-tenants endpoint also covers tenants created later.
    let all_rx = Receiver::start().await;
    let (s, all) = app
        .call(
            "POST",
            &eps,
            &pk,
            Some(json!({"url": all_rx.url, "all_tenants": true})),
        )
        .await;
    assert_eq!(
        (s, all["all_tenants"].as_bool()),
        (201, Some(true)),
        "{all}"
    );
    let (s, late) = app
        .call(
            "POST",
            "/v1/tenants",
            &pk,
            Some(json!({"uid": "55555555000105", "name": "late"})),
        )
        .await;
    assert_eq!(s, 201, "{late}");
    let b = app
        .publish(
            late["id"].as_str().unwrap(),
            json!({"type": "nfe.autorizada", "payload": {}}),
        )
        .await;
    wait_for("the late tenant's event", WAIT, || async {
        all_rx.count() == 1
    })
    .await;
    assert_eq!(
        all_rx.received()[0].headers["webhook-id"],
        b["id"].as_str().unwrap()
    );
    assert_eq!(
        rx.count(),
        3,
        "the listed endpoint does not cover the late tenant"
    );

    // Narrowing the list stops the dropped tenant's events.
    let (s, b) = app
        .call("PATCH", &pep, &pk, Some(json!({"tenants": [tenants[1]]})))
        .await;
    assert_eq!(
        (s, b["tenants"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{b}"
    );
    let b = app
        .publish(t0, json!({"type": "nfe.autorizada", "payload": {}}))
        .await;
    let to: Vec<&str> = b["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["endpoint"].as_str().unwrap())
        .collect();
    assert!(!to.contains(&ep_id.as_str()), "{b}");
    assert!(to.contains(&all["id"].as_str().unwrap()), "{b}");
}
