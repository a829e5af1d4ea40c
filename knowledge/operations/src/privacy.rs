//! A user's data: taken out as one JSON archive (built in the background, kept a week, the user
//! told by mail when it is ready) and erased on request from SQL and every derived store and
//! cache. Usage rows stay, without anything personal, for the plan they were billed to.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::store::PrivacyStore;
pub use crate::store::{ExportInfo, ExportStatus};
use base::error::{Error, Result, blocking};
use base::principal::{Principal, Role, User};
use base::types::now_ms;
use chat::store::ConversationStore;
use chat::{Chat, Conversation};
use commerce::billing::{Billing, Invoice, SubscriptionRow};
use commerce::store::{DailyUsage, UsageStore};
use identity::accounts::AccountStore;
use identity::accounts::sso::Identity;
use identity::accounts::sso::IdentityStore;
use identity::accounts::{Accounts, ApiKeyInfo, is_reserved};
use identity::audit::{Audit, AuditEntry, AuditEvent, AuditQuery};
use identity::mail::{Mail, Template};
use identity::store::StoredSession;

/// How long a finished export can be downloaded.
const EXPORT_DAYS: i64 = 7;
/// Conversations read per query while an export is built.
const PAGE: usize = 100;

/// Everything held about a user.
#[derive(Debug, Serialize)]
struct Archive {
    format: &'static str,
    exported_at: i64,
    profile: User,
    sessions: Vec<StoredSession>,
    /// Without their secrets (only their hashes are kept, and those are not exported).
    api_keys: Vec<ApiKeyInfo>,
    /// The single-sign-on accounts linked to this one.
    identities: Vec<Identity>,
    conversations: Vec<Conversation>,
    usage_by_day: Vec<DailyUsage>,
    /// What was paid for, as Lariat keeps it.
    subscriptions: Vec<SubscriptionRow>,
    invoices: Vec<Invoice>,
    audit: Vec<AuditEntry>,
}

/// A user's data taken out and erased. Built from its parts (the stores it reads and erases,
/// and the services it tells), as `Service` does.
pub struct Privacy {
    pub accounts: Arc<dyn AccountStore>,
    pub usage: Arc<dyn UsageStore>,
    pub identities: Arc<dyn IdentityStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub store: Arc<dyn PrivacyStore>,
    pub audit: Arc<Audit>,
    pub chat: Arc<Chat>,
    pub mail: Arc<Mail>,
    /// Told before an erasure (the Stripe side), and read for exports.
    pub billing: Arc<Billing>,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy").finish_non_exhaustive()
    }
}

impl Privacy {
    /// Starts building an export of everything held about the caller; one at a time.
    pub async fn request_export(self: &Arc<Self>, principal: &Principal) -> Result<ExportInfo> {
        principal.require_session()?;
        let user = principal.user.clone();
        if self
            .store
            .exports(&user.id, now_ms())
            .await?
            .iter()
            .any(|e| e.status == ExportStatus::Building)
        {
            return Err(Error::Conflict(
                "an export is already being built; it will be ready shortly".into(),
            ));
        }
        let now = now_ms();
        let info = ExportInfo {
            id: uuid::Uuid::new_v4().to_string(),
            status: ExportStatus::Building,
            created_at: now,
            finished_at: None,
            expires_at: now + EXPORT_DAYS * 86_400_000,
            size_bytes: 0,
        };
        self.store.create_export(&user.id, &info).await?;
        let this = Arc::clone(self);
        let id = info.id.clone();
        tokio::spawn(async move {
            if let Err(e) = this.build(&user, &id).await {
                tracing::warn!(error = %e, export = %id, "an export could not be built");
                let _ = this.store.finish_export(&id, Err(&e.to_string())).await;
            }
        });
        Ok(info)
    }

