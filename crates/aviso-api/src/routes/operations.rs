//! Operations on an endpoint: a test send answered at once, and bulk work
//! (resend failed, send latest, replay) run in the background as tasks.

use super::endpoints::{load, EpPath};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, JsonBody, ListArgs, OptionalJson, QueryArgs};
use crate::scope::Scope;
use crate::views::{TaskView, TestView};
use crate::ApiState;
use aviso_core::model::{Endpoint, EndpointOwner, Owner};
use aviso_core::name::EventTypeName;
use aviso_core::ops::{EndpointTest, Task, TaskSpec};
use aviso_core::{DeliveryId, EventId, TaskId, TenantId, Timestamp};
use aviso_store::DispatchJob;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The type of a test send when none is chosen.
const TEST_TYPE: &str = "aviso.test";

/// `POST …/endpoints/{ep}/test` body (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// A catalogue type; its example payload is sent unless `payload` is given.
    #[serde(rename = "type", default)]
    event_type: Option<EventTypeName>,
    /// The body to send.
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

/// The payload of a test send: given, the type's catalogue example, or a
/// small `aviso.test` document.
async fn test_payload(
    s: &ApiState,
    ep: &Endpoint,
    input: TestInput,
) -> ApiResult<(EventTypeName, String)> {
    let Some(ty) = input.event_type else {
        let payload = match input.payload {
            Some(p) => p.get().to_owned(),
            None => json!({"type": TEST_TYPE, "endpoint": ep.id, "sent_at": Timestamp::now()})
                .to_string(),
        };
        let ty = EventTypeName::parse(TEST_TYPE).map_err(ApiError::internal)?;
        return Ok((ty, payload));
    };
    let et = s
        .catalog
        .event_type(s.store.as_ref(), ty.as_str())
        .await
        .map_err(|_| ApiError::invalid(format!("unknown event type `{ty}`")).at("type"))?;
    let payload = match (input.payload, &et.example) {
        (Some(p), _) => p.get().to_owned(),
        (None, Some(example)) => example.to_string(),
        (None, None) => {
            return Err(ApiError::invalid(format!(
                "event type `{ty}` has no example payload in the catalogue; send `payload`"
            ))
            .at("payload"))
        }
    };
    Ok((ty, payload))
}

/// `POST …/endpoints/{ep}/test`: one attempt now, through the same sender
/// as deliveries (destination guard, receiver auth, signing, success rule);
/// the outcome is answered and recorded. No retries.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/test",
    tag = "operations",
    operation_id = "operations_test",
    summary = "Send one test request now; the result is in the answer and recorded",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::TestInput, content_type = "application/json", description = "Optional JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The test send and its attempt", body = crate::schemas::TestResult),
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
pub async fn test(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    OptionalJson(input): OptionalJson<TestInput>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let sender = s
        .sender
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this node cannot send test requests"))?;
    let (event_type, payload) = test_payload(&s, &ep, input).await?;
    let job = DispatchJob {
        delivery: DeliveryId::new(),
        event: EventId::new(),
        endpoint: ep.id.clone(),
        // The sender reads neither; a partner endpoint's test has no tenant.
        tenant: match &ep.owner {
            EndpointOwner::Tenant(t) => t.clone(),
            EndpointOwner::Partner { .. } => TenantId::from_trusted(String::new()),
        },
        event_type: event_type.clone(),
        payload: payload.into(),
        attempts: 0,
        round_attempts: 0,
        round_started_at: Timestamp::now(),
        due_at: Timestamp::now(),
    };
    let attempt = sender.send(&ep, &job).await;
    let test = EndpointTest {
        endpoint: ep.id.clone(),
        event: job.event.clone(),
        event_type,
        payload: job.payload.clone(),
        succeeded: attempt.error.is_none(),
        attempt,
    };
    s.store.record_endpoint_test(test.clone()).await?;
    Ok(Json(json!(TestView::of(&test))))
}

/// `GET …/endpoints/{ep}/tests`: recorded test sends, newest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/tests",
    tag = "operations",
    operation_id = "operations_tests",
    summary = "Recorded test sends, newest first",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of test sends", body = crate::schemas::TestPage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn tests(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let page = s
        .store
        .list_endpoint_tests(&sc.owner, &ep.id, q.page()?)
        .await
        .or_not_found("endpoint")?;
    let items: Vec<_> = page.items.iter().map(TestView::of).collect();
    Ok(Json(list_body(items, page.next)))
}

/// The `Idempotency-Key` header, if any.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| {
            ApiError::bad_request("Idempotency-Key must be visible ASCII").at("Idempotency-Key")
        })?
        .to_owned();
    super::check_text("Idempotency-Key", &k, 1, 256)?;
    Ok(Some(k))
}

