//! The SCIM media type: request bodies in, responses out.
//!
//! Requests may say `application/scim+json` or `application/json` (with any
//! parameters such as `charset`); responses always say
//! `application/scim+json`.

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_scim::ScimError;
use serde_json::Value;

use crate::error::ApiError;
use crate::AppState;

/// The SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// A JSON request body of a SCIM media type, size-limited and parsed.
pub struct ScimJson(pub Value);

impl<S> FromRequest<S> for ScimJson
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = std::sync::Arc::clone(&AppState::from_ref(state).config);
        let limits = config.max_payload_bytes;
        check_content_type(request.headers())?;
        let bytes = axum::body::to_bytes(request.into_body(), limits)
            .await
            .map_err(|_| {
                ScimError::status(
                    413,
                    format!("request body is larger than maxPayloadSize ({limits} bytes)"),
                )
            })?;
        check_depth(&bytes, config.max_json_depth)?;
        parse_json(&bytes).map(ScimJson).map_err(ApiError::from)
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ScimError::status(
            415,
            "missing Content-Type; send application/scim+json or application/json",
        )
        .into());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == SCIM_JSON || essence == "application/json" {
        Ok(())
    } else {
        Err(ScimError::status(
            415,
            format!("unsupported Content-Type '{essence}'; send application/scim+json or application/json"),
        )
        .into())
    }
}

/// A rule-set document: TOML (`application/toml`, `text/plain`) or JSON
/// (`application/json`, `application/scim+json`), size-limited, as text;
/// empty when the request has no body and no `Content-Type`.
pub struct RulesText(pub String);

impl<S> FromRequest<S> for RulesText
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = std::sync::Arc::clone(&AppState::from_ref(state).config);
        let limit = config.max_payload_bytes;
        let essence = content_type(request.headers());
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| {
                ScimError::status(
                    413,
                    format!("request body is larger than maxPayloadSize ({limit} bytes)"),
                )
            })?;
        if essence.is_empty() && bytes.is_empty() {
            return Ok(RulesText(String::new()));
        }
        let json = matches!(essence.as_str(), SCIM_JSON | "application/json");
        let toml = matches!(
            essence.as_str(),
            "application/toml" | "text/toml" | "text/plain"
        );
        if !json && !toml {
            return Err(ScimError::status(
                415,
                format!("unsupported Content-Type '{essence}'; send a rule set as application/toml or application/json"),
            )
            .into());
        }
        if json {
            check_depth(&bytes, config.max_json_depth)?;
        }
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ScimError::invalid_syntax("a rule set must be UTF-8 text"))?;
        let detected_json = text.trim_start().starts_with('{');
        if json != detected_json {
            return Err(ScimError::invalid_syntax(format!(
                "the body is not {}, as its Content-Type '{essence}' says",
                if json { "a JSON object" } else { "TOML" }
            ))
            .into());
        }
        Ok(RulesText(text))
    }
}

/// The media type of a request, lower case, without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Refuses a body whose arrays and objects nest deeper than `max_depth`,
/// before it is parsed: every later step (validation, PATCH, dropping the
/// value) walks the nesting, so it is bounded at the edge.
pub fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), ScimError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(ScimError::invalid_syntax(format!(
                        "request body nests arrays and objects deeper than {max_depth} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a JSON body, naming line and column of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ScimError::invalid_syntax(format!(
            "request body is not valid JSON: {error} (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

/// A SCIM JSON response with a status and optional `ETag` / `Location`.
pub struct ScimResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// The weak ETag, e.g. `W/"3"`.
    pub etag: Option<String>,
    /// The `Location` header (created resources).
    pub location: Option<String>,
}

impl ScimResponse {
    /// `200 OK` with a body.
    pub fn ok(body: Value) -> Self {
        ScimResponse {
            status: StatusCode::OK,
            body,
            etag: None,
            location: None,
        }
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            headers.insert(header::ETAG, etag);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}
