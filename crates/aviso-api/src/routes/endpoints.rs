//! `/v1/tenants/{tenant}/endpoints`: subscriptions, their secrets and policies.

use super::check_text;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, parse_json, JsonBody, ListArgs, OptionalJson, QueryArgs};
use crate::views::EndpointView;
use crate::ApiState;
use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::{Endpoint, EndpointSecrets, EndpointSpec, Tenant};
use aviso_core::name::EventTypePattern;
use aviso_core::policy::PolicyInput;
use aviso_core::signing::SigningSecret;
use aviso_core::url::EndpointUrl;
use aviso_core::{Dur, EndpointId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// An endpoint as written by a client (create, replace, and patch after merging).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    url: EndpointUrl,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_types: Vec<EventTypePattern>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    auth: ReceiverAuth,
    #[serde(default)]
    headers: Headers,
    #[serde(default)]
    filter: PayloadFilter,
    #[serde(default)]
    policy: PolicyInput,
    /// Only on create: bring your own signing secret.
    #[serde(default)]
    secret: Option<SigningSecret>,
}

fn yes() -> bool {
    true
}

/// Turns input into a spec, checking what needs the server's settings or the catalogue.
async fn spec_of(
    s: &ApiState,
    input: EndpointInput,
) -> ApiResult<(EndpointSpec, Option<SigningSecret>)> {
    if !input.url.is_https() && !s.cfg.allow_http {
        return Err(
            ApiError::invalid("URL must use https (this server does not allow http)").at("url"),
        );
    }
    check_text("description", &input.description, 0, 4096)?;
    input
        .auth
        .check()
        .map_err(|e| ApiError::invalid(e.to_string()).at("auth"))?;
    if input.event_types.len() > 256 {
        return Err(ApiError::invalid("at most 256 event types").at("event_types"));
    }
    for (i, p) in input.event_types.iter().enumerate() {
        if let EventTypePattern::Exact(name) = p {
            s.catalog
                .event_type(s.store.as_ref(), name.as_str())
                .await
                .or_not_found("event type")
                .map_err(|_| {
                    ApiError::invalid(format!("unknown event type `{name}`"))
                        .at(format!("event_types[{i}]"))
                })?;
        }
    }
    let policy = input
        .policy
        .resolve(&s.cfg.default_policy)
        .map_err(|e| ApiError::invalid(e.to_string()).at("policy.retry"))?;
    let spec = EndpointSpec {
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        enabled: input.enabled,
        auth: input.auth,
        headers: input.headers,
        filter: input.filter,
        policy,
    };
    Ok((spec, input.secret))
}

async fn load(s: &ApiState, p: &Principal, t: &str, ep: &str) -> ApiResult<(Tenant, Endpoint)> {
    let tenant = p.tenant(s, t).await?;
    let id = EndpointId::parse(ep).map_err(|_| ApiError::not_found("endpoint"))?;
    let ep = s
        .store
        .get_endpoint(&tenant.id, &id)
        .await
        .or_not_found("endpoint")?;
    Ok((tenant, ep))
}

/// `POST …/endpoints`: answers with the signing secret.
#[tracing::instrument(skip_all, fields(tenant = %t))]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    JsonBody(input): JsonBody<EndpointInput>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    let tenant = p.tenant(&s, &t).await?;
    let (spec, secret) = spec_of(&s, input).await?;
    let now = Timestamp::now();
    let ep = Endpoint {
        id: EndpointId::new(),
        tenant: tenant.id,
        spec,
        secrets: EndpointSecrets::new(secret.unwrap_or_else(SigningSecret::generate)),
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    let ep = s.store.create_endpoint(ep).await?;
    Ok((StatusCode::CREATED, Json(EndpointView::with_secret(&ep))))
}

/// `GET …/endpoints`.
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let tenant = p.tenant(&s, &t).await?;
    let page = s.store.list_endpoints(&tenant.id, q.page()?).await?;
    let items: Vec<_> = page.items.iter().map(EndpointView::of).collect();
    Ok(Json(list_body(items, page.next)))
}

/// `GET …/endpoints/{ep}`.
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
) -> ApiResult<Json<EndpointView>> {
    let (_, ep) = load(&s, &p, &t, &ep).await?;
    Ok(Json(EndpointView::of(&ep)))
}

