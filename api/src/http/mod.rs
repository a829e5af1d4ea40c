//! The HTTP API (axum). Handlers parse, call the core and map the result; errors render as
//! `{"error": {"code", "message"}}` with a status chosen by the error's code.

mod admin;
pub(crate) mod auth;
mod billing;
mod chat;
mod collections;
mod documents;
mod openai;
pub(crate) mod openapi;
pub(crate) mod privacy;
mod sources;
mod usage;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use aide::axum::ApiRouter;
use aide::axum::routing::get_with;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::ErrorCode;
use base::principal::Principal;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use service::Service;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The ingest pipeline uploads go through (the service's sources sync with it too).
    pub(crate) uploads: Arc<ingest::Pipeline>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub(crate) trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    pub(crate) metrics_token: Option<base::config::Secret>,
    /// How the browser session's cookies are named and sent.
    pub cookies: crate::session::Cookies,
}

/// Equal bytes, compared in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct ApiError(pub base::Error);

impl From<base::Error> for ApiError {
    fn from(e: base::Error) -> Self {
        Self(e)
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
        ErrorCode::Upstream => StatusCode::BAD_GATEWAY,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let body = openapi::ErrorBody {
            error: openapi::ErrorDetail {
                code,
                kind: code,
                message: public_message(&self.0),
            },
        };
        let mut response = (status_of(code), Json(body)).into_response();
        if let Some(secs) = self.0.retry_after()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError(base::Error::InvalidInput(message.into()))
}

/// A JSON object body whose problems (bad JSON, not an object, wrong fields, too large) answer
/// with our error shape. (serde would otherwise read a struct from an array of its fields.)
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let object = Json::<serde_json::Value>::from_request(req, state).await;
        match object {
            Ok(Json(v @ serde_json::Value::Object(_))) => serde_json::from_value(v)
                .map(Body)
                .map_err(|e| invalid(format!("invalid JSON body: {e}"))),
            Ok(Json(_)) => Err(invalid("the body must be a JSON object")),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(invalid(
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(invalid("the request body is too large for this endpoint"))
            }
            Err(e) => Err(invalid(format!("invalid JSON body: {}", e.body_text()))),
        }
    }
}

/// A route's `{id}`.
#[derive(Deserialize, JsonSchema)]
pub struct IdPath {
    pub id: String,
}

/// A route's collection `{name}`.
#[derive(Deserialize, JsonSchema)]
pub struct NamePath {
    #[schemars(pattern(r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub name: String,
}

/// Query parameters whose problems answer with our error shape.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => Err(invalid(format!("invalid query: {}", e.body_text()))),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
}

/// The authenticated caller (`Authorization: Bearer` access token or API key), after the plan's
/// rate limit let the request through.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // the web app's session cookie, for requests from the app's own pages only
            let token = crate::session::cookie(&parts.headers, state.cookies.access()).ok_or_else(
                || {
                    ApiError(base::Error::Unauthorized(
                        "sign in: send Authorization: Bearer <access token or API key>".into(),
                    ))
                },
            )?;
            if !crate::session::is_same_origin(parts) {
                return Err(ApiError(base::Error::Forbidden(
                    "a request carried by the session cookie must come from this site's pages"
                        .into(),
                )));
            }
            let address = client_address(parts, &state.trusted_proxies);
            return Ok(Auth(state.service.authenticate(token, address).await?));
        };
        let value = value.to_str().map_err(|_| {
            ApiError(base::Error::Unauthorized(
                "the Authorization header must be `Bearer <token>`".into(),
            ))
        })?;
        let token = bearer(value).ok_or_else(|| {
            ApiError(base::Error::Unauthorized(
                "the Authorization header must be `Bearer <token>`".into(),
            ))
        })?;
        let address = client_address(parts, &state.trusted_proxies);
        Ok(Auth(state.service.authenticate(token, address).await?))
    }
}

/// Who the caller is when they send credentials that work, else nobody (for routes open to
/// both, such as following a mailed link).
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(MaybeAuth(
            Auth::from_request_parts(parts, state)
                .await
                .ok()
                .map(|a| a.0),
        ))
    }
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not one (proxies append the address they saw).
pub(crate) fn client_address(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut forwarded: Vec<IpAddr> = Vec::new();
    for value in parts.headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        for entry in value.split(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => forwarded.push(ip),
                // a list we cannot read names nobody reliably
                Err(_) => return Some(peer),
            }
        }
    }
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// The client's address (see [`client_address`]).
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientAddr(client_address(parts, &state.trusted_proxies)))
    }
}

/// Who is signing in: the client's address (see [`client_address`]) and its user agent, which
/// the session remembers.
pub struct SigningIn(pub identity::accounts::Client);

