//! Accounts over HTTP: sign-up, sign-in, token refresh and sign-out, sessions, addresses and
//! passwords, linked sign-in providers and API keys.

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with, post_with};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::NoContent;
use base::principal::{Scope, User};
use identity::accounts::sso::{Identity, SsoProvider};
use identity::accounts::{ApiKeyInfo, CreatedApiKey, NewApiKey, SessionInfo, SignedUp, TokenPair};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::openapi::Created;
use super::{ApiError, AppState, Auth, Body, ClientAddr, IdPath, MaybeAuth, SigningIn};

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
