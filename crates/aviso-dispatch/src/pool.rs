//! The sender's connections: HTTP/1.1 connections kept per destination, each
//! request written and its answer read in the task of its attempt.
//!
//! hyper's pooled client runs every connection as a task of its own and hands
//! each request to it through channels, after a checkout from a shared pool
//! that also sets request extensions: per request, two tasks woken in turn
//! and the pool's bookkeeping (~7 % of the server in the bench's fan-out
//! profile, BENCHMARKS.md). Here an attempt takes an idle connection, drives
//! it itself while its request goes out and its answer comes back, and puts
//! it back once the answer has been read to its end.
//!
//! Receivers that choose HTTP/2 (by ALPN, over TLS) are remembered and sent
//! to through hyper's pooled client, which multiplexes requests over one
//! connection and needs a task per connection anyway.

use crate::config::SenderConfig;
use crate::guard::allowed_addrs;
use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;
use tower_service::Service;

/// Idle connections kept per destination, at most (an endpoint has at most
/// 500 requests in flight).
const MAX_IDLE_PER_HOST: usize = 512;
/// How long an unused connection is kept (hyper's pooled client: 90 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often idle connections of every destination are looked through.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;
type Connector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
type Io = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
type Body = Full<Bytes>;
type Shared = hyper_util::client::legacy::Client<Connector, Body>;

/// Where a prepared target's requests go.
pub(crate) struct Dest {
    /// `scheme://host:port`: which connections can carry the request.
    key: Arc<str>,
    /// The absolute URL, to connect to (and for HTTP/2 receivers).
    uri: Uri,
    /// The request line's path and query.
    origin: Uri,
    /// The `Host` header.
    host: HeaderValue,
}

impl Dest {
    /// Parses an endpoint's URL for sending; the error says why it cannot be.
    pub(crate) fn new(url: &url::Url) -> Result<Self, String> {
        let uri: Uri = url.as_str().parse().map_err(|e| format!("{e}"))?;
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let origin = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("{e}"))?;
        Ok(Self {
            key: format!("{}://{host}:{port}", url.scheme()).into(),
            uri,
            origin,
            host: HeaderValue::from_str(&host_header).map_err(|e| e.to_string())?,
        })
    }
}

/// A receiver's answer: its status and headers, and the start of its body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// At most the snippet cap, as far as it arrived before the deadline.
    pub body: Vec<u8>,
}

/// Why no answer came.
pub(crate) enum SendError {
    /// The deadline passed before the answer's head arrived.
    Timeout,
    /// Connecting or exchanging failed.
    Failed(BoxError),
}

