//! The `/ws` protocol (`docs/api/websocket.md`): authentication, then a loop that answers the
//! client's frames and forwards the hub's frames. Every refused frame gets an `error` frame and
//! leaves the socket open; nothing is stored for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::once::{self, Written};
use super::{ChatService, Draft};
use tracing::Instrument;

use crate::auth::{AuthService, api};
use crate::error::ApiError;
use crate::frames::ServerFrame;
use crate::hub::{Origin, Outgoing, SOCKET_QUEUE, SocketOwner};
use crate::identity::AuthUser;
use crate::identity::tokens::{Claims, TokenError};
use crate::infra::rate_limit::RateLimiter;
use crate::infra::to_end::run_to_end;
use crate::infra::{sampling, traces};

/// Largest client frame handled; bigger ones are refused with an `error` frame.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// How long a client without an `Authorization` header has to send its `auth` frame.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Close code for a failed authentication.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;

/// Client frames, by `type`.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
enum ClientFrame {
    Auth {
        token: String,
    },
    SendMessage {
        conversation_id: Uuid,
        content: String,
        client_id: Option<String>,
    },
    Typing {
        conversation_id: Uuid,
    },
    MarkRead {
        conversation_id: Uuid,
        up_to: Uuid,
    },
    Resync {
        since: Option<Uuid>,
    },
    Ping,
}

const KNOWN_TYPES: &[&str] = &[
    "auth",
    "send_message",
    "typing",
    "mark_read",
    "resync",
    "ping",
];

fn error_frame(err: &ApiError, client_id: Option<&str>) -> ServerFrame {
    if let ApiError::Internal(inner) = err {
        tracing::error!(error = format!("{inner:#}"), "websocket frame failed");
    }
    ServerFrame::error(err, client_id)
}

async fn send_frame(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    socket
        .send(Message::Text(frame.to_text().into()))
        .await
        .is_ok()
}

async fn close_unauthenticated(mut socket: WebSocket, reason: &str) {
    let err = ApiError::Unauthenticated(reason.to_string());
    let _ = send_frame(&mut socket, &error_frame(&err, None)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: CLOSE_UNAUTHENTICATED,
            reason: Utf8Bytes::from_static("unauthenticated"),
        })))
        .await;
}

/// The socket's owner, and until when its token is valid (unix seconds).
async fn authenticate(
    services: &SocketServices,
    claims: Result<Claims, TokenError>,
) -> Option<(AuthUser, i64)> {
    let claims = claims.ok()?;
    let user = services.auth.authenticate(&claims).await.ok()?;
    Some((user, claims.exp))
}

/// Serves one upgraded socket. `header_token` is the verified `Authorization` bearer, if sent.
pub async fn serve(
    services: SocketServices,
    mut socket: WebSocket,
    header_token: Option<Result<Claims, TokenError>>,
) {
    // Boxed, like frame handling below: the task of an idle socket keeps no room for it.
    let user = match header_token {
        Some(claims) => Box::pin(authenticate(&services, claims)).await,
        None => {
            // The first frame must be `auth`, within the time limit.
            match tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.len() <= MAX_FRAME_BYTES => {
                    match serde_json::from_str::<ClientFrame>(&text) {
                        Ok(ClientFrame::Auth { token }) => {
                            Box::pin(authenticate(&services, services.auth.verify_token(&token)))
                                .await
                        }
                        _ => None,
                    }
                }
                _ => None,
            }
        }
    };
    let Some((user, expires_at)) = user else {
        return close_unauthenticated(socket, "a valid access token is required").await;
    };
    metrics::counter!("ws_connections_total").increment(1);
    let (tx, rx) = mpsc::channel::<Outgoing>(SOCKET_QUEUE);
    let owner = SocketOwner {
        user_id: user.user_id,
        session_id: user.session_id,
        expires_at,
    };
    let registration = services.chat.hub.register(owner, tx).await;
    // The check above may have passed just before the session ended, and its end been
    // announced before this socket was registered to hear it: ask once more, now that any later
    // end reaches the socket.
    // (Should the database not answer, the check above stands.)
    match services.auth.session_still_active(user).await {
        Ok(true) => {}
        Ok(false) => return close_unauthenticated(socket, "the session has ended").await,
        Err(err) => {
            tracing::warn!(error = %err, "a new socket's session could not be checked again")
        }
    }
    if !send_frame(
        &mut socket,
        &ServerFrame::Ready {
            user_id: user.user_id,
        },
    )
    .await
    {
        return;
    }
    Connection {
        services,
        user,
        socket_id: registration.socket_id,
        written: std::sync::Mutex::default(),
    }
    .run(socket, rx)
    .await;
    drop(registration);
}

