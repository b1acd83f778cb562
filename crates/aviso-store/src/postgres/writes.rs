//! Catalogue, tenant, endpoint and API-key writes, each in its caller's transaction.
//!
//! Writes that change a tenant's routes take the tenant's advisory lock first,
//! as publishes do, so a publish sees an endpoint change entirely or not at all.

use super::error::{db_err, unique_as};
use super::rows::{self, ENDPOINT_COLS, EVENT_TYPE_COLS, TENANT_COLS};
use super::{lock_tenant, notify};
use crate::json::{spec_to_json, to_json};
use crate::{Result, StoreError};
use aviso_core::model::{ApiKey, Endpoint, EventType, KeyScope, Tenant};
use aviso_core::{EndpointId, KeyId, TenantId};
use deadpool_postgres::GenericClient;

fn opt_json(v: &Option<serde_json::Value>) -> Result<Option<String>> {
    v.as_ref().map(to_json).transpose()
}

/// Inserts an event type.
pub(super) async fn create_event_type(c: &impl GenericClient, et: EventType) -> Result<EventType> {
    let (schema, example) = (opt_json(&et.schema)?, opt_json(&et.example)?);
    let stmt = c
        .prepare_cached(
            "INSERT INTO event_types (name, description, grp, schema_json, example_json, archived, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &et.name.as_str(),
            &et.description,
            &et.group,
            &schema,
            &example,
            &et.archived,
            &et.created_at.0,
            &et.updated_at.0,
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            format!("an event type named `{}` already exists", et.name)
        })
    })?;
    Ok(et)
}

/// Replaces an event type's mutable fields.
pub(super) async fn update_event_type(c: &impl GenericClient, et: EventType) -> Result<EventType> {
    let sql = format!(
        "UPDATE event_types SET description = $2, grp = $3, schema_json = $4, example_json = $5, \
         archived = $6, updated_at = $7 WHERE name = $1 RETURNING {EVENT_TYPE_COLS}"
    );
    let (schema, example) = (opt_json(&et.schema)?, opt_json(&et.example)?);
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &et.name.as_str(),
                &et.description,
                &et.group,
                &schema,
                &example,
                &et.archived,
                &et.updated_at.0,
            ],
        )
        .await
        .map_err(db_err)?;
    rows::event_type(&row.ok_or(StoreError::NotFound)?)
}

/// Inserts a tenant.
pub(super) async fn create_tenant(c: &impl GenericClient, t: Tenant) -> Result<Tenant> {
    let metadata = to_json(&t.metadata)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO tenants (id, uid, name, metadata_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &t.id.as_str(),
            &t.uid,
            &t.name,
            &metadata,
            &t.created_at.0,
            &t.updated_at.0,
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            format!("a tenant with uid `{}` already exists", t.uid)
        })
    })?;
    Ok(t)
}

/// Replaces a tenant's uid, name and metadata.
pub(super) async fn update_tenant(c: &impl GenericClient, t: Tenant) -> Result<Tenant> {
    let sql = format!(
        "UPDATE tenants SET uid = $2, name = $3, metadata_json = $4, updated_at = $5 WHERE id = $1 \
         RETURNING {TENANT_COLS}"
    );
    let metadata = to_json(&t.metadata)?;
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_opt(
            &stmt,
            &[&t.id.as_str(), &t.uid, &t.name, &metadata, &t.updated_at.0],
        )
        .await
        .map_err(|e| {
            unique_as(e, || {
                format!("a tenant with uid `{}` already exists", t.uid)
            })
        })?;
    rows::tenant(&row.ok_or(StoreError::NotFound)?)
}

/// Deletes a tenant; foreign keys cascade to everything it owns.
pub(super) async fn delete_tenant(c: &impl GenericClient, id: &TenantId) -> Result<()> {
    lock_tenant(c, id.as_str()).await?;
    let stmt = c
        .prepare_cached(
            "SELECT pg_notify('aviso.e:' || current_schema(), id) FROM endpoints WHERE tenant_id = $1",
        )
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&id.as_str()]).await.map_err(db_err)?;
    let stmt = c
        .prepare_cached("DELETE FROM tenants WHERE id = $1")
        .await
        .map_err(db_err)?;
    found(c.execute(&stmt, &[&id.as_str()]).await.map_err(db_err)?)?;
    notify::keys_changed(c).await
}

