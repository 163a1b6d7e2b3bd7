//! `/graphql`: GraphQL over HTTP — POST, GET for queries, automatic persisted queries — and
//! GraphiQL for a browser in development.
//!
//! - [`transport`]: media types, request parameters, and the status of each kind of failure.
//! - [`graphiql`]: the GraphiQL page and its embedded files.

pub mod graphiql;
pub mod transport;

use std::sync::Arc;
use std::time::Instant;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::OperationType;
use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tracing::Instrument;

use super::HttpState;
use super::client_ip::ClientIp;
use super::middleware::Credentials;
use crate::discovery::RelationLoader;
use crate::error::{ApiError, annotate_graphql_errors, graphql_error_response as error_response};
use crate::graphql::persisted::sha256_hex;
use crate::infra::to_end::run_to_end;
use crate::playgrounds::graphql::{PlaygroundLoader, ViewerLoader};
use crate::profiles::loader::{ProfileLoader, SeenProfileLoader};
use crate::resolvers::RequestContext;

/// `GET /graphql`: a query (its parameters in the URL), or GraphiQL for a browser's
/// navigation in development.
pub async fn graphql_get(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientIp>,
    Extension(credentials): Extension<Credentials>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    if transport::wants_html(&headers) && !transport::has_graphql_params(&query) {
        return graphiql::page(&state.app);
    }
    let media = match transport::negotiate(&headers) {
        Ok(media) => media,
        Err(err) => return error_response(&err),
    };
    let params = match transport::Params::from_url_query(&query) {
        Ok(params) => params,
        Err(err) => return transport::refusal(media, &err),
    };
    let signed_in = credentials.0.is_some();
    let mut response = run(&state, client, credentials, params, media, Method::Get).await;
    let headers = response.headers_mut();
    if signed_in {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    response
}

/// `POST /graphql`: a GraphQL request as JSON.
pub async fn graphql(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientIp>,
    Extension(credentials): Extension<Credentials>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = match transport::negotiate(&headers) {
        Ok(media) => media,
        Err(err) => return error_response(&err),
    };
    if let Err(err) = transport::require_json_body(&headers) {
        return transport::refusal(media, &err);
    }
    let params = match transport::read_body(&headers, body, super::GRAPHQL_BODY_LIMIT).await {
        Ok(params) => params,
        Err(err) => return transport::refusal(media, &err),
    };
    run(&state, client, credentials, params, media, Method::Post).await
}

/// How the request came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Resolves the document (sent, or persisted earlier), refuses what may not run, runs the rest
/// and frames the answer as `media`.
async fn run(
    state: &HttpState,
    client: ClientIp,
    Credentials(credentials): Credentials,
    params: transport::Params,
    media: transport::Media,
    method: Method,
) -> Response {
    let document = match persisted_document(state, &params).await {
        Ok(document) => document,
        Err(err) => return transport::refusal(media, &err),
    };
    let prepared = match state.documents.prepare(&document) {
        Ok(prepared) => prepared,
        Err(syntax) => return transport::request_error(media, vec![syntax]),
    };
    let operation_name = params.operation_name.as_deref();
    if method == Method::Get
        && prepared.operation_type(operation_name) == Some(OperationType::Mutation)
    {
        return error_response(&ApiError::MethodNotAllowed(
            "a mutation must be sent with POST",
        ));
    }
    let schema = match state.schemas.for_document(&prepared) {
        Ok(schema) => schema,
        Err(refused) => return transport::request_error(media, vec![refused]),
    };
    let operation = state.operation_labels.label(operation_name);
    let kind = match prepared.operation_type(operation_name) {
        Some(OperationType::Mutation) => "mutation",
        _ => "query",
    };
    let mut request = async_graphql::Request::new(document.to_string()).variables(
        async_graphql::Variables::from_json(serde_json::Value::Object(
            params.variables.unwrap_or_default(),
        )),
    );
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    request.set_parsed_query(prepared.document.clone());
    let request =
        with_loaders(request, state).data(RequestContext::new(client.limit_key(), credentials));

    let start = Instant::now();
    let span = tracing::info_span!(
        "graphql",
        otel.name = %format_args!("{kind} {operation}"),
        graphql.operation.type = kind,
        graphql.operation.name = %operation,
    );
    let mut response = if prepared.writes {
        // A mutation is carried through even if the client hangs up: a write stopped halfway
        // could store a message and tell nobody.
        let schema = schema.clone();
        run_to_end(async move { schema.execute(request).await })
            .instrument(span)
            .await
    } else {
        schema.execute(request).instrument(span).await
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

    // A document is kept under its hash once it has run: never one that did not validate, so
    // the shared store holds only documents of this schema, within its limits.
    if let Some(persisted) = &params.persisted
        && !transport::is_request_error(&response)
    {
        state.persisted.register(&persisted.sha256, &document).await;
    }
    let mut http = transport::executed(media, response);
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

/// The document a request runs: the one it sent (checked against its hash, when it names
/// one), or the one persisted earlier under its hash.
async fn persisted_document(
    state: &HttpState,
    params: &transport::Params,
) -> Result<Arc<str>, ApiError> {
    match (&params.query, &params.persisted) {
        (Some(query), None) => Ok(query.as_str().into()),
        (Some(query), Some(persisted)) => {
            if sha256_hex(query) != persisted.sha256 {
                return Err(ApiError::bad_input(
                    "extensions.persistedQuery",
                    "sha256Hash is not the SHA-256 of the query sent with it",
                ));
            }
            Ok(query.as_str().into())
        }
        (None, Some(persisted)) => state
            .persisted
            .get(&persisted.sha256)
            .await
            .ok_or(ApiError::PersistedQueryNotFound),
        (None, None) => Err(ApiError::bad_input(
            "query",
            "a GraphQL request needs a query (a string), or a persisted query's hash",
        )),
    }
}

/// The request's DataLoaders: what its fields load, batched per request.
fn with_loaders(request: async_graphql::Request, state: &HttpState) -> async_graphql::Request {
    request
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
}

/// Runs a DataLoader's batch as its own task inside the request's span, so its statements and
/// logs carry the request's id.
fn spawn_in_request(batch: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    use tracing::Instrument;
    tokio::spawn(batch.in_current_span())
}