/// What a socket uses: sessions, chat and the message budget.
#[derive(Clone)]
pub struct SocketServices {
    pub auth: Arc<AuthService>,
    pub chat: Arc<ChatService>,
    pub rate_limiter: RateLimiter,
}

struct Connection {
    services: SocketServices,
    user: AuthUser,
    socket_id: Uuid,
    /// Messages written lately, so a live delivery and a resync that cross write each once.
    written: std::sync::Mutex<Written>,
}

/// The writing half of a socket, shared by the frames the hub pushes and the socket's own
/// replies. Both are written in the connection's one task, in turn, without a queue of their
/// own — an idle socket's memory is mostly what it holds, so it holds little.
type Sink = Mutex<SplitSink<WebSocket, Message>>;

/// Where a frame's answers (acks, errors, resync pages, pongs) go: straight to the socket.
struct Replies<'a>(&'a Sink);

/// The socket is gone; nothing more can be written to it.
struct SocketGone;

impl Replies<'_> {
    async fn send(&self, frame: ServerFrame) -> Result<(), SocketGone> {
        self.0
            .lock()
            .await
            .send(Message::Text(frame.to_text().into()))
            .await
            .map_err(|_| SocketGone)
    }
}

/// Writes a frame delivered for a request: as a span of that request's trace (whichever
/// instance it came through), and, for a message, timed from when it was stored.
async fn write_delivered(sink: &Sink, frame: Message, origin: &Origin) -> Result<(), axum::Error> {
    // Part of the request's trace, and recorded when it is; not recorded without one.
    let request = origin
        .traceparent
        .as_deref()
        .map(traces::parent_from_traceparent)
        .unwrap_or_default();
    let span = sampling::continuing(
        request,
        true,
        || tracing::info_span!(parent: None, "deliver", otel.name = "ws deliver", otel.kind = "consumer"),
    );
    let written = async { sink.lock().await.send(frame).await }
        .instrument(span)
        .await;
    if written.is_ok()
        && let Some(since) = origin.since_ms
    {
        let waited = (chrono::Utc::now().timestamp_millis() - since).max(0) as f64 / 1000.0;
        metrics::histogram!("chat_delivery_seconds").record(waited);
    }
    written
}

