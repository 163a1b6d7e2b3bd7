//! Password reset and email confirmation: the links sent by email, and what following them
//! does.

use super::*;

impl AuthService {
    /// Emails a single-use reset link when the address has an account (at most
    /// [`RESET_EMAILS_PER_HOUR`] an hour; each new link ends the earlier ones). Returns at once
    /// either way (the email is sent in the background), so neither the answer nor its timing
    /// reveals whether the account exists.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &Email) -> AuthResult<()> {
        let Some(user) = self.store.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        let Some((token, link)) = self
            .one_time_link(OneTimeToken::PasswordReset, user.id, time::now())
            .await?
        else {
            tracing::info!(user.id = %user.id, "password reset emails paused for the hour");
            return Ok(());
        };
        let message = OutgoingEmail {
            to: user.email.clone(),
            subject: "Reset your PupMatch password".into(),
            body: format!(
                "Someone (hopefully you) asked to reset the password of your PupMatch account.\n\n\
                 Open this link within one hour to choose a new password:\n{link}\n\n\
                 Reset token: {token}\n\n\
                 If it wasn't you, ignore this email: your password stays as it is.\n"
            ),
            secrets: vec![token],
        };
        self.mail_in_background(message, user.id, "password reset");
        Ok(())
    }

    /// A new single-use token of `kind` for `user_id` (ending the earlier ones) and the link that
    /// carries it; `None` when the hour's allowance of such emails is spent.
    async fn one_time_link(
        &self,
        kind: OneTimeToken,
        user_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<Option<(String, Url)>> {
        let (lifetime, per_hour, path) = match kind {
            OneTimeToken::PasswordReset => (
                tokens::RESET_TOKEN_TTL,
                RESET_EMAILS_PER_HOUR,
                "/reset-password",
            ),
            OneTimeToken::EmailConfirmation => (
                tokens::CONFIRMATION_TOKEN_TTL,
                CONFIRMATION_EMAILS_PER_HOUR,
                "/confirm-email",
            ),
        };
        let (token, hash) = tokens::new_opaque_token();
        let record = NewRefreshToken {
            id: Uuid::now_v7(),
            hash,
            created_at: now,
            expires_at: now + lifetime,
        };
        if !self
            .store
            .create_one_time_token(kind, user_id, &record, per_hour)
            .await?
        {
            return Ok(None);
        }
        let mut link = self.public_url.clone();
        link.set_path(path);
        link.set_query(Some(&format!("token={token}")));
        Ok(Some((token, link)))
    }

    /// Sends `message` to `user_id`'s address without the request waiting for it (neither the
    /// answer nor its timing says whether the mail server took it); logs how it went.
    fn mail_in_background(&self, message: OutgoingEmail, user_id: Uuid, what: &'static str) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            match mailer.send(message).await {
                Ok(()) => tracing::info!(user.id = %user_id, kind = what, "email sent"),
                Err(err) => {
                    tracing::error!(user.id = %user_id, kind = what, error = format!("{err:#}"), "email failed")
                }
            }
        });
    }

    /// FORBIDDEN, saying why, when confirmation is required and `user` has not confirmed their
    /// address: liking, messaging, reporting and adding places need it.
    pub async fn must_be_confirmed(&self, user: AuthUser) -> AuthResult<()> {
        if !self.confirmation_required || self.account(user).await?.email_confirmed {
            return Ok(());
        }
        Err(AuthError::Unconfirmed)
    }

    /// Emails `user` a new confirmation link (ending the earlier ones), at most
    /// [`CONFIRMATION_EMAILS_PER_HOUR`] an hour. False when the address is confirmed already.
    pub async fn resend_confirmation(&self, user: AuthUser) -> AuthResult<bool> {
        if self.account(user).await?.email_confirmed {
            return Ok(false);
        }
        let record = self.user(user.user_id).await?;
        self.send_confirmation(&record, time::now()).await?;
        Ok(true)
    }

    /// Stores a confirmation token for `user` and emails its link in the background.
    pub(super) async fn send_confirmation(
        &self,
        user: &UserRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuthResult<()> {
        let Some((token, link)) = self
            .one_time_link(OneTimeToken::EmailConfirmation, user.id, now)
            .await?
        else {
            return Err(AuthError::TooManyConfirmationEmails);
        };
        let message = OutgoingEmail {
            to: user.email.clone(),
            subject: "Confirm your PupMatch email address".into(),
            body: format!(
                "Welcome to PupMatch!\n\n\
                 Open this link within 48 hours to confirm your email address:\n{link}\n\n\
                 Confirmation token: {token}\n\n\
                 Until you do, your dog's profile is not shown to others, and you cannot like, \
                 message or report anyone.\n\n\
                 If you did not make a PupMatch account, ignore this email.\n"
            ),
            secrets: vec![token],
        };
        self.mail_in_background(message, user.id, "confirmation");
        Ok(())
    }

    /// Confirms the address of the account a confirmation link was sent to (single use).
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email(&self, token: &str) -> AuthResult<()> {
        let presented = tokens::hash_opaque(token);
        match self.store.confirm_email(&presented, time::now()).await? {
            Some(user_id) => {
                // The cached account says it is unconfirmed: drop it everywhere.
                self.sessions.invalidate(user_id).await;
                tracing::info!(user.id = %user_id, "email address confirmed");
                Ok(())
            }
            None => Err(AuthError::InvalidConfirmationToken),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, token: &str, new_password: Password) -> AuthResult<()> {
        let presented = tokens::hash_opaque(token);
        let hash = password::hash(&self.hashing, new_password.expose().to_string()).await?;
        match self
            .store
            .reset_password(&presented, &hash, time::now())
            .await?
        {
            Some(user_id) => {
                self.sessions_ended(user_id, EndedSessions::all()).await;
                tracing::info!(user.id = %user_id, "password reset; every session ended");
                Ok(())
            }
            None => Err(AuthError::InvalidResetToken),
        }
    }
}
