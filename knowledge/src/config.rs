//! Layered configuration: built-in defaults, then a TOML file (`lariat.toml` in the data dir or
//! an explicit path), then `LARIAT_…` environment variables (`LARIAT_DATABASE_URL`,
//! `LARIAT_RETRIEVAL__RRF_K`: `__` separates sections). Secrets never appear in `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use parse::chunker::ChunkingConfig;

use crate::error::{Error, Result};

/// A value that must never be printed (database URLs carry passwords).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Everything lariat keeps: the SQLite database, the vector and lexical indexes.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// `postgres://…` to keep the source of truth in PostgreSQL; SQLite in the data dir if unset.
    pub database_url: Option<Secret>,
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

/// How pages are fetched for ingestion.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// Networks fetched although they are not public (loopback, private, link-local…), as
    /// addresses or CIDR (`10.0.0.0/8`): an intranet wiki, say. Everything else that is not a
    /// public address is refused, whatever a host name resolves to.
    pub allow_networks: Vec<String>,
    /// The ports pages are fetched from: ports (`"8080"`) or ranges (`"8000-8999"`). Anything
    /// else is refused, whatever the address.
    pub allowed_ports: Vec<String>,
    /// A page larger than this is refused.
    pub max_bytes: u64,
    /// A whole fetch, redirects included, must end within this.
    pub timeout_secs: u64,
    /// A fetch that receives nothing for this long is abandoned.
    pub stall_secs: u64,
    pub max_redirects: u32,
    /// Folders under which admins may add folder sources over the API or the web app (the
    /// local operator, at the command line, may name any folder). Empty: none.
    pub folder_roots: Vec<std::path::PathBuf>,
    /// A source's document is deleted after its file or page was missing from this many
    /// consecutive syncs (a source may set its own).
    pub max_misses: u32,
    /// Pages a URL list or a sitemap may name.
    pub max_pages: usize,
    /// Sources per collection.
    pub max_per_collection: usize,
    /// The shortest time between two syncs a source's schedule may ask for.
    pub min_interval_secs: u64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            allowed_ports: vec!["80".into(), "443".into()],
            max_bytes: 20 * 1024 * 1024,
            timeout_secs: 30,
            stall_secs: 10,
            max_redirects: 5,
            folder_roots: Vec::new(),
            max_misses: 3,
            max_pages: 1000,
            max_per_collection: 50,
            min_interval_secs: 300,
        }
    }
}

/// The job runner. Every server sharing a database may run it: each occurrence of a job runs
/// once among them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether `lariat serve` runs jobs (a replica that only serves may leave them to others).
    pub enabled: bool,
    /// How long a run is held without a renewal before another runner takes it over (the
    /// holder renews every quarter of it).
    pub lease_secs: u64,
    /// Attempts per occurrence before it is recorded as failed.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to an hour.
    pub retry_base_secs: u64,
    /// How often a runner looks for due work.
    pub tick_secs: u64,
    /// Days finished runs are kept.
    pub history_days: u32,
    /// Schedules by job name, replacing the defaults: cron, 5 fields (minute hour day month
    /// weekday) or 6 (seconds first), in UTC.
    pub schedules: BTreeMap<String, String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_secs: 60,
            max_attempts: 3,
            retry_base_secs: 30,
            tick_secs: 1,
            history_days: 30,
            schedules: BTreeMap::new(),
        }
    }
}

/// Stripe billing. Each paid plan names its Stripe prices; a subscription's price decides its
/// user's plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// `sk_live_…` / `sk_test_…`: turns billing on.
    pub stripe_secret_key: Option<Secret>,
    /// The webhook endpoint's signing secrets (`whsec_…`); several while one is rotated out.
    pub webhook_secrets: Vec<Secret>,
    /// Stripe's API (a test server in the tests).
    pub api_base: String,
    /// Per paid plan: its monthly and yearly price ids.
    pub prices: BTreeMap<String, PlanPrices>,
    /// The plan users fall back to (no or ended subscription).
    pub free_plan: String,
    /// How long a subscription whose payment failed (`past_due`) keeps its plan.
    pub grace_days: u32,
    /// Each Stripe call's timeout; calls are tried up to three times.
    pub timeout_secs: u64,
    /// How far a webhook's signed timestamp may be from now.
    pub tolerance_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanPrices {
    pub monthly: Option<String>,
    pub yearly: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            webhook_secrets: Vec::new(),
            api_base: "https://api.stripe.com".into(),
            prices: BTreeMap::new(),
            free_plan: "free".into(),
            grace_days: 7,
            timeout_secs: 20,
            tolerance_secs: 300,
        }
    }
}

