//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The database and (when configured) Redis answer. Read replicas do not decide readiness
/// (reads they would serve go to the primary meanwhile), but one that is down or too far behind
/// is named.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.db.ping().await;
    let redis = match &state.redis {
        Some(redis) => Some(redis.ping().await),
        None => None,
    };
    let db_ok = db.is_ok();
    let redis_ok = redis.as_ref().is_none_or(|r| r.is_ok());
    if let Err(err) = &db {
        tracing::warn!(
            error = format!("{err:#}"),
            "readiness: database unreachable"
        );
    }
    if let Some(Err(err)) = &redis {
        tracing::warn!(error = format!("{err:#}"), "readiness: redis unreachable");
    }
    let status = if db_ok && redis_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "database": if db_ok { "ok" } else { "unreachable" },
        "redis": match &redis { None => "not configured", Some(Ok(())) => "ok", Some(Err(_)) => "unreachable" },
    });
    let replicas = state.reads.report();
    if !replicas.is_empty() {
        body["replicas"] = json!(replicas);
    }
    (status, Json(body))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
