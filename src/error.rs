//! The one API-facing error, and the policy for turning failures into responses.
//!
//! Policy:
//! - Every failure a client can cause maps to exactly one code and HTTP status, in
//!   [`ApiError::code`] and [`ApiError::status`] — the single `match` of the codebase.
//! - Domain errors (`AuthError`, …) are `thiserror` enums that convert into `ApiError`.
//! - Anything unexpected becomes [`ApiError::Internal`]: logged once here with its whole cause
//!   chain and the request id, answered with a generic message. SQL, hashes, stack traces and
//!   other internal detail never reach a client.
//! - Unique-constraint violations become CONFLICT through [`StoreError`] (see `on_constraint`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Failures a client sees, by category: each maps to one `extensions.code` and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Invalid input; `field` names the offending input field when there is one.
    #[error("{message}")]
    BadUserInput {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests, retry in {} s", retry_after_secs(.0))]
    RateLimited(Duration),
    #[error("payload too large")]
    PayloadTooLarge,
    /// The client accepts no media type this answer can be in.
    #[error("{0}")]
    NotAcceptable(&'static str),
    /// The request body is in a media type this endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// The request needs another HTTP method (the answer's `Allow` says which: POST).
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    /// A persisted query's hash this server does not know (yet): send the document with it.
    #[error("no query is persisted under this sha256Hash: send the query with it")]
    PersistedQueryNotFound,
    /// The server is busy (or a dependency is down): come back after the duration.
    #[error("the service is busy, retry in {} s", retry_after_secs(.0))]
    ServiceUnavailable(Duration),
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

fn retry_after_secs(d: &Duration) -> u64 {
    // Round up: telling a client to come back before the limit resets only earns another 429.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ApiError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn unauthenticated() -> Self {
        ApiError::Unauthenticated("authentication required".into())
    }

    /// The machine-readable code (GraphQL `extensions.code`, REST `code`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ApiError::NotAcceptable(_) => "NOT_ACCEPTABLE",
            ApiError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            ApiError::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ApiError::ServiceUnavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PersistedQueryNotFound => StatusCode::NOT_FOUND,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds for the `Retry-After` header, when rate-limited.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited(d) | ApiError::ServiceUnavailable(d) => {
                Some(retry_after_secs(d).max(1))
            }
            _ => None,
        }
    }

    /// Logs internal errors (once, here) and returns the message a client may see.
    fn public_message(&self) -> String {
        if let ApiError::Internal(err) = self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        self.to_string()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ApiError::Conflict(what),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                ApiError::ServiceUnavailable(DATABASE_RETRY_AFTER)
            }
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// A store error shared by every caller of one batch (DataLoader results are shared).
impl From<Arc<StoreError>> for ApiError {
    fn from(err: Arc<StoreError>) -> Self {
        match Arc::try_unwrap(err) {
            Ok(err) => err.into(),
            Err(shared) => match shared.as_ref() {
                StoreError::Conflict(what) => ApiError::Conflict(what.clone()),
                StoreError::Unavailable(_) => ApiError::ServiceUnavailable(DATABASE_RETRY_AFTER),
                StoreError::Other(e) => ApiError::Internal(anyhow::anyhow!("{e:#}")),
            },
        }
    }
}

