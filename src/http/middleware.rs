//! Layers: request metrics per route, and bearer-token decoding with rate limits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_ip::client_ip;
use crate::app::AppState;
use crate::error::ApiError;
use crate::identity::tokens::{Claims, TokenError};
use crate::infra::rate_limit::Bucket;

/// The bearer token of a request as verified (signature, algorithm, expiry), if one was sent.
/// Inserted into the request's extensions for handlers.
#[derive(Clone, Debug)]
pub struct Credentials(pub Option<Result<Claims, TokenError>>);

/// Counts requests and their latency per route (the matched pattern, never the raw path).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // The request's span (made before routing) gets its name and route now, its status after.
    let span = tracing::Span::current();
    crate::infra::traces::rename(&span, format!("{method} {route}"));
    span.record("http.route", route.as_str());
    let response = next.run(req).await;
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("http_responses_total", "class" => class).increment(1);
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

/// The bearer token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Verifies the bearer token (no database) and spends the per-IP and per-user budgets.
pub async fn authenticate_and_limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let credentials = bearer(req.headers()).map(|token| state.auth.verify_token(token));
    let client = client_ip(peer.ip(), req.headers(), &state.config.trusted_proxies);
    req.extensions_mut().insert(client);
    let ip = client.limit_key();
    let user = match &credentials {
        Some(Ok(claims)) => Some(claims.sub.to_string()),
        _ => None,
    };
    let spent = match &user {
        Some(user) => {
            state
                .rate_limiter
                .check_all(&[(Bucket::Ip, &ip), (Bucket::User, user)])
                .await
        }
        None => state.rate_limiter.check(Bucket::Ip, &ip).await,
    };
    if let Err(wait) = spent {
        return too_many_requests(req.uri().path(), wait);
    }
    req.extensions_mut().insert(Credentials(credentials));
    next.run(req).await
}

/// 429 with `Retry-After`, shaped like the endpoint's normal errors.
fn too_many_requests(path: &str, wait: Duration) -> Response {
    let err = ApiError::RateLimited(wait);
    if path == "/graphql" {
        crate::error::graphql_error_response(&err)
    } else {
        err.into_response()
    }
}
