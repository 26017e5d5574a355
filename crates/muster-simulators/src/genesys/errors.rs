//! Error bodies: SCIM (`{schemas, status, scimType, detail}`) and the Platform API's
//! `ErrorBody` (`{message, code, status, contextId, details, errors}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The SCIM error schema URN.
pub(crate) const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A SCIM JSON response (`application/scim+json`).
pub(crate) fn scim_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    resp
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

/// A Platform API error body.
pub(crate) fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &api_error_body(status, code, message))
}

/// The Platform API error body itself.
pub(crate) fn api_error_body(status: StatusCode, code: &str, message: &str) -> Value {
    json!({
        "message": message,
        "code": code,
        "status": status.as_u16(),
        "messageWithParams": message,
        "messageParams": {},
        "contextId": uuid::Uuid::new_v4().to_string(),
        "details": [],
        "errors": [],
    })
}

/// 404 `not.found` for a Platform API entity.
pub(crate) fn not_found(what: &str, id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not.found",
        &format!("The requested {what} {id} was not found."),
    )
}

/// 400 `bad.request`.
pub(crate) fn bad_request(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "bad.request", message)
}

/// Parse a JSON body, or answer 400 in the Platform API's shape.
pub(crate) fn parse_api_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| bad_request(&format!("Invalid JSON body: {e}")))
}

/// Parse a JSON body, or answer 400 `invalidSyntax` in SCIM's shape.
pub(crate) fn parse_scim_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            &format!("Request body is not valid JSON: {e}"),
        )
    })
}
