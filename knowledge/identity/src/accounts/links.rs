//! What a mailed link proves: a password reset, an address verified or changed; and changing a
//! password.

use super::*;

/// The single-use links lariat mails. Each kind's tokens start with its prefix and are kept by
/// hash, for its purpose, with what they were issued for (the address being proven).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkKind {
    Reset,
    Verify,
    EmailChange,
}

impl LinkKind {
    fn prefix(self) -> &'static str {
        match self {
            LinkKind::Reset => "lrr_",
            LinkKind::Verify => "lrv_",
            LinkKind::EmailChange => "lre_",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
            LinkKind::EmailChange => "email",
        }
    }

    fn lifetime_ms(self) -> i64 {
        match self {
            LinkKind::Reset => RESET_MINUTES * 60_000,
            LinkKind::Verify | LinkKind::EmailChange => VERIFY_HOURS * 3_600_000,
        }
    }

    fn invalid(self) -> Error {
        let what = match self {
            LinkKind::Reset => "reset link",
            LinkKind::Verify => "verification link",
            LinkKind::EmailChange => "confirmation link",
        };
        Error::InvalidInput(format!(
            "this {what} is invalid, used or expired: ask for a new one"
        ))
    }
}

pub(super) fn wrong_current_password() -> Error {
    Error::InvalidInput("the current password is wrong".into())
}

