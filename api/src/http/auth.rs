//! Accounts over HTTP: sign-up, sign-in, token refresh and sign-out, API keys, administration of
//! users, and collection access (visibility, members).

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use knowledge::accounts::{TokenPair, UserUpdate};
use knowledge::collections::CollectionUpdate;
use knowledge::{CollectionName, MemberRole};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Auth, Body, ClientAddr};

/// Largest body of a sign-up, sign-in or refresh: credentials are short.
const CREDENTIALS_BODY_LIMIT: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/signin", post(signin))
        .route("/api/auth/refresh", post(refresh))
        .route_layer(DefaultBodyLimit::max(CREDENTIALS_BODY_LIMIT))
        .route("/api/auth/signout", post(signout))
        .route("/api/auth/me", get(me))
        .route("/api/keys", post(create_key).get(list_keys))
        .route("/api/keys/{id}", delete(delete_key))
        .route("/api/usage", get(usage))
        .route("/api/admin/users", get(users))
        .route("/api/admin/users/{id}", patch(update_user))
        .route("/api/collections/{name}", patch(update_collection))
        .route(
            "/api/collections/{name}/members/{user_id}",
            put(set_member).delete(remove_member),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

async fn signup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(c): Body<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = state
        .service
        .accounts
        .signup(&c.email, &c.password, addr)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

async fn signin(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(c): Body<Credentials>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        state
            .service
            .accounts
            .signin(&c.email, &c.password, addr)
            .await?,
    ))
}

#[derive(Deserialize)]
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
) -> Result<StatusCode, ApiError> {
    state.service.accounts.signout(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(Auth(principal): Auth) -> Json<Value> {
    Json(json!({
        "user": principal.user,
        "api_key_id": principal.api_key_id,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

async fn create_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(b): Body<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = state
        .service
        .accounts
        .create_api_key(&principal, &b.name)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(key))))
}

async fn list_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Value>, ApiError> {
    let keys = state.service.accounts.api_keys(&principal).await?;
    Ok(Json(json!({ "keys": keys })))
}

async fn delete_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .accounts
        .delete_api_key(&principal, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.service.limits.usage(&principal).await?)))
}

async fn users(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Value>, ApiError> {
    let users = state.service.accounts.users(&principal).await?;
    Ok(Json(json!({ "users": users })))
}

async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Body(update): Body<UserUpdate>,
) -> Result<Json<Value>, ApiError> {
    let user = state
        .service
        .accounts
        .update_user(&principal, &id, &update)
        .await?;
    Ok(Json(json!(user)))
}

/// Curators of the collection and admins change its visibility and domain instructions.
async fn update_collection(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    Body(update): Body<CollectionUpdate>,
) -> Result<StatusCode, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .update(&principal, &name, &update)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Membership {
    role: MemberRole,
}

/// Admins add members; a collection's curators add readers.
async fn set_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((name, user_id)): Path<(String, String)>,
    Body(m): Body<Membership>,
) -> Result<StatusCode, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &user_id, Some(m.role))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &user_id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
