//! The server under test: `aviso serve` as a child process on a fresh database,
//! with its peak memory and CPU time read from `/proc`.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The bench's admin key.
pub const KEY: &str = "bench-admin-key-0123456789";

/// A running server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// How long from spawn until it printed its URL.
    pub started_in: Duration,
}

/// Where a bench server keeps its data.
#[derive(Clone, Debug)]
pub enum Db {
    /// A fresh SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL given by the user (must be empty or disposable).
    Url(String),
}

impl Db {
    /// A fresh SQLite file in the temp dir.
    pub fn fresh_sqlite() -> Self {
        let dir = std::env::temp_dir().join("aviso-bench");
        let _ = std::fs::create_dir_all(&dir);
        Db::Sqlite(dir.join(format!("{}.db", aviso_core::EventId::new())))
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{}", p.display()),
            Db::Url(u) => u.clone(),
        }
    }

    /// Deletes a SQLite file and its WAL.
    pub fn remove(&self) {
        if let Db::Sqlite(p) = self {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
            }
        }
    }
}

impl Server {
    /// Spawns this binary's `serve` on `db` and waits for its URL.
    pub async fn start(db: &Db) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the aviso binary")?;
        Self::start_binary(&exe, db).await
    }

    /// Spawns `exe serve` on `db` (admin key [`KEY`], http and private
    /// destinations allowed) and waits until it prints its URL.
    pub async fn start_binary(exe: &std::path::Path, db: &Db) -> anyhow::Result<Self> {
        Self::start_binary_with(exe, db, &[], &[], None).await
    }

    /// Like [`Server::start_binary`], with extra arguments after `serve`,
    /// extra environment (applied last, so it may override `AVISO_LOG`), and
    /// the log (stderr) written to `log` instead of inherited.
    pub async fn start_binary_with(
        exe: &std::path::Path,
        db: &Db,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let stderr = match log {
            Some(path) => {
                Stdio::from(std::fs::File::create(path).context("creating the log file")?)
            }
            None => Stdio::inherit(),
        };
        let mut child = Command::new(exe)
            .arg("serve")
            .args(args)
            .env("AVISO_LISTEN", "127.0.0.1:0")
            .env("AVISO_DATABASE_URL", db.url())
            .env("AVISO_ADMIN_KEY", KEY)
            .env("AVISO_ALLOW_HTTP", "true")
            .env("AVISO_ALLOW_PRIVATE_DESTINATIONS", "true")
            .env("AVISO_LOG", "error")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .context("spawning aviso serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = loop {
            match lines.next_line().await? {
                Some(line) => {
                    if let Some(url) = line.trim().strip_prefix("API:") {
                        break url.trim().trim_end_matches("/v1").to_owned();
                    }
                }
                None => bail!("aviso serve exited before printing its URL"),
            }
        };
        let started_in = t0.elapsed();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base,
            started_in,
        })
    }

    /// Peak resident memory in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> f64 {
        let pid = self.child.id().unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let pid = self.child.id().unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the `(comm)`; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
            .sum();
        ticks / clock_ticks()
    }

    /// SIGTERM, then waits up to 30 s; returns the exit status if it exited.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
