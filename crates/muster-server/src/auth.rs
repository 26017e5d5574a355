//! Authentication of each request, the scope each route requires, and the
//! one log line per request.
//!
//! Bearer secrets are hashed before they are looked up ([`hash_secret`]);
//! they are never stored, logged or echoed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use muster_core::tokens::{hash_secret, Client};
use muster_core::INTERNAL_DETAIL;
use muster_scim::ScimError;
use muster_store::TokenRecord;
use tracing::Instrument;

use crate::error::ApiError;
use crate::media::SCIM_JSON;
use crate::AppState;

/// How long a verified token stays cached; a revoked token stops working
/// within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Verified tokens by hash, kept briefly to spare a database read per request.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Client, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Client> {
        let entries = self.entries.lock().ok()?;
        let (client, at) = entries.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| client.clone())
    }

    fn put(&self, hash: String, client: Client) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(hash, (client, Instant::now()));
        }
    }
}

async fn authenticate(state: &AppState, authorization: Option<&str>) -> Result<Client, ApiError> {
    let header_value = authorization
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let secret = Some(header_value)
        .and_then(|value| {
            let (scheme, secret) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
        })
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <token>'"))?;
    let hash = hash_secret(secret);
    if let Some(client) = state.tokens.get(&hash) {
        return Ok(client);
    }
    let (tenant, TokenRecord { name, scopes, .. }) = state
        .store()
        .find_token(&hash)
        .await
        .map_err(|error| ApiError::from(muster_core::Error::from(error)))?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked bearer token"))?;
    let client = Client {
        name,
        tenant,
        scopes,
    };
    state.tokens.put(hash, client.clone());
    Ok(client)
}

/// The scope check a route declares: `403` unless the authenticated client
/// holds `scope` (directly or through a wider one).
pub async fn require_scope(
    State(scope): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    match request.extensions().get::<Client>() {
        Some(client) if client.allows(scope) => next.run(request).await,
        Some(client) => ApiError::forbidden(format!(
            "token '{}' lacks the '{scope}' scope this request needs",
            client.name
        ))
        .into_response(),
        None => {
            ApiError::unauthorized("missing Authorization: Bearer <token> header").into_response()
        }
    }
}

/// The longest `x-request-id` a client may choose.
const MAX_REQUEST_ID: usize = 64;

/// Drops a client's `x-request-id` unless it is a short token of letters,
/// digits, `-`, `_` and `.`, so that the server mints one instead: the id is
/// stored with every change the request makes and logged, so a client must
/// not be able to make it large or make it lie about its shape.
pub async fn sanitize_request_id(mut request: Request) -> Request {
    let valid = request
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|value| {
            value.to_str().is_ok_and(|text| {
                !text.is_empty()
                    && text.len() <= MAX_REQUEST_ID
                    && text.bytes().all(|byte| {
                        byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')
                    })
            })
        })
        .collect::<Vec<bool>>();
    if valid.len() > 1 || valid.contains(&false) {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Authenticates `/scim/v2` and `/admin/v1` requests (the routes check the
/// scope), runs each request in a span carrying its request id, and logs one
/// line per request: method, path, status, latency, client and request id.
/// Never logs headers or bodies. A `5xx` answer is replaced by a generic
/// SCIM error naming the request id, so no internal detail reaches a client
/// (the cause was logged in the request's span).
pub async fn authenticate_and_log(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    async move {
        let needs_auth =
            path.starts_with("/scim/") || path.starts_with("/admin/") || path == "/metrics";
        let mut client_name = String::from("-");
        let mut response = if needs_auth {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            match authenticate(&state, authorization.as_deref()).await {
                Ok(client) => {
                    client_name.clone_from(&client.name);
                    request.extensions_mut().insert(client);
                    next.run(request).await
                }
                Err(error) => error.into_response(),
            }
        } else {
            next.run(request).await
        };
        if response.status().is_server_error() {
            response = generic_server_error(response, &request_id);
        }
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            client = client_name,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}

/// A `5xx` answer with its body replaced: the generic detail and the request
/// id, nothing else (headers such as `Retry-After` are kept).
fn generic_server_error(response: Response, request_id: &str) -> Response {
    let (mut parts, _) = response.into_parts();
    let detail = if request_id.is_empty() {
        INTERNAL_DETAIL.to_owned()
    } else {
        format!("{INTERNAL_DETAIL} (request id {request_id})")
    };
    let mut error = ScimError::status(parts.status.as_u16(), detail);
    if parts.status.as_u16() == 503 {
        error.detail = format!(
            "Muster is busy; retry after the time in Retry-After (request id {request_id})"
        );
    }
    let body = serde_json::to_vec(&error.to_response()).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    Response::from_parts(parts, Body::from(body))
}
