//! Collection administration: visibility, domain instructions, conversation retention, members
//! and documents, with their limits and the rules of who may change what. The CLI (as the local
//! operator), REST and MCP all go through [`Collections`], so no transport decides access itself.
//!
//! The rules:
//! - a collection the caller may not read is reported exactly like one that does not exist;
//! - its curators (curating members with at least the curator role) and admins change its
//!   visibility, instructions and retention, add readers and remove readers;
//! - only admins make, demote or remove curators, and only admins create collections.

use std::sync::Arc;

use serde::Serialize;

use base::principal::{Directory, Principal, Role, Scope};

use crate::knowledge::Knowledge;
use crate::store::Member;
use base::error::{Error, Result};
pub use base::types::CollectionUpdate;
use base::types::{Collection, CollectionName, DocumentSummary, MAX_RETENTION_DAYS, MemberRole};

/// Longest domain instructions, in characters.
pub const MAX_INSTRUCTIONS_CHARS: usize = 20_000;

/// A collection as a reader sees it: its counts, and whether they curate it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CollectionView {
    #[serde(flatten)]
    pub collection: Collection,
    pub curates: bool,
}

/// One page of a collection's documents, those whose title or shown source holds a filter.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DocumentPage {
    pub documents: Vec<DocumentSummary>,
    /// How many documents match in all.
    pub total: usize,
    /// This page, from 1.
    pub page: usize,
    pub pages: usize,
}

/// What a caller may do to a collection they asked to write into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAccess {
    /// The collection exists and the caller curates it.
    Existing,
    /// The collection does not exist yet; the caller (an admin) may create it.
    Create,
}

pub struct Collections {
    knowledge: Arc<Knowledge>,
    accounts: Arc<dyn Directory>,
}

impl std::fmt::Debug for Collections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collections").finish_non_exhaustive()
    }
}

fn unknown(name: &CollectionName) -> Error {
    Error::NotFound(format!("unknown collection {name}"))
}

impl Collections {
    pub fn new(knowledge: Arc<Knowledge>, accounts: Arc<dyn Directory>) -> Self {
        Self {
            knowledge,
            accounts,
        }
    }

