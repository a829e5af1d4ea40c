//! Answering: conversations, the retrieval-augmented answer streamed as events, citations and
//! their check, usage and cost. Every surface (REST, the OpenAI-compatible endpoint, MCP) asks
//! through [`Chat::start`] (or [`Chat::answer`] for the whole answer at once).
//!
//! The rooms: `run` (a question accepted and answered), `stream` (text streamed; streams
//! collected), `conversations`, `cache`, `answer` (prompts, citations, the extractive answer),
//! `provider` (the language models) and `citations` (how a message's citations are kept in its
//! row); `export` renders a conversation as Markdown, text or PDF.
//!
//! May use: `base`, `knowledge` (retrieval) and `commerce` (quotas, usage). Owns its rows
//! ([`store`]: conversations and messages) and its settings ([`config`]: `[llm]`, `[chat]`).
//! Must never know: accounts' storage, billing, jobs or any transport.

pub mod answer;
mod cache;
mod citations;
pub mod config;
mod conversations;
pub mod export;
pub mod feedback;
pub mod grounding;
mod llm;
#[cfg(feature = "local-llm")]
mod local;
pub mod provider;
mod run;
mod sql;
pub mod store;
mod stream;

use cache::CachedAnswer;
pub use stream::collect;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::{ChatConfig, ProviderConfig};
use crate::store::{ConversationStore, ConversationSummary, Speaker, StoredMessage};
use answer::{Citation, MarkerFilter};
use base::error::{Error, ErrorCode, Result};
use base::principal::{Principal, Scope};
use base::types::{
    AnswerStatus, CollectionName, QueryText, SearchMode, TopK, content_hash, now_ms,
};
use commerce::limits::Limits;
use commerce::store::UsageRecord;
use grounding::CitationCheck;
use knowledge::store::CollectionHead;
use knowledge::{Knowledge, SearchRequest};
use provider::{Llm, LlmEvent, Turn};

/// The largest offset a conversation list accepts.
pub const MAX_OFFSET: usize = 1_000_000;
/// Tokens of conversation the condensing model is shown at most (the latest turns).
const CONDENSE_HISTORY_TOKENS: usize = 2_000;
/// Characters of a passage shown as a citation's snippet.
const SNIPPET_CHARS: usize = 280;
/// How long a model may take to condense a follow-up before the rule is used instead.
const CONDENSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A question, parsed at the boundary.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub message: String,
    pub conversation_id: Option<String>,
    /// `None`: the conversation's collections, or every readable one.
    pub collections: Option<Vec<CollectionName>>,
    /// Earlier turns the caller supplies (the OpenAI-compatible endpoint keeps no conversation).
    pub history: Vec<Turn>,
    /// A configured model to try first (`None`: the configured order).
    pub model: Option<String>,
    /// Keep the exchange in a conversation (a new one when `conversation_id` is `None`).
    pub persist: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub conversation_id: Option<String>,
    pub message_id: String,
    pub user_message_id: Option<String>,
    pub standalone_query: String,
    /// How the follow-up became the standalone query: `none`, `rule` or `model`.
    pub condensed_by: &'static str,
    pub extractive: bool,
    pub cached: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, schemars::JsonSchema)]
pub struct TokenUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

