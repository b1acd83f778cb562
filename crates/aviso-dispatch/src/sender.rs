//! The HTTP sender: one pooled client, signing, receiver auth, the destination
//! guard, and the classification of every way a request can fail.

use crate::config::SenderConfig;
use crate::guard::{check_name, is_forbidden, BlockedDestination, GuardedResolver};
use crate::pool::{Answer, Dest, Pool, SendError};
use aviso_core::model::{Attempt, AttemptError, Endpoint};
use aviso_core::signing::signature_header;
use aviso_core::{AttemptId, Timestamp};
use aviso_store::DispatchJob;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

/// Most response headers kept per attempt.
const MAX_RESPONSE_HEADERS: usize = 50;
/// Longest `error_detail` kept.
const MAX_DETAIL: usize = 300;

/// Sends one attempt of a delivery and describes what happened.
#[derive(Clone)]
pub struct Sender {
    http: Http,
    cfg: Arc<SenderConfig>,
}

/// An endpoint prepared for sending (see [`Sender::target`]).
pub struct Target {
    endpoint: Arc<Endpoint>,
    /// Where requests go, or why the URL cannot be sent to.
    dest: Result<Dest, String>,
    headers: HeaderMap,
}

impl Target {
    /// The endpoint this target was prepared from.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
}

/// The pooled HTTP client.
#[derive(Clone)]
enum Http {
    /// Our own connections (see `pool.rs`), names resolved through the
    /// guard: the common case, with the least work per request.
    Direct(Arc<Pool>),
    /// Through the configured egress proxy: reqwest, which speaks to proxies.
    Proxied(reqwest::Client),
}

