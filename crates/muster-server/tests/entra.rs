//! What Entra ID really sends that RFC 7644's grammar does not foresee
//! (issue 9, points 5 and 6), over HTTP against a real server on a real
//! SQLite file: the matching filter `emails[type eq "work"].value eq "..."`,
//! app-role PATCHes on `roles[primary eq "True"].<sub>`, and Group member
//! changes spelled with the core Group URN.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use muster_testkit::{Reply, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const GROUP_MEMBERS: &str = "urn:ietf:params:scim:schemas:core:2.0:Group:members";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn create(server: &TestServer, path: &str, body: Value) -> String {
    let reply = server.post(path, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn patch_ok(server: &TestServer, path: &str, operations: Value) -> Reply {
    let reply = server.patch(path, patch_body(operations.clone())).await;
    assert!(
        reply.status.is_success(),
        "PATCH {path} {operations}: {} {}",
        reply.status,
        reply.body
    );
    reply
}

/// The userNames a GET filter finds, sorted.
async fn find(server: &TestServer, filter: &str) -> Vec<String> {
    let reply = server
        .get(&format!("/Users?filter={}", encode(filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
    names(&reply, filter)
}

/// The userNames a `POST /Users/.search` filter finds, sorted.
async fn search(server: &TestServer, filter: &str) -> Vec<String> {
    let reply = server
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH_REQUEST], "filter": filter}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
    names(&reply, filter)
}

fn names(reply: &Reply, filter: &str) -> Vec<String> {
    let mut names: Vec<String> = reply.body["Resources"]
        .as_array()
        .map(|resources| {
            resources
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        reply.body["totalResults"],
        names.len(),
        "{filter}: {}",
        reply.body
    );
    names.sort();
    names
}

#[tokio::test]
async fn entra_matching_filter_with_a_sub_attribute_after_the_value_filter() {
    let server = TestServer::start().await;
    create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "ann", "active": true,
               "emails": [{"type": "work", "value": "a@b.c", "primary": true},
                          {"type": "home", "value": "ann@home.example"}]}),
    )
    .await;
    create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "bob", "active": false,
               "emails": [{"type": "home", "value": "a@b.c"},
                          {"type": "work", "value": "bob@b.c"}]}),
    )
    .await;
    // `emails[type eq "work"].value eq "a@b.c"` means
    // `emails[type eq "work" and value eq "a@b.c"]`: the same element.
    let cases: [(&str, &[&str]); 10] = [
        ("emails[type eq \"work\"].value eq \"a@b.c\"", &["ann"]),
        ("emails[type eq \"work\" and value eq \"a@b.c\"]", &["ann"]),
        ("emails[type eq \"home\"].value eq \"a@b.c\"", &["bob"]),
        // emails.value is not case-exact.
        ("emails[type eq \"work\"].value eq \"A@B.C\"", &["ann"]),
        ("EMAILS[TYPE EQ \"work\"].VALUE EQ \"a@b.c\"", &["ann"]),
        ("emails[type eq \"work\"].value sw \"bob@\"", &["bob"]),
        ("emails[type eq \"work\"].value pr", &["ann", "bob"]),
        ("emails[type eq \"work\"].value eq \"a@b.c\" and active eq true", &["ann"]),
        ("emails[type eq \"work\"].value eq \"a@b.c\" and active eq false", &[]),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"].value eq \"a@b.c\"",
            &["ann"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(find(&server, filter).await, expected, "GET {filter}");
        assert_eq!(
            search(&server, filter).await,
            expected,
            "POST .search {filter}"
        );
    }
    // A sub-attribute the multi-valued attribute does not have is still an
    // error naming it.
    let reply = server
        .get(&format!(
            "/Users?filter={}",
            encode("emails[type eq \"work\"].nope eq \"a@b.c\"")
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["scimType"], "invalidFilter", "{}", reply.body);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nope"),
        "{}",
        reply.body
    );
}

