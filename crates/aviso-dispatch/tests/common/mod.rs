//! Test helpers: a real HTTP receiver on a loopback port, an in-memory store,
//! endpoint builders and a wait-for-condition helper.
#![allow(dead_code)]

mod dispatch;
mod store;
#[allow(unused_imports)]
pub use dispatch::*;
#[allow(unused_imports)]
pub use store::FakeStore;

use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::{Endpoint, EndpointOwner, EndpointSecrets, EndpointSpec};
use aviso_core::name::EventTypeName;
use aviso_core::policy::DeliveryPolicy;
use aviso_core::signing::SigningSecret;
use aviso_core::url::EndpointUrl;
use aviso_core::{DeliveryId, EndpointId, EventId, TenantId, Timestamp};
use aviso_store::DispatchJob;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------- receiver ----------

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// The full request target (absolute when it came through as a proxy request).
    pub uri: String,
    /// The address the request came from.
    pub peer: SocketAddr,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the receiver answers and what it saw.
#[derive(Default)]
pub struct ReceiverState {
    pub requests: Mutex<Vec<Received>>,
    /// Statuses to answer in turn; 200 once empty.
    pub script: Mutex<VecDeque<u16>>,
    /// Answer this instead of 200 once the script is empty.
    pub default_status: Mutex<Option<u16>>,
    /// How long each request to `/` takes.
    pub delay: Mutex<Duration>,
    pub current: AtomicUsize,
    pub max_concurrent: AtomicUsize,
    /// When each request to `/` arrived, with the concurrency it made.
    pub arrivals: Mutex<Vec<(tokio::time::Instant, usize)>>,
    /// Headers added to every answer.
    pub answer_headers: Mutex<Vec<(String, String)>>,
    /// `(status, n)`: answer `status` except to every n-th request (then 200).
    pub sick: Mutex<Option<(u16, usize)>>,
    served: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1. Paths: `/redirect` answers 302, `/slow`
/// takes 5 s, `/big` answers 100 kB; anything else follows the script.
pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    pub fn answer_always(&self, status: u16) {
        *self.state.default_status.lock().unwrap() = Some(status);
    }

    pub fn delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    /// Adds a header to every answer.
    pub fn answer_header(&self, name: &str, value: &str) {
        let h = (name.to_owned(), value.to_owned());
        self.state.answer_headers.lock().unwrap().push(h);
    }

    /// Answers `status` except to every `n`-th request; `None` heals it.
    pub fn sick(&self, pattern: Option<(u16, usize)>) {
        *self.state.sick.lock().unwrap() = pattern;
    }

    /// Arrival times and concurrency of the requests to `/`.
    pub fn arrivals(&self) -> Vec<(tokio::time::Instant, usize)> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// The `n` field of each request body, in arrival order.
    pub fn numbers(&self) -> Vec<i64> {
        self.requests()
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                v["n"].as_i64().unwrap()
            })
            .collect()
    }
}

async fn handle(
    State(s): State<Arc<ReceiverState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    s.requests.lock().unwrap().push(Received {
        path: path.clone(),
        uri: uri.to_string(),
        peer,
        headers,
        body,
    });
    match path.as_str() {
        "/redirect" => return (StatusCode::FOUND, [("location", "/landed")]).into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return StatusCode::OK.into_response();
        }
        "/big" => return (StatusCode::OK, "a".repeat(100_000)).into_response(),
        _ => {}
    }
    let now = s.current.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_concurrent.fetch_max(now, Ordering::SeqCst);
    let nth = s.served.fetch_add(1, Ordering::SeqCst) + 1;
    s.arrivals
        .lock()
        .unwrap()
        .push((tokio::time::Instant::now(), now));
    let delay = *s.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    s.current.fetch_sub(1, Ordering::SeqCst);
    let scripted = s.script.lock().unwrap().pop_front();
    let sick = s
        .sick
        .lock()
        .unwrap()
        .map(|(st, n)| if nth % n == 0 { 200 } else { st });
    let status = scripted
        .or(sick)
        .or(*s.default_status.lock().unwrap())
        .unwrap_or(200);
    let mut resp = (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    for (k, v) in s.answer_headers.lock().unwrap().iter() {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

// ---------- endpoints and jobs ----------

pub fn endpoint(url: &str, policy: DeliveryPolicy) -> Endpoint {
    Endpoint {
        id: EndpointId::new(),
        owner: EndpointOwner::Tenant(TenantId::new()),
        spec: EndpointSpec {
            url: EndpointUrl::parse(url).unwrap(),
            description: String::new(),
            event_types: vec![],
            enabled: true,
            auth: ReceiverAuth::None,
            headers: Headers::default(),
            filter: PayloadFilter::default(),
            policy,
        },
        secrets: EndpointSecrets::new(SigningSecret::generate()),
        disabled_reason: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

pub fn job(endpoint: &Endpoint, payload: &str) -> DispatchJob {
    DispatchJob {
        delivery: DeliveryId::new(),
        event: EventId::new(),
        endpoint: endpoint.id.clone(),
        tenant: endpoint.owner.tenant().cloned().unwrap_or_default(),
        event_type: EventTypeName::parse("test.sent").unwrap(),
        payload: payload.into(),
        attempts: 0,
        round_attempts: 0,
        round_started_at: Timestamp::now(),
        due_at: Timestamp::now(),
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `secs` seconds.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
