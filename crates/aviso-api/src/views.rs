//! Response shapes: what clients see of each record.

use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::{
    Attempt, Coverage, Delivery, DeliveryStatus, Endpoint, EndpointOwner, Event,
};
use aviso_core::name::EventTypePattern;
use aviso_core::ops::{EndpointTest, Task, TaskSpec, TaskStatus};
use aviso_core::policy::DeliveryPolicy;
use aviso_core::{DeliveryId, EndpointId, EventId, PartnerId, TaskId, TenantId, Timestamp};
use serde::Serialize;
use serde_json::value::RawValue;

/// An endpoint as read back: auth secrets redacted, signing secret only when asked.
#[derive(Serialize)]
pub struct EndpointView {
    id: EndpointId,
    /// The owning tenant (tenant endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantId>,
    /// The owning partner (partner endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    partner: Option<PartnerId>,
    /// Partner endpoints: the tenants covered, unless `all_tenants`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenants: Option<Vec<TenantId>>,
    /// Partner endpoints: every tenant of the partner is covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    all_tenants: Option<bool>,
    url: String,
    description: String,
    event_types: Vec<EventTypePattern>,
    enabled: bool,
    auth: ReceiverAuth,
    headers: Headers,
    filter: PayloadFilter,
    policy: DeliveryPolicy,
    disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl EndpointView {
    /// The view without the signing secret.
    pub fn of(ep: &Endpoint) -> Self {
        let s = &ep.spec;
        let (tenant, partner, tenants, all_tenants) = match &ep.owner {
            EndpointOwner::Tenant(t) => (Some(t.clone()), None, None, None),
            EndpointOwner::Partner { partner, covers } => match covers {
                Coverage::AllTenants => (None, Some(partner.clone()), None, Some(true)),
                Coverage::Tenants(list) => {
                    (None, Some(partner.clone()), Some(list.clone()), Some(false))
                }
            },
        };
        Self {
            id: ep.id.clone(),
            tenant,
            partner,
            tenants,
            all_tenants,
            url: s.url.to_string(),
            description: s.description.clone(),
            event_types: s.event_types.clone(),
            enabled: s.enabled,
            auth: s.auth.redacted(),
            headers: s.headers.clone(),
            filter: s.filter.clone(),
            policy: s.policy.clone(),
            disabled_reason: ep.disabled_reason.clone(),
            secret: None,
            created_at: ep.created_at,
            updated_at: ep.updated_at,
        }
    }

    /// The view with the current signing secret (on create and rotate).
    pub fn with_secret(ep: &Endpoint) -> Self {
        Self {
            secret: Some(ep.secrets.current.expose()),
            ..Self::of(ep)
        }
    }
}

/// An event with its payload as published.
#[derive(Serialize)]
pub struct EventView<'a> {
    id: &'a EventId,
    tenant: &'a TenantId,
    #[serde(rename = "type")]
    event_type: &'a str,
    payload: &'a RawValue,
    idempotency_key: Option<&'a str>,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<Vec<DeliveryView>>,
}

impl<'a> EventView<'a> {
    /// The view of `e`, with its deliveries when given.
    pub fn of(e: &'a Event, deliveries: Option<&[Delivery]>) -> Self {
        Self {
            id: &e.id,
            tenant: &e.tenant,
            event_type: e.event_type.as_str(),
            payload: raw(&e.payload),
            idempotency_key: e.idempotency_key.as_deref(),
            created_at: e.created_at,
            deliveries: deliveries.map(|d| d.iter().map(DeliveryView::of).collect()),
        }
    }
}

/// Stored payloads are valid JSON by construction (checked at publish).
fn raw(payload: &str) -> &RawValue {
    serde_json::from_str(payload)
        .unwrap_or_else(|_| serde_json::from_str::<&RawValue>("null").expect("null is JSON"))
}

/// A delivery, with its attempts when asked for one.
#[derive(Serialize)]
pub struct DeliveryView {
    id: DeliveryId,
    event: EventId,
    endpoint: EndpointId,
    /// The event's tenant.
    tenant: TenantId,
    event_type: String,
    status: DeliveryStatus,
    attempt_count: u32,
    next_attempt_at: Option<Timestamp>,
    last_status_code: Option<u16>,
    last_error: Option<aviso_core::model::AttemptError>,
    created_at: Timestamp,
    updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<Vec<Attempt>>,
}

impl DeliveryView {
    /// The view of a delivery without attempts.
    pub fn of(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event: d.event.clone(),
            endpoint: d.endpoint.clone(),
            tenant: d.tenant.clone(),
            event_type: d.event_type.to_string(),
            status: d.status,
            attempt_count: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            attempts: None,
        }
    }

    /// The view with its attempts.
    pub fn with_attempts(d: &Delivery, attempts: Vec<Attempt>) -> Self {
        Self {
            attempts: Some(attempts),
            ..Self::of(d)
        }
    }
}

/// A background task and its progress.
#[derive(Serialize)]
pub struct TaskView {
    id: TaskId,
    #[serde(flatten)]
    spec: TaskSpec,
    endpoint: EndpointId,
    /// `ten_…` or `par_…`: whose endpoint.
    owner: String,
    status: TaskStatus,
    /// Items to go through (deliveries or events), once known.
    total: Option<u64>,
    /// Items gone through.
    processed: u64,
    /// Deliveries made pending (resent or created).
    queued: u64,
    error: Option<String>,
    idempotency_key: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    finished_at: Option<Timestamp>,
}

impl TaskView {
    /// The view of a task.
    pub fn of(t: &Task) -> Self {
        Self {
            id: t.id.clone(),
            spec: t.spec.clone(),
            endpoint: t.endpoint.clone(),
            owner: t.owner.to_string(),
            status: t.status,
            total: t.total,
            processed: t.processed,
            queued: t.queued,
            error: t.error.clone(),
            idempotency_key: t.idempotency_key.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            finished_at: t.finished_at,
        }
    }
}

/// A recorded test send.
#[derive(Serialize)]
pub struct TestView<'a> {
    id: &'a str,
    endpoint: &'a EndpointId,
    /// The `webhook-id` the request carried.
    event: &'a EventId,
    #[serde(rename = "type")]
    event_type: &'a str,
    payload: &'a RawValue,
    succeeded: bool,
    attempt: &'a Attempt,
}

impl<'a> TestView<'a> {
    /// The view of a test send.
    pub fn of(t: &'a EndpointTest) -> Self {
        Self {
            id: t.attempt.id.as_str(),
            endpoint: &t.endpoint,
            event: &t.event,
            event_type: t.event_type.as_str(),
            payload: raw(&t.payload),
            succeeded: t.succeeded,
            attempt: &t.attempt,
        }
    }
}
