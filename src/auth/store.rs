//! What the auth service needs from the database, written once for both backends (see
//! [`crate::infra::sql`]). Every method that writes more than one row runs in one transaction.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::UserRecord;
use crate::error::{StoreError, on_constraint};
use crate::infra::db::Db;
use crate::infra::sql::{
    Backend, Sql, Ts, execute, execute_in, fetch, fetch_scalar, for_update, in_both_transactions,
    returning, with_db,
};

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub kind: SessionKind,
    pub token: NewRefreshToken,
}

/// Who a session is for. An app session's refresh token rotates and its access tokens reach the
/// API; a console session's token is the console's cookie and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    App,
    Console,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::App => "app",
            SessionKind::Console => "console",
        }
    }
}

/// A refresh token to store (hash only).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub hash: [u8; 32],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now used, and the successor is stored in the same session.
    Rotated { user_id: Uuid, session_id: Uuid },
    /// The token had already been rotated: someone replayed it, so the whole session (token
    /// family) has been revoked.
    Replayed { user_id: Uuid, session_id: Uuid },
    /// Unknown, expired, its session has ended, or it is a console session's.
    Invalid,
    /// The account is suspended or banned: nothing was rotated.
    Restricted { user_id: Uuid },
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The refresh token presented, with its session. Two concurrent presentations of one token
/// serialise on these rows, and the second sees the first one's `used_at` (a replay).
const PRESENTED_TOKEN: Sql = for_update!(
    "SELECT rt.session_id, s.user_id, rt.expires_at, rt.used_at, s.revoked_at
       FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
      WHERE rt.token_hash = $1 AND s.kind = 'app'",
    "OF rt, s"
);

/// The account, locked, if it is neither suspended nor banned at `$2`. A suspension or ban
/// writes this row before it ends the account's sessions, so a sign-in or refresh that locks
/// it first has its session ended by the restriction, and one that waits for the restriction
/// sees it here and makes nothing.
const UNRESTRICTED_ACCOUNT: Sql = for_update!(
    "SELECT id FROM users
      WHERE id = $1 AND banned_at IS NULL AND (suspended_until IS NULL OR suspended_until <= $2)"
);

