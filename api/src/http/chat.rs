//! Conversations and `POST /api/chat`, which answers as server-sent events: `meta`,
//! `citations`, `delta`…, then `done` or `error`.

use std::convert::Infallible;
use std::time::Duration;

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with, put_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, NoContent, Response};
use base::{CollectionName, Result as KResult};
use chat::export::ExportFormat;
use chat::feedback::{Feedback, MessageRating, RatingSummary};
use chat::store::ConversationSummary;
use chat::{ChatEvent, ChatRequest, Conversation};
use futures::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::openapi::{event_stream as sse_doc, export_file};
use super::{ApiError, AppState, Auth, Body, IdPath, Params};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/chat",
            post_with(chat, |op| {
                sse_doc(
                    op.summary("Answer a question as server-sent events"),
                    "meta, citations, delta…, then done or error",
                    &["meta", "citations", "delta", "done", "error"],
                )
            }),
        )
        .api_route(
            "/api/conversations",
            get_with(list, |op| {
                op.summary("The caller's conversations, newest first")
            }),
        )
        .api_route(
            "/api/conversations/search",
            get_with(search, |op| {
                op.summary("Conversations whose title or messages contain q")
            }),
        )
        .api_route(
            "/api/conversations/{id}",
            get_with(show, |op| op.summary("A conversation with its messages"))
                .patch_with(rename, |op| op.summary("Rename"))
                .delete_with(remove, |op| op.summary("Delete")),
        )
        .api_route(
            "/api/conversations/{id}/messages/{message_id}/feedback",
            put_with(rate, |op| {
                op.summary(
                    "Rate an answer of the caller's conversation: up or down, with an optional \
                     comment (again: replaces the rating)",
                )
            })
            .delete_with(unrate, |op| op.summary("Take back a rating")),
        )
        .api_route(
            "/api/admin/feedback",
            get_with(ratings, |op| {
                op.summary("Readers' ratings of answers per collection and model (admins)")
            }),
        )
        .api_route(
            "/api/conversations/{id}/export",
            get_with(export, |op| {
                export_file(op.summary(
                    "The conversation as a file to keep: PDF (with its cited passages in an \
                     appendix the markers link to), Markdown or JSON",
                ))
            }),
        )
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    /// The question.
    #[schemars(pattern(r"\S"))]
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

#[derive(Deserialize, JsonSchema)]
struct Page {
    /// How many (default 20).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<usize>,
    /// How many to skip.
    #[schemars(range(max = chat::MAX_OFFSET))]
    offset: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct ConversationPage {
    conversations: Vec<ConversationSummary>,
    limit: usize,
    offset: usize,
    /// The offset of the next page, while there may be one.
    next_offset: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(page): Params<Page>,
) -> Result<Json<ConversationPage>, ApiError> {
    let limit = page.limit.unwrap_or(20);
    let offset = page.offset.unwrap_or(0);
    let conversations = state
        .service
        .chat
        .conversations(&principal, limit, offset)
        .await?;
    let next_offset = (conversations.len() == limit).then_some(offset + limit);
    Ok(Json(ConversationPage {
        conversations,
        limit,
        offset,
        next_offset,
    }))
}

#[derive(Deserialize, JsonSchema)]
struct ConversationQuery {
    /// Words to find in titles and messages.
    #[schemars(pattern(r"\S"))]
    q: String,
    /// How many (default 20; at most 100).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct Found {
    conversations: Vec<ConversationSummary>,
}

async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Params(p): Params<ConversationQuery>,
) -> Result<Json<Found>, ApiError> {
    let limit = p.limit.unwrap_or(20);
    let conversations = state.service.chat.search(&principal, &p.q, limit).await?;
    Ok(Json(Found { conversations }))
}

async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(
        state.service.chat.conversation(&principal, &id).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Rename {
    #[schemars(pattern(r"\S"))]
    title: String,
}

async fn rename(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    Body(b): Body<Rename>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let chat = &state.service.chat;
    chat.rename(&principal, &id, &b.title).await?;
    Ok(Json(chat.conversation(&principal, &id).await?.summary))
}

async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<NoContent, ApiError> {
    state.service.chat.delete(&principal, &id).await?;
    Ok(NoContent)
}

/// A route's answer: `{id}` the conversation, `{message_id}` its message.
#[derive(Deserialize, JsonSchema)]
struct MessagePath {
    id: String,
    message_id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RateBody {
    /// `up` or `down`.
    #[schemars(pattern(r"^(up|down)$"))]
    rating: String,
    /// Why, in at most 2,000 characters (no control characters but newlines and tabs).
    #[schemars(
        length(max = 2000),
        pattern(r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")
    )]
    comment: Option<String>,
}

async fn rate(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MessagePath { id, message_id }): Path<MessagePath>,
    Body(b): Body<RateBody>,
) -> Result<Json<Feedback>, ApiError> {
    let rating = MessageRating::parse(&b.rating, b.comment.as_deref())?;
    let chat = &state.service.chat;
    Ok(Json(chat.rate(&principal, &id, &message_id, rating).await?))
}

async fn unrate(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MessagePath { id, message_id }): Path<MessagePath>,
) -> Result<NoContent, ApiError> {
    if state
        .service
        .chat
        .unrate(&principal, &id, &message_id)
        .await?
    {
        Ok(NoContent)
    } else {
        Err(ApiError(base::Error::NotFound(
            "no rating of that answer in your conversations".into(),
        )))
    }
}

#[derive(Serialize, JsonSchema)]
struct Ratings {
    ratings: Vec<RatingSummary>,
}

async fn ratings(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Ratings>, ApiError> {
    let ratings = state.service.chat.rating_summary(&principal).await?;
    Ok(Json(Ratings { ratings }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// `pdf` (default), `md` or `json`.
    format: Option<ExportFormat>,
}

async fn export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    Params(q): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or(ExportFormat::Pdf);
    let file = state.service.chat.export(&principal, &id, format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.filename),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        file.bytes,
    )
        .into_response())
}
