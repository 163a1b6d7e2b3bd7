//! A WebSocket client for `/ws` tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Session, TestApp};

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// How long a test waits for a frame that should come.
const WAIT: Duration = Duration::from_secs(5);

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.address.replacen("http", "ws", 1))
    }

    /// Connects with `Authorization: Bearer` and waits for `ready`.
    pub async fn ws(&self, user: &Session) -> WsClient {
        let mut client = self.ws_raw(Some(&user.access_token), None).await;
        let ready = client.recv().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        assert_eq!(ready["userId"], user.user_id.to_string());
        client
    }

    /// Connects without waiting for anything; optional bearer token and `Origin`.
    pub async fn ws_raw(&self, token: Option<&str>, origin: Option<&str>) -> WsClient {
        self.try_ws_raw(token, origin)
            .await
            .expect("websocket connects")
    }

    pub async fn try_ws_raw(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let mut request = self.ws_url().into_client_request().expect("request");
        if let Some(token) = token {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().expect("header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(WsClient { stream })
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("frame sent");
    }

    /// The next text frame (panics after 5 s).
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("a frame within 5 s")
    }

    /// The next text frame within `wait`, if any.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(json!({ "closed": frame.map(|f| u16::from(f.code)) }));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return Some(json!({ "closed": null })),
                Err(_) => return None,
            }
        }
    }

    /// The next frame of type `kind`, skipping others (e.g. notifications).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
            assert!(
                frame.get("closed").is_none(),
                "socket closed while waiting for {kind}"
            );
        }
    }

    /// Asserts no frame of type `kind` arrives within `wait`.
    pub async fn expect_no(&mut self, kind: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            if let Some(frame) = self.try_recv(left).await {
                assert_ne!(frame["type"], kind, "unexpected {frame}");
            } else {
                return;
            }
        }
    }

    /// A ping answered by a pong: the socket is open and in order.
    pub async fn assert_alive(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        self.recv_type("pong").await;
    }

    pub async fn send_message(
        &mut self,
        conversation_id: &str,
        content: &str,
        client_id: &str,
    ) -> Value {
        self.send(json!({
            "type": "send_message",
            "conversationId": conversation_id,
            "content": content,
            "clientId": client_id,
        }))
        .await;
        loop {
            let frame = self.recv().await;
            if frame["type"] == "message_ack" || frame["type"] == "error" {
                return frame;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

impl WsClient {
    /// Waits (at most `within`) for the server to close the socket, skipping other frames;
    /// returns the close code and the `error` frame sent just before it, if any.
    pub async fn expect_closed(&mut self, within: Duration) -> (Option<u16>, Option<Value>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut last_error = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .try_recv(left)
                .await
                .unwrap_or_else(|| panic!("the socket is still open after {within:?}"));
            if let Some(code) = frame.get("closed") {
                return (code.as_u64().map(|c| c as u16), last_error);
            }
            if frame["type"] == "error" {
                last_error = Some(frame);
            }
        }
    }
}
