//! SQLite implementation of [`ChatStore`]. Sending takes the database write lock up front
//! (`BEGIN IMMEDIATE`), so message ids are made and committed in one order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{
    ChatStore, ConversationKey, ConversationRecord, ConversationSummary, MarkedRead, MessageRecord,
    NewMessage, SendOutcome,
};
use crate::error::StoreError;
use crate::infra::db::{id_list, sqlite_writer};
use crate::infra::time::sqlite_ts;

pub struct SqliteChatStore {
    pool: SqlitePool,
}

impl SqliteChatStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteChatStore { pool }
    }
}

/// The columns of [`MessageRecord`], unqualified (for `RETURNING`, where SQLite does not
/// accept a table alias).
const RETURNED_COLUMNS: &str = "id, conversation_id, sender_id, recipient_id, kind, content,
        playground_id, client_id, read_at, created_at";

const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.sender_id, m.recipient_id, m.kind, m.content,
        m.playground_id, m.client_id, m.read_at, m.created_at";

/// `?1` is the viewer: the conversation from their side.
const CONVERSATION_SELECT: &str = "SELECT c.id, c.match_id,
        CASE WHEN c.user_a = ?1 THEN c.user_b ELSE c.user_a END AS other_id,
        c.created_at, c.updated_at,
        CASE WHEN c.user_a = ?1 THEN c.a_cleared_at ELSE c.b_cleared_at END AS cleared_at
   FROM conversations c";

/// Messages visible to the viewer `?1`: not older than their last clear of the conversation.
const VISIBLE: &str = "m.created_at > COALESCE(CASE WHEN c.user_a = ?1 THEN c.a_cleared_at
                                                     ELSE c.b_cleared_at END, '')";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    conversation: ConversationRecord,
    unread_count: i64,
    last_id: Option<Uuid>,
}

