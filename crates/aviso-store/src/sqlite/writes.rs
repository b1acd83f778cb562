//! Catalogue, tenant, endpoint and API-key writes (run on the writer thread).

use super::error::{db_err, unique_as};
use super::rows::{self, to_json, ENDPOINT_COLS, EVENT_TYPE_COLS, TENANT_COLS};
use super::writer::Ctx;
use crate::{Result, StoreError};
use aviso_core::model::{ApiKey, Endpoint, EventType, KeyScope, Tenant};
use aviso_core::{EndpointId, KeyId, TenantId};
use rusqlite::{params, Connection};

fn opt_json(v: &Option<serde_json::Value>) -> Result<Option<String>> {
    v.as_ref().map(to_json).transpose()
}

/// Inserts an event type.
pub(super) fn create_event_type(conn: &Connection, et: EventType) -> Result<EventType> {
    let (schema, example) = (opt_json(&et.schema)?, opt_json(&et.example)?);
    conn.prepare_cached(
        "INSERT INTO event_types (name, description, grp, schema_json, example_json, archived, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            et.name.as_str(),
            et.description,
            et.group,
            schema,
            example,
            et.archived,
            et.created_at.0,
            et.updated_at.0
        ])
    })
    .map_err(|e| unique_as(e, || format!("an event type named `{}` already exists", et.name)))?;
    Ok(et)
}

/// Replaces an event type's mutable fields.
pub(super) fn update_event_type(conn: &Connection, et: EventType) -> Result<EventType> {
    let sql = format!(
        "UPDATE event_types SET description = ?2, grp = ?3, schema_json = ?4, example_json = ?5, \
         archived = ?6, updated_at = ?7 WHERE name = ?1 RETURNING {EVENT_TYPE_COLS}"
    );
    let (schema, example) = (opt_json(&et.schema)?, opt_json(&et.example)?);
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(
                params![
                    et.name.as_str(),
                    et.description,
                    et.group,
                    schema,
                    example,
                    et.archived,
                    et.updated_at.0
                ],
                rows::event_type,
            )
        })
        .map_err(db_err)
}

/// Inserts a tenant.
pub(super) fn create_tenant(conn: &Connection, t: Tenant) -> Result<Tenant> {
    let metadata = to_json(&t.metadata)?;
    conn.prepare_cached(
        "INSERT INTO tenants (id, uid, name, metadata_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![t.id.as_str(), t.uid, t.name, metadata, t.created_at.0, t.updated_at.0]))
    .map_err(|e| unique_as(e, || format!("a tenant with uid `{}` already exists", t.uid)))?;
    Ok(t)
}

/// Replaces a tenant's uid, name and metadata.
pub(super) fn update_tenant(conn: &Connection, t: Tenant) -> Result<Tenant> {
    let sql = format!(
        "UPDATE tenants SET uid = ?2, name = ?3, metadata_json = ?4, updated_at = ?5 WHERE id = ?1 \
         RETURNING {TENANT_COLS}"
    );
    let metadata = to_json(&t.metadata)?;
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(
                params![t.id.as_str(), t.uid, t.name, metadata, t.updated_at.0],
                rows::tenant,
            )
        })
        .map_err(|e| {
            unique_as(e, || {
                format!("a tenant with uid `{}` already exists", t.uid)
            })
        })
}

/// Deletes a tenant; foreign keys cascade to everything it owns.
pub(super) fn delete_tenant(ctx: &mut Ctx, id: &TenantId) -> Result<()> {
    ctx.routes.invalidate(id);
    let n = ctx
        .conn
        .prepare_cached("DELETE FROM tenants WHERE id = ?1")
        .and_then(|mut s| s.execute([id.as_str()]))
        .map_err(db_err)?;
    found(n)
}

