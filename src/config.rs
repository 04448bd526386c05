//! Settings: defaults, overridden by an optional TOML file, overridden by `SMECREDIT_*`
//! environment variables, overridden by command-line flags.

use anyhow::Context;
use serde::Deserialize;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::api::Limits;
use crate::api::rate_limit::RoleLimit;
use crate::keys::Role;
use crate::store::StoreOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, plain text otherwise.
    Auto,
    Pretty,
    Plain,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "pretty" => Ok(LogFormat::Pretty),
            "plain" => Ok(LogFormat::Plain),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "{other:?} is not a log format (auto, pretty, plain, json)"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `sqlite://smecredit.db` (the default, created on first start) or `postgres://…`.
    pub database_url: String,
    /// Address the HTTP server listens on; port 0 picks a free port.
    pub bind: String,
    /// A second address serving only `GET /metrics`, without an API key (for a scraper on a
    /// private network). Unset: `/metrics` is served on `bind` to admin keys only.
    pub metrics_bind: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `smecredit=debug,sqlx=warn`. `RUST_LOG` wins if set.
    pub log_filter: String,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub db_max_connections: u32,
    pub db_acquire_timeout_secs: u64,
    /// SQLite only: `full` (an acknowledged write survives a power cut) or `normal`.
    pub sqlite_synchronous: String,
    /// SQLite's page caches of the main file, all connections together, in MiB.
    pub sqlite_cache_mb: u64,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    /// Connections each HTTP worker serves at once. Further connections wait in the kernel's
    /// accept queue until one closes, so an overload queues outside the process instead of
    /// growing its memory with every waiting request.
    pub http_max_connections: usize,
    /// Where model artifacts live, one directory per version.
    pub models_dir: std::path::PathBuf,
    /// The model to start with when none was activated before (default: the newest version).
    pub model: Option<String>,
    /// A lending policy TOML file (default: the built-in policy).
    pub policy_file: Option<std::path::PathBuf>,
    /// How long the answer to an API key check is remembered, in seconds: a revocation takes
    /// effect on every replica within this time. 0: ask the database on every request.
    pub auth_cache_secs: u64,
    /// Requests per second a platform key may sustain (0: no limit), and its burst.
    pub rate_limit_platform_per_second: f64,
    pub rate_limit_platform_burst: u32,
    pub rate_limit_lender_per_second: f64,
    pub rate_limit_lender_burst: u32,
    pub rate_limit_merchant_per_second: f64,
    pub rate_limit_merchant_burst: u32,
    pub rate_limit_admin_per_second: f64,
    pub rate_limit_admin_burst: u32,
    // Reliability: timeouts, idempotency, shutdown.
    /// A request not answered within this many seconds is abandoned and answered 503.
    pub request_timeout_secs: u64,
    /// PostgreSQL only: statements running longer are cancelled by the server (0: never).
    pub db_statement_timeout_secs: u64,
    /// How long an `Idempotency-Key` and the answer it holds count.
    pub idempotency_ttl_secs: u64,
    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish.
    pub shutdown_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let limits = Limits::default();
        Settings {
            database_url: "sqlite://smecredit.db".to_string(),
            bind: "127.0.0.1:8080".to_string(),
            metrics_bind: None,
            log_format: LogFormat::Auto,
            log_filter: "info".to_string(),
            max_body_bytes: limits.max_body_bytes,
            max_batch: limits.max_batch,
            db_max_connections: 8,
            db_acquire_timeout_secs: 5,
            sqlite_synchronous: "full".to_string(),
            sqlite_cache_mb: 32,
            workers: None,
            http_max_connections: 256,
            models_dir: "models".into(),
            model: None,
            policy_file: None,
            auth_cache_secs: 5,
            rate_limit_platform_per_second: 50.0,
            rate_limit_platform_burst: 100,
            rate_limit_lender_per_second: 20.0,
            rate_limit_lender_burst: 40,
            rate_limit_merchant_per_second: 1.0,
            rate_limit_merchant_burst: 10,
            rate_limit_admin_per_second: 2.0,
            rate_limit_admin_burst: 20,
            request_timeout_secs: 30,
            db_statement_timeout_secs: 20,
            idempotency_ttl_secs: 24 * 3600,
            shutdown_timeout_secs: 30,
        }
    }
}

