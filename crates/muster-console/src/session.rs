//! Console sessions: signing in with an admin credential, the [`Admin`]
//! extractor every page takes, and [`CsrfForm`], the extractor of every
//! form a page posts.
//!
//! A session is a row of the store ([`muster_store::console`]): the cookie
//! carries 256 random bits, the store only their SHA-256, with the tenant,
//! the credential's name (the client of the changes the session makes) and
//! the session's CSRF token. The cookie is `HttpOnly; SameSite=Strict;
//! Path=/`, plus `Secure` when the public URL is `https` (or a trusted
//! proxy says the request came over TLS). A session ends after
//! [`IDLE_LIFETIME`] unused, after [`ABSOLUTE_LIFETIME`] whatever, on
//! sign-out, or once the credential it signed in with is revoked (checked
//! on every request).
//!
//! Every `POST` is checked twice: its hidden `csrf` field must equal the
//! session's token, and the browser must say the form came from this
//! origin (`Sec-Fetch-Site: same-origin`, and an `Origin` naming this
//! server). Either refusal is a `403` page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::{html, Markup};
use muster_core::clients::unix_now_millis;
use muster_core::matching::MatchPolicy;
use muster_core::tokens::{Client, SCOPE_ADMIN};
use muster_server::tenants::UrlTenant;
use muster_server::AppState;
use muster_store::console::{ConsoleSession, SessionLifetime};
use muster_store::{Actor, TenantId};
use rand::RngCore;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::layout::PageError;

/// The session cookie's name.
pub const COOKIE: &str = "muster_console";

/// The name of the hidden field carrying the CSRF token in every form.
pub const CSRF_FIELD: &str = "csrf";

/// Unused this long, a session ends.
pub const IDLE_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// This long after sign-in, a session ends however busy.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The largest form body a page accepts.
pub const MAX_FORM_BYTES: usize = 1024 * 1024;

/// Failed sign-ins allowed per tenant per minute (burst: as many) before
/// sign-ins at that tenant are refused for a while.
pub const FAILED_SIGN_INS_PER_MINUTE: u32 = 20;

/// The lifetime the store applies.
pub(crate) fn lifetime() -> SessionLifetime {
    let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    SessionLifetime {
        idle_millis: millis(IDLE_LIFETIME),
        absolute_millis: millis(ABSOLUTE_LIFETIME),
    }
}

/// The signed-in administrator of a request, in the tenant of the URL.
///
/// Extracting it from a request without a live session of the URL's tenant
/// answers `303 See Other` to the sign-in page (with `next` set to the page
/// asked for).
#[derive(Debug, Clone)]
pub struct Admin {
    /// The tenant administered (the URL's).
    pub tenant: TenantId,
    /// Who the changes of this request are recorded as: the credential's
    /// name and the request id.
    pub actor: Actor,
    /// The session's CSRF token (put it in forms with [`csrf_field`]).
    pub csrf: String,
    /// The console's URL prefix: `/admin`, or `/t/{tenant}/admin`. Every
    /// link a page makes starts with it.
    pub base: String,
    /// The credential as the admin API's handlers see it (`admin` scope), for
    /// calling the procedures they call.
    pub client: Client,
    /// The tenant's absolute SCIM base URL (for `meta.location`).
    pub scim_base: String,
}

impl Admin {
    /// A link below the console's prefix: `admin.link("/users")`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `muster-core` session of this administrator, for procedures that
    /// take one.
    pub async fn session<'s>(
        &self,
        state: &'s AppState,
    ) -> Result<muster_core::Session<'s>, PageError> {
        Ok(state
            .service
            .session(
                self.tenant.clone(),
                self.actor.clone(),
                self.scim_base.clone(),
            )
            .await?)
    }
}

/// The console's URL prefix for `tenant`.
pub fn base_for(tenant: &TenantId) -> String {
    if *tenant == TenantId::default_tenant() {
        "/admin".to_owned()
    } else {
        format!("/t/{}/admin", tenant.0)
    }
}

/// The tenant of a request's URL (`/t/{tenant}/admin/...`), else `default`.
pub(crate) fn url_tenant(parts: &Parts) -> TenantId {
    parts
        .extensions
        .get::<UrlTenant>()
        .map_or_else(TenantId::default_tenant, |url| url.0.clone())
}

