//! Accounts and sessions: registration, login, rotating refresh tokens, password reset by email,
//! password change, account deletion, and authentication of access tokens.
//!
//! Sessions: every login starts a session, i.e. a family of refresh tokens. Each refresh uses up
//! the presented token and issues its successor; presenting a used token again means it was
//! stolen (or the client is confused), so the whole family is revoked. Access tokens name their
//! session and are refused once it ends.
//!
//! Session checks are cached per user (the set of sessions whose access tokens can still be
//! valid, with the account they belong to, so `me` reads nothing) in the two-tier cache, and every way a session ends drops that set on every instance.
//! A session missing from a cached set (a new login) is looked up again in the database.
//!
//! Every way a session ends is also announced on the bus ([`TOPIC_SESSIONS_ENDED`]), so each
//! instance closes the live sockets of the sessions that ended.

pub mod graphql;
pub mod model;
pub mod password;
mod recovery;
mod sessions;
pub mod store;

use std::sync::Arc;

use url::Url;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, StoreError};
use crate::events::{EndedSessions, SessionsEnded, TOPIC_SESSIONS_ENDED};
use crate::identity::{AuthUser, Sessions, tokens};
use crate::infra::blobs::BlobStore;
use crate::infra::bus::Bus;
use crate::infra::cache::{CachePolicy, TwoTierCache};
use crate::infra::mail::{Email as OutgoingEmail, Mailer};
use crate::infra::redis::Redis;
use crate::infra::time;
use crate::infra::work::WorkGate;
use crate::notifications::{NotificationKind, NotificationService, Notify};
use model::{Account, ConsoleSignIn, Email, IssuedTokens, Password, SignedIn, UserRecord};
use store::{AuthStore, NewRefreshToken, NewSession, OneTimeToken, Rotation, SessionKind};
use tokens::{Claims, TokenError, TokenKeys};

/// Failures of the auth domain.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password: deliberately one error for both.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("this refresh token was already used; the session has been ended for safety")]
    RefreshTokenReplayed,
    #[error("the reset link is invalid, expired or already used")]
    InvalidResetToken,
    #[error("the confirmation link is invalid, expired or already used")]
    InvalidConfirmationToken,
    /// The address is not confirmed, and this needs it.
    #[error(
        "confirm your email address first: open the link in the email we sent (resendConfirmation sends another)"
    )]
    Unconfirmed,
    /// Confirmation emails for the account are used up for the hour.
    #[error("too many confirmation emails for this account; try again later")]
    TooManyConfirmationEmails,
    /// A password-confirmed action got the wrong password; names the input field.
    #[error("the password is incorrect")]
    WrongPassword { field: &'static str },
    /// A moderator suspended or banned the account (the message says until when).
    #[error("{0}")]
    Restricted(String),
    /// The email belongs to a banned account.
    #[error("this email cannot be used for a new account")]
    EmailBanned,
    /// Too many wrong passwords for this email lately, from wherever they came.
    #[error("too many failed sign-ins for this account; try again later")]
    TooManyFailures(std::time::Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Password hashing was refused (the server is busy) or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials
            | AuthError::InvalidToken
            | AuthError::RefreshTokenReplayed => ApiError::Unauthenticated(err.to_string()),
            AuthError::InvalidResetToken | AuthError::InvalidConfirmationToken => {
                ApiError::bad_input("token", err.to_string())
            }
            AuthError::Unconfirmed => ApiError::Forbidden(err.to_string()),
            AuthError::TooManyConfirmationEmails => {
                ApiError::RateLimited(std::time::Duration::from_secs(60 * 60))
            }
            AuthError::Restricted(_) | AuthError::EmailBanned => {
                ApiError::Forbidden(err.to_string())
            }
            AuthError::TooManyFailures(wait) => ApiError::RateLimited(wait),
            AuthError::WrongPassword { field } => ApiError::bad_input(field, err.to_string()),
            AuthError::Store(e) => e.into(),
            AuthError::Api(e) => e,
            AuthError::Internal(e) => ApiError::Internal(e),
        }
    }
}