impl FromRequestParts<AppState> for SigningIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        let agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(SigningIn(identity::accounts::Client::new(
            client_address(parts, &state.trusted_proxies),
            agent,
        )))
    }
}

tokio::task_local! {
    /// The id of the request being handled, for error messages that point at the log.
    pub(crate) static CURRENT_REQUEST: String;
}

/// What a client is told of an error: its own message, except for internal errors, whose detail
/// (paths, SQL, library messages) stays in the log under the request id the client is given.
pub fn public_message(e: &base::Error) -> String {
    if e.code() != ErrorCode::Internal {
        return e.to_string();
    }
    let id = CURRENT_REQUEST
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".into());
    tracing::error!(error = %e, request_id = %id, "internal error");
    format!("an internal error occurred; the server's log has the details under request id {id}")
}

/// The Prometheus metrics; with `server.metrics_token` set, only for `Authorization: Bearer`
/// with that token.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
            return ApiError(base::Error::Unauthorized(
                "the metrics need Authorization: Bearer <server.metrics_token>".into(),
            ))
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        base::metrics::Metrics::get().render(),
    )
        .into_response()
}

#[derive(Serialize, JsonSchema)]
struct Health {
    status: &'static str,
    /// The store backend (sqlite or postgres).
    store: &'static str,
    /// The embedding model.
    model: String,
    /// Whether a language model is configured (otherwise answers are extractive).
    llm: bool,
}

async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let k = &state.service.knowledge;
    Json(Health {
        status: "ok",
        store: k.store_backend(),
        model: k.embedder().model().name.clone(),
        llm: state.service.chat.has_model(),
    })
}

#[derive(Serialize, JsonSchema)]
struct Ready {
    /// `ready`, or `not ready` (with 503).
    status: &'static str,
}

/// Ready when the store answers a query. Says nothing of what the store holds.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.service.knowledge.collections().await {
        Ok(_) => Json(Ready { status: "ready" }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let body = Json(Ready {
                status: "not ready",
            });
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

#[derive(Deserialize, JsonSchema)]
struct SearchParams {
    /// What to look for (at most 4096 bytes).
    #[schemars(length(min = 1))]
    q: String,
    /// Collections to search, comma-separated (default: every readable one).
    collection: Option<String>,
    mode: Option<base::SearchMode>,
    /// How many passages (default 10).
    #[schemars(range(min = 1, max = 1000))]
    k: Option<i64>,
}

async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(p): Params<SearchParams>,
) -> Result<Json<base::SearchResults>, ApiError> {
    let collections: Vec<String> = p
        .collection
        .iter()
        .flat_map(|c| c.split(','))
        .map(str::to_owned)
        .collect();
    let mode = p.mode.map(base::SearchMode::as_str);
    let request = knowledge::SearchRequest::parse(&p.q, &collections, mode, p.k)?;
    Ok(Json(
        state
            .service
            .knowledge
            .search_as(&principal, &request)
            .await?,
    ))
}

#[derive(Serialize, JsonSchema)]
struct Collections {
    collections: Vec<knowledge::collections::CollectionView>,
}

/// The collections the caller may read.
async fn collections(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Collections>, ApiError> {
    let collections = state.service.collections.readable(&principal).await?;
    Ok(Json(Collections { collections }))
}

/// The REST API, documented in its OpenAPI description: health, search and every concern's
/// routes.
pub fn routes(max_upload: usize) -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/healthz",
            get_with(healthz, |op| {
                op.summary("Liveness and configuration summary")
            }),
        )
        .api_route(
            "/readyz",
            get_with(readyz, |op| {
                op.summary("Readiness: the store answers")
                    .response::<200, Json<Ready>>()
                    .response_with::<503, Json<Ready>, _>(|r| r.description("not ready"))
            }),
        )
        .api_route(
            "/metrics",
            get_with(metrics, |op| {
                openapi::metrics_text(
                    op.summary(
                        "Prometheus metrics (with server.metrics_token set, for its bearer only)",
                    )
                    .default_response::<ApiError>(),
                )
            }),
        )
        .api_route(
            "/api/search",
            get_with(search, |op| {
                op.summary("Ranked passages from readable collections")
            }),
        )
        .api_route(
            "/api/collections",
            get_with(collections, |op| {
                op.summary(
                    "Readable collections: counts, visibility, retention, whether you curate each",
                )
            }),
        )
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(privacy::routes())
        .merge(collections::routes())
        .merge(chat::routes())
        .merge(billing::routes())
        .merge(usage::routes())
        .merge(openai::routes())
        .merge(documents::routes(max_upload))
        .merge(sources::routes())
}
