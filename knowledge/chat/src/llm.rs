//! The seam every language model answers through: [`LlmProvider`], the [`Prompt`] it is sent and
//! the [`LlmEvent`]s it streams. The HTTP providers (`provider`) and the in-process model
//! (`local`) implement it.

use std::pin::Pin;

use async_trait::async_trait;
use base::error::Result;
use futures::Stream;

use crate::config::ProviderConfig;

/// Who said a turn: the person asking, or the assistant answering.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
}

base::words!(Speaker, "role", { User => "user", Assistant => "assistant" });

/// One turn of the prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Turn {
    pub role: Speaker,
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
    /// The provider refused this request for what it holds (400, 413, 422: too long for the
    /// context, a bad parameter). Not retried, and not held against the provider's circuit:
    /// one user's request must not take answering down for the others.
    Request(String),
    /// Any other refusal (bad key, unknown model): the provider is unusable as configured.
    Fatal(String),
}

impl ProviderError {
    pub fn message(&self) -> &str {
        match self {
            ProviderError::Retryable(m) | ProviderError::Request(m) | ProviderError::Fatal(m) => m,
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
