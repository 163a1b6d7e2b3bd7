//! The live sockets of this instance, and delivery of frames to them.
//!
//! Anything meant for people's sockets is published on the bus ([`TOPIC_DELIVER`]); every
//! instance (in embedded mode, just this one) hands each frame to its own sockets of those
//! people. New and ended matches arrive on the discovery topics and become `match` and
//! `unmatched` frames here, so nothing is delivered twice and every device gets everything.
//!
//! Presence ("is this person connected anywhere?", for choosing push over in-app delivery) is
//! this instance's registry in embedded mode. With Redis each socket is also a member of a
//! sorted set per user, scored by an expiry that a background task renews, so an instance that
//! dies leaves nobody online for longer than [`PRESENCE_TTL`].
//!
//! A socket lives no longer than what let it in: when its session ends (logout, password change
//! or reset, account deletion — announced on the bus by auth) or its access token expires, the
//! hub lets it go with a [`CloseReason`], and its task closes it with that code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use crate::ids::MessageId;

use crate::events::{
    MatchEvent, SessionsEnded, TOPIC_MATCH, TOPIC_SESSIONS_ENDED, TOPIC_UNMATCHED,
};
use crate::frames::{MatchFrame, ServerFrame};
use crate::infra::bus::{Bus, TOPIC_BUS_GAP};
use crate::infra::redis::Redis;

mod delivery;

/// Bus topic of frames for people's sockets (payload: [`Delivery`]).
pub const TOPIC_DELIVER: &str = "deliver";

/// How long a socket counts as present without renewal (scale-out mode).
pub const PRESENCE_TTL: Duration = Duration::from_secs(60);
const PRESENCE_RENEW: Duration = Duration::from_secs(20);

/// Frames a socket may have queued before it counts as too slow and is disconnected.
pub const SOCKET_QUEUE: usize = 256;

/// A frame for some people's sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub to: Vec<Uuid>,
    /// A socket that must not get it (the sender's own, which gets an ack instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Uuid>,
    /// The frame, serialised once by the instance that sent it.
    pub frame: Box<serde_json::value::RawValue>,
    /// The trace of the request that made it (W3C `traceparent`), so its delivery by any
    /// instance belongs to that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// When what the frame tells of happened (a message stored; unix ms), for the delivery
    /// latency (`chat_delivery_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// The message the frame carries, if it carries one: a socket writes each message once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
}

/// Bus topic of sockets to close because their person opened too many (payload: a JSON list
/// of socket ids).
pub const TOPIC_CLOSE_SOCKETS: &str = "close_sockets";

/// Most live sockets one person may hold across the deployment; opening one more closes the
/// oldest.
pub const MAX_SOCKETS_PER_PERSON: usize = 10;

/// How often sockets are checked for expired access tokens.
const EXPIRY_SWEEP: Duration = Duration::from_millis(250);

/// What a socket's task receives: a serialized frame, and where it came from.
#[derive(Clone)]
pub struct Outgoing {
    pub text: Arc<str>,
    /// The trace and timing of a frame delivered for a request (a message, a match).
    pub origin: Option<Arc<Origin>>,
}

/// The trace a frame belongs to, when what it tells of happened, and the message it carries.
pub struct Origin {
    pub traceparent: Option<String>,
    /// Unix ms; a message's is when it was stored.
    pub since_ms: Option<i64>,
    pub message_id: Option<MessageId>,
}

/// A stored message a frame carries.
pub struct StoredMessage {
    pub id: MessageId,
    pub stored_at: chrono::DateTime<chrono::Utc>,
}

impl From<&str> for Outgoing {
    fn from(text: &str) -> Self {
        Outgoing {
            text: text.into(),
            origin: None,
        }
    }
}

