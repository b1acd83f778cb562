//! One typed configuration, layered: embedded defaults → optional file → `AVISO_*`.

use aviso_core::flow::{DeliveryOrder, DisableAfter, RateLimit};
use aviso_core::policy::{DeliveryPolicy, MaxInFlight, RetryPolicy, SuccessCodes, Timeout};
use aviso_core::Dur;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The commented defaults, embedded in the binary.
pub const DEFAULTS: &str = include_str!("../aviso.default.toml");

/// Top-level keys; only these are read from `AVISO_*` (other `AVISO_` variables
/// belong to other tools, e.g. the test suite's `AVISO_TEST_DATABASE_URL`).
const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "admin_key",
    "allow_http",
    "allow_private_destinations",
    "secret_rotation_grace",
    "log_format",
    "metrics",
    "limits",
    "delivery",
    "dispatcher",
    "egress",
    "role",
    "postgres",
    "retention",
    "portal",
];

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API listen address.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Admin key, if configured.
    #[serde(default)]
    pub admin_key: Option<String>,
    /// Accept http endpoint URLs.
    pub allow_http: bool,
    /// Allow private destinations.
    pub allow_private_destinations: bool,
    /// Grace period of a rotated secret.
    pub secret_rotation_grace: Dur,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Serve Prometheus metrics at `GET /metrics`.
    pub metrics: bool,
    /// Size caps.
    pub limits: Limits,
    /// Default delivery policy.
    pub delivery: DeliveryDefaults,
    /// Dispatcher tuning.
    pub dispatcher: DispatcherSettings,
    /// Outbound connection settings.
    #[serde(default)]
    pub egress: Egress,
    /// What this node runs (`serve --role` overrides it).
    #[serde(default)]
    pub role: Role,
    /// PostgreSQL tuning (unused on SQLite).
    #[serde(default)]
    pub postgres: PostgresSettings,
    /// How long finished work is kept.
    #[serde(default)]
    pub retention: Retention,
    /// The web pages: tenant portal and admin console.
    #[serde(default)]
    pub portal: PortalSettings,
}

/// `[portal]`: the tenant portal (`/portal`) and admin console (`/admin`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// Serve `/portal` and `/admin`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Signs portal links and page sessions. Unset: derived from `admin_key`
    /// when that is configured, else random per process.
    #[serde(default)]
    pub secret: Option<String>,
    /// Where browsers reach Aviso, for absolute portal links.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a portal or admin session lasts after sign-in.
    #[serde(default = "eight_hours")]
    pub session_ttl: Dur,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            secret: None,
            public_url: None,
            session_ttl: eight_hours(),
        }
    }
}

impl PortalSettings {
    /// The token signer: from `secret`, else from the admin key, else random
    /// (the second element says which, for the start-up log).
    pub fn signer(&self, admin_key: Option<&str>) -> (aviso_api::signed::Signer, &'static str) {
        use aviso_api::signed::Signer;
        match (&self.secret, admin_key) {
            (Some(s), _) => (Signer::from_secret(s), "portal.secret"),
            (None, Some(k)) => (Signer::from_secret(&format!("admin-key:{k}")), "admin_key"),
            (None, None) => (Signer::random(), "random"),
        }
    }
}

fn eight_hours() -> Dur {
    Dur::from_secs(8 * 3600)
}

/// `[retention]`: finished work older than `period` is purged in the background.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Age past which finished deliveries, their attempts and events without
    /// pending deliveries are purged.
    #[serde(default = "thirty_days")]
    pub period: Dur,
    /// How often the purge runs.
    #[serde(default = "one_minute")]
    pub every: Dur,
    /// Rows deleted per batch (per table); batches repeat until none is left.
    #[serde(default = "two_hundred")]
    pub batch: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            period: thirty_days(),
            every: one_minute(),
            batch: two_hundred(),
        }
    }
}

fn thirty_days() -> Dur {
    Dur::from_secs(30 * 86_400)
}

fn one_minute() -> Dur {
    Dur::from_secs(60)
}

fn two_hundred() -> usize {
    200
}

/// What an `aviso serve` process runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The public API only: published work is left to worker nodes.
    Api,
    /// The dispatcher only, with `/healthz` and `/readyz`.
    Worker,
    /// Both (the default).
    #[default]
    All,
}

