//! The account page (profile, API keys, this month's usage) and the admin page (users,
//! collections, the system's status). Both call the services the API calls; the admin page's
//! service calls refuse anyone but admins, exactly as the API's do.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base::Error;
use base::principal::{Principal, Scope, User};
use commerce::analytics::{DayRange, UsageGroup, UsageReport};
use commerce::limits::Usage;
use commerce::store::DailyUsage;
use identity::accounts::sso::{Identity, SsoProvider};
use identity::accounts::{ApiKeyInfo, CreatedApiKey, NewApiKey, SessionInfo};
use operations::privacy::ExportInfo;
use serde::Deserialize;

use super::pages::{Layout, Viewer, ended, error_page, page};
use crate::http::AppState;

/// One bar of a chart, in the SVG's units.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub label: String,
}

/// Counts per slot (a day) as bars; a slot without any has none.
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The SVG's width: a slot for each day the chart can show, so bars keep their width.
    pub width: u32,
    summary: String,
}

const CHART_HEIGHT: u32 = 80;
const BAR_STEP: u32 = 10;

impl Chart {
    /// `points`: (slot, count, label) of `slots`; `summary` says what it shows in words.
    pub fn new(points: &[(u32, i64, String)], slots: u32, summary: String) -> Self {
        let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
        let bars = points
            .iter()
            .filter(|p| p.1 > 0)
            .map(|(slot, value, label)| {
                let height = ((value * i64::from(CHART_HEIGHT)) / peak.max(1)).max(2) as u32;
                Bar {
                    x: slot * BAR_STEP,
                    y: CHART_HEIGHT - height,
                    height,
                    label: label.clone(),
                }
            })
            .collect();
        Chart {
            bars,
            width: slots.max(1) * BAR_STEP,
            summary,
        }
    }

    /// Messages per day of this month.
    fn of(days: &[DailyUsage], period_start: i64) -> Self {
        let points: Vec<_> = days
            .iter()
            .map(|d| {
                (
                    ((d.day - period_start).max(0) / 86_400_000) as u32,
                    d.messages,
                    format!(
                        "{}: {} messages, {} tokens",
                        super::render::date(&d.day),
                        d.messages,
                        d.tokens
                    ),
                )
            })
            .collect();
        let used = points.iter().filter(|p| p.1 > 0).count();
        let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
        let summary = match used {
            0 => "No messages this month yet.".to_owned(),
            n => {
                format!("Messages per day this month: {n} days with use, at most {peak} in a day.")
            }
        };
        Chart::new(&points, 31, summary)
    }

    /// What the chart shows, for those who cannot see it.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    user: User,
    exports: Vec<ExportInfo>,
    may_chat: bool,
    /// The scopes the user's role lets a key have.
    scopes: Vec<Scope>,
    keys: Vec<ApiKeyInfo>,
    sessions: Vec<SessionInfo>,
    created: Option<CreatedApiKey>,
    usage: Usage,
    chart: Chart,
    /// This month's use per model and per collection.
    by_model: UsageReport,
    by_collection: UsageReport,
    notice: Option<&'static str>,
    identities: Vec<Identity>,
    /// The providers an identity can be linked from.
    providers: Vec<SsoProvider>,
    /// The providers of the linked identities (to sign in again with, before an erasure).
    reauth: Vec<SsoProvider>,
    has_password: bool,
}

impl AccountPage {
    fn provider_name(&self, name: &str) -> String {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .map_or_else(|| name.to_owned(), |p| p.display_name.clone())
    }

    fn breakdowns(&self) -> [&UsageReport; 2] {
        [&self.by_model, &self.by_collection]
    }

