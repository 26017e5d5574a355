//! The frame of every page ([`page`]), the error page ([`PageError`]),
//! and the small pieces pages share: pagers, notices, definition rows,
//! timestamps.
//!
//! Accessibility is built in here: `lang`, a skip link to `main`, one `h1`
//! per page (the title), a labelled navigation with `aria-current` on the
//! page's entry, and a sign-out form reachable by keyboard. Pages put
//! their sections under `h2`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::assets;
use crate::session::{csrf_field, Admin};

/// The entries of the navigation: path below the prefix, label.
const NAV: [(&str, &str); 9] = [
    ("", "Dashboard"),
    ("/users", "Users"),
    ("/mapping", "Mapping"),
    ("/schemas", "Schemas"),
    ("/rules", "Rules"),
    ("/targets", "Targets"),
    ("/audit", "Audit"),
    ("/clients", "Clients"),
    ("/tenants", "Tenants"),
];

/// The `<head>` of every page.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            // No inline styles from htmx: the CSP allows none.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
            title { (title) " · Muster" }
            link rel="stylesheet" href=(assets::url("console.css"));
            script src=(assets::url("htmx.min.js")) defer {}
        }
    }
}

/// A whole page for a signed-in administrator: navigation (the entry whose
/// path `title`'s page lives at is marked current by [`page_at`]), a skip
/// link, `<main id="main">` with `title` as its `h1`, then `body`.
pub fn page(admin: &Admin, title: &str, body: Markup) -> Markup {
    page_at(admin, "", title, body)
}

/// [`page`], marking the navigation entry of `section` (a path below the
/// prefix such as `/users`; `""` for the dashboard) as the current one.
pub fn page_at(admin: &Admin, section: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(admin.link("")) { "Muster" }
                    span.tenant data-test="tenant" { "Tenant " strong { (admin.tenant.0) } }
                    nav aria-label="Console" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    @if path == section {
                                        a href=(admin.link(path)) aria-current="page" data-test={"nav" (path.replace('/', "-"))} { (label) }
                                    } @else {
                                        a href=(admin.link(path)) data-test={"nav" (path.replace('/', "-"))} { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.sign-out method="post" action=(admin.link("/sign-out")) {
                        (csrf_field(admin))
                        span { "Signed in as " strong data-test="actor" { (admin.actor.client) } }
                        button type="submit" id="sign-out" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside a session (sign-in, errors): no navigation.
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top { span.brand { "Muster" } }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML response that no cache keeps (pages show live, per-session data).
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A page's failure, answered as an error page naming what went wrong.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    detail: String,
}

impl PageError {
    /// An error with `status` and a detail the administrator can act on.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        PageError {
            status,
            detail: detail.into(),
        }
    }

    /// `404`, naming what does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// `400`, naming the field and what was expected.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// `403`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The detail shown.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<muster_core::Error> for PageError {
    fn from(error: muster_core::Error) -> Self {
        // into_scim logs a server-side failure's cause and keeps it out of
        // the detail.
        let scim = error.into_scim();
        PageError::new(
            StatusCode::from_u16(scim.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            scim.detail,
        )
    }
}

impl From<muster_store::StoreError> for PageError {
    fn from(error: muster_store::StoreError) -> Self {
        muster_core::Error::from(error).into()
    }
}

impl From<muster_scim::ScimError> for PageError {
    fn from(error: muster_scim::ScimError) -> Self {
        PageError::new(
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error.detail,
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.status, &self.detail)
    }
}

/// The error page: the status's reason as the title, `detail` below.
pub fn error_page(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html_response(
        status,
        bare_page(
            title,
            html! {
                p.notice.error role="alert" data-test="error" { (detail) }
                p { "Use your browser's Back button to return to the page you were on." }
            },
        ),
    )
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// A `200` page response for a signed-in administrator.
pub fn ok(markup: Markup) -> PageResult {
    Ok(html_response(StatusCode::OK, markup))
}

/// A notice above a page's content: `kind` is `"ok"`, `"warn"` or
/// `"error"` (the role is `status`, or `alert` for errors).
pub fn notice(kind: &str, text: Markup) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { div class={"notice " (kind)} role=(role) data-test="notice" { (text) } }
}

/// A pager for a list of `total` items shown `count` at a time from
/// `start` (1-based, as SCIM's `startIndex`): "items a–b of total" and
/// previous / next links made by `link(start)`.
pub fn pager(start: usize, count: usize, total: usize, link: impl Fn(usize) -> String) -> Markup {
    let count = count.max(1);
    let last = total.min(start.saturating_add(count).saturating_sub(1));
    html! {
        nav.pager aria-label="Pages" data-test="pager" {
            @if total == 0 {
                span { "No results" }
            } @else {
                span data-test="range" { (start) "–" (last) " of " (total) }
            }
            @if start > 1 {
                a rel="prev" href=(link(start.saturating_sub(count).max(1))) data-test="prev" { "Previous" }
            }
            @if last < total {
                a rel="next" href=(link(last.saturating_add(1))) data-test="next" { "Next" }
            }
        }
    }
}

/// A timestamp as a `<time>` element.
pub fn time_element(text: &str) -> Markup {
    html! { time datetime=(text) { (text) } }
}

/// A JSON value shown compactly (strings without quotes).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A copy-to-clipboard button for the text of the element `target_id`
/// (works without JavaScript as a selectable text; the button enhances).
pub fn copy_button(target_id: &str) -> Markup {
    html! {
        button type="button" class="copy" data-copy=(target_id) data-test={"copy-" (target_id)} {
            "Copy"
        }
    }
}
