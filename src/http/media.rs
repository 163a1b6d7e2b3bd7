//! `GET /media/{key}?exp=…&sig=…`: blobs of the local store, only with a valid, unexpired
//! signature (S3 serves its own presigned URLs).

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct Signature {
    exp: Option<i64>,
    sig: Option<String>,
}

pub async fn media(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<Signature>,
) -> Result<Response, ApiError> {
    let (Some(exp), Some(sig)) = (q.exp, q.sig) else {
        return Err(ApiError::Forbidden("a signed URL is required".into()));
    };
    if !state
        .media_signer
        .verify(&key, exp, &sig, chrono::Utc::now().timestamp())
    {
        return Err(ApiError::Forbidden("invalid or expired URL".into()));
    }
    let bytes = state
        .blobs
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such media".into()))?;
    let content_type = if key.ends_with(".png") {
        "image/png"
    } else if key.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}
