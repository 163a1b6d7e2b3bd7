//! GraphQL: `me`, and the account mutations (register, login, tokens, passwords, deletion).

use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::api;
use super::model::{Account, Email, IssuedTokens, Password};
use crate::auth::AuthService;
use crate::discovery::DiscoveryService;
use crate::error::ApiError;
use crate::profiles::ProfileService;
use crate::profiles::graphql::{Coordinates, Preferences, Profile};
use crate::resolvers::{limit_auth_attempt, require_user, service};

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
}

pub struct AuthPayload(IssuedTokens);

#[Object]
impl AuthPayload {
    /// JWT, 24 h.
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }
    /// Opaque, 30 days, rotated on every use.
    async fn refresh_token(&self) -> &str {
        &self.0.refresh_token
    }
    /// Of the access token.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn user(&self) -> Me {
        Me(Account::from(self.0.user.clone()))
    }
}

/// The signed-in account. Only ever returned to its owner.
pub struct Me(Account);

#[Object]
impl Me {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Whether the address is confirmed (from the link of the confirmation email).
    async fn email_confirmed(&self) -> bool {
        self.0.email_confirmed
    }
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<Profile>> {
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let view = profiles.view(self.0.id).await.map_err(ApiError::from)?;
        Ok(view.map(Profile))
    }
    async fn preferences(&self, ctx: &Context<'_>) -> Result<Option<Preferences>> {
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let prefs = profiles.preferences_of(self.0.id).await?;
        Ok(prefs.map(Preferences::from))
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Coordinates>> {
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let location = profiles.own_location(self.0.id).await?;
        Ok(location.map(Coordinates::from))
    }
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in account.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<Me>> {
        let user = require_user(ctx).await?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(Some(Me(api(auth.account(user).await)?)))
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        limit_auth_attempt(ctx).await?;
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password, "password")?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(AuthPayload(api(auth.register(email, password).await)?))
    }

    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        limit_auth_attempt(ctx).await?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(AuthPayload(api(auth.login(&email, &password).await)?))
    }

    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(AuthPayload(api(auth.refresh(&refresh_token).await)?))
    }

    /// Ends the session the refresh token belongs to. False when the token is unknown.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(api(auth.logout(&refresh_token).await)?)
    }

    /// Always true: never reveals whether the email exists.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        limit_auth_attempt(ctx).await?;
        let email = Email::parse(&email)?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        api(auth.request_password_reset(&email).await)?;
        Ok(true)
    }

    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> Result<bool> {
        limit_auth_attempt(ctx).await?;
        let password = Password::parse(&new_password, "newPassword")?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        api(auth.reset_password(&token, password).await)?;
        Ok(true)
    }

    /// Confirms the address with the token from the confirmation email; single use.
    async fn confirm_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        limit_auth_attempt(ctx).await?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        api(auth.confirm_email(&token).await)?;
        Ok(true)
    }

    /// A new confirmation email (earlier links stop working); false when the address is
    /// confirmed already. At most 3 an hour.
    async fn resend_confirmation(&self, ctx: &Context<'_>) -> Result<bool> {
        let user = require_user(ctx).await?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        Ok(api(auth.resend_confirmation(user).await)?)
    }

    /// Changes the password and signs out every other session.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let user = require_user(ctx).await?;
        let password = Password::parse(&new_password, "newPassword")?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        api(auth
            .change_password(user, &current_password, password)
            .await)?;
        Ok(true)
    }

    /// Deletes the account and everything of it (rows and photos). Password-confirmed.
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let user = require_user(ctx).await?;
        let auth = service::<Arc<AuthService>>(ctx)?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        api(auth.delete_account(user, &password).await)?;
        // Nothing cached may still show the person: their profile (both tiers, every
        // instance) and their own recommendations go. Lists that hold them skip them when
        // served, as they have no profile any more.
        profiles.invalidate(user.user_id).await;
        discovery.invalidate(user.user_id).await;
        Ok(true)
    }
}
