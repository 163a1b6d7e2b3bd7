//! Chat between matched people: conversations, messages, read receipts and typing, delivered
//! live over `/ws` (see [`ws`]) and readable over GraphQL (see [`graphql`]).
//!
//! Every message is stored before anyone hears of it; then the sender's other sockets and the
//! recipient's sockets get it through the [`Hub`] on every instance, and the recipient gets
//! a notification (push when they have no live socket).

pub mod graphql;
mod once;
pub mod store;
pub mod ws;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::frames::{MessageFrame, ServerFrame};
use crate::hub::{Hub, StoredMessage};
use crate::ids::{ConversationId, MessageId, PlaygroundId};
use crate::infra::db::Db;
use crate::infra::rate_limit::{Bucket, RateLimiter};
use crate::infra::sql::{page_limit, page_of};
use crate::infra::stored::stored_enum;
use crate::infra::time;
use crate::notifications::{NotificationService, Notify};
use crate::profiles::ProfileService;
use store::{
    ChatStore, ConversationKey, ConversationRecord, ConversationSummary, MessageRecord, NewMessage,
    SendOutcome,
};

/// Longest message, in characters after trimming.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest client id.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Messages one `resync` sends at most when it has no starting point.
const RECENT_RESYNC_DAYS: i64 = 30;
/// Rows per resync batch.
pub const RESYNC_BATCH: i64 = 500;

/// What a message is (GraphQL `MessageKind`).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Playground,
}
stored_enum!(MessageKind { Text => "TEXT", Playground => "PLAYGROUND" });

impl From<&MessageRecord> for MessageFrame {
    /// A message as clients see it (the `M` of the WebSocket protocol).
    fn from(m: &MessageRecord) -> Self {
        MessageFrame {
            id: m.id,
            conversation_id: m.conversation_id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            kind: m.kind.as_db(),
            content: m.content.clone(),
            playground_id: m.playground_id,
            client_id: m.client_id.clone(),
            read: m.read_at.is_some(),
            created_at: m.created_at,
        }
    }
}

/// Validates message text: trimmed, 1..=2000 characters.
pub fn message_content(content: &str) -> ApiResult<String> {
    crate::text::clean(
        "content",
        content,
        crate::text::Kind::Multiline,
        1,
        MAX_MESSAGE_CHARS,
    )
}

fn client_id(client_id: Option<String>) -> ApiResult<Option<String>> {
    match client_id {
        Some(c) if c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS => {
            Err(ApiError::bad_input(
                "clientId",
                format!("clientId must be 1 to {MAX_CLIENT_ID_CHARS} characters"),
            ))
        }
        other => Ok(other),
    }
}

/// A message someone wants to send.
#[derive(Debug, Clone)]
pub struct Draft {
    pub conversation_id: ConversationId,
    pub kind: MessageKind,
    pub content: String,
    pub playground_id: Option<PlaygroundId>,
    /// The sender's idempotency key.
    pub client_id: Option<String>,
}

impl Draft {
    pub fn text(
        conversation_id: ConversationId,
        content: String,
        client_id: Option<String>,
    ) -> Self {
        Draft {
            conversation_id,
            kind: MessageKind::Text,
            content,
            playground_id: None,
            client_id,
        }
    }

    /// A place shared into the conversation; its name is the message's text.
    pub fn playground(
        conversation_id: ConversationId,
        playground_id: PlaygroundId,
        name: String,
    ) -> Self {
        Draft {
            conversation_id,
            kind: MessageKind::Playground,
            content: name,
            playground_id: Some(playground_id),
            client_id: None,
        }
    }
}

/// A sent message and whether this call stored it (false: a resent `clientId`).
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: MessageRecord,
    pub new: bool,
}

pub struct ChatService {
    store: ChatStore,
    pub hub: Arc<Hub>,
    notifications: Arc<NotificationService>,
    /// Senders' names, for the message notice.
    profiles: Arc<ProfileService>,
    /// Spends the daily budget of first messages.
    limiter: RateLimiter,
    /// (conversation, sender) pairs known to have a message from the sender already: their
    /// next messages are not first messages, and ask the database nothing about it.
    written: moka::future::Cache<(ConversationId, Uuid), ()>,
}

impl ChatService {
    pub fn new(
        db: &Db,
        hub: Arc<Hub>,
        notifications: Arc<NotificationService>,
        profiles: Arc<ProfileService>,
        limiter: RateLimiter,
    ) -> Self {
        let store = ChatStore::new(db);
        ChatService {
            limiter,
            written: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(std::time::Duration::from_secs(60 * 60))
                .build(),
            store,
            hub,
            notifications,
            profiles,
        }
    }

