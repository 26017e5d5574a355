//! Soft delete, restore and purge over HTTP (issue 14, item 4): what a
//! `DELETE /Users/{id}` leaves, who can bring the user back and how, and
//! what a purge erases. Runs on SQLite, and on PostgreSQL with
//! `MUSTER_TEST_BACKEND=postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_store::{TenantId, TokenRecord};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn user(name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "externalId": external_id,
        "name": {"givenName": format!("{name}-given"), "familyName": format!("{name}-family")},
        "emails": [{"value": format!("{name}@mail.example"), "type": "work", "primary": true}],
        "active": true,
    })
}

async fn create_user(server: &TestServer, name: &str, external_id: &str) -> Reply {
    let reply = server.post("/Users", user(name, external_id)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply
}

fn id_of(reply: &Reply) -> String {
    reply.body["id"].as_str().unwrap_or_default().to_owned()
}

fn version_of(reply: &Reply) -> u64 {
    reply
        .header("etag")
        .and_then(muster_core::parse_etag)
        .unwrap_or_default()
}

async fn group(server: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let reply = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": name, "members": members}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    id_of(&reply)
}

async fn member_ids(server: &TestServer, group: &str) -> Vec<String> {
    let reply = server.get(&format!("/Groups/{group}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter_map(|member| member["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn count(server: &TestServer, filter: &str) -> u64 {
    let reply = server
        .get(&format!("/Users?filter={}", urlencode(filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["totalResults"].as_u64().unwrap_or(u64::MAX)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn deleted(server: &TestServer) -> Vec<Value> {
    let reply = server.admin(Method::GET, "/users/deleted", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn restore(server: &TestServer, key: &str) -> Reply {
    server
        .admin(Method::POST, &format!("/users/{key}/restore"), None)
        .await
}

async fn purge(server: &TestServer, id: &str) -> Reply {
    server
        .admin(Method::POST, &format!("/users/{id}/purge"), None)
        .await
}

async fn settings(server: &TestServer, changes: Value) {
    let mut document = server.admin(Method::GET, "/settings", None).await.body;
    for (key, value) in changes.as_object().cloned().unwrap_or_default() {
        document[key] = value;
    }
    let reply = server.admin(Method::PUT, "/settings", Some(document)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// Every value stored, as the database can be asked for it: every row of
/// every table (PostgreSQL: the testkit's `stored_text`; SQLite: each
/// column of each row read back as text).
async fn stored_rows(server: &TestServer) -> String {
    if server.database().is_some() {
        return server.stored_text().await;
    }
    let connection =
        rusqlite::Connection::open(server.data_dir().join("muster.db")).expect("open the database");
    let tables: Vec<String> = {
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .expect("list tables");
        let rows = statement
            .query_map([], |row| row.get(0))
            .expect("list tables");
        rows.collect::<Result<_, _>>().expect("list tables")
    };
    let mut text = String::new();
    for table in tables {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("read a table");
        let columns = statement.column_count();
        let mut rows = statement.query([]).expect("read a table");
        while let Some(row) = rows.next().expect("read a row") {
            for column in 0..columns {
                let value: rusqlite::types::Value = row.get(column).expect("read a column");
                match value {
                    rusqlite::types::Value::Text(value) => text.push_str(&value),
                    rusqlite::types::Value::Blob(value) => {
                        text.push_str(&String::from_utf8_lossy(&value))
                    }
                    other => text.push_str(&format!("{other:?}")),
                }
                text.push('\t');
            }
            text.push('\n');
        }
    }
    text
}

#[tokio::test]
async fn delete_hides_the_user_and_frees_its_user_name() {
    let server = TestServer::start().await;
    let alice = id_of(&create_user(&server, "alice", "ext-alice").await);
    let team = group(&server, "team", &[&alice]).await;

    let reply = server.delete(&format!("/Users/{alice}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        server.get(&format!("/Users/{alice}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(count(&server, "userName eq \"alice\"").await, 0);
    assert_eq!(count(&server, "externalId eq \"ext-alice\"").await, 0);
    assert!(member_ids(&server, &team).await.is_empty());
    // A PATCH, PUT or DELETE of the deleted id finds nothing.
    let patch = server
        .patch(
            &format!("/Users/{alice}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": true}]}),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "{}", patch.body);
    let put = server
        .put(&format!("/Users/{alice}"), user("alice", "ext-alice"))
        .await;
    assert_eq!(put.status, StatusCode::NOT_FOUND, "{}", put.body);
    assert_eq!(
        server.delete(&format!("/Users/{alice}")).await.status,
        StatusCode::NOT_FOUND
    );
    // A group cannot take the deleted id back as a member, by PATCH or PUT.
    let add = server
        .patch(
            &format!("/Groups/{team}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": alice}]}]}),
        )
        .await;
    assert!(add.status.is_client_error(), "{} {}", add.status, add.body);
    let put = server
        .put(
            &format!("/Groups/{team}"),
            json!({"schemas": [GROUP], "displayName": "team", "members": [{"value": alice}]}),
        )
        .await;
    assert!(put.status.is_client_error(), "{} {}", put.status, put.body);
    assert!(member_ids(&server, &team).await.is_empty());

    // Listed for admins, with who deleted it and when its retention ends.
    let rows = deleted(&server).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], json!(alice));
    assert_eq!(rows[0]["userName"], json!("alice"));
    assert!(rows[0]["deletedBy"].is_string(), "{rows:?}");
    assert!(
        rows[0]["expiresAt"].as_str().unwrap_or_default()
            > rows[0]["deletedAt"].as_str().unwrap_or("~")
    );

    // The userName is free at once: a new user takes it, with a new id.
    let again = create_user(&server, "ALICE", "ext-other").await;
    assert_ne!(id_of(&again), alice);
}

#[tokio::test]
async fn an_admin_restores_the_same_id_with_a_new_version_and_its_groups() {
    let server = TestServer::start().await;
    let created = create_user(&server, "bob", "ext-bob").await;
    let bob = id_of(&created);
    let team = group(&server, "team", &[&bob]).await;
    let before = server.get(&format!("/Users/{bob}")).await;
    let version_before = version_of(&before);
    let removed = group(&server, "removed", &[&bob]).await;
    assert_eq!(
        server.delete(&format!("/Groups/{removed}")).await.status,
        StatusCode::NO_CONTENT
    );

    assert_eq!(
        server.delete(&format!("/Users/{bob}")).await.status,
        StatusCode::NO_CONTENT
    );
    let restored = restore(&server, &bob).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(id_of(&restored), bob);
    assert!(
        version_of(&restored) > version_before,
        "{:?}",
        restored.headers
    );
    assert_eq!(restored.body["userName"], json!("bob"));
    assert_eq!(
        restored.body["emails"][0]["value"],
        json!("bob@mail.example")
    );
    assert_eq!(
        restored.body["meta"]["created"], before.body["meta"]["created"],
        "its creation instant is kept"
    );
    let read = server.get(&format!("/Users/{bob}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(member_ids(&server, &team).await, vec![bob.clone()]);
    let groups: Vec<&str> = read.body["groups"]
        .as_array()
        .map(|groups| groups.iter().filter_map(|g| g["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(groups, vec![team.as_str()]);
    assert!(deleted(&server).await.is_empty());

    // Restoring twice: the second finds nothing.
    assert_eq!(restore(&server, &bob).await.status, StatusCode::NOT_FOUND);

    // By userName, in any case.
    assert_eq!(
        server.delete(&format!("/Users/{bob}")).await.status,
        StatusCode::NO_CONTENT
    );
    let by_name = restore(&server, "BOB").await;
    assert_eq!(by_name.status, StatusCode::OK, "{}", by_name.body);
    assert_eq!(id_of(&by_name), bob);
}

#[tokio::test]
async fn a_restore_is_refused_when_the_user_name_was_taken_meanwhile() {
    let server = TestServer::start().await;
    let carol = id_of(&create_user(&server, "carol", "ext-carol").await);
    assert_eq!(
        server.delete(&format!("/Users/{carol}")).await.status,
        StatusCode::NO_CONTENT
    );
    let other = id_of(&create_user(&server, "Carol", "ext-new").await);

    let refused = restore(&server, &carol).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["scimType"], json!("uniqueness"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("userName"),
        "{}",
        refused.body
    );
    // Nothing changed: still deleted, the other one untouched.
    assert_eq!(deleted(&server).await.len(), 1);
    assert_eq!(
        server.get(&format!("/Users/{carol}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get(&format!("/Users/{other}")).await.status,
        StatusCode::OK
    );

    // Once the name is free again, the restore goes through.
    assert_eq!(
        server.delete(&format!("/Users/{other}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(restore(&server, &carol).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_re_post_with_the_same_external_id_brings_the_same_id_back() {
    let server = TestServer::start().await;
    let dave = id_of(&create_user(&server, "dave", "EXT-Dave").await);
    let team = group(&server, "team", &[&dave]).await;
    assert_eq!(
        server.delete(&format!("/Users/{dave}")).await.status,
        StatusCode::NO_CONTENT
    );

    // The POST body becomes the user's state.
    let rehired = server
        .post("/Users", user("dave.rehired", "EXT-Dave"))
        .await;
    assert_eq!(rehired.status, StatusCode::CREATED, "{}", rehired.body);
    assert_eq!(id_of(&rehired), dave);
    assert_eq!(rehired.body["userName"], json!("dave.rehired"));
    assert!(rehired
        .header("location")
        .is_some_and(|l| l.ends_with(&dave)));
    assert_eq!(count(&server, "externalId eq \"EXT-Dave\"").await, 1);
    assert_eq!(member_ids(&server, &team).await, vec![dave.clone()]);
    assert!(deleted(&server).await.is_empty());

    // externalId is caseExact: another case is another person.
    assert_eq!(
        server.delete(&format!("/Users/{dave}")).await.status,
        StatusCode::NO_CONTENT
    );
    let other_case = server.post("/Users", user("dave.other", "ext-dave")).await;
    assert_eq!(
        other_case.status,
        StatusCode::CREATED,
        "{}",
        other_case.body
    );
    assert_ne!(id_of(&other_case), dave);
    assert_eq!(deleted(&server).await.len(), 1);

    // The attribute's name in any case is the same attribute.
    let other_id = id_of(&other_case);
    assert_eq!(
        server.delete(&format!("/Users/{other_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let spelled = server
        .post(
            "/Users",
            json!({"schemas": [USER], "USERNAME": "dave.spelled", "ExternalID": "EXT-Dave"}),
        )
        .await;
    assert_eq!(spelled.status, StatusCode::CREATED, "{}", spelled.body);
    assert_eq!(id_of(&spelled), dave);
    assert_eq!(
        server.delete(&format!("/Users/{dave}")).await.status,
        StatusCode::NO_CONTENT
    );

    // Through Bulk too.
    let bulk = server
        .post(
            "/Bulk",
            json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "bulkId": "d", "path": "/Users", "data": user("dave.bulk", "EXT-Dave")}
            ]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    let operation = &bulk.body["Operations"][0];
    assert_eq!(count(&server, "externalId eq \"EXT-Dave\"").await, 1);
    assert_eq!(operation["status"], json!("201"), "{}", bulk.body);
    assert!(operation["location"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&dave));
}

#[tokio::test]
async fn after_a_purge_a_re_post_creates_a_new_user_and_nothing_restores() {
    let server = TestServer::start().await;
    let erin = id_of(&create_user(&server, "erin", "ext-erin").await);
    assert_eq!(
        server.delete(&format!("/Users/{erin}")).await.status,
        StatusCode::NO_CONTENT
    );
    let purged = purge(&server, &erin).await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    assert_eq!(purged.body["id"], json!(erin));
    assert!(purged.body.get("userName").is_none(), "{}", purged.body);
    assert!(purged.body["purgedAt"].is_string(), "{}", purged.body);

    let restored = restore(&server, &erin).await;
    assert_eq!(restored.status, StatusCode::CONFLICT, "{}", restored.body);
    assert!(restored.body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("purged"));

    let again = server.post("/Users", user("erin", "ext-erin")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_ne!(id_of(&again), erin);
    // Purging again changes nothing; an unknown id is 404.
    assert_eq!(purge(&server, &erin).await.status, StatusCode::OK);
    assert_eq!(
        purge(&server, "no-such-id").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        purge(&server, &id_of(&again)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_purge_erases_personal_data_and_keeps_the_skeleton() {
    let server = TestServer::start().await;
    let body = json!({
        "schemas": [USER],
        "userName": "zq7781.purgeuser",
        "externalId": "zq7781-external",
        "name": {"givenName": "Zqgivenname", "familyName": "Zqfamilyname"},
        "emails": [{"value": "zq5531@mail.example", "type": "work"}],
    });
    let created = server.post("/Users", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = id_of(&created);
    let team = group(&server, "team", &[&id]).await;
    let patched = server
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Zqtitle"}]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        server.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let personal = [
        "zq7781.purgeuser",
        "zq7781-external",
        "Zqgivenname",
        "Zqfamilyname",
        "zq5531@mail.example",
        "Zqtitle",
    ];
    let before = stored_rows(&server).await;
    for value in personal {
        assert!(
            before.contains(value),
            "the tombstone holds {value} before the purge"
        );
    }

    assert_eq!(purge(&server, &id).await.status, StatusCode::OK);
    let after = stored_rows(&server).await;
    for value in personal {
        assert!(
            !after.contains(value),
            "{value} is still stored after the purge"
        );
    }
    // On SQLite, the bytes of the files too: the purge zeroed what it erased
    // in the pages it rewrote and had the WAL emptied of older page versions.
    if server.database().is_none() {
        let mut raw = server.stored_text().await;
        for _ in 0..50 {
            if personal.iter().all(|value| !raw.contains(value)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            raw = server.stored_text().await;
        }
        for value in personal {
            assert!(
                !raw.contains(value),
                "{value} is still in the bytes of the SQLite files after the purge"
            );
        }
    }
    // The skeleton: id, when and by whom deleted and purged.
    let rows = deleted(&server).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], json!(id));
    assert!(rows[0].get("userName").is_none(), "{rows:?}");
    for key in ["deletedAt", "deletedBy", "purgedAt", "purgedBy"] {
        assert!(rows[0][key].is_string(), "{key}: {rows:?}");
    }
    assert!(after.contains(&id));
    assert_eq!(
        server.get(&format!("/Groups/{team}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn purge_expired_purges_only_what_is_past_the_retention() {
    let server = TestServer::start().await;
    let frank = id_of(&create_user(&server, "frank", "ext-frank").await);
    assert_eq!(
        server.delete(&format!("/Users/{frank}")).await.status,
        StatusCode::NO_CONTENT
    );
    // Within 30 days: the sweep leaves it.
    assert_eq!(
        muster_core::lifecycle::sweep(&*server.store).await.ok(),
        Some(0)
    );
    assert!(deleted(&server).await[0]["userName"].is_string());
    // A retention of 0 days: the sweep purges it, and a re-POST no longer
    // restores it.
    settings(&server, json!({"softDeleteRetentionDays": 0})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        muster_core::lifecycle::sweep(&*server.store).await.ok(),
        Some(1)
    );
    let rows = deleted(&server).await;
    assert!(
        rows[0].get("userName").is_none() && rows[0]["purgedAt"].is_string(),
        "{rows:?}"
    );
    assert_eq!(
        rows[0]["purgedBy"],
        json!(muster_core::lifecycle::SWEEP_CLIENT)
    );
}

#[tokio::test]
async fn a_tenant_may_make_delete_mean_deactivate() {
    let server = TestServer::start().await;
    // /ServiceProviderConfig links the documentation and stays plain RFC
    // 7643 (strict clients refuse keys its schema lacks); the tenant's
    // semantics are in the admin API.
    let config = server.get("/ServiceProviderConfig").await;
    assert!(
        config.body["documentationUri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with("#lifecycle-deactivate-delete-restore-purge")),
        "{}",
        config.body
    );
    assert_eq!(
        config.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    let lifecycle = server.admin(Method::GET, "/lifecycle", None).await;
    assert_eq!(lifecycle.status, StatusCode::OK, "{}", lifecycle.body);
    assert_eq!(
        lifecycle.body["userDelete"],
        json!("softDelete"),
        "{}",
        lifecycle.body
    );
    assert!(lifecycle.body["documentationUri"].is_string());

    settings(&server, json!({"deleteMeans": "deactivate"})).await;
    let shown = server.admin(Method::GET, "/settings", None).await;
    assert_eq!(shown.body["deleteMeans"], json!("deactivate"));
    assert_eq!(shown.body["softDeleteRetentionDays"], json!(30));
    let lifecycle = server.admin(Method::GET, "/lifecycle", None).await;
    assert_eq!(lifecycle.body["userDelete"], json!("deactivate"));

    let gina = id_of(&create_user(&server, "gina", "ext-gina").await);
    let team = group(&server, "team", &[&gina]).await;
    assert_eq!(
        server.delete(&format!("/Users/{gina}")).await.status,
        StatusCode::NO_CONTENT
    );
    let read = server.get(&format!("/Users/{gina}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["active"], json!(false));
    assert_eq!(member_ids(&server, &team).await, vec![gina.clone()]);
    assert!(deleted(&server).await.is_empty());
    // Again: still 204, nothing more changes.
    assert_eq!(
        server.delete(&format!("/Users/{gina}")).await.status,
        StatusCode::NO_CONTENT
    );
    // Groups are deleted for good whatever the setting.
    assert_eq!(
        server.delete(&format!("/Groups/{team}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.get(&format!("/Groups/{team}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Bad values are refused, naming the setting; nothing changes.
    for bad in [
        json!({"deleteMeans": "hardDelete"}),
        json!({"softDeleteRetentionDays": 99999}),
        json!({"softDeleteRetentionDays": 99999, "undeclaredAttributes": "capture"}),
        json!({"softDeleteRetentionDays": -1}),
    ] {
        let mut document = server.admin(Method::GET, "/settings", None).await.body;
        for (key, value) in bad.as_object().cloned().unwrap_or_default() {
            document[key] = value;
        }
        let reply = server.admin(Method::PUT, "/settings", Some(document)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    let shown = server.admin(Method::GET, "/settings", None).await;
    assert_eq!(shown.body["deleteMeans"], json!("deactivate"));
    assert_eq!(shown.body["undeclaredAttributes"], json!("reject"));
    assert_eq!(shown.body["softDeleteRetentionDays"], json!(30));
}

#[tokio::test]
async fn a_bulk_delete_is_a_soft_delete_too() {
    let server = TestServer::start().await;
    let hank = id_of(&create_user(&server, "hank", "ext-hank").await);
    let bulk = server
        .post(
            "/Bulk",
            json!({"schemas": [BULK], "Operations": [
                {"method": "DELETE", "path": format!("/Users/{hank}")},
                {"method": "POST", "bulkId": "h", "path": "/Users", "data": user("hank", "ext-new-hank")}
            ]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert_eq!(
        bulk.body["Operations"][0]["status"],
        json!("204"),
        "{}",
        bulk.body
    );
    assert_eq!(
        bulk.body["Operations"][1]["status"],
        json!("201"),
        "{}",
        bulk.body
    );
    assert_eq!(
        server.get(&format!("/Users/{hank}")).await.status,
        StatusCode::NOT_FOUND
    );
    let rows = deleted(&server).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], json!(hank));
}

#[tokio::test]
async fn the_admin_routes_need_the_admin_scope_and_stay_in_their_tenant() {
    let server = TestServer::start().await;
    let ivan = id_of(&create_user(&server, "ivan", "ext-ivan").await);
    assert_eq!(
        server.delete(&format!("/Users/{ivan}")).await.status,
        StatusCode::NO_CONTENT
    );

    let write = server
        .token_with("writer", &[SCOPE_READ, SCOPE_WRITE])
        .await;
    for (method, path) in [
        (Method::POST, format!("/admin/v1/users/{ivan}/restore")),
        (Method::POST, format!("/admin/v1/users/{ivan}/purge")),
        (Method::GET, "/admin/v1/users/deleted".to_owned()),
    ] {
        let reply = server.call_as(&write, method, &path, None).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
    }

    // Another tenant's admin sees nothing of it and cannot restore or
    // purge it, by id or by userName.
    let other = TenantId("other".to_owned());
    server
        .store
        .create_tenant(&other)
        .await
        .expect("create tenant");
    let token = mint_token();
    server
        .store
        .create_token(
            &other,
            TokenRecord {
                name: "other-admin".to_owned(),
                secret_hash: token.secret_hash,
                scopes: vec![
                    SCOPE_ADMIN.to_owned(),
                    SCOPE_READ.to_owned(),
                    SCOPE_WRITE.to_owned(),
                ],
                created: String::new(),
            },
        )
        .await
        .expect("create token");
    let listed = server
        .call_as(
            &token.secret,
            Method::GET,
            "/t/other/admin/v1/users/deleted",
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["totalResults"], json!(0), "{}", listed.body);
    for (base, expected) in [
        ("/t/other/admin/v1", StatusCode::NOT_FOUND),
        // Its credential at the default tenant's URL is unknown there.
        ("/admin/v1", StatusCode::UNAUTHORIZED),
    ] {
        for key in [ivan.as_str(), "ivan"] {
            for action in ["restore", "purge"] {
                let path = format!("{base}/users/{key}/{action}");
                let reply = server
                    .call_as(&token.secret, Method::POST, &path, None)
                    .await;
                assert_eq!(reply.status, expected, "{path}: {}", reply.body);
            }
        }
    }
    // A re-POST in the other tenant with the same externalId creates a new user.
    let posted = server
        .call_as(
            &token.secret,
            Method::POST,
            "/t/other/scim/v2/Users",
            Some(user("ivan", "ext-ivan")),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    assert_ne!(id_of(&posted), ivan);
    // Still there, whole, in its own tenant.
    let rows = deleted(&server).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["userName"], json!("ivan"));
    assert_eq!(restore(&server, &ivan).await.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_restores_bring_one_user_back() {
    let server = TestServer::start().await;
    let jane = id_of(&create_user(&server, "jane", "ext-jane").await);
    let team = group(&server, "team", &[&jane]).await;
    assert_eq!(
        server.delete(&format!("/Users/{jane}")).await.status,
        StatusCode::NO_CONTENT
    );
    let (a, b, c, d, e, f) = tokio::join!(
        restore(&server, &jane),
        restore(&server, "jane"),
        restore(&server, &jane),
        restore(&server, "JANE"),
        restore(&server, &jane),
        restore(&server, &jane),
    );
    let replies = [a, b, c, d, e, f];
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    );
    for reply in &replies {
        assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::NOT_FOUND,
            "{} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(member_ids(&server, &team).await, vec![jane.clone()]);
    assert_eq!(count(&server, "userName eq \"jane\"").await, 1);
}

/// A soft delete reaches a target as a delete does (the target
/// deactivates it, its default deletion), a restore as a create of the
/// same id, and a purge leaves no value of it in what was sent.
#[tokio::test]
async fn targets_deprovision_a_soft_delete_and_a_purge_erases_what_was_sent() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"},
        ],
    });
    let put = source
        .admin(Method::PUT, "/targets/downstream", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let id = id_of(&create_user(&source, "zq9913.target", "zq9913-ext").await);
    let active_at_target = |wanted: bool| {
        let target = &target;
        async move {
            let reply = target
                .get(&format!(
                    "/Users?filter={}",
                    urlencode("userName eq \"zq9913.target\"")
                ))
                .await;
            (reply.body["Resources"][0]["active"] == json!(wanted)).then_some(())
        }
    };
    wait_for("the user at the target", || active_at_target(true)).await;
    assert_eq!(
        source.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    wait_for("the deactivation at the target", || active_at_target(false)).await;
    assert_eq!(restore(&source, &id).await.status, StatusCode::OK);
    wait_for("the reactivation at the target", || active_at_target(true)).await;
    assert_eq!(
        source.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    wait_for("the deactivation at the target", || active_at_target(false)).await;

    let before = stored_rows(&source).await;
    assert!(
        before.contains("zq9913.target-given zq9913.target-family"),
        "what was sent is stored"
    );
    assert_eq!(purge(&source, &id).await.status, StatusCode::OK);
    let after = stored_rows(&source).await;
    for value in ["zq9913.target", "zq9913-ext", "zq9913.target-given"] {
        assert!(
            !after.contains(value),
            "{value} is still stored after the purge"
        );
    }
}

async fn wait_for<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while probe().await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An offboarded user stays locked through a soft delete and a restore,
/// by an admin or by a re-POST.
#[tokio::test]
async fn an_offboarding_lock_survives_a_delete_and_a_restore() {
    let server = TestServer::start().await;
    let id = id_of(&create_user(&server, "lena", "ext-lena").await);
    let offboarded = server
        .admin(Method::POST, &format!("/users/{id}/offboard"), None)
        .await;
    assert_eq!(offboarded.status, StatusCode::OK, "{}", offboarded.body);
    for restore_by_post in [false, true] {
        assert_eq!(
            server.delete(&format!("/Users/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
        let restored = if restore_by_post {
            server.post("/Users", user("lena", "ext-lena")).await
        } else {
            restore(&server, &id).await
        };
        assert!(restored.status.is_success(), "{}", restored.body);
        assert_eq!(id_of(&restored), id);
        let read = server.get(&format!("/Users/{id}")).await;
        assert_eq!(read.body["active"], json!(false), "{}", read.body);
        let reactivate = server
            .patch(
                &format!("/Users/{id}"),
                json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": true}]}),
            )
            .await;
        let read = server.get(&format!("/Users/{id}")).await;
        assert_eq!(
            read.body["active"],
            json!(false),
            "still locked: {} {}",
            reactivate.status,
            reactivate.body
        );
    }
}

/// A restore after the schemas changed: values no schema declares any
/// more come back as captured values (shown to admins), not as a refusal.
#[tokio::test]
async fn a_restore_after_a_schema_was_removed_keeps_its_values_apart() {
    const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let server = TestServer::start().await;
    let schema = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ACME,
        "name": "Acme",
        "attributes": [{"name": "region", "type": "string"}],
    });
    let put = server
        .admin(Method::PUT, &format!("/schemas/{ACME}"), Some(schema))
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER, ACME], "userName": "max", ACME: {"region": "EMEA"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = id_of(&created);
    assert_eq!(
        server.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let removed = server
        .admin(Method::DELETE, &format!("/schemas/{ACME}"), None)
        .await;
    assert!(removed.status.is_success(), "{}", removed.body);

    let restored = restore(&server, &id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert!(restored.body.get(ACME).is_none(), "{}", restored.body);
    let stored = server
        .admin(Method::GET, &format!("/resources/Users/{id}"), None)
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert!(stored.body.to_string().contains("EMEA"), "{}", stored.body);
}
