//! Accounts: users with argon2id passwords, sessions with short-lived JWT access tokens and
//! rotating refresh tokens, API keys, roles, and the per-account and per-address sign-in limits.
//! Every credential is stored hashed; a token or key is shown to its owner once.

mod keys;
mod links;
mod passwords;
mod sessions;
pub mod sso;
mod users;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::sso::IdentityStore;
use crate::audit::{Audit, AuditEvent};
use crate::config::{AuthConfig, SignupPolicy};
use crate::mail::{Mail, Template};
use crate::store::{IssuedToken, RefreshOutcome, Revoked, Securing, StoredSession};
use base::error::{Error, Result};
use base::hashing::HashPool;
use base::ratelimit::{GlobalLimit, KeyedLimit, RateStore, per_hour, per_minute};
use base::types::{content_hash, now_ms};
use std::path::Path;

use passwords::*;
pub use sessions::Intent;

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

/// Where accounts keep what they keep.
pub struct AccountStores {
    pub accounts: Arc<dyn AccountStore>,
    pub identities: Arc<dyn IdentityStore>,
    /// The sign-in, sign-up, reset and verification limits' buckets when every server of a
    /// shared deployment must count as one; `None` keeps them in this process.
    pub rates: Option<Arc<dyn RateStore>>,
}

impl Accounts {
    /// Accounts as `config` sets them up, signing tokens with `auth.jwt_secret` or the key kept
    /// in `data_dir`; single sign-on calls back to `public_url`; users are given one of `plans`.
    pub fn new(
        config: &AuthConfig,
        data_dir: &Path,
        public_url: &str,
        plans: Vec<String>,
        stores: AccountStores,
        mail: Arc<Mail>,
        audit: Arc<Audit>,
    ) -> Result<Self> {
        let AccountStores {
            accounts: store,
            identities: identity_store,
            rates,
        } = stores;
        let rates = rates.as_ref();
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
            )
            .shared(rates, "signin_account"),
            signin_by_address: KeyedLimit::new(
                per_minute(config.signin_per_minute_address),
                "too many sign-in attempts from this address",
            )
            .shared(rates, "signin_address"),
            signup_by_address: KeyedLimit::new(
                per_hour(config.signup_per_hour_address),
                "too many sign-ups from this address",
            )
            .shared(rates, "signup_address"),
            signups: GlobalLimit::new(
                per_hour(config.signup_per_hour),
                "too many sign-ups on this server just now",
            )
            .shared(rates, "signups"),
            reset_by_address: KeyedLimit::new(
                per_hour(config.reset_per_hour_address),
                "too many password reset requests from this address",
            )
            .shared(rates, "reset_address"),
            reset_by_email: KeyedLimit::new(
                per_hour(config.reset_per_hour_email),
                "too many password reset requests for this address",
            )
            .shared(rates, "reset_email"),
            verify_by_account: KeyedLimit::new(
                per_hour(config.verify_per_hour_account),
                "too many confirmation mails for this account just now",
            )
            .shared(rates, "verify_account"),
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
        self.check_signup(&normalized, address).await?;
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
                    .check(&format!("signup:{normalized}"))
                    .await
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
    async fn check_signup(&self, normalized: &str, address: Option<IpAddr>) -> Result<()> {
        if let Some(ip) = address {
            self.signup_by_address.check_address(ip).await?;
        }
        self.signups.check().await?;
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

/// Users, sessions, refresh tokens and API keys. Tokens and keys arrive hashed.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with a conflict when the email is taken.
    async fn create_user(&self, user: &NewUser) -> Result<()>;
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// The user and password hash for a normalised email.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>>;
    async fn users(&self) -> Result<Vec<User>>;
    /// Applies the change; disabling a user revokes every session and API key it has, in the
    /// same transaction (enabling it again brings none back).
    async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<Option<User>>;

    /// Opens a session (ending at `session.expires_at` whatever its refresh tokens say) with its
    /// first refresh token.
    async fn create_session(
        &self,
        session: &StoredSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
    ) -> Result<()>;
    /// The session's user, if the session exists, is not revoked and has not reached its end.
    async fn session_user(&self, session_id: &str) -> Result<Option<User>>;
    /// The user's live sessions, most recently used first.
    async fn sessions(&self, user_id: &str) -> Result<Vec<StoredSession>>;
    /// Revokes the user's sessions: one (`Some(id)`; false when the user has no such live
    /// session) or all of them but `keep`.
    async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<bool>;
    /// A change of the account's credentials, atomically: the new password (if any), the
    /// address marked verified (if asked and still the account's; else nothing changes and
    /// `None` comes back), every session but `keep_session` revoked, the API keys and linked
    /// identities removed as asked, and every outstanding reset and address-change link spent.
    async fn secure_account(&self, user_id: &str, change: &Securing<'_>)
    -> Result<Option<Revoked>>;
    /// Marks the refresh token used and stores its successor, atomically.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome>;
    async fn revoke_session(&self, session_id: &str) -> Result<()>;

    async fn create_api_key(&self, user_id: &str, key: &ApiKeyInfo, key_hash: &str) -> Result<()>;
    /// The user's keys that are not revoked, newest first.
    async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyInfo>>;
    /// Revokes a key of this user, and every key made with it (and theirs), atomically; false
    /// when the user has no such live key.
    async fn revoke_api_key(&self, user_id: &str, key_id: &str) -> Result<bool>;
    /// A live key and its user, by the key's hash.
    async fn api_key_user(&self, key_hash: &str) -> Result<Option<(ApiKeyInfo, User)>>;
    async fn touch_api_key(&self, key_id: &str, at: i64) -> Result<()>;

    /// Keeps a single-use token (by hash).
    async fn create_token(&self, token: &IssuedToken) -> Result<()>;
    /// The user and payload of a token for `purpose` that is unused and unexpired (it stays
    /// unused).
    async fn token_user(&self, token_hash: &str, purpose: &str) -> Result<Option<(User, String)>>;
    /// Gives the user a new (verified) address and spends the user's other outstanding reset and
    /// address-change links; a conflict when another account has the address.
    async fn change_email(&self, user_id: &str, email: &str) -> Result<()>;
    /// Marks such a token used; false when it was not usable (one of two racing uses wins).
    async fn consume_token(&self, token_hash: &str, purpose: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests;
