//! Readers' ratings of answers: a thumbs up or down on an answer, with an optional comment, kept
//! with what was rated (the question, the model, the passages the answer cited). Admins read the
//! ratings per collection and model; `lariat eval feedback` turns the well-rated answers into
//! retrieval judgements, so a deployment's own readers become its benchmark.

use serde::{Deserialize, Serialize};

use base::error::{Error, Result};
use base::principal::{Principal, Role, Scope};
use base::types::now_ms;

use crate::Chat;
use crate::llm::Speaker;

/// Longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// A reader's verdict on an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

base::words!(Rating, "rating", { Up => "up", Down => "down" });

/// A reader's rating of an answer: given over REST or the web, shown with the answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MessageRating {
    pub rating: Rating,
    pub comment: String,
}

/// A passage the rated answer cited.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RatedPassage {
    /// The answer's citation number.
    pub n: usize,
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
}

/// One answer's rating, with what was rated.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Feedback {
    pub message_id: String,
    pub conversation_id: String,
    pub user_id: String,
    #[serde(flatten)]
    pub given: MessageRating,
    /// The question the answer answered, as the reader asked it.
    pub question: String,
    pub model: String,
    pub passages: Vec<RatedPassage>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Ratings of the answers that cited a collection's passages, by the model that answered.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RatingSummary {
    pub collection: String,
    pub model: String,
    pub up: i64,
    pub down: i64,
    /// Ratings that came with a comment.
    pub comments: i64,
}

impl MessageRating {
    /// A rating as a reader gives it, parsed at the boundary.
    pub fn parse(rating: &str, comment: Option<&str>) -> Result<Self> {
        let comment = comment.unwrap_or_default().trim().to_owned();
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(Error::InvalidInput(format!(
                "a comment holds at most {MAX_COMMENT_CHARS} characters"
            )));
        }
        if comment
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(Error::InvalidInput(
                "a comment cannot hold control characters".into(),
            ));
        }
        Ok(Self {
            rating: Rating::parse(rating)?,
            comment,
        })
    }
}

impl Chat {
    /// Rates one of the caller's answers (again: the new rating replaces the old). Only an
    /// answer that finished in the caller's own conversation can be rated.
    pub async fn rate(
        &self,
        principal: &Principal,
        conversation_id: &str,
        message_id: &str,
        rating: MessageRating,
    ) -> Result<Feedback> {
        principal.require_scope(Scope::Chat)?;
        let user = &principal.user.id;
        let missing = || Error::NotFound("no such answer in your conversations".into());
        self.conversations
            .conversation(user, conversation_id)
            .await?
            .ok_or_else(missing)?;
        let messages = self.conversations.messages(conversation_id).await?;
        let at = messages
            .iter()
            .position(|m| m.id == message_id && m.role == Speaker::Assistant)
            .ok_or_else(missing)?;
        let answer = &messages[at];
        let question = messages[..at]
            .iter()
            .rev()
            .find(|m| m.role == Speaker::User)
            .map(|m| m.content.clone())
            .ok_or_else(missing)?;
        let now = now_ms();
        let feedback = Feedback {
            message_id: answer.id.clone(),
            conversation_id: conversation_id.to_owned(),
            user_id: user.clone(),
            given: rating,
            question,
            model: answer.model.clone().unwrap_or_default(),
            passages: answer
                .citations
                .iter()
                .map(|c| RatedPassage {
                    n: c.n,
                    chunk_id: c.passage.chunk_id.clone(),
                    document_id: c.passage.document_id.clone(),
                    collection: c.passage.collection.clone(),
                })
                .collect(),
            created_at: now,
            updated_at: now,
        };
        self.conversations.rate(&feedback).await?;
        Ok(feedback)
    }

