//! A cluster of real `aviso serve` processes on one PostgreSQL schema, a
//! receiver that counts, and producers that publish round robin.

use crate::support::ADMIN_KEY;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Short leases so a killed node's work moves on within seconds.
pub const LEASE: &str = "2s";

/// The admin URL of the test database, or `None` (and a printed note).
pub fn admin_url() -> Option<String> {
    match std::env::var("AVISO_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("skipped: AVISO_TEST_DATABASE_URL not set");
            None
        }
    }
}

/// A schema of its own, reached through `search_path` in the URL.
pub struct Schema {
    admin: String,
    name: String,
    /// A database URL whose connections use only this schema.
    pub url: String,
}

impl Schema {
    /// Creates the schema (sweeping ones failed runs left).
    pub async fn create(admin: &str) -> Self {
        // Named after the time, so schemas left by failed runs can be swept.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        sweep(admin, now.saturating_sub(3600)).await;
        let name = format!(
            "aviso_it_{now}_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        sql(admin, &format!("CREATE SCHEMA {name}")).await;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }

    /// Drops the schema and all it holds.
    pub async fn drop_now(self) {
        sql(
            &self.admin,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        )
        .await;
    }
}

/// Drops this test's schemas created before `cutoff` (Unix seconds).
async fn sweep(admin: &str, cutoff: u64) {
    let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    let driver = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aviso\\_it\\_%'",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let name: String = r.get(0);
        let created = name
            .trim_start_matches("aviso_it_")
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|c| c < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
    drop(client);
    let _ = driver.await;
}

/// Each node's claims and owned endpoints: `node → (claims, endpoints)`.
pub async fn holdings(url: &str) -> HashMap<String, (i64, i64)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    let driver = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT n.node, \
               (SELECT count(*) FROM deliveries d WHERE d.locked_by = n.node), \
               (SELECT count(*) FROM endpoint_owners o WHERE o.node = n.node) \
             FROM nodes n",
            &[],
        )
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    rows.iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect()
}

async fn sql(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    let driver = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = driver.await;
}

/// One `aviso serve` process.
pub struct Node {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Node {
    /// Starts `aviso serve --role ROLE` on `url` and waits for its address.
    pub async fn start(url: &str, role: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aviso"))
            .args(["serve", "--role", role])
            .env("AVISO_LISTEN", "127.0.0.1:0")
            .env("AVISO_DATABASE_URL", url)
            .env("AVISO_ADMIN_KEY", ADMIN_KEY)
            .env("AVISO_ALLOW_HTTP", "true")
            .env("AVISO_ALLOW_PRIVATE_DESTINATIONS", "true")
            .env("AVISO_POSTGRES__LEASE", LEASE)
            .env("AVISO_LOG", "error,tower_http=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn aviso");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.trim().strip_prefix("API:") {
                    return url.trim().trim_end_matches("/v1").to_owned();
                }
            }
            panic!("aviso exited before printing its address");
        })
        .await
        .expect("aviso printed its address in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node { child, base }
    }

    /// SIGTERM, and the process exits cleanly.
    pub async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("aviso stopped in time")
            .unwrap();
        assert!(status.success(), "aviso exited with {status}");
    }
}

/// A receiver that counts every `webhook-id` and the peak of concurrent requests.
#[derive(Clone)]
pub struct Counting {
    /// Where to deliver.
    pub url: String,
    state: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    by_id: HashMap<String, usize>,
    in_flight: usize,
    peak: usize,
    delay: Duration,
}

