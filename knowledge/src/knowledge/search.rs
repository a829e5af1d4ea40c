//! The search pipeline: one parser for every surface, BM25 and dense candidates, fusion,
//! hydration from SQL, and the optional rerank stage.

use super::*;

impl SearchRequest {
    /// Passages returned when the caller does not say.
    pub const DEFAULT_K: usize = 10;

    /// The one parser of a search, whichever surface asked (CLI, HTTP, MCP): the query's
    /// length, the collection names, the mode (default hybrid) and k (default
    /// [`Self::DEFAULT_K`], at most [`TopK::MAX`]). No collections means every readable one.
    pub fn parse(
        query: &str,
        collections: &[String],
        mode: Option<&str>,
        k: Option<i64>,
    ) -> Result<Self> {
        let k = match k {
            None => Self::DEFAULT_K,
            Some(k) => usize::try_from(k).map_err(|_| {
                Error::InvalidInput(format!("k must be between 1 and {}, got {k}", TopK::MAX))
            })?,
        };
        let collections = collections
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(CollectionName::parse)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            query: QueryText::parse(query)?,
            collections: (!collections.is_empty()).then_some(collections),
            mode: mode.unwrap_or("hybrid").parse()?,
            k: TopK::new(k)?,
        })
    }
}

impl Knowledge {
    /// Ranked passages for a query, hydrated from SQL (so a chunk the indexes still hold after
    /// its document changed is never shown).
    /// Searches as the local operator: every collection is readable.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResults> {
        self.search_in(None, request).await
    }

    /// Searches only what `principal` may read. The readable collections become the collection
    /// filter inside both index queries; a collection the caller may not read is "unknown".
    pub async fn search_as(
        &self,
        principal: &Principal,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        principal.require_scope(Scope::Search)?;
        self.search_in(reader_of(principal), request).await
    }

    /// The collections a search by `principal` covers: `names` (each one it may read; any other
    /// is unknown), or every one it may read. A question resolves them once and searches them
    /// with [`Self::sources_in`].
    pub async fn searched_collections(
        &self,
        principal: &Principal,
        names: Option<&[CollectionName]>,
    ) -> Result<Vec<CollectionHead>> {
        let readable = self.readable_collections(principal).await?;
        within(readable, names)
    }

    /// The search for an answer, over collections [`Self::searched_collections`] resolved for
    /// the question (which the chat scope allows, without the search scope).
    pub async fn sources_in(
        &self,
        collections: Vec<CollectionHead>,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        metered(request, self.search_over(collections, request)).await
    }

    async fn search_in(
        &self,
        reader: Option<&str>,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        metered(request, async {
            let readable = self.store.readable_collections(reader).await?;
            let collections = within(readable, request.collections.as_deref())?;
            self.search_over(collections, request).await
        })
        .await
    }

    /// Searches exactly `collections` (already bounded by what the caller may read).
    async fn search_over(
        &self,
        collections: Vec<CollectionHead>,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        let model = self.embedder.model();
        if request.mode != SearchMode::Bm25
            && let Some(c) = collections.iter().find(|c| c.model != model.name)
        {
            return Err(Error::Conflict(format!(
                "collection {} was embedded with {} but {} is configured; run `lariat reindex`",
                c.name, c.model, model.name
            )));
        }
        if request.mode == SearchMode::Rerank && self.reranker.is_none() {
            return Err(Error::InvalidInput(
                "mode rerank needs a reranker: set rerank.url (LARIAT_RERANK__URL) in the configuration".into(),
            ));
        }
        if collections.is_empty() {
            return Ok(SearchResults {
                query: request.query.as_str().to_owned(),
                mode: request.mode,
                hits: Vec::new(),
                rerank: None,
            });
        }
        let names: Vec<String> = collections.into_iter().map(|c| c.name).collect();
        let k = request.k.get();
        let r = &self.retrieval;
        let depth = r.candidates.max(k);
        let query = request.query.as_str();
        let ranked = match request.mode {
            SearchMode::Bm25 => self.lexical.search(query, &names, k, r.lexical()).await?,
            SearchMode::Dense => {
                let t = std::time::Instant::now();
                let v = self.embedder.embed_query(query).await?;
                let embed_ms = t.elapsed().as_secs_f64() * 1000.0;
                let hits = self.vectors.search(v, &names, k).await?;
                tracing::debug!(
                    embed_ms,
                    vector_ms = t.elapsed().as_secs_f64() * 1000.0 - embed_ms,
                    "dense stage"
                );
                hits
            }
            SearchMode::Hybrid | SearchMode::Rerank => {
                let feedback = r.feedback_passages > 0;
                let t = std::time::Instant::now();
                let since = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
                let dense = async {
                    let v = self.embedder.embed_query(query).await?;
                    let embed_ms = since(t);
                    let hits = self
                        .vectors
                        .nearest(v.clone(), &names, depth, feedback)
                        .await?;
                    Ok::<_, Error>((v, hits, embed_ms, since(t)))
                };
                // when the join saw the lexical list: no sooner than the query's embedding,
                // which runs in place when the model is free
                let lexical = async {
                    let hits = self.lexical.search(query, &names, depth, r.lexical()).await;
                    (hits, since(t))
                };
                let ((lexical, lexical_ms), dense) = tokio::join!(lexical, dense);
                let (lexical, (vector, neighbours, embed_ms, dense_ms)) = (lexical?, dense?);
                let fusing = std::time::Instant::now();
                let fuse_with = |dense: &[(String, f32)]| {
                    fuse(
                        &[(&lexical, r.bm25_weight), (dense, r.dense_weight)],
                        r.fusion,
                        r.rrf_k,
                    )
                };
                let dense: Vec<(String, f32)> = neighbours
                    .iter()
                    .map(|n| (n.chunk_id.clone(), n.score))
                    .collect();
                let mut fused = fuse_with(&dense);
                if let Some(moved) = self.feedback_vector(&vector, &fused, &neighbours).await? {
                    fused = fuse_with(&crate::retrieval::rescored(&moved, &neighbours));
                }
                let keep = match (&self.reranker, request.mode) {
                    (Some((_, depth)), SearchMode::Rerank) => k.max(*depth),
                    _ => k,
                };
                fused.truncate(keep);
                tracing::debug!(
                    lexical_ms,
                    embed_ms,
                    dense_ms,
                    fuse_ms = since(fusing),
                    "hybrid stages"
                );
                fused
            }
        };
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let hydrating = std::time::Instant::now();
        let mut views: HashMap<String, _> = self
            .store
            .passages(&ids)
            .await?
            .into_iter()
            .map(|v| (v.chunk_id.clone(), v))
            .collect();
        tracing::debug!(
            hydrate_ms = hydrating.elapsed().as_secs_f64() * 1000.0,
            "hydrated"
        );
        let mut scored: Vec<(Passage, f32)> = ranked
            .into_iter()
            .filter_map(|(id, score)| views.remove(&id).map(|v| (v, score)))
            .collect();
        let rerank = match (&self.reranker, request.mode) {
            (Some((reranker, depth)), SearchMode::Rerank) => {
                Some(rerank_top(reranker.as_ref(), *depth, query, &mut scored).await)
            }
            _ => None,
        };
        scored.truncate(k);
        let hits = scored
            .into_iter()
            .enumerate()
            .map(|(i, (v, score))| Hit {
                rank: i + 1,
                score,
                passage: v,
            })
            .collect();
        Ok(SearchResults {
            query: query.to_owned(),
            mode: request.mode,
            hits,
            rerank,
        })
    }

    /// The query vector moved toward the first fusion's top passages (dense pseudo-relevance
    /// feedback), or `None` when there is nothing to learn from. The passages' vectors come with
    /// the dense candidates; only a top passage the dense list did not hold is read from SQL.
    async fn feedback_vector(
        &self,
        query: &[f32],
        fused: &[(String, f32)],
        neighbours: &[Neighbour],
    ) -> Result<Option<Vec<f32>>> {
        let top = &fused[..fused.len().min(self.retrieval.feedback_passages)];
        if top.is_empty() {
            return Ok(None);
        }
        let held = |id: &str| {
            neighbours
                .iter()
                .find(|n| n.chunk_id == id && !n.vector.is_empty())
        };
        let missing: Vec<String> = top
            .iter()
            .filter(|(id, _)| held(id).is_none())
            .map(|(id, _)| id.clone())
            .collect();
        // an empty list reads nothing
        let mut read: HashMap<String, Vec<f32>> = self
            .store
            .chunk_embeddings(&missing)
            .await?
            .into_iter()
            .collect();
        let passages: Vec<Vec<f32>> = top
            .iter()
            .filter_map(|(id, _)| {
                held(id)
                    .map(|n| n.vector.clone())
                    .or_else(|| read.remove(id))
            })
            .collect();
        Ok(crate::retrieval::rocchio(
            query,
            &passages,
            self.retrieval.feedback_query_weight,
        ))
    }
}

