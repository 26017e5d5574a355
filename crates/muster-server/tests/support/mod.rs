//! What the entitlement and sync tests share: the URNs, rule sets, users
//! and groups made over HTTP, and waiting for a condition.

use std::time::{Duration, Instant};

use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The computed contact-center extension.
pub const CC: &str = "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The PatchOp message.
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `PUT /admin/v1/rules{query}` with a TOML rule set.
pub async fn put_rules(server: &TestServer, query: &str, text: &str) -> Reply {
    let response = server
        .http
        .put(format!("{}/admin/v1/rules{query}", server.root))
        .bearer_auth(&server.token)
        .header("content-type", "application/toml")
        .body(text.to_owned())
        .send()
        .await
        .expect("send");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        headers: Default::default(),
        body,
    }
}

/// Creates a resource, which must succeed; its id.
pub async fn create(server: &TestServer, path: &str, body: Value) -> String {
    let reply = server.call(Method::POST, path, Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap_or_default().to_owned()
}

/// Creates a group with these members.
pub async fn group(server: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    create(
        server,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": name, "members": members}),
    )
    .await
}

/// Applies PATCH operations, which must succeed.
pub async fn patch(server: &TestServer, path: &str, operations: Value) {
    let reply = server
        .call(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH], "Operations": operations})),
        )
        .await;
    assert!(reply.status.is_success(), "{path}: {}", reply.body);
}

/// Puts the `genesys-cloud` target `genesys` pointing at `sim` (all
/// groups, 50 requests/s), with Genesys `settings` (none when null).
pub async fn put_genesys_target(
    server: &TestServer,
    sim: &muster_simulators::genesys::GenesysSim,
    settings: Value,
) {
    let options = sim.options().clone();
    let mut document = json!({
        "name": "genesys",
        "kind": "genesys-cloud",
        "apiBaseUrl": sim.api_base_url(),
        "loginUrl": sim.login_url(),
        "auth": {
            "type": "oauth-client-credentials",
            "clientId": options.client_id,
            "clientSecret": options.client_secret
        },
        "scope": {"groups": "all"},
        "rateLimit": {"requestsPerSecond": 50, "burst": 10}
    });
    if !settings.is_null() {
        document["genesys"] = settings;
    }
    let put = server
        .admin(Method::PUT, "/targets/genesys", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

/// The user names a filter finds.
pub async fn found(server: &TestServer, filter: &str) -> Vec<String> {
    let reply = server
        .http
        .get(format!("{}/Users", server.base_url))
        .query(&[("filter", filter)])
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("send");
    let status = reply.status();
    let body: Value = reply.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    let mut names: Vec<String> = body["Resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|user| user["userName"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// Polls `probe` every 50 ms until it gives `Some`, or fails the test
/// after `seconds` naming `what` it waited for.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Percent-encodes a query value.
pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