    /// Takes back the caller's rating of an answer; whether there was one.
    pub async fn unrate(
        &self,
        principal: &Principal,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<bool> {
        principal.require_scope(Scope::Chat)?;
        self.conversations
            .unrate(&principal.user.id, conversation_id, message_id)
            .await
    }

    /// The ratings per collection and model (admins).
    pub async fn rating_summary(&self, principal: &Principal) -> Result<Vec<RatingSummary>> {
        principal.require(Role::Admin)?;
        self.conversations.rating_summary().await
    }

    /// Every rating of answers that cited `collections` (all, when empty), oldest first: what
    /// `lariat eval feedback` turns into judgements (admins).
    pub async fn ratings(
        &self,
        principal: &Principal,
        collections: &[String],
    ) -> Result<Vec<Feedback>> {
        principal.require(Role::Admin)?;
        self.conversations.ratings(collections).await
    }
}

/// A question readers rated well, with the documents its good answers cited: one judgement of
/// a deployment's own retrieval benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub question: String,
    /// Document ids, in the order first cited.
    pub documents: Vec<String>,
    /// The collections those documents are in.
    pub collections: Vec<String>,
}

/// Well-rated answers as retrieval judgements: each distinct question (ignoring case and
/// spacing) with the documents its up-rated answers cited. A question also rated down is left
/// out: its readers disagree on what answers it.
pub fn judgements(ratings: &[Feedback]) -> Vec<Judged> {
    let key = |q: &str| {
        q.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let disputed: std::collections::HashSet<String> = ratings
        .iter()
        .filter(|f| f.given.rating == Rating::Down)
        .map(|f| key(&f.question))
        .collect();
    let mut out: Vec<Judged> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in ratings.iter().filter(|f| f.given.rating == Rating::Up) {
        let k = key(&f.question);
        if disputed.contains(&k) || f.passages.is_empty() {
            continue;
        }
        let i = *at.entry(k).or_insert_with(|| {
            out.push(Judged {
                question: f.question.trim().to_owned(),
                documents: Vec::new(),
                collections: Vec::new(),
            });
            out.len() - 1
        });
        let judged = &mut out[i];
        for p in &f.passages {
            if !judged.documents.contains(&p.document_id) {
                judged.documents.push(p.document_id.clone());
            }
            if !judged.collections.contains(&p.collection) {
                judged.collections.push(p.collection.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_parse_at_the_boundary() {
        assert_eq!(
            MessageRating::parse("up", Some("  spot on \n")).unwrap(),
            MessageRating {
                rating: Rating::Up,
                comment: "spot on".into()
            }
        );
        assert_eq!(MessageRating::parse("down", None).unwrap().comment, "");
        for bad in ["", "UP", "sideways", "1"] {
            let e = MessageRating::parse(bad, None).unwrap_err();
            assert!(e.to_string().contains("up or down"), "{e}");
        }
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        assert!(MessageRating::parse("up", Some(&long)).is_err());
        assert!(MessageRating::parse("up", Some(&"é".repeat(MAX_COMMENT_CHARS))).is_ok());
        assert!(MessageRating::parse("up", Some("bell\u{7}")).is_err());
    }

    fn rated(question: &str, rating: Rating, documents: &[&str]) -> Feedback {
        Feedback {
            message_id: format!("m-{question}-{documents:?}"),
            conversation_id: "c".into(),
            user_id: "u".into(),
            given: MessageRating {
                rating,
                comment: String::new(),
            },
            question: question.into(),
            model: "m".into(),
            passages: documents
                .iter()
                .enumerate()
                .map(|(i, d)| RatedPassage {
                    n: i + 1,
                    chunk_id: format!("{d}-chunk"),
                    document_id: (*d).into(),
                    collection: "rodeo".into(),
                })
                .collect(),
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn well_rated_answers_become_judgements() {
        let ratings = [
            rated("How long is a heel rope?", Rating::Up, &["ropes", "rules"]),
            // the same question again, spelt differently: its documents join
            rated(
                " how long is a  HEEL rope? ",
                Rating::Up,
                &["rules", "gear"],
            ),
            // a question readers disagree on is left out
            rated("Who judges?", Rating::Up, &["judging"]),
            rated("who judges?", Rating::Down, &["judging"]),
            // a bad answer alone says nothing about what is relevant; nor does an uncited one
            rated("What is a hazer?", Rating::Down, &["steer"]),
            rated("Hello?", Rating::Up, &[]),
        ];
        assert_eq!(
            judgements(&ratings),
            vec![Judged {
                question: "How long is a heel rope?".into(),
                documents: vec!["ropes".into(), "rules".into(), "gear".into()],
                collections: vec!["rodeo".into()],
            }]
        );
        assert!(judgements(&[]).is_empty());
    }
}
