//! GraphiQL, in development only, served whole from the binary: its scripts and styles
//! (GraphiQL 3 and React 18, from the npm registry, vendored in `assets/graphiql/` by
//! `scripts/vendor-graphiql.sh`) are embedded, so it works with no network and behind a proxy
//! that allows nothing but this server.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;

/// The files the page loads, by the name it loads them under.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "start.js",
        "text/javascript; charset=utf-8",
        START.as_bytes(),
    ),
];

/// Mounts GraphiQL on the page (a file of its own: the page allows no inline script).
const START: &str = r##"const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: "/graphql" }),
    defaultQuery: "# PupMatch: sign in with the login mutation, then send\n# Authorization: Bearer <accessToken> in the headers below.\nquery Hello {\n  __typename\n}\n",
    defaultEditorToolsVisibility: true,
  }),
);
"##;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PupMatch GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/start.js"></script>
</body>
</html>
"#;

/// Everything the page needs is on this server; its editor styles some elements inline.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

fn off_in_production(state: &AppState) -> Option<Response> {
    state
        .config
        .is_production()
        .then(|| ApiError::NotFound("GraphiQL is off in production".into()).into_response())
}

/// The GraphiQL page (development only).
pub fn page(state: &AppState) -> Response {
    if let Some(refused) = off_in_production(state) {
        return refused;
    }
    let mut response = Html(PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// `GET /graphiql/{file}`: one of the page's files (development only).
pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    if let Some(refused) = off_in_production(&state) {
        return refused;
    }
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound("no such file".into()).into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, *content_type),
        (header::CACHE_CONTROL, "public, max-age=3600"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, *bytes).into_response()
}
