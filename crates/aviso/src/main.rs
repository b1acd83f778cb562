//! `aviso`: the webhook delivery service's single binary.

use anyhow::Context;
use aviso::config::{Config, LogFormat, DEFAULTS};
use aviso::{cli, server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

// glibc's allocator showed up as a fifth of the server's CPU under load
// (malloc, free, malloc_consolidate); mimalloc is much cheaper for this many
// small, short-lived, cross-thread allocations (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "aviso",
    version,
    about = "Self-hosted webhook delivery service"
)]
struct Cli {
    /// Log format of `serve` and `migrate` (overrides the `log_format` key).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API and the dispatcher.
    Serve {
        /// Config file (default: ./aviso.toml when present).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// What this node runs (overrides the `role` config key).
        #[arg(long, value_enum)]
        role: Option<aviso::config::Role>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        /// Config file (default: ./aviso.toml when present).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Measure throughput and latency on this machine (see BENCHMARKS.md).
    Bench(aviso::bench::BenchArgs),
    #[command(flatten)]
    Api(cli::Command),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the commented defaults (a starting point for aviso.toml).
    Defaults,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AVISO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn main() -> std::process::ExitCode {
    let Cli { log_format, cmd } = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(log_format, cmd)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a command; returns the exit code (API commands have several, see
/// docs/cli.md).
async fn run(log_format: Option<LogFormat>, cmd: Cmd) -> anyhow::Result<u8> {
    let load = |config: Option<PathBuf>| -> anyhow::Result<Config> {
        let mut cfg = Config::load(config.as_deref())?;
        if let Some(f) = log_format {
            cfg.log_format = f;
        }
        Ok(cfg)
    };
    match cmd {
        Cmd::Config {
            cmd: ConfigCmd::Defaults,
        } => {
            print!("{DEFAULTS}");
            Ok(0)
        }
        Cmd::Migrate { config } => {
            let cfg = load(config)?;
            init_logs(cfg.log_format);
            server::open_store(&cfg).await?;
            println!(
                "database {} is up to date",
                aviso_store::display_url(&cfg.database_url)
            );
            Ok(0)
        }
        Cmd::Serve { config, role } => {
            let cfg = load(config)?;
            serve(match role {
                Some(role) => cfg.with_role(role)?,
                None => cfg,
            })
            .await
            .map(|()| 0)
        }
        Cmd::Bench(args) => aviso::bench::run(args).await.map(|_| 0),
        Cmd::Api(call) => Ok(cli::run(call).await),
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    init_logs(cfg.log_format);
    let store = server::open_store(&cfg).await?;
    let generated = server::bootstrap_admin(&cfg, store.as_ref()).await?;
    let listener = server::listen(cfg.listen)
        .with_context(|| format!("cannot listen on {} (config key `listen`)", cfg.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "Aviso {} is running on {} (role: {:?})",
        env!("CARGO_PKG_VERSION"),
        aviso_store::display_url(&cfg.database_url),
        cfg.role
    );
    println!("  API:    http://{addr}/v1");
    if cfg.role.serves_api() {
        println!("  Docs:   http://{addr}/docs  (OpenAPI: http://{addr}/openapi.json)");
        if cfg.portal.enabled {
            println!(
                "  Portal: http://{addr}/portal  (enter through POST /v1/tenants/{{t}}/portal-link)"
            );
            println!("  Admin:  http://{addr}/admin  (sign in with the admin key)");
        }
    }
    println!("  Health: http://{addr}/healthz");
    if cfg.metrics {
        println!("  Metrics: http://{addr}/metrics");
    }
    match &generated {
        Some(key) => println!("  Admin key (shown once, store it now): {key}"),
        None => println!("  Admin key: configured, or printed on first start"),
    }
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    server::run(cfg, store, listener, cancel).await
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
    cancel.cancel();
}
