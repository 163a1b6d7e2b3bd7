//! GraphQL: conversations, messages, and the chat mutations. Lists are built in a constant
//! number of SQL statements (the last message and unread count come with the page; profiles
//! through the request's DataLoader).

use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::ChatService;
use super::store::{ConversationSummary, MessageRecord};
use super::{Draft, MessageKind, conversation_cursor, message_cursor};
use crate::error::ApiError;
use crate::infra::rate_limit::RateLimiter;
use crate::playgrounds::PlaygroundService;
use crate::playgrounds::graphql::{Playground, load_playground};
use crate::profiles::graphql::{Profile, load_profile};
use crate::resolvers::{
    connection, page_size, require_confirmed_user, require_user, service, spend_on_people,
};

const MAX_PAGE: i32 = 100;

pub struct Message(pub MessageRecord);

#[Object]
impl Message {
    async fn id(&self) -> Uuid {
        self.0.id.uuid()
    }
    async fn conversation_id(&self) -> Uuid {
        self.0.conversation_id.uuid()
    }
    async fn sender_id(&self) -> Uuid {
        self.0.sender_id
    }
    async fn recipient_id(&self) -> Uuid {
        self.0.recipient_id
    }
    async fn kind(&self) -> MessageKind {
        self.0.kind
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// The shared place, when `kind` is `PLAYGROUND` (null if it has since been deleted).
    async fn playground(&self, ctx: &Context<'_>) -> Result<Option<Playground>> {
        match self.0.playground_id {
            Some(id) => load_playground(ctx, id).await,
            None => Ok(None),
        }
    }
    /// The sender's idempotency key, echoed back.
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(MessageConnection, MessageEdge, Message, |message| {
    message_cursor(message.0.id)
});

pub struct Conversation(ConversationSummary);

#[Object]
impl Conversation {
    async fn id(&self) -> Uuid {
        self.0.conversation.id.uuid()
    }
    async fn match_id(&self) -> Uuid {
        self.0.conversation.match_id
    }
    async fn other_user(&self, ctx: &Context<'_>) -> Result<Profile> {
        load_profile(ctx, self.0.conversation.other_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("the profile is gone".into()).into())
    }
    async fn last_message(&self) -> Option<Message> {
        self.0.last_message.clone().map(Message)
    }
    async fn unread_count(&self) -> i32 {
        i32::try_from(self.0.unread_count).unwrap_or(i32::MAX)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.conversation.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.conversation.updated_at
    }
}

connection!(
    ConversationConnection,
    ConversationEdge,
    Conversation,
    |conversation| conversation_cursor(&conversation.0.conversation)
);

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// By last activity, newest first.
    #[graphql(complexity = "crate::resolvers::page_cost(first, 20, MAX_PAGE, child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<ConversationConnection> {
        let user = require_user(ctx).await?;
        let first = page_size(first.unwrap_or(20), MAX_PAGE)?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        let (rows, more) = chat
            .conversations(user.user_id, first, after.as_deref())
            .await?;
        spend_on_people(ctx, user.user_id, rows.len()).await?;
        Ok(ConversationConnection::page(
            rows.into_iter().map(Conversation),
            more,
        ))
    }

    /// One of your conversations; null when it does not exist or is not yours.
    async fn conversation(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Conversation>> {
        let user = require_user(ctx).await?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        let found = chat.conversation_summary(user.user_id, id.into()).await?;
        if found.is_some() {
            spend_on_people(ctx, user.user_id, 1).await?;
        }
        Ok(found.map(Conversation))
    }

    /// Newest first; `before` is a cursor from a previous page.
    #[graphql(complexity = "crate::resolvers::page_cost(first, 50, MAX_PAGE, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        #[graphql(default = 50)] first: Option<i32>,
        before: Option<String>,
    ) -> Result<MessageConnection> {
        let user = require_user(ctx).await?;
        let first = page_size(first.unwrap_or(50), MAX_PAGE)?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        let (rows, more) = chat
            .messages(
                user.user_id,
                conversation_id.into(),
                first,
                before.as_deref(),
            )
            .await?;
        Ok(MessageConnection::page(rows.into_iter().map(Message), more))
    }
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        content: String,
        client_id: Option<String>,
    ) -> Result<Message> {
        let user = require_confirmed_user(ctx).await?;
        let rate_limiter = service::<RateLimiter>(ctx)?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        rate_limiter.check_message(user.user_id).await?;
        let sent = chat
            .send(
                user.user_id,
                Draft::text(conversation_id.into(), content, client_id),
                None,
            )
            .await?;
        Ok(Message(sent.message))
    }

    /// Marks the listed messages you received read; how many changed.
    async fn mark_messages_read(&self, ctx: &Context<'_>, message_ids: Vec<Uuid>) -> Result<i32> {
        let user = require_user(ctx).await?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        let n = chat
            .mark_messages_read(
                user.user_id,
                &message_ids.iter().map(|&id| id.into()).collect::<Vec<_>>(),
            )
            .await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Marks every message you received in the conversation read; how many changed.
    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
    ) -> Result<i32> {
        let user = require_user(ctx).await?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        let n = chat
            .mark_read(user.user_id, conversation_id.into(), None)
            .await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Hides the conversation's messages so far from you (the other person keeps theirs).
    async fn delete_conversation(&self, ctx: &Context<'_>, conversation_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        chat.delete_conversation(user.user_id, conversation_id.into())
            .await?;
        Ok(true)
    }

    /// Sends a place into a conversation as a `PLAYGROUND` message (both people get it live).
    async fn share_playground(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        playground_id: Uuid,
    ) -> Result<Message> {
        let user = require_confirmed_user(ctx).await?;
        let rate_limiter = service::<RateLimiter>(ctx)?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let chat = service::<Arc<ChatService>>(ctx)?;
        rate_limiter.check_message(user.user_id).await?;
        let place = playgrounds
            .one(playground_id.into())
            .await?
            .ok_or_else(|| ApiError::NotFound("no such playground".into()))?;
        let sent = chat
            .send(
                user.user_id,
                Draft::playground(conversation_id.into(), place.id, place.name.clone()),
                None,
            )
            .await?;
        Ok(Message(sent.message))
    }
}
