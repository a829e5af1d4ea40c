//! Identity's rows: users, sessions, refresh tokens, API keys, single-use tokens, linked
//! identities, sign-ons in progress, the audit log and the mail outbox.

use async_trait::async_trait;
use base::Result;
use base::principal::User;

use crate::accounts::{ApiKeyInfo, NewUser, UserUpdate};

/// What trading in a refresh token did.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token was valid and unused: it is now used and its successor stored.
    Rotated { user: User, session_id: String },
    /// The token had been used before: its session is now revoked.
    Reused,
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// A signed-in session: where it was opened, when last renewed, when it ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredSession {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    /// The browser or program that signed in, as it named itself (capped).
    pub user_agent: String,
    /// The address it signed in from (empty when unknown).
    pub address: String,
    pub created_at: i64,
    /// When its tokens were last renewed (or it was opened).
    pub last_used_at: Option<i64>,
    /// When it ends whatever its refresh tokens say.
    pub expires_at: Option<i64>,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: String,
    /// The account it is about (its erasure takes the message too, whatever address it went
    /// to), when known.
    pub user_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attempts: i64,
    /// When it is due; a sender claims it by moving this forward.
    pub next_attempt_at: i64,
}

/// The mail outbox: messages are queued in SQL and delivered by a background sender, which
/// claims each due message before sending it (so several servers never send one twice).
#[async_trait]
pub trait MailStore: Send + Sync {
    async fn enqueue_mail(&self, mail: &QueuedMail) -> Result<()>;
    /// Unsent, not given up, due at `now`: oldest first, at most `limit`.
    async fn due_mail(&self, now: i64, limit: usize) -> Result<Vec<QueuedMail>>;
    /// Claims a due message (still due as `seen` says) until `lease_until`, counting the
    /// attempt; false when another sender has it.
    async fn claim_mail(&self, mail: &QueuedMail, lease_until: i64) -> Result<bool>;
    async fn mail_sent(&self, id: &str) -> Result<()>;
    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    async fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()>;
}

/// A single-use token as stored: by the sha256 of its value, for one purpose, with what it was
/// issued for (an address, say).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub hash: String,
    pub user_id: String,
    pub purpose: &'static str,
    pub payload: String,
    pub expires_at: i64,
}

/// A single sign-on in progress, kept until its callback takes it or it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoState {
    /// The sha256 of the `state` sent to the provider (the browser holds the value).
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The signed-in user linking an identity; `None` for a sign-in.
    pub user_id: Option<String>,
    /// Where the browser goes afterwards.
    pub next_path: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What asking to unlink an identity came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// No such identity of this user.
    NotFound,
    /// Refused: the account has no password and no other identity.
    LastWayIn,
}

/// OpenID identities linked to accounts, and single sign-ons in progress.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Keeps a started sign-in (dropping expired ones on the way).
    async fn save_sso_state(&self, state: &SsoState) -> Result<()>;
    /// Removes and returns the sign-in started with this state: it can be taken once.
    async fn take_sso_state(&self, state_hash: &str) -> Result<Option<SsoState>>;
    async fn identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<crate::accounts::sso::Identity>>;
    /// The user's identities, oldest first.
    async fn identities(&self, user_id: &str) -> Result<Vec<crate::accounts::sso::Identity>>;
    /// A conflict when this (issuer, subject) is linked already. Spends the user's outstanding
    /// reset and address-change links, as unlinking does.
    async fn link_identity(&self, identity: &crate::accounts::sso::Identity) -> Result<()>;
    /// Opens an account and links its first identity, both or neither.
    async fn create_user_with_identity(
        &self,
        user: &NewUser,
        identity: &crate::accounts::sso::Identity,
    ) -> Result<()>;
    /// Records a sign-in with the identity, and the address the provider gave this time.
    async fn touch_identity(&self, id: &str, email: &str, at: i64) -> Result<()>;
    /// Unlinks the identity unless it is the account's last way to sign in, atomically.
    async fn unlink_identity(&self, user_id: &str, id: &str) -> Result<Unlinked>;
}

/// The audit log, newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &crate::audit::AuditEntry) -> Result<()>;
    /// At most `limit` entries, newest first: of one event and about (or by) one user when
    /// given, older than the cursor when given.
    async fn audit_entries(
        &self,
        event: Option<crate::audit::AuditEvent>,
        user_id: Option<&str>,
        after: Option<&crate::audit::AuditCursor>,
        limit: usize,
    ) -> Result<Vec<crate::audit::AuditEntry>>;
    /// Deletes the entries older than `before`; how many went.
    async fn purge_audit(&self, before: i64) -> Result<u64>;
}

/// What [`AccountStore::secure_account`] changes. Sessions (but `keep_session`) always end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Securing<'a> {
    /// The new password's hash, when the password changes.
    pub password_hash: Option<&'a str>,
    /// The address proven: marked verified if the account still uses it.
    pub verify: Option<&'a str>,
    /// The caller's own session, which stays.
    pub keep_session: Option<&'a str>,
    pub revoke_keys: bool,
    pub remove_identities: bool,
}

/// What a change of credentials took away.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Revoked {
    pub sessions: u64,
    pub keys: u64,
    /// The providers whose linked identities were removed.
    pub identities: Vec<String>,
}

impl Revoked {
    pub fn is_empty(&self) -> bool {
        self.sessions == 0 && self.keys == 0 && self.identities.is_empty()
    }
}

/// Users, sessions, refresh tokens and API keys. Tokens and keys arrive hashed.
#[async_trait]
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
