//! Reading: marking messages read, and clearing a conversation from one side.

use super::*;
use crate::ids::uuids;

const MARK_MESSAGES_READ: Sql = in_ids!(
    "UPDATE messages SET read_at = $3 WHERE recipient_id = $1 AND read_at IS NULL AND id",
    2,
    concatcp!(" RETURNING ", RETURNED_COLUMNS)
);

impl ChatStore {
    /// Marks unread messages to `user_id` in the conversation read, those with id ≤ `up_to`
    /// (all when `None`).
    pub async fn mark_conversation_read(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
        up_to: Option<MessageId>,
        now: DateTime<Utc>,
    ) -> Result<MarkedRead, StoreError> {
        let marked: Vec<MessageId> = returning_scalar!(
            &self.db,
            fetch_all,
            "UPDATE messages SET read_at = $4
                  WHERE conversation_id = $2 AND recipient_id = $1 AND read_at IS NULL
                    AND ($3 IS NULL OR id <= $3)
                  RETURNING id",
            user_id,
            conversation_id,
            up_to,
            Ts(now)
        );
        Ok(MarkedRead {
            count: marked.len() as u64,
            up_to: marked.iter().max().copied(),
        })
    }

    /// Marks the given messages read where `user_id` is their recipient. Returns the messages
    /// that became read (for read receipts).
    pub async fn mark_messages_read(
        &self,
        user_id: Uuid,
        ids: &[MessageId],
        now: DateTime<Utc>,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_all,
            MARK_MESSAGES_READ,
            user_id,
            Ids(&uuids(ids)),
            Ts(now)
        ))
    }

    /// Hides everything up to now from `user_id` (the other person keeps it). False when the
    /// user is not in the conversation.
    pub async fn clear_conversation(
        &self,
        user_id: Uuid,
        conversation_id: ConversationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = execute!(
            &self.db,
            "UPDATE conversations
                    SET a_cleared_at = CASE WHEN user_a = $1 THEN $3 ELSE a_cleared_at END,
                        b_cleared_at = CASE WHEN user_b = $1 THEN $3 ELSE b_cleared_at END
                  WHERE id = $2 AND (user_a = $1 OR user_b = $1)",
            user_id,
            conversation_id,
            Ts(now)
        );
        Ok(changed > 0)
    }
}
