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
    report_dependencies(&state).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Sets, as each scrape finds them: `dependency_up{dependency}` (1 or 0) for the database,
/// Redis and each read replica, and `db_pool_connections{state}`.
async fn report_dependencies(state: &AppState) {
    state.db.report_pool();
    let database = tokio::time::timeout(std::time::Duration::from_secs(1), state.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    up("database", database);
    if let Some(redis) = &state.redis {
        up("redis", redis.is_up());
    }
    for replica in state.reads.report() {
        metrics::gauge!("dependency_up", "dependency" => format!("replica:{}", replica.name))
            .set(if replica.status == "down" { 0.0 } else { 1.0 });
    }
}

fn up(dependency: &'static str, is_up: bool) {
    metrics::gauge!("dependency_up", "dependency" => dependency).set(if is_up { 1.0 } else { 0.0 });
}
