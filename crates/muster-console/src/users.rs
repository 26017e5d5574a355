//! `/admin/users`: searching users (a SCIM filter or free text, paged by
//! the store), and a user's page: every attribute by schema with who set it
//! and when (from the audit trail), its entitlements and why, what each
//! target holds for it, its change history, and the actions provision on
//! demand (dry run first), offboard and unlock.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use muster_core::audit::{query as audit_query, AuditFilter, MAX_PAGE};
use muster_core::offboard::{hide_lock, lock_of};
use muster_scim::message::SearchRequest;
use muster_scim::{remove_never_returned, Filter};
use muster_server::AppState;
use muster_store::{ResourceId, StoreError};
use serde::Deserialize;
use serde_json::Value;

use crate::data::targets;
use crate::layout::{notice, ok, page_at, pager, time_element, value_text, PageError, PageResult};
use crate::session::{csrf_field, Admin, CsrfForm};

/// Users shown per page.
pub const PAGE_SIZE: u64 = 25;

/// Most change-history entries shown on a user's page.
const HISTORY_SHOWN: usize = 20;

/// The core User schema: its attributes sit at the top of a resource.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The query of the user list.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    /// A SCIM filter, or free text.
    q: String,
    /// 1-based index of the first user shown.
    start: Option<u64>,
    /// `userName` to sort by it; absent: the store's order (creation), which
    /// costs no sort of every match.
    sort: Option<String>,
}

/// The SCIM filter a search box text means: the text itself when it parses
/// as a filter, else a free-text match on names and emails.
pub fn search_filter(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if Filter::parse(text).is_ok() {
        return Some(text.to_owned());
    }
    let quoted = serde_json::to_string(text).unwrap_or_default();
    Some(
        [
            "userName",
            "displayName",
            "name.formatted",
            "emails.value",
            "externalId",
        ]
        .iter()
        .map(|path| format!("{path} co {quoted}"))
        .collect::<Vec<_>>()
        .join(" or "),
    )
}