#[async_trait]
impl ChatStore for SqliteChatStore {
    async fn conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CONVERSATION_SELECT} WHERE c.id = ?2 AND (c.user_a = ?1 OR c.user_b = ?1)
                AND NOT EXISTS (SELECT 1 FROM users h
                                 WHERE h.id = CASE WHEN c.user_a = ?1 THEN c.user_b ELSE c.user_a END
                                   AND h.hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
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
        // The page with each conversation's unread count and last visible message id, then the
        // last messages by id: two statements for any page size.
        let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT v.*,
                    (SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                      WHERE m.conversation_id = v.id AND m.recipient_id = ?1 AND m.read_at IS NULL
                        AND {VISIBLE}) AS unread_count,
                    (SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                      WHERE m.conversation_id = v.id AND {VISIBLE}
                      ORDER BY m.id DESC LIMIT 1) AS last_id
               FROM ({CONVERSATION_SELECT}
                      WHERE (c.user_a = ?1 OR c.user_b = ?1)
                        AND NOT EXISTS (SELECT 1 FROM users h
                                         WHERE h.id = CASE WHEN c.user_a = ?1 THEN c.user_b ELSE c.user_a END
                                           AND h.hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                        AND (?2 IS NULL OR c.updated_at < ?2 OR (c.updated_at = ?2 AND c.id < ?3))
                        AND (?5 IS NULL OR c.id = ?5)
                      ORDER BY c.updated_at DESC, c.id DESC
                      LIMIT ?4) v
              ORDER BY v.updated_at DESC, v.id DESC"
        )))
        .bind(user_id)
        .bind(after_at.map(sqlite_ts))
        .bind(after_id)
        .bind(limit)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        let last_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.last_id).collect();
        let mut last: std::collections::HashMap<Uuid, MessageRecord> = if last_ids.is_empty() {
            Default::default()
        } else {
            sqlx::query_as::<_, MessageRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m
                  WHERE m.id IN (SELECT unhex(value) FROM json_each(?1))"
            )))
            .bind(id_list(&last_ids))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect()
        };
        Ok(rows
            .into_iter()
            .map(|r| ConversationSummary {
                last_message: r.last_id.and_then(|id| last.remove(&id)),
                conversation: r.conversation,
                unread_count: r.unread_count,
            })
            .collect())
    }

    async fn insert_message(&self, msg: NewMessage) -> Result<SendOutcome, StoreError> {
        // One statement on the writer connection: the membership check, the insert and (by
        // trigger) the conversation's activity time. The id is made after the connection is
        // ours, so ids increase in commit order. Nothing inserted means not a member, or a
        // client id used before (the unique index).
        let mut writer = sqlite_writer(&self.pool).acquire().await?;
        let id = Uuid::now_v7();
        let stored: Option<MessageRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind, content,
                                   playground_id, client_id, created_at)
             SELECT ?1, c.id, ?3, CASE WHEN c.user_a = ?3 THEN c.user_b ELSE c.user_a END,
                    ?4, ?5, ?6, ?7, ?8
               FROM conversations c
              WHERE c.id = ?2 AND (c.user_a = ?3 OR c.user_b = ?3)
                AND NOT EXISTS (SELECT 1 FROM users h
                                 WHERE h.id = CASE WHEN c.user_a = ?3 THEN c.user_b ELSE c.user_a END
                                   AND h.hidden_until > ?8)
             ON CONFLICT DO NOTHING
             RETURNING {RETURNED_COLUMNS}"
        )))
        .bind(id)
        .bind(msg.conversation_id)
        .bind(msg.sender_id)
        .bind(msg.kind)
        .bind(&msg.content)
        .bind(msg.playground_id)
        .bind(&msg.client_id)
        .bind(sqlite_ts(msg.now))
        .fetch_optional(&mut *writer)
        .await?;
        drop(writer);
        if let Some(stored) = stored {
            return Ok(SendOutcome::Stored(stored));
        }
        let earlier: Option<MessageRecord> = match &msg.client_id {
            Some(client_id) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m
                      WHERE m.sender_id = ?1 AND m.client_id = ?2
                        AND EXISTS (SELECT 1 FROM conversations c
                                     WHERE c.id = ?3 AND (c.user_a = ?1 OR c.user_b = ?1))"
                )))
                .bind(msg.sender_id)
                .bind(client_id)
                .bind(msg.conversation_id)
                .fetch_optional(&self.pool)
                .await?
            }
            None => None,
        };
        Ok(match earlier {
            Some(existing) => SendOutcome::Duplicate(existing),
            None => SendOutcome::NotInConversation,
        })
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
              WHERE m.conversation_id = ?2 AND (c.user_a = ?1 OR c.user_b = ?1) AND {VISIBLE}
                AND (?3 IS NULL OR m.id < ?3)
              ORDER BY m.id DESC LIMIT ?4"
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
                  WHERE m.recipient_id = ?1 AND m.id > ?2 AND {VISIBLE}
                 UNION ALL
                 SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                  WHERE m.sender_id = ?1 AND m.id > ?2 AND {VISIBLE})
              ORDER BY id LIMIT ?3"
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
        let marked: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE messages SET read_at = ?4
              WHERE conversation_id = ?2 AND recipient_id = ?1 AND read_at IS NULL
                AND (?3 IS NULL OR id <= ?3)
              RETURNING id",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(up_to)
        .bind(sqlite_ts(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(MarkedRead {
            count: marked.len() as u64,
            up_to: marked.iter().max().copied(),
        })
    }

    async fn mark_messages_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE messages AS m SET read_at = ?3
              WHERE m.id IN (SELECT unhex(value) FROM json_each(?2))
                AND m.recipient_id = ?1 AND m.read_at IS NULL
              RETURNING {RETURNED_COLUMNS}"
        )))
        .bind(user_id)
        .bind(id_list(ids))
        .bind(sqlite_ts(now))
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
                SET a_cleared_at = CASE WHEN user_a = ?1 THEN ?3 ELSE a_cleared_at END,
                    b_cleared_at = CASE WHEN user_b = ?1 THEN ?3 ELSE b_cleared_at END
              WHERE id = ?2 AND (user_a = ?1 OR user_b = ?1)",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(sqlite_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
