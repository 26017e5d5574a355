//! Secrets over HTTP against a real server on a real SQLite file (issue 9,
//! "Secrets"): a `password` set through every spelling of its path (POST,
//! PUT, PATCH with a path, path-less PATCH values keyed by name, by URN and
//! by a nested URN object, Bulk) is stored as an argon2 hash only; the clear
//! text is nowhere in the database file, its WAL or its shared-memory file;
//! the hash is never returned, never in the lookup index, never in a change
//! payload; and `password` is refused in filters, `sortBy`, `attributes` and
//! value paths, whatever the token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use muster_store::TenantId;
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const USER_PASSWORD: &str = "urn:ietf:params:scim:schemas:core:2.0:User:password";

/// The distinct clear text of spelling `n`.
fn secret(n: usize) -> String {
    format!("Clear-Text-Secret-{n:02}-zq")
}

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

fn user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true,
           "name": {"givenName": "Ann", "familyName": "Agent"}})
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn create_user(server: &TestServer, user_name: &str) -> String {
    let reply = server.post("/Users", user(user_name)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Whether any object in `value`, at any depth, has a member named
/// `password` (in any case, or ending in `:password`).
fn has_password_key(value: &Value) -> bool {
    match value {
        Value::Object(members) => members.iter().any(|(key, member)| {
            let key = key.to_ascii_lowercase();
            key == "password" || key.ends_with(":password") || has_password_key(member)
        }),
        Value::Array(items) => items.iter().any(has_password_key),
        _ => false,
    }
}

/// How a spelling writes its secret.
enum Write {
    /// `POST /Users` with this body.
    Post(Value),
    /// `PUT /Users/{id}` of a fresh user with this body.
    Put(Value),
    /// `PATCH /Users/{id}` of a fresh user with these operations.
    Patch(Value),
    /// One `POST /Users` bulk operation with this data.
    BulkPost(Value),
    /// One `PUT /Users/{id}` bulk operation on a fresh user with this data.
    BulkPut(Value),
    /// One `PATCH /Users/{id}` bulk operation on a fresh user with these
    /// operations.
    BulkPatch(Value),
}

/// One spelling: its name, how it writes secret `n`, and whether a `400`
/// refusal is an acceptable answer (otherwise the write must succeed).
struct Spelling {
    name: &'static str,
    write: Write,
    may_refuse: bool,
}

fn spellings() -> Vec<Spelling> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        secret(n)
    };
    let with = |mut body: Value, key: &str, value: Value| {
        body[key] = value;
        body
    };
    let mut list = Vec::new();
    let mut add = |name, write, may_refuse| {
        list.push(Spelling {
            name,
            write,
            may_refuse,
        })
    };
    add(
        "POST body password",
        Write::Post(with(user("post1@x.test"), "password", json!(next()))),
        false,
    );
    add(
        "POST body PASSWORD (other case)",
        Write::Post(with(user("post2@x.test"), "PASSWORD", json!(next()))),
        false,
    );
    add(
        "POST body nested core URN object",
        Write::Post(with(
            user("post3@x.test"),
            USER,
            json!({"password": next()}),
        )),
        true,
    );
    add(
        "POST body core URN key",
        Write::Post(with(user("post4@x.test"), USER_PASSWORD, json!(next()))),
        true,
    );
    add(
        "PUT body password",
        Write::Put(with(user("put1@x.test"), "password", json!(next()))),
        false,
    );
    add(
        "PUT body nested core URN object",
        Write::Put(with(user("put2@x.test"), USER, json!({"password": next()}))),
        true,
    );
    add(
        "PATCH path password",
        Write::Patch(json!([{"op": "replace", "path": "password", "value": next()}])),
        false,
    );
    add(
        "PATCH add path PassWord",
        Write::Patch(json!([{"op": "Add", "path": "PassWord", "value": next()}])),
        false,
    );
    add(
        "PATCH path core URN:password",
        Write::Patch(json!([{"op": "replace", "path": USER_PASSWORD, "value": next()}])),
        false,
    );
    add(
        "PATCH path upper-case URN:PASSWORD",
        Write::Patch(
            json!([{"op": "Replace", "path": USER_PASSWORD.to_ascii_uppercase(), "value": next()}]),
        ),
        false,
    );
    add(
        "PATCH path-less {password}",
        Write::Patch(json!([{"op": "replace", "value": {"password": next()}}])),
        false,
    );
    add(
        "PATCH path-less {PassWord}",
        Write::Patch(json!([{"op": "replace", "value": {"PassWord": next()}}])),
        false,
    );
    add(
        "PATCH path-less {URN:password}",
        Write::Patch(json!([{"op": "replace", "value": {USER_PASSWORD: next()}}])),
        false,
    );
    add(
        "PATCH path-less {lower-case urn:Password}",
        Write::Patch(json!([{"op": "add",
            "value": {"urn:ietf:params:scim:schemas:core:2.0:user:Password": next()}}])),
        false,
    );
    add(
        "PATCH path-less {URN: {password}}",
        Write::Patch(json!([{"op": "replace", "value": {USER: {"password": next()}}}])),
        false,
    );
    add(
        "PATCH path core URN, value {password}",
        Write::Patch(json!([{"op": "replace", "path": USER, "value": {"password": next()}}])),
        false,
    );
    add(
        "PATCH path core URN, value {Password} with another attribute",
        Write::Patch(json!([{"op": "add", "path": USER,
            "value": {"title": "Agent", "Password": next()}}])),
        false,
    );
    add(
        "Bulk POST password",
        Write::BulkPost(with(user("bulk1@x.test"), "password", json!(next()))),
        false,
    );
    add(
        "Bulk POST nested core URN object",
        Write::BulkPost(with(
            user("bulk2@x.test"),
            USER,
            json!({"password": next()}),
        )),
        true,
    );
    add(
        "Bulk PUT password",
        Write::BulkPut(with(user("bulk3@x.test"), "password", json!(next()))),
        false,
    );
    add(
        "Bulk PATCH path password",
        Write::BulkPatch(json!([{"op": "replace", "path": "password", "value": next()}])),
        false,
    );
    add(
        "Bulk PATCH path core URN:password",
        Write::BulkPatch(json!([{"op": "replace", "path": USER_PASSWORD, "value": next()}])),
        false,
    );
    add(
        "Bulk PATCH path-less {password}",
        Write::BulkPatch(json!([{"op": "replace", "value": {"password": next()}}])),
        false,
    );
    add(
        "Bulk PATCH path-less {PassWord}",
        Write::BulkPatch(json!([{"op": "replace", "value": {"PassWord": next()}}])),
        false,
    );
    add(
        "Bulk PATCH path-less {URN:password}",
        Write::BulkPatch(json!([{"op": "replace", "value": {USER_PASSWORD: next()}}])),
        false,
    );
    add(
        "Bulk PATCH path-less {URN: {password}}",
        Write::BulkPatch(json!([{"op": "replace", "value": {USER: {"password": next()}}}])),
        false,
    );
    add(
        "Bulk PATCH path core URN, value {password}",
        Write::BulkPatch(json!([{"op": "replace", "path": USER, "value": {"password": next()}}])),
        false,
    );
    list
}

