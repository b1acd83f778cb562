//! The OpenAPI document describes every route of the router (and nothing
//! else), and the docs page with its embedded assets is served.

use crate::support::TestApp;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let routes: BTreeSet<(String, String)> = aviso_api::route_table()
        .into_iter()
        .map(|(p, m)| (p, m.to_owned()))
        .collect();
    assert!(routes.len() > 50, "{} routes", routes.len());
    let mut documented = BTreeSet::new();
    let mut ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((path.clone(), method.clone()));
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            if path.starts_with("/v1/") {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
                assert_eq!(
                    op["security"][0]["api_key"],
                    Value::Array(vec![]),
                    "{method} {path}"
                );
                for (status, resp) in responses.iter().filter(|(s, _)| s.starts_with('4')) {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            // Every `{param}` of the path is declared.
            let declared: HashSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for part in path.split('/').filter(|s| s.starts_with('{')) {
                let name = part.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    declared.contains(name),
                    "{method} {path}: `{name}` undeclared"
                );
            }
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes the document does not describe: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        extra.is_empty(),
        "documented operations with no route: {extra:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn docs_page_and_its_assets_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/docs").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/openapi.json"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );
    let scripts: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(!scripts.is_empty(), "{html}");
    for src in scripts {
        let path = if src.starts_with('/') {
            src.to_owned()
        } else {
            format!("/docs/{src}")
        };
        let r = get(&app, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.bytes().await.unwrap().len() > 1000, "{path}");
    }
    app.stop().await;
}
