//! Answering: conversations, the retrieval-augmented answer streamed as events, citations and
//! their check, usage and cost. Every surface (REST, the OpenAI-compatible endpoint, MCP) asks
//! through [`Chat::start`].

pub mod answer;
pub mod provider;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::warn;

use crate::accounts::Principal;
use crate::config::{ChatConfig, ProviderConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::knowledge::{Knowledge, SearchRequest};
use crate::limits::Limits;
use crate::store::{ConversationStore, ConversationSummary, StoredMessage};
use crate::types::{CollectionName, QueryText, SearchMode, TopK, content_hash, now_ms};
use answer::{Citation, CitationCheck, MarkerFilter};
use provider::{Llm, LlmEvent, Turn};

/// The largest offset a conversation list accepts.
pub const MAX_OFFSET: usize = 1_000_000;
/// Tokens of conversation the condensing model is shown at most (the latest turns).
const CONDENSE_HISTORY_TOKENS: usize = 2_000;
/// Characters of a passage shown as a citation's snippet.
const SNIPPET_CHARS: usize = 280;
/// How long a model may take to condense a follow-up before the rule is used instead.
const CONDENSE_TIMEOUT: Duration = Duration::from_secs(5);
const CACHE_CAPACITY: usize = 1_000;

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

#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
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

/// Collects a started answer's events into the whole answer (or its error).
pub async fn collect(mut rx: mpsc::Receiver<ChatEvent>) -> Result<Answer> {
    let mut meta = None;
    let mut text = String::new();
    let mut citations = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            ChatEvent::Meta(m) => meta = Some(m),
            ChatEvent::Citations(c) => citations = c,
            ChatEvent::Delta(d) => text.push_str(&d),
            ChatEvent::Error { code, message } => return Err(Error::from_code(code, message)),
            ChatEvent::Done(done) => {
                let meta =
                    meta.ok_or_else(|| Error::Internal("an answer came without its meta".into()))?;
                let cited = citations
                    .into_iter()
                    .filter(|c: &Citation| done.citation_check.cited.contains(&c.n))
                    .collect();
                return Ok(Answer {
                    meta,
                    text,
                    cited,
                    done: *done,
                });
            }
        }
    }
    Err(Error::Internal("the answer ended without finishing".into()))
}

#[derive(Debug, Clone)]
struct CachedAnswer {
    at: Instant,
    citations: Vec<Citation>,
    text: String,
    check: CitationCheck,
    model: String,
    provider: Option<String>,
    extractive: bool,
}