/// Outgoing mail (password resets and notices). Without `smtp_host` nothing is sent: `lariat
/// serve` logs each message instead, links included, clearly marked.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `starttls` (upgrade a plain connection), `tls` (TLS from the start) or `none`.
    pub tls: MailTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    /// Where users reach the web app, for the links in mail.
    pub public_url: String,
    /// A folder whose `NAME.txt` and `NAME.html` replace the built-in templates (`reset`,
    /// `password_changed`); `{{link}}`, `{{email}}` and `{{minutes}}` are filled in.
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MailTls {
    None,
    Starttls,
    Tls,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: MailTls::Starttls,
            username: None,
            password: None,
            from: "Lariat <lariat@localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            templates_dir: None,
        }
    }
}

/// The operator's settings for one domain's external site. What the site looks like (paths,
/// forms, selectors) is in the `layout` file; credentials are set here or in `LARIAT_SITES__…`
/// variables, never passed by the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteSettings {
    /// The site's layout: a TOML file (see deploy/domains/rodeo/sites/).
    pub layout: Option<PathBuf>,
    /// Overrides the layout's base URL (a staging copy, a test fixture).
    pub base_url: Option<String>,
    /// The member account lariat signs in as.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Entries and withdrawals are refused unless the operator turns this on.
    pub writes_enabled: bool,
    /// Writes return the request that would have been sent, and send nothing.
    pub dry_run: bool,
    /// Requests per minute lariat makes to the site (all callers together).
    pub requests_per_minute: u32,
    /// The longest `Retry-After` lariat waits out before answering "rate limited".
    pub max_retry_wait_secs: u64,
    pub timeout_secs: u64,
    /// How long a preview's confirm token stays valid.
    pub confirm_ttl_secs: u64,
    /// The least role that may use the site tools: they act with the operator's member account.
    pub min_role: crate::accounts::Role,
}

