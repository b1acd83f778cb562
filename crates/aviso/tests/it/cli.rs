//! The operator CLI: the real binary against a live server; its `--json`
//! output is what the API answers, its tables carry the same ids, and its
//! errors have their exit codes.

use crate::support::{wait_for, Receiver, TestApp, ADMIN_KEY};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `aviso ARGS` against `base` with `key`, feeding `stdin`.
async fn aviso(base: &str, key: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aviso"))
        .args(args)
        .env("AVISO_URL", base)
        .env("AVISO_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aviso");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn cli_round_trip_matches_the_api() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let b = app.base.as_str();
    let ok = |r: &Run| assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);

    let r = aviso(
        b,
        ADMIN_KEY,
        &[
            "event-type",
            "create",
            "invoice.paid",
            "--group",
            "Billing",
            "--example",
            r#"{"n": 0}"#,
            "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.json()["name"], "invoice.paid");
    let r = aviso(b, ADMIN_KEY, &["event-type", "list", "--json"], None).await;
    ok(&r);
    assert_eq!(r.json(), app.admin("GET", "/v1/event-types", None).await.1);
    let r = aviso(b, ADMIN_KEY, &["event-type", "list"], None).await;
    ok(&r);
    assert!(r.stdout.starts_with("NAME"), "{}", r.stdout);
    assert!(r.stdout.contains("invoice.paid  Billing"), "{}", r.stdout);

    let r = aviso(
        b,
        ADMIN_KEY,
        &[
            "tenant", "create", "--uid", "acme", "--name", "Acme", "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    let tenant = r.json()["id"].as_str().unwrap().to_owned();
    let r = aviso(b, ADMIN_KEY, &["tenant", "list", "--json"], None).await;
    assert_eq!(r.json(), app.admin("GET", "/v1/tenants", None).await.1);

    let r = aviso(
        b,
        ADMIN_KEY,
        &[
            "key", "create", "--tenant", "acme", "--name", "ops", "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    let tenant_key = r.json()["key"].as_str().unwrap().to_owned();

    // From here on the tenant's own key, as its operator would.
    let k = tenant_key.as_str();
    let r = aviso(
        b,
        k,
        &[
            "endpoint",
            "create",
            "--tenant",
            "acme",
            "--url",
            &rx.url,
            "--type",
            "invoice.*",
            "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    let ep = r.json()["id"].as_str().unwrap().to_owned();
    assert!(r.json()["secret"].as_str().unwrap().starts_with("whsec_"));
    let r = aviso(
        b,
        k,
        &["endpoint", "show", "--tenant", "acme", &ep, "--json"],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(
        r.json(),
        app.admin("GET", &format!("/v1/tenants/{tenant}/endpoints/{ep}"), None)
            .await
            .1
    );
    let r = aviso(b, k, &["endpoint", "list", "--tenant", "acme"], None).await;
    ok(&r);
    assert!(
        r.stdout.lines().nth(1).unwrap().starts_with(&ep),
        "{}",
        r.stdout
    );

    // Publish from stdin, then from a file.
    let r = aviso(
        b,
        k,
        &[
            "event",
            "publish",
            "--tenant",
            "acme",
            "--type",
            "invoice.paid",
            "--json",
        ],
        Some(r#"{"n": 1}"#),
    )
    .await;
    ok(&r);
    let first = r.json()["id"].as_str().unwrap().to_owned();
    let file = std::env::temp_dir().join(format!("aviso-cli-{}.json", ulid::Ulid::new()));
    std::fs::write(&file, r#"{"n": 2}"#).unwrap();
    let r = aviso(
        b,
        k,
        &[
            "event",
            "publish",
            "--tenant",
            "acme",
            "--type",
            "invoice.paid",
            "--file",
            file.to_str().unwrap(),
        ],
        None,
    )
    .await;
    ok(&r);
    assert!(r.stdout.contains("deliveries  1"), "{}", r.stdout);
    let _ = std::fs::remove_file(file);
    wait_for("both events delivered", Duration::from_secs(20), || async {
        rx.count() >= 2
    })
    .await;
    let bodies: Vec<Value> = rx
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        bodies.contains(&json!({"n": 1})) && bodies.contains(&json!({"n": 2})),
        "{bodies:?}"
    );

    let path = format!("/v1/tenants/{tenant}/endpoints/{ep}/deliveries");
    wait_for(
        "deliveries recorded as succeeded",
        Duration::from_secs(20),
        || async {
            let (_, v) = app
                .admin("GET", &format!("{path}?status=succeeded"), None)
                .await;
            v["data"].as_array().is_some_and(|d| d.len() == 2)
        },
    )
    .await;
    let r = aviso(
        b,
        k,
        &[
            "deliveries",
            "list",
            "--tenant",
            "acme",
            "--endpoint",
            &ep,
            "--status",
            "succeeded",
            "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(
        r.json(),
        app.admin("GET", &format!("{path}?status=succeeded"), None)
            .await
            .1
    );
    assert!(r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["event"] == first.as_str()));

    // A test send of the catalogue type's example.
    let r = aviso(
        b,
        k,
        &[
            "endpoint",
            "test",
            "--tenant",
            "acme",
            &ep,
            "--type",
            "invoice.paid",
            "--json",
        ],
        None,
    )
    .await;
    ok(&r);
    assert_eq!(r.json()["succeeded"], true);
    assert_eq!(r.json()["type"], "invoice.paid");
    wait_for("test request arrived", Duration::from_secs(5), || async {
        rx.count() >= 3
    })
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&rx.received()[2].body).unwrap(),
        json!({"n": 0})
    );
    app.stop().await;
}

#[tokio::test]
async fn cli_errors_say_what_and_exit_with_their_code() {
    let app = TestApp::spawn().await;
    let b = app.base.as_str();
    app.tenant("acme").await;
    // The API refuses: exit 1, with its message and field.
    let r = aviso(
        b,
        ADMIN_KEY,
        &[
            "endpoint",
            "create",
            "--tenant",
            "acme",
            "--url",
            "ftp://example.com/x",
        ],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("field `url`") && r.stderr.contains("422"),
        "{}",
        r.stderr
    );
    let r = aviso(b, "wrong-key-0123456789", &["tenant", "list"], None).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("401"), "{}", r.stderr);
    // Unusable input: exit 1, nothing sent.
    let r = aviso(
        b,
        ADMIN_KEY,
        &["event", "publish", "--tenant", "acme", "--type", "x.y"],
        Some("{not json"),
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not valid JSON"), "{}", r.stderr);
    // Bad command line: clap's exit 2.
    let r = aviso(b, ADMIN_KEY, &["tenant", "create", "--uid", "x"], None).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    // A failed test send: exit 4, the result still printed.
    let dead = Receiver::always(500, Duration::ZERO).await;
    let ep = app.endpoint("acme", json!({"url": dead.url})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = aviso(
        b,
        ADMIN_KEY,
        &["endpoint", "test", "--tenant", "acme", &ep, "--json"],
        None,
    )
    .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(r.json()["attempt"]["status_code"], 500);
    app.stop().await;
    // Nobody listening: exit 3.
    let r = aviso("http://127.0.0.1:9", ADMIN_KEY, &["tenant", "list"], None).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach Aviso"), "{}", r.stderr);
}
