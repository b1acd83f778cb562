//! Row ↔ model mapping. Column lists live next to the code that reads them.

use aviso_core::model::{
    ApiKey, Attempt, AttemptError, Coverage, Delivery, DeliveryStatus, Endpoint, EndpointOwner,
    EndpointSecrets, Event, EventType, KeyScope, Owner, Partner, Tenant,
};
use aviso_core::name::EventTypeName;
use aviso_core::ops::{EndpointTest, Task, TaskSpec, TaskStatus};
use aviso_core::signing::SigningSecret;
use aviso_core::{
    AttemptId, DeliveryId, EndpointId, EventId, KeyId, PartnerId, TaskId, TenantId, Timestamp,
};
use rusqlite::types::Type;
use rusqlite::Row;
use serde::de::DeserializeOwned;

pub(super) const EVENT_TYPE_COLS: &str =
    "name, description, grp, schema_json, example_json, archived, created_at, updated_at";
pub(super) const TENANT_COLS: &str =
    "id, uid, name, metadata_json, created_at, updated_at, partner_id";
pub(super) const PARTNER_COLS: &str = "id, name, metadata_json, created_at, updated_at";
/// Read `FROM endpoints` (unaliased): the last column gathers a partner endpoint's tenants.
pub(super) const ENDPOINT_COLS: &str =
    "id, tenant_id, spec_json, current_secret, previous_secret, \
     previous_expires_at, disabled_reason, created_at, updated_at, partner_id, all_tenants, \
     (SELECT json_group_array(x.tenant_id) FROM endpoint_tenants x WHERE x.endpoint_id = endpoints.id)";
pub(super) const KEY_COLS: &str = "id, hash, scope, tenant_id, name, created_at, partner_id";
pub(super) const TASK_COLS: &str =
    "id, owner_id, endpoint_id, spec_json, status, idempotency_key, \
     total, processed, queued, error, created_at, updated_at, finished_at";
pub(super) const TEST_COLS: &str =
    "id, endpoint_id, event_id, event_type, payload, succeeded, at, \
     duration_ms, status_code, error, error_detail, response_headers_json, response_snippet";
pub(super) const EVENT_COLS: &str =
    "seq, id, tenant_id, event_type, payload, idempotency_key, created_at";
pub(super) const DELIVERY_COLS: &str = "id, event_id, endpoint_id, tenant_id, event_type, status, attempts, \
     round_attempts, round_started_at, next_attempt_at, last_status_code, last_error, created_at, updated_at";
pub(super) const ATTEMPT_COLS: &str =
    "id, delivery_id, at, duration_ms, status_code, error, error_detail, \
     response_headers_json, response_snippet";

pub(super) use crate::json::{spec_from_json, spec_to_json, to_json};

fn bad(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

fn bad_msg(idx: usize, msg: String) -> rusqlite::Error {
    bad(idx, aviso_core::ParseError::new(msg))
}

fn json<T: DeserializeOwned>(r: &Row, idx: usize) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    serde_json::from_str(&s).map_err(|e| bad(idx, e))
}

fn opt_json<T: DeserializeOwned>(r: &Row, idx: usize) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<String>>(idx)? {
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| bad(idx, e)),
        None => Ok(None),
    }
}

fn ts(r: &Row, idx: usize) -> rusqlite::Result<Timestamp> {
    r.get(idx).map(Timestamp)
}

fn opt_ts(r: &Row, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(idx)?.map(Timestamp))
}

fn secret(r: &Row, idx: usize) -> rusqlite::Result<Option<SigningSecret>> {
    match r.get::<_, Option<String>>(idx)? {
        Some(s) => SigningSecret::parse(&s).map(Some).map_err(|e| bad(idx, e)),
        None => Ok(None),
    }
}

fn status(r: &Row, idx: usize) -> rusqlite::Result<DeliveryStatus> {
    DeliveryStatus::parse(&r.get::<_, String>(idx)?).map_err(|e| bad(idx, e))
}

fn attempt_error(r: &Row, idx: usize) -> rusqlite::Result<Option<AttemptError>> {
    match r.get::<_, Option<String>>(idx)? {
        Some(s) => AttemptError::parse(&s)
            .map(Some)
            .ok_or_else(|| bad_msg(idx, format!("unknown attempt error `{s}`"))),
        None => Ok(None),
    }
}

/// Reads [`EVENT_TYPE_COLS`].
pub(super) fn event_type(r: &Row) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: EventTypeName::from_trusted(r.get(0)?),
        description: r.get(1)?,
        group: r.get(2)?,
        schema: opt_json(r, 3)?,
        example: opt_json(r, 4)?,
        archived: r.get(5)?,
        created_at: ts(r, 6)?,
        updated_at: ts(r, 7)?,
    })
}

/// Reads [`TENANT_COLS`].
pub(super) fn tenant(r: &Row) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId::from_trusted(r.get(0)?),
        uid: r.get(1)?,
        name: r.get(2)?,
        metadata: json(r, 3)?,
        created_at: ts(r, 4)?,
        updated_at: ts(r, 5)?,
        partner: r.get::<_, Option<String>>(6)?.map(PartnerId::from_trusted),
    })
}

/// Reads [`PARTNER_COLS`].
pub(super) fn partner(r: &Row) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: PartnerId::from_trusted(r.get(0)?),
        name: r.get(1)?,
        metadata: json(r, 2)?,
        created_at: ts(r, 3)?,
        updated_at: ts(r, 4)?,
    })
}

