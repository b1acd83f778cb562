//! Builders shared by the conformance cases.

use aviso_core::auth::ReceiverAuth;
use aviso_core::model::{
    Attempt, AttemptError, DeliveryStatus, Endpoint, EndpointOwner, EndpointSecrets, EndpointSpec,
    EventType, NewEvent, Owner, Tenant,
};
use aviso_core::name::{EventTypeName, EventTypePattern};
use aviso_core::signing::SigningSecret;
use aviso_core::url::EndpointUrl;
use aviso_core::{AttemptId, DeliveryId, EventId, TenantId, Timestamp};
use aviso_store::{AttemptOutcome, DeliveryFilter, NextStep, PageRequest, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

/// The store under test.
pub type Db = Arc<dyn Store>;

/// What a backend promises beyond the common contract.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    /// Other processes may share the database: `recover_claims` releases
    /// only the claims of nodes whose lease ran out, never live ones.
    pub shared: bool,
}

/// A fixed point in time plus `ms`.
pub fn at(ms: i64) -> Timestamp {
    Timestamp(1_767_225_600_000 + ms)
}

/// A tenant as an owner.
pub fn ow(t: &TenantId) -> Owner {
    Owner::Tenant(t.clone())
}

/// No delivery filter.
pub fn any() -> DeliveryFilter {
    DeliveryFilter::default()
}

/// Deliveries of one status.
pub fn by_status(s: DeliveryStatus) -> DeliveryFilter {
    DeliveryFilter {
        status: Some(s),
        ..Default::default()
    }
}

/// A page request.
pub fn page(after: Option<String>, limit: usize) -> PageRequest {
    PageRequest { after, limit }
}

/// A catalogue entry.
pub fn event_type(name: &str) -> EventType {
    EventType {
        name: EventTypeName::parse(name).unwrap(),
        description: format!("{name} happened"),
        group: Some("Group/Sub".into()),
        schema: Some(json!({"type": "object"})),
        example: None,
        archived: false,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// Creates a tenant with this uid.
pub async fn tenant(db: &Db, uid: &str) -> Tenant {
    let t = Tenant {
        id: TenantId::new(),
        uid: uid.into(),
        name: format!("Tenant {uid}"),
        partner: None,
        metadata: json!({"tier": "gold", "n": 1}),
        created_at: at(0),
        updated_at: at(0),
    };
    db.create_tenant(t).await.unwrap()
}

/// A spec subscribed to these patterns (empty = all).
pub fn spec(types: &[&str]) -> EndpointSpec {
    EndpointSpec {
        url: EndpointUrl::parse("https://receiver.example/hook").unwrap(),
        description: "test receiver".into(),
        event_types: types
            .iter()
            .map(|t| EventTypePattern::parse(t).unwrap())
            .collect(),
        enabled: true,
        auth: ReceiverAuth::default(),
        headers: Default::default(),
        filter: Default::default(),
        policy: Default::default(),
    }
}

/// An endpoint value (not stored).
pub fn endpoint_value(tenant: &Tenant, spec: EndpointSpec) -> Endpoint {
    Endpoint {
        id: aviso_core::EndpointId::new(),
        owner: EndpointOwner::Tenant(tenant.id.clone()),
        spec,
        secrets: EndpointSecrets::new(SigningSecret::generate()),
        disabled_reason: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// Creates an endpoint subscribed to these patterns.
pub async fn endpoint(db: &Db, tenant: &Tenant, types: &[&str]) -> Endpoint {
    db.create_endpoint(endpoint_value(tenant, spec(types)))
        .await
        .unwrap()
}

/// An event to publish at `at(ms)`.
pub fn event(tenant: &Tenant, ty: &str, payload: serde_json::Value, ms: i64) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant: tenant.id.clone(),
        event_type: EventTypeName::parse(ty).unwrap(),
        payload: payload.to_string().into(),
        idempotency_key: None,
        created_at: at(ms),
    }
}

/// An attempt outcome for a delivery.
pub fn outcome(
    delivery: &DeliveryId,
    ms: i64,
    code: Option<u16>,
    next: NextStep,
) -> AttemptOutcome {
    let failed = !matches!(next, NextStep::Succeeded);
    AttemptOutcome {
        attempt: Attempt {
            id: AttemptId::new(),
            delivery: delivery.clone(),
            at: at(ms),
            duration_ms: 12,
            status_code: code,
            error: failed.then_some(AttemptError::Status),
            error_detail: failed.then(|| "receiver said no".to_owned()),
            response_headers: vec![("content-type".into(), "text/plain".into())],
            response_snippet: Some("ok".into()),
        },
        next,
    }
}

/// Asserts a `NotFound`.
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}

/// Asserts a `Conflict` whose message contains `needle`.
#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(StoreError::Conflict(msg)) => {
            assert!(msg.contains(needle), "conflict `{msg}` lacks `{needle}`")
        }
        other => panic!("expected Conflict mentioning `{needle}`, got {other:?}"),
    }
}

/// Publishes one event at `at(ms)` and returns its single delivery id.
pub async fn one_delivery(db: &Db, t: &Tenant, ms: i64) -> DeliveryId {
    let p = db
        .publish(event(t, "A.X", json!({"ms": ms}), ms), None)
        .await
        .unwrap();
    assert_eq!(p.deliveries.len(), 1);
    p.deliveries[0].id.clone()
}

/// The delivery's current status.
pub async fn status(db: &Db, t: &Tenant, id: &DeliveryId) -> DeliveryStatus {
    db.get_delivery(&ow(&t.id), id).await.unwrap().0.status
}

/// Publishes one event and returns its delivery to `ep`.
pub async fn one_delivery_on(db: &Db, t: &Tenant, ep: &Endpoint, ms: i64) -> DeliveryId {
    let p = db
        .publish(event(t, "A.X", json!({}), ms), None)
        .await
        .unwrap();
    p.deliveries
        .iter()
        .find(|d| d.endpoint == ep.id)
        .unwrap()
        .id
        .clone()
}
