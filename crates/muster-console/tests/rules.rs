//! The rules page over HTTP: signed in or sent to sign in; validate; a
//! dry run that counts changes per kind with sample users and stores
//! nothing; apply; a rollback dry-run first, then done; forms refused
//! without their CSRF token.

#![allow(clippy::expect_used, clippy::panic, reason = "tests")]

mod common;
mod console_c2;

use console_c2::{check_page_needs_a_session, check_post_needs_csrf, check_unique_ids, Console};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A rule set granting `role` to users whose title is `title`.
fn rules(title: &str, role: &str) -> String {
    format!(
        r#"
[catalog]
divisions = ["Home"]
licenses = ["CX 1"]
roles = [{{ name = "Agent", license = "CX 1" }}, {{ name = "Supervisor", license = "CX 1" }}]

[[rules]]
id = "by-title"
when = 'title eq "{title}"'
grants = [{{ role = "{role}", division = "Home" }}]
"#
    )
}

async fn version_in_force(console: &Console) -> Option<u64> {
    let (status, body) = console.api(Method::GET, "/admin/v1/rules", None).await;
    (status == StatusCode::OK).then(|| body["version"].as_u64().expect("version"))
}

async fn users(console: &Console) {
    for (name, title) in [("ana@contoso.com", "Agent"), ("ben@contoso.com", "Lead")] {
        console
            .create_user(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "title": title
            }))
            .await;
    }
}

#[tokio::test]
async fn the_page_needs_a_session() {
    let mut console = Console::signed_in().await;
    check_page_needs_a_session(&mut console, "/admin/rules", "Rule set in force").await;
}

#[tokio::test]
async fn validate_names_the_problem() {
    let console = Console::signed_in().await;
    let valid = rules("Agent", "Agent");
    let page = console
        .post("/admin/rules/validate", &[("text", valid.as_str())])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.expect_text("Valid: 1 rule(s)");

    let unknown_role = rules("Agent", "Janitor");
    let page = console
        .post("/admin/rules/validate", &[("text", unknown_role.as_str())])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    page.expect_text("data-test=\"refusal\"")
        .expect_text("Janitor");
    assert_eq!(version_in_force(&console).await, None);
}

#[tokio::test]
async fn a_rule_set_is_dry_run_then_applied_then_rolled_back() {
    let console = Console::signed_in().await;
    users(&console).await;
    let first = rules("Agent", "Agent");

    let dry_run = console
        .post(
            "/admin/rules/dry-run",
            &[("text", first.as_str()), ("user", "ana@contoso.com")],
        )
        .await;
    assert_eq!(dry_run.status, StatusCode::OK, "{}", dry_run.text);
    check_unique_ids(&dry_run.text);
    dry_run
        .expect_text("Dry run: nothing was changed")
        .expect_text("data-test=\"users-changed\">1<")
        .expect_text("data-test=\"kind-grantAdded\"")
        .expect_text("Agent in Home")
        .expect_text("ana@contoso.com")
        .expect_text("id=\"rules-apply-form\"")
        .expect_text("Before and after for ana@contoso.com");
    assert_eq!(
        version_in_force(&console).await,
        None,
        "a dry run stores nothing"
    );

    let applied = console
        .post(
            "/admin/rules/apply",
            &[("text", first.as_str()), ("user", "")],
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    applied.expect_text("data-test=\"applied-version\">1<");
    assert_eq!(version_in_force(&console).await, Some(1));

    let second = rules("Lead", "Supervisor");
    let applied = console
        .post("/admin/rules/apply", &[("text", second.as_str())])
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(version_in_force(&console).await, Some(2));

    // The history lists both, newest first; version 1 can be shown.
    let page = console.get("/admin/rules?version=1").await;
    assert_eq!(page.status, StatusCode::OK);
    check_unique_ids(&page.text);
    page.expect_text("data-test=\"version-2\"")
        .expect_text("id=\"rollback-dry-run-shown\"");
    let history = page.text.find("data-test=\"version-2\"").expect("v2");
    let older = page.text.find("data-test=\"version-1\"").expect("v1");
    assert!(history < older, "newest first");

    let dry_run = console
        .post("/admin/rules/rollback-dry-run", &[("version", "1")])
        .await;
    assert_eq!(dry_run.status, StatusCode::OK, "{}", dry_run.text);
    dry_run
        .expect_text("Dry run: nothing was changed")
        .expect_text("data-test=\"users-changed\">2<")
        .expect_text("id=\"rules-rollback-form\"");
    assert_eq!(version_in_force(&console).await, Some(2));

    let rolled_back = console
        .post("/admin/rules/rollback", &[("version", "1")])
        .await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert_eq!(version_in_force(&console).await, Some(3));
    let (_, record) = console.api(Method::GET, "/admin/v1/rules", None).await;
    assert_eq!(record["note"], "rollback to version 1");
    assert_eq!(record["document"], first.as_str());

    let missing = console.get("/admin/rules?version=99").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let console = Console::signed_in().await;
    let text = rules("Agent", "Agent");
    check_post_needs_csrf(&console, "/admin/rules/apply", &[("text", text.as_str())]).await;
    check_post_needs_csrf(&console, "/admin/rules/rollback", &[("version", "1")]).await;
    assert_eq!(version_in_force(&console).await, None);
}
