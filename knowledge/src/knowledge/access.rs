//! Reads bounded by what the caller may see, and the collection settings behind them.

use super::*;

impl Knowledge {
    pub async fn collections(&self) -> Result<Vec<Collection>> {
        self.store.collections().await
    }

    pub async fn documents(
        &self,
        collection: Option<&CollectionName>,
    ) -> Result<Vec<DocumentSummary>> {
        if let Some(c) = collection {
            self.require_collection(c).await?;
        }
        self.store.documents(collection).await
    }

    /// Writes a collection's settings (who may is decided by
    /// [`crate::collections::Collections`]).
    pub async fn update_collection(
        &self,
        name: &CollectionName,
        update: &CollectionUpdate,
    ) -> Result<()> {
        self.require_collection(name).await?;
        self.store.update_collection(name.as_str(), update).await
    }

    /// Adds, changes or (with `None`) removes a member of a collection (who may is decided by
    /// [`crate::collections::Collections`]).
    pub(crate) async fn set_member(
        &self,
        name: &CollectionName,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()> {
        self.require_collection(name).await?;
        self.store.set_member(name.as_str(), user_id, role).await
    }

    /// The collection's domain instructions, which open the assistant's prompt.
    pub async fn instructions(&self, name: &str) -> Result<String> {
        self.store.instructions(name).await
    }

    /// The collection's members (who may see them is decided by
    /// [`crate::collections::Collections`]).
    pub(crate) async fn members(&self, name: &CollectionName) -> Result<Vec<Member>> {
        self.require_collection(name).await?;
        self.store.members(name.as_str()).await
    }

    /// The role of `user_id` in the collection, if a member.
    pub async fn member_role(
        &self,
        name: &CollectionName,
        user_id: &str,
    ) -> Result<Option<MemberRole>> {
        self.store.member_role(name.as_str(), user_id).await
    }

    pub async fn collection_exists(&self, name: &CollectionName) -> Result<bool> {
        Ok(self.store.collection(name).await?.is_some())
    }

    pub(crate) async fn require_collection(&self, name: &CollectionName) -> Result<Collection> {
        self.store
            .collection(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("unknown collection {name}")))
    }

    /// The collections `principal` may read (all of them for admins).
    pub async fn readable_collections(&self, principal: &Principal) -> Result<Vec<CollectionHead>> {
        self.store.readable_collections(reader_of(principal)).await
    }

    async fn require_readable(
        &self,
        principal: &Principal,
        collection: &str,
        what: &str,
    ) -> Result<()> {
        let readable = self.readable_collections(principal).await?;
        if readable.iter().any(|c| c.name == collection) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no {what}")))
        }
    }

    /// Every document of a collection `principal` may read, as whole text: a corpus to evaluate
    /// on (`lariat eval feedback`).
    pub async fn collection_texts(
        &self,
        principal: &Principal,
        collection: &CollectionName,
    ) -> Result<Vec<DocumentText>> {
        principal.require_scope(Scope::Search)?;
        let what = format!("collection {collection}");
        self.require_readable(principal, collection.as_str(), &what)
            .await?;
        let documents = self.documents(Some(collection)).await?;
        let mut out = Vec::with_capacity(documents.len());
        for batch in documents.chunks(256) {
            let ids: Vec<String> = batch.iter().map(|d| d.id.clone()).collect();
            let mut chunks = self.store.chunks_of_documents(&ids).await?;
            chunks.sort_by_key(|c| c.ordinal);
            let mut texts: HashMap<&str, Vec<&str>> = HashMap::new();
            for c in &chunks {
                texts.entry(&c.document_id).or_default().push(&c.text);
            }
            out.extend(batch.iter().map(|d| {
                DocumentText {
                    id: d.id.clone(),
                    title: d.title.clone(),
                    text: texts
                        .get(d.id.as_str())
                        .map_or_else(String::new, |t| t.join("\n\n")),
                }
            }));
        }
        Ok(out)
    }

    /// A passage by chunk id, if `principal` may read its collection (else "not found").
    pub async fn passage(&self, principal: &Principal, chunk_id: &str) -> Result<Passage> {
        principal.require_scope(Scope::Search)?;
        let passage = self
            .store
            .passages(&[chunk_id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no passage {chunk_id}")))?;
        self.require_readable(
            principal,
            &passage.collection,
            &format!("passage {chunk_id}"),
        )
        .await?;
        Ok(passage)
    }

    /// A passage inside its document, with up to `around` neighbouring passages on each side,
    /// for showing a citation where it sits; same access rule as [`Knowledge::passage`].
    pub async fn passage_in_context(
        &self,
        principal: &Principal,
        chunk_id: &str,
        around: usize,
    ) -> Result<PassageInContext> {
        let passage = self.passage(principal, chunk_id).await?;
        let mut document = self.document(principal, &passage.document_id).await?;
        let at = document
            .passages
            .iter()
            .position(|p| p.chunk_id == chunk_id)
            .ok_or_else(|| Error::NotFound(format!("no passage {chunk_id}")))?;
        let start = at.saturating_sub(around);
        let end = (at + around + 1).min(document.passages.len());
        let total = document.passages.len();
        document.passages.truncate(end);
        document.passages.drain(..start);
        Ok(PassageInContext {
            document,
            cited: at - start,
            ordinal: at,
            total,
        })
    }

    /// A document and its passages, if `principal` may read its collection (else "not found").
    pub async fn document(&self, principal: &Principal, id: &str) -> Result<DocumentView> {
        principal.require_scope(Scope::Search)?;
        let chunks = self.store.chunks_of_documents(&[id.to_owned()]).await?;
        let first = chunks
            .first()
            .ok_or_else(|| Error::NotFound(format!("no document {id}")))?;
        self.require_readable(principal, &first.collection, &format!("document {id}"))
            .await?;
        let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
        let mut views: HashMap<String, Passage> = self
            .store
            .passages(&ids)
            .await?
            .into_iter()
            .map(|v| (v.chunk_id.clone(), v))
            .collect();
        let passages: Vec<Passage> = ids.iter().filter_map(|c| views.remove(c)).collect();
        let head = passages
            .first()
            .ok_or_else(|| Error::NotFound(format!("no document {id}")))?;
        Ok(DocumentView {
            id: id.to_owned(),
            collection: head.collection.clone(),
            title: head.title.clone(),
            source: head.source.clone(),
            passages,
        })
    }
}
