//! The targets pages over HTTP, against a second Muster as the SCIM
//! target: signed in or sent to sign in; pause (deliveries wait); a
//! reconcile whose dry run writes nothing and whose real run, started from
//! the dry run's report, delivers; resume only with the confirmation; dead
//! letters retried and discarded; another tenant's target is not found;
//! forms refused without their CSRF token.

#![allow(clippy::expect_used, clippy::panic, reason = "tests")]

mod common;
mod console_c2;

use std::time::{Duration, Instant};

use console_c2::{
    check_page_needs_a_session, check_post_needs_csrf, check_unique_ids, token_of, Console, Page,
};
use muster_store::TenantId;
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn put_target(console: &Console, name: &str, downstream: &TestServer, mappings: Value) {
    let document = json!({
        "name": name,
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
        "mappings": mappings,
    });
    let (status, body) = console
        .api(
            Method::PUT,
            &format!("/admin/v1/targets/{name}"),
            Some(document),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn plain_mappings() -> Value {
    json!([
        {"target": "userName", "expression": "userName"},
        {"target": "externalId", "expression": "externalId"},
        {"target": "active", "expression": "active"},
        {"target": "title", "expression": "title"},
    ])
}

async fn users_at(downstream: &TestServer) -> u64 {
    let reply = downstream.get("/Users?count=0").await;
    reply.body["totalResults"].as_u64().expect("totalResults")
}

async fn paused(console: &Console, name: &str) -> Option<String> {
    let (status, body) = console
        .api(Method::GET, &format!("/admin/v1/targets/{name}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["paused"].as_str().map(str::to_owned)
}

/// Starts a reconcile from the target's page and waits for its report.
async fn reconcile(console: &Console, name: &str, fields: &[(&str, &str)]) -> (String, Page) {
    let started = console
        .post(&format!("/admin/targets/{name}/reconcile"), fields)
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    let location = started.location.expect("the run's page");
    let run = location.rsplit('/').next().expect("run id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = console.get(&location).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        if !page.text.contains("data-state=\"running\"") {
            return (run, page);
        }
        assert!(Instant::now() < deadline, "the reconcile never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_pages_need_a_session() {
    let mut console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    put_target(&console, "downstream", &downstream, plain_mappings()).await;
    check_page_needs_a_session(
        &mut console,
        "/admin/targets",
        "data-test=\"target-downstream\"",
    )
    .await;
    check_page_needs_a_session(
        &mut console,
        "/admin/targets/downstream",
        "id=\"target-status\"",
    )
    .await;
}

#[tokio::test]
async fn pause_reconcile_dry_run_then_for_real_then_resume() {
    let console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    put_target(&console, "downstream", &downstream, plain_mappings()).await;

    let refused = console
        .post("/admin/targets/downstream/pause", &[("reason", "  ")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let page = console
        .post(
            "/admin/targets/downstream/pause",
            &[("reason", "maintenance window")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.expect_text("id=\"resume-form\"");
    assert_eq!(
        paused(&console, "downstream").await.as_deref(),
        Some("maintenance window")
    );

    console
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ana@contoso.com",
            "externalId": "ana",
            "title": "Agent"
        }))
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(users_at(&downstream).await, 0, "paused: nothing delivered");

    let (run, report) = reconcile(&console, "downstream", &[("mode", "dry-run")]).await;
    check_unique_ids(&report.text);
    report
        .expect_text("data-state=\"finished\"")
        .expect_text("Dry run finished: nothing was written")
        .expect_text("id=\"reconcile-apply-form\"")
        .expect_text("data-test=\"requests\">1<")
        .expect_text("ana@contoso.com");
    let created = report
        .text
        .find("data-test=\"count-created\"")
        .expect("created row");
    assert!(
        report
            .text
            .get(created..)
            .unwrap_or_default()
            .contains("<td>1</td>"),
        "one user would be created"
    );
    assert_eq!(users_at(&downstream).await, 0, "a dry run writes nothing");
    let page = console.get("/admin/targets/downstream").await;
    page.expect_text("id=\"reconcile-latest\" data-state=\"finished\"");

    let unreviewed = console
        .post(
            "/admin/targets/downstream/reconcile",
            &[("mode", "apply"), ("reviewed", "not-a-run")],
        )
        .await;
    assert_eq!(
        unreviewed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unreviewed.text
    );
    assert_eq!(users_at(&downstream).await, 0);

    let (_, report) = reconcile(
        &console,
        "downstream",
        &[("mode", "apply"), ("reviewed", run.as_str())],
    )
    .await;
    report.expect_text("Reconcile finished.");
    assert_eq!(users_at(&downstream).await, 1, "the reconcile delivered");

    let refused = console.post("/admin/targets/downstream/resume", &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(paused(&console, "downstream").await.is_some());
    let page = console
        .post("/admin/targets/downstream/resume", &[("confirm", "yes")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.expect_text("id=\"pause-form\"");
    assert_eq!(paused(&console, "downstream").await, None);
}

#[tokio::test]
async fn dead_letters_are_retried_and_discarded() {
    let console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    // The target's userName comes from `title`: a user without one is
    // refused by the target for good.
    put_target(
        &console,
        "strict",
        &downstream,
        json!([{"target": "userName", "expression": "title"}]),
    )
    .await;
    console
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ben@contoso.com"
        }))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let letter = loop {
        let (_, letters) = console
            .api(
                Method::GET,
                "/admin/v1/sync/dead-letters?target=strict",
                None,
            )
            .await;
        if let Some(id) = letters["Resources"][0]["id"].as_u64() {
            break id;
        }
        assert!(Instant::now() < deadline, "no dead letter came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let page = console.get("/admin/targets/strict").await;
    assert_eq!(page.status, StatusCode::OK);
    page.expect_text(&format!("id=\"retry-{letter}\""));
    check_unique_ids(&page.text);

    let retried = console
        .post(
            &format!("/admin/targets/strict/dead-letters/{letter}/retry"),
            &[],
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    retried.expect_text("data-test=\"retry-outcome\">failed");
    assert!(
        !retried.text.contains(&format!("id=\"retry-{letter}\"")),
        "the retried letter is gone (a new one replaces it)"
    );
    let (_, letters) = console
        .api(
            Method::GET,
            "/admin/v1/sync/dead-letters?target=strict",
            None,
        )
        .await;
    let again = letters["Resources"][0]["id"]
        .as_u64()
        .expect("a new letter");
    assert_ne!(again, letter);

    let discarded = console
        .post(
            &format!("/admin/targets/strict/dead-letters/{again}/discard"),
            &[],
        )
        .await;
    assert_eq!(discarded.status, StatusCode::OK, "{}", discarded.text);
    discarded.expect_text("data-test=\"no-dead-letters\"");
    let missing = console
        .post(
            &format!("/admin/targets/strict/dead-letters/{again}/discard"),
            &[],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_tenants_target_is_not_found() {
    let console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    let acme = TenantId("acme".to_owned());
    console.store.create_tenant(&acme).await.expect("tenant");
    let acme_token = token_of(&console.store, &acme, "acme-admin").await;
    let document = json!({
        "name": "acme-only",
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
    });
    let (status, body) = console
        .api_as(
            &acme_token,
            Method::PUT,
            "/t/acme/admin/v1/targets/acme-only",
            Some(document),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for path in [
        "/admin/targets/acme-only",
        "/admin/mapping?target=acme-only",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
    }
    let page = console
        .post("/admin/targets/acme-only/pause", &[("reason", "x")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = console
        .post("/admin/targets/acme-only/reconcile", &[("mode", "dry-run")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // The default tenant's session does not open the other tenant's pages.
    let page = console.get("/t/acme/admin/targets/acme-only").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let (_, target) = console
        .api_as(
            &acme_token,
            Method::GET,
            "/t/acme/admin/v1/targets/acme-only",
            None,
        )
        .await;
    assert!(target.get("paused").is_none(), "{target}");
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let console = Console::signed_in().await;
    let downstream = TestServer::start().await;
    put_target(&console, "downstream", &downstream, plain_mappings()).await;
    check_post_needs_csrf(
        &console,
        "/admin/targets/downstream/pause",
        &[("reason", "x")],
    )
    .await;
    check_post_needs_csrf(
        &console,
        "/admin/targets/downstream/reconcile",
        &[("mode", "dry-run")],
    )
    .await;
    assert_eq!(paused(&console, "downstream").await, None);
}
