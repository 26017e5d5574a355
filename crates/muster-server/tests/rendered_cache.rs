//! `GET /{endpoint}/{id}` answers from a cache of renderings checked
//! against the resource's version (issue 15). Whatever happens to a user,
//! its groups, the tenant's schemas or the URL it is reached at, the cached
//! answer equals a fresh rendering: a GET with a projection that removes
//! nothing (`excludedAttributes` naming an attribute the user lacks), which
//! never uses the cache.

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Asserts that the cached and a fresh rendering of `id` agree (also in
/// their ETag), and returns the body.
async fn same_as_fresh(server: &TestServer, id: &str, step: &str) -> Value {
    // Twice: the first may fill the cache, the second is answered from it.
    for _ in 0..2 {
        let cached = server
            .call(Method::GET, &format!("/Users/{id}"), None)
            .await;
        let fresh = server
            .call(
                Method::GET,
                &format!("/Users/{id}?excludedAttributes=nickName"),
                None,
            )
            .await;
        assert_eq!(cached.status, fresh.status, "{step}: {:?}", cached.body);
        assert_eq!(cached.body, fresh.body, "{step}");
        assert_eq!(cached.header("etag"), fresh.header("etag"), "{step}");
        if cached.status != StatusCode::OK {
            return cached.body;
        }
    }
    server
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": name, "externalId": format!("ext-{name}"), "active": true,
           "name": {"givenName": "Ada", "familyName": "Lovelace"}})
}

async fn create(server: &TestServer, path: &str, body: Value) -> String {
    let created = server.call(Method::POST, path, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap_or_default().to_owned()
}

async fn patch(server: &TestServer, path: &str, operations: Value) {
    let reply = server
        .call(
            Method::PATCH,
            path,
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": operations}),
            ),
        )
        .await;
    assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
}

#[tokio::test]
async fn cached_answers_follow_every_change() {
    let server = TestServer::start().await;
    let id = create(&server, "/Users", user("ada")).await;
    same_as_fresh(&server, &id, "created").await;

    patch(
        &server,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "Supervisor"}]),
    )
    .await;
    let body = same_as_fresh(&server, &id, "patched").await;
    assert_eq!(body["title"], "Supervisor");

    // Memberships: direct, nested, a rename of the outer group, removals.
    let inner = create(
        &server,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": "Tier 1", "members": [{"value": id}]}),
    )
    .await;
    let body = same_as_fresh(&server, &id, "member of a group").await;
    assert_eq!(body["groups"][0]["value"], inner.as_str());
    let outer = create(
        &server,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": "Support", "members": [{"value": inner}]}),
    )
    .await;
    let body = same_as_fresh(&server, &id, "nested").await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(2), "{body}");
    patch(
        &server,
        &format!("/Groups/{outer}"),
        json!([{"op": "replace", "path": "displayName", "value": "Customer support"}]),
    )
    .await;
    let body = same_as_fresh(&server, &id, "outer group renamed").await;
    assert!(body.to_string().contains("Customer support"), "{body}");
    let gone = server
        .call(Method::DELETE, &format!("/Groups/{outer}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    same_as_fresh(&server, &id, "outer group deleted").await;
    patch(
        &server,
        &format!("/Groups/{inner}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
    )
    .await;
    let body = same_as_fresh(&server, &id, "removed from the group").await;
    assert!(body.get("groups").is_none(), "{body}");

    // Offboarding (a lock kept out of SCIM answers), unlock.
    let offboarded = server
        .admin(
            Method::POST,
            &format!("/users/{id}/offboard"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert!(offboarded.status.is_success(), "{:?}", offboarded.body);
    let body = same_as_fresh(&server, &id, "offboarded").await;
    assert_eq!(body["active"], false);
    let unlocked = server
        .admin(Method::POST, &format!("/users/{id}/unlock"), None)
        .await;
    assert!(unlocked.status.is_success(), "{:?}", unlocked.body);
    same_as_fresh(&server, &id, "unlocked").await;

    // A custom extension declared, a value set, the extension removed.
    let urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
    let declared = server
        .admin(
            Method::PUT,
            &format!("/schemas/{urn}"),
            Some(json!({"id": urn, "name": "Contoso",
                    "attributes": [{"name": "region", "type": "string"}]})),
        )
        .await;
    assert!(declared.status.is_success(), "{:?}", declared.body);
    same_as_fresh(&server, &id, "extension declared").await;
    patch(
        &server,
        &format!("/Users/{id}"),
        json!([{"op": "add", "path": format!("{urn}:region"), "value": "EMEA"}]),
    )
    .await;
    let body = same_as_fresh(&server, &id, "extension value").await;
    assert_eq!(body[urn]["region"], "EMEA");
    let removed = server
        .admin(Method::DELETE, &format!("/schemas/{urn}?force=true"), None)
        .await;
    assert!(removed.status.is_success(), "{:?}", removed.body);
    let body = same_as_fresh(&server, &id, "extension removed").await;
    assert!(body.get(urn).is_none(), "{body}");

    // Soft delete, then restore: the same id comes back.
    let deleted = server
        .call(Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let body = same_as_fresh(&server, &id, "deleted").await;
    assert_eq!(body["status"], "404");
    let restored = server
        .admin(Method::POST, &format!("/users/{id}/restore"), None)
        .await;
    assert!(restored.status.is_success(), "{:?}", restored.body);
    let body = same_as_fresh(&server, &id, "restored").await;
    assert_eq!(body["id"], id.as_str());
}

/// Behind a proxy whose headers are trusted, each public host sees its own
/// URLs: a rendering cached for one host is never served to another.
#[tokio::test]
async fn each_public_url_gets_its_own_rendering() {
    let config = muster_server::ServerConfig {
        trust_proxy_headers: true,
        ..muster_server::ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let id = create(&server, "/Users", user("grace")).await;
    for host in ["one.example.com", "two.example.com", "one.example.com"] {
        let request = server
            .http
            .get(format!("{}/scim/v2/Users/{id}", server.root))
            .bearer_auth(&server.token)
            .header("x-forwarded-host", host)
            .header("x-forwarded-proto", "https");
        let reply = server.send(request, None).await;
        assert_eq!(
            reply.body["meta"]["location"],
            format!("https://{host}/scim/v2/Users/{id}").as_str()
        );
    }
}
