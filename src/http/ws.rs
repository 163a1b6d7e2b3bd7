//! `GET /ws`: the WebSocket upgrade. The protocol itself is in [`crate::chat::ws`].

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::middleware::Credentials;
use crate::app::AppState;
use crate::chat::ws::{MAX_FRAME_BYTES, SocketServices, serve};
use crate::error::ApiError;

/// Per-socket buffers: small, so that idle sockets cost little memory (axum's defaults are
/// 128 KiB each way).
const READ_BUFFER: usize = 256;
const WRITE_BUFFER: usize = 0;
/// Frames up to this size are read (and refused above 16 KiB with an `error` frame); anything
/// bigger ends the connection.
const HARD_FRAME_LIMIT: usize = 4 * MAX_FRAME_BYTES;

pub async fn ws(
    State(state): State<AppState>,
    Extension(Credentials(credentials)): Extension<Credentials>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !state.config.origin_allowed(origin.to_str().unwrap_or(""))
    {
        return ApiError::Forbidden("this origin may not open a WebSocket".into()).into_response();
    }
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| {
            let services = SocketServices {
                auth: state.auth.clone(),
                chat: state.chat.clone(),
                rate_limiter: state.rate_limiter.clone(),
            };
            serve(services, socket, credentials)
        })
}
