//! Chat's rows: conversations, their messages and readers' ratings of the answers.

use async_trait::async_trait;
use base::Result;
use base::types::AnswerStatus;

use crate::answer::Citation;
use crate::feedback::{Feedback, MessageRating, RatingSummary};
pub use crate::llm::Speaker;

/// A conversation as lists show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    /// The collections it searches (empty: every readable one).
    pub collections: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One message of a conversation, with what produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredMessage {
    pub id: String,
    pub seq: i64,
    pub role: Speaker,
    pub content: String,
    /// The sources an assistant message cites, as the `citations` event sent them.
    pub citations: Vec<Citation>,
    /// Cited sentences the citation check found unsupported by their passages.
    #[serde(default)]
    pub unsupported: Vec<crate::grounding::Unsupported>,
    /// The query retrieval ran for this turn (the question condensed with the history).
    pub standalone_query: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub status: AnswerStatus,
    pub created_at: i64,
    /// The reader's rating of an answer, if they gave one (kept apart: writing a message never
    /// sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<MessageRating>,
}

impl StoredMessage {
    /// A message with a fresh id, stamped now, citing nothing and costing nothing: the fields
    /// a caller needs set differently it sets with struct update syntax.
    pub fn new(role: Speaker, content: &str, status: AnswerStatus) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            seq: 0,
            role,
            content: content.into(),
            citations: Vec::new(),
            unsupported: Vec::new(),
            standalone_query: None,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            status,
            created_at: base::types::now_ms(),
            rating: None,
        }
    }
}

/// Conversations and their messages. Every call names the owner: another user's conversation is
/// simply not there.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn create_conversation(&self, user_id: &str, c: &ConversationSummary) -> Result<()>;
    /// Newest first.
    async fn conversations(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ConversationSummary>>;
    async fn conversation(&self, user_id: &str, id: &str) -> Result<Option<ConversationSummary>>;
    async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>>;
    /// One message of a conversation.
    async fn message(&self, conversation_id: &str, id: &str) -> Result<Option<StoredMessage>>;
    async fn rename_conversation(&self, user_id: &str, id: &str, title: &str) -> Result<bool>;
    async fn delete_conversation(&self, user_id: &str, id: &str) -> Result<bool>;
    /// Conversations whose title or any message contains `query` (case-insensitive), newest first.
    async fn search_conversations(
        &self,
        user_id: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>>;
    /// Appends messages after the last one (their `seq` is assigned here) and touches the
    /// conversation.
    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: &[StoredMessage],
    ) -> Result<()>;
    /// The answer cache's epoch, the same for every server of the deployment (0 until moved).
    async fn answer_cache_epoch(&self) -> Result<i64>;
    /// Moves the epoch on, so every server drops the answers it cached before; the new epoch.
    async fn move_answer_cache_epoch(&self) -> Result<i64>;
    /// Keeps a rating (replacing the answer's earlier one, whose first time it keeps).
    async fn rate(&self, feedback: &Feedback) -> Result<()>;
    /// Removes the user's rating of a message of their conversation; whether there was one.
    async fn unrate(&self, user_id: &str, conversation_id: &str, message_id: &str) -> Result<bool>;
    /// The ratings of answers citing each collection, by model.
    async fn rating_summary(&self) -> Result<Vec<RatingSummary>>;
    /// Ratings of answers citing any of `collections` (all when empty), oldest first.
    async fn ratings(&self, collections: &[String]) -> Result<Vec<Feedback>>;
}