/// The stored password of a user, straight from `resources.json`: the
/// top-level `password` member (any case) or one inside the core URN
/// object.
fn stored_password(connection: &rusqlite::Connection, id: &str) -> Option<String> {
    let json: String = connection
        .query_row("SELECT json FROM resources WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .unwrap_or_else(|error| panic!("no stored row for {id}: {error}"));
    let resource: Value = serde_json::from_str(&json).unwrap();
    let find = |object: &Value| {
        object.as_object().and_then(|members| {
            members
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("password"))
                .map(|(_, value)| value.as_str().unwrap_or_default().to_owned())
        })
    };
    find(&resource).or_else(|| {
        resource
            .as_object()
            .unwrap()
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(USER))
            .and_then(|(_, nested)| find(nested))
    })
}

fn open_database(server: &TestServer) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        server.data_dir().join(muster_store::sqlite::DATABASE_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// Every file of the data directory (the database, its `-wal` and `-shm`,
/// anything else), read as bytes and lower-cased (ASCII), with its name.
fn data_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let database = muster_store::sqlite::DATABASE_FILE;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
            files.push((path.display().to_string(), bytes));
        }
    }
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.iter().any(|name| name.ends_with(database)),
        "no {database} in {names:?}"
    );
    assert!(
        names
            .iter()
            .any(|name| name.ends_with(&format!("{database}-wal"))),
        "no {database}-wal in {names:?} (the store runs in WAL mode)"
    );
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Sends one spelling's write and checks the answer: success (or `400`
/// where a refusal is acceptable), and no password in the body. Returns
/// the user's id when the write was accepted.
async fn write_secret(
    server: &TestServer,
    index: usize,
    spelling: &Spelling,
    clear: &str,
) -> Option<String> {
    let name = spelling.name;
    let (reply, id, outcome): (Reply, String, (String, Value)) = match &spelling.write {
        Write::Post(body) => {
            let reply = server.post("/Users", body.clone()).await;
            let id = reply.body["id"].as_str().unwrap_or_default().to_owned();
            let status = reply.status.as_str().to_owned();
            let body = reply.body.clone();
            (reply, id, (status, body))
        }
        Write::Put(body) => {
            let id = create_user(server, body["userName"].as_str().unwrap()).await;
            let reply = server.put(&format!("/Users/{id}"), body.clone()).await;
            let status = reply.status.as_str().to_owned();
            let body = reply.body.clone();
            (reply, id, (status, body))
        }
        Write::Patch(operations) => {
            let id = create_user(server, &format!("patch-{index}@x.test")).await;
            let reply = server
                .patch(&format!("/Users/{id}"), patch_body(operations.clone()))
                .await;
            let status = reply.status.as_str().to_owned();
            let body = reply.body.clone();
            (reply, id, (status, body))
        }
        Write::BulkPost(data) | Write::BulkPut(data) | Write::BulkPatch(data) => {
            let (method, id, data) = match &spelling.write {
                Write::BulkPost(_) => ("POST", None, data.clone()),
                Write::BulkPut(_) => (
                    "PUT",
                    Some(create_user(server, &format!("bulkput-{index}@x.test")).await),
                    data.clone(),
                ),
                _ => (
                    "PATCH",
                    Some(create_user(server, &format!("bulkpatch-{index}@x.test")).await),
                    patch_body(data.clone()),
                ),
            };
            let path = match &id {
                Some(id) => format!("/Users/{id}"),
                None => "/Users".to_owned(),
            };
            let reply = server
                .post(
                    "/Bulk",
                    json!({"schemas": [BULK_REQUEST], "Operations": [
                        {"method": method, "path": path, "bulkId": "b1", "data": data}]}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
            let operation = reply.body["Operations"][0].clone();
            let status = operation["status"].as_str().unwrap_or_default().to_owned();
            let id = id.unwrap_or_else(|| {
                operation["location"]
                    .as_str()
                    .and_then(|location| location.rsplit('/').next())
                    .unwrap_or_default()
                    .to_owned()
            });
            (reply, id, (status, operation))
        }
    };
    let (status, body) = outcome;
    let text = reply.body.to_string();
    assert!(
        !text.contains(clear) && !text.to_ascii_lowercase().contains("$argon2"),
        "{name}: the answer holds the secret or its hash: {text}"
    );
    assert!(
        !has_password_key(&reply.body),
        "{name}: the answer returns a password: {text}"
    );
    if status.starts_with('2') {
        assert!(!id.is_empty(), "{name}: no id in {body}");
        Some(id)
    } else {
        assert!(
            spelling.may_refuse && status == "400",
            "{name}: refused with {status}: {body}"
        );
        None
    }
}

#[tokio::test]
async fn a_password_set_through_any_spelling_is_stored_only_as_a_hash() {
    let server = TestServer::start_sqlite().await;
    let spellings = spellings();
    let mut accepted = Vec::new();
    for (index, spelling) in spellings.iter().enumerate() {
        let clear = secret(index + 1);
        if let Some(id) = write_secret(&server, index, spelling, &clear).await {
            accepted.push((spelling.name, id, clear));
        }
    }

    // Each accepted write stored a hash: the password was really set (a
    // server that dropped it would pass the clear-text check trivially).
    let connection = open_database(&server);
    let mut hashes = Vec::new();
    for (name, id, _) in &accepted {
        let stored = stored_password(&connection, id)
            .unwrap_or_else(|| panic!("{name}: no password stored for {id}"));
        assert!(
            stored.starts_with("$argon2"),
            "{name}: the stored password is not an argon2 hash: {stored}"
        );
        hashes.push(stored);
    }
    let mut distinct = hashes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), hashes.len(), "hashes repeat: {hashes:?}");

    // Never returned: not by GET, not in a list, not in a search.
    for (name, id, _) in &accepted {
        let read = server.get(&format!("/Users/{id}")).await;
        assert_eq!(read.status, StatusCode::OK, "{name}: {}", read.body);
        assert!(!has_password_key(&read.body), "{name}: {}", read.body);
    }
    let list = server.get("/Users?count=1000").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(!has_password_key(&list.body), "{}", list.body);
    let text = list.body.to_string().to_ascii_lowercase();
    assert!(!text.contains("$argon2"), "{text}");
    let search = server
        .post(
            "/.search",
            json!({"schemas": [SEARCH_REQUEST], "count": 1000}),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.body);
    assert!(!has_password_key(&search.body), "{}", search.body);

    // No change payload holds a password, its hash or its clear text.
    let changes = server
        .store
        .changes(&TenantId::default_tenant(), 0, 1_000_000)
        .await
        .unwrap();
    assert!(changes.len() >= accepted.len(), "{}", changes.len());
    for change in &changes {
        let shown = change.payload.to_json();
        let payload = shown.to_string();
        assert!(
            !payload.to_ascii_lowercase().contains("$argon2"),
            "change {} holds a password hash: {payload}",
            change.sequence
        );
        assert!(
            !has_password_key(&shown),
            "change {} holds a password: {payload}",
            change.sequence
        );
    }

    // The lookup index holds no password row and no hash.
    let password_rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM resource_values v
             JOIN attribute_paths p ON p.path_id = v.path_id
             WHERE lower(p.path) LIKE '%password%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(password_rows, 0, "resource_values holds password rows");
    let hash_rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM resource_values
             WHERE lower(coalesce(value_exact, '')) LIKE '%argon2%'
                OR lower(coalesce(value_lower, '')) LIKE '%argon2%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(hash_rows, 0, "resource_values holds password hashes");
    let payload_hashes: i64 = connection
        .query_row(
            "SELECT count(*) FROM changes WHERE lower(payload) LIKE '%argon2%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(payload_hashes, 0, "changes.payload holds password hashes");
    drop(connection);

    // The clear texts are nowhere in the database file, its WAL or its
    // shared memory, in any case.
    let files = data_files(&server);
    let mut leaks = Vec::new();
    for (index, spelling) in spellings.iter().enumerate() {
        let clear = secret(index + 1).to_ascii_lowercase();
        for (file, bytes) in &files {
            if contains(bytes, clear.as_bytes()) {
                leaks.push(format!("{} ({clear}) in {file}", spelling.name));
            }
        }
    }
    assert!(leaks.is_empty(), "clear-text passwords stored: {leaks:#?}");
}

/// Expects `400 invalidFilter` naming `password`.
fn assert_refused_naming_password(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.body["status"], "400", "{what}: {}", reply.body);
    assert_eq!(
        reply.body["scimType"], "invalidFilter",
        "{what}: {}",
        reply.body
    );
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.to_ascii_lowercase().contains("password"),
        "{what}: the detail does not name password: {detail}"
    );
    assert!(
        !detail.to_ascii_lowercase().contains("$argon2"),
        "{what}: {detail}"
    );
}

