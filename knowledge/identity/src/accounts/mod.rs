//! Accounts: users with argon2id passwords, sessions with short-lived JWT access tokens and
//! rotating refresh tokens, API keys, roles, and the per-account and per-address sign-in limits.
//! Every credential is stored hashed; a token or key is shown to its owner once.

pub mod sso;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Audit, AuditEvent};
use crate::config::{AuthConfig, SignupPolicy};
use crate::mail::{Mail, Template};
use crate::store::{
    AccountStore, IdentityStore, IssuedToken, RefreshOutcome, Revoked, Securing, StoredSession,
};
use base::error::{Error, Result};
use base::hashing::HashPool;
use base::ratelimit::{GlobalLimit, KeyedLimit, per_hour, per_minute};
use base::types::{content_hash, now_ms};
use std::path::Path;

/// What a sign-up answers, the same whether the address was free or taken.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SignedUp {
    /// The address, as it is kept (trimmed, lower case).
    pub email: String,
}

/// A user as stored at sign-up.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user: User,
    pub password_hash: String,
}

/// An admin's change to a user; `None` keeps the field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// An admin vouches for (or withdraws) the address.
    pub email_verified: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// The key's first characters, enough to recognise it in a list.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When the key stops working (never when absent).
    pub expires_at: Option<i64>,
    /// The key it was made with, if any: revoking that one revokes this one too.
    pub parent_id: Option<String>,
}

/// What a new key is for.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schemars(pattern(r"\S"))]
    pub name: String,
    /// Default: search and chat.
    pub scopes: Option<Vec<Scope>>,
    /// The key stops working this many days after it is made (1-3650; never when absent).
    #[schemars(range(min = 1, max = 3650))]
    pub expires_in_days: Option<u32>,
}

/// A new key: the only time its secret is visible.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

const API_KEY_PREFIX: &str = "lrt_";
const REFRESH_PREFIX: &str = "lrr_";
/// Visible characters of an API key (`lrt_` and 8 more).
const VISIBLE_KEY_CHARS: usize = 12;
const MAX_PASSWORD_LEN: usize = 256;
/// Longest e-mail input looked at (an address is at most 254 bytes; blanks around it are trimmed).
const MAX_EMAIL_INPUT: usize = 320;
/// The e-mail domain of lariat's own accounts (the local operator); nobody signs up with it.
use base::principal::RESERVED_DOMAIN;
// The caller and its account, as every concern sees them (defined in `base`, made here).
pub use base::principal::{Directory, Principal, Role, Scope, User};
/// How long a reset link works.
const RESET_MINUTES: i64 = 45;
/// How long a verification or e-mail change link works.
const VERIFY_HOURS: i64 = 48;
/// The local operator's password hash: not a PHC string, so no password ever verifies against it.
const OPERATOR_HASH: &str = "!";

/// Whether a stored hash is a password: the accounts without one (the local operator, an erased
/// account, one opened by single sign-on) hold a marker beginning with `!` instead.
pub(crate) fn is_password_hash(hash: &str) -> bool {
    !hash.starts_with('!')
}
/// API keys' last-used time is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iat: u64,
    exp: u64,
    typ: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct IntentClaims {
    sub: String,
    aud: String,
    act: String,
    args: serde_json::Value,
    iat: u64,
    exp: u64,
    jti: String,
    typ: String,
}

/// A signed confirmation of one previewed action (see [`Accounts::sign_intent`]).
#[derive(Debug, Clone)]
pub struct Intent {
    pub token: String,
    pub action: String,
    pub args: serde_json::Value,
    /// Unix seconds.
    pub expires_at: u64,
}

pub struct Accounts {
    store: Arc<dyn AccountStore>,
    identity_store: Arc<dyn IdentityStore>,
    /// The single-sign-on providers (see [`sso`]).
    sso: sso::Providers,
    config: AuthConfig,
    plans: Vec<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    signin_by_account: KeyedLimit,
    signin_by_address: KeyedLimit,
    signup_by_address: KeyedLimit,
    signups: GlobalLimit,
    reset_by_address: KeyedLimit,
    reset_by_email: KeyedLimit,
    /// Verification mails, and address-change mails, per account (each its own count).
    verify_by_account: KeyedLimit,
    /// Sends the reset links and notices.
    mail: Arc<Mail>,
    /// Where security events go.
    audit: Arc<Audit>,
    /// argon2 runs here, a few at a time (see [`HashPool`]).
    hashing: HashPool,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

/// `n` random bytes from the operating system, as lowercase hex.
pub fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

/// Lower-cased, trimmed and checked for the shape of an address.
/// The user with this email ("not found" when none has it).
pub(crate) async fn user_by_email(store: &dyn AccountStore, email: &str) -> Result<User> {
    let email = normalize_email(email)?;
    store
        .user_credentials(&email)
        .await?
        .map(|(u, _)| u)
        .ok_or_else(|| Error::NotFound(format!("no user {email}")))
}

pub fn normalize_email(raw: &str) -> Result<String> {
    if raw.len() > MAX_EMAIL_INPUT {
        return Err(Error::InvalidInput(
            "that is not a valid email address (too long)".into(),
        ));
    }
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::InvalidInput(format!(
            "{:?} is not a valid email address",
            raw.trim()
        )))
    }
}

/// Whether an address is at lariat's own domain (the local operator's).
pub fn is_reserved(email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain == RESERVED_DOMAIN)
}

fn check_not_reserved(email: &str) -> Result<()> {
    if is_reserved(email) {
        return Err(Error::InvalidInput(format!(
            "addresses @{RESERVED_DOMAIN} are reserved for lariat's own accounts"
        )));
    }
    Ok(())
}

