//! Layered configuration: built-in defaults, then a TOML file (`lariat.toml` in the data dir or
//! an explicit path), then `LARIAT_…` environment variables (`LARIAT_DATABASE_URL`,
//! `LARIAT_RETRIEVAL__RRF_K`: `__` separates sections; `LARIAT_…_FILE` names a file holding the
//! value, as containers mount secrets). Secrets never appear in `Debug` output.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use base::config::{RedisConfig, Secret, default_data_dir};
use base::{Error, Result};
use chat::config::{ChatConfig, LlmConfig, ProviderConfig};
use commerce::config::{BillingConfig, PlanConfig, default_plans};
use identity::config::{AuthConfig, MailConfig};
use knowledge::config::{
    ChunkingConfig, EmbeddingConfig, IngestConfig, RerankConfig, RetrievalConfig,
};
use operations::config::{JobsConfig, SourcesConfig};
use serde::Deserialize;
use sites::config::SiteSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Everything lariat keeps: the SQLite database, the vector and lexical indexes.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// `postgres://…` to keep the source of truth in PostgreSQL; SQLite in the data dir if unset.
    pub database_url: Option<Secret>,
    /// Redis for the limits every server shares (rates of requests, sign-ins and sign-ups); a
    /// shared deployment without it keeps them in PostgreSQL.
    pub redis: RedisConfig,
    pub embedding: EmbeddingConfig,
    pub chunking: ChunkingConfig,
    pub retrieval: RetrievalConfig,
    pub ingest: IngestConfig,
    pub server: ServerConfig,
    pub rerank: RerankConfig,
    pub auth: AuthConfig,
    /// Plans by name; every user has one. Defaults: free, pro, team.
    pub plans: BTreeMap<String, PlanConfig>,
    /// One OpenAI-compatible provider without a config file: `LARIAT_LLM_BASE_URL`,
    /// `LARIAT_LLM_API_KEY`, `LARIAT_LLM_MODEL`. It goes first, before `llm.providers`.
    pub llm_base_url: Option<String>,
    pub llm_api_key: Option<Secret>,
    pub llm_model: Option<String>,
    pub llm: LlmConfig,
    pub chat: ChatConfig,
    /// External sites agents act on, by domain (`sites.rodeo`): see `lariat mcp site`.
    pub sites: BTreeMap<String, SiteSettings>,
    pub mail: MailConfig,
    /// Paid plans through Stripe; without `stripe_secret_key` plans are set by admins only.
    pub billing: BillingConfig,
    /// Scheduled jobs (retention, mail, billing, source syncs): see `lariat jobs`.
    pub jobs: JobsConfig,
    /// Web pages fetched for ingestion (`lariat ingest https://…`).
    pub sources: SourcesConfig,
}