/// Rescores the first `depth` passages with the reranker and reorders them; on failure the
/// fused order stays and the outcome says why.
async fn rerank_top(
    reranker: &dyn Reranker,
    depth: usize,
    query: &str,
    scored: &mut [(Passage, f32)],
) -> RerankOutcome {
    let n = depth.min(scored.len());
    let started = std::time::Instant::now();
    let documents: Vec<String> = scored[..n]
        .iter()
        .map(|(v, _)| embedding_input(&v.title, &v.location_detail, &v.text))
        .collect();
    let result = reranker.rerank(query, &documents).await;
    let milliseconds = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(scores) => {
            for ((_, score), new) in scored[..n].iter_mut().zip(scores) {
                *score = new;
            }
            scored[..n].sort_by(|a, b| b.1.total_cmp(&a.1));
            RerankOutcome {
                applied: true,
                candidates: n,
                milliseconds,
                error: None,
            }
        }
        Err(e) => {
            warn!(error = %e, "reranking failed; keeping the hybrid order");
            RerankOutcome {
                applied: false,
                candidates: n,
                milliseconds,
                error: Some(e.to_string()),
            }
        }
    }
}

/// A search's time in the metrics, by mode.
async fn metered(
    request: &SearchRequest,
    search: impl std::future::Future<Output = Result<SearchResults>>,
) -> Result<SearchResults> {
    let started = std::time::Instant::now();
    let results = search.await;
    base::metrics::Metrics::get()
        .retrieval_seconds
        .with_label_values(&[request.mode.as_str()])
        .observe(started.elapsed().as_secs_f64());
    results
}

/// The `readable` collections `names` picks (each must be one of them), or all of them.
fn within(
    readable: Vec<CollectionHead>,
    names: Option<&[CollectionName]>,
) -> Result<Vec<CollectionHead>> {
    match names {
        Some(names) => names
            .iter()
            .map(|n| {
                readable
                    .iter()
                    .find(|c| c.name == n.as_str())
                    .cloned()
                    .ok_or_else(|| Error::NotFound(format!("unknown collection {n}")))
            })
            .collect(),
        None => Ok(readable),
    }
}