fn check_password(password: &str, email: &str, min_len: usize) -> Result<()> {
    let chars = password.chars().count();
    let problem = if chars < min_len {
        Some(format!("must be at least {min_len} characters"))
    } else if password.len() > MAX_PASSWORD_LEN {
        Some(format!("must be at most {MAX_PASSWORD_LEN} bytes"))
    } else if password.chars().all(|c| password.starts_with(c)) {
        Some("must not repeat one character".to_owned())
    } else if password.to_lowercase() == email || email.starts_with(&password.to_lowercase()) {
        Some("must not be your email address".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::InvalidInput(format!("the password {p}"))),
        None => Ok(()),
    }
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `hash` was made from. What is not a password hash (no
/// account, an account that signs in only through a provider, the operator's) is checked
/// against a dummy hash and fails: every answer costs one argon2 run, so its time tells nothing.
fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let stored = hash
        .filter(|h| is_password_hash(h))
        .and_then(|h| PasswordHash::new(h).ok());
    let real = stored.is_some();
    let checked = stored.or_else(|| PasswordHash::new(dummy_hash()).ok());
    checked.is_some_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    }) && real
}

/// A hash to verify against when the account does not exist, so that the answer takes as long
/// as for a wrong password and does not reveal which emails are registered.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password at all").unwrap_or_default())
}

/// The signing key: the configured one, else a random key kept in the data dir.
fn jwt_secret(config: &AuthConfig, data_dir: &Path) -> Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        if secret.expose().len() < 32 {
            return Err(Error::InvalidInput(
                "auth.jwt_secret must be at least 32 characters".into(),
            ));
        }
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 64 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(Error::InvalidInput(format!(
                "{} is too short to be a signing key; delete it to have a new one made",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    }
    base::files::create_private_dir(data_dir)?;
    let secret = random_hex(48)?;
    let tmp = path.with_extension("tmp");
    base::files::write_private(&tmp, &secret)?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(secret.into_bytes())
}

/// The single-use links lariat mails. Each kind's tokens start with its prefix and are kept by
/// hash, for its purpose, with what they were issued for (the address being proven).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Reset,
    Verify,
    EmailChange,
}

impl LinkKind {
    fn prefix(self) -> &'static str {
        match self {
            LinkKind::Reset => "lrr_",
            LinkKind::Verify => "lrv_",
            LinkKind::EmailChange => "lre_",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
            LinkKind::EmailChange => "email",
        }
    }

    fn lifetime_ms(self) -> i64 {
        match self {
            LinkKind::Reset => RESET_MINUTES * 60_000,
            LinkKind::Verify | LinkKind::EmailChange => VERIFY_HOURS * 3_600_000,
        }
    }

    fn invalid(self) -> Error {
        let what = match self {
            LinkKind::Reset => "reset link",
            LinkKind::Verify => "verification link",
            LinkKind::EmailChange => "confirmation link",
        };
        Error::InvalidInput(format!(
            "this {what} is invalid, used or expired: ask for a new one"
        ))
    }
}

fn wrong_current_password() -> Error {
    Error::InvalidInput("the current password is wrong".into())
}

/// Where a sign-in comes from, as its session remembers it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<IpAddr>,
    /// The `User-Agent` the client sent (see [`Client::new`]).
    pub user_agent: String,
}

impl Client {
    /// Keeps at most 200 printable characters of the user agent.
    pub fn new(address: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Client {
            address,
            user_agent,
        }
    }
}

/// A live session as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SessionInfo {
    #[serde(flatten)]
    pub session: StoredSession,
    /// Whether the request came with this session.
    pub current: bool,
}

/// API keys are managed from a signed-in session, or with a key scoped to manage keys.
fn require_key_manager(principal: &Principal) -> Result<()> {
    if principal.api_key_id.is_some() && !principal.has(Scope::Keys) {
        return Err(Error::Forbidden(
            "API keys are managed from a signed-in session, or with a key that has the keys \
             scope"
                .into(),
        ));
    }
    Ok(())
}

