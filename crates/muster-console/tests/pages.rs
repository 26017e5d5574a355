//! The dashboard, users, audit, clients and tenants pages over HTTP against
//! a real server (a second Muster as the SCIM target for provisioning).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

mod common;

use common::{mint, Console};
use muster_core::tokens::SCOPE_ADMIN;
use muster_store::TenantId;
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn put_target(console: &Console, name: &str, downstream: &TestServer) {
    let (status, body) = console
        .api(
            Method::PUT,
            &format!("/admin/v1/targets/{name}"),
            Some(json!({
                "name": name,
                "kind": "scim",
                "baseUrl": downstream.base_url,
                "auth": {"type": "bearer", "token": downstream.token},
                "mappings": [
                    {"target": "userName", "expression": "userName"},
                    {"target": "displayName", "expression": "displayName"},
                    {"target": "active", "expression": "active"},
                ],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_dashboard_counts_users_and_shows_targets() {
    let console = Console::start().await;
    let downstream = TestServer::start().await;
    put_target(&console, "wfm", &downstream).await;
    for name in ["a@example.com", "b@example.com", "c@example.com"] {
        console.create_user(None, name).await;
    }
    let cookie = console.sign_in().await;
    let page = console.get("/admin", &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text
            .contains("data-test=\"count-users\"><span class=\"count\">3</span>"),
        "{}",
        page.text
    );
    let activity = console.get("/admin/activity?fragment=true", &cookie).await;
    assert_eq!(activity.status, StatusCode::OK);
    assert!(!activity.text.contains("<html"), "a fragment, not a page");
    assert!(activity
        .text
        .contains("data-test=\"count-active\"><span class=\"count\">3</span>"));
    assert!(activity
        .text
        .contains("data-test=\"count-inactive\"><span class=\"count\">0</span>"));
    assert_eq!(
        console.get("/admin/activity", &cookie).await.status,
        StatusCode::OK
    );
    assert!(page.text.contains("data-target=\"wfm\""));
    let problems = console.get("/admin/problems?fragment=true", &cookie).await;
    assert_eq!(problems.status, StatusCode::OK);
    assert!(!problems.text.contains("<html"), "a fragment, not a page");
    assert!(
        problems.text.contains("data-test=\"no-rule-set\""),
        "{}",
        problems.text
    );
}

#[tokio::test]
async fn users_are_found_by_filter_or_text_and_paged() {
    let console = Console::start().await;
    for index in 0..30 {
        console
            .create_user(None, &format!("agent{index:02}@example.com"))
            .await;
    }
    console.create_user(None, "zed@other.example").await;
    let cookie = console.sign_in().await;
    let first = console.get("/admin/users", &cookie).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text.matches("data-test=\"user-row\"").count(), 25);
    assert!(first.text.contains("1–25 of 31"), "{}", first.text);
    let second = console.get("/admin/users?start=26", &cookie).await;
    assert_eq!(second.text.matches("data-test=\"user-row\"").count(), 6);
    // A SCIM filter.
    let filtered = console
        .get("/admin/users?q=userName%20sw%20%22agent1%22", &cookie)
        .await;
    assert_eq!(filtered.text.matches("data-test=\"user-row\"").count(), 10);
    // Free text.
    let text = console.get("/admin/users?q=other.example", &cookie).await;
    assert_eq!(text.text.matches("data-test=\"user-row\"").count(), 1);
    assert!(text.text.contains("zed@other.example"));
    // Sorted by userName on request (the default order costs no sort).
    let sorted = console.get("/admin/users?sort=userName", &cookie).await;
    let first_row = sorted.text.find("data-test=\"user-row\"").expect("a row");
    assert!(sorted.text[first_row..].starts_with("data-test=\"user-row\"><th scope=\"row\"><a"));
    let first = &sorted.text[first_row..first_row + 400];
    assert!(first.contains("agent00@example.com"), "{first}");
    assert!(
        sorted.text.contains("sort=userName&amp;start=26"),
        "the pager keeps the order"
    );
    let bogus = console.get("/admin/users?sort=nope", &cookie).await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    assert!(bogus.text.contains("sort"));
    // A refused filter is named, not a failure.
    let refused = console
        .get("/admin/users?q=nosuch%20eq%20%22x%22", &cookie)
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        refused.text.contains("The filter was refused"),
        "{}",
        refused.text
    );
    // Markup in the search box comes back escaped.
    let escaped = console.get("/admin/users?q=%3Cscript%3E", &cookie).await;
    assert!(!escaped.text.contains("<script>"));
}

#[tokio::test]
async fn a_user_page_shows_attributes_with_their_writer_then_provision_and_offboard() {
    let console = Console::start().await;
    let downstream = TestServer::start().await;
    put_target(&console, "wfm", &downstream).await;
    let id = console.create_user(None, "ada@example.com").await;
    let cookie = console.sign_in().await;
    let page = console.get(&format!("/admin/users/{id}"), &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("data-attribute=\"userName\""));
    // The SCIM client that wrote it, from the audit trail.
    assert!(
        page.text
            .contains("<td data-test=\"set-by\">console-admin</td>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"user-history\""));
    assert!(page.text.contains("data-test=\"provision-dry-run-wfm\""));
    assert!(page.text.contains("No rule set") || page.text.contains("no rule set"));

    // Dry run first: its outcome and the writes it would send (none when
    // the target's worker got there first), and the button for the real one.
    let csrf = page.csrf();
    let path = format!("/admin/users/{id}/provision");
    let dry = console
        .post(
            &path,
            &cookie,
            &[("csrf", &csrf), ("target", "wfm"), ("dry_run", "true")],
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert!(dry.text.contains("data-test=\"provision-outcome\""));
    assert!(
        dry.text.contains("data-test=\"dry-run-request\"")
            || dry.text.contains("data-test=\"no-requests\""),
        "{}",
        dry.text
    );
    assert!(dry.text.contains("id=\"provision\""));
    // Then for real.
    let real = console
        .post(&path, &cookie, &[("csrf", &dry.csrf()), ("target", "wfm")])
        .await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.text);
    assert_eq!(
        downstream.get("/Users?count=0").await.body["totalResults"],
        1
    );
    let after = console.get(&format!("/admin/users/{id}"), &cookie).await;
    assert!(
        !after.text.contains("<td data-test=\"delivered\">never"),
        "{}",
        after.text
    );

    // Offboarding needs its confirmation.
    let unconfirmed = console
        .post(
            &format!("/admin/users/{id}/offboard"),
            &cookie,
            &[("csrf", &csrf), ("reason", "oops")],
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(unconfirmed.text.contains("confirm"));
    // Offboard: deactivated, locked, delivered, in the audit view.
    let offboarded = console
        .post(
            &format!("/admin/users/{id}/offboard"),
            &cookie,
            &[
                ("csrf", &csrf),
                ("reason", "left the company"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(offboarded.status, StatusCode::OK, "{}", offboarded.text);
    assert!(offboarded.text.contains("data-test=\"offboarded\""));
    let (_, user) = console
        .api(Method::GET, &format!("/scim/v2/Users/{id}"), None)
        .await;
    assert_eq!(user["active"], false);
    let audit = console
        .get(&format!("/admin/audit?user={id}"), &cookie)
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.text.contains("left the company"), "{}", audit.text);
    let locked = console.get(&format!("/admin/users/{id}"), &cookie).await;
    assert!(locked.text.contains("data-test=\"lock\""));
    let unlocked = console
        .post(
            &format!("/admin/users/{id}/unlock"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.text);
    assert!(unlocked.text.contains("is unlocked"));
    // Actions need their token.
    let refused = console
        .post(
            &format!("/admin/users/{id}/offboard"),
            &cookie,
            &[("reason", "x")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // An unknown id is a 404 page.
    let missing = console
        .get("/admin/users/00000000-0000-0000-0000-000000000000", &cookie)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_trail_filters_exports_and_verifies() {
    let console = Console::start().await;
    let id = console.create_user(None, "ada@example.com").await;
    console.create_user(None, "bob@example.com").await;
    let cookie = console.sign_in().await;
    let all = console.get("/admin/audit", &cookie).await;
    assert_eq!(all.status, StatusCode::OK);
    let rows = all.text.matches("data-test=\"audit-row\"").count();
    assert!(rows >= 2, "{}", all.text);
    let one = console
        .get(&format!("/admin/audit?user={id}"), &cookie)
        .await;
    assert_eq!(one.text.matches("data-test=\"audit-row\"").count(), 1);
    assert!(one.text.contains("ada@example.com"));
    let nobody = console.get("/admin/audit?client=nobody", &cookie).await;
    assert!(nobody.text.contains("data-test=\"no-entries\""));
    let bad = console.get("/admin/audit?since=yesterday", &cookie).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("since"), "{}", bad.text);
    let local = console
        .get("/admin/audit?since=2000-01-01T00:00", &cookie)
        .await;
    assert_eq!(
        local.status,
        StatusCode::OK,
        "a datetime-local value is read as UTC"
    );

    let export = console
        .get(&format!("/admin/audit/export?user={id}"), &cookie)
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export
        .header("content-disposition")
        .unwrap_or_default()
        .contains("attachment"));
    let lines: Vec<serde_json::Value> = export
        .text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["resourceId"], id.as_str());

    let fragment = console
        .get("/admin/audit/verify?fragment=true", &cookie)
        .await;
    assert!(fragment.text.contains("id=\"chain-status\""));
    assert!(!fragment.text.contains("<html"));
    let verified = console.get("/admin/audit/verify", &cookie).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert!(
        verified.text.contains("data-status=\"intact\""),
        "{}",
        verified.text
    );
}

#[tokio::test]
async fn a_new_secret_is_shown_once_and_works() {
    let console = Console::start().await;
    let cookie = console.sign_in().await;
    let page = console.get("/admin/clients", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let created = console
        .post(
            "/admin/clients/tokens",
            &cookie,
            &[
                ("csrf", &csrf),
                ("name", "genesys"),
                ("scope", "scim.read"),
                ("scope", "scim.write"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let marker = "data-test=\"new-secret\">";
    let start = created.text.find(marker).expect("the secret") + marker.len();
    let secret: String = created.text[start..]
        .chars()
        .take_while(|c| *c != '<')
        .collect();
    assert!(secret.starts_with("mst_"));
    // The secret works, is on no page again, and is stored nowhere.
    let answer = console
        .http
        .get(format!("{}/scim/v2/Users", console.root))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), StatusCode::OK);
    let listed = console.get("/admin/clients", &cookie).await;
    assert!(listed.text.contains("data-name=\"genesys\""));
    assert!(!listed.text.contains(&secret));

    // An OAuth client: created, rotated without grace, revoked.
    let client = console
        .post(
            "/admin/clients/oauth",
            &cookie,
            &[("csrf", &csrf), ("name", "okta"), ("scope", "scim.write")],
        )
        .await;
    assert_eq!(client.status, StatusCode::OK, "{}", client.text);
    assert!(client.text.contains("id=\"new-client-id\""));
    let rotated = console
        .post(
            "/admin/clients/oauth/rotate",
            &cookie,
            &[("csrf", &csrf), ("name", "okta"), ("grace", "0s")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert!(rotated.text.contains("data-test=\"new-secret\""));
    let too_long = console
        .post(
            "/admin/clients/oauth/rotate",
            &cookie,
            &[("csrf", &csrf), ("name", "okta"), ("grace", "90d")],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let revoked = console
        .post(
            "/admin/clients/oauth/revoke",
            &cookie,
            &[("csrf", &csrf), ("name", "okta")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let revoked = console
        .post(
            "/admin/clients/tokens/revoke",
            &cookie,
            &[("csrf", &csrf), ("name", "genesys")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    tokio::time::sleep(muster_server::auth::TOKEN_CACHE_TTL).await;
    let answer = console
        .http
        .get(format!("{}/scim/v2/Users", console.root))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // The trail records who did it, never the secret.
    let audit = console
        .get("/admin/audit?client=console-admin", &cookie)
        .await;
    assert!(audit.text.contains("OAuthClient"));
    assert!(!audit.text.contains(&secret));
    // A missing scope is named.
    let none = console
        .post(
            "/admin/clients/tokens",
            &cookie,
            &[("csrf", &csrf), ("name", "x")],
        )
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.text.contains("scope"));
}

#[tokio::test]
async fn tenants_are_listed_and_created_from_the_default_tenant_only() {
    let console = Console::start().await;
    let cookie = console.sign_in().await;
    let page = console.get("/admin/tenants", &cookie).await;
    assert!(page.text.contains("data-name=\"default\""));
    let csrf = page.csrf();
    let created = console
        .post(
            "/admin/tenants",
            &cookie,
            &[("csrf", &csrf), ("name", "acme")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let bad = console
        .post(
            "/admin/tenants",
            &cookie,
            &[("csrf", &csrf), ("name", "Not Valid")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let again = console
        .post(
            "/admin/tenants",
            &cookie,
            &[("csrf", &csrf), ("name", "acme")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let acme = TenantId("acme".to_owned());
    let token = mint(&*console.store, &acme, "acme-admin", &[SCOPE_ADMIN]).await;
    let (_, acme_cookie) = console.sign_in_at("/t/acme", &token).await;
    let acme_cookie = acme_cookie.expect("cookie");
    let theirs = console.get("/t/acme/admin/tenants", &acme_cookie).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(
        !theirs.text.contains("data-name=\"default\""),
        "another tenant sees no tenant list"
    );
    let refused = console
        .post(
            "/t/acme/admin/tenants",
            &acme_cookie,
            &[("csrf", &theirs.csrf()), ("name", "evil")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
