//! Catalogue, tenant, endpoint and API-key writes, each in its caller's transaction.
//!
//! Writes that change a tenant's routes take the tenant's advisory lock first,
//! as publishes do, so a publish sees an endpoint change entirely or not at all.

use super::error::{db_err, unique_as};
use super::rows::{self, ENDPOINT_COLS, EVENT_TYPE_COLS, TENANT_COLS};
use super::{lock_partner_routes, lock_tenant, notify};
use crate::json::{spec_to_json, to_json};
use crate::{Result, StoreError};
use aviso_core::model::{
    ApiKey, Coverage, Endpoint, EndpointOwner, EventType, KeyScope, Owner, Partner, Tenant,
};
use aviso_core::{EndpointId, KeyId, PartnerId, TenantId};
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
            "INSERT INTO tenants (id, uid, name, metadata_json, created_at, updated_at, partner_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            &t.partner.as_ref().map(PartnerId::as_str),
        ],
    )
    .await
    .map_err(|e| tenant_err(e, &t))?;
    Ok(t)
}

fn tenant_err(e: tokio_postgres::Error, t: &Tenant) -> StoreError {
    match unique_as(e, || {
        format!("a tenant with uid `{}` already exists", t.uid)
    }) {
        StoreError::NotFound => StoreError::Invalid(format!(
            "partner `{}` does not exist",
            t.partner
                .as_ref()
                .map(PartnerId::as_str)
                .unwrap_or_default()
        )),
        other => other,
    }
}

/// Replaces a tenant's uid, name, partner and metadata. Takes the tenant's
/// lock: the partner decides which partner endpoints route its events.
pub(super) async fn update_tenant(c: &impl GenericClient, t: Tenant) -> Result<Tenant> {
    lock_tenant(c, t.id.as_str()).await?;
    let sql = format!(
        "UPDATE tenants SET uid = $2, name = $3, metadata_json = $4, updated_at = $5, partner_id = $6 \
         WHERE id = $1 RETURNING {TENANT_COLS}"
    );
    let metadata = to_json(&t.metadata)?;
    let partner = t.partner.as_ref().map(PartnerId::as_str);
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &t.id.as_str(),
                &t.uid,
                &t.name,
                &metadata,
                &t.updated_at.0,
                &partner,
            ],
        )
        .await
        .map_err(|e| tenant_err(e, &t))?;
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

/// Takes the lock that keeps publishes from seeing half an endpoint write.
async fn lock_routes(c: &impl GenericClient, owner: &Owner) -> Result<()> {
    match owner {
        Owner::Tenant(t) => lock_tenant(c, t.as_str()).await,
        Owner::Partner(_) => lock_partner_routes(c).await,
    }
}

/// The owner columns of an endpoint row: tenant_id, partner_id, all_tenants.
fn owner_cols(owner: &EndpointOwner) -> (Option<&str>, Option<&str>, bool) {
    match owner {
        EndpointOwner::Tenant(t) => (Some(t.as_str()), None, false),
        EndpointOwner::Partner { partner, covers } => (
            None,
            Some(partner.as_str()),
            matches!(covers, Coverage::AllTenants),
        ),
    }
}

/// Writes a partner endpoint's tenant list, checking each tenant is the partner's.
async fn write_coverage(c: &impl GenericClient, ep: &Endpoint) -> Result<()> {
    let stmt = c
        .prepare_cached("DELETE FROM endpoint_tenants WHERE endpoint_id = $1")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&ep.id.as_str()]).await.map_err(db_err)?;
    let EndpointOwner::Partner {
        partner,
        covers: Coverage::Tenants(list),
    } = &ep.owner
    else {
        return Ok(());
    };
    let ids: Vec<&str> = list.iter().map(TenantId::as_str).collect();
    let stmt = c
        .prepare_cached(
            "SELECT u.id FROM unnest($1::text[]) AS u(id) LEFT JOIN tenants t ON t.id = u.id \
             WHERE t.partner_id IS DISTINCT FROM $2 LIMIT 1",
        )
        .await
        .map_err(db_err)?;
    if let Some(r) = c
        .query_opt(&stmt, &[&ids, &partner.as_str()])
        .await
        .map_err(db_err)?
    {
        let t: &str = rows::get(&r, 0)?;
        return Err(StoreError::Invalid(format!(
            "tenant `{t}` is not a tenant of partner `{partner}`"
        )));
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_tenants (endpoint_id, tenant_id) \
             SELECT $1, u FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&ep.id.as_str(), &ids])
        .await
        .map_err(db_err)
        .map(drop)
}

