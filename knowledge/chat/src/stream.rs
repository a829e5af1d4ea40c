//! Streaming an answer's text: the extractive answer word by word, a model's through the
//! marker filter and the citation corrector; and collecting a stream into a whole answer for surfaces that do not stream.

use super::*;
use crate::grounding::Corrector;

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

impl Chat {
    pub(super) async fn stream_extractive(
        &self,
        question: &str,
        citations: &[Citation],
        tx: &mpsc::Sender<ChatEvent>,
        started: Instant,
    ) -> Outcome {
        let text = answer::extractive_answer(question, citations);
        let mut status = AnswerStatus::Complete;
        let mut first_token_ms = 0;
        for (i, word) in text.split_inclusive(' ').enumerate() {
            if i == 0 {
                first_token_ms = started.elapsed().as_millis() as u64;
            }
            if tx.send(ChatEvent::Delta(word.to_owned())).await.is_err() {
                status = AnswerStatus::Cancelled;
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
            reassigned: Vec::new(),
            status,
            error: None,
        }
    }

    pub(super) async fn stream_model(
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
            &turn.question,
            budget.context_tokens,
            budget.max_output_tokens,
            budget.source_tokens,
        );
        let failed = |error: Error, text: String| Outcome {
            text,
            usage: TokenUsage::default(),
            model: turn.model.unwrap_or(&llm.primary().model).to_owned(),
            provider: None,
            first_token_ms: 0,
            removed: Vec::new(),
            reassigned: Vec::new(),
            status: AnswerStatus::Error,
            error: Some(error),
        };
        let mut stream = match llm.start(&prompt, turn.model).await {
            Ok(s) => s,
            Err(e) => return Ok(failed(e, String::new())),
        };
        let first_token_ms = started.elapsed().as_millis() as u64;
        let mut filter = MarkerFilter::new(citations.len());
        let mut corrector = Corrector::new(citations, self.config.support_threshold);
        let mut text = String::new();
        let mut usage = TokenUsage::default();
        let mut status = AnswerStatus::Complete;
        // why the model's stream broke off, if it did
        let mut broken = None;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(stream.deadline, stream.events.next()) => next,
                // The client went away: stop reading, which closes the upstream connection.
                _ = tx.closed() => { status = AnswerStatus::Cancelled; break; }
            };
            match next {
                Err(_) => {
                    broken = Some(Error::Upstream(format!(
                        "{} did not finish the answer in time",
                        stream.provider.name
                    )));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    broken = Some(Error::Upstream(format!(
                        "{} failed mid-answer: {}",
                        stream.provider.name,
                        e.message()
                    )));
                    break;
                }
                Ok(Some(Ok(LlmEvent::Usage {
                    prompt_tokens,
                    completion_tokens,
                }))) => {
                    usage.prompt_tokens = usage.prompt_tokens.max(prompt_tokens);
                    usage.completion_tokens = usage.completion_tokens.max(completion_tokens);
                }
                Ok(Some(Ok(LlmEvent::Delta(delta)))) => {
                    let shown = corrector.push(&filter.push(&delta));
                    if !shown.is_empty() {
                        text.push_str(&shown);
                        if tx.send(ChatEvent::Delta(shown)).await.is_err() {
                            status = AnswerStatus::Cancelled;
                            break;
                        }
                    }
                }
            }
        }
        text.push_str(&flush(&mut filter, &mut corrector, tx).await);
        let removed = std::mem::take(&mut filter.removed);
        let reassigned = corrector.reassigned;
        if let Some(e) = broken {
            // what was shown before the break is reported as it was corrected
            return Ok(Outcome {
                removed,
                reassigned,
                ..failed(e, text)
            });
        }
        let usage = answer::usage_of(&prompt, &text, usage);
        Ok(Outcome {
            text,
            usage,
            model: stream.provider.model.clone(),
            provider: Some(stream.provider),
            first_token_ms,
            removed,
            reassigned,
            status,
            error: None,
        })
    }
}

/// What the marker filter and the corrector still hold once the model's text ends (finished or
/// broken off), sent.
async fn flush(
    filter: &mut MarkerFilter,
    corrector: &mut Corrector,
    tx: &mpsc::Sender<ChatEvent>,
) -> String {
    let rest = corrector.push(&filter.finish()) + &corrector.finish();
    if !rest.is_empty() {
        let _ = tx.send(ChatEvent::Delta(rest.clone())).await;
    }
    rest
}
