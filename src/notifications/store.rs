//! Notification storage: the inbox, per-user preferences, devices, and the push queue, written
//! once for both backends (see [`crate::infra::sql`]).

use chrono::{DateTime, Utc};
use const_format::concatcp;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::error::StoreError;
use crate::infra::db::Db;
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, execute, execute_in, fetch, fetch_scalar, in_ids, returning, with_db,
};
use crate::infra::stored::stored_enum;

/// Most devices a person may have registered; registering one more forgets the least recently
/// seen.
pub const MAX_DEVICES: i64 = 10;

/// Keeps only a person's [`MAX_DEVICES`] most recently seen devices (`$1` the person, `$2` the
/// number kept).
const PRUNE_DEVICES: &str = "DELETE FROM devices WHERE user_id = $1 AND id NOT IN (
         SELECT id FROM devices WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC LIMIT $2)";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub data: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub push_state: PushState,
    pub push_attempts: i32,
}

/// A push claimed for an attempt by the delivery job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DuePush {
    #[sqlx(flatten)]
    pub notification: NotificationRecord,
    /// The trace of the request that caused it, when that was recorded.
    pub push_traceparent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Preferences {
    pub matches: bool,
    pub messages: bool,
    pub likes: bool,
    pub push: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            matches: true,
            messages: true,
            likes: true,
            push: true,
        }
    }
}

/// A partial update of [`Preferences`]: `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferencesPatch {
    pub matches: Option<bool>,
    pub messages: Option<bool>,
    pub likes: Option<bool>,
    pub push: Option<bool>,
}

/// What a notification is about (GraphQL `NotificationKind`).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Match,
    Message,
    Like,
    /// From the service itself (a moderator's warning).
    System,
}
stored_enum!(NotificationKind { Match => "MATCH", Message => "MESSAGE", Like => "LIKE", System => "SYSTEM" });

/// Where a notification's push stands (`notifications.push_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// No push wanted (the person was online, or has push off, or no device).
    NotWanted,
    /// Waiting for (another) attempt at `next_attempt_at`.
    Pending,
    Sent,
    /// Gave up after the last attempt.
    Failed,
}
stored_enum!(PushState { NotWanted => "NONE", Pending => "PENDING", Sent => "SENT", Failed => "FAILED" });

/// The columns of a [`NotificationRecord`].
const COLUMNS: &str =
    "id, user_id, kind, title, body, data, read_at, created_at, push_state, push_attempts";

const MARK_READ: Sql = in_ids!(
    "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND read_at IS NULL AND id",
    2,
    ""
);

/// Pending pushes due by `$1`, oldest first (`$3` of them), leased until `$2`. PostgreSQL skips
/// rows another worker is claiming; SQLite's writer runs one claim at a time.
const CLAIM_DUE_PUSHES: Sql = Sql {
    postgres: concatcp!(
        "UPDATE notifications SET next_attempt_at = $2
          WHERE id IN (SELECT id FROM notifications
                        WHERE push_state = 'PENDING' AND next_attempt_at <= $1
                        ORDER BY next_attempt_at LIMIT $3
                        FOR UPDATE SKIP LOCKED)
          RETURNING push_traceparent, ",
        COLUMNS
    ),
    sqlite: concatcp!(
        "UPDATE notifications SET next_attempt_at = $2
          WHERE id IN (SELECT id FROM notifications
                        WHERE push_state = 'PENDING' AND next_attempt_at <= $1
                        ORDER BY next_attempt_at LIMIT $3)
          RETURNING push_traceparent, ",
        COLUMNS
    ),
};

