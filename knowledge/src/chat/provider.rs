//! Language-model providers, streamed over reqwest: OpenAI-compatible chat completions and the
//! Anthropic Messages API. [`Llm`] puts them in a fallback order with retries and backoff on 429
//! and 5xx before the first token, a first-token and a total timeout, and a circuit breaker.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tracing::warn;

use crate::config::{LlmApi, LlmConfig, ProviderConfig};
use crate::error::{Error, Result};

/// One turn of the prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// What is sent to a model: a system text and the turns, the last one the user's.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub turns: Vec<Turn>,
    pub max_tokens: usize,
}

/// What a provider's stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    Delta(String),
    Usage {
        prompt_tokens: i64,
        completion_tokens: i64,
    },
}

/// Why a provider call failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub enum ProviderError {
    /// 429, 5xx, a dropped connection or a timeout.
    Retryable(String),
    /// Any other refusal (bad key, unknown model, malformed request).
    Fatal(String),
}

impl ProviderError {
    fn message(&self) -> &str {
        match self {
            ProviderError::Retryable(m) | ProviderError::Fatal(m) => m,
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<LlmEvent, ProviderError>> + Send>>;

#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn config(&self) -> &ProviderConfig;
    /// Sends the request; resolves with the event stream once the response headers arrived.
    async fn start(&self, prompt: &Prompt) -> Result<EventStream, ProviderError>;
}

/// Splits a byte stream into server-sent events (`event:` name and joined `data:` lines).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer
            .push_str(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                }
            }
            if !data.is_empty() || event.is_some() {
                out.push(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        out
    }
}

fn classify_status(status: reqwest::StatusCode, body: &str, provider: &str) -> ProviderError {
    let snippet: String = body.chars().take(300).collect();
    let message = format!("{provider} answered {status}: {snippet}");
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ProviderError::Retryable(message)
    } else {
        ProviderError::Fatal(message)
    }
}

fn transport_error(provider: &str, e: reqwest::Error) -> ProviderError {
    ProviderError::Retryable(format!("{provider}: {e}"))
}

/// Sends `body` and turns the SSE response into events with `parse` (which sees each event).
async fn post_sse(
    client: &reqwest::Client,
    config: &ProviderConfig,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Value,
    parse: fn(&SseEvent) -> Result<Vec<LlmEvent>, ProviderError>,
) -> Result<EventStream, ProviderError> {
    let mut request = client.post(url).json(&body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(&config.name, e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(classify_status(status, &body, &config.name));
    }
    let name = config.name.clone();
    let mut parser = SseParser::default();
    let stream = response.bytes_stream().flat_map(move |chunk| {
        let events: Vec<Result<LlmEvent, ProviderError>> = match chunk {
            Ok(bytes) => parser
                .push(&bytes)
                .iter()
                .flat_map(|e| match parse(e) {
                    Ok(events) => events.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(err) => vec![Err(err)],
                })
                .collect(),
            Err(e) => vec![Err(transport_error(&name, e))],
        };
        futures::stream::iter(events)
    });
    Ok(Box::pin(stream))
}

fn bad_event(e: serde_json::Error) -> ProviderError {
    ProviderError::Fatal(format!("malformed stream event: {e}"))
}

/// `POST {base_url}/chat/completions` with `stream: true`.
pub struct OpenAiProvider {
    client: reqwest::Client,
    config: ProviderConfig,
}

fn parse_openai(event: &SseEvent) -> Result<Vec<LlmEvent>, ProviderError> {
    if event.data.trim() == "[DONE]" || event.data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(&event.data).map_err(bad_event)?;
    if let Some(err) = v.get("error") {
        return Err(ProviderError::Retryable(format!("stream error: {err}")));
    }
    let mut out = Vec::new();
    if let Some(text) = v
        .pointer("/choices/0/delta/content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        out.push(LlmEvent::Delta(text.to_owned()));
    }
    if let Some(usage) = v.get("usage").filter(|u| !u.is_null()) {
        out.push(LlmEvent::Usage {
            prompt_tokens: usage["prompt_tokens"].as_i64().unwrap_or(0),
            completion_tokens: usage["completion_tokens"].as_i64().unwrap_or(0),
        });
    }
    Ok(out)
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    async fn start(&self, prompt: &Prompt) -> Result<EventStream, ProviderError> {
        let mut messages = vec![json!({"role": "system", "content": prompt.system})];
        messages.extend(
            prompt
                .turns
                .iter()
                .map(|t| json!({"role": t.role, "content": t.content})),
        );
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": prompt.max_tokens,
        });
        let mut headers = Vec::new();
        if let Some(key) = &self.config.api_key {
            headers.push(("authorization", format!("Bearer {}", key.expose())));
        }
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        post_sse(&self.client, &self.config, url, headers, body, parse_openai).await
    }
}

