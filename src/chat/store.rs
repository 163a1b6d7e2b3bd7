//! Chat storage: conversations and messages, written once for both backends (see
//! [`crate::infra::sql`]) but for sending and the conversation list, which differ.
//!
//! Message ids are UUIDv7, and a message is only stored while the writer holds both people's
//! locks (PostgreSQL: advisory locks per person, and the id must be above every id already in
//! either stream; SQLite: the database write lock, with the id made under it), so each person's
//! messages commit in id order and "everything after id X" never skips one committed later.

use chrono::{DateTime, Utc};
use const_format::concatcp;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{ConversationId, MessageId, PlaygroundId, uuids};
use crate::infra::db::Db;
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, execute, fetch, fetch_scalar, in_ids, returning, returning_scalar,
};
use crate::infra::stored::stored_enum;
use crate::infra::time;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: super::MessageKind,
    pub content: String,
    pub playground_id: Option<PlaygroundId>,
    pub client_id: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A conversation from one participant's side.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRecord {
    pub id: ConversationId,
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
    pub conversation_id: ConversationId,
    pub sender_id: Uuid,
    pub kind: super::MessageKind,
    pub content: String,
    pub playground_id: Option<PlaygroundId>,
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
    pub up_to: Option<MessageId>,
}

/// Conversation list order: `(updated_at, id)`, newest first.
pub type ConversationKey = (DateTime<Utc>, ConversationId);

/// The columns of [`MessageRecord`] from `messages m`.
const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.sender_id, m.recipient_id, m.kind,
     m.content, m.playground_id, m.client_id, m.read_at, m.created_at";

/// The columns of [`MessageRecord`], unqualified (for `RETURNING`, where SQLite does not accept
/// a table alias).
const RETURNED_COLUMNS: &str = "id, conversation_id, sender_id, recipient_id, kind, content,
     playground_id, client_id, read_at, created_at";

// The fragments below read the viewer from `$1`; every statement built with them binds the
// viewer first, and (where the other person's moderation hold is checked) now second.

/// The conversation `c` from the viewer's side.
const CONVERSATION_SELECT: &str = "SELECT c.id, c.match_id,
        CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END AS other_id,
        c.created_at, c.updated_at,
        CASE WHEN c.user_a = $1 THEN c.a_cleared_at ELSE c.b_cleared_at END AS cleared_at
   FROM conversations c";

/// Messages `m` of conversation `c` visible to the viewer: newer than their last clear of it.
const VISIBLE: &str = "(CASE WHEN c.user_a = $1 THEN c.a_cleared_at ELSE c.b_cleared_at END IS NULL
     OR m.created_at > CASE WHEN c.user_a = $1 THEN c.a_cleared_at ELSE c.b_cleared_at END)";

/// The other person of conversation `c` is not hidden by moderation now (`$2`).
const OTHER_NOT_HIDDEN: &str = "NOT EXISTS (SELECT 1 FROM users h
     WHERE h.id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END
       AND h.hidden_until > $2)";

/// The start of the viewer's page of conversations by last activity (now `$2`): each one's
/// unread count, then the column the backend's statement adds.
const CONVERSATION_PAGE_HEAD: &str = concatcp!(
    "SELECT v.*,
            (SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
              WHERE m.conversation_id = v.id AND m.recipient_id = $1 AND m.read_at IS NULL
                AND ",
    VISIBLE,
    ") AS unread_count, "
);

/// The rest of the page: after the keyset (`$3`, `$4`), at most `$5`, only `$6` when given.
const CONVERSATION_PAGE_TAIL: &str = concatcp!(
    " FROM (",
    CONVERSATION_SELECT,
    " WHERE (c.user_a = $1 OR c.user_b = $1) AND ",
    OTHER_NOT_HIDDEN,
    " AND ($3 IS NULL OR (c.updated_at, c.id) < ($3, $4))
      AND ($6 IS NULL OR c.id = $6)
    ORDER BY c.updated_at DESC, c.id DESC
    LIMIT $5) v"
);