impl Default for SiteSettings {
    fn default() -> Self {
        Self {
            layout: None,
            base_url: None,
            username: None,
            password: None,
            writes_enabled: false,
            dry_run: false,
            requests_per_minute: 30,
            max_retry_wait_secs: 30,
            timeout_secs: 20,
            confirm_ttl_secs: 600,
            min_role: crate::accounts::Role::Curator,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC key for access tokens. Unset: a random key kept in `DATA_DIR/jwt-secret` (set it
    /// explicitly when several servers share one database).
    pub jwt_secret: Option<Secret>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// A session ends this long after sign-in, however often its tokens are renewed.
    pub session_max_age_secs: u64,
    pub min_password_len: usize,
    /// Sign-in attempts per minute, per account and per client address.
    pub signin_per_minute_account: u32,
    pub signin_per_minute_address: u32,
    /// The plan new accounts get.
    pub default_plan: String,
    /// Who may sign up: `open`, `invite_only` (admins open accounts), or `domains` (addresses at
    /// `signup_domains` only).
    pub signup: SignupPolicy,
    pub signup_domains: Vec<String>,
    /// Sign-ups per hour from one client address, and on the whole server.
    pub signup_per_hour_address: u32,
    pub signup_per_hour: u32,
    /// Password reset requests per hour from one client address, and for one e-mail address.
    pub reset_per_hour_address: u32,
    pub reset_per_hour_email: u32,
    /// Whether an account whose address is not yet verified may ask the assistant (it may
    /// always sign in, search and read).
    pub unverified_can_chat: bool,
    /// Verification mails an account may ask for per hour.
    pub verify_per_hour_account: u32,
    /// Whether a password reset of a verified account also revokes its API keys (a reset means
    /// the password may have leaked). The first reset or verification of an account that was
    /// unverified always revokes every credential made before it.
    pub reset_revokes_keys: bool,
    /// Audit log entries are kept this many days.
    pub audit_retention_days: u32,
    /// OpenID Connect providers users may sign in with, by name (`[auth.oidc.google]`); the
    /// name is in the callback URL, `{mail.public_url}/auth/oidc/NAME/callback`.
    pub oidc: BTreeMap<String, OidcProviderConfig>,
    /// How long a started single sign-on may take before its callback is refused.
    pub oidc_state_ttl_secs: u64,
    /// An account without a password confirms an erasure by having signed in (through its
    /// provider) this recently.
    pub reauth_window_secs: u64,
}

/// One OpenID Connect provider. `preset = "google"` fills in Google's issuer and name; any
/// other provider needs its `issuer` (discovery reads `ISSUER/.well-known/openid-configuration`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProviderConfig {
    pub preset: Option<OidcPreset>,
    pub issuer: Option<String>,
    /// What the sign-in button says ("Sign in with NAME").
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Requested besides `openid`; `email` is needed to match or open accounts.
    pub scopes: Vec<String>,
    /// Whether a first sign-in whose address this provider vouches for joins the existing
    /// account with that (verified) address. Off by default: a provider that lets its users
    /// choose an address and still calls it verified would hand out other people's accounts.
    /// Never applies to admins or lariat's own accounts.
    pub link_by_email: bool,
    /// With `link_by_email`, only addresses at these (lower-case) domains are linked; empty:
    /// any.
    pub allowed_domains: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OidcPreset {
    Google,
}

impl OidcPreset {
    fn issuer(self) -> &'static str {
        match self {
            OidcPreset::Google => "https://accounts.google.com",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            OidcPreset::Google => "Google",
        }
    }
}

impl OidcProviderConfig {
    /// The issuer URL, the preset's when none is set.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer
            .as_deref()
            .or(self.preset.map(OidcPreset::issuer))
    }

    /// The name on the button: the configured one, the preset's, or the config key.
    pub fn display_name(&self, key: &str) -> String {
        self.display_name
            .clone()
            .or(self.preset.map(|p| p.display_name().to_owned()))
            .unwrap_or_else(|| key.to_owned())
    }

    /// `openid` and the configured scopes (`email profile` by default), each once.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_owned()];
        let configured: &[String] = &self.scopes;
        let defaults = ["email".to_owned(), "profile".to_owned()];
        let chosen = if configured.is_empty() {
            &defaults[..]
        } else {
            configured
        };
        for scope in chosen {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignupPolicy {
    #[default]
    Open,
    InviteOnly,
    Domains,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            session_max_age_secs: 90 * 24 * 3600,
            min_password_len: 10,
            signin_per_minute_account: 10,
            signin_per_minute_address: 30,
            default_plan: "free".into(),
            signup: SignupPolicy::Open,
            signup_domains: Vec::new(),
            signup_per_hour_address: 10,
            signup_per_hour: 1_000,
            reset_per_hour_address: 20,
            reset_per_hour_email: 5,
            unverified_can_chat: false,
            verify_per_hour_account: 5,
            reset_revokes_keys: true,
            audit_retention_days: 365,
            oidc: BTreeMap::new(),
            oidc_state_ttl_secs: 600,
            reauth_window_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    /// Answers per calendar month (UTC).
    pub monthly_messages: u64,
    /// Model tokens (prompt + completion) per calendar month (UTC).
    pub monthly_tokens: u64,
    /// Requests per minute, per user and per API key.
    pub requests_per_minute: u32,
    /// Days a conversation is kept after its last message (0: kept until its user deletes it);
    /// the retention job deletes older ones.
    pub conversation_retention_days: u32,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            monthly_messages: 200,
            monthly_tokens: 400_000,
            requests_per_minute: 20,
            conversation_retention_days: 0,
        }
    }
}

fn default_plans() -> BTreeMap<String, PlanConfig> {
    let plan = |monthly_messages, monthly_tokens, requests_per_minute| PlanConfig {
        monthly_messages,
        monthly_tokens,
        requests_per_minute,
        conversation_retention_days: 0,
    };
    BTreeMap::from([
        ("free".to_owned(), plan(200, 400_000, 20)),
        ("pro".to_owned(), plan(5_000, 10_000_000, 120)),
        ("team".to_owned(), plan(50_000, 100_000_000, 600)),
    ])
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LlmApi {
    /// `POST {base_url}/chat/completions`, streamed as OpenAI does.
    #[default]
    Openai,
    /// `POST {base_url}/messages` (Anthropic Messages API), streamed.
    Anthropic,
    /// A GGUF model (`model_path`) run in-process by llama.cpp: see `[llm.local]`.
    Llama,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs, metrics and the message record.
    pub name: String,
    pub api: LlmApi,
    /// e.g. `https://api.openai.com/v1` or `https://api.anthropic.com/v1` (not for `llama`).
    #[serde(default)]
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    /// The GGUF file of an `llama` provider.
    #[serde(default)]
    pub model_path: Option<PathBuf>,
    /// This provider's own first-token and total timeouts (default: `[llm]`'s).
    #[serde(default)]
    pub first_token_timeout_ms: Option<u64>,
    #[serde(default)]
    pub total_timeout_ms: Option<u64>,
    /// US dollars per million tokens, for the cost recorded with each message.
    #[serde(default)]
    pub input_price_per_mtok: f64,
    #[serde(default)]
    pub output_price_per_mtok: f64,
    /// Tokens of context the model accepts (prompt budget = this − max_output_tokens).
    #[serde(default = "default_context_tokens")]
    pub context_tokens: usize,
    #[serde(default = "default_max_output_tokens")]
    pub max_output_tokens: usize,
}

fn default_context_tokens() -> usize {
    16_000
}
fn default_max_output_tokens() -> usize {
    1_024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Tried in order: the next is used when one fails before its first token.
    pub providers: Vec<ProviderConfig>,
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
    /// Retries per provider on 429 and 5xx before the first token, with exponential backoff.
    pub retries: u32,
    pub backoff_ms: u64,
    /// Consecutive failures that open a provider's circuit, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    pub local: LocalLlmConfig,
}

/// The in-process model (providers with `api = "llama"`, and the one `make setup-llm` installs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalLlmConfig {
    /// With no provider configured, answer with the model `make setup-llm` installed in the
    /// assets dir (`llm/NAME/model.gguf`), if there is one.
    pub auto: bool,
    /// Which installed model `auto` answers with (one of `make setup-llm`'s names); unset: the
    /// best installed.
    pub model: Option<String>,
    /// Threads for prompt processing and generation (0: every core).
    pub threads: usize,
    /// Prompt tokens processed per step.
    pub batch_tokens: usize,
    /// Answers that may wait while the model generates another; more are turned away.
    pub max_waiting: usize,
    /// The installed model's context and longest answer, in its own tokens.
    pub context_tokens: usize,
    pub max_output_tokens: usize,
}

impl Default for LocalLlmConfig {
    fn default() -> Self {
        Self {
            auto: true,
            model: None,
            threads: 0,
            batch_tokens: 512,
            max_waiting: 8,
            context_tokens: 4096,
            max_output_tokens: 512,
        }
    }
}

/// The models `make setup-llm` installs, best first.
const LOCAL_MODELS: &[&str] = &["qwen2.5-coder-1.5b", "smollm2-135m"];

impl LocalLlmConfig {
    /// The provider for the chosen (else the best) installed local model, if any.
    pub fn installed(&self, assets: &Path) -> Option<ProviderConfig> {
        let mut chosen = LOCAL_MODELS
            .iter()
            .filter(|name| self.model.as_deref().is_none_or(|m| m == **name));
        let (name, path) = chosen.find_map(|name| {
            let path = assets.join("llm").join(name).join("model.gguf");
            path.is_file().then_some((*name, path))
        })?;
        Some(ProviderConfig {
            name: "local".into(),
            api: LlmApi::Llama,
            base_url: String::new(),
            api_key: None,
            model: name.into(),
            model_path: Some(path),
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            context_tokens: self.context_tokens,
            max_output_tokens: self.max_output_tokens,
            // prompt processing on a small machine takes seconds, and answers wait their turn
            first_token_timeout_ms: Some(600_000),
            total_timeout_ms: Some(900_000),
        })
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            connect_timeout_ms: 3_000,
            first_token_timeout_ms: 20_000,
            total_timeout_ms: 120_000,
            retries: 2,
            backoff_ms: 200,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            local: LocalLlmConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Passages retrieved and numbered as sources for each answer.
    pub sources: usize,
    /// Answers to an identical question on an unchanged collection are served from a cache.
    pub cache_enabled: bool,
    pub cache_ttl_secs: u64,
    /// Share of a cited sentence's content words that must appear in its passage.
    pub support_threshold: f32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            sources: 6,
            cache_enabled: false,
            cache_ttl_secs: 600,
            support_threshold: 0.5,
        }
    }
}