/// Queues a task on an endpoint and answers 202 with it at once; a repeat
/// with the same `Idempotency-Key` answers the first task.
async fn start(
    s: &ApiState,
    sc: &Scope,
    ep: &str,
    headers: &HeaderMap,
    spec: TaskSpec,
) -> ApiResult<Response> {
    let ep = load(s, sc, ep).await?;
    let key = idempotency_key(headers)?;
    if !ep.spec.enabled {
        return Err(ApiError::conflict(
            "the endpoint is disabled; enable it before sending to it",
        ));
    }
    let task = Task::new(sc.owner.clone(), ep.id, spec, key, Timestamp::now());
    let (task, created) = s.store.create_task(task).await?;
    if created {
        s.tasks.notify_one();
    }
    let location = format!("/v1/tasks/{}", task.id);
    let replayed = if created { "false" } else { "true" };
    Ok((
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, location),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                replayed.to_owned(),
            ),
        ],
        Json(TaskView::of(&task)),
    )
        .into_response())
}

/// `POST …/endpoints/{ep}/resend-failed` body (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResendFailedInput {
    /// Only the failed delivery of the latest event of each type.
    #[serde(default)]
    latest_per_type: bool,
}

/// `POST …/endpoints/{ep}/resend-failed`: every failed delivery goes out again.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/resend-failed",
    tag = "operations",
    operation_id = "operations_resend_failed",
    summary = "Resend every failed delivery (or the latest per type) in the background",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::ResendFailedInput, content_type = "application/json", description = "Optional JSON object (fields in docs/api.md)"),
    responses(
        (status = 202, description = "The task", body = crate::schemas::Task),
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
pub async fn resend_failed(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    headers: HeaderMap,
    OptionalJson(b): OptionalJson<ResendFailedInput>,
) -> ApiResult<Response> {
    let spec = TaskSpec::ResendFailed {
        latest_per_type: b.latest_per_type,
    };
    start(&s, &sc, &p.ep, &headers, spec).await
}

/// `POST …/endpoints/{ep}/send-latest` body (optional, empty).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SendLatestInput {}

/// `POST …/endpoints/{ep}/send-latest`: the latest event of every subscribed
/// type (of every covered tenant) is sent again.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/send-latest",
    tag = "operations",
    operation_id = "operations_send_latest",
    summary = "Send the latest event of every subscribed type again, in the background",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::SendLatestInput, content_type = "application/json", description = "Optional JSON object (fields in docs/api.md)"),
    responses(
        (status = 202, description = "The task", body = crate::schemas::Task),
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
pub async fn send_latest(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    headers: HeaderMap,
    OptionalJson(_): OptionalJson<SendLatestInput>,
) -> ApiResult<Response> {
    start(&s, &sc, &p.ep, &headers, TaskSpec::SendLatest).await
}

/// `POST …/endpoints/{ep}/replay` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    /// Window start (RFC 3339, inclusive).
    since: Timestamp,
    /// Window end (RFC 3339, exclusive); now when absent.
    #[serde(default)]
    until: Option<Timestamp>,
}

/// `POST …/endpoints/{ep}/replay`: every event in the window that matches
/// the endpoint, including those published before it existed.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, endpoint = %p.ep))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/replay",
    tag = "operations",
    operation_id = "operations_replay",
    summary = "Send every matching event of a time window, in the background",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    request_body(content = crate::schemas::ReplayInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 202, description = "The task", body = crate::schemas::Task),
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
pub async fn replay(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ReplayInput>,
) -> ApiResult<Response> {
    let until = b.until.unwrap_or_else(Timestamp::now);
    if b.since >= until {
        return Err(ApiError::invalid("`since` must be before `until`").at("since"));
    }
    let spec = TaskSpec::Replay {
        since: b.since,
        until,
    };
    start(&s, &sc, &p.ep, &headers, spec).await
}

/// `/v1/tasks/{task}`.
#[derive(Deserialize)]
pub struct TaskPath {
    task: String,
}

/// `GET /v1/tasks/{task}`: progress; only the endpoint's owner (or the admin) sees it.
#[utoipa::path(
    get,
    path = "/v1/tasks/{task}",
    tag = "operations",
    operation_id = "operations_show_task",
    summary = "Progress of a bulk operation",
    params(
        ("task" = String, Path, description = "Task id (`tsk_…`)")
    ),
    responses(
        (status = 200, description = "The task", body = crate::schemas::Task),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show_task(
    State(s): State<ApiState>,
    p: Principal,
    Path(tp): Path<TaskPath>,
) -> ApiResult<Json<TaskView>> {
    let id = TaskId::parse(&tp.task).map_err(|_| ApiError::not_found("task"))?;
    let task = s.store.get_task(&id).await.or_not_found("task")?;
    let visible = match (&p, &task.owner) {
        (Principal::Admin, _) => true,
        (Principal::Tenant(t), Owner::Tenant(o)) => t == o,
        (Principal::Partner(p), Owner::Partner(o)) => p == o,
        _ => false,
    };
    if !visible {
        return Err(ApiError::not_found("task"));
    }
    Ok(Json(TaskView::of(&task)))
}
