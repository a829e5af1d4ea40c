//! The audit log: security events (sign-ins, resets, verification, address changes, keys,
//! sessions, role and plan changes, exports, erasures), who did them, to whom and from where,
//! readable by admins and kept for `audit.retention_days`.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use base::error::{Error, Result};
use base::principal::{Principal, Role};
use base::types::now_ms;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    SignedUp,
    SignedIn,
    SignInFailed,
    SignedOut,
    SessionRevoked,
    PasswordChanged,
    ResetRequested,
    ResetUsed,
    EmailVerified,
    EmailChangeRequested,
    EmailChanged,
    KeyCreated,
    KeyRevoked,
    UserChanged,
    Exported,
    Erased,
    IdentityLinked,
    IdentityUnlinked,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 18] = [
        AuditEvent::SignedUp,
        AuditEvent::SignedIn,
        AuditEvent::SignInFailed,
        AuditEvent::SignedOut,
        AuditEvent::SessionRevoked,
        AuditEvent::PasswordChanged,
        AuditEvent::ResetRequested,
        AuditEvent::ResetUsed,
        AuditEvent::EmailVerified,
        AuditEvent::EmailChangeRequested,
        AuditEvent::EmailChanged,
        AuditEvent::KeyCreated,
        AuditEvent::KeyRevoked,
        AuditEvent::UserChanged,
        AuditEvent::Exported,
        AuditEvent::Erased,
        AuditEvent::IdentityLinked,
        AuditEvent::IdentityUnlinked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::SignedUp => "signed_up",
            AuditEvent::SignedIn => "signed_in",
            AuditEvent::SignInFailed => "sign_in_failed",
            AuditEvent::SignedOut => "signed_out",
            AuditEvent::SessionRevoked => "session_revoked",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::ResetRequested => "reset_requested",
            AuditEvent::ResetUsed => "reset_used",
            AuditEvent::EmailVerified => "email_verified",
            AuditEvent::EmailChangeRequested => "email_change_requested",
            AuditEvent::EmailChanged => "email_changed",
            AuditEvent::KeyCreated => "key_created",
            AuditEvent::KeyRevoked => "key_revoked",
            AuditEvent::UserChanged => "user_changed",
            AuditEvent::Exported => "exported",
            AuditEvent::Erased => "erased",
            AuditEvent::IdentityLinked => "identity_linked",
            AuditEvent::IdentityUnlinked => "identity_unlinked",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown audit event {s:?}: expected one of {}",
                    Self::ALL.map(|e| e.as_str()).join(", ")
                ))
            })
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub event: AuditEvent,
    /// Who did it (absent for an anonymous caller).
    pub actor_id: Option<String>,
    /// Whose account it concerns.
    pub subject_id: Option<String>,
    /// The client address, when known.
    pub address: String,
    /// What else is worth knowing (the key's name, the fields changed…).
    pub detail: serde_json::Value,
}

/// Which entries to read: newest first, after a page's cursor.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub event: Option<AuditEvent>,
    /// Entries about (or by) this user id.
    pub user_id: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// How many (default 50, at most 500).
    pub limit: Option<usize>,
}

/// Where a page ends: entries older than `at`, or as old with a smaller id.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditCursor {
    pub at: i64,
    pub id: String,
}

impl AuditCursor {
    fn of(entry: &AuditEntry) -> Self {
        AuditCursor {
            at: entry.at,
            id: entry.id.clone(),
        }
    }

    fn encode(&self) -> String {
        format!("{}_{}", self.at, self.id)
    }

    fn parse(s: &str) -> Result<Self> {
        s.split_once('_')
            .and_then(|(at, id)| Some((at.parse().ok()?, id)))
            .filter(|(_, id)| !id.is_empty() && id.len() <= 64)
            .map(|(at, id)| AuditCursor {
                at,
                id: id.to_owned(),
            })
            .ok_or_else(|| Error::InvalidInput(format!("{s:?} is not a cursor this log gave")))
    }
}

/// A page of the log and the cursor of the next (none at the end).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

pub struct Audit {
    store: Arc<dyn AuditStore>,
    retention_days: u32,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    pub fn new(store: Arc<dyn AuditStore>, retention_days: u32) -> Self {
        Self {
            store,
            retention_days,
        }
    }

    /// Records an event.
    pub async fn record(
        &self,
        event: AuditEvent,
        actor_id: Option<&str>,
        subject_id: Option<&str>,
        address: Option<IpAddr>,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.store
            .record_audit(&AuditEntry {
                // time-ordered, so entries of one millisecond keep their order
                id: uuid::Uuid::now_v7().to_string(),
                at: now_ms(),
                event,
                actor_id: actor_id.map(str::to_owned),
                subject_id: subject_id.map(str::to_owned),
                address: address.map(|a| a.to_string()).unwrap_or_default(),
                detail,
            })
            .await
    }

    /// A page of the entries an admin asked for, newest first.
    pub async fn page(&self, principal: &Principal, query: &AuditQuery) -> Result<AuditPage> {
        principal.require(Role::Admin)?;
        self.read(query).await
    }

    async fn read(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = query.limit.unwrap_or(50);
        if limit == 0 || limit > 500 {
            return Err(Error::InvalidInput("limit must be 1-500".into()));
        }
        let after = query.after.as_deref().map(AuditCursor::parse).transpose()?;
        let mut entries = self
            .store
            .audit_entries(
                query.event,
                query.user_id.as_deref(),
                after.as_ref(),
                limit + 1,
            )
            .await?;
        let next = (entries.len() > limit).then(|| {
            entries.truncate(limit);
            entries.last().map(|e| AuditCursor::of(e).encode())
        });
        Ok(AuditPage {
            entries,
            next: next.flatten(),
        })
    }

    /// A page of the entries about (or by) one user, for their own export.
    pub async fn about(&self, user_id: &str, query: &AuditQuery) -> Result<AuditPage> {
        self.read(&AuditQuery {
            user_id: Some(user_id.to_owned()),
            ..query.clone()
        })
        .await
    }

    /// Deletes what is older than the retention period; how many went.
    pub async fn purge(&self) -> Result<u64> {
        let cutoff = now_ms() - i64::from(self.retention_days) * 86_400_000;
        self.store.purge_audit(cutoff).await
    }
}

/// The audit log, newest first.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// At most `limit` entries, newest first: of one event and about (or by) one user when
    /// given, older than the cursor when given.
    async fn audit_entries(
        &self,
        event: Option<AuditEvent>,
        user_id: Option<&str>,
        after: Option<&AuditCursor>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>>;
    /// Deletes the entries older than `before`; how many went.
    async fn purge_audit(&self, before: i64) -> Result<u64>;
}