/// Gives every error of a GraphQL response its `extensions { code, status }` — the GraphQL half
/// of the policy above. Resolver errors carry their `ApiError` as the error's source (through
/// async-graphql's `From<T: Display>`); request-level errors (syntax, validation, depth and
/// complexity limits) have no source and no path, and are the client's: BAD_USER_INPUT. Any other
/// resolver error is unexpected: INTERNAL, with its text logged and replaced.
pub fn annotate_graphql_errors(errors: &mut [async_graphql::ServerError]) {
    for err in errors.iter_mut() {
        let api = err.source::<ApiError>().map(|api| {
            let field = match api {
                ApiError::BadUserInput { field, .. } => field.clone(),
                _ => None,
            };
            let facts = (api.code(), api.status().as_u16(), field, api.retry_after());
            (api.public_message(), facts)
        });
        let (code, status, field, retry) = match api {
            Some((message, facts)) => {
                err.message = message;
                facts
            }
            None if err.path.is_empty() || is_input_coercion(&err.message) => {
                ("BAD_USER_INPUT", 400, None, None)
            }
            None => {
                tracing::error!(error = %err.message, "unexpected resolver error");
                err.message = "internal server error".into();
                ("INTERNAL", 500, None, None)
            }
        };
        metrics::counter!("graphql_errors_total", "code" => code).increment(1);
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", code);
        ext.set("status", status);
        if let Some(field) = field {
            ext.set("field", field);
        }
        if let Some(secs) = retry {
            ext.set("retryAfter", secs);
        }
    }
}

/// Whether an error without a source is the engine refusing an argument it could not coerce
/// to its type (an Int out of range, a string for an Int): the client's error, raised while the
/// field resolves (so it has a path), with async-graphql's own wording.
fn is_input_coercion(message: &str) -> bool {
    message.starts_with("Failed to parse \"") || message.starts_with("Expected input type \"")
}

/// REST responses: `{"code": "...", "message": "..."}` with the matching status.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.public_message();
        let mut response = (
            self.status(),
            Json(json!({ "code": self.code(), "message": message })),
        )
            .into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A request-level failure, shaped like a GraphQL response: `{"errors":[…]}` with the status.
pub fn graphql_error_response(err: &ApiError) -> Response {
    metrics::counter!("graphql_errors_total", "code" => err.code()).increment(1);
    let mut extensions = json!({ "code": err.code(), "status": err.status().as_u16() });
    if let Some(secs) = err.retry_after() {
        extensions["retryAfter"] = json!(secs);
    }
    if let ApiError::BadUserInput {
        field: Some(field), ..
    } = err
    {
        extensions["field"] = json!(field);
    }
    let body = json!({ "errors": [{ "message": err.to_string(), "extensions": extensions }] });
    let mut response = (err.status(), Json(body)).into_response();
    if let Some(secs) = err.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let ApiError::MethodNotAllowed(_) = err {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Result of resolvers and services.
pub type ApiResult<T> = Result<T, ApiError>;

/// What a store can report beyond "it worked".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write; the text says what already exists.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (no connection within the pool's timeout, or the
    /// connection broke): the request may be retried.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// How long a client is told to wait when the database is unavailable.
pub const DATABASE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Maps a unique violation to `StoreError::Conflict(what)` and anything else to `Other`.
/// Works for both backends (PostgreSQL names the constraint, SQLite only reports the kind).
pub fn on_constraint(err: sqlx::Error, what: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_string())
        }
        _ => StoreError::from(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_database_connection_is_unavailable_not_internal() {
        let broken = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            // What connecting through a proxy whose server is down looks like.
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into()),
        ];
        for err in broken {
            let api = ApiError::from(StoreError::from(err));
            assert!(matches!(api, ApiError::ServiceUnavailable(_)), "{api:?}");
            assert_eq!(api.retry_after(), Some(DATABASE_RETRY_AFTER.as_secs()));
        }
        let wrong = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(ApiError::from(wrong), ApiError::Internal(_)));
    }

    /// A database error with a SQLSTATE, as PostgreSQL sends them.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn a_restarting_database_is_unavailable_not_internal() {
        for code in ["57P01", "57P02", "57P03", "08006", "08003"] {
            let api = ApiError::from(StoreError::from(sqlx::Error::Database(Box::new(Sqlstate(
                code,
            )))));
            assert!(
                matches!(api, ApiError::ServiceUnavailable(_)),
                "{code}: {api:?}"
            );
        }
        // A statement that is wrong stays an internal error.
        let api = ApiError::from(StoreError::from(sqlx::Error::Database(Box::new(Sqlstate(
            "42601",
        )))));
        assert!(matches!(api, ApiError::Internal(_)), "{api:?}");
    }
}