/// One connection: the handle that sends on it and the state machine that
/// reads and writes it (polled only by the attempt using it).
struct Conn {
    send: http1::SendRequest<Body>,
    /// `None` once it has finished (closed or failed): it is dropped then,
    /// which answers whatever still waited on it.
    conn: Option<http1::Connection<Io, Body>>,
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

#[derive(Default)]
struct Host {
    idle: Vec<Idle>,
    /// The receiver chose HTTP/2: its requests go through `shared`.
    http2: bool,
}

/// What [`Pool::take_idle`] found.
enum Taken {
    Idle(Box<Conn>),
    /// The receiver chose HTTP/2: send through hyper's pooled client.
    Http2,
    Nothing,
}

struct Hosts {
    by_key: HashMap<Arc<str>, Host>,
    swept: Instant,
}

/// The sender's connections to its receivers.
pub(crate) struct Pool {
    connector: Connector,
    shared: Shared,
    hosts: Mutex<Hosts>,
}

impl Pool {
    /// Connections with TLS by rustls and the web PKI roots (HTTP/1.1, or
    /// HTTP/2 when the receiver offers it), names resolved through the guard
    /// unless private destinations are allowed, from the configured source address.
    pub(crate) fn new(cfg: &SenderConfig) -> Self {
        let mut http = HttpConnector::new_with_resolver(Resolver {
            guarded: !cfg.allow_private_destinations,
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_local_address(cfg.bind_address);
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let shared =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector.clone());
        Self {
            connector,
            shared,
            hosts: Mutex::new(Hosts {
                by_key: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Sends a POST with `headers` and `body` to `dest` and reads the answer,
    /// its body up to `cap` bytes; the head must arrive before `deadline`,
    /// the body is read until then.
    pub(crate) async fn send(
        &self,
        dest: &Dest,
        headers: HeaderMap,
        body: Bytes,
        cap: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, SendError> {
        let mut req = post(dest.origin.clone(), headers, Full::new(body));
        req.headers_mut()
            .insert(http::header::HOST, dest.host.clone());
        let exchange = async {
            let mut retried = false;
            loop {
                let (mut conn, reused) = match self.take_idle(&dest.key).await {
                    Taken::Idle(conn) => (conn, true),
                    Taken::Http2 => return Ok(Err(req)),
                    // Boxed: the connecting state is large and rarely needed.
                    Taken::Nothing => match Box::pin(self.connect(dest)).await? {
                        Some(conn) => (conn, false),
                        None => return Ok(Err(req)),
                    },
                };
                // What a retry on a new connection would send again.
                let spare =
                    (reused && !retried).then(|| (req.headers().clone(), req.body().clone()));
                let sent = conn.send.try_send_request(req);
                match conn.drive(sent).await {
                    Ok(Ok(resp)) => return Ok(Ok((resp, conn))),
                    Ok(Err(mut e)) => match e.take_message() {
                        // The connection could not take the request: not sent.
                        Some(back) if !retried => {
                            retried = true;
                            req = back;
                        }
                        // A kept connection that the receiver closed (its
                        // keep-alive ran out) as the request went out: once
                        // more on a new connection, as curl does.
                        None if e.error().is_incomplete_message() && spare.is_some() => {
                            let (headers, body) = spare.expect("checked");
                            retried = true;
                            req = post(dest.origin.clone(), headers, body);
                        }
                        _ => return Err(SendError::Failed(e.into_error().into())),
                    },
                    Err(closed) => return Err(SendError::Failed(closed)),
                }
            }
        };
        // One timer for the head and the body.
        let mut timer = pin!(tokio::time::sleep_until(deadline));
        let (resp, conn) = match before(timer.as_mut(), exchange).await {
            None => return Err(SendError::Timeout),
            Some(Err(e)) => return Err(e),
            Some(Ok(Ok(sent))) => sent,
            // The receiver chose HTTP/2.
            Some(Ok(Err(mut req))) => {
                *req.uri_mut() = dest.uri.clone();
                req.headers_mut().remove(http::header::HOST);
                return Box::pin(self.send_shared(req, cap, deadline)).await;
            }
        };
        let (answer, conn) = answer(resp, Some(conn), cap, timer).await;
        if let Some(conn) = conn {
            self.put(&dest.key, conn);
        }
        Ok(answer)
    }

    /// Sends through hyper's pooled client (receivers that chose HTTP/2).
    async fn send_shared(
        &self,
        req: Request<Body>,
        cap: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, SendError> {
        let mut timer = pin!(tokio::time::sleep_until(deadline));
        let resp = before(timer.as_mut(), self.shared.request(req))
            .await
            .ok_or(SendError::Timeout)?
            .map_err(|e| SendError::Failed(e.into()))?;
        Ok(answer(resp, None, cap, timer).await.0)
    }

    /// The most recently used idle connection to `key` that is still open
    /// and ready for a request; the others it passes over are closed.
    async fn take_idle(&self, key: &str) -> Taken {
        loop {
            let idle = {
                let mut hosts = self.hosts.lock().expect("pool lock");
                match hosts.by_key.get_mut(key) {
                    None => return Taken::Nothing,
                    Some(host) if host.http2 => return Taken::Http2,
                    Some(host) => match host.idle.pop() {
                        None => return Taken::Nothing,
                        Some(idle) => idle,
                    },
                }
            };
            let mut conn = idle.conn;
            if idle.since.elapsed() < IDLE_TIMEOUT && conn.poll_ready_once().await {
                return Taken::Idle(conn);
            }
        }
    }

    /// A new connection to `dest`; `None` when the receiver chose HTTP/2
    /// (remembered, and the connection closed).
    async fn connect(&self, dest: &Dest) -> Result<Option<Box<Conn>>, SendError> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Failed)?;
        let io = connector
            .call(dest.uri.clone())
            .await
            .map_err(SendError::Failed)?;
        if io.connected().is_negotiated_h2() {
            let mut hosts = self.hosts.lock().expect("pool lock");
            hosts.by_key.entry(dest.key.clone()).or_default().http2 = true;
            return Ok(None);
        }
        let (send, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| SendError::Failed(e.into()))?;
        Ok(Some(Box::new(Conn {
            send,
            conn: Some(conn),
        })))
    }

    /// Keeps a connection whose last answer was read to its end.
    fn put(&self, key: &Arc<str>, conn: Box<Conn>) {
        let now = Instant::now();
        let mut closed = Vec::new();
        {
            let mut hosts = self.hosts.lock().expect("pool lock");
            let host = hosts.by_key.entry(key.clone()).or_default();
            host.idle.push(Idle { conn, since: now });
            if host.idle.len() > MAX_IDLE_PER_HOST {
                closed.push(host.idle.remove(0));
            }
            if now.duration_since(hosts.swept) >= SWEEP_EVERY {
                hosts.swept = now;
                for host in hosts.by_key.values_mut() {
                    let keep = host
                        .idle
                        .iter()
                        .position(|i| i.since.elapsed() < IDLE_TIMEOUT);
                    closed.extend(host.idle.drain(..keep.unwrap_or(host.idle.len())));
                }
                hosts.by_key.retain(|_, h| h.http2 || !h.idle.is_empty());
            }
        }
        // Closing sockets is left until the lock is released.
        drop(closed);
    }
}

impl Conn {
    /// Polls `fut` and, while it waits, the connection it waits on.
    /// Fails when the connection finishes and `fut` is still waiting.
    async fn drive<F: Future>(&mut self, fut: F) -> Result<F::Output, BoxError> {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(Err("the connection was closed".into()));
            };
            let Poll::Ready(end) = Pin::new(conn).poll(cx) else {
                return Poll::Pending;
            };
            // Dropping the finished connection answers a request still
            // queued on it (with the request, unsent) and ends a body.
            self.conn = None;
            match (fut.as_mut().poll(cx), end) {
                (Poll::Ready(v), _) => Poll::Ready(Ok(v)),
                (Poll::Pending, Err(e)) => Poll::Ready(Err(e.into())),
                (Poll::Pending, Ok(())) => {
                    Poll::Ready(Err("the receiver closed the connection".into()))
                }
            }
        })
        .await
    }

    /// Lets the connection catch up on what arrived while it was idle (the
    /// receiver closing it, say) and tells whether it can take a request.
    async fn poll_ready_once(&mut self) -> bool {
        poll_fn(|cx| {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(false);
            };
            if Pin::new(conn).poll(cx).is_ready() {
                self.conn = None;
                return Poll::Ready(false);
            }
            Poll::Ready(matches!(self.send.poll_ready(cx), Poll::Ready(Ok(()))))
        })
        .await
    }
}

fn post(uri: Uri, headers: HeaderMap, body: Body) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req
}

/// `fut`'s output, or `None` when `timer` fires first.
async fn before<F: Future>(mut timer: Pin<&mut Sleep>, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// The answer's head and up to `cap` bytes of its body, read until `timer` fires
/// (driving `conn` when it is the attempt's own); the connection comes back
/// when the body was read to its end and it can take another request.
async fn answer(
    resp: Response<Incoming>,
    mut conn: Option<Box<Conn>>,
    cap: usize,
    timer: Pin<&mut Sleep>,
) -> (Answer, Option<Box<Conn>>) {
    let (parts, mut body) = resp.into_parts();
    let mut buf = Vec::new();
    let read = async {
        while buf.len() < cap {
            let frame = match conn.as_mut() {
                Some(c) => match c.drive(body.frame()).await {
                    Ok(frame) => frame,
                    Err(err) => {
                        tracing::debug!(error = %err, "response body cut short");
                        return false;
                    }
                },
                None => body.frame().await,
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Some(chunk) = frame.data_ref() {
                        let take = chunk.len().min(cap - buf.len());
                        buf.extend_from_slice(&chunk[..take]);
                    }
                }
                None => return true,
                Some(Err(err)) => {
                    // The status already arrived; a broken body only shortens the snippet.
                    tracing::debug!(error = %err, "response body cut short");
                    return false;
                }
            }
        }
        body.is_end_stream()
    };
    let ended = match before(timer, read).await {
        Some(ended) => ended,
        None => {
            tracing::debug!("response body cut short by the timeout");
            false
        }
    };
    let mut reusable = None;
    if let Some(mut c) = conn.filter(|_| ended) {
        if c.poll_ready_once().await {
            reusable = Some(c);
        }
    }
    let answer = Answer {
        status: parts.status,
        headers: parts.headers,
        body: buf,
    };
    (answer, reusable)
}

/// Names resolved by the destination guard, or by the system when private
/// destinations are allowed.
#[derive(Clone)]
struct Resolver {
    guarded: bool,
}

impl Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guarded = self.guarded;
        Box::pin(async move {
            let host = name.as_str();
            let addrs: Vec<SocketAddr> = if guarded {
                allowed_addrs(host).await?
            } else {
                tokio::net::lookup_host((host, 0)).await?.collect()
            };
            Ok(addrs.into_iter())
        })
    }
}
