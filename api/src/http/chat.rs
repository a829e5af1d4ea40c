//! Conversations and `POST /api/chat`, which answers as server-sent events: `meta`,
//! `citations`, `delta`…, then `done` or `error`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use knowledge::chat::{ChatEvent, ChatRequest};
use knowledge::{CollectionName, Result as KResult};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ApiError, AppState, Auth, Body, invalid};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/chat", post(chat))
        .route("/api/conversations", get(list))
        .route("/api/conversations/search", get(search))
        .route(
            "/api/conversations/{id}",
            get(show).patch(rename).delete(remove),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    message: String,
    conversation_id: Option<String>,
    collections: Option<Vec<String>>,
    /// A configured provider's model to try first.
    model: Option<String>,
}

pub fn parse_collections(names: Option<&[String]>) -> KResult<Option<Vec<CollectionName>>> {
    names
        .map(|list| list.iter().map(|n| CollectionName::parse(n)).collect())
        .transpose()
}

/// The SSE encoding of one chat event.
fn sse_event(event: ChatEvent) -> Event {
    let (name, data) = match event {
        ChatEvent::Meta(meta) => ("meta", json!(meta)),
        ChatEvent::Citations(c) => ("citations", json!({ "citations": c })),
        ChatEvent::Delta(text) => ("delta", json!({ "text": text })),
        ChatEvent::Done(done) => ("done", json!(done)),
        ChatEvent::Error { code, message } => {
            ("error", json!({ "code": code, "message": message }))
        }
    };
    Event::default().event(name).data(data.to_string())
}

/// The receiver as a stream; when the client disconnects the stream (and so the receiver) is
/// dropped, which cancels the answer.
pub fn event_stream<T: 'static + Send>(
    rx: mpsc::Receiver<ChatEvent>,
    encode: impl FnMut(ChatEvent) -> T + Send + 'static,
) -> impl Stream<Item = Result<T, Infallible>> + Send {
    futures::stream::unfold((rx, encode), |(mut rx, mut encode)| async move {
        let event = rx.recv().await?;
        Some((Ok(encode(event)), (rx, encode)))
    })
}

async fn chat(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(body): Body<ChatBody>,
) -> Result<Response, ApiError> {
    let request = ChatRequest {
        message: body.message,
        conversation_id: body.conversation_id,
        collections: parse_collections(body.collections.as_deref())?,
        history: Vec::new(),
        model: body.model,
        persist: true,
    };
    let rx = state.service.chat.start(principal, request).await?;
    Ok(Sse::new(event_stream(rx, sse_event))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[derive(Deserialize)]
struct Page {
    limit: Option<String>,
    offset: Option<String>,
}

fn number(raw: Option<&str>, name: &str, default: usize) -> Result<usize, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{name} must be a non-negative integer, got {v:?}"))),
    }
}

async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = number(page.limit.as_deref(), "limit", 20)?;
    let offset = number(page.offset.as_deref(), "offset", 0)?;
    let items = state
        .service
        .chat
        .conversations(&principal, limit, offset)
        .await?;
    let next = (items.len() == limit).then_some(offset + limit);
    Ok(Json(
        json!({ "conversations": items, "limit": limit, "offset": offset, "next_offset": next }),
    ))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(p): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q =
        p.q.ok_or_else(|| invalid("the query parameter q is required"))?;
    let limit = number(p.limit.as_deref(), "limit", 20)?;
    let items = state.service.chat.search(&principal, &q, limit).await?;
    Ok(Json(json!({ "conversations": items })))
}

async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        state.service.chat.conversation(&principal, &id).await?
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    title: String,
}

async fn rename(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Body(b): Body<Rename>,
) -> Result<Json<Value>, ApiError> {
    let chat = &state.service.chat;
    chat.rename(&principal, &id, &b.title).await?;
    Ok(Json(json!(
        chat.conversation(&principal, &id).await?.summary
    )))
}

async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.chat.delete(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
