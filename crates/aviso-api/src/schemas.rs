//! The wire shapes of the `/v1` API for the OpenAPI document: one type per
//! request and response body, with an example each. Handlers parse into and
//! answer from their own types (with custom parsing and validation); these
//! mirror what goes over the wire. They are kept honest by schemathesis
//! (`scripts/fuzz`: every answer must match its schema) and by
//! `it::openapi` (every operation's bodies are typed and have examples).
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `{"status": "ok" | "ready" | "unavailable"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    status: String,
}

// ---------------------------------------------------------------- catalogue

/// An event type of the catalogue.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "CONTRATO.REGISTRADO", "description": "A contract was registered",
    "group": "Contratos/Registro", "schema": {"type": "object"}, "example": {"contrato": {"id": 42}},
    "archived": false, "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.000Z"}))]
pub struct EventType {
    /// Dot-separated segments of letters, digits, `_`, `-`.
    name: String,
    description: String,
    /// `Macro-process/Process`: where the portal shows it.
    group: Option<String>,
    /// A JSON Schema, kept for documentation.
    schema: Option<Value>,
    /// An example payload (test sends use it).
    example: Option<Value>,
    archived: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A new event type.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CONTRATO.REGISTRADO", "description": "A contract was registered",
    "group": "Contratos/Registro", "example": {"contrato": {"id": 42}}}))]
pub struct EventTypeInput {
    #[schema(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    example: Option<Value>,
}

/// Changes to an event type (`null` clears an optional field).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "Registered contracts", "archived": false}))]
pub struct EventTypePatch {
    description: Option<String>,
    group: Option<String>,
    schema: Option<Value>,
    example: Option<Value>,
    archived: Option<bool>,
}

// ------------------------------------------------------- tenants, partners

/// A tenant: one of the platform's customers.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "ten_01JD5X8R6Q0000000000000000", "uid": "12345678000199", "name": "Acme Energia",
    "partner": null, "metadata": {"plan": "pro"}, "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.000Z"}))]
pub struct Tenant {
    id: String,
    /// The platform's own id for it (unique).
    uid: String,
    name: String,
    /// The partner acting for it.
    partner: Option<String>,
    metadata: BTreeMap<String, Value>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A new tenant.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"uid": "12345678000199", "name": "Acme Energia", "metadata": {"plan": "pro"}}))]
pub struct TenantInput {
    #[schema(min_length = 1, max_length = 128)]
    uid: String,
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    /// `par_…` (admin; a partner key's tenants are always its own).
    #[serde(default)]
    partner: Option<String>,
}

/// Changes to a tenant (`"partner": null` detaches it from its partner).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Energia S.A."}))]
pub struct TenantPatch {
    #[schema(min_length = 1, max_length = 128)]
    uid: Option<String>,
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    partner: Option<String>,
}

/// An integrator acting for many tenants.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "par_01JD5X8R6Q0000000000000000", "name": "Integrador XYZ", "metadata": {},
    "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.000Z"}))]
pub struct Partner {
    id: String,
    name: String,
    metadata: BTreeMap<String, Value>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A new partner.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Integrador XYZ"}))]
pub struct PartnerInput {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
}

/// A new key: exactly one of `tenant` and `partner`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenant": "12345678000199", "name": "erp"}))]
pub struct KeyInput {
    /// Tenant id or uid, for a tenant key.
    tenant: Option<String>,
    /// Partner id, for a partner key.
    partner: Option<String>,
    #[schema(max_length = 256)]
    name: Option<String>,
}

/// A key, shown this once.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "key_01JD5X8R6Q0000000000000000", "key": "avk_3q2…", "name": "erp",
    "tenant": "ten_01JD5X8R6Q0000000000000000", "created_at": "2026-11-23T10:00:00.000Z"}))]
pub struct KeyCreated {
    id: String,
    /// Send as `Authorization: Bearer <key>`; only its hash is stored.
    key: String,
    name: String,
    tenant: Option<String>,
    partner: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

// ---------------------------------------------------------------- endpoints

/// How Aviso authenticates to the receiver. Read back redacted.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP Basic (request short form: `"user:pass"`).
    Basic(BasicAuth),
    /// `Authorization: Bearer <token>` (short form: the token).
    Bearer(BearerAuth),
    /// A key in a header, `Authorization` unless named (short forms:
    /// `"Name:value"` or a bare value).
    Header(HeaderAuth),
}

/// Basic credentials.
#[derive(Serialize, ToSchema)]
pub struct BasicAuth {
    username: String,
    password: String,
}

/// A bearer token.
#[derive(Serialize, ToSchema)]
pub struct BearerAuth {
    token: String,
}

/// A header and its value.
#[derive(Serialize, ToSchema)]
pub struct HeaderAuth {
    #[serde(default)]
    name: Option<String>,
    value: String,
}

/// When to try again after a failure: exactly one rule.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// The waits after each failure (`["5s", "5m", "30m"]`).
    Schedule(Vec<String>),
    /// Every `every` until `for` has passed.
    Fixed(FixedRetry),
    /// Growing waits.
    Exponential(ExponentialRetry),
}

/// A fixed interval for a while.
#[derive(Serialize, ToSchema)]
pub struct FixedRetry {
    #[schema(example = "5m")]
    every: String,
    #[serde(rename = "for")]
    #[schema(example = "24h")]
    for_: String,
}

/// Exponential backoff, bounded.
#[derive(Serialize, ToSchema)]
pub struct ExponentialRetry {
    #[schema(example = "30s")]
    initial: Option<String>,
    #[schema(example = 2.0)]
    factor: Option<f64>,
    #[schema(example = "1d")]
    max_interval: Option<String>,
    #[schema(example = 10)]
    max_attempts: Option<u32>,
    #[schema(example = "7d")]
    max_age: Option<String>,
}

/// Delivery order.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// In parallel.
    None,
    /// One at a time, in publish order.
    Fifo,
    /// In publish order per value of this JSON pointer into the payload.
    FifoKey(String),
}

/// The delivery policy as stored (every field filled).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": "2xx", "retry": {"schedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]},
    "timeout": "15s", "max_in_flight": 16, "rate_limit": null, "ordering": "none", "adaptive": true, "disable_after": "5d"}))]
pub struct Policy {
    /// Status codes and classes that count as delivered: `"2xx"`, `"201"`, `"2xx,409"`.
    success: String,
    retry: Retry,
    /// `1s` … `120s`.
    timeout: String,
    #[schema(minimum = 1, maximum = 500)]
    max_in_flight: u32,
    /// Requests per second, or `null` for no limit.
    rate_limit: Option<f64>,
    ordering: Ordering,
    adaptive: bool,
    disable_after: String,
}

/// Policy fields to set; the rest come from the server's defaults (create)
/// or stay as they are (PATCH).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"success": "201", "retry": {"fixed": {"every": "5m", "for": "24h"}}, "timeout": "15s"}))]
pub struct PolicyInput {
    success: Option<String>,
    retry: Option<Retry>,
    timeout: Option<String>,
    #[schema(minimum = 1, maximum = 500)]
    max_in_flight: Option<u32>,
    #[schema(exclusive_minimum = 0.0, maximum = 10000.0)]
    rate_limit: Option<f64>,
    ordering: Option<Ordering>,
    adaptive: Option<bool>,
    disable_after: Option<String>,
}

/// A payload predicate: exactly one of `eq`, `in`, `exists`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Predicate {
    /// Equal to this value.
    Eq(Value),
    /// One of these values.
    In(Vec<Value>),
    /// Present (`true`) or absent (`false`).
    Exists(bool),
}

/// An endpoint (webhook) as read back; `secret` only on create and rotate.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "ep_01JD5X8R6Q0000000000000000", "tenant": "ten_01JD5X8R6Q0000000000000000",
    "url": "https://erp.example.com/hooks", "description": "ERP", "event_types": ["CONTRATO.*"], "enabled": true,
    "auth": {"basic": {"username": "u", "password": "********"}}, "headers": {"X-Env": "prod"}, "filter": {},
    "policy": {"success": "2xx", "retry": {"schedule": ["5s", "5m"]}, "timeout": "15s", "max_in_flight": 16,
    "rate_limit": null, "ordering": "none", "adaptive": true, "disable_after": "5d"},
    "disabled_reason": null, "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.000Z"}))]
pub struct Endpoint {
    id: String,
    /// The owning tenant (tenant endpoints).
    tenant: Option<String>,
    /// The owning partner (partner endpoints).
    partner: Option<String>,
    /// Partner endpoints: the tenants covered, unless `all_tenants`.
    tenants: Option<Vec<String>>,
    all_tenants: Option<bool>,
    url: String,
    description: String,
    /// Names, `ENTITY.*` or `*`; empty: every type.
    event_types: Vec<String>,
    enabled: bool,
    auth: Auth,
    headers: BTreeMap<String, String>,
    /// JSON pointer → predicate; all must hold.
    filter: BTreeMap<String, Predicate>,
    policy: Policy,
    /// Why Aviso disabled it, and when.
    disabled_reason: Option<String>,
    /// The signing secret (create and rotate answers only).
    secret: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A new endpoint, or its whole configuration (PUT). Partner endpoints take
/// exactly one of `tenants` and `all_tenants`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/hooks", "description": "ERP",
    "event_types": ["CONTRATO.*"], "auth": {"basic": {"username": "u", "password": "p"}},
    "policy": {"success": "201", "retry": {"fixed": {"every": "5m", "for": "24h"}}}}))]
pub struct EndpointInput {
    /// `https` (or `http` when the server allows it), at most 2048 characters.
    #[schema(max_length = 2048)]
    url: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    auth: Option<Auth>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    filter: Option<BTreeMap<String, Predicate>>,
    #[serde(default)]
    policy: Option<PolicyInput>,
    /// `whsec_` + base64 (create only); generated when absent.
    #[serde(default)]
    secret: Option<String>,
    /// Partner endpoints: tenant ids or uids covered.
    #[serde(default)]
    tenants: Option<Vec<String>>,
    /// Partner endpoints: every tenant of the partner.
    #[serde(default)]
    all_tenants: Option<bool>,
}

/// Endpoint fields to change (`policy` field by field).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct EndpointPatch {
    #[schema(max_length = 2048)]
    url: Option<String>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
    auth: Option<Auth>,
    headers: Option<BTreeMap<String, String>>,
    filter: Option<BTreeMap<String, Predicate>>,
    policy: Option<PolicyInput>,
    tenants: Option<Vec<String>>,
    all_tenants: Option<bool>,
}

/// The signing secret.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"secret": "whsec_wpi9fm+z+S8eUV9YtK+KVw5HHPOHu3VVWqEmCxe6I6Y=", "previous_expires_at": null}))]
pub struct Secret {
    secret: String,
    /// Until when the previous secret also signs.
    #[schema(format = DateTime)]
    previous_expires_at: Option<String>,
}

/// A secret rotation (both optional).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace": "24h"}))]
pub struct RotateSecret {
    /// How long the old secret keeps signing.
    grace: Option<String>,
    /// The new secret (`whsec_` + base64); generated when absent.
    secret: Option<String>,
}

// ------------------------------------------------------------------- events

/// A publication.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "CONTRATO.REGISTRADO", "payload": {"contrato": {"id": 42}}, "idempotency_key": "contrato-42"}))]
pub struct PublishInput {
    #[serde(rename = "type")]
    #[schema(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    event_type: String,
    /// Any JSON value, delivered byte for byte.
    payload: Value,
    #[serde(default)]
    #[schema(max_length = 256)]
    idempotency_key: Option<String>,
}

/// What a publication created.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "evt_01JD5X8R6Q0000000000000000", "type": "CONTRATO.REGISTRADO",
    "created_at": "2026-11-23T10:00:00.000Z",
    "deliveries": [{"id": "dlv_01JD5X8R6Q0000000000000000", "endpoint": "ep_01JD5X8R6Q0000000000000000", "status": "pending"}]}))]
pub struct Published {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[schema(format = DateTime)]
    created_at: String,
    deliveries: Vec<PublishedDelivery>,
}

/// A delivery a publication created.
#[derive(Serialize, ToSchema)]
pub struct PublishedDelivery {
    id: String,
    endpoint: String,
    status: DeliveryStatus,
}

/// An event as published; with its deliveries when read alone.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "evt_01JD5X8R6Q0000000000000000", "tenant": "ten_01JD5X8R6Q0000000000000000",
    "type": "CONTRATO.REGISTRADO", "payload": {"contrato": {"id": 42}}, "idempotency_key": null,
    "created_at": "2026-11-23T10:00:00.000Z"}))]
pub struct Event {
    id: String,
    tenant: String,
    #[serde(rename = "type")]
    event_type: String,
    payload: Value,
    idempotency_key: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    deliveries: Option<Vec<Delivery>>,
}

/// A page of the polling feed. `next_cursor`: where to read on from (on an
/// empty page, the cursor sent; `null` only when none was sent and there is
/// no event yet).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"data": [{"id": "evt_01JD5X8R6Q0000000000000000", "tenant": "ten_01JD5X8R6Q0000000000000000",
    "type": "CONTRATO.REGISTRADO", "payload": {"contrato": {"id": 42}}, "idempotency_key": null,
    "created_at": "2026-11-23T10:00:00.000Z"}], "next_cursor": "MQ"}))]
pub struct EventFeed {
    data: Vec<Event>,
    next_cursor: Option<String>,
}

// -------------------------------------------------------- deliveries, audit

/// Where a delivery stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

/// Why an attempt failed before or without a wanted status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptError {
    Timeout,
    Connect,
    Dns,
    Tls,
    Blocked,
    Status,
}

/// One event to one endpoint.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "dlv_01JD5X8R6Q0000000000000000", "event": "evt_01JD5X8R6Q0000000000000000",
    "endpoint": "ep_01JD5X8R6Q0000000000000000", "tenant": "ten_01JD5X8R6Q0000000000000000",
    "event_type": "CONTRATO.REGISTRADO", "status": "succeeded", "attempt_count": 1, "next_attempt_at": null,
    "last_status_code": 201, "last_error": null, "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.020Z"}))]
pub struct Delivery {
    id: String,
    event: String,
    endpoint: String,
    /// The event's tenant.
    tenant: String,
    event_type: String,
    status: DeliveryStatus,
    attempt_count: u32,
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    last_status_code: Option<u16>,
    last_error: Option<AttemptError>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Every attempt (when one delivery is read).
    attempts: Option<Vec<Attempt>>,
}

/// One HTTP request to the receiver.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "att_01JD5X8R6Q0000000000000000", "at": "2026-11-23T10:00:00.010Z", "duration_ms": 12,
    "status_code": 201, "error": null, "error_detail": null, "response_headers": [["content-type", "text/plain"]],
    "response_snippet": "ok"}))]
pub struct Attempt {
    id: String,
    #[schema(format = DateTime)]
    at: String,
    duration_ms: u64,
    status_code: Option<u16>,
    error: Option<AttemptError>,
    error_detail: Option<String>,
    /// (name, value) pairs.
    response_headers: Vec<(String, String)>,
    /// The start of the response body.
    response_snippet: Option<String>,
}

/// For each subscribed type (and covered tenant), its latest event and that
/// event's delivery to this endpoint.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"data": [{"event_type": "CONTRATO.REGISTRADO", "tenant": "ten_01JD5X8R6Q0000000000000000",
    "event": {"id": "evt_01JD5X8R6Q0000000000000000", "created_at": "2026-11-23T10:00:00.000Z"}, "delivery": null}]}))]
pub struct StatusByType {
    data: Vec<TypeStatus>,
}

/// One row of [`StatusByType`].
#[derive(Serialize, ToSchema)]
pub struct TypeStatus {
    event_type: String,
    tenant: String,
    event: Option<EventRef>,
    delivery: Option<Delivery>,
}

/// An event's id and time.
#[derive(Serialize, ToSchema)]
pub struct EventRef {
    id: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// Counts of the deliveries created in a window.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"endpoint": "ep_01JD5X8R6Q0000000000000000", "since": null, "until": null, "total": 3,
    "by_status": {"pending": 0, "succeeded": 2, "failed": 1, "cancelled": 0}}))]
pub struct Stats {
    endpoint: String,
    #[schema(format = DateTime)]
    since: Option<String>,
    #[schema(format = DateTime)]
    until: Option<String>,
    total: u64,
    by_status: StatusCounts,
}

/// Deliveries per status.
#[derive(Serialize, ToSchema)]
pub struct StatusCounts {
    pending: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
}

// --------------------------------------------------------------- operations

/// A test send: nothing (an `aviso.test` event), a type (its example), or
/// your own payload.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "CONTRATO.REGISTRADO"}))]
pub struct TestInput {
    #[serde(rename = "type")]
    event_type: Option<String>,
    payload: Option<Value>,
}

/// A test send and its one attempt.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "att_01JD5X8R6Q0000000000000000", "endpoint": "ep_01JD5X8R6Q0000000000000000",
    "event": "evt_01JD5X8R6Q0000000000000000", "type": "aviso.test", "payload": {"type": "aviso.test"}, "succeeded": true,
    "attempt": {"id": "att_01JD5X8R6Q0000000000000000", "at": "2026-11-23T10:00:00.010Z", "duration_ms": 12,
    "status_code": 200, "error": null, "error_detail": null, "response_headers": [], "response_snippet": "ok"}}))]
pub struct TestResult {
    id: String,
    endpoint: String,
    /// The `webhook-id` the request carried.
    event: String,
    #[serde(rename = "type")]
    event_type: String,
    payload: Value,
    succeeded: bool,
    attempt: Attempt,
}

/// Which failed deliveries to send again.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"latest_per_type": true}))]
pub struct ResendFailedInput {
    /// Only the failed delivery of the latest event of each type.
    latest_per_type: Option<bool>,
}

/// No fields (the body may be empty).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct SendLatestInput {}

/// A window of events to deliver again.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z"}))]
pub struct ReplayInput {
    #[schema(format = DateTime)]
    since: String,
    #[schema(format = DateTime)]
    until: Option<String>,
}

/// What a task does.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    ResendFailed,
    SendLatest,
    Replay,
}

/// Where a task stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// A background task and its progress.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "tsk_01JD5X8R6Q0000000000000000", "kind": "resend_failed", "latest_per_type": false,
    "endpoint": "ep_01JD5X8R6Q0000000000000000", "owner": "ten_01JD5X8R6Q0000000000000000", "status": "queued",
    "total": null, "processed": 0, "queued": 0, "error": null, "idempotency_key": null,
    "created_at": "2026-11-23T10:00:00.000Z", "updated_at": "2026-11-23T10:00:00.000Z", "finished_at": null}))]
pub struct Task {
    id: String,
    kind: TaskKind,
    /// `resend_failed` only.
    latest_per_type: Option<bool>,
    /// `replay` only.
    #[schema(format = DateTime)]
    since: Option<String>,
    /// `replay` only.
    #[schema(format = DateTime)]
    until: Option<String>,
    endpoint: String,
    /// `ten_…` or `par_…`.
    owner: String,
    status: TaskStatus,
    total: Option<u64>,
    processed: u64,
    queued: u64,
    error: Option<String>,
    idempotency_key: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
}

/// `page!(Name, Item, "example item json")`: a list page of `Item`.
macro_rules! page {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            data: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last.
            next_cursor: Option<String>,
        }
    };
}

page!(EventTypePage, EventType, "A page of event types.");
page!(TenantPage, Tenant, "A page of tenants.");
page!(PartnerPage, Partner, "A page of partners.");
page!(EndpointPage, Endpoint, "A page of endpoints.");
page!(
    DeliveryPage,
    Delivery,
    "A page of deliveries, newest first."
);
page!(
    TestPage,
    TestResult,
    "A page of recorded test sends, newest first."
);