/// Inserts an endpoint.
pub(super) async fn create_endpoint(c: &impl GenericClient, ep: Endpoint) -> Result<Endpoint> {
    lock_tenant(c, ep.tenant.as_str()).await?;
    let spec = spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoints (id, tenant_id, spec_json, enabled, current_secret, previous_secret, \
             previous_expires_at, disabled_reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &ep.id.as_str(),
            &ep.tenant.as_str(),
            &spec,
            &ep.spec.enabled,
            &s.current.expose(),
            &s.previous.as_ref().map(|p| p.expose()),
            &s.previous_expires_at.map(|t| t.0),
            &ep.disabled_reason,
            &ep.created_at.0,
            &ep.updated_at.0,
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            format!("an endpoint with id `{}` already exists", ep.id)
        })
    })?;
    Ok(ep)
}

/// Replaces an endpoint's spec, secrets and disabled reason; disabling cancels its pending deliveries.
pub(super) async fn update_endpoint(c: &impl GenericClient, ep: Endpoint) -> Result<Endpoint> {
    lock_tenant(c, ep.tenant.as_str()).await?;
    let sql = format!(
        "UPDATE endpoints SET spec_json = $3, enabled = $4, current_secret = $5, previous_secret = $6, \
         previous_expires_at = $7, disabled_reason = $8, updated_at = $9 \
         WHERE id = $1 AND tenant_id = $2 RETURNING {ENDPOINT_COLS}"
    );
    let spec = spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &ep.id.as_str(),
                &ep.tenant.as_str(),
                &spec,
                &ep.spec.enabled,
                &s.current.expose(),
                &s.previous.as_ref().map(|p| p.expose()),
                &s.previous_expires_at.map(|t| t.0),
                &ep.disabled_reason,
                &ep.updated_at.0,
            ],
        )
        .await
        .map_err(db_err)?;
    let stored = rows::endpoint(&row.ok_or(StoreError::NotFound)?)?;
    if !stored.spec.enabled {
        let stmt = c
            .prepare_cached(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, locked_by = NULL, \
                 updated_at = $2 WHERE endpoint_id = $1 AND status = 'pending'",
            )
            .await
            .map_err(db_err)?;
        c.execute(&stmt, &[&ep.id.as_str(), &ep.updated_at.0])
            .await
            .map_err(db_err)?;
    }
    notify::endpoint_changed(c, ep.id.as_str()).await?;
    Ok(stored)
}

/// Deletes an endpoint; foreign keys cascade to its deliveries and their attempts.
pub(super) async fn delete_endpoint(
    c: &impl GenericClient,
    tenant: &TenantId,
    id: &EndpointId,
) -> Result<()> {
    lock_tenant(c, tenant.as_str()).await?;
    let stmt = c
        .prepare_cached("DELETE FROM endpoints WHERE id = $1 AND tenant_id = $2")
        .await
        .map_err(db_err)?;
    found(
        c.execute(&stmt, &[&id.as_str(), &tenant.as_str()])
            .await
            .map_err(db_err)?,
    )?;
    notify::endpoint_changed(c, id.as_str()).await
}

/// Inserts an API key.
pub(super) async fn create_api_key(c: &impl GenericClient, key: ApiKey) -> Result<ApiKey> {
    let (scope, tenant) = match &key.scope {
        KeyScope::Admin => ("admin", None),
        KeyScope::Tenant(t) => ("tenant", Some(t.as_str())),
    };
    let stmt = c
        .prepare_cached(
            "INSERT INTO api_keys (id, hash, scope, tenant_id, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &key.id.as_str(),
            &key.hash,
            &scope,
            &tenant,
            &key.name,
            &key.created_at.0,
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            "an API key with this hash or id already exists".to_owned()
        })
    })?;
    Ok(key)
}

/// Deletes an API key.
pub(super) async fn delete_api_key(c: &impl GenericClient, id: &KeyId) -> Result<()> {
    let stmt = c
        .prepare_cached("DELETE FROM api_keys WHERE id = $1")
        .await
        .map_err(db_err)?;
    found(c.execute(&stmt, &[&id.as_str()]).await.map_err(db_err)?)?;
    notify::keys_changed(c).await
}

fn found(rows: u64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