    /// Stores a message from `sender` (only inside their own, live conversation),
    /// then delivers it: to the recipient's sockets and the sender's other sockets (not
    /// `from_socket`, which gets an ack from its caller), and as a notification.
    pub async fn send(
        &self,
        sender: Uuid,
        draft: Draft,
        from_socket: Option<Uuid>,
    ) -> ApiResult<Sent> {
        let content = message_content(&draft.content)?;
        let client = client_id(draft.client_id)?;
        let conversation_id = draft.conversation_id;
        self.spend_on_first_message(sender, conversation_id).await?;
        let outcome = self
            .store
            .insert_message(NewMessage {
                conversation_id,
                sender_id: sender,
                kind: draft.kind,
                content,
                playground_id: draft.playground_id,
                client_id: client,
                now: time::now(),
            })
            .await?;
        let message = match outcome {
            SendOutcome::Stored(m) => {
                self.written.insert((conversation_id, sender), ()).await;
                m
            }
            SendOutcome::Duplicate(m) => {
                return Ok(Sent {
                    message: m,
                    new: false,
                });
            }
            // A conversation that ended (unmatch, block) or is someone else's does not exist
            // for the sender.
            SendOutcome::NotInConversation => {
                return Err(ApiError::NotFound("no such conversation".into()));
            }
        };
        metrics::counter!("chat_messages_total").increment(1);
        self.hub
            .send_message(
                vec![message.recipient_id, message.sender_id],
                from_socket,
                ServerFrame::Message {
                    message: (&message).into(),
                },
                StoredMessage {
                    id: message.id,
                    stored_at: message.created_at,
                },
            )
            .await;
        let name = self
            .profiles
            .views(&[sender])
            .await
            .ok()
            .and_then(|v| v.get(&sender).map(|p| p.profile.name.clone()))
            .unwrap_or_else(|| "Your match".into());
        self.notifications
            .notify(Notify::message(
                message.recipient_id,
                sender,
                &name,
                conversation_id,
                message.id,
            ))
            .await;
        Ok(Sent { message, new: true })
    }

    /// A person's first message into a conversation spends one of their daily first messages
    /// (so a spammer's new matches cost them); later messages spend nothing here.
    async fn spend_on_first_message(
        &self,
        sender: Uuid,
        conversation_id: ConversationId,
    ) -> ApiResult<()> {
        let key = (conversation_id, sender);
        if self.written.contains_key(&key) {
            return Ok(());
        }
        if self.store.has_written(conversation_id, sender).await? {
            self.written.insert(key, ()).await;
            return Ok(());
        }
        self.limiter
            .check(Bucket::FirstMessagesPerDay, &sender.to_string())
            .await
            .map_err(ApiError::RateLimited)
    }

    /// The other person gets `typing` (nothing is stored).
    pub async fn typing(&self, user_id: Uuid, conversation_id: ConversationId) -> ApiResult<()> {
        let conversation = self.member_of(user_id, conversation_id).await?;
        self.hub
            .send(
                vec![conversation.other_id],
                None,
                ServerFrame::Typing {
                    conversation_id,
                    user_id,
                },
            )
            .await;
        Ok(())
    }

