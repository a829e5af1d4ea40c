//! The answer run: a question accepted (checked, quota, conversation, collections), condensed,
//! answered from retrieved sources, checked, stored and accounted.

use super::*;

impl Chat {
    /// Accepts a question (checking it, the quota, the conversation and the collections) and
    /// starts answering it in the background. The answer streams through the receiver; dropping
    /// the receiver cancels the answer, and the upstream model call with it.
    pub async fn start(
        self: &Arc<Self>,
        principal: Principal,
        request: ChatRequest,
    ) -> Result<mpsc::Receiver<ChatEvent>> {
        principal.require_chat()?;
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
        // The caller's access, resolved once: the cache key and retrieval use the same list.
        let searched = self
            .knowledge
            .searched_collections(&principal, collections.as_deref())
            .await?;
        let (tx, rx) = mpsc::channel(64);
        let job = Job {
            principal,
            request,
            conversation,
            history,
            collections,
            searched,
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

    /// One answer, start to finish: condense the question, find its sources (or the cached
    /// answer) while the question is kept, tell the client what is coming, answer, correct and
    /// check the citations, account for it, keep the reply, and finish.
    async fn run(&self, job: Job) -> Result<()> {
        let started = Instant::now();
        let message = job.request.message.trim().to_owned();
        let (standalone, condensed_by, condense_usage) =
            self.condense(&message, &job.history).await;
        // Finding the sources is where an answer spends the server's cores (the query's
        // embedding, both searches, the question's rows): a few at a time, the others in line.
        // The semaphore is never closed.
        let turn = self.preparing.acquire().await.ok();
        let lookup = self.lookup(&job).await?;
        let hit = lookup.as_ref().and_then(|l| l.hit.clone());
        let found = self
            .find_sources(&job, &message, &standalone, hit.as_ref(), started)
            .await?;
        drop(turn);
        let extractive = hit.as_ref().map_or(self.llm.is_none(), |h| h.extractive);
        let meta = Meta {
            conversation_id: found.conversation_id.clone(),
            message_id: uuid::Uuid::new_v4().to_string(),
            user_message_id: found
                .conversation_id
                .as_ref()
                .map(|_| found.user_message_id.clone()),
            standalone_query: standalone.clone(),
            condensed_by,
            extractive,
            cached: hit.is_some(),
        };
        let message_id = meta.message_id.clone();
        let open = announce(&job.tx, meta, &found.citations).await;
        let mut outcome = if open {
            let sources = &found.citations;
            self.compose(&job, &message, &standalone, sources, hit.as_ref(), started)
                .await?
        } else {
            Outcome::cancelled()
        };
        outcome.usage = outcome.usage.plus(condense_usage);
        let check = self.check(&outcome, &found.citations);
        let total_ms = started.elapsed().as_millis() as u64;
        // Usage first: what was spent counts even if the conversation is gone by now.
        let cost_usd = self
            .account(&job.principal, &outcome, &check, &found.citations, total_ms)
            .await?;
        if let Some(id) = &found.conversation_id {
            let reply = StoredMessage {
                id: message_id.clone(),
                citations: cited(&found.citations, &check),
                unsupported: check.unsupported.clone(),
                model: Some(outcome.model.clone()),
                prompt_tokens: outcome.usage.prompt_tokens,
                completion_tokens: outcome.usage.completion_tokens,
                cost_usd,
                latency_ms: total_ms as i64,
                ..StoredMessage::new(Speaker::Assistant, &outcome.text, outcome.status)
            };
            self.keep_reply(id, reply).await?;
        }
        if let Some(lookup) = lookup
            && hit.is_none()
            && outcome.status == AnswerStatus::Complete
        {
            self.remember(
                lookup.key,
                CachedAnswer {
                    at: Instant::now(),
                    epoch: lookup.epoch,
                    owner: job.principal.user.id.clone(),
                    citations: found.citations.clone(),
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
                retrieval_ms: found.retrieval_ms,
                first_token_ms: outcome.first_token_ms,
                total_ms,
            },
            citation_check: check,
        };
        if let Some(e) = outcome.error {
            return Err(e);
        }
        let _ = job.tx.send(ChatEvent::Done(Box::new(done))).await;
        Ok(())
    }

    /// The sources (the cached answer's, or retrieved for `standalone`) while the question is
    /// kept in its conversation, side by side. When retrieval fails the question stays, with a
    /// failed reply after it.
    async fn find_sources(
        &self,
        job: &Job,
        message: &str,
        standalone: &str,
        hit: Option<&CachedAnswer>,
        started: Instant,
    ) -> Result<Found> {
        let retrieval_started = Instant::now();
        let retrieve = async {
            let citations = match hit {
                Some(h) => h.citations.clone(),
                None => self.retrieve(job, standalone).await?,
            };
            Ok::<_, Error>((citations, retrieval_started.elapsed().as_millis() as u64))
        };
        let user_message_id = uuid::Uuid::new_v4().to_string();
        let store_question = self.store_question(job, message, standalone, &user_message_id);
        let (retrieved, conversation_id) = tokio::join!(retrieve, store_question);
        let conversation_id = conversation_id?;
        match retrieved {
            Ok((citations, retrieval_ms)) => Ok(Found {
                conversation_id,
                user_message_id,
                citations,
                retrieval_ms,
            }),
            Err(e) => {
                if let Some(id) = &conversation_id {
                    self.store_failed_reply(id, &e, started).await;
                }
                Err(e)
            }
        }
    }

    /// The answer's text, streamed as it comes: the cached one, the admission that the
    /// documents hold nothing (or never name the quantity asked for), the extractive answer, or
    /// the model's.
    async fn compose(
        &self,
        job: &Job,
        message: &str,
        standalone: &str,
        citations: &[Citation],
        hit: Option<&CachedAnswer>,
        started: Instant,
    ) -> Result<Outcome> {
        let tx = &job.tx;
        let said = |text: String, model: String, removed: Vec<String>| async move {
            let open = tx.send(ChatEvent::Delta(text.clone())).await.is_ok();
            Outcome {
                text,
                usage: TokenUsage::default(),
                model,
                provider: None,
                first_token_ms: started.elapsed().as_millis() as u64,
                removed,
                reassigned: Vec::new(),
                status: if open {
                    AnswerStatus::Complete
                } else {
                    AnswerStatus::Cancelled
                },
                error: None,
            }
        };
        if let Some(h) = hit {
            return Ok(said(
                h.text.clone(),
                h.model.clone(),
                h.check.removed_markers.clone(),
            )
            .await);
        }
        // what the sources cannot hold is said without asking the model to guess
        let unanswerable = if citations.is_empty() {
            Some(NOTHING_FOUND.to_owned())
        } else {
            answer::unnamed_quantity(standalone, citations).map(|u| u.refusal())
        };
        if let Some(text) = unanswerable {
            let model = self
                .llm
                .as_ref()
                .map_or("extractive".into(), |l| l.primary().model.clone());
            return Ok(said(text, model, Vec::new()).await);
        }
        match &self.llm {
            None => Ok(self
                .stream_extractive(standalone, citations, tx, started)
                .await),
            Some(llm) => {
                let instructions = self.instructions(citations).await?;
                let turn = Exchange {
                    instructions: &instructions,
                    citations,
                    history: &job.history,
                    question: answer::Question {
                        asked: message,
                        standalone,
                    },
                    model: job.request.model.as_deref(),
                };
                self.stream_model(llm, turn, tx, started).await
            }
        }
    }

    /// Every sentence of the answer (a model's, its citations already put right as it
    /// streamed) checked against its passages.
    fn check(&self, outcome: &Outcome, citations: &[Citation]) -> CitationCheck {
        CitationCheck {
            reassigned: outcome.reassigned.clone(),
            ..grounding::check_citations(
                &outcome.text,
                citations,
                self.config.support_threshold,
                outcome.removed.clone(),
            )
        }
    }

    /// Counts the answer's tokens in the metrics and records its usage against the caller's
    /// plan; what it cost.
    async fn account(
        &self,
        principal: &Principal,
        outcome: &Outcome,
        check: &CitationCheck,
        citations: &[Citation],
        total_ms: u64,
    ) -> Result<f64> {
        let cost_usd = cost(outcome.provider.as_ref(), outcome.usage);
        let tokens = &base::metrics::Metrics::get().tokens;
        tokens
            .with_label_values(&["prompt"])
            .inc_by(outcome.usage.prompt_tokens.max(0) as u64);
        tokens
            .with_label_values(&["completion"])
            .inc_by(outcome.usage.completion_tokens.max(0) as u64);
        let first_provider = self.llm.as_ref().map(|l| l.primary().name.as_str());
        let cited_first = citations
            .iter()
            .find(|c| check.cited.contains(&c.n))
            .or(citations.first());
        self.limits
            .record(&UsageRecord {
                user_id: principal.user.id.clone(),
                api_key_id: principal.api_key_id.clone(),
                plan: principal.user.plan.clone(),
                model: if outcome.model.is_empty() {
                    "extractive".into()
                } else {
                    outcome.model.clone()
                },
                collection: cited_first.map_or_else(String::new, |c| c.passage.collection.clone()),
                prompt_tokens: outcome.usage.prompt_tokens,
                completion_tokens: outcome.usage.completion_tokens,
                cost_usd,
                latency_ms: total_ms as i64,
                outcome: outcome.status,
                fallback: outcome
                    .provider
                    .as_ref()
                    .is_some_and(|p| Some(p.name.as_str()) != first_provider),
            })
            .await?;
        Ok(cost_usd)
    }

    /// Appends the reply to its conversation; one deleted while the answer streamed is no error
    /// (the answer is still delivered).
    async fn keep_reply(&self, conversation_id: &str, reply: StoredMessage) -> Result<()> {
        match self
            .conversations
            .append_messages(conversation_id, &[reply])
            .await
        {
            Err(e) if e.code() != ErrorCode::NotFound => Err(e),
            Err(_) => {
                warn!(conversation = %conversation_id, "the conversation was deleted during its answer");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// The numbered sources for a standalone query, from the collections the question searches.
    async fn retrieve(&self, job: &Job, standalone: &str) -> Result<Vec<Citation>> {
        let results = self
            .knowledge
            .sources_in(
                job.searched.clone(),
                &SearchRequest {
                    query: QueryText::parse(standalone)?,
                    collections: None,
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
                score: h.score,
                snippet: base::plain_text(&h.passage.text)
                    .chars()
                    .take(SNIPPET_CHARS)
                    .collect(),
                passage: h.passage,
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
            standalone_query: Some(standalone.to_owned()),
            ..StoredMessage::new(Speaker::User, message, AnswerStatus::Complete)
        };
        self.conversations.append_messages(&id, &[question]).await?;
        Ok(Some(id))
    }

    /// The domain instructions of the collections the sources come from.
    /// Records that a kept question got no answer (best effort: the error is what the caller
    /// hears either way).
    async fn store_failed_reply(&self, conversation_id: &str, error: &Error, started: Instant) {
        let reply = StoredMessage {
            latency_ms: started.elapsed().as_millis() as i64,
            ..StoredMessage::new(Speaker::Assistant, "", AnswerStatus::Error)
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
        let mut names: Vec<&str> = citations
            .iter()
            .map(|c| c.passage.collection.as_str())
            .collect();
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
}

/// What the client is told when the documents hold nothing about the question.
const NOTHING_FOUND: &str =
    "I found nothing in the knowledge base about this, so I cannot answer it from the documents.";

/// A question's sources, and the conversation that keeps it.
struct Found {
    conversation_id: Option<String>,
    user_message_id: String,
    citations: Vec<Citation>,
    retrieval_ms: u64,
}

/// Tells the client what is coming (the answer's ids, then its sources); false when the client
/// has gone.
async fn announce(tx: &mpsc::Sender<ChatEvent>, meta: Meta, citations: &[Citation]) -> bool {
    tx.send(ChatEvent::Meta(meta)).await.is_ok()
        && tx
            .send(ChatEvent::Citations(citations.to_vec()))
            .await
            .is_ok()
}

/// The sources the answer cites.
fn cited(citations: &[Citation], check: &CitationCheck) -> Vec<Citation> {
    citations
        .iter()
        .filter(|c| check.cited.contains(&c.n))
        .cloned()
        .collect()
}

impl Outcome {
    /// No answer: the client left before it began.
    fn cancelled() -> Self {
        Self {
            text: String::new(),
            usage: TokenUsage::default(),
            model: String::new(),
            provider: None,
            first_token_ms: 0,
            removed: Vec::new(),
            reassigned: Vec::new(),
            status: AnswerStatus::Cancelled,
            error: None,
        }
    }
}
