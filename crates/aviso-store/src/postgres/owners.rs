//! Exclusive endpoints: one live node at a time sends to an endpoint.
//!
//! The dispatcher enforces an endpoint's in-flight limit, rate limit and
//! FIFO order in its own memory. Giving each endpoint a single owning node
//! makes those limits hold across every node without a shared counter on
//! the hot path. A node owns an endpoint from its first claim on it until
//! its lease runs out, it leaves, or it holds no claim on the endpoint when
//! its keeper looks (then another node may take over at once: nothing of
//! the endpoint is in flight at the old owner).

use super::error::db_err;
use crate::Result;
use deadpool_postgres::GenericClient;
use std::collections::HashSet;
use tokio_postgres::error::SqlState;

/// Takes ownership of the free endpoints among `endpoints` (and of those of
/// dead nodes) for `node`; returns every one of them `node` now owns.
///
/// The owner's row is rewritten even when `node` already owns it, so that a
/// keeper releasing it concurrently fails its snapshot check instead of
/// releasing an endpoint that just got a claim.
pub(super) async fn acquire(
    c: &impl GenericClient,
    node: &str,
    endpoints: &[&str],
) -> Result<HashSet<String>> {
    if endpoints.is_empty() {
        return Ok(HashSet::new());
    }
    // Sorted, so two nodes acquiring overlapping sets never wait on each other in a cycle.
    let mut sorted: Vec<&str> = endpoints.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_owners (endpoint_id, node) \
             SELECT e, $1 FROM unnest($2::text[]) WITH ORDINALITY AS u(e, i) ORDER BY i \
             ON CONFLICT (endpoint_id) DO UPDATE SET node = EXCLUDED.node \
             WHERE endpoint_owners.node = EXCLUDED.node OR NOT EXISTS ( \
               SELECT 1 FROM nodes n WHERE n.node = endpoint_owners.node AND n.lease_until > now()) \
             RETURNING endpoint_id",
        )
        .await
        .map_err(db_err)?;
    let rows = c.query(&stmt, &[&node, &sorted]).await.map_err(db_err)?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// SQL condition (on `d`, the deliveries row; `$node` this node) true when
/// another live node owns the delivery's endpoint.
pub(super) fn owned_by_other(node_param: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM endpoint_owners o JOIN nodes n ON n.node = o.node \
         WHERE o.endpoint_id = d.endpoint_id AND o.node <> ${node_param} AND n.lease_until > now())"
    )
}

/// Gives up the endpoints on which `nodes` hold no claim, so idle endpoints
/// move to whichever node claims them next. Runs in its own `REPEATABLE
/// READ` transaction; a concurrent claim makes it skip this round.
pub(super) async fn release_idle(
    conn: &mut deadpool_postgres::Object,
    nodes: &[String],
) -> Result<u64> {
    let tx = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(db_err)?;
    let stmt = tx
        .prepare_cached(
            "DELETE FROM endpoint_owners o WHERE o.node = ANY($1::text[]) AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.locked_by = o.node AND d.endpoint_id = o.endpoint_id)",
        )
        .await
        .map_err(db_err)?;
    match tx.execute(&stmt, &[&nodes]).await {
        Ok(n) => {
            tx.commit().await.map_err(db_err)?;
            Ok(n)
        }
        Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Ok(0),
        Err(e) => Err(db_err(e)),
    }
}
