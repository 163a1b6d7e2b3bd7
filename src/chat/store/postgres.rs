//! PostgreSQL implementation of [`ChatStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    ChatStore, ConversationKey, ConversationRecord, ConversationSummary, MarkedRead, MessageRecord,
    NewMessage, SendOutcome,
};
use crate::error::StoreError;
use crate::infra::stored::stored_enum;

pub struct PgChatStore {
    pool: PgPool,
}

impl PgChatStore {
    pub fn new(pool: PgPool) -> Self {
        PgChatStore { pool }
    }
}

/// The columns of [`MessageRecord`] from `messages m`.
const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.sender_id, m.recipient_id, m.kind, m.content,
        m.playground_id, m.client_id, m.read_at, m.created_at";

/// `$1` is the viewer: the conversation from their side.
const CONVERSATION_SELECT: &str = "SELECT c.id, c.match_id,
        CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END AS other_id,
        c.created_at, c.updated_at,
        CASE WHEN c.user_a = $1 THEN c.a_cleared_at ELSE c.b_cleared_at END AS cleared_at
   FROM conversations c";

/// Messages visible to the viewer `$1`: not older than their last clear of the conversation.
const VISIBLE: &str = "m.created_at > COALESCE(CASE WHEN c.user_a = $1 THEN c.a_cleared_at
                                                     ELSE c.b_cleared_at END, '-infinity')";

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
    id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    sender_id: Option<Uuid>,
    recipient_id: Option<Uuid>,
    kind: Option<super::super::MessageKind>,
    content: Option<String>,
    playground_id: Option<Uuid>,
    client_id: Option<String>,
    read_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
}

impl SendRow {
    fn record(self) -> Result<MessageRecord, StoreError> {
        match (
            self.id,
            self.conversation_id,
            self.sender_id,
            self.recipient_id,
            self.kind,
            self.content,
            self.created_at,
        ) {
            (
                Some(id),
                Some(conversation_id),
                Some(sender_id),
                Some(recipient_id),
                Some(kind),
                Some(content),
                Some(created_at),
            ) => Ok(MessageRecord {
                id,
                conversation_id,
                sender_id,
                recipient_id,
                kind,
                content,
                playground_id: self.playground_id,
                client_id: self.client_id,
                read_at: self.read_at,
                created_at,
            }),
            _ => Err(StoreError::Other(anyhow::anyhow!(
                "pupmatch_send_message returned {:?} without its message",
                self.status
            ))),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    conversation: ConversationRecord,
    unread_count: i64,
    /// The last visible message as a JSON object (`to_jsonb` of its row), if any.
    last_message: Option<sqlx::types::Json<MessageRecord>>,
}

#[async_trait]
impl ChatStore for PgChatStore {
    async fn conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CONVERSATION_SELECT} WHERE c.id = $2 AND (c.user_a = $1 OR c.user_b = $1)
                AND NOT EXISTS (SELECT 1 FROM users h
                                 WHERE h.id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END
                                   AND h.hidden_until > now())"
        )))
        .bind(user_id)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn conversations(
        &self,
        user_id: Uuid,
        after: Option<ConversationKey>,
        only: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let (after_at, after_id) = after.unzip();
        let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT v.*,
                    (SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                      WHERE m.conversation_id = v.id AND m.recipient_id = $1 AND m.read_at IS NULL
                        AND {VISIBLE}) AS unread_count,
                    CASE WHEN lm.id IS NULL THEN NULL ELSE to_jsonb(lm) END AS last_message
               FROM ({CONVERSATION_SELECT}
                      WHERE (c.user_a = $1 OR c.user_b = $1)
                        AND NOT EXISTS (SELECT 1 FROM users h
                                         WHERE h.id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END
                                           AND h.hidden_until > now())
                        AND ($2::timestamptz IS NULL OR (c.updated_at, c.id) < ($2, $3))
                        AND ($5::uuid IS NULL OR c.id = $5)
                      ORDER BY c.updated_at DESC, c.id DESC
                      LIMIT $4) v
               LEFT JOIN LATERAL (
                      SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                       WHERE m.conversation_id = v.id AND {VISIBLE}
                       ORDER BY m.id DESC LIMIT 1) lm ON true
              ORDER BY v.updated_at DESC, v.id DESC"
        )))
        .bind(user_id)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConversationSummary {
                conversation: r.conversation,
                unread_count: r.unread_count,
                last_message: r.last_message.map(|m| m.0),
            })
            .collect())
    }

    async fn insert_message(&self, msg: NewMessage) -> Result<SendOutcome, StoreError> {
        // One round trip (the `pupmatch_send_message` function, migration 0004). The id must
        // be above every id already in both people's streams; when another instance's clock is
        // behind or a message raced ahead, the function says so and a larger id is tried.
        let mut id = Uuid::now_v7();
        for _ in 0..8 {
            let row: SendRow = sqlx::query_as(
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
            .fetch_one(&self.pool)
            .await?;
            match row.status {
                SendStatus::NotMember => return Ok(SendOutcome::NotInConversation),
                SendStatus::StaleId => {
                    let last = row.id.map_or(0, |u| u.as_u128());
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

    async fn messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
              WHERE m.conversation_id = $2 AND (c.user_a = $1 OR c.user_b = $1) AND {VISIBLE}
                AND ($3::uuid IS NULL OR m.id < $3)
              ORDER BY m.id DESC LIMIT $4"
        )))
        .bind(user_id)
        .bind(conversation_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn messages_after(
        &self,
        user_id: Uuid,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM (
                 SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                  WHERE m.recipient_id = $1 AND m.id > $2 AND {VISIBLE}
                 UNION ALL
                 SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                  WHERE m.sender_id = $1 AND m.id > $2 AND {VISIBLE}) x
              ORDER BY id LIMIT $3"
        )))
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn mark_conversation_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        up_to: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<MarkedRead, StoreError> {
        let (count, newest): (i64, Option<Uuid>) = sqlx::query_as(
            "WITH marked AS (
                 UPDATE messages SET read_at = $4
                  WHERE conversation_id = $2 AND recipient_id = $1 AND read_at IS NULL
                    AND ($3::uuid IS NULL OR id <= $3)
                 RETURNING id)
             SELECT COUNT(*), MAX(id::text)::uuid FROM marked",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(up_to)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(MarkedRead {
            count: u64::try_from(count).unwrap_or(0),
            up_to: newest,
        })
    }

    async fn mark_messages_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE messages AS m SET read_at = $3
              WHERE m.id = ANY($2) AND m.recipient_id = $1 AND m.read_at IS NULL
              RETURNING {MESSAGE_COLUMNS}"
        )))
        .bind(user_id)
        .bind(ids)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn clear_conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE conversations
                SET a_cleared_at = CASE WHEN user_a = $1 THEN $3 ELSE a_cleared_at END,
                    b_cleared_at = CASE WHEN user_b = $1 THEN $3 ELSE b_cleared_at END
              WHERE id = $2 AND (user_a = $1 OR user_b = $1)",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
