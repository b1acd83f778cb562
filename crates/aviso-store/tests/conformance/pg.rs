//! Throwaway PostgreSQL schemas for tests: each store under test gets its own
//! schema (through `search_path` in the URL), dropped when the test ends.

use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

/// Schemas of earlier runs older than this are dropped (a failed test leaves its schema).
const STALE_SECS: u64 = 3600;
const PREFIX: &str = "aviso_t_";

/// The admin URL tests use, or `None` (and a printed note) when unset.
pub fn admin_url() -> Option<String> {
    match std::env::var("AVISO_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: AVISO_TEST_DATABASE_URL not set");
            None
        }
    }
}

/// A fresh, empty schema; dropped by [`TestSchema::drop_now`].
pub struct TestSchema {
    admin: String,
    /// The schema's name.
    pub name: String,
    /// A database URL whose connections use only this schema.
    pub url: String,
}

impl TestSchema {
    /// Creates a schema named after the current time (so stale ones can be swept).
    pub async fn create(admin: &str) -> TestSchema {
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_init(|| sweep(admin)).await;
        let secs = now_secs();
        let name = format!(
            "{PREFIX}{secs}_{}",
            aviso_core::TenantId::new()
                .as_str()
                .trim_start_matches("ten_")
                .to_ascii_lowercase()
        );
        exec(admin, &format!("CREATE SCHEMA {name}")).await;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        TestSchema {
            admin: admin.to_owned(),
            name,
            url,
        }
    }

    /// Runs SQL in this schema.
    pub async fn exec(&self, sql: &str) {
        exec(&self.url, sql).await;
    }

    /// Drops the schema and all it holds. Many tests drop theirs at once,
    /// each taking a lock per object: a deadlock or a full lock table
    /// between them is retried, as PostgreSQL advises.
    pub async fn drop_now(self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        for attempt in 1.. {
            match try_exec(&self.admin, &sql).await {
                Ok(()) => return,
                Err(e) if attempt < 5 && is_transient(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => panic!("`{sql}` failed: {}", describe(&e)),
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn exec(url: &str, sql: &str) {
    try_exec(url, sql)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed: {}", describe(&e)));
}

async fn try_exec(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {}", describe(&e)));
    let driver = tokio::spawn(conn);
    let res = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    res
}

/// A deadlock, a lock wait cut short or a full lock table.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::OUT_OF_MEMORY,
        ]
        .contains(c)
    })
}

/// The server's own message and code (`db error` alone says nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Drops test schemas left by runs that ended more than an hour ago.
async fn sweep(admin: &str) {
    let (client, conn) = tokio_postgres::connect(admin, NoTls).await.unwrap();
    let driver = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aviso\\_t\\_%'",
            &[],
        )
        .await
        .unwrap();
    let cutoff = now_secs().saturating_sub(STALE_SECS);
    for r in rows {
        let name: String = r.get(0);
        let created = name
            .trim_start_matches(PREFIX)
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|c| c < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
    drop(client);
    let _ = driver.await;
}
