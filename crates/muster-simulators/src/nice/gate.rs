//! The access-key token endpoint, bearer authentication and the recorder: every request
//! passes through [`gate`]. Also the error bodies.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Shared;

/// The SCIM error schema URN.
const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// One request as the simulator saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path, e.g. `/scim/v2/Users`.
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
}

/// A JSON response with the given status and content type.
fn respond(status: StatusCode, body: &Value, content_type: &'static str) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    respond(status, body, "application/json")
}

/// A SCIM JSON response (`application/scim+json`).
pub(crate) fn scim_response(status: StatusCode, body: &Value) -> Response {
    respond(status, body, "application/scim+json")
}

/// A SCIM error: `status` is a string, `scimType` only when given.
pub(crate) fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": [SCIM_ERROR],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(obj)) = (scim_type, body.as_object_mut()) {
        obj.insert("scimType".into(), json!(t));
    }
    scim_response(status, &body)
}

/// An admin-API error body `{error, error_description}` (shape unverified).
pub(crate) fn api_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Issue a token.
pub(crate) fn issue(shared: &Shared) -> String {
    let token = format!("nice-{}", uuid::Uuid::new_v4().simple());
    shared.tokens().insert(
        token.clone(),
        Instant::now() + shared.options.token_lifetime,
    );
    token
}

/// `POST /authentication/v1/token/access-key` with `{"accessKeyId","accessKeySecret"}`.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(id), Some(secret)) = (field("accessKeyId"), field("accessKeySecret")) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "accessKeyId and accessKeySecret are required",
        );
    };
    if id != shared.options.access_key_id || secret != shared.options.access_key_secret {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The access key is not valid.",
        );
    }
    let token = issue(&shared);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": shared.options.token_lifetime.as_secs(),
        }),
    )
}

/// Anything not routed: 404.
pub(crate) async fn fallback() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested resource was not found.",
    )
}

/// The middleware: authenticate, answer, record.
pub(crate) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
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
    // The token endpoint's body holds the secret: record it redacted.
    let is_token_call = path == shared.options.token_path;
    let body_text = if is_token_call {
        String::from("{\"redacted\":true}")
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let live = token.as_deref().is_some_and(|t| {
        shared
            .tokens()
            .get(t)
            .is_some_and(|expiry| *expiry > Instant::now())
    });
    let limited = match (&token, shared.options.rate_limit) {
        (Some(t), Some(limit)) if live && !is_token_call => over_budget(&shared, t, limit),
        _ => None,
    };
    let resp = if let Some(retry_after) = limited {
        let mut resp = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests; retry later.",
        );
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    } else if is_token_call || live {
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    } else {
        api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token is missing, invalid or expired.",
        )
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "nice sim");
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

/// Counts a request against its token's window; `Some(seconds to wait)` when over.
fn over_budget(shared: &Shared, token: &str, limit: u32) -> Option<u64> {
    let now = Instant::now();
    let window = shared.options.rate_limit_window;
    let mut windows = shared.windows();
    let entry = windows.entry(token.to_owned()).or_insert((now, 0));
    if now.duration_since(entry.0) >= window {
        *entry = (now, 0);
    }
    entry.1 += 1;
    (entry.1 > limit).then(|| {
        let left = window.saturating_sub(now.duration_since(entry.0));
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    })
}

/// Minimal percent-decoding for query values (`+` is a space).
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

/// The query parameters, decoded.
pub(crate) fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
