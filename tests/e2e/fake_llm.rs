//! A local stand-in for LLM providers, speaking the OpenAI chat-completions and Anthropic
//! Messages streaming wire formats. The request's `model` picks the behaviour:
//! `good` and `claude-good` answer, `flaky` answers 429 once then answers, `down` answers 500,
//! `hang` never sends headers, `midfail` breaks the stream after one token, `slow` trickles
//! tokens and records when the client hung up, `toolong` refuses every request with 400 as a
//! model does when the prompt exceeds its context, `miscite` cites the wrong source and leaves a
//! sentence uncited, `swap` swaps the citations of the head- and heel-rope lengths, `misstate`
//! gets a rope's length wrong and cites it, and `switch` answers at once unless `POST /control/down` switched it off
//! (500) until `POST /control/up`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};

/// The answer `good` gives: one valid marker and one pointing nowhere.
pub const GOOD_ANSWER: &[&str] = &[
    "A heading rope is ",
    "usually about 35 feet long [",
    "1]. Some say ninety-nine feet [9].",
];

#[derive(Default)]
pub struct FakeState {
    pub calls: Mutex<HashMap<String, usize>>,
    pub requests: Mutex<Vec<Value>>,
    pub slow_dropped: AtomicBool,
    /// Whether `switch` is down.
    pub down: AtomicBool,
}

impl FakeState {
    pub fn calls(&self, model: &str) -> usize {
        *self.calls.lock().unwrap().get(model).unwrap_or(&0)
    }
}

pub struct FakeLlm {
    pub base: String,
    pub state: Arc<FakeState>,
}

pub async fn start() -> FakeLlm {
    let state = Arc::new(FakeState::default());
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/control/{state}", post(control))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    FakeLlm {
        base: format!("http://{addr}/v1"),
        state,
    }
}

/// Switches `switch` down or up.
async fn control(
    State(state): State<Arc<FakeState>>,
    axum::extract::Path(to): axum::extract::Path<String>,
) -> StatusCode {
    match to.as_str() {
        "down" => state.down.store(true, Ordering::SeqCst),
        "up" => state.down.store(false, Ordering::SeqCst),
        _ => return StatusCode::NOT_FOUND,
    }
    StatusCode::NO_CONTENT
}

/// Writes the data dir's `lariat.toml` naming these providers (name, api, model) on the fake,
/// with short retries; `extra` is appended to the `[llm]` table.
pub fn write_providers(
    l: &crate::support::Lariat,
    fake: &FakeLlm,
    providers: &[(&str, &str, &str)],
    extra: &str,
) {
    let mut toml = format!(
        "[llm]\nretries = 1\nbackoff_ms = 20\nfirst_token_timeout_ms = 1000\n\
         breaker_failures = 2\nbreaker_cooldown_ms = 60000\n{extra}\n"
    );
    for (name, api, model) in providers {
        toml.push_str(&format!(
            "[[llm.providers]]\nname = \"{name}\"\napi = \"{api}\"\nbase_url = \"{}\"\n\
             api_key = \"sk-test\"\nmodel = \"{model}\"\ninput_price_per_mtok = 1.0\n\
             output_price_per_mtok = 2.0\n",
            fake.base
        ));
    }
    std::fs::create_dir_all(l.data_dir()).unwrap();
    std::fs::write(l.data_dir().join("lariat.toml"), toml).unwrap();
}

/// Sets a flag when the response body is dropped before its end (the client hung up).
struct DropFlag(Arc<FakeState>, std::cell::Cell<bool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1.get() {
            self.0.slow_dropped.store(true, Ordering::SeqCst);
        }
    }
}

fn sse_body(events: Vec<String>, delay: Duration, fail_after: Option<usize>) -> Body {
    let stream =
        futures::stream::iter(events.into_iter().enumerate()).then(move |(i, e)| async move {
            tokio::time::sleep(delay).await;
            if fail_after.is_some_and(|n| i >= n) {
                Err(std::io::Error::other("upstream broke"))
            } else {
                Ok::<_, std::io::Error>(Bytes::from(e))
            }
        });
    Body::from_stream(stream)
}

fn sse(data: &Value) -> String {
    format!("data: {data}\n\n")
}