impl TokenUsage {
    /// Both calls' tokens together (the condensing call and the answer).
    pub fn plus(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
            total_tokens: self.total_tokens + other.total_tokens,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Timings {
    pub retrieval_ms: u64,
    pub first_token_ms: u64,
    pub total_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Done {
    pub message_id: String,
    pub model: String,
    pub provider: Option<String>,
    pub extractive: bool,
    pub cached: bool,
    pub usage: TokenUsage,
    pub cost_usd: f64,
    pub timings: Timings,
    pub citation_check: CitationCheck,
}

/// What an answer streams, in order: `Meta`, `Citations`, `Delta`s, then `Done` or `Error`.
#[derive(Debug, Clone)]
pub enum ChatEvent {
    Meta(Meta),
    Citations(Vec<Citation>),
    Delta(String),
    Done(Box<Done>),
    Error { code: ErrorCode, message: String },
}

/// A whole answer, for surfaces that do not stream.
#[derive(Debug, Clone)]
pub struct Answer {
    pub meta: Meta,
    pub text: String,
    /// The sources the answer cites (those the citation check found markers for), in order.
    pub cited: Vec<Citation>,
    pub done: Done,
}

pub struct Chat {
    knowledge: Arc<Knowledge>,
    conversations: Arc<dyn ConversationStore>,
    limits: Arc<Limits>,
    llm: Option<Llm>,
    config: ChatConfig,
    cache: Mutex<HashMap<String, CachedAnswer>>,
    /// Turns to find an answer's sources (`chat.preparing` at once), given in order of arrival.
    preparing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").field("llm", &self.llm).finish()
    }
}

/// The turns of a stored conversation that completed.
fn turns_of(messages: &[StoredMessage]) -> Vec<Turn> {
    messages
        .iter()
        .filter(|m| m.status == AnswerStatus::Complete)
        .map(|m| Turn {
            role: m.role,
            content: m.content.clone(),
        })
        .collect()
}

fn cost(provider: Option<&ProviderConfig>, usage: TokenUsage) -> f64 {
    provider.map_or(0.0, |p| {
        (usage.prompt_tokens as f64 * p.input_price_per_mtok
            + usage.completion_tokens as f64 * p.output_price_per_mtok)
            / 1_000_000.0
    })
}

/// A conversation with its messages.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Conversation {
    #[serde(flatten)]
    pub summary: ConversationSummary,
    pub messages: Vec<StoredMessage>,
}

/// Everything one answer needs once its request has been accepted.
struct Job {
    principal: Principal,
    request: ChatRequest,
    conversation: Option<ConversationSummary>,
    history: Vec<Turn>,
    /// The collections the question names (kept as its conversation's scope); `None`: every
    /// readable one.
    collections: Option<Vec<CollectionName>>,
    /// The collections the question searches, resolved once from what the caller may read.
    searched: Vec<CollectionHead>,
    tx: mpsc::Sender<ChatEvent>,
}

/// What the model is asked in one turn.
struct Exchange<'a> {
    instructions: &'a [(String, String)],
    citations: &'a [Citation],
    history: &'a [Turn],
    question: answer::Question<'a>,
    model: Option<&'a str>,
}

/// The answer's text and accounting as it is built.
struct Outcome {
    text: String,
    usage: TokenUsage,
    model: String,
    provider: Option<ProviderConfig>,
    first_token_ms: u64,
    removed: Vec<String>,
    /// Sentences whose citations were put right as the text streamed.
    reassigned: Vec<grounding::Reassigned>,
    status: AnswerStatus,
    /// Why the answer stopped early (`status` is then `Error`); reported after it is stored.
    error: Option<Error>,
}

impl Chat {
    pub fn new(
        knowledge: Arc<Knowledge>,
        conversations: Arc<dyn ConversationStore>,
        limits: Arc<Limits>,
        llm: Option<Llm>,
        config: ChatConfig,
    ) -> Self {
        let preparing = match config.preparing {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Self {
            knowledge,
            conversations,
            limits,
            llm,
            config,
            cache: Mutex::new(HashMap::new()),
            preparing: tokio::sync::Semaphore::new(preparing),
        }
    }

    /// Whether answers come from a model (else they are extractive).
    pub fn has_model(&self) -> bool {
        self.llm.is_some()
    }

    /// The models answers can come from, in fallback order (`extractive` without a provider).
    pub fn models(&self) -> Vec<String> {
        match &self.llm {
            Some(llm) => llm.models(),
            None => vec!["extractive".to_owned()],
        }
    }
}