fn roles_of(user: &Value) -> Vec<Value> {
    user["roles"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn entra_app_role_replace_matches_the_primary_role() {
    let server = TestServer::start().await;
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "role-holder",
               "roles": [{"value": "Admin", "display": "Administrator",
                          "type": "WindowsAzureActiveDirectoryRole", "primary": true}]}),
    )
    .await;
    let path = format!("/Users/{id}");
    patch_ok(
        &server,
        &path,
        json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "User"}]),
    )
    .await;
    let user = server.get(&path).await.body;
    let roles = roles_of(&user);
    assert_eq!(roles.len(), 1, "{user}");
    assert_eq!(roles[0]["value"], "User", "{user}");
    assert_eq!(roles[0]["primary"], true, "{user}");
    assert_eq!(roles[0]["display"], "Administrator", "{user}");
    assert_eq!(
        roles[0]["type"], "WindowsAzureActiveDirectoryRole",
        "{user}"
    );

    // With a second, non-primary role: only the primary one changes.
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "two-roles",
               "roles": [{"value": "Reader", "primary": false},
                         {"value": "Admin", "primary": true}]}),
    )
    .await;
    let path = format!("/Users/{id}");
    patch_ok(
        &server,
        &path,
        json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Supervisor"}]),
    )
    .await;
    let user = server.get(&path).await.body;
    let mut values: Vec<(String, bool)> = roles_of(&user)
        .iter()
        .map(|role| {
            (
                role["value"].as_str().unwrap().to_owned(),
                role["primary"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            ("Reader".to_owned(), false),
            ("Supervisor".to_owned(), true)
        ],
        "{user}"
    );
}

#[tokio::test]
async fn entra_app_role_adds_build_one_primary_role() {
    let server = TestServer::start().await;
    let operations = json!([
        {"op": "add", "path": "roles[primary eq \"True\"].display", "value": "Agent role"},
        {"op": "add", "path": "roles[primary eq \"True\"].value", "value": "Agent"},
        {"op": "add", "path": "roles[primary eq \"True\"].type", "value": "WindowsAzureActiveDirectoryRole"}
    ]);
    // In one request, as Entra sends them; and one at a time.
    for (n, one_request) in [true, false].into_iter().enumerate() {
        let id = create(
            &server,
            "/Users",
            json!({"schemas": [USER], "userName": format!("no-roles-{n}")}),
        )
        .await;
        let path = format!("/Users/{id}");
        if one_request {
            patch_ok(&server, &path, operations.clone()).await;
        } else {
            for operation in operations.as_array().unwrap() {
                patch_ok(&server, &path, json!([operation])).await;
            }
        }
        let user = server.get(&path).await.body;
        let roles = roles_of(&user);
        assert_eq!(roles.len(), 1, "one request {one_request}: {user}");
        let role = &roles[0];
        assert_eq!(role["display"], "Agent role", "{user}");
        assert_eq!(role["value"], "Agent", "{user}");
        assert_eq!(role["type"], "WindowsAzureActiveDirectoryRole", "{user}");
        assert_eq!(role["primary"], true, "{user}");
    }
}

/// The member ids of a group, sorted.
async fn members(server: &TestServer, group: &str) -> Vec<String> {
    let reply = server.get(&format!("/Groups/{group}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut ids: Vec<String> = reply.body["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The display names of a user's groups.
async fn groups_of(server: &TestServer, user: &str) -> Vec<String> {
    let reply = server.get(&format!("/Users/{user}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut names: Vec<String> = reply.body["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| g["display"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn group_members_spelled_with_the_core_group_urn_change_memberships() {
    let server = TestServer::start().await;
    let mut users = Vec::new();
    for n in 0..4 {
        users.push(
            create(
                &server,
                "/Users",
                json!({"schemas": [USER], "userName": format!("member{n}")}),
            )
            .await,
        );
    }
    let group = create(
        &server,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Urn Team"}),
    )
    .await;
    let path = format!("/Groups/{group}");
    let sorted = |ids: &[&String]| {
        let mut ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
        ids.sort();
        ids
    };

    // add, path = the URN
    patch_ok(
        &server,
        &path,
        json!([{"op": "add", "path": GROUP_MEMBERS, "value": [{"value": users[0]}]}]),
    )
    .await;
    assert_eq!(members(&server, &group).await, sorted(&[&users[0]]));
    assert_eq!(groups_of(&server, &users[0]).await, vec!["Urn Team"]);

    // add, path-less value keyed by the URN
    patch_ok(
        &server,
        &path,
        json!([{"op": "Add", "value": {GROUP_MEMBERS: [{"value": users[1]}]}}]),
    )
    .await;
    assert_eq!(
        members(&server, &group).await,
        sorted(&[&users[0], &users[1]])
    );
    assert_eq!(groups_of(&server, &users[1]).await, vec!["Urn Team"]);

    // add, path-less value: the core URN object holding members
    patch_ok(
        &server,
        &path,
        json!([{"op": "add", "value": {GROUP: {"members": [{"value": users[2]}]}}}]),
    )
    .await;
    assert_eq!(
        members(&server, &group).await,
        sorted(&[&users[0], &users[1], &users[2]])
    );

    // remove, path = the URN with a value filter
    patch_ok(
        &server,
        &path,
        json!([{"op": "remove", "path": format!("{GROUP_MEMBERS}[value eq \"{}\"]", users[0])}]),
    )
    .await;
    assert_eq!(
        members(&server, &group).await,
        sorted(&[&users[1], &users[2]])
    );
    assert!(groups_of(&server, &users[0]).await.is_empty());

    // remove, path = the URN, Entra's value list
    patch_ok(
        &server,
        &path,
        json!([{"op": "Remove", "path": GROUP_MEMBERS, "value": [{"value": users[1]}]}]),
    )
    .await;
    assert_eq!(members(&server, &group).await, sorted(&[&users[2]]));
    assert!(groups_of(&server, &users[1]).await.is_empty());

    // replace, path-less value keyed by the URN in another case
    patch_ok(
        &server,
        &path,
        json!([{"op": "replace",
                "value": {GROUP_MEMBERS.to_ascii_uppercase(): [{"value": users[3]}]}}]),
    )
    .await;
    assert_eq!(members(&server, &group).await, sorted(&[&users[3]]));
    assert!(groups_of(&server, &users[2]).await.is_empty());
    assert_eq!(groups_of(&server, &users[3]).await, vec!["Urn Team"]);

    // remove all, path = the URN
    patch_ok(
        &server,
        &path,
        json!([{"op": "remove", "path": GROUP_MEMBERS}]),
    )
    .await;
    assert!(members(&server, &group).await.is_empty());
    assert!(groups_of(&server, &users[3]).await.is_empty());

    // An unknown member id is refused whatever the spelling.
    let reply = server
        .patch(
            &path,
            patch_body(json!([{"op": "add", "path": GROUP_MEMBERS,
                               "value": [{"value": "no-such-id"}]}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = server
        .patch(
            &path,
            patch_body(json!([{"op": "add",
                               "value": {GROUP_MEMBERS: [{"value": "no-such-id"}]}}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(members(&server, &group).await.is_empty());
}
