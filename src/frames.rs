//! Every frame the server sends on `/ws` — the set `docs/api/websocket.md` lists — as one enum,
//! serialised by serde: the `type` tag and the camelCase field names are written here and
//! nowhere else. Domains turn their records into these payloads; the hub carries them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::ids::{ConversationId, MessageId, PlaygroundId};

/// A frame for a client.
#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerFrame {
    /// After authentication.
    Ready { user_id: Uuid },
    /// The sender's message is stored (to the sending socket).
    MessageAck {
        client_id: Option<String>,
        message: MessageFrame,
    },
    /// A new message in one of the person's conversations (and each message of a resync).
    Message { message: MessageFrame },
    /// The other person is typing.
    Typing {
        conversation_id: ConversationId,
        user_id: Uuid,
    },
    /// The other person read up to a message.
    Read {
        conversation_id: ConversationId,
        user_id: Uuid,
        up_to: MessageId,
    },
    /// A new mutual match.
    Match {
        #[serde(rename = "match")]
        matched: MatchFrame,
    },
    /// A match ended (unmatch or block).
    Unmatched {
        match_id: Uuid,
        conversation_id: ConversationId,
    },
    /// An in-app notification.
    Notification { notification: NotificationFrame },
    /// A client frame was refused; the socket stays open.
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// Seconds to wait before trying again (`RATE_LIMITED`, `SERVICE_UNAVAILABLE`).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// The reply to `ping`.
    Pong,
    /// The end of a `resync`.
    ResyncDone,
}

impl ServerFrame {
    /// The refusal of a client frame (with the client's id for its message, when it sent one).
    pub fn error(err: &ApiError, client_id: Option<&str>) -> Self {
        ServerFrame::Error {
            code: err.code(),
            message: err.to_string(),
            client_id: client_id.map(str::to_string),
            retry_after: err.retry_after(),
        }
    }

    /// The frame as the text sent on the socket.
    pub fn to_text(&self) -> String {
        // Every field is a string, number, bool, id or timestamp: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error"}"#.to_string())
    }
}

/// A message as clients see it (the `M` of the protocol).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFrame {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    /// `TEXT` or `PLAYGROUND`.
    pub kind: &'static str,
    pub content: String,
    pub playground_id: Option<PlaygroundId>,
    pub client_id: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// A new match, from one person's side (`user_id` is the other person).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchFrame {
    pub id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: ConversationId,
    pub created_at: DateTime<Utc>,
}

/// A notification as clients see it (the same fields as GraphQL `Notification`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFrame {
    pub id: Uuid,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub data: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn value(frame: &ServerFrame) -> Value {
        serde_json::from_str(&frame.to_text()).expect("json")
    }

    #[test]
    fn frames_are_tagged_and_camel_cased_as_the_protocol_says() {
        let id = Uuid::nil();
        assert_eq!(
            value(&ServerFrame::Ready { user_id: id }),
            json!({ "type": "ready", "userId": id })
        );
        assert_eq!(value(&ServerFrame::Pong), json!({ "type": "pong" }));
        assert_eq!(
            value(&ServerFrame::ResyncDone),
            json!({ "type": "resync_done" })
        );
        assert_eq!(
            value(&ServerFrame::Read {
                conversation_id: id.into(),
                user_id: id,
                up_to: id.into()
            }),
            json!({ "type": "read", "conversationId": id, "userId": id, "upTo": id })
        );
        let at = chrono::DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(
            value(&ServerFrame::Match {
                matched: MatchFrame {
                    id,
                    user_id: id,
                    conversation_id: id.into(),
                    created_at: at
                }
            }),
            json!({ "type": "match", "match": {
                "id": id, "userId": id, "conversationId": id, "createdAt": at } })
        );
        assert_eq!(
            value(&ServerFrame::Unmatched {
                match_id: id,
                conversation_id: id.into()
            }),
            json!({ "type": "unmatched", "matchId": id, "conversationId": id })
        );
    }

    #[test]
    fn an_error_names_the_client_id_only_when_there_is_one() {
        let err = ApiError::NotFound("no such conversation".into());
        let plain = value(&ServerFrame::error(&err, None));
        assert_eq!(plain["type"], "error");
        assert_eq!(plain["code"], "NOT_FOUND");
        assert!(plain.get("clientId").is_none());
        let with = value(&ServerFrame::error(&err, Some("c-1")));
        assert_eq!(with["clientId"], "c-1");
    }
}
