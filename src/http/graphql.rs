//! `POST /graphql`, and GraphiQL on `GET /graphql` in development.

use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures::StreamExt;

use async_graphql::dataloader::DataLoader;

use super::HttpState;
use super::client_ip::ClientIp;
use super::middleware::Credentials;
use crate::app::AppState;
use crate::discovery::RelationLoader;
use crate::error::{ApiError, annotate_graphql_errors, graphql_error_response as error_response};
use crate::graphql::context::RequestContext;
use crate::infra::to_end::run_to_end;
use crate::playgrounds::graphql::{PlaygroundLoader, ViewerLoader};
use crate::profiles::loader::{ProfileLoader, SeenProfileLoader};

pub async fn graphiql(State(state): State<AppState>) -> Response {
    if state.config.is_production() {
        return ApiError::NotFound("GraphiQL is off in production".into()).into_response();
    }
    Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
}

/// The request document, read up to `limit` bytes: past it (by the declared length, or while
/// reading) the body is refused with 413 and the rest is never read.
pub(crate) async fn read_request(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<async_graphql::Request, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(1024).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_input("body", "the request body could not be read"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_input(
            "body",
            format!("the body must be a GraphQL request as JSON: {e}"),
        )
    })
}

pub async fn graphql(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientIp>,
    Extension(Credentials(credentials)): Extension<Credentials>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match read_request(&headers, body, super::GRAPHQL_BODY_LIMIT).await {
        Ok(request) => request,
        Err(err) => return error_response(&err),
    };
    let operation = state
        .operation_labels
        .label(request.operation_name.as_deref());
    let prepared = state.documents.prepare(&request.query);
    let schema = state.schemas.for_document(prepared.as_deref());
    let mut request = request
        .data(DataLoader::new(
            ProfileLoader(state.profiles.clone()),
            spawn_in_request,
        ))
        .data(DataLoader::new(
            SeenProfileLoader(state.profiles.clone()),
            spawn_in_request,
        ))
        .data(DataLoader::new(
            RelationLoader(state.discovery.clone()),
            spawn_in_request,
        ))
        .data(DataLoader::new(
            PlaygroundLoader(state.playgrounds.clone()),
            spawn_in_request,
        ))
        .data(DataLoader::new(
            ViewerLoader {
                playgrounds: state.playgrounds.clone(),
                discovery: state.discovery.clone(),
                profiles: state.profiles.clone(),
            },
            spawn_in_request,
        ))
        .data(RequestContext::new(client.limit_key(), credentials));

    let start = Instant::now();
    let mut response = match (schema, &prepared) {
        (Err(refused), _) => async_graphql::Response::from_errors(vec![refused]),
        // A mutation is carried through even if the client hangs up: a write stopped halfway
        // could store a message and tell nobody.
        (Ok(schema), Some(doc)) if doc.writes => {
            request.set_parsed_query(doc.document.clone());
            let schema = schema.clone();
            run_to_end(async move { schema.execute(request).await }).await
        }
        (Ok(schema), Some(doc)) => {
            request.set_parsed_query(doc.document.clone());
            schema.execute(request).await
        }
        (Ok(schema), None) => schema.execute(request).await,
    };
    let elapsed = start.elapsed().as_secs_f64();

    // A busy or rate-limited field makes the whole answer 503 or 429, with `Retry-After`.
    let retry_after = response
        .errors
        .iter()
        .filter_map(|e| e.source::<ApiError>().and_then(ApiError::retry_after))
        .max();
    let unavailable = response.errors.iter().any(|e| {
        e.source::<ApiError>()
            .is_some_and(|a| matches!(a, ApiError::ServiceUnavailable(_)))
    });
    annotate_graphql_errors(&mut response.errors);
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    metrics::counter!("graphql_operations_total", "operation" => operation.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", "operation" => operation)
        .record(elapsed);

    let mut http = GraphQLResponse::from(response).into_response();
    if let Some(secs) = retry_after {
        *http.status_mut() = if unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        http.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    http
}

/// Runs a DataLoader's batch as its own task inside the request's span, so its statements and
/// logs carry the request's id.
fn spawn_in_request(batch: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    use tracing::Instrument;
    tokio::spawn(batch.in_current_span())
}
