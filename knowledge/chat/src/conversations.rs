//! Conversations: a user's own, listed, searched, renamed and deleted; another user's are
//! "not found".

use super::*;

impl Chat {
    /// A page of the caller's conversations, newest first: `limit` 1-100, `offset` at most
    /// [`MAX_OFFSET`] (both checked here, so no store sees a value it cannot take).
    pub async fn conversations(
        &self,
        principal: &Principal,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ConversationSummary>> {
        principal.require_scope(Scope::Chat)?;
        check_limit(limit)?;
        if offset > MAX_OFFSET {
            return Err(Error::InvalidInput(format!(
                "offset must be at most {MAX_OFFSET}"
            )));
        }
        self.conversations
            .conversations(&principal.user.id, limit, offset)
            .await
    }

    pub(super) async fn owned(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ConversationSummary> {
        principal.require_scope(Scope::Chat)?;
        self.conversations
            .conversation(&principal.user.id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no conversation {id}")))
    }

    pub async fn conversation(&self, principal: &Principal, id: &str) -> Result<Conversation> {
        let summary = self.owned(principal, id).await?;
        let messages = self.conversations.messages(id).await?;
        Ok(Conversation { summary, messages })
    }

    /// One message of the caller's conversation (a finished answer, rendered on its own).
    pub async fn message(
        &self,
        principal: &Principal,
        conversation_id: &str,
        id: &str,
    ) -> Result<StoredMessage> {
        self.owned(principal, conversation_id).await?;
        self.conversations
            .message(conversation_id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no message {id}")))
    }

    /// The caller's conversation as a PDF, Markdown or JSON file.
    pub async fn export(
        &self,
        principal: &Principal,
        id: &str,
        format: crate::export::ExportFormat,
    ) -> Result<crate::export::Exported> {
        let conversation = self.conversation(principal, id).await?;
        crate::export::render(conversation, format, now_ms()).await
    }

    pub async fn rename(&self, principal: &Principal, id: &str, title: &str) -> Result<()> {
        principal.require_scope(Scope::Chat)?;
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(Error::InvalidInput("a title needs 1-200 characters".into()));
        }
        if self
            .conversations
            .rename_conversation(&principal.user.id, id, title)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no conversation {id}")))
        }
    }

    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require_scope(Scope::Chat)?;
        if self
            .conversations
            .delete_conversation(&principal.user.id, id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no conversation {id}")))
        }
    }

    pub async fn search(
        &self,
        principal: &Principal,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        principal.require_scope(Scope::Chat)?;
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::InvalidInput("the search text q is empty".into()));
        }
        check_limit(limit)?;
        self.conversations
            .search_conversations(&principal.user.id, query, limit)
            .await
    }
}

/// Pages of conversations hold 1-100.
fn check_limit(limit: usize) -> Result<()> {
    if (1..=100).contains(&limit) {
        Ok(())
    } else {
        Err(Error::InvalidInput("limit must be 1-100".into()))
    }
}
