//! `GET /admin`: the dashboard. Counts of users and groups, each target's
//! delivery state, the latest dead letters; then, loaded after the page
//! since each reads every user, the active and inactive counts
//! (`/admin/activity`) and the users whose entitlements have problems
//! (`/admin/problems`).

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use muster_core::rules::rules_stats;
use muster_scim::message::SearchRequest;
use muster_server::AppState;
use serde::Deserialize;
use serde_json::Value;

use crate::data::{full_read, targets};
use crate::layout::{
    html_response, notice, ok, page_at, time_element, value_text, PageError, PageResult,
};
use crate::session::Admin;
use crate::users::url_segment;

/// Dead letters listed on the dashboard.
const DEAD_LETTERS_SHOWN: usize = 10;

/// Users with problems listed.
const PROBLEMS_SHOWN: usize = 50;

/// How many resources of `endpoint` match `filter` (a count-only search).
async fn count(
    admin: &Admin,
    state: &AppState,
    endpoint: &str,
    filter: Option<&str>,
) -> Result<u64, PageError> {
    let session = admin.session(state).await?;
    let resource_type = session.resource_type(endpoint)?;
    let listed = session
        .search(
            &resource_type,
            SearchRequest {
                filter: filter.map(str::to_owned),
                count: Some(0),
                ..SearchRequest::default()
            },
        )
        .await?;
    Ok(listed
        .get("totalResults")
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

/// `GET /admin`.
async fn dashboard(State(state): State<AppState>, admin: Admin) -> PageResult {
    // Independent reads, run at once (the store's readers serve them side
    // by side). Counting active users filters every user: those counts load
    // after the page (`/admin/activity`).
    let (users, groups, delivery) = tokio::join!(
        count(&admin, &state, "Users", None),
        count(&admin, &state, "Groups", None),
        delivery(&state, &admin),
    );
    let (users, groups, delivery) = (users?, groups?, delivery?);
    let body = html! {
        ul.cards id="counts" {
            li data-test="count-users" { span.count { (users) } "users" }
            li data-test="count-groups" { span.count { (groups) } "groups" }
            li id="activity" hx-get={(admin.link("/activity")) "?fragment=true"} hx-trigger="load" hx-swap="outerHTML" {
                a href=(admin.link("/activity")) id="activity-link" { "Count active and inactive users" }
            }
        }
        (delivery)
        section aria-labelledby="problems-heading" {
            h2 id="problems-heading" { "Users with entitlement problems" }
            div id="problems" hx-get={(admin.link("/problems")) "?fragment=true"} hx-trigger="load" hx-swap="innerHTML" {
                p { a href=(admin.link("/problems")) id="problems-link" { "Check every user's entitlements" } }
            }
        }
    };
    ok(page_at(&admin, "", "Dashboard", body))
}

/// `?fragment=true`: only the piece, for the dashboard to load in place.
#[derive(Deserialize, Default)]
#[serde(default)]
struct FragmentQuery {
    fragment: bool,
}

/// How many users match `filter`, counted in the turn of full reads.
async fn count_in_turn(
    admin: &Admin,
    state: &AppState,
    filter: &'static str,
) -> Result<u64, PageError> {
    let (admin, state) = (admin.clone(), state.clone());
    full_read(async move { count(&admin, &state, "Users", Some(filter)).await }).await
}

/// `GET /admin/activity`: how many users are active and inactive.
async fn activity(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<FragmentQuery>,
) -> PageResult {
    // One after the other, each in the turn of full reads: each reads every
    // active (inactive) user's index row.
    let active = count_in_turn(&admin, &state, "active eq true").await?;
    let inactive = count_in_turn(&admin, &state, "active eq false").await?;
    let cards = html! {
        li data-test="count-active" { span.count { (active) } "active" }
        li data-test="count-inactive" { span.count { (inactive) } "inactive" }
    };
    if query.fragment {
        return Ok(html_response(axum::http::StatusCode::OK, cards));
    }
    ok(page_at(
        &admin,
        "",
        "Active and inactive users",
        html! { ul.cards { (cards) } },
    ))
}

/// Each target's state and the latest dead letters.
async fn delivery(state: &AppState, admin: &Admin) -> Result<Markup, PageError> {
    let Ok(targets) = targets(state) else {
        return Ok(notice(
            "warn",
            html! { "The sync engine is not enabled on this server." },
        ));
    };
    let views = targets.list(&admin.tenant).await?;
    let mut letters = targets.dead_letters(&admin.tenant, None).await?;
    letters.sort_by_key(|letter| std::cmp::Reverse(letter.id));
    Ok(html! {
        section aria-labelledby="targets-heading" {
            h2 id="targets-heading" { "Targets" }
            @if views.is_empty() {
                p { "No targets yet. " a href=(admin.link("/targets")) { "Add one" } "." }
            } @else {
                div.table-wrap { table id="dashboard-targets" {
                    thead { tr {
                        th scope="col" { "Target" } th scope="col" { "State" } th scope="col" class="num" { "Queue" }
                        th scope="col" { "Oldest pending" } th scope="col" { "Last success" } th scope="col" class="num" { "Errors" }
                        th scope="col" class="num" { "Dead letters" }
                    } }
                    tbody { @for view in &views {
                        tr data-test="target-row" data-target=(view.document.name) {
                            th scope="row" { a href=(admin.link(&format!("/targets/{}", url_segment(&view.document.name)))) { (view.document.name) } }
                            td data-test="target-state" {
                                @if let Some(reason) = &view.paused {
                                    span.status-warn { "paused" } br; span.hint { (reason) }
                                } @else if let Some(until) = &view.state.throttled_until {
                                    span.status-warn { "throttled" } br; span.hint { "until " (until) }
                                } @else if view.state.last_error.is_some() && view.state.last_error_at > view.state.last_success {
                                    span.status-error { "failing" } br; span.hint { (view.state.last_error.clone().unwrap_or_default()) }
                                } @else {
                                    span.status-ok { "running" }
                                }
                            }
                            td.num data-test="queue-depth" { (view.queue_depth) }
                            td { @if let Some(at) = &view.oldest_pending { (time_element(at)) } @else { "—" } }
                            td { @if let Some(at) = &view.state.last_success { (time_element(at)) } @else { "never" } }
                            td.num { (view.state.errors) }
                            td.num { (view.dead_letters) }
                        }
                    } }
                } }
            }
        }
        section aria-labelledby="letters-heading" {
            h2 id="letters-heading" { "Recent dead letters" }
            @if letters.is_empty() {
                p data-test="no-dead-letters" { "None." }
            } @else {
                div.table-wrap { table id="dashboard-dead-letters" {
                    thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Target" } th scope="col" { "Resource" } th scope="col" { "Why" } } }
                    tbody { @for letter in letters.iter().take(DEAD_LETTERS_SHOWN) {
                        tr data-test="dead-letter" {
                            td.num { (letter.id) }
                            td { (time_element(&letter.at)) }
                            td { a href=(admin.link(&format!("/targets/{}", url_segment(&letter.target)))) { (letter.target) } }
                            td { @if letter.resource_type == "User" {
                                a href=(admin.link(&format!("/users/{}", url_segment(&letter.resource_id.0)))) { (letter.resource_id.0) }
                            } @else { (letter.resource_type) " " (letter.resource_id.0) } }
                            td { (letter.reason) }
                        }
                    } }
                } }
            }
        }
    })
}

/// `GET /admin/problems`: users whose entitlements have problems (every
/// user is evaluated against the rule set in force).
async fn problems(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<FragmentQuery>,
) -> PageResult {
    let tenant = admin.tenant.clone();
    let stats = full_read(async move { Ok(rules_stats(state.store(), &tenant).await) }).await?;
    let list = match stats {
        Ok(stats) => {
            let count = stats
                .get("usersWithProblems")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let users = stats
                .get("problems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            html! {
                p data-test="problem-count" { (count) " of " (stats.get("users").map(value_text).unwrap_or_default()) " users have problems." }
                @if !users.is_empty() {
                    ul id="problem-users" { @for user in users.iter().take(PROBLEMS_SHOWN) {
                        @let id = user.get("id").map(value_text).unwrap_or_default();
                        li data-test="problem-user" {
                            a href=(admin.link(&format!("/users/{}", url_segment(&id)))) { (user.get("userName").map(value_text).unwrap_or(id.clone())) }
                            ": " (user.get("problems").map(problems_text).unwrap_or_default())
                        }
                    } }
                }
            }
        }
        Err(error) => {
            let error = PageError::from(error);
            if error.status() != axum::http::StatusCode::NOT_FOUND {
                return Err(error);
            }
            html! { p data-test="no-rule-set" { (error.detail()) } }
        }
    };
    if query.fragment {
        return Ok(html_response(axum::http::StatusCode::OK, list));
    }
    ok(page_at(&admin, "", "Users with entitlement problems", list))
}

/// A user's problems in words.
fn problems_text(problems: &Value) -> String {
    match problems {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => value_text(other),
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/problems", get(problems))
        .route("/admin/activity", get(activity))
}