pub struct Chat {
    knowledge: Arc<Knowledge>,
    conversations: Arc<dyn ConversationStore>,
    limits: Arc<Limits>,
    llm: Option<Llm>,
    config: ChatConfig,
    cache: Mutex<HashMap<String, CachedAnswer>>,
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
        .filter(|m| m.status == "complete")
        .map(|m| Turn {
            role: m.role.clone(),
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
#[derive(Debug, Clone, Serialize)]
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
    collections: Option<Vec<CollectionName>>,
    tx: mpsc::Sender<ChatEvent>,
}

/// What the model is asked in one turn.
struct Exchange<'a> {
    instructions: &'a [(String, String)],
    citations: &'a [Citation],
    history: &'a [Turn],
    question: &'a str,
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
    status: &'static str,
    /// Why the answer stopped early (`status` is then `error`); reported after it is stored.
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
        Self {
            knowledge,
            conversations,
            limits,
            llm,
            config,
            cache: Mutex::new(HashMap::new()),
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

    // ---- conversations -----------------------------------------------------------------------

    /// A page of the caller's conversations, newest first: `limit` 1-100, `offset` at most
    /// [`MAX_OFFSET`] (both checked here, so no store sees a value it cannot take).
    pub async fn conversations(
        &self,
        principal: &Principal,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ConversationSummary>> {
        if !(1..=100).contains(&limit) {
            return Err(Error::InvalidInput("limit must be 1-100".into()));
        }
        if offset > MAX_OFFSET {
            return Err(Error::InvalidInput(format!(
                "offset must be at most {MAX_OFFSET}"
            )));
        }
        self.conversations
            .conversations(&principal.user.id, limit, offset)
            .await
    }

    async fn owned(&self, principal: &Principal, id: &str) -> Result<ConversationSummary> {
        self.conversations
            .conversation(&principal.user.id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no conversation {id}")))
    }

    pub async fn conversation(&self, principal: &Principal, id: &str) -> Result<Conversation> {
        let summary = self.owned(principal, id).await?;
        let messages = self.conversations.messages(id).await?;
        Ok(Conversation { summary, messages })
    }

    pub async fn rename(&self, principal: &Principal, id: &str, title: &str) -> Result<()> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(Error::InvalidInput("a title needs 1-200 characters".into()));
        }
        if self
            .conversations
            .rename_conversation(&principal.user.id, id, title)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no conversation {id}")))
        }
    }

    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<()> {
        if self
            .conversations
            .delete_conversation(&principal.user.id, id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no conversation {id}")))
        }
    }

    pub async fn search(
        &self,
        principal: &Principal,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::InvalidInput("the search text q is empty".into()));
        }
        self.conversations
            .search_conversations(&principal.user.id, query, limit.clamp(1, 100))
            .await
    }

    // ---- answering ---------------------------------------------------------------------------

    /// Accepts a question (checking it, the quota, the conversation and the collections) and
    /// starts answering it in the background. The answer streams through the receiver; dropping
    /// the receiver cancels the answer, and the upstream model call with it.
    pub async fn start(
        self: &Arc<Self>,
        principal: Principal,
        request: ChatRequest,
    ) -> Result<mpsc::Receiver<ChatEvent>> {
        // Checked as retrieval will check it, before anything is stored: a question that
        // cannot be searched is refused here, not answered with an error after being kept.
        QueryText::parse(&request.message)?;
        if let Some(model) = &request.model {
            let known = self.models();
            if !known.contains(model) {
                return Err(Error::InvalidInput(format!(
                    "unknown model {model:?}: this server answers with {}",
                    known.join(", ")
                )));
            }
        }
        self.limits.ensure_quota(&principal).await?;
        let conversation = match &request.conversation_id {
            Some(id) => Some(self.owned(&principal, id).await?),
            None => None,
        };
        let history = match &conversation {
            Some(c) => turns_of(&self.conversations.messages(&c.id).await?),
            None => request.history.clone(),
        };
        let collections = match (&request.collections, &conversation) {
            (Some(names), _) => Some(names.clone()),
            (None, Some(c)) if !c.collections.is_empty() => Some(
                c.collections
                    .iter()
                    .map(|n| CollectionName::parse(n))
                    .collect::<Result<_>>()?,
            ),
            _ => None,
        };
        if let Some(names) = &collections {
            let readable = self.knowledge.readable_collections(&principal).await?;
            if let Some(missing) = names
                .iter()
                .find(|n| !readable.iter().any(|r| r.name == n.as_str()))
            {
                return Err(Error::NotFound(format!("unknown collection {missing}")));
            }
        }
        let (tx, rx) = mpsc::channel(64);
        let job = Job {
            principal,
            request,
            conversation,
            history,
            collections,
            tx,
        };
        let chat = Arc::clone(self);
        let task = async move {
            let tx = job.tx.clone();
            if let Err(e) = chat.run(job).await {
                if e.code() == ErrorCode::Internal {
                    warn!(error = %e, "answer failed");
                }
                let _ = tx
                    .send(ChatEvent::Error {
                        code: e.code(),
                        message: e.public_message(),
                    })
                    .await;
            }
        };
        // the answer's log lines carry the request's span (its request id)
        tokio::spawn(tracing::Instrument::instrument(
            task,
            tracing::Span::current(),
        ));
        Ok(rx)
    }

    /// [`Chat::start`], collected: the whole answer for surfaces that do not stream.
    pub async fn answer(
        self: &Arc<Self>,
        principal: Principal,
        request: ChatRequest,
    ) -> Result<Answer> {
        collect(self.start(principal, request).await?).await
    }

    /// The standalone query for a follow-up, how it was made, and the tokens a model spent on
    /// it. Whatever comes back is a valid query (the model's rewrite or the rule's join is
    /// dropped or cut when it is not).
    async fn condense(
        &self,
        message: &str,
        history: &[Turn],
    ) -> (String, &'static str, TokenUsage) {
        let mut usage = TokenUsage::default();
        if history.is_empty() {
            return (message.to_owned(), "none", usage);
        }
        if let Some(llm) = &self.llm {
            let prompt = answer::condense_prompt(message, history, CONDENSE_HISTORY_TOKENS);
            let attempt = tokio::time::timeout(CONDENSE_TIMEOUT, async {
                let mut started = llm.start(&prompt, None).await.ok()?;
                let mut text = String::new();
                let mut reported = TokenUsage::default();
                while let Some(Ok(event)) = started.events.next().await {
                    match event {
                        LlmEvent::Delta(d) => text.push_str(&d),
                        LlmEvent::Usage {
                            prompt_tokens,
                            completion_tokens,
                        } => {
                            reported.prompt_tokens = reported.prompt_tokens.max(prompt_tokens);
                            reported.completion_tokens =
                                reported.completion_tokens.max(completion_tokens);
                        }
                    }
                }
                Some((text, reported))
            })
            .await;
            if let Ok(Some((text, reported))) = attempt {
                usage = answer::usage_of(&prompt, &text, reported);
                let text = text.trim().trim_matches('"').trim();
                if let Ok(query) = QueryText::parse(text) {
                    return (query.as_str().to_owned(), "model", usage);
                }
            }
        }
        match answer::condense_by_rule(message, history, QueryText::MAX_BYTES) {
            Some(q) => (q, "rule", usage),
            None => (message.to_owned(), "none", usage),
        }
    }

    fn cached(&self, key: &str) -> Option<CachedAnswer> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = Duration::from_secs(self.config.cache_ttl_secs);
        cache.retain(|_, v| v.at.elapsed() < ttl);
        cache.get(key).cloned()
    }

    fn remember(&self, key: String, answer: CachedAnswer) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, v)| v.at)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(key, answer);
    }

    async fn run(&self, job: Job) -> Result<()> {
        let started = Instant::now();
        let message = job.request.message.trim().to_owned();
        let (standalone, condensed_by, condense_usage) =
            self.condense(&message, &job.history).await;

        let cache_key = self.cache_key(&job).await?;
        let hit = cache_key.as_deref().and_then(|k| self.cached(k));

        // Retrieval and storing the question (before any answer) run side by side.
        let retrieval_started = Instant::now();
        let retrieve = async {
            let citations = match &hit {
                Some(h) => h.citations.clone(),
                None => self.retrieve(&job, &standalone).await?,
            };
            Ok::<_, Error>((citations, retrieval_started.elapsed().as_millis() as u64))
        };
        let user_message_id = uuid::Uuid::new_v4().to_string();
        let store_question = self.store_question(&job, &message, &standalone, &user_message_id);
        let (retrieved, conversation_id) = tokio::join!(retrieve, store_question);
        let conversation_id = conversation_id?;
        let (citations, retrieval_ms) = match retrieved {
            Ok(r) => r,
            Err(e) => {
                // the question is kept: so is the fact that it got no answer
                if let Some(id) = &conversation_id {
                    self.store_failed_reply(id, &e, started).await;
                }
                return Err(e);
            }
        };
        let message_id = uuid::Uuid::new_v4().to_string();
        let extractive = hit.as_ref().map_or(self.llm.is_none(), |h| h.extractive);
        let meta = Meta {
            conversation_id: conversation_id.clone(),
            message_id: message_id.clone(),
            user_message_id: conversation_id.as_ref().map(|_| user_message_id),
            standalone_query: standalone.clone(),
            condensed_by,
            extractive,
            cached: hit.is_some(),
        };
        let tx = &job.tx;
        let mut open = tx.send(ChatEvent::Meta(meta)).await.is_ok()
            && tx
                .send(ChatEvent::Citations(citations.clone()))
                .await
                .is_ok();

        let outcome = if !open {
            Outcome {
                text: String::new(),
                usage: TokenUsage::default(),
                model: String::new(),
                provider: None,
                first_token_ms: 0,
                removed: Vec::new(),
                status: "cancelled",
                error: None,
            }
        } else if let Some(h) = &hit {
            open = tx.send(ChatEvent::Delta(h.text.clone())).await.is_ok();
            Outcome {
                text: h.text.clone(),
                usage: TokenUsage::default(),
                model: h.model.clone(),
                provider: None,
                first_token_ms: started.elapsed().as_millis() as u64,
                removed: h.check.removed_markers.clone(),
                status: if open { "complete" } else { "cancelled" },
                error: None,
            }
        } else if citations.is_empty() {
            let text = "I found nothing in the knowledge base about this, so I cannot answer it \
                        from the documents."
                .to_owned();
            open = tx.send(ChatEvent::Delta(text.clone())).await.is_ok();
            Outcome {
                text,
                usage: TokenUsage::default(),
                model: self
                    .llm
                    .as_ref()
                    .map_or("extractive".into(), |l| l.primary().model.clone()),
                provider: None,
                first_token_ms: started.elapsed().as_millis() as u64,
                removed: Vec::new(),
                status: if open { "complete" } else { "cancelled" },
                error: None,
            }
        } else {
            match &self.llm {
                None => {
                    self.stream_extractive(&standalone, &citations, tx, started)
                        .await
                }
                Some(llm) => {
                    let instructions = self.instructions(&citations).await?;
                    let turn = Exchange {
                        instructions: &instructions,
                        citations: &citations,
                        history: &job.history,
                        question: &message,
                        model: job.request.model.as_deref(),
                    };
                    self.stream_model(llm, turn, tx, started).await?
                }
            }
        };

        let mut outcome = outcome;
        outcome.usage = outcome.usage.plus(condense_usage);
        let check = answer::check_citations(
            &outcome.text,
            &citations,
            self.config.support_threshold,
            outcome.removed.clone(),
        );
        let cost_usd = cost(outcome.provider.as_ref(), outcome.usage);
        let tokens = &crate::metrics::Metrics::get().tokens;
        tokens
            .with_label_values(&["prompt"])
            .inc_by(outcome.usage.prompt_tokens.max(0) as u64);
        tokens
            .with_label_values(&["completion"])
            .inc_by(outcome.usage.completion_tokens.max(0) as u64);
        let total_ms = started.elapsed().as_millis() as u64;
        // Usage first: what was spent counts even if the conversation is gone by now.
        self.limits
            .record(&job.principal, outcome.usage.total_tokens, cost_usd)
            .await?;
        if let Some(id) = &conversation_id {
            let cited: Vec<&Citation> = citations
                .iter()
                .filter(|c| check.cited.contains(&c.n))
                .collect();
            let reply = StoredMessage {
                id: message_id.clone(),
                seq: 0,
                role: "assistant".into(),
                content: outcome.text.clone(),
                citations: serde_json::to_value(&cited).unwrap_or_default(),
                standalone_query: None,
                model: Some(outcome.model.clone()),
                prompt_tokens: outcome.usage.prompt_tokens,
                completion_tokens: outcome.usage.completion_tokens,
                cost_usd,
                latency_ms: total_ms as i64,
                status: outcome.status.into(),
                created_at: now_ms(),
            };
            if let Err(e) = self.conversations.append_messages(id, &[reply]).await {
                // deleted while the answer streamed: the answer is still delivered
                if e.code() != ErrorCode::NotFound {
                    return Err(e);
                }
                warn!(conversation = %id, "the conversation was deleted during its answer");
            }
        }
        if let Some(key) = cache_key
            && hit.is_none()
            && outcome.status == "complete"
        {
            self.remember(
                key,
                CachedAnswer {
                    at: Instant::now(),
                    citations: citations.clone(),
                    text: outcome.text.clone(),
                    check: check.clone(),
                    model: outcome.model.clone(),
                    provider: outcome.provider.as_ref().map(|p| p.name.clone()),
                    extractive,
                },
            );
        }
        let done = Done {
            message_id,
            model: outcome.model,
            provider: outcome
                .provider
                .map(|p| p.name)
                .or_else(|| hit.as_ref().and_then(|h| h.provider.clone())),
            extractive,
            cached: hit.is_some(),
            usage: outcome.usage,
            cost_usd,
            timings: Timings {
                retrieval_ms,
                first_token_ms: outcome.first_token_ms,
                total_ms,
            },
            citation_check: check,
        };
        if let Some(e) = outcome.error {
            return Err(e);
        }
        let _ = tx.send(ChatEvent::Done(Box::new(done))).await;
        Ok(())
    }

    /// The cache key of a first question (`None` when the cache is off or history matters):
    /// the model, the searched collections' versions (any ingestion or deletion changes them)
    /// and the question.
    async fn cache_key(&self, job: &Job) -> Result<Option<String>> {
        if !self.config.cache_enabled || !job.history.is_empty() {
            return Ok(None);
        }
        let readable = self.knowledge.readable_collections(&job.principal).await?;
        let versions: String = readable
            .iter()
            .filter(|c| {
                job.collections
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|n| n.as_str() == c.name))
            })
            .map(|c| format!("{}@{};", c.name, c.version))
            .collect();
        let model = match (&job.request.model, &self.llm) {
            (Some(m), _) => m.as_str(),
            (None, Some(llm)) => llm.primary().model.as_str(),
            (None, None) => "extractive",
        };
        let question = job.request.message.trim().to_lowercase();
        Ok(Some(content_hash(
            format!("{model}\n{versions}\n{question}").as_bytes(),
        )))
    }

    /// The numbered sources for a standalone query, from what the caller may read.
    async fn retrieve(&self, job: &Job, standalone: &str) -> Result<Vec<Citation>> {
        let results = self
            .knowledge
            .search_as(
                &job.principal,
                &SearchRequest {
                    query: QueryText::parse(standalone)?,
                    collections: job.collections.clone(),
                    mode: SearchMode::Hybrid,
                    k: TopK::new(self.config.sources)?,
                },
            )
            .await?;
        Ok(results
            .hits
            .into_iter()
            .enumerate()
            .map(|(i, h)| Citation {
                n: i + 1,
                snippet: h.text.chars().take(SNIPPET_CHARS).collect(),
                title: h.title,
                source: h.source,
                location: h.location,
                location_detail: h.location_detail,
                chunk_id: h.chunk_id,
                document_id: h.document_id,
                collection: h.collection,
                score: h.score,
                text: h.text,
            })
            .collect())
    }

    /// Stores the question (creating the conversation for a first one); the conversation's id,
    /// or `None` when the exchange is not kept.
    async fn store_question(
        &self,
        job: &Job,
        message: &str,
        standalone: &str,
        message_id: &str,
    ) -> Result<Option<String>> {
        if !job.request.persist {
            return Ok(None);
        }
        let id = match &job.conversation {
            Some(c) => c.id.clone(),
            None => {
                let now = now_ms();
                let summary = ConversationSummary {
                    id: uuid::Uuid::new_v4().to_string(),
                    title: answer::title_from(message),
                    collections: job
                        .collections
                        .iter()
                        .flatten()
                        .map(|c| c.to_string())
                        .collect(),
                    created_at: now,
                    updated_at: now,
                };
                self.conversations
                    .create_conversation(&job.principal.user.id, &summary)
                    .await?;
                summary.id
            }
        };
        let question = StoredMessage {
            id: message_id.to_owned(),
            seq: 0,
            role: "user".into(),
            content: message.to_owned(),
            citations: serde_json::Value::Array(Vec::new()),
            standalone_query: Some(standalone.to_owned()),
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            status: "complete".into(),
            created_at: now_ms(),
        };
        self.conversations.append_messages(&id, &[question]).await?;
        Ok(Some(id))
    }

    /// The domain instructions of the collections the sources come from.
    /// Records that a kept question got no answer (best effort: the error is what the caller
    /// hears either way).
    async fn store_failed_reply(&self, conversation_id: &str, error: &Error, started: Instant) {
        let reply = StoredMessage {
            id: uuid::Uuid::new_v4().to_string(),
            seq: 0,
            role: "assistant".into(),
            content: String::new(),
            citations: serde_json::Value::Array(Vec::new()),
            standalone_query: None,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: started.elapsed().as_millis() as i64,
            status: "error".into(),
            created_at: now_ms(),
        };
        if let Err(e) = self
            .conversations
            .append_messages(conversation_id, &[reply])
            .await
        {
            warn!(error = %e, cause = %error, "could not record a failed answer");
        }
    }

    /// The domain instructions of the collections the sources come from, by collection.
    async fn instructions(&self, citations: &[Citation]) -> Result<Vec<(String, String)>> {
        let mut names: Vec<&str> = citations.iter().map(|c| c.collection.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let text = self.knowledge.instructions(name).await?;
            if !text.trim().is_empty() {
                out.push((name.to_owned(), text));
            }
        }
        Ok(out)
    }

    async fn stream_extractive(
        &self,
        question: &str,
        citations: &[Citation],
        tx: &mpsc::Sender<ChatEvent>,
        started: Instant,
    ) -> Outcome {
        let text = answer::extractive_answer(question, citations);
        let mut status = "complete";
        let mut first_token_ms = 0;
        for (i, word) in text.split_inclusive(' ').enumerate() {
            if i == 0 {
                first_token_ms = started.elapsed().as_millis() as u64;
            }
            if tx.send(ChatEvent::Delta(word.to_owned())).await.is_err() {
                status = "cancelled";
                break;
            }
        }
        Outcome {
            text,
            usage: TokenUsage::default(),
            model: "extractive".into(),
            provider: None,
            first_token_ms,
            removed: Vec::new(),
            status,
            error: None,
        }
    }

    async fn stream_model(
        &self,
        llm: &Llm,
        turn: Exchange<'_>,
        tx: &mpsc::Sender<ChatEvent>,
        started: Instant,
    ) -> Result<Outcome> {
        let budget = llm.budget(turn.model);
        let citations = turn.citations;
        let prompt = answer::answer_prompt(
            turn.instructions,
            citations,
            turn.history,
            turn.question,
            budget.context_tokens,
            budget.max_output_tokens,
        );
        let failed = |error: Error, text: String| Outcome {
            text,
            usage: TokenUsage::default(),
            model: turn.model.unwrap_or(&llm.primary().model).to_owned(),
            provider: None,
            first_token_ms: 0,
            removed: Vec::new(),
            status: "error",
            error: Some(error),
        };
        let mut stream = match llm.start(&prompt, turn.model).await {
            Ok(s) => s,
            Err(e) => return Ok(failed(e, String::new())),
        };
        let first_token_ms = started.elapsed().as_millis() as u64;
        let mut filter = MarkerFilter::new(citations.len());
        let mut text = String::new();
        let mut usage = TokenUsage::default();
        let mut status = "complete";
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(stream.deadline, stream.events.next()) => next,
                // The client went away: stop reading, which closes the upstream connection.
                _ = tx.closed() => { status = "cancelled"; break; }
            };
            match next {
                Err(_) => {
                    let e = Error::Upstream(format!(
                        "{} did not finish the answer in time",
                        stream.provider.name
                    ));
                    return Ok(failed(e, text));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let e = Error::Upstream(format!(
                        "{} failed mid-answer: {}",
                        stream.provider.name,
                        e.message()
                    ));
                    return Ok(failed(e, text));
                }
                Ok(Some(Ok(LlmEvent::Usage {
                    prompt_tokens,
                    completion_tokens,
                }))) => {
                    usage.prompt_tokens = usage.prompt_tokens.max(prompt_tokens);
                    usage.completion_tokens = usage.completion_tokens.max(completion_tokens);
                }
                Ok(Some(Ok(LlmEvent::Delta(delta)))) => {
                    let shown = filter.push(&delta);
                    if !shown.is_empty() {
                        text.push_str(&shown);
                        if tx.send(ChatEvent::Delta(shown)).await.is_err() {
                            status = "cancelled";
                            break;
                        }
                    }
                }
            }
        }
        let rest = filter.finish();
        if !rest.is_empty() {
            text.push_str(&rest);
            let _ = tx.send(ChatEvent::Delta(rest)).await;
        }
        let usage = answer::usage_of(&prompt, &text, usage);
        Ok(Outcome {
            text,
            usage,
            model: stream.provider.model.clone(),
            provider: Some(stream.provider),
            first_token_ms,
            removed: std::mem::take(&mut filter.removed),
            status,
            error: None,
        })
    }
}
