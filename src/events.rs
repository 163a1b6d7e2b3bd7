//! Events that cross domains on the bus: matches that began or ended, and sessions that ended.
//! Who publishes them (discovery, auth) and who listens (the live-socket hub) both depend on
//! this module, not on each other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::ConversationId;

/// Bus topic of new matches (payload: [`MatchEvent`]).
pub const TOPIC_MATCH: &str = "match";
/// Bus topic of ended matches (payload: [`MatchEvent`]).
pub const TOPIC_UNMATCHED: &str = "unmatched";

/// A match that began or ended, for chat and notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchEvent {
    pub match_id: Uuid,
    pub conversation_id: ConversationId,
    pub users: [Uuid; 2],
    pub created_at: DateTime<Utc>,
    /// The trace of the request that made it (W3C `traceparent`): its delivery to sockets on
    /// any instance belongs to that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Bus topic of ended sessions (payload: [`SessionsEnded`]).
pub const TOPIC_SESSIONS_ENDED: &str = "sessions_ended";

/// Some sessions of a person ended: their sockets must close on every instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsEnded {
    pub user_id: Uuid,
    pub ended: EndedSessions,
}

/// Which of a person's sessions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndedSessions {
    /// Just these (logout, a replayed refresh token).
    These(Vec<Uuid>),
    /// Every one except these (a password change keeps the session that made it; a reset or
    /// a deletion keeps none).
    AllBut(Vec<Uuid>),
}

impl EndedSessions {
    pub fn all() -> Self {
        EndedSessions::AllBut(Vec::new())
    }

    pub fn contains(&self, session_id: Uuid) -> bool {
        match self {
            EndedSessions::These(ended) => ended.contains(&session_id),
            EndedSessions::AllBut(kept) => !kept.contains(&session_id),
        }
    }
}