impl Accounts {
    /// Mails a single-use reset link to the account with this address, if there is one that
    /// may sign in. The answer is the same whether there is or not, and takes as long: the
    /// rate limits (per client address and per e-mail address) do not depend on it, and the
    /// look-up and the mail are done on a task of their own, after the answer.
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<()> {
        if let Some(ip) = address {
            self.reset_by_address.check_address(ip).await?;
        }
        let email = normalize_email(email)?;
        self.reset_by_email.check(&email).await?;
        let accounts = self.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts.reset_requested(&email, address).await {
                tracing::error!(error = %e, "a password reset request could not be served");
            }
        });
        Ok(())
    }

    /// The work behind [`Accounts::request_password_reset`].
    pub(super) async fn reset_requested(&self, email: &str, address: Option<IpAddr>) -> Result<()> {
        let Some((user, _)) = self.store.user_credentials(email).await? else {
            return Ok(());
        };
        if user.disabled || is_reserved(email) {
            return Ok(());
        }
        self.record(
            AuditEvent::ResetRequested,
            None,
            &user.id,
            address,
            json!({}),
        )
        .await?;
        self.mail_reset_link(&user).await
    }

    /// An admin mails a user a reset link (the user still chooses the password).
    pub async fn send_reset_link(&self, principal: &Principal, user_id: &str) -> Result<()> {
        principal.require(Role::Admin)?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {user_id}")))?;
        if user.disabled {
            return Err(Error::Conflict(
                "this account is disabled: enable it before sending it a reset link".into(),
            ));
        }
        if is_reserved(&user.email) {
            return Err(Error::InvalidInput(
                "lariat's own accounts have no password to reset".into(),
            ));
        }
        self.record(
            AuditEvent::ResetRequested,
            Some(&principal.user.id),
            &user.id,
            principal.address,
            json!({"by_admin": true}),
        )
        .await?;
        self.mail_reset_link(&user).await
    }

    pub(super) async fn mail_reset_link(&self, user: &User) -> Result<()> {
        let link = self.issue_link(LinkKind::Reset, user, &user.email).await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::Reset,
                &[("link", &link), ("minutes", &RESET_MINUTES.to_string())],
            )
            .await
    }

    /// A new single-use link of this kind for `user`, issued for `payload`: the app's address
    /// of the page that takes it.
    pub(super) async fn issue_link(
        &self,
        kind: LinkKind,
        user: &User,
        payload: &str,
    ) -> Result<String> {
        let token = format!("{}{}", kind.prefix(), random_hex(32)?);
        self.store
            .create_token(&IssuedToken {
                hash: content_hash(token.as_bytes()),
                user_id: user.id.clone(),
                purpose: kind.purpose(),
                payload: payload.to_owned(),
                expires_at: now_ms() + kind.lifetime_ms(),
            })
            .await?;
        let page = match kind {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
            LinkKind::EmailChange => "confirm-email",
        };
        Ok(self.mail.link(&format!("/{page}?token={token}")))
    }

    /// The user and payload of a usable link token of this kind (left usable), and its hash;
    /// a disabled account's links do not work.
    pub(super) async fn redeemable(
        &self,
        kind: LinkKind,
        token: &str,
    ) -> Result<(User, String, String)> {
        let token = token.trim();
        if !token.starts_with(kind.prefix()) || token.len() > 200 {
            return Err(kind.invalid());
        }
        let hash = content_hash(token.as_bytes());
        let (user, payload) = self
            .store
            .token_user(&hash, kind.purpose())
            .await?
            .filter(|(u, _)| !u.disabled)
            .ok_or_else(|| kind.invalid())?;
        Ok((user, payload, hash))
    }

    /// Uses the token up; of two racing uses only one gets here.
    pub(super) async fn consume(&self, kind: LinkKind, hash: &str) -> Result<()> {
        if self.store.consume_token(hash, kind.purpose()).await? {
            Ok(())
        } else {
            Err(kind.invalid())
        }
    }

    /// Sets a new password with a reset link's token, which is used up; every session of the
    /// account ends and the account's address hears of it. A refused new password leaves the
    /// link usable.
    pub async fn reset_password_with(
        &self,
        token: &str,
        new_password: &str,
        address: Option<IpAddr>,
    ) -> Result<()> {
        let (user, email, hash) = self.redeemable(LinkKind::Reset, token).await?;
        let password_hash = self.checked_hash(new_password, &user.email).await?;
        self.consume(LinkKind::Reset, &hash).await?;
        // the link proved the mailbox: an account unverified until now loses everything made
        // on it before (by whoever signed up with the address); a verified one its keys too,
        // unless the operator keeps them
        let first_proof = !user.email_verified;
        let change = Securing {
            password_hash: Some(&password_hash),
            verify: first_proof.then_some(email.as_str()),
            keep_session: None,
            revoke_keys: first_proof || self.config.reset_revokes_keys,
            remove_identities: first_proof,
        };
        let revoked = self
            .store
            .secure_account(&user.id, &change)
            .await?
            .ok_or_else(|| LinkKind::Reset.invalid())?;
        self.record(
            AuditEvent::ResetUsed,
            None,
            &user.id,
            address,
            json!({"first_proof": first_proof, "revoked": revoked}),
        )
        .await?;
        self.password_changed_notice(&user).await?;
        if revoked.keys > 0 || !revoked.identities.is_empty() {
            self.access_removed_notice(&user, "a password reset", &revoked)
                .await?;
        }
        Ok(())
    }

    /// Tells the account's address what a change of its credentials took away.
    pub(super) async fn access_removed_notice(
        &self,
        user: &User,
        event: &str,
        revoked: &Revoked,
    ) -> Result<()> {
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::AccessRemoved,
                &[("event", event), ("removed", &describe(revoked))],
            )
            .await
    }

    pub(super) async fn mail_verification(&self, user: &User) -> Result<()> {
        let link = self.issue_link(LinkKind::Verify, user, &user.email).await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::Verify,
                &[("link", &link), ("hours", &VERIFY_HOURS.to_string())],
            )
            .await
    }

    /// Mails the caller a new verification link (a few an hour).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<()> {
        let user = &principal.user;
        if user.email_verified {
            return Err(Error::Conflict(format!(
                "{} is already verified",
                user.email
            )));
        }
        self.verify_by_account
            .check(&format!("{}:{}", LinkKind::Verify.purpose(), user.id))
            .await?;
        self.mail_verification(user).await
    }

    /// Marks the address a verification link was sent to as verified, if the account still
    /// uses it; the link is used up.
    ///
    /// The first proof of the mailbox of an account unverified until then ends every session
    /// (but `viewer`'s, when the browser that followed the link is signed in to this account)
    /// and removes every API key and linked identity made before it: whoever signed up with the
    /// address may not have been its owner. The owner is told what was removed.
    pub async fn verify_email(
        &self,
        token: &str,
        address: Option<IpAddr>,
        viewer: Option<&Principal>,
    ) -> Result<User> {
        let (user, email, hash) = self.redeemable(LinkKind::Verify, token).await?;
        if user.email != email {
            return Err(LinkKind::Verify.invalid());
        }
        self.consume(LinkKind::Verify, &hash).await?;
        if user.email_verified {
            return Ok(user);
        }
        let keep = viewer
            .filter(|v| v.user.id == user.id)
            .and_then(|v| v.session_id.as_deref());
        let change = Securing {
            verify: Some(&email),
            keep_session: keep,
            revoke_keys: true,
            remove_identities: true,
            ..Securing::default()
        };
        let revoked = self
            .store
            .secure_account(&user.id, &change)
            .await?
            .ok_or_else(|| LinkKind::Verify.invalid())?;
        self.record(
            AuditEvent::EmailVerified,
            None,
            &user.id,
            address,
            json!({"revoked": revoked}),
        )
        .await?;
        if !revoked.is_empty() {
            self.access_removed_notice(&user, "the confirmation of the address", &revoked)
                .await?;
        }
        self.reloaded(&user.id).await
    }

    pub(super) async fn reloaded(&self, id: &str) -> Result<User> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {id}")))
    }

    /// Starts moving the caller's account to another address: once they prove they know the
    /// password, a confirmation link goes to the new address (the account keeps the old one
    /// until it is followed).
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        password: &str,
    ) -> Result<()> {
        principal.require_session()?;
        self.check_current_password(principal, password).await?;
        let new_email = normalize_email(new_email)?;
        check_not_reserved(&new_email)?;
        let user = &principal.user;
        if new_email == user.email {
            return Err(Error::InvalidInput(format!(
                "{new_email} is already this account's address"
            )));
        }
        if self.store.user_credentials(&new_email).await?.is_some() {
            return Err(Error::Conflict(format!(
                "an account for {new_email} already exists"
            )));
        }
        self.verify_by_account
            .check(&format!("{}:{}", LinkKind::EmailChange.purpose(), user.id))
            .await?;
        let link = self
            .issue_link(LinkKind::EmailChange, user, &new_email)
            .await?;
        self.record_by(principal, AuditEvent::EmailChangeRequested, json!({}))
            .await?;
        self.mail
            .send(
                Some(&user.id),
                &new_email,
                Template::EmailChange,
                &[
                    ("link", &link),
                    ("hours", &VERIFY_HOURS.to_string()),
                    ("old_email", &user.email),
                ],
            )
            .await
    }

    /// Moves the account to the address a confirmation link was sent to (now verified), uses the
    /// link up and tells the old address.
    pub async fn confirm_email_change(&self, token: &str, address: Option<IpAddr>) -> Result<User> {
        let (user, new_email, hash) = self.redeemable(LinkKind::EmailChange, token).await?;
        self.consume(LinkKind::EmailChange, &hash).await?;
        self.store.change_email(&user.id, &new_email).await?;
        self.record(AuditEvent::EmailChanged, None, &user.id, address, json!({}))
            .await?;
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::EmailChanged,
                &[("new_email", &new_email)],
            )
            .await?;
        self.reloaded(&user.id).await
    }

    pub(super) async fn password_changed_notice(&self, user: &User) -> Result<()> {
        let link = self.mail.link("/forgot");
        self.mail
            .send(
                Some(&user.id),
                &user.email,
                Template::PasswordChanged,
                &[("link", &link)],
            )
            .await
    }

    /// Changes the caller's password once they prove they know the current one; every other
    /// session is signed out (this one stays, and API keys are kept).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<()> {
        principal.require_session()?;
        self.check_current_password(principal, current).await?;
        let email = &principal.user.email;
        let hash = self.checked_hash(new, email).await?;
        let change = Securing {
            password_hash: Some(&hash),
            keep_session: principal.session_id.as_deref(),
            ..Securing::default()
        };
        self.store
            .secure_account(&principal.user.id, &change)
            .await?;
        self.record_by(principal, AuditEvent::PasswordChanged, json!({}))
            .await?;
        self.password_changed_notice(&principal.user).await
    }

    /// Refuses unless `password` is the caller's (attempts count against the sign-in limit): the
    /// re-authentication before a change of password or address, or an erasure.
    pub async fn check_current_password(
        &self,
        principal: &Principal,
        password: &str,
    ) -> Result<()> {
        let email = &principal.user.email;
        self.signin_by_account.check(email).await?;
        if password.len() > MAX_PASSWORD_LEN {
            return Err(wrong_current_password());
        }
        let hash = self.store.user_credentials(email).await?.map(|(_, h)| h);
        if hash.as_deref() == Some(sso::NO_PASSWORD_HASH) {
            return Err(Error::Conflict(
                "this account has no password yet (it signs in through a provider): set one \
                 with a reset link from the sign-in page"
                    .into(),
            ));
        }
        if self.verify(password, hash).await? {
            Ok(())
        } else {
            Err(wrong_current_password())
        }
    }
}
