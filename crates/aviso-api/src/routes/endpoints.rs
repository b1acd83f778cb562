//! Endpoints: subscriptions, their secrets and policies. The same handlers
//! serve a tenant's endpoints (`/v1/tenants/{tenant}/endpoints`) and a
//! partner's (`/v1/partners/{partner}/endpoints`), which also say which of
//! the partner's tenants they cover.

use super::check_text;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, parse_json, JsonBody, ListArgs, OptionalJson, QueryArgs};
use crate::scope::Scope;
use crate::views::EndpointView;
use crate::ApiState;
use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::{Coverage, Endpoint, EndpointOwner, EndpointSecrets, EndpointSpec, Owner};
use aviso_core::name::EventTypePattern;
use aviso_core::policy::PolicyInput;
use aviso_core::signing::SigningSecret;
use aviso_core::url::EndpointUrl;
use aviso_core::{Dur, EndpointId, Timestamp};
use aviso_store::StoreError;
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
    /// Partner endpoints: the covered tenants (ids or uids), each the partner's.
    #[serde(default)]
    tenants: Option<Vec<String>>,
    /// Partner endpoints: cover every tenant of the partner, present and future.
    #[serde(default)]
    all_tenants: Option<bool>,
}

/// `…/endpoints/{ep}`.
#[derive(Deserialize)]
pub struct EpPath {
    pub(crate) ep: String,
}

/// Most tenants a partner endpoint lists.
const MAX_COVERED: usize = 10_000;

/// Who owns the endpoint described by `input` in this scope.
async fn owner_of(s: &ApiState, owner: &Owner, input: &EndpointInput) -> ApiResult<EndpointOwner> {
    let partner = match owner {
        Owner::Tenant(t) => {
            if input.tenants.is_some() || input.all_tenants.is_some() {
                return Err(ApiError::invalid(
                    "only partner endpoints cover tenants; a tenant endpoint gets its own tenant's events",
                )
                .at("tenants"));
            }
            return Ok(EndpointOwner::Tenant(t.clone()));
        }
        Owner::Partner(p) => p,
    };
    let covers = match (&input.tenants, input.all_tenants.unwrap_or(false)) {
        (Some(_), true) => {
            return Err(
                ApiError::invalid("give either `tenants` or `all_tenants: true`, not both")
                    .at("all_tenants"),
            )
        }
        (None, true) => Coverage::AllTenants,
        (None, false) => {
            return Err(ApiError::invalid(
                "a partner endpoint needs `tenants` (a list) or `all_tenants: true`",
            )
            .at("tenants"))
        }
        (Some(list), false) => {
            if list.is_empty() || list.len() > MAX_COVERED {
                return Err(ApiError::invalid(format!(
                    "`tenants` must list 1 to {MAX_COVERED} tenants"
                ))
                .at("tenants"));
            }
            let mut ids = Vec::with_capacity(list.len());
            for (i, t) in list.iter().enumerate() {
                let not_ours = || {
                    ApiError::invalid(format!("`{t}` is not a tenant of partner `{partner}`"))
                        .at(format!("tenants[{i}]"))
                };
                let tenant = s
                    .catalog
                    .tenant(s.store.as_ref(), t)
                    .await
                    .map_err(|_| not_ours())?;
                if tenant.partner.as_ref() != Some(partner) {
                    return Err(not_ours());
                }
                ids.push(tenant.id.clone());
            }
            ids.sort();
            ids.dedup();
            Coverage::Tenants(ids)
        }
    };
    Ok(EndpointOwner::Partner {
        partner: partner.clone(),
        covers,
    })
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

/// A store error about an endpoint write (`Invalid` is about its tenant list).
fn endpoint_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::invalid(m).at("tenants"),
        StoreError::NotFound => ApiError::not_found("endpoint"),
        e => e.into(),
    }
}

/// One endpoint of the scope's owner; 404 otherwise.
pub(crate) async fn load(s: &ApiState, sc: &Scope, ep: &str) -> ApiResult<Endpoint> {
    let id = EndpointId::parse(ep).map_err(|_| ApiError::not_found("endpoint"))?;
    s.store
        .get_endpoint(&sc.owner, &id)
        .await
        .or_not_found("endpoint")
}

/// `POST …/endpoints`: answers with the signing secret.
#[tracing::instrument(skip_all, fields(owner = %sc.owner))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints",
    tag = "endpoints",
    operation_id = "endpoints_create",
    summary = "Create an endpoint (the answer holds its signing secret)",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")
    ),
    request_body(content = crate::schemas::EndpointInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 201, description = "The endpoint", body = crate::schemas::Endpoint),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 409, description = "Conflict with the current state", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn create(
    State(s): State<ApiState>,
    sc: Scope,
    JsonBody(input): JsonBody<EndpointInput>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    let owner = owner_of(&s, &sc.owner, &input).await?;
    let (spec, secret) = spec_of(&s, input).await?;
    let now = Timestamp::now();
    let ep = Endpoint {
        id: EndpointId::new(),
        owner,
        spec,
        secrets: EndpointSecrets::new(secret.unwrap_or_else(SigningSecret::generate)),
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    let ep = s.store.create_endpoint(ep).await.map_err(endpoint_err)?;
    Ok((StatusCode::CREATED, Json(EndpointView::with_secret(&ep))))
}

/// `GET …/endpoints`.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints",
    tag = "endpoints",
    operation_id = "endpoints_list",
    summary = "List endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of endpoints", body = crate::schemas::EndpointPage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    sc: Scope,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let page = s.store.list_endpoints(&sc.owner, q.page()?).await?;
    let items: Vec<_> = page.items.iter().map(EndpointView::of).collect();
    Ok(Json(list_body(items, page.next)))
}

