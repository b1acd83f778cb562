//! One typed configuration, layered: embedded defaults → optional file → `AVISO_*`.

use aviso_core::policy::{DeliveryPolicy, MaxInFlight, RetryPolicy, SuccessCodes, Timeout};
use aviso_core::Dur;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
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
    "limits",
    "delivery",
    "dispatcher",
];

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API listen address.
    pub listen: SocketAddr,
    /// `sqlite://PATH`.
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
    /// Size caps.
    pub limits: Limits,
    /// Default delivery policy.
    pub delivery: DeliveryDefaults,
    /// Dispatcher tuning.
    pub dispatcher: DispatcherSettings,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
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
}

impl DeliveryDefaults {
    /// As a policy.
    pub fn policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            success: self.success.clone(),
            retry: self.retry.clone(),
            timeout: self.timeout,
            max_in_flight: self.max_in_flight,
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
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "********"))
            .field("allow_http", &self.allow_http)
            .field(
                "allow_private_destinations",
                &self.allow_private_destinations,
            )
            .field("limits", &self.limits)
            .field("delivery", &self.delivery)
            .field("dispatcher", &self.dispatcher)
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

    fn check(&self) -> anyhow::Result<()> {
        if !self.database_url.starts_with("sqlite:") {
            anyhow::bail!(
                "invalid config key `database_url`: `{}` is not a sqlite:// URL",
                self.database_url
            );
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
        let d = &self.dispatcher;
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

    #[test]
    fn defaults_load() {
        let c = with("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://aviso.db");
        assert_eq!(c.delivery.policy(), DeliveryPolicy::default());
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
        let e = with("database_url = \"mysql://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("database_url"), "{e}");
    }
}
