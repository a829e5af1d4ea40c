//! [`AccountStore`] on the same `SqlStore` (SQLite and PostgreSQL, one body of SQL).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use base::sql::{SqlStore, word};

use crate::accounts::AccountStore;
use crate::accounts::{ApiKeyInfo, NewUser, UserUpdate};
use crate::store::{IssuedToken, RefreshOutcome, Revoked, Securing, StoredSession};
use base::error::{Error, Result};
use base::principal::{Role, Scope, User};
use base::types::now_ms;

const USER_COLUMNS: &str =
    "u.id, u.email, u.email_verified, u.role, u.plan, u.disabled, u.created_at";
/// A session not revoked and not past its absolute end (`$2` is now).
const LIVE_SESSION: &str = "s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > $2)";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        role: word(row, "role", Role::parse)?,
        plan: row.try_get("plan")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: row.try_get("key_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: Scope::split(&row.try_get::<String, _>("scopes")?)?,
        created_at: row.try_get("key_created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("key_expires_at")?,
        parent_id: row.try_get("parent_id")?,
    })
}

const KEY_COLUMNS: &str = "k.id AS key_id, k.name, k.prefix, k.scopes, \
     k.created_at AS key_created_at, k.last_used_at, k.expires_at AS key_expires_at, k.parent_id";

/// Revokes every live session and API key of a user.
async fn revoke_credentials(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<()> {
    let now = now_ms();
    for table in ["sessions", "api_keys"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL"
        )))
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Spends every outstanding reset and address-change link of a user: a link mailed before a
/// credential changed must not outlive the change.
pub(super) async fn spend_links(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL \
         AND purpose IN ('reset', 'email')",
    )
    .bind(now_ms())
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A unique violation on the users' e-mail is "already exists"; anything else stays as it is.
fn taken_or(e: sqlx::Error, email: &str) -> Error {
    if matches!(&e, sqlx::Error::Database(db) if db.is_unique_violation()) {
        Error::Conflict(format!("an account for {email} already exists"))
    } else {
        e.into()
    }
}