/// SQLite's [`NotificationStore::insert_wanted`], on the writer connection (so the conversation
/// it may depend on cannot end in between). PostgreSQL's is the `pupmatch_notify` function,
/// which `pupmatch_like` calls too.
async fn insert_wanted_sqlite(
    conn: &mut SqliteConnection,
    n: &NotificationRecord,
    offline: bool,
    conversation: Option<Uuid>,
) -> Result<Option<PushState>, StoreError> {
    // A new message notice replaces the person's unread ones about the same conversation.
    if let (NotificationKind::Message, Some(conversation)) = (n.kind, conversation) {
        sqlx::query(
            "DELETE FROM notifications
              WHERE user_id = $1 AND kind = 'MESSAGE' AND read_at IS NULL
                AND data LIKE '%\"conversationId\":\"' || $2 || '\"%'",
        )
        .bind(n.user_id)
        .bind(conversation.to_string())
        .execute(&mut *conn)
        .await?;
    }
    // Nothing when they turned the kind off; a push pending when `offline` and they have a
    // device and push on. (A like's notice is stored the same way by the `like_requests`
    // trigger.)
    Ok(sqlx::query_scalar(
        "INSERT INTO notifications (id, user_id, kind, title, body, data, created_at,
                                    push_state, push_attempts, next_attempt_at)
         SELECT $1, $2, $3, $4, $5, $6, $7,
                CASE WHEN o.pushable AND COALESCE(p.push, true) THEN 'PENDING' ELSE 'NONE' END,
                0,
                CASE WHEN o.pushable AND COALESCE(p.push, true) THEN $7 END
           FROM (SELECT $8 AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = $2)
                    AS pushable) o
           LEFT JOIN notification_preferences p ON p.user_id = $2
          WHERE COALESCE(CASE $3 WHEN 'MATCH' THEN p.matches
                                 WHEN 'MESSAGE' THEN p.messages
                                 WHEN 'LIKE' THEN p.likes END, true)
            AND ($9 IS NULL OR EXISTS (SELECT 1 FROM conversations WHERE id = $9))
         RETURNING push_state",
    )
    .bind(n.id)
    .bind(n.user_id)
    .bind(n.kind)
    .bind(&n.title)
    .bind(&n.body)
    .bind(&n.data)
    .bind(Ts(n.created_at))
    .bind(offline)
    .bind(conversation)
    .fetch_optional(conn)
    .await?)
}

/// The inbox, preferences, devices and push queue.
#[derive(Clone)]
pub struct NotificationStore {
    db: Db,
}

impl NotificationStore {
    /// What each of two people's inboxes says about the other (`$1` and `$2` the pair; `$3`,
    /// `$4` the other's id as text): notifications whose data names them. A store that ends
    /// what is between two people (a block) runs it inside its own transaction.
    pub const FORGET_NOTICES_BETWEEN: Sql = Sql {
        postgres: "DELETE FROM notifications
                    WHERE (user_id = $1 AND data::jsonb ->> 'userId' = $3)
                       OR (user_id = $2 AND data::jsonb ->> 'userId' = $4)",
        sqlite: "DELETE FROM notifications
                  WHERE (user_id = $1 AND json_extract(data, '$.userId') = $3)
                     OR (user_id = $2 AND json_extract(data, '$.userId') = $4)",
    };

    pub fn new(db: &Db) -> Self {
        NotificationStore { db: db.clone() }
    }