/// The common part: counts the call, records the request, and answers the failure modes.
fn before(state: &FakeState, body: &Value) -> Result<String, (StatusCode, &'static str)> {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let n = {
        let mut calls = state.calls.lock().unwrap();
        let c = calls.entry(model.clone()).or_default();
        *c += 1;
        *c
    };
    state.requests.lock().unwrap().push(body.clone());
    match model.as_str() {
        "down" => Err((StatusCode::INTERNAL_SERVER_ERROR, "overloaded")),
        "toolong" => Err((
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 16385 tokens (context_length_exceeded)",
        )),
        "flaky" if n == 1 => Err((StatusCode::TOO_MANY_REQUESTS, "slow down")),
        "switch" if state.down.load(Ordering::SeqCst) => {
            Err((StatusCode::INTERNAL_SERVER_ERROR, "switched off"))
        }
        _ => Ok(model),
    }
}

fn is_condense(body: &Value) -> bool {
    body.to_string().contains("standalone search query")
}

fn answer_parts(body: &Value) -> Vec<String> {
    if is_condense(body) {
        vec!["How long is a heeling rope?".to_owned()]
    } else if body["model"] == "miscite" {
        miscited(body)
    } else if body["model"] == "swap" {
        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
        let holding = |words: &str| {
            system
                .split("<source id=\"")
                .skip(1)
                .find(|s| s.contains(words))
                .and_then(|s| s.split('"').next())
                .unwrap_or("0")
                .to_owned()
        };
        let (head, heel) = (holding("30 to 35 feet"), holding("35 to 40 feet"));
        vec![
            format!("Heel ropes are longer, typically 35 to 40 feet [{head}]. "),
            format!("Head ropes are typically 30 to 35 feet long [{heel}]."),
        ]
    } else if body["model"] == "misstate" {
        vec![
            "A heading rope is typically 10 to 25 ".into(),
            "feet long [1].".into(),
        ]
    } else {
        GOOD_ANSWER.iter().map(|s| s.to_string()).collect()
    }
}

/// `miscite`'s answer, as a small model writes one: the longest sentence of source 1 cited as
/// the last source, then the longest of source 2 with no citation.
fn miscited(body: &Value) -> Vec<String> {
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let sources = system.matches("<source id=").count();
    let longest = |n: usize| -> String {
        let open = format!("<source id=\"{n}\"");
        let text = system.split(&open).nth(1).unwrap_or_default();
        let text = text.split_once('\n').map_or("", |(_, t)| t);
        let text = text.split("</source>").next().unwrap_or_default();
        text.split(['.', '\n'])
            .map(str::trim)
            .max_by_key(|s| s.len())
            .unwrap_or_default()
            .to_owned()
    };
    vec![
        format!("{} [{sources}]. ", longest(1)),
        format!("{}.", longest(2)),
    ]
}

async fn openai(State(state): State<Arc<FakeState>>, Json(body): Json<Value>) -> Response {
    let model = match before(&state, &body) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    if model == "hang" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let chunk = |text: &str| {
        sse(
            &json!({"id": "x", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}),
        )
    };
    if model == "slow" {
        let guard = DropFlag(state.clone(), std::cell::Cell::new(false));
        let stream = futures::stream::unfold((0usize, guard), move |(i, guard)| {
            let piece = format!("word{i} ");
            async move {
                if i == 100 {
                    guard.1.set(true);
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let data = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
                Some((Ok::<_, Infallible>(Bytes::from(sse(&data))), (i + 1, guard)))
            }
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let mut events: Vec<String> = answer_parts(&body).iter().map(|p| chunk(p)).collect();
    let fail_after = (model == "midfail").then_some(1);
    let delay = if model == "switch" {
        Duration::ZERO
    } else {
        Duration::from_millis(20)
    };
    events.push(sse(
        &json!({"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 30}}),
    ));
    events.push("data: [DONE]\n\n".into());
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(sse_body(events, delay, fail_after))
        .unwrap()
}

async fn anthropic(State(state): State<Arc<FakeState>>, Json(body): Json<Value>) -> Response {
    if let Err(r) = before(&state, &body) {
        return r.into_response();
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 200, "output_tokens": 1}}}),
    )];
    for part in answer_parts(&body) {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}}),
        ));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "usage": {"output_tokens": 40}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(sse_body(events, Duration::from_millis(10), None))
        .unwrap()
}
