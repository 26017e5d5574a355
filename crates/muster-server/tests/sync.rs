//! The sync engine end to end over HTTP: a Muster server delivers to a
//! second Muster server as its SCIM target, through the admin API
//! (`/admin/v1/targets`), with Entra-style mappings; and what a target
//! document may not do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use std::time::Duration;

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, urlencode};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The one user named `user_name` at `server`, if there is one.
async fn user_at(server: &TestServer, user_name: &str) -> Option<Value> {
    let filter = format!("userName eq \"{user_name}\"");
    let url = format!("/Users?filter={}", urlencode(&filter));
    let reply = server.get(&url).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let resources = reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        resources.len() <= 1,
        "duplicates of {user_name}: {resources:?}"
    );
    resources.into_iter().next()
}

fn target_document(target: &TestServer, extra: Value) -> Value {
    let mut document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "scope": {"users": "not (active eq false)", "groups": "all"},
        "rateLimit": {"requestsPerSecond": 500, "burst": 50},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"},
            {"target": "phoneNumbers[type eq \"work\"].value",
             "expression": "Append(\"tel:\", StripSpaces(Item([phoneNumbers.value], 1)))"},
            {"target": "title", "expression": "IIF([title]=\"Level 2 Support\", \"Quality Evaluator\", [title])"},
            {"target": format!("{ENTERPRISE}:department"), "expression": format!("[{ENTERPRISE}:department]")},
        ],
    });
    if let (Some(document), Some(extra)) = (document.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            document.insert(key.clone(), value.clone());
        }
    }
    document
}

