//! Origin and loop prevention (issue 14, item 7; seed 004's multi-org
//! loops). Two tenants of one server whose SCIM targets feed each other
//! (tenant a's target writes to `/t/b/scim/v2` with b's token, b's to
//! `/t/a/scim/v2` with a's), each mapping `title` with a suffix so that a
//! loop would never settle: with `skipChangesFrom` naming the client the
//! other side writes back with, a change stops after one round. A
//! tenant's `foreignOriginWrites` refuses (400 naming the attribute and
//! the expected value, nothing changed) or ignores (answered as if
//! applied, nothing stored, audited) writes tagged with another origin,
//! through POST, PUT, PATCH and Bulk. Runs on SQLite, and on PostgreSQL
//! with `MUSTER_TEST_BACKEND=postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use std::time::{Duration, Instant};

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_store::{TenantId, TokenRecord};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const GENESYS: &str = "urn:ietf:params:scim:schemas:extension:genesys:2.0:User";
const SOURCE_ORG: &str = "urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg";

/// A token of `tenant`; its secret.
async fn token(server: &TestServer, tenant: &str, name: &str, scopes: &[&str]) -> String {
    let token = mint_token();
    server
        .store
        .create_token(
            &TenantId(tenant.to_owned()),
            TokenRecord {
                name: name.to_owned(),
                secret_hash: token.secret_hash,
                scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                created: String::new(),
            },
        )
        .await
        .unwrap();
    token.secret
}

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    server.call_as(token, method, path, body).await
}

