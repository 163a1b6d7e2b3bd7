//! `POST /v1/photos` (multipart field `file`) and `DELETE /v1/photos/{id}`.

use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::middleware::Credentials;
use crate::app::AppState;
use crate::auth::api;
use crate::error::ApiError;
use crate::identity::AuthUser;
use crate::profiles::images::MAX_UPLOAD_BYTES;

/// The signed-in caller of a REST request.
pub(crate) async fn caller(
    state: &AppState,
    credentials: &Credentials,
) -> Result<AuthUser, ApiError> {
    match &credentials.0 {
        None => Err(ApiError::unauthenticated()),
        Some(Err(_)) => Err(ApiError::Unauthenticated("invalid or expired token".into())),
        Some(Ok(claims)) => api(state.auth.authenticate(claims).await),
    }
}

/// Reads the `file` field, refusing (413) as soon as it passes the size limit: the rest of
/// the body is never read.
async fn read_file(mut multipart: Multipart) -> Result<Vec<u8>, ApiError> {
    let bad = |m: &str| ApiError::bad_input("file", m);
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("malformed multipart body"))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                bad("malformed multipart body")
            }
        })? {
            if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(bad("the file is empty"));
        }
        return Ok(bytes);
    }
    Err(bad("multipart field `file` is missing"))
}

pub async fn upload(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let user = caller(&state, &credentials).await?;
    // A declared length past the limit is refused before a byte of the body is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > super::PHOTO_BODY_LIMIT) {
        return Err(ApiError::PayloadTooLarge);
    }
    let bytes = read_file(multipart).await?;
    let photo = state.profiles.upload_photo(user.user_id, bytes).await?;
    let body = json!({
        "id": photo.record.id,
        "url": photo.url,
        "thumbnailUrl": photo.thumbnail_url,
        "order": photo.record.position,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&state, &credentials).await?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::NotFound("no such photo".into()))?;
    state.profiles.delete_photo(user.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
