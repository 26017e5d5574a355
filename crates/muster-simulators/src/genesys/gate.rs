//! OAuth client credentials, the per-token rate limit and the recorder: every request
//! passes through [`gate`].

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Value};

use super::errors::{api_error, json_response};
use super::Shared;

/// One request as the simulator saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path, e.g. `/api/v2/scim/v2/Users`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Body as text (empty when none).
    pub body: String,
    /// Bearer token, if one was sent.
    pub token: Option<String>,
    /// When it arrived.
    pub at: SystemTime,
    /// Status answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The body parsed as JSON (`Value::Null` when empty or not JSON).
    #[must_use]
    pub fn body_json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of a query parameter (not percent-decoded beyond `+` and `%20`).
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref().and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then(|| percent_decode(v))
            })
        })
    }

    /// Whether the path is under SCIM (`/api/v2/scim/v2`).
    #[must_use]
    pub fn is_scim(&self) -> bool {
        self.path.starts_with("/api/v2/scim/")
    }
}

/// Minimal percent-decoding for query values.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Issue a token for the configured client.
pub(crate) fn issue(shared: &Shared) -> String {
    let token = format!("sim-{}", uuid::Uuid::new_v4().simple());
    shared.tokens().issued.insert(
        token.clone(),
        Instant::now() + shared.options.token_lifetime,
    );
    token
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        },
        &json!({ "error": error, "description": description, "error_description": description }),
    )
}

/// `POST /oauth/token`: Basic client id:secret, form `grant_type=client_credentials`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = basic.as_deref().and_then(|s| s.split_once(':')) else {
        return oauth_error("invalid_client", "client authentication failed");
    };
    if id != shared.options.client_id || secret != shared.options.client_secret {
        return oauth_error("invalid_client", "client not found or secret mismatch");
    }
    let form = String::from_utf8_lossy(&body);
    let grant = form.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == "grant_type")
            .map(|(_, v)| percent_decode(v))
    });
    if grant.as_deref() != Some("client_credentials") {
        return oauth_error(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let token = issue(&shared);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": shared.options.token_lifetime.as_secs(),
        }),
    )
}

/// Anything not routed: 404 in the Platform API's shape.
pub(crate) async fn fallback() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not.found",
        "The requested resource was not found.",
    )
}

enum Admission {
    Unauthorized,
    Allowed { count: u32, reset: u64 },
    Limited { count: u32, reset: u64 },
}

fn admit(shared: &Shared, token: Option<&str>) -> Admission {
    let now = Instant::now();
    let mut tokens = shared.tokens();
    let Some(token) = token else {
        return Admission::Unauthorized;
    };
    match tokens.issued.get(token) {
        Some(expiry) if *expiry > now => {}
        _ => return Admission::Unauthorized,
    }
    let window = shared.options.rate_limit_window;
    let entry = tokens.windows.entry(token.to_string()).or_insert((now, 0));
    if now.duration_since(entry.0) >= window {
        *entry = (now, 0);
    }
    entry.1 += 1;
    let left = window.saturating_sub(now.duration_since(entry.0));
    let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    if entry.1 > shared.options.rate_limit {
        Admission::Limited {
            count: entry.1,
            reset: reset.max(1),
        }
    } else {
        Admission::Allowed {
            count: entry.1,
            reset,
        }
    }
}

fn set_header(resp: &mut Response, name: &'static str, value: u64) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        resp.headers_mut().insert(name, v);
    }
}

/// The middleware: authenticate, count against the token's budget, answer, record.
pub(crate) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let at = SystemTime::now();
    let body_text = String::from_utf8_lossy(&bytes).into_owned();

    let resp = if path == "/oauth/token" {
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    } else {
        match admit(&shared, token.as_deref()) {
            Admission::Unauthorized => api_error(
                StatusCode::UNAUTHORIZED,
                "authentication.required",
                "No authentication bearer token specified in authorization header.",
            ),
            Admission::Limited { count, reset } => {
                let body = json!({
                    "message": format!("Rate limit exceeded the maximum. Retry the request in [{reset}] seconds"),
                    "code": "too.many.requests.retry.after",
                    "status": 429,
                    "contextId": uuid::Uuid::new_v4().to_string(),
                    "details": [],
                    "errors": [],
                });
                let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
                set_header(&mut resp, "retry-after", reset);
                rate_headers(&mut resp, &shared, count, reset);
                resp
            }
            Admission::Allowed { count, reset } => {
                let mut resp = next
                    .run(Request::from_parts(parts, Body::from(bytes)))
                    .await;
                rate_headers(&mut resp, &shared, count, reset);
                resp
            }
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "genesys sim");
    shared.recorded().push(RecordedRequest {
        method,
        path,
        query,
        body: body_text,
        token,
        at,
        status: resp.status().as_u16(),
    });
    resp
}

fn rate_headers(resp: &mut Response, shared: &Shared, count: u32, reset: u64) {
    set_header(
        resp,
        "inin-ratelimit-allowed",
        u64::from(shared.options.rate_limit),
    );
    set_header(resp, "inin-ratelimit-count", u64::from(count));
    set_header(resp, "inin-ratelimit-reset", reset);
}
