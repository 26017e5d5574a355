//! Every behaviour of `shared/reference/idp-behaviors.md`, end to end over
//! HTTP: the call sequences Entra ID, Okta and Ping really send.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test on unexpected shapes"
)]

use muster_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENTRA_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn patch_ok(server: &TestServer, path: &str, operations: Value) -> Value {
    let reply = server.patch(path, patch(operations)).await;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
    server.get(path).await.body
}

#[tokio::test]
async fn entra_test_connection_and_matching() {
    let server = TestServer::start().await;
    let probe = server
        .get("/Users?filter=userName+eq+%22ae9b1a52-5bd4-4cbe-a2cb-4f6e3c0f2b11%22")
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_eq!(probe.body["totalResults"], 0);
    assert_eq!(probe.body["Resources"], json!([]));

    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER, ENTERPRISE], "externalId": "e-123",
                   "userName": "Jo.Agent@contoso.com", "active": true,
                   ENTERPRISE: {"department": "Support", "employeeNumber": "42"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for filter in [
        "userName%20eq%20%22jo.agent@contoso.com%22",
        "externalId%20eq%20%22e-123%22",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department%20eq%20%22support%22",
    ] {
        let found = server.get(&format!("/Users?filter={filter}")).await;
        assert_eq!(found.body["totalResults"], 1, "{filter}: {}", found.body);
    }
    // externalId is caseExact.
    let miss = server
        .get("/Users?filter=externalId%20eq%20%22E-123%22")
        .await;
    assert_eq!(miss.body["totalResults"], 0);

    server
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Tier 1 Agents"}),
        )
        .await;
    let group = server
        .get("/Groups?filter=displayName%20eq%20%22Tier%201%20Agents%22&excludedAttributes=members")
        .await;
    assert_eq!(group.body["totalResults"], 1);
    assert!(group.body["Resources"][0].get("members").is_none());
}

