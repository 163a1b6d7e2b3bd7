//! Moderating places: the list moderators read, removing a place, merging a duplicate into another.

use super::*;

use crate::ids::PlaygroundId;

impl ModerationService {
    /// Places for moderators, newest first (at most [`PLACES_LISTED`]); with `search`, those
    /// whose name contains it.
    pub async fn places(&self, search: Option<&str>) -> ApiResult<Vec<PlaygroundRecord>> {
        self.playgrounds.newest(search, PLACES_LISTED).await
    }

    /// Takes a place off the map, audited.
    pub async fn remove_place(
        &self,
        actor: &Actor,
        place_id: PlaygroundId,
        reason: &str,
    ) -> ApiResult<()> {
        let reason = clean_reason(reason)?;
        let place = self.place(place_id, "placeId").await?;
        let action = place_action(actor, ActionKind::RemovePlace, &place, reason, None);
        if !self.store.remove_place(&action).await? {
            return Err(ApiError::NotFound("no such place".into()));
        }
        tracing::info!(moderator = ?actor.id, place = %place_id, "moderation action: remove place");
        self.playgrounds.forget(place_id).await;
        Ok(())
    }

    /// Folds a duplicate place into another (its favourites and shares move there), audited.
    pub async fn merge_place(
        &self,
        actor: &Actor,
        place_id: PlaygroundId,
        into: PlaygroundId,
        reason: &str,
    ) -> ApiResult<()> {
        let reason = clean_reason(reason)?;
        if place_id == into {
            return Err(ApiError::bad_input(
                "intoId",
                "a place cannot merge into itself",
            ));
        }
        let place = self.place(place_id, "placeId").await?;
        let target = self.place(into, "intoId").await?;
        let detail = format!("into {} ({})", target.id, target.name);
        let action = place_action(actor, ActionKind::MergePlace, &place, reason, Some(detail));
        if !self.store.merge_places(&action, into).await? {
            return Err(ApiError::NotFound("no such place".into()));
        }
        tracing::info!(moderator = ?actor.id, place = %place_id, into = %into, "moderation action: merge place");
        self.playgrounds.forget(place_id).await;
        self.playgrounds.forget(into).await;
        Ok(())
    }

    async fn place(&self, id: PlaygroundId, field: &'static str) -> ApiResult<PlaygroundRecord> {
        self.playgrounds
            .stored(id)
            .await?
            .ok_or_else(|| ApiError::bad_input(field, "no such place"))
    }
}

/// The audit entry of a moderator's action on a place.
fn place_action(
    actor: &Actor,
    kind: ActionKind,
    place: &PlaygroundRecord,
    reason: String,
    detail: Option<String>,
) -> NewAction {
    NewAction {
        id: Uuid::now_v7(),
        created_at: time::now(),
        actor_id: actor.id,
        actor_email: actor.email.clone(),
        kind,
        subject_id: place.id.uuid(),
        subject_name: Some(place.name.clone()),
        reason,
        detail,
    }
}

/// Places a moderator's list shows at most.
pub const PLACES_LISTED: i64 = 100;