/// Decrements the in-flight count even if the request is dropped mid-way.
struct InFlight(Arc<Mutex<Seen>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

impl Counting {
    /// Starts a receiver answering 200 after `delay`.
    pub async fn start(delay: Duration) -> Self {
        let state = Arc::new(Mutex::new(Seen {
            delay,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    /// Whether every one of these events arrived.
    pub fn has_all(&self, ids: &[String]) -> bool {
        let s = self.state.lock().unwrap();
        ids.iter().all(|id| s.by_id.contains_key(id))
    }

    /// (distinct events, duplicate requests, peak concurrency)
    pub fn summary(&self) -> (usize, usize, usize) {
        let s = self.state.lock().unwrap();
        let dups = s.by_id.values().map(|n| n - 1).sum();
        (s.by_id.len(), dups, s.peak)
    }
}

async fn receive(State(st): State<Arc<Mutex<Seen>>>, headers: HeaderMap) -> StatusCode {
    let delay = {
        let mut s = st.lock().unwrap();
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        *s.by_id.entry(id).or_default() += 1;
        s.in_flight += 1;
        s.peak = s.peak.max(s.in_flight);
        s.delay
    };
    let _guard = InFlight(st);
    tokio::time::sleep(delay).await;
    StatusCode::OK
}

/// POSTs JSON with the admin key.
pub async fn admin_post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates an event type, a tenant and one endpoint per `(receiver, max_in_flight)`.
pub async fn set_up(base: &str, endpoints: &[(&Counting, u32)]) -> String {
    let http = reqwest::Client::new();
    let (s, b) = admin_post(
        &http,
        format!("{base}/v1/event-types"),
        json!({"name": "order.paid"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, t) = admin_post(
        &http,
        format!("{base}/v1/tenants"),
        json!({"uid": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let tenant = t["id"].as_str().unwrap().to_owned();
    for (rx, max) in endpoints {
        let (s, b) = admin_post(
            &http,
            format!("{base}/v1/tenants/{tenant}/endpoints"),
            json!({"url": rx.url, "policy": {"max_in_flight": max, "retry": {"fixed": {"every": "1s", "for": "10m"}}}}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    tenant
}

/// Where producers send: the live nodes' addresses (None while a node is down).
pub type Targets = Arc<Mutex<Vec<Option<String>>>>;

/// What the producers saw.
#[derive(Default)]
pub struct Published {
    /// Ids of events answered 202.
    pub accepted: Vec<String>,
    /// 503 answers (the database was unreachable).
    pub unavailable: usize,
    /// 503 bodies, for their message.
    pub unavailable_bodies: Vec<Value>,
}

/// Publishes `count` events from `producers` tasks, round robin over the live
/// targets. A request that gets no answer or a 503 is retried on the next
/// node with the same idempotency key, so an event is never published twice.
pub async fn publish(
    targets: Targets,
    tenant: &str,
    count: usize,
    producers: usize,
    out: Arc<Mutex<Published>>,
) {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (http, targets, out, tenant) = (
            http.clone(),
            targets.clone(),
            out.clone(),
            tenant.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            for n in (p..count).step_by(producers) {
                let body = json!({"type": "order.paid", "payload": {"n": n}, "idempotency_key": format!("k{n}")});
                let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                let mut turn = n;
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "event {n} never accepted");
                    turn += 1;
                    let base = {
                        let t = targets.lock().unwrap();
                        t[turn % t.len()].clone()
                    };
                    let Some(base) = base else { continue };
                    let sent = http
                        .post(format!("{base}/v1/tenants/{tenant}/events"))
                        .bearer_auth(ADMIN_KEY)
                        .json(&body)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let Ok(r) = sent else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let status = r.status().as_u16();
                    let b: Value = r.json().await.unwrap_or(Value::Null);
                    match status {
                        202 => {
                            out.lock().unwrap().accepted.push(b["id"].as_str().unwrap().to_owned());
                            break;
                        }
                        503 => {
                            {
                                let mut o = out.lock().unwrap();
                                o.unavailable += 1;
                                if o.unavailable_bodies.len() < 3 {
                                    o.unavailable_bodies.push(b);
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => panic!("publish answered {s}: {b}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// How many events were accepted so far.
pub fn accepted_count(out: &Arc<Mutex<Published>>) -> usize {
    out.lock().unwrap().accepted.len()
}
