//! Emergency offboarding over HTTP (issue 14 item 5): `POST
//! /admin/v1/users/{id}/offboard` deactivates and locks a user in one
//! write, revokes its entitlements and delivers it to every target before
//! it answers; no identity provider write (PUT, PATCH in every spelling of
//! `active`, Bulk) reactivates it until `POST /admin/v1/users/{id}/unlock`.
//! Runs on SQLite, and on PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{create, eventually, group, put_rules, urlencode, CC, PATCH, USER};

const LOCK: &str = "urn:muster:params:scim:schemas:extension:lock:2.0:User";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A rule set that grants members of `Agents` a role, a skill and a
/// license, and places everyone in a management unit.
const RULES: &str = r#"
[catalog]
divisions = ["Home", "Customer Support"]
licenses = ["CX 1"]
roles = [{ name = "Agent", license = "CX 1" }]
skills = ["Billing"]
languages = ["English"]
management_units = [{ name = "Manila Voice", division = "Customer Support" }]

[defaults]
home_division = "Home"

[[rules]]
id = "agents"
when = 'groups[display eq "Agents"]'
grants = [{ role = "Agent", division = "Customer Support" }]
skills = [{ name = "Billing", proficiency = 3 }]
languages = [{ name = "English", proficiency = 5 }]
licenses = ["CX 1"]
management_unit = "Manila Voice"
"#;

fn agent(user_name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "active": true,
        "title": "Agent",
        "name": {"givenName": "Ana", "familyName": "Lima"},
    })
}