impl Sender {
    /// Builds the pooled client; fails if the TLS backend cannot start or
    /// the configured proxy URL is invalid.
    pub fn new(cfg: SenderConfig) -> Result<Self, reqwest::Error> {
        let http = match &cfg.proxy {
            None => Http::Direct(Arc::new(Pool::new(&cfg))),
            Some(proxy) => Http::Proxied(proxied_client(&cfg, proxy)?),
        };
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
        })
    }

    /// What every request to `endpoint` shares, prepared once for this
    /// version of it: its URI, and the headers that are the same on every
    /// attempt (content type, user agent, the endpoint's own, receiver auth).
    pub fn target(&self, endpoint: Arc<Endpoint>) -> Target {
        let dest = Dest::new(endpoint.spec.url.as_url());
        let headers = static_headers(&endpoint, &self.cfg.user_agent);
        Target {
            endpoint,
            dest,
            headers,
        }
    }

    /// Sends `job` to `endpoint` once; never fails, every outcome is an [`Attempt`].
    pub async fn send(&self, endpoint: &Endpoint, job: &DispatchJob) -> Attempt {
        self.send_to(&self.target(Arc::new(endpoint.clone())), job)
            .await
    }

    /// Sends `job` to a prepared target once, as [`Sender::send`] does.
    #[tracing::instrument(level = "debug", skip_all, fields(delivery = %job.delivery, endpoint = %target.endpoint.id))]
    pub async fn send_to(&self, target: &Target, job: &DispatchJob) -> Attempt {
        let endpoint = &*target.endpoint;
        let at = Timestamp::now();
        let started = Instant::now();
        let mut attempt = Attempt {
            id: AttemptId::new(),
            delivery: job.delivery.clone(),
            at,
            duration_ms: 0,
            status_code: None,
            error: None,
            error_detail: None,
            response_headers: Vec::new(),
            response_snippet: None,
        };
        if let Err(detail) = self.check_destination(endpoint.spec.url.as_url()).await {
            attempt.error = Some(AttemptError::Blocked);
            attempt.error_detail = Some(detail);
            return attempt;
        }
        let body = bytes::Bytes::copy_from_slice(job.payload.as_bytes());
        let headers = request_headers(target, job, at, &body);
        let timeout = endpoint.spec.policy.timeout.0 .0;
        let deadline = tokio::time::Instant::now() + timeout;
        match self.request(target, headers, body, deadline).await {
            Ok(answer) => {
                let status = answer.status.as_u16();
                attempt.status_code = Some(status);
                attempt.response_headers = answer
                    .headers
                    .iter()
                    .take(MAX_RESPONSE_HEADERS)
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                attempt.response_snippet = (!answer.body.is_empty())
                    .then(|| String::from_utf8_lossy(&answer.body).into_owned());
                if !endpoint.spec.policy.success.accepts(status) {
                    attempt.error = Some(AttemptError::Status);
                    attempt.error_detail = Some(format!("status {status} is not a success status"));
                }
            }
            Err((class, detail)) => {
                attempt.error = Some(class);
                attempt.error_detail = Some(detail);
            }
        }
        attempt.duration_ms = started.elapsed().as_millis() as u64;
        attempt
    }

    /// Refuses plain http when not allowed, and IP-literal hosts the guard
    /// refuses (they never reach the resolver). Behind a proxy, which resolves
    /// names itself, names are also resolved and checked here first.
    async fn check_destination(&self, url: &url::Url) -> Result<(), String> {
        if url.scheme() != "https" && !self.cfg.allow_http {
            return Err(format!(
                "scheme `{}` is not allowed; use https",
                url.scheme()
            ));
        }
        if self.cfg.allow_private_destinations {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            Some(url::Host::Domain(name)) if self.cfg.proxy.is_some() => {
                return check_name(name).await.map_err(|e| e.to_string());
            }
            _ => return Ok(()),
        };
        if is_forbidden(ip) {
            return Err(format!("destination address {ip} is private or reserved"));
        }
        Ok(())
    }

    /// Sends the request; the answer (its body read up to the snippet cap
    /// until the deadline), or the failure's class and detail.
    async fn request(
        &self,
        target: &Target,
        headers: HeaderMap,
        body: bytes::Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, (AttemptError, String)> {
        let cap = self.cfg.response_snippet_bytes;
        match &self.http {
            Http::Direct(pool) => {
                let dest = target
                    .dest
                    .as_ref()
                    .map_err(|e| (AttemptError::Connect, e.clone()))?;
                // Boxed: the exchange holds the request, the answer and their
                // timers, which would otherwise be copied with every attempt task.
                match Box::pin(pool.send(dest, headers, body, cap, deadline)).await {
                    Ok(answer) => Ok(answer),
                    Err(SendError::Timeout) => {
                        Err((AttemptError::Timeout, "the request timed out".into()))
                    }
                    Err(SendError::Failed(err)) => Err(classify(&*err, false)),
                }
            }
            Http::Proxied(client) => {
                let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
                let mut resp = client
                    .post(target.endpoint.spec.url.as_url().clone())
                    .timeout(timeout)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|err| {
                        let timed_out = err.is_timeout();
                        classify(&err.without_url(), timed_out)
                    })?;
                let status = resp.status();
                let headers = std::mem::take(resp.headers_mut());
                let mut body = Vec::new();
                let read = async {
                    while body.len() < cap {
                        match resp.chunk().await {
                            Ok(Some(chunk)) => {
                                let take = chunk.len().min(cap - body.len());
                                body.extend_from_slice(&chunk[..take]);
                            }
                            Ok(None) => break,
                            Err(err) => {
                                // The status already arrived; a broken body only shortens the snippet.
                                tracing::debug!(error = %err.without_url(), "response body cut short");
                                break;
                            }
                        }
                    }
                };
                if tokio::time::timeout_at(deadline, read).await.is_err() {
                    tracing::debug!("response body cut short by the timeout");
                }
                Ok(Answer {
                    status,
                    headers,
                    body,
                })
            }
        }
    }
}

/// reqwest's client for sending through the egress proxy.
fn proxied_client(cfg: &SenderConfig, proxy: &str) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(cfg.user_agent.clone())
        // A proxy from the environment would resolve names itself and
        // bypass the destination guard; only the configured one is used.
        .no_proxy()
        .local_address(cfg.bind_address)
        .use_rustls_tls()
        .proxy(reqwest::Proxy::all(proxy)?);
    if !cfg.allow_private_destinations {
        let trusted = url::Url::parse(proxy)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        builder = builder.dns_resolver(Arc::new(GuardedResolver { trusted }));
    }
    builder.build()
}

