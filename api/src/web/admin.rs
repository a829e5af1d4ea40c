//! The admins' pages: users (roles, plans, resets), the system's status and jobs, and the audit
//! log.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base::Error;
use base::principal::{Role, User};
use chat::feedback::RatingSummary;
use identity::accounts::UserUpdate;
use identity::audit::{AuditEvent, AuditQuery};
use operations::store::RunStatus;
use serde::Deserialize;
use service::SystemStatus;

use super::pages::{Layout, Viewer, error_page, page};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    layout: Layout,
    q: String,
    users: Vec<User>,
    roles: [Role; 3],
    plans: Vec<String>,
    status: SystemStatus,
    jobs: Vec<JobRow>,
    ratings: Vec<RatingSummary>,
    me: String,
    notice: Option<&'static str>,
}

/// A scheduled job as the admin page lists it.
pub struct JobRow {
    pub(super) name: String,
    pub(super) schedule: String,
    pub(super) next_run: String,
    pub(super) last_run: String,
    pub(super) status: String,
    pub(super) status_class: &'static str,
    pub(super) took: String,
    pub(super) detail: String,
}

impl From<operations::jobs::JobStatus> for JobRow {
    fn from(j: operations::jobs::JobStatus) -> Self {
        let time = |ms: Option<i64>| ms.map_or("—".to_owned(), base::format_time);
        let last = j.last_run;
        JobRow {
            name: j.name,
            schedule: j.schedule,
            next_run: time(j.next_run),
            last_run: time(last.as_ref().map(|r| r.slot)),
            status: last.as_ref().map_or("never run".to_owned(), |r| {
                format!("{} (attempt {})", r.status, r.attempt)
            }),
            status_class: match last.as_ref().map(|r| r.status) {
                Some(RunStatus::Succeeded) => "ok",
                Some(RunStatus::Failed | RunStatus::Retry) => "error",
                Some(RunStatus::Running) | None => "meta",
            },
            took: last
                .as_ref()
                .and_then(|r| r.duration_ms)
                .map_or(String::new(), |ms| format!("{ms} ms")),
            detail: last.map_or(String::new(), |r| {
                if r.error.is_empty() {
                    r.outcome.to_string()
                } else {
                    r.error
                }
            }),
        }
    }
}

#[derive(Deserialize)]
pub struct AdminQuery {
    #[serde(default)]
    q: String,
    done: Option<String>,
}

pub async fn admin(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(query): Query<AdminQuery>,
) -> Response {
    let result = async {
        let status = state.service.status(&principal).await?;
        let users = state
            .service
            .accounts
            .search_users(&principal, &query.q)
            .await?;
        let jobs = state.service.jobs.list_as(&principal).await?;
        let ratings = state.service.chat.rating_summary(&principal).await?;
        Ok::<_, Error>((status, users, jobs, ratings))
    }
    .await;
    match result {
        Ok((status, users, jobs, ratings)) => page(
            &AdminPage {
                layout: Layout::of(&state, &principal).await,
                q: query.q,
                users,
                roles: [Role::User, Role::Curator, Role::Admin],
                plans: state.service.accounts.plans().to_vec(),
                status,
                jobs: jobs.into_iter().map(JobRow::from).collect(),
                ratings,
                me: principal.user.id.clone(),
                notice: match query.done.as_deref() {
                    Some("user") => Some("The user was updated."),
                    Some("reset") => Some("A reset link is on its way to the user."),
                    _ => None,
                },
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// One line of the audit page, users named by email where they still have one.
pub struct AuditRow {
    at: String,
    event: &'static str,
    actor: String,
    subject: String,
    address: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditView {
    layout: Layout,
    events: [AuditEvent; AuditEvent::ALL.len()],
    event: String,
    user: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    event: String,
    #[serde(default)]
    user: String,
    after: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let accounts = &state.service.accounts;
    let result = async {
        let users = accounts.users(&principal).await?;
        let query = AuditQuery {
            event: match filter.event.as_str() {
                "" => None,
                e => Some(AuditEvent::parse(e)?),
            },
            user_id: match filter.user.trim() {
                "" => None,
                email => Some(accounts.user_by_email(email).await?.id),
            },
            after: filter.after.clone(),
            limit: Some(50),
        };
        let page = state.service.audit.page(&principal, &query).await?;
        Ok::<_, Error>((users, page))
    }
    .await;
    let (users, found) = match result {
        Ok(found) => found,
        Err(e) => return error_page(Some(principal.user), &e),
    };
    let emails: HashMap<&str, &str> = users
        .iter()
        .map(|u| (u.id.as_str(), u.email.as_str()))
        .collect();
    let name = |id: &Option<String>| match id {
        Some(id) => emails
            .get(id.as_str())
            .map_or(id.clone(), |e| (*e).to_owned()),
        None => "-".to_owned(),
    };
    let rows = found
        .entries
        .iter()
        .map(|e| AuditRow {
            at: super::render::datetime(&e.at),
            event: e.event.as_str(),
            actor: name(&e.actor_id),
            subject: name(&e.subject_id),
            address: e.address.clone(),
            detail: e.detail.to_string(),
        })
        .collect();
    page(
        &AuditView {
            layout: Layout::of(&state, &principal).await,
            events: AuditEvent::ALL,
            event: filter.event,
            user: filter.user,
            rows,
            next: found.next,
        },
        StatusCode::OK,
    )
}

/// Mails the user a reset link.
pub async fn send_reset_link(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state
        .service
        .accounts
        .send_reset_link(&principal, &id)
        .await
    {
        Ok(()) => Redirect::to("/admin?done=reset").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct UserForm {
    role: String,
    plan: String,
    /// Checkboxes: present when ticked.
    disabled: Option<String>,
    email_verified: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> Response {
    let result = async {
        let update = UserUpdate {
            role: Some(Role::parse(&form.role)?),
            plan: Some(form.plan),
            disabled: Some(form.disabled.is_some()),
            email_verified: Some(form.email_verified.is_some()),
        };
        state
            .service
            .accounts
            .update_user(&principal, &id, &update)
            .await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/admin?done=user").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}