/// Why the hub let a socket go; its task closes the socket with this code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The socket's session ended (logout, password change or reset, account deletion).
    SessionEnded,
    /// The access token the socket authenticated with expired; reconnect with a fresh one.
    TokenExpired,
    /// The person opened more than [`MAX_SOCKETS_PER_PERSON`] sockets; this was the oldest.
    TooManySockets,
    /// This instance lost its bus (or fell behind it) and may have missed frames for the
    /// socket: reconnect, and `resync` what was stored meanwhile.
    MissedFrames,
}

impl CloseReason {
    /// The WebSocket close code (documented in `docs/websocket.md`).
    pub fn code(self) -> u16 {
        match self {
            CloseReason::SessionEnded => 4001,
            CloseReason::TokenExpired => 4002,
            CloseReason::TooManySockets => 4003,
            CloseReason::MissedFrames => 4004,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseReason::SessionEnded => "session ended",
            CloseReason::TokenExpired => "token expired",
            CloseReason::TooManySockets => "too many connections",
            CloseReason::MissedFrames => "missed messages; resync",
        }
    }

    /// Whether the socket's authentication ended (an `UNAUTHENTICATED` error frame goes
    /// before the close).
    pub fn ends_authentication(self) -> bool {
        !matches!(self, CloseReason::MissedFrames)
    }
}

struct Socket {
    id: Uuid,
    /// The session whose access token opened it.
    session_id: Uuid,
    /// When that token expires (unix seconds).
    expires_at: i64,
    tx: mpsc::Sender<Outgoing>,
}

pub struct Hub {
    sockets: Mutex<HashMap<Uuid, Vec<Socket>>>,
    /// Sockets let go for a reason their task has not picked up yet.
    closing: Mutex<HashMap<Uuid, CloseReason>>,
    bus: Bus,
    redis: Option<Redis>,
}

/// Who a socket belongs to, and until when it may stay open.
#[derive(Debug, Clone, Copy)]
pub struct SocketOwner {
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// Unix seconds: the expiry of the access token that opened the socket.
    pub expires_at: i64,
}

/// Unregisters its socket when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    pub user_id: Uuid,
    pub socket_id: Uuid,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let emptied = {
            let mut sockets = self.hub.sockets.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(list) = sockets.get_mut(&self.user_id) {
                list.retain(|s| s.id != self.socket_id);
                if list.is_empty() {
                    sockets.remove(&self.user_id);
                }
            }
            sockets.len()
        };
        self.hub
            .closing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.socket_id);
        metrics::gauge!("ws_connected_users").set(emptied as f64);
        if let Some(redis) = self.hub.redis.clone() {
            let key = presence_key(&redis, self.user_id);
            let member = self.socket_id.to_string();
            tokio::spawn(async move {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(key).arg(member);
                let _: redis::RedisResult<i64> = redis.query(cmd).await;
            });
        }
    }
}

