//! Notifications: the in-app inbox, per-person preferences, devices, and push.
//!
//! [`NotificationService::notify`] is called by the service where the event happened (a new
//! match, message or like), once per event: it checks the person's preferences, stores the
//! notification, sends it to their live sockets as a `notification` frame, and when they have
//! no live socket anywhere (and push on, and a registered device) queues a push and tries it
//! at once. Pushes that fail for now stay queued with a backoff for
//! [`NotificationService::deliver_due_pushes`], which the background worker runs. A like
//! stores its notification in its own transaction ([`NotificationService::outgoing`], then
//! [`NotificationService::stored`]).

pub mod graphql;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::frames::{NotificationFrame, ServerFrame};
use crate::hub::Hub;
use crate::ids::{ConversationId, MessageId};
use crate::infra::db::Db;
use crate::infra::push::{PushError, PushMessage, PushSender};
use crate::infra::sql::{page_limit, page_of};
use crate::infra::time;
pub use store::NotificationKind;
use store::{NotificationRecord, NotificationStore, Preferences, PreferencesPatch, PushState};

/// Attempts per notification before its push is given up.
pub const MAX_PUSH_ATTEMPTS: i32 = 5;
/// How long a claimed push is reserved for the worker that claimed it.
const PUSH_LEASE: Duration = Duration::from_secs(120);
/// Longest device token accepted.
const MAX_DEVICE_TOKEN: usize = 4096;

/// One event for one person.
#[derive(Debug, Clone)]
pub struct Notify {
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// Ids the app needs to open the right screen (a JSON object of strings).
    pub data: Vec<(String, String)>,
    /// Stored only while this conversation exists: the notice of a match or a message never
    /// lands after a block or unmatch ended it (a block also clears those stored before).
    pub conversation: Option<Uuid>,
}

impl Notify {
    pub fn matched(
        user_id: Uuid,
        other_id: Uuid,
        other_name: &str,
        match_id: Uuid,
        conversation_id: ConversationId,
    ) -> Self {
        Notify {
            user_id,
            kind: NotificationKind::Match,
            title: "It's a match!".into(),
            body: format!("You and {other_name} like each other. Say hello!"),
            data: vec![
                ("matchId".into(), match_id.to_string()),
                ("conversationId".into(), conversation_id.to_string()),
                ("userId".into(), other_id.to_string()),
            ],
            conversation: Some(conversation_id.uuid()),
        }
    }

    /// The message text itself stays out of notifications (and so out of push services).
    pub fn message(
        user_id: Uuid,
        sender_id: Uuid,
        sender_name: &str,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Self {
        Notify {
            user_id,
            kind: NotificationKind::Message,
            title: format!("New message from {sender_name}"),
            body: "Open PupMatch to read it.".into(),
            data: vec![
                ("conversationId".into(), conversation_id.to_string()),
                ("messageId".into(), message_id.to_string()),
                ("userId".into(), sender_id.to_string()),
            ],
            conversation: Some(conversation_id.uuid()),
        }
    }

    pub fn liked(user_id: Uuid) -> Self {
        Notify {
            user_id,
            kind: NotificationKind::Like,
            title: "Someone likes you".into(),
            body: "Keep swiping to find out who.".into(),
            data: vec![],
            conversation: None,
        }
    }
}

impl From<&NotificationRecord> for NotificationFrame {
    /// A notification as clients see it (the same fields as GraphQL `Notification`).
    fn from(n: &NotificationRecord) -> Self {
        NotificationFrame {
            id: n.id,
            kind: n.kind.as_db(),
            title: n.title.clone(),
            body: n.body.clone(),
            data: n.data.clone(),
            read: n.read_at.is_some(),
            created_at: n.created_at,
        }
    }
}

/// When the next attempt of a push that failed `attempts` times is due: 30 s, 1, 2, 4 … min.
pub fn push_backoff(attempts: i32) -> chrono::Duration {
    let exp = u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0);
    chrono::Duration::seconds(30 * 2_i64.pow(exp))
}

/// A notification made by [`NotificationService::outgoing`], not stored yet.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub record: NotificationRecord,
    /// Its person had no live socket anywhere when it was made: a push is wanted.
    pub offline: bool,
    /// See [`Notify::conversation`].
    pub conversation: Option<Uuid>,
}

