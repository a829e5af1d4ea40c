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
        // A model's citations are put right where its passages say otherwise; what is kept
        // (and shown once the answer is done) is the corrected text.
        let mut corrected = None;
        let mut reassigned = Vec::new();
        if outcome.provider.is_some() {
            let assigned =
                answer::assign_citations(&outcome.text, &citations, self.config.support_threshold);
            if !assigned.reassigned.is_empty() {
                outcome.text = assigned.text;
                corrected = Some(outcome.text.clone());
                reassigned = assigned.reassigned;
            }
        }
        let check = CitationCheck {
            reassigned,
            ..answer::check_citations(
                &outcome.text,
                &citations,
                self.config.support_threshold,
                outcome.removed.clone(),
            )
        };
        let cost_usd = cost(outcome.provider.as_ref(), outcome.usage);
        let tokens = &base::metrics::Metrics::get().tokens;
        tokens
            .with_label_values(&["prompt"])
            .inc_by(outcome.usage.prompt_tokens.max(0) as u64);
        tokens
            .with_label_values(&["completion"])
            .inc_by(outcome.usage.completion_tokens.max(0) as u64);
        let total_ms = started.elapsed().as_millis() as u64;
        // Usage first: what was spent counts even if the conversation is gone by now.
        let first_provider = self.llm.as_ref().map(|l| l.primary().name.as_str());
        let cited_first = citations
            .iter()
            .find(|c| check.cited.contains(&c.n))
            .or(citations.first());
        self.limits
            .record(&UsageRecord {
                user_id: job.principal.user.id.clone(),
                api_key_id: job.principal.api_key_id.clone(),
                plan: job.principal.user.plan.clone(),
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
                outcome: outcome.status.to_owned(),
                fallback: outcome
                    .provider
                    .as_ref()
                    .is_some_and(|p| Some(p.name.as_str()) != first_provider),
            })
            .await?;
        if let Some(id) = &conversation_id {
            let cited: Vec<&Citation> = citations
                .iter()
                .filter(|c| check.cited.contains(&c.n))
                .collect();
            let reply = StoredMessage {
                id: message_id.clone(),
                citations: serde_json::to_value(&cited).unwrap_or_default(),
                unsupported: check.unsupported.clone(),
                model: Some(outcome.model.clone()),
                prompt_tokens: outcome.usage.prompt_tokens,
                completion_tokens: outcome.usage.completion_tokens,
                cost_usd,
                latency_ms: total_ms as i64,
                ..StoredMessage::new("assistant", &outcome.text, outcome.status)
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
                    owner: job.principal.user.id.clone(),
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
            text: corrected,
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

    /// The numbered sources for a standalone query, from what the caller may read.
    async fn retrieve(&self, job: &Job, standalone: &str) -> Result<Vec<Citation>> {
        let results = self
            .knowledge
            .sources_for(
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
                score: h.score,
                snippet: h.passage.text.chars().take(SNIPPET_CHARS).collect(),
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
            ..StoredMessage::new("user", message, "complete")
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
            ..StoredMessage::new("assistant", "", "error")
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
