//! Identity's settings: accounts, sessions and their limits (`[auth]`), single sign-on
//! providers (`[auth.oidc.NAME]`) and outgoing mail (`[mail]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base::config::Secret;
use base::{Error, Result};
use serde::{Deserialize, Serialize};

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

impl AuthConfig {
    /// Checks the section on its own (that `default_plan` is a plan is checked where the plans
    /// are known).
    pub fn validate(&self) -> Result<()> {
        let a = self;
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
        Ok(())
    }
}