type AuthResult<T> = Result<T, AuthError>;

/// The auth service. Cheap to share behind an `Arc`.
pub struct AuthService {
    store: AuthStore,
    keys: TokenKeys,
    mailer: Arc<dyn Mailer>,
    blobs: Arc<dyn BlobStore>,
    /// Base of the link in reset emails.
    public_url: Url,
    /// Per user: the account, and the sessions not revoked and used within an access token's
    /// lifetime.
    sessions: Arc<TwoTierCache<SignedIn>>,
    /// Announces ended sessions to every instance.
    bus: Bus,
    /// Bounds password hashing (argon2id takes 19 MiB per hash).
    hashing: WorkGate,
    /// Key of the hashes under which banned emails are kept.
    email_key: [u8; 32],
    /// Tells owners about wrong passwords tried for their account.
    notifications: Arc<NotificationService>,
    /// Whether an unconfirmed address keeps its account from liking, messaging, reporting and
    /// adding places (and out of discovery).
    confirmation_required: bool,
}

/// Password-reset emails one account gets in an hour at most, whoever asks for them.
pub const RESET_EMAILS_PER_HOUR: i64 = 3;
/// Confirmation emails an account may be sent an hour (the one at registration included).
pub const CONFIRMATION_EMAILS_PER_HOUR: i64 = 3;

/// Wrong passwords for one email within [`FAILURE_WINDOW`] before its sign-ins pause.
pub const FAILURES_BEFORE_PAUSE: i64 = 10;
/// How long a failed sign-in counts towards a pause (a success does not end it sooner).
pub const FAILURE_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// How long sign-ins pause after the latest of `failures` recent failures: none below
/// [`FAILURES_BEFORE_PAUSE`], then 1 minute, doubling with each further failure, at most the
/// window.
pub fn pause_after(failures: i64) -> Option<chrono::Duration> {
    if failures < FAILURES_BEFORE_PAUSE {
        return None;
    }
    let minutes = 1i64 << (failures - FAILURES_BEFORE_PAUSE).min(4);
    Some(chrono::Duration::minutes(minutes).min(FAILURE_WINDOW))
}

/// The in-app notice telling an account's owner about wrong passwords tried for it.
fn failed_sign_ins_notice(user_id: Uuid, failures: i64) -> Notify {
    Notify {
        user_id,
        kind: NotificationKind::System,
        title: "Someone tried to sign in to your account".into(),
        body: format!(
            "{failures} sign-ins with a wrong password were tried for your account since you \
             last heard from us. If it wasn't you, choose a new password: sign-ins for your \
             email are paused for a while after 10 wrong ones."
        ),
        data: vec![],
        conversation: None,
    }
}

/// The session cache: short lifetimes, as they bound how long a revocation that raced with a
/// reload of the same set could go unnoticed.
const SESSIONS_CACHE: CachePolicy = CachePolicy::in_process("sessions", 30, 100_000).and_redis(60);

