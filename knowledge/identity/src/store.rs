//! Identity's rows: users, sessions, refresh tokens, API keys, single-use tokens, linked
//! identities, sign-ons in progress, the audit log and the mail outbox.

use async_trait::async_trait;
use base::Result;
use base::principal::User;

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