/// Reads [`ENDPOINT_COLS`].
pub(super) fn endpoint(r: &Row) -> rusqlite::Result<Endpoint> {
    let spec = spec_from_json(&r.get::<_, String>(2)?).map_err(|e| bad(2, e))?;
    let owner = match (
        r.get::<_, Option<String>>(1)?,
        r.get::<_, Option<String>>(9)?,
    ) {
        (Some(t), _) => EndpointOwner::Tenant(TenantId::from_trusted(t)),
        (None, Some(p)) => {
            let covers = if r.get::<_, bool>(10)? {
                Coverage::AllTenants
            } else {
                let mut list: Vec<String> = json(r, 11)?;
                list.sort();
                Coverage::Tenants(list.into_iter().map(TenantId::from_trusted).collect())
            };
            EndpointOwner::Partner {
                partner: PartnerId::from_trusted(p),
                covers,
            }
        }
        (None, None) => return Err(bad_msg(1, "endpoint without an owner".into())),
    };
    Ok(Endpoint {
        id: EndpointId::from_trusted(r.get(0)?),
        owner,
        spec,
        secrets: EndpointSecrets {
            current: secret(r, 3)?.ok_or_else(|| bad_msg(3, "missing current secret".into()))?,
            previous: secret(r, 4)?,
            previous_expires_at: opt_ts(r, 5)?,
        },
        disabled_reason: r.get(6)?,
        created_at: ts(r, 7)?,
        updated_at: ts(r, 8)?,
    })
}

/// Reads [`KEY_COLS`].
pub(super) fn api_key(r: &Row) -> rusqlite::Result<ApiKey> {
    let scope: String = r.get(2)?;
    let tenant: Option<String> = r.get(3)?;
    let partner: Option<String> = r.get(6)?;
    let scope = match (scope.as_str(), tenant, partner) {
        ("admin", _, _) => KeyScope::Admin,
        ("tenant", Some(t), _) => KeyScope::Tenant(TenantId::from_trusted(t)),
        ("partner", _, Some(p)) => KeyScope::Partner(PartnerId::from_trusted(p)),
        (s, _, _) => return Err(bad_msg(2, format!("bad key scope `{s}`"))),
    };
    Ok(ApiKey {
        id: KeyId::from_trusted(r.get(0)?),
        hash: r.get(1)?,
        scope,
        name: r.get(4)?,
        created_at: ts(r, 5)?,
    })
}

/// Reads [`EVENT_COLS`].
pub(super) fn event(r: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(0)?,
        id: EventId::from_trusted(r.get(1)?),
        tenant: TenantId::from_trusted(r.get(2)?),
        event_type: EventTypeName::from_trusted(r.get(3)?),
        payload: r.get::<_, String>(4)?.into(),
        idempotency_key: r.get(5)?,
        created_at: ts(r, 6)?,
    })
}

/// Reads [`DELIVERY_COLS`].
pub(super) fn delivery(r: &Row) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: DeliveryId::from_trusted(r.get(0)?),
        event: EventId::from_trusted(r.get(1)?),
        endpoint: EndpointId::from_trusted(r.get(2)?),
        tenant: TenantId::from_trusted(r.get(3)?),
        event_type: EventTypeName::from_trusted(r.get(4)?),
        status: status(r, 5)?,
        attempts: r.get(6)?,
        round_attempts: r.get(7)?,
        round_started_at: ts(r, 8)?,
        next_attempt_at: opt_ts(r, 9)?,
        last_status_code: r.get(10)?,
        last_error: attempt_error(r, 11)?,
        created_at: ts(r, 12)?,
        updated_at: ts(r, 13)?,
    })
}

/// Reads [`ATTEMPT_COLS`].
pub(super) fn attempt(r: &Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(r.get(0)?),
        delivery: DeliveryId::from_trusted(r.get(1)?),
        at: ts(r, 2)?,
        duration_ms: r.get(3)?,
        status_code: r.get(4)?,
        error: attempt_error(r, 5)?,
        error_detail: r.get(6)?,
        response_headers: json(r, 7)?,
        response_snippet: r.get(8)?,
    })
}

/// Reads [`TASK_COLS`].
pub(super) fn task(r: &Row) -> rusqlite::Result<Task> {
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    let spec: TaskSpec = json(r, 3)?;
    Ok(Task {
        id: TaskId::from_trusted(r.get(0)?),
        owner: Owner::from_trusted(r.get(1)?),
        endpoint: EndpointId::from_trusted(r.get(2)?),
        spec,
        status: TaskStatus::parse(&r.get::<_, String>(4)?).map_err(|e| bad(4, e))?,
        idempotency_key: r.get(5)?,
        total: r.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u64),
        processed: count(7)?,
        queued: count(8)?,
        error: r.get(9)?,
        created_at: ts(r, 10)?,
        updated_at: ts(r, 11)?,
        finished_at: opt_ts(r, 12)?,
    })
}

/// Reads [`TEST_COLS`].
pub(super) fn endpoint_test(r: &Row) -> rusqlite::Result<EndpointTest> {
    let id = AttemptId::from_trusted(r.get(0)?);
    Ok(EndpointTest {
        endpoint: EndpointId::from_trusted(r.get(1)?),
        event: EventId::from_trusted(r.get(2)?),
        event_type: EventTypeName::from_trusted(r.get(3)?),
        payload: r.get::<_, String>(4)?.into(),
        succeeded: r.get(5)?,
        attempt: Attempt {
            id,
            delivery: DeliveryId::from_trusted(String::new()),
            at: ts(r, 6)?,
            duration_ms: r.get(7)?,
            status_code: r.get(8)?,
            error: attempt_error(r, 9)?,
            error_detail: r.get(10)?,
            response_headers: json(r, 11)?,
            response_snippet: r.get(12)?,
        },
    })
}