/// The hidden CSRF field every form of a page carries.
pub fn csrf_field(admin: &Admin) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(admin.csrf); }
}

/// The hex SHA-256 of a cookie value: what the store keeps.
fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// 256 random bits, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of the session cookie a request carries.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Where an unauthenticated request is sent: the sign-in page, with the
/// page it asked for (a path of the console only).
fn to_sign_in(parts: &Parts, base: &str) -> Response {
    let asked = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
    let next = asked
        .path_and_query()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let target = if parts.method == axum::http::Method::GET && next.starts_with(base) {
        format!(
            "{base}/sign-in?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )
    } else {
        format!("{base}/sign-in")
    };
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(admin) = parts.extensions.get::<Admin>() {
            return Ok(admin.clone());
        }
        let tenant = url_tenant(parts);
        let base = base_for(&tenant);
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(to_sign_in(parts, &base));
        };
        let found = state
            .store()
            .touch_console_session(&hash(&cookie), unix_now_millis(), lifetime())
            .await
            .map_err(|error| PageError::from(error).into_response())?;
        let Some(session) = found.filter(|session| session.tenant == tenant) else {
            return Err(to_sign_in(parts, &base));
        };
        if !credential_holds_admin(state, &tenant, &session.actor)
            .await
            .map_err(IntoResponse::into_response)?
        {
            // Its credential was revoked (or lost the scope): so is the session.
            state
                .store()
                .delete_console_session(&session.id_hash)
                .await
                .map_err(|error| PageError::from(error).into_response())?;
            return Err(to_sign_in(parts, &base));
        }
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let admin = Admin {
            actor: Actor {
                client: session.actor.clone(),
                request_id,
            },
            csrf: session.csrf,
            base,
            client: Client {
                name: session.actor,
                tenant: tenant.clone(),
                scopes: vec![SCOPE_ADMIN.to_owned()],
                matching: MatchPolicy::none(),
                rate_limit: None,
            },
            scim_base: state.scim_base(&parts.headers, &tenant),
            tenant,
        };
        parts.extensions.insert(admin.clone());
        Ok(admin)
    }
}

/// Whether `tenant` still has a bearer token or an OAuth client named
/// `name` holding the `admin` scope: a session lives no longer than the
/// credential it signed in with.
async fn credential_holds_admin(
    state: &AppState,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, PageError> {
    let admin = |scopes: &[String]| scopes.iter().any(|scope| scope == SCOPE_ADMIN);
    let store = state.store();
    if store
        .list_tokens(tenant)
        .await?
        .iter()
        .any(|token| token.name == name && admin(&token.scopes))
    {
        return Ok(true);
    }
    Ok(store
        .list_clients(tenant)
        .await?
        .iter()
        .any(|client| client.name == name && admin(&client.scopes)))
}

/// A form posted by a page of a signed-in administrator, its CSRF token
/// and origin checked (see the module documentation), deserialised into
/// `T` (which must ignore the `csrf` field: no `deny_unknown_fields`; take
/// `Vec<(String, String)>` for repeated fields).
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        check_same_origin(&parts.headers, state).map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the form is larger than {MAX_FORM_BYTES} bytes"),
                )
                .into_response()
            })?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        if token.as_deref() != Some(admin.csrf.as_str()) {
            return Err(PageError::forbidden(
                "this form's security token is missing or out of date: reload the page and try again",
            )
            .into_response());
        }
        let value = form_value(&bytes).map_err(IntoResponse::into_response)?;
        Ok(CsrfForm(value))
    }
}

/// Deserialises a form body, naming the problem when a field is wrong.
fn form_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PageError> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|error| PageError::bad_request(format!("the form cannot be read: {error}")))
}

/// Refuses a `POST` the browser does not say came from this origin:
/// `Sec-Fetch-Site` other than `same-origin`, an `Origin` naming another
/// origin (or `null`), or neither header.
pub(crate) fn check_same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), PageError> {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let refused = || {
        PageError::forbidden(
            "this form was sent from another site; open the console and send it from there",
        )
    };
    let fetch_site = header(header::HeaderName::from_static("sec-fetch-site"));
    if let Some(site) = fetch_site {
        if site != "same-origin" {
            return Err(refused());
        }
    }
    match header(header::ORIGIN) {
        Some(origin) => {
            if own_origins(headers, state)
                .iter()
                .any(|own| own.eq_ignore_ascii_case(origin))
            {
                Ok(())
            } else {
                Err(refused())
            }
        }
        None if fetch_site.is_some() => Ok(()),
        None => Err(refused()),
    }
}