impl AuthService {
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is a different collaborator, wired once in `app`"
    )]
    pub fn new(
        store: AuthStore,
        keys: TokenKeys,
        mailer: Arc<dyn Mailer>,
        blobs: Arc<dyn BlobStore>,
        public_url: Url,
        redis: Option<Redis>,
        bus: Bus,
        hashing: WorkGate,
        notifications: Arc<NotificationService>,
        confirmation_required: bool,
    ) -> Self {
        AuthService {
            notifications,
            confirmation_required,
            email_key: tokens::derive_key(&keys, "banned-email"),
            hashing,
            store,
            keys,
            mailer,
            blobs,
            public_url,
            sessions: TwoTierCache::new(SESSIONS_CACHE, redis, bus.clone()),
            bus,
        }
    }

    /// Call after sessions end: forgets the cached sessions of `user_id` everywhere, then tells
    /// every instance to close the ended sessions' sockets.
    pub async fn sessions_ended(&self, user_id: Uuid, ended: EndedSessions) {
        self.sessions.invalidate(user_id).await;
        let event = SessionsEnded { user_id, ended };
        match serde_json::to_string(&event) {
            Ok(payload) => {
                if let Err(err) = self.bus.publish(TOPIC_SESSIONS_ENDED, payload).await {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "announcing ended sessions failed"
                    );
                }
            }
            Err(err) => tracing::error!(error = %err, "serialising ended sessions failed"),
        }
    }

    /// The keyed hash under which a banned account's email is kept (never the address).
    pub fn email_hash(&self, email: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.email_key)
            .expect("HMAC takes a key of any length");
        mac.update(email.trim().to_lowercase().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Refuses a suspended or banned account, saying until when.
    async fn check_not_restricted(
        &self,
        user_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<()> {
        match self.store.restriction(user_id).await? {
            (_, Some(_)) => Err(AuthError::Restricted(
                "this account has been banned for breaking the community rules".into(),
            )),
            (Some(until), None) if until > now => Err(AuthError::Restricted(format!(
                "this account is suspended until {} UTC",
                until.format("%Y-%m-%d %H:%M")
            ))),
            _ => Ok(()),
        }
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, email: Email, password: Password) -> AuthResult<IssuedTokens> {
        let email_hash = self.email_hash(email.as_str());
        if self.store.email_banned(&email_hash).await? {
            return Err(AuthError::EmailBanned);
        }
        let now = time::now();
        let user = UserRecord {
            id: Uuid::now_v7(),
            email: email.as_str().to_string(),
            password_hash: password::hash(&self.hashing, password.expose().to_string()).await?,
            created_at: now,
            email_confirmed_at: None,
        };
        let (session, refresh_token) = new_session(user.id, SessionKind::App, now);
        self.store.create_user(&user, &email_hash, &session).await?;
        tracing::info!(user.id = %user.id, "account registered");
        if self.confirmation_required {
            self.send_confirmation(&user, now).await?;
        }
        self.issue(user, session.session_id, refresh_token, now)
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str) -> AuthResult<IssuedTokens> {
        let now = time::now();
        let (user, session, refresh_token) =
            self.sign_in(email, password, SessionKind::App, now).await?;
        self.issue(user, session, refresh_token, now)
    }

    /// Signs a staff member in to the moderation console: a console session, whose one token
    /// (for the console's cookie) lasts [`tokens::CONSOLE_SESSION_TTL`], is never refreshed and
    /// reaches nothing else. Who may use the console is the caller's to check.
    #[tracing::instrument(skip_all)]
    pub async fn console_login(&self, email: &str, password: &str) -> AuthResult<ConsoleSignIn> {
        let (user, _, cookie) = self
            .sign_in(email, password, SessionKind::Console, time::now())
            .await?;
        Ok(ConsoleSignIn {
            user_id: user.id,
            cookie,
        })
    }

    /// Checks the credentials and starts a session of `kind`, unless the account is suspended
    /// or banned (also by a restriction that lands meanwhile): the account, the session, and
    /// its first token.
    async fn sign_in(
        &self,
        email: &str,
        password: &str,
        kind: SessionKind,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<(UserRecord, Uuid, String)> {
        let user = self.verify_credentials(email, password, now).await?;
        self.check_not_restricted(user.id, now).await?;
        let (session, token) = new_session(user.id, kind, now);
        if !self.store.create_session(&session, now).await? {
            self.check_not_restricted(session.user_id, now).await?;
            // Lifted again in between: the person can simply try once more.
            return Err(AuthError::Restricted(
                "this account was restricted while signing in".into(),
            ));
        }
        tracing::info!(
            user.id = %user.id,
            session.id = %session.session_id,
            kind = ?kind,
            "signed in"
        );
        let failures = self
            .store
            .sign_in_failures_to_tell(
                user.id,
                &self.email_hash(&user.email),
                FAILURES_BEFORE_PAUSE,
                now,
            )
            .await?;
        if failures > 0 {
            self.notifications
                .notify(failed_sign_ins_notice(user.id, failures))
                .await;
        }
        Ok((user, session.session_id, token))
    }

    /// The account whose email and password these are (the same error for an unknown email
    /// and a wrong password, after the same work). After [`FAILURES_BEFORE_PAUSE`] wrong tries
    /// for one email within [`FAILURE_WINDOW`], from any address, tries for it are refused
    /// unchecked for a while that doubles with each further failure — for unknown emails alike,
    /// so the answer tells nothing about whether an account exists.
    async fn verify_credentials(
        &self,
        email: &str,
        password: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<UserRecord> {
        let key = self.email_hash(email);
        let (failures, latest) = self
            .store
            .sign_in_failures(&key, now - FAILURE_WINDOW)
            .await?;
        if let Some(latest) = latest
            && let Some(wait) = pause_after(failures)
            && latest + wait > now
        {
            let left = (latest + wait - now).to_std().unwrap_or_default();
            return Err(AuthError::TooManyFailures(
                left.max(std::time::Duration::from_secs(1)),
            ));
        }
        // A malformed email cannot belong to an account: same answer as an unknown one.
        let user = match Email::parse(email) {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map_or_else(
            || password::decoy_hash().to_string(),
            |u| u.password_hash.clone(),
        );
        let matches = password::verify(&self.hashing, password.to_string(), hash).await?;
        match user {
            Some(user) if matches => Ok(user),
            _ => {
                self.store.record_sign_in_failure(&key, now).await?;
                if failures + 1 >= FAILURES_BEFORE_PAUSE {
                    tracing::warn!(failures = failures + 1, "sign-ins for one email paused");
                }
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> AuthResult<IssuedTokens> {
        let now = time::now();
        let presented = tokens::hash_opaque(refresh_token);
        let (next_token, next_hash) = tokens::new_opaque_token();
        let next = NewRefreshToken {
            id: Uuid::now_v7(),
            hash: next_hash,
            created_at: now,
            expires_at: now + tokens::REFRESH_TOKEN_TTL,
        };
        match self
            .store
            .rotate_refresh_token(&presented, &next, now)
            .await?
        {
            Rotation::Rotated {
                user_id,
                session_id,
            } => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or(AuthError::InvalidToken)?;
                self.issue(user, session_id, next_token, now)
            }
            Rotation::Replayed {
                user_id,
                session_id,
            } => {
                self.sessions_ended(user_id, EndedSessions::These(vec![session_id]))
                    .await;
                tracing::warn!("a rotated refresh token was replayed; its session is revoked");
                Err(AuthError::RefreshTokenReplayed)
            }
            Rotation::Restricted { user_id } => {
                self.check_not_restricted(user_id, now).await?;
                Err(AuthError::InvalidToken)
            }
            Rotation::Invalid => Err(AuthError::InvalidToken),
        }
    }

    /// Ends the session of `refresh_token`. True when it named a session (now ended).
    pub async fn logout(&self, refresh_token: &str) -> AuthResult<bool> {
        let presented = tokens::hash_opaque(refresh_token);
        let ended = self
            .store
            .revoke_session_by_token(&presented, time::now())
            .await?;
        if let Some((user_id, session_id)) = ended {
            self.sessions_ended(user_id, EndedSessions::These(vec![session_id]))
                .await;
        }
        Ok(ended.is_some())
    }

    /// Changes the password and ends every other session of the user.
    #[tracing::instrument(skip_all, fields(user.id = %user.user_id))]
    pub async fn change_password(
        &self,
        user: AuthUser,
        current: &str,
        new_password: Password,
    ) -> AuthResult<()> {
        self.confirm_password(user.user_id, current, "currentPassword")
            .await?;
        let hash = password::hash(&self.hashing, new_password.expose().to_string()).await?;
        self.store
            .change_password(user.user_id, &hash, user.session_id, time::now())
            .await?;
        self.sessions_ended(user.user_id, EndedSessions::AllBut(vec![user.session_id]))
            .await;
        Ok(())
    }

    /// Deletes the account, every row of it, and every blob it owns.
    #[tracing::instrument(skip_all, fields(user.id = %user.user_id))]
    pub async fn delete_account(&self, user: AuthUser, password: &str) -> AuthResult<()> {
        self.confirm_password(user.user_id, password, "password")
            .await?;
        let email = self.user(user.user_id).await?.email;
        let keys = self
            .store
            .delete_user(user.user_id, &self.email_hash(&email), time::now())
            .await?;
        self.sessions_ended(user.user_id, EndedSessions::all())
            .await;
        for key in &keys {
            // The rows are gone; a blob that fails to delete is an orphan the daily cleanup
            // job removes, so failing the request here would only confuse the client.
            if let Err(err) = self.blobs.delete(key).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "blob of a deleted account not deleted"
                );
            }
        }
        tracing::info!(blobs = keys.len(), "account deleted");
        Ok(())
    }

    pub async fn user(&self, user_id: Uuid) -> AuthResult<UserRecord> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidToken)
    }

    async fn confirm_password(
        &self,
        user_id: Uuid,
        password: &str,
        field: &'static str,
    ) -> AuthResult<()> {
        let user = self.user(user_id).await?;
        if password::verify(&self.hashing, password.to_string(), user.password_hash).await? {
            Ok(())
        } else {
            Err(AuthError::WrongPassword { field })
        }
    }

    fn issue(
        &self,
        user: UserRecord,
        session_id: Uuid,
        refresh_token: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<IssuedTokens> {
        let (access_token, expires_at) = self.keys.issue(user.id, session_id, now)?;
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            expires_at,
            user,
        })
    }
}

/// The oldest `last_used_at` of a session an access token can still belong to: every access
/// token still valid was issued at a sign-in or refresh within its lifetime, and both stamp it.
fn active_since() -> chrono::DateTime<chrono::Utc> {
    time::now() - tokens::ACCESS_TOKEN_TTL - chrono::Duration::minutes(5)
}

/// A new session id with its first refresh token (the token for the client, the row to store).
fn new_session(
    user_id: Uuid,
    kind: SessionKind,
    now: chrono::DateTime<chrono::Utc>,
) -> (NewSession, String) {
    let (token, hash) = tokens::new_opaque_token();
    let lifetime = match kind {
        SessionKind::App => tokens::REFRESH_TOKEN_TTL,
        SessionKind::Console => tokens::CONSOLE_SESSION_TTL,
    };
    let session = NewSession {
        session_id: Uuid::now_v7(),
        user_id,
        kind,
        token: NewRefreshToken {
            id: Uuid::now_v7(),
            hash,
            created_at: now,
            expires_at: now + lifetime,
        },
    };
    (session, token)
}

/// Turns `ApiResult` helpers' `AuthError` into the API error (used by resolvers).
pub fn api<T>(r: AuthResult<T>) -> ApiResult<T> {
    r.map_err(ApiError::from)
}

#[cfg(test)]
mod pause_tests {
    use super::*;

    #[test]
    fn sign_ins_pause_after_ten_failures_for_a_doubling_while() {
        let minutes = |n| pause_after(n).map(|d| d.num_minutes());
        assert_eq!(minutes(0), None);
        assert_eq!(minutes(9), None);
        assert_eq!(minutes(10), Some(1));
        assert_eq!(minutes(11), Some(2));
        assert_eq!(minutes(12), Some(4));
        assert_eq!(minutes(13), Some(8));
        assert_eq!(minutes(14), Some(15));
        assert_eq!(minutes(1000), Some(15));
    }
}