    fn percent(used: &i64, limit: &u64) -> u64 {
        if *limit == 0 {
            100
        } else {
            ((*used).max(0) as u64 * 100 / limit).min(100)
        }
    }
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

async fn account_page(
    state: &AppState,
    principal: &Principal,
    created: Option<CreatedApiKey>,
    notice: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let result = async {
        let keys = state.service.accounts.api_keys(principal).await?;
        let sessions = state.service.accounts.sessions(principal).await?;
        let usage = state.service.limits.usage(principal).await?;
        let days = state.service.limits.daily_usage(principal).await?;
        let exports = state.service.privacy.exports(principal).await?;
        let identities = state.service.accounts.identities(principal).await?;
        let has_password = state.service.accounts.has_password(principal).await?;
        let month = DayRange::parse(None, None)?;
        let by = |group| state.service.analytics.usage(principal, month, group);
        let breakdown = (
            by(UsageGroup::Model).await?,
            by(UsageGroup::Collection).await?,
        );
        Ok::<_, Error>((
            keys,
            sessions,
            usage,
            days,
            exports,
            identities,
            has_password,
            breakdown,
        ))
    }
    .await;
    let providers = state.service.accounts.sso_providers();
    match result {
        Ok((
            keys,
            sessions,
            usage,
            days,
            exports,
            identities,
            has_password,
            (by_model, by_collection),
        )) => page(
            &AccountPage {
                layout: Layout::of(state, principal).await,
                user: principal.user.clone(),
                exports,
                may_chat: principal.may_chat,
                scopes: Scope::allowed_for(principal.user.role),
                keys,
                sessions,
                created,
                chart: Chart::of(&days, usage.period_start),
                usage,
                by_model,
                by_collection,
                notice,
                reauth: providers
                    .iter()
                    .filter(|p| identities.iter().any(|i| i.provider == p.name))
                    .cloned()
                    .collect(),
                identities,
                providers,
                has_password,
            },
            status,
        ),
        Err(e) => error_page(Some(principal.user.clone()), &e),
    }
}

pub async fn account(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(q): Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("revoked") => Some("The key was revoked: it no longer works."),
        Some("session") => Some("That session is signed out."),
        Some("password") => Some("Your password is changed; your other sessions are signed out."),
        Some("verified") => Some("Your e-mail address is verified."),
        Some("email") => Some("Your account uses its new e-mail address now."),
        Some("email-sent") => Some(
            "A confirmation link is on its way to the new address; until it is followed, nothing changes.",
        ),
        Some("verify-sent") => Some("A new verification link is on its way."),
        Some("linked") => Some("Linked: you can sign in with it now."),
        Some("unlinked") => Some("Unlinked: it no longer signs you in."),
        Some("export") => Some(
            "Your export is being built; we mail you when it is ready, and it is listed below.",
        ),
        _ => None,
    };
    account_page(&state, &principal, None, notice, StatusCode::OK).await
}

/// The key form: a checkbox per scope (present when ticked) and a lifetime in days (empty:
/// none).
#[derive(Deserialize)]
pub struct NewKey {
    name: String,
    search: Option<String>,
    chat: Option<String>,
    ingest: Option<String>,
    admin: Option<String>,
    keys: Option<String>,
    billing: Option<String>,
    #[serde(default)]
    expires_in_days: String,
}

impl NewKey {
    fn parse(self) -> Result<NewApiKey, Error> {
        let ticked = [
            (Scope::Search, self.search),
            (Scope::Chat, self.chat),
            (Scope::Ingest, self.ingest),
            (Scope::Admin, self.admin),
            (Scope::Keys, self.keys),
            (Scope::Billing, self.billing),
        ];
        let expires_in_days =
            match self.expires_in_days.trim() {
                "" => None,
                days => Some(days.parse().map_err(|_| {
                    Error::InvalidInput(format!("{days:?} is not a number of days"))
                })?),
            };
        Ok(NewApiKey {
            name: self.name,
            scopes: Some(
                ticked
                    .into_iter()
                    .filter_map(|(scope, on)| on.map(|_| scope))
                    .collect(),
            ),
            expires_in_days,
        })
    }
}

/// Creates a key and shows its secret on this one page (it is never shown again).
pub async fn create_key(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Form(form): Form<NewKey>,
) -> Response {
    let result = match form.parse() {
        Ok(new) => {
            state
                .service
                .accounts
                .create_api_key(&principal, &new)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            account_page(&state, &principal, Some(created), None, StatusCode::CREATED).await
        }
        Err(e) => error_page(Some(principal.user), &e),
    }
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.service.accounts.delete_api_key(&principal, &id).await {
        Ok(()) => Redirect::to("/account?done=revoked").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

pub async fn revoke_session(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.service.accounts.revoke_session(&principal, &id).await {
        Ok(()) => Redirect::to("/account?done=session").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// Ends every session of the user, this browser's too.
pub async fn signout_everywhere(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
) -> Response {
    match state.service.accounts.signout_everywhere(&principal).await {
        Ok(()) => ended(&state, "/signin"),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Form(form): Form<PasswordForm>,
) -> Response {
    match state
        .service
        .accounts
        .change_password(&principal, &form.current_password, &form.new_password)
        .await
    {
        Ok(()) => Redirect::to("/account?done=password").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    new_email: String,
    password: String,
}

pub async fn change_email(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Form(form): Form<EmailForm>,
) -> Response {
    match state
        .service
        .accounts
        .request_email_change(&principal, &form.new_email, &form.password)
        .await
    {
        Ok(()) => Redirect::to("/account?done=email-sent").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

pub async fn request_export(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    match state.service.privacy.request_export(&principal).await {
        Ok(_) => Redirect::to("/account?done=export#data-h").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// The export as a download.
pub async fn download_export(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.service.privacy.download(&principal, &id).await {
        Ok(content) => crate::http::privacy::export_download(content),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct ErasureForm {
    /// Absent for an account without a password.
    password: Option<String>,
}

/// Erases the account, then forgets this browser's session.
pub async fn erase_account(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Form(form): Form<ErasureForm>,
) -> Response {
    let service = &state.service;
    match service
        .privacy
        .erase_account(&service.accounts, &principal, form.password.as_deref())
        .await
    {
        Ok(()) => ended(&state, "/signin?done=erased"),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

pub async fn resend_verification(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
) -> Response {
    match state.service.accounts.resend_verification(&principal).await {
        Ok(()) => Redirect::to("/account?done=verify-sent").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}
