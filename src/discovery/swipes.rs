//! Swipes and what follows them: like (a mutual like is a match), pass, undo a pass, take a
//! like back, unmatch; the person's matches and how many people like them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::DiscoveryService;
use super::store::{Like, LikeOutcome, MatchRecord};
use crate::error::{ApiError, ApiResult};
use crate::events::{MatchEvent, TOPIC_MATCH, TOPIC_UNMATCHED};
use crate::infra::sql::{page_limit, page_of};
use crate::infra::time;
use crate::notifications::Notify;

impl DiscoveryService {
    pub(super) fn check_target(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        if user_id == target {
            return Err(ApiError::bad_input("userId", "that is you"));
        }
        Ok(())
    }

    /// Likes `target`; a mutual like makes exactly one match (never one without both likes).
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
    ) -> ApiResult<Option<(MatchRecord, bool)>> {
        self.check_target(user_id, target)?;
        // The like, the checks that both people have a profile and are not blocked, and the
        // `LIKE` notification are one transaction (one round trip on PostgreSQL).
        let notice = self.notifications.outgoing(Notify::liked(target)).await;
        let outcome = self
            .store
            .like(Like {
                user_id,
                target,
                now: time::now(),
                notice: notice.record.clone(),
                target_offline: notice.offline,
            })
            .await?;
        match outcome {
            LikeOutcome::NoProfile => Err(ApiError::Forbidden("create your profile first".into())),
            LikeOutcome::NoSuchUser | LikeOutcome::Blocked => {
                Err(ApiError::NotFound("no such profile".into()))
            }
            LikeOutcome::Liked {
                new,
                notice_push_state,
            } => {
                if new {
                    // The liker now shows in the other's list as having liked them (and
                    // scores higher there). The liker's own list skips people once liked.
                    self.liked(user_id, target).await;
                    self.notifications.stored(notice, notice_push_state).await;
                }
                Ok(None)
            }
            LikeOutcome::Matched { record, new } => {
                // Both lists skip a matched pair when served: neither needs computing again.
                if new {
                    self.marks.swiped(user_id).await;
                    self.forget_relation(user_id, target).await;
                    self.publish(TOPIC_MATCH, user_id, &record).await;
                    let views = self.profiles.views(&[user_id, target]).await?;
                    let name = |id: &Uuid| {
                        views
                            .get(id)
                            .map_or_else(|| "someone".to_string(), |v| v.profile.name.clone())
                    };
                    for (who, other) in [(user_id, target), (target, user_id)] {
                        self.notifications
                            .notify(Notify::matched(
                                who,
                                other,
                                &name(&other),
                                record.id,
                                record.conversation_id,
                            ))
                            .await;
                    }
                }
                Ok(Some((record, new)))
            }
        }
    }

    pub async fn pass(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if !self.store.pass(user_id, target, time::now()).await? {
            return Err(ApiError::NotFound("no such profile".into()));
        }
        // The passer's list skips the person from now on (see `recommendations`).
        self.marks.swiped(user_id).await;
        Ok(())
    }

    pub async fn unlike(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if let Some(ended) = self.store.unlike(user_id, target).await? {
            self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        }
        self.invalidate_pair(user_id, target).await;
        Ok(())
    }

    /// Rewinds the most recent pass on someone who still exists for the user (no block either
    /// way: a pass on a person who blocked you stays, and is never handed back): whom it was
    /// about.
    pub async fn undo_pass(&self, user_id: Uuid) -> ApiResult<Option<Uuid>> {
        let target = self.store.undo_last_pass(user_id).await?;
        if target.is_some() {
            self.invalidate(user_id).await;
        }
        Ok(target)
    }

    /// Ends one of the user's matches; the conversation ends with it (no more messages).
    pub async fn unmatch(&self, user_id: Uuid, match_id: Uuid) -> ApiResult<()> {
        let ended = self
            .store
            .unmatch(user_id, match_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such match".into()))?;
        self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        self.invalidate_pair(user_id, ended.other_id).await;
        self.forget_relation(user_id, ended.other_id).await;
        Ok(())
    }

    pub async fn matches(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
    ) -> ApiResult<(Vec<MatchRecord>, bool)> {
        let before = after
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| Uuid::from_slice(&b).ok())
                    .ok_or_else(|| ApiError::bad_input("after", "invalid cursor"))
            })
            .transpose()?;
        let rows = self
            .store
            .matches(user_id, before, page_limit(first))
            .await?;
        Ok(page_of(rows, first))
    }

    pub async fn likes_received_count(&self, user_id: Uuid) -> ApiResult<i64> {
        Ok(self.store.likes_received_count(user_id).await?)
    }

    pub(super) async fn publish(&self, topic: &str, actor: Uuid, m: &MatchRecord) {
        let event = MatchEvent {
            match_id: m.id,
            conversation_id: m.conversation_id,
            users: [actor, m.other_id],
            created_at: m.created_at,
            traceparent: crate::infra::traces::current_traceparent(),
        };
        match serde_json::to_string(&event) {
            Ok(payload) => {
                if let Err(err) = self.bus.publish(topic, payload).await {
                    tracing::error!(
                        error = format!("{err:#}"),
                        topic,
                        "publishing a match event failed"
                    );
                }
            }
            Err(err) => tracing::error!(error = %err, "serialising a match event failed"),
        }
    }
}

pub fn match_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}