/// `POST {base_url}/messages` (Anthropic Messages API) with `stream: true`.
pub struct AnthropicProvider {
    client: reqwest::Client,
    config: ProviderConfig,
}

fn parse_anthropic(event: &SseEvent) -> Result<Vec<LlmEvent>, ProviderError> {
    if event.data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(&event.data).map_err(bad_event)?;
    let kind = v["type"].as_str().unwrap_or_default();
    Ok(match kind {
        "content_block_delta" => v
            .pointer("/delta/text")
            .and_then(Value::as_str)
            .map(|t| vec![LlmEvent::Delta(t.to_owned())])
            .unwrap_or_default(),
        "message_start" => vec![LlmEvent::Usage {
            prompt_tokens: v
                .pointer("/message/usage/input_tokens")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            completion_tokens: 0,
        }],
        "message_delta" => vec![LlmEvent::Usage {
            prompt_tokens: 0,
            completion_tokens: v
                .pointer("/usage/output_tokens")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        }],
        "error" => {
            let message = v.pointer("/error/message").and_then(Value::as_str);
            return Err(ProviderError::Retryable(format!(
                "stream error: {}",
                message.unwrap_or("unknown")
            )));
        }
        _ => Vec::new(),
    })
}

#[async_trait]
impl LlmProvider for AnthropicProvider {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    async fn start(&self, prompt: &Prompt) -> Result<EventStream, ProviderError> {
        let messages: Vec<Value> = prompt
            .turns
            .iter()
            .map(|t| json!({"role": t.role, "content": t.content}))
            .collect();
        let body = json!({
            "model": self.config.model,
            "system": prompt.system,
            "messages": messages,
            "max_tokens": prompt.max_tokens,
            "stream": true,
        });
        let mut headers = vec![("anthropic-version", "2023-06-01".to_owned())];
        if let Some(key) = &self.config.api_key {
            headers.push(("x-api-key", key.expose().to_owned()));
        }
        let url = format!("{}/messages", self.config.base_url.trim_end_matches('/'));
        post_sse(
            &self.client,
            &self.config,
            url,
            headers,
            body,
            parse_anthropic,
        )
        .await
    }
}

/// Opens after `threshold` consecutive failures; after `cooldown` one call is let through and
/// its outcome closes or reopens it.
#[derive(Debug)]
struct Breaker {
    state: Mutex<(u32, Option<Instant>)>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    fn allows(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.is_none_or(|until| Instant::now() >= until)
    }

    fn success(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = (0, None);
    }

    fn failure(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += 1;
        if state.0 >= self.threshold {
            state.1 = Some(Instant::now() + self.cooldown);
        }
    }
}

/// A stream that has produced its first event, with the provider it came from.
pub struct Started {
    pub provider: ProviderConfig,
    pub events: EventStream,
    /// When the whole answer must be finished.
    pub deadline: tokio::time::Instant,
}

/// The configured providers in fallback order.
pub struct Llm {
    providers: Vec<(Box<dyn LlmProvider>, Breaker)>,
    config: LlmConfig,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .providers
            .iter()
            .map(|(p, _)| p.config().name.as_str())
            .collect();
        f.debug_struct("Llm").field("providers", &names).finish()
    }
}