pub struct NotificationService {
    store: NotificationStore,
    hub: Arc<Hub>,
    push: Arc<dyn PushSender>,
}

impl NotificationService {
    pub fn new(db: &Db, hub: Arc<Hub>, push: Arc<dyn PushSender>) -> Arc<Self> {
        let store = NotificationStore::new(db);
        Arc::new(NotificationService { store, hub, push })
    }

    /// Stores and delivers one notification (see the module docs). Failures are logged, never
    /// returned: the event that caused it already happened.
    pub async fn notify(self: &Arc<Self>, event: Notify) {
        if let Err(err) = self.try_notify(event).await {
            tracing::error!(error = %err, "notification not stored");
        }
    }

    async fn try_notify(self: &Arc<Self>, event: Notify) -> ApiResult<()> {
        let outgoing = self.outgoing(event).await;
        let state = self
            .store
            .insert_wanted(&outgoing.record, outgoing.offline, outgoing.conversation)
            .await?;
        self.stored(outgoing, state).await;
        Ok(())
    }

    /// Makes the notification for `event` and checks whether its person is online, for a
    /// caller that stores it in the transaction of the event itself (a like stores its `LIKE`
    /// notification that way). Hand the outcome to [`NotificationService::stored`].
    pub async fn outgoing(&self, event: Notify) -> Outgoing {
        let offline = !self.hub.is_online(event.user_id).await;
        let data: serde_json::Map<String, serde_json::Value> = event
            .data
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        Outgoing {
            offline,
            conversation: event.conversation,
            record: NotificationRecord {
                id: Uuid::now_v7(),
                user_id: event.user_id,
                kind: event.kind,
                title: event.title,
                body: event.body,
                data: (!data.is_empty()).then(|| serde_json::Value::Object(data).to_string()),
                read_at: None,
                created_at: time::now(),
                push_state: PushState::NotWanted,
                push_attempts: 0,
            },
        }
    }

    /// Delivers a notification once it is stored with push state `state` (`None`: the
    /// person's preferences declined it, so nothing happens): the `notification` frame to
    /// their live sockets, and, when it is due, the push — in the background, so the request
    /// that caused it does not wait for Google.
    pub async fn stored(self: &Arc<Self>, outgoing: Outgoing, state: Option<PushState>) {
        let Some(state) = state else {
            return;
        };
        let mut record = outgoing.record;
        let push = state == PushState::Pending;
        record.push_state = state;
        metrics::counter!("notifications_total", "kind" => record.kind.as_db()).increment(1);
        // Live or push, as the module docs say: a person with no live socket anywhere when it
        // was made gets the push (when wanted) and finds it in their list, so no frame is sent
        // to every instance for nobody. One who connected since then sees it there too.
        if !outgoing.offline {
            self.hub
                .send(
                    vec![record.user_id],
                    None,
                    ServerFrame::Notification {
                        notification: (&record).into(),
                    },
                )
                .await;
        }
        if push {
            let this = self.clone();
            // Part of the trace of the request that caused it.
            tokio::spawn(
                async move {
                    if let Err(err) = this.push_one(record).await {
                        tracing::error!(error = %err, "push bookkeeping failed");
                    }
                }
                .in_current_span(),
            );
        }
    }

