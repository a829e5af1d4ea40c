//! Signing in and out, sessions, access and refresh tokens, and signed intents.

use super::*;

/// API keys' last-used time is written at most this often.
pub(super) const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Claims {
    sub: String,
    sid: String,
    iat: u64,
    exp: u64,
    typ: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct IntentClaims {
    sub: String,
    aud: String,
    act: String,
    args: serde_json::Value,
    iat: u64,
    exp: u64,
    jti: String,
    typ: String,
}

/// A signed confirmation of one previewed action (see [`Accounts::sign_intent`]).
#[derive(Debug, Clone)]
pub struct Intent {
    pub token: String,
    pub action: String,
    pub args: serde_json::Value,
    /// Unix seconds.
    pub expires_at: u64,
}

impl Accounts {
    /// Checks the password and opens a session. Attempts are limited per account and per
    /// client address; a wrong email and a wrong password get the same answer.
    pub async fn signin(&self, email: &str, password: &str, client: &Client) -> Result<TokenPair> {
        if let Some(ip) = client.address {
            self.signin_by_address.check_address(ip).await?;
        }
        // No account has an address or a password that long: answer as for a wrong password, without a
        // bucket for it or a look-up.
        if email.len() > MAX_EMAIL_INPUT || password.len() > MAX_PASSWORD_LEN {
            return Err(Error::Unauthorized("wrong email or password".into()));
        }
        let email = email.trim().to_lowercase();
        self.signin_by_account.check(&email).await?;
        let found = self.store.user_credentials(&email).await?;
        let ok = self
            .verify(password, found.as_ref().map(|(_, h)| h.clone()))
            .await?;
        let (subject, reason) = match &found {
            Some((user, _)) if ok && !user.disabled => {
                let detail = json!({"user_agent": client.user_agent});
                return self.signed_in(user, client, detail).await;
            }
            Some((user, _)) if ok => (Some(user.id.as_str()), "disabled"),
            Some((user, _)) => (Some(user.id.as_str()), "wrong password"),
            None => (None, "no such account"),
        };
        self.audit
            .record(
                AuditEvent::SignInFailed,
                None,
                subject,
                client.address,
                json!({"reason": reason}),
            )
            .await?;
        Err(Error::Unauthorized(if reason == "disabled" {
            "this account is disabled".into()
        } else {
            "wrong email or password".into()
        }))
    }

    /// Whether `password` matches `hash` (a dummy hash when there is none, so an unknown account
    /// takes as long), on a hashing thread: argon2 is CPU work.
    pub(super) async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool> {
        let password = password.to_owned();
        self.hashing
            .run(move || Ok(verify_password(&password, hash.as_deref())))
            .await
    }

    /// Opens a session for a sign-in that passed its checks, and audits it.
    pub(super) async fn signed_in(
        &self,
        user: &User,
        client: &Client,
        detail: serde_json::Value,
    ) -> Result<TokenPair> {
        let pair = self.open_session(user, client).await?;
        self.record(
            AuditEvent::SignedIn,
            Some(&user.id),
            &user.id,
            client.address,
            detail,
        )
        .await?;
        Ok(pair)
    }

    pub(super) async fn open_session(&self, user: &User, client: &Client) -> Result<TokenPair> {
        let now = now_ms();
        let session = StoredSession {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            user_agent: client.user_agent.clone(),
            address: client.address.map(|a| a.to_string()).unwrap_or_default(),
            created_at: now,
            last_used_at: Some(now),
            expires_at: Some(now + (self.config.session_max_age_secs as i64) * 1000),
        };
        let refresh = format!("{REFRESH_PREFIX}{}", random_hex(32)?);
        self.store
            .create_session(
                &session,
                &content_hash(refresh.as_bytes()),
                self.refresh_expiry(),
            )
            .await?;
        self.token_pair(&user.id, &session.id, refresh)
    }

    /// The caller's live sessions, most recently used first, the one they call from marked.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>> {
        principal.require_session()?;
        Ok(self
            .store
            .sessions(&principal.user.id)
            .await?
            .into_iter()
            .map(|session| SessionInfo {
                current: principal.session_id.as_deref() == Some(session.id.as_str()),
                session,
            })
            .collect())
    }

    /// Signs one of the caller's sessions out; another user's is "not found".
    pub async fn revoke_session(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require_session()?;
        if self
            .store
            .revoke_sessions(&principal.user.id, Some(id), None)
            .await?
        {
            self.record_by(
                principal,
                AuditEvent::SessionRevoked,
                json!({"session_id": id}),
            )
            .await
        } else {
            Err(Error::NotFound(format!("no session {id}")))
        }
    }

    /// Signs every session of the caller out, this one included.
    pub async fn signout_everywhere(&self, principal: &Principal) -> Result<()> {
        principal.require_session()?;
        self.store
            .revoke_sessions(&principal.user.id, None, None)
            .await?;
        self.record_by(principal, AuditEvent::SessionRevoked, json!({"all": true}))
            .await
    }

    pub(super) fn refresh_expiry(&self) -> i64 {
        now_ms() + (self.config.refresh_ttl_secs as i64) * 1000
    }

    pub(super) fn token_pair(
        &self,
        user_id: &str,
        session_id: &str,
        refresh: String,
    ) -> Result<TokenPair> {
        let now = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + self.config.access_ttl_secs,
            typ: "access".into(),
        };
        let access = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.config.access_ttl_secs,
        })
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a used
    /// one again (a sign of theft) revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        if !refresh_token.starts_with(REFRESH_PREFIX) {
            return Err(unauthorized());
        }
        let next = format!("{REFRESH_PREFIX}{}", random_hex(32)?);
        match self
            .store
            .rotate_refresh(
                &content_hash(refresh_token.as_bytes()),
                &content_hash(next.as_bytes()),
                self.refresh_expiry(),
            )
            .await?
        {
            RefreshOutcome::Rotated { user, session_id } if !user.disabled => {
                self.token_pair(&user.id, &session_id, next)
            }
            RefreshOutcome::Reused => Err(Error::Unauthorized(
                "this refresh token was already used; the session is revoked, sign in again".into(),
            )),
            _ => Err(unauthorized()),
        }
    }

    /// Ends the caller's session: its access and refresh tokens stop working at once.
    pub async fn signout(&self, principal: &Principal) -> Result<()> {
        match &principal.session_id {
            Some(sid) => {
                self.store.revoke_session(sid).await?;
                self.record_by(principal, AuditEvent::SignedOut, json!({}))
                    .await
            }
            None => Err(Error::InvalidInput(
                "an API key has no session to sign out of; delete the key instead".into(),
            )),
        }
    }

    /// Who a bearer credential (access token or API key) belongs to.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let bearer = bearer.trim();
        if bearer.starts_with(API_KEY_PREFIX) {
            let (key, user) = self
                .store
                .api_key_user(&content_hash(bearer.as_bytes()))
                .await?
                .ok_or_else(unauthorized)?;
            if user.disabled {
                return Err(unauthorized());
            }
            let now = now_ms();
            if key.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
                self.store.touch_api_key(&key.id, now).await?;
            }
            return Ok(Principal {
                may_chat: self.may_chat(&user),
                user,
                api_key_id: Some(key.id),
                session_id: None,
                scopes: Some(key.scopes),
                address: None,
            });
        }
        let claims = jsonwebtoken::decode::<Claims>(bearer, &self.decoding, &self.validation)
            .map_err(|_| unauthorized())?
            .claims;
        if claims.typ != "access" {
            return Err(unauthorized());
        }
        let user = self
            .store
            .session_user(&claims.sid)
            .await?
            .filter(|u| u.id == claims.sub && !u.disabled)
            .ok_or_else(unauthorized)?;
        Ok(Principal {
            may_chat: self.may_chat(&user),
            user,
            api_key_id: None,
            session_id: Some(claims.sid),
            scopes: None,
            address: None,
        })
    }

    pub(super) fn may_chat(&self, user: &User) -> bool {
        user.email_verified || self.config.unverified_can_chat
    }

    /// A signed, expiring confirmation that `user_id` previewed `action` with `args` on
    /// `audience` (e.g. `site:rodeo`): the second step of a two-step write carries only this.
    pub fn sign_intent(
        &self,
        user_id: &str,
        audience: &str,
        action: &str,
        args: &serde_json::Value,
        ttl_secs: u64,
    ) -> Result<Intent> {
        let now = (now_ms() / 1000) as u64;
        let claims = IntentClaims {
            sub: user_id.to_owned(),
            aud: audience.to_owned(),
            act: action.to_owned(),
            args: args.clone(),
            iat: now,
            exp: now + ttl_secs,
            jti: random_hex(8)?,
            typ: "intent".into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        Ok(Intent {
            token,
            action: claims.act,
            args: claims.args,
            expires_at: claims.exp,
        })
    }

    /// The action and arguments a confirmation signed for this user and audience carries.
    pub fn verify_intent(&self, token: &str, user_id: &str, audience: &str) -> Result<Intent> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        let claims =
            jsonwebtoken::decode::<IntentClaims>(token.trim(), &self.decoding, &validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::InvalidInput(
                        "the confirm token has expired; preview the action again".into(),
                    ),
                    _ => Error::InvalidInput(
                        "the confirm token is not valid here; preview the action again to get one"
                            .into(),
                    ),
                })?
                .claims;
        if claims.typ != "intent" || claims.sub != user_id {
            return Err(Error::InvalidInput(
                "the confirm token was issued to someone else; preview the action again".into(),
            ));
        }
        Ok(Intent {
            token: token.trim().to_owned(),
            action: claims.act,
            args: claims.args,
            expires_at: claims.exp,
        })
    }
}
