//! Accounts over HTTP: sign-up, sign-in, token refresh and sign-out, API keys, administration of
//! users, and collection access (visibility, members).

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with, patch_with, post_with, put_with};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::response::NoContent;
use base::principal::{Scope, User};
use base::{CollectionName, MemberRole};
use identity::accounts::sso::{Identity, SsoProvider};
use identity::accounts::{
    ApiKeyInfo, CreatedApiKey, NewApiKey, SessionInfo, SignedUp, TokenPair, UserUpdate,
};
use identity::audit::{AuditPage, AuditQuery};
use knowledge::collections::CollectionUpdate;
use operations::privacy::ExportInfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::openapi::Created;
use super::{
    ApiError, AppState, Auth, Body, ClientAddr, IdPath, MaybeAuth, NamePath, Params, SigningIn,
};

/// Largest body of a sign-up, sign-in or refresh: credentials are short.
const CREDENTIALS_BODY_LIMIT: usize = 16 * 1024;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/auth/signup",
            post_with(signup, |op| op.summary("Create an account")),
        )
        .api_route(
            "/api/auth/signin",
            post_with(signin, |op| {
                op.summary("Sign in: access and refresh tokens")
            }),
        )
        .api_route(
            "/api/auth/refresh",
            post_with(refresh, |op| {
                op.summary("Trade a refresh token for a new pair (rotation)")
            }),
        )
        .api_route(
            "/api/auth/password-reset",
            post_with(request_reset, |op| {
                op.summary(
                    "Mail a password reset link (202 whether or not an account uses the address)",
                )
                .response_with::<202, (), _>(|r| r.description("the request was accepted"))
            }),
        )
        .api_route(
            "/api/auth/password-reset/confirm",
            post_with(confirm_reset, |op| {
                op.summary("Set a new password with a reset link's token; every session ends")
            }),
        )
        .api_route(
            "/api/auth/password",
            post_with(change_password, |op| {
                op.summary("Change the password (the current one required); other sessions end")
            }),
        )
        .api_route(
            "/api/auth/verify",
            post_with(verify, |op| {
                op.summary("Verify the account's address with a verification link's token")
            }),
        )
        .api_route(
            "/api/auth/verify/resend",
            post_with(resend_verification, |op| {
                op.summary("Mail the caller a new verification link")
                    .response_with::<202, (), _>(|r| r.description("the link is on its way"))
            }),
        )
        .api_route(
            "/api/auth/email",
            post_with(change_email, |op| {
                op.summary(
                    "Move the account to another address (the password required): a link goes \
                     there to confirm",
                )
                .response_with::<202, (), _>(|r| r.description("the link is on its way"))
            }),
        )
        .api_route(
            "/api/auth/email/confirm",
            post_with(confirm_email, |op| {
                op.summary("Confirm a new address with its link's token; the old one is told")
            }),
        )
        .route_layer(DefaultBodyLimit::max(CREDENTIALS_BODY_LIMIT))
        .api_route(
            "/api/sessions",
            get_with(sessions, |op| {
                op.summary("The caller's signed-in sessions, the current one marked")
            })
            .delete_with(signout_everywhere, |op| {
                op.summary("Sign out everywhere: end every session of the caller")
            }),
        )
        .api_route(
            "/api/sessions/{id}",
            delete_with(revoke_session, |op| {
                op.summary("End one of the caller's sessions")
            }),
        )
        .api_route(
            "/api/auth/signout",
            post_with(signout, |op| op.summary("Revoke the current session")),
        )
        .api_route("/api/auth/me", get_with(me, |op| op.summary("The caller")))
        .api_route(
            "/api/auth/providers",
            get_with(sso_providers, |op| {
                op.summary(
                    "The single-sign-on providers; a browser signs in with one at \
                     /auth/oidc/{name}/start",
                )
            }),
        )
        .api_route(
            "/api/auth/identities",
            get_with(identities, |op| {
                op.summary("The single-sign-on accounts linked to the caller's")
            }),
        )
        .api_route(
            "/api/auth/identities/{id}",
            delete_with(unlink_identity, |op| {
                op.summary("Unlink one, unless it is the account's last way to sign in")
            }),
        )
        .api_route(
            "/api/keys",
            post_with(create_key, |op| {
                op.summary("Create an API key (shown once)")
            })
            .get_with(list_keys, |op| op.summary("The caller's API keys")),
        )
        .api_route(
            "/api/keys/{id}",
            delete_with(delete_key, |op| op.summary("Revoke an API key")),
        )
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
            "/api/account/exports",
            post_with(request_export, |op| {
                op.summary(
                    "Export everything held about the caller: built in the background, mailed \
                     when ready",
                )
                .response_with::<202, Json<ExportInfo>, _>(|r| {
                    r.description("the export is being built")
                })
            })
            .get_with(exports, |op| {
                op.summary("The caller's exports and where they stand")
            }),
        )
        .api_route(
            "/api/account/exports/{id}",
            get_with(download_export, |op| {
                op.summary("Download a ready export (JSON)")
            }),
        )
        .api_route(
            "/api/account",
            delete_with(erase_account, |op| {
                op.summary(
                    "Erase the caller's account and everything held about them (the password \
                     required)",
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
        .api_route(
            "/api/collections/{name}",
            patch_with(update_collection, |op| {
                op.summary("Change visibility or instructions (curators, admins)")
            }),
        )
        .api_route(
            "/api/collections/{name}/members/{user_id}",
            put_with(set_member, |op| op.summary("Add or change a member"))
                .delete_with(remove_member, |op| op.summary("Remove a member")),
        )
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

async fn signup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(c): Body<Credentials>,
) -> Result<Created<SignedUp>, ApiError> {
    let signed_up = state
        .service
        .accounts
        .signup(&c.email, &c.password, addr)
        .await?;
    Ok(Created(signed_up))
}

async fn signin(
    State(state): State<AppState>,
    SigningIn(client): SigningIn,
    Body(c): Body<Credentials>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        state
            .service
            .accounts
            .signin(&c.email, &c.password, &client)
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    Body(b): Body<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        state.service.accounts.refresh(&b.refresh_token).await?,
    ))
}

async fn signout(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<NoContent, ApiError> {
    state.service.accounts.signout(&principal).await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    email: String,
}

async fn request_reset(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(r): Body<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .accounts
        .request_password_reset(&r.email, addr)
        .await?;
    Ok(StatusCode::ACCEPTED)
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

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResetConfirm {
    /// The `token` of the link the mail carried.
    token: String,
    new_password: String,
}

async fn confirm_reset(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(r): Body<ResetConfirm>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .reset_password_with(&r.token, &r.new_password, addr)
        .await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LinkToken {
    /// The `token` of the link the mail carried.
    token: String,
}

async fn verify(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    MaybeAuth(viewer): MaybeAuth,
    Body(b): Body<LinkToken>,
) -> Result<Json<User>, ApiError> {
    let accounts = &state.service.accounts;
    Ok(Json(
        accounts
            .verify_email(&b.token, addr, viewer.as_ref())
            .await?,
    ))
}

async fn resend_verification(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .accounts
        .resend_verification(&principal)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EmailChange {
    new_email: String,
    /// The account's current password.
    password: String,
}

async fn change_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(c): Body<EmailChange>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .accounts
        .request_email_change(&principal, &c.new_email, &c.password)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn confirm_email(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(b): Body<LinkToken>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        state
            .service
            .accounts
            .confirm_email_change(&b.token, addr)
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(c): Body<PasswordChange>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .change_password(&principal, &c.current_password, &c.new_password)
        .await?;
    Ok(NoContent)
}

#[derive(Serialize, JsonSchema)]
struct Sessions {
    sessions: Vec<SessionInfo>,
}

async fn sessions(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Sessions>, ApiError> {
    let sessions = state.service.accounts.sessions(&principal).await?;
    Ok(Json(Sessions { sessions }))
}

async fn signout_everywhere(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .signout_everywhere(&principal)
        .await?;
    Ok(NoContent)
}

async fn revoke_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .revoke_session(&principal, &id)
        .await?;
    Ok(NoContent)
}

#[derive(Serialize, JsonSchema)]
struct Providers {
    providers: Vec<SsoProvider>,
}

async fn sso_providers(State(state): State<AppState>) -> Json<Providers> {
    Json(Providers {
        providers: state.service.accounts.sso_providers(),
    })
}

#[derive(Serialize, JsonSchema)]
struct Identities {
    identities: Vec<Identity>,
}

async fn identities(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Identities>, ApiError> {
    let identities = state.service.accounts.identities(&principal).await?;
    Ok(Json(Identities { identities }))
}

async fn unlink_identity(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .unlink_identity(&principal, &id)
        .await?;
    Ok(NoContent)
}

#[derive(Serialize, JsonSchema)]
struct Me {
    user: User,
    /// Set when the caller used an API key.
    api_key_id: Option<String>,
    /// The key's scopes (absent for a session, which may do all its role allows).
    scopes: Option<Vec<Scope>>,
    /// False for an account opened by single sign-on that has not set a password.
    has_password: bool,
}

async fn me(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<Me>, ApiError> {
    let has_password = state.service.accounts.has_password(&principal).await?;
    Ok(Json(Me {
        user: principal.user,
        api_key_id: principal.api_key_id,
        scopes: principal.scopes,
        has_password,
    }))
}

async fn create_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(new): Body<NewApiKey>,
) -> Result<Created<CreatedApiKey>, ApiError> {
    let key = state
        .service
        .accounts
        .create_api_key(&principal, &new)
        .await?;
    Ok(Created(key))
}

#[derive(Serialize, JsonSchema)]
struct Keys {
    keys: Vec<ApiKeyInfo>,
}

async fn list_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Keys>, ApiError> {
    let keys = state.service.accounts.api_keys(&principal).await?;
    Ok(Json(Keys { keys }))
}

async fn delete_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .accounts
        .delete_api_key(&principal, &id)
        .await?;
    Ok(NoContent)
}

async fn request_export(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<(StatusCode, Json<ExportInfo>), ApiError> {
    let export = state.service.privacy.request_export(&principal).await?;
    Ok((StatusCode::ACCEPTED, Json(export)))
}

#[derive(Serialize, JsonSchema)]
struct Exports {
    exports: Vec<ExportInfo>,
}

async fn exports(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Exports>, ApiError> {
    let exports = state.service.privacy.exports(&principal).await?;
    Ok(Json(Exports { exports }))
}

async fn download_export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<axum::response::Response, ApiError> {
    let content = state.service.privacy.download(&principal, &id).await?;
    Ok(export_download(content))
}

/// An export as a JSON file to save (the API's download and the account page's link).
pub(crate) fn export_download(content: String) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"lariat-export.json\"",
            ),
        ],
        content,
    )
        .into_response()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Erasure {
    /// The account's password. An account without one (opened by single sign-on) leaves it
    /// out and must have signed in through its provider within the last few minutes.
    password: Option<String>,
}

async fn erase_account(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(b): Body<Erasure>,
) -> Result<NoContent, ApiError> {
    let service = &state.service;
    service
        .privacy
        .erase_account(&service.accounts, &principal, b.password.as_deref())
        .await?;
    Ok(NoContent)
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

/// Curators of the collection and admins change its visibility and domain instructions.
async fn update_collection(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
    Body(update): Body<CollectionUpdate>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .update(&principal, &name, &update)
        .await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Membership {
    role: MemberRole,
}

#[derive(Deserialize, JsonSchema)]
struct MemberPath {
    #[schemars(pattern(r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    name: String,
    user_id: String,
}

/// Admins add members; a collection's curators add readers.
async fn set_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<MemberPath>,
    Body(m): Body<Membership>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &p.user_id, Some(m.role))
        .await?;
    Ok(NoContent)
}

async fn remove_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<MemberPath>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &p.user_id, None)
        .await?;
    Ok(NoContent)
}
