//! The mapping page over HTTP, against a second Muster as the SCIM target:
//! signed in or sent to sign in; the end-to-end table of a target with a
//! user's values at every step and what does not reach the target; the
//! expression tester, filled from a row and evaluating; unknown targets and
//! users; the tester refused without its CSRF token.

#![allow(clippy::expect_used, clippy::panic, reason = "tests")]

mod common;
mod console_c2;

use console_c2::{
    check_page_needs_a_session, check_post_needs_csrf, check_unique_ids, text_of, Console,
};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A console with a target `downstream` and a user `ana@contoso.com`.
async fn set_up() -> (Console, TestServer) {
    let console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"},
            {"target": "title", "expression": "title"},
        ],
    });
    let (status, body) = console
        .api(Method::PUT, "/admin/v1/targets/downstream", Some(document))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    console
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "ana@contoso.com",
            "name": {"givenName": "Ana", "familyName": "Lima"},
            "title": "Agent",
            ENTERPRISE: {"department": "Customer Support"}
        }))
        .await;
    (console, downstream)
}

/// The HTML of the row whose `data-test` is `test`.
fn row<'p>(html: &'p str, test: &str) -> &'p str {
    let start = html
        .find(&format!("data-test=\"{test}\""))
        .unwrap_or_else(|| panic!("no row {test} in:\n{html}"));
    let rest = html.get(start..).unwrap_or_default();
    rest.get(..rest.find("</tr>").unwrap_or(rest.len()))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_needs_a_session() {
    let (mut console, _downstream) = set_up().await;
    check_page_needs_a_session(&mut console, "/admin/mapping", "id=\"mapping-chooser\"").await;
    check_page_needs_a_session(
        &mut console,
        "/admin/mapping?target=downstream&user=ana%40contoso.com",
        "id=\"mapping-table\"",
    )
    .await;
}

#[tokio::test]
async fn the_table_follows_a_user_from_the_identity_provider_to_the_target() {
    let (console, _downstream) = set_up().await;
    let page = console
        .get("/admin/mapping?target=downstream&user=ana%40contoso.com")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    check_unique_ids(&page.text);
    let display = text_of(row(&page.text, "mapping-displayName"));
    for expected in [
        "givenName",
        "surname",
        "name.givenName = Ana",
        "Join(",
        "Ana Lima",
    ] {
        assert!(display.contains(expected), "{expected} in {display}");
    }
    assert!(display.contains("set by console-admin"), "{display}");
    let user_name = text_of(row(&page.text, "mapping-userName"));
    assert!(user_name.contains("userPrincipalName"), "{user_name}");
    page.expect_text("data-test=\"in-scope\">yes<");
    // The department is held but no mapping sends it.
    let not_sent = page
        .text
        .get(
            page.text
                .find("id=\"not-sent-table\"")
                .expect("not-sent table")..,
        )
        .unwrap_or_default();
    let not_sent = text_of(not_sent);
    assert!(
        not_sent.contains(&format!("{ENTERPRISE}:department"))
            && not_sent.contains("Customer Support")
            && not_sent.contains("no mapping sends it"),
        "{not_sent}"
    );

    // Without a user: the mappings, and a hint to choose one.
    let page = console.get("/admin/mapping?target=downstream").await;
    assert_eq!(page.status, StatusCode::OK);
    page.expect_text("Choose a user to see example values");
    assert!(!page.text.contains("data-test=\"value-now\""));

    let page = console
        .get("/admin/mapping?target=downstream&user=nobody%40contoso.com")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.expect_text("nobody@contoso.com");

    let page = console.get("/admin/mapping?target=upstream").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_tester_is_filled_from_a_row_and_evaluates() {
    let (console, _downstream) = set_up().await;
    let page = console
        .get("/admin/mapping?target=downstream&user=ana%40contoso.com&try=displayName")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.expect_text("Join(&quot; &quot;, [name.givenName], [name.familyName])</textarea>")
        .expect_text("&quot;name.givenName&quot;: &quot;Ana&quot;");

    let evaluated = console
        .post(
            "/admin/mapping/evaluate",
            &[
                (
                    "expression",
                    "Join(\" \", [name.givenName], [name.familyName])",
                ),
                (
                    "attributes",
                    r#"{"name.givenName": "Ana", "name.familyName": "Lima"}"#,
                ),
                ("now", ""),
                ("target", "downstream"),
                ("user", "ana@contoso.com"),
            ],
        )
        .await;
    assert_eq!(evaluated.status, StatusCode::OK, "{}", evaluated.text);
    evaluated
        .expect_text("data-test=\"expression-value\">&quot;Ana Lima&quot;<")
        .expect_text("id=\"mapping-table\"");

    let fixed_now = console
        .post(
            "/admin/mapping/evaluate",
            &[("expression", "Now()"), ("now", "2021-07-02T15:33:38Z")],
        )
        .await;
    fixed_now.expect_text("7/2/2021 3:33:38 PM");

    let refused = console
        .post(
            "/admin/mapping/evaluate",
            &[("expression", "Frobnicate([a])")],
        )
        .await;
    refused
        .expect_text("data-test=\"expression-error\"")
        .expect_text("unknown function");
    let refused = console
        .post(
            "/admin/mapping/evaluate",
            &[("expression", "[a]"), ("attributes", "[1]")],
        )
        .await;
    refused.expect_text("&quot;attributes&quot; must be an object");
    let refused = console
        .post(
            "/admin/mapping/evaluate",
            &[("expression", "[a]"), ("attributes", "{nope")],
        )
        .await;
    refused.expect_text("attributes: expected a JSON object");
}

#[tokio::test]
async fn the_tester_needs_its_csrf_token() {
    let console = Console::signed_in().await;
    check_post_needs_csrf(
        &console,
        "/admin/mapping/evaluate",
        &[("expression", "Now()")],
    )
    .await;
}
