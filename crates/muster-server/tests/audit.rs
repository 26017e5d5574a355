//! The audit trail over HTTP (issue 14, item 8): every change gets an entry
//! with who, when, which request and the attribute-level before and after;
//! secrets (a `password` in every spelling, a `writeOnly` extension value)
//! are redacted and never stored in the audit table; `GET
//! /admin/v1/audit` filters by user, client and time, pages with a cursor,
//! needs the `admin` scope and shows only the caller's tenant. Runs on
//! SQLite, and on PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_store::{TenantId, TokenRecord};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const VAULT: &str = "urn:ietf:params:scim:schemas:extension:vault:2.0:User";

/// The clear text of secret `n`.
fn secret(n: usize) -> String {
    format!("Audit-Clear-Secret-{n:02}-qx")
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "active": true, "displayName": name})
}

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn declare_vault(server: &TestServer) {
    let schema = json!({"id": VAULT, "name": "Vault", "attributes": [
        {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
        {"name": "badge", "type": "string"},
    ]});
    let reply = server
        .admin(Method::PUT, &format!("/schemas/{VAULT}"), Some(schema))
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

async fn create(server: &TestServer, body: Value) -> String {
    let reply = server.post("/Users", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn audit(server: &TestServer, token: &str, query: &str) -> Reply {
    server
        .call_as(token, Method::GET, &format!("/admin/v1/audit{query}"), None)
        .await
}

fn entries(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["Resources"].as_array().unwrap().clone()
}

/// Every write spelling that sets a secret, then the raw audit rows: no
/// clear text, no hash, no writeOnly value; the entries say the values
/// changed, redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_audit_trail() {
    let server = TestServer::start().await;
    declare_vault(&server).await;
    let mut n = 0;
    let mut next = || {
        n += 1;
        secret(n)
    };
    // POST with a password and a writeOnly value.
    let mut body = user("ann");
    body["password"] = json!(next());
    body[VAULT] = json!({"pin": next(), "badge": "B-1"});
    body["schemas"] = json!([USER, VAULT]);
    let ann = create(&server, body).await;
    // PATCH by path, by URN path, path-less by name and by URN key.
    for operations in [
        json!([{"op": "replace", "path": "password", "value": next()}]),
        json!([{"op": "replace", "path": format!("{USER}:password"), "value": next()}]),
        json!([{"op": "replace", "value": {"password": next()}}]),
        json!([{"op": "replace", "value": {format!("{USER}:password"): next()}}]),
        json!([{"op": "replace", "path": format!("{VAULT}:pin"), "value": next()}]),
        json!([{"op": "replace", "value": {VAULT: {"pin": next()}}}]),
        json!([{"op": "replace", "value": {format!("{VAULT}:pin"): next()}}]),
    ] {
        let reply = server
            .patch(&format!("/Users/{ann}"), patch(operations))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // PUT.
    let mut body = user("ann");
    body["password"] = json!(next());
    let reply = server.put(&format!("/Users/{ann}"), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Bulk POST and PATCH.
    let mut bulk_user = user("bob");
    bulk_user["password"] = json!(next());
    let reply = server
        .post(
            "/Bulk",
            json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": bulk_user},
                {"method": "PATCH", "path": format!("/Users/{ann}"),
                 "data": patch(json!([{"op": "add", "path": "password", "value": next()}]))},
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for result in reply.body["Operations"].as_array().unwrap() {
        assert!(
            result["status"].as_str().unwrap().starts_with('2'),
            "{result}"
        );
    }
    let written = n;
    // The raw rows of the audit table, as stored.
    let links = server
        .store
        .audit_links(&TenantId::default_tenant(), 0, 1_000)
        .await
        .unwrap();
    let mut raw = String::new();
    for link in &links {
        raw.push_str(&link.skeleton);
        raw.push_str(link.detail.as_deref().unwrap_or_default());
    }
    // On SQLite, the table's bytes through SQL too.
    if server.database().is_none() {
        let connection = rusqlite::Connection::open(server.data_dir().join("muster.db")).unwrap();
        let mut statement = connection
            .prepare("SELECT quote(skeleton) || quote(detail) || user_name FROM audit_log")
            .unwrap();
        let rows = statement
            .query_map([], |row| row.get::<_, Option<String>>(0))
            .unwrap();
        for row in rows {
            raw.push_str(&row.unwrap().unwrap_or_default());
        }
    }
    assert!(links.len() >= 12, "{} entries", links.len());
    for n in 1..=written {
        assert!(!raw.contains(&secret(n)), "secret {n} in the audit table");
    }
    assert!(
        !raw.contains("argon2"),
        "a password hash in the audit table"
    );
    // Clear-text passwords are stored nowhere (writeOnly values are kept
    // with the resource, so only the passwords are checked there).
    let stored = server.stored_text().await;
    for n in [1, 3, 4, 5, 6, 10, 11, 12] {
        assert!(!stored.contains(&secret(n)), "password {n} stored");
    }
    // The entries say what changed, redacted.
    let reply = audit(&server, &server.token, &format!("?user={ann}&count=1000")).await;
    let ann_entries = entries(&reply);
    let changed = |path: &str| {
        ann_entries
            .iter()
            .flat_map(|entry| entry["changes"].as_array().cloned().unwrap_or_default())
            .filter(|change| change["path"] == path)
            .collect::<Vec<_>>()
    };
    let passwords = changed("password");
    assert!(passwords.len() >= 6, "{passwords:?}");
    let redacted = |change: &Value| {
        for side in ["before", "after"] {
            assert!(
                change[side].is_null() || change[side] == "[redacted]",
                "{change}"
            );
        }
        assert!(!change["before"].is_null() || !change["after"].is_null());
    };
    for change in passwords {
        redacted(&change);
    }
    let pins = changed(&format!("{VAULT}:pin"));
    assert!(pins.len() >= 3, "{ann_entries:?}");
    for change in pins {
        redacted(&change);
    }
    // The chain verifies.
    let verified = server
        .store
        .verify_audit(&TenantId::default_tenant())
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

/// Filters (user by id and userName, client, since and until), paging with
/// a cursor, the fields of an entry, refusals, scopes and tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_queries_filter_page_and_stay_in_their_tenant() {
    let server = TestServer::start().await;
    let writer = server
        .token_with("hr-writer", &[SCOPE_READ, SCOPE_WRITE])
        .await;
    let reader = server.token_with("auditor-read", &[SCOPE_READ]).await;
    let ann = create(&server, user("ann")).await;
    let before_bob = time_now();
    let reply = server
        .call_as(&writer, Method::POST, "/scim/v2/Users", Some(user("bob")))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let bob = reply.body["id"].as_str().unwrap().to_owned();
    let request_id = reply.header("x-request-id").unwrap().to_owned();
    let reply = server
        .call_as(
            &writer,
            Method::PATCH,
            &format!("/scim/v2/Users/{bob}"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Bob B."}]),
            )),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = server.delete(&format!("/Users/{ann}")).await;
    assert!(reply.status.is_success(), "{}", reply.body);

    // Everything, in order.
    let all = entries(&audit(&server, &server.token, "").await);
    let positions: Vec<u64> = all
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted);
    // By userName (any case) and by id.
    let bobs = entries(&audit(&server, &server.token, "?user=BOB").await);
    assert_eq!(bobs.len(), 2, "{bobs:?}");
    assert_eq!(
        entries(&audit(&server, &server.token, &format!("?user={bob}")).await),
        bobs
    );
    let created = &bobs[0];
    assert_eq!(created["operation"], "create");
    assert_eq!(created["client"], "hr-writer");
    assert_eq!(created["requestId"], request_id.as_str());
    assert_eq!(created["tenant"], "default");
    assert_eq!(created["resourceType"], "User");
    assert_eq!(created["resourceId"], bob.as_str());
    assert_eq!(created["userName"], "bob");
    assert_eq!(bobs[1]["operation"], "update");
    assert_eq!(
        bobs[1]["changes"],
        json!([{"path": "displayName", "before": "bob", "after": "Bob B."}])
    );
    // By client.
    let by_writer = entries(&audit(&server, &server.token, "?client=hr-writer").await);
    assert_eq!(by_writer, bobs);
    // By time.
    let since = entries(&audit(&server, &server.token, &format!("?since={before_bob}")).await);
    assert!(since
        .iter()
        .all(|entry| entry["userName"] != "ann" || entry["operation"] == "delete"));
    assert!(since.len() >= 3, "{since:?}");
    let until = entries(&audit(&server, &server.token, &format!("?until={before_bob}")).await);
    assert!(
        until
            .iter()
            .all(|entry| entry["resourceId"] != bob.as_str()),
        "{until:?}"
    );
    assert!(
        entries(&audit(&server, &server.token, "?since=2999-01-01T00:00:00Z").await).is_empty()
    );
    // Paging with a cursor walks everything once.
    let mut walked = Vec::new();
    let mut query = "?count=1".to_owned();
    loop {
        let reply = audit(&server, &server.token, &query).await;
        walked.extend(entries(&reply));
        match reply.body["nextCursor"].as_str() {
            Some(cursor) => query = format!("?count=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, all);
    // Refusals: a 400 naming the parameter.
    for (query, named) in [
        ("?since=yesterday", "since"),
        ("?until=2026-13-01", "until"),
        ("?count=zero", "count"),
        ("?cursor=abc", "cursor"),
    ] {
        let reply = audit(&server, &server.token, query).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert!(
            reply.body["detail"].as_str().unwrap().contains(named),
            "{}",
            reply.body
        );
    }
    // Scopes: read and write tokens are refused.
    for token in [&reader, &writer] {
        let reply = audit(&server, token, "").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    }
    // Another tenant's admin sees none of it, at its own URL, and is
    // unknown at the default tenant's.
    let other = TenantId("other".to_owned());
    server.store.create_tenant(&other).await.unwrap();
    let token = mint_token();
    server
        .store
        .create_token(
            &other,
            TokenRecord {
                name: "other-admin".to_owned(),
                secret_hash: token.secret_hash,
                scopes: vec![SCOPE_ADMIN.to_owned(), SCOPE_WRITE.to_owned()],
                created: String::new(),
            },
        )
        .await
        .unwrap();
    let theirs = server
        .call_as(&token.secret, Method::GET, "/t/other/admin/v1/audit", None)
        .await;
    assert!(entries(&theirs).is_empty(), "{}", theirs.body);
    let reply = server
        .call_as(
            &token.secret,
            Method::GET,
            &format!("/t/other/admin/v1/audit?user={bob}"),
            None,
        )
        .await;
    assert!(entries(&reply).is_empty());
    let reply = audit(&server, &token.secret, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
}

/// A huge before and after (hundreds of kilobytes) is audited whole and
/// the chain still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_changes_are_audited() {
    let server = TestServer::start().await;
    let emails = |tag: &str| -> Vec<Value> {
        (0..400)
            .map(|i| json!({"value": format!("{tag}-{i:04}-{}@example.com", "x".repeat(200)), "type": "work"}))
            .collect()
    };
    let mut body = user("huge");
    body["emails"] = json!(emails("a"));
    let id = create(&server, body.clone()).await;
    body["emails"] = json!(emails("b"));
    let reply = server.put(&format!("/Users/{id}"), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let found = entries(&audit(&server, &server.token, &format!("?user={id}")).await);
    assert_eq!(found.len(), 2);
    let change = &found[1]["changes"][0];
    assert_eq!(change["path"], "emails");
    assert_eq!(change["before"].as_array().unwrap().len(), 400);
    assert_eq!(change["after"].as_array().unwrap().len(), 400);
    let verified = server
        .store
        .verify_audit(&TenantId::default_tenant())
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

/// Now, RFC 3339 in UTC.
fn time_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let seconds = now.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil(days: u64) -> (i64, u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A target put, replaced and removed through the admin API is in the audit
/// trail with who did it, never with its document (which names a secret).
#[tokio::test]
async fn target_changes_are_audited_without_their_secrets() {
    let server = TestServer::start().await;
    let downstream = TestServer::start().await;
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
        "mappings": [{"target": "userName", "expression": "userName"}],
    });
    for _ in 0..2 {
        let put = server
            .admin(Method::PUT, "/targets/downstream", Some(document.clone()))
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    }
    let removed = server
        .admin(Method::DELETE, "/targets/downstream", None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let reply = audit(&server, &server.token, "?count=1000").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let actions: Vec<(Value, Value, Value)> = entries(&reply)
        .into_iter()
        .filter(|entry| entry["resourceType"] == "Target")
        .map(|entry| {
            (
                entry["operation"].clone(),
                entry["resourceId"].clone(),
                entry["requestId"].clone(),
            )
        })
        .collect();
    let operations: Vec<&Value> = actions.iter().map(|(operation, _, _)| operation).collect();
    assert_eq!(
        operations,
        ["create", "replace", "remove"],
        "{}",
        reply.body
    );
    for (_, name, request_id) in &actions {
        assert_eq!(name, "downstream");
        assert!(
            request_id.as_str().is_some_and(|id| !id.is_empty()),
            "{}",
            reply.body
        );
    }
    assert!(
        !reply.body.to_string().contains(&downstream.token),
        "the target's token is in the audit trail"
    );
}

/// A query parameter the audit query does not know, one given twice, or a
/// `count` out of range is a 400 naming it, never ignored or clamped.
#[tokio::test]
async fn audit_query_parameters_are_checked() {
    let server = TestServer::start().await;
    for (query, named) in [
        ("?count=1001", "count"),
        ("?count=0", "count"),
        ("?count=1&count=2", "count"),
        ("?usr=alice", "usr"),
        ("?user=a&user=b", "user"),
    ] {
        let reply = audit(&server, &server.token, query).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert!(
            reply.body["detail"].as_str().unwrap().contains(named),
            "{query}: {}",
            reply.body
        );
    }
    let reply = audit(&server, &server.token, "?count=1000").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
