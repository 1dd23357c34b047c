//! Settings: defaults, then a TOML file, then `HEARTH_*` environment variables (`__` nests,
//! `*_FILE` reads a secret from a file), then command-line flags. Validated once at start;
//! every error names the key at fault.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use hearth_core::accounts::AuthConfig;
use hearth_core::chat::ChatConfig;
use hearth_core::Secret;
use serde::{Deserialize, Serialize};

/// All of Hearth's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where Hearth keeps its SQLite database, secrets and files.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthConfig,
    pub crypto: CryptoSettings,
    pub chat: ChatConfig,
    pub tools: hearth_tools::ToolsConfig,
    pub local: hearth_local::LocalConfig,
    pub knowledge: hearth_core::knowledge::KnowledgeSettings,
    pub memory: hearth_core::memory::MemorySettings,
    pub jobs: hearth_jobs::JobsSettings,
    pub log: LogSettings,
}

/// Encryption at rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoSettings {
    /// The master key (32+ bytes); unset means one generated into `<data_dir>/master-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<Secret>,
    /// Earlier master keys, accepted for decryption after a rotation.
    pub previous_master_keys: Vec<Secret>,
}

/// The HTTP server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Origins allowed to call the API from a browser (CORS), e.g. `https://app.example.com`.
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Mark cookies `Secure` (set when served over HTTPS behind a proxy).
    pub secure_cookies: bool,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client;
    /// from any other peer the header is ignored and the TCP peer is the client.
    pub trusted_proxies: Vec<ProxyRange>,
    /// WebSockets one user may hold open on this instance.
    pub max_websockets_per_user: usize,
    /// WebSockets not yet authenticated that this instance holds at once (each gets 10 s to
    /// authenticate); past it, upgrades get 429.
    pub max_pending_websockets: usize,
    /// Of those, how many one client (IP, or IPv6 /64) may hold.
    pub max_pending_websockets_per_client: usize,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<Secret>,
}

/// An address or CIDR range of a trusted reverse proxy, e.g. `10.0.0.0/8` or `127.0.0.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyRange(ipnet::IpNet);

impl ProxyRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl TryFrom<String> for ProxyRange {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let value = value.trim();
        value
            .parse::<ipnet::IpNet>()
            .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(ProxyRange)
            .map_err(|_| format!("`{value}` is not an IP address or CIDR range"))
    }
}

impl From<ProxyRange> for String {
    fn from(range: ProxyRange) -> String {
        range.0.to_string()
    }
}

/// The relational store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; unset means `sqlite://<data_dir>/hearth.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Seconds to wait for a connection or a lock.
    pub acquire_timeout_secs: u64,
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (one object per line) or `pretty`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `hearth=debug,info`.
    pub level: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./hearth-data"),
            server: ServerSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                cors_allowed_origins: Vec::new(),
                body_limit_bytes: 2 * 1024 * 1024,
                secure_cookies: false,
                trusted_proxies: Vec::new(),
                max_websockets_per_user: 32,
                max_pending_websockets: 1024,
                max_pending_websockets_per_client: 16,
                metrics_token: None,
            },
            database: DatabaseSettings {
                url: None,
                max_connections: 8,
                acquire_timeout_secs: 5,
            },
            auth: AuthConfig::default(),
            crypto: CryptoSettings::default(),
            chat: ChatConfig::default(),
            tools: hearth_tools::ToolsConfig::default(),
            local: hearth_local::LocalConfig::default(),
            knowledge: hearth_core::knowledge::KnowledgeSettings::default(),
            memory: hearth_core::memory::MemorySettings::default(),
            jobs: hearth_jobs::JobsSettings::default(),
            log: LogSettings {
                format: LogFormat::Json,
                level: "info".into(),
            },
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// A setting that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

/// Settings plus what was noticed while loading them.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// Warnings to log once logging is up (unknown variables and the like).
    pub warnings: Vec<String>,
}