impl Role {
    /// Whether this role serves the public API.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    /// Whether this role runs the dispatcher.
    pub fn dispatches(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

/// `[postgres]`: settings of nodes sharing a PostgreSQL database.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// How long a node's claims outlive its last lease renewal.
    #[serde(default = "thirty_seconds")]
    pub lease: Dur,
    /// Most database connections per process.
    #[serde(default = "sixteen")]
    pub pool_size: usize,
    /// One live node at a time sends to an endpoint (per-endpoint limits hold across nodes).
    #[serde(default = "yes")]
    pub exclusive_endpoints: bool,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            lease: thirty_seconds(),
            pool_size: sixteen(),
            exclusive_endpoints: true,
        }
    }
}

fn thirty_seconds() -> Dur {
    Dur::from_secs(30)
}

fn sixteen() -> usize {
    16
}

/// `[egress]`: how deliveries leave this host, so receivers can allow-list it.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Outbound proxy URL (`http://` or `https://`) for every delivery.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Local address outgoing connections bind to.
    #[serde(default)]
    pub bind_address: Option<IpAddr>,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A proxy URL may carry credentials.
        let proxy = self.proxy.as_deref().map(|p| match url::Url::parse(p) {
            Ok(u) => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
            Err(_) => "(invalid)".into(),
        });
        f.debug_struct("Egress")
            .field("proxy", &proxy)
            .field("bind_address", &self.bind_address)
            .finish()
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Size caps.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest API request body.
    pub max_body_bytes: usize,
    /// Kept bytes of each response body.
    pub response_snippet_bytes: usize,
}

/// `[delivery]`: the default policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryDefaults {
    success: SuccessCodes,
    timeout: Timeout,
    max_in_flight: MaxInFlight,
    retry: RetryPolicy,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    ordering: DeliveryOrder,
    #[serde(default = "yes")]
    adaptive: bool,
    #[serde(default)]
    disable_after: DisableAfter,
}

fn yes() -> bool {
    true
}

impl DeliveryDefaults {
    /// As a policy.
    pub fn policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            success: self.success.clone(),
            retry: self.retry.clone(),
            timeout: self.timeout,
            max_in_flight: self.max_in_flight,
            rate_limit: self.rate_limit,
            ordering: self.ordering.clone(),
            adaptive: self.adaptive,
            disable_after: self.disable_after,
        }
    }
}

/// `[dispatcher]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatcherSettings {
    /// Ready queue capacity.
    pub ready_queue: usize,
    /// Per-endpoint queue capacity.
    pub lane_queue: usize,
    /// Retries held in memory.
    pub timer_capacity: usize,
    /// Store scan interval.
    pub scan_interval: Dur,
    /// Deliveries claimed per scan.
    pub scan_batch: usize,
    /// Shutdown drain deadline.
    pub shutdown_grace: Dur,
    /// Probe spacing while an endpoint's circuit is open.
    #[serde(default = "ten_seconds")]
    pub circuit_probe_interval: Dur,
    /// A 410 Gone answer disables the endpoint.
    #[serde(default)]
    pub disable_on_gone: bool,
}

fn ten_seconds() -> Dur {
    Dur::from_secs(10)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &aviso_store::display_url(&self.database_url),
            )
            .field("admin_key", &self.admin_key.as_ref().map(|_| "********"))
            .field("allow_http", &self.allow_http)
            .field(
                "allow_private_destinations",
                &self.allow_private_destinations,
            )
            .field("limits", &self.limits)
            .field("delivery", &self.delivery)
            .field("dispatcher", &self.dispatcher)
            .field("egress", &self.egress)
            .field("role", &self.role)
            .field("postgres", &self.postgres)
            .finish()
    }
}

