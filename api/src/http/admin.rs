//! Administration over HTTP: users, the system's status, scheduled jobs and the audit log
//! (admins only).

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, patch_with, post_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::NoContent;
use base::principal::User;
use identity::accounts::UserUpdate;
use identity::audit::{AuditPage, AuditQuery};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, Body, IdPath, Params};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/admin/users",
            get_with(users, |op| op.summary("All users (admins)")),
        )
        .api_route(
            "/api/admin/status",
            get_with(status, |op| {
                op.summary("Store, models, collections and the stores' consistency (admins)")
            }),
        )
        .api_route(
            "/api/admin/jobs",
            get_with(jobs, |op| {
                op.summary(
                    "Scheduled jobs: schedule, next run, last run (outcome, duration), and \
                     recent runs, newest first (admins)",
                )
            }),
        )
        .api_route(
            "/api/admin/users/{id}/erase",
            post_with(erase_user, |op| {
                op.summary("Erase a user's account and everything held about them (admins)")
            }),
        )
        .api_route(
            "/api/admin/audit",
            get_with(audit, |op| {
                op.summary(
                    "The audit log, newest first: by event, by user, a page at a time (admins)",
                )
            }),
        )
        .api_route(
            "/api/admin/users/{id}/password-reset",
            post_with(admin_reset, |op| {
                op.summary("Mail a user a password reset link (admins)")
                    .response_with::<202, (), _>(|r| r.description("the link is on its way"))
            }),
        )
        .api_route(
            "/api/admin/users/{id}",
            patch_with(update_user, |op| {
                op.summary("Change a user's role, plan or disabled flag (admins)")
            }),
        )
}

async fn admin_reset(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .accounts
        .send_reset_link(&principal, &id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn erase_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<NoContent, ApiError> {
    state.service.privacy.erase_user(&principal, &id).await?;
    Ok(NoContent)
}

async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(query): Params<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(state.service.audit.page(&principal, &query).await?))
}

async fn status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<service::SystemStatus>, ApiError> {
    Ok(Json(state.service.status(&principal).await?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    /// Only this job's runs.
    job: Option<String>,
    /// Runs to list, 1-500 (default 50).
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct JobsAnswer {
    jobs: Vec<operations::jobs::JobStatus>,
    runs: Vec<operations::store::JobRun>,
}

async fn jobs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(q): Params<JobsQuery>,
) -> Result<Json<JobsAnswer>, ApiError> {
    let jobs = &state.service.jobs;
    Ok(Json(JobsAnswer {
        jobs: jobs.list_as(&principal).await?,
        runs: jobs
            .history_as(&principal, q.job.as_deref(), q.limit.unwrap_or(50))
            .await?,
    }))
}

#[derive(Serialize, JsonSchema)]
struct Users {
    users: Vec<User>,
}

async fn users(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Users>, ApiError> {
    let users = state.service.accounts.users(&principal).await?;
    Ok(Json(Users { users }))
}

async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    Body(update): Body<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    let user = state
        .service
        .accounts
        .update_user(&principal, &id, &update)
        .await?;
    Ok(Json(user))
}