/// The origins this server is reached at: the public URL's when one is
/// configured, else `http(s)://` and the `Host` (or, behind a trusted
/// proxy, the forwarded host).
fn own_origins(headers: &HeaderMap, state: &AppState) -> Vec<String> {
    if let Some(public) = &state.config.public_url {
        if let Ok(url) = url::Url::parse(public) {
            return vec![url.origin().ascii_serialization()];
        }
    }
    let mut hosts: Vec<&str> = Vec::new();
    if state.config.trust_proxy_headers {
        if let Some(host) = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
        {
            hosts.push(host.split(',').next().unwrap_or_default().trim());
        }
    }
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        hosts.push(host);
    }
    hosts
        .iter()
        .flat_map(|host| [format!("http://{host}"), format!("https://{host}")])
        .collect()
}

/// Whether the session cookie must be `Secure`: the public URL is
/// `https`, or a trusted proxy says the request came over TLS.
fn secure(headers: &HeaderMap, state: &AppState) -> bool {
    if let Some(public) = &state.config.public_url {
        return public.starts_with("https://");
    }
    state.config.trust_proxy_headers
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a session cookie (`None`: one that deletes
/// it).
fn cookie_header(value: Option<&str>, secure: bool) -> Option<HeaderValue> {
    let flags = if secure {
        "HttpOnly; SameSite=Strict; Path=/; Secure"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    };
    let text = match value {
        Some(value) => format!("{COOKIE}={value}; {flags}"),
        None => format!("{COOKIE}=; Max-Age=0; {flags}"),
    };
    HeaderValue::from_str(&text).ok()
}

/// Starts a session of `actor` in `tenant`: stores it, and answers with
/// `response` carrying its cookie.
pub(crate) async fn start(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    actor: &str,
    mut response: Response,
) -> Result<Response, PageError> {
    let value = random_token();
    let now = unix_now_millis();
    state
        .store()
        .create_console_session(
            ConsoleSession {
                id_hash: hash(&value),
                tenant: tenant.clone(),
                actor: actor.to_owned(),
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
            lifetime(),
        )
        .await?;
    if let Some(cookie) = cookie_header(Some(&value), secure(headers, state)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Ends the request's session, if any, and answers with `response`
/// deleting the cookie.
pub(crate) async fn end(
    state: &AppState,
    headers: &HeaderMap,
    mut response: Response,
) -> Result<Response, PageError> {
    if let Some(cookie) = session_cookie(headers) {
        state.store().delete_console_session(&hash(&cookie)).await?;
    }
    if let Some(cookie) = cookie_header(None, secure(headers, state)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Failed sign-ins per tenant in the current minute, shared by every
/// request of the server: past [`FAILED_SIGN_INS_PER_MINUTE`], a tenant's
/// sign-ins are refused without looking at the credential until the minute
/// is over. (Secrets are 256 random bits and client secrets are verified
/// under the OAuth endpoint's admission limits; this keeps a guesser from
/// spending the server's time.)
#[derive(Clone, Default)]
pub(crate) struct SignInThrottle(Arc<Mutex<HashMap<TenantId, (Instant, u32)>>>);

impl SignInThrottle {
    /// The wait before `tenant` may try again, when it must.
    pub(crate) fn wait(&self, tenant: &TenantId) -> Option<Duration> {
        let failures = self.0.lock().ok()?;
        let (since, count) = failures.get(tenant)?;
        let left = Duration::from_secs(60).checked_sub(since.elapsed())?;
        (*count >= FAILED_SIGN_INS_PER_MINUTE).then_some(left)
    }

    /// Counts a failed sign-in at `tenant`.
    pub(crate) fn failed(&self, tenant: &TenantId) {
        if let Ok(mut failures) = self.0.lock() {
            if failures.len() > 10_000 {
                failures.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(60));
            }
            let entry = failures
                .entry(tenant.clone())
                .or_insert_with(|| (Instant::now(), 0));
            if entry.0.elapsed() >= Duration::from_secs(60) {
                *entry = (Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
    }
}
