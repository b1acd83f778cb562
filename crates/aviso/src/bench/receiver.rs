//! A fast webhook receiver on a loopback port that measures what arrives:
//! counts per endpoint, publish-to-arrival latency, duplicates.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

#[derive(Default)]
struct Inner {
    ok_by_endpoint: Vec<u64>,
    /// (endpoint, webhook-id as its ULID's 128 bits): no allocation per arrival.
    seen: HashSet<(u16, u128)>,
    duplicates: u64,
    latencies_us: Vec<u64>,
    first_at_us: u64,
    last_at_us: u64,
    failed_hits: u64,
}

/// Arrivals a run's tables hold without growing.
const ARRIVALS: usize = 1 << 20;

impl Inner {
    /// Sized for a run's arrivals and written through once, up front. Growing
    /// the tables mid-run would stall the receiver, and so does the kernel
    /// zeroing their pages on first touch: with transparent huge pages, 2 MiB
    /// at a time, which on one host held the receiver (and its lock) for the
    /// first ~180 ms of a measured phase and made that phase's p99 latency.
    fn new(endpoints: usize) -> Self {
        let mut seen = HashSet::with_capacity(ARRIVALS);
        seen.extend((0..ARRIVALS as u128).map(|n| (u16::MAX, n)));
        seen.clear();
        let mut latencies_us = vec![1; ARRIVALS];
        latencies_us.clear();
        Self {
            ok_by_endpoint: vec![0; endpoints],
            seen,
            latencies_us,
            ..Default::default()
        }
    }

    /// Forgets what arrived, keeping the tables (and their touched pages).
    fn clear(&mut self) {
        self.ok_by_endpoint.fill(0);
        self.seen.clear();
        self.duplicates = 0;
        self.latencies_us.clear();
        self.first_at_us = 0;
        self.last_at_us = 0;
        self.failed_hits = 0;
    }
}

/// Shared measurements.
#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// A snapshot of what the receiver measured.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Successful arrivals per endpoint index.
    pub by_endpoint: Vec<u64>,
    /// Repeated (endpoint, webhook-id) pairs.
    pub duplicates: u64,
    /// Latencies of healthy arrivals, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Last arrival (µs since epoch).
    pub last_at_us: u64,
}

impl Receiver {
    /// Binds a loopback port and serves `/ok/{i}` (200), `/fail/{i}` (500),
    /// `/slow/{i}` (200 after 2 s) and `/raw` (200, for the ceiling).
    pub async fn start(endpoints: usize) -> anyhow::Result<Self> {
        // Aviso's pool opens its connections to every endpoint at once.
        let listener = crate::server::listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr: SocketAddr = listener.local_addr()?;
        let r = Self {
            inner: Arc::new(Mutex::new(Inner::new(endpoints))),
            base: format!("http://{addr}"),
        };
        let app = axum::Router::new()
            .route("/ok/{i}", post(ok))
            .route("/fail/{i}", post(fail))
            .route("/slow/{i}", post(slow))
            .route("/raw", post(|| async { StatusCode::OK }))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(r)
    }

    /// Forgets everything measured so far.
    pub fn reset(&self) {
        self.inner.lock().unwrap().clear();
    }

    /// Requests answered 500 so far.
    pub fn failed_hits(&self) -> u64 {
        self.inner.lock().unwrap().failed_hits
    }

    /// Total successful arrivals.
    pub fn total(&self) -> u64 {
        self.inner.lock().unwrap().ok_by_endpoint.iter().sum()
    }

    /// A copy of the measurements with latencies sorted.
    pub fn snapshot(&self) -> Seen {
        let g = self.inner.lock().unwrap();
        let mut latencies_us = g.latencies_us.clone();
        latencies_us.sort_unstable();
        Seen {
            by_endpoint: g.ok_by_endpoint.clone(),
            duplicates: g.duplicates,
            latencies_us,
            last_at_us: g.last_at_us,
        }
    }
}

/// The send time the publisher put in the payload: `{"sent_at_us": N, …}`.
fn sent_at(body: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(body).ok()?;
    let i = s.find("\"sent_at_us\":")? + 13;
    let digits: String = s[i..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn ok(
    State(r): State<Receiver>,
    Path(i): Path<u16>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = now_us();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once('_'))
        .and_then(|(_, ulid)| ulid::Ulid::from_string(ulid).ok())
        .map_or(0, u128::from);
    let mut g = r.inner.lock().unwrap();
    if let Some(c) = g.ok_by_endpoint.get_mut(i as usize) {
        *c += 1;
    }
    if !g.seen.insert((i, id)) {
        g.duplicates += 1;
    }
    if let Some(t) = sent_at(&body) {
        g.latencies_us.push(now.saturating_sub(t));
    }
    if g.first_at_us == 0 {
        g.first_at_us = now;
    }
    g.last_at_us = now;
    StatusCode::OK
}

async fn fail(State(r): State<Receiver>) -> StatusCode {
    r.inner.lock().unwrap().failed_hits += 1;
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn slow() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(2)).await;
    StatusCode::OK
}

/// The value at quantile `q` of sorted samples, in milliseconds.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_send_time() {
        assert_eq!(super::sent_at(br#"{"sent_at_us": 123,"n":1}"#), Some(123));
        assert_eq!(super::sent_at(br#"{"sent_at_us":9}"#), Some(9));
        assert_eq!(super::sent_at(b"{}"), None);
    }

    /// The same webhook-id at the same endpoint twice is one duplicate; the
    /// same id at another endpoint, or another id, is not.
    #[tokio::test]
    async fn counts_repeated_ids_per_endpoint_as_duplicates() {
        let r = super::Receiver::start(2).await.unwrap();
        let http = reqwest::Client::new();
        let a = aviso_core::EventId::new();
        let b = aviso_core::EventId::new();
        for (path, id) in [("/ok/0", &a), ("/ok/0", &a), ("/ok/1", &a), ("/ok/0", &b)] {
            let resp = http
                .post(format!("{}{path}", r.base))
                .header("webhook-id", id.as_str())
                .body(r#"{"sent_at_us":1}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let seen = r.snapshot();
        assert_eq!(seen.by_endpoint, vec![3, 1]);
        assert_eq!(seen.duplicates, 1);

        // A reset forgets the arrivals but keeps the tables it sized.
        r.reset();
        let seen = r.snapshot();
        assert_eq!(seen.by_endpoint, vec![0, 0]);
        assert_eq!((seen.duplicates, seen.latencies_us.len()), (0, 0));
        let g = r.inner.lock().unwrap();
        assert!(g.seen.capacity() >= super::ARRIVALS);
        assert!(g.latencies_us.capacity() >= super::ARRIVALS);
    }
}