fn presence_key(redis: &Redis, user_id: Uuid) -> String {
    redis.key(&format!("presence:{user_id}"))
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Hub {
    /// Also starts the tasks that deliver bus frames to local sockets and renew presence.
    pub fn new(bus: Bus, redis: Option<Redis>) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            sockets: Mutex::new(HashMap::new()),
            closing: Mutex::new(HashMap::new()),
            bus,
            redis,
        });
        let weak = Arc::downgrade(&hub);
        let mut rx = hub.bus.subscribe();
        tokio::spawn(async move {
            loop {
                let msg = match rx.recv().await {
                    Ok(msg) => msg,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Frames were lost for local sockets: they close, and their clients
                        // reconnect and `resync`.
                        tracing::warn!(missed = n, "socket hub lagged behind the bus");
                        if let Some(hub) = weak.upgrade() {
                            hub.let_go(|_, _| true, CloseReason::MissedFrames);
                        }
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let Some(hub) = weak.upgrade() else { break };
                match msg.topic.as_str() {
                    // Frames published meanwhile never reached this instance.
                    TOPIC_BUS_GAP => hub.let_go(|_, _| true, CloseReason::MissedFrames),
                    TOPIC_DELIVER => match serde_json::from_str::<Delivery>(&msg.payload) {
                        Ok(d) => {
                            let origin = (d.traceparent.is_some()
                                || d.since_ms.is_some()
                                || d.message_id.is_some())
                            .then(|| {
                                Arc::new(Origin {
                                    traceparent: d.traceparent,
                                    since_ms: d.since_ms,
                                    message_id: d.message_id,
                                })
                            });
                            hub.deliver_local_from(&d.to, d.skip, d.frame.get(), origin)
                        }
                        Err(err) => tracing::error!(error = %err, "undecodable delivery"),
                    },
                    TOPIC_MATCH | TOPIC_UNMATCHED => {
                        if let Ok(event) = serde_json::from_str::<MatchEvent>(&msg.payload) {
                            hub.deliver_match_event(&msg.topic, &event);
                        }
                    }
                    TOPIC_SESSIONS_ENDED => {
                        match serde_json::from_str::<SessionsEnded>(&msg.payload) {
                            Ok(event) => hub.let_go(
                                |user, socket| {
                                    user == event.user_id && event.ended.contains(socket.session_id)
                                },
                                CloseReason::SessionEnded,
                            ),
                            Err(err) => tracing::error!(error = %err, "undecodable session end"),
                        }
                    }
                    TOPIC_CLOSE_SOCKETS => match serde_json::from_str::<Vec<Uuid>>(&msg.payload) {
                        Ok(ids) => hub.let_go(
                            |_, socket| ids.contains(&socket.id),
                            CloseReason::TooManySockets,
                        ),
                        Err(err) => tracing::error!(error = %err, "undecodable socket close"),
                    },
                    _ => {}
                }
            }
        });
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(hub) = weak.upgrade() else { break };
                let now_ms = chrono::Utc::now().timestamp_millis();
                hub.let_go(
                    |_, socket| socket.expires_at.saturating_mul(1000) <= now_ms,
                    CloseReason::TokenExpired,
                );
            }
        });
        if hub.redis.is_some() {
            let weak = Arc::downgrade(&hub);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PRESENCE_RENEW);
                loop {
                    tick.tick().await;
                    let Some(hub) = weak.upgrade() else { break };
                    hub.renew_presence().await;
                }
            });
        }
        hub
    }

    /// Registers a socket of `owner`: frames for them go to `tx` until the registration drops,
    /// or until the hub lets it go (see [`Hub::close_reason`]).
    pub async fn register(
        self: &Arc<Self>,
        owner: SocketOwner,
        tx: mpsc::Sender<Outgoing>,
    ) -> Registration {
        let socket_id = Uuid::now_v7();
        let user_id = owner.user_id;
        let users = {
            let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            sockets.entry(user_id).or_default().push(Socket {
                id: socket_id,
                session_id: owner.session_id,
                expires_at: owner.expires_at,
                tx,
            });
            sockets.len()
        };
        metrics::gauge!("ws_connected_users").set(users as f64);
        if let Some(redis) = &self.redis {
            let key = presence_key(redis, user_id);
            let expiry = unix_ms() + PRESENCE_TTL.as_millis() as i64;
            let mut pipe = redis::pipe();
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(expiry)
                .arg(socket_id.to_string())
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(PRESENCE_TTL.as_millis() as u64)
                .ignore();
            let added: redis::RedisResult<()> = redis.pipeline(pipe).await;
            if let Err(err) = added {
                tracing::warn!(error = %err, "presence not recorded");
            }
        }
        self.close_surplus_sockets(user_id).await;
        Registration {
            hub: self.clone(),
            user_id,
            socket_id,
        }
    }

    /// Closes a person's oldest sockets beyond [`MAX_SOCKETS_PER_PERSON`] (socket ids are
    /// UUIDv7, so the smallest are the oldest): here in embedded mode, on whichever instance
    /// holds them in scale-out mode (counted from the presence set, closed over the bus).
    async fn close_surplus_sockets(&self, user_id: Uuid) {
        let mut live: Vec<Uuid> = match &self.redis {
            None => self
                .sockets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&user_id)
                .map(|list| list.iter().map(|s| s.id).collect())
                .unwrap_or_default(),
            Some(redis) => {
                let mut cmd = redis::cmd("ZRANGEBYSCORE");
                cmd.arg(presence_key(redis, user_id))
                    .arg(unix_ms())
                    .arg("+inf");
                let members: redis::RedisResult<Vec<String>> = redis.query(cmd).await;
                match members {
                    Ok(members) => members.iter().filter_map(|m| m.parse().ok()).collect(),
                    Err(err) => {
                        tracing::warn!(error = %err, "socket count unavailable");
                        return;
                    }
                }
            }
        };
        if live.len() <= MAX_SOCKETS_PER_PERSON {
            return;
        }
        live.sort();
        let surplus = live[..live.len() - MAX_SOCKETS_PER_PERSON].to_vec();
        if self.redis.is_none() {
            self.let_go(
                |_, socket| surplus.contains(&socket.id),
                CloseReason::TooManySockets,
            );
            return;
        }
        match serde_json::to_string(&surplus) {
            Ok(payload) => {
                if let Err(err) = self.bus.publish(TOPIC_CLOSE_SOCKETS, payload).await {
                    tracing::error!(error = format!("{err:#}"), "closing surplus sockets failed");
                }
            }
            Err(err) => tracing::error!(error = %err, "serialising socket ids failed"),
        }
    }

    /// Whether the person has a live socket on any instance.
    pub async fn is_online(&self, user_id: Uuid) -> bool {
        if self.is_online_here(user_id) {
            return true;
        }
        let Some(redis) = &self.redis else {
            return false;
        };
        let mut cmd = redis::cmd("ZCOUNT");
        cmd.arg(presence_key(redis, user_id))
            .arg(unix_ms())
            .arg("+inf");
        let live: redis::RedisResult<i64> = redis.query(cmd).await;
        live.map(|n| n > 0).unwrap_or(false)
    }

    fn is_online_here(&self, user_id: Uuid) -> bool {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user_id)
    }

    /// Lets go of every socket of this instance that `doomed` picks: dropping its sender ends
    /// its task's stream of frames, and the task closes the socket with `why`.
    fn let_go(&self, doomed: impl Fn(Uuid, &Socket) -> bool, why: CloseReason) {
        let mut gone = 0u64;
        {
            let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            // The reason is recorded before the sender drops, so the task always finds it.
            let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
            sockets.retain(|&user, list| {
                list.retain(|socket| {
                    let doomed = doomed(user, socket);
                    if doomed {
                        closing.insert(socket.id, why);
                        gone += 1;
                    }
                    !doomed
                });
                !list.is_empty()
            });
        }
        if gone > 0 {
            metrics::counter!("ws_sockets_closed_total", "reason" => why.reason()).increment(gone);
        }
    }

    /// Why the hub let this socket go, if it did for a reason (taken once).
    pub fn close_reason(&self, socket_id: Uuid) -> Option<CloseReason> {
        self.closing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&socket_id)
    }

    /// Lets every socket of this instance go (shutdown): each one's task closes it.
    pub fn close_all(&self) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    async fn renew_presence(&self) {
        let Some(redis) = &self.redis else { return };
        let expiry = unix_ms() + PRESENCE_TTL.as_millis() as i64;
        let mut pipe = redis::pipe();
        {
            let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            if sockets.is_empty() {
                // Nothing to renew (Redis refuses an empty pipeline).
                return;
            }
            for (user, list) in sockets.iter() {
                let key = presence_key(redis, *user);
                for socket in list {
                    pipe.cmd("ZADD")
                        .arg(&key)
                        .arg(expiry)
                        .arg(socket.id.to_string())
                        .ignore();
                }
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(unix_ms())
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(PRESENCE_TTL.as_millis() as u64)
                    .ignore();
            }
        }
        if let Err(err) = redis.pipeline::<()>(pipe).await {
            tracing::warn!(error = %err, "presence renewal failed");
        }
    }
}
