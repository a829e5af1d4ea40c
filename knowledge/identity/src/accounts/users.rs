//! The people behind the accounts, as admins and the local operator see them: listed, searched,
//! looked up, changed (role, plan, suspension) and the first admin made.

use super::*;

impl Accounts {
    /// The local operator (`lariat mcp` without an API key): an admin account that cannot sign in
    /// (it has no password), created on first use so its conversations and usage are recorded.
    pub async fn local_operator(&self) -> Result<Principal> {
        let email = format!("operator@{RESERVED_DOMAIN}");
        let user = match self.store.user_credentials(&email).await? {
            // only an account made here has this marker (and no password); anything else holding
            // the address was not made by lariat and is never treated as the operator
            Some((user, hash)) if hash == OPERATOR_HASH && user.role == Role::Admin => user,
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "{email} exists but is not lariat's local operator account; remove it"
                )));
            }
            None => {
                let user = User {
                    id: uuid::Uuid::new_v4().to_string(),
                    email: email.clone(),
                    email_verified: true,
                    role: Role::Admin,
                    plan: self.config.default_plan.clone(),
                    disabled: false,
                    created_at: now_ms(),
                };
                let new = NewUser {
                    user: user.clone(),
                    password_hash: OPERATOR_HASH.into(),
                };
                match self.store.create_user(&new).await {
                    Ok(()) => user,
                    // created meanwhile by another process
                    Err(e) if e.code() == base::ErrorCode::Conflict => self
                        .store
                        .user_credentials(&email)
                        .await?
                        .filter(|(_, hash)| hash == OPERATOR_HASH)
                        .map(|(u, _)| u)
                        .ok_or(e)?,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Principal {
            user,
            api_key_id: None,
            session_id: None,
            may_chat: true,
            scopes: None,
            address: None,
        })
    }

    /// Creates the admin `email` with this password. An existing account is never promoted as
    /// it is (its password was not chosen here): without `reset` that is a conflict; with it the
    /// account gets this password, loses every session, API key and linked identity (whoever
    /// holds them was not vouched for here), and becomes an admin.
    pub async fn create_admin(&self, email: &str, password: &str, reset: bool) -> Result<User> {
        let normalized = normalize_email(email)?;
        let Some((user, _)) = self.store.user_credentials(&normalized).await? else {
            return self.create_user(email, password, Role::Admin, true).await;
        };
        if !reset {
            return Err(Error::Conflict(format!(
                "an account for {normalized} already exists and its password was not set here; \
                 run `lariat admin create {normalized} --reset-password` to give it this \
                 password, sign it out everywhere, revoke its API keys, unlink its sign-in \
                 providers and make it an admin"
            )));
        }
        let hash = self.checked_hash(password, &normalized).await?;
        let everything = Securing {
            password_hash: Some(&hash),
            revoke_keys: true,
            remove_identities: true,
            ..Securing::default()
        };
        self.store.secure_account(&user.id, &everything).await?;
        let update = UserUpdate {
            role: Some(Role::Admin),
            disabled: Some(false),
            email_verified: Some(true),
            ..UserUpdate::default()
        };
        self.record(
            AuditEvent::PasswordChanged,
            None,
            &user.id,
            None,
            json!({"by": "lariat admin create --reset-password"}),
        )
        .await?;
        self.set_user(None, &user.id, &update).await
    }

    // ---- administration ----------------------------------------------------------------------

    pub async fn users(&self, principal: &Principal) -> Result<Vec<User>> {
        principal.require(Role::Admin)?;
        self.store.users().await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        self.store.user(id).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        user_by_email(self.store.as_ref(), email).await
    }

    /// The users whose email contains `query` (ignoring case), all of them for an empty one.
    pub async fn search_users(&self, principal: &Principal, query: &str) -> Result<Vec<User>> {
        let needle = query.trim().to_lowercase();
        let mut users = self.users(principal).await?;
        users.retain(|u| u.email.contains(&needle));
        Ok(users)
    }

    /// The plans a user may be put on.
    pub fn plans(&self) -> &[String] {
        &self.plans
    }

    pub async fn update_user(
        &self,
        principal: &Principal,
        id: &str,
        update: &UserUpdate,
    ) -> Result<User> {
        principal.require(Role::Admin)?;
        if id == principal.user.id && update.role.is_some_and(|r| r != Role::Admin) {
            return Err(Error::Conflict(
                "an admin cannot demote themselves; ask another admin".into(),
            ));
        }
        if id == principal.user.id && update.disabled == Some(true) {
            return Err(Error::Conflict(
                "an admin cannot disable themselves; ask another admin".into(),
            ));
        }
        self.set_user(Some(principal), id, update).await
    }

    /// Changes a user's role, plan or disabled flag: by an admin through
    /// [`Accounts::update_user`], or by the local operator (`actor` `None`).
    pub async fn set_user(
        &self,
        actor: Option<&Principal>,
        id: &str,
        update: &UserUpdate,
    ) -> Result<User> {
        if let Some(plan) = &update.plan
            && !self.plans.contains(plan)
        {
            return Err(Error::InvalidInput(format!(
                "unknown plan {plan:?}: expected one of {}",
                self.plans.join(", ")
            )));
        }
        let user = self
            .store
            .update_user(id, update)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {id}")))?;
        self.audit
            .record(
                AuditEvent::UserChanged,
                actor.map(|a| a.user.id.as_str()),
                Some(id),
                actor.and_then(|a| a.address),
                serde_json::to_value(update).unwrap_or_default(),
            )
            .await?;
        Ok(user)
    }
}
