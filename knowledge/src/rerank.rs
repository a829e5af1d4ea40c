//! Second-stage reranking: the top of the hybrid list rescored by a cross-encoder. The first
//! backend calls a rerank HTTP service: the Cohere-style API (Cohere, Jina, Infinity:
//! `{query, documents}` → `results[{index, relevance_score}]`) or text-embeddings-inference's
//! `/rerank` (`{query, texts}` → `[{index, score}]`).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{RerankApi, RerankConfig};
use base::error::{Error, Result};

#[async_trait]
pub trait Reranker: Send + Sync {
    /// One relevance score per document, in the order given.
    async fn rerank(&self, query: &str, documents: &[String]) -> Result<Vec<f32>>;
}

pub struct HttpReranker {
    client: reqwest::Client,
    config: RerankConfig,
    url: String,
}

impl std::fmt::Debug for HttpReranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpReranker")
            .field("url", &self.url)
            .finish()
    }
}

#[derive(Deserialize)]
struct CohereResponse {
    results: Vec<CohereResult>,
}

#[derive(Deserialize)]
struct CohereResult {
    index: usize,
    relevance_score: f32,
}

#[derive(Deserialize)]
struct TeiResult {
    index: usize,
    score: f32,
}

#[derive(Serialize)]
struct CohereRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    query: &'a str,
    documents: &'a [String],
    top_n: usize,
}

#[derive(Serialize)]
struct TeiRequest<'a> {
    query: &'a str,
    texts: &'a [String],
    truncate: bool,
}

impl HttpReranker {
    pub fn new(config: &RerankConfig) -> Result<Option<Self>> {
        let Some(url) = config.url.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "rerank.url must be an http(s) URL, got {url:?}"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| Error::Internal(format!("building the rerank client: {e}")))?;
        Ok(Some(Self {
            client,
            config: config.clone(),
            url,
        }))
    }
}

fn scatter(n: usize, pairs: impl Iterator<Item = (usize, f32)>) -> Result<Vec<f32>> {
    let mut scores = vec![f32::NEG_INFINITY; n];
    for (index, score) in pairs {
        let slot = scores.get_mut(index).ok_or_else(|| {
            Error::Unavailable(format!(
                "the reranker answered index {index} for {n} documents"
            ))
        })?;
        *slot = score;
    }
    Ok(scores)
}

#[async_trait]
impl Reranker for HttpReranker {
    async fn rerank(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
        let mut request = self.client.post(&self.url);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let request = match self.config.api {
            RerankApi::Cohere => request.json(&CohereRequest {
                model: self.config.model.as_deref(),
                query,
                documents,
                top_n: documents.len(),
            }),
            RerankApi::Tei => request.json(&TeiRequest {
                query,
                texts: documents,
                truncate: true,
            }),
        };
        let failed = |e: reqwest::Error| Error::Unavailable(format!("reranker {}: {e}", self.url));
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Unavailable(format!(
                "reranker {} answered {status}",
                self.url
            )));
        }
        match self.config.api {
            RerankApi::Cohere => {
                let body: CohereResponse = response.json().await.map_err(failed)?;
                scatter(
                    documents.len(),
                    body.results
                        .into_iter()
                        .map(|r| (r.index, r.relevance_score)),
                )
            }
            RerankApi::Tei => {
                let body: Vec<TeiResult> = response.json().await.map_err(failed)?;
                scatter(
                    documents.len(),
                    body.into_iter().map(|r| (r.index, r.score)),
                )
            }
        }
    }
}
