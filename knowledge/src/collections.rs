//! Collection administration: visibility, domain instructions, members and documents, with
//! their limits and the rules of who may change what. The CLI (as the local operator), REST and
//! MCP all go through [`Collections`], so no transport decides access itself.
//!
//! The rules:
//! - a collection the caller may not read is reported exactly like one that does not exist;
//! - its curators (curating members with at least the curator role) and admins change its
//!   visibility and instructions, add readers and remove readers;
//! - only admins make, demote or remove curators, and only admins create collections.

use std::sync::Arc;

use serde::Deserialize;

use crate::accounts::{Principal, Role};
use crate::error::{Error, Result};
use crate::knowledge::Knowledge;
use crate::store::AccountStore;
use crate::types::{CollectionName, DocumentSummary, MemberRole, Visibility};

/// Longest domain instructions, in characters.
pub const MAX_INSTRUCTIONS_CHARS: usize = 20_000;

/// A change to a collection's settings; `None` keeps the field.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionUpdate {
    pub visibility: Option<Visibility>,
    pub instructions: Option<String>,
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
    accounts: Arc<dyn AccountStore>,
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
    pub fn new(knowledge: Arc<Knowledge>, accounts: Arc<dyn AccountStore>) -> Self {
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
        if principal.is_admin() {
            return Ok(());
        }
        let curates = principal.user.role >= Role::Curator
            && self.knowledge.member_role(name, &principal.user.id).await?
                == Some(MemberRole::Curator);
        if curates {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "you do not curate the collection {name}"
            )))
        }
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

    /// Changes visibility and/or instructions (curators and admins).
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
        self.require_curator(principal, name).await?;
        if let Some(v) = update.visibility {
            self.knowledge.set_visibility(name, v).await?;
        }
        if let Some(text) = &update.instructions {
            self.knowledge.set_instructions(name, text).await?;
        }
        Ok(())
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
        self.require_readable(principal, name).await?;
        self.knowledge.documents(Some(name)).await
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