/// PostgreSQL: the page with each conversation's last visible message as a JSON object, in one
/// statement.
const CONVERSATIONS_PG: &str = concatcp!(
    CONVERSATION_PAGE_HEAD,
    "CASE WHEN lm.id IS NULL THEN NULL ELSE to_jsonb(lm) END AS last_message",
    CONVERSATION_PAGE_TAIL,
    " LEFT JOIN LATERAL (SELECT ",
    MESSAGE_COLUMNS,
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id
       WHERE m.conversation_id = v.id AND ",
    VISIBLE,
    " ORDER BY m.id DESC LIMIT 1) lm ON true
    ORDER BY v.updated_at DESC, v.id DESC"
);

/// SQLite: the page with each conversation's last visible message id (the messages are read by
/// id next: two statements for any page size).
const CONVERSATIONS_SQLITE: &str = concatcp!(
    CONVERSATION_PAGE_HEAD,
    "(SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
       WHERE m.conversation_id = v.id AND ",
    VISIBLE,
    " ORDER BY m.id DESC LIMIT 1) AS last_id",
    CONVERSATION_PAGE_TAIL,
    " ORDER BY v.updated_at DESC, v.id DESC"
);

const MESSAGES_BY_ID: Sql = in_ids!(
    concatcp!("SELECT ", MESSAGE_COLUMNS, " FROM messages m WHERE m.id"),
    1,
    ""
);

mod reads;

/// What `pupmatch_send_message` reports, as the words it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStatus {
    NotMember,
    StaleId,
    Duplicate,
    Stored,
}
stored_enum!(SendStatus {
    NotMember => "not_member",
    StaleId => "stale_id",
    Duplicate => "duplicate",
    Stored => "stored",
});

/// A row of `pupmatch_send_message`: a status and, with it, a message (or the latest id).
#[derive(sqlx::FromRow)]
struct SendRow {
    status: SendStatus,
    id: Option<MessageId>,
    conversation_id: Option<ConversationId>,
    sender_id: Option<Uuid>,
    recipient_id: Option<Uuid>,
    kind: Option<super::MessageKind>,
    content: Option<String>,
    playground_id: Option<PlaygroundId>,
    client_id: Option<String>,
    read_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
}

impl SendRow {
    fn record(self) -> Result<MessageRecord, StoreError> {
        let status = self.status;
        let missing = || {
            StoreError::Other(anyhow::anyhow!(
                "pupmatch_send_message returned {status:?} without its message"
            ))
        };
        Ok(MessageRecord {
            id: self.id.ok_or_else(missing)?,
            conversation_id: self.conversation_id.ok_or_else(missing)?,
            sender_id: self.sender_id.ok_or_else(missing)?,
            recipient_id: self.recipient_id.ok_or_else(missing)?,
            kind: self.kind.ok_or_else(missing)?,
            content: self.content.ok_or_else(missing)?,
            playground_id: self.playground_id,
            client_id: self.client_id,
            read_at: self.read_at,
            created_at: self.created_at.ok_or_else(missing)?,
        })
    }
}

/// A row of the conversation list: PostgreSQL brings the last message along, SQLite its id.
#[derive(sqlx::FromRow)]
struct SummaryRow<Last> {
    #[sqlx(flatten)]
    conversation: ConversationRecord,
    unread_count: i64,
    #[sqlx(flatten)]
    last: Last,
}

#[derive(sqlx::FromRow)]
struct LastMessage {
    /// The last visible message as a JSON object (`to_jsonb` of its row), if any.
    last_message: Option<sqlx::types::Json<MessageRecord>>,
}

#[derive(sqlx::FromRow)]
struct LastId {
    last_id: Option<MessageId>,
}

/// Conversations and messages.
#[derive(Clone)]
pub struct ChatStore {
    db: Db,
}

impl ChatStore {
    /// Points the messages that shared place `$1` at place `$2` (a merge of two places runs it
    /// in its transaction).
    pub const MOVE_SHARES: &str = "UPDATE messages SET playground_id = $2 WHERE playground_id = $1";

    pub fn new(db: &Db) -> Self {
        ChatStore { db: db.clone() }
    }

