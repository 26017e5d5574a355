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
use muster_core::clients::unix_now_millis;
use muster_core::tokens::{hash_secret, Client};
use muster_core::INTERNAL_DETAIL;
use muster_scim::ScimError;
use tracing::Instrument;

use crate::error::ApiError;
use crate::limits::RateLimits;
use crate::media::SCIM_JSON;
use crate::AppState;

/// How long a verified credential stays cached: a revoked token or client
/// stops working within this time on every replica (each reads the store
/// again once its entry is older), and a database read is spent on a busy
/// client at most twice a second.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_millis(500);

/// The answer's detail for a bearer secret that authenticates nobody.
const UNKNOWN_CREDENTIAL: &str = "unknown, expired or revoked bearer token";

/// The most credentials cached; beyond, the cache starts afresh.
const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// Verified credentials by hash, kept briefly to spare a database read per
/// request, and the rate limiters of the clients they authenticate.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, CachedClient>>,
    rate_limits: RateLimits,
}

struct CachedClient {
    client: Client,
    at: Instant,
    /// An access token's expiry (Unix milliseconds).
    expires_at: Option<i64>,
}

impl TokenCache {
    /// The client a credential's hash authenticated less than
    /// [`TOKEN_CACHE_TTL`] ago, unless it has expired since.
    pub fn get(&self, hash: &str) -> Option<Client> {
        let entries = self.entries.lock().ok()?;
        let cached = entries.get(hash)?;
        let fresh = cached.at.elapsed() < TOKEN_CACHE_TTL
            && cached
                .expires_at
                .is_none_or(|expires| unix_now_millis() < expires);
        fresh.then(|| cached.client.clone())
    }

    /// Caches the client a credential's hash authenticates (`expires_at`:
    /// an access token's expiry, Unix milliseconds).
    pub fn put(&self, hash: String, client: Client, expires_at: Option<i64>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TOKEN_CACHE_ENTRIES {
                entries.retain(|_, cached| cached.at.elapsed() < TOKEN_CACHE_TTL);
                if entries.len() >= TOKEN_CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                hash,
                CachedClient {
                    client,
                    at: Instant::now(),
                    expires_at,
                },
            );
        }
    }

    /// The per-client rate limiters.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }
}

/// The client a bearer secret authenticates: a long-lived token or an
/// unexpired OAuth access token of a client that exists.
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
    client_for_secret(state, secret).await
}

/// The client a bearer secret authenticates (a long-lived token or an
/// unexpired OAuth access token of a client that exists), through the
/// cache of verified credentials: what every `/scim/v2` and `/admin/v1`
/// request is authenticated with, and the admin console's sign-in with a
/// token. Its tenant is not checked here: the caller compares it with the
/// URL's.
pub async fn client_for_secret(state: &AppState, secret: &str) -> Result<Client, ApiError> {
    let hash = hash_secret(secret);
    if let Some(client) = state.tokens.get(&hash) {
        return Ok(client);
    }
    let credential = state
        .store()
        .find_credential(&hash, unix_now_millis())
        .await
        .map_err(|error| ApiError::from(muster_core::Error::from(error)))?
        .ok_or_else(|| ApiError::unauthorized(UNKNOWN_CREDENTIAL))?;
    let expires_at = credential.expires_at;
    let client = Client::from_credential(credential);
    state.tokens.put(hash, client.clone(), expires_at);
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
    // The path as sent (with its `/t/{tenant}` prefix), for the log.
    let logged_path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| path.clone(), |original| original.0.path().to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Every event of the request (and its exported trace) carries these;
    // the client is recorded once authenticated.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        tenant = %crate::tenants::UrlTenant::of(&request).0,
        client = tracing::field::Empty,
    );
    async move {
        // The admin console's pages (`/admin/...` outside `/admin/v1`)
        // authenticate with their session cookie instead.
        let needs_auth = path.starts_with("/scim/")
            || path == "/admin/v1"
            || path.starts_with("/admin/v1/")
            || path == "/metrics";
        let mut client_name = String::from("-");
        let mut response = if needs_auth {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            let url_tenant = crate::tenants::UrlTenant::of(&request);
            match authenticate(&state, authorization.as_deref()).await {
                // A credential presented at another tenant's URL is
                // answered exactly as an unknown one: nothing tells the
                // caller what exists there.
                Ok(client) if client.tenant != url_tenant => foreign_credential().into_response(),
                Ok(client) => {
                    client_name.clone_from(&client.name);
                    tracing::Span::current().record("client", client.name.as_str());
                    // Counted against its rate limit before anything runs.
                    match state
                        .tokens
                        .rate_limits()
                        .admit(&client, state.config.clients.default_rate_limit)
                    {
                        Ok(()) => {
                            request.extensions_mut().insert(client);
                            next.run(request).await
                        }
                        Err(refused) => refused.into_response(),
                    }
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
            path = logged_path,
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

/// The answer to a credential of another tenant than the URL's: the one
/// [`authenticate`] gives an unknown credential (`tests/tenants.rs`
/// compares the two).
fn foreign_credential() -> ApiError {
    ApiError::unauthorized(UNKNOWN_CREDENTIAL)
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
