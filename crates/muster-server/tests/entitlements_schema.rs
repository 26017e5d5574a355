//! Stored entitlements across custom schema changes over HTTP: a schema
//! change that alters what the rules in force see of a user (here the
//! custom `region` becoming case-exact, so `region eq "APAC"` no longer
//! matches "apac") recomputes every user's entitlements in its own
//! transaction, so the next read and filter show them; a change that
//! removes an attribute the rules read is refused, naming the rule, until
//! the rules change.

#![allow(
    clippy::expect_used,
    reason = "a failed request must fail the test loudly"
)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{create, found, put_rules, CC, USER};

/// The custom extension the rules read.
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// The extension: `region` (case-exact or not) and `office`, or without
/// `office` (`with_office` false).
fn acme(region_case_exact: bool, with_office: bool, with_region: bool) -> Value {
    let mut attributes = Vec::new();
    if with_region {
        attributes
            .push(json!({"name": "region", "type": "string", "caseExact": region_case_exact}));
    }
    if with_office {
        attributes.push(json!({"name": "office", "type": "string"}));
    }
    json!({"id": ACME, "name": "Acme", "attributes": attributes})
}

/// Japanese for users in APAC.
fn rules_reading_region() -> String {
    format!(
        r#"
[catalog]
languages = ["Japanese", "English"]

[[rules]]
id = "apac-japanese"
when = '{ACME}:region eq "APAC"'
languages = [{{ name = "Japanese", proficiency = 3 }}]
"#
    )
}

/// English for everyone with a user name: reads no custom attribute.
fn rules_not_reading_region() -> String {
    r#"
[catalog]
languages = ["Japanese", "English"]

[[rules]]
id = "everyone-english"
when = 'userName pr'
languages = [{ name = "English", proficiency = 1 }]
"#
    .to_owned()
}

async fn put_schema(server: &TestServer, query: &str, schema: Value) -> (StatusCode, Value) {
    let reply = server
        .admin(
            Method::PUT,
            &format!("/schemas/{ACME}{query}"),
            Some(schema),
        )
        .await;
    (reply.status, reply.body)
}

async fn user(server: &TestServer, name: &str, region: &str) -> String {
    create(
        server,
        "/Users",
        json!({"schemas": [USER, ACME], "userName": name, "active": true,
               ACME: {"region": region, "office": "Manila"}}),
    )
    .await
}

/// The user as read: its stored entitlements and its version.
async fn read(server: &TestServer, id: &str) -> (Value, u64, Value) {
    let reply = server
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let version = reply.body["meta"]["version"]
        .as_str()
        .and_then(muster_core::parse_etag)
        .expect("a version");
    (reply.body[CC].clone(), version, reply.body[ACME].clone())
}

fn languages(entitlements: &Value) -> Vec<String> {
    entitlements["languages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|language| language["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn japanese() -> String {
    format!("{CC}:languages.name eq \"Japanese\"")
}

#[tokio::test]
async fn a_schema_change_recomputes_stored_entitlements_in_its_request() {
    let server = TestServer::start().await;
    let (status, body) = put_schema(&server, "", acme(false, true, true)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reply = put_rules(&server, "", &rules_reading_region()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let alice = user(&server, "alice", "apac").await;
    let bob = user(&server, "bob", "APAC").await;
    let carol = user(&server, "carol", "EMEA").await;
    let (alice_before, alice_version, _) = read(&server, &alice).await;
    assert_eq!(languages(&alice_before), ["Japanese"], "{alice_before}");
    assert_eq!(found(&server, &japanese()).await, ["alice", "bob"]);
    let (_, bob_version, _) = read(&server, &bob).await;
    let (_, carol_version, _) = read(&server, &carol).await;

    // `region` becomes case-exact: "apac" no longer equals "APAC". The
    // stored values are unchanged, but what the rule sees of alice is.
    let (status, report) = put_schema(&server, "", acme(true, true, true)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rewritten"], 0, "{report}");
    assert_eq!(report["rederived"], 1, "{report}");
    let (alice_after, version, region) = read(&server, &alice).await;
    assert!(languages(&alice_after).is_empty(), "{alice_after}");
    assert_eq!(version, alice_version + 1, "a new version");
    assert_eq!(region["region"], "apac");
    assert_eq!(found(&server, &japanese()).await, ["bob"]);
    let (bob_after, version, _) = read(&server, &bob).await;
    assert_eq!(languages(&bob_after), ["Japanese"]);
    assert_eq!(version, bob_version, "bob's entitlements did not change");
    assert_eq!(read(&server, &carol).await.1, carol_version);

    // Back to case-insensitive: alice's Japanese is back, in that request.
    let (status, report) = put_schema(&server, "", acme(false, true, true)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rederived"], 1, "{report}");
    assert_eq!(found(&server, &japanese()).await, ["alice", "bob"]);
    let (alice_back, version, _) = read(&server, &alice).await;
    assert_eq!(languages(&alice_back), ["Japanese"]);
    assert_eq!(version, alice_version + 2);

    // Removing `region`, which the rule reads, is refused even with force,
    // naming the rule; nothing changes.
    let (status, refused) = put_schema(&server, "?force=true", acme(false, true, false)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("apac-japanese"), "{detail}");
    let refused = server
        .admin(Method::DELETE, &format!("/schemas/{ACME}?force=true"), None)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("apac-japanese"), "{detail}");
    let (unchanged, version, region) = read(&server, &alice).await;
    assert_eq!(
        (languages(&unchanged), version),
        (vec!["Japanese".to_owned()], alice_version + 2)
    );
    assert_eq!(region["region"], "apac");

    // Removing `office`, which no rule reads, is allowed (with force: it
    // holds values); the entitlements stay as they were.
    let (status, report) = put_schema(&server, "?force=true", acme(false, false, true)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rewritten"], 3, "{report}");
    assert!(report.get("rederived").is_none(), "{report}");
    let (kept, _, acme_values) = read(&server, &alice).await;
    assert_eq!(languages(&kept), ["Japanese"]);
    assert!(acme_values.get("office").is_none(), "{acme_values}");
    assert_eq!(found(&server, &japanese()).await, ["alice", "bob"]);

    // Once the rules no longer read `region`, the schema can go; the
    // users' entitlements follow the rules, not the removed values.
    let reply = put_rules(&server, "", &rules_not_reading_region()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let removed = server
        .admin(Method::DELETE, &format!("/schemas/{ACME}?force=true"), None)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let (english, _, gone) = read(&server, &alice).await;
    assert_eq!(languages(&english), ["English"]);
    assert!(gone.is_null(), "{gone}");
    assert!(found(&server, &japanese()).await.is_empty());
}
