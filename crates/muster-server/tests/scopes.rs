//! Every route and method, with no token, a malformed header and each scope:
//! the scope a route needs comes from the route, not from the path's text.

use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What a route answers a caller who is authenticated.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    /// The route needs this scope.
    Scope(&'static str),
    /// No route serves the method on this path.
    NotAllowed,
}

struct Caller {
    name: &'static str,
    token: Option<String>,
    /// The scopes this caller's token grants (with implication).
    grants: &'static [&'static str],
}

fn allowed(grants: &[&str], scope: &str) -> bool {
    match scope {
        SCOPE_READ => !grants.is_empty(),
        SCOPE_WRITE => grants.contains(&SCOPE_WRITE) || grants.contains(&SCOPE_ADMIN),
        _ => grants.contains(&SCOPE_ADMIN),
    }
}

#[tokio::test]
async fn every_route_checks_the_scope_it_declares() {
    let server = TestServer::start().await;
    let read = server.token_with("reader", &[SCOPE_READ]).await;
    let write = server.token_with("writer", &[SCOPE_WRITE]).await;
    let admin = server.token_with("admin", &[SCOPE_ADMIN]).await;
    let user = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "walker"})),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED);
    let user_id = user.body["id"].as_str().unwrap_or_default().to_owned();
    let group = server
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "walkers"})),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let group_id = group.body["id"].as_str().unwrap_or_default().to_owned();
    let urn = "urn:ietf:params:scim:schemas:extension:walk:2.0:User";
    let schema =
        json!({"id": urn, "name": "Walk", "attributes": [{"name": "code", "type": "string"}]});
    let declared = server
        .admin(
            Method::PUT,
            &format!("/schemas/{urn}"),
            Some(schema.clone()),
        )
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.body);

    // A sync target that refuses every user (`active` as a string), so dead
    // letters exist for the dead-letter routes.
    let downstream = TestServer::start().await;
    let target = json!({
        "name": "walk",
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "active", "expression": "\"refused\""},
        ],
    });
    let put_target = server
        .admin(Method::PUT, "/targets/walk", Some(target.clone()))
        .await;
    assert_eq!(put_target.status, StatusCode::OK, "{}", put_target.body);
    for name in ["walk-letter-1", "walk-letter-2"] {
        let made = server
            .call(
                Method::POST,
                "/Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let letter_ids: Vec<u64> = loop {
        let letters = server.admin(Method::GET, "/sync/dead-letters", None).await;
        let ids: Vec<u64> = letters.body["Resources"]
            .as_array()
            .map(|letters| letters.iter().filter_map(|l| l["id"].as_u64()).collect())
            .unwrap_or_default();
        if ids.len() >= 2 {
            break ids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letters: {}",
            letters.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let retry_path = format!(
        "/admin/v1/sync/dead-letters/{}/retry",
        letter_ids.first().copied().unwrap_or_default()
    );
    let letter_path = format!(
        "/admin/v1/sync/dead-letters/{}",
        letter_ids.get(1).copied().unwrap_or_default()
    );
    let target_path = "/admin/v1/targets/walk".to_owned();
    let user_target_path = format!("/admin/v1/users/{user_id}/targets/walk");
    let provision_path = format!("{user_target_path}/provision");

    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    let new_user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "made-by-walk"});
    let replace_user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "walker"});
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Walker"}]});
    let bulk =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []});
    let settings = json!({"undeclaredAttributes": "reject"});
    let user_path = format!("/scim/v2/Users/{user_id}");
    let group_path = format!("/scim/v2/Groups/{group_id}");
    let schema_path = format!("/admin/v1/schemas/{urn}");
    let stored_path = format!("/admin/v1/resources/Users/{user_id}");
    let explain_path = format!("/admin/v1/users/{user_id}/entitlements/explain");
    let rules = json!({"catalog": {"divisions": ["Home"]}, "defaults": {"home_division": "Home"}});
    let (read_scope, write_scope, admin_scope) = (
        Needs::Scope(SCOPE_READ),
        Needs::Scope(SCOPE_WRITE),
        Needs::Scope(SCOPE_ADMIN),
    );
    let no = Needs::NotAllowed;
    // Soft-deleted users for the restore and purge routes.
    let mut deleted_ids = Vec::new();
    for name in ["walk-restored", "walk-purged"] {
        let made = server
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}),
            )
            .await;
        let id = made.body["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            server.delete(&format!("/Users/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
        deleted_ids.push(id);
    }
    let restore_path = format!("/admin/v1/users/{}/restore", deleted_ids[0]);
    let purge_path = format!("/admin/v1/users/{}/purge", deleted_ids[1]);
    let routes: Vec<(Method, String, Needs, Option<Value>)> = vec![
        (
            Method::GET,
            "/scim/v2/ServiceProviderConfig".into(),
            read_scope,
            None,
        ),
        (
            Method::POST,
            "/scim/v2/ServiceProviderConfig".into(),
            no,
            Some(search.clone()),
        ),
        (Method::GET, "/scim/v2/Schemas".into(), read_scope, None),
        (Method::DELETE, "/scim/v2/Schemas".into(), no, None),
        (
            Method::GET,
            format!("/scim/v2/Schemas/{urn}"),
            read_scope,
            None,
        ),
        (
            Method::GET,
            "/scim/v2/ResourceTypes".into(),
            read_scope,
            None,
        ),
        (
            Method::GET,
            "/scim/v2/ResourceTypes/User".into(),
            read_scope,
            None,
        ),
        (
            Method::PUT,
            "/scim/v2/ResourceTypes/User".into(),
            no,
            Some(search.clone()),
        ),
        (
            Method::POST,
            "/scim/v2/Bulk".into(),
            write_scope,
            Some(bulk.clone()),
        ),
        (Method::GET, "/scim/v2/Bulk".into(), no, None),
        (
            Method::POST,
            "/scim/v2/.search".into(),
            read_scope,
            Some(search.clone()),
        ),
        (Method::GET, "/scim/v2/.search".into(), no, None),
        (
            Method::PUT,
            "/scim/v2/.search".into(),
            no,
            Some(search.clone()),
        ),
        (
            Method::PATCH,
            "/scim/v2/.search".into(),
            no,
            Some(patch.clone()),
        ),
        (Method::DELETE, "/scim/v2/.search".into(), no, None),
        (Method::GET, "/scim/v2/Users".into(), read_scope, None),
        (
            Method::POST,
            "/scim/v2/Users".into(),
            write_scope,
            Some(new_user.clone()),
        ),
        (
            Method::PUT,
            "/scim/v2/Users".into(),
            no,
            Some(new_user.clone()),
        ),
        (Method::DELETE, "/scim/v2/Users".into(), no, None),
        (
            Method::POST,
            "/scim/v2/Users/.search".into(),
            read_scope,
            Some(search.clone()),
        ),
        (Method::GET, "/scim/v2/Users/.search".into(), no, None),
        (
            Method::PUT,
            "/scim/v2/Users/.search".into(),
            no,
            Some(replace_user.clone()),
        ),
        (
            Method::PATCH,
            "/scim/v2/Users/.search".into(),
            no,
            Some(patch.clone()),
        ),
        (Method::DELETE, "/scim/v2/Users/.search".into(), no, None),
        (
            Method::POST,
            "/scim/v2/Groups/.search".into(),
            read_scope,
            Some(search.clone()),
        ),
        (
            Method::PUT,
            "/scim/v2/Groups/.search".into(),
            no,
            Some(search.clone()),
        ),
        (Method::GET, user_path.clone(), read_scope, None),
        (
            Method::PUT,
            user_path.clone(),
            write_scope,
            Some(replace_user.clone()),
        ),
        (
            Method::PATCH,
            user_path.clone(),
            write_scope,
            Some(patch.clone()),
        ),
        (Method::POST, user_path.clone(), no, Some(new_user.clone())),
        (Method::GET, group_path.clone(), read_scope, None),
        (
            Method::PATCH,
            group_path.clone(),
            write_scope,
            Some(patch.clone()),
        ),
        (Method::GET, "/admin/v1/schemas".into(), admin_scope, None),
        (
            Method::POST,
            "/admin/v1/schemas".into(),
            no,
            Some(schema.clone()),
        ),
        (Method::GET, schema_path.clone(), admin_scope, None),
        (
            Method::PUT,
            schema_path.clone(),
            admin_scope,
            Some(schema.clone()),
        ),
        (Method::PATCH, schema_path.clone(), no, Some(schema.clone())),
        (
            Method::GET,
            "/admin/v1/attributes".into(),
            admin_scope,
            None,
        ),
        (Method::GET, "/admin/v1/settings".into(), admin_scope, None),
        (
            Method::PUT,
            "/admin/v1/settings".into(),
            admin_scope,
            Some(settings.clone()),
        ),
        (Method::DELETE, "/admin/v1/settings".into(), no, None),
        (Method::GET, stored_path.clone(), admin_scope, None),
        (
            Method::PUT,
            "/admin/v1/rules".into(),
            admin_scope,
            Some(rules.clone()),
        ),
        (Method::GET, "/admin/v1/rules".into(), admin_scope, None),
        (
            Method::POST,
            "/admin/v1/rules".into(),
            no,
            Some(rules.clone()),
        ),
        (
            Method::GET,
            "/admin/v1/rules/history".into(),
            admin_scope,
            None,
        ),
        (
            Method::GET,
            "/admin/v1/rules/stats".into(),
            admin_scope,
            None,
        ),
        (Method::GET, explain_path.clone(), admin_scope, None),
        (Method::DELETE, explain_path.clone(), no, None),
        (
            Method::POST,
            "/admin/v1/expressions/evaluate".into(),
            admin_scope,
            Some(json!({"expression": "Join(\" \", [givenName], [surname])"})),
        ),
        (
            Method::GET,
            "/admin/v1/expressions/evaluate".into(),
            no,
            None,
        ),
        (Method::GET, "/admin/v1/targets".into(), admin_scope, None),
        (
            Method::POST,
            "/admin/v1/targets".into(),
            no,
            Some(target.clone()),
        ),
        (Method::GET, target_path.clone(), admin_scope, None),
        (
            Method::PUT,
            target_path.clone(),
            admin_scope,
            Some(target.clone()),
        ),
        (Method::PATCH, target_path.clone(), no, Some(target.clone())),
        (Method::POST, target_path.clone(), no, Some(target.clone())),
        (
            Method::POST,
            format!("{target_path}/resume"),
            admin_scope,
            None,
        ),
        (Method::GET, format!("{target_path}/resume"), no, None),
        (
            Method::GET,
            "/admin/v1/sync/dead-letters".into(),
            admin_scope,
            None,
        ),
        (Method::POST, "/admin/v1/sync/dead-letters".into(), no, None),
        (
            Method::DELETE,
            "/admin/v1/sync/dead-letters".into(),
            no,
            None,
        ),
        (Method::POST, retry_path.clone(), admin_scope, None),
        (Method::GET, retry_path.clone(), no, None),
        (Method::DELETE, letter_path.clone(), admin_scope, None),
        (Method::GET, letter_path.clone(), no, None),
        (Method::POST, letter_path.clone(), no, None),
        (Method::GET, user_target_path.clone(), admin_scope, None),
        (Method::DELETE, user_target_path.clone(), no, None),
        (Method::POST, user_target_path.clone(), no, None),
        (
            Method::POST,
            format!("{provision_path}?dryRun=true"),
            admin_scope,
            None,
        ),
        (Method::GET, provision_path.clone(), no, None),
        (
            Method::POST,
            format!("/admin/v1/users/{user_id}/offboard"),
            admin_scope,
            None,
        ),
        (
            Method::GET,
            format!("/admin/v1/users/{user_id}/offboard"),
            no,
            None,
        ),
        (
            Method::POST,
            format!("/admin/v1/users/{user_id}/unlock"),
            admin_scope,
            None,
        ),
        (
            Method::DELETE,
            format!("/admin/v1/users/{user_id}/unlock"),
            no,
            None,
        ),
        (
            Method::GET,
            "/admin/v1/users/deleted".into(),
            admin_scope,
            None,
        ),
        (Method::POST, "/admin/v1/users/deleted".into(), no, None),
        (Method::POST, restore_path.clone(), admin_scope, None),
        (Method::GET, restore_path.clone(), no, None),
        (Method::POST, purge_path.clone(), admin_scope, None),
        (Method::DELETE, purge_path.clone(), no, None),
        (Method::GET, "/metrics".into(), admin_scope, None),
        (Method::POST, "/metrics".into(), no, None),
        (
            Method::GET,
            "/admin/v1/audit?user=alice&count=5".into(),
            admin_scope,
            None,
        ),
        (Method::POST, "/admin/v1/audit".into(), no, None),
        (Method::DELETE, "/admin/v1/audit".into(), no, None),
        (Method::GET, "/admin/v1/lifecycle".into(), admin_scope, None),
        (Method::PUT, "/admin/v1/lifecycle".into(), no, None),
        // Deletes last: they remove what the other rows use.
        (Method::DELETE, target_path.clone(), admin_scope, None),
        (Method::DELETE, schema_path.clone(), admin_scope, None),
        (Method::DELETE, group_path.clone(), write_scope, None),
        (Method::DELETE, user_path.clone(), write_scope, None),
    ];
    let callers = [
        Caller {
            name: "read",
            token: Some(read),
            grants: &[SCOPE_READ],
        },
        Caller {
            name: "write",
            token: Some(write),
            grants: &[SCOPE_WRITE],
        },
        Caller {
            name: "admin",
            token: Some(admin),
            grants: &[SCOPE_ADMIN],
        },
    ];
    let mut failures = Vec::new();
    for (method, path, needs, body) in &routes {
        // Unauthenticated callers learn nothing about the route.
        for (label, header) in [
            ("no token", None),
            ("malformed header", Some("Bearer")),
            ("basic scheme", Some("Basic dXNlcjpwYXNz")),
            ("unknown token", Some("Bearer mst_not-a-token")),
        ] {
            let mut request = server
                .http
                .request(method.clone(), format!("{}{path}", server.root));
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let reply = server.send(request, body.clone()).await;
            if reply.status != StatusCode::UNAUTHORIZED {
                failures.push(format!("{method} {path} with {label}: {}", reply.status));
            }
        }
        // A second delete finds nothing, a second create a clash.
        let mut done_once = false;
        for caller in &callers {
            let token = caller.token.as_deref().unwrap_or_default();
            let reply = server
                .call_as(token, method.clone(), path, body.clone())
                .await;
            let expected_ok = match needs {
                Needs::NotAllowed => {
                    if reply.status != StatusCode::METHOD_NOT_ALLOWED {
                        failures.push(format!(
                            "{method} {path} as {}: {} (expected 405)",
                            caller.name, reply.status
                        ));
                    }
                    continue;
                }
                Needs::Scope(scope) => allowed(caller.grants, scope),
            };
            let repeat =
                done_once && matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::CONFLICT);
            done_once |= reply.status.is_success();
            if expected_ok && !reply.status.is_success() && !repeat {
                failures.push(format!(
                    "{method} {path} as {}: {} {} (expected success)",
                    caller.name, reply.status, reply.body
                ));
            }
            if !expected_ok && reply.status != StatusCode::FORBIDDEN {
                failures.push(format!(
                    "{method} {path} as {}: {} (expected 403)",
                    caller.name, reply.status
                ));
            }
            if reply.status == StatusCode::FORBIDDEN
                && reply.body["schemas"][0] != "urn:ietf:params:scim:api:messages:2.0:Error"
            {
                failures.push(format!("{method} {path}: 403 without a SCIM error body"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `POST /oauth/token` needs no bearer token and no scope: whatever
/// `Authorization` a caller sends, the answer is an OAuth error about the
/// client's credentials (RFC 6749 section 5.2), never a SCIM `401`/`403`;
/// other methods are not served there.
#[tokio::test]
async fn the_token_endpoint_needs_no_bearer_token() {
    let server = TestServer::start().await;
    let read = server.token_with("reader", &[SCOPE_READ]).await;
    let admin = server.token_with("admin", &[SCOPE_ADMIN]).await;
    let url = format!("{}/oauth/token", server.root);
    let mut failures = Vec::new();
    for (label, header, status, error) in [
        (
            "no credentials",
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown Basic client",
            Some("Basic bWNsX3g6bWNzX3k=".to_owned()),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "a reader's bearer token",
            Some(format!("Bearer {read}")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "an admin's bearer token",
            Some(format!("Bearer {admin}")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let mut request = server
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        if let Some(value) = &header {
            request = request.header("authorization", value);
        }
        let reply = server.send(request, None).await;
        if reply.status != status || reply.body["error"] != error {
            failures.push(format!(
                "POST /oauth/token with {label}: {} {}",
                reply.status, reply.body
            ));
        }
    }
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        for token in [None, Some(&admin)] {
            let mut request = server.http.request(method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let reply = server.send(request, None).await;
            if reply.status != StatusCode::METHOD_NOT_ALLOWED {
                failures.push(format!("{method} /oauth/token: {}", reply.status));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
