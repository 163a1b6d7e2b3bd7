//! The HTTP surface: router assembly and the layers every request passes through.
//!
//! - [`admin`]: `/admin/graphql` (the moderators' API) and `/admin` (their web console).
//! - [`graphql`]: `/graphql` — POST, GET for queries, persisted queries — and GraphiQL (with
//!   its files under `/graphiql/`) in development.
//! - [`client_ip`]: the client's address behind trusted proxies (rate-limit keys).
//! - [`export`]: `GET /v1/me/export`, the caller's data export.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`media`]: `GET /media/{key}` with a signed, expiring URL.
//! - [`photos`]: `POST /v1/photos` and `DELETE /v1/photos/{id}`.
//! - [`ws`]: `GET /ws`, the WebSocket (chat and live events).
//! - [`middleware`]: request metrics, bearer-token decoding and rate limits.

pub mod admin;
pub mod client_ip;
pub mod export;
pub mod graphql;
pub mod health;
pub mod media;
pub mod middleware;
pub mod photos;
pub mod ws;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::routing::{delete, get, post};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::{App, AppState};
use crate::graphql::persisted::PersistedQueries;
use crate::graphql::{DOCUMENT_CACHE_BYTES, DocumentCache, Schemas};
use crate::infra::telemetry::LabelSet;
use crate::moderation::graphql::{AdminSchema, build_admin_schema};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest photo upload body: the 10 MB file plus room for the multipart framing. The file
/// itself is capped at exactly 10 MB while it streams in.
pub(crate) const PHOTO_BODY_LIMIT: usize = crate::profiles::images::MAX_UPLOAD_BYTES + 64 * 1024;

/// Largest GraphQL request body.
pub(crate) const GRAPHQL_BODY_LIMIT: usize = 256 * 1024;

/// What the HTTP handlers share: the application, and the GraphQL schemas served on top of it.
/// Handlers that need only the application take `State<AppState>`.
#[derive(Clone)]
pub struct HttpState(Arc<Served>);

pub struct Served {
    pub app: AppState,
    /// The GraphQL schemas clients use.
    pub schemas: Schemas,
    /// GraphQL documents already parsed.
    pub documents: DocumentCache,
    /// Documents registered by automatic persisted queries.
    pub persisted: PersistedQueries,
    /// The moderators' GraphQL schema (`/admin/graphql`).
    pub admin_schema: AdminSchema,
    /// The bounded set of GraphQL operation names used as metric labels.
    pub operation_labels: LabelSet,
}

impl HttpState {
    pub fn new(app: AppState) -> Self {
        let production = app.config.is_production();
        HttpState(Arc::new(Served {
            schemas: Schemas::new(production, &app),
            documents: DocumentCache::new(DOCUMENT_CACHE_BYTES),
            persisted: PersistedQueries::new(app.redis.clone()),
            admin_schema: build_admin_schema(production),
            operation_labels: LabelSet::default(),
            app,
        }))
    }
}

impl Deref for HttpState {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.0
    }
}

impl Deref for Served {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl FromRef<HttpState> for AppState {
    fn from_ref(state: &HttpState) -> AppState {
        state.app.clone()
    }
}

pub fn router(state: HttpState) -> Router {
    let api = Router::new()
        .route(
            "/graphql",
            get(graphql::graphql_get)
                .post(graphql::graphql)
                .layer(DefaultBodyLimit::max(GRAPHQL_BODY_LIMIT)),
        )
        .route("/graphiql/{file}", get(graphql::graphiql::asset))
        .route("/media/{*key}", get(media::media))
        .route(
            "/v1/photos",
            post(photos::upload).layer(DefaultBodyLimit::max(PHOTO_BODY_LIMIT)),
        )
        .route("/v1/photos/{id}", delete(photos::delete))
        .route("/v1/me/export", get(export::export))
        .route("/ws", get(ws::ws))
        .merge(admin::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.app.clone(),
            middleware::authenticate_and_limit,
        ));

    let ops = ops_routes(state.config.metrics_listen.is_none());

    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The path only: query strings can hold signatures.
        // A caller's (or proxy's) `traceparent` makes this request a child of its span.
        let caller = crate::infra::traces::parent_from_headers(req.headers());
        crate::infra::sampling::continuing(caller, false, || {
            tracing::info_span!(
                "request",
                request.id = %request_id,
                http.method = %req.method(),
                http.path = %req.uri().path(),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                http.route = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
            )
        })
    });

    api.merge(ops)
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors(&state)),
        )
        .with_state(state)
}

/// Health, and metrics unless they have an address of their own.
fn ops_routes<S>(with_metrics: bool) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if with_metrics {
        routes.route("/metrics", get(health::metrics))
    } else {
        routes
    }
}

/// What `pupmatch worker` serves: health and metrics only.
pub fn ops_router(state: AppState) -> Router {
    ops_routes(true).with_state(state)
}

/// `/metrics` alone, for `PUPMATCH_METRICS_LISTEN`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

fn cors(state: &App) -> CorsLayer {
    let origin = match &state.config.allowed_origins {
        Some(list) if !state.config.any_origin() => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
        _ => AllowOrigin::any(),
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER, REQUEST_ID])
        .max_age(Duration::from_secs(600))
}