/// The one user named `user_name` at `server`, if there is one.
async fn user_at(server: &TestServer, user_name: &str) -> Option<Value> {
    let filter = format!("userName eq \"{user_name}\"");
    let reply = server
        .get(&format!("/Users?filter={}", urlencode(&filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let resources = reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(resources.len() <= 1, "duplicates: {resources:?}");
    resources.into_iter().next()
}

/// Puts a SCIM target `downstream` (a second Muster) mapping `active`.
async fn put_target(source: &TestServer, target: &TestServer) {
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "scope": {"groups": "all"},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "title", "expression": "title"},
        ],
    });
    let put = source
        .admin(Method::PUT, "/targets/downstream", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

async fn offboard(server: &TestServer, id: &str, body: Option<Value>) -> muster_testkit::Reply {
    server
        .admin(Method::POST, &format!("/users/{id}/offboard"), body)
        .await
}

async fn user(server: &TestServer, id: &str) -> Value {
    let reply = server.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn offboarding_deactivates_locks_revokes_and_reaches_the_target_before_answering() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let id = create(&source, "/Users", agent("ana.lima@contoso.com")).await;
    group(&source, "Agents", &[&id]).await;
    let rules = put_rules(&source, "", RULES).await;
    assert!(rules.status.is_success(), "{}", rules.body);
    put_target(&source, &target).await;
    let before = user(&source, &id).await;
    assert_eq!(before[CC]["skills"][0]["name"], "Billing", "{before}");
    assert!(before[CC]["licenses"].is_array(), "{before}");
    eventually(10, "the active user at the target", || async {
        user_at(&target, "ana.lima@contoso.com")
            .await
            .filter(|user| user["active"] == json!(true))
    })
    .await;

    let reply = offboard(
        &source,
        &id,
        Some(json!({"reason": "terminated: ticket HR-1234"})),
    )
    .await;
    // At once, with no waiting: the target holds the user inactive when
    // the call answers.
    let at_target = user_at(&target, "ana.lima@contoso.com").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(at_target["active"], json!(false), "{at_target}");
    assert_eq!(reply.body["active"], json!(false), "{}", reply.body);
    assert_eq!(reply.body["locked"], json!(true));
    assert_eq!(reply.body["lock"]["reason"], "terminated: ticket HR-1234");
    assert_eq!(reply.body["lock"]["lockedBy"], "test-admin");
    assert!(reply.body["lock"]["lockedAt"].as_str().is_some());
    let targets = reply.body["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{}", reply.body);
    assert_eq!(targets[0]["target"], "downstream");
    assert_eq!(targets[0]["delivered"], json!(true), "{}", reply.body);

    // Inactive, data kept, entitlements revoked (placement kept), and the
    // lock is Muster's own: not shown over SCIM.
    let after = user(&source, &id).await;
    assert_eq!(after["active"], json!(false));
    assert_eq!(after["title"], "Agent");
    assert_eq!(after["name"]["givenName"], "Ana");
    assert!(after.get(LOCK).is_none(), "{after}");
    let cc = after.get(CC).cloned().unwrap_or(Value::Null);
    for held in ["grants", "skills", "languages", "licenses", "roles"] {
        assert!(cc.get(held).is_none(), "{held} still held: {cc}");
    }
    assert_eq!(cc["managementUnit"]["name"], "Manila Voice", "{cc}");

    // The worker's later pass over the same change sends nothing more: one
    // user at the target, inactive.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let at_target = user_at(&target, "ana.lima@contoso.com").await.unwrap();
    assert_eq!(at_target["active"], json!(false));
}

#[tokio::test]
async fn an_identity_provider_cannot_reactivate_a_locked_user_in_any_spelling() {
    let server = TestServer::start().await;
    let id = create(&server, "/Users", agent("bo@contoso.com")).await;
    let path = format!("/Users/{id}");
    let reply = offboard(&server, &id, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["targets"], json!([]));

    let patch = |operations: Value| json!({"schemas": [PATCH], "Operations": operations});
    let attempts: Vec<(&str, Method, Value)> = vec![
        (
            "PATCH path active",
            Method::PATCH,
            patch(json!([{"op": "replace", "path": "active", "value": true}])),
        ),
        (
            "PATCH Entra's \"True\" string",
            Method::PATCH,
            patch(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        ),
        (
            "PATCH URN-qualified path",
            Method::PATCH,
            patch(json!([{"op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": true}])),
        ),
        (
            "PATCH path-less value",
            Method::PATCH,
            patch(json!([{"op": "replace", "value": {"active": true}}])),
        ),
        (
            "PATCH path-less value, URN key and odd case",
            Method::PATCH,
            patch(json!([{"op": "Add", "value": {
                "urn:ietf:params:scim:schemas:core:2.0:User:ACTIVE": "true"}}])),
        ),
        (
            "PATCH remove then add",
            Method::PATCH,
            patch(json!([{"op": "remove", "path": "active"},
                         {"op": "add", "path": "active", "value": true}])),
        ),
        ("PUT", Method::PUT, {
            let mut body = agent("bo@contoso.com");
            body["active"] = json!(true);
            body
        }),
        (
            "PUT with the URN-qualified key",
            Method::PUT,
            json!({
                "schemas": [USER], "userName": "bo@contoso.com",
                "urn:ietf:params:scim:schemas:core:2.0:User:active": true,
            }),
        ),
    ];
    for (index, (what, method, body)) in attempts.into_iter().enumerate() {
        // Each attempt also changes the title: the rest of the write goes
        // through, only `active` stays false.
        let title = format!("Agent {index}");
        let body = match method {
            Method::PATCH => {
                let mut body = body;
                body["Operations"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"op": "replace", "path": "title", "value": title}));
                body
            }
            _ => {
                let mut body = body;
                body["title"] = json!(title);
                body
            }
        };
        let reply = server.call(method, &path, Some(body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
        assert_eq!(reply.body["active"], json!(false), "{what}: {}", reply.body);
        let stored = user(&server, &id).await;
        assert_eq!(stored["active"], json!(false), "{what}: {stored}");
        assert_eq!(stored["title"], json!(title), "{what}: {stored}");
    }

    // Bulk: PATCH and PUT operations alike.
    let bulk = json!({"schemas": [BULK], "Operations": [
        {"method": "PATCH", "path": path, "data": patch(json!([
            {"op": "replace", "path": "active", "value": true}]))},
        {"method": "PUT", "path": path, "data": {
            "schemas": [USER], "userName": "bo@contoso.com", "active": true}},
    ]});
    let reply = server.post("/Bulk", bulk).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for operation in reply.body["Operations"].as_array().unwrap() {
        let status = operation["status"].as_str().unwrap();
        assert!(status.starts_with('2'), "{}", reply.body);
    }
    assert_eq!(user(&server, &id).await["active"], json!(false));

    // A client cannot reach the lock itself.
    for operation in [
        json!({"op": "remove", "path": LOCK}),
        json!({"op": "remove", "path": format!("{LOCK}:lockedBy")}),
        json!({"op": "replace", "value": {LOCK: {}}}),
    ] {
        let reply = server.patch(&path, patch(json!([operation]))).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{operation}: {}",
            reply.body
        );
    }
    let mut body = agent("bo@contoso.com");
    body[LOCK] = json!({});
    let reply = server.put(&path, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(user(&server, &id).await["active"], json!(false));

    // Unlocked, the identity provider may reactivate it again.
    let unlocked = server
        .admin(Method::POST, &format!("/users/{id}/unlock"), None)
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.body);
    assert_eq!(unlocked.body["locked"], json!(false));
    assert_eq!(unlocked.body["changed"], json!(true));
    assert_eq!(
        unlocked.body["active"],
        json!(false),
        "unlock does not reactivate"
    );
    let reply = server
        .patch(
            &path,
            patch(json!([{"op": "replace", "value": {"active": true}}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(user(&server, &id).await["active"], json!(true));
    let again = server
        .admin(Method::POST, &format!("/users/{id}/unlock"), None)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["changed"], json!(false));
}

#[tokio::test]
async fn a_racing_identity_provider_patch_never_wins_over_the_lock() {
    let server = TestServer::start().await;
    for round in 0..8 {
        let name = format!("race{round}@contoso.com");
        let id = create(&server, "/Users", agent(&name)).await;
        let path = format!("/Users/{id}");
        let reactivate = json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": true}]});
        let (offboarded, patched, put) = tokio::join!(
            offboard(&server, &id, None),
            server.patch(&path, reactivate.clone()),
            server.put(&path, agent(&name)),
        );
        assert_eq!(offboarded.status, StatusCode::OK, "{}", offboarded.body);
        assert!(patched.status.is_success(), "{}", patched.body);
        assert!(put.status.is_success(), "{}", put.body);
        // Whatever the order, once the offboarding answered the user is
        // inactive, and stays so after a later write.
        assert_eq!(user(&server, &id).await["active"], json!(false));
        let later = server.patch(&path, reactivate).await;
        assert_eq!(later.body["active"], json!(false), "{}", later.body);
    }
}

#[tokio::test]
async fn offboarding_names_only_users_of_the_callers_tenant_with_the_admin_scope() {
    let server = TestServer::start().await;
    let id = create(&server, "/Users", agent("cy@contoso.com")).await;
    let group_id = group(&server, "Agents", &[&id]).await;
    for path in [
        "/users/2f0c6b1e-0000-4000-8000-000000000000/offboard".to_owned(),
        "/users/nobody@contoso.com/offboard".to_owned(),
        format!("/users/{group_id}/offboard"),
        "/users/2f0c6b1e-0000-4000-8000-000000000000/unlock".to_owned(),
        format!("/users/{group_id}/unlock"),
    ] {
        let reply = server.admin(Method::POST, &path, None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.body["status"], "404");
    }
    let writer = server.token_with("writer", &[SCOPE_WRITE]).await;
    for action in ["offboard", "unlock"] {
        let reply = server
            .call_as(
                &writer,
                Method::POST,
                &format!("/admin/v1/users/{id}/{action}"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    }
    // A bad body changes nothing.
    for body in [json!({"reason": 5}), json!({"why": "x"}), json!(["x"])] {
        let reply = offboard(&server, &id, Some(body.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
    }
    assert_eq!(user(&server, &id).await["active"], json!(true));
    // By userName too.
    let reply = offboard(&server, "CY@contoso.com", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(id));

    // Another tenant's user is unknown here, and this tenant's is unknown
    // there.
    let other = muster_store::TenantId("other".to_owned());
    server.store.create_tenant(&other).await.unwrap();
    let token = mint_token();
    server
        .store
        .create_token(
            &other,
            muster_store::TokenRecord {
                name: "other-admin".to_owned(),
                secret_hash: token.secret_hash,
                scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into(), SCOPE_ADMIN.into()],
                created: String::new(),
            },
        )
        .await
        .unwrap();
    let theirs = server
        .call_as(
            &token.secret,
            Method::POST,
            "/t/other/scim/v2/Users",
            Some(agent("dee@fabrikam.com")),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    let their_id = theirs.body["id"].as_str().unwrap().to_owned();
    let reply = offboard(&server, &their_id, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    let reply = server
        .call_as(
            &token.secret,
            Method::POST,
            &format!("/t/other/admin/v1/users/{id}/offboard"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    let theirs = server
        .call_as(
            &token.secret,
            Method::GET,
            &format!("/t/other/scim/v2/Users/{their_id}"),
            None,
        )
        .await;
    assert_eq!(theirs.body["active"], json!(true), "{}", theirs.body);
}

#[tokio::test]
async fn a_deleted_user_cannot_be_offboarded() {
    let server = TestServer::start().await;
    let id = create(&server, "/Users", agent("del@contoso.com")).await;
    let deleted = server.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let reply = offboard(&server, &id, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
}

#[tokio::test]
async fn an_identity_providers_active_false_releases_entitlements_at_once_and_keeps_data() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let id = create(&source, "/Users", agent("eve@contoso.com")).await;
    group(&source, "Agents", &[&id]).await;
    let rules = put_rules(&source, "", RULES).await;
    assert!(rules.status.is_success(), "{}", rules.body);
    put_target(&source, &target).await;
    eventually(10, "the user at the target", || async {
        user_at(&target, "eve@contoso.com").await
    })
    .await;
    // Entra's soft delete, in its legacy spelling.
    let reply = source
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": [PATCH], "Operations": [
                {"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // In the write's answer already: nothing held, placement and data kept.
    let cc = reply.body.get(CC).cloned().unwrap_or(Value::Null);
    for held in ["grants", "skills", "languages", "licenses", "roles"] {
        assert!(cc.get(held).is_none(), "{held} still held: {cc}");
    }
    assert_eq!(cc["managementUnit"]["name"], "Manila Voice", "{cc}");
    assert_eq!(reply.body["title"], "Agent");
    assert_eq!(reply.body["externalId"], "ext-eve@contoso.com");
    eventually(5, "the user inactive at the target", || async {
        user_at(&target, "eve@contoso.com")
            .await
            .filter(|user| user["active"] == json!(false))
    })
    .await;
    // Not locked: the identity provider may restore it, and the
    // entitlements come back.
    let reply = source
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": [PATCH], "Operations": [
                {"op": "Replace", "path": "active", "value": "True"}]}),
        )
        .await;
    assert_eq!(reply.body["active"], json!(true), "{}", reply.body);
    assert_eq!(
        reply.body[CC]["skills"][0]["name"], "Billing",
        "{}",
        reply.body
    );

    // What it means is in the admin API (and the documentation that
    // /ServiceProviderConfig links).
    let lifecycle = source.admin(Method::GET, "/lifecycle", None).await;
    assert_eq!(
        lifecycle.body["deactivate"]["entitlementsReleased"], "immediately",
        "{}",
        lifecycle.body
    );
    assert!(lifecycle.body["offboardingLock"]["reactivationWhileLocked"].is_string());
}

/// The figures of BENCHMARKS.md ("Issue 14", emergency offboarding): with
/// the target's worker busy with a backlog of creates (rate-limited to 100
/// requests a second), each offboarding's write (the change in the feed,
/// first of any batch it falls in) and its delivery to the SCIM target
/// (done when the call answers). Run with `-- --nocapture` to see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_latency_under_a_delivery_backlog() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "rateLimit": {"requestsPerSecond": 100, "burst": 10},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "active", "expression": "active"},
        ],
    });
    let put = source
        .admin(Method::PUT, "/targets/downstream", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut leavers = Vec::new();
    for index in 0..5 {
        leavers.push(
            create(
                &source,
                "/Users",
                agent(&format!("leaver{index}@contoso.com")),
            )
            .await,
        );
    }
    eventually(10, "the leavers at the target", || async {
        user_at(&target, "leaver4@contoso.com").await
    })
    .await;
    // The backlog: 300 creates the worker delivers at 100 a second.
    for index in 0..300 {
        create(&source, "/Users", agent(&format!("new{index}@contoso.com"))).await;
    }
    let mut written = Vec::new();
    let mut delivered = Vec::new();
    for (index, id) in leavers.iter().enumerate() {
        let started = std::time::Instant::now();
        let reply = offboard(&source, id, None).await;
        let answered = started.elapsed();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let at_target = user_at(&target, &format!("leaver{index}@contoso.com"))
            .await
            .unwrap();
        assert_eq!(at_target["active"], json!(false), "{}", reply.body);
        println!("offboarding {index}: {}", reply.body["timings"]);
        println!("  target: {}", reply.body["targets"][0]);
        written.push(reply.body["timings"]["writtenMs"].as_f64().unwrap());
        delivered.push(answered.as_secs_f64() * 1000.0);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let backlog = target.get("/Users?count=0").await.body["totalResults"].clone();
    println!(
        "offboarding under a backlog (target holds {backlog} of 305 users): written (in the feed) ms {written:?}; at the target when answered, ms {delivered:?}"
    );
    assert!(backlog.as_u64().unwrap() < 305, "no backlog left to jump");
    for (written, delivered) in written.iter().zip(&delivered) {
        assert!(*written < 100.0, "written in {written} ms");
        assert!(*delivered < 1000.0, "delivered in {delivered} ms");
    }
}

#[tokio::test]
async fn a_lock_survives_a_soft_delete_and_the_identity_providers_restore() {
    let server = TestServer::start().await;
    let id = create(&server, "/Users", agent("rehire@contoso.com")).await;
    let reply = offboard(&server, &id, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let deleted = server.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    // Offboarding or unlocking a soft-deleted user: it is not there.
    for action in ["offboard", "unlock"] {
        let reply = server
            .admin(Method::POST, &format!("/users/{id}/{action}"), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{action}: {}",
            reply.body
        );
    }
    // The identity provider's re-POST with the same externalId restores the
    // same id, still locked and inactive.
    let reply = server.post("/Users", agent("rehire@contoso.com")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(id), "{}", reply.body);
    assert_eq!(reply.body["active"], json!(false), "{}", reply.body);
    let reactivate = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": true}]});
    let reply = server
        .patch(&format!("/Users/{id}"), reactivate.clone())
        .await;
    assert_eq!(reply.body["active"], json!(false), "{}", reply.body);
    let unlocked = server
        .admin(Method::POST, &format!("/users/{id}/unlock"), None)
        .await;
    assert_eq!(unlocked.body["changed"], json!(true), "{}", unlocked.body);
    let reply = server.patch(&format!("/Users/{id}"), reactivate).await;
    assert_eq!(reply.body["active"], json!(true), "{}", reply.body);
}

#[tokio::test]
async fn a_schema_declared_at_the_lock_urn_gives_clients_no_hold_on_locks() {
    let server = TestServer::start().await;
    let schema = json!({"id": LOCK, "name": "Lock", "attributes": [
        {"name": "lockedBy", "type": "string"}, {"name": "reason", "type": "string"}]});
    let declared = server
        .admin(Method::PUT, &format!("/schemas/{LOCK}"), Some(schema))
        .await;
    println!("declaring a schema at the lock URN: {}", declared.status);
    if !declared.status.is_success() {
        // Refused outright: nothing more to attack.
        return;
    }
    let free = create(&server, "/Users", agent("free@contoso.com")).await;
    let locked = create(&server, "/Users", agent("locked@contoso.com")).await;
    let reply = offboard(&server, &locked, Some(json!({"reason": "real"}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A client cannot lock a user through the declared schema...
    let reply = server
        .patch(
            &format!("/Users/{free}"),
            json!({"schemas": [PATCH], "Operations": [
                {"op": "add", "path": format!("{LOCK}:lockedBy"), "value": "mallory"},
                {"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let reply = server
        .patch(
            &format!("/Users/{free}"),
            json!({"schemas": [PATCH], "Operations": [
                {"op": "replace", "path": "active", "value": true}]}),
        )
        .await;
    assert_eq!(reply.body["active"], json!(true), "{}", reply.body);
    // ... nor unlock one.
    for operations in [
        json!([{"op": "remove", "path": LOCK}, {"op": "replace", "path": "active", "value": true}]),
        json!([{"op": "replace", "path": format!("{LOCK}:reason"), "value": "x"},
               {"op": "replace", "path": "active", "value": true}]),
    ] {
        let reply = server
            .patch(
                &format!("/Users/{locked}"),
                json!({"schemas": [PATCH], "Operations": operations}),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        assert_eq!(reply.body["active"], json!(false), "{}", reply.body);
    }
    let unlocked = server
        .admin(Method::POST, &format!("/users/{locked}/unlock"), None)
        .await;
    assert_eq!(unlocked.body["changed"], json!(true), "{}", unlocked.body);
}

#[tokio::test]
async fn an_unreachable_target_does_not_hold_back_the_offboarding() {
    let server = TestServer::start().await;
    let document = json!({
        "name": "down",
        "kind": "scim",
        "baseUrl": "http://127.0.0.1:9/scim/v2",
        "auth": {"type": "bearer", "token": "x"},
        "mappings": [{"target": "userName", "expression": "userName"},
                     {"target": "active", "expression": "active"}],
    });
    let put = server
        .admin(Method::PUT, "/targets/down", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let id = create(&server, "/Users", agent("far@contoso.com")).await;
    let started = std::time::Instant::now();
    let reply = offboard(&server, &id, None).await;
    println!(
        "unreachable target: answered in {:?}: {}",
        started.elapsed(),
        reply.body["targets"]
    );
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["locked"], json!(true));
    assert_eq!(reply.body["targets"][0]["target"], "down");
    assert_eq!(
        reply.body["targets"][0]["delivered"],
        json!(false),
        "{}",
        reply.body
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    assert_eq!(user(&server, &id).await["active"], json!(false));
}
