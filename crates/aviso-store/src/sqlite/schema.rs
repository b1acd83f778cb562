//! Embedded, numbered migrations tracked with `PRAGMA user_version`.

use super::error::db_err;
use crate::{Result, StoreError};
use rusqlite::Connection;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`; append only, never edit.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0003_operations_partners.sql"),
];

/// Brings the schema up to date in one transaction. Foreign keys are off
/// meanwhile (they cannot change inside a transaction), so a migration may
/// rebuild a table other tables refer to; they are checked before commit.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(db_err)?;
    let res = migrate_in_tx(conn);
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_err)?;
    res
}

fn migrate_in_tx(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(db_err)?
        .try_into()
        .unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Other(format!(
            "database schema version {current} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(db_err)?;
        tracing::info!(version = i + 1, "applied SQLite migration");
    }
    let broken: Option<String> = tx
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .next()
                .transpose()
        })
        .map_err(db_err)?;
    if let Some(table) = broken {
        return Err(StoreError::Other(format!(
            "migration left a broken foreign key in table `{table}`"
        )));
    }
    tx.commit().map_err(db_err)
}
