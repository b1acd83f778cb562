//! Response shapes: what clients see of each record.

use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::{Attempt, Delivery, DeliveryStatus, Endpoint, Event};
use aviso_core::name::EventTypePattern;
use aviso_core::policy::DeliveryPolicy;
use aviso_core::{DeliveryId, EndpointId, EventId, TenantId, Timestamp};
use serde::Serialize;
use serde_json::value::RawValue;

/// An endpoint as read back: auth secrets redacted, signing secret only when asked.
#[derive(Serialize)]
pub struct EndpointView {
    id: EndpointId,
    tenant: TenantId,
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
        Self {
            id: ep.id.clone(),
            tenant: ep.tenant.clone(),
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