impl Connection {
    async fn run(&self, socket: WebSocket, mut rx: mpsc::Receiver<Outgoing>) {
        let (sink, mut stream) = socket.split();
        let sink: Sink = Mutex::new(sink);
        let replies = Replies(&sink);
        let reader = async {
            while let Some(frame) = stream.next().await {
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Binary(_)) => {
                        let err = ApiError::bad_input("frame", "frames are JSON text");
                        if replies.send(error_frame(&err, None)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue, // ping/pong are answered by the library
                };
                // Boxed: an idle socket's task then holds no room for handling a frame (the
                // whole path down to the database), only for waiting on the next. Each frame
                // is a trace of its own (a socket lives for hours).
                let span = sampling::root(|| {
                    tracing::info_span!(
                        parent: None,
                        "frame",
                        otel.name = "ws frame",
                        otel.kind = "server",
                        user.id = %self.user.user_id,
                    )
                });
                if !Box::pin(self.handle(&text, &replies).instrument(span)).await {
                    break;
                }
            }
        };
        let writer = async {
            // `None`: the hub let this socket go — it fell too far behind, or for a reason.
            while let Some(out) = rx.recv().await {
                if let Some(id) = out.origin.as_ref().and_then(|o| o.message_id)
                    && !self.written().live(id, Instant::now())
                {
                    continue;
                }
                let frame = Message::Text(Utf8Bytes::from(out.text.as_ref()));
                let written = match &out.origin {
                    None => sink.lock().await.send(frame).await,
                    Some(origin) => write_delivered(&sink, frame, origin).await,
                };
                if written.is_err() {
                    return;
                }
            }
            let mut sink = sink.lock().await;
            match self.services.chat.hub.close_reason(self.socket_id) {
                Some(why) => {
                    if why.ends_authentication() {
                        let err = ApiError::Unauthenticated(why.reason().to_string());
                        let frame = error_frame(&err, None).to_text();
                        let _ = sink.send(Message::Text(frame.into())).await;
                    }
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: why.code(),
                            reason: Utf8Bytes::from_static(why.reason()),
                        })))
                        .await;
                }
                None => {
                    let _ = sink.close().await;
                }
            }
        };
        tokio::select! {
            () = reader => {}
            () = writer => {}
        }
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one client frame; false when the socket should close.
    async fn handle(&self, text: &str, reply: &Replies<'_>) -> bool {
        if text.len() > MAX_FRAME_BYTES {
            let err = ApiError::bad_input(
                "frame",
                format!("frames are at most {} KiB", MAX_FRAME_BYTES / 1024),
            );
            return reply.send(error_frame(&err, None)).await.is_ok();
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                let err = ApiError::bad_input("frame", "a frame is one JSON object");
                return reply.send(error_frame(&err, None)).await.is_ok();
            }
        };
        if let Some(kind) = value.get("type").and_then(Value::as_str)
            && KNOWN_TYPES.contains(&kind)
        {
            traces::rename(&tracing::Span::current(), format!("ws {kind}"));
        }
        let client_id = value
            .get("clientId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let frame = match self.parse(value) {
            Ok(f) => f,
            Err(err) => {
                return reply
                    .send(error_frame(&err, client_id.as_deref()))
                    .await
                    .is_ok();
            }
        };
        match self.dispatch(frame, reply).await {
            Ok(()) => true,
            Err(err) => reply
                .send(error_frame(&err, client_id.as_deref()))
                .await
                .is_ok(),
        }
    }

    fn parse(&self, value: Value) -> Result<ClientFrame, ApiError> {
        let Some(kind) = value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(ApiError::bad_input("type", "a frame needs a \"type\""));
        };
        if !KNOWN_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::bad_input(
                "type",
                format!("unknown frame type {kind:?}"),
            ));
        }
        // Nobody sends as someone else: a sender id, if given, must be the caller's.
        if let Some(sender) = value.get("senderId")
            && sender.as_str() != Some(self.user.user_id.to_string().as_str())
        {
            return Err(ApiError::Forbidden(
                "you can only send messages as yourself".into(),
            ));
        }
        let mut value = value;
        if let Some(obj) = value.as_object_mut() {
            obj.remove("senderId");
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad_input("frame", format!("invalid {kind} frame: {e}")))
    }

    async fn dispatch(&self, frame: ClientFrame, reply: &Replies<'_>) -> Result<(), ApiError> {
        let services = &self.services;
        let user_id = self.user.user_id;
        match frame {
            ClientFrame::Ping => {
                let _ = reply.send(ServerFrame::Pong).await;
            }
            ClientFrame::Auth { .. } => {
                return Err(ApiError::bad_input("type", "already authenticated"));
            }
            ClientFrame::SendMessage {
                conversation_id,
                content,
                client_id,
            } => {
                services.rate_limiter.check_message(user_id).await?;
                api(services.auth.must_be_confirmed(self.user).await)?;
                // Carried through even if this socket is let go meanwhile (see `run_to_end`).
                let chat = services.chat.clone();
                let draft = Draft::text(conversation_id.into(), content, client_id.clone());
                let from = Some(self.socket_id);
                let sent = run_to_end(async move { chat.send(user_id, draft, from).await }).await?;
                let _ = reply
                    .send(ServerFrame::MessageAck {
                        client_id,
                        message: (&sent.message).into(),
                    })
                    .await;
            }
            ClientFrame::Typing { conversation_id } => {
                services.rate_limiter.check_message(user_id).await?;
                services
                    .chat
                    .typing(user_id, conversation_id.into())
                    .await?;
            }
            ClientFrame::MarkRead {
                conversation_id,
                up_to,
            } => {
                services.rate_limiter.check_message(user_id).await?;
                let chat = services.chat.clone();
                run_to_end(async move {
                    chat.mark_read(user_id, conversation_id.into(), Some(up_to.into()))
                        .await
                })
                .await?;
            }
            ClientFrame::Resync { since } => {
                services.rate_limiter.check_message(user_id).await?;
                services
                    .chat
                    .resync(user_id, since.map(Into::into), |batch| async move {
                        let recent_since = chrono::Utc::now() - once::REMEMBERED_FOR;
                        for m in &batch {
                            // Delivered live on this socket already (its client had not read
                            // it when it asked).
                            if !self.written().resync(
                                m.id,
                                m.created_at > recent_since,
                                Instant::now(),
                            ) {
                                continue;
                            }
                            if reply
                                .send(ServerFrame::Message { message: m.into() })
                                .await
                                .is_err()
                            {
                                return false;
                            }
                        }
                        true
                    })
                    .await?;
                let _ = reply.send(ServerFrame::ResyncDone).await;
            }
        }
        Ok(())
    }
}
