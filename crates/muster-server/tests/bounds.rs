//! Bounds found by an attacker review (issue 9, "Bounded everything"), over
//! HTTP: repeated PATCHes cannot grow a multi-valued attribute past
//! `MAX_VALUES` (a group's members, kept as rows, are not capped), keys that
//! are not attribute paths are refused even under the `capture` policy, and
//! a `5xx` inside a Bulk response names the request id.

use muster_scim::resource::MAX_VALUES;
use muster_server::ServerConfig;
use muster_store::sqlite::SqliteOptions;
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn detail(reply: &Reply) -> &str {
    reply.body["detail"].as_str().unwrap_or_default()
}

fn assert_error(reply: &Reply, status: StatusCode, scim_type: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["scimType"], scim_type, "{}", reply.body);
}

/// `count` emails of about 900 bytes each, as in the review.
fn big_emails(tag: &str, count: usize) -> Value {
    let padding = "x".repeat(880);
    Value::Array(
        (0..count)
            .map(|n| json!({"value": format!("{tag}-{n}-{padding}@example.com")}))
            .collect(),
    )
}

async fn create(server: &TestServer, path: &str, body: Value) -> String {
    let reply = server.call(Method::POST, path, Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn patches_cannot_grow_a_user_past_the_values_cap() {
    let server = TestServer::start().await;

    // A body over the cap is refused, naming the attribute and the limit.
    let too_many: Vec<Value> = (0..=MAX_VALUES)
        .map(|n| json!({"value": format!("u{n}@example.com")}))
        .collect();
    let reply = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "many", "emails": too_many})),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
    assert!(
        detail(&reply).contains("'emails'") && detail(&reply).contains("1000"),
        "{}",
        reply.body
    );

    // The review's attack: PATCHes each adding 1,000 ~900-byte emails.
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "grower"}),
    )
    .await;
    let path = format!("/Users/{id}");
    let add = |tag: &str| {
        json!({"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "emails", "value": big_emails(tag, MAX_VALUES)},
        ]})
    };
    let first = server.call(Method::PATCH, &path, Some(add("a"))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let before = server.get(&path).await;
    assert_eq!(before.body["emails"].as_array().map(Vec::len), Some(1000));
    for round in 0..3 {
        let reply = server
            .call(Method::PATCH, &path, Some(add(&format!("b{round}"))))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
        assert!(detail(&reply).contains("'emails'"), "{}", reply.body);
    }
    // One more value is refused too, and nothing changed.
    let one = json!({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "emails", "value": [{"value": "one@example.com"}]},
        {"op": "replace", "path": "displayName", "value": "changed"},
    ]});
    let reply = server.call(Method::PATCH, &path, Some(one)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
    let after = server.get(&path).await;
    assert_eq!(after.body, before.body);
    // What one user can reach: 1,000 values of one attribute.
    let size = after.body.to_string().len();
    assert!(size < 1024 * 1024, "{size}");
}

