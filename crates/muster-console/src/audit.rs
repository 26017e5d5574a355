//! `/admin/audit`: the audit trail filtered by user, client and time, each
//! entry with its attribute-level before and after ([`muster_core::audit`],
//! the procedures of `GET /admin/v1/audit`); the chain's verification; an
//! export as JSON Lines.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;
use muster_core::audit::{export as audit_export, query, verify, AuditFilter};
use muster_server::AppState;
use serde::Deserialize;

use crate::layout::{html_response, notice, ok, page_at, PageError, PageResult};
use crate::session::Admin;
use crate::users::audit_entries_table;

/// Entries shown per page.
pub const PAGE_SIZE: u64 = 100;

/// The filter form's fields (all optional).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct AuditForm {
    user: String,
    client: String,
    since: String,
    until: String,
    cursor: String,
}

/// A browser's `datetime-local` value (`2026-01-31T08:00`) read as UTC;
/// anything else as given (checked by [`muster_core::audit::query`]).
fn instant(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let local = text.len() == 16 && text.as_bytes().get(10) == Some(&b'T') && !text.contains('Z');
    Some(if local {
        format!("{text}:00Z")
    } else {
        text.to_owned()
    })
}

impl AuditForm {
    fn filter(&self, count: u64) -> AuditFilter {
        let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        AuditFilter {
            user: text(&self.user),
            client: text(&self.client),
            since: instant(&self.since),
            until: instant(&self.until),
            cursor: text(&self.cursor),
            count,
        }
    }

    /// The query string of this filter (without the cursor), plus `extra`.
    fn query_string(&self, extra: &[(&str, &str)]) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("user", &self.user),
            ("client", &self.client),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                serializer.append_pair(name, value.trim());
            }
        }
        serializer.extend_pairs(extra.iter());
        serializer.finish()
    }
}

/// `GET /admin/audit?user=&client=&since=&until=&cursor=`.
async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    Query(form): Query<AuditForm>,
) -> PageResult {
    let page = query(state.store(), &admin.tenant, &form.filter(PAGE_SIZE)).await;
    let (entries, next, problem) = match page {
        Ok(page) => (page.entries, page.next_cursor, None),
        Err(error) => {
            let error = PageError::from(error);
            if error.status().is_server_error() {
                return Err(error);
            }
            (Vec::new(), None, Some(error))
        }
    };
    let field = |id: &str, name: &str, label: &str, value: &str, hint: &str| {
        html! {
            div.field {
                label for=(id) { (label) }
                @if !hint.is_empty() { span.hint id={(id) "-hint"} { (hint) } }
                input id=(id) name=(name) type="text" value=(value) aria-describedby=[(!hint.is_empty()).then(|| format!("{id}-hint"))];
            }
        }
    };
    let body = html! {
        form.inline method="get" action=(admin.link("/audit")) id="audit-filter-form" {
            (field("audit-user", "user", "User", &form.user, "id or userName"))
            (field("audit-client", "client", "Client", &form.client, "token or client name"))
            (field("audit-since", "since", "Since", &form.since, "UTC, e.g. 2026-01-31T08:00:00Z"))
            (field("audit-until", "until", "Until", &form.until, "UTC, before this instant"))
            button type="submit" id="audit-filter" { "Filter" }
        }
        p {
            a href={(admin.link("/audit/export")) "?" (form.query_string(&[]))} id="audit-export" download { "Export these entries as JSON Lines" }
        }
        div id="chain" hx-get={(admin.link("/audit/verify")) "?fragment=true"} hx-trigger="load" hx-swap="innerHTML" {
            p { a href=(admin.link("/audit/verify")) id="audit-verify" { "Verify the chain" } }
        }
        @if let Some(problem) = &problem {
            (notice("error", html! { (problem.detail()) }))
        }
        p.hint { "Oldest first, in the order of the tenant's hash chain; " (PAGE_SIZE) " entries a page." }
        @if entries.is_empty() && problem.is_none() {
            p data-test="no-entries" { "No entries match." }
        } @else {
            (audit_entries_table(entries.iter(), "audit"))
        }
        @if let Some(cursor) = &next {
            nav.pager aria-label="Pages" {
                a rel="next" href={(admin.link("/audit")) "?" (form.query_string(&[("cursor", cursor)]))} data-test="next" { "Next entries" }
            }
        }
    };
    let status = match &problem {
        Some(problem) => problem.status(),
        None => StatusCode::OK,
    };
    Ok(html_response(
        status,
        page_at(&admin, "/audit", "Audit trail", body),
    ))
}

/// `?fragment=true`: only the verdict, for the audit page to load in place.
#[derive(Deserialize, Default)]
#[serde(default)]
struct VerifyQuery {
    fragment: bool,
}

/// `GET /admin/audit/verify`: the whole chain checked (every entry is
/// read, so the audit page loads it after itself).
async fn verify_chain(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<VerifyQuery>,
) -> PageResult {
    let verdict = verify(state.store(), &admin.tenant).await?;
    let body = match verdict {
        Ok((entries, head)) => html! {
            (notice("ok", html! { span id="chain-status" data-status="intact" {
                "The chain is intact: " (entries) " entries verified." } }))
            p { "Head hash: " code data-test="chain-head" { (head) } }
        },
        Err(broken) => html! {
            (notice("error", html! { span id="chain-status" data-status="broken" {
                "The chain is broken: " (broken.to_string()) } }))
        },
    };
    if query.fragment {
        return Ok(html_response(StatusCode::OK, body));
    }
    ok(page_at(
        &admin,
        "/audit",
        "Audit chain verification",
        html! { (body) p { a href=(admin.link("/audit")) { "Back to the audit trail" } } },
    ))
}

/// `GET /admin/audit/export?user=&client=&since=&until=`: every matching
/// entry, one JSON object a line, as a download.
async fn export(
    State(state): State<AppState>,
    admin: Admin,
    Query(form): Query<AuditForm>,
) -> Result<Response, PageError> {
    let mut lines = Vec::new();
    let filter = AuditForm {
        cursor: String::new(),
        ..form
    }
    .filter(muster_core::audit::MAX_PAGE);
    audit_export(state.store(), &admin.tenant, &filter, |entry| {
        lines.extend_from_slice(entry.to_string().as_bytes());
        lines.push(b'\n');
        Ok(())
    })
    .await?;
    let mut response = lines.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"muster-audit-{}.jsonl\"",
        admin.tenant.0
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(audit))
        .route("/admin/audit/verify", get(verify_chain))
        .route("/admin/audit/export", get(export))
}
