//! GraphQL over HTTP, as its specification (and the clients written to it) expect: which media
//! type an answer is in, what a request may look like by POST and by GET, and what status each
//! kind of failure gets.
//!
//! - The answer is `application/graphql-response+json` when the client accepts it (and does
//!   not prefer plain JSON), `application/json` when that is what it accepts — or sends no
//!   `Accept`, or `*/*` — and 406 otherwise.
//! - A request error (no query, a document that does not parse or validate, variables that
//!   do not fit) has no `data` entry. As `application/graphql-response+json` it is HTTP 400;
//!   as `application/json` it is 200, which is what older clients expect of a well-formed
//!   request. A body that is not a GraphQL request at all is 400 either way.
//! - Errors met while running (a field's own error) are 200 with `data`, as always.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, annotate_graphql_errors, graphql_error_response};
use crate::graphql::persisted::PersistedQuery;

/// The media type of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: the status code tells a request error apart.
    GraphqlResponse,
    /// `application/json`.
    Json,
}

impl Media {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }

    /// The status of a request error framed as this media type.
    fn request_error_status(self, own: StatusCode) -> StatusCode {
        match self {
            Media::GraphqlResponse => own,
            Media::Json => StatusCode::OK,
        }
    }
}

/// One media range of an `Accept` header, lower-cased, with its weight.
struct Range {
    essence: String,
    q: f32,
}

/// The ranges of `Accept`; None when the header is missing or empty.
fn accept_ranges(headers: &HeaderMap) -> Option<Vec<Range>> {
    let mut ranges = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if essence.is_empty() {
                continue;
            }
            let q = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            ranges.push(Range { essence, q });
        }
    }
    (!ranges.is_empty()).then_some(ranges)
}

/// The weight given to `media` (a full `type/subtype`): that of the most specific range that
/// matches it, wildcards included only when `wildcards`.
fn weight(ranges: &[Range], media: &str, wildcards: bool) -> f32 {
    let family = media.split('/').next().unwrap_or_default();
    let specificity = |r: &Range| -> Option<u8> {
        if r.essence == media {
            Some(2)
        } else if wildcards && r.essence.strip_suffix("/*") == Some(family) {
            Some(1)
        } else if wildcards && r.essence == "*/*" {
            Some(0)
        } else {
            None
        }
    };
    ranges
        .iter()
        .filter_map(|r| specificity(r).map(|s| (s, r.q)))
        .max_by_key(|(s, _)| *s)
        .map_or(0.0, |(_, q)| q)
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type to answer in, or 406 when the client accepts neither.
pub fn negotiate(headers: &HeaderMap) -> Result<Media, ApiError> {
    let Some(ranges) = accept_ranges(headers) else {
        return Ok(Media::Json);
    };
    // Only a client that names the newer type gets it: `*/*` means plain JSON.
    let graphql = weight(&ranges, GRAPHQL_RESPONSE, false);
    let json = weight(&ranges, JSON, true);
    if graphql > 0.0 && graphql >= json {
        Ok(Media::GraphqlResponse)
    } else if json > 0.0 {
        Ok(Media::Json)
    } else {
        Err(ApiError::NotAcceptable(
            "GraphQL answers are application/graphql-response+json or application/json",
        ))
    }
}

/// Whether a GET is a browser's navigation: HTML preferred to JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    accept_ranges(headers).is_some_and(|ranges| {
        let html = weight(&ranges, "text/html", false);
        html > 0.0
            && html > weight(&ranges, JSON, true)
            && html > weight(&ranges, GRAPHQL_RESPONSE, false)
    })
}

/// Whether a URL query string carries any GraphQL request parameter.
pub fn has_graphql_params(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| {
        matches!(
            k.as_ref(),
            "query" | "operationName" | "variables" | "extensions"
        )
    })
}

/// A POST body must be JSON (UTF-8, the only charset a JSON body may have).
pub fn require_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::UnsupportedMediaType(
            "send the request as JSON, with Content-Type: application/json",
        )
    };
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let mut parts = value.split(';');
    if !parts
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(JSON)
    {
        return Err(refused());
    }
    let charset_ok = parts
        .filter_map(|p| p.trim().split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .all(|(_, v)| v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8"));
    if charset_ok { Ok(()) } else { Err(refused()) }
}

/// A GraphQL request's parameters, from a JSON body or a URL.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
    /// `extensions.persistedQuery`, checked.
    #[serde(skip)]
    pub persisted: Option<PersistedQuery>,
}

impl Params {
    fn checked(mut self) -> Result<Params, ApiError> {
        self.persisted = PersistedQuery::from_extensions(self.extensions.as_ref())?;
        Ok(self)
    }

