//! GraphQL: the notification inbox, preferences and devices.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::cursor;
use super::store::NotificationKind;
use super::store::{NotificationRecord, Preferences, PreferencesPatch};
use crate::infra::stored::stored_enum;
use crate::notifications::NotificationService;
use crate::resolvers::{connection, page_size, require_user, service};

const MAX_PAGE: i32 = 100;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DevicePlatform {
    Ios,
    Android,
    Web,
}

stored_enum!(DevicePlatform { Ios => "IOS", Android => "ANDROID", Web => "WEB" });

pub struct Notification(NotificationRecord);

#[Object]
impl Notification {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn kind(&self) -> NotificationKind {
        self.0.kind
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// JSON: e.g. `{"matchId": …}` or `{"conversationId": …}`.
    async fn data(&self) -> Option<&str> {
        self.0.data.as_deref()
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    NotificationConnection,
    NotificationEdge,
    Notification,
    |notification| cursor(notification.0.id)
);

#[derive(SimpleObject)]
#[graphql(name = "NotificationPreferences")]
pub struct NotificationPreferencesObject {
    matches: bool,
    messages: bool,
    likes: bool,
    /// false: in-app only.
    push: bool,
}

impl From<Preferences> for NotificationPreferencesObject {
    fn from(p: Preferences) -> Self {
        NotificationPreferencesObject {
            matches: p.matches,
            messages: p.messages,
            likes: p.likes,
            push: p.push,
        }
    }
}

#[derive(InputObject)]
pub struct NotificationPreferencesInput {
    matches: Option<bool>,
    messages: Option<bool>,
    likes: Option<bool>,
    push: Option<bool>,
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// Newest first.
    #[graphql(complexity = "crate::resolvers::page_cost(first, 20, MAX_PAGE, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
    ) -> Result<NotificationConnection> {
        let user = require_user(ctx).await?;
        let first = page_size(first.unwrap_or(20), MAX_PAGE)?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        let (rows, more) = notifications
            .list(
                user.user_id,
                first,
                after.as_deref(),
                unread_only.unwrap_or(false),
            )
            .await?;
        Ok(NotificationConnection::page(
            rows.into_iter().map(Notification),
            more,
        ))
    }

    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> Result<NotificationPreferencesObject> {
        let user = require_user(ctx).await?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        Ok(notifications.preferences(user.user_id).await?.into())
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        token: String,
        platform: DevicePlatform,
    ) -> Result<bool> {
        let user = require_user(ctx).await?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        notifications
            .register_device(user.user_id, &token, platform.as_db())
            .await?;
        Ok(true)
    }

    /// False when you had no such device.
    async fn unregister_device(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        let user = require_user(ctx).await?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        Ok(notifications
            .unregister_device(user.user_id, &token)
            .await?)
    }

    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: NotificationPreferencesInput,
    ) -> Result<NotificationPreferencesObject> {
        let user = require_user(ctx).await?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        let patch = PreferencesPatch {
            matches: input.matches,
            messages: input.messages,
            likes: input.likes,
            push: input.push,
        };
        Ok(notifications
            .update_preferences(user.user_id, patch)
            .await?
            .into())
    }

    /// How many became read.
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Vec<Uuid>) -> Result<i32> {
        let user = require_user(ctx).await?;
        let notifications = service::<Arc<NotificationService>>(ctx)?;
        let n = notifications.mark_read(user.user_id, &ids).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