impl Llm {
    /// `None` when no provider is configured (answers are then extractive).
    pub fn new(providers: Vec<ProviderConfig>, config: &LlmConfig) -> Result<Option<Self>> {
        if providers.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .build()
            .map_err(|e| Error::Internal(format!("building the HTTP client: {e}")))?;
        let providers = providers
            .into_iter()
            .map(|p| {
                if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                    return Err(Error::InvalidInput(format!(
                        "provider {}: base_url must be an http(s) URL, got {:?}",
                        p.name, p.base_url
                    )));
                }
                let provider: Box<dyn LlmProvider> = match p.api {
                    LlmApi::Openai => Box::new(OpenAiProvider {
                        client: client.clone(),
                        config: p,
                    }),
                    LlmApi::Anthropic => Box::new(AnthropicProvider {
                        client: client.clone(),
                        config: p,
                    }),
                };
                let breaker = Breaker {
                    state: Mutex::new((0, None)),
                    threshold: config.breaker_failures.max(1),
                    cooldown: Duration::from_millis(config.breaker_cooldown_ms),
                };
                Ok((provider, breaker))
            })
            .collect::<Result<_>>()?;
        Ok(Some(Self {
            providers,
            config: config.clone(),
        }))
    }

    /// The first provider's settings (context budget, model name).
    pub fn primary(&self) -> &ProviderConfig {
        self.providers[0].0.config()
    }

    /// The providers' models, in fallback order.
    pub fn models(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (p, _) in &self.providers {
            if !out.contains(&p.config().model) {
                out.push(p.config().model.clone());
            }
        }
        out
    }

    /// The settings of the provider tried first for `model`.
    pub fn budget<'a>(&'a self, model: Option<&'a str>) -> &'a ProviderConfig {
        self.ordered(model)
            .next()
            .map(|(p, _)| p.config())
            .unwrap_or_else(|| self.primary())
    }

    /// The providers with those serving `model` first.
    fn ordered<'a>(
        &'a self,
        model: Option<&'a str>,
    ) -> impl Iterator<Item = &'a (Box<dyn LlmProvider>, Breaker)> + 'a {
        let preferred = move |p: &&(Box<dyn LlmProvider>, Breaker)| {
            model.is_some_and(|m| p.0.config().model == m)
        };
        self.providers
            .iter()
            .filter(preferred)
            .chain(self.providers.iter().filter(move |p| !preferred(p)))
    }

    /// Starts the answer on the first provider that produces a first event in time: each is
    /// retried with exponential backoff on retryable failures, skipped while its circuit is open.
    pub async fn start(&self, prompt: &Prompt, model: Option<&str>) -> Result<Started> {
        let first_token = Duration::from_millis(self.config.first_token_timeout_ms);
        let mut failures = Vec::new();
        for (provider, breaker) in self.ordered(model) {
            let name = &provider.config().name;
            if !breaker.allows() {
                failures.push(format!("{name}: circuit open after repeated failures"));
                continue;
            }
            let metrics = crate::metrics::Metrics::get();
            for attempt in 0..=self.config.retries {
                let asked = Instant::now();
                if attempt > 0 {
                    let backoff = self.config.backoff_ms.saturating_mul(1 << (attempt - 1));
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                let outcome = tokio::time::timeout(first_token, async {
                    let mut events = provider.start(prompt).await?;
                    match events.next().await {
                        Some(Ok(first)) => Ok((first, events)),
                        Some(Err(e)) => Err(e),
                        None => Err(ProviderError::Retryable(format!(
                            "{name}: the stream ended before any token"
                        ))),
                    }
                })
                .await
                .unwrap_or_else(|_| {
                    Err(ProviderError::Retryable(format!(
                        "{name}: no first token within {} ms",
                        first_token.as_millis()
                    )))
                });
                match outcome {
                    Ok((first, rest)) => {
                        breaker.success();
                        metrics
                            .provider_first_token_seconds
                            .with_label_values(&[name.as_str()])
                            .observe(asked.elapsed().as_secs_f64());
                        let events: EventStream =
                            Box::pin(futures::stream::iter([Ok(first)]).chain(rest));
                        return Ok(Started {
                            provider: provider.config().clone(),
                            events,
                            deadline: tokio::time::Instant::now()
                                + Duration::from_millis(self.config.total_timeout_ms),
                        });
                    }
                    Err(e) => {
                        warn!(provider = %name, attempt, error = e.message(), "provider failed");
                        metrics
                            .provider_errors
                            .with_label_values(&[name.as_str()])
                            .inc();
                        let retryable = matches!(e, ProviderError::Retryable(_));
                        failures.push(e.message().to_owned());
                        if !retryable {
                            break;
                        }
                    }
                }
            }
            breaker.failure();
        }
        Err(Error::Upstream(format!(
            "no language model answered: {}",
            failures.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: message_start\ndata: {\"a\"").is_empty());
        let events = p.push(b":1}\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event.as_deref(), Some("message_start"));
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].data, "one\ntwo");
        assert_eq!(events[2].data, "[DONE]");
    }

    #[test]
    fn openai_and_anthropic_events() {
        let delta = SseEvent {
            event: None,
            data: r#"{"choices":[{"delta":{"content":"Hi"}}]}"#.into(),
        };
        assert_eq!(
            parse_openai(&delta).unwrap(),
            vec![LlmEvent::Delta("Hi".into())]
        );
        let usage = SseEvent {
            event: None,
            data: r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#.into(),
        };
        assert_eq!(
            parse_openai(&usage).unwrap(),
            vec![LlmEvent::Usage {
                prompt_tokens: 5,
                completion_tokens: 2
            }]
        );
        let text = SseEvent {
            event: Some("content_block_delta".into()),
            data: r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"Yo"}}"#
                .into(),
        };
        assert_eq!(
            parse_anthropic(&text).unwrap(),
            vec![LlmEvent::Delta("Yo".into())]
        );
        let err = SseEvent {
            event: Some("error".into()),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#.into(),
        };
        assert!(parse_anthropic(&err).is_err());
    }
}