/// `GET …/endpoints/{ep}`.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}",
    tag = "endpoints",
    operation_id = "endpoints_show",
    summary = "Get an endpoint",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    responses(
        (status = 200, description = "The endpoint", body = crate::schemas::Endpoint),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
) -> ApiResult<Json<EndpointView>> {
    let ep = load(&s, &sc, &p.ep).await?;
    Ok(Json(EndpointView::of(&ep)))
}

async fn save(
    s: &ApiState,
    sc: &Scope,
    mut ep: Endpoint,
    input: EndpointInput,
) -> ApiResult<Json<EndpointView>> {
    if input.secret.is_some() {
        return Err(ApiError::invalid("change the secret with POST …/secret/rotate").at("secret"));
    }
    ep.owner = owner_of(s, &sc.owner, &input).await?;
    let (spec, _) = spec_of(s, input).await?;
    if spec.enabled && !ep.spec.enabled {
        ep.disabled_reason = None;
    }
    ep.spec = spec;
    ep.updated_at = Timestamp::now();
    let ep = s.store.update_endpoint(ep).await.map_err(endpoint_err)?;
    if let Some(d) = &s.dispatch {
        d.invalidate_endpoint(&ep.id);
    }
    Ok(Json(EndpointView::of(&ep)))
}

/// `PUT …/endpoints/{ep}`: replaces the configuration; the secret stays.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/endpoints/{ep}",
    tag = "endpoints",
    operation_id = "endpoints_replace",
    summary = "Replace an endpoint configuration (the secret stays)",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::EndpointInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The endpoint", body = crate::schemas::Endpoint),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 409, description = "Conflict with the current state", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn replace(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    JsonBody(input): JsonBody<EndpointInput>,
) -> ApiResult<Json<EndpointView>> {
    let ep = load(&s, &sc, &p.ep).await?;
    save(&s, &sc, ep, input).await
}

/// `PATCH …/endpoints/{ep}`: changes only the fields given (`policy` field by field).
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/endpoints/{ep}",
    tag = "endpoints",
    operation_id = "endpoints_update",
    summary = "Change some fields of an endpoint",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::EndpointPatch, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The endpoint", body = crate::schemas::Endpoint),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 409, description = "Conflict with the current state", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn update(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    JsonBody(patch): JsonBody<serde_json::Map<String, Value>>,
) -> ApiResult<Json<EndpointView>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let sp = &ep.spec;
    let mut doc = json!({
        "url": sp.url, "description": sp.description, "event_types": sp.event_types,
        "enabled": sp.enabled, "auth": sp.auth, "headers": sp.headers, "filter": sp.filter,
        "policy": sp.policy,
    });
    if let EndpointOwner::Partner { covers, .. } = &ep.owner {
        match covers {
            Coverage::AllTenants => doc["all_tenants"] = json!(true),
            Coverage::Tenants(list) => doc["tenants"] = json!(list),
        }
    }
    for (k, v) in patch {
        match (k.as_str(), doc.get_mut(&k), v) {
            ("policy", Some(Value::Object(cur)), Value::Object(new)) => cur.extend(new),
            // Coverage is one choice: setting one side clears the other.
            ("tenants", _, v) => {
                doc.as_object_mut().map(|d| d.remove("all_tenants"));
                doc["tenants"] = v;
            }
            ("all_tenants", _, v) => {
                doc.as_object_mut().map(|d| d.remove("tenants"));
                doc["all_tenants"] = v;
            }
            (_, _, v) => {
                doc[&k] = v;
            }
        }
    }
    let input: EndpointInput = parse_json(doc.to_string().as_bytes())?;
    save(&s, &sc, ep, input).await
}

/// `DELETE …/endpoints/{ep}`: with its deliveries.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/endpoints/{ep}",
    tag = "endpoints",
    operation_id = "endpoints_delete",
    summary = "Delete an endpoint and its deliveries",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn delete(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
) -> ApiResult<StatusCode> {
    let ep = load(&s, &sc, &p.ep).await?;
    s.store
        .delete_endpoint(&sc.owner, &ep.id)
        .await
        .or_not_found("endpoint")?;
    if let Some(d) = &s.dispatch {
        d.invalidate_endpoint(&ep.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/endpoints/{ep}/secret`: the current signing secret.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/secret",
    tag = "endpoints",
    operation_id = "endpoints_secret",
    summary = "Reveal the signing secret",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    responses(
        (status = 200, description = "The secret", body = crate::schemas::Secret),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn secret(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
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
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/secret/rotate",
    tag = "endpoints",
    operation_id = "endpoints_rotate_secret",
    summary = "Rotate the signing secret (both sign during the grace period)",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::RotateSecret, content_type = "application/json", description = "Optional JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The new secret", body = crate::schemas::Endpoint),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 409, description = "Conflict with the current state", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn rotate_secret(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    OptionalJson(b): OptionalJson<Rotate>,
) -> ApiResult<Json<EndpointView>> {
    let mut ep = load(&s, &sc, &p.ep).await?;
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