/// Inserts an endpoint.
pub(super) fn create_endpoint(ctx: &mut Ctx, ep: Endpoint) -> Result<Endpoint> {
    ctx.routes.invalidate(&ep.tenant);
    let spec = rows::spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    ctx.conn
        .prepare_cached(
            "INSERT INTO endpoints (id, tenant_id, spec_json, enabled, current_secret, previous_secret, \
             previous_expires_at, disabled_reason, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut st| {
            st.execute(params![
                ep.id.as_str(),
                ep.tenant.as_str(),
                spec,
                ep.spec.enabled,
                s.current.expose(),
                s.previous.as_ref().map(|p| p.expose()),
                s.previous_expires_at.map(|t| t.0),
                ep.disabled_reason,
                ep.created_at.0,
                ep.updated_at.0
            ])
        })
        .map_err(|e| unique_as(e, || format!("an endpoint with id `{}` already exists", ep.id)))?;
    Ok(ep)
}

/// Replaces an endpoint's spec, secrets and disabled reason; disabling cancels its pending deliveries.
pub(super) fn update_endpoint(ctx: &mut Ctx, ep: Endpoint) -> Result<Endpoint> {
    ctx.routes.invalidate(&ep.tenant);
    let sql = format!(
        "UPDATE endpoints SET spec_json = ?3, enabled = ?4, current_secret = ?5, previous_secret = ?6, \
         previous_expires_at = ?7, disabled_reason = ?8, updated_at = ?9 \
         WHERE id = ?1 AND tenant_id = ?2 RETURNING {ENDPOINT_COLS}"
    );
    let spec = rows::spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let stored = ctx
        .conn
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_row(
                params![
                    ep.id.as_str(),
                    ep.tenant.as_str(),
                    spec,
                    ep.spec.enabled,
                    s.current.expose(),
                    s.previous.as_ref().map(|p| p.expose()),
                    s.previous_expires_at.map(|t| t.0),
                    ep.disabled_reason,
                    ep.updated_at.0
                ],
                rows::endpoint,
            )
        })
        .map_err(db_err)?;
    if !stored.spec.enabled {
        ctx.conn
            .prepare_cached(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, locked_by = NULL, \
                 updated_at = ?2 WHERE endpoint_id = ?1 AND status = 'pending'",
            )
            .and_then(|mut st| st.execute(params![ep.id.as_str(), ep.updated_at.0]))
            .map_err(db_err)?;
    }
    Ok(stored)
}

/// Deletes an endpoint; foreign keys cascade to its deliveries and their attempts.
pub(super) fn delete_endpoint(ctx: &mut Ctx, tenant: &TenantId, id: &EndpointId) -> Result<()> {
    ctx.routes.invalidate(tenant);
    let n = ctx
        .conn
        .prepare_cached("DELETE FROM endpoints WHERE id = ?1 AND tenant_id = ?2")
        .and_then(|mut s| s.execute([id.as_str(), tenant.as_str()]))
        .map_err(db_err)?;
    found(n)
}

/// Inserts an API key.
pub(super) fn create_api_key(conn: &Connection, key: ApiKey) -> Result<ApiKey> {
    let (scope, tenant) = match &key.scope {
        KeyScope::Admin => ("admin", None),
        KeyScope::Tenant(t) => ("tenant", Some(t.as_str())),
    };
    conn.prepare_cached(
        "INSERT INTO api_keys (id, hash, scope, tenant_id, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![key.id.as_str(), key.hash, scope, tenant, key.name, key.created_at.0]))
    .map_err(|e| unique_as(e, || "an API key with this hash or id already exists".to_owned()))?;
    Ok(key)
}

/// Deletes an API key.
pub(super) fn delete_api_key(conn: &Connection, id: &KeyId) -> Result<()> {
    let n = conn
        .prepare_cached("DELETE FROM api_keys WHERE id = ?1")
        .and_then(|mut s| s.execute([id.as_str()]))
        .map_err(db_err)?;
    found(n)
}

fn found(rows: usize) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
