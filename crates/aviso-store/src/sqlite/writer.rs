//! The single writer thread: group commit of queued write commands.
//!
//! Every write is a closure sent over a bounded channel. The thread takes
//! what has queued up (up to [`BATCH_CAP`]), runs it all in one `BEGIN
//! IMMEDIATE … COMMIT`, each command inside its own savepoint so a failing
//! command undoes only itself, and answers only after the commit is durable.
//! Batches grow by themselves while the previous fsync runs; nothing waits
//! on purpose.
//!
//! The hot commands (publishing, recording outcomes) run without a savepoint
//! ([`Isolation::Bare`]): a savepoint copies every page a command touches
//! into its journal first, and every command of a batch touches the same
//! right-hand leaves of the same B-trees, so those copies were the writer's
//! largest cost after the WAL itself. Should such a command fail after it
//! changed rows, the whole batch is rolled back and every command in it
//! answers `Unavailable`: nothing is acknowledged that was not committed.

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
/// A queued write command; dropping it unrun answers `Unavailable`. The
/// error it returns beside its reply, if any, means the transaction holds
/// part of a failed command and must be rolled back whole.
type Job = Box<dyn FnOnce(&mut Ctx) -> (Reply, Option<StoreError>) + Send>;

/// How a command is kept apart from the others in its group commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isolation {
    /// In its own savepoint: a failure undoes this command alone.
    Savepoint,
    /// Without one, for commands whose failures come before their first
    /// change or are failures of the whole transaction anyway (I/O, a full
    /// disk): one that fails after changing rows rolls back its batch.
    Bare,
}

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
    pub(super) async fn write<T, F>(&self, isolation: Isolation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx: &mut Ctx| {
            let (res, poisoned) = match isolation {
                Isolation::Savepoint => (in_savepoint(ctx, f), None),
                Isolation::Bare => bare(ctx, f),
            };
            let reply: Reply = Box::new(move |commit_err: Option<&StoreError>| {
                let res = match commit_err {
                    None => res,
                    Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                let _ = reply_tx.send(res);
            });
            (reply, poisoned)
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

/// Runs one command without a savepoint. If it fails (or panics) after
/// changing rows, the second value says the transaction must be rolled back.
fn bare<T>(
    ctx: &mut Ctx,
    f: impl FnOnce(&mut Ctx) -> Result<T>,
) -> (Result<T>, Option<StoreError>) {
    let before = ctx.conn.total_changes();
    let res = catch_unwind(AssertUnwindSafe(|| f(ctx)))
        .unwrap_or_else(|_| Err(StoreError::Other("a write command panicked".into())));
    match &res {
        Ok(_) => (res, None),
        Err(e) => {
            ctx.routes.clear();
            // A failed statement undoes itself; only earlier ones of the
            // command count here. Some errors (I/O, a full disk) end the
            // transaction outright: nothing after them may run unguarded.
            let poisoned = (ctx.conn.total_changes() != before || ctx.conn.is_autocommit())
                .then(|| StoreError::Other(format!("a write command failed part way: {e}")));
            (res, poisoned)
        }
    }
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
        let mut poisoned = None;
        for job in batch.drain(..) {
            if poisoned.is_some() {
                continue; // dropped unrun: answers Unavailable
            }
            let (reply, failed) = job(&mut ctx);
            replies.push(reply);
            poisoned = failed;
        }
        let failure = match poisoned {
            None => exec(&ctx.conn, "COMMIT").err(),
            Some(e) => Some(e),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::sync::Arc;

    /// A writer on a fresh in-memory table `t(n)`, and its first batch held
    /// open until the returned sender is used, so that the commands sent
    /// meanwhile all land in the second batch together.
    async fn held_writer() -> (Arc<Writer>, std_mpsc::Sender<()>) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL UNIQUE)")
            .unwrap();
        let writer = Arc::new(Writer::spawn(conn).unwrap());
        let (release, hold) = std_mpsc::channel::<()>();
        let (running_tx, running) = oneshot::channel();
        let w = writer.clone();
        tokio::spawn(async move {
            w.write(Isolation::Savepoint, move |_| {
                let _ = running_tx.send(());
                hold.recv().ok();
                Ok(())
            })
            .await
        });
        running.await.unwrap();
        (writer, release)
    }

    /// A test command.
    type Command = fn(&mut Ctx) -> Result<()>;

    fn insert(ctx: &mut Ctx, n: i64) -> Result<()> {
        ctx.conn
            .execute("INSERT INTO t (n) VALUES (?1)", [n])
            .map(drop)
            .map_err(db_err)
    }

    /// Sends the commands in order, waits until all are queued behind the
    /// held batch, releases it, and returns their answers.
    async fn second_batch(
        writer: &Arc<Writer>,
        release: std_mpsc::Sender<()>,
        commands: Vec<(Isolation, Command)>,
    ) -> Vec<Result<()>> {
        let mut answers = Vec::new();
        for (isolation, f) in commands {
            let w = writer.clone();
            answers.push(tokio::spawn(async move { w.write(isolation, f).await }));
            while writer.tx.capacity() > QUEUE_CAP - answers.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.unwrap());
        }
        out
    }

    async fn rows(writer: &Writer) -> Vec<i64> {
        writer
            .write(Isolation::Savepoint, |ctx| {
                let mut s = ctx.conn.prepare("SELECT n FROM t ORDER BY n").unwrap();
                let rows = s.query_map([], |r| r.get(0)).unwrap();
                Ok(rows.map(|r| r.unwrap()).collect())
            })
            .await
            .unwrap()
    }

    /// A bare command that fails part way (after a change) cannot be undone
    /// alone: its whole batch is rolled back, the commands that ran before it
    /// and the one after it (never run) all answer `Unavailable`, and none
    /// of their rows is kept.
    #[tokio::test]
    async fn a_bare_command_failing_part_way_rolls_back_its_whole_batch() {
        let (writer, release) = held_writer().await;
        let answers = second_batch(
            &writer,
            release,
            vec![
                (Isolation::Bare, |c| insert(c, 1)),
                (Isolation::Savepoint, |c| insert(c, 2)),
                (Isolation::Bare, |c| {
                    insert(c, 3)?;
                    insert(c, 3) // unique: fails after the first insert
                }),
                (Isolation::Bare, |c| insert(c, 4)),
            ],
        )
        .await;
        for a in &answers {
            assert!(
                matches!(a, Err(StoreError::Unavailable(_))),
                "every command of the batch answers Unavailable: {answers:?}"
            );
        }
        assert_eq!(rows(&writer).await, Vec::<i64>::new());
    }

    /// A bare command that fails before changing anything (its one failing
    /// statement undid itself) gets its own error; the rest of the batch commits.
    #[tokio::test]
    async fn a_bare_command_failing_before_any_change_fails_alone() {
        let (writer, release) = held_writer().await;
        let answers = second_batch(
            &writer,
            release,
            vec![
                (Isolation::Bare, |c| insert(c, 1)),
                (Isolation::Bare, |c| insert(c, 1)), // unique: fails at once
                (Isolation::Savepoint, |c| {
                    insert(c, 2)?;
                    insert(c, 2) // undone alone by its savepoint
                }),
                (Isolation::Bare, |c| insert(c, 3)),
            ],
        )
        .await;
        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(
            matches!(&answers[1], Err(e) if !matches!(e, StoreError::Unavailable(_))),
            "{answers:?}"
        );
        assert!(answers[2].is_err(), "{answers:?}");
        assert!(answers[3].is_ok(), "{answers:?}");
        assert_eq!(rows(&writer).await, vec![1, 3]);
    }
}
