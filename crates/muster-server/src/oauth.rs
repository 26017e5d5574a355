//! `POST /oauth/token`: the OAuth 2.0 client credentials grant (RFC 6749
//! section 4.4), for identity providers that authenticate with a client id
//! and secret instead of a long-lived bearer token.
//!
//! The request is a form (`application/x-www-form-urlencoded`) with
//! `grant_type=client_credentials` and an optional `scope`; the client
//! authenticates with exactly one method (RFC 6749 section 2.3.1): HTTP
//! Basic (`client_id` and `client_secret` each form-urlencoded, then joined
//! by `:` and base64-encoded) or the `client_id` and `client_secret` form
//! fields. Answers are JSON, never cached: a token
//! (`access_token`, `token_type`, `expires_in`, `scope`) or an RFC 6749
//! section 5.2 error (`error`, `error_description`). `/oauth/token` serves
//! the `default` tenant's clients, `/t/{tenant}/oauth/token` the tenant's;
//! a client of another tenant is answered exactly as an unknown one.
//!
//! The route needs no bearer token. Secret verification is slow by design
//! (argon2id): it runs off the async threads under admission limits shared
//! by every client of every tenant ([`muster_core::clients`]: one per CPU,
//! [`muster_core::clients::MAX_WAITING_VERIFICATIONS`] waiting, then `503`),
//! which is what bounds a flood of unauthenticated requests. A request
//! counts against its client's rate limit, and against
//! [`TOKEN_REQUESTS_PER_SECOND`], only once its secret is verified: a
//! `client_id` is no secret (RFC 6749 section 2.2), so a caller who knows
//! only that can neither spend the client's SCIM budget nor lock it out of
//! token issuance.
//!
//! `/t/{tenant}/oauth/token` matches the tenant segment as sent, like
//! [`crate::tenants`]: a tenant name in its one form, never case-folded or
//! percent-decoded; any other segment (`B`, `%62`, an empty one) is `404`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use muster_core::clients::{
    find_client, issue_verified_access_token, verify_client_secret, GrantError, GrantOutcome,
};
use muster_store::tenants::parse_tenant_name;
use muster_store::TenantId;
use serde_json::json;

use crate::tenants::UrlTenant;
use crate::AppState;

/// Token requests a client may make per second (burst: as many), whatever
/// its own rate limit: each costs a slow secret verification.
pub const TOKEN_REQUESTS_PER_SECOND: u32 = 5;

/// The largest token request body accepted.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 8 * 1024;

/// `POST /oauth/token`: the `default` tenant's clients (or, should the
/// tenant prefix have been taken off the path, the URL's tenant's).
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    let tenant = UrlTenant::of(&request);
    match grant(&state, &tenant, request).await {
        Ok(response) | Err(response) => response,
    }
}

/// `POST /t/{tenant}/oauth/token`: the tenant's clients. The segment is
/// read from the raw path (the router's `{tenant}` would be
/// percent-decoded): a segment that is not a tenant name as written is
/// `404`; a name that is no tenant's is answered as an unknown client.
pub async fn tenant_token(State(state): State<AppState>, request: Request) -> Response {
    let Some(tenant) = url_tenant(request.uri().path()) else {
        return crate::health::not_found(request.uri().clone())
            .await
            .into_response();
    };
    match grant(&state, &tenant, request).await {
        Ok(response) | Err(response) => response,
    }
}

/// The tenant of a `/t/{tenant}/oauth/token` path, its segment taken as
/// written: `None` unless it is a tenant name in its one form.
fn url_tenant(path: &str) -> Option<TenantId> {
    let name = path.strip_prefix("/t/")?.strip_suffix("/oauth/token")?;
    parse_tenant_name(name)
        .ok()
        .filter(|tenant| tenant.0 == name)
}