/// Inserts the user; a taken address is a conflict.
pub(super) async fn insert_user<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    new: &NewUser,
) -> Result<()> {
    let u = &new.user;
    sqlx::query(
        "INSERT INTO users (id, email, email_verified, password_hash, role, plan, disabled, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&u.id)
    .bind(&u.email)
    .bind(i64::from(u.email_verified))
    .bind(&new.password_hash)
    .bind(u.role.as_str())
    .bind(&u.plan)
    .bind(i64::from(u.disabled))
    .bind(u.created_at)
    .execute(executor)
    .await
    .map_err(|e| taken_or(e, &u.email))?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_user(&self, new: &NewUser) -> Result<()> {
        insert_user(&self.pool, new).await
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"
        )))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.created_at, u.email"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<Option<User>> {
        let mut tx = self.begin_write().await?;
        if let Some(role) = update.role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(plan) = &update.plan {
            sqlx::query("UPDATE users SET plan = $1 WHERE id = $2")
                .bind(plan)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(verified) = update.email_verified {
            sqlx::query("UPDATE users SET email_verified = $1 WHERE id = $2")
                .bind(i64::from(verified))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(disabled) = update.disabled {
            sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if disabled {
                revoke_credentials(&mut tx, id).await?;
            }
        }
        tx.commit().await?;
        self.user(id).await
    }

    async fn create_session(
        &self,
        session: &StoredSession,
        refresh_hash: &str,
        refresh_expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, user_agent, address, last_used_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(session.created_at)
        .bind(&session.user_agent)
        .bind(&session.address)
        .bind(session.last_used_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(refresh_hash)
        .bind(&session.id)
        .bind(refresh_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_user(&self, session_id: &str) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND {LIVE_SESSION}"
        )))
        .bind(session_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn sessions(&self, user_id: &str) -> Result<Vec<StoredSession>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.user_id, s.user_agent, s.address, s.created_at, s.last_used_at, \
             s.expires_at FROM sessions s WHERE s.user_id = $1 AND {LIVE_SESSION} \
             ORDER BY COALESCE(s.last_used_at, s.created_at) DESC, s.id"
        )))
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredSession {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    user_agent: r.try_get("user_agent")?,
                    address: r.try_get("address")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND ($3 = '' OR id = $3) AND id <> $4",
        )
        .bind(now_ms())
        .bind(user_id)
        .bind(only.unwrap_or_default())
        .bind(keep.unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn secure_account(
        &self,
        user_id: &str,
        change: &Securing<'_>,
    ) -> Result<Option<Revoked>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if let Some(email) = change.verify {
            let done =
                sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1 AND email = $2")
                    .bind(user_id)
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
        }
        if let Some(hash) = change.password_hash {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        let mut revoked = Revoked {
            sessions: sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                 AND id <> $3 AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(now)
            .bind(user_id)
            .bind(change.keep_session.unwrap_or_default())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            ..Revoked::default()
        };
        if change.revoke_keys {
            revoked.keys = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if change.remove_identities {
            let rows = sqlx::query("DELETE FROM identities WHERE user_id = $1 RETURNING provider")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
            revoked.identities = rows
                .iter()
                .map(|r| r.try_get("provider"))
                .collect::<std::result::Result<_, _>>()?;
        }
        spend_links(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT r.session_id, r.expires_at, r.used_at, s.revoked_at, \
             s.expires_at AS session_expires_at FROM refresh_tokens r \
             JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id: String = row.try_get("session_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        let session_expires_at: Option<i64> = row.try_get("session_expires_at")?;
        if revoked_at.is_some() || expires_at <= now || session_expires_at.is_some_and(|e| e <= now)
        {
            return Ok(RefreshOutcome::Invalid);
        }
        // Only one of two concurrent rotations of the same token can flip `used_at`.
        let claimed = used_at.is_none()
            && sqlx::query(
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
            )
            .bind(now)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        if !claimed {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(new_hash)
        .bind(&session_id)
        .bind(session_expires_at.map_or(new_expires_at, |e| e.min(new_expires_at)))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        let user = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        )))
        .bind(&session_id)
        .fetch_one(&mut *tx)
        .await?;
        let user = user_from_row(&user)?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated { user, session_id })
    }

    async fn revoke_session(&self, session_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_api_key(&self, user_id: &str, key: &ApiKeyInfo, key_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, scopes, \
             expires_at, parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&key.id)
        .bind(user_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(key_hash)
        .bind(key.created_at)
        .bind(Scope::join(&key.scopes))
        .bind(key.expires_at)
        .bind(key.parent_id.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.user_id = $1 AND k.revoked_at IS NULL \
             ORDER BY k.created_at DESC, k.id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, user_id: &str, key_id: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(key_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // the keys made with it, and theirs
        sqlx::query(
            "WITH RECURSIVE made(id) AS (SELECT id FROM api_keys WHERE parent_id = $2 \
             UNION SELECT k.id FROM api_keys k JOIN made m ON k.parent_id = m.id) \
             UPDATE api_keys SET revoked_at = $1 WHERE user_id = $3 AND revoked_at IS NULL \
             AND id IN (SELECT id FROM made)",
        )
        .bind(now)
        .bind(key_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn api_key_user(&self, key_hash: &str) -> Result<Option<(ApiKeyInfo, User)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS}, {USER_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL \
             AND (k.expires_at IS NULL OR k.expires_at > $2)"
        )))
        .bind(key_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((key_from_row(&r)?, user_from_row(&r)?)))
            .transpose()
    }

    async fn touch_api_key(&self, key_id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_token(&self, token: &IssuedToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_tokens (token_hash, user_id, purpose, payload, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.hash)
        .bind(&token.user_id)
        .bind(token.purpose)
        .bind(&token.payload)
        .bind(now_ms())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_user(&self, token_hash: &str, purpose: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, t.payload FROM auth_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3"
        )))
        .bind(token_hash)
        .bind(purpose)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("payload")?)))
            .transpose()
    }

    async fn change_email(&self, user_id: &str, email: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET email = $1, email_verified = 1 WHERE id = $2")
            .bind(email)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| taken_or(e, email))?;
        spend_links(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn consume_token(&self, token_hash: &str, purpose: &str) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE auth_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 \
             AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