#[tokio::test]
async fn entra_patch_quirks() {
    let server = TestServer::start().await;
    let manager = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "boss@contoso.com"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "quirks@contoso.com", "active": true}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/Users/{id}");

    // Capitalised op names and booleans as strings (legacy mode).
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(user["active"], false);

    // Path-less replace whose keys are paths, dotted and URN-qualified.
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "replace", "value": {
            "name.givenName": "A",
            format!("{ENTERPRISE}:department"): "Ops"}}]),
    )
    .await;
    assert_eq!(user["name"]["givenName"], "A");
    assert_eq!(user[ENTERPRISE]["department"], "Ops");

    // Filtered paths that match nothing yet create the element.
    let user = patch_ok(
        &server,
        &path,
        json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "quirks@contoso.com"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Lisbon"}]),
    )
    .await;
    assert_eq!(
        user["emails"],
        json!([{"value": "quirks@contoso.com", "type": "work"}])
    );
    assert_eq!(user["phoneNumbers"][0]["value"], "+1 555 0100");
    assert_eq!(user["phoneNumbers"][0]["type"], "mobile");
    assert_eq!(user["addresses"][0]["locality"], "Lisbon");
    assert_eq!(user["addresses"][0]["type"], "work");

    // Manager as a plain string, then removed without a value.
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager}]),
    )
    .await;
    assert_eq!(user[ENTERPRISE]["manager"]["value"], manager.as_str());
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}]),
    )
    .await;
    assert!(user[ENTERPRISE].get("manager").is_none(), "{user}");

    // Null and empty values clear ("match null values").
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "Replace", "path": "name.givenName", "value": ""},
               {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": null}]),
    )
    .await;
    assert!(
        user.get("name").and_then(|n| n.get("givenName")).is_none(),
        "{user}"
    );
    assert!(
        user.get(ENTERPRISE)
            .and_then(|e| e.get("department"))
            .is_none(),
        "{user}"
    );

    // Soft delete and restore; hard delete.
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    assert_eq!(user["active"], false);
    let user = patch_ok(
        &server,
        &path,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    assert_eq!(user["active"], true);
    assert_eq!(server.delete(&path).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn entra_groups_and_membership() {
    let server = TestServer::start().await;
    let mut users = Vec::new();
    for n in 0..3 {
        users.push(
            server
                .post(
                    "/Users",
                    json!({"schemas": [USER], "userName": format!("m{n}@contoso.com")}),
                )
                .await
                .body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let created = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP, ENTRA_GROUP], "displayName": "Queue A",
                   "externalId": "grp-1",
                   "members": [{"value": users[0], "$ref": null}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group_path = format!("/Groups/{}", created.body["id"].as_str().unwrap());

    let group = patch_ok(
        &server,
        &group_path,
        json!([{"op": "Add", "path": "members", "value": [{"value": users[1]}, {"value": users[2]}]}]),
    )
    .await;
    assert_eq!(group["members"].as_array().unwrap().len(), 3);

    // The user's computed groups attribute.
    let member = server.get(&format!("/Users/{}", users[1])).await.body;
    assert_eq!(member["groups"][0]["display"], "Queue A");
    assert_eq!(member["groups"][0]["type"], "direct");

    let group = patch_ok(
        &server,
        &group_path,
        json!([{"op": "Remove", "path": "members", "value": [{"value": users[0]}]}]),
    )
    .await;
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    let group = patch_ok(
        &server,
        &group_path,
        json!([{"op": "Remove", "path": format!("members[value eq \"{}\"]", users[1])}]),
    )
    .await;
    let members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec![users[2].as_str()]);

    let unknown = server
        .patch(
            &group_path,
            patch(json!([{"op": "Add", "path": "members", "value": [{"value": "no-such-id"}]}])),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert!(unknown.body["detail"]
        .as_str()
        .unwrap()
        .contains("no-such-id"));
}

#[tokio::test]
async fn okta_import_create_update_deactivate() {
    let server = TestServer::start().await;
    for n in 0..5 {
        let created = server
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": format!("okta{n}@example.com"),
                       "name": {"givenName": "O", "familyName": format!("{n}")},
                       "password": "Sup3r-secret!", "groups": [], "active": true}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert!(created.body.get("password").is_none(), "password returned");
    }
    // Import pages through in a stable order.
    let first = server.get("/Users?startIndex=1&count=2").await.body;
    let second = server.get("/Users?startIndex=3&count=2").await.body;
    assert_eq!(first["totalResults"], 5);
    assert_ne!(first["Resources"][0]["id"], second["Resources"][0]["id"]);
    let again = server.get("/Users?startIndex=1&count=2").await.body;
    assert_eq!(first["Resources"], again["Resources"]);
    assert!(!first.to_string().contains("Sup3r-secret!"));

    // Case-insensitive matching on userName.
    let matched = server
        .get("/Users?filter=userName%20eq%20%22OKTA1@EXAMPLE.COM%22")
        .await;
    assert_eq!(matched.body["totalResults"], 1);
    let id = matched.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Duplicate → 409 with a SCIM body.
    let dup = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "okta1@example.com"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["scimType"], "uniqueness");

    // PUT full replace, then deactivate with a path-less replace.
    let put = server
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER], "id": id, "userName": "okta1@example.com",
                   "name": {"givenName": "Olga", "familyName": "One"}, "active": true}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["name"]["givenName"], "Olga");
    let user = patch_ok(
        &server,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    assert_eq!(user["active"], false);

    let missing = server
        .get("/Users/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
}

#[tokio::test]
async fn okta_group_push_with_put() {
    let server = TestServer::start().await;
    let a = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "pa@example.com"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "pb@example.com"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Pushed", "members": [{"value": a}]}),
        )
        .await;
    let id = group.body["id"].as_str().unwrap().to_owned();
    let put = server
        .put(
            &format!("/Groups/{id}"),
            json!({"schemas": [GROUP], "displayName": "Pushed", "members": [{"value": b}]}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let members = server.get(&format!("/Groups/{id}")).await.body["members"].clone();
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["value"], b.as_str());
}

#[tokio::test]
async fn ping_put_only_updates_by_external_id() {
    let server = TestServer::start().await;
    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "ping@example.com", "externalId": "ping-1",
                   "title": "Agent"}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let found = server
        .get("/Users?filter=externalId%20eq%20%22ping-1%22")
        .await;
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    let put = server
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER], "userName": "ping@example.com", "externalId": "ping-1"}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert!(
        put.body.get("title").is_none(),
        "PUT must replace, not merge"
    );
    let groups = server.get("/Groups").await;
    assert_eq!(groups.status, StatusCode::OK);
}