/// An RFC 6749 section 5.2 error.
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// Whether the client tried HTTP Basic (then a `401` challenges it).
    basic: bool,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    fn invalid_client(basic: bool) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "client authentication failed".to_owned(),
            basic,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        // RFC 6749 5.2: error_description is printable ASCII without '"'
        // and '\\'; anything else a client sent is replaced.
        let description: String = self
            .description
            .chars()
            .map(|c| {
                if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let body = json!({"error": self.code, "error_description": description});
        let mut response = json_response(self.status, &body);
        if self.basic && self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"muster\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// A JSON answer that no cache may keep (RFC 6749 section 5.1).
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, Body::from(body.to_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The client's credentials, from the one method it used.
struct Credentials {
    client_id: String,
    secret: String,
    basic: bool,
}

async fn grant(
    state: &AppState,
    tenant: &TenantId,
    request: Request,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    check_form_type(&parts.headers).map_err(IntoResponse::into_response)?;
    let bytes = axum::body::to_bytes(body, MAX_TOKEN_REQUEST_BYTES)
        .await
        .map_err(|_| {
            OAuthError::invalid_request(format!(
                "the request body is larger than {MAX_TOKEN_REQUEST_BYTES} bytes"
            ))
            .into_response()
        })?;
    let form = parse_form(&bytes).map_err(IntoResponse::into_response)?;
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    match field("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is missing").into_response()),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type '{other}' is not supported; use client_credentials"),
            )
            .into_response())
        }
    }
    let credentials = credentials(&parts.headers, field("client_id"), field("client_secret"))
        .map_err(IntoResponse::into_response)?;
    let basic = credentials.basic;
    let store = state.store();
    let found = find_client(store, &credentials.client_id, Some(tenant))
        .await
        .map_err(|error| crate::error::ApiError::from(error).into_response())?;
    let Some((owner, client)) = found else {
        return Err(OAuthError::invalid_client(basic).into_response());
    };
    // The secret first, under the admission limits every token request
    // shares: a caller who knows only the client_id (no secret, RFC 6749
    // 2.2) must not spend the client's budgets.
    let verified = match verify_client_secret(&client, &credentials.secret).await {
        Ok(verified) => verified,
        Err(GrantOutcome::Refused(GrantError::InvalidClient)) => {
            tracing::info!(client = %client.name, tenant = %owner.0, "client authentication failed");
            return Err(OAuthError::invalid_client(basic).into_response());
        }
        Err(GrantOutcome::Refused(GrantError::Busy)) => return Err(busy()),
        Err(GrantOutcome::Refused(other)) => {
            return Err(refused(other));
        }
        Err(GrantOutcome::Failed(error)) => {
            return Err(crate::error::ApiError::from(error).into_response())
        }
    };
    // Then the authenticated client's requests count against its rate
    // limit, and against a bucket of their own, far smaller: a client
    // needs a token an hour.
    let rate = client
        .options
        .rate_limit
        .unwrap_or(state.config.clients.default_rate_limit);
    let limits = state.tokens.rate_limits();
    limits
        .check(&owner, &client.name, rate)
        .map_err(|wait| crate::limits::too_many_requests(&client.name, rate, wait))?;
    limits
        .check(
            &owner,
            &format!("{}\u{0}/oauth/token", client.name),
            TOKEN_REQUESTS_PER_SECOND,
        )
        .map_err(|wait| {
            crate::limits::too_many_requests(&client.name, TOKEN_REQUESTS_PER_SECOND, wait)
        })?;
    let issued = issue_verified_access_token(
        store,
        &owner,
        &client,
        &verified,
        field("scope"),
        state.config.clients.access_token_ttl,
    )
    .await;
    match issued {
        Ok(issued) => {
            tracing::info!(client = %issued.client, tenant = %issued.tenant.0, scope = %issued.scope, "access token issued");
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "access_token": issued.access_token,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                    "scope": issued.scope,
                }),
            ))
        }
        // Revoked between the verification and the issue.
        Err(GrantOutcome::Refused(GrantError::InvalidClient)) => {
            Err(OAuthError::invalid_client(basic).into_response())
        }
        Err(GrantOutcome::Refused(GrantError::Busy)) => Err(busy()),
        Err(GrantOutcome::Refused(other)) => Err(refused(other)),
        Err(GrantOutcome::Failed(error)) => {
            Err(crate::error::ApiError::from(error).into_response())
        }
    }
}

/// A refusal after the client authenticated: its scopes.
fn refused(error: GrantError) -> Response {
    match error {
        GrantError::InvalidClient => OAuthError::invalid_client(false).into_response(),
        GrantError::UnauthorizedClient => OAuthError::new(
            "unauthorized_client",
            "this client holds no scope; give it one with muster client create --scope",
        )
        .into_response(),
        GrantError::InvalidScope(detail) => {
            OAuthError::new("invalid_scope", detail).into_response()
        }
        GrantError::Busy => busy(),
    }
}

