//! Conflict matching over HTTP (issue 14 item 6): a POST of an existing
//! userName is `409 uniqueness` by default; a client whose credential
//! carries a matching policy links the POST to the existing user instead
//! (externalId, userName or work email), answered as a create (`201`,
//! `Location`) with the same id, never a duplicate. Runs on SQLite, and on
//! PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use muster_core::tokens::SCOPE_WRITE;
use muster_store::clients::CredentialOptions;
use muster_store::TenantId;
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{create, urlencode, USER};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A write token whose credential carries the matching policy `policy`.
async fn token_matching(server: &TestServer, name: &str, policy: &str) -> String {
    let token = server.token_with(name, &[SCOPE_WRITE]).await;
    server
        .store
        .set_token_options(
            &TenantId::default_tenant(),
            name,
            CredentialOptions {
                matching: policy.split(',').map(str::to_owned).collect(),
                rate_limit: None,
            },
        )
        .await
        .unwrap();
    token
}

async fn post_as(server: &TestServer, token: &str, body: Value) -> Reply {
    server
        .call_as(token, Method::POST, "/scim/v2/Users", Some(body))
        .await
}

async fn users(server: &TestServer, filter: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/Users?filter={}", urlencode(filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn total_users(server: &TestServer) -> u64 {
    let reply = server.get("/Users?count=0").await;
    reply.body["totalResults"].as_u64().unwrap()
}

#[tokio::test]
async fn without_a_policy_a_taken_user_name_is_a_uniqueness_conflict() {
    let server = TestServer::start().await;
    create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "john.doe@megacorp.com"}),
    )
    .await;
    let plain = server.token_with("plain", &[SCOPE_WRITE]).await;
    let reply = post_as(
        &server,
        &plain,
        json!({"schemas": [USER], "userName": "John.Doe@megacorp.com", "externalId": "aad-1"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.body["scimType"], "uniqueness");
    assert_eq!(total_users(&server).await, 1);
}

#[tokio::test]
async fn a_policy_links_the_post_to_the_existing_user() {
    let server = TestServer::start().await;
    let entra = token_matching(&server, "entra", "externalId,userName,emails").await;
    // Made by hand before SCIM was set up (seed 001, edge case 2).
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "john.doe@megacorp.com", "title": "Agent",
               "nickName": "JD"}),
    )
    .await;

    // userName, in another case.
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "John.Doe@megacorp.com", "externalId": "aad-1",
               "title": "Senior Agent", "active": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(id), "{}", reply.body);
    assert_eq!(
        reply.header("location").unwrap(),
        format!("{}/Users/{id}", server.base_url)
    );
    assert!(reply.header("etag").is_some());
    assert_eq!(reply.body["externalId"], "aad-1");
    assert_eq!(reply.body["title"], "Senior Agent");
    // Applied as a replace: what the POST does not carry is gone.
    assert!(reply.body.get("nickName").is_none(), "{}", reply.body);
    assert_eq!(total_users(&server).await, 1);
    assert_eq!(
        users(&server, "userName eq \"john.doe@megacorp.com\"")
            .await
            .len(),
        1
    );

    // externalId, after a rename in the directory.
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "john.d@megacorp.com", "externalId": "aad-1"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(id));
    assert_eq!(reply.body["userName"], "john.d@megacorp.com");
    assert_eq!(total_users(&server).await, 1);

    // The work email.
    let jane = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "jane",
               "emails": [{"type": "work", "value": "Jane@MegaCorp.com"}]}),
    )
    .await;
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "jane.roe@megacorp.com",
               "emails": [{"type": "work", "value": "jane@megacorp.com", "primary": true}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(jane));
    // A home email is not a match.
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "other@megacorp.com",
               "emails": [{"type": "home", "value": "jane@megacorp.com"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_ne!(reply.body["id"], json!(jane));
    assert_eq!(total_users(&server).await, 3);

    // Through Bulk as well.
    let reply = server
        .call_as(
            &entra,
            Method::POST,
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "b1",
                 "data": {"schemas": [USER], "userName": "JOHN.D@megacorp.com",
                          "externalId": "aad-1", "title": "Bulk"}}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let operation = &reply.body["Operations"][0];
    assert_eq!(operation["status"], "201", "{}", reply.body);
    assert!(operation["location"].as_str().unwrap().ends_with(&id));
    assert_eq!(total_users(&server).await, 3);
    assert_eq!(
        users(&server, "title eq \"Bulk\"").await[0]["id"],
        json!(id)
    );
}

#[tokio::test]
async fn attributes_naming_two_users_are_a_conflict_naming_both() {
    let server = TestServer::start().await;
    let entra = token_matching(&server, "entra", "externalId,userName").await;
    let first = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "a@x.com", "externalId": "aad-9"}),
    )
    .await;
    let second = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "b@x.com"}),
    )
    .await;
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "b@x.com", "externalId": "aad-9", "title": "X"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.body["scimType"], "uniqueness");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains(&first) && detail.contains(&second),
        "{detail}"
    );
    // Nothing changed.
    assert_eq!(total_users(&server).await, 2);
    assert!(users(&server, "title eq \"X\"").await.is_empty());
    // A policy on userName only links where the externalId would not.
    let by_name = token_matching(&server, "by-name", "userName").await;
    let reply = post_as(
        &server,
        &by_name,
        json!({"schemas": [USER], "userName": "b@x.com", "externalId": "aad-9"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(second));
}

#[tokio::test]
async fn a_linked_post_keeps_a_locked_user_inactive_and_groups_are_never_matched() {
    let server = TestServer::start().await;
    let entra = token_matching(&server, "entra", "userName").await;
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "gone@x.com", "active": true}),
    )
    .await;
    let offboarded = server
        .admin(Method::POST, &format!("/users/{id}/offboard"), None)
        .await;
    assert_eq!(offboarded.status, StatusCode::OK, "{}", offboarded.body);
    let reply = post_as(
        &server,
        &entra,
        json!({"schemas": [USER], "userName": "gone@x.com", "active": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], json!(id));
    assert_eq!(reply.body["active"], json!(false), "{}", reply.body);

    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                       "displayName": "Agents"});
    create(&server, "/Groups", group.clone()).await;
    let reply = server
        .call_as(&entra, Method::POST, "/scim/v2/Groups", Some(group))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
}

#[tokio::test]
async fn concurrent_posts_of_one_new_user_make_one_user() {
    let server = TestServer::start().await;
    let entra = token_matching(&server, "entra", "externalId,userName").await;
    let body = json!({"schemas": [USER], "userName": "new@x.com", "externalId": "aad-new"});
    let replies = futures_join(&server, &entra, body, 6).await;
    let mut ids: Vec<String> = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(total_users(&server).await, 1);
}

/// `count` POSTs of `body` at once.
async fn futures_join(server: &TestServer, token: &str, body: Value, count: usize) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = server
            .http
            .post(format!("{}/Users", server.base_url))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string());
        set.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.json().await.unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                body,
            }
        });
    }
    let mut replies = Vec::new();
    while let Some(reply) = set.join_next().await {
        replies.push(reply.unwrap());
    }
    replies
}
