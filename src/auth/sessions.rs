//! The session check: whether an access token (or a console cookie) still stands for a live
//! session of a usable account, cached per person.

use super::*;

impl AuthService {
    /// Checks an access token's session: it must still be active and belong to `sub`.
    pub async fn authenticate(&self, claims: &Claims) -> AuthResult<AuthUser> {
        let user = AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
        };
        self.account(user).await.map(|_| user)
    }

    /// Whether `user`'s session is still active, asked of the database rather than the cache
    /// (which another instance's ending of it reaches a moment later). A socket asks once more
    /// after it has registered for session ends: a session that ended before is seen here, one
    /// that ends after by the socket hub.
    pub async fn session_still_active(&self, user: AuthUser) -> AuthResult<bool> {
        Ok(self
            .store
            .active_sessions(user.user_id, active_since())
            .await?
            .contains(&user.session_id))
    }

    /// The signed-in caller's account, if their session is still active: from the session
    /// cache, or read (and cached) when nothing is cached for them or the session is not in the
    /// cached set (a new login).
    pub async fn account(&self, user: AuthUser) -> AuthResult<Account> {
        match self.live_session(user.user_id, user.session_id).await? {
            Some(s) if s.sessions.contains(&user.session_id) => Ok(s.account.clone()),
            _ => Err(AuthError::InvalidToken),
        }
    }

    async fn live_session(
        &self,
        user_id: Uuid,
        session: Uuid,
    ) -> AuthResult<Option<Arc<SignedIn>>> {
        if let Some(cached) = self.sessions.get_many(&[user_id]).await.remove(&user_id)
            && cached.sessions.contains(&session)
        {
            return Ok(Some(cached));
        }
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        let sessions = self.store.active_sessions(user_id, active_since()).await?;
        let entry = Arc::new(SignedIn {
            account: Account::from(user),
            sessions,
        });
        self.sessions
            .insert_many(vec![(user_id, entry.clone())])
            .await;
        Ok(Some(entry))
    }

    /// The signed-in staff member of a console cookie: valid while its console session is
    /// active and younger than [`tokens::CONSOLE_SESSION_TTL`].
    pub async fn console_session(&self, cookie: &str) -> AuthResult<AuthUser> {
        let now = time::now();
        match self
            .store
            .session_of_refresh_token(
                &tokens::hash_opaque(cookie),
                now - tokens::CONSOLE_SESSION_TTL,
                now,
            )
            .await?
        {
            Some((user_id, session_id)) => Ok(AuthUser {
                user_id,
                session_id,
            }),
            None => Err(AuthError::InvalidToken),
        }
    }

    /// Verifies a bearer token's signature and expiry (no database).
    pub fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        self.keys.verify(token)
    }
}

#[async_trait::async_trait]
impl Sessions for AuthService {
    async fn signed_in(&self, claims: &Claims) -> ApiResult<AuthUser> {
        api(self.authenticate(claims).await)
    }

    async fn confirmed(&self, user: AuthUser) -> ApiResult<()> {
        api(self.must_be_confirmed(user).await)
    }
}
