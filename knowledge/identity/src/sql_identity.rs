//! [`IdentityStore`] on the SQL store: linked OpenID identities and sign-ins in progress.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use base::sql::SqlStore;

use crate::accounts::sso::Identity;
use crate::accounts::sso::IdentityStore;
use crate::accounts::{NewUser, is_password_hash};
use crate::sql_accounts::{insert_user, spend_links};
use crate::store::{SsoState, Unlinked};
use base::error::{Error, Result};
use base::types::now_ms;

const IDENTITY_COLUMNS: &str =
    "id, user_id, provider, issuer, subject, email, created_at, last_used_at";

fn identity_from_row(row: &AnyRow) -> Result<Identity> {
    Ok(Identity {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn linked_or(e: sqlx::Error) -> Error {
    if matches!(&e, sqlx::Error::Database(db) if db.is_unique_violation()) {
        Error::Conflict("this sign-in is already linked to a Lariat account".into())
    } else {
        e.into()
    }
}

async fn insert_identity<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    identity: &Identity,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider, issuer, subject, email, created_at, \
         last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&identity.id)
    .bind(&identity.user_id)
    .bind(&identity.provider)
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(&identity.email)
    .bind(identity.created_at)
    .bind(identity.last_used_at)
    .execute(executor)
    .await
    .map_err(linked_or)?;
    Ok(())
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn save_sso_state(&self, state: &SsoState) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // abandoned sign-ins go as new ones come
        sqlx::query("DELETE FROM sso_states WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sso_states (state_hash, provider, nonce, pkce_verifier, user_id, \
             next_path, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&state.state_hash)
        .bind(&state.provider)
        .bind(&state.nonce)
        .bind(&state.pkce_verifier)
        .bind(&state.user_id)
        .bind(&state.next_path)
        .bind(state.created_at)
        .bind(state.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_sso_state(&self, state_hash: &str) -> Result<Option<SsoState>> {
        let row = sqlx::query(
            "DELETE FROM sso_states WHERE state_hash = $1 RETURNING state_hash, provider, nonce, \
             pkce_verifier, user_id, next_path, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SsoState {
                state_hash: r.try_get("state_hash")?,
                provider: r.try_get("provider")?,
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                user_id: r.try_get("user_id")?,
                next_path: r.try_get("next_path")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn identity(&self, issuer: &str, subject: &str) -> Result<Option<Identity>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE issuer = $1 AND subject = $2"
        )))
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn identities(&self, user_id: &str) -> Result<Vec<Identity>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn link_identity(&self, identity: &Identity) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_identity(&mut *tx, identity).await?;
        spend_links(&mut tx, &identity.user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_user_with_identity(&self, user: &NewUser, identity: &Identity) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_user(&mut *tx, user).await?;
        insert_identity(&mut *tx, identity).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_identity(&self, id: &str, email: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE identities SET email = $1, last_used_at = $2 WHERE id = $3")
            .bind(email)
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unlink_identity(&self, user_id: &str, id: &str) -> Result<Unlinked> {
        let mut tx = self.begin_write().await?;
        // the user's row, locked, so two unlinks at once cannot both leave no way in
        let Some(row) =
            sqlx::query("UPDATE users SET id = id WHERE id = $1 RETURNING password_hash")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(Unlinked::NotFound);
        };
        let has_password = is_password_hash(&row.try_get::<String, _>("password_hash")?);
        let others: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM identities WHERE user_id = $1 AND id <> $2")
                .bind(user_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let mine = sqlx::query("SELECT id FROM identities WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !mine {
            return Ok(Unlinked::NotFound);
        }
        if !has_password && others == 0 {
            return Ok(Unlinked::LastWayIn);
        }
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        spend_links(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(Unlinked::Done)
    }
}
