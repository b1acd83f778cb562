//! Test harness: an in-process Aviso on port 0 with its own database, a
//! recording receiver, and wait-for-condition helpers.

use aviso::config::Config;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A fresh database file path.
pub fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join("aviso-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.db", ulid::Ulid::new()))
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts Aviso on a fresh database with `extra` TOML config.
    pub async fn spawn_with(extra: &str) -> Self {
        Self::spawn_on_file(&temp_db(), extra).await
    }

    /// Starts Aviso on the SQLite file `db` (new or left by an earlier server).
    pub async fn spawn_on_file(db: &std::path::Path, extra: &str) -> Self {
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}\"\nadmin_key = \"{ADMIN_KEY}\"\nallow_http = true\nallow_private_destinations = true\n",
            db.display()
        );
        let cfg = Config::from_toml(&[&toml, extra]).expect("test config");
        let store = aviso::server::open_store(&cfg).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(aviso::server::run(cfg, store, listener, cancel.clone()));
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            cancel,
            task: Some(task),
        }
    }

    /// Starts Aviso with the test defaults.
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// Starts Aviso on a database URL (e.g. a PostgreSQL test schema).
    pub async fn spawn_on(database_url: &str) -> Self {
        Self::spawn_with(&format!("database_url = \"{database_url}\"\n")).await
    }

    /// Sends a request with a key and extra headers; returns status, headers and JSON body.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            h,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// Polls a task until it is finished; returns it.
    pub async fn wait_task(&self, key: &str, id: &str, deadline: Duration) -> Value {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let (s, t) = self
                .call("GET", &format!("/v1/tasks/{id}"), key, None)
                .await;
            assert_eq!(s, 200, "{t}");
            if t["status"] == "succeeded" || t["status"] == "failed" {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "task {id} did not finish in {deadline:?}: {t}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a request with a key; returns status and JSON body (Null if empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `call` with the admin key.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, ADMIN_KEY, body).await
    }

    /// Sends raw bytes (for malformed bodies).
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an event type.
    pub async fn event_type(&self, name: &str) {
        let (s, b) = self
            .admin("POST", "/v1/event-types", Some(json!({"name": name})))
            .await;
        assert_eq!(s, 201, "{b}");
    }

    /// Creates a tenant and returns its id.
    pub async fn tenant(&self, uid: &str) -> String {
        let (s, b) = self
            .admin(
                "POST",
                "/v1/tenants",
                Some(json!({"uid": uid, "name": uid})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_owned()
    }

    /// Creates an endpoint; returns its JSON (with `secret`).
    pub async fn endpoint(&self, tenant: &str, body: Value) -> Value {
        let (s, b) = self
            .admin(
                "POST",
                &format!("/v1/tenants/{tenant}/endpoints"),
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// Publishes an event; returns the 202 body.
    pub async fn publish(&self, tenant: &str, body: Value) -> Value {
        let (s, b) = self
            .admin("POST", &format!("/v1/tenants/{tenant}/events"), Some(body))
            .await;
        assert_eq!(s, 202, "{b}");
        b
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: tokio::time::Instant,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    script: VecDeque<u16>,
    /// Answered once the script is empty (200 when unset).
    otherwise: Option<u16>,
    delay: Duration,
    in_flight: usize,
    peak_in_flight: usize,
}

/// A webhook receiver on a loopback port that records every request and
/// answers from a script of status codes (then 200).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// Starts a receiver answering 200 at once.
    pub async fn start() -> Self {
        Self::start_with(Vec::new(), Duration::ZERO).await
    }

    /// Starts a receiver answering `script` in order, then 200, each after `delay`.
    pub async fn start_with(script: Vec<u16>, delay: Duration) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            script: script.into(),
            delay,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    /// Starts a receiver answering `status` to everything, each after `delay`.
    pub async fn always(status: u16, delay: Duration) -> Self {
        let rx = Self::start_with(Vec::new(), delay).await;
        rx.state.lock().unwrap().otherwise = Some(status);
        rx
    }

    /// From now on, answers `status` once the script is empty.
    pub fn answer(&self, status: u16) {
        self.state.lock().unwrap().otherwise = Some(status);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().got.len()
    }

    /// Most concurrent requests seen.
    pub fn peak_in_flight(&self) -> usize {
        self.state.lock().unwrap().peak_in_flight
    }
}

async fn receive(
    State(st): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (delay, status) = {
        let mut s = st.lock().unwrap();
        s.in_flight += 1;
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        let at = tokio::time::Instant::now();
        s.got.push(Received { headers, body, at });
        let status = s.script.pop_front().or(s.otherwise).unwrap_or(200);
        (s.delay, status)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    st.lock().unwrap().in_flight -= 1;
    StatusCode::from_u16(status).unwrap()
}

/// Polls `check` until it returns true or `deadline` passes (then panics with `what`).
pub async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls a delivery until its status is `want`; returns it with its attempts.
pub async fn wait_delivery(app: &TestApp, tenant: &str, dlv: &str, want: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/deliveries/{dlv}");
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, d) = app.admin("GET", &path, None).await;
        assert_eq!(s, 200, "{d}");
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

/// The ids of an event's deliveries, from a publish answer.
pub fn delivery_ids(published: &Value) -> Vec<String> {
    published["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}
