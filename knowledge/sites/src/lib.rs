//! External sites agents act on, the domain's association website first. A [`SiteAdapter`] reads a
//! site (events, standings, the member's entries) and writes to it (entries, withdrawals);
//! [`HttpSite`] is that adapter over HTTP, driven by a layout file. [`Site`] is the one service
//! every surface uses for a domain: who may use it, and the write protocol (preview → signed
//! confirm token → claim → send once → outcome kept).
//!
//! May use: `base` and `identity` (confirm tokens are signed by accounts). Owns its
//! rows ([`store`]: the writes made) and its settings ([`config`]: `[sites.DOMAIN]`). Must never
//! know: retrieval, chat or any transport.

pub mod config;
mod http;
mod sql;
pub mod store;
mod writes;

pub use http::HttpSite;
pub use writes::{PlannedWrite, Preview, Site, WriteResult, WriteStatus, is_date};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::SiteSettings;
use async_trait::async_trait;
use base::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the agent asks the event calendar for.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// `YYYY-MM-DD` bounds on the event's dates.
    pub from: Option<String>,
    pub to: Option<String>,
    /// State or province code.
    pub state: Option<String>,
    pub discipline: Option<String>,
    pub limit: usize,
}

/// Scraped fields the layout configures beyond the ones the tools know by name.
pub type Extra = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventSummary {
    pub id: String,
    pub name: String,
    pub dates: Option<String>,
    pub location: Option<String>,
    pub disciplines: Option<String>,
    /// The event's page on the site.
    #[serde(default)]
    pub url: String,
    #[serde(flatten)]
    pub other: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DisciplineFee {
    pub discipline: String,
    pub fee: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventDetail {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub dates: Option<String>,
    pub venue: Option<String>,
    pub location: Option<String>,
    pub entry_deadline: Option<String>,
    pub status: Option<String>,
    /// The disciplines offered, with their entry fees.
    #[serde(default)]
    pub disciplines: Vec<DisciplineFee>,
    #[serde(default)]
    pub url: String,
    #[serde(flatten)]
    pub other: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Standing {
    pub rank: String,
    pub name: String,
    pub hometown: Option<String>,
    pub earnings: Option<String>,
    pub points: Option<String>,
    #[serde(flatten)]
    pub other: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    pub id: String,
    pub event: String,
    pub discipline: String,
    pub partner: Option<String>,
    pub status: String,
    #[serde(flatten)]
    pub other: Extra,
}

/// An entry to send: the event, the discipline as the site names it, the partner if any.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntryRequest {
    pub event_id: String,
    pub discipline: String,
    pub partner: Option<String>,
}

/// A request as it would go to the site (dry runs show it; secrets are masked).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    pub fields: Vec<(String, String)>,
}

/// What a write came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteOutcome {
    /// The site accepted it; its confirmation (number or text).
    Done { confirmation: String },
    /// The site refused it, with its validation messages.
    Refused { errors: Vec<String> },
    /// Nothing was sent (dry run).
    DryRun { request: SentRequest },
}

/// A domain's external site.
#[async_trait]
pub trait SiteAdapter: Send + Sync {
    /// The site's name, as results cite it.
    fn name(&self) -> &str;
    async fn search_events(&self, query: &EventQuery) -> Result<Vec<EventSummary>>;
    async fn event(&self, id: &str) -> Result<EventDetail>;
    async fn standings(
        &self,
        discipline: &str,
        season: Option<&str>,
        top: usize,
    ) -> Result<Vec<Standing>>;
    async fn my_entries(&self) -> Result<Vec<Entry>>;
    async fn submit_entry(
        &self,
        entry: &EntryRequest,
        dry_run: bool,
    ) -> std::result::Result<WriteOutcome, WriteError>;
    async fn withdraw_entry(
        &self,
        entry_id: &str,
        dry_run: bool,
    ) -> std::result::Result<WriteOutcome, WriteError>;
}

/// A write that came to no outcome, and whether it could have reached the site.
#[derive(Debug)]
pub enum WriteError {
    /// Provably never sent (the form page could not be read, an argument was refused, the site
    /// answered 429, the connection never opened): the same confirmation may be tried again.
    NotSent(base::Error),
    /// The form may have reached the site (a 5xx, a timeout after sending, an answer lariat
    /// cannot read): trying again could act twice, so the caller must look first.
    Uncertain(base::Error),
}

impl WriteError {
    pub fn error(&self) -> &base::Error {
        match self {
            WriteError::NotSent(e) | WriteError::Uncertain(e) => e,
        }
    }

    pub fn into_error(self) -> base::Error {
        match self {
            WriteError::NotSent(e) | WriteError::Uncertain(e) => e,
        }
    }

    pub fn code(&self) -> base::ErrorCode {
        self.error().code()
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error().fmt(f)
    }
}

/// "The page no longer looks like the layout says": the error every scrape gives rather than
/// returning garbage.
pub fn layout_not_understood(what: impl std::fmt::Display) -> base::Error {
    base::Error::Upstream(format!(
        "layout not understood: {what}; the site may have changed its pages (update the site \
         layout file)"
    ))
}

/// The adapter for `domain`'s site, or what configuration is missing.
pub fn open_site(
    domain: &str,
    sites: &BTreeMap<String, SiteSettings>,
) -> std::result::Result<Arc<dyn SiteAdapter>, String> {
    let settings = sites.get(domain).cloned().unwrap_or_default();
    let Some(layout) = &settings.layout else {
        return Err(format!(
            "the {domain} site is not configured: set sites.{domain}.layout to its layout file \
             (e.g. deploy/domains/{domain}/sites/example-association.toml), plus \
             sites.{domain}.username and sites.{domain}.password for member pages \
             (or LARIAT_SITES__{up}__LAYOUT, __USERNAME, __PASSWORD)",
            up = domain.to_ascii_uppercase()
        ));
    };
    let layout = parse::site::layout::Layout::load(layout)?;
    Ok(Arc::new(HttpSite::new(layout, settings)?))
}