    /// One attempt at a queued push, to every device of its person; records the outcome.
    async fn push_one(&self, n: NotificationRecord) -> ApiResult<()> {
        let tokens = self.store.device_tokens(n.user_id).await?;
        if tokens.is_empty() {
            self.store
                .set_push_state(n.id, PushState::NotWanted, n.push_attempts, None, None)
                .await?;
            return Ok(());
        }
        let message = PushMessage {
            title: n.title.clone(),
            body: n.body.clone(),
            data: n
                .data
                .as_deref()
                .and_then(|d| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(d).ok()
                })
                .map(|m| {
                    m.into_iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let (mut sent, mut transient, mut refused) = (false, false, false);
        for token in &tokens {
            match self.push.send(token, &message).await {
                Ok(()) => sent = true,
                Err(PushError::Unregistered) => {
                    tracing::info!("push token no longer registered; device forgotten");
                    self.store.forget_device(token).await?;
                }
                Err(PushError::Transient(reason)) => {
                    tracing::warn!(reason, "push failed for now");
                    transient = true;
                }
                Err(PushError::Permanent(reason)) => {
                    tracing::error!(reason, "push refused");
                    refused = true;
                }
            }
        }
        let attempts = n.push_attempts + 1;
        let (state, next) = if sent {
            (PushState::Sent, None)
        } else if transient && attempts < MAX_PUSH_ATTEMPTS {
            (
                PushState::Pending,
                Some(time::now() + push_backoff(attempts)),
            )
        } else if transient || refused {
            (PushState::Failed, None)
        } else {
            // Every device was gone: nothing left to push to.
            (PushState::NotWanted, None)
        };
        // A push left for the delivery job keeps the trace it belongs to.
        let trace = crate::infra::traces::current_traceparent();
        self.store
            .set_push_state(n.id, state, attempts, next, trace.as_deref())
            .await?;
        Ok(())
    }

    /// Sends the queued pushes that are due (the delivery job). How many were attempted.
    pub async fn deliver_due_pushes(&self, limit: i64) -> ApiResult<usize> {
        let now = time::now();
        let lease = now + chrono::Duration::from_std(PUSH_LEASE).unwrap_or_default();
        let due = self.store.claim_due_pushes(now, lease, limit).await?;
        let n = due.len();
        for due in due {
            // An attempt of the trace that queued it, when that was recorded; else of this run.
            let span = match due.push_traceparent.as_deref() {
                Some(traceparent) => crate::infra::sampling::continuing(
                    crate::infra::traces::parent_from_traceparent(traceparent),
                    true,
                    || tracing::info_span!(parent: None, "push", otel.name = "push attempt", attempts = due.notification.push_attempts),
                ),
                None => tracing::info_span!(
                    "push",
                    otel.name = "push attempt",
                    attempts = due.notification.push_attempts
                ),
            };
            self.push_one(due.notification).instrument(span).await?;
        }
        Ok(n)
    }

    pub async fn list(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
        unread_only: bool,
    ) -> ApiResult<(Vec<NotificationRecord>, bool)> {
        let before = after.map(parse_cursor).transpose()?;
        let rows = self
            .store
            .list(user_id, before, unread_only, page_limit(first))
            .await?;
        Ok(page_of(rows, first))
    }

    pub async fn mark_read(&self, user_id: Uuid, ids: &[Uuid]) -> ApiResult<u64> {
        if ids.len() > 500 {
            return Err(ApiError::bad_input("ids", "at most 500 ids at once"));
        }
        Ok(self.store.mark_read(user_id, ids, time::now()).await?)
    }

    pub async fn preferences(&self, user_id: Uuid) -> ApiResult<Preferences> {
        Ok(self.store.preferences(user_id).await?)
    }

    pub async fn update_preferences(
        &self,
        user_id: Uuid,
        patch: PreferencesPatch,
    ) -> ApiResult<Preferences> {
        Ok(self
            .store
            .update_preferences(user_id, patch, time::now())
            .await?)
    }

    pub async fn register_device(
        &self,
        user_id: Uuid,
        token: &str,
        platform: &str,
    ) -> ApiResult<()> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_DEVICE_TOKEN {
            return Err(ApiError::bad_input(
                "token",
                format!("a device token is 1 to {MAX_DEVICE_TOKEN} bytes"),
            ));
        }
        Ok(self
            .store
            .register_device(user_id, token, platform, time::now())
            .await?)
    }

    pub async fn unregister_device(&self, user_id: Uuid, token: &str) -> ApiResult<bool> {
        Ok(self.store.unregister_device(user_id, token.trim()).await?)
    }
}

pub fn cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn parse_cursor(cursor: &str) -> ApiResult<Uuid> {
    let invalid = || ApiError::bad_input("after", "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    Uuid::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_backoff_doubles_from_thirty_seconds() {
        assert_eq!(push_backoff(1).num_seconds(), 30);
        assert_eq!(push_backoff(2).num_seconds(), 60);
        assert_eq!(push_backoff(4).num_seconds(), 240);
    }
}