impl Config {
    /// The providers in fallback order (the environment's single provider first); with none
    /// configured, the installed local model (see [`LocalLlmConfig::auto`]).
    pub fn providers(&self) -> Vec<ProviderConfig> {
        let mut out = Vec::new();
        if let Some(base_url) = &self.llm_base_url {
            out.push(ProviderConfig {
                name: "default".into(),
                api: LlmApi::Openai,
                base_url: base_url.clone(),
                api_key: self.llm_api_key.clone(),
                model: self
                    .llm_model
                    .clone()
                    .unwrap_or_else(|| "gpt-4o-mini".into()),
                input_price_per_mtok: 0.0,
                output_price_per_mtok: 0.0,
                context_tokens: default_context_tokens(),
                max_output_tokens: default_max_output_tokens(),
                model_path: None,
                first_token_timeout_ms: None,
                total_timeout_ms: None,
            });
        }
        out.extend(self.llm.providers.iter().cloned());
        // a build without the local model never picks one up
        if out.is_empty()
            && cfg!(feature = "local-llm")
            && self.llm.local.auto
            && let Some(local) = self.llm.local.installed(&default_assets_dir())
        {
            out.push(local);
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// A folder holding `model.onnx`, the tokenizer files and optionally `lariat-model.toml`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library (`ORT_DYLIB_PATH` is honoured too).
    pub onnxruntime: PathBuf,
    /// Passages per inference batch.
    pub batch_size: usize,
    /// Inference threads; 0 lets ONNX Runtime use every core.
    pub threads: usize,
    /// Whether ONNX Runtime's inference threads spin (busy-wait) between the steps of one run, as
    /// is its default; they stop when the run returns either way. Off: slower runs, fewer cycles.
    pub spinning: bool,
}

/// How the BM25 and dense lists are combined.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: ranks only.
    Rrf,
    /// Weighted sum of min-max normalised scores.
    Convex,
    /// The mean of convex and RRF, each scaled to [0, 1] (the default: level with convex on
    /// SciFact train and NPL, above it on MED and CACM, and leaning on ranks where one list's
    /// scores mislead).
    #[default]
    Blend,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    pub fusion: Fusion,
    /// Reciprocal rank fusion constant.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// Candidates taken from each list before fusion.
    pub candidates: usize,
    /// BM25 boost of the title/heading field over the body.
    pub title_boost: f32,
    /// BM25's term-frequency saturation (k1) and length normalisation (b).
    pub bm25_k1: f32,
    pub bm25_b: f32,
    /// How much a word said again in the query counts: 0 once, large as often as said.
    pub bm25_k3: f32,
    /// The share of a passage's BM25 score that is its whole document's (scored against the
    /// other documents), the rest its own (against the other passages). 0 ranks passages alone.
    pub bm25_document_weight: f32,
    /// Below this many vectors dense search is exact; above it HNSW with `hnsw_ef`.
    pub exact_search_below: usize,
    pub hnsw_ef: usize,
    /// Dense pseudo-relevance feedback in hybrid search: the query vector moves toward the
    /// mean vector of this many of the first fusion's top passages, the dense list is searched
    /// again with it and fused again with the lexical one. 0 turns it off.
    pub feedback_passages: usize,
    /// The share of the moved query vector that is the question's own (Rocchio's alpha); the
    /// rest is the passages' mean.
    pub feedback_query_weight: f32,
}

impl RetrievalConfig {
    /// How the lexical index ranks passages.
    pub fn lexical(&self) -> crate::lexical::Ranking {
        crate::lexical::Ranking {
            bm25: crate::lexical::Bm25 {
                k1: self.bm25_k1,
                b: self.bm25_b,
                k3: self.bm25_k3,
            },
            title_boost: self.title_boost,
            document_weight: self.bm25_document_weight,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Files larger than this are skipped with a reason.
    pub max_file_bytes: u64,
    /// Chunks embedded and written together.
    pub batch_chunks: usize,
    /// Seconds the parser of one file may run (in its worker process) before it is stopped and
    /// the file fails.
    pub parse_timeout_secs: u64,
    /// Memory (MiB) the parser of one file may use before it is stopped and the file fails.
    pub parse_memory_mb: u64,
}

/// Which wire format the rerank service speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RerankApi {
    /// Cohere, Jina, Infinity: `{query, documents}` → `results[{index, relevance_score}]`.
    #[default]
    Cohere,
    /// text-embeddings-inference `/rerank`: `{query, texts}` → `[{index, score}]`.
    Tei,
}

/// The `rerank` search mode's second stage. Off unless `url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    pub url: Option<String>,
    pub api: RerankApi,
    pub model: Option<String>,
    pub api_key: Option<Secret>,
    /// How many of the hybrid list's top passages are rescored.
    pub depth: usize,
    /// Past this the hybrid order is kept and the failure reported.
    pub timeout_ms: u64,
}

impl Default for RerankConfig {
    fn default() -> Self {
        Self {
            url: None,
            api: RerankApi::Cohere,
            model: None,
            api_key: None,
            depth: 50,
            timeout_ms: 3000,
        }
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
}

impl ServerConfig {
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

/// Where `make setup` installs the model and ONNX Runtime.
pub fn default_assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LARIAT_ASSETS_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lariat")
        .join("assets")
}

/// The default data directory: `$XDG_DATA_HOME/lariat` (or the platform's equivalent).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lariat")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            database_url: None,
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

impl Default for EmbeddingConfig {
    fn default() -> Self {
        let assets = default_assets_dir();
        Self {
            model_dir: assets.join("models").join("all-minilm-l6-v2-int8"),
            onnxruntime: std::env::var_os("ORT_DYLIB_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| assets.join("onnxruntime").join("libonnxruntime.so.1.31.1")),
            batch_size: 32,
            threads: 0,
            spinning: true,
        }
    }
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            fusion: Fusion::Blend,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            dense_weight: 1.0,
            candidates: 100,
            title_boost: 0.25,
            bm25_k1: 1.2,
            bm25_b: 0.55,
            bm25_k3: 1.0,
            bm25_document_weight: 0.5,
            exact_search_below: 20_000,
            hnsw_ef: 256,
            feedback_passages: 3,
            feedback_query_weight: 0.6,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            batch_chunks: 128,
            parse_timeout_secs: 120,
            parse_memory_mb: 2048,
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
        }
    }
}

const ENV_PREFIX: &str = "LARIAT_";
/// Retries per provider at most (the backoff doubles each time).
const MAX_LLM_RETRIES: u32 = 10;
/// Longest timeout accepted: one day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;
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
            if ENV_NOT_CONFIG.contains(&rest) || rest.starts_with("TEST_") {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut table, &path, parse_env_value(&value));
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

