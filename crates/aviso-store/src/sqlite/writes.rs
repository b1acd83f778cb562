//! Catalogue, tenant, endpoint and API-key writes (run on the writer thread).

use super::error::{db_err, unique_as};
use super::rows::{self, to_json, ENDPOINT_COLS, EVENT_TYPE_COLS, TENANT_COLS};
use super::writer::Ctx;
use crate::{Result, StoreError};
use aviso_core::model::{
    ApiKey, Coverage, Endpoint, EndpointOwner, EventType, KeyScope, Owner, Partner, Tenant,
};
use aviso_core::{EndpointId, KeyId, PartnerId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};

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
        "INSERT INTO tenants (id, uid, name, metadata_json, created_at, updated_at, partner_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id.as_str(),
            t.uid,
            t.name,
            metadata,
            t.created_at.0,
            t.updated_at.0,
            t.partner.as_ref().map(PartnerId::as_str)
        ])
    })
    .map_err(|e| tenant_err(e, &t))?;
    Ok(t)
}

fn tenant_err(e: rusqlite::Error, t: &Tenant) -> StoreError {
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

/// Replaces a tenant's uid, name, partner and metadata.
pub(super) fn update_tenant(ctx: &mut Ctx, t: Tenant) -> Result<Tenant> {
    // The partner decides which partner endpoints get the tenant's events.
    ctx.routes.invalidate(&t.id);
    let sql = format!(
        "UPDATE tenants SET uid = ?2, name = ?3, metadata_json = ?4, updated_at = ?5, partner_id = ?6 \
         WHERE id = ?1 RETURNING {TENANT_COLS}"
    );
    let metadata = to_json(&t.metadata)?;
    let partner = t.partner.as_ref().map(PartnerId::as_str);
    ctx.conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(
                params![
                    t.id.as_str(),
                    t.uid,
                    t.name,
                    metadata,
                    t.updated_at.0,
                    partner
                ],
                rows::tenant,
            )
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            e => tenant_err(e, &t),
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

/// Forgets cached routes an endpoint write may change.
fn invalidate_routes(ctx: &mut Ctx, owner: &EndpointOwner) {
    match owner {
        EndpointOwner::Tenant(t) => ctx.routes.invalidate(t),
        // A partner endpoint may route any of the partner's tenants.
        EndpointOwner::Partner { .. } => ctx.routes.clear(),
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
fn write_coverage(conn: &Connection, ep: &Endpoint) -> Result<()> {
    conn.prepare_cached("DELETE FROM endpoint_tenants WHERE endpoint_id = ?1")
        .and_then(|mut s| s.execute([ep.id.as_str()]))
        .map_err(db_err)?;
    let EndpointOwner::Partner {
        partner,
        covers: Coverage::Tenants(list),
    } = &ep.owner
    else {
        return Ok(());
    };
    let mut check = conn
        .prepare_cached("SELECT partner_id FROM tenants WHERE id = ?1")
        .map_err(db_err)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO endpoint_tenants (endpoint_id, tenant_id) VALUES (?1, ?2)",
        )
        .map_err(db_err)?;
    for t in list {
        let theirs: Option<Option<String>> = check
            .query_row([t.as_str()], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        if theirs.flatten().as_deref() != Some(partner.as_str()) {
            return Err(StoreError::Invalid(format!(
                "tenant `{t}` is not a tenant of partner `{partner}`"
            )));
        }
        insert
            .execute([ep.id.as_str(), t.as_str()])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Inserts an endpoint (and a partner endpoint's tenant list).
pub(super) fn create_endpoint(ctx: &mut Ctx, ep: Endpoint) -> Result<Endpoint> {
    invalidate_routes(ctx, &ep.owner);
    let spec = rows::spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let (tenant, partner, all) = owner_cols(&ep.owner);
    ctx.conn
        .prepare_cached(
            "INSERT INTO endpoints (id, tenant_id, spec_json, enabled, current_secret, previous_secret, \
             previous_expires_at, disabled_reason, created_at, updated_at, partner_id, all_tenants) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut st| {
            st.execute(params![
                ep.id.as_str(),
                tenant,
                spec,
                ep.spec.enabled,
                s.current.expose(),
                s.previous.as_ref().map(|p| p.expose()),
                s.previous_expires_at.map(|t| t.0),
                ep.disabled_reason,
                ep.created_at.0,
                ep.updated_at.0,
                partner,
                all
            ])
        })
        .map_err(|e| unique_as(e, || format!("an endpoint with id `{}` already exists", ep.id)))?;
    write_coverage(&ctx.conn, &ep)?;
    Ok(ep)
}

/// Replaces an endpoint's spec, secrets, disabled reason and coverage;
/// disabling cancels its pending deliveries.
pub(super) fn update_endpoint(ctx: &mut Ctx, ep: Endpoint) -> Result<Endpoint> {
    invalidate_routes(ctx, &ep.owner);
    let spec = rows::spec_to_json(&ep.spec)?;
    let s = &ep.secrets;
    let (_, _, all) = owner_cols(&ep.owner);
    let n = ctx
        .conn
        .prepare_cached(
            "UPDATE endpoints SET spec_json = ?3, enabled = ?4, current_secret = ?5, previous_secret = ?6, \
             previous_expires_at = ?7, disabled_reason = ?8, updated_at = ?9, all_tenants = ?10 \
             WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)",
        )
        .and_then(|mut st| {
            st.execute(params![
                ep.id.as_str(),
                ep.owner.owner().as_str(),
                spec,
                ep.spec.enabled,
                s.current.expose(),
                s.previous.as_ref().map(|p| p.expose()),
                s.previous_expires_at.map(|t| t.0),
                ep.disabled_reason,
                ep.updated_at.0,
                all
            ])
        })
        .map_err(db_err)?;
    found(n)?;
    write_coverage(&ctx.conn, &ep)?;
    if !ep.spec.enabled {
        ctx.conn
            .prepare_cached(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, locked_by = NULL, \
                 updated_at = ?2 WHERE endpoint_id = ?1 AND status = 'pending'",
            )
            .and_then(|mut st| st.execute(params![ep.id.as_str(), ep.updated_at.0]))
            .map_err(db_err)?;
    }
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1");
    super::reads::one(&ctx.conn, &sql, [ep.id.as_str()], rows::endpoint)
}

/// Deletes an endpoint; foreign keys cascade to its deliveries and their attempts.
pub(super) fn delete_endpoint(ctx: &mut Ctx, owner: &Owner, id: &EndpointId) -> Result<()> {
    match owner {
        Owner::Tenant(t) => ctx.routes.invalidate(t),
        Owner::Partner(_) => ctx.routes.clear(),
    }
    let n = ctx
        .conn
        .prepare_cached(
            "DELETE FROM endpoints WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)",
        )
        .and_then(|mut s| s.execute([id.as_str(), owner.as_str()]))
        .map_err(db_err)?;
    found(n)
}

/// Inserts an API key.
pub(super) fn create_api_key(conn: &Connection, key: ApiKey) -> Result<ApiKey> {
    let (scope, tenant, partner) = match &key.scope {
        KeyScope::Admin => ("admin", None, None),
        KeyScope::Tenant(t) => ("tenant", Some(t.as_str()), None),
        KeyScope::Partner(p) => ("partner", None, Some(p.as_str())),
    };
    conn.prepare_cached(
        "INSERT INTO api_keys (id, hash, scope, tenant_id, name, created_at, partner_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key.id.as_str(),
            key.hash,
            scope,
            tenant,
            key.name,
            key.created_at.0,
            partner
        ])
    })
    .map_err(|e| {
        unique_as(e, || {
            "an API key with this hash or id already exists".to_owned()
        })
    })?;
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

/// Inserts a partner.
pub(super) fn create_partner(conn: &Connection, p: Partner) -> Result<Partner> {
    let metadata = to_json(&p.metadata)?;
    conn.prepare_cached(
        "INSERT INTO partners (id, name, metadata_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![p.id.as_str(), p.name, metadata, p.created_at.0, p.updated_at.0]))
    .map_err(|e| unique_as(e, || format!("a partner with id `{}` already exists", p.id)))?;
    Ok(p)
}