    /// Refuses unless `principal` curates `name`: "unknown" when they may not read it (or it does
    /// not exist), "forbidden" when they may read it but not curate it.
    pub async fn require_curator(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<()> {
        self.require_readable(principal, name).await?;
        if self.may_curate(principal, name).await? {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "you do not curate the collection {name}"
            )))
        }
    }

    /// Whether `principal` curates `name`, a collection they are known to read: admins do, and
    /// curators it names as curating members.
    async fn may_curate(&self, principal: &Principal, name: &CollectionName) -> Result<bool> {
        Ok(principal.is_admin()
            || (principal.role() >= Role::Curator
                && self.knowledge.member_role(name, &principal.user.id).await?
                    == Some(MemberRole::Curator)))
    }

    async fn require_readable(&self, principal: &Principal, name: &CollectionName) -> Result<()> {
        let readable = self.knowledge.readable_collections(principal).await?;
        if readable.iter().any(|c| c.name == name.as_str()) {
            Ok(())
        } else {
            Err(unknown(name))
        }
    }

    /// Whether `principal` may ingest into `name`: curators of an existing collection, and admins
    /// (who also create new ones). Anyone else hears that the collection is unknown, or that they
    /// do not curate a collection they can read.
    pub async fn authorize_write(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<WriteAccess> {
        let exists = self.knowledge.collection_exists(name).await?;
        if exists {
            self.require_curator(principal, name).await?;
            Ok(WriteAccess::Existing)
        } else if principal.is_admin() {
            Ok(WriteAccess::Create)
        } else {
            // the same answer as for a private collection the caller may not read
            Err(unknown(name))
        }
    }

    /// Changes visibility, instructions and/or retention (curators and admins).
    pub async fn update(
        &self,
        principal: &Principal,
        name: &CollectionName,
        update: &CollectionUpdate,
    ) -> Result<()> {
        if let Some(text) = &update.instructions
            && text.chars().count() > MAX_INSTRUCTIONS_CHARS
        {
            return Err(Error::InvalidInput(format!(
                "instructions are limited to {MAX_INSTRUCTIONS_CHARS} characters"
            )));
        }
        if update
            .conversation_retention_days
            .is_some_and(|d| d > MAX_RETENTION_DAYS)
        {
            return Err(Error::InvalidInput(format!(
                "conversation_retention_days is at most {MAX_RETENTION_DAYS} (0 keeps conversations)"
            )));
        }
        self.require_curator(principal, name).await?;
        self.knowledge.update_collection(name, update).await
    }

    /// Adds, changes or (with `None`) removes a member. Curators manage readers; only admins
    /// touch a curator's membership (making, demoting or removing one).
    pub async fn set_member(
        &self,
        principal: &Principal,
        name: &CollectionName,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()> {
        self.require_curator(principal, name).await?;
        if self.accounts.user(user_id).await?.is_none() {
            return Err(Error::NotFound(format!("no user {user_id}")));
        }
        if !principal.is_admin() {
            let current = self.knowledge.member_role(name, user_id).await?;
            if role == Some(MemberRole::Curator) || current == Some(MemberRole::Curator) {
                return Err(Error::Forbidden(
                    "only admins make, demote or remove curators".into(),
                ));
            }
        }
        self.knowledge.set_member(name, user_id, role).await
    }

    /// The documents of a collection the caller may read.
    pub async fn documents(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<Vec<DocumentSummary>> {
        principal.require_scope(Scope::Search)?;
        self.require_readable(principal, name).await?;
        self.knowledge.documents(Some(name)).await
    }

    /// The collections `principal` may read, with their counts, by name (for a key of any
    /// scope: a chat or ingest client names collections too).
    pub async fn readable(&self, principal: &Principal) -> Result<Vec<CollectionView>> {
        let readable = self.knowledge.readable_collections(principal).await?;
        let mut views = Vec::with_capacity(readable.len());
        for collection in self.knowledge.collections().await? {
            if readable.iter().any(|c| c.name == collection.name) {
                let name = CollectionName::parse(&collection.name)?;
                views.push(CollectionView {
                    curates: self.may_curate(principal, &name).await?,
                    collection,
                });
            }
        }
        views.sort_by(|a, b| a.collection.name.cmp(&b.collection.name));
        Ok(views)
    }

    /// One collection `principal` may read ("unknown" otherwise, as for one that does not exist).
    pub async fn view(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<CollectionView> {
        principal.require_scope(Scope::Search)?;
        self.require_readable(principal, name).await?;
        Ok(CollectionView {
            collection: self.knowledge.require_collection(name).await?,
            curates: self.may_curate(principal, name).await?,
        })
    }

    /// The domain instructions of a collection the caller curates.
    pub async fn instructions(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<String> {
        self.require_curator(principal, name).await?;
        self.knowledge.instructions(name.as_str()).await
    }

    /// Page `page` (from 1) of the documents whose title or shown source contains `filter`
    /// (ignoring case), `per_page` to a page, by source.
    pub async fn document_page(
        &self,
        principal: &Principal,
        name: &CollectionName,
        filter: &str,
        page: usize,
        per_page: usize,
    ) -> Result<DocumentPage> {
        principal.require_scope(Scope::Search)?;
        if per_page == 0 || per_page > 500 {
            return Err(Error::InvalidInput(
                "a page holds 1 to 500 documents".into(),
            ));
        }
        let needle = filter.trim().to_lowercase();
        let matching: Vec<DocumentSummary> = self
            .documents(principal, name)
            .await?
            .into_iter()
            .filter(|d| {
                needle.is_empty()
                    || d.title.to_lowercase().contains(&needle)
                    || d.source.to_lowercase().contains(&needle)
            })
            .collect();
        let total = matching.len();
        let pages = total.div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let documents = matching
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        Ok(DocumentPage {
            documents,
            total,
            page,
            pages,
        })
    }

    /// The members of a collection the caller curates.
    pub async fn members(
        &self,
        principal: &Principal,
        name: &CollectionName,
    ) -> Result<Vec<Member>> {
        self.require_curator(principal, name).await?;
        self.knowledge.members(name).await
    }

    /// [`Self::set_member`] for the user with this email. Only curators of the collection learn
    /// whether an email has an account.
    pub async fn set_member_by_email(
        &self,
        principal: &Principal,
        name: &CollectionName,
        email: &str,
        role: Option<MemberRole>,
    ) -> Result<()> {
        self.require_curator(principal, name).await?;
        let user = self.accounts.user_by_email(email).await?;
        self.set_member(principal, name, &user.id, role).await
    }

    /// Deletes one document of a collection the caller curates.
    pub async fn delete_document(
        &self,
        principal: &Principal,
        name: &CollectionName,
        document_id: &str,
    ) -> Result<()> {
        self.require_curator(principal, name).await?;
        let in_collection = self
            .knowledge
            .documents(Some(name))
            .await?
            .iter()
            .any(|d| d.id == document_id);
        if !in_collection {
            return Err(Error::NotFound(format!(
                "no document {document_id} in {name}"
            )));
        }
        self.knowledge
            .delete_documents(&[document_id.to_owned()])
            .await?;
        Ok(())
    }
}