/// "2 sessions signed out, 1 API key revoked, the sign-in through google unlinked".
fn describe(revoked: &Revoked) -> String {
    let count = |n: u64, one: &str, many: &str, done: &str| {
        (n > 0).then(|| format!("{n} {} {done}", if n == 1 { one } else { many }))
    };
    let mut parts: Vec<String> = [
        count(revoked.sessions, "session", "sessions", "signed out"),
        count(revoked.keys, "API key", "API keys", "revoked"),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.extend(
        revoked
            .identities
            .iter()
            .map(|p| format!("the sign-in through {p} unlinked")),
    );
    parts.join(", ")
}

fn unauthorized() -> Error {
    Error::Unauthorized("invalid, expired or revoked credentials".into())
}

impl Accounts {
    /// Accounts as `config` sets them up, signing tokens with `auth.jwt_secret` or the key kept
    /// in `data_dir`; single sign-on calls back to `public_url`; users are given one of `plans`.
    pub fn new(
        config: &AuthConfig,
        data_dir: &Path,
        public_url: &str,
        plans: Vec<String>,
        stores: (Arc<dyn AccountStore>, Arc<dyn IdentityStore>),
        mail: Arc<Mail>,
        audit: Arc<Audit>,
    ) -> Result<Self> {
        let (store, identity_store) = stores;
        let secret = jwt_secret(config, data_dir)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            store,
            identity_store,
            sso: sso::Providers::new(config, public_url)?,
            config: config.clone(),
            plans,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            signin_by_account: KeyedLimit::new(
                per_minute(config.signin_per_minute_account),
                "too many sign-in attempts for this account",
            ),
            signin_by_address: KeyedLimit::new(
                per_minute(config.signin_per_minute_address),
                "too many sign-in attempts from this address",
            ),
            signup_by_address: KeyedLimit::new(
                per_hour(config.signup_per_hour_address),
                "too many sign-ups from this address",
            ),
            signups: GlobalLimit::new(
                per_hour(config.signup_per_hour),
                "too many sign-ups on this server just now",
            ),
            reset_by_address: KeyedLimit::new(
                per_hour(config.reset_per_hour_address),
                "too many password reset requests from this address",
            ),
            reset_by_email: KeyedLimit::new(
                per_hour(config.reset_per_hour_email),
                "too many password reset requests for this address",
            ),
            verify_by_account: KeyedLimit::new(
                per_hour(config.verify_per_hour_account),
                "too many confirmation mails for this account just now",
            ),
            mail,
            audit,
            hashing: HashPool::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            )?,
        })
    }

    /// Registers a user with the `user` role and the default plan, as the sign-up policy allows
    /// and within the sign-up limits (per client address, and for the whole server). The answer
    /// is the same, and costs the same, whether the address was free or not: a taken address's
    /// owner is mailed instead (a few times an hour at most), and nothing changes.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<SignedUp> {
        let normalized = normalize_email(email)?;
        self.check_signup(&normalized, address)?;
        check_not_reserved(&normalized)?;
        let password_hash = self.checked_hash(password, &normalized).await?;
        let user = self.new_user(&normalized, Role::User, false);
        match self
            .store
            .create_user(&NewUser {
                user: user.clone(),
                password_hash,
            })
            .await
        {
            Ok(()) => {
                self.record(
                    AuditEvent::SignedUp,
                    Some(&user.id),
                    &user.id,
                    address,
                    json!({}),
                )
                .await?;
                self.mail_verification(&user).await?;
            }
            Err(e) if e.code() == base::ErrorCode::Conflict => {
                // the owner hears of it, unless that is being used to flood their mailbox
                if self
                    .verify_by_account
                    .check(&("signup", &normalized))
                    .is_ok()
                {
                    let link = self.mail.link("/forgot");
                    self.mail
                        .send(None, &normalized, Template::SignupTaken, &[("link", &link)])
                        .await?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(SignedUp { email: normalized })
    }

    /// A new account's row (its id, now, the default plan).
    fn new_user(&self, email: &str, role: Role, email_verified: bool) -> User {
        User {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.to_owned(),
            email_verified,
            role,
            plan: self.config.default_plan.clone(),
            disabled: false,
            created_at: now_ms(),
        }
    }

    /// Whether the sign-up policy lets this (normalised) address open an account, within the
    /// sign-up limits per client address and for the whole server.
    fn check_signup(&self, normalized: &str, address: Option<IpAddr>) -> Result<()> {
        if let Some(ip) = address {
            self.signup_by_address.check_address(ip)?;
        }
        self.signups.check()?;
        match &self.config.signup {
            SignupPolicy::Open => Ok(()),
            SignupPolicy::InviteOnly => Err(Error::Forbidden(
                "sign-up is by invitation only: ask an administrator for an account".into(),
            )),
            SignupPolicy::Domains => {
                let domain = normalized.rsplit('@').next().unwrap_or_default();
                if self.config.signup_domains.iter().any(|d| d == domain) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(format!(
                        "sign-up is open to addresses at {} only",
                        self.config.signup_domains.join(", ")
                    )))
                }
            }
        }
    }

    /// An account an administrator opens for someone (the way in when sign-up is closed); the
    /// administrator vouches for its address.
    pub async fn add_user(&self, email: &str, password: &str, role: Role) -> Result<User> {
        self.create_user(email, password, role, true).await
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
        email_verified: bool,
    ) -> Result<User> {
        let email = normalize_email(email)?;
        check_not_reserved(&email)?;
        let password_hash = self.checked_hash(password, &email).await?;
        let user = self.new_user(&email, role, email_verified);
        self.store
            .create_user(&NewUser {
                user: user.clone(),
                password_hash,
            })
            .await?;
        Ok(user)
    }

    /// The argon2id hash of a password that passes the policy.
    async fn checked_hash(&self, password: &str, email: &str) -> Result<String> {
        check_password(password, email, self.config.min_password_len)?;
        let password = password.to_owned();
        self.hashing.run(move || hash_password(&password)).await
    }

    /// The local operator (`lariat mcp` without an API key): an admin account that cannot sign in
    /// (it has no password), created on first use so its conversations and usage are recorded.
    pub async fn local_operator(&self) -> Result<Principal> {
        let email = format!("operator@{RESERVED_DOMAIN}");
        let user = match self.store.user_credentials(&email).await? {
            // only an account made here has this marker (and no password); anything else holding
            // the address was not made by lariat and is never treated as the operator
            Some((user, hash)) if hash == OPERATOR_HASH && user.role == Role::Admin => user,
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "{email} exists but is not lariat's local operator account; remove it"
                )));
            }
            None => {
                let user = User {
                    id: uuid::Uuid::new_v4().to_string(),
                    email: email.clone(),
                    email_verified: true,
                    role: Role::Admin,
                    plan: self.config.default_plan.clone(),
                    disabled: false,
                    created_at: now_ms(),
                };
                let new = NewUser {
                    user: user.clone(),
                    password_hash: OPERATOR_HASH.into(),
                };
                match self.store.create_user(&new).await {
                    Ok(()) => user,
                    // created meanwhile by another process
                    Err(e) if e.code() == base::ErrorCode::Conflict => self
                        .store
                        .user_credentials(&email)
                        .await?
                        .filter(|(_, hash)| hash == OPERATOR_HASH)
                        .map(|(u, _)| u)
                        .ok_or(e)?,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Principal {
            user,
            api_key_id: None,
            session_id: None,
            may_chat: true,
            scopes: None,
            address: None,
        })
    }

    /// Creates the admin `email` with this password. An existing account is never promoted as
    /// it is (its password was not chosen here): without `reset` that is a conflict; with it the
    /// account gets this password, loses every session, API key and linked identity (whoever
    /// holds them was not vouched for here), and becomes an admin.
    pub async fn create_admin(&self, email: &str, password: &str, reset: bool) -> Result<User> {
        let normalized = normalize_email(email)?;
        let Some((user, _)) = self.store.user_credentials(&normalized).await? else {
            return self.create_user(email, password, Role::Admin, true).await;
        };
        if !reset {
            return Err(Error::Conflict(format!(
                "an account for {normalized} already exists and its password was not set here; \
                 run `lariat admin create {normalized} --reset-password` to give it this \
                 password, sign it out everywhere, revoke its API keys, unlink its sign-in \
                 providers and make it an admin"
            )));
        }
        let hash = self.checked_hash(password, &normalized).await?;
        let everything = Securing {
            password_hash: Some(&hash),
            revoke_keys: true,
            remove_identities: true,
            ..Securing::default()
        };
        self.store.secure_account(&user.id, &everything).await?;
        let update = UserUpdate {
            role: Some(Role::Admin),
            disabled: Some(false),
            email_verified: Some(true),
            ..UserUpdate::default()
        };
        self.record(
            AuditEvent::PasswordChanged,
            None,
            &user.id,
            None,
            json!({"by": "lariat admin create --reset-password"}),
        )
        .await?;
        self.set_user(None, &user.id, &update).await
    }

    /// Checks the password and opens a session. Attempts are limited per account and per
    /// client address; a wrong email and a wrong password get the same answer.
    pub async fn signin(&self, email: &str, password: &str, client: &Client) -> Result<TokenPair> {
        if let Some(ip) = client.address {
            self.signin_by_address.check_address(ip)?;
        }
        // No account has an address or a password that long: answer as for a wrong password, without a
        // bucket for it or a look-up.
        if email.len() > MAX_EMAIL_INPUT || password.len() > MAX_PASSWORD_LEN {
            return Err(Error::Unauthorized("wrong email or password".into()));
        }
        let email = email.trim().to_lowercase();
        self.signin_by_account.check(&email)?;
        let found = self.store.user_credentials(&email).await?;
        let ok = self
            .verify(password, found.as_ref().map(|(_, h)| h.clone()))
            .await?;
        let (subject, reason) = match &found {
            Some((user, _)) if ok && !user.disabled => {
                let detail = json!({"user_agent": client.user_agent});
                return self.signed_in(user, client, detail).await;
            }
            Some((user, _)) if ok => (Some(user.id.as_str()), "disabled"),
            Some((user, _)) => (Some(user.id.as_str()), "wrong password"),
            None => (None, "no such account"),
        };
        self.audit
            .record(
                AuditEvent::SignInFailed,
                None,
                subject,
                client.address,
                json!({"reason": reason}),
            )
            .await?;
        Err(Error::Unauthorized(if reason == "disabled" {
            "this account is disabled".into()
        } else {
            "wrong email or password".into()
        }))
    }

    /// Whether `password` matches `hash` (a dummy hash when there is none, so an unknown account
    /// takes as long), on a hashing thread: argon2 is CPU work.
    async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool> {
        let password = password.to_owned();
        self.hashing
            .run(move || Ok(verify_password(&password, hash.as_deref())))
            .await
    }

    /// Opens a session for a sign-in that passed its checks, and audits it.
    async fn signed_in(
        &self,
        user: &User,
        client: &Client,
        detail: serde_json::Value,
    ) -> Result<TokenPair> {
        let pair = self.open_session(user, client).await?;
        self.record(
            AuditEvent::SignedIn,
            Some(&user.id),
            &user.id,
            client.address,
            detail,
        )
        .await?;
        Ok(pair)
    }

    async fn open_session(&self, user: &User, client: &Client) -> Result<TokenPair> {
        let now = now_ms();
        let session = StoredSession {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            user_agent: client.user_agent.clone(),
            address: client.address.map(|a| a.to_string()).unwrap_or_default(),
            created_at: now,
            last_used_at: Some(now),
            expires_at: Some(now + (self.config.session_max_age_secs as i64) * 1000),
        };
        let refresh = format!("{REFRESH_PREFIX}{}", random_hex(32)?);
        self.store
            .create_session(
                &session,
                &content_hash(refresh.as_bytes()),
                self.refresh_expiry(),
            )
            .await?;
        self.token_pair(&user.id, &session.id, refresh)
    }

    /// The caller's live sessions, most recently used first, the one they call from marked.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>> {
        principal.require_session()?;
        Ok(self
            .store
            .sessions(&principal.user.id)
            .await?
            .into_iter()
            .map(|session| SessionInfo {
                current: principal.session_id.as_deref() == Some(session.id.as_str()),
                session,
            })
            .collect())
    }

    /// Signs one of the caller's sessions out; another user's is "not found".
    pub async fn revoke_session(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require_session()?;
        if self
            .store
            .revoke_sessions(&principal.user.id, Some(id), None)
            .await?
        {
            self.record_by(
                principal,
                AuditEvent::SessionRevoked,
                json!({"session_id": id}),
            )
            .await
        } else {
            Err(Error::NotFound(format!("no session {id}")))
        }
    }

    /// Signs every session of the caller out, this one included.
    pub async fn signout_everywhere(&self, principal: &Principal) -> Result<()> {
        principal.require_session()?;
        self.store
            .revoke_sessions(&principal.user.id, None, None)
            .await?;
        self.record_by(principal, AuditEvent::SessionRevoked, json!({"all": true}))
            .await
    }

    /// Mails a single-use reset link to the account with this address, if there is one that
    /// may sign in. The answer is the same whether there is or not, and takes as long: the
    /// rate limits (per client address and per e-mail address) do not depend on it, and the
    /// look-up and the mail are done on a task of their own, after the answer.
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<()> {
        if let Some(ip) = address {
            self.reset_by_address.check_address(ip)?;
        }
        let email = normalize_email(email)?;
        self.reset_by_email.check(&email)?;
        let accounts = self.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts.reset_requested(&email, address).await {
                tracing::error!(error = %e, "a password reset request could not be served");
            }
        });
        Ok(())
    }

    /// The work behind [`Accounts::request_password_reset`].
    async fn reset_requested(&self, email: &str, address: Option<IpAddr>) -> Result<()> {
        let Some((user, _)) = self.store.user_credentials(email).await? else {
            return Ok(());
        };
        if user.disabled || is_reserved(email) {
            return Ok(());
        }
        self.record(
            AuditEvent::ResetRequested,
            None,
            &user.id,
            address,
            json!({}),
        )
        .await?;
        self.mail_reset_link(&user).await
    }

    /// An admin mails a user a reset link (the user still chooses the password).
    pub async fn send_reset_link(&self, principal: &Principal, user_id: &str) -> Result<()> {
        principal.require(Role::Admin)?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {user_id}")))?;
        if user.disabled {
            return Err(Error::Conflict(
                "this account is disabled: enable it before sending it a reset link".into(),
            ));
        }
        if is_reserved(&user.email) {
            return Err(Error::InvalidInput(
                "lariat's own accounts have no password to reset".into(),
            ));
        }
        self.record(
            AuditEvent::ResetRequested,
            Some(&principal.user.id),
            &user.id,
            principal.address,
            json!({"by_admin": true}),
        )
        .await?;
        self.mail_reset_link(&user).await
    }

    async fn mail_reset_link(&self, user: &User) -> Result<()> {
        let link = self.issue_link(LinkKind::Reset, user, &user.email).await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::Reset,
                &[("link", &link), ("minutes", &RESET_MINUTES.to_string())],
            )
            .await
    }

    /// A new single-use link of this kind for `user`, issued for `payload`: the app's address
    /// of the page that takes it.
    async fn issue_link(&self, kind: LinkKind, user: &User, payload: &str) -> Result<String> {
        let token = format!("{}{}", kind.prefix(), random_hex(32)?);
        self.store
            .create_token(&IssuedToken {
                hash: content_hash(token.as_bytes()),
                user_id: user.id.clone(),
                purpose: kind.purpose(),
                payload: payload.to_owned(),
                expires_at: now_ms() + kind.lifetime_ms(),
            })
            .await?;
        let page = match kind {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
            LinkKind::EmailChange => "confirm-email",
        };
        Ok(self.mail.link(&format!("/{page}?token={token}")))
    }

    /// The user and payload of a usable link token of this kind (left usable), and its hash;
    /// a disabled account's links do not work.
    async fn redeemable(&self, kind: LinkKind, token: &str) -> Result<(User, String, String)> {
        let token = token.trim();
        if !token.starts_with(kind.prefix()) || token.len() > 200 {
            return Err(kind.invalid());
        }
        let hash = content_hash(token.as_bytes());
        let (user, payload) = self
            .store
            .token_user(&hash, kind.purpose())
            .await?
            .filter(|(u, _)| !u.disabled)
            .ok_or_else(|| kind.invalid())?;
        Ok((user, payload, hash))
    }

    /// Uses the token up; of two racing uses only one gets here.
    async fn consume(&self, kind: LinkKind, hash: &str) -> Result<()> {
        if self.store.consume_token(hash, kind.purpose()).await? {
            Ok(())
        } else {
            Err(kind.invalid())
        }
    }

    /// Sets a new password with a reset link's token, which is used up; every session of the
    /// account ends and the account's address hears of it. A refused new password leaves the
    /// link usable.
    pub async fn reset_password_with(
        &self,
        token: &str,
        new_password: &str,
        address: Option<IpAddr>,
    ) -> Result<()> {
        let (user, email, hash) = self.redeemable(LinkKind::Reset, token).await?;
        let password_hash = self.checked_hash(new_password, &user.email).await?;
        self.consume(LinkKind::Reset, &hash).await?;
        // the link proved the mailbox: an account unverified until now loses everything made
        // on it before (by whoever signed up with the address); a verified one its keys too,
        // unless the operator keeps them
        let first_proof = !user.email_verified;
        let change = Securing {
            password_hash: Some(&password_hash),
            verify: first_proof.then_some(email.as_str()),
            keep_session: None,
            revoke_keys: first_proof || self.config.reset_revokes_keys,
            remove_identities: first_proof,
        };
        let revoked = self
            .store
            .secure_account(&user.id, &change)
            .await?
            .ok_or_else(|| LinkKind::Reset.invalid())?;
        self.record(
            AuditEvent::ResetUsed,
            None,
            &user.id,
            address,
            json!({"first_proof": first_proof, "revoked": revoked}),
        )
        .await?;
        self.password_changed_notice(&user).await?;
        if revoked.keys > 0 || !revoked.identities.is_empty() {
            self.access_removed_notice(&user, "a password reset", &revoked)
                .await?;
        }
        Ok(())
    }

    /// Tells the account's address what a change of its credentials took away.
    async fn access_removed_notice(
        &self,
        user: &User,
        event: &str,
        revoked: &Revoked,
    ) -> Result<()> {
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::AccessRemoved,
                &[("event", event), ("removed", &describe(revoked))],
            )
            .await
    }

    async fn mail_verification(&self, user: &User) -> Result<()> {
        let link = self.issue_link(LinkKind::Verify, user, &user.email).await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::Verify,
                &[("link", &link), ("hours", &VERIFY_HOURS.to_string())],
            )
            .await
    }

    /// Mails the caller a new verification link (a few an hour).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<()> {
        let user = &principal.user;
        if user.email_verified {
            return Err(Error::Conflict(format!(
                "{} is already verified",
                user.email
            )));
        }
        self.verify_by_account
            .check(&(LinkKind::Verify.purpose(), &user.id))?;
        self.mail_verification(user).await
    }

    /// Marks the address a verification link was sent to as verified, if the account still
    /// uses it; the link is used up.
    ///
    /// The first proof of the mailbox of an account unverified until then ends every session
    /// (but `viewer`'s, when the browser that followed the link is signed in to this account)
    /// and removes every API key and linked identity made before it: whoever signed up with the
    /// address may not have been its owner. The owner is told what was removed.
    pub async fn verify_email(
        &self,
        token: &str,
        address: Option<IpAddr>,
        viewer: Option<&Principal>,
    ) -> Result<User> {
        let (user, email, hash) = self.redeemable(LinkKind::Verify, token).await?;
        if user.email != email {
            return Err(LinkKind::Verify.invalid());
        }
        self.consume(LinkKind::Verify, &hash).await?;
        if user.email_verified {
            return Ok(user);
        }
        let keep = viewer
            .filter(|v| v.user.id == user.id)
            .and_then(|v| v.session_id.as_deref());
        let change = Securing {
            verify: Some(&email),
            keep_session: keep,
            revoke_keys: true,
            remove_identities: true,
            ..Securing::default()
        };
        let revoked = self
            .store
            .secure_account(&user.id, &change)
            .await?
            .ok_or_else(|| LinkKind::Verify.invalid())?;
        self.record(
            AuditEvent::EmailVerified,
            None,
            &user.id,
            address,
            json!({"revoked": revoked}),
        )
        .await?;
        if !revoked.is_empty() {
            self.access_removed_notice(&user, "the confirmation of the address", &revoked)
                .await?;
        }
        self.reloaded(&user.id).await
    }

    async fn reloaded(&self, id: &str) -> Result<User> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {id}")))
    }

    /// Starts moving the caller's account to another address: once they prove they know the
    /// password, a confirmation link goes to the new address (the account keeps the old one
    /// until it is followed).
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        password: &str,
    ) -> Result<()> {
        principal.require_session()?;
        self.check_current_password(principal, password).await?;
        let new_email = normalize_email(new_email)?;
        check_not_reserved(&new_email)?;
        let user = &principal.user;
        if new_email == user.email {
            return Err(Error::InvalidInput(format!(
                "{new_email} is already this account's address"
            )));
        }
        if self.store.user_credentials(&new_email).await?.is_some() {
            return Err(Error::Conflict(format!(
                "an account for {new_email} already exists"
            )));
        }
        self.verify_by_account
            .check(&(LinkKind::EmailChange.purpose(), &user.id))?;
        let link = self
            .issue_link(LinkKind::EmailChange, user, &new_email)
            .await?;
        self.record_by(principal, AuditEvent::EmailChangeRequested, json!({}))
            .await?;
        self.mail
            .send(
                Some(&user.id),
                &new_email,
                Template::EmailChange,
                &[
                    ("link", &link),
                    ("hours", &VERIFY_HOURS.to_string()),
                    ("old_email", &user.email),
                ],
            )
            .await
    }

    /// Moves the account to the address a confirmation link was sent to (now verified), uses the
    /// link up and tells the old address.
    pub async fn confirm_email_change(&self, token: &str, address: Option<IpAddr>) -> Result<User> {
        let (user, new_email, hash) = self.redeemable(LinkKind::EmailChange, token).await?;
        self.consume(LinkKind::EmailChange, &hash).await?;
        self.store.change_email(&user.id, &new_email).await?;
        self.record(AuditEvent::EmailChanged, None, &user.id, address, json!({}))
            .await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::EmailChanged,
                &[("new_email", &new_email)],
            )
            .await?;
        self.reloaded(&user.id).await
    }

    async fn password_changed_notice(&self, user: &User) -> Result<()> {
        let link = self.mail.link("/forgot");
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::PasswordChanged,
                &[("link", &link)],
            )
            .await
    }

    /// Changes the caller's password once they prove they know the current one; every other
    /// session is signed out (this one stays, and API keys are kept).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<()> {
        principal.require_session()?;
        self.check_current_password(principal, current).await?;
        let email = &principal.user.email;
        let hash = self.checked_hash(new, email).await?;
        let change = Securing {
            password_hash: Some(&hash),
            keep_session: principal.session_id.as_deref(),
            ..Securing::default()
        };
        self.store
            .secure_account(&principal.user.id, &change)
            .await?;
        self.record_by(principal, AuditEvent::PasswordChanged, json!({}))
            .await?;
        self.password_changed_notice(&principal.user).await
    }

    /// Refuses unless `password` is the caller's (attempts count against the sign-in limit): the
    /// re-authentication before a change of password or address, or an erasure.
    pub async fn check_current_password(
        &self,
        principal: &Principal,
        password: &str,
    ) -> Result<()> {
        let email = &principal.user.email;
        self.signin_by_account.check(email)?;
        if password.len() > MAX_PASSWORD_LEN {
            return Err(wrong_current_password());
        }
        let hash = self.store.user_credentials(email).await?.map(|(_, h)| h);
        if hash.as_deref() == Some(sso::NO_PASSWORD_HASH) {
            return Err(Error::Conflict(
                "this account has no password yet (it signs in through a provider): set one \
                 with a reset link from the sign-in page"
                    .into(),
            ));
        }
        if self.verify(password, hash).await? {
            Ok(())
        } else {
            Err(wrong_current_password())
        }
    }

    fn refresh_expiry(&self) -> i64 {
        now_ms() + (self.config.refresh_ttl_secs as i64) * 1000
    }

    fn token_pair(&self, user_id: &str, session_id: &str, refresh: String) -> Result<TokenPair> {
        let now = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + self.config.access_ttl_secs,
            typ: "access".into(),
        };
        let access = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.config.access_ttl_secs,
        })
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a used
    /// one again (a sign of theft) revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        if !refresh_token.starts_with(REFRESH_PREFIX) {
            return Err(unauthorized());
        }
        let next = format!("{REFRESH_PREFIX}{}", random_hex(32)?);
        match self
            .store
            .rotate_refresh(
                &content_hash(refresh_token.as_bytes()),
                &content_hash(next.as_bytes()),
                self.refresh_expiry(),
            )
            .await?
        {
            RefreshOutcome::Rotated { user, session_id } if !user.disabled => {
                self.token_pair(&user.id, &session_id, next)
            }
            RefreshOutcome::Reused => Err(Error::Unauthorized(
                "this refresh token was already used; the session is revoked, sign in again".into(),
            )),
            _ => Err(unauthorized()),
        }
    }

    /// Ends the caller's session: its access and refresh tokens stop working at once.
    pub async fn signout(&self, principal: &Principal) -> Result<()> {
        match &principal.session_id {
            Some(sid) => {
                self.store.revoke_session(sid).await?;
                self.record_by(principal, AuditEvent::SignedOut, json!({}))
                    .await
            }
            None => Err(Error::InvalidInput(
                "an API key has no session to sign out of; delete the key instead".into(),
            )),
        }
    }

    /// Who a bearer credential (access token or API key) belongs to.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let bearer = bearer.trim();
        if bearer.starts_with(API_KEY_PREFIX) {
            let (key, user) = self
                .store
                .api_key_user(&content_hash(bearer.as_bytes()))
                .await?
                .ok_or_else(unauthorized)?;
            if user.disabled {
                return Err(unauthorized());
            }
            let now = now_ms();
            if key.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
                self.store.touch_api_key(&key.id, now).await?;
            }
            return Ok(Principal {
                may_chat: self.may_chat(&user),
                user,
                api_key_id: Some(key.id),
                session_id: None,
                scopes: Some(key.scopes),
                address: None,
            });
        }
        let claims = jsonwebtoken::decode::<Claims>(bearer, &self.decoding, &self.validation)
            .map_err(|_| unauthorized())?
            .claims;
        if claims.typ != "access" {
            return Err(unauthorized());
        }
        let user = self
            .store
            .session_user(&claims.sid)
            .await?
            .filter(|u| u.id == claims.sub && !u.disabled)
            .ok_or_else(unauthorized)?;
        Ok(Principal {
            may_chat: self.may_chat(&user),
            user,
            api_key_id: None,
            session_id: Some(claims.sid),
            scopes: None,
            address: None,
        })
    }

    fn may_chat(&self, user: &User) -> bool {
        user.email_verified || self.config.unverified_can_chat
    }

    /// A signed, expiring confirmation that `user_id` previewed `action` with `args` on
    /// `audience` (e.g. `site:rodeo`): the second step of a two-step write carries only this.
    pub fn sign_intent(
        &self,
        user_id: &str,
        audience: &str,
        action: &str,
        args: &serde_json::Value,
        ttl_secs: u64,
    ) -> Result<Intent> {
        let now = (now_ms() / 1000) as u64;
        let claims = IntentClaims {
            sub: user_id.to_owned(),
            aud: audience.to_owned(),
            act: action.to_owned(),
            args: args.clone(),
            iat: now,
            exp: now + ttl_secs,
            jti: random_hex(8)?,
            typ: "intent".into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        Ok(Intent {
            token,
            action: claims.act,
            args: claims.args,
            expires_at: claims.exp,
        })
    }

    /// The action and arguments a confirmation signed for this user and audience carries.
    pub fn verify_intent(&self, token: &str, user_id: &str, audience: &str) -> Result<Intent> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        let claims =
            jsonwebtoken::decode::<IntentClaims>(token.trim(), &self.decoding, &validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::InvalidInput(
                        "the confirm token has expired; preview the action again".into(),
                    ),
                    _ => Error::InvalidInput(
                        "the confirm token is not valid here; preview the action again to get one"
                            .into(),
                    ),
                })?
                .claims;
        if claims.typ != "intent" || claims.sub != user_id {
            return Err(Error::InvalidInput(
                "the confirm token was issued to someone else; preview the action again".into(),
            ));
        }
        Ok(Intent {
            token: token.trim().to_owned(),
            action: claims.act,
            args: claims.args,
            expires_at: claims.exp,
        })
    }

    /// Makes a key with the scopes asked for (search and chat by default): only scopes the
    /// owner's role allows, and, made with a key, only scopes that key has.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: &NewApiKey,
    ) -> Result<CreatedApiKey> {
        require_key_manager(principal)?;
        principal.require_verified("making API keys")?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::InvalidInput(
                "a key needs a name of 1-100 characters".into(),
            ));
        }
        let mut scopes = new
            .scopes
            .clone()
            .unwrap_or_else(|| Scope::DEFAULT.to_vec());
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::InvalidInput("a key needs at least one scope".into()));
        }
        for scope in &scopes {
            if principal.user.role < scope.role() {
                return Err(Error::InvalidInput(format!(
                    "the {} scope needs the {} role; you are a {}",
                    scope.as_str(),
                    scope.role().as_str(),
                    principal.user.role.as_str()
                )));
            }
            principal.require_scope(*scope)?;
        }
        let now = now_ms();
        let asked = match new.expires_in_days {
            None => None,
            Some(days @ 1..=3650) => Some(now + i64::from(days) * 86_400_000),
            Some(_) => {
                return Err(Error::InvalidInput(
                    "expires_in_days must be 1-3650 (leave it out for a key that does not expire)"
                        .into(),
                ));
            }
        };
        // a key made with a key never outlives it
        let parent_end = match &principal.api_key_id {
            Some(parent) => {
                self.store
                    .api_keys(&principal.user.id)
                    .await?
                    .into_iter()
                    .find(|k| &k.id == parent)
                    .ok_or_else(unauthorized)?
                    .expires_at
            }
            None => None,
        };
        let expires_at = match (asked, parent_end) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        let key = format!("{API_KEY_PREFIX}{}", random_hex(24)?);
        let info = ApiKeyInfo {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            prefix: key[..VISIBLE_KEY_CHARS].to_owned(),
            scopes,
            created_at: now,
            last_used_at: None,
            expires_at,
            parent_id: principal.api_key_id.clone(),
        };
        self.store
            .create_api_key(&principal.user.id, &info, &content_hash(key.as_bytes()))
            .await?;
        let detail = json!({
            "key_id": info.id,
            "name": info.name,
            "scopes": info.scopes,
            "expires_at": info.expires_at,
            "by_key": principal.api_key_id,
        });
        self.record_by(principal, AuditEvent::KeyCreated, detail)
            .await?;
        Ok(CreatedApiKey { info, key })
    }

    pub async fn api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyInfo>> {
        require_key_manager(principal)?;
        self.store.api_keys(&principal.user.id).await
    }

    /// Revokes one of the caller's keys; another user's key is "not found".
    pub async fn delete_api_key(&self, principal: &Principal, id: &str) -> Result<()> {
        require_key_manager(principal)?;
        if self.store.revoke_api_key(&principal.user.id, id).await? {
            self.record_by(principal, AuditEvent::KeyRevoked, json!({"key_id": id}))
                .await
        } else {
            Err(Error::NotFound(format!("no API key {id}")))
        }
    }

    // ---- administration ----------------------------------------------------------------------

    pub async fn users(&self, principal: &Principal) -> Result<Vec<User>> {
        principal.require(Role::Admin)?;
        self.store.users().await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        self.store.user(id).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        user_by_email(self.store.as_ref(), email).await
    }

    /// The users whose email contains `query` (ignoring case), all of them for an empty one.
    pub async fn search_users(&self, principal: &Principal, query: &str) -> Result<Vec<User>> {
        let needle = query.trim().to_lowercase();
        let mut users = self.users(principal).await?;
        users.retain(|u| u.email.contains(&needle));
        Ok(users)
    }

    /// The plans a user may be put on.
    pub fn plans(&self) -> &[String] {
        &self.plans
    }

    pub async fn update_user(
        &self,
        principal: &Principal,
        id: &str,
        update: &UserUpdate,
    ) -> Result<User> {
        principal.require(Role::Admin)?;
        if id == principal.user.id && update.role.is_some_and(|r| r != Role::Admin) {
            return Err(Error::Conflict(
                "an admin cannot demote themselves; ask another admin".into(),
            ));
        }
        if id == principal.user.id && update.disabled == Some(true) {
            return Err(Error::Conflict(
                "an admin cannot disable themselves; ask another admin".into(),
            ));
        }
        self.set_user(Some(principal), id, update).await
    }

    /// Changes a user's role, plan or disabled flag: by an admin through
    /// [`Accounts::update_user`], or by the local operator (`actor` `None`).
    pub async fn set_user(
        &self,
        actor: Option<&Principal>,
        id: &str,
        update: &UserUpdate,
    ) -> Result<User> {
        if let Some(plan) = &update.plan
            && !self.plans.contains(plan)
        {
            return Err(Error::InvalidInput(format!(
                "unknown plan {plan:?}: expected one of {}",
                self.plans.join(", ")
            )));
        }
        let user = self
            .store
            .update_user(id, update)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {id}")))?;
        self.audit
            .record(
                AuditEvent::UserChanged,
                actor.map(|a| a.user.id.as_str()),
                Some(id),
                actor.and_then(|a| a.address),
                serde_json::to_value(update).unwrap_or_default(),
            )
            .await?;
        Ok(user)
    }

    /// Records an event about `subject`.
    async fn record(
        &self,
        event: AuditEvent,
        actor: Option<&str>,
        subject: &str,
        address: Option<IpAddr>,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.audit
            .record(event, actor, Some(subject), address, detail)
            .await
    }

    /// Records an event the caller caused on their own account.
    async fn record_by(
        &self,
        principal: &Principal,
        event: AuditEvent,
        detail: serde_json::Value,
    ) -> Result<()> {
        let id = &principal.user.id;
        self.record(event, Some(id), id, principal.address, detail)
            .await
    }
}

#[async_trait::async_trait]
impl Directory for Accounts {
    async fn user_by_email(&self, email: &str) -> Result<User> {
        Accounts::user_by_email(self, email).await
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        Accounts::user(self, id).await
    }
}

#[cfg(test)]
mod tests;