/// An attempt's headers: the target's, and the Standard Webhooks id,
/// timestamp and signature of this attempt.
fn request_headers(target: &Target, job: &DispatchJob, at: Timestamp, body: &[u8]) -> HeaderMap {
    let ts = at.unix_seconds();
    let secret = target.endpoint.secrets.active(at);
    let signature = signature_header(secret, job.event.as_str(), ts, body);
    let mut h = HeaderMap::with_capacity(target.headers.len() + 3);
    for (name, value) in &target.headers {
        h.insert(name.clone(), value.clone());
    }
    h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(ts));
    // Event ids and signatures are ASCII made here; the fallbacks are unreachable.
    if let Ok(v) = HeaderValue::from_str(job.event.as_str()) {
        h.insert(WEBHOOK_ID, v);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(signature)) {
        h.insert(WEBHOOK_SIGNATURE, v);
    }
    h
}

/// The headers every attempt to `endpoint` carries: content type, user
/// agent, the endpoint's extra headers, then its receiver auth.
fn static_headers(endpoint: &Endpoint, user_agent: &str) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(3 + endpoint.spec.headers.0.len());
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(ua) = HeaderValue::from_str(user_agent) {
        h.insert(http::header::USER_AGENT, ua);
    }
    let mut put = |name: &str, value: &str| match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(n), Ok(mut v)) => {
            v.set_sensitive(n == http::header::AUTHORIZATION);
            h.insert(n, v);
        }
        // Names and values are validated when the endpoint is stored.
        _ => tracing::warn!(endpoint = %endpoint.id, header = name, "skipping an invalid header"),
    };
    for (name, value) in &endpoint.spec.headers.0 {
        put(name.as_str(), value.as_str());
    }
    if let Some((name, value)) = endpoint.spec.auth.header() {
        put(&name, &value);
    }
    h
}

/// The Standard Webhooks headers, named once.
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// Maps a request error to its class and a short human detail (no URL).
fn classify(err: &(dyn StdError + 'static), timed_out: bool) -> (AttemptError, String) {
    let chain = error_chain(err);
    let detail = detail_text(&chain);
    let any = |f: &dyn Fn(&(dyn StdError + 'static)) -> bool| chain.iter().any(|e| f(*e));
    let text = chain
        .iter()
        .map(|e| e.to_string().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" | ");
    let class = if any(&|e| e.is::<BlockedDestination>()) {
        AttemptError::Blocked
    } else if timed_out || any(&|e| io_kind(e) == Some(std::io::ErrorKind::TimedOut)) {
        AttemptError::Timeout
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        AttemptError::Dns
    } else if tls_failure(&chain, &text) {
        AttemptError::Tls
    } else {
        AttemptError::Connect
    };
    (class, detail)
}

/// A TLS failure: a rustls error anywhere in the chain, or a certificate complaint.
fn tls_failure(chain: &[&(dyn StdError + 'static)], text: &str) -> bool {
    chain.iter().any(|e| e.is::<rustls::Error>()) || text.contains("certificate")
}

fn io_kind(e: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    e.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
}

/// The error and its sources. An `io::Error` wrapping another error reports
/// only that error's sources, so the wrapped error itself is followed instead
/// (that is how rustls errors arrive, inside one or two `io::Error`s).
fn error_chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = vec![err];
    let mut cur = err;
    loop {
        let inner = cur
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        let next = match inner {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => cur.source(),
        };
        match next {
            Some(e) if out.len() < 16 => {
                out.push(e);
                cur = e;
            }
            _ => return out,
        }
    }
}

/// The chain's messages joined by `: `, skipping repeats, capped in length.
fn detail_text(chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    let mut detail = parts.join(": ");
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}