impl Config {
    /// Loads defaults, then `file` (required if given, else `aviso.toml` when
    /// present), then the environment. Errors name the offending key.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Toml::string(DEFAULTS));
        match file {
            Some(f) if !f.exists() => anyhow::bail!("config file {} does not exist", f.display()),
            Some(f) => fig = fig.merge(Toml::file(f)),
            None => fig = fig.merge(Toml::file("aviso.toml")),
        }
        let env = Env::prefixed("AVISO_").split("__").filter(|k| {
            let top = k
                .as_str()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            KEYS.contains(&top.as_str())
        });
        Self::from_figment(fig.merge(env))
    }

    /// Defaults, then each TOML text in turn (no file, no environment): for tests and tools.
    pub fn from_toml(layers: &[&str]) -> anyhow::Result<Self> {
        let fig = layers
            .iter()
            .fold(Figment::from(Toml::string(DEFAULTS)), |f, l| {
                f.merge(Toml::string(l))
            });
        Self::from_figment(fig)
    }

    fn from_figment(fig: Figment) -> anyhow::Result<Self> {
        let cfg: Config = fig.extract().map_err(|e| {
            let errs: Vec<String> = e
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".");
                    let src = e
                        .metadata
                        .as_ref()
                        .map(|m| m.name.to_string())
                        .unwrap_or_default();
                    format!("invalid config key `{key}` ({src}): {}", e.kind)
                })
                .collect();
            anyhow::anyhow!(errs.join("; "))
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// The same configuration with another role (the `serve --role` flag), checked again.
    pub fn with_role(mut self, role: Role) -> anyhow::Result<Self> {
        self.role = role;
        self.check()?;
        Ok(self)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !aviso_store::is_supported_url(&self.database_url) {
            anyhow::bail!(
                "invalid config key `database_url`: `{}` is neither a sqlite:// nor a postgres:// URL",
                aviso_store::display_url(&self.database_url)
            );
        }
        if self.role != Role::All && self.database_url.starts_with("sqlite:") {
            anyhow::bail!(
                "invalid config key `role`: `api` and `worker` nodes share a PostgreSQL database; \
                 a SQLite database belongs to one `all` node"
            );
        }
        if self.postgres.lease.get() < std::time::Duration::from_secs(1) {
            anyhow::bail!("invalid config key `postgres.lease`: at least 1s");
        }
        if !(2..=1000).contains(&self.postgres.pool_size) {
            anyhow::bail!("invalid config key `postgres.pool_size`: between 2 and 1000");
        }
        if self.admin_key.as_deref().is_some_and(|k| k.len() < 16) {
            anyhow::bail!("invalid config key `admin_key`: use at least 16 characters");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.limits.max_body_bytes) {
            anyhow::bail!("invalid config key `limits.max_body_bytes`: between 1024 and 67108864");
        }
        if self.limits.response_snippet_bytes > 1024 * 1024 {
            anyhow::bail!("invalid config key `limits.response_snippet_bytes`: at most 1048576");
        }
        if let Err(e) = self.delivery.retry.check() {
            anyhow::bail!("invalid config key `delivery.retry`: {e}");
        }
        if let Some(p) = &self.egress.proxy {
            let ok = url::Url::parse(p)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                anyhow::bail!(
                    "invalid config key `egress.proxy`: use an http:// or https:// proxy URL"
                );
            }
        }
        let d = &self.dispatcher;
        if d.circuit_probe_interval.get().is_zero() {
            anyhow::bail!("invalid config key `dispatcher.circuit_probe_interval`: more than 0s");
        }
        if let Some(u) = &self.portal.public_url {
            let ok = url::Url::parse(u).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none()
            });
            if !ok {
                anyhow::bail!(
                    "invalid config key `portal.public_url`: use an http:// or https:// URL without a query, e.g. https://hooks.example.com"
                );
            }
        }
        if self.portal.secret.as_deref().is_some_and(|s| s.len() < 16) {
            anyhow::bail!("invalid config key `portal.secret`: use at least 16 characters");
        }
        if self.portal.session_ttl.get().as_secs() < 60 {
            anyhow::bail!("invalid config key `portal.session_ttl`: at least 1m");
        }
        let r = &self.retention;
        if r.period.get().is_zero() || r.every.get().is_zero() || r.batch == 0 {
            anyhow::bail!(
                "invalid config key `retention`: `period` and `every` must be more than 0s and `batch` at least 1"
            );
        }
        for (k, v) in [
            ("ready_queue", d.ready_queue),
            ("lane_queue", d.lane_queue),
            ("scan_batch", d.scan_batch),
        ] {
            if v == 0 {
                anyhow::bail!("invalid config key `dispatcher.{k}`: must be at least 1");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(toml: &str) -> anyhow::Result<Config> {
        Config::from_toml(&[toml])
    }

    /// Dotted keys of the defaults; `delivery.retry` is one value.
    fn keys(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v.as_object() {
            Some(m) if prefix != "delivery.retry" => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(&key, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn every_default_key_is_documented() {
        let docs = include_str!("../../../docs/config.md");
        let defaults: serde_json::Value = Figment::from(Toml::string(DEFAULTS)).extract().unwrap();
        let mut all = Vec::new();
        keys("", &defaults, &mut all);
        // Keys the defaults show commented out (unset by default).
        all.extend(
            [
                "admin_key",
                "delivery.rate_limit",
                "egress.proxy",
                "egress.bind_address",
            ]
            .map(String::from),
        );
        assert!(all.len() > 30, "{all:?}");
        for key in all {
            let env = format!("AVISO_{}", key.to_uppercase().replace('.', "__"));
            let row = format!("| `{key}` | `{env}` |");
            assert!(
                docs.contains(&row),
                "docs/config.md lacks the row of `{key}`: {row}"
            );
        }
    }

    #[test]
    fn postgres_urls_roles_and_leases() {
        let c = with(
            "database_url = \"postgresql://aviso:pw@db/aviso\"\nrole = \"worker\"\n\
             [postgres]\nlease = \"5s\"\npool_size = 8\nexclusive_endpoints = false",
        )
        .unwrap();
        assert_eq!(c.role, Role::Worker);
        assert!(c.role.dispatches() && !c.role.serves_api());
        assert_eq!(c.postgres.lease.get(), std::time::Duration::from_secs(5));
        assert_eq!(c.postgres.pool_size, 8);
        assert!(!c.postgres.exclusive_endpoints);
        assert!(!format!("{c:?}").contains("pw"), "the password is redacted");
        let d = with("").unwrap();
        assert_eq!(d.role, Role::All);
        assert!(d.postgres.exclusive_endpoints);
        let e = with("role = \"api\"").unwrap_err().to_string();
        assert!(e.contains("`role`"), "{e}");
        assert!(
            d.with_role(Role::Worker).is_err(),
            "SQLite serves one `all` node"
        );
        let e = with("database_url = \"mysql://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`database_url`"), "{e}");
        let e = with("database_url = \"postgres://h/d\"\n[postgres]\nlease = \"10ms\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`postgres.lease`"), "{e}");
    }

    #[test]
    fn defaults_load() {
        let c = with("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://aviso.db");
        assert_eq!(c.delivery.policy(), DeliveryPolicy::default());
        assert!(c.egress.proxy.is_none() && c.egress.bind_address.is_none());
    }

    #[test]
    fn egress_settings_load_and_redact_the_proxy_credentials() {
        let c = with("[egress]\nproxy = \"http://user:pw@proxy.internal:3128\"\nbind_address = \"127.0.0.1\"").unwrap();
        assert_eq!(c.egress.bind_address, Some(IpAddr::from([127, 0, 0, 1])));
        let shown = format!("{c:?}");
        assert!(
            shown.contains("proxy.internal") && !shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn environment_overrides_defaults_and_ignores_other_tools() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("AVISO_ADMIN_KEY", "an-admin-key-from-env");
            jail.set_env("AVISO_LIMITS__MAX_BODY_BYTES", "2048");
            jail.set_env("AVISO_TEST_DATABASE_URL", "postgres://elsewhere");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.admin_key.as_deref(), Some("an-admin-key-from-env"));
            assert_eq!(c.limits.max_body_bytes, 2048);
            jail.set_env("AVISO_ALLOW_HTTP", "maybe");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("allow_http"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        let e = with("listen = \"nowhere\"").unwrap_err().to_string();
        assert!(e.contains("`listen`"), "{e}");
        let e = with("[delivery]\ntimeout = \"500s\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("delivery.timeout"), "{e}");
        let e = with("[limits]\nmax_body_byts = 5").unwrap_err().to_string();
        assert!(e.contains("max_body_byts"), "{e}");
        let e = with("[egress]\nproxy = \"ftp://proxy\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("egress.proxy"), "{e}");
        let e = with("[egress]\nbind_address = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("egress.bind_address"), "{e}");
        let e = with("[delivery]\nordering = \"lifo\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("delivery.ordering"), "{e}");
        let e = with("database_url = \"mysql://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("database_url"), "{e}");
    }
}
