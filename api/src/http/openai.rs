//! The OpenAI-compatible surface: `GET /v1/models` (one model per readable collection) and
//! `POST /v1/chat/completions` (streamed or not), answering through the same chat path with the
//! citations kept as numbered references in the text and a structured `citations` field.

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base::types::now_ms;
use base::{CollectionName, Error};
use chat::answer::Citation;
use chat::grounding::CitationCheck;
use chat::provider::Turn;
use chat::store::Speaker;
use chat::{ChatEvent, ChatRequest, TokenUsage};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::chat::event_stream;
use super::openapi::event_stream as sse_doc;
use super::{ApiError, AppState, Auth, Body, invalid};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/v1/models",
            get_with(models, |op| {
                op.summary("OpenAI-compatible: one model per readable collection")
            }),
        )
        .api_route(
            "/v1/chat/completions",
            post_with(completions, |op| {
                sse_doc(
                    op.summary(
                        "OpenAI-compatible chat completions (stream or not), with citations",
                    )
                    .response::<200, Json<ChatCompletion>>(),
                    "with stream: chat.completion.chunk objects, then [DONE]",
                    &[],
                )
            }),
        )
}

#[derive(Serialize, JsonSchema)]
struct Model {
    /// The collection's name.
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
}

#[derive(Serialize, JsonSchema)]
struct Models {
    object: &'static str,
    data: Vec<Model>,
}

async fn models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Models>, ApiError> {
    let collections = state
        .service
        .knowledge
        .readable_collections(&principal)
        .await?;
    let data = collections
        .into_iter()
        .map(|c| Model {
            id: c.name,
            object: "model",
            created: 0,
            owned_by: "lariat",
        })
        .collect();
    Ok(Json(Models {
        object: "list",
        data,
    }))
}

/// The request as OpenAI clients send it; unknown fields (temperature, top_p, …) are accepted
/// and ignored.
#[derive(Deserialize, JsonSchema)]
struct CompletionRequest {
    /// A collection's name (see /v1/models).
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize, JsonSchema)]
struct Message {
    /// `user` and `assistant` messages count; others (system, tool) are ignored.
    role: String,
    #[serde(default)]
    content: Content,
}

/// A message's content: a string, or a list of parts of which the text ones count.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
    #[default]
    Null,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Content::Null => String::new(),
        }
    }
}

/// The numbered references appended to the answer's text.
fn references(citations: &[Citation], cited: &[usize]) -> String {
    let lines: Vec<String> = citations
        .iter()
        .filter(|c| cited.contains(&c.n))
        .map(|c| {
            let p = &c.passage;
            if p.location.is_empty() {
                format!("[{}] {} ({})", c.n, p.title, p.source)
            } else {
                format!("[{}] {}, {} ({})", c.n, p.title, p.location, p.source)
            }
        })
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("\n\nSources:\n{}", lines.join("\n"))
    }
}

/// A whole answer, as OpenAI's `chat.completion`, with the cited sources beside it.
#[derive(Serialize, JsonSchema)]
struct ChatCompletion {
    id: String,
    object: &'static str,
    created: i64,
    model: String,
    choices: Vec<Choice>,
    usage: TokenUsage,
    /// The sources the answer cites.
    citations: Vec<Citation>,
    citation_check: CitationCheck,
}

#[derive(Serialize, JsonSchema)]
struct Choice {
    index: u32,
    message: AssistantMessage,
    finish_reason: &'static str,
}

#[derive(Serialize, JsonSchema)]
struct AssistantMessage {
    role: &'static str,
    content: String,
}

async fn completions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(body): Body<CompletionRequest>,
) -> Result<Response, ApiError> {
    let collection = CollectionName::parse(&body.model).map_err(|_| {
        ApiError(Error::NotFound(format!(
            "unknown model {:?}: see GET /v1/models",
            body.model
        )))
    })?;
    let mut turns: Vec<Turn> = body
        .messages
        .iter()
        // system, developer and tool messages are the client's own business: the answer's
        // instructions are the collection's
        .filter_map(|m| {
            Some(Turn {
                role: Speaker::parse(&m.role).ok()?,
                content: m.content.text(),
            })
        })
        .collect();
    let question = match turns.pop() {
        Some(t) if t.role == Speaker::User && !t.content.trim().is_empty() => t.content,
        _ => return Err(invalid("the last message must be a non-empty user message")),
    };
    let request = ChatRequest {
        message: question,
        conversation_id: None,
        collections: Some(vec![collection]),
        history: turns,
        model: None,
        persist: false,
    };
    let rx = state
        .service
        .chat
        .start(principal, request)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => ApiError(Error::NotFound(format!(
                "unknown model {:?}: see GET /v1/models",
                body.model
            ))),
            e => ApiError(e),
        })?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now_ms() / 1000;
    let model = body.model;
    if body.stream {
        Ok(stream_response(rx, id, created, model).into_response())
    } else {
        complete_response(rx, id, created, model).await
    }
}

fn stream_response(
    rx: tokio::sync::mpsc::Receiver<ChatEvent>,
    id: String,
    created: i64,
    model: String,
) -> impl IntoResponse {
    let chunk = move |delta: Value, finish: Option<&str>, extra: &[(&str, Value)]| {
        let mut v = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        for (k, x) in extra {
            v[*k] = x.clone();
        }
        Event::default().data(v.to_string())
    };
    let mut citations: Vec<Citation> = Vec::new();
    let events = event_stream(rx, move |event| match event {
        ChatEvent::Meta(_) => vec![chunk(
            json!({"role": "assistant", "content": ""}),
            None,
            &[],
        )],
        ChatEvent::Citations(c) => {
            citations = c;
            Vec::new()
        }
        ChatEvent::Delta(text) => vec![chunk(json!({ "content": text }), None, &[])],
        ChatEvent::Done(done) => {
            let cited_ns = &done.citation_check.cited;
            let refs = references(&citations, cited_ns);
            let mut out = Vec::new();
            if !refs.is_empty() {
                out.push(chunk(json!({ "content": refs }), None, &[]));
            }
            let cited: Vec<&Citation> = citations
                .iter()
                .filter(|c| cited_ns.contains(&c.n))
                .collect();
            out.push(chunk(
                json!({}),
                Some("stop"),
                &[("usage", json!(done.usage)), ("citations", json!(cited))],
            ));
            out.push(Event::default().data("[DONE]"));
            out
        }
        ChatEvent::Error { code, message } => vec![
            Event::default().data(
                json!({"error": {"code": code, "type": code, "message": message}}).to_string(),
            ),
            Event::default().data("[DONE]"),
        ],
    });
    Sse::new(events.flat_map(|r| {
        futures::stream::iter(
            r.unwrap_or_default()
                .into_iter()
                .map(Ok::<_, std::convert::Infallible>),
        )
    }))
}

async fn complete_response(
    rx: tokio::sync::mpsc::Receiver<ChatEvent>,
    id: String,
    created: i64,
    model: String,
) -> Result<Response, ApiError> {
    let answer = chat::collect(rx).await?;
    let cited_ns = &answer.done.citation_check.cited;
    let text = answer.text.clone() + &references(&answer.cited, cited_ns);
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: text,
            },
            finish_reason: "stop",
        }],
        usage: answer.done.usage,
        citations: answer.cited,
        citation_check: answer.done.citation_check,
    })
    .into_response())
}
