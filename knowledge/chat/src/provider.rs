//! Language-model providers, streamed over reqwest: OpenAI-compatible chat completions and the
//! Anthropic Messages API. [`Llm`] puts them in a fallback order with retries and backoff on 429
//! and 5xx before the first token, a first-token and a total timeout, and a circuit breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tracing::warn;

use parse::sse::{SseEvent, SseParser};

use crate::config::{LlmApi, LlmConfig, ProviderConfig};
use base::error::{Error, Result};

pub use crate::llm::{EventStream, LlmEvent, LlmProvider, Prompt, ProviderError, Turn};

fn classify_status(status: reqwest::StatusCode, body: &str, provider: &str) -> ProviderError {
    let snippet: String = body.chars().take(300).collect();
    let message = format!("{provider} answered {status}: {snippet}");
    match status.as_u16() {
        429 | 500..=599 => ProviderError::Retryable(message),
        400 | 413 | 422 => ProviderError::Request(message),
        _ => ProviderError::Fatal(message),
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

/// Where a provider's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    /// Calls go through; consecutive failures so far.
    Closed(u32),
    /// No calls until then.
    Open(Instant),
    /// One trial call is under way since then; nobody else goes through until it ends (or, if
    /// its caller vanished without an outcome, until a cooldown has passed).
    HalfOpen(Instant),
}

/// Opens after `threshold` consecutive failures; after `cooldown` exactly one trial call is let
/// through, and its outcome closes the circuit or opens it again.
#[derive(Debug)]
struct Breaker {
    state: Mutex<Circuit>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(Circuit::Closed(0)),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Circuit> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go now (taking the trial slot when the cooldown is over).
    fn allows(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            Circuit::Closed(_) => true,
            Circuit::Open(until) | Circuit::HalfOpen(until) if now >= until => {
                *state = Circuit::HalfOpen(now + self.cooldown);
                true
            }
            Circuit::Open(_) | Circuit::HalfOpen(_) => false,
        }
    }

    fn success(&self) {
        *self.lock() = Circuit::Closed(0);
    }

    fn failure(&self) {
        let mut state = self.lock();
        *state = match *state {
            Circuit::Closed(n) if n + 1 < self.threshold => Circuit::Closed(n + 1),
            _ => Circuit::Open(Instant::now() + self.cooldown),
        };
    }

    /// A call that proved nothing about the provider (the request's own fault): a trial's slot
    /// goes to the next caller at once.
    fn neutral(&self) {
        let mut state = self.lock();
        if let Circuit::HalfOpen(_) = *state {
            *state = Circuit::Open(Instant::now());
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

/// Starts a call and waits for its first text: events before it (usage counts, empty deltas)
/// are kept and replayed in front of the rest of the stream.
async fn first_text(
    provider: &dyn LlmProvider,
    prompt: &Prompt,
) -> Result<EventStream, ProviderError> {
    let name = &provider.config().name;
    let mut events = provider.start(prompt).await?;
    let mut before = Vec::new();
    loop {
        match events.next().await {
            Some(Ok(LlmEvent::Delta(text))) if !text.is_empty() => {
                before.push(Ok(LlmEvent::Delta(text)));
                return Ok(Box::pin(futures::stream::iter(before).chain(events)));
            }
            Some(Ok(other)) => before.push(Ok(other)),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(ProviderError::Retryable(format!(
                    "{name}: the stream ended before any text"
                )));
            }
        }
    }
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

/// The in-process provider, in a build that has it.
#[cfg(feature = "local-llm")]
fn local(
    config: ProviderConfig,
    settings: &crate::config::LocalLlmConfig,
) -> Result<Box<dyn LlmProvider>> {
    Ok(Box::new(super::local::LocalProvider::load(
        config, settings,
    )?))
}

#[cfg(not(feature = "local-llm"))]
fn local(
    config: ProviderConfig,
    _: &crate::config::LocalLlmConfig,
) -> Result<Box<dyn LlmProvider>> {
    Err(Error::InvalidInput(format!(
        "llm provider {}: this lariat was built without the local model (cargo feature \
         `local-llm`)",
        config.name
    )))
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
                if p.api != LlmApi::Llama
                    && !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://"))
                {
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
                    LlmApi::Llama => local(p, &config.local)?,
                };
                let breaker = Breaker::new(
                    config.breaker_failures,
                    Duration::from_millis(config.breaker_cooldown_ms),
                );
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
        let mut failures = Vec::new();
        for (provider, breaker) in self.ordered(model) {
            let name = &provider.config().name;
            let first_token = Duration::from_millis(
                provider
                    .config()
                    .first_token_timeout_ms
                    .unwrap_or(self.config.first_token_timeout_ms),
            );
            let total = Duration::from_millis(
                provider
                    .config()
                    .total_timeout_ms
                    .unwrap_or(self.config.total_timeout_ms),
            );
            if !breaker.allows() {
                failures.push(format!("{name}: circuit open after repeated failures"));
                continue;
            }
            let metrics = base::metrics::Metrics::get();
            let mut held_against_provider = true;
            for attempt in 0..=self.config.retries {
                let asked = Instant::now();
                if attempt > 0 {
                    let backoff = self
                        .config
                        .backoff_ms
                        .saturating_mul(1u64 << (attempt - 1).min(20));
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                let outcome =
                    tokio::time::timeout(first_token, first_text(provider.as_ref(), prompt))
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProviderError::Retryable(format!(
                                "{name}: no first token within {} ms",
                                first_token.as_millis()
                            )))
                        });
                match outcome {
                    Ok(events) => {
                        breaker.success();
                        metrics
                            .provider_first_token_seconds
                            .with_label_values(&[name.as_str()])
                            .observe(asked.elapsed().as_secs_f64());
                        return Ok(Started {
                            provider: provider.config().clone(),
                            events,
                            deadline: tokio::time::Instant::now() + total,
                        });
                    }
                    Err(e) => {
                        warn!(provider = %name, attempt, error = e.message(), "provider failed");
                        metrics
                            .provider_errors
                            .with_label_values(&[name.as_str()])
                            .inc();
                        failures.push(e.message().to_owned());
                        match e {
                            ProviderError::Retryable(_) => {}
                            ProviderError::Request(_) => {
                                held_against_provider = false;
                                break;
                            }
                            ProviderError::Fatal(_) => break,
                        }
                    }
                }
            }
            if held_against_provider {
                breaker.failure();
            } else {
                breaker.neutral();
            }
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
    fn statuses_are_classified() {
        let kind = |code: u16| match classify_status(
            reqwest::StatusCode::from_u16(code).unwrap(),
            "",
            "p",
        ) {
            ProviderError::Retryable(_) => "retry",
            ProviderError::Request(_) => "request",
            ProviderError::Fatal(_) => "fatal",
        };
        assert_eq!(
            [400, 401, 404, 413, 422, 429, 500, 503].map(kind),
            [
                "request", "fatal", "fatal", "request", "request", "retry", "retry", "retry"
            ]
        );
    }

    #[test]
    fn the_breaker_lets_one_trial_through_after_its_cooldown() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allows());
        b.failure();
        assert!(b.allows(), "one failure of two");
        b.failure();
        assert!(!b.allows(), "open");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows(), "the trial");
        assert!(!b.allows(), "only one trial at a time");
        b.failure();
        assert!(!b.allows(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows());
        b.neutral();
        assert!(b.allows(), "a trial that proved nothing hands its slot on");
        b.success();
        assert!(b.allows() && b.allows(), "closed");
        // a trial whose caller vanished holds the slot for one cooldown only
        b.failure();
        b.failure();
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows());
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
