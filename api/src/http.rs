//! The HTTP API (axum). Handlers parse, call the façade and map the result; errors render as
//! `{"error": {"code", "message"}}` with a status chosen by the error's code.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use knowledge::{ErrorCode, Knowledge};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
pub struct AppState {
    knowledge: Arc<Knowledge>,
}

pub struct ApiError(knowledge::Error);

impl From<knowledge::Error> for ApiError {
    fn from(e: knowledge::Error) -> Self {
        Self(e)
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self.0, "request failed");
        }
        let body = json!({ "error": { "code": code, "message": self.0.to_string() } });
        (status_of(code), Json(body)).into_response()
    }
}

pub fn router(knowledge: Arc<Knowledge>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/search", get(search))
        .fallback(|| async { ApiError(knowledge::Error::NotFound("no such endpoint".into())) })
        .with_state(AppState { knowledge })
}

async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "store": state.knowledge.store_backend(),
        "model": state.knowledge.embedder().model().name,
    }))
}

/// Every field optional so a missing or malformed one gets our error, not a generic rejection.
#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    collection: Option<String>,
    mode: Option<String>,
    k: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<Json<knowledge::SearchResults>, ApiError> {
    let q = p.q.ok_or_else(|| {
        knowledge::Error::InvalidInput("the query parameter q is required".into())
    })?;
    let k = match p.k.as_deref() {
        None | Some("") => 10,
        Some(raw) => raw.trim().parse::<usize>().map_err(|_| {
            knowledge::Error::InvalidInput(format!("k must be a positive integer, got {raw:?}"))
        })?,
    };
    let collections: Vec<String> = p
        .collection
        .iter()
        .flat_map(|c| c.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let request =
        crate::cli::search_request(&q, &collections, p.mode.as_deref().unwrap_or("hybrid"), k)?;
    Ok(Json(state.knowledge.search(&request).await?))
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn serve(knowledge: Arc<Knowledge>, addr: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| knowledge::Error::Unavailable(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    eprintln!("lariat listening on http://{local}");
    axum::serve(listener, router(knowledge.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    knowledge.flush().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