    fn validate(&self) -> Result<()> {
        self.validate_billing()?;
        let j = &self.jobs;
        if j.lease_secs == 0 || j.max_attempts == 0 || j.tick_secs == 0 || j.history_days == 0 {
            return Err(Error::InvalidInput(
                "jobs: lease_secs, max_attempts, tick_secs and history_days must be at least 1"
                    .into(),
            ));
        }
        let l = &self.llm.local;
        if l.threads > 1024
            || !(1..=8192).contains(&l.batch_tokens)
            || l.max_waiting > 100_000
            || !(256..=1_048_576).contains(&l.context_tokens)
            || l.max_output_tokens == 0
            || l.max_output_tokens >= l.context_tokens
        {
            return Err(Error::InvalidInput(
                "llm.local: threads 0-1024, batch_tokens 1-8192, max_waiting up to 100000, \
                 context_tokens 256-1048576 and max_output_tokens positive and below it"
                    .into(),
            ));
        }
        if let Some(model) = &l.model
            && !LOCAL_MODELS.contains(&model.as_str())
        {
            return Err(Error::InvalidInput(format!(
                "llm.local.model: {model:?} is not one of {}",
                LOCAL_MODELS.join(", ")
            )));
        }
        for p in &self.llm.providers {
            if (p.api == LlmApi::Llama) != p.model_path.is_some() {
                return Err(Error::InvalidInput(format!(
                    "llm provider {}: model_path is for api = \"llama\", which needs it",
                    p.name
                )));
            }
            if p.max_output_tokens == 0 || p.max_output_tokens >= p.context_tokens {
                return Err(Error::InvalidInput(format!(
                    "llm provider {}: max_output_tokens must be positive and below context_tokens",
                    p.name
                )));
            }
        }
        let c = &self.chunking;
        if c.max_tokens < 16 || c.overlap_tokens >= c.max_tokens {
            return Err(Error::InvalidInput(format!(
                "chunking: max_tokens must be >= 16 and overlap_tokens below it (got {} and {})",
                c.max_tokens, c.overlap_tokens
            )));
        }
        let r = &self.retrieval;
        if r.candidates == 0 || r.rrf_k < 0.0 || r.bm25_weight < 0.0 || r.dense_weight < 0.0 {
            return Err(Error::InvalidInput(
                "retrieval: candidates must be positive and rrf_k and weights not negative".into(),
            ));
        }
        if !(0.0..=10.0).contains(&r.bm25_k1)
            || !(0.0..=1.0).contains(&r.bm25_b)
            || !(0.0..=1000.0).contains(&r.bm25_k3)
            || !(0.0..=1.0).contains(&r.bm25_document_weight)
        {
            return Err(Error::InvalidInput(format!(
                "retrieval: bm25_k1 must be 0-10, bm25_b 0-1, bm25_k3 0-1000 and bm25_document_weight 0-1 (got {}, {}, {} and {})",
                r.bm25_k1, r.bm25_b, r.bm25_k3, r.bm25_document_weight
            )));
        }
        if r.feedback_passages > 100
            || !(r.feedback_query_weight > 0.0 && r.feedback_query_weight <= 1.0)
        {
            return Err(Error::InvalidInput(format!(
                "retrieval: feedback_passages must be 0-100 and feedback_query_weight above 0 and at most 1 (got {} and {})",
                r.feedback_passages, r.feedback_query_weight
            )));
        }
        if self.rerank.depth == 0 || self.rerank.depth > 1000 || self.rerank.timeout_ms == 0 {
            return Err(Error::InvalidInput(
                "rerank: depth must be 1-1000 and timeout_ms positive".into(),
            ));
        }
        if !self.plans.contains_key(&self.auth.default_plan) {
            return Err(Error::InvalidInput(format!(
                "auth.default_plan {:?} is not one of the plans ({})",
                self.auth.default_plan,
                self.plans.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some((name, _)) = self.plans.iter().find(|(_, p)| p.requests_per_minute == 0) {
            return Err(Error::InvalidInput(format!(
                "plans.{name}.requests_per_minute must be positive"
            )));
        }
        if let Some((name, _)) = self
            .plans
            .iter()
            .find(|(_, p)| p.conversation_retention_days > crate::types::MAX_RETENTION_DAYS)
        {
            return Err(Error::InvalidInput(format!(
                "plans.{name}.conversation_retention_days is at most {}",
                crate::types::MAX_RETENTION_DAYS
            )));
        }
        let a = &self.auth;
        if a.access_ttl_secs == 0
            || a.refresh_ttl_secs == 0
            || a.session_max_age_secs == 0
            || a.signin_per_minute_account == 0
            || a.signin_per_minute_address == 0
            || a.signup_per_hour_address == 0
            || a.signup_per_hour == 0
            || a.reset_per_hour_address == 0
            || a.reset_per_hour_email == 0
            || a.verify_per_hour_account == 0
            || a.audit_retention_days == 0
            || a.oidc_state_ttl_secs == 0
            || a.reauth_window_secs == 0
        {
            return Err(Error::InvalidInput(
                "auth: token lifetimes and sign-in and sign-up limits must be positive".into(),
            ));
        }
        if a.signup == SignupPolicy::Domains
            && (a.signup_domains.is_empty()
                || a.signup_domains.iter().any(|d| {
                    d.is_empty() || d.contains('@') || d.chars().any(|c| c.is_ascii_uppercase())
                }))
        {
            return Err(Error::InvalidInput(
                "auth.signup = \"domains\" needs auth.signup_domains: lower-case domains such as \
                 [\"example.com\"]"
                    .into(),
            ));
        }
        for (name, provider) in &a.oidc {
            validate_oidc(name, provider)?;
        }
        self.server.trusted_proxy_nets()?;
        let l = &self.llm;
        if l.retries > MAX_LLM_RETRIES
            || l.backoff_ms > 60_000
            || l.connect_timeout_ms == 0
            || l.first_token_timeout_ms == 0
            || l.total_timeout_ms == 0
            || l.breaker_failures == 0
            || [
                l.connect_timeout_ms,
                l.first_token_timeout_ms,
                l.total_timeout_ms,
            ]
            .iter()
            .any(|ms| *ms > MAX_TIMEOUT_MS)
        {
            return Err(Error::InvalidInput(format!(
                "llm: retries must be 0-{MAX_LLM_RETRIES}, backoff_ms at most 60000, timeouts \
                 1-{MAX_TIMEOUT_MS} ms and breaker_failures positive"
            )));
        }
        if self.chat.sources == 0 || self.chat.sources > 50 {
            return Err(Error::InvalidInput("chat.sources must be 1-50".into()));
        }
        if let Some((name, _)) = self.sites.iter().find(|(_, s)| {
            s.requests_per_minute == 0 || s.timeout_secs == 0 || s.confirm_ttl_secs == 0
        }) {
            return Err(Error::InvalidInput(format!(
                "sites.{name}: requests_per_minute, timeout_secs and confirm_ttl_secs must be positive"
            )));
        }
        if self.embedding.batch_size == 0 || self.ingest.batch_chunks == 0 {
            return Err(Error::InvalidInput(
                "embedding.batch_size and ingest.batch_chunks must be positive".into(),
            ));
        }
        if !(1..=86_400).contains(&self.ingest.parse_timeout_secs) {
            return Err(Error::InvalidInput(
                "ingest.parse_timeout_secs must be 1-86400".into(),
            ));
        }
        if !(32..=1_048_576).contains(&self.ingest.parse_memory_mb) {
            return Err(Error::InvalidInput(
                "ingest.parse_memory_mb must be 32-1048576".into(),
            ));
        }
        Ok(())
    }
}

impl Config {
    fn validate_billing(&self) -> Result<()> {
        let b = &self.billing;
        let bad = |why: String| Err(Error::InvalidInput(format!("billing: {why}")));
        if !self.plans.contains_key(&b.free_plan) {
            return bad(format!(
                "free_plan {:?} is not one of the plans",
                b.free_plan
            ));
        }
        if !(b.api_base.starts_with("https://") || b.api_base.starts_with("http://")) {
            return bad("api_base must be an http(s) URL".into());
        }
        if b.timeout_secs == 0 || b.tolerance_secs == 0 {
            return bad("timeout_secs and tolerance_secs must be positive".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (plan, prices) in &b.prices {
            if !self.plans.contains_key(plan) || *plan == b.free_plan {
                return bad(format!("prices.{plan}: not a paid plan of [plans]"));
            }
            for price in prices.monthly.iter().chain(&prices.yearly) {
                if !price.starts_with("price_") || !seen.insert(price.clone()) {
                    return bad(format!(
                        "prices.{plan}: {price:?} is not a price id (price_…) or names two plans"
                    ));
                }
            }
        }
        if b.stripe_secret_key.is_some() && b.webhook_secrets.is_empty() {
            return bad("webhook_secrets: Stripe's events cannot be checked without one".into());
        }
        if b.webhook_secrets
            .iter()
            .any(|s| s.expose().trim().is_empty())
        {
            return bad("webhook_secrets: an empty secret".into());
        }
        Ok(())
    }
}

fn validate_oidc(name: &str, provider: &OidcProviderConfig) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidInput(format!("auth.oidc.{name}: {why}")));
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return bad(
            "a provider's name is 1-32 of a-z, 0-9, '-' and '_' (it is in the callback URL)",
        );
    }
    match provider.issuer() {
        None => return bad("set issuer (the provider's URL) or preset = \"google\""),
        Some(issuer) if !(issuer.starts_with("https://") || issuer.starts_with("http://")) => {
            return bad("issuer must be an http(s) URL");
        }
        Some(_) => {}
    }
    if provider.client_id.trim().is_empty() {
        return bad("client_id is required (from the provider's console)");
    }
    if provider
        .scopes
        .iter()
        .any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return bad("scopes are single words such as \"email\"");
    }
    Ok(())
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
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{bad:?}");
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
        assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
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
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{key}={value}");
        }
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
}
