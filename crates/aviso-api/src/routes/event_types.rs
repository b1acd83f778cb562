//! `/v1/event-types`: the catalogue. Everyone reads it; only the admin writes.

use super::check_text;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, JsonBody, ListArgs, QueryArgs};
use crate::ApiState;
use aviso_core::model::EventType;
use aviso_core::name::EventTypeName;
use aviso_core::Timestamp;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    name: EventTypeName,
    #[serde(default)]
    description: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    example: Option<Value>,
}

/// `null` clears a field; absent leaves it alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventType {
    description: Option<String>,
    #[serde(default, deserialize_with = "some")]
    group: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    schema: Option<Option<Value>>,
    #[serde(default, deserialize_with = "some")]
    example: Option<Option<Value>>,
    archived: Option<bool>,
}

fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check(description: &str, group: Option<&str>, schema: Option<&Value>) -> ApiResult<()> {
    check_text("description", description, 0, 4096)?;
    if let Some(g) = group {
        check_text("group", g, 1, 512)?;
        if g.split('/').any(|s| s.trim().is_empty()) {
            return Err(ApiError::invalid(
                "group is a path like `Macro/Process` with no empty parts",
            )
            .at("group"));
        }
    }
    if schema.is_some_and(|s| !s.is_object()) {
        return Err(ApiError::invalid("schema must be a JSON Schema object").at("schema"));
    }
    Ok(())
}

/// `POST /v1/event-types`.
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/event-types",
    tag = "event types",
    operation_id = "event_types_create",
    summary = "Add an event type (admin)",
    request_body(content = crate::schemas::EventTypeInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 201, description = "The event type", body = crate::schemas::EventType),
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
    p: Principal,
    JsonBody(b): JsonBody<CreateEventType>,
) -> ApiResult<(StatusCode, Json<EventType>)> {
    p.require_admin()?;
    check(&b.description, b.group.as_deref(), b.schema.as_ref())?;
    let now = Timestamp::now();
    let et = EventType {
        name: b.name,
        description: b.description,
        group: b.group,
        schema: b.schema,
        example: b.example,
        archived: false,
        created_at: now,
        updated_at: now,
    };
    let et = s.store.create_event_type(et).await?;
    Ok((StatusCode::CREATED, Json(et)))
}

/// `GET /v1/event-types`.
#[utoipa::path(
    get,
    path = "/v1/event-types",
    tag = "event types",
    operation_id = "event_types_list",
    summary = "List the event-type catalogue",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of event types", body = crate::schemas::EventTypePage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    _p: Principal,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let page = s.store.list_event_types(q.page()?).await?;
    Ok(Json(list_body(page.items, page.next)))
}

async fn load(s: &ApiState, name: &str) -> ApiResult<EventType> {
    EventTypeName::parse(name).map_err(|_| ApiError::not_found("event type"))?;
    s.store
        .get_event_type(name)
        .await
        .or_not_found("event type")
}

/// `GET /v1/event-types/{name}`.
#[utoipa::path(
    get,
    path = "/v1/event-types/{name}",
    tag = "event types",
    operation_id = "event_types_show",
    summary = "Get an event type",
    params(
        ("name" = String, Path, description = "Event type name")
    ),
    responses(
        (status = 200, description = "The event type", body = crate::schemas::EventType),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    _p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<EventType>> {
    load(&s, &name).await.map(Json)
}

/// `PATCH /v1/event-types/{name}`.
#[tracing::instrument(skip_all, fields(name = %name))]
#[utoipa::path(
    patch,
    path = "/v1/event-types/{name}",
    tag = "event types",
    operation_id = "event_types_update",
    summary = "Change an event type (admin)",
    params(
        ("name" = String, Path, description = "Event type name")
    ),
    request_body(content = crate::schemas::EventTypePatch, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The event type", body = crate::schemas::EventType),
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
    p: Principal,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<UpdateEventType>,
) -> ApiResult<Json<EventType>> {
    p.require_admin()?;
    let mut et = load(&s, &name).await?;
    if let Some(d) = b.description {
        et.description = d;
    }
    if let Some(g) = b.group {
        et.group = g;
    }
    if let Some(x) = b.schema {
        et.schema = x;
    }
    if let Some(x) = b.example {
        et.example = x;
    }
    if let Some(a) = b.archived {
        et.archived = a;
    }
    check(&et.description, et.group.as_deref(), et.schema.as_ref())?;
    et.updated_at = Timestamp::now();
    let et = s
        .store
        .update_event_type(et)
        .await
        .or_not_found("event type")?;
    s.catalog.event_types_changed();
    Ok(Json(et))
}

/// `DELETE /v1/event-types/{name}`: archives the type (events keep referring to it).
#[utoipa::path(
    delete,
    path = "/v1/event-types/{name}",
    tag = "event types",
    operation_id = "event_types_archive",
    summary = "Archive an event type (admin)",
    params(
        ("name" = String, Path, description = "Event type name")
    ),
    responses(
        (status = 204, description = "Archived"),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn archive(
    State(s): State<ApiState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    p.require_admin()?;
    let mut et = load(&s, &name).await?;
    et.archived = true;
    et.updated_at = Timestamp::now();
    s.store
        .update_event_type(et)
        .await
        .or_not_found("event type")?;
    s.catalog.event_types_changed();
    Ok(StatusCode::NO_CONTENT)
}