#[tokio::test]
async fn changes_reach_a_second_muster_mapped() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let put = source
        .admin(
            Method::PUT,
            "/targets/downstream",
            Some(target_document(&target, json!({}))),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(
        put.body["document"]["auth"]["token"],
        json!({"redacted": true})
    );
    assert!(!put.body.to_string().contains(&target.token));

    // Entra creates an agent.
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "ana.lima@contoso.com",
                "externalId": "e-ana",
                "active": true,
                "name": {"givenName": "Ana", "familyName": "Lima"},
                "title": "Level 2 Support",
                "phoneNumbers": [{"type": "work", "value": "+1 555 123 4567"}],
                ENTERPRISE: {"department": "Sales"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let delivered = eventually(10, "the user at the target", || {
        user_at(&target, "ana.lima@contoso.com")
    })
    .await;
    assert_eq!(delivered["displayName"], "Ana Lima");
    assert_eq!(delivered["title"], "Quality Evaluator");
    assert_eq!(delivered["externalId"], "e-ana");
    assert_eq!(delivered["phoneNumbers"][0]["value"], "tel:+15551234567");
    assert_eq!(delivered[ENTERPRISE]["department"], "Sales");
    let remote_id = delivered["id"].as_str().unwrap().to_owned();

    // Entra's PATCH (path-less, with an empty value that clears) arrives mapped.
    let patched = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "title", "value": "Team Lead"},
                    {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Support"},
                ]
            }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let updated = eventually(10, "the PATCH at the target", || async {
        let user = user_at(&target, "ana.lima@contoso.com").await?;
        (user["title"] == "Team Lead").then_some(user)
    })
    .await;
    assert_eq!(updated[ENTERPRISE]["department"], "Support");
    assert_eq!(
        updated["id"],
        remote_id.as_str(),
        "updated in place, not created again"
    );

    // Removing a value at the source clears it at the target.
    let cleared = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "title"}]
            }),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    eventually(10, "the cleared title at the target", || async {
        let user = user_at(&target, "ana.lima@contoso.com").await?;
        user.get("title").is_none().then_some(())
    })
    .await;

    // A group and its membership arrive, members as the target's ids.
    let group = source
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Group_CC_Agents_Tier1",
                "members": [{"value": id}]
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let remote_group = eventually(10, "the group at the target", || async {
        let reply = target
            .get(&format!(
                "/Groups?filter={}",
                urlencode("displayName eq \"Group_CC_Agents_Tier1\"")
            ))
            .await;
        reply.body["Resources"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(remote_group["members"][0]["value"], remote_id.as_str());

    // The end-to-end explain names expression, source, value sent.
    let explain = source
        .admin(
            Method::GET,
            "/users/ana.lima@contoso.com/targets/downstream",
            None,
        )
        .await;
    assert_eq!(explain.status, StatusCode::OK, "{}", explain.body);
    assert_eq!(explain.body["remoteId"], remote_id.as_str());
    let display = explain.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["target"] == "displayName")
        .cloned()
        .unwrap();
    assert_eq!(display["sent"], "Ana Lima");
    assert_eq!(display["sources"][0]["value"], "Ana");
    assert_eq!(display["sources"][0]["setBy"], "test-admin");

    // Deactivation at the source deactivates at the target (deletion:
    // deactivate is the default), and deletion keeps it deactivated.
    let deleted = source.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    eventually(10, "the deactivation at the target", || async {
        let user = user_at(&target, "ana.lima@contoso.com").await?;
        (user["active"] == false).then_some(())
    })
    .await;

    let status = source.admin(Method::GET, "/targets/downstream", None).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["deadLetters"], 0, "{}", status.body);
    let metrics = source
        .call_as(&source.token, Method::GET, "/metrics", None)
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn provision_on_demand_dry_run_sends_no_write() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    // Paused from the start, so only the on-demand call delivers.
    let put = source
        .admin(
            Method::PUT,
            "/targets/downstream",
            Some(target_document(&target, json!({}))),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "pilot@contoso.com",
                "name": {"givenName": "Pi", "familyName": "Lot"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let dry = source
        .admin(
            Method::POST,
            "/users/pilot@contoso.com/targets/downstream/provision?dryRun=true",
            None,
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let requests = dry.body["requests"].as_array().cloned().unwrap_or_default();
    // Either the worker delivered it already (nothing to write) or the dry
    // run shows the POST it would send.
    if let Some(first) = requests.first() {
        assert_eq!(first["method"], "POST");
        assert_eq!(first["body"]["displayName"], "Pi Lot");
        assert!(!first.to_string().contains(&target.token));
    }
}

#[tokio::test]
async fn documents_are_refused_with_the_field_and_the_reason() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    for (change, field, reason) in [
        (json!({"baseUrl": "not a url"}), "baseUrl", "not a URL"),
        (
            json!({"baseUrl": "ftp://example.com/scim"}),
            "baseUrl",
            "http",
        ),
        (
            json!({"mappings": [{"target": "title", "expression": "[costCentre]"}]}),
            "mappings[0].expression",
            "costCentre",
        ),
        (
            json!({"mappings": [{"target": "title", "expression": "Frobnicate([title])"}]}),
            "mappings[0].expression",
            "unknown function",
        ),
        (
            json!({"mappings": [{"target": "title", "expression": "[password]"}]}),
            "mappings[0].expression",
            "never returned",
        ),
        (
            json!({"scope": {"users": "nosuch eq 1"}}),
            "scope.users",
            "nosuch",
        ),
        (json!({"deletion": "shred"}), "", "shred"),
        (json!({"surprise": true}), "", "surprise"),
        (json!({"name": "other"}), "name", "URL"),
    ] {
        let document = target_document(&target, change.clone());
        let reply = source
            .admin(Method::PUT, "/targets/downstream", Some(document))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{change}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{change}: {detail}");
        assert!(detail.contains(reason), "{change}: {detail}");
    }
    let none = source.admin(Method::GET, "/targets", None).await;
    assert_eq!(none.body["totalResults"], 0, "nothing was stored");
    // A read token may not touch targets.
    let reader = source.token_with("reader", &["scim.read"]).await;
    let denied = source
        .call_as(&reader, Method::GET, "/admin/v1/targets", None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_kept_on_a_redacted_put() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let document = target_document(&target, json!({}));
    let put = source
        .admin(Method::PUT, "/targets/downstream", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    // Put back what GET returned (token redacted): the stored token is kept.
    let shown = source.admin(Method::GET, "/targets/downstream", None).await;
    let mut again = shown.body["document"].clone();
    again["rateLimit"]["requestsPerSecond"] = json!(100);
    let put = source
        .admin(Method::PUT, "/targets/downstream", Some(again))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    // And deliveries still authenticate with it.
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "sealed@contoso.com"
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let reached = tokio::time::timeout(
        Duration::from_secs(10),
        eventually(10, "the user at the target", || {
            user_at(&target, "sealed@contoso.com")
        }),
    )
    .await;
    if reached.is_err() {
        let state = source.admin(Method::GET, "/targets/downstream", None).await;
        let letters = source.admin(Method::GET, "/sync/dead-letters", None).await;
        panic!("not delivered: {} {}", state.body, letters.body);
    }
    assert!(
        !source.stored_text().await.contains(&target.token),
        "the target token is stored in clear"
    );
}

async fn create_user(server: &TestServer, user_name: &str) -> String {
    let reply = server
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "externalId": format!("hr-{user_name}")
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn count_at(server: &TestServer) -> usize {
    let reply = server.get("/Users?count=0").await;
    usize::try_from(reply.body["totalResults"].as_u64().unwrap_or(0)).unwrap_or(0)
}

#[tokio::test]
async fn the_deletion_guard_pauses_a_mass_removal_until_an_admin_resumes() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let document = json!({
        "name": "guarded",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "deletion": "delete",
        "rateLimit": {"requestsPerSecond": 500, "burst": 50},
        "deletionGuard": {"maxShare": 0.2, "windowSeconds": 3600, "minimum": 1}
    });
    let put = source
        .admin(Method::PUT, "/targets/guarded", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(create_user(&source, &format!("guard{n}@contoso.com")).await);
    }
    eventually(15, "ten users at the target", || async {
        (count_at(&target).await == 10).then_some(())
    })
    .await;

    // A "reorganisation" that removes half: two go (20%), then the guard pauses.
    for id in ids.iter().take(5) {
        assert_eq!(
            source.delete(&format!("/Users/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let paused = eventually(15, "the pause", || async {
        let reply = source.admin(Method::GET, "/targets/guarded", None).await;
        reply.body["paused"].as_str().map(str::to_owned)
    })
    .await;
    assert!(paused.contains("deletion guard"), "{paused}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_at(&target).await,
        8,
        "the removals stopped at the guard"
    );

    // The admin confirms: the rest goes through.
    let resumed = source
        .admin(Method::POST, "/targets/guarded/resume", None)
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert!(resumed.body.get("paused").is_none(), "{}", resumed.body);
    eventually(15, "the confirmed removals", || async {
        (count_at(&target).await == 5).then_some(())
    })
    .await;
}

/// A token endpoint (RFC 6749 section 4.4) that hands out `access_token`
/// to one client and counts its calls.
async fn start_token_endpoint(
    access_token: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use axum::http::HeaderMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = std::sync::Arc::new(AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let counter = std::sync::Arc::clone(&counter);
            let access_token = access_token.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // Basic base64("muster-client:client-s3cret")
                let expected = "Basic bXVzdGVyLWNsaWVudDpjbGllbnQtczNjcmV0";
                let authorized = headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    == Some(expected);
                if !authorized || !body.contains("grant_type=client_credentials") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": "invalid_client"})),
                    );
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({
                        "access_token": access_token,
                        "token_type": "Bearer",
                        "expires_in": 3600
                    })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/oauth/token"), calls)
}

#[tokio::test]
async fn oauth_client_credentials_fetch_one_token_and_reuse_it() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let (token_url, calls) = start_token_endpoint(target.token.clone()).await;
    let document = json!({
        "name": "oauth",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {
            "type": "oauth-client-credentials",
            "tokenUrl": token_url,
            "clientId": "muster-client",
            "clientSecret": "client-s3cret"
        },
        "rateLimit": {"requestsPerSecond": 500, "burst": 50}
    });
    let put = source
        .admin(Method::PUT, "/targets/oauth", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(
        put.body["document"]["auth"]["clientSecret"],
        json!({"redacted": true})
    );
    for n in 0..3 {
        create_user(&source, &format!("oauth{n}@contoso.com")).await;
    }
    eventually(15, "three users at the target", || async {
        (count_at(&target).await == 3).then_some(())
    })
    .await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one access token, reused until it expires"
    );
}

/// Seed 003: Genesys Cloud's Entra guide maps a phone number with an
/// extension through `IIF`, `IsNullOrEmpty`, `StripSpaces`, `Join` and
/// `Append`. Entra's own calls (a custom extension attribute declared at
/// run time, PATCH with `Add`/`Replace` and the string "False") arrive at
/// the target mapped by that exact expression.
#[tokio::test]
async fn seed_003_extension_expression_maps_entra_patches_end_to_end() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
    let schema = json!({"id": urn, "name": "Contoso", "attributes": [
        {"name": "attributeThatContainsExtension", "type": "string"}
    ]});
    let declared = source
        .admin(Method::PUT, &format!("/schemas/{urn}"), Some(schema))
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.body);
    let expression = "IIF(IsNullOrEmpty(StripSpaces([attributeThatContainsExtension])), \
        StripSpaces(Item([phoneNumbers.value], 1)), \
        Join(\";ext=\", Append(\"tel:\", StripSpaces(Item([phoneNumbers.value], 1))), \
        StripSpaces([attributeThatContainsExtension])))";
    let document = json!({
        "name": "genesys-like",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "scope": {"users": "not (active eq false)"},
        "rateLimit": {"requestsPerSecond": 500, "burst": 50},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "phoneNumbers[type eq \"work2\"].value", "expression": expression}
        ]
    });
    let put = source
        .admin(Method::PUT, "/targets/genesys-like", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    // Entra's create, as it sends it (active as a string, seed 001/idp-behaviors).
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", urn],
                "userName": "li.wei@contoso.com",
                "externalId": "8a1f",
                "active": "True",
                "phoneNumbers": [{"type": "work", "value": "+1 425 555 0100"}]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let phone = |user: &Value| user["phoneNumbers"][0]["value"].as_str().map(str::to_owned);
    let first = eventually(10, "the user", || async {
        let user = user_at(&target, "li.wei@contoso.com").await?;
        phone(&user)
    })
    .await;
    assert_eq!(first, "+14255550100", "no extension: the number alone");

    // Entra adds the extension attribute with a URN-qualified Add.
    let added = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": format!("{urn}:attributeThatContainsExtension"), "value": " 4 567 "}]
            }),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    eventually(10, "the extension", || async {
        let user = user_at(&target, "li.wei@contoso.com").await?;
        (phone(&user)? == "tel:+14255550100;ext=4567").then_some(())
    })
    .await;

    // Entra disables the account with a path-less Replace of "False".
    let disabled = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "value": {"active": "False"}}]
            }),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    eventually(10, "the deactivation", || async {
        let user = user_at(&target, "li.wei@contoso.com").await?;
        (user["active"] == false).then_some(())
    })
    .await;
}
