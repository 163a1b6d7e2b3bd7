//! The single-use tokens sent by email (password reset, email confirmation): issuing them
//! within an hourly limit, and using one up.

use super::*;

/// The single-use tokens sent by email, each in its own table.
#[derive(Clone, Copy)]
pub enum OneTimeToken {
    PasswordReset,
    EmailConfirmation,
}

/// Using up a single-use token inside a write transaction, on either backend.
trait OneTimeTx {
    /// Uses up the presented token of `kind` (`presented`, its hash) when it is unused and
    /// unexpired at `now`: the account it is for, or `None`.
    fn consume_token(
        &mut self,
        kind: OneTimeToken,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<Option<Uuid>, StoreError>> + Send;
}

in_both_transactions!(impl OneTimeTx {
    async fn consume_token(
        &mut self,
        kind: OneTimeToken,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(kind.sql().3)
            .bind(&presented[..])
            .bind(Ts(now))
            .fetch_optional(&mut **self)
            .await?)
    }
});

macro_rules! one_time_sql {
    ($table:literal) => {
        (
            concat!(
                "SELECT COUNT(*) FROM ",
                $table,
                " WHERE user_id = $1 AND created_at > $2"
            ),
            concat!(
                "UPDATE ",
                $table,
                " SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL"
            ),
            concat!(
                "INSERT INTO ",
                $table,
                " (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
            ),
            concat!(
                "UPDATE ",
                $table,
                " SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                  RETURNING user_id"
            ),
        )
    };
}

impl OneTimeToken {
    /// Locks the account the token is for (only one whose email is unconfirmed, for a
    /// confirmation).
    fn account(self) -> Sql {
        match self {
            OneTimeToken::PasswordReset => for_update!("SELECT id FROM users WHERE id = $1"),
            OneTimeToken::EmailConfirmation => {
                for_update!("SELECT id FROM users WHERE id = $1 AND email_confirmed_at IS NULL")
            }
        }
    }

    /// Counting the last hour's, ending the earlier ones, storing one, consuming one.
    fn sql(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            OneTimeToken::PasswordReset => one_time_sql!("password_reset_tokens"),
            OneTimeToken::EmailConfirmation => one_time_sql!("email_confirmation_tokens"),
        }
    }

    fn count_since(self) -> &'static str {
        self.sql().0
    }

    fn end_earlier(self) -> &'static str {
        self.sql().1
    }

    fn insert(self) -> &'static str {
        self.sql().2
    }
}

impl AuthStore {
    /// Stores a new token of `kind` for the account, ending its earlier ones; false (nothing
    /// stored) when the account is gone, already has `per_hour` tokens from the last hour, or
    /// (for a confirmation) has its email confirmed already.
    pub async fn create_one_time_token(
        &self,
        kind: OneTimeToken,
        user_id: Uuid,
        token: &NewRefreshToken,
        per_hour: i64,
    ) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            // Requests for one account queue here, so they count each other.
            let exists: Option<Uuid> = sqlx::query_scalar(pool.pick(kind.account()))
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(false);
            }
            let made: i64 = sqlx::query_scalar(kind.count_since())
                .bind(user_id)
                .bind(Ts(token.created_at - chrono::Duration::hours(1)))
                .fetch_one(&mut *tx)
                .await?;
            if made >= per_hour {
                return Ok(false);
            }
            execute_in!(tx, kind.end_earlier(), user_id, Ts(token.created_at));
            execute_in!(
                tx,
                kind.insert(),
                token.id,
                user_id,
                &token.hash[..],
                Ts(token.created_at),
                Ts(token.expires_at)
            );
            tx.commit().await?;
            true
        }))
    }

    /// Consumes a valid, unused, unexpired confirmation token: confirms its account's email and
    /// uses up the account's other confirmation tokens. The account, or `None` when the token
    /// is not valid (nothing changes then).
    pub async fn confirm_email(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let Some(user_id) = tx
                .consume_token(OneTimeToken::EmailConfirmation, presented, now)
                .await?
            else {
                return Ok(None);
            };
            execute_in!(
                tx,
                OneTimeToken::EmailConfirmation.end_earlier(),
                user_id,
                Ts(now)
            );
            execute_in!(
                tx,
                "UPDATE users SET email_confirmed_at = $2
                  WHERE id = $1 AND email_confirmed_at IS NULL",
                user_id,
                Ts(now)
            );
            tx.commit().await?;
            Ok(Some(user_id))
        })
    }

    /// Consumes a valid, unused, unexpired reset token: sets the new password hash, marks every
    /// reset token of the user used, and revokes every session. The user id, or `None` when the
    /// token is not valid (nothing changes then).
    pub async fn reset_password(
        &self,
        presented: &[u8; 32],
        new_password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let Some(user_id) = tx
                .consume_token(OneTimeToken::PasswordReset, presented, now)
                .await?
            else {
                return Ok(None);
            };
            tx.set_password(user_id, new_password_hash, now).await?;
            execute_in!(tx, AuthStore::END_SESSIONS, user_id, Ts(now));
            tx.commit().await?;
            Ok(Some(user_id))
        })
    }
}