/// The entries of a tenant's audit trail by `client`.
async fn entries_by(server: &TestServer, tenant: &str, admin: &str, client: &str) -> Vec<Value> {
    let reply = call(
        server,
        admin,
        Method::GET,
        &format!("/t/{tenant}/admin/v1/audit?client={client}&count=1000"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["Resources"].as_array().unwrap().clone()
}

/// A target of `from` writing to `to`'s SCIM URL with `token`, appending
/// `suffix` to `title` on the way, passing over changes by `skip`.
fn target(server: &TestServer, to: &str, token: &str, suffix: &str, skip: &[&str]) -> Value {
    json!({
        "name": format!("to-{to}"),
        "kind": "scim",
        "baseUrl": format!("{}/t/{to}/scim/v2", server.root),
        "auth": {"type": "bearer", "token": token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "title", "expression": format!("Append([title], \"{suffix}\")")},
        ],
        "skipChangesFrom": skip,
    })
}

async fn user_named(server: &TestServer, tenant: &str, admin: &str, name: &str) -> Option<Value> {
    let reply = call(
        server,
        admin,
        Method::GET,
        &format!("/t/{tenant}/scim/v2/Users?filter=userName%20eq%20%22{name}%22"),
        None,
    )
    .await;
    reply.body["Resources"][0]
        .as_object()
        .map(|user| Value::Object(user.clone()))
}

/// The tokens of two tenants, `a` and `b`, that feed each other.
struct Tenants {
    admin_a: String,
    admin_b: String,
    /// Each tenant's identity provider.
    idp_a: String,
    idp_b: String,
    /// What each side's target writes with, into the other: `from_a` is a
    /// token of b, `from_b` one of a.
    from_a: String,
    from_b: String,
}

async fn two_tenants(server: &TestServer) -> Tenants {
    for tenant in ["a", "b"] {
        server
            .store
            .create_tenant(&TenantId(tenant.to_owned()))
            .await
            .unwrap();
    }
    let all = [SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];
    let scim = [SCOPE_READ, SCOPE_WRITE];
    Tenants {
        admin_a: token(server, "a", "admin-a", &all).await,
        admin_b: token(server, "b", "admin-b", &all).await,
        idp_a: token(server, "a", "idp", &scim).await,
        idp_b: token(server, "b", "idp", &scim).await,
        from_a: token(server, "b", "from-a", &scim).await,
        from_b: token(server, "a", "from-b", &scim).await,
    }
}

/// Two tenants feeding each other: a change goes once around, never back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_between_two_tenants_stops_after_one_round() {
    let server = TestServer::start().await;
    let Tenants {
        admin_a,
        admin_b,
        idp_a: idp,
        from_a,
        from_b,
        ..
    } = two_tenants(&server).await;
    for (tenant, admin, document) in [
        (
            "a",
            &admin_a,
            target(&server, "b", &from_a, "+b", &["from-b"]),
        ),
        (
            "b",
            &admin_b,
            target(&server, "a", &from_b, "+a", &["from-a"]),
        ),
    ] {
        let name = document["name"].as_str().unwrap().to_owned();
        let reply = call(
            &server,
            admin,
            Method::PUT,
            &format!("/t/{tenant}/admin/v1/targets/{name}"),
            Some(document),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // The identity provider creates a user in a, then changes it.
    let reply = call(
        &server,
        &idp,
        Method::POST,
        "/t/a/scim/v2/Users",
        Some(
            json!({"schemas": [USER], "userName": "ana", "externalId": "hr-1",
                    "title": "Agent", "active": true}),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let at_b = user_named(&server, "b", &admin_b, "ana").await;
        if at_b.as_ref().is_some_and(|user| user["title"] == "Agent+b") {
            break;
        }
        assert!(Instant::now() < deadline, "never reached b: {at_b:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = call(
        &server,
        &idp,
        Method::PATCH,
        &format!("/t/a/scim/v2/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Lead"}]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let at_b = user_named(&server, "b", &admin_b, "ana").await;
        if at_b.as_ref().is_some_and(|user| user["title"] == "Lead+b") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change never reached b: {at_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few seconds for a loop to show: nothing comes back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back = entries_by(&server, "a", &admin_a, "from-b").await;
    assert!(back.is_empty(), "b wrote back into a: {back:?}");
    let there = entries_by(&server, "b", &admin_b, "from-a").await;
    assert_eq!(there.len(), 2, "one create and one update at b: {there:?}");
    let at_a = user_named(&server, "a", &admin_a, "ana").await.unwrap();
    assert_eq!(at_a["title"], "Lead", "{at_a}");
    let at_b = user_named(&server, "b", &admin_b, "ana").await.unwrap();
    assert_eq!(at_b["title"], "Lead+b", "{at_b}");
    // b's worker passed over the changes it would have sent back, and says
    // so in its metrics.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.root))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.contains("skipped-origin") && line.contains("tenant=\"b\"")),
        "{metrics}"
    );
}

/// A target added after its own system's writes have arrived: its first
/// step pushes every resource (no cursor yet), and that push must leave out
/// what the target's own client wrote last, as the feed does (this raced
/// in the test above: b's worker started after the user reached b).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_target_does_not_push_back_what_its_system_wrote() {
    let server = TestServer::start().await;
    let Tenants {
        admin_a,
        admin_b,
        idp_a,
        idp_b,
        from_a,
        from_b,
    } = two_tenants(&server).await;
    let put_target = |tenant: &'static str, admin: String, document: Value| {
        let server = &server;
        async move {
            let name = document["name"].as_str().unwrap().to_owned();
            let reply = call(
                server,
                &admin,
                Method::PUT,
                &format!("/t/{tenant}/admin/v1/targets/{name}"),
                Some(document),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
    };
    put_target(
        "a",
        admin_a.clone(),
        target(&server, "b", &from_a, "+b", &["from-b"]),
    )
    .await;
    for (tenant, token, name) in [("a", &idp_a, "ana"), ("b", &idp_b, "bea")] {
        let reply = call(
            &server,
            token,
            Method::POST,
            &format!("/t/{tenant}/scim/v2/Users"),
            Some(json!({"schemas": [USER], "userName": name, "title": "Agent", "active": true})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while user_named(&server, "b", &admin_b, "ana").await.is_none() {
        assert!(Instant::now() < deadline, "ana never reached b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Now b's target to a: its first push sends bea (b's own), not ana.
    put_target(
        "b",
        admin_b.clone(),
        target(&server, "a", &from_b, "+a", &["from-a"]),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while user_named(&server, "a", &admin_a, "bea").await.is_none() {
        assert!(Instant::now() < deadline, "bea never reached a");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back: Vec<Value> = entries_by(&server, "a", &admin_a, "from-b")
        .await
        .into_iter()
        .filter(|entry| entry["userName"] == "ana")
        .collect();
    assert!(back.is_empty(), "b pushed ana back into a: {back:?}");
    let at_a = user_named(&server, "a", &admin_a, "ana").await.unwrap();
    assert_eq!(at_a["title"], "Agent", "{at_a}");
}

/// The tenant's origin settings: a Genesys `sourceOrg` declared by a
/// custom schema, `hr` the primary directory.
async fn origin_policy(server: &TestServer, policy: &str) {
    let schema = json!({"id": GENESYS, "name": "Genesys", "attributes": [
        {"name": "sourceOrg", "type": "string"}]});
    let reply = server
        .admin(Method::PUT, &format!("/schemas/{GENESYS}"), Some(schema))
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let mut settings = server.admin(Method::GET, "/settings", None).await.body;
    settings["originAttribute"] = json!(SOURCE_ORG.to_lowercase());
    settings["expectedOrigin"] = json!("hr");
    settings["foreignOriginWrites"] = json!(policy);
    let reply = server.admin(Method::PUT, "/settings", Some(settings)).await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let stored = server.admin(Method::GET, "/settings", None).await.body;
    // Stored in its canonical spelling.
    assert_eq!(stored["originAttribute"], SOURCE_ORG, "{stored}");
    assert_eq!(stored["foreignOriginWrites"], policy, "{stored}");
}

fn tagged(name: &str, org: &str) -> Value {
    json!({"schemas": [USER, GENESYS], "userName": name, "title": "Agent", GENESYS: {"sourceOrg": org}})
}

/// The writes a foreign directory could make, each tagged `org-b`, on an
/// existing user `id` (tagged `hr`) where they need one.
fn foreign_writes(id: &str) -> Vec<(&'static str, Method, String, Value)> {
    let patch = |operations: Value| json!({"schemas": [PATCH_OP], "Operations": operations});
    vec![
        (
            "POST",
            Method::POST,
            "/Users".to_owned(),
            tagged("intruder", "org-b"),
        ),
        (
            "PUT",
            Method::PUT,
            format!("/Users/{id}"),
            tagged("ana", "org-b"),
        ),
        (
            "PATCH by URN path",
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "path": SOURCE_ORG, "value": "org-b"}])),
        ),
        (
            "path-less PATCH",
            Method::PATCH,
            format!("/Users/{id}"),
            patch(
                json!([{"op": "replace", "value": {GENESYS: {"sourceOrg": "org-b"}, "title": "X"}}]),
            ),
        ),
        (
            "path-less PATCH by URN key",
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "value": {SOURCE_ORG: "org-b"}}])),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_writes_are_refused_naming_the_attribute() {
    let server = TestServer::start().await;
    origin_policy(&server, "refuse").await;
    let reply = server.post("/Users", tagged("ana", "hr")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let untagged = server
        .post("/Users", json!({"schemas": [USER], "userName": "plain"}))
        .await;
    assert_eq!(untagged.status, StatusCode::CREATED, "{}", untagged.body);
    let before = server.get(&format!("/Users/{id}")).await.body;
    for (name, method, path, body) in foreign_writes(&id) {
        let reply = server.call(method, &path, Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(SOURCE_ORG) && detail.contains("'hr'"),
            "{name}: {detail}"
        );
    }
    // Bulk: the operation refused alone.
    let reply = server
        .post(
            "/Bulk",
            json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": tagged("bulky", "org-b")}]}),
        )
        .await;
    assert_eq!(
        reply.body["Operations"][0]["status"], "400",
        "{}",
        reply.body
    );
    assert_eq!(server.get(&format!("/Users/{id}")).await.body, before);
    let found = server
        .get("/Users?filter=userName%20eq%20%22intruder%22")
        .await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_writes_are_ignored_but_audited() {
    let server = TestServer::start().await;
    origin_policy(&server, "ignore").await;
    let reply = server.post("/Users", tagged("ana", "hr")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let before = server.get(&format!("/Users/{id}")).await.body;
    for (name, method, path, body) in foreign_writes(&id) {
        let reply = server.call(method.clone(), &path, Some(body)).await;
        assert!(reply.status.is_success(), "{name}: {}", reply.body);
        // Answered as if applied.
        assert_eq!(
            reply.body[GENESYS]["sourceOrg"], "org-b",
            "{name}: {}",
            reply.body
        );
    }
    let reply = server
        .post(
            "/Bulk",
            json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": tagged("bulky", "org-b")}]}),
        )
        .await;
    assert_eq!(
        reply.body["Operations"][0]["status"], "201",
        "{}",
        reply.body
    );
    // Nothing stored.
    assert_eq!(server.get(&format!("/Users/{id}")).await.body, before);
    for name in ["intruder", "bulky"] {
        let found = server
            .get(&format!("/Users?filter=userName%20eq%20%22{name}%22"))
            .await;
        assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    }
    // Audited: one `ignored` entry a write, with its origin; the accepted
    // create carries its origin too.
    let reply = server.admin(Method::GET, "/audit?count=1000", None).await;
    let entries = reply.body["Resources"].as_array().unwrap().clone();
    let ignored: Vec<&Value> = entries
        .iter()
        .filter(|e| e["operation"] == "ignored")
        .collect();
    assert_eq!(ignored.len(), 6, "{entries:?}");
    assert!(
        ignored.iter().all(|entry| entry["origin"] == "org-b"),
        "{ignored:?}"
    );
    let created = entries
        .iter()
        .find(|entry| entry["operation"] == "create" && entry["resourceId"] == id.as_str())
        .unwrap();
    assert_eq!(created["origin"], "hr", "{created}");
}

/// The settings are checked: an undeclared attribute or a policy without
/// its values is refused, naming the setting, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_settings_are_checked() {
    let server = TestServer::start().await;
    let settings = server.admin(Method::GET, "/settings", None).await.body;
    for (change, named) in [
        (json!({"originAttribute": SOURCE_ORG}), "originAttribute"),
        (
            json!({"foreignOriginWrites": "refuse"}),
            "foreignOriginWrites",
        ),
        (
            json!({"originAttribute": "emails", "expectedOrigin": "hr"}),
            "originAttribute",
        ),
        (
            json!({"foreignOriginWrites": "maybe"}),
            "foreignOriginWrites",
        ),
        // A value never returned (its hash would be shown in audit entries
        // and refusals), or one the server sets, is no tag.
        (json!({"originAttribute": "password"}), "originAttribute"),
        (
            json!({"originAttribute": "urn:ietf:params:scim:schemas:core:2.0:User:password"}),
            "originAttribute",
        ),
        (json!({"originAttribute": "id"}), "originAttribute"),
        // Refusing writes needs a tag to expect.
        (
            json!({"originAttribute": "title", "expectedOrigin": " ", "foreignOriginWrites": "refuse"}),
            "foreignOriginWrites",
        ),
    ] {
        let mut body = settings.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let reply = server.admin(Method::PUT, "/settings", Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{change}: {}",
            reply.body
        );
        assert!(
            reply.body["detail"].as_str().unwrap().contains(named),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        server.admin(Method::GET, "/settings", None).await.body,
        settings
    );
}
