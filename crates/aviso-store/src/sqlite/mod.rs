//! The SQLite backend: one writer thread doing group commits, and a small
//! pool of read-only connections that WAL lets run beside it.

mod audit;
mod dispatch;
mod error;
mod publish;
mod reads;
mod retention;
mod rows;
mod schema;
mod store;
mod tasks;
mod writer;
mod writes;

use crate::{Result, StoreError};
use error::db_err;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use writer::{Ctx, Isolation, Writer};

/// Read-only connections kept open.
const READERS: usize = 4;
/// How long a connection waits on a lock before reporting `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;

/// A [`Store`](crate::Store) in one SQLite file (WAL, `synchronous=FULL`).
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database a `sqlite://PATH` or `sqlite:PATH` URL names.
    pub async fn open(url: &str) -> Result<Self> {
        let path = path_from_url(url)?;
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| StoreError::Other(format!("opening SQLite failed: {e}")))?
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        configure_library();
        let mut conn = Connection::open(&path).map_err(|e| open_err(&path, e))?;
        configure(&conn, true)?;
        schema::migrate(&mut conn)?;
        let idle = (0..READERS)
            .map(|_| open_reader(&path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writer: Writer::spawn(conn)?,
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(idle),
                permits: Arc::new(Semaphore::new(READERS)),
            }),
        })
    }

    /// Runs `f` on the writer thread in the next group commit, in its own savepoint.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> Result<T> + Send + 'static,
    {
        self.writer.write(Isolation::Savepoint, f).await
    }

    /// [`write`](Self::write) without a savepoint, for the hot commands (see
    /// [`Isolation::Bare`] for what they must promise).
    async fn write_bare<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> Result<T> + Send + 'static,
    {
        self.writer.write(Isolation::Bare, f).await
    }

    /// Runs `f` on a pooled read-only connection in a blocking task.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let permit = readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite read pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let res = readers.with(f);
            drop(permit);
            res
        })
        .await
        .map_err(|e| StoreError::Other(format!("read task failed: {e}")))?
    }
}

/// The read-only connections; a semaphore bounds how many are in use at once.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Runs `f` on an idle connection (the caller holds a permit).
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        // A connection lost to a panic is replaced on demand.
        let mut conn = match taken {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let res = f(&mut conn);
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        res
    }
}

/// Process-wide SQLite settings, made before the first connection opens.
///
/// Memory statistics off: with them on, every allocation SQLite makes takes a
/// global mutex to count itself, which nothing here reads. If some other code
/// opened a connection first, SQLite refuses the change and keeps its default.
fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config with SQLITE_CONFIG_MEMSTATUS takes one int;
        // before sqlite3_initialize it only sets a flag, after it returns
        // SQLITE_MISUSE and changes nothing.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::os::raw::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialised already; memory statistics stay on"
            );
        }
    });
}

fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    configure(&conn, false)?;
    Ok(conn)
}

fn configure(conn: &Connection, writer: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if writer {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "SQLite refused WAL mode (got `{mode}`)"
            )));
        }
        // FULL: a 202 must survive power loss, so every commit is fsynced.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        // 4 MB holds what the writer touches again (the right-hand edges of
        // the B-trees and the recent deliveries its outcomes update). A larger
        // cache costs every commit: when a B-tree page splits, SQLite parks a
        // page under the number of the lock page (page 262,145 at 4 KB), and
        // the commit then walks the writer's whole page cache to evict pages
        // past the end of the file. With 32 MB that walk was 2 % of the
        // server's CPU in the fan-out benchmark (BENCHMARKS.md).
        conn.pragma_update(None, "cache_size", -4_000)
            .map_err(db_err)?;
        // Each command of a group commit runs in a savepoint, whose statement
        // journal would otherwise be a temporary file written page by page.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db_err)?;
    }
    Ok(())
}

fn open_err(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot open SQLite database `{}`: {e}",
        path.display()
    ))
}

/// `sqlite://aviso.db` and `sqlite:aviso.db` name `aviso.db`; `sqlite:///tmp/x.db` names `/tmp/x.db`.
fn path_from_url(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Invalid(format!("`{url}` is not a sqlite:// URL")))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Invalid(format!(
            "`{url}` names no database file: use sqlite://PATH (in-memory databases are not supported)"
        )));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_relative_and_absolute_files() {
        assert_eq!(
            path_from_url("sqlite://aviso.db").unwrap(),
            PathBuf::from("aviso.db")
        );
        assert_eq!(
            path_from_url("sqlite:aviso.db").unwrap(),
            PathBuf::from("aviso.db")
        );
        assert_eq!(
            path_from_url("sqlite:///tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            path_from_url("sqlite://data/a.db?mode=rwc").unwrap(),
            PathBuf::from("data/a.db")
        );
        assert!(path_from_url("sqlite://").is_err());
        assert!(path_from_url("sqlite::memory:").is_err());
        assert!(path_from_url("postgres://x").is_err());
    }
}
