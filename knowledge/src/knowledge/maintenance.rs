//! Consistency: whether the three stores agree, and rebuilding the derived ones from SQL.

use super::writes::derived_records;
use super::*;

impl Knowledge {
    /// Compares the chunk ids of SQL, the vector store and the lexical index.
    pub async fn check(&self) -> Result<CheckReport> {
        let sql: HashSet<String> = self.store.chunk_ids().await?.into_iter().collect();
        let vectors: HashSet<String> = self.vectors.chunk_ids().await?.into_iter().collect();
        let lexical_list = self.lexical.chunk_ids().await?;
        let lexical: HashSet<String> = lexical_list.iter().cloned().collect();
        let diff = |a: &HashSet<String>, b: &HashSet<String>| {
            let mut d: Vec<String> = a.difference(b).cloned().collect();
            d.sort();
            d
        };
        Ok(CheckReport {
            sql_chunks: sql.len(),
            vector_chunks: vectors.len(),
            lexical_chunks: lexical_list.len(),
            missing_in_vectors: diff(&sql, &vectors),
            orphans_in_vectors: diff(&vectors, &sql),
            missing_in_lexical: diff(&sql, &lexical),
            orphans_in_lexical: diff(&lexical, &sql),
            duplicates_in_lexical: lexical_list.len() - lexical.len(),
            pending_documents: self.store.pending_documents().await?.len(),
            tombstones: self.store.tombstones().await?.len(),
        })
    }

    /// Rebuilds the vector and lexical indexes from SQL. Collections embedded with another
    /// model are re-embedded with the configured one first. Returns the chunks indexed.
    pub async fn reindex(&self) -> Result<usize> {
        self.rebuild(true).await
    }

    /// Rebuilds the lexical index from SQL when it was built by another analyzer (an upgrade
    /// that changed how text is cut into terms). Returns the chunks indexed, if it had to.
    pub(super) async fn rebuild_stale_lexical(&self) -> Result<Option<usize>> {
        if self.lexical.is_current() {
            return Ok(None);
        }
        self.rebuild(false).await.map(Some)
    }

    /// The lexical index, and with `vectors` the vector index, rebuilt from SQL.
    async fn rebuild(&self, vectors: bool) -> Result<usize> {
        let model = self.embedder.model().clone();
        let stale: HashSet<String> = if vectors {
            self.store
                .collections()
                .await?
                .into_iter()
                .filter(|c| c.model != model.name || c.dimension != model.dimension as i64)
                .map(|c| c.name)
                .collect()
        } else {
            HashSet::new()
        };
        if vectors {
            self.vectors.reset(model.dimension).await?;
        }
        self.lexical.reset().await?;
        let mut after: Option<String> = None;
        let mut total = 0;
        loop {
            let mut page = self
                .store
                .document_chunks_page(after.as_deref(), REBUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.document_id.clone());
            let to_embed: Vec<usize> = (0..page.len())
                .filter(|&i| stale.contains(&page[i].collection))
                .collect();
            if !to_embed.is_empty() {
                let inputs = to_embed
                    .iter()
                    .map(|&i| embedding_input(&page[i].title, &page[i].location, &page[i].text))
                    .collect();
                let vectors = self.embedder.embed_passages(inputs).await?;
                let mut updates = Vec::with_capacity(vectors.len());
                for (&i, v) in to_embed.iter().zip(vectors) {
                    page[i].embedding = v.clone();
                    updates.push((page[i].id.clone(), v));
                }
                self.store.update_embeddings(&updates).await?;
            }
            total += page.len();
            let (points, lexical) = derived_records(page);
            let (v, l) = tokio::join!(
                async {
                    if vectors {
                        self.vectors.replace(&[], points).await
                    } else {
                        Ok(())
                    }
                },
                self.lexical.replace(&[], lexical)
            );
            v?;
            l?;
        }
        self.lexical.mark_current().await?;
        if !vectors {
            return Ok(total);
        }
        for name in &stale {
            warn!(collection = %name, model = %model.name, "collection re-embedded");
            self.store
                .set_collection_model(name, &model.name, model.dimension)
                .await?;
        }
        self.vectors.flush().await?;
        self.store.mark_all_indexed().await?;
        self.vectors.settle().await?;
        Ok(total)
    }

    /// Makes every write durable (the vector store buffers in memory until flushed).
    pub async fn flush(&self) -> Result<()> {
        self.vectors.flush().await
    }

    /// Waits until the written vectors are indexed for fast search (the embedded store builds
    /// its HNSW graph in the background once it outgrows exact search).
    pub async fn settle(&self) -> Result<()> {
        self.vectors.settle().await
    }
}
