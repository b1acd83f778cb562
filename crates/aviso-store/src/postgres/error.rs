//! The one place PostgreSQL driver and pool errors become [`StoreError`]s.

use crate::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Translates a driver error into what callers can act on.
pub(super) fn db_err(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, timed out or was closed.
        return StoreError::Unavailable(format!("PostgreSQL connection lost: {e}"));
    };
    let text = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string());
    match code {
        c if *c == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(format!("already exists ({text})"))
        }
        // A row refers to a parent that does not exist: to the caller, that parent is not found.
        c if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound,
        c if is_transient(c) => StoreError::Unavailable(format!("PostgreSQL: {text}")),
        _ => StoreError::Other(format!("PostgreSQL: {text}")),
    }
}

/// Like [`db_err`], but a uniqueness clash becomes `Conflict(what())`.
pub(super) fn unique_as(e: tokio_postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what())
    } else {
        db_err(e)
    }
}

/// A connection could not be had from the pool.
pub(super) fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match e.code() {
            Some(_) => db_err(e),
            None => StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")),
        },
        PoolError::Timeout(_) => {
            StoreError::Unavailable("timed out waiting for a PostgreSQL connection".into())
        }
        other => StoreError::Unavailable(format!("PostgreSQL pool: {other}")),
    }
}

/// Errors that go away by themselves: server restarts, overload, lock conflicts.
fn is_transient(c: &SqlState) -> bool {
    let class = &c.code()[..2];
    // 08: connection exception, 53: insufficient resources, 57: operator
    // intervention (shutdown, restart), 40: rollback (deadlock, serialization).
    matches!(class, "08" | "53" | "57" | "40") || *c == SqlState::LOCK_NOT_AVAILABLE
}

/// Bad JSON or an unparsable value read back from the database.
pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("corrupt {what} in database: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classes() {
        assert!(is_transient(&SqlState::ADMIN_SHUTDOWN));
        assert!(is_transient(&SqlState::T_R_DEADLOCK_DETECTED));
        assert!(is_transient(&SqlState::TOO_MANY_CONNECTIONS));
        assert!(!is_transient(&SqlState::SYNTAX_ERROR));
    }
}