    async fn build(&self, user: &User, id: &str) -> Result<()> {
        let archive = self.archive(user).await?;
        // a long history makes a large file: written on a blocking thread
        let content = blocking(move || {
            serde_json::to_string_pretty(&archive)
                .map_err(|e| Error::Internal(format!("writing an export: {e}")))
        })
        .await?;
        self.store.finish_export(id, Ok(&content)).await?;
        self.audit
            .record(
                AuditEvent::Exported,
                Some(&user.id),
                Some(&user.id),
                None,
                json!({"export_id": id}),
            )
            .await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::ExportReady,
                &[
                    ("link", &self.mail.link("/account#data-h")),
                    ("days", &EXPORT_DAYS.to_string()),
                ],
            )
            .await
    }

    async fn archive(&self, user: &User) -> Result<Archive> {
        let mut conversations = Vec::new();
        loop {
            let page = self
                .conversations
                .conversations(&user.id, PAGE, conversations.len())
                .await?;
            let done = page.len() < PAGE;
            for summary in page {
                let messages = self.conversations.messages(&summary.id).await?;
                conversations.push(Conversation { summary, messages });
            }
            if done {
                break;
            }
        }
        let mut audit = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .audit
                .about(
                    &user.id,
                    &AuditQuery {
                        after,
                        limit: Some(500),
                        ..AuditQuery::default()
                    },
                )
                .await?;
            audit.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let (subscriptions, invoices) = self.billing.records(&user.id).await?;
        Ok(Archive {
            format: "lariat-export/1",
            exported_at: now_ms(),
            profile: user.clone(),
            sessions: self.accounts.sessions(&user.id).await?,
            api_keys: self.accounts.api_keys(&user.id).await?,
            identities: self.identities.identities(&user.id).await?,
            conversations,
            usage_by_day: self.usage.usage_by_day(&user.id, 0).await?,
            subscriptions,
            invoices,
            audit,
        })
    }

    /// The caller's exports that have not expired, newest first.
    pub async fn exports(&self, principal: &Principal) -> Result<Vec<ExportInfo>> {
        principal.require_session()?;
        self.store.exports(&principal.user.id, now_ms()).await
    }

    /// A ready export of the caller's, as JSON; anyone else's, or an expired one, is "not found".
    pub async fn download(&self, principal: &Principal, id: &str) -> Result<String> {
        principal.require_session()?;
        self.store
            .export_content(&principal.user.id, id, now_ms())
            .await?
            .ok_or_else(|| Error::NotFound(format!("no ready export {id}")))
    }

    /// Erases the caller's account once they prove it is theirs: its password, or for an account
    /// without one, a fresh sign-in through its provider (see [`Accounts::reauthenticate`]).
    pub async fn erase_account(
        &self,
        accounts: &Accounts,
        principal: &Principal,
        password: Option<&str>,
    ) -> Result<()> {
        accounts.reauthenticate(principal, password).await?;
        self.erase(&principal.user, Some(&principal.user.id)).await
    }

    /// An admin erases another user's account.
    pub async fn erase_user(&self, principal: &Principal, user_id: &str) -> Result<()> {
        principal.require(Role::Admin)?;
        if user_id == principal.user.id {
            return Err(Error::Conflict(
                "erase your own account from your account page, with your password".into(),
            ));
        }
        let user = self
            .accounts
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {user_id}")))?;
        self.erase(&user, Some(&principal.user.id)).await
    }

    /// Removes the user's conversations, sessions, keys, tokens, memberships, exports and queued
    /// mail, blanks their row and what the audit log holds about them, forgets their cached
    /// answers, and has the database drop what it deleted; the erasure is audited by id only.
    async fn erase(&self, user: &User, actor: Option<&str>) -> Result<()> {
        if is_reserved(&user.email) {
            return Err(Error::InvalidInput(
                "lariat's own accounts cannot be erased".into(),
            ));
        }
        // first, so a failure leaves the account as it was rather than paying on, erased
        self.billing.forget_customer(&user.id).await?;
        let placeholder = format!("erased-{}@erased.invalid", user.id);
        self.store.erase_user(&user.id, &placeholder).await?;
        self.chat
            .forget_users(std::slice::from_ref(&user.id))
            .await?;
        self.audit
            .record(AuditEvent::Erased, actor, Some(&user.id), None, json!({}))
            .await?;
        self.store.drop_deleted().await
    }
}
