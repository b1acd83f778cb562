//! Aviso's web pages, server-rendered HTML with a little plain JavaScript,
//! everything embedded in the binary:
//!
//! - the **tenant portal** at `/portal`, entered through a signed link from
//!   `POST /v1/tenants/{t}/portal-link`; its session sees one tenant;
//! - the **admin console** at `/admin`, signed in with the admin key.
//!
//! Pages do nothing the API does not: every read and change is a request to
//! the `/v1` router inside this process, made as the session's principal
//! ([`aviso_api::auth::Acting`]), so the same validation, scoping and errors
//! apply — a form shows the API's error next to the field it names.

mod admin;
mod i18n;
mod layout;
mod tenant;

use aviso_api::auth::{Acting, Principal};
use aviso_api::signed::{Purpose, Signer};
use aviso_api::ApiState;
use aviso_core::Timestamp;
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub use i18n::Lang;

/// Renders the Prometheus text of this process's metrics (for the live view).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Settings of the web pages.
#[derive(Clone)]
pub struct PortalConfig {
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
    /// This process's metrics, for the admin live view.
    pub metrics: Option<MetricsSource>,
}

/// What every page handler gets.
#[derive(Clone)]
pub(crate) struct Web {
    api: Router,
    state: ApiState,
    cfg: PortalConfig,
}

/// `/portal…` and `/admin…`.
pub fn router(state: ApiState, cfg: PortalConfig) -> Router {
    let web = Web {
        api: aviso_api::router(state.clone()),
        state,
        cfg,
    };
    Router::new()
        .route("/portal/assets/aviso.css", get(css))
        .route("/portal/assets/aviso.js", get(js))
        .merge(tenant::routes())
        .merge(admin::routes())
        .layer(axum::middleware::map_response_with_state(
            (),
            remember_language,
        ))
        .with_state(web)
}

/// A page asked for with `?lang=pt|en` remembers the choice in a cookie.
async fn remember_language(
    axum::extract::State(()): axum::extract::State<()>,
    uri: axum::http::Uri,
    res: Response,
) -> Response {
    let q = Form::parse(uri.query().unwrap_or("").as_bytes());
    match Lang::parse(q.get("lang")) {
        Some(l) => with_cookie(
            res,
            set_cookie(
                "aviso_lang",
                l.code(),
                "/",
                Duration::from_secs(365 * 86400),
            ),
        ),
        None => res,
    }
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/aviso.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/aviso.js"),
    )
}

fn asset(ct: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, ct), (CACHE_CONTROL, "public, max-age=3600")],
        body,
    )
        .into_response()
}

/// An error answer of the API, as a page shows it.
#[derive(Debug, Clone)]
pub(crate) struct ApiFailure {
    pub status: u16,
    pub message: String,
    pub field: Option<String>,
}

impl Web {
    pub(crate) fn signer(&self) -> &Signer {
        &self.state.cfg.signer
    }

    /// One request to the `/v1` API as `who`: the JSON answer, or the API's error.
    pub(crate) async fn call(
        &self,
        who: &Principal,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = req.body(Body::from(bytes)).map_err(|e| failure(500, &e))?;
        req.extensions_mut().insert(Acting(who.clone()));
        let res = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| failure(500, &e))?;
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .map_err(|e| failure(500, &e))?;
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| failure(500, &e))?
        };
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let e = &json["error"];
        Err(ApiFailure {
            status,
            message: e["message"].as_str().unwrap_or("request failed").to_owned(),
            field: e["field"].as_str().map(str::to_owned),
        })
    }

    pub(crate) async fn get(&self, who: &Principal, path: &str) -> Result<Value, ApiFailure> {
        self.call(who, Method::GET, path, None).await
    }

    /// Every item of a paged list (`data` + `next_cursor`), up to `max`.
    pub(crate) async fn all(
        &self,
        who: &Principal,
        path: &str,
        max: usize,
    ) -> Result<Vec<Value>, ApiFailure> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=250&cursor={}", enc(c)),
                None => format!("{path}{sep}limit=250"),
            };
            let page = self.get(who, &url).await?;
            if let Some(items) = page["data"].as_array() {
                out.extend(items.iter().cloned());
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || out.len() >= max {
                return Ok(out);
            }
        }
    }
}

fn failure(status: u16, e: &dyn std::fmt::Display) -> ApiFailure {
    ApiFailure {
        status,
        message: e.to_string(),
        field: None,
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A submitted form: its fields in order (a name may repeat).
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; "" when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, scoped to `path`.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax",
        max_age.as_secs()
    ))
    .expect("cookie values are tokens")
}

/// A signed session of `purpose` for `subject`, valid for the configured time.
pub(crate) fn new_session(web: &Web, purpose: Purpose, subject: &str) -> String {
    let expires = Timestamp::now().plus(web.cfg.session_ttl);
    web.signer().issue(purpose, subject, expires)
}

/// `303 See Other` to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Marks a page as not to be stored (it may show secrets or session state).
pub(crate) fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors *; form-action 'self'",
        ),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// Adds a `Set-Cookie` header.
pub(crate) fn with_cookie(mut r: Response, c: HeaderValue) -> Response {
    r.headers_mut().append(SET_COOKIE, c);
    r
}