/// Keys whose default is unset, so they do not show up when the defaults are walked.
const OPTIONAL_KEYS: &[&str] = &[
    "database.url",
    "auth.jwt_secret",
    "crypto.master_key",
    "tools.searxng_url",
];
/// Tables whose keys are free (any tool name), so any key under them is a setting.
const MAP_KEYS: &[&str] = &["chat.tool_policy."];
/// Short names the design documents use, kept as aliases of the nested keys.
const ALIASES: &[(&str, &str)] = &[("HEARTH_DATABASE_URL", "database.url")];
/// `HEARTH_*` variables that are not settings.
const NOT_SETTINGS: &[&str] = &[
    "HEARTH_CONFIG",
    "HEARTH_BIN",
    "HEARTH_NEW_PASSWORD",
    // The terminal client's server and key (`hearth ingest`, `hearth search`).
    "HEARTH_URL",
    "HEARTH_API_KEY",
];

impl Settings {
    /// Loads settings from `env` (pairs of name and value, normally `std::env::vars()`) and
    /// `overrides`, then validates them.
    pub fn load(
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Loaded, SettingsError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("HEARTH_"))
            .collect();
        let mut warnings = Vec::new();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));

        let config_file = overrides.config_file.clone().or_else(|| {
            env.iter()
                .find(|(k, _)| k == "HEARTH_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        if let Some(path) = &config_file {
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }

        let known = known_keys();
        for (name, raw) in &env {
            if NOT_SETTINGS.contains(&name.as_str()) || name.starts_with("HEARTH_TEST_") {
                continue;
            }
            let (rest, from_file) = match name["HEARTH_".len()..].strip_suffix("_FILE") {
                Some(rest) => (rest, true),
                None => (&name["HEARTH_".len()..], false),
            };
            let key = match ALIASES
                .iter()
                .find(|(alias, _)| name.strip_suffix("_FILE").unwrap_or(name) == *alias)
            {
                Some((_, key)) => (*key).to_owned(),
                None => rest.to_lowercase().replace("__", "."),
            };
            if from_file
                && env
                    .iter()
                    .any(|(other, _)| other == &name[..name.len() - "_FILE".len()])
            {
                return Err(SettingsError(format!(
                    "both {} and {name} are set; set one",
                    &name[..name.len() - "_FILE".len()]
                )));
            }
            if !known.contains(&key) && !MAP_KEYS.iter().any(|p| key.starts_with(p)) {
                warnings.push(format!(
                    "unknown environment variable {name} is ignored (no setting `{key}`)"
                ));
                continue;
            }
            let value = if from_file {
                let text = std::fs::read_to_string(raw)
                    .map_err(|e| SettingsError(format!("{name}: cannot read {raw}: {e}")))?;
                Value::from(text.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                Value::from_str(raw).unwrap_or_else(|_| Value::from(raw.clone()))
            };
            figment = figment.merge(Serialized::default(&key, value));
        }

        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen.to_string()));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir.clone()));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url.clone()));
        }

        let settings: Settings = figment.extract().map_err(|err| {
            let lines: Vec<String> = err
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".");
                    if key.is_empty() {
                        e.kind.to_string()
                    } else {
                        format!("`{key}`: {}", e.kind)
                    }
                })
                .collect();
            SettingsError(lines.join("; "))
        })?;
        settings.validate()?;
        if !settings.server.listen.ip().is_loopback() && !settings.server.secure_cookies {
            warnings.push(format!(
                "server.listen is {} but server.secure_cookies is off: serve Hearth over HTTPS and turn it on",
                settings.server.listen
            ));
        }
        Ok(Loaded { settings, warnings })
    }

    /// Checks what types alone cannot. Each error names its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, why: &str| Err(SettingsError(format!("`{key}`: {why}")));
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        for origin in &self.server.cors_allowed_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && origin.parse::<axum::http::HeaderValue>().is_ok();
            if !ok {
                return bad(
                    "server.cors_allowed_origins",
                    &format!("`{origin}` is not an origin like https://app.example.com"),
                );
            }
        }
        if self.server.body_limit_bytes < 1024 {
            return bad("server.body_limit_bytes", "must be at least 1024");
        }
        if let Some(url) = &self.database.url {
            let url = url.expose();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return bad("database.url", "must start with sqlite:// or postgres://");
            }
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.database.acquire_timeout_secs == 0 {
            return bad("database.acquire_timeout_secs", "must be at least 1");
        }
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.expose().len() < 32 {
                return bad("auth.jwt_secret", "must be at least 32 bytes");
            }
        }
        let a = &self.auth;
        if a.access_token_ttl_secs < 10 {
            return bad("auth.access_token_ttl_secs", "must be at least 10");
        }
        if a.refresh_token_ttl_secs <= a.access_token_ttl_secs {
            return bad(
                "auth.refresh_token_ttl_secs",
                "must be longer than auth.access_token_ttl_secs",
            );
        }
        if a.invite_ttl_secs == 0 {
            return bad("auth.invite_ttl_secs", "must be at least 1");
        }
        if let Err((key, why)) = a.argon2.validate() {
            return bad(&format!("auth.argon2.{key}"), &why);
        }
        if a.login.per_ip_per_minute == 0 {
            return bad("auth.login.per_ip_per_minute", "must be at least 1");
        }
        if a.login.lockout_secs == 0 {
            return bad("auth.login.lockout_secs", "must be at least 1");
        }
        if a.login.max_failures == 0 {
            return bad("auth.login.max_failures", "must be at least 1");
        }
        for (i, key) in std::iter::once(&self.crypto.master_key)
            .flatten()
            .chain(&self.crypto.previous_master_keys)
            .enumerate()
        {
            if key.expose().len() < hearth_core::crypto::MIN_MASTER_KEY_LEN {
                let name = if i == 0 && self.crypto.master_key.is_some() {
                    "crypto.master_key".to_owned()
                } else {
                    "crypto.previous_master_keys".to_owned()
                };
                return bad(&name, "must be at least 32 bytes");
            }
        }
        let c = &self.chat;
        if c.max_tool_rounds > 50 {
            return bad("chat.max_tool_rounds", "must be at most 50");
        }
        for (key, value) in [
            ("chat.approval_timeout_secs", c.approval_timeout_secs),
            ("chat.tool_timeout_secs", c.tool_timeout_secs),
            ("chat.connect_timeout_secs", c.connect_timeout_secs),
            ("chat.first_token_timeout_secs", c.first_token_timeout_secs),
            ("chat.idle_timeout_secs", c.idle_timeout_secs),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if c.max_message_chars == 0 {
            return bad("chat.max_message_chars", "must be at least 1");
        }
        if c.max_retries > 10 {
            return bad("chat.max_retries", "must be at most 10");
        }
        if c.max_runs_per_user == 0 {
            return bad("chat.max_runs_per_user", "must be at least 1");
        }
        if c.max_output_tokens == 0 {
            return bad("chat.max_output_tokens", "must be at least 1");
        }
        if self.server.max_websockets_per_user == 0 {
            return bad("server.max_websockets_per_user", "must be at least 1");
        }
        if self
            .server
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().len() < 16)
        {
            return bad(
                "server.metrics_token",
                "must be at least 16 characters when set",
            );
        }
        if self.server.max_pending_websockets_per_client == 0 {
            return bad(
                "server.max_pending_websockets_per_client",
                "must be at least 1",
            );
        }
        if self.server.max_pending_websockets == 0 {
            return bad("server.max_pending_websockets", "must be at least 1");
        }
        if let Err((key, why)) = self.tools.validate() {
            return bad(&key, &why);
        }
        if let Err((key, why)) = self.local.validate() {
            return bad(&key, &why);
        }
        if let Err(why) = self.knowledge.validate() {
            return Err(SettingsError(why));
        }
        if let Err(why) = self.memory.validate() {
            return Err(SettingsError(why));
        }
        if let Err(why) = self.jobs.validate() {
            return Err(SettingsError(why));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                "is not a valid filter such as `info` or `hearth=debug,info`",
            );
        }
        Ok(())
    }

    /// The models folder in force.
    pub fn models_dir(&self) -> PathBuf {
        self.local
            .models_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// Where knowledge bases keep originals and vector indexes.
    pub fn knowledge_dir(&self) -> PathBuf {
        self.data_dir.join("knowledge")
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("hearth.db").display()),
        }
    }

    /// Where pre-migration backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
}