    /// Marks the user's received messages in a conversation read, up to `up_to` (or all), and
    /// tells the other person. The number of messages marked.
    pub async fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
        up_to: Option<MessageId>,
    ) -> ApiResult<u64> {
        let conversation = self.member_of(user_id, conversation_id).await?;
        let marked = self
            .store
            .mark_conversation_read(user_id, conversation_id, up_to, time::now())
            .await?;
        if let Some(newest) = marked.up_to {
            self.send_read(conversation.other_id, user_id, conversation_id, newest)
                .await;
        }
        Ok(marked.count)
    }

    /// Marks the listed messages read where the user received them; read receipts go out per
    /// conversation. The number marked.
    pub async fn mark_messages_read(&self, user_id: Uuid, ids: &[MessageId]) -> ApiResult<u64> {
        if ids.len() > 500 {
            return Err(ApiError::bad_input("messageIds", "at most 500 ids at once"));
        }
        let marked = self
            .store
            .mark_messages_read(user_id, ids, time::now())
            .await?;
        let mut newest: std::collections::HashMap<ConversationId, &MessageRecord> =
            Default::default();
        for m in &marked {
            let entry = newest.entry(m.conversation_id).or_insert(m);
            if m.id > entry.id {
                *entry = m;
            }
        }
        for m in newest.values() {
            self.send_read(m.sender_id, user_id, m.conversation_id, m.id)
                .await;
        }
        Ok(marked.len() as u64)
    }

    async fn send_read(
        &self,
        to: Uuid,
        reader: Uuid,
        conversation_id: ConversationId,
        up_to: MessageId,
    ) {
        self.hub
            .send(
                vec![to, reader],
                None,
                ServerFrame::Read {
                    conversation_id,
                    user_id: reader,
                    up_to,
                },
            )
            .await;
    }

    /// Every message of the user's conversations after `since` (or of the last 30 days), oldest
    /// first, in batches passed to `each`.
    pub async fn resync<F, Fut>(
        &self,
        user_id: Uuid,
        since: Option<MessageId>,
        mut each: F,
    ) -> ApiResult<()>
    where
        F: FnMut(Vec<MessageRecord>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut after = match since {
            Some(id) => id,
            // The smallest UUIDv7 of that instant: every message made since is above it.
            None => {
                let from = Utc::now() - chrono::Duration::days(RECENT_RESYNC_DAYS);
                let ms = u64::try_from(from.timestamp_millis()).unwrap_or(0);
                uuid::Builder::from_unix_timestamp_millis(ms, &[0; 10])
                    .into_uuid()
                    .into()
            }
        };
        loop {
            let batch = self
                .store
                .messages_after(user_id, after, RESYNC_BATCH)
                .await?;
            let full = batch.len() as i64 == RESYNC_BATCH;
            let Some(last) = batch.last().map(|m| m.id) else {
                return Ok(());
            };
            if !each(batch).await || !full {
                return Ok(());
            }
            after = last;
        }
    }

    pub async fn member_of(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
    ) -> ApiResult<ConversationRecord> {
        self.store
            .conversation(user_id, conversation_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such conversation".into()))
    }

    pub async fn conversation(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
    ) -> ApiResult<Option<ConversationRecord>> {
        Ok(self.store.conversation(user_id, conversation_id).await?)
    }

    /// One conversation as listed, if the user is in it.
    pub async fn conversation_summary(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
    ) -> ApiResult<Option<ConversationSummary>> {
        Ok(self
            .store
            .conversations(user_id, None, Some(conversation_id), 1)
            .await?
            .pop())
    }

    /// A page of conversations by last activity, and whether there are more.
    pub async fn conversations(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
    ) -> ApiResult<(Vec<ConversationSummary>, bool)> {
        let after = after.map(parse_conversation_cursor).transpose()?;
        let rows = self
            .store
            .conversations(user_id, after, None, page_limit(first))
            .await?;
        Ok(page_of(rows, first))
    }

    /// A page of messages, newest first, before the cursor; and whether there are older ones.
    pub async fn messages(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
        first: usize,
        before: Option<&str>,
    ) -> ApiResult<(Vec<MessageRecord>, bool)> {
        self.member_of(user_id, conversation_id).await?;
        let before = before
            .map(|c| parse_message_cursor(c, "before"))
            .transpose()?;
        let rows = self
            .store
            .messages(user_id, conversation_id, before, page_limit(first))
            .await?;
        Ok(page_of(rows, first))
    }

    /// Hides the conversation's history from the user (the other person keeps theirs).
    pub async fn delete_conversation(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
    ) -> ApiResult<()> {
        if self
            .store
            .clear_conversation(user_id, conversation_id, time::now())
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::NotFound("no such conversation".into()))
        }
    }
}

pub fn conversation_cursor(c: &ConversationRecord) -> String {
    let mut bytes = c.updated_at.timestamp_micros().to_be_bytes().to_vec();
    bytes.extend_from_slice(c.id.uuid().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_conversation_cursor(cursor: &str) -> ApiResult<ConversationKey> {
    let invalid = || ApiError::bad_input("after", "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    if bytes.len() != 24 {
        return Err(invalid());
    }
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&bytes[..8]);
    let at: DateTime<Utc> =
        DateTime::from_timestamp_micros(i64::from_be_bytes(micros)).ok_or_else(invalid)?;
    let id = Uuid::from_slice(&bytes[8..]).map_err(|_| invalid())?;
    Ok((at, id.into()))
}

pub fn message_cursor(id: MessageId) -> String {
    URL_SAFE_NO_PAD.encode(id.uuid().as_bytes())
}

fn parse_message_cursor(cursor: &str, field: &str) -> ApiResult<MessageId> {
    let invalid = || ApiError::bad_input(field, "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    Uuid::from_slice(&bytes)
        .map(MessageId::from)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(message_content("  hi  ").expect("valid"), "hi");
        assert!(message_content("   ").is_err());
        assert!(message_content(&"a".repeat(2000)).is_ok());
        assert!(message_content(&"a".repeat(2001)).is_err());
        // Characters, not bytes.
        assert!(message_content(&"🐕".repeat(2000)).is_ok());
    }

    #[test]
    fn conversation_cursor_round_trips() {
        let c = ConversationRecord {
            id: ConversationId::new(),
            match_id: Uuid::now_v7(),
            other_id: Uuid::now_v7(),
            created_at: time::now(),
            updated_at: time::now(),
            cleared_at: None,
        };
        let (at, id) = parse_conversation_cursor(&conversation_cursor(&c)).expect("valid");
        assert_eq!((at, id), (c.updated_at, c.id));
        assert!(parse_conversation_cursor("nope").is_err());
    }
}