/// Inserts an endpoint (and a partner endpoint's tenant list).
pub(super) async fn create_endpoint(c: &impl GenericClient, ep: Endpoint) -> Result<Endpoint> {
    lock_routes(c, &ep.owner.owner()).await?;
    let spec = spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let (tenant, partner, all) = owner_cols(&ep.owner);
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoints (id, tenant_id, spec_json, enabled, current_secret, previous_secret, \
             previous_expires_at, disabled_reason, created_at, updated_at, partner_id, all_tenants) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &ep.id.as_str(),
            &tenant,
            &spec,
            &ep.spec.enabled,
            &s.current.expose(),
            &s.previous.as_ref().map(|p| p.expose()),
            &s.previous_expires_at.map(|t| t.0),
            &ep.disabled_reason,
            &ep.created_at.0,
            &ep.updated_at.0,
            &partner,
            &all,
        ],
    )
    .await
    .map_err(|e| {
        unique_as(e, || {
            format!("an endpoint with id `{}` already exists", ep.id)
        })
    })?;
    write_coverage(c, &ep).await?;
    Ok(ep)
}

/// Replaces an endpoint's spec, secrets, disabled reason and coverage;
/// disabling cancels its pending deliveries.
pub(super) async fn update_endpoint(c: &impl GenericClient, ep: Endpoint) -> Result<Endpoint> {
    let owner = ep.owner.owner();
    lock_routes(c, &owner).await?;
    let spec = spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let (_, _, all) = owner_cols(&ep.owner);
    let stmt = c
        .prepare_cached(
            "UPDATE endpoints SET spec_json = $3, enabled = $4, current_secret = $5, previous_secret = $6, \
             previous_expires_at = $7, disabled_reason = $8, updated_at = $9, all_tenants = $10 \
             WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)",
        )
        .await
        .map_err(db_err)?;
    let n = c
        .execute(
            &stmt,
            &[
                &ep.id.as_str(),
                &owner.as_str(),
                &spec,
                &ep.spec.enabled,
                &s.current.expose(),
                &s.previous.as_ref().map(|p| p.expose()),
                &s.previous_expires_at.map(|t| t.0),
                &ep.disabled_reason,
                &ep.updated_at.0,
                &all,
            ],
        )
        .await
        .map_err(db_err)?;
    found(n)?;
    write_coverage(c, &ep).await?;
    if !ep.spec.enabled {
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
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1");
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_one(&stmt, &[&ep.id.as_str()])
        .await
        .map_err(db_err)?;
    rows::endpoint(&row)
}

/// Deletes an endpoint; foreign keys cascade to its deliveries and their attempts.
pub(super) async fn delete_endpoint(
    c: &impl GenericClient,
    owner: &Owner,
    id: &EndpointId,
) -> Result<()> {
    lock_routes(c, owner).await?;
    let stmt = c
        .prepare_cached(
            "DELETE FROM endpoints WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)",
        )
        .await
        .map_err(db_err)?;
    found(
        c.execute(&stmt, &[&id.as_str(), &owner.as_str()])
            .await
            .map_err(db_err)?,
    )?;
    notify::endpoint_changed(c, id.as_str()).await
}

/// Inserts an API key.
pub(super) async fn create_api_key(c: &impl GenericClient, key: ApiKey) -> Result<ApiKey> {
    let (scope, tenant, partner) = match &key.scope {
        KeyScope::Admin => ("admin", None, None),
        KeyScope::Tenant(t) => ("tenant", Some(t.as_str()), None),
        KeyScope::Partner(p) => ("partner", None, Some(p.as_str())),
    };
    let stmt = c
        .prepare_cached(
            "INSERT INTO api_keys (id, hash, scope, tenant_id, name, created_at, partner_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            &partner,
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

/// Inserts a partner.
pub(super) async fn create_partner(c: &impl GenericClient, p: Partner) -> Result<Partner> {
    let metadata = to_json(&p.metadata)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO partners (id, name, metadata_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &p.id.as_str(),
            &p.name,
            &metadata,
            &p.created_at.0,
            &p.updated_at.0,
        ],
    )
    .await
    .map_err(|e| unique_as(e, || format!("a partner with id `{}` already exists", p.id)))?;
    Ok(p)
}
