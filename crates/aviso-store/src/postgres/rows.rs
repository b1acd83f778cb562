//! Row → model mapping. Column lists are the SQLite backend's, in the same order.

use super::error::corrupt;
use crate::json::spec_from_json;
use crate::Result;
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
use serde::de::DeserializeOwned;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

pub(super) const EVENT_TYPE_COLS: &str =
    "name, description, grp, schema_json, example_json, archived, created_at, updated_at";
pub(super) const TENANT_COLS: &str =
    "id, uid, name, metadata_json, created_at, updated_at, partner_id";
pub(super) const PARTNER_COLS: &str = "id, name, metadata_json, created_at, updated_at";
/// Read `FROM endpoints` (unaliased): the last column gathers a partner endpoint's tenants.
pub(super) const ENDPOINT_COLS: &str =
    "id, tenant_id, spec_json, current_secret, previous_secret, \
     previous_expires_at, disabled_reason, created_at, updated_at, partner_id, all_tenants, \
     (SELECT coalesce(array_agg(x.tenant_id ORDER BY x.tenant_id), '{}') FROM endpoint_tenants x \
      WHERE x.endpoint_id = endpoints.id)";
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

/// One column, typed.
pub(super) fn get<'a, T: FromSql<'a>>(r: &'a Row, idx: usize) -> Result<T> {
    r.try_get(idx)
        .map_err(|e| corrupt(&format!("column `{}`", column(r, idx)), e))
}

fn column(r: &Row, idx: usize) -> String {
    r.columns()
        .get(idx)
        .map_or_else(|| idx.to_string(), |c| c.name().to_owned())
}

fn json<T: DeserializeOwned>(r: &Row, idx: usize) -> Result<T> {
    let s: &str = get(r, idx)?;
    serde_json::from_str(s).map_err(|e| corrupt(&column(r, idx), e))
}

fn opt_json<T: DeserializeOwned>(r: &Row, idx: usize) -> Result<Option<T>> {
    match get::<Option<&str>>(r, idx)? {
        Some(s) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| corrupt(&column(r, idx), e)),
        None => Ok(None),
    }
}

fn ts(r: &Row, idx: usize) -> Result<Timestamp> {
    get(r, idx).map(Timestamp)
}

fn opt_ts(r: &Row, idx: usize) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(r, idx)?.map(Timestamp))
}

fn count(r: &Row, idx: usize) -> Result<u32> {
    u32::try_from(get::<i32>(r, idx)?).map_err(|e| corrupt(&column(r, idx), e))
}

fn status_code(r: &Row, idx: usize) -> Result<Option<u16>> {
    get::<Option<i32>>(r, idx)?
        .map(|c| u16::try_from(c).map_err(|e| corrupt(&column(r, idx), e)))
        .transpose()
}

fn secret(r: &Row, idx: usize) -> Result<Option<SigningSecret>> {
    get::<Option<&str>>(r, idx)?
        .map(|s| SigningSecret::parse(s).map_err(|e| corrupt("signing secret", e)))
        .transpose()
}

fn status(r: &Row, idx: usize) -> Result<DeliveryStatus> {
    DeliveryStatus::parse(get(r, idx)?).map_err(|e| corrupt("delivery status", e))
}

fn attempt_error(r: &Row, idx: usize) -> Result<Option<AttemptError>> {
    get::<Option<&str>>(r, idx)?
        .map(|s| {
            AttemptError::parse(s)
                .ok_or_else(|| corrupt("attempt error", format!("unknown value `{s}`")))
        })
        .transpose()
}

/// Reads [`EVENT_TYPE_COLS`].
pub(super) fn event_type(r: &Row) -> Result<EventType> {
    Ok(EventType {
        name: EventTypeName::from_trusted(get(r, 0)?),
        description: get(r, 1)?,
        group: get(r, 2)?,
        schema: opt_json(r, 3)?,
        example: opt_json(r, 4)?,
        archived: get(r, 5)?,
        created_at: ts(r, 6)?,
        updated_at: ts(r, 7)?,
    })
}

/// Reads [`TENANT_COLS`].
pub(super) fn tenant(r: &Row) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId::from_trusted(get(r, 0)?),
        uid: get(r, 1)?,
        name: get(r, 2)?,
        metadata: json(r, 3)?,
        created_at: ts(r, 4)?,
        updated_at: ts(r, 5)?,
        partner: get::<Option<String>>(r, 6)?.map(PartnerId::from_trusted),
    })
}

/// Reads [`PARTNER_COLS`].
pub(super) fn partner(r: &Row) -> Result<Partner> {
    Ok(Partner {
        id: PartnerId::from_trusted(get(r, 0)?),
        name: get(r, 1)?,
        metadata: json(r, 2)?,
        created_at: ts(r, 3)?,
        updated_at: ts(r, 4)?,
    })
}

