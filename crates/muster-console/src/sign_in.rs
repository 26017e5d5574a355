//! `GET/POST /admin/sign-in` and `POST /admin/sign-out`.
//!
//! An administrator signs in with a credential of the URL's tenant holding
//! the `admin` scope: a bearer token (verified as every API request is,
//! [`muster_server::auth::client_for_secret`]) or an OAuth client id and
//! secret (verified as the token endpoint does, under its admission
//! limits, [`muster_core::clients::verify_client_secret`]). Every refusal
//! reads the same, so the page tells nobody what exists.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use muster_core::clients::{find_client, verify_client_secret, GrantError, GrantOutcome};
use muster_core::tokens::{Client, SCOPE_ADMIN};
use muster_server::AppState;
use muster_store::TenantId;
use serde::Deserialize;

use crate::layout::{bare_page, html_response, notice, PageError, PageResult};
use crate::session::{self, base_for, check_same_origin, Admin, CsrfForm, SignInThrottle};

/// The one answer to a credential that does not sign in.
const REFUSED: &str =
    "Sign-in failed: the credential is unknown, revoked, of another tenant, or lacks the admin scope.";

/// The sign-in form's fields.
#[derive(Deserialize, Default)]
struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    next: String,
}

/// The query of the sign-in page.
#[derive(Deserialize, Default)]
struct SignInQuery {
    #[serde(default)]
    next: String,
}

fn sign_in_page(tenant: &TenantId, next: &str, problem: Option<&str>) -> Markup {
    let action = format!("{}/sign-in", base_for(tenant));
    bare_page(
        "Sign in",
        html! {
            @if let Some(problem) = problem {
                (notice("error", html! { (problem) }))
            }
            p { "Sign in to tenant " strong data-test="tenant" { (tenant.0) } " with a credential that holds the " code { "admin" } " scope." }
            form.stack method="post" action=(action) id="sign-in-token" {
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="token" { "Admin token" }
                    span.hint id="token-hint" { "A bearer token from " code { "muster token create --scope admin" } "." }
                    input id="token" name="token" type="password" autocomplete="off" aria-describedby="token-hint";
                }
                div { button type="submit" id="sign-in-with-token" { "Sign in with token" } }
            }
            h2 { "Or with an OAuth client" }
            form.stack method="post" action=(action) id="sign-in-client" {
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="client_id" { "Client id" }
                    input id="client_id" name="client_id" type="text" autocomplete="username";
                }
                div.field {
                    label for="client_secret" { "Client secret" }
                    input id="client_secret" name="client_secret" type="password" autocomplete="current-password";
                }
                div { button type="submit" id="sign-in-with-client" { "Sign in with client" } }
            }
        },
    )
}

/// `GET /admin/sign-in`.
async fn show(request_tenant: RequestTenant, Query(query): Query<SignInQuery>) -> Response {
    let next = safe_next(&request_tenant.0, &query.next);
    html_response(StatusCode::OK, sign_in_page(&request_tenant.0, &next, None))
}

/// The URL's tenant, for pages without a session.
struct RequestTenant(TenantId);

impl axum::extract::FromRequestParts<AppState> for RequestTenant {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestTenant(session::url_tenant(parts)))
    }
}

/// Where to go after signing in: a console page of the tenant, else the
/// dashboard (never another site, nothing a `Location` header cannot
/// carry).
fn safe_next(tenant: &TenantId, next: &str) -> String {
    let base = base_for(tenant);
    let inside = next
        .strip_prefix(&base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'));
    if inside
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("..")
        && !next.contains("/sign-")
        && !next.chars().any(char::is_control)
    {
        next.to_owned()
    } else {
        base
    }
}

/// `POST /admin/sign-in`.
async fn sign_in(
    State(state): State<AppState>,
    Extension(throttle): Extension<SignInThrottle>,
    request_tenant: RequestTenant,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<SignInForm>,
) -> PageResult {
    let tenant = request_tenant.0;
    check_same_origin(&headers, &state)?;
    let next = safe_next(&tenant, &form.next);
    // Past the limit of failures, client secrets (argon2, costly) are not
    // verified at all; admin tokens still are (a hash lookup, as every API
    // request does), so a flood of wrong guesses cannot lock the tenant's
    // admins out of the console.
    let wait = throttle.wait(&tenant);
    let signed_in = match (
        form.token.trim(),
        form.client_id.trim(),
        form.client_secret.as_str(),
    ) {
        (token, "", "") if !token.is_empty() => with_token(&state, &tenant, token).await?,
        ("", client_id, secret) if !client_id.is_empty() && !secret.is_empty() => {
            if let Some(wait) = wait {
                return Ok(throttled(&tenant, &next, wait));
            }
            with_client(&state, &tenant, client_id, secret).await?
        }
        _ => {
            return Ok(html_response(
                StatusCode::BAD_REQUEST,
                sign_in_page(
                    &tenant,
                    &next,
                    Some("Enter an admin token, or a client id and its secret."),
                ),
            ))
        }
    };
    let Some(actor) = signed_in else {
        if let Some(wait) = wait {
            return Ok(throttled(&tenant, &next, wait));
        }
        throttle.failed(&tenant);
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            sign_in_page(&tenant, &next, Some(REFUSED)),
        ));
    };
    tracing::info!(client = %actor, tenant = %tenant.0, "console sign-in");
    session::start(
        &state,
        &headers,
        &tenant,
        &actor,
        Redirect::to(&next).into_response(),
    )
    .await
}

/// The answer to a sign-in refused while the tenant's failures are over
/// their limit.
fn throttled(tenant: &TenantId, next: &str, wait: std::time::Duration) -> Response {
    let mut response = html_response(
        StatusCode::TOO_MANY_REQUESTS,
        sign_in_page(
            tenant,
            next,
            Some("Too many failed sign-ins at this tenant: wait a minute and try again."),
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The name of the admin token of `tenant` that `secret` is, if it is one.
async fn with_token(
    state: &AppState,
    tenant: &TenantId,
    secret: &str,
) -> Result<Option<String>, PageError> {
    let client: Option<Client> = muster_server::auth::client_for_secret(state, secret)
        .await
        .ok();
    Ok(client
        .filter(|client| client.tenant == *tenant && client.allows(SCOPE_ADMIN))
        .map(|client| client.name))
}

/// The name of the OAuth client of `tenant` that `client_id` and `secret`
/// authenticate, if it holds the admin scope.
async fn with_client(
    state: &AppState,
    tenant: &TenantId,
    client_id: &str,
    secret: &str,
) -> Result<Option<String>, PageError> {
    let Some((_, client)) = find_client(state.store(), client_id, Some(tenant)).await? else {
        return Ok(None);
    };
    match verify_client_secret(&client, secret).await {
        Ok(_) => Ok(client
            .scopes
            .iter()
            .any(|scope| scope == SCOPE_ADMIN)
            .then_some(client.name)),
        Err(GrantOutcome::Refused(GrantError::Busy)) => Err(PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins are being verified; try again in a second",
        )),
        Err(GrantOutcome::Refused(_)) => Ok(None),
        Err(GrantOutcome::Failed(error)) => Err(error.into()),
    }
}

/// What sign-out posts: only its CSRF token.
#[derive(Deserialize)]
struct Empty {}

/// `POST /admin/sign-out`: ends the session, back to the sign-in page.
async fn sign_out(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> PageResult {
    tracing::info!(client = %admin.actor.client, tenant = %admin.tenant.0, "console sign-out");
    session::end(
        &state,
        &headers,
        Redirect::to(&admin.link("/sign-in")).into_response(),
    )
    .await
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/sign-in", get(show).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
}
