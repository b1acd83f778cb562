//! Load generators: closed-loop and open-loop publishers through the real
//! HTTP API, and the raw loopback ceiling (the same client against the
//! receiver directly).

use super::child::KEY;
use super::receiver::now_us;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client of one Aviso server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A pooled client for `base`.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_owned(),
        }
    }

    /// POSTs JSON and returns the answer; fails on anything but `want`.
    pub async fn post(&self, path: &str, body: Value, want: u16) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status != want {
            bail!("POST {path} answered {status}: {v}");
        }
        Ok(v)
    }

    /// Creates the event types, a tenant and one endpoint per URL (with the
    /// given event types); returns the tenant id.
    pub async fn setup(&self, endpoints: &[(String, &str)]) -> anyhow::Result<String> {
        for t in ["bench.event", "bench.backlog"] {
            self.post("/v1/event-types", json!({"name": t}), 201)
                .await?;
        }
        let t = self
            .post("/v1/tenants", json!({"uid": "bench", "name": "bench"}), 201)
            .await?;
        let tenant = t["id"].as_str().context("tenant id")?.to_owned();
        for (url, ty) in endpoints {
            self.post(
                &format!("/v1/tenants/{tenant}/endpoints"),
                json!({"url": url, "event_types": [ty]}),
                201,
            )
            .await?;
        }
        Ok(tenant)
    }

    /// Publishes one event carrying its send time; true when accepted (202).
    pub async fn publish(&self, tenant: &str, ty: &str, n: u64) -> bool {
        let body = format!(
            r#"{{"type":"{ty}","payload":{{"sent_at_us":{},"n":{n}}}}}"#,
            now_us()
        );
        let r = self
            .http
            .post(format!("{}/v1/tenants/{tenant}/events", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        matches!(r, Ok(r) if r.status().as_u16() == 202)
    }

    /// Answers 200 on /readyz.
    pub async fn ready(&self) -> bool {
        matches!(self.http.get(format!("{}/readyz", self.base)).send().await, Ok(r) if r.status().is_success())
    }
}

/// Runs `concurrency` publishers back to back for `duration` (or until
/// `limit` events); returns accepted events and failures.
pub async fn closed_loop(
    api: &Api,
    tenant: &str,
    ty: &str,
    concurrency: usize,
    duration: Duration,
    limit: u64,
) -> (u64, u64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, tenant, ty) = (api.clone(), tenant.to_owned(), ty.to_owned());
        let (accepted, failed, issued) = (accepted.clone(), failed.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let c = if api.publish(&tenant, &ty, n).await {
                    &accepted
                } else {
                    &failed
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        accepted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

/// Publishes at a fixed offered rate for `duration`, each publish on its own
/// task (open loop); returns accepted events and failures.
pub async fn open_loop(api: &Api, tenant: &str, rate: u32, duration: Duration) -> (u64, u64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let stop = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0;
    while Instant::now() < stop {
        tick.tick().await;
        n += 1;
        let (api, tenant) = (api.clone(), tenant.to_owned());
        let (accepted, failed) = (accepted.clone(), failed.clone());
        tasks.spawn(async move {
            let c = if api.publish(&tenant, "bench.event", n).await {
                &accepted
            } else {
                &failed
            };
            c.fetch_add(1, Ordering::Relaxed);
        });
    }
    while tasks.join_next().await.is_some() {}
    (
        accepted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

/// The same client and receiver talking directly: requests per second with
/// `concurrency` closed-loop senders posting a same-sized body.
pub async fn raw_ceiling(receiver_base: &str, concurrency: usize, duration: Duration) -> f64 {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client");
    let url = format!("{receiver_base}/raw");
    let done = Arc::new(AtomicU64::new(0));
    let halt = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, done, halt) = (http.clone(), url.clone(), done.clone(), halt.clone());
        tasks.push(tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                let body = format!(
                    r#"{{"type":"bench.event","payload":{{"sent_at_us":{},"n":1}}}}"#,
                    now_us()
                );
                if http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    halt.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
