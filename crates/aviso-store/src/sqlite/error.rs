//! The one place SQLite errors become [`StoreError`]s.

use crate::StoreError;
use rusqlite::ErrorCode;

/// Translates a driver error into what callers can act on.
pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed => StoreError::Unavailable(e.to_string()),
            ErrorCode::ConstraintViolation if is_unique(&e) => {
                StoreError::Conflict(format!("already exists ({e})"))
            }
            ErrorCode::ConstraintViolation if is_foreign_key(&e) => StoreError::NotFound,
            _ => StoreError::Other(e.to_string()),
        },
        _ => StoreError::Other(e.to_string()),
    }
}

/// Like [`db_err`], but a uniqueness clash becomes `Conflict(what())`.
pub(super) fn unique_as(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    if is_unique(&e) {
        StoreError::Conflict(what())
    } else {
        db_err(e)
    }
}

fn extended_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

fn is_unique(e: &rusqlite::Error) -> bool {
    matches!(
        extended_code(e),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// A row refers to a parent that does not exist (e.g. an endpoint for a
/// deleted tenant): to the caller, that parent is not found.
/// A foreign key refused the row (what it refers to is gone).
pub(super) fn is_foreign_key(e: &rusqlite::Error) -> bool {
    extended_code(e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// Bad JSON or an unparsable value read back from the database.
pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("corrupt {what} in database: {e}"))
}
