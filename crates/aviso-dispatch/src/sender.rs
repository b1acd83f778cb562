//! The HTTP sender: one pooled client, signing, receiver auth, the destination
//! guard, and the classification of every way a request can fail.

use crate::config::SenderConfig;
use crate::guard::{check_name, is_forbidden, BlockedDestination, GuardedResolver};
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
    client: reqwest::Client,
    cfg: Arc<SenderConfig>,
}

impl Sender {
    /// Builds the pooled client; fails if the TLS backend cannot start or
    /// the configured proxy URL is invalid.
    pub fn new(cfg: SenderConfig) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(cfg.user_agent.clone())
            // A proxy from the environment would resolve names itself and
            // bypass the destination guard; only the configured one is used.
            .no_proxy()
            .local_address(cfg.bind_address)
            .use_rustls_tls();
        if let Some(proxy) = &cfg.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        if !cfg.allow_private_destinations {
            let trusted = cfg
                .proxy
                .as_deref()
                .and_then(|p| url::Url::parse(p).ok())
                .and_then(|u| u.host_str().map(str::to_owned));
            builder = builder.dns_resolver(Arc::new(GuardedResolver { trusted }));
        }
        Ok(Self {
            client: builder.build()?,
            cfg: Arc::new(cfg),
        })
    }

    /// Sends `job` to `endpoint` once; never fails, every outcome is an [`Attempt`].
    #[tracing::instrument(level = "debug", skip_all, fields(delivery = %job.delivery, endpoint = %endpoint.id))]
    pub async fn send(&self, endpoint: &Endpoint, job: &DispatchJob) -> Attempt {
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
        let headers = request_headers(endpoint, job, at, &body);
        let request = self
            .client
            .post(endpoint.spec.url.as_url().clone())
            .timeout(endpoint.spec.policy.timeout.0 .0)
            .headers(headers)
            .body(body);
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                attempt.status_code = Some(status);
                attempt.response_headers = resp
                    .headers()
                    .iter()
                    .take(MAX_RESPONSE_HEADERS)
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                attempt.response_snippet = self.read_snippet(resp).await;
                if !endpoint.spec.policy.success.accepts(status) {
                    attempt.error = Some(AttemptError::Status);
                    attempt.error_detail = Some(format!("status {status} is not a success status"));
                }
            }
            Err(err) => {
                let (class, detail) = classify(err);
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

    /// Reads the body chunk by chunk until the snippet cap, then stops reading.
    async fn read_snippet(&self, mut resp: reqwest::Response) -> Option<String> {
        let cap = self.cfg.response_snippet_bytes;
        let mut buf: Vec<u8> = Vec::new();
        while buf.len() < cap {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(cap - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                Err(err) => {
                    // The status already arrived; a broken body only shortens the snippet.
                    tracing::debug!(error = %err.without_url(), "response body cut short");
                    break;
                }
            }
        }
        (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The signed request headers: Standard Webhooks, receiver auth, extras.
fn request_headers(
    endpoint: &Endpoint,
    job: &DispatchJob,
    at: Timestamp,
    body: &[u8],
) -> HeaderMap {
    let ts = at.unix_seconds();
    let signature = signature_header(endpoint.secrets.active(at), job.event.as_str(), ts, body);
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
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
    put("webhook-id", job.event.as_str());
    put("webhook-timestamp", &ts.to_string());
    put("webhook-signature", &signature);
    for (name, value) in &endpoint.spec.headers.0 {
        put(name.as_str(), value.as_str());
    }
    if let Some((name, value)) = endpoint.spec.auth.header() {
        put(&name, &value);
    }
    h
}

/// Maps a request error to its class and a short human detail (no URL).
fn classify(err: reqwest::Error) -> (AttemptError, String) {
    let err = err.without_url();
    let chain = error_chain(&err);
    let detail = detail_text(&chain);
    let any = |f: &dyn Fn(&(dyn StdError + 'static)) -> bool| chain.iter().any(|e| f(*e));
    let text = chain
        .iter()
        .map(|e| e.to_string().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" | ");
    let class = if any(&|e| e.is::<BlockedDestination>()) {
        AttemptError::Blocked
    } else if err.is_timeout() || any(&|e| io_kind(e) == Some(std::io::ErrorKind::TimedOut)) {
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
