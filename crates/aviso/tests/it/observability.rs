//! Metrics and logs of a real `aviso serve` process: `/metrics` agrees with
//! what the receivers saw, and a debug JSON log records every attempt and
//! never a secret.

use crate::support::{temp_db, wait_for, Receiver};
use aviso::bench::child::{Db, Server, KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    /// A tenant subscribed to `invoice.paid`, with one endpoint per body.
    async fn setup(&self, endpoints: &[Value]) -> String {
        self.post("/v1/event-types", json!({"name": "invoice.paid"}))
            .await;
        let t = self
            .post("/v1/tenants", json!({"uid": "acme", "name": "Acme"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for ep in endpoints {
            self.post(&format!("/v1/tenants/{t}/endpoints"), ep.clone())
                .await;
        }
        t
    }

    async fn metrics(&self) -> Vec<Sample> {
        let r = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain"), "{ct}");
        parse(&r.text().await.unwrap())
    }
}

/// One line of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of `name` over every series whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

async fn start(
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> (Server, Api) {
    let exe = Path::new(env!("CARGO_BIN_EXE_aviso"));
    let server = Server::start_binary_with(exe, &Db::Sqlite(db.to_owned()), args, env, log)
        .await
        .expect("aviso serve starts");
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    (server, api)
}

#[tokio::test]
async fn metrics_count_what_the_receivers_saw() {
    const EVENTS: usize = 20;
    let db = temp_db();
    let (mut server, api) = start(&db, &[], &[], None).await;
    // One receiver fails twice before accepting everything; one accepts at once.
    let flaky = Receiver::start_with(vec![500, 503], Duration::ZERO).await;
    let fine = Receiver::start().await;
    let retry = json!({"retry": {"schedule": ["50ms", "50ms", "50ms"]}, "adaptive": false});
    let t = api
        .setup(&[
            json!({"url": flaky.url, "policy": retry}),
            json!({"url": fine.url}),
        ])
        .await;
    for n in 0..EVENTS {
        api.post(
            &format!("/v1/tenants/{t}/events"),
            json!({"type": "invoice.paid", "payload": {"n": n}}),
        )
        .await;
    }
    // Attempts are counted once their answer is in, outcome batches once
    // they are written (a little later): wait for both.
    let expected_attempts = EVENTS * 2 + 2;
    wait_for("every attempt counted and written", WAIT, || async {
        let m = api.metrics().await;
        sum(&m, "aviso_attempts_total", &[]) as usize >= expected_attempts
            && sum(&m, "aviso_deliveries_finished_total", &[]) as usize >= EVENTS * 2
            && sum(&m, "aviso_outcome_batch_size_sum", &[]) as usize >= expected_attempts
    })
    .await;
    let m = api.metrics().await;
    let received = flaky.count() + fine.count();
    assert_eq!(received, expected_attempts, "the receivers' own count");
    assert_eq!(sum(&m, "aviso_events_published_total", &[]), EVENTS as f64);
    assert_eq!(
        sum(&m, "aviso_deliveries_created_total", &[]),
        (EVENTS * 2) as f64
    );
    assert_eq!(sum(&m, "aviso_attempts_total", &[]), received as f64);
    assert_eq!(
        sum(
            &m,
            "aviso_attempts_total",
            &[("class", "5xx"), ("result", "retry")]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &m,
            "aviso_attempts_total",
            &[("class", "2xx"), ("result", "delivered")]
        ),
        (EVENTS * 2) as f64
    );
    assert_eq!(
        sum(
            &m,
            "aviso_deliveries_finished_total",
            &[("status", "succeeded")]
        ),
        (EVENTS * 2) as f64
    );
    assert_eq!(
        sum(
            &m,
            "aviso_deliveries_finished_total",
            &[("status", "failed")]
        ),
        0.0
    );
    assert_eq!(sum(&m, "aviso_retries_scheduled_total", &[]), 2.0);
    assert_eq!(
        sum(&m, "aviso_attempt_duration_seconds_count", &[]),
        received as f64
    );
    assert!(
        sum(
            &m,
            "aviso_store_commit_batch_size_count",
            &[("backend", "sqlite")]
        ) > 0.0
    );
    assert!(
        sum(
            &m,
            "aviso_store_commit_seconds_count",
            &[("backend", "sqlite"), ("result", "ok")]
        ) > 0.0
    );
    assert!(sum(&m, "aviso_outcome_batch_size_sum", &[]) >= received as f64);
    // Gauges are sampled once a second: they appear, and read empty queues
    // once everything is delivered.
    wait_for("gauges sampled with drained queues", WAIT, || async {
        let m = api.metrics().await;
        has(&m, "aviso_in_flight_requests")
            && has(&m, "aviso_circuits_open")
            && ["ready", "lanes", "scheduled"].iter().all(|q| {
                m.iter().any(|s| {
                    s.name == "aviso_queue_depth"
                        && s.labels.get("queue").map(String::as_str) == Some(*q)
                        && s.value == 0.0
                })
            })
    })
    .await;
    server.stop().await;
    Db::Sqlite(db).remove();
}

#[tokio::test]
async fn json_debug_log_records_attempts_and_never_secrets() {
    let db = temp_db();
    let log = db.with_extension("log");
    let (mut server, api) = start(
        &db,
        &["--log-format", "json"],
        &[("AVISO_LOG", "debug,hyper=info,reqwest=info,h2=info")],
        Some(&log),
    )
    .await;
    let rx = Receiver::start().await;
    let secrets = [
        "basic-password-Zq81",
        "bearer-token-Kx42",
        "header-key-Wm93",
        "whsec_dGhpcy1pcy1hLXNpZ25pbmctc2VjcmV0LTEyMzQ1Njc4OTA=",
    ];
    let t = api
        .setup(&[
            json!({"url": rx.url, "auth": {"basic": {"username": "ana", "password": secrets[0]}}}),
            json!({"url": rx.url, "auth": {"bearer": secrets[1]}}),
            json!({"url": rx.url, "auth": {"header": format!("X-Api-Key:{}", secrets[2])}, "secret": secrets[3]}),
        ])
        .await;
    let published = api
        .post(
            &format!("/v1/tenants/{t}/events"),
            json!({"type": "invoice.paid", "payload": {"n": 1}}),
        )
        .await;
    wait_for("three deliveries", WAIT, || async { rx.count() >= 3 }).await;
    // The receiver saw the credentials, so they were really used.
    let seen: Vec<String> = rx
        .received()
        .iter()
        .flat_map(|r| {
            ["authorization", "x-api-key"]
                .into_iter()
                .filter_map(|h| Some(r.headers.get(h)?.to_str().ok()?.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        seen.iter().any(|v| v == &format!("Bearer {}", secrets[1])),
        "{seen:?}"
    );
    assert!(seen.iter().any(|v| v == secrets[2]), "{seen:?}");
    let event = published["id"].as_str().unwrap().to_owned();
    wait_for("three attempts logged", WAIT, || async {
        attempt_lines(&log, &event).len() >= 3
    })
    .await;
    server.stop().await;
    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    for secret in secrets {
        assert!(!text.contains(secret), "the log holds a secret: {secret}");
    }
    let basic = base64_of(&format!("ana:{}", secrets[0]));
    assert!(
        !text.contains(&basic),
        "the log holds the Basic credentials"
    );
    for line in attempt_lines(&log, &event) {
        let f = &line["fields"];
        assert_eq!(f["attempt"], 1, "{line}");
        assert_eq!(f["status"], 200, "{line}");
        assert!(f["duration_ms"].is_u64(), "{line}");
        assert!(f["endpoint"].as_str().unwrap().starts_with("ep_"), "{line}");
    }
    Db::Sqlite(db).remove();
    let _ = std::fs::remove_file(log);
}

/// The log's "attempt finished" records of `event`.
fn attempt_lines(log: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "attempt finished" && v["fields"]["event"] == event)
        .collect()
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
