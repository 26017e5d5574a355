//! The SCIM protocol over HTTP against a real server on a real SQLite file:
//! auth, discovery, CRUD, paging, ETags, errors and bulk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test on unexpected shapes"
)]

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true,
           "name": {"givenName": "Ann", "familyName": "Agent"},
           "emails": [{"value": user_name, "type": "work", "primary": true}]})
}

async fn create_user(server: &TestServer, user_name: &str) -> String {
    let reply = server.post("/Users", user(user_name)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

fn assert_scim_error(body: &Value, status: &str, scim_type: Option<&str>) {
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    if let Some(scim_type) = scim_type {
        assert_eq!(body["scimType"], scim_type, "{body}");
    }
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn health_needs_no_token_but_scim_does() {
    let server = TestServer::start().await;
    let health = server
        .http
        .get(format!("{}/healthz", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = server
        .http
        .get(format!("{}/readyz", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let anonymous = server
        .send(server.http.get(format!("{}/Users", server.base_url)), None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    assert_scim_error(&anonymous.body, "401", None);

    let wrong = server
        .send(
            server
                .http
                .get(format!("{}/Users", server.base_url))
                .bearer_auth("mst_not-a-token"),
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let reader = server.token_with("reader", &["scim.read"]).await;
    let read = server
        .send(
            server
                .http
                .get(format!("{}/Users", server.base_url))
                .bearer_auth(&reader),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let write = server
        .send(
            server
                .http
                .post(format!("{}/Users", server.base_url))
                .bearer_auth(&reader),
            Some(user("reader@example.com")),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_scim_error(&write.body, "403", None);
    assert!(write.body["detail"]
        .as_str()
        .unwrap()
        .contains("scim.write"));
}

#[tokio::test]
async fn discovery_endpoints() {
    let server = TestServer::start().await;
    let config = server.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.header("content-type"), Some("application/scim+json"));
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["bulk"]["maxOperations"], 1000);
    assert_eq!(config.body["etag"]["supported"], true);

    let schemas = server.get("/Schemas").await;
    // User, Group and the enterprise extension; the computed contact-center
    // one only once a rule set is in force.
    assert_eq!(schemas.body["totalResults"], 3);
    let user_schema = server.get(&format!("/Schemas/{USER}")).await;
    assert_eq!(user_schema.status, StatusCode::OK);
    let user_name = user_schema.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    assert_eq!(
        server.get("/Schemas/urn:nope").await.status,
        StatusCode::NOT_FOUND
    );

    let types = server.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    let user_type = server.get("/ResourceTypes/User").await;
    assert_eq!(user_type.body["endpoint"], "/Users");
    assert_eq!(user_type.body["schemaExtensions"][0]["schema"], ENTERPRISE);
}

#[tokio::test]
async fn create_read_replace_delete_user() {
    let server = TestServer::start().await;
    let created = server.post("/Users", user("ann@contoso.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let id = created.body["id"].as_str().unwrap();
    let location = created.header("location").unwrap().to_owned();
    assert!(
        location.ends_with(&format!("/scim/v2/Users/{id}")),
        "{location}"
    );
    assert_eq!(created.body["meta"]["location"], location.as_str());
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert!(created.body["meta"]["created"].is_string());
    assert!(created.body["meta"]["lastModified"].is_string());
    let etag = created.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(created.body["meta"]["version"], etag.as_str());

    let read = server.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["userName"], "ann@contoso.com");
    assert_eq!(read.body["emails"][0]["primary"], true);

    let mut replacement = user("ann@contoso.com");
    replacement["displayName"] = json!("Ann Agent");
    replacement["active"] = json!(false);
    let replaced = server.put(&format!("/Users/{id}"), replacement).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["displayName"], "Ann Agent");
    assert_eq!(replaced.body["active"], false);
    assert_eq!(replaced.body["id"], id);
    assert_ne!(replaced.header("etag").unwrap(), etag);

    let deleted = server.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = server.get(&format!("/Users/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_scim_error(&gone.body, "404", None);
    assert_eq!(
        server.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let server = TestServer::start().await;
    create_user(&server, "Dup@Contoso.com").await;
    let clash = server.post("/Users", user("dup@contoso.COM")).await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_scim_error(&clash.body, "409", Some("uniqueness"));
    assert!(clash.body["detail"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("dup@contoso.com"));
    let list = server.get("/Users").await;
    assert_eq!(list.body["totalResults"], 1);

    let found = server
        .get("/Users?filter=userName%20eq%20%22DUP@CONTOSO.COM%22")
        .await;
    assert_eq!(found.body["totalResults"], 1);
}

#[tokio::test]
async fn index_paging_is_exact_and_stable() {
    let server = TestServer::start().await;
    for n in 0..11 {
        create_user(&server, &format!("page{n:02}@contoso.com")).await;
    }
    let mut seen = Vec::new();
    for start in [1, 6, 11] {
        let page = server
            .get(&format!("/Users?startIndex={start}&count=5"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body["totalResults"], 11);
        assert_eq!(page.body["startIndex"], start);
        let resources = page.body["Resources"].as_array().unwrap();
        assert_eq!(page.body["itemsPerPage"], resources.len());
        assert_eq!(resources.len(), if start == 11 { 1 } else { 5 });
        seen.extend(
            resources
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 11, "pages overlap or skip");

    let only_total = server.get("/Users?count=0").await;
    assert_eq!(only_total.body["totalResults"], 11);
    assert!(only_total.body["Resources"]
        .as_array()
        .is_none_or(|r| r.is_empty()));

    let sorted = server
        .get("/Users?sortBy=userName&sortOrder=descending&count=2")
        .await;
    assert_eq!(
        sorted.body["Resources"][0]["userName"],
        "page10@contoso.com"
    );
    assert_eq!(
        sorted.body["Resources"][1]["userName"],
        "page09@contoso.com"
    );
}

#[tokio::test]
async fn cursor_paging_visits_everything_once() {
    let server = TestServer::start().await;
    for n in 0..7 {
        create_user(&server, &format!("cursor{n}@contoso.com")).await;
    }
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    let mut pages = 0;
    while let Some(cursor) = next {
        let page = server.get(&format!("/Users?count=3&cursor={cursor}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(page.body["totalResults"], 7);
        let resources = page.body["Resources"].as_array().unwrap();
        seen.extend(
            resources
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        next = page.body["nextCursor"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);
    let bad = server.get("/Users?count=3&cursor=garbage!").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_scim_error(&bad.body, "400", Some("invalidCursor"));
}

#[tokio::test]
async fn etags_guard_updates() {
    let server = TestServer::start().await;
    let id = create_user(&server, "etag@contoso.com").await;
    let read = server.get(&format!("/Users/{id}")).await;
    let etag = read.header("etag").unwrap().to_owned();

    let not_modified = server
        .send(
            server
                .http
                .get(format!("{}/Users/{id}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-none-match", &etag),
            None,
        )
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]});
    let stale = server
        .send(
            server
                .http
                .patch(format!("{}/Users/{id}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-match", "W/\"999\""),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_scim_error(&stale.body, "412", None);
    let fresh = server
        .send(
            server
                .http
                .patch(format!("{}/Users/{id}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-match", &etag),
            Some(patch),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert_eq!(fresh.body["title"], "Lead");
}

/// PATCHes `path` with `operations` and expects success (200 or 204).
async fn patch_ok(server: &TestServer, path: &str, operations: Value) {
    let reply = server
        .patch(
            path,
            json!({"schemas": [PATCH_OP], "Operations": operations}),
        )
        .await;
    assert!(reply.status.is_success(), "PATCH {path}: {}", reply.body);
}

/// A user's ETag and `lastModified`, and the display names of its groups.
async fn user_state(server: &TestServer, id: &str) -> (String, String, Vec<String>) {
    let read = server.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let etag = read.header("etag").unwrap().to_owned();
    assert_eq!(read.body["meta"]["version"], etag.as_str());
    let modified = read.body["meta"]["lastModified"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut groups: Vec<String> = read.body["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|group| group["display"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    groups.sort();
    (etag, modified, groups)
}

#[tokio::test]
async fn membership_changes_give_member_users_a_new_etag() {
    let server = TestServer::start().await;
    let ana = create_user(&server, "ana@contoso.com").await;
    let ben = create_user(&server, "ben@contoso.com").await;
    let (mut ana_etag, mut ana_modified, _) = user_state(&server, &ana).await;
    let mut ben_etag = user_state(&server, &ben).await.0;
    let group = |name: &str, members: &[&str]| {
        json!({"schemas": [GROUP], "displayName": name,
               "members": members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()})
    };
    // Each step: what it does, and which users' groups it changes.
    let check = |state: (String, String, Vec<String>),
                 etag: &mut String,
                 step: &str,
                 changed: bool,
                 groups: &[&str]| {
        assert_eq!(state.2, groups, "{step}");
        assert_eq!(
            &state.0 != etag,
            changed,
            "{step}: ETag {} then {}",
            etag,
            state.0
        );
        *etag = state.0;
        state.1
    };

    // A group created with ana as a member.
    let tier1 = server.post("/Groups", group("Tier 1", &[&ana])).await;
    assert_eq!(tier1.status, StatusCode::CREATED, "{}", tier1.body);
    let tier1 = tier1.body["id"].as_str().unwrap().to_owned();
    let modified = check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "create",
        true,
        &["Tier 1"],
    );
    assert!(modified >= ana_modified, "{modified} {ana_modified}");
    ana_modified = modified;
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "create (ben)",
        false,
        &[],
    );

    // A conditional GET with the old ETag must not answer 304.
    let (etag_before_patch, _, _) = user_state(&server, &ben).await;
    patch_ok(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "add", "path": "members", "value": [{"value": ben}]}]),
    )
    .await;
    let conditional = server
        .send(
            server
                .http
                .get(format!("{}/Users/{ben}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-none-match", &etag_before_patch),
            None,
        )
        .await;
    assert_eq!(
        conditional.status,
        StatusCode::OK,
        "stale 304 after a membership change"
    );
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "add ben",
        true,
        &["Tier 1"],
    );
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "add ben (ana)",
        false,
        &["Tier 1"],
    );

    // Nesting: Tier 1 into Support changes the groups of both users.
    let support = server.post("/Groups", group("Support", &[&tier1])).await;
    let support = support.body["id"].as_str().unwrap().to_owned();
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "nest",
        true,
        &["Support", "Tier 1"],
    );
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "nest (ben)",
        true,
        &["Support", "Tier 1"],
    );

    // Renaming a group its users are under (here indirectly).
    patch_ok(
        &server,
        &format!("/Groups/{support}"),
        json!([{"op": "replace", "path": "displayName", "value": "Customer Care"}]),
    )
    .await;
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "rename",
        true,
        &["Customer Care", "Tier 1"],
    );

    // Removing ben from Tier 1 changes ben only.
    patch_ok(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{ben}\"]")}]),
    )
    .await;
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "remove ben",
        true,
        &[],
    );
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "remove ben (ana)",
        false,
        &["Customer Care", "Tier 1"],
    );

    // A group PATCH that changes nothing changes no user.
    patch_ok(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "replace", "path": "displayName", "value": "Tier 1"}]),
    )
    .await;
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "no-op",
        false,
        &["Customer Care", "Tier 1"],
    );

    // Deleting the outer group.
    assert_eq!(
        server.delete(&format!("/Groups/{support}")).await.status,
        StatusCode::NO_CONTENT
    );
    let modified = check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "delete",
        true,
        &["Tier 1"],
    );
    assert!(modified >= ana_modified);

    // Renaming a member changes the `members` display of the group that
    // holds it, and so the group's ETag.
    let tier1_before = server.get(&format!("/Groups/{tier1}")).await;
    let tier1_etag = tier1_before.header("etag").unwrap().to_owned();
    patch_ok(
        &server,
        &format!("/Users/{ana}"),
        json!([{"op": "replace", "path": "displayName", "value": "Ana Agent"}]),
    )
    .await;
    let tier1_after = server.get(&format!("/Groups/{tier1}")).await;
    assert_ne!(tier1_after.header("etag").unwrap(), tier1_etag);
    assert_eq!(tier1_after.body["members"][0]["display"], "Ana Agent");

    // PUT replacing the members: ben in, ana out.
    let replaced = server
        .put(&format!("/Groups/{tier1}"), group("Tier 1", &[&ben]))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    check(
        user_state(&server, &ana).await,
        &mut ana_etag,
        "put (ana)",
        true,
        &[],
    );
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "put (ben)",
        true,
        &["Tier 1"],
    );

    // Deleting a nested group changes the users under it.
    let outer = server.post("/Groups", group("Outer", &[&tier1])).await;
    assert_eq!(outer.status, StatusCode::CREATED);
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "nest again",
        true,
        &["Outer", "Tier 1"],
    );
    assert_eq!(
        server.delete(&format!("/Groups/{tier1}")).await.status,
        StatusCode::NO_CONTENT
    );
    check(
        user_state(&server, &ben).await,
        &mut ben_etag,
        "delete nested",
        true,
        &[],
    );

    // The old ETag now fails a conditional update of the user.
    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]});
    let stale = server
        .send(
            server
                .http
                .patch(format!("{}/Users/{ben}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-match", &etag_before_patch),
            Some(patch),
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
}

#[tokio::test]
async fn concurrent_patches_lose_no_update() {
    // Twenty clients PATCH the same multi-valued attribute of one user at
    // once, without If-Match: the server reads, modifies and writes the
    // resource for each, so each PATCH must see the one before it (a read
    // outside the write transaction would lose all but one). Racing
    // If-Match cycles are in tests/concurrency.rs.
    let server = std::sync::Arc::new(TestServer::start().await);
    let id = create_user(&server, "contended@contoso.com").await;
    let initial = server.get(&format!("/Users/{id}")).await;
    let parse = |etag: &str| -> u64 {
        etag.trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .unwrap()
    };
    let initial = parse(initial.header("etag").unwrap());
    let mut tasks = Vec::new();
    for n in 0..20 {
        let server = server.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let reply = server
                .patch(
                    &format!("/Users/{id}"),
                    json!({"schemas": [PATCH_OP], "Operations": [
                        {"op": "add", "path": "emails",
                         "value": [{"value": format!("p{n}@contoso.com"), "type": "other"}]}]}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.header("etag").unwrap().to_owned()
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(parse(&task.await.unwrap()));
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (initial + 1..=initial + 20).collect::<Vec<_>>(),
        "each PATCH got its own version"
    );
    let user = server.get(&format!("/Users/{id}")).await;
    let emails: Vec<&str> = user.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|email| email["value"].as_str().unwrap())
        .collect();
    for n in 0..20 {
        let value = format!("p{n}@contoso.com");
        assert!(emails.contains(&value.as_str()), "{value} lost: {emails:?}");
    }
    assert_eq!(emails.len(), 21, "{emails:?}");
    assert_eq!(parse(user.header("etag").unwrap()), initial + 20);
}

#[tokio::test]
async fn bad_input_gets_scim_errors_and_changes_nothing() {
    let server = TestServer::start().await;
    let id = create_user(&server, "strict@contoso.com").await;
    let before = server.get(&format!("/Users/{id}")).await.body;

    let bad_json = server
        .send(
            server
                .http
                .post(format!("{}/Users", server.base_url))
                .bearer_auth(&server.token)
                .header("content-type", "application/scim+json")
                .body("{\"userName\": "),
            None,
        )
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_scim_error(&bad_json.body, "400", Some("invalidSyntax"));

    let wrong_type = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "x@y.z", "active": "yes"}),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(wrong_type.body["detail"]
        .as_str()
        .unwrap()
        .contains("active"));

    let unknown = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "x@y.z", "usrType": "Agent"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let detail = unknown.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("usrType") && detail.contains("userType"),
        "{detail}"
    );

    let bad_filter = server.get("/Users?filter=userName%20eqq%20%22x%22").await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    assert_scim_error(&bad_filter.body, "400", Some("invalidFilter"));
    assert!(bad_filter.body["detail"]
        .as_str()
        .unwrap()
        .contains("position"));

    let bad_path = server
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "title", "value": "ok"},
                {"op": "replace", "path": "emails[type eq", "value": "x"}]}),
        )
        .await;
    assert_eq!(bad_path.status, StatusCode::BAD_REQUEST);
    assert!(bad_path.body["detail"]
        .as_str()
        .unwrap()
        .contains("Operations[1]"));

    let media = server
        .send(
            server
                .http
                .post(format!("{}/Users", server.base_url))
                .bearer_auth(&server.token)
                .header("content-type", "text/plain")
                .body(user("media@contoso.com").to_string()),
            None,
        )
        .await;
    assert_eq!(media.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_scim_error(&media.body, "415", None);

    let plain_json = server
        .send(
            server
                .http
                .post(format!("{}/Users", server.base_url))
                .bearer_auth(&server.token)
                .header("content-type", "application/json; charset=utf-8")
                .body(user("plain@contoso.com").to_string()),
            None,
        )
        .await;
    assert_eq!(plain_json.status, StatusCode::CREATED);

    let method = server.call(Method::DELETE, "/Users", None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_scim_error(&method.body, "405", None);

    let huge = json!({"schemas": [USER], "userName": "big@contoso.com",
                      "displayName": "x".repeat(2 * 1024 * 1024)});
    let too_big = server.post("/Users", huge).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_scim_error(&too_big.body, "413", None);

    let unknown_endpoint = server.get("/Nope").await;
    assert_eq!(unknown_endpoint.status, StatusCode::NOT_FOUND);

    let after = server.get(&format!("/Users/{id}")).await.body;
    assert_eq!(before, after, "a refused request changed the resource");
    assert_eq!(server.get("/Users").await.body["totalResults"], 2);
}

#[tokio::test]
async fn search_endpoints() {
    let server = TestServer::start().await;
    create_user(&server, "search1@contoso.com").await;
    create_user(&server, "search2@fabrikam.com").await;
    server
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Searchers"}),
        )
        .await;
    let typed = server
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "emails[type eq \"work\" and value co \"@contoso\"]",
                   "attributes": ["userName"]}),
        )
        .await;
    assert_eq!(typed.status, StatusCode::OK, "{}", typed.body);
    assert_eq!(typed.body["totalResults"], 1);
    let found = &typed.body["Resources"][0];
    assert_eq!(found["userName"], "search1@contoso.com");
    assert!(found.get("emails").is_none(), "{found}");
    assert!(found.get("id").is_some());

    let root = server
        .post(
            "/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "count": 10}),
        )
        .await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.body);
    assert_eq!(root.body["totalResults"], 3);

    // Each type gets the attributes it declares; a filter on a User
    // attribute matches no Group.
    let mixed = server
        .post(
            "/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "userName sw \"search1\"",
                   "excludedAttributes": ["name", "members"]}),
        )
        .await;
    assert_eq!(mixed.status, StatusCode::OK, "{}", mixed.body);
    assert_eq!(mixed.body["totalResults"], 1, "{}", mixed.body);
    assert!(mixed.body["Resources"][0].get("name").is_none());
    let unknown = server
        .post(
            "/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "attributes": ["regoin"]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert!(
        unknown.body["detail"].as_str().unwrap().contains("regoin"),
        "{}",
        unknown.body
    );
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_and_respects_limits() {
    let server = TestServer::start().await;
    let bulk = json!({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
    "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"schemas": [GROUP], "displayName": "Bulk Team",
                  "members": [{"value": "bulkId:u1", "type": "User"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u1",
         "data": user("bulk1@contoso.com")},
        {"method": "POST", "path": "/Users", "bulkId": "u2",
         "data": {"schemas": [USER]}},
    ]});
    let reply = server.post("/Bulk", bulk).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let operations = reply.body["Operations"].as_array().unwrap();
    assert_eq!(operations.len(), 3);
    let status = |bulk_id: &str| {
        operations.iter().find(|o| o["bulkId"] == bulk_id).unwrap()["status"].clone()
    };
    assert_eq!(status("g1"), "201");
    assert_eq!(status("u1"), "201");
    assert_eq!(status("u2"), "400");
    let groups = server
        .get("/Groups?filter=displayName%20eq%20%22Bulk%20Team%22")
        .await;
    assert_eq!(
        groups.body["Resources"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let too_many = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": (0..1001).map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")})).collect::<Vec<_>>()
    });
    let refused = server.post("/Bulk", too_many).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn request_id_is_echoed() {
    let server = TestServer::start().await;
    let reply = server.get("/Users").await;
    let request_id = reply.header("x-request-id").unwrap();
    assert!(!request_id.is_empty());
    let given = server
        .send(
            server
                .http
                .get(format!("{}/Users", server.base_url))
                .bearer_auth(&server.token)
                .header("x-request-id", "trace-123"),
            None,
        )
        .await;
    assert_eq!(given.header("x-request-id"), Some("trace-123"));
}
