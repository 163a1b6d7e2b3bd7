//! Chat storage: conversations and messages. One implementation per backend.
//!
//! Message ids are UUIDv7, and a message is only stored while the writer holds both people's
//! locks (PostgreSQL: advisory locks per person, and the id must be above every id already in
//! either stream; SQLite: the database write lock, with the id made under it), so each person's
//! messages commit in id order and "everything after id X" never skips one committed later.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::PgChatStore;
pub use sqlite::SqliteChatStore;

use crate::error::StoreError;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct MessageRecord {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: super::MessageKind,
    pub content: String,
    pub playground_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A conversation from one participant's side.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRecord {
    pub id: Uuid,
    pub match_id: Uuid,
    pub other_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When this participant last deleted (cleared) it: older messages are hidden from them.
    pub cleared_at: Option<DateTime<Utc>>,
}

/// A conversation in a list: with its last visible message and the viewer's unread count.
#[derive(Debug, Clone)]
pub struct ConversationSummary {
    pub conversation: ConversationRecord,
    pub last_message: Option<MessageRecord>,
    pub unread_count: i64,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub kind: super::MessageKind,
    pub content: String,
    pub playground_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub now: DateTime<Utc>,
}

/// What sending did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Stored(MessageRecord),
    /// The sender's `clientId` was already used: the message stored then.
    Duplicate(MessageRecord),
    /// No such conversation, or the sender is not in it (or it ended).
    NotInConversation,
}

/// The `mark read` outcome: how many messages became read, and the newest of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkedRead {
    pub count: u64,
    pub up_to: Option<Uuid>,
}

/// Conversation list order: `(updated_at, id)`, newest first.
pub type ConversationKey = (DateTime<Utc>, Uuid);

#[async_trait]
pub trait ChatStore: Send + Sync {
    /// The conversation, if `user_id` is in it.
    async fn conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// The user's conversations by last activity, after the keyset `after` (only `only` when
    /// given), with each one's last message and unread count.
    async fn conversations(
        &self,
        user_id: Uuid,
        after: Option<ConversationKey>,
        only: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    /// Stores a message if the sender is in the conversation; idempotent per `clientId`.
    /// Also moves the conversation's `updated_at`.
    async fn insert_message(&self, message: NewMessage) -> Result<SendOutcome, StoreError>;

    /// Messages of a conversation visible to `user_id`, newest first, older than `before`.
    async fn messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// Messages of all the user's conversations visible to them with an id above `after`,
    /// oldest first.
    async fn messages_after(
        &self,
        user_id: Uuid,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// Marks unread messages to `user_id` in the conversation read, those with id ≤ `up_to`
    /// (all when `None`).
    async fn mark_conversation_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        up_to: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<MarkedRead, StoreError>;

    /// Marks the given messages read where `user_id` is their recipient. Returns the messages
    /// that became read (for read receipts).
    async fn mark_messages_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// Hides everything up to now from `user_id` (the other person keeps it). False when the
    /// user is not in the conversation.
    async fn clear_conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
