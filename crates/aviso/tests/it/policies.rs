//! Policy fields through the API: validated on the way in, shown back normalised.

use crate::support::TestApp;
use serde_json::{json, Value};

#[tokio::test]
async fn new_policy_fields_are_shown_back_normalised() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let ep = app
        .endpoint(
            &t,
            json!({"url": "https://hooks.example.com/in",
                   "auth": {"header": "X-Api-Key: k-1"},
                   "policy": {"success": "200,2xx", "rate_limit": 2.5,
                              "ordering": {"fifo_key": "/contrato/id"},
                              "disable_after": "36h", "max_in_flight": 4}}),
        )
        .await;
    let p = &ep["policy"];
    assert_eq!(p["success"], "2xx,200");
    assert_eq!(p["rate_limit"], 2.5);
    assert_eq!(p["ordering"], json!({"fifo_key": "/contrato/id"}));
    assert_eq!(p["adaptive"], true);
    assert_eq!(p["disable_after"], "1d12h");
    assert_eq!(
        ep["auth"],
        json!({"header": {"name": "X-Api-Key", "value": "********"}})
    );
    assert!(ep["disabled_reason"].is_null());

    let id = ep["id"].as_str().unwrap();
    let path = format!("/v1/tenants/{t}/endpoints/{id}");
    let (s, b) = app
        .admin(
            "PATCH",
            &path,
            Some(json!({"policy": {"ordering": "fifo", "adaptive": false}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["policy"]["ordering"], "fifo");
    assert_eq!(b["policy"]["adaptive"], false);
    assert_eq!(
        b["policy"]["rate_limit"], 2.5,
        "PATCH keeps the other fields"
    );
    assert_eq!(b["policy"]["max_in_flight"], 4);

    let defaults = app
        .endpoint(&t, json!({"url": "https://hooks.example.com/d"}))
        .await;
    assert_eq!(
        defaults["policy"],
        json!({"success": "2xx", "retry": {"schedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]},
               "timeout": "15s", "max_in_flight": 16, "rate_limit": null, "ordering": "none",
               "adaptive": true, "disable_after": "5d"})
    );
}

#[tokio::test]
async fn bad_policy_values_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"policy": {"rate_limit": 0}}), "policy.rate_limit"),
        (
            json!({"policy": {"rate_limit": "fast"}}),
            "policy.rate_limit",
        ),
        (json!({"policy": {"ordering": "lifo"}}), "policy.ordering"),
        (
            json!({"policy": {"ordering": {"fifo_key": "id"}}}),
            "policy.ordering.fifo_key",
        ),
        (json!({"policy": {"adaptive": "yes"}}), "policy.adaptive"),
        (
            json!({"policy": {"disable_after": "soon"}}),
            "policy.disable_after",
        ),
        (json!({"policy": {"timeout": "0s"}}), "policy.timeout"),
        (json!({"policy": {"success": "2xx,999"}}), "policy.success"),
        (
            json!({"policy": {"retry": {"linear": {"every": "1s"}}}}),
            "policy.retry",
        ),
        (json!({"auth": {"basic": "no-colon"}}), "auth.basic"),
        (json!({"auth": {"header": "X-Key: a\nb"}}), "auth.header"),
    ];
    for (mut body, want) in cases {
        body["url"] = json!("https://hooks.example.com/in");
        let (s, b) = app
            .admin(
                "POST",
                &format!("/v1/tenants/{t}/endpoints"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, 422, "{body} → {b}");
        let field = b["error"]["field"].as_str().unwrap_or("");
        assert!(
            field.starts_with(want),
            "{body}: field `{field}`, want `{want}`"
        );
    }
    let (_, list) = app
        .admin("GET", &format!("/v1/tenants/{t}/endpoints"), None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

/// A FIFO endpoint's failing head keeps its place across a restart: the rest
/// of the line, due long before the head's retry, still waits behind it.
#[tokio::test]
async fn fifo_order_survives_a_restart() {
    use crate::support::{temp_db, wait_for, Receiver};
    use std::time::Duration;
    let db = temp_db();
    let rx = Receiver::start_with(vec![500], Duration::ZERO).await;
    let app = TestApp::spawn_on_file(&db, "").await;
    app.event_type("A.X").await;
    let t = app.tenant("t").await;
    app.endpoint(
        &t,
        json!({"url": rx.url, "event_types": ["A.X"],
               "policy": {"ordering": "fifo", "adaptive": false,
                          "retry": {"fixed": {"every": "3s", "for": "1m"}}}}),
    )
    .await;
    for n in 0..5 {
        app.publish(&t, json!({"type": "A.X", "payload": {"n": n}}))
            .await;
    }
    wait_for(
        "the head's failed attempt",
        Duration::from_secs(10),
        || async { rx.count() >= 1 },
    )
    .await;
    app.stop().await;
    assert_eq!(rx.count(), 1, "the rest waited behind the failing head");

    let _app = TestApp::spawn_on_file(&db, "").await;
    wait_for("every event delivered", Duration::from_secs(20), || async {
        rx.count() >= 6
    })
    .await;
    let order: Vec<i64> = rx
        .received()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["n"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(order, [0, 0, 1, 2, 3, 4], "publish order after the restart");
}