/// `503` with `Retry-After`: too many secret verifications already wait.
fn busy() -> Response {
    let mut response = OAuthError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "temporarily_unavailable",
        description: "too many token requests are being verified; retry".to_owned(),
        basic: false,
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// RFC 6749 4.4.2: the body is `application/x-www-form-urlencoded`.
fn check_form_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(OAuthError::invalid_request(
            "send the token request as application/x-www-form-urlencoded",
        )),
    }
}

/// The form's parameters; a parameter sent twice is refused and one sent
/// without a value is omitted (RFC 6749 section 3.1).
fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut form: Vec<(String, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        if value.is_empty() {
            continue;
        }
        if form.iter().any(|(taken, _)| *taken == key) {
            return Err(OAuthError::invalid_request(format!(
                "parameter '{key}' is sent more than once"
            )));
        }
        form.push((key.into_owned(), value.into_owned()));
    }
    Ok(form)
}

/// The client's credentials: HTTP Basic or the form fields, never both.
fn credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Credentials, OAuthError> {
    let authorization = headers.get(header::AUTHORIZATION);
    let Some(authorization) = authorization else {
        return match (form_id, form_secret) {
            (Some(client_id), Some(secret)) => Ok(Credentials {
                client_id: client_id.to_owned(),
                secret: secret.to_owned(),
                basic: false,
            }),
            (None, None) => Err(OAuthError::invalid_client(true)),
            _ => Err(OAuthError::invalid_request(
                "send both client_id and client_secret, or use HTTP Basic",
            )),
        };
    };
    if form_id.is_some() || form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method: HTTP Basic or client_id and client_secret in the form, not both",
        ));
    }
    let text = authorization.to_str().unwrap_or_default();
    let encoded = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim())
        .ok_or_else(|| {
            OAuthError::invalid_request(
                "the Authorization header must be HTTP Basic (client_id:client_secret)",
            )
        })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    // RFC 6749 2.3.1: each part was form-urlencoded before the encoding.
    let decode = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let (client_id, secret) = (decode(id), decode(secret));
    if client_id.is_empty() || secret.is_empty() {
        return Err(OAuthError::invalid_client(true));
    }
    Ok(Credentials {
        client_id,
        secret,
        basic: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("x")),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_split_at_the_first_colon() {
        let check = |raw: &str, expected: Option<(&str, &str)>| {
            let got = credentials(&basic(raw), None, None)
                .ok()
                .map(|c| (c.client_id, c.secret));
            assert_eq!(
                got,
                expected.map(|(id, secret)| (id.to_owned(), secret.to_owned())),
                "{raw}"
            );
        };
        check("id:secret", Some(("id", "secret")));
        check("id:sec:ret", Some(("id", "sec:ret")));
        check("id%3Ax:s%25e+t", Some(("id:x", "s%e t")));
        check("id", None);
        check(":secret", None);
        check("id:", None);
    }

    #[test]
    fn tenant_segments_are_matched_as_written() {
        let tenant = |path: &str| url_tenant(path).map(|tenant| tenant.0);
        assert_eq!(tenant("/t/b/oauth/token"), Some("b".to_owned()));
        assert_eq!(tenant("/t/acme-eu/oauth/token"), Some("acme-eu".to_owned()));
        for odd in [
            "/t/%62/oauth/token",
            "/t/B/oauth/token",
            "/t//oauth/token",
            "/t/a%2F/oauth/token",
            "/t/a/b/oauth/token",
            "/t/../oauth/token",
            "/oauth/token",
        ] {
            assert_eq!(tenant(odd), None, "{odd}");
        }
    }

    #[test]
    fn one_method_only() {
        assert!(credentials(&basic("a:b"), Some("a"), Some("b")).is_err());
        assert!(credentials(&basic("a:b"), None, Some("b")).is_err());
        assert!(credentials(&HeaderMap::new(), Some("a"), None).is_err());
        assert!(credentials(&HeaderMap::new(), Some("a"), Some("b")).is_ok_and(|c| !c.basic));
    }

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_omitted() {
        assert!(parse_form(b"grant_type=a&grant_type=b").is_err());
        let form = parse_form(b"grant_type=client_credentials&scope=").unwrap_or_default();
        assert_eq!(form.len(), 1);
    }
}