/// A group's members are rows: a group may hold more than `MAX_VALUES`.
#[tokio::test]
async fn group_members_are_not_capped() {
    let server = TestServer::start().await;
    let count = MAX_VALUES + 5;
    let mut ids = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|n| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"),
                       "data": {"schemas": [USER], "userName": format!("member-{n}")}})
            })
            .collect();
        let reply = server
            .call(
                Method::POST,
                "/Bulk",
                Some(json!({"schemas": [BULK], "Operations": operations})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        for result in reply.body["Operations"].as_array().into_iter().flatten() {
            assert_eq!(result["status"], "201", "{result}");
            let location = result["location"].as_str().unwrap_or_default();
            ids.push(location.rsplit('/').next().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(ids.len(), count);
    let (first, rest) = ids.split_at(MAX_VALUES - 10);
    let members =
        |ids: &[String]| -> Vec<Value> { ids.iter().map(|id| json!({"value": id})).collect() };
    let group = create(
        &server,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "big", "members": members(first)}),
    )
    .await;
    let reply = server
        .call(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(json!({"schemas": [PATCH], "Operations": [
                {"op": "add", "path": "members", "value": members(rest)},
            ]})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let read = server.get(&format!("/Groups/{group}")).await;
    assert_eq!(read.body["members"].as_array().map(Vec::len), Some(count));
    // A PUT with all of them is fine too.
    let reply = server
        .call(
            Method::PUT,
            &format!("/Groups/{group}"),
            Some(json!({"schemas": [GROUP], "displayName": "big", "members": members(&ids)})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// A server whose default tenant captures undeclared attributes.
async fn capturing_server() -> TestServer {
    let server = TestServer::start().await;
    let set = server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "capture"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    server
}

#[tokio::test]
async fn capture_refuses_keys_that_are_not_attribute_paths() {
    let server = capturing_server().await;

    let long = "k".repeat(60_000);
    for (key, shown) in [
        ("password ", r#""password ""#),
        ("pass\tword", r#""pass\tword""#),
        ("pass\u{0}word", r#""pass\0word""#),
        (long.as_str(), "60000 bytes"),
    ] {
        let mut body = json!({"schemas": [USER], "userName": "capture"});
        body[key] = json!("clear-text-secret");
        let reply = server.call(Method::POST, "/Users", Some(body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidPath");
        assert!(detail(&reply).contains(shown), "{}", detail(&reply));
        assert!(detail(&reply).len() < 1000, "{}", detail(&reply).len());
    }

    // Legitimate undeclared keys are still captured.
    let cost_center = "urn:example:acme:2.0:User:costCenter";
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "capture",
               "extension_abc123_region": "EMEA", cost_center: "CC-1"}),
    )
    .await;
    let path = format!("/Users/{id}");

    // A path-less PATCH value is checked the same way; nothing changes.
    let before = server.get(&path).await;
    let reply = server
        .call(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH], "Operations": [
                {"op": "replace", "value": {"displayName": "x", "password ": "clear-text-secret"}},
            ]})),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalidPath");
    assert!(detail(&reply).contains(r#""password ""#), "{}", reply.body);
    assert_eq!(server.get(&path).await.body, before.body);
    let reply = server
        .call(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH], "Operations": [
                {"op": "replace", "value": {"extension_abc123_region": "APAC"}},
            ]})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

/// A `503` for one Bulk operation (the writer queue full under load) names
/// the request id in its detail, as a top-level `5xx` answer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_bulk_operation_names_the_request_id() {
    let options = SqliteOptions {
        writer_queue: 1,
        ..SqliteOptions::default()
    };
    let server = TestServer::start_with_store(ServerConfig::default(), options).await;
    for round in 0..30 {
        let mut tasks = Vec::new();
        for n in 0..24 {
            let http = server.http.clone();
            let base = server.base_url.clone();
            let token = server.token.clone();
            tasks.push(tokio::spawn(async move {
                let body = if n % 4 == 0 {
                    let operations: Vec<Value> = (0..16)
                        .map(|k| {
                            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{k}"),
                                   "data": {"schemas": [USER], "userName": format!("bulk-{round}-{n}-{k}")}})
                        })
                        .collect();
                    (format!("{base}/Bulk"), json!({"schemas": [BULK], "Operations": operations}))
                } else {
                    (
                        format!("{base}/Users"),
                        json!({"schemas": [USER], "userName": format!("load-{round}-{n}")}),
                    )
                };
                let response = http
                    .post(body.0)
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .body(body.1.to_string())
                    .send()
                    .await?;
                let request_id = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let status = response.status();
                let body: Value = response.json().await?;
                Ok::<_, reqwest::Error>((n % 4 == 0, status, request_id, body))
            }));
        }
        let mut found = None;
        for task in tasks {
            let Ok(Ok((is_bulk, status, request_id, body))) = task.await else {
                panic!("a request failed to complete");
            };
            if !is_bulk || status != StatusCode::OK {
                continue;
            }
            let busy = body["Operations"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|operation| operation["status"] == "503");
            if let Some(operation) = busy {
                found = Some((request_id, operation.clone()));
            }
        }
        if let Some((request_id, operation)) = found {
            let request_id = request_id.unwrap_or_default();
            assert!(!request_id.is_empty());
            let detail = operation["response"]["detail"].as_str().unwrap_or_default();
            assert_eq!(
                detail,
                format!("Muster is busy; retry this operation shortly (request id {request_id})"),
                "{operation}"
            );
            assert_eq!(operation["response"]["status"], "503", "{operation}");
            return;
        }
    }
    panic!("no bulk operation found the writer queue full in 30 rounds");
}

#[tokio::test]
async fn capture_never_keeps_an_undeclared_password_in_any_spelling() {
    let server = capturing_server().await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let id = create(
        &server,
        "/Users",
        json!({"schemas": [USER], "userName": "holder"}),
    )
    .await;
    let path = format!("/Users/{id}");
    let before = server.get(&path).await;

    let bodies = [
        json!({"schemas": [USER, enterprise], "userName": "a",
               enterprise: {"password": "Clear-Secret-1"}}),
        json!({"schemas": [USER], "userName": "b", "legacy": {"Password": "Clear-Secret-2"}}),
        json!({"schemas": [USER], "userName": "c", "urn:example:old:2.0:User:password": "Clear-Secret-3"}),
        json!({"schemas": [USER], "userName": "d", "vault": [{"PASSWORD": "Clear-Secret-4"}]}),
    ];
    for body in bodies {
        let reply = server.call(Method::POST, "/Users", Some(body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
        assert!(detail(&reply).contains("password"), "{}", reply.body);
    }
    for operation in [
        json!({"op": "add", "path": "legacy.password", "value": "Clear-Secret-5"}),
        json!({"op": "replace", "value": {"legacy": {"password": "Clear-Secret-6"}}}),
        json!({"op": "add", "path": format!("{enterprise}:password"), "value": "Clear-Secret-7"}),
    ] {
        let reply = server
            .call(
                Method::PATCH,
                &path,
                Some(json!({"schemas": [PATCH], "Operations": [operation]})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    let bulk = server
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [{
                "method": "POST", "path": "/Users", "bulkId": "x",
                "data": {"schemas": [USER], "userName": "e", "legacy": {"password": "Clear-Secret-8"}}
            }]})),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert_eq!(bulk.body["Operations"][0]["status"], "400", "{}", bulk.body);

    // Nothing changed, and no clear secret reached the database.
    assert_eq!(server.get(&path).await.body, before.body);
    assert!(!server.stored_text().await.contains("Clear-Secret-"));
}

/// Finding (attack review): following the capture refusal's old advice, an
/// admin declared an extension attribute `password`, and its values were
/// stored as sent. Such a declaration is refused now, in any case and at
/// any depth, and the refusal of a captured password points at the core
/// `password`, which is hashed.
#[tokio::test]
async fn an_extension_cannot_declare_a_password() {
    let server = TestServer::start().await;
    let urn = "urn:ietf:params:scim:schemas:extension:pwtest:2.0:User";
    for attributes in [
        json!([{"name": "password", "type": "string", "returned": "never",
                "mutability": "writeOnly"}]),
        json!([{"name": "login", "type": "complex",
                "subAttributes": [{"name": "PASSWORD", "type": "string"}]}]),
    ] {
        let declared = server
            .admin(
                Method::PUT,
                &format!("/schemas/{urn}"),
                Some(json!({"id": urn, "name": "PwTest", "attributes": attributes})),
            )
            .await;
        assert_eq!(
            declared.status,
            StatusCode::BAD_REQUEST,
            "{}",
            declared.body
        );
        let detail = declared.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("'password' cannot be declared"), "{detail}");
    }
    let schemas = server.admin(Method::GET, "/schemas", None).await;
    assert!(
        !schemas.body.to_string().contains("pwtest"),
        "{}",
        schemas.body
    );
}

/// A text that compresses badly, of `bytes` bytes (PostgreSQL compresses
/// long index rows, so a repeated letter would hide its limit).
fn incompressible(bytes: usize) -> String {
    let mut state: u32 = 0x2545_f491;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(b'a' + u8::try_from(state % 26).unwrap_or_default())
        })
        .collect()
}

/// Attack review of the PostgreSQL backend: a NUL character (U+0000) or a
/// value too long for a B-tree index is the client's error (`400`), never
/// a `500`; an id holding a NUL character names nothing (`404`). SQLite
/// holds both, so there the writes are accepted.
#[tokio::test]
async fn nul_characters_and_long_values_are_never_a_server_error() {
    let server = TestServer::start().await;
    let postgres = muster_testkit::on_postgres();

    let reply = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "nul\u{0}user"})),
        )
        .await;
    if postgres {
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
        assert!(
            detail(&reply).contains("NUL character (U+0000)"),
            "{}",
            reply.body
        );
    } else {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    let reply = server
        .get("/Users?filter=userName%20eq%20%22a%5Cu0000b%22")
        .await;
    if postgres {
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidFilter");
        assert!(
            detail(&reply).contains("NUL character (U+0000)"),
            "{}",
            reply.body
        );
    } else {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    for method in [Method::GET, Method::DELETE] {
        let reply = server.call(method, "/Users/ab%00c", None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    }

    let bulk = server
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "n",
                 "data": {"schemas": [USER], "userName": "bulk\u{0}nul"}},
            ]})),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    let status = if postgres { "400" } else { "201" };
    assert_eq!(
        bulk.body["Operations"][0]["status"], status,
        "{}",
        bulk.body
    );

    let long = incompressible(2900);
    let reply = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "long-title", "title": long})),
        )
        .await;
    if postgres {
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalidValue");
        assert_eq!(
            detail(&reply),
            "title: a value of 2,900 bytes is longer than the 2,000 bytes Muster indexes on \
             PostgreSQL",
            "{}",
            reply.body
        );
    } else {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}