/// `GET /admin/users?q=&start=`.
async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let session = admin.session(&state).await?;
    let users = session.resource_type("Users")?;
    let start = query.start.unwrap_or(1).max(1);
    let by_name = match query.sort.as_deref() {
        None | Some("") => false,
        Some("userName") => true,
        Some(other) => {
            return Err(PageError::bad_request(format!(
                "sort: '{other}' is not a sort order; expected userName or nothing"
            )))
        }
    };
    let filter = search_filter(&query.q);
    let request = SearchRequest {
        filter: filter.clone(),
        start_index: Some(start),
        count: Some(PAGE_SIZE),
        sort_by: by_name.then(|| "userName".to_owned()),
        attributes: [
            "userName",
            "displayName",
            "name",
            "emails",
            "active",
            "externalId",
        ]
        .iter()
        .map(|name| (*name).to_owned())
        .collect(),
        ..SearchRequest::default()
    };
    let found = session.search(&users, request).await;
    let (listed, problem) = match found {
        Ok(listed) => (listed, None),
        // A filter that reads like one but is refused: say why, show none.
        Err(error) => {
            let error = PageError::from(error);
            if error.status().is_server_error() {
                return Err(error);
            }
            (Value::Null, Some(error.detail().to_owned()))
        }
    };
    let total = listed
        .get("totalResults")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let resources = listed
        .get("Resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let q = query.q.clone();
    let base = admin.link("/users");
    let link = move |start: usize, by_name: bool| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        serializer.append_pair("q", &q);
        if by_name {
            serializer.append_pair("sort", "userName");
        }
        serializer.append_pair("start", &start.to_string());
        format!("{base}?{}", serializer.finish())
    };
    let body = html! {
        form.inline role="search" method="get" action=(admin.link("/users")) id="user-search-form" {
            div.field {
                label for="user-search" { "Search users" }
                span.hint id="user-search-hint" {
                    "A SCIM filter such as " code { "userName sw \"j\"" } " or " code { "active eq false" }
                    ", or any text to find in names, emails and external ids."
                }
                input id="user-search" name="q" type="search" value=(query.q) aria-describedby="user-search-hint" size="48";
                @if by_name { input type="hidden" name="sort" value="userName"; }
            }
            button type="submit" id="user-search-submit" { "Search" }
        }
        @if let Some(problem) = &problem {
            (notice("error", html! { "The filter was refused: " (problem) }))
        }
        @if let Some(filter) = &filter {
            p.hint data-test="filter-used" { "Filter: " code { (filter) } }
        }
        (pager(usize::try_from(start).unwrap_or(1), usize::try_from(PAGE_SIZE).unwrap_or(25), usize::try_from(total).unwrap_or(0), |start| link(start, by_name)))
        div.table-wrap {
            table id="users" {
                caption.hint { @if by_name { "Users, by userName" } @else { "Users, in the order they were created" } }
                thead { tr {
                    th scope="col" {
                        @if by_name { "userName" } @else {
                            a href=(link(1, true)) id="sort-by-user-name" { "userName" span.visually-hidden { " (sort by it)" } }
                        }
                    }
                    th scope="col" { "Display name" }
                    th scope="col" { "Email" }
                    th scope="col" { "Active" }
                    th scope="col" { "External id" }
                } }
                tbody {
                    @for user in &resources {
                        @let id = user.get("id").and_then(Value::as_str).unwrap_or_default();
                        tr data-test="user-row" {
                            th scope="row" {
                                a href=(admin.link(&format!("/users/{}", url_segment(id)))) data-test="user-link" {
                                    (user.get("userName").map(value_text).unwrap_or_default())
                                }
                            }
                            td { (display_name(user)) }
                            td { (primary_email(user)) }
                            td { (active_text(user)) }
                            td { (user.get("externalId").map(value_text).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    };
    ok(page_at(&admin, "/users", "Users", body))
}

/// A path segment, percent-encoded.
pub fn url_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn display_name(user: &Value) -> String {
    user.get("displayName")
        .or_else(|| user.pointer("/name/formatted"))
        .map(value_text)
        .unwrap_or_default()
}

fn primary_email(user: &Value) -> String {
    let emails = user
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    emails
        .iter()
        .find(|email| email.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|email| email.get("value"))
        .map(value_text)
        .unwrap_or_default()
}

fn active_text(user: &Value) -> &'static str {
    match user.get("active").and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "—",
    }
}

/// Who last set an attribute, and when.
struct SetBy {
    client: String,
    at: String,
}

/// The schema and top-level attribute a change path is about:
/// `urn:...:User:department` → (that URN, `department`); `name.givenName`
/// → (core, `name`).
fn attribute_of(path: &str) -> (String, String) {
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("urn:") {
        if let Some((urn, attribute)) = path.rsplit_once(':') {
            let top = attribute
                .split(['.', '['])
                .next()
                .unwrap_or(attribute)
                .to_ascii_lowercase();
            return (urn.to_ascii_lowercase(), top);
        }
    }
    let top = path.split(['.', '[', ' ']).next().unwrap_or(path);
    (CORE_USER.to_ascii_lowercase(), top.to_ascii_lowercase())
}

/// Every audit entry of a user (up to [`MAX_PAGE`], oldest first).
async fn history(state: &AppState, admin: &Admin, id: &str) -> Result<Vec<Value>, PageError> {
    let page = audit_query(
        state.store(),
        &admin.tenant,
        &AuditFilter {
            user: Some(id.to_owned()),
            count: MAX_PAGE,
            ..AuditFilter::default()
        },
    )
    .await?;
    Ok(page.entries)
}

/// Who set each attribute last, by (schema, attribute), lowercase.
fn provenance(entries: &[Value]) -> HashMap<(String, String), SetBy> {
    let mut set_by = HashMap::new();
    for entry in entries {
        let client = entry.get("client").map(value_text).unwrap_or_default();
        let at = entry.get("at").map(value_text).unwrap_or_default();
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for change in changes {
            if let Some(path) = change.get("path").and_then(Value::as_str) {
                set_by.insert(
                    attribute_of(path),
                    SetBy {
                        client: client.clone(),
                        at: at.clone(),
                    },
                );
            }
        }
    }
    set_by
}

/// The attributes of a resource by schema: the core schema's first, then
/// each extension's.
fn by_schema(resource: &Value) -> Vec<(String, Vec<(String, Value)>)> {
    let mut core = Vec::new();
    let mut extensions = Vec::new();
    if let Some(object) = resource.as_object() {
        for (key, value) in object {
            // The id and meta are Muster's (shown above the table).
            if ["schemas", "meta", "id"]
                .iter()
                .any(|skipped| key.eq_ignore_ascii_case(skipped))
            {
                continue;
            }
            if key.to_ascii_lowercase().starts_with("urn:") {
                let attributes = value
                    .as_object()
                    .map(|fields| {
                        fields
                            .iter()
                            .map(|(name, value)| (name.clone(), value.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                extensions.push((key.clone(), attributes));
            } else {
                core.push((key.clone(), value.clone()));
            }
        }
    }
    let mut groups = vec![(CORE_USER.to_owned(), core)];
    groups.extend(extensions);
    groups
}

/// A value for a table cell: text, or compact JSON in `<code>`.
fn value_cell(value: &Value) -> Markup {
    match value {
        Value::String(text) => html! { (text) },
        Value::Bool(_) | Value::Number(_) | Value::Null => html! { (value.to_string()) },
        other => html! { code { (other.to_string()) } },
    }
}

/// `GET /admin/users/{id}`.
async fn user(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> PageResult {
    let session = admin.session(&state).await?;
    let users = session.resource_type("Users")?;
    let stored = match state
        .store()
        .get(&admin.tenant, &users.id, &ResourceId(id.clone()), true)
        .await
    {
        Ok(stored) => stored,
        Err(StoreError::NotFound(_)) => {
            return Err(PageError::not_found(format!(
                "no user with id '{id}' in this tenant"
            )))
        }
        Err(error) => return Err(error.into()),
    };
    let lock = lock_of(&stored.resource);
    let mut resource = stored.resource.clone();
    hide_lock(&mut resource);
    remove_never_returned(session.registry(), &users, &mut resource);
    let user_name = resource
        .get("userName")
        .map(value_text)
        .unwrap_or_else(|| id.clone());
    let entries = history(&state, &admin, &stored.id.0).await?;
    let set_by = provenance(&entries);
    let entitlements = entitlements(&state, &admin, &stored.id.0).await?;
    let deliveries = deliveries(&state, &admin, &stored.id).await?;
    let user_link = admin.link(&format!("/users/{}", url_segment(&stored.id.0)));
    let body = html! {
        dl.props data-test="summary" {
            dt { "id" } dd.mono data-test="user-id" { (stored.id.0) }
            dt { "Active" } dd data-test="active" { (active_text(&resource)) }
            dt { "Version" } dd { (stored.version) }
            @if let Some(created) = resource.pointer("/meta/created") {
                dt { "Created" } dd { (time_element(&value_text(created))) }
            }
            @if let Some(modified) = resource.pointer("/meta/lastModified") {
                dt { "Last modified" } dd { (time_element(&value_text(modified))) }
            }
            @if let Some(lock) = &lock {
                dt { "Offboarding lock" }
                dd data-test="lock" { "Locked by " (lock.locked_by) " at " (time_element(&lock.locked_at))
                    @if !lock.reason.is_empty() { ": " (lock.reason) } }
            }
        }
        section aria-labelledby="attributes-heading" id="attributes" {
            h2 id="attributes-heading" { "Attributes" }
            @for (schema, attributes) in by_schema(&resource) {
                h3 { code { (schema) } }
                div.table-wrap {
                    table data-test="attributes" data-schema=(schema) {
                        thead { tr {
                            th scope="col" { "Attribute" }
                            th scope="col" { "Value" }
                            th scope="col" { "Set by" }
                            th scope="col" { "When" }
                        } }
                        tbody {
                            @for (name, value) in &attributes {
                                @let who = set_by.get(&(schema.to_ascii_lowercase(), name.to_ascii_lowercase()));
                                tr data-test="attribute" data-attribute=(name) {
                                    th scope="row" { (name) }
                                    td { (value_cell(value)) }
                                    td data-test="set-by" { @if let Some(who) = who { (who.client) } @else { span.hint { (unattributed(&schema, name)) } } }
                                    td { @if let Some(who) = who { (time_element(&who.at)) } }
                                }
                            }
                        }
                    }
                }
            }
            @if !stored.unmapped.is_empty() {
                h3 { "Captured values no schema declares" }
                pre data-test="unmapped" { (serde_json::to_string_pretty(&stored.unmapped).unwrap_or_default()) }
            }
        }
        section aria-labelledby="entitlements-heading" id="entitlements" {
            h2 id="entitlements-heading" { "Entitlements" }
            (entitlements)
        }
        section aria-labelledby="targets-heading" id="targets" {
            h2 id="targets-heading" { "Targets" }
            (deliveries)
        }
        section aria-labelledby="history-heading" id="history" {
            h2 id="history-heading" { "Change history" }
            (history_table(&admin, &entries, &stored.id.0))
        }
        section aria-labelledby="actions-heading" id="actions" {
            h2 id="actions-heading" { "Actions" }
            form.stack method="post" action={(user_link) "/offboard"} id="offboard-form" {
                (csrf_field(&admin))
                div.field {
                    label for="offboard-reason" { "Reason for offboarding" }
                    span.hint id="offboard-hint" { "Deactivates and locks the user, then delivers it to every target now. Recorded in the audit trail." }
                    input id="offboard-reason" name="reason" type="text" maxlength="1000" aria-describedby="offboard-hint";
                }
                div {
                    input id="offboard-confirm" name="confirm" type="checkbox" value="yes" required;
                    " "
                    label.inline for="offboard-confirm" { "I confirm: offboard " (user_name) " now" }
                }
                div { button.danger type="submit" id="offboard" { "Offboard " (user_name) } }
            }
            @if lock.is_some() {
                form.inline method="post" action={(user_link) "/unlock"} id="unlock-form" {
                    (csrf_field(&admin))
                    button.secondary type="submit" id="unlock" { "Remove the offboarding lock" }
                }
            }
        }
    };
    ok(page_at(
        &admin,
        "/users",
        &format!("User {user_name}"),
        body,
    ))
}

/// The entitlement explanation of a user, or why there is none.
async fn entitlements(state: &AppState, admin: &Admin, id: &str) -> Result<Markup, PageError> {
    let explained = muster_core::rules::explain_user(state.store(), &admin.tenant, id).await;
    let (version, explanation) = match explained {
        Ok(explained) => explained,
        Err(error) => {
            let error = PageError::from(error);
            if error.status() == axum::http::StatusCode::NOT_FOUND {
                return Ok(notice("warn", html! { (error.detail()) }));
            }
            return Err(error);
        }
    };
    Ok(html! {
        p data-test="rule-set-version" {
            "Rule set version " (version.map(|v| v.to_string()).unwrap_or_default())
            @if !explanation.active { " · the user is inactive and holds no grants" }
            @if explanation.defaults_applied { " · no rule matched: the defaults apply" }
        }
        h3 { "Held" }
        @if explanation.held.is_empty() {
            p data-test="no-entitlements" { "None." }
        } @else {
            div.table-wrap { table id="entitlements-held" {
                thead { tr { th scope="col" { "Entitlement" } th scope="col" { "Rule" } th scope="col" { "Because" } } }
                tbody { @for held in &explanation.held {
                    tr data-test="entitlement" {
                        th scope="row" { (held.entitlement) }
                        td { code { (held.rule) } }
                        td { ul { @for evidence in &held.evidence {
                            li { code { (evidence.condition) } " — " (evidence.path) " = " (values_text(&evidence.values)) }
                        } } }
                    }
                } }
            } }
        }
        h3 { "Every rule" }
        div.table-wrap { table id="entitlement-rules" {
            thead { tr {
                th scope="col" { "Rule" } th scope="col" { "Matched" } th scope="col" { "Conditions" } th scope="col" { "Effects" }
            } }
            tbody { @for rule in &explanation.rules {
                tr data-test="rule-trace" data-rule=(rule.rule) {
                    th scope="row" { code { (rule.rule) } @if let Some(when) = &rule.when { br; span.hint { (when) } } }
                    td { @if rule.matched { span.status-ok { "yes" } } @else { span.status-warn { "no" } } }
                    td { ul { @for evidence in &rule.evidence {
                        li {
                            @if evidence.holds { "holds: " } @else { "fails: " }
                            code { (evidence.condition) } " saw " (values_text(&evidence.values))
                        }
                    } }
                    @if let Some(lookup) = &rule.lookup {
                        p { "Looked up " code { (lookup.key) } " = " (lookup.value.clone().unwrap_or_else(|| "(absent)".to_owned()))
                            " → " (lookup.row.clone().unwrap_or_else(|| "no row".to_owned())) }
                    } }
                    td { ul { @for effect in &rule.effects { li { (effect.entitlement) ": " (effect.outcome) } } } }
                }
            } }
        } }
    })
}

fn values_text(values: &[Value]) -> String {
    if values.is_empty() {
        "(absent)".to_owned()
    } else {
        values.iter().map(value_text).collect::<Vec<_>>().join(", ")
    }
}

/// What each target holds for the user, with provision on demand.
async fn deliveries(state: &AppState, admin: &Admin, id: &ResourceId) -> Result<Markup, PageError> {
    let Ok(targets) = targets(state) else {
        return Ok(notice(
            "warn",
            html! { "The sync engine is not enabled on this server." },
        ));
    };
    let views = targets.list(&admin.tenant).await?;
    if views.is_empty() {
        return Ok(
            html! { p { "No targets. " a href=(admin.link("/targets")) { "Add one" } "." } },
        );
    }
    let user_link = admin.link(&format!("/users/{}", url_segment(&id.0)));
    let mut rows = Vec::new();
    for view in &views {
        let name = view.document.name.clone();
        let explanation = targets
            .explain(&admin.tenant, &name, id)
            .await
            .map_err(PageError::from);
        rows.push((name, explanation));
    }
    Ok(html! {
        div.table-wrap { table id="user-targets" {
            thead { tr {
                th scope="col" { "Target" } th scope="col" { "In scope" } th scope="col" { "Delivered" }
                th scope="col" { "Answer" } th scope="col" { "Values sent" } th scope="col" { "Provision" }
            } }
            tbody { @for (name, explanation) in &rows {
                tr data-test="user-target" data-target=(name) {
                    th scope="row" { a href=(admin.link(&format!("/targets/{}", url_segment(name)))) { (name) } }
                    @match explanation {
                        Ok(explained) => {
                            td { @if explained.in_scope { "yes" } @else { "no" } }
                            td data-test="delivered" { @if let Some(at) = &explained.delivered { (time_element(at)) } @else { "never" }
                                @if explained.deprovisioned { br; span.status-warn { "deprovisioned" } } }
                            td data-test="answer" { @if let Some(status) = explained.status { (status) " " } (explained.answer.clone().unwrap_or_default()) }
                            td { details { summary { (explained.attributes.len()) " fields" }
                                ul { @for row in &explained.attributes {
                                    li { code { (row.target) } " = " (row.sent.as_ref().map(value_text).unwrap_or_else(|| "(not sent)".to_owned()))
                                        @if row.sent != row.value { " → now " (row.value.as_ref().map(value_text).unwrap_or_else(|| row.error.clone().unwrap_or_default())) } }
                                } }
                                a href=(admin.link(&format!("/mapping?target={}&user={}", url_segment(name), url_segment(&id.0)))) { "End-to-end mapping" }
                            } }
                        }
                        Err(error) => {
                            td colspan="4" { span.status-error { (error.detail()) } }
                        }
                    }
                    td {
                        form method="post" action={(user_link) "/provision"} {
                            (csrf_field(admin))
                            input type="hidden" name="target" value=(name);
                            input type="hidden" name="dry_run" value="true";
                            button.secondary type="submit" data-test={"provision-dry-run-" (name)} { "Dry run" span.visually-hidden { " for " (name) } }
                        }
                    }
                }
            } }
        } }
    })
}

/// The user's latest changes, newest first, with their before and after.
fn history_table(admin: &Admin, entries: &[Value], id: &str) -> Markup {
    html! {
        @if entries.is_empty() {
            p { "No changes recorded." }
        } @else {
            p { a href=(admin.link(&format!("/audit?user={}", url_segment(id)))) data-test="user-audit-link" { "All of this user's changes in the audit trail" } }
            (audit_entries_table(entries.iter().rev().take(HISTORY_SHOWN), "user-history"))
        }
    }
}

/// A table of audit entries (shared with the audit page): when, who, what,
/// and each attribute's before and after.
pub fn audit_entries_table<'a>(entries: impl Iterator<Item = &'a Value>, id: &str) -> Markup {
    html! {
        div.table-wrap { table id=(id) {
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Client" }
                th scope="col" { "Operation" } th scope="col" { "Resource" } th scope="col" { "Changes" }
            } }
            tbody { @for entry in entries {
                tr data-test="audit-row" {
                    td.num { (entry.get("position").map(value_text).unwrap_or_default()) }
                    td { (time_element(&entry.get("at").map(value_text).unwrap_or_default())) }
                    td data-test="audit-client" { (entry.get("client").map(value_text).unwrap_or_default()) }
                    td data-test="audit-operation" { (entry.get("operation").map(value_text).unwrap_or_default()) }
                    td { (entry.get("resourceType").map(value_text).unwrap_or_default()) " "
                        (entry.get("userName").map(value_text).unwrap_or_else(|| entry.get("resourceId").map(value_text).unwrap_or_default())) }
                    td { (changes_cell(entry)) }
                }
            } }
        } }
    }
}

/// An entry's attribute-level changes: path, before (struck) and after.
fn changes_cell(entry: &Value) -> Markup {
    if entry.get("redacted").and_then(Value::as_bool) == Some(true) {
        return html! { span.hint { "redacted by a purge" } };
    }
    let changes = entry.get("changes").and_then(Value::as_array);
    html! {
        @if let Some(changes) = changes {
            ul { @for change in changes {
                li {
                    code { (change.get("path").map(value_text).unwrap_or_default()) } ": "
                    @if let Some(before) = change.get("before").filter(|v| !v.is_null()) { del { span.visually-hidden { "before " } (value_text(before)) } " " }
                    @if let Some(after) = change.get("after").filter(|v| !v.is_null()) { ins { span.visually-hidden { "after " } (value_text(after)) } }
                }
            } }
        } @else if let Some(payload) = entry.get("payload").or_else(|| entry.get("detail")).or_else(|| entry.get("members")) {
            code { (payload.to_string()) }
        }
    }
}

/// A form naming a target, with or without a dry run.
#[derive(Deserialize)]
struct ProvisionForm {
    target: String,
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /admin/users/{id}/provision`: a dry run shows the writes that
/// would be sent and offers the real one; the real one shows the outcome.
async fn provision(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ProvisionForm>,
) -> PageResult {
    let dry_run = form.dry_run.as_deref() == Some("true");
    let targets = targets(&state)?;
    let user = existing_user(&state, &admin, &id).await?;
    let delivered = targets
        .deliver_one(&admin.tenant, &form.target, "User", &user, dry_run)
        .await?;
    let user_link = admin.link(&format!("/users/{}", url_segment(&user.0)));
    let title = if dry_run {
        format!("Provision dry run: {}", form.target)
    } else {
        format!("Provisioned to {}", form.target)
    };
    let failed = delivered.outcome.starts_with("failed");
    let body = html! {
        (notice(if failed { "error" } else { "ok" }, html! { span data-test="provision-outcome" { (delivered.outcome) } }))
        @if dry_run {
            h2 { "Writes that would be sent" }
            @if delivered.requests.is_empty() {
                p data-test="no-requests" { "No writes listed: see the outcome above." }
            } @else {
                @for request in &delivered.requests {
                    pre data-test="dry-run-request" { (serde_json::to_string_pretty(request).unwrap_or_default()) }
                }
            }
            form method="post" action={(user_link) "/provision"} id="provision-form" {
                (csrf_field(&admin))
                input type="hidden" name="target" value=(form.target);
                button type="submit" id="provision" { "Provision to " (form.target) " now" }
            }
        }
        p { a href=(user_link) data-test="back-to-user" { "Back to the user" } }
    };
    ok(page_at(&admin, "/users", &title, body))
}

/// The id of a user of the admin's tenant (`404` page otherwise).
async fn existing_user(state: &AppState, admin: &Admin, id: &str) -> Result<ResourceId, PageError> {
    match state
        .store()
        .get(&admin.tenant, "User", &ResourceId(id.to_owned()), false)
        .await
    {
        Ok(stored) => Ok(stored.id),
        Err(StoreError::NotFound(_)) => Err(PageError::not_found(format!(
            "no user with id '{id}' in this tenant"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// The offboarding form.
#[derive(Deserialize)]
struct OffboardForm {
    #[serde(default)]
    reason: String,
    /// `yes` when the confirmation box is ticked.
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/users/{id}/offboard`: as the admin API's offboarding
/// (deactivate and lock, then deliver to every target at once).
async fn offboard(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<OffboardForm>,
) -> PageResult {
    let user = existing_user(&state, &admin, &id).await?;
    if form.confirm != "yes" {
        return Err(PageError::bad_request(
            "confirm: tick the confirmation box to offboard the user",
        ));
    }
    if form.reason.chars().count() > 1000 {
        return Err(PageError::bad_request("reason: at most 1000 characters"));
    }
    let session = admin.session(&state).await?;
    let offboarded = session.offboard(&user.0, form.reason.trim()).await?;
    let answers = match &state.sync {
        Some(sync) => {
            muster_server::offboard::deliver_everywhere(
                state.store(),
                std::sync::Arc::clone(sync),
                &admin.client,
                &user,
            )
            .await
        }
        None => Vec::new(),
    };
    tracing::warn!(tenant = %admin.tenant.0, client = %admin.actor.client, user = %offboarded.id, "user offboarded from the console");
    let user_link = admin.link(&format!("/users/{}", url_segment(&user.0)));
    let body = html! {
        (notice("ok", html! { span data-test="offboarded" { (offboarded.user_name) " is deactivated and locked." } }))
        @if !answers.is_empty() {
            h2 { "Targets" }
            div.table-wrap { table id="offboard-targets" {
                thead { tr { th scope="col" { "Target" } th scope="col" { "Delivered" } th scope="col" { "Answer" } } }
                tbody { @for answer in &answers {
                    tr {
                        th scope="row" { (answer.get("target").map(value_text).unwrap_or_default()) }
                        td { @if answer.get("delivered").and_then(Value::as_bool) == Some(true) { "yes" } @else { "no" } }
                        td { (answer.get("outcome").or_else(|| answer.get("error")).map(value_text).unwrap_or_default()) }
                    }
                } }
            } }
        }
        p { a href=(user_link) data-test="back-to-user" { "Back to the user" } }
    };
    ok(page_at(&admin, "/users", "User offboarded", body))
}

/// Unlock posts only its token.
#[derive(Deserialize)]
struct Nothing {}

/// `POST /admin/users/{id}/unlock`.
async fn unlock(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm(Nothing {}): CsrfForm<Nothing>,
) -> PageResult {
    let user = existing_user(&state, &admin, &id).await?;
    let session = admin.session(&state).await?;
    let unlocked = session.unlock(&user.0).await?;
    let user_link = admin.link(&format!("/users/{}", url_segment(&user.0)));
    let body = html! {
        (notice("ok", html! { span data-test="unlocked" {
            @if unlocked.changed { (unlocked.user_name) " is unlocked; it stays inactive until its identity provider activates it." }
            @else { (unlocked.user_name) " was not locked." }
        } }))
        p { a href=(user_link) data-test="back-to-user" { "Back to the user" } }
    };
    ok(page_at(&admin, "/users", "User unlocked", body))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/{id}", get(user))
        .route("/admin/users/{id}/provision", post(provision))
        .route("/admin/users/{id}/offboard", post(offboard))
        .route("/admin/users/{id}/unlock", post(unlock))
}

/// Who set an attribute the audit trail names no client for: computed
/// values say what computes them.
fn unattributed(schema: &str, name: &str) -> &'static str {
    if schema.eq_ignore_ascii_case(muster_rules::CONTACT_CENTER_URN) {
        "computed by the entitlement rules"
    } else if name.eq_ignore_ascii_case("groups") {
        "computed from group memberships"
    } else {
        "before the audit trail"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_a_filter_when_it_parses_else_free_text() {
        assert_eq!(search_filter("  "), None);
        assert_eq!(
            search_filter("userName sw \"j\"").as_deref(),
            Some("userName sw \"j\"")
        );
        let text = search_filter("o\"brien").unwrap_or_default();
        assert!(text.starts_with("userName co \"o\\\"brien\" or "), "{text}");
        assert!(Filter::parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn change_paths_name_their_schema_and_attribute() {
        let core = CORE_USER.to_ascii_lowercase();
        assert_eq!(
            attribute_of("name.givenName"),
            (core.clone(), "name".to_owned())
        );
        assert_eq!(
            attribute_of("emails[type eq \"work\"].value"),
            (core, "emails".to_owned())
        );
        assert_eq!(
            attribute_of(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user".to_owned(),
                "manager".to_owned()
            )
        );
    }
}
