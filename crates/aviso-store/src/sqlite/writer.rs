//! The single writer thread: group commit of queued write commands.
//!
//! Every write is a closure sent over a bounded channel. The thread takes
//! what has queued up (up to [`BATCH_CAP`]), runs it all in one `BEGIN
//! IMMEDIATE … COMMIT`, each command inside its own savepoint so a failing
//! command undoes only itself, and answers only after the commit is durable.
//! Batches grow by themselves while the previous fsync runs; nothing waits
//! on purpose.

use super::error::db_err;
use super::publish::Routes;
use crate::{Result, StoreError};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tokio::sync::{mpsc, oneshot};

/// Most commands committed in one transaction.
const BATCH_CAP: usize = 512;
/// Commands that may wait for the writer before senders feel back-pressure.
const QUEUE_CAP: usize = 4096;

/// What a command sees: the write connection and the routing cache.
pub(super) struct Ctx {
    /// The only connection that writes.
    pub conn: Connection,
    /// Enabled endpoints per tenant, kept exact because all writes pass here.
    pub routes: Routes,
}

/// Sends a command's result once its batch's fate is known (`Some` = commit failed).
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A queued write command; dropping it unrun answers `Unavailable`.
type Job = Box<dyn FnOnce(&mut Ctx) -> Reply + Send>;

/// Handle to the writer thread; the thread stops when the handle is dropped.
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn spawn(conn: Connection) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_CAP);
        let ctx = Ctx {
            conn,
            routes: Routes::default(),
        };
        std::thread::Builder::new()
            .name("aviso-sqlite-writer".into())
            .spawn(move || run(ctx, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { tx })
    }

    /// Runs `f` in the next group commit and returns its result once committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx: &mut Ctx| {
            let res = in_savepoint(ctx, f);
            Box::new(move |commit_err: Option<&StoreError>| {
                let res = match commit_err {
                    None => res,
                    Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                let _ = reply_tx.send(res);
            })
        });
        self.tx.send(job).await.map_err(|_| stopped())?;
        reply_rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer could not commit this write".into())
}

/// Runs one command inside a savepoint, undoing it alone if it fails or panics.
fn in_savepoint<T>(ctx: &mut Ctx, f: impl FnOnce(&mut Ctx) -> Result<T>) -> Result<T> {
    exec(&ctx.conn, "SAVEPOINT cmd")?;
    let res = catch_unwind(AssertUnwindSafe(|| f(ctx)))
        .unwrap_or_else(|_| Err(StoreError::Other("a write command panicked".into())));
    if res.is_err() {
        // The command may have loaded routes from rows it then rolled back.
        ctx.routes.clear();
        exec(&ctx.conn, "ROLLBACK TO cmd")?;
    }
    exec(&ctx.conn, "RELEASE cmd")?;
    res
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(db_err)
}

fn run(mut ctx: Ctx, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH_CAP);
    let mut replies: Vec<Reply> = Vec::with_capacity(BATCH_CAP);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH_CAP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let size = batch.len();
        if let Err(e) = exec(&ctx.conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "SQLite writer cannot begin a transaction");
            batch.clear(); // each dropped job answers Unavailable
            continue;
        }
        replies.extend(batch.drain(..).map(|job| job(&mut ctx)));
        let committed = exec(&ctx.conn, "COMMIT");
        let failure = committed.err();
        if let Some(e) = &failure {
            tracing::error!(error = %e, commands = replies.len(), "SQLite group commit failed");
            let _ = ctx.conn.execute_batch("ROLLBACK");
            ctx.routes.clear();
        }
        crate::commit_observed("sqlite", size, started, failure.is_none());
        for reply in replies.drain(..) {
            reply(failure.as_ref());
        }
    }
    tracing::debug!("SQLite writer stopped");
}
