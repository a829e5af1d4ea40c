//! API keys: made (with at most the maker's scopes), listed and revoked.

use super::*;

/// API keys are managed from a signed-in session, or with a key scoped to manage keys.
pub(super) fn require_key_manager(principal: &Principal) -> Result<()> {
    if principal.api_key_id.is_some() && !principal.has(Scope::Keys) {
        return Err(Error::Forbidden(
            "API keys are managed from a signed-in session, or with a key that has the keys \
             scope"
                .into(),
        ));
    }
    Ok(())
}

impl Accounts {
    /// Makes a key with the scopes asked for (search and chat by default): only scopes the
    /// owner's role allows, and, made with a key, only scopes that key has.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: &NewApiKey,
    ) -> Result<CreatedApiKey> {
        require_key_manager(principal)?;
        principal.require_verified("making API keys")?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::InvalidInput(
                "a key needs a name of 1-100 characters".into(),
            ));
        }
        let mut scopes = new
            .scopes
            .clone()
            .unwrap_or_else(|| Scope::DEFAULT.to_vec());
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::InvalidInput("a key needs at least one scope".into()));
        }
        for scope in &scopes {
            if principal.user.role < scope.role() {
                return Err(Error::InvalidInput(format!(
                    "the {} scope needs the {} role; you are a {}",
                    scope.as_str(),
                    scope.role().as_str(),
                    principal.user.role.as_str()
                )));
            }
            principal.require_scope(*scope)?;
        }
        let now = now_ms();
        let asked = match new.expires_in_days {
            None => None,
            Some(days @ 1..=3650) => Some(now + i64::from(days) * 86_400_000),
            Some(_) => {
                return Err(Error::InvalidInput(
                    "expires_in_days must be 1-3650 (leave it out for a key that does not expire)"
                        .into(),
                ));
            }
        };
        // a key made with a key never outlives it
        let parent_end = match &principal.api_key_id {
            Some(parent) => {
                self.store
                    .api_keys(&principal.user.id)
                    .await?
                    .into_iter()
                    .find(|k| &k.id == parent)
                    .ok_or_else(unauthorized)?
                    .expires_at
            }
            None => None,
        };
        let expires_at = match (asked, parent_end) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        let key = format!("{API_KEY_PREFIX}{}", random_hex(24)?);
        let info = ApiKeyInfo {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            prefix: key[..VISIBLE_KEY_CHARS].to_owned(),
            scopes,
            created_at: now,
            last_used_at: None,
            expires_at,
            parent_id: principal.api_key_id.clone(),
        };
        self.store
            .create_api_key(&principal.user.id, &info, &content_hash(key.as_bytes()))
            .await?;
        let detail = json!({
            "key_id": info.id,
            "name": info.name,
            "scopes": info.scopes,
            "expires_at": info.expires_at,
            "by_key": principal.api_key_id,
        });
        self.record_by(principal, AuditEvent::KeyCreated, detail)
            .await?;
        Ok(CreatedApiKey { info, key })
    }

    pub async fn api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyInfo>> {
        require_key_manager(principal)?;
        self.store.api_keys(&principal.user.id).await
    }

    /// Revokes one of the caller's keys; another user's key is "not found".
    pub async fn delete_api_key(&self, principal: &Principal, id: &str) -> Result<()> {
        require_key_manager(principal)?;
        if self.store.revoke_api_key(&principal.user.id, id).await? {
            self.record_by(principal, AuditEvent::KeyRevoked, json!({"key_id": id}))
                .await
        } else {
            Err(Error::NotFound(format!("no API key {id}")))
        }
    }
}
