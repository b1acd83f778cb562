//! Embedded, numbered migrations tracked in `aviso_schema_version`.

use super::error::db_err;
use crate::{Result, StoreError};
use deadpool_postgres::Object;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`; append only, never edit.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_ordering_retention.sql"),
    include_str!("migrations/0003_operations_partners.sql"),
];

/// Serialises migrations of nodes starting together (any fixed number will do).
const MIGRATION_LOCK: i64 = 0x4156_4953_4f4d_4947; // "AVISOMIG"

/// Brings the schema up to date in one transaction, under an advisory lock
/// so that nodes starting at the same time migrate once.
pub(super) async fn migrate(conn: &mut Object) -> Result<()> {
    let tx = conn.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('aviso_schema_version') IS NOT NULL",
            &[],
        )
        .await
        .map_err(db_err)?
        .get(0);
    if !exists {
        tx.batch_execute(
            "CREATE TABLE aviso_schema_version (version INTEGER NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(db_err)?;
    }
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM aviso_schema_version",
            &[],
        )
        .await
        .map_err(db_err)?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Other(format!(
            "database schema version {current} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql).await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO aviso_schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(db_err)?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    tx.commit().await.map_err(db_err)
}