/// Reads [`ENDPOINT_COLS`].
pub(super) fn endpoint(r: &Row) -> Result<Endpoint> {
    let spec = spec_from_json(get(r, 2)?).map_err(|e| corrupt("endpoint spec", e))?;
    let owner = match (get::<Option<String>>(r, 1)?, get::<Option<String>>(r, 9)?) {
        (Some(t), _) => EndpointOwner::Tenant(TenantId::from_trusted(t)),
        (None, Some(p)) => {
            let covers = if get::<bool>(r, 10)? {
                Coverage::AllTenants
            } else {
                let list: Vec<String> = get(r, 11)?;
                Coverage::Tenants(list.into_iter().map(TenantId::from_trusted).collect())
            };
            EndpointOwner::Partner {
                partner: PartnerId::from_trusted(p),
                covers,
            }
        }
        (None, None) => return Err(corrupt("endpoint", "no owner")),
    };
    Ok(Endpoint {
        id: EndpointId::from_trusted(get(r, 0)?),
        owner,
        spec,
        secrets: EndpointSecrets {
            current: secret(r, 3)?.ok_or_else(|| corrupt("endpoint", "missing current secret"))?,
            previous: secret(r, 4)?,
            previous_expires_at: opt_ts(r, 5)?,
        },
        disabled_reason: get(r, 6)?,
        created_at: ts(r, 7)?,
        updated_at: ts(r, 8)?,
    })
}

/// Reads [`KEY_COLS`].
pub(super) fn api_key(r: &Row) -> Result<ApiKey> {
    let partner = get::<Option<String>>(r, 6)?;
    let scope = match (get::<&str>(r, 2)?, get::<Option<String>>(r, 3)?, partner) {
        ("admin", _, _) => KeyScope::Admin,
        ("tenant", Some(t), _) => KeyScope::Tenant(TenantId::from_trusted(t)),
        ("partner", _, Some(p)) => KeyScope::Partner(PartnerId::from_trusted(p)),
        (s, _, _) => return Err(corrupt("key scope", s)),
    };
    Ok(ApiKey {
        id: KeyId::from_trusted(get(r, 0)?),
        hash: get(r, 1)?,
        scope,
        name: get(r, 4)?,
        created_at: ts(r, 5)?,
    })
}

/// Reads [`EVENT_COLS`].
pub(super) fn event(r: &Row) -> Result<Event> {
    Ok(Event {
        seq: get(r, 0)?,
        id: EventId::from_trusted(get(r, 1)?),
        tenant: TenantId::from_trusted(get(r, 2)?),
        event_type: EventTypeName::from_trusted(get(r, 3)?),
        payload: get::<&str>(r, 4)?.into(),
        idempotency_key: get(r, 5)?,
        created_at: ts(r, 6)?,
    })
}

/// Reads [`DELIVERY_COLS`].
pub(super) fn delivery(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: DeliveryId::from_trusted(get(r, 0)?),
        event: EventId::from_trusted(get(r, 1)?),
        endpoint: EndpointId::from_trusted(get(r, 2)?),
        tenant: TenantId::from_trusted(get(r, 3)?),
        event_type: EventTypeName::from_trusted(get(r, 4)?),
        status: status(r, 5)?,
        attempts: count(r, 6)?,
        round_attempts: count(r, 7)?,
        round_started_at: ts(r, 8)?,
        next_attempt_at: opt_ts(r, 9)?,
        last_status_code: status_code(r, 10)?,
        last_error: attempt_error(r, 11)?,
        created_at: ts(r, 12)?,
        updated_at: ts(r, 13)?,
    })
}

/// Reads [`ATTEMPT_COLS`].
pub(super) fn attempt(r: &Row) -> Result<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(get(r, 0)?),
        delivery: DeliveryId::from_trusted(get(r, 1)?),
        at: ts(r, 2)?,
        duration_ms: u64::try_from(get::<i64>(r, 3)?).unwrap_or(0),
        status_code: status_code(r, 4)?,
        error: attempt_error(r, 5)?,
        error_detail: get(r, 6)?,
        response_headers: json(r, 7)?,
        response_snippet: get(r, 8)?,
    })
}

fn big(r: &Row, idx: usize) -> Result<u64> {
    Ok(get::<i64>(r, idx)?.max(0) as u64)
}

/// Reads [`TASK_COLS`].
pub(super) fn task(r: &Row) -> Result<Task> {
    let spec: TaskSpec = json(r, 3)?;
    Ok(Task {
        id: TaskId::from_trusted(get(r, 0)?),
        owner: Owner::from_trusted(get(r, 1)?),
        endpoint: EndpointId::from_trusted(get(r, 2)?),
        spec,
        status: TaskStatus::parse(get(r, 4)?).map_err(|e| corrupt("task status", e))?,
        idempotency_key: get(r, 5)?,
        total: get::<Option<i64>>(r, 6)?.map(|n| n.max(0) as u64),
        processed: big(r, 7)?,
        queued: big(r, 8)?,
        error: get(r, 9)?,
        created_at: ts(r, 10)?,
        updated_at: ts(r, 11)?,
        finished_at: opt_ts(r, 12)?,
    })
}

/// Reads [`TEST_COLS`].
pub(super) fn endpoint_test(r: &Row) -> Result<EndpointTest> {
    Ok(EndpointTest {
        endpoint: EndpointId::from_trusted(get(r, 1)?),
        event: EventId::from_trusted(get(r, 2)?),
        event_type: EventTypeName::from_trusted(get(r, 3)?),
        payload: get::<&str>(r, 4)?.into(),
        succeeded: get(r, 5)?,
        attempt: Attempt {
            id: AttemptId::from_trusted(get(r, 0)?),
            delivery: DeliveryId::from_trusted(String::new()),
            at: ts(r, 6)?,
            duration_ms: big(r, 7)?,
            status_code: status_code(r, 8)?,
            error: attempt_error(r, 9)?,
            error_detail: get(r, 10)?,
            response_headers: json(r, 11)?,
            response_snippet: get(r, 12)?,
        },
    })
}

/// Maps every row.
pub(super) fn all<T>(rows: &[Row], f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}