impl Config {
    /// What opening retrieval's stores takes, from this configuration.
    pub fn knowledge(&self) -> knowledge::config::Setup<'_> {
        knowledge::config::Setup {
            data_dir: &self.data_dir,
            database_url: self.database_url.as_ref(),
            embedding: &self.embedding,
            retrieval: &self.retrieval,
            rerank: &self.rerank,
        }
    }

    /// The providers in fallback order (the environment's single provider first); with none
    /// configured, the installed local model.
    pub fn providers(&self) -> Vec<ProviderConfig> {
        let first = self.llm_base_url.as_ref().map(|base_url| {
            ProviderConfig::openai(
                base_url.clone(),
                self.llm_api_key.clone(),
                self.llm_model.clone(),
            )
        });
        self.llm.providers(first)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: String,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// `Host` values the MCP endpoints accept (`name` or `name:port`), against DNS rebinding;
    /// loopback names by default. Add the public host name when serving beyond this machine;
    /// an empty list turns the check off.
    pub mcp_allowed_hosts: Vec<String>,
    /// Browser origins the MCP endpoints accept (`scheme://host[:port]`); none = no check.
    pub mcp_allowed_origins: Vec<String>,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client;
    /// from anyone else the header is ignored. None by default.
    pub trusted_proxies: Vec<String>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`.
    pub metrics_token: Option<Secret>,
    /// After SIGTERM (or Ctrl-C) the server stops accepting and lets what is in flight finish
    /// for at most this long, then ends it (answers streaming past it are cut; the write
    /// protocol leaves nothing half-written). Inside Kubernetes' default 30 s.
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    fn validate(&self) -> Result<()> {
        if !(1..=3600).contains(&self.shutdown_grace_secs) {
            return Err(Error::InvalidInput(
                "server.shutdown_grace_secs is between 1 and 3600".into(),
            ));
        }
        self.trusted_proxy_nets().map(|_| ())
    }

    /// `trusted_proxies` parsed: a bare address is a block of one.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|raw| {
                let raw = raw.trim();
                raw.parse::<ipnet::IpNet>()
                    .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        Error::InvalidInput(format!(
                            "server.trusted_proxies: {raw:?} is not an address or CIDR block"
                        ))
                    })
            })
            .collect()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            database_url: None,
            redis: RedisConfig::default(),
            embedding: EmbeddingConfig::default(),
            chunking: ChunkingConfig::default(),
            retrieval: RetrievalConfig::default(),
            ingest: IngestConfig::default(),
            server: ServerConfig::default(),
            rerank: RerankConfig::default(),
            auth: AuthConfig::default(),
            plans: default_plans(),
            llm_base_url: None,
            llm_api_key: None,
            llm_model: None,
            llm: LlmConfig::default(),
            chat: ChatConfig::default(),
            sites: BTreeMap::new(),
            mail: MailConfig::default(),
            billing: BillingConfig::default(),
            jobs: JobsConfig::default(),
            sources: SourcesConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            cors_origins: Vec::new(),
            mcp_allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            mcp_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            shutdown_grace_secs: 20,
        }
    }
}

const ENV_PREFIX: &str = "LARIAT_";
/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_CONFIG: &[&str] = &[
    "DATA_DIR",
    "CONFIG",
    "ASSETS_DIR",
    "LOG",
    "LOG_FORMAT",
    "ADMIN_PASSWORD",
    "API_KEY",
];

impl Config {
    /// Loads the layers: defaults, then `config_file` (or `lariat.toml` in `data_dir` if it
    /// exists), then the given environment variables.
    pub fn load(
        data_dir: &Path,
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        // Default plans sit under the layers so a file or variable can change one field of one plan.
        let mut table = toml::Table::new();
        let plans = toml::Table::try_from(default_plans())
            .map_err(|e| Error::Internal(format!("default plans: {e}")))?;
        table.insert("plans".into(), toml::Value::Table(plans));
        let default_file = data_dir.join("lariat.toml");
        let file = match config_file {
            Some(path) => Some(path.to_path_buf()),
            None => default_file.exists().then_some(default_file),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
            let file = text.parse::<toml::Table>().map_err(|e| {
                Error::InvalidInput(format!("config {}: {}", path.display(), e.message()))
            })?;
            merge(&mut table, file);
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // `LARIAT_X_FILE=/run/secrets/x`: X's value is that file's content (a secret
            // mounted as a file, as containers give them)
            let file = rest.strip_suffix("_FILE");
            let name = file.unwrap_or(rest);
            if ENV_NOT_CONFIG.contains(&name) || name.starts_with("TEST_") {
                continue;
            }
            let (rest, value) = match file {
                Some(key) => (key, read_secret_file(&key_name(key), &value)?),
                None => (rest, parse_env_value(&value)),
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut table, &path, value);
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "configuration key {}: {}",
                    e.path(),
                    e.inner().message()
                ))
            })?;
        config.data_dir = data_dir.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    /// Each section checks its own values; what ties sections together is checked here.
    fn validate(&self) -> Result<()> {
        self.billing.validate(&self.plans)?;
        self.jobs.validate()?;
        self.redis.validate()?;
        self.llm.validate()?;
        knowledge::config::validate(
            &self.chunking,
            &self.retrieval,
            &self.rerank,
            &self.embedding,
            &self.ingest,
        )?;
        if !self.plans.contains_key(&self.auth.default_plan) {
            return Err(Error::InvalidInput(format!(
                "auth.default_plan {:?} is not one of the plans ({})",
                self.auth.default_plan,
                self.plans.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        commerce::config::validate_plans(&self.plans)?;
        if self.retrieval.vector_store == knowledge::config::VectorBackend::Pgvector
            && self.database_url.is_none()
        {
            return Err(Error::InvalidInput(
                "retrieval.vector_store = \"pgvector\" needs database_url to name a PostgreSQL database".into(),
            ));
        }
        if self.knowledge().shared() && self.auth.jwt_secret.is_none() {
            return Err(Error::InvalidInput(
                "every store is in PostgreSQL, so several servers may serve this deployment: set auth.jwt_secret (the same on every server) so each accepts the others' sessions".into(),
            ));
        }
        self.auth.validate()?;
        self.server.validate()?;
        self.chat.validate()?;
        for (name, site) in &self.sites {
            site.validate(name)?;
        }
        Ok(())
    }
}

/// The configuration key an environment variable's rest names (`AUTH__JWT_SECRET` →
/// `auth.jwt_secret`), for messages.
fn key_name(rest: &str) -> String {
    rest.split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// The value in the file at `path` for `key`, without the line ending files end with; at most
/// 64 KiB, UTF-8. The message names the key and the file, never what the file holds.
fn read_secret_file(key: &str, path: &str) -> Result<toml::Value> {
    const MAX: u64 = 64 * 1024;
    let bad = |why: String| Error::InvalidInput(format!("{key}: the file {path:?} {why}"));
    let size = std::fs::metadata(path)
        .map_err(|e| bad(format!("cannot be read: {e}")))?
        .len();
    if size > MAX {
        return Err(bad(format!(
            "holds {size} bytes; a secret is at most {MAX}"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8 text".into()))?;
    Ok(toml::Value::String(
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_owned(),
    ))
}

fn parse_env_value(raw: &str) -> toml::Value {
    // A scalar that parses as TOML keeps its type (numbers, booleans); anything else is a string.
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// Deep-merges `from` into `into`: tables merge key by key, anything else replaces.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lariat.toml"),
            "[retrieval]\nrrf_k = 10.0\ncandidates = 50\n[server]\naddr = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let c = Config::load(
            dir.path(),
            None,
            env(&[
                ("LARIAT_RETRIEVAL__CANDIDATES", "70"),
                ("LARIAT_DATABASE_URL", "postgres://u:pw@h/db"),
                ("LARIAT_DATA_DIR", "/ignored"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.retrieval.rrf_k, 10.0);
        assert_eq!(c.retrieval.candidates, 70);
        assert_eq!(c.server.addr, "127.0.0.1:9");
        assert_eq!(c.chunking.max_tokens, 192);
        let url = c.database_url.as_ref().unwrap();
        assert_eq!(url.expose(), "postgres://u:pw@h/db");
        assert!(
            !format!("{c:?}").contains("pw"),
            "secrets must not be printed"
        );
    }

    #[test]
    fn sign_on_providers_have_presets_defaults_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(
            dir.path(),
            None,
            env(&[
                ("LARIAT_AUTH__OIDC__GOOGLE__PRESET", "google"),
                (
                    "LARIAT_AUTH__OIDC__GOOGLE__CLIENT_ID",
                    "123.apps.googleusercontent.com",
                ),
                ("LARIAT_AUTH__OIDC__GOOGLE__CLIENT_SECRET", "very-secret"),
                (
                    "LARIAT_AUTH__OIDC__CORP__ISSUER",
                    "https://sso.corp.example/realms/x",
                ),
                ("LARIAT_AUTH__OIDC__CORP__CLIENT_ID", "lariat"),
                (
                    "LARIAT_AUTH__OIDC__CORP__SCOPES",
                    "[\"email\", \"groups\", \"openid\"]",
                ),
            ]),
        )
        .unwrap();
        let google = &c.auth.oidc["google"];
        assert_eq!(google.issuer(), Some("https://accounts.google.com"));
        assert_eq!(google.display_name("google"), "Google");
        assert_eq!(google.scopes(), ["openid", "email", "profile"]);
        let corp = &c.auth.oidc["corp"];
        assert_eq!(corp.display_name("corp"), "corp");
        assert_eq!(corp.scopes(), ["openid", "email", "groups"]);
        assert!(!format!("{c:?}").contains("very-secret"));
        for bad in [
            vec![("LARIAT_AUTH__OIDC__X__CLIENT_ID", "id")],
            vec![
                ("LARIAT_AUTH__OIDC__X__ISSUER", "ftp://x.example"),
                ("LARIAT_AUTH__OIDC__X__CLIENT_ID", "id"),
            ],
            vec![("LARIAT_AUTH__OIDC__X__PRESET", "google")],
            vec![
                ("LARIAT_AUTH__OIDC__X__PRESET", "google"),
                ("LARIAT_AUTH__OIDC__X__CLIENT_ID", "id"),
                ("LARIAT_AUTH__OIDC__X__SCOPES", "[\"a b\"]"),
            ],
            vec![
                ("LARIAT_AUTH__OIDC__A.B__PRESET", "google"),
                ("LARIAT_AUTH__OIDC__A.B__CLIENT_ID", "id"),
            ],
            vec![("LARIAT_AUTH__OIDC__X__PRESET", "facebook")],
        ] {
            let err = Config::load(dir.path(), None, env(&bad)).unwrap_err();
            assert_eq!(err.code(), base::ErrorCode::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains("oidc"), "{err}");
        }
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "[retrieval]\nrrf_kk = 1\n").unwrap();
        let err = Config::load(dir.path(), Some(&file), vec![]).unwrap_err();
        assert!(err.to_string().contains("rrf_kk"), "{err}");
        let err = Config::load(
            dir.path(),
            None,
            env(&[("LARIAT_CHUNKING__MAX_TOKENS", "lots")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_tokens"), "{err}");
        let err = Config::load(
            dir.path(),
            None,
            env(&[("LARIAT_CHUNKING__OVERLAP_TOKENS", "400")]),
        )
        .unwrap_err();
        assert_eq!(err.code(), base::ErrorCode::InvalidInput);
        for (key, value) in [
            ("LARIAT_LLM__RETRIES", "4000000000"),
            ("LARIAT_LLM__RETRIES", "40"),
            ("LARIAT_RETRIEVAL__BM25_K3", "-1"),
            ("LARIAT_RETRIEVAL__BM25_B", "1.5"),
            ("LARIAT_RETRIEVAL__BM25_DOCUMENT_WEIGHT", "-0.1"),
            ("LARIAT_RETRIEVAL__BM25_DOCUMENT_WEIGHT", "1.01"),
            ("LARIAT_RETRIEVAL__BM25_DOCUMENT_WEIGHT", "NaN"),
            ("LARIAT_RETRIEVAL__FEEDBACK_PASSAGES", "101"),
            ("LARIAT_RETRIEVAL__FEEDBACK_PASSAGES", "-1"),
            ("LARIAT_RETRIEVAL__FEEDBACK_QUERY_WEIGHT", "0"),
            ("LARIAT_RETRIEVAL__FEEDBACK_QUERY_WEIGHT", "1.5"),
            ("LARIAT_RETRIEVAL__FEEDBACK_QUERY_WEIGHT", "NaN"),
            ("LARIAT_RETRIEVAL__VECTOR_STORE", "pgvector"),
            ("LARIAT_RETRIEVAL__VECTOR_STORE", "milvus"),
            ("LARIAT_RETRIEVAL__LEXICAL_STORE", "elastic"),
            ("LARIAT_LLM__TOTAL_TIMEOUT_MS", "0"),
            ("LARIAT_LLM__FIRST_TOKEN_TIMEOUT_MS", "18446744073709551615"),
            ("LARIAT_AUTH__SIGNUP", "domains"),
            ("LARIAT_AUTH__SIGNUP", "whoever"),
            ("LARIAT_SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/33\"]"),
            ("LARIAT_LLM__LOCAL__MODEL", "../../etc/passwd"),
            ("LARIAT_LLM__LOCAL__BATCH_TOKENS", "0"),
            ("LARIAT_LLM__LOCAL__MAX_OUTPUT_TOKENS", "4096"),
            ("LARIAT_LLM__LOCAL__CONTEXT_TOKENS", "100"),
        ] {
            let err = Config::load(dir.path(), None, env(&[(key, value)])).unwrap_err();
            assert_eq!(err.code(), base::ErrorCode::InvalidInput, "{key}={value}");
        }
        // a Qdrant that is used is checked: its address, names, copies and time limit
        for (key, value) in [
            (
                "LARIAT_RETRIEVAL__QDRANT__URL",
                "ftp://qdrant.internal:6334",
            ),
            ("LARIAT_RETRIEVAL__QDRANT__COLLECTION_PREFIX", "a/b"),
            ("LARIAT_RETRIEVAL__QDRANT__COLLECTION_PREFIX", ""),
            ("LARIAT_RETRIEVAL__QDRANT__SHARD_NUMBER", "0"),
            ("LARIAT_RETRIEVAL__QDRANT__WRITE_CONSISTENCY_FACTOR", "2"),
            ("LARIAT_RETRIEVAL__QDRANT__TIMEOUT_SECS", "0"),
        ] {
            let vars = [("LARIAT_RETRIEVAL__LEXICAL_STORE", "qdrant"), (key, value)];
            let err = Config::load(dir.path(), None, env(&vars)).unwrap_err();
            assert_eq!(err.code(), base::ErrorCode::InvalidInput, "{key}={value}");
            assert!(err.to_string().contains("retrieval.qdrant"), "{err}");
        }
        let qdrant = Config::load(
            dir.path(),
            None,
            env(&[
                ("LARIAT_RETRIEVAL__VECTOR_STORE", "qdrant"),
                (
                    "LARIAT_RETRIEVAL__QDRANT__API_KEY",
                    "qdrant-key-not-to-print",
                ),
            ]),
        )
        .unwrap();
        assert!(!format!("{qdrant:?}").contains("qdrant-key-not-to-print"));
        let ok = Config::load(
            dir.path(),
            None,
            env(&[
                ("LARIAT_AUTH__SIGNUP", "domains"),
                ("LARIAT_AUTH__SIGNUP_DOMAINS", "[\"corp.example\"]"),
                (
                    "LARIAT_SERVER__TRUSTED_PROXIES",
                    "[\"10.0.0.0/8\", \"::1\"]",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(ok.server.trusted_proxy_nets().unwrap().len(), 2);
    }

    /// Redis and the plans' hour and day windows come from the same layers, with clear errors
    /// that never show the URL's password.
    #[test]
    fn redis_and_rate_windows_are_configured_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(
            dir.path(),
            None,
            env(&[
                (
                    "LARIAT_REDIS__URL",
                    "redis://:pw-not-to-print@10.0.0.5:6379/2",
                ),
                ("LARIAT_PLANS__FREE__REQUESTS_PER_HOUR", "300"),
                ("LARIAT_PLANS__FREE__REQUESTS_PER_DAY", "2000"),
            ]),
        )
        .unwrap();
        assert_eq!(c.redis.key_prefix, "lariat:");
        assert_eq!(c.plans["free"].requests_per_hour, 300);
        assert_eq!(c.plans["free"].requests_per_day, 2000);
        assert_eq!(
            c.plans["pro"].requests_per_day, 0,
            "no daily limit by default"
        );
        assert!(!format!("{c:?}").contains("pw-not-to-print"));
        for (url, says) in [
            ("rediss://:pw-not-to-print@h:6380", "TLS"),
            ("http://:pw-not-to-print@h:6379", "redis://"),
            ("pw-not-to-print", "redis://"),
        ] {
            let err = Config::load(dir.path(), None, env(&[("LARIAT_REDIS__URL", url)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("pw-not-to-print"), "{err}");
        }
        let err = Config::load(
            dir.path(),
            None,
            env(&[("LARIAT_REDIS__TIMEOUT_SECS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis.timeout_secs"), "{err}");
        let err = Config::load(
            dir.path(),
            None,
            env(&[("LARIAT_SERVER__SHUTDOWN_GRACE_SECS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("shutdown_grace_secs"), "{err}");
        let err = Config::load(
            dir.path(),
            None,
            env(&[("LARIAT_PLANS__FREE__REQUESTS_PER_DAY", "-1")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("requests_per_day"), "{err}");
    }

    /// `LARIAT_…_FILE` reads a value from a file (containers' secrets), with clear errors.
    #[test]
    fn values_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("database_url");
        std::fs::write(&url, "postgres://u:file-pw@h/db\n").unwrap();
        let secret = dir.path().join("jwt");
        std::fs::write(&secret, "a-signing-key-from-a-file").unwrap();
        let c = Config::load(
            dir.path(),
            None,
            env(&[
                ("LARIAT_DATABASE_URL_FILE", url.to_str().unwrap()),
                ("LARIAT_AUTH__JWT_SECRET_FILE", secret.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.database_url.unwrap().expose(),
            "postgres://u:file-pw@h/db"
        );
        assert_eq!(
            c.auth.jwt_secret.unwrap().expose(),
            "a-signing-key-from-a-file"
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 70_000]).unwrap();
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        for (file, says) in [
            (dir.path().join("missing"), "cannot be read"),
            (big, "at most"),
            (binary, "not UTF-8"),
        ] {
            let err = Config::load(
                dir.path(),
                None,
                env(&[("LARIAT_AUTH__JWT_SECRET_FILE", file.to_str().unwrap())]),
            )
            .unwrap_err();
            assert_eq!(err.code(), base::ErrorCode::InvalidInput);
            let err = err.to_string();
            assert!(
                err.contains("auth.jwt_secret") && err.contains(says),
                "{err}"
            );
        }
    }
}
