//! `POST /v1/tenants/{tenant}/portal-link`: a short-lived signed link into the
//! tenant portal (`/portal`) for one tenant, for the platform's backend to
//! redirect its logged-in customer to (or embed).

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::OptionalJson;
use crate::signed::Purpose;
use crate::ApiState;
use aviso_core::{Dur, Timestamp};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// Shortest and longest life of a link.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// How long the link may be used, and the portal's language.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ttl": "15m", "lang": "pt"}))]
pub struct LinkRequest {
    /// How long the link can be opened: `1m` to `24h`, default `15m`. The
    /// portal session it opens lasts `portal.session_ttl` from then.
    #[schema(value_type = Option<String>, example = "15m")]
    ttl: Option<Dur>,
    /// `pt` or `en`; the visitor can switch later. Default: the browser's.
    #[schema(pattern = "^(pt|en)$")]
    lang: Option<String>,
}

/// A link into the tenant portal.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/portal/enter?token=ten_01JD5X8R6Q0000000000000000.1795406193.5lEYT2AQqEMS.SMlKHkQ1cHr", "path": "/portal/enter?token=ten_01JD5X8R6Q0000000000000000.1795406193.5lEYT2AQqEMS.SMlKHkQ1cHr", "tenant": "ten_01JD5X8R6Q0000000000000000", "expires_at": "2026-11-23T10:15:00.000Z"}))]
pub struct PortalLink {
    /// Open this (absolute when `portal.public_url` is set, else built from
    /// the request's `Host`).
    #[schema(example = "https://hooks.example.com/portal/enter?token=ten_01J…")]
    url: String,
    /// The same link, relative to Aviso's address.
    #[schema(example = "/portal/enter?token=ten_01J…")]
    path: String,
    /// The tenant it opens.
    #[schema(example = "ten_01JD5X0000000000000000000")]
    tenant: String,
    /// After this the link is refused.
    #[schema(format = DateTime)]
    expires_at: String,
}

/// `POST /v1/tenants/{tenant}/portal-link`.
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/portal-link",
    tag = "portal",
    operation_id = "portal_link_create",
    summary = "A short-lived signed link into the tenant portal, for one tenant",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")),
    request_body(content = Option<LinkRequest>, content_type = "application/json", description = "Optional"),
    responses(
        (status = 201, description = "The link", body = PortalLink),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such tenant for this key", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    OptionalJson(b): OptionalJson<LinkRequest>,
) -> ApiResult<(StatusCode, Json<PortalLink>)> {
    let t = p.tenant_view(&s, &tenant).await?;
    let ttl = b.ttl.map(Dur::get).unwrap_or(DEFAULT_TTL);
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid("ttl must be between 1m and 24h").at("ttl"));
    }
    let lang = match b.lang.as_deref() {
        None => None,
        Some(l @ ("pt" | "en")) => Some(l),
        Some(_) => return Err(ApiError::invalid("lang must be `pt` or `en`").at("lang")),
    };
    let expires = Timestamp::now().plus(ttl);
    let token = s
        .cfg
        .signer
        .issue(Purpose::PortalLink, t.id.as_str(), expires);
    let mut path = format!("/portal/enter?token={token}");
    if let Some(l) = lang {
        path.push_str("&lang=");
        path.push_str(l);
    }
    let base = match &s.cfg.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(PortalLink {
            url: format!("{base}{path}"),
            path,
            tenant: t.id.to_string(),
            expires_at: expires.to_rfc3339(),
        }),
    ))
}