/// Every settable key path, derived from the defaults so it cannot drift from the struct.
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Dict(_, dict) => {
                for (k, v) in dict {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut out: BTreeSet<String> = OPTIONAL_KEYS.iter().map(|k| (*k).to_owned()).collect();
    if let Ok(value) = Figment::from(Serialized::defaults(Settings::default())).extract::<Value>() {
        walk("", &value, &mut out);
    }
    out
}

/// Creates the data directory (0700 on Unix) if it does not exist.
pub fn ensure_data_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// The documented defaults, as printed by `hearth admin default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn documented_defaults_match_the_code() {
        let parsed: Settings = Figment::from(Toml::string(DEFAULT_CONFIG))
            .extract()
            .expect("default-config parses");
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hearth.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 4096\n",
        )
        .expect("write");
        let overrides = Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:7000".parse().expect("addr")),
            ..Default::default()
        };
        let loaded = Settings::load(
            env(&[
                ("HEARTH_SERVER__BODY_LIMIT_BYTES", "8192"),
                ("HEARTH_SERVER__LISTEN", "127.0.0.1:9100"),
            ]),
            &overrides,
        )
        .expect("loads");
        assert_eq!(loaded.settings.server.body_limit_bytes, 8192);
        assert_eq!(loaded.settings.server.listen.port(), 7000);
    }

    #[test]
    fn nested_env_keys_and_enums() {
        let loaded = Settings::load(
            env(&[
                ("HEARTH_AUTH__REGISTRATION", "open"),
                ("HEARTH_AUTH__LOGIN__MAX_FAILURES", "3"),
                ("HEARTH_LOG__FORMAT", "pretty"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(
            loaded.settings.auth.registration,
            hearth_core::api::Registration::Open
        );
        assert_eq!(loaded.settings.auth.login.max_failures, 3);
        assert_eq!(loaded.settings.log.format, LogFormat::Pretty);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("HEARTH_SERVER__LISTEN", "not-an-address", "server.listen"),
            (
                "HEARTH_SERVER__BODY_LIMIT_BYTES",
                "lots",
                "server.body_limit_bytes",
            ),
            (
                "HEARTH_AUTH__REGISTRATION",
                "sometimes",
                "auth.registration",
            ),
            ("HEARTH_DATABASE__URL", "mysql://x", "database.url"),
            (
                "HEARTH_AUTH__ARGON2__MEMORY_KIB",
                "1",
                "auth.argon2.memory_kib",
            ),
            ("HEARTH_AUTH__JWT_SECRET", "short", "auth.jwt_secret"),
            (
                "HEARTH_SERVER__CORS_ALLOWED_ORIGINS",
                "[\"example.com\"]",
                "server.cors_allowed_origins",
            ),
            ("HEARTH_LOG__LEVEL", "info,[", "log.level"),
            (
                "HEARTH_AUTH__LOGIN__LOCKOUT_SECS",
                "0",
                "auth.login.lockout_secs",
            ),
        ];
        for (name, value, key) in cases {
            let err = Settings::load(env(&[(name, value)]), &Overrides::default()).expect_err(name);
            assert!(err.to_string().contains(key), "{name}={value}: {err}");
        }
    }

    #[test]
    fn database_url_alias() {
        let loaded = Settings::load(
            env(&[("HEARTH_DATABASE_URL", "postgres://h@db/h")]),
            &Overrides::default(),
        )
        .expect("loads");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.settings.database_url(), "postgres://h@db/h");
    }

    #[test]
    fn unknown_variables_are_warned_about() {
        let loaded = Settings::load(
            env(&[
                ("HEARTH_SERVR__LISTEN", "x"),
                ("HEARTH_TEST_POSTGRES_URL", "x"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("HEARTH_SERVR__LISTEN"));
    }

    #[test]
    fn secrets_from_files_and_redacted_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("jwt");
        std::fs::write(&secret_file, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").expect("write");
        let loaded = Settings::load(
            env(&[
                (
                    "HEARTH_AUTH__JWT_SECRET_FILE",
                    secret_file.to_str().expect("utf8"),
                ),
                (
                    "HEARTH_DATABASE__URL",
                    "postgres://hearth:pa55word@db/hearth",
                ),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        let s = &loaded.settings;
        assert_eq!(
            s.auth.jwt_secret.as_ref().expect("set").expose(),
            "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
        );
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(!debug.contains("pa55word"), "{debug}");
    }

    #[test]
    fn a_value_and_its_file_together_are_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "x".repeat(40)).expect("write");
        let err = Settings::load(
            env(&[
                ("HEARTH_AUTH__JWT_SECRET", &"y".repeat(40)),
                ("HEARTH_AUTH__JWT_SECRET_FILE", file.to_str().expect("utf8")),
            ]),
            &Overrides::default(),
        )
        .expect_err("both");
        assert!(
            err.to_string().contains("HEARTH_AUTH__JWT_SECRET_FILE"),
            "{err}"
        );
        let err = Settings::load(
            env(&[("HEARTH_AUTH__JWT_SECRET_FILE", "/nonexistent/secret")]),
            &Overrides::default(),
        )
        .expect_err("unreadable");
        assert!(err.to_string().contains("/nonexistent/secret"), "{err}");
    }

    #[test]
    fn toml_beats_defaults_and_new_password_is_not_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hearth.toml");
        std::fs::write(&file, "[auth]\nregistration = \"closed\"\n").expect("write");
        let overrides = Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        let loaded =
            Settings::load(env(&[("HEARTH_NEW_PASSWORD", "x")]), &overrides).expect("loads");
        assert_eq!(
            loaded.settings.auth.registration,
            hearth_core::api::Registration::Closed
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let loaded = Settings::load(
            env(&[("HEARTH_SERVER__LISTEN", "0.0.0.0:8080")]),
            &Overrides::default(),
        )
        .expect("loads");
        assert!(
            loaded.warnings.iter().any(|w| w.contains("secure_cookies")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let overrides = Overrides {
            config_file: Some("/nonexistent/hearth.toml".into()),
            ..Default::default()
        };
        assert!(Settings::load(Vec::new(), &overrides)
            .expect_err("missing")
            .to_string()
            .contains("/nonexistent/hearth.toml"));
    }

    #[test]
    fn bad_toml_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hearth.toml");
        std::fs::write(&file, "[server]\nlisten = 5\n").expect("write");
        let overrides = Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        let err = Settings::load(Vec::new(), &overrides).expect_err("bad");
        assert!(err.to_string().contains("server.listen"), "{err}");
        std::fs::write(&file, "[servr]\nlisten = \"127.0.0.1:1\"\n").expect("write");
        let err = Settings::load(Vec::new(), &overrides).expect_err("unknown section");
        assert!(err.to_string().contains("servr"), "{err}");
    }

    #[test]
    fn chat_tools_and_crypto_settings_load_and_are_checked() {
        let loaded = Settings::load(
            env(&[
                ("HEARTH_CHAT__TOOL_POLICY__FETCH_URL", "ask"),
                ("HEARTH_CHAT__DAILY_TOKEN_QUOTA", "1000"),
                ("HEARTH_TOOLS__FETCH_ALLOWLIST", "[\"10.0.0.0/8\"]"),
                (
                    "HEARTH_CRYPTO__MASTER_KEY",
                    "0123456789abcdef0123456789abcdef-secretvalue",
                ),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let s = &loaded.settings;
        assert_eq!(
            s.chat.policy("fetch_url"),
            hearth_core::chat::ToolPolicy::Ask
        );
        assert_eq!(
            s.chat.policy("calculator"),
            hearth_core::chat::ToolPolicy::Auto
        );
        assert_eq!(s.chat.daily_token_quota, 1000);
        assert_eq!(s.tools.fetch_allowlist, vec!["10.0.0.0/8".to_owned()]);
        assert!(
            !format!("{s:?}").contains("secretvalue"),
            "master key redacted in Debug"
        );

        for (name, value, key) in [
            ("HEARTH_CRYPTO__MASTER_KEY", "short", "crypto.master_key"),
            (
                "HEARTH_CHAT__TOOL_POLICY__FETCH_URL",
                "sometimes",
                "chat.tool_policy",
            ),
            (
                "HEARTH_CHAT__FIRST_TOKEN_TIMEOUT_SECS",
                "0",
                "chat.first_token_timeout_secs",
            ),
            (
                "HEARTH_TOOLS__FETCH_ALLOWLIST",
                "[\"10.0.0.0/99\"]",
                "tools.fetch_allowlist",
            ),
            (
                "HEARTH_TOOLS__SEARXNG_URL",
                "searx.local",
                "tools.searxng_url",
            ),
        ] {
            let err = Settings::load(env(&[(name, value)]), &Overrides::default())
                .expect_err(name)
                .to_string();
            assert!(err.contains(key), "{name}: {err}");
        }
    }
}