#[tokio::test]
async fn password_cannot_be_filtered_sorted_or_projected() {
    let server = TestServer::start().await;
    let mut with_password = user("secret@x.test");
    with_password["password"] = json!("Clear-Text-Secret-filter-zq");
    let created = server.post("/Users", with_password).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let reader = server.token_with("reader", &["scim.read"]).await;
    let tokens = [("admin", server.token.clone()), ("read-only", reader)];

    let filters = [
        "password pr",
        "password sw \"$argon2\"",
        "password sw \"$argon2id$\"",
        "password co \"argon2\"",
        "password eq \"Clear-Text-Secret-filter-zq\"",
        "PASSWORD pr",
        "PassWord gt \"\"",
        "urn:ietf:params:scim:schemas:core:2.0:User:password pr",
        "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:PASSWORD pr",
        "userName pr and password pr",
        "userName eq \"nobody\" or password sw \"$\"",
        "not (password pr)",
        "emails[password pr]",
        "emails[type pr or password pr]",
        "emails[value pr and urn:ietf:params:scim:schemas:core:2.0:User:password pr]",
        "password[value pr]",
    ];
    for (who, token) in &tokens {
        for filter in filters {
            let what = format!("{who} GET filter={filter}");
            let reply = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/scim/v2/Users?filter={}", encode(filter)),
                    None,
                )
                .await;
            assert_refused_naming_password(&reply, &what);
            for endpoint in ["/scim/v2/Users/.search", "/scim/v2/.search"] {
                let what = format!("{who} POST {endpoint} filter={filter}");
                let reply = server
                    .call_as(
                        token,
                        Method::POST,
                        endpoint,
                        Some(json!({"schemas": [SEARCH_REQUEST], "filter": filter})),
                    )
                    .await;
                assert_refused_naming_password(&reply, &what);
            }
        }

        for sort_by in ["password", "PassWord", USER_PASSWORD] {
            let what = format!("{who} sortBy={sort_by}");
            let reply = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/scim/v2/Users?sortBy={}", encode(sort_by)),
                    None,
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{what}: {}",
                reply.body
            );
            let detail = reply.body["detail"].as_str().unwrap_or_default();
            assert!(
                detail.to_ascii_lowercase().contains("password"),
                "{what}: {detail}"
            );
        }

        for attributes in ["password", "PASSWORD", USER_PASSWORD, "userName,password"] {
            let what = format!("{who} GET /Users?attributes={attributes}");
            let reply = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/scim/v2/Users?attributes={}", encode(attributes)),
                    None,
                )
                .await;
            assert_refused_naming_password(&reply, &what);
            let what = format!("{who} GET /Users/id?attributes={attributes}");
            let reply = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/scim/v2/Users/{id}?attributes={}", encode(attributes)),
                    None,
                )
                .await;
            assert_refused_naming_password(&reply, &what);
            let what = format!("{who} POST /Users/.search attributes={attributes}");
            let list: Vec<&str> = attributes.split(',').collect();
            let reply = server
                .call_as(
                    token,
                    Method::POST,
                    "/scim/v2/Users/.search",
                    Some(json!({"schemas": [SEARCH_REQUEST], "attributes": list})),
                )
                .await;
            assert_refused_naming_password(&reply, &what);
        }
    }

    // A PATCH value path that filters on the password (an oracle by
    // success or failure) is refused too, and changes nothing.
    let before = server.get(&format!("/Users/{id}")).await;
    for path in [
        "emails[password sw \"$argon2\"].value",
        "emails[value pr and password pr]",
        "password[value sw \"$\"]",
    ] {
        let reply = server
            .patch(
                &format!("/Users/{id}"),
                patch_body(json!([{"op": "replace", "path": path, "value": "x@y.z"}])),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "PATCH {path}: {}",
            reply.body
        );
        let scim_type = reply.body["scimType"].as_str().unwrap_or_default();
        assert!(
            scim_type == "invalidFilter" || scim_type == "invalidPath",
            "PATCH {path}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.to_ascii_lowercase().contains("password"),
            "PATCH {path}: {detail}"
        );
    }
    let after = server.get(&format!("/Users/{id}")).await;
    assert_eq!(before.body, after.body, "a refused PATCH changed the user");

    // Excluding it is harmless, and the user is still there to be found by
    // anything but its password.
    let found = server
        .get(&format!(
            "/Users?filter={}&excludedAttributes=password",
            encode("userName eq \"secret@x.test\"")
        ))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert!(!has_password_key(&found.body), "{}", found.body);
}