    /// Stores the notification if the person's preferences want its kind, in one statement.
    /// Its push is `PENDING` (due at once) when `offline` and the person has push on and a
    /// registered device, else `NONE`. Returns the push state stored, or `None` when the
    /// preferences declined it.
    ///
    /// On PostgreSQL it commits without waiting for the WAL flush (`synchronous_commit` off for
    /// this statement's transaction only): a crash may lose the last fraction of a second of
    /// notifications, never a message (messages commit durably before their ack).
    pub async fn insert_wanted(
        &self,
        n: &NotificationRecord,
        offline: bool,
        conversation: Option<Uuid>,
    ) -> Result<Option<PushState>, StoreError> {
        match &self.db {
            // A notice about a conversation waits for a block or unmatch ending it, or finds
            // it gone (see `pupmatch_notify_in_conversation`).
            Db::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT CASE WHEN $9::uuid IS NULL
                             THEN pupmatch_notify($1, $2, $3, $4, $5, $6, $7, $8)
                             ELSE pupmatch_notify_in_conversation($9, $1, $2, $3, $4, $5, $6,
                                                                  $7, $8)
                        END
                   FROM (SELECT set_config('synchronous_commit', 'off', true)) o",
            )
            .bind(n.id)
            .bind(n.user_id)
            .bind(n.kind)
            .bind(&n.title)
            .bind(&n.body)
            .bind(&n.data)
            .bind(n.created_at)
            .bind(offline)
            .bind(conversation)
            .fetch_one(pool)
            .await?),
            Db::Sqlite(pool) => {
                let mut writer = pool.writer().acquire().await?;
                insert_wanted_sqlite(&mut writer, n, offline, conversation).await
            }
        }
    }

    /// The user's notifications, newest first, older than `before`.
    pub async fn list(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            concatcp!(
                "SELECT ",
                COLUMNS,
                " FROM notifications
                 WHERE user_id = $1 AND ($2 IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)
                 ORDER BY id DESC LIMIT $4"
            ),
            user_id,
            before,
            unread_only,
            limit
        ))
    }

    /// Marks the user's listed notifications read; how many changed.
    pub async fn mark_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(execute!(&self.db, MARK_READ, user_id, Ids(ids), Ts(now)))
    }

    pub async fn preferences(&self, user_id: Uuid) -> Result<Preferences, StoreError> {
        let found: Option<Preferences> = fetch!(
            &self.db,
            fetch_optional,
            "SELECT matches, messages, likes, push FROM notification_preferences
                  WHERE user_id = $1",
            user_id
        );
        Ok(found.unwrap_or_default())
    }

    pub async fn update_preferences(
        &self,
        user_id: Uuid,
        p: PreferencesPatch,
        now: DateTime<Utc>,
    ) -> Result<Preferences, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_one,
            "INSERT INTO notification_preferences
                        (user_id, matches, messages, likes, push, updated_at)
                 VALUES ($1, COALESCE($2, true), COALESCE($3, true), COALESCE($4, true),
                         COALESCE($5, true), $6)
                 ON CONFLICT (user_id) DO UPDATE SET
                     matches = COALESCE($2, notification_preferences.matches),
                     messages = COALESCE($3, notification_preferences.messages),
                     likes = COALESCE($4, notification_preferences.likes),
                     push = COALESCE($5, notification_preferences.push),
                     updated_at = $6
                 RETURNING matches, messages, likes, push",
            user_id,
            p.matches,
            p.messages,
            p.likes,
            p.push,
            Ts(now)
        ))
    }

    /// Registers a device token for the user (a token moves to its latest user).
    pub async fn register_device(
        &self,
        user_id: Uuid,
        token: &str,
        platform: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(
                tx,
                "INSERT INTO devices (id, user_id, token, platform, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (token) DO UPDATE SET
                     user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
                     last_seen_at = EXCLUDED.last_seen_at",
                Uuid::now_v7(),
                user_id,
                token,
                platform,
                Ts(now)
            );
            execute_in!(tx, PRUNE_DEVICES, user_id, MAX_DEVICES);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes the user's device token; false when they had no such token.
    pub async fn unregister_device(&self, user_id: Uuid, token: &str) -> Result<bool, StoreError> {
        let removed = execute!(
            &self.db,
            "DELETE FROM devices WHERE user_id = $1 AND token = $2",
            user_id,
            token
        );
        Ok(removed > 0)
    }

    /// Forgets a token the push service reported as no longer valid.
    pub async fn forget_device(&self, token: &str) -> Result<(), StoreError> {
        execute!(&self.db, "DELETE FROM devices WHERE token = $1", token);
        Ok(())
    }

    pub async fn device_tokens(&self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_all,
            "SELECT token FROM devices WHERE user_id = $1 ORDER BY created_at",
            user_id
        ))
    }

    /// Pending pushes due by `now`, oldest first, claimed for a while (their next attempt is
    /// moved to `lease_until`) so that two workers never send the same one.
    pub async fn claim_due_pushes(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DuePush>, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_all,
            CLAIM_DUE_PUSHES,
            Ts(now),
            Ts(lease_until),
            limit
        ))
    }

    /// Records a push attempt's result, and for a push left for later the trace it belongs to.
    pub async fn set_push_state(
        &self,
        id: Uuid,
        state: PushState,
        attempts: i32,
        next_attempt_at: Option<DateTime<Utc>>,
        traceparent: Option<&str>,
    ) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "UPDATE notifications
                    SET push_state = $2, push_attempts = $3, next_attempt_at = $4,
                        push_traceparent = $5
                  WHERE id = $1",
            id,
            state,
            attempts,
            next_attempt_at.map(Ts),
            traceparent.filter(|_| state == PushState::Pending)
        );
        Ok(())
    }
}
