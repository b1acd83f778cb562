//! The web pages: portal links and sessions over plain HTTP, and the whole
//! portal and admin console in headless Chromium (tests/browser/portal.mjs,
//! playwright-core), against a real Aviso and a real loopback receiver.

use crate::support::{TestApp, ADMIN_KEY};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

/// A client that keeps cookies and does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn link(app: &TestApp, tenant: &str, key: &str, body: Value) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/tenants/{tenant}/portal-link"),
        key,
        Some(body),
    )
    .await
}

/// Enters the portal with `url`; the status of the enter request.
async fn enter(b: &reqwest::Client, url: &str) -> u16 {
    b.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn portal_links_are_scoped_signed_and_sessions_see_one_tenant() {
    let app = TestApp::spawn().await;
    let a = app.tenant("acme").await;
    let b = app.tenant("other").await;
    app.event_type("A.CREATED").await;
    let ep_b = app
        .endpoint(
            &b,
            json!({"url": "http://127.0.0.1:9/h", "description": "B's"}),
        )
        .await;
    let ep_b = ep_b["id"].as_str().unwrap();

    // Who may make links: the admin, and a tenant key for its own tenant only.
    let (_, k) = app
        .admin(
            "POST",
            "/v1/api-keys",
            Some(json!({"tenant": a, "name": "t"})),
        )
        .await;
    let tenant_key = k["key"].as_str().unwrap();
    assert_eq!(link(&app, &a, tenant_key, json!({})).await.0, 201);
    assert_eq!(link(&app, &b, tenant_key, json!({})).await.0, 404);
    let (s, e) = link(&app, &a, ADMIN_KEY, json!({"ttl": "2d"})).await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("ttl")));
    let (s, e) = link(&app, &a, ADMIN_KEY, json!({"lang": "fr"})).await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("lang")));
    let (s, e) = link(&app, &a, ADMIN_KEY, json!({"ttl": "1h", "extra": 1})).await;
    assert_eq!(s, 422, "{e}");

    let (s, l) = link(&app, &a, ADMIN_KEY, json!({"ttl": "10m", "lang": "pt"})).await;
    assert_eq!(s, 201);
    let url = l["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/portal/enter?token=", app.base)),
        "{url}"
    );
    assert!(l["path"].as_str().unwrap().ends_with("&lang=pt"));

    // An altered or foreign token is refused, and opens no session.
    let web = browser();
    let forged = url.replace(&a, &b);
    assert_eq!(enter(&web, &forged).await, 403);
    assert_eq!(
        enter(&web, &format!("{}/portal/enter?token=x.y.z.w", app.base)).await,
        403
    );
    let r = web
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The real link opens a session for tenant A, in Portuguese.
    assert_eq!(enter(&web, url).await, 303);
    let r = web
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("Nenhum webhook encontrado"), "{html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();

    // B's integration does not exist for A's session, page or action.
    for p in ["", "/log", "/secret", "/edit"] {
        let r = web
            .get(format!("{}/portal/i/{ep_b}{p}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    let r = web
        .post(format!("{}/portal/i/{ep_b}/toggle", app.base))
        .form(&[("csrf", csrf.as_str()), ("enabled", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A form without the session's CSRF token changes nothing.
    let r = web
        .post(format!("{}/portal/new", app.base))
        .form(&[("csrf", "forged"), ("url", "http://127.0.0.1:9/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, list) = app
        .admin("GET", &format!("/v1/tenants/{a}/endpoints"), None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    // With it, the form creates the integration through the API's rules:
    // a bad value comes back next to its field, a good form is stored.
    let r = web
        .post(format!("{}/portal/new", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", "http://127.0.0.1:9/x"),
            ("auth", "none"),
            ("timeout", "500s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-timeout\""), "{html}");
    let r = web
        .post(format!("{}/portal/new", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", "http://127.0.0.1:9/x"),
            ("auth", "key"),
            ("key", "k-123"),
            ("event_types", "A.CREATED"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, list) = app
        .admin("GET", &format!("/v1/tenants/{a}/endpoints"), None)
        .await;
    let made = &list["data"][0];
    assert_eq!(made["event_types"], json!(["A.CREATED"]));
    assert_eq!(made["auth"]["header"]["name"], "Authorization");

    // The admin console wants the admin key, not a tenant key.
    let admin = browser();
    let r = admin
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = admin
        .post(format!("{}/admin/login", app.base))
        .form(&[("key", tenant_key)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = admin
        .post(format!("{}/admin/login", app.base))
        .form(&[("key", ADMIN_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = admin
        .get(format!("{}/admin/live.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let live: Value = r.json().await.unwrap();
    assert!(live["failing"].is_array());
    // A portal session is not an admin session.
    let r = web
        .get(format!("{}/admin/tenants", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    app.stop().await;
}

/// Whether the browser test can run here: Chromium and playwright-core.
fn browser_missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    if !std::path::Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (npm ci in tests/browser)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_and_admin_console_in_a_real_browser() {
    if let Some(why) = browser_missing() {
        // .ci/run installs both and sets AVISO_REQUIRE_BROWSER, so CI never skips.
        assert!(
            std::env::var_os("AVISO_REQUIRE_BROWSER").is_none(),
            "browser test cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let app = TestApp::spawn().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let shots = target.join("browser");
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/portal.mjs"))
        .env("AVISO_BASE", &app.base)
        .env("AVISO_ADMIN_KEY", ADMIN_KEY)
        .env("SHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("4 passed, 0 failed"), "{stdout}");
    for name in [
        "portal-integration-lifecycle",
        "portal-other-tenant-sees-nothing",
        "portal-on-a-phone",
        "admin-console",
    ] {
        assert!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}"
        );
    }
    app.stop().await;
}