#[tokio::test]
async fn a_password_of_the_wrong_type_is_refused_not_ignored() {
    // POST refuses a password that is not a string; every PATCH spelling
    // must too: answering 200 while keeping the old password tells the
    // identity provider a credential changed when it did not.
    let server = TestServer::start().await;
    let mut body = user("typed@x.test");
    body["password"] = json!({"value": "Clear-Text-Secret-typed-zq"});
    let post = server.post("/Users", body).await;
    assert_eq!(post.status, StatusCode::BAD_REQUEST, "{}", post.body);
    assert_eq!(post.body["scimType"], "invalidValue", "{}", post.body);

    let id = create_user(&server, "typed@x.test").await;
    let before = server.get(&format!("/Users/{id}")).await;
    for operations in [
        json!([{"op": "replace", "path": "password", "value": {"value": "Clear-Text-Secret-typed-zq"}}]),
        json!([{"op": "add", "path": "password", "value": ["Clear-Text-Secret-typed-zq"]}]),
        json!([{"op": "replace", "path": USER_PASSWORD, "value": 12345}]),
        json!([{"op": "replace", "value": {"password": true}}]),
        json!([{"op": "replace", "value": {USER: {"password": {"value": "x"}}}}]),
    ] {
        let reply = server
            .patch(&format!("/Users/{id}"), patch_body(operations.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{operations}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["scimType"], "invalidValue",
            "{operations}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("password"), "{operations}: {detail}");
        assert!(!detail.contains("Clear-Text"), "{operations}: {detail}");
    }
    let after = server.get(&format!("/Users/{id}")).await;
    assert_eq!(before.body, after.body, "a refused PATCH changed the user");
}
