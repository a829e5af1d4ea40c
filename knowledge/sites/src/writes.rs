//! One domain's site as a service: who may use it, and the write protocol. A preview checks the
//! write and returns a confirm token signed over the planned write, the caller and an expiry;
//! the write takes only that token, is refused unless the operator enabled writes, sends nothing
//! in dry-run mode, and is idempotent: the token's hash is claimed before anything is sent, a
//! retry returns the first outcome from the store, and a claim is released only when the request
//! provably never left.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EntryRequest, SentRequest, SiteAdapter, WriteError, WriteOutcome};
use crate::config::SiteSettings;
use crate::store::{ActionStatus, SiteAction, SiteActionStore};
use base::principal::Principal;
use base::{Error, Result, now_ms};
use identity::accounts::Accounts;

/// What a confirm token carries: the write, planned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedWrite {
    pub summary: String,
    pub entry: Option<EntryRequest>,
    pub entry_id: Option<String>,
}

/// A write, checked and not sent: what to show the user, and the token that carries it out.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Preview {
    /// What the write will do, in one sentence to show the user.
    pub summary: String,
    pub fee: Option<String>,
    pub entry_deadline: Option<String>,
    pub warnings: Vec<String>,
    /// Pass this to the write tool to carry the action out. It is bound to these arguments and
    /// this caller, and expires.
    pub confirm_token: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// Whether the operator lets writes reach the site.
    pub writes_enabled: bool,
    /// Whether writes only show the request they would send.
    pub dry_run: bool,
}

/// What a write did on the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    Submitted,
    Withdrawn,
    /// Nothing was sent: the request is shown instead.
    DryRun,
}

/// What a carried-out write came to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WriteResult {
    pub status: WriteStatus,
    pub summary: String,
    /// The site's confirmation (number or text).
    pub confirmation: Option<String>,
    /// In dry-run mode: the request that would have been sent.
    pub request: Option<SentRequest>,
    /// True when this confirmation was carried out before and this is its first result again.
    pub repeated: bool,
}

/// The action names a confirm token is signed for.
const SUBMIT: &str = "submit_entry";
const WITHDRAW: &str = "withdraw_entry";

/// Attempts at storing one outcome.
const OUTCOME_ATTEMPTS: u32 = 5;

/// A domain's site: its adapter (or why there is none), its settings, the accounts that sign
/// confirm tokens and the store that keeps the writes.
#[derive(Clone)]
pub struct Site {
    accounts: Arc<Accounts>,
    actions: Arc<dyn SiteActionStore>,
    domain: String,
    settings: SiteSettings,
    adapter: std::result::Result<Arc<dyn SiteAdapter>, String>,
}