    /// The conversation if `user_id` is in it (and the other person is not hidden).
    pub async fn conversation(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            concatcp!(
                CONVERSATION_SELECT,
                " WHERE c.id = $3 AND (c.user_a = $1 OR c.user_b = $1) AND ",
                OTHER_NOT_HIDDEN
            ),
            user_id,
            Ts(time::now()),
            conversation_id
        ))
    }

    /// The user's conversations by last activity, after the keyset `after` (only `only` when
    /// given), with each one's last message and unread count.
    pub async fn conversations(
        &self,
        user_id: Uuid,
        after: Option<ConversationKey>,
        only: Option<ConversationId>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let (after_at, after_id) = after.unzip();
        let now = Ts(time::now());
        // The page, in either backend's statement.
        macro_rules! page {
            ($pool:ident, $sql:expr) => {
                sqlx::query_as($sql)
                    .bind(user_id)
                    .bind(now)
                    .bind(after_at.map(Ts))
                    .bind(after_id)
                    .bind(limit)
                    .bind(only)
                    .fetch_all($pool)
                    .await?
            };
        }
        match &self.db {
            Db::Postgres(pool) => {
                let rows: Vec<SummaryRow<LastMessage>> = page!(pool, CONVERSATIONS_PG);
                Ok(rows
                    .into_iter()
                    .map(|r| ConversationSummary {
                        conversation: r.conversation,
                        unread_count: r.unread_count,
                        last_message: r.last.last_message.map(|m| m.0),
                    })
                    .collect())
            }
            Db::Sqlite(pool) => {
                let rows: Vec<SummaryRow<LastId>> = page!(pool, CONVERSATIONS_SQLITE);
                let last_ids: Vec<MessageId> = rows.iter().filter_map(|r| r.last.last_id).collect();
                let mut last: std::collections::HashMap<MessageId, MessageRecord> =
                    if last_ids.is_empty() {
                        Default::default()
                    } else {
                        sqlx::query_as::<_, MessageRecord>(MESSAGES_BY_ID.sqlite)
                            .bind(Ids(&uuids(&last_ids)))
                            .fetch_all(pool)
                            .await?
                            .into_iter()
                            .map(|m| (m.id, m))
                            .collect()
                    };
                Ok(rows
                    .into_iter()
                    .map(|r| ConversationSummary {
                        last_message: r.last.last_id.and_then(|id| last.remove(&id)),
                        conversation: r.conversation,
                        unread_count: r.unread_count,
                    })
                    .collect())
            }
        }
    }

    /// Stores a message if the sender is in the conversation; idempotent per `clientId`.
    /// Also moves the conversation's `updated_at`.
    /// Whether `sender` has a message in the conversation.
    pub async fn has_written(
        &self,
        conversation_id: ConversationId,
        sender: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            Sql {
                postgres: "SELECT pupmatch_has_written($1, $2)",
                sqlite: "SELECT EXISTS (SELECT 1 FROM messages
                                         WHERE conversation_id = $1 AND sender_id = $2)",
            },
            conversation_id,
            sender
        ))
    }

    pub async fn insert_message(&self, msg: NewMessage) -> Result<SendOutcome, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                // One round trip (the `pupmatch_send_message` function). The id must be above
                // every id already in both people's streams; when another instance's clock is
                // behind or a message raced ahead, the function says so and a larger id is
                // tried.
                let mut id = Uuid::now_v7();
                let mut retried = false;
                for _ in 0..8 {
                    let sent = sqlx::query_as(
                        "SELECT * FROM pupmatch_send_message($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(msg.conversation_id)
                    .bind(msg.sender_id)
                    .bind(id)
                    .bind(msg.kind)
                    .bind(&msg.content)
                    .bind(msg.playground_id)
                    .bind(&msg.client_id)
                    .bind(msg.now)
                    .fetch_one(pool)
                    .await;
                    let row: SendRow = match sent {
                        Ok(row) => row,
                        // With a client id a repeat is harmless (it finds the first, if that
                        // was stored after all): one more try when the server had closed the
                        // connection (a restart).
                        Err(err)
                            if !retried
                                && msg.client_id.is_some()
                                && crate::infra::db::closed_by_server(&err) =>
                        {
                            crate::infra::db::distrust_pooled_connections();
                            retried = true;
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    };
                    match row.status {
                        SendStatus::NotMember => return Ok(SendOutcome::NotInConversation),
                        SendStatus::StaleId => {
                            let last = row.id.map_or(0, |id| id.uuid().as_u128());
                            id = Uuid::now_v7().max(Uuid::from_u128(last + 1));
                        }
                        SendStatus::Duplicate => return Ok(SendOutcome::Duplicate(row.record()?)),
                        SendStatus::Stored => return Ok(SendOutcome::Stored(row.record()?)),
                    }
                }
                Err(StoreError::Other(anyhow::anyhow!(
                    "no message id above the conversation's latest after 8 tries"
                )))
            }
            Db::Sqlite(pool) => {
                // One statement on the writer connection: the membership check, the insert and
                // (by trigger) the conversation's activity time. The id is made after the
                // connection is ours, so ids increase in commit order. Nothing inserted means
                // not a member, or a client id used before (the unique index).
                let mut writer = pool.writer().acquire().await?;
                let stored: Option<MessageRecord> = sqlx::query_as(concatcp!(
                    "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind,
                                           content, playground_id, client_id, created_at)
                     SELECT $1, c.id, $3, CASE WHEN c.user_a = $3 THEN c.user_b ELSE c.user_a END,
                            $4, $5, $6, $7, $8
                       FROM conversations c
                      WHERE c.id = $2 AND (c.user_a = $3 OR c.user_b = $3)
                        AND NOT EXISTS (SELECT 1 FROM users h
                                         WHERE h.id = CASE WHEN c.user_a = $3 THEN c.user_b
                                                           ELSE c.user_a END
                                           AND h.hidden_until > $8)
                     ON CONFLICT DO NOTHING
                     RETURNING ",
                    RETURNED_COLUMNS
                ))
                .bind(Uuid::now_v7())
                .bind(msg.conversation_id)
                .bind(msg.sender_id)
                .bind(msg.kind)
                .bind(&msg.content)
                .bind(msg.playground_id)
                .bind(&msg.client_id)
                .bind(Ts(msg.now))
                .fetch_optional(&mut *writer)
                .await?;
                drop(writer);
                if let Some(stored) = stored {
                    return Ok(SendOutcome::Stored(stored));
                }
                let earlier: Option<MessageRecord> = match &msg.client_id {
                    Some(client_id) => {
                        sqlx::query_as(concatcp!(
                            "SELECT ",
                            MESSAGE_COLUMNS,
                            " FROM messages m
                             WHERE m.sender_id = $1 AND m.client_id = $2
                               AND EXISTS (SELECT 1 FROM conversations c
                                            WHERE c.id = $3 AND (c.user_a = $1 OR c.user_b = $1))"
                        ))
                        .bind(msg.sender_id)
                        .bind(client_id)
                        .bind(msg.conversation_id)
                        .fetch_optional(pool)
                        .await?
                    }
                    None => None,
                };
                Ok(match earlier {
                    Some(existing) => SendOutcome::Duplicate(existing),
                    None => SendOutcome::NotInConversation,
                })
            }
        }
    }

    /// Messages of a conversation visible to `user_id`, newest first, older than `before`.
    pub async fn messages(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
        before: Option<MessageId>,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            concatcp!(
                "SELECT ",
                MESSAGE_COLUMNS,
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.conversation_id = $2 AND (c.user_a = $1 OR c.user_b = $1) AND ",
                VISIBLE,
                " AND ($3 IS NULL OR m.id < $3)
                 ORDER BY m.id DESC LIMIT $4"
            ),
            user_id,
            conversation_id,
            before,
            limit
        ))
    }

    /// Messages of all the user's conversations visible to them with an id above `after`,
    /// oldest first.
    pub async fn messages_after(
        &self,
        user_id: Uuid,
        after: MessageId,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            concatcp!(
                "SELECT * FROM (SELECT ",
                MESSAGE_COLUMNS,
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.recipient_id = $1 AND m.id > $2 AND ",
                VISIBLE,
                " UNION ALL SELECT ",
                MESSAGE_COLUMNS,
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.sender_id = $1 AND m.id > $2 AND ",
                VISIBLE,
                ") x ORDER BY id LIMIT $3"
            ),
            user_id,
            after,
            limit
        ))
    }
}