fn env_override<T: FromStr>(name: &str, target: &mut T) -> anyhow::Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Ok(value) = std::env::var(name) {
        *target = value
            .parse()
            .map_err(|e| anyhow::anyhow!("environment variable {name}={value:?}: {e}"))?;
    }
    Ok(())
}

impl Settings {
    /// Defaults, then the file (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Settings::default(),
        };
        env_override("SMECREDIT_DATABASE_URL", &mut s.database_url)?;
        env_override("SMECREDIT_BIND", &mut s.bind)?;
        if let Ok(bind) = std::env::var("SMECREDIT_METRICS_BIND") {
            s.metrics_bind = Some(bind).filter(|b| !b.is_empty());
        }
        env_override("SMECREDIT_LOG_FORMAT", &mut s.log_format)?;
        env_override("SMECREDIT_LOG", &mut s.log_filter)?;
        env_override("SMECREDIT_MAX_BODY_BYTES", &mut s.max_body_bytes)?;
        env_override("SMECREDIT_MAX_BATCH", &mut s.max_batch)?;
        env_override("SMECREDIT_DB_MAX_CONNECTIONS", &mut s.db_max_connections)?;
        env_override(
            "SMECREDIT_DB_ACQUIRE_TIMEOUT_SECS",
            &mut s.db_acquire_timeout_secs,
        )?;
        env_override("SMECREDIT_SQLITE_SYNCHRONOUS", &mut s.sqlite_synchronous)?;
        env_override("SMECREDIT_SQLITE_CACHE_MB", &mut s.sqlite_cache_mb)?;
        env_override(
            "SMECREDIT_HTTP_MAX_CONNECTIONS",
            &mut s.http_max_connections,
        )?;
        env_override("SMECREDIT_MODELS_DIR", &mut s.models_dir)?;
        env_override(
            "SMECREDIT_REQUEST_TIMEOUT_SECS",
            &mut s.request_timeout_secs,
        )?;
        env_override(
            "SMECREDIT_DB_STATEMENT_TIMEOUT_SECS",
            &mut s.db_statement_timeout_secs,
        )?;
        env_override(
            "SMECREDIT_IDEMPOTENCY_TTL_SECS",
            &mut s.idempotency_ttl_secs,
        )?;
        env_override(
            "SMECREDIT_SHUTDOWN_TIMEOUT_SECS",
            &mut s.shutdown_timeout_secs,
        )?;
        if let Ok(m) = std::env::var("SMECREDIT_MODEL") {
            s.model = Some(m);
        }
        if let Ok(p) = std::env::var("SMECREDIT_POLICY_FILE") {
            s.policy_file = Some(p.into());
        }
        env_override("SMECREDIT_AUTH_CACHE_SECS", &mut s.auth_cache_secs)?;
        for (role, rate, burst) in [
            (
                "PLATFORM",
                &mut s.rate_limit_platform_per_second,
                &mut s.rate_limit_platform_burst,
            ),
            (
                "LENDER",
                &mut s.rate_limit_lender_per_second,
                &mut s.rate_limit_lender_burst,
            ),
            (
                "MERCHANT",
                &mut s.rate_limit_merchant_per_second,
                &mut s.rate_limit_merchant_burst,
            ),
            (
                "ADMIN",
                &mut s.rate_limit_admin_per_second,
                &mut s.rate_limit_admin_burst,
            ),
        ] {
            env_override(&format!("SMECREDIT_RATE_LIMIT_{role}_PER_SECOND"), rate)?;
            env_override(&format!("SMECREDIT_RATE_LIMIT_{role}_BURST"), burst)?;
        }
        if let Ok(w) = std::env::var("SMECREDIT_WORKERS") {
            s.workers = Some(
                w.parse()
                    .map_err(|e| anyhow::anyhow!("SMECREDIT_WORKERS={w:?}: {e}"))?,
            );
        }
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.sqlite_synchronous.as_str(), "full" | "normal"),
            "sqlite_synchronous must be full or normal, got {:?}",
            self.sqlite_synchronous
        );
        anyhow::ensure!(
            self.sqlite_cache_mb >= 1,
            "sqlite_cache_mb must be at least 1"
        );
        anyhow::ensure!(self.max_batch >= 1, "max_batch must be at least 1");
        anyhow::ensure!(
            self.http_max_connections >= 1,
            "http_max_connections must be at least 1"
        );
        anyhow::ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes must be at least 1024"
        );
        for (role, limit) in self.rate_limits() {
            limit
                .check()
                .map_err(|(field, e)| anyhow::anyhow!("rate_limit_{role}_{field}: {e}"))?;
        }
        anyhow::ensure!(
            self.request_timeout_secs >= 1,
            "request_timeout_secs must be at least 1"
        );
        anyhow::ensure!(
            self.idempotency_ttl_secs >= 1,
            "idempotency_ttl_secs must be at least 1"
        );
        Ok(())
    }

    /// The rate limit of each role's keys.
    pub fn rate_limits(&self) -> [(Role, RoleLimit); 4] {
        let limit = |per_second, burst| RoleLimit { per_second, burst };
        [
            (
                Role::Platform,
                limit(
                    self.rate_limit_platform_per_second,
                    self.rate_limit_platform_burst,
                ),
            ),
            (
                Role::Lender,
                limit(
                    self.rate_limit_lender_per_second,
                    self.rate_limit_lender_burst,
                ),
            ),
            (
                Role::Merchant,
                limit(
                    self.rate_limit_merchant_per_second,
                    self.rate_limit_merchant_burst,
                ),
            ),
            (
                Role::Admin,
                limit(
                    self.rate_limit_admin_per_second,
                    self.rate_limit_admin_burst,
                ),
            ),
        ]
    }

    pub fn auth_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.auth_cache_secs)
    }

    /// No rate limit for any role (tests, benchmarks).
    pub fn without_rate_limits(mut self) -> Self {
        self.rate_limit_platform_per_second = 0.0;
        self.rate_limit_lender_per_second = 0.0;
        self.rate_limit_merchant_per_second = 0.0;
        self.rate_limit_admin_per_second = 0.0;
        self
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(self.db_acquire_timeout_secs),
            sqlite_synchronous_full: self.sqlite_synchronous == "full",
            sqlite_cache_bytes: self.sqlite_cache_mb.saturating_mul(1 << 20),
            statement_timeout: Some(Duration::from_secs(self.db_statement_timeout_secs))
                .filter(|t| !t.is_zero()),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            request_timeout: self.request_timeout(),
            ..Limits::default()
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn idempotency(&self) -> crate::api::idempotency::IdempotencyOptions {
        crate::api::idempotency::IdempotencyOptions::new(
            Duration::from_secs(self.idempotency_ttl_secs),
            self.request_timeout(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_that_makes_no_sense_is_refused_by_its_setting_name() {
        assert!(Settings::default().validate().is_ok());
        let s = Settings {
            rate_limit_lender_burst: 0,
            ..Settings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.starts_with("rate_limit_lender_burst:"), "{e}");
        let s = Settings {
            rate_limit_admin_per_second: -1.0,
            ..Settings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.starts_with("rate_limit_admin_per_second:"), "{e}");
        assert!(
            Settings {
                rate_limit_lender_burst: 0,
                ..Settings::default()
            }
            .without_rate_limits()
            .validate()
            .is_ok(),
            "no burst is needed without a limit"
        );
    }
}
