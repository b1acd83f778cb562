//! Embedded, numbered migrations tracked with `PRAGMA user_version`.

use super::error::db_err;
use crate::{Result, StoreError};
use rusqlite::Connection;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`; append only, never edit.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_ordering_retention.sql"),
    include_str!("migrations/0003_operations_partners.sql"),
    include_str!("migrations/0004_lean_delivery_writes.sql"),
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
    if current == MIGRATIONS.len() {
        // Up to date: nothing to apply and nothing to check (the foreign key
        // check reads every row, seconds with a million pending deliveries).
        return tx.commit().map_err(db_err);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening an up-to-date database applies nothing and does not walk the
    /// tables (the foreign key check reads every row): a dangling row planted
    /// with foreign keys off does not stop it (the check would refuse it).
    #[test]
    fn an_up_to_date_database_is_not_checked_row_by_row() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        conn.execute(
            "INSERT INTO attempts (id, delivery_id, at, duration_ms, response_headers_json) \
             VALUES ('att_1', 'dlv_missing', 0, 0, '[]')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
    }

    /// Migration 3 rebuilds `endpoints` and `api_keys`, which other tables
    /// refer to: rows written under version 1 must survive with their links.
    #[test]
    fn upgrading_keeps_endpoints_keys_and_their_deliveries() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('ten_1', 'u1', 'T', '{}', 0, 0);
             INSERT INTO endpoints VALUES ('ep_1', 'ten_1', '{}', 1, 'whsec_x', NULL, NULL, NULL, 0, 0);
             INSERT INTO api_keys VALUES ('key_1', 'h1', 'tenant', 'ten_1', 'k', 0);
             INSERT INTO api_keys VALUES ('key_2', 'h2', 'admin', NULL, 'a', 0);
             INSERT INTO events (id, tenant_id, event_type, payload, created_at)
                 VALUES ('evt_1', 'ten_1', 'A.X', '{}', 0);
             INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status,
                 round_started_at, created_at, updated_at)
                 VALUES ('dlv_1', 'evt_1', 'ep_1', 'ten_1', 'A.X', 'pending', 0, 0, 0);
             INSERT INTO attempts (id, delivery_id, at, duration_ms, status_code, response_headers_json)
                 VALUES ('att_1', 'dlv_1', 5, 7, 500, '[]');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("PRAGMA user_version"), MIGRATIONS.len() as i64);
        assert_eq!(
            count("SELECT count(*) FROM endpoints WHERE tenant_id = 'ten_1'"),
            1
        );
        assert_eq!(count("SELECT count(*) FROM api_keys"), 2);
        assert_eq!(
            count("SELECT count(*) FROM endpoint_coverage WHERE endpoint_id = 'ep_1'"),
            1
        );
        // Migration 4 rebuilds `attempts` keyed by delivery: rows kept, a
        // repeated attempt id refused, the claims index gone.
        assert_eq!(
            count("SELECT count(*) FROM attempts WHERE delivery_id = 'dlv_1' AND id = 'att_1' AND status_code = 500"),
            1
        );
        assert!(conn
            .execute(
                "INSERT INTO attempts (id, delivery_id, at, duration_ms, response_headers_json) \
                 VALUES ('att_1', 'dlv_1', 6, 0, '[]')",
                [],
            )
            .is_err());
        assert_eq!(
            count("SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_claimed'"),
            0
        );
        // The deliveries' foreign key still points at the rebuilt table.
        conn.execute("DELETE FROM endpoints WHERE id = 'ep_1'", [])
            .unwrap();
        assert_eq!(count("SELECT count(*) FROM deliveries"), 0);
        assert_eq!(count("SELECT count(*) FROM attempts"), 0);
        assert!(conn
            .execute(
                "INSERT INTO api_keys (id, hash, scope, name, created_at) VALUES ('key_3', 'h3', 'partner', 'p', 0)",
                [],
            )
            .is_err(), "a partner key needs its partner");
    }
}