impl Site {
    /// `adapter` is the site's adapter, or what configuration it lacks (then every call but
    /// [`Site::authorize`] answers unavailable with that message).
    pub fn new(
        accounts: Arc<Accounts>,
        actions: Arc<dyn SiteActionStore>,
        domain: &str,
        settings: SiteSettings,
        adapter: std::result::Result<Arc<dyn SiteAdapter>, String>,
    ) -> Self {
        Self {
            accounts,
            actions,
            domain: domain.to_owned(),
            settings,
            adapter,
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The adapter, to read the site with.
    pub fn adapter(&self) -> Result<&Arc<dyn SiteAdapter>> {
        self.adapter
            .as_ref()
            .map_err(|m| Error::Unavailable(m.clone()))
    }

    /// Whether `principal`'s role may use the site at all: every call acts with the operator's
    /// member account.
    pub fn authorize(&self, principal: &Principal) -> Result<()> {
        if principal.role() < self.settings.min_role {
            return Err(Error::Forbidden(format!(
                "the {d} site tools act with the association account lariat signs in as, so they \
                 need the {} role or above (sites.{d}.min_role)",
                self.settings.min_role.as_str(),
                d = self.domain
            )));
        }
        Ok(())
    }

    /// Step one of entering an event: checks the event offers the discipline (named as the
    /// site names it), warns of a passed deadline, and signs the entry. Sends nothing.
    pub async fn preview_entry(
        &self,
        principal: &Principal,
        event_id: String,
        discipline: &str,
        partner: Option<String>,
    ) -> Result<Preview> {
        self.authorize(principal)?;
        let event = self.adapter()?.event(&event_id).await?;
        let offered = event
            .disciplines
            .iter()
            .find(|d| normalise(&d.discipline) == normalise(discipline));
        let (discipline, fee) = match offered {
            Some(d) => (d.discipline.clone(), d.fee.clone()),
            None if event.disciplines.is_empty() => (discipline.to_owned(), None),
            None => {
                return Err(Error::InvalidInput(format!(
                    "{} does not offer {discipline:?}; it offers: {}",
                    event.name,
                    event
                        .disciplines
                        .iter()
                        .map(|d| d.discipline.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let mut warnings = Vec::new();
        if let Some(deadline) = &event.entry_deadline
            && is_date(deadline)
            && deadline.as_str() < base::time::today_utc().as_str()
        {
            warnings.push(format!(
                "the entry deadline ({deadline}) has passed: the site will probably refuse"
            ));
        }
        let summary = format!(
            "Enter {discipline}{} at {} ({}, {}){}",
            partner
                .as_ref()
                .map(|p| format!(" with partner {p}"))
                .unwrap_or_default(),
            event.name,
            event.dates.as_deref().unwrap_or("dates not shown"),
            event.location.as_deref().unwrap_or("location not shown"),
            fee.as_ref()
                .map(|f| format!(", fee {f}"))
                .unwrap_or_default(),
        );
        let planned = PlannedWrite {
            summary,
            entry: Some(EntryRequest {
                event_id,
                discipline,
                partner,
            }),
            entry_id: None,
        };
        self.sign(
            principal,
            SUBMIT,
            planned,
            fee,
            event.entry_deadline,
            warnings,
        )
    }

    /// Step one of withdrawing: checks the entry is the member's, and signs the withdrawal.
    /// Sends nothing.
    pub async fn preview_withdrawal(
        &self,
        principal: &Principal,
        entry_id: String,
    ) -> Result<Preview> {
        self.authorize(principal)?;
        let entries = self.adapter()?.my_entries().await?;
        let entry = entries.iter().find(|e| e.id == entry_id).ok_or_else(|| {
            Error::NotFound(format!(
                "the member has no entry {entry_id} (see list_my_entries)"
            ))
        })?;
        let planned = PlannedWrite {
            summary: format!(
                "Withdraw entry {} ({} at {}, now {})",
                entry.id, entry.discipline, entry.event, entry.status
            ),
            entry: None,
            entry_id: Some(entry_id),
        };
        self.sign(principal, WITHDRAW, planned, None, None, Vec::new())
    }

    /// Step two: sends the entry a [`Site::preview_entry`] token stands for, once.
    pub async fn submit_entry(&self, principal: &Principal, token: &str) -> Result<WriteResult> {
        self.carry_out(principal, token, SUBMIT).await
    }

    /// Step two: sends the withdrawal a [`Site::preview_withdrawal`] token stands for, once.
    pub async fn withdraw_entry(&self, principal: &Principal, token: &str) -> Result<WriteResult> {
        self.carry_out(principal, token, WITHDRAW).await
    }

    fn audience(&self) -> String {
        format!("site:{}", self.domain)
    }

    fn sign(
        &self,
        principal: &Principal,
        action: &str,
        planned: PlannedWrite,
        fee: Option<String>,
        entry_deadline: Option<String>,
        warnings: Vec<String>,
    ) -> Result<Preview> {
        let args = serde_json::to_value(&planned).map_err(|e| Error::Internal(e.to_string()))?;
        let intent = self.accounts.sign_intent(
            &principal.user.id,
            &self.audience(),
            action,
            &args,
            self.settings.confirm_ttl_secs,
        )?;
        Ok(Preview {
            summary: planned.summary,
            fee,
            entry_deadline,
            warnings,
            confirm_token: intent.token,
            expires_at: intent.expires_at,
            writes_enabled: self.settings.writes_enabled,
            dry_run: self.settings.dry_run,
        })
    }

    /// The write a confirm token stands for, once.
    async fn carry_out(
        &self,
        principal: &Principal,
        token: &str,
        action: &str,
    ) -> Result<WriteResult> {
        self.authorize(principal)?;
        let intent = self
            .accounts
            .verify_intent(token, &principal.user.id, &self.audience())?;
        if intent.action != action {
            return Err(Error::InvalidInput(format!(
                "this confirm token is for {}, not {action}",
                intent.action
            )));
        }
        let planned: PlannedWrite = serde_json::from_value(intent.args.clone()).map_err(|e| {
            Error::InvalidInput(format!("the confirm token carries no action: {e}"))
        })?;
        if !self.settings.writes_enabled {
            return Err(Error::Forbidden(format!(
                "writes to the {d} site are disabled; the operator enables them with \
                 sites.{d}.writes_enabled = true (LARIAT_SITES__{u}__WRITES_ENABLED=true)",
                d = self.domain,
                u = self.domain.to_ascii_uppercase()
            )));
        }
        let site = self.adapter()?;
        let dry_run = self.settings.dry_run;
        let send = || async {
            match (&planned.entry, &planned.entry_id) {
                (Some(entry), _) => site.submit_entry(entry, dry_run).await,
                (None, Some(id)) => site.withdraw_entry(id, dry_run).await,
                (None, None) => Err(WriteError::NotSent(Error::InvalidInput(
                    "the confirm token names nothing".into(),
                ))),
            }
        };
        if dry_run {
            return match send().await.map_err(WriteError::into_error)? {
                WriteOutcome::DryRun { request } => Ok(WriteResult {
                    status: WriteStatus::DryRun,
                    summary: planned.summary,
                    confirmation: None,
                    request: Some(request),
                    repeated: false,
                }),
                _ => Err(Error::Internal("a dry run sent a request".into())),
            };
        }
        let store = &self.actions;
        let claim = SiteAction {
            key: base::content_hash(intent.token.as_bytes()),
            site: self.domain.clone(),
            user_id: principal.user.id.clone(),
            action: action.to_owned(),
            request: intent.args.clone(),
            status: ActionStatus::Pending,
            outcome: None,
            created_at: now_ms(),
            finished_at: None,
        };
        if let Some(first) = store.claim_site_action(&claim).await? {
            return repeat(first, site.name());
        }
        let outcome = match send().await {
            Ok(o) => o,
            Err(WriteError::NotSent(e)) => {
                // provably never sent: the claim goes, so the same token may try again
                if let Err(release) = store.release_site_action(&claim.key).await {
                    tracing::error!(error = %release, "could not release a site write's claim");
                }
                return Err(e);
            }
            Err(WriteError::Uncertain(e)) => {
                // it may have gone through: the claim stays, and a retry is told to look first
                let stored = serde_json::json!({ "error": e.public_message() });
                store_outcome(store.as_ref(), &claim.key, ActionStatus::Uncertain, &stored).await;
                return Err(uncertain(site.name(), &e.public_message()));
            }
        };
        match outcome {
            WriteOutcome::Done { confirmation } => {
                let result = WriteResult {
                    status: if action == SUBMIT {
                        WriteStatus::Submitted
                    } else {
                        WriteStatus::Withdrawn
                    },
                    summary: planned.summary,
                    confirmation: Some(confirmation),
                    request: None,
                    repeated: false,
                };
                let stored =
                    serde_json::to_value(&result).map_err(|e| Error::Internal(e.to_string()))?;
                store_outcome(store.as_ref(), &claim.key, ActionStatus::Done, &stored).await;
                Ok(result)
            }
            WriteOutcome::Refused { errors } => {
                let stored = serde_json::json!({ "errors": errors });
                store_outcome(store.as_ref(), &claim.key, ActionStatus::Failed, &stored).await;
                Err(refusal(site.name(), &errors))
            }
            WriteOutcome::DryRun { .. } => {
                Err(Error::Internal("a write came back as a dry run".into()))
            }
        }
    }
}

/// Records what a write came to, retrying a failing store: the site has acted, so the record
/// must not be lost. If it still cannot be stored, the outcome goes to the log in full (the
/// claim stays pending, so the same confirmation is never sent again).
async fn store_outcome(
    store: &dyn SiteActionStore,
    key: &str,
    status: ActionStatus,
    outcome: &serde_json::Value,
) {
    let mut wait = std::time::Duration::from_millis(100);
    for attempt in 1..=OUTCOME_ATTEMPTS {
        match store.finish_site_action(key, status, outcome).await {
            Ok(()) => return,
            Err(e) if attempt < OUTCOME_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "storing a site write's outcome failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => tracing::error!(
                error = %e,
                key,
                %status,
                outcome = %outcome,
                "could not store a site write's outcome; it is recorded here only"
            ),
        }
    }
}

/// The answer when a write may or may not have reached the site.
fn uncertain(site: &str, detail: &str) -> Error {
    Error::Upstream(format!(
        "the request may have reached {site} ({detail}); check list_my_entries before doing \
         anything else, and preview again only if it did not go through"
    ))
}

fn refusal(site: &str, errors: &[String]) -> Error {
    Error::InvalidInput(format!("{site} refused it: {}", errors.join(" ")))
}

/// The first outcome of an action carried out before.
fn repeat(first: SiteAction, site: &str) -> Result<WriteResult> {
    match first.status {
        ActionStatus::Done => {
            let mut result: WriteResult = first
                .outcome
                .and_then(|o| serde_json::from_value(o).ok())
                .ok_or_else(|| Error::Internal("a stored outcome is unreadable".into()))?;
            result.repeated = true;
            Ok(result)
        }
        ActionStatus::Uncertain => {
            let detail = first
                .outcome
                .as_ref()
                .and_then(|o| o.get("error"))
                .and_then(|e| e.as_str())
                .unwrap_or("no answer was understood")
                .to_owned();
            Err(uncertain(site, &detail))
        }
        ActionStatus::Failed => {
            let errors: Vec<String> = first
                .outcome
                .and_then(|o| o.get("errors").cloned())
                .and_then(|e| serde_json::from_value(e).ok())
                .unwrap_or_default();
            Err(refusal(site, &errors))
        }
        ActionStatus::Pending => Err(Error::Conflict(
            "this confirmation is being carried out right now; ask again in a moment".into(),
        )),
    }
}

/// A YYYY-MM-DD date.
pub fn is_date(raw: &str) -> bool {
    let parts: Vec<&str> = raw.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0))
}

/// A name compared as people read it: case, punctuation and spacing ignored.
fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