/// What the accounts store writes inside its write transactions, on either backend.
pub(super) trait AccountsTx {
    /// Stores refresh token `token` of session `session_id`.
    fn insert_refresh_token(
        &mut self,
        session_id: Uuid,
        token: &NewRefreshToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts `session` (with its first refresh token), and records its person as active.
    fn insert_session(
        &mut self,
        session: &NewSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets `user_id`'s new password hash; every outstanding reset link of theirs stops working
    /// (a link sent before a change, or the one just used).
    fn set_password(
        &mut self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

in_both_transactions!(impl AccountsTx {
    async fn insert_refresh_token(
        &mut self,
        session_id: Uuid,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        let tx = &mut **self;
        execute_in!(
            tx,
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            token.id,
            session_id,
            &token.hash[..],
            Ts(token.created_at),
            Ts(token.expires_at)
        );
        Ok(())
    }

    async fn insert_session(&mut self, session: &NewSession) -> Result<(), StoreError> {
        let tx = &mut **self;
        execute_in!(
            tx,
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, kind)
             VALUES ($1, $2, $3, $3, $4)",
            session.session_id,
            session.user_id,
            Ts(session.token.created_at),
            session.kind.as_str()
        );
        self.insert_refresh_token(session.session_id, &session.token)
            .await?;
        let tx = &mut **self;
        execute_in!(
            tx,
            "UPDATE users SET last_active_at = $2 WHERE id = $1",
            session.user_id,
            Ts(session.token.created_at)
        );
        Ok(())
    }

    async fn set_password(
        &mut self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = &mut **self;
        execute_in!(
            tx,
            "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
            user_id,
            hash,
            Ts(now)
        );
        execute_in!(
            tx,
            "UPDATE password_reset_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            user_id,
            Ts(now)
        );
        Ok(())
    }
});

/// Accounts, sessions, refresh and reset tokens.
#[derive(Clone)]
pub struct AuthStore {
    db: Db,
}

mod one_time;
pub use one_time::OneTimeToken;

impl AuthStore {
    /// Ends every session of person `$1` at `$2` (their refresh tokens stop working, and their
    /// access tokens at the next session check). A store that does this with more (a moderator's
    /// suspension or ban) runs it inside its transaction.
    pub const END_SESSIONS: &str =
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";

    pub fn new(db: &Db) -> Self {
        AuthStore { db: db.clone() }
    }

    /// Inserts the account (`email_hash`: its email's keyed hash), its default notification
    /// preferences and its first session.
    /// `Conflict` when the email is taken.
    pub async fn create_user(
        &self,
        user: &UserRecord,
        email_hash: &[u8; 32],
        session: &NewSession,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at, updated_at,
                                    last_active_at)
                 VALUES ($1, $2, $3, $4, $4, $4)",
            )
            .bind(user.id)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(Ts(user.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| on_constraint(e, "an account with this email already exists"))?;
            execute_in!(
                tx,
                "INSERT INTO notification_preferences (user_id, updated_at) VALUES ($1, $2)",
                user.id,
                Ts(user.created_at)
            );
            // The same email as an account deleted with a case open: a ban of that one bans
            // this one too.
            execute_in!(
                tx,
                "UPDATE tombstones SET successor_id = $2 WHERE email_hash = $1",
                &email_hash[..],
                user.id
            );
            tx.insert_session(session).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT id, email, password_hash, created_at, email_confirmed_at FROM users WHERE email = $1",
            email
        ))
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT id, email, password_hash, created_at, email_confirmed_at FROM users WHERE id = $1",
            id
        ))
    }

    /// The user and session of a refresh token that is unused, unexpired, made after
    /// `created_after`, and whose session is active (the console's cookie session).
    pub async fn session_of_refresh_token(
        &self,
        presented: &[u8; 32],
        created_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT s.user_id, s.id
                   FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                  WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > $3
                    AND t.created_at > $2 AND s.revoked_at IS NULL AND s.kind = 'console'",
            &presented[..],
            Ts(created_after),
            Ts(now)
        ))
    }

    /// The moderation restriction on signing in: suspended until, banned since.
    pub async fn restriction(
        &self,
        user_id: Uuid,
    ) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT suspended_until, banned_at FROM users WHERE id = $1",
            user_id
        )
        .unwrap_or((None, None)))
    }

    /// Whether the keyed hash of an email belongs to a banned account.
    pub async fn email_banned(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT EXISTS (SELECT 1 FROM banned_emails WHERE email_hash = $1)",
            &hash[..]
        ))
    }

    /// Starts a session (login) and records the user as active, unless the account is
    /// suspended or banned when the session would begin (false: nothing was made).
    pub async fn create_session(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let unrestricted: Option<Uuid> = sqlx::query_scalar(pool.pick(UNRESTRICTED_ACCOUNT))
                .bind(session.user_id)
                .bind(Ts(now))
                .fetch_optional(&mut *tx)
                .await?;
            if unrestricted.is_none() {
                return Ok(false);
            }
            tx.insert_session(session).await?;
            tx.commit().await?;
            true
        }))
    }

    /// Rotates the refresh token whose hash is `presented`, storing `next` as its successor.
    pub async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            // The account is locked before the session, in the order a restriction writes them.
            let owner: Option<Uuid> = sqlx::query_scalar(
                "SELECT s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
                  WHERE rt.token_hash = $1",
            )
            .bind(&presented[..])
            .fetch_optional(&mut *tx)
            .await?;
            let Some(owner) = owner else {
                return Ok(Rotation::Invalid);
            };
            let unrestricted: Option<Uuid> = sqlx::query_scalar(pool.pick(UNRESTRICTED_ACCOUNT))
                .bind(owner)
                .bind(Ts(now))
                .fetch_optional(&mut *tx)
                .await?;
            if unrestricted.is_none() {
                return Ok(Rotation::Restricted { user_id: owner });
            }
            let row: Option<TokenRow> = sqlx::query_as(pool.pick(PRESENTED_TOKEN))
                .bind(&presented[..])
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(Rotation::Invalid);
            };
            if row.revoked_at.is_some() {
                return Ok(Rotation::Invalid);
            }
            if row.used_at.is_some() {
                execute_in!(
                    tx,
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1",
                    row.session_id,
                    Ts(now)
                );
                tx.commit().await?;
                return Ok(Rotation::Replayed {
                    user_id: row.user_id,
                    session_id: row.session_id,
                });
            }
            if row.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            execute_in!(
                tx,
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                &presented[..],
                Ts(now)
            );
            tx.insert_refresh_token(row.session_id, next).await?;
            execute_in!(
                tx,
                "UPDATE sessions SET last_used_at = $2 WHERE id = $1",
                row.session_id,
                Ts(now)
            );
            execute_in!(
                tx,
                "UPDATE users SET last_active_at = $2 WHERE id = $1",
                row.user_id,
                Ts(now)
            );
            tx.commit().await?;
            Ok(Rotation::Rotated {
                user_id: row.user_id,
                session_id: row.session_id,
            })
        })
    }

    /// Ends the session that `presented` belongs to: its user and session, or `None` when no
    /// such token exists.
    pub async fn revoke_session_by_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_optional,
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2)
                  WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)
              RETURNING user_id, id",
            &presented[..],
            Ts(now)
        ))
    }

    /// The user's sessions that are not revoked and were used (signed in or refreshed) at or
    /// after `since`.
    pub async fn active_sessions(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_all,
            "SELECT id FROM sessions
                  WHERE user_id = $1 AND revoked_at IS NULL AND last_used_at >= $2
                    AND kind = 'app'",
            user_id,
            Ts(since)
        ))
    }

    /// Failed sign-ins for the email with this keyed hash after `since`: how many, and when the
    /// latest was.
    pub async fn sign_in_failures(
        &self,
        email_hash: &[u8; 32],
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_one,
            "SELECT COUNT(*), MAX(failed_at) FROM sign_in_failures
              WHERE email_hash = $1 AND failed_at > $2",
            &email_hash[..],
            Ts(since)
        ))
    }

    pub async fn record_sign_in_failure(
        &self,
        email_hash: &[u8; 32],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "INSERT INTO sign_in_failures (email_hash, failed_at) VALUES ($1, $2)",
            &email_hash[..],
            Ts(at)
        );
        Ok(())
    }

    /// The failed sign-ins for `user_id`'s email since the owner was last told (or the account
    /// was made), when there are at least `at_least`; they count as told from `now` on.
    pub async fn sign_in_failures_to_tell(
        &self,
        user_id: Uuid,
        email_hash: &[u8; 32],
        at_least: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let failures: i64 = fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT COUNT(*) FROM sign_in_failures f, users u
              WHERE u.id = $1 AND f.email_hash = $2
                AND f.failed_at > COALESCE(u.sign_in_failures_told_at, u.created_at)",
            user_id,
            &email_hash[..]
        );
        if failures < at_least {
            return Ok(0);
        }
        execute!(
            &self.db,
            "UPDATE users SET sign_in_failures_told_at = $2 WHERE id = $1",
            user_id,
            Ts(now)
        );
        Ok(failures)
    }

    /// Sets a new password hash, revokes every session except `keep_session`, and uses up
    /// every outstanding reset token (a reset link sent before the change no longer works).
    pub async fn change_password(
        &self,
        user_id: Uuid,
        new_password_hash: &str,
        keep_session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.set_password(user_id, new_password_hash, now).await?;
            execute_in!(
                tx,
                "UPDATE sessions SET revoked_at = $3
                  WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                user_id,
                keep_session,
                Ts(now)
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes the account and (by cascade) every row of it. Returns the blob keys its rows
    /// pointed to, for the caller to delete from object storage after the commit.
    pub async fn delete_user(
        &self,
        user_id: Uuid,
        email_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        const PHOTO_KEYS: Sql =
            for_update!("SELECT storage_key, thumbnail_key FROM photos WHERE user_id = $1");
        let keys: Vec<(String, String)> = with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut keys: Vec<(String, String)> = sqlx::query_as(pool.pick(PHOTO_KEYS))
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
            // Photos a report's snapshot shows stay as evidence (the cleanup job removes them
            // once no report refers to them).
            let evidence: Vec<String> = sqlx::query_scalar(
                "SELECT reported_photo_keys FROM reports WHERE reported_id = $1",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            let evidence: std::collections::HashSet<String> = evidence
                .iter()
                .filter_map(|keys| serde_json::from_str::<Vec<String>>(keys).ok())
                .flatten()
                .collect();
            keys.retain(|(photo, _)| !evidence.contains(photo));
            // With a case open (reports waiting, or a hold), a tombstone stays for moderators.
            execute_in!(
                tx,
                "INSERT INTO tombstones (user_id, email_hash, deleted_at)
                 SELECT $1, $2, $3
                  WHERE EXISTS (SELECT 1 FROM reports WHERE reported_id = $1 AND status = 'OPEN')
                     OR EXISTS (SELECT 1 FROM users WHERE id = $1 AND hidden_until > $3)
                 ON CONFLICT (user_id) DO NOTHING",
                user_id,
                &email_hash[..],
                Ts(now)
            );
            execute_in!(tx, "DELETE FROM users WHERE id = $1", user_id);
            tx.commit().await?;
            keys
        });
        Ok(keys.into_iter().flat_map(|(a, b)| [a, b]).collect())
    }
}