async fn save(
    s: &ApiState,
    mut ep: Endpoint,
    input: EndpointInput,
) -> ApiResult<Json<EndpointView>> {
    if input.secret.is_some() {
        return Err(ApiError::invalid("change the secret with POST …/secret/rotate").at("secret"));
    }
    let (spec, _) = spec_of(s, input).await?;
    if spec.enabled && !ep.spec.enabled {
        ep.disabled_reason = None;
    }
    ep.spec = spec;
    ep.updated_at = Timestamp::now();
    let ep = s.store.update_endpoint(ep).await.or_not_found("endpoint")?;
    if let Some(d) = &s.dispatch {
        d.invalidate_endpoint(&ep.id);
    }
    Ok(Json(EndpointView::of(&ep)))
}

/// `PUT …/endpoints/{ep}`: replaces the configuration; the secret stays.
#[tracing::instrument(skip_all, fields(tenant = %t, endpoint = %ep))]
pub async fn replace(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
    JsonBody(input): JsonBody<EndpointInput>,
) -> ApiResult<Json<EndpointView>> {
    let (_, ep) = load(&s, &p, &t, &ep).await?;
    save(&s, ep, input).await
}

/// `PATCH …/endpoints/{ep}`: changes only the fields given (`policy` field by field).
#[tracing::instrument(skip_all, fields(tenant = %t, endpoint = %ep))]
pub async fn update(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
    JsonBody(patch): JsonBody<serde_json::Map<String, Value>>,
) -> ApiResult<Json<EndpointView>> {
    let (_, ep) = load(&s, &p, &t, &ep).await?;
    let sp = &ep.spec;
    let mut doc = json!({
        "url": sp.url, "description": sp.description, "event_types": sp.event_types,
        "enabled": sp.enabled, "auth": sp.auth, "headers": sp.headers, "filter": sp.filter,
        "policy": sp.policy,
    });
    for (k, v) in patch {
        match (k.as_str(), doc.get_mut(&k), v) {
            ("policy", Some(Value::Object(cur)), Value::Object(new)) => cur.extend(new),
            (_, _, v) => {
                doc[&k] = v;
            }
        }
    }
    let input: EndpointInput = parse_json(doc.to_string().as_bytes())?;
    save(&s, ep, input).await
}

/// `DELETE …/endpoints/{ep}`: with its deliveries.
#[tracing::instrument(skip_all, fields(tenant = %t, endpoint = %ep))]
pub async fn delete(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (tenant, ep) = load(&s, &p, &t, &ep).await?;
    s.store
        .delete_endpoint(&tenant.id, &ep.id)
        .await
        .or_not_found("endpoint")?;
    if let Some(d) = &s.dispatch {
        d.invalidate_endpoint(&ep.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/endpoints/{ep}/secret`: the current signing secret.
pub async fn secret(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, ep) = load(&s, &p, &t, &ep).await?;
    Ok(Json(json!({
        "secret": ep.secrets.current.expose(),
        "previous_expires_at": ep.secrets.previous_expires_at,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Bring your own new secret; generated when absent.
    secret: Option<SigningSecret>,
    /// How long the old secret keeps signing (default from config).
    grace: Option<Dur>,
}

/// `POST …/endpoints/{ep}/secret/rotate`: new secret; the old one signs too during the grace period.
#[tracing::instrument(skip_all, fields(tenant = %t, endpoint = %ep))]
pub async fn rotate_secret(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
    OptionalJson(b): OptionalJson<Rotate>,
) -> ApiResult<Json<EndpointView>> {
    let (_, mut ep) = load(&s, &p, &t, &ep).await?;
    let now = Timestamp::now();
    let grace = b.grace.unwrap_or(s.cfg.secret_rotation_grace);
    let new = b.secret.unwrap_or_else(SigningSecret::generate);
    let old = std::mem::replace(&mut ep.secrets.current, new);
    ep.secrets.previous = Some(old);
    ep.secrets.previous_expires_at = Some(now.plus(grace.get()));
    ep.updated_at = now;
    let ep = s.store.update_endpoint(ep).await.or_not_found("endpoint")?;
    if let Some(d) = &s.dispatch {
        d.invalidate_endpoint(&ep.id);
    }
    Ok(Json(EndpointView::with_secret(&ep)))
}