    /// The parameters of a GET: `query`, `operationName`, and `variables` and `extensions`
    /// as JSON objects.
    pub fn from_url_query(query: &str) -> Result<Params, ApiError> {
        let object = |name: &str, text: &str| -> Result<Option<Map<String, Value>>, ApiError> {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                Ok(Value::Null) => Ok(None),
                _ => Err(ApiError::bad_input(
                    name,
                    format!("{name} must be a JSON object"),
                )),
            }
        };
        let mut params = Params::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "query" => params.query = Some(value.into_owned()),
                "operationName" => params.operation_name = Some(value.into_owned()),
                "variables" => params.variables = object("variables", &value)?,
                "extensions" => params.extensions = object("extensions", &value)?,
                _ => {}
            }
        }
        params.checked()
    }

    /// A plain request (no persisted query): the moderators' API.
    pub fn into_request(self) -> Result<async_graphql::Request, ApiError> {
        let query = self.query.ok_or_else(|| {
            ApiError::bad_input("query", "a GraphQL request needs a query (a string)")
        })?;
        let mut request = async_graphql::Request::new(query).variables(
            async_graphql::Variables::from_json(Value::Object(self.variables.unwrap_or_default())),
        );
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        Ok(request)
    }
}

/// The request in a POST body, read up to `limit` bytes: past it (by the declared length, or
/// while reading) the body is refused with 413 and the rest is never read.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Params, ApiError> {
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
    serde_json::from_slice::<Params>(&bytes)
        .map_err(|e| {
            ApiError::bad_input(
                "body",
                format!(
                    "the body must be a GraphQL request: a JSON object with a string query, \
                     and optionally operationName, variables and extensions ({e})"
                ),
            )
        })?
        .checked()
}

fn framed(media: Media, status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// A request refused before it ran, as `media`: a malformed request keeps its own status
/// (400, 413, 415); an unknown persisted query is a request error.
pub fn refusal(media: Media, err: &ApiError) -> Response {
    let mut response = graphql_error_response(err);
    if matches!(err, ApiError::PersistedQueryNotFound) {
        *response.status_mut() = media.request_error_status(err.status());
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// A document that did not parse, or was refused for its shape, as `media` (no `data`).
pub fn request_error(media: Media, mut errors: Vec<async_graphql::ServerError>) -> Response {
    annotate_graphql_errors(&mut errors);
    framed(
        media,
        media.request_error_status(StatusCode::BAD_REQUEST),
        &json!({ "errors": errors }),
    )
}

/// Whether the engine refused the request before running it (it did not validate, or its
/// variables did not fit): no data, and errors with no path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The answer of a request that reached the engine. One that failed before running (it did
/// not validate, or its variables did not fit) is a request error; its errors have no path.
pub fn executed(media: Media, response: async_graphql::Response) -> Response {
    if is_request_error(&response) {
        let body = json!({ "errors": response.errors });
        return framed(
            media,
            media.request_error_status(StatusCode::BAD_REQUEST),
            &body,
        );
    }
    let body = serde_json::to_value(&response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a GraphQL answer could not be serialized");
        json!({ "errors": [{ "message": "internal server error",
                             "extensions": { "code": "INTERNAL", "status": 500 } }] })
    });
    framed(media, StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn the_answer_is_in_the_type_the_client_prefers() {
        use Media::*;
        assert_eq!(negotiate(&HeaderMap::new()).expect("no accept"), Json);
        for (value, media) in [
            ("application/graphql-response+json", GraphqlResponse),
            ("application/json", Json),
            ("*/*", Json),
            ("application/*", Json),
            // Apollo Client's header.
            (
                "application/graphql-response+json,application/json;q=0.9",
                GraphqlResponse,
            ),
            (
                "application/json, application/graphql-response+json;q=0.5",
                Json,
            ),
            ("Application/JSON; charset=utf-8", Json),
            (
                "text/html, application/graphql-response+json;q=0.1",
                GraphqlResponse,
            ),
        ] {
            assert_eq!(negotiate(&accept(value)).expect(value), media, "{value}");
        }
        for refused in ["text/html", "application/xml", "application/json;q=0"] {
            assert!(negotiate(&accept(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn only_a_browsers_navigation_wants_html() {
        assert!(wants_html(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_html(&HeaderMap::new()));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("text/html, application/json")));
    }

    #[test]
    fn a_post_body_must_be_utf8_json() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(value).expect("h"),
            );
            require_json_body(&headers)
        };
        assert!(with("application/json").is_ok());
        assert!(with("application/json; charset=utf-8").is_ok());
        assert!(with("application/json; charset=\"UTF-8\"").is_ok());
        assert!(with("application/json; charset=latin1").is_err());
        assert!(with("text/plain").is_err());
        assert!(with("application/graphql").is_err());
        assert!(require_json_body(&HeaderMap::new()).is_err());
    }

    #[test]
    fn get_parameters_are_read_from_the_url() {
        let params = Params::from_url_query(
            "query=query%20Q(%24n%3A%20Int)%20%7B%20__typename%20%7D&operationName=Q&variables=%7B%22n%22%3A1%7D",
        )
        .expect("parses");
        assert_eq!(
            params.query.as_deref(),
            Some("query Q($n: Int) { __typename }")
        );
        assert_eq!(params.operation_name.as_deref(), Some("Q"));
        assert_eq!(params.variables.expect("variables")["n"], 1);
        assert!(Params::from_url_query("query=x&variables=%5B1%5D").is_err());
        assert!(Params::from_url_query("query=x&extensions=nope").is_err());
        assert!(has_graphql_params("query=x") && !has_graphql_params("utm=1"));
    }
}
