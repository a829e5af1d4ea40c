//! Writes: documents into and out of every store, under the write protocol (SQL first, then
//! the derived indexes), and recovery of whatever a crash interrupted.

use super::*;
use base::crashpoint;

impl Knowledge {
    /// Creates the collection for the configured model or checks it was built with it.
    pub async fn ensure_collection(&self, name: &CollectionName) -> Result<()> {
        let m = self.embedder.model();
        self.store
            .ensure_collection(name, &m.name, m.dimension)
            .await
    }

    /// What the stores hold for these document ids: unknown ids are absent.
    pub async fn document_states(&self, ids: &[String]) -> Result<HashMap<String, DocumentState>> {
        self.store.document_states(ids).await
    }

    /// Replaces each document (all its chunks) in every store. SQL commits first with the
    /// documents marked pending; the derived indexes follow; then the documents are marked
    /// indexed. A crash anywhere leaves pending documents that the next open re-indexes.
    pub async fn write_documents(&self, docs: Vec<DocumentWrite>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let collections: BTreeSet<&CollectionName> = docs.iter().map(|d| &d.collection).collect();
        for c in collections {
            self.ensure_collection(c).await?;
        }
        let dimension = self.embedder.model().dimension;
        for doc in &docs {
            if let Some(bad) = doc.chunks.iter().find(|c| c.embedding.len() != dimension) {
                return Err(Error::InvalidInput(format!(
                    "a chunk of {} has a {}-d embedding; the model gives {dimension}-d",
                    doc.source,
                    bad.embedding.len()
                )));
            }
        }
        let ids: Vec<String> = docs.iter().map(DocumentWrite::id).collect();
        let _locked = self.lock_documents(&ids).await?;
        self.store.write_documents(&docs).await?;
        crashpoint::reached(crashpoint::WRITE_SQL);
        let mut points = Vec::new();
        let mut lexical = Vec::new();
        for doc in docs {
            let id = doc.id();
            let mut passages = Vec::with_capacity(doc.chunks.len());
            for (chunk, chunk_id) in doc.chunks.iter().zip(doc.chunk_ids()) {
                passages.push(LexicalPassage::new(
                    chunk_id.to_string(),
                    &doc.title,
                    &chunk.location,
                    chunk.text.clone(),
                ));
                points.push(VectorPoint {
                    chunk_id,
                    document_id: id.clone(),
                    collection: doc.collection.to_string(),
                    vector: chunk.embedding.clone(),
                });
            }
            lexical.push(LexicalDocument {
                document_id: id,
                collection: doc.collection.to_string(),
                title: doc.title,
                passages,
            });
        }
        self.index(&ids, points, lexical).await
    }

    async fn index(
        &self,
        document_ids: &[String],
        points: Vec<VectorPoint>,
        lexical: Vec<LexicalDocument>,
    ) -> Result<()> {
        let (v, l) = tokio::join!(
            self.vectors.replace(document_ids, points),
            self.lexical.replace(document_ids, lexical)
        );
        v?;
        l?;
        crashpoint::reached(crashpoint::WRITE_INDEXES);
        self.store.mark_indexed(document_ids).await
    }

    /// Deletes documents from every store; returns how many existed.
    pub async fn delete_documents(&self, ids: &[String]) -> Result<usize> {
        let _locked = self.lock_documents(ids).await?;
        let deleted = self.store.delete_documents(ids).await?;
        crashpoint::reached(crashpoint::DELETE_SQL);
        self.clear_from_indexes(ids).await?;
        Ok(deleted)
    }

    async fn clear_from_indexes(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (v, l) = tokio::join!(
            self.vectors.replace(ids, Vec::new()),
            self.lexical.replace(ids, Vec::new())
        );
        v?;
        l?;
        self.store.clear_tombstones(ids).await
    }

    /// Document ids stored for a source path (and the records inside it), in one collection
    /// or any.
    pub async fn documents_by_source(
        &self,
        collection: Option<&CollectionName>,
        source: &str,
    ) -> Result<Vec<String>> {
        self.store.documents_by_source(collection, source).await
    }

    /// Re-indexes documents left pending and clears deletions left half-done by a crash.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let tombstones = self.store.tombstones().await?;
        for batch in tombstones.chunks(256) {
            // under the documents' locks, and only what is still to clear: on a shared
            // deployment another server may have written one of them again
            let _locked = self.lock_documents(batch).await?;
            let left: HashSet<String> = self.store.tombstones().await?.into_iter().collect();
            let batch: Vec<String> = batch
                .iter()
                .filter(|id| left.contains(*id))
                .cloned()
                .collect();
            self.clear_from_indexes(&batch).await?;
        }
        let pending = self.store.pending_documents().await?;
        for batch in pending.chunks(256) {
            let _locked = self.lock_documents(batch).await?;
            let chunks = self.store.chunks_of_documents(batch).await?;
            let (points, lexical) = derived_records(chunks);
            self.index(batch, points, lexical).await?;
        }
        Ok(RecoveryReport {
            reindexed_documents: pending.len(),
            cleared_deletions: tombstones.len(),
        })
    }
}

/// The vector points and lexical documents of `chunks`, which hold every chunk of their
/// documents, each document's chunks together and in position order (as the store reads them).
pub(super) fn derived_records(
    chunks: Vec<StoredChunk>,
) -> (Vec<VectorPoint>, Vec<LexicalDocument>) {
    let mut points = Vec::with_capacity(chunks.len());
    let mut lexical: Vec<LexicalDocument> = Vec::new();
    for c in chunks {
        let Ok(chunk_id) = uuid::Uuid::parse_str(&c.id) else {
            warn!(chunk = %c.id, "skipping a chunk whose id is not a UUID");
            continue;
        };
        let passage = LexicalPassage::new(c.id, &c.title, &c.location, c.text);
        match lexical.last_mut() {
            Some(d) if d.document_id == c.document_id => d.passages.push(passage),
            _ => lexical.push(LexicalDocument {
                document_id: c.document_id.clone(),
                collection: c.collection.clone(),
                title: c.title,
                passages: vec![passage],
            }),
        }
        points.push(VectorPoint {
            chunk_id,
            document_id: c.document_id,
            collection: c.collection,
            vector: c.embedding,
        });
    }
    (points, lexical)
}
