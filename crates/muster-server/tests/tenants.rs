//! Tenants (issue 14, item 2): tenant A's credentials walk every route and
//! method of the SCIM and admin APIs (from the route tables the server is
//! built from, so a route added later is walked too) against tenant B's
//! URLs and B's ids, and A's own URL with B's ids: nothing returned,
//! nothing changed in B, and no answer that differs from the answer for
//! something that never existed. Also: Bulk, filters and `.search` naming
//! B's values, B's ids through `/scim/v2`, the spellings of the tenant in
//! the URL, a removed tenant's tokens, and each tenant's own locations.
//!
//! Runs on SQLite, and on PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails the test on unexpected results"
)]

use std::time::{Duration, Instant};

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_server::routes::{admin_routes, scim_routes, Input, Route};
use muster_store::{StoreError, TenantId, TokenRecord};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// B's custom schema.
const BEE: &str = "urn:example:params:scim:schemas:extension:bee:2.0:User";
/// A schema no tenant declares: B's schema's stand-in in the comparisons.
const NEVER_URN: &str = "urn:example:params:scim:schemas:extension:none:2.0:User";
/// A credential no tenant has.
const UNKNOWN_TOKEN: &str = "mst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A tenant and its three tokens.
struct Tenant {
    id: TenantId,
    read: String,
    write: String,
    admin: String,
}

impl Tenant {
    /// `path` (`/scim/v2/...`, `/admin/v1/...`) under the tenant's prefix.
    fn url(&self, path: &str) -> String {
        format!("/t/{}{path}", self.id.0)
    }
}

async fn tenant(server: &TestServer, name: &str) -> Tenant {
    let id = TenantId(name.to_owned());
    server
        .store
        .create_tenant(&id)
        .await
        .expect("create tenant");
    Tenant {
        read: server
            .token_in(&id, &format!("{name}-read"), &[SCOPE_READ])
            .await,
        write: server
            .token_in(&id, &format!("{name}-write"), &[SCOPE_WRITE])
            .await,
        admin: server
            .token_in(&id, &format!("{name}-admin"), &[SCOPE_ADMIN])
            .await,
        id,
    }
}

fn user(name: &str, external: &str) -> Value {
    json!({"schemas": [USER, BEE], "userName": name, "externalId": external,
           BEE: {"hive": format!("{name}-hive")}})
}

fn plain_user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name})
}

fn id_of(reply: &Reply) -> String {
    reply.body["id"].as_str().unwrap_or_default().to_owned()
}

/// What a walk substitutes for each path parameter.
#[derive(Clone)]
struct Values {
    user: String,
    group: String,
    urn: String,
    target: String,
    letter: String,
}

/// The kind of resource a `{endpoint}` route is walked with.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Users,
    Groups,
}

/// `route`'s path with its parameters filled in from `values`; `None` for
/// the `Groups` pass of a route that has no `{endpoint}`. A parameter the
/// walk does not know fails the test: a new route must be walked too.
fn fill(route: &Route, kind: Kind, values: &Values) -> Option<String> {
    let path = route.path;
    if kind == Kind::Groups && !path.contains("{endpoint}") {
        return None;
    }
    let mut filled = path.to_owned();
    let id = if path.starts_with("/sync/dead-letters/") {
        values.letter.clone()
    } else if path.starts_with("/Schemas/") {
        values.urn.clone()
    } else if path.starts_with("/ResourceTypes/") {
        "User".to_owned()
    } else if path.starts_with("/users/") || kind == Kind::Users {
        values.user.clone()
    } else {
        values.group.clone()
    };
    let endpoint = match kind {
        Kind::Users => "Users",
        Kind::Groups => "Groups",
    };
    filled = filled
        .replace("{endpoint}", endpoint)
        .replace("{id}", &id)
        .replace("{urn}", &values.urn)
        .replace("{name}", &values.target);
    assert!(
        !filled.contains('{'),
        "route {} {path} has a parameter this walk does not fill: add it",
        route.method
    );
    Some(filled)
}

/// A body for `route` as its input says, naming `values`.
fn body(route: &Route, kind: Kind, values: &Values, target: &Value) -> Option<Value> {
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "displayName", "value": "taken over"},
        {"op": "add", "path": "members", "value": [{"value": values.user}]}]});
    match route.input {
        Input::Nothing | Input::ListQuery | Input::ProjectionQuery | Input::Form => None,
        // Valid in A, so a replace reaches the lookup of the id.
        Input::Resource => Some(match kind {
            Kind::Users => json!({"schemas": [USER], "userName": "bob-b", "externalId": "ext-b"}),
            Kind::Groups => json!({"schemas": [GROUP], "displayName": "b-team",
                                  "members": [{"value": values.user}]}),
        }),
        Input::Patch => Some(match kind {
            Kind::Users => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "active", "value": false}]}),
            Kind::Groups => patch,
        }),
        Input::Search => Some(json!({"schemas": [SEARCH],
            "filter": format!("userName eq \"bob-b\" or id eq \"{}\"", values.user)})),
        Input::Bulk => Some(bulk(values)),
        Input::Json if route.path.starts_with("/schemas/") => Some(bee_schema(&values.urn)),
        Input::Json if route.path == "/settings" => Some(json!({"undeclaredAttributes": "reject"})),
        Input::Json if route.path.starts_with("/targets/") => Some(target.clone()),
        Input::Json if route.path.starts_with("/expressions/") => {
            Some(json!({"expression": "[userName]", "user": values.user}))
        }
        Input::Json => Some(json!({})),
        Input::Document => Some(rules()),
    }
}

fn bulk(values: &Values) -> Value {
    json!({"schemas": [BULK], "Operations": [
        {"method": "PATCH", "path": format!("/Users/{}", values.user),
         "data": {"schemas": [PATCH_OP], "Operations": [
             {"op": "replace", "path": "active", "value": false}]}},
        {"method": "PUT", "path": format!("/Users/{}", values.user), "data": plain_user("bob-b")},
        {"method": "PATCH", "path": format!("/Groups/{}", values.group),
         "data": {"schemas": [PATCH_OP], "Operations": [
             {"op": "add", "path": "members", "value": [{"value": values.user}]}]}},
        {"method": "DELETE", "path": format!("/Groups/{}", values.group)},
        {"method": "DELETE", "path": format!("/Users/{}", values.user)},
    ]})
}

fn bee_schema(urn: &str) -> Value {
    json!({"id": urn, "name": "Bee", "attributes": [{"name": "hive", "type": "string"}]})
}

fn rules() -> Value {
    json!({"catalog": {"divisions": ["Home"]}, "defaults": {"home_division": "Home"}})
}

/// A reply as text with the substituted values replaced by their names
/// and each run of digits by `#`, so that the answer about B's resource and the answer
/// about one that never existed compare equal exactly when they say the
/// same thing.
fn normalized(reply: &Reply, values: &[(&str, &str)]) -> String {
    let mut text = reply.body.to_string();
    for (name, value) in values {
        if !value.is_empty() {
            text = text.replace(value, name);
        }
    }
    let mut digits_out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            digits_out.push(c);
        } else if !digits_out.ends_with('#') {
            digits_out.push('#');
        }
    }
    format!("{} {digits_out}", reply.status)
}

/// Everything B holds that a request could change, read as B itself and
/// from the store: its resources, schemas, settings, rules, targets, dead
/// letters, tokens and the head of its change feed.
async fn snapshot(server: &TestServer, b: &Tenant) -> Value {
    let mut state = serde_json::Map::new();
    for path in [
        "/scim/v2/Users?sortBy=userName",
        "/scim/v2/Groups?sortBy=displayName",
        "/scim/v2/Schemas",
        "/admin/v1/schemas",
        "/admin/v1/settings",
        "/admin/v1/rules",
        "/admin/v1/rules/history",
        "/admin/v1/sync/dead-letters",
        "/admin/v1/attributes",
    ] {
        let reply = server
            .call_as(&b.admin, Method::GET, &b.url(path), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        state.insert(path.to_owned(), reply.body);
    }
    let targets: Vec<Value> = server
        .store
        .targets(&b.id)
        .await
        .unwrap()
        .into_iter()
        .map(|target| json!([target.name, target.document, target.paused]))
        .collect();
    state.insert("targets".into(), json!(targets));
    let tokens: Vec<Value> = server
        .store
        .list_tokens(&b.id)
        .await
        .unwrap()
        .into_iter()
        .map(|token| json!([token.name, token.secret_hash, token.scopes]))
        .collect();
    state.insert("tokens".into(), json!(tokens));
    state.insert(
        "changeHead".into(),
        json!(server.store.change_head(&b.id).await.unwrap()),
    );
    Value::Object(state)
}

/// Two tenants with their data; B has a user, a group, a custom schema,
/// settings, a rule set, a target and a dead letter of that target.
struct World {
    server: TestServer,
    /// Where B's target delivers (refusing every user).
    _downstream: TestServer,
    a: Tenant,
    b: Tenant,
    /// B's values.
    values: Values,
    /// The same shape of values for things that never existed.
    never: Values,
    target: Value,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let a = tenant(&server, "a").await;
    let b = tenant(&server, "b").await;
    let as_b = |method: Method, path: &str, body: Option<Value>| {
        let (server, b) = (&server, &b);
        let url = b.url(path);
        async move { server.call_as(&b.admin, method, &url, body).await }
    };
    let declared = as_b(
        Method::PUT,
        &format!("/admin/v1/schemas/{BEE}"),
        Some(bee_schema(BEE)),
    )
    .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.body);
    let bob = server
        .call_as(
            &b.write,
            Method::POST,
            &b.url("/scim/v2/Users"),
            Some(user("bob-b", "ext-b")),
        )
        .await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.body);
    let team = server
        .call_as(
            &b.write,
            Method::POST,
            &b.url("/scim/v2/Groups"),
            Some(json!({"schemas": [GROUP], "displayName": "b-team",
                        "members": [{"value": id_of(&bob)}]})),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let settings = as_b(
        Method::PUT,
        "/admin/v1/settings",
        Some(json!({"undeclaredAttributes": "capture"})),
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.body);
    let ruled = as_b(Method::PUT, "/admin/v1/rules", Some(rules())).await;
    assert!(ruled.status.is_success(), "{}", ruled.body);
    // A target that refuses every user, so B has a dead letter.
    let downstream = TestServer::start().await;
    let target = json!({
        "name": "b-target",
        "kind": "scim",
        "baseUrl": downstream.base_url,
        "auth": {"type": "bearer", "token": downstream.token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "active", "expression": "\"refused\""},
        ],
    });
    let put = as_b(
        Method::PUT,
        "/admin/v1/targets/b-target",
        Some(target.clone()),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let letter = loop {
        let letters = as_b(Method::GET, "/admin/v1/sync/dead-letters", None).await;
        if let Some(id) = letters.body["Resources"][0]["id"].as_u64() {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter: {}",
            letters.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A's own data, so its listings are not empty.
    let alice = server
        .call_as(
            &a.write,
            Method::POST,
            &a.url("/scim/v2/Users"),
            Some(plain_user("alice-a")),
        )
        .await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.body);
    let values = Values {
        user: id_of(&bob),
        group: id_of(&team),
        urn: BEE.to_owned(),
        target: "b-target".to_owned(),
        letter,
    };
    let never = Values {
        user: "0f0e0d0c-0b0a-4908-8706-050403020100".to_owned(),
        group: "1f1e1d1c-1b1a-4918-8716-151413121110".to_owned(),
        urn: NEVER_URN.to_owned(),
        target: "never-target".to_owned(),
        letter: "987654321".to_owned(),
    };
    World {
        server,
        _downstream: downstream,
        a,
        b,
        values,
        never,
        target,
    }
}

/// Every SCIM and admin route, with its mount.
fn every_route() -> Vec<(&'static str, Route)> {
    let mut routes: Vec<(&'static str, Route)> = Vec::new();
    routes.extend(scim_routes().into_iter().map(|route| ("/scim/v2", route)));
    routes.extend(admin_routes().into_iter().map(|route| ("/admin/v1", route)));
    routes
}

/// A's credentials (and the default tenant's) at B's URLs, with B's ids:
/// always the `401` of an unknown credential, body and all; and B's stored
/// state unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_credentials_are_unknown_at_its_urls() {
    let world = world().await;
    let World {
        server,
        a,
        b,
        values,
        target,
        ..
    } = &world;
    let before = snapshot(server, b).await;
    let callers = [
        ("a-read", a.read.as_str()),
        ("a-write", a.write.as_str()),
        ("a-admin", a.admin.as_str()),
        ("default-admin", server.token.as_str()),
    ];
    let mut walked = 0;
    for (mount, route) in every_route() {
        for kind in [Kind::Users, Kind::Groups] {
            let Some(path) = fill(&route, kind, values) else {
                continue;
            };
            let body = body(&route, kind, values, target);
            let url = b.url(&format!("{mount}{path}"));
            let unknown = server
                .call_as(UNKNOWN_TOKEN, route.method.clone(), &url, body.clone())
                .await;
            assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{url}");
            // The same request at a tenant that does not exist.
            let nowhere = format!("/t/nowhere{mount}{path}");
            for (name, token) in callers {
                for (at, expected) in [(&url, &unknown), (&nowhere, &unknown)] {
                    let reply = server
                        .call_as(token, route.method.clone(), at, body.clone())
                        .await;
                    assert_eq!(
                        (reply.status, &reply.body),
                        (expected.status, &expected.body),
                        "{name} {} {at}",
                        route.method
                    );
                    assert_eq!(
                        reply.header("www-authenticate"),
                        expected.header("www-authenticate"),
                        "{name} {} {at}",
                        route.method
                    );
                    walked += 1;
                }
            }
        }
    }
    assert!(walked > 200, "walked only {walked} requests");
    // B's own credentials at the default tenant's URLs: unknown too.
    for path in ["/scim/v2/Users", "/admin/v1/schemas", "/metrics"] {
        let reply = server.call_as(&b.admin, Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(snapshot(server, b).await, before);
}

/// A's credentials at A's URL (and the default tenant's at `/scim/v2`)
/// naming B's ids: each answer is the answer for an id that never existed,
/// status and body; B is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_are_unknown_ids() {
    let world = world().await;
    let World {
        server,
        a,
        b,
        values,
        never,
        target,
        ..
    } = &world;
    let before = snapshot(server, b).await;
    let names = |of: &Values| {
        vec![
            ("<user>", of.user.clone()),
            ("<group>", of.group.clone()),
            ("<urn>", of.urn.clone()),
            ("<target>", of.target.clone()),
        ]
    };
    let (b_names, never_names) = (names(values), names(never));
    let as_pairs =
        |names: &[(&'static str, String)]| -> Vec<(&'static str, String)> { names.to_vec() };
    let mut compared = 0;
    for (prefix, token) in [
        (a.url(""), a.admin.as_str()),
        (String::new(), server.token.as_str()),
    ] {
        for (mount, route) in every_route() {
            // Only routes naming a resource, schema, target or letter:
            // lists and creates take no id.
            if !route.path.replace("{endpoint}", "").contains('{') {
                continue;
            }
            // Create-or-replace routes create in the caller's tenant,
            // whatever the name: what they do to B is checked by the
            // snapshot.
            if route.method == Method::PUT
                && (route.path.starts_with("/schemas/") || route.path.starts_with("/targets/"))
            {
                continue;
            }
            for kind in [Kind::Users, Kind::Groups] {
                let (Some(b_path), Some(never_path)) =
                    (fill(&route, kind, values), fill(&route, kind, never))
                else {
                    continue;
                };
                let b_body = body(&route, kind, values, target);
                let never_body = body(&route, kind, never, target);
                let theirs = server
                    .call_as(
                        token,
                        route.method.clone(),
                        &format!("{prefix}{mount}{b_path}"),
                        b_body,
                    )
                    .await;
                let nobodys = server
                    .call_as(
                        token,
                        route.method.clone(),
                        &format!("{prefix}{mount}{never_path}"),
                        never_body,
                    )
                    .await;
                let b_pairs = as_pairs(&b_names);
                let never_pairs = as_pairs(&never_names);
                let b_refs: Vec<(&str, &str)> =
                    b_pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let never_refs: Vec<(&str, &str)> =
                    never_pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
                assert_eq!(
                    normalized(&theirs, &b_refs),
                    normalized(&nobodys, &never_refs),
                    "{} {prefix}{mount}{b_path}",
                    route.method
                );
                assert!(
                    !theirs.status.is_success()
                        || route.path.starts_with("/ResourceTypes/")
                        || route.path.starts_with("/Schemas/"),
                    "{} {prefix}{mount}{b_path}: {} {}",
                    route.method,
                    theirs.status,
                    theirs.body
                );
                assert!(
                    !theirs.body.to_string().contains("bob-b")
                        && !theirs.body.to_string().contains("b-team"),
                    "{} {prefix}{mount}{b_path}: {}",
                    route.method,
                    theirs.body
                );
                // With a precondition: still the answer for a missing id,
                // never a version mismatch that would show B's version.
                if [Method::PUT, Method::PATCH, Method::DELETE].contains(&route.method) {
                    let conditional = |path: &str, body: Option<Value>| {
                        let request = server
                            .http
                            .request(route.method.clone(), format!("{}{path}", server.root))
                            .header("if-match", "W/\"7\"")
                            .bearer_auth(token);
                        server.send(request, body)
                    };
                    let theirs = conditional(
                        &format!("{prefix}{mount}{b_path}"),
                        body(&route, kind, values, target),
                    )
                    .await;
                    let nobodys = conditional(
                        &format!("{prefix}{mount}{never_path}"),
                        body(&route, kind, never, target),
                    )
                    .await;
                    assert_eq!(
                        normalized(&theirs, &b_refs),
                        normalized(&nobodys, &never_refs),
                        "If-Match {} {prefix}{mount}{b_path}",
                        route.method
                    );
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 30, "compared only {compared} routes");
    assert_eq!(snapshot(server, b).await, before);
}

/// Bulk, filters and `.search` in A naming B's ids and values find
/// nothing and change nothing in B; the same userName and schema URN are
/// free in A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_filters_and_search_stay_in_their_tenant() {
    let world = world().await;
    let World {
        server,
        a,
        b,
        values,
        never,
        ..
    } = &world;
    let before = snapshot(server, b).await;
    let as_a = |method: Method, path: String, body: Option<Value>| {
        let (server, a) = (&server, &a);
        async move { server.call_as(&a.admin, method, &a.url(&path), body).await }
    };

    // Bulk with B's ids: per operation, the answer for ids that never
    // existed.
    let theirs = as_a(Method::POST, "/scim/v2/Bulk".into(), Some(bulk(values))).await;
    let nobodys = as_a(Method::POST, "/scim/v2/Bulk".into(), Some(bulk(never))).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    let statuses = |reply: &Reply| -> Vec<Value> {
        reply.body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| op["status"].clone())
            .collect()
    };
    assert_eq!(statuses(&theirs), statuses(&nobodys));
    assert!(
        statuses(&theirs)
            .iter()
            .all(|s| s.as_str() != Some("200") && s.as_str() != Some("204")),
        "{}",
        theirs.body
    );
    let details = |reply: &Reply, of: &Values| -> Vec<String> {
        reply.body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| {
                op["response"]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(&of.user, "<user>")
                    .replace(&of.group, "<group>")
            })
            .collect()
    };
    assert_eq!(details(&theirs, values), details(&nobodys, never));
    // Bulk paths naming B's URL: refused as for a tenant that does not
    // exist, nothing created anywhere.
    let into = |tenant: &str| {
        json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "bulkId": "x", "path": format!("/t/{tenant}/scim/v2/Users"),
             "data": plain_user("bulk-into-b")},
            {"method": "DELETE", "path": format!("/t/{tenant}/scim/v2/Users/{}", values.user)},
            {"method": "PATCH", "path": format!("/t/{tenant}/scim/v2/Groups/{}", values.group),
             "data": {"schemas": [PATCH_OP], "Operations": [
                 {"op": "remove", "path": "members"}]}},
        ]})
    };
    let to_b = as_a(Method::POST, "/scim/v2/Bulk".into(), Some(into("b"))).await;
    let to_nowhere = as_a(Method::POST, "/scim/v2/Bulk".into(), Some(into("nowhere"))).await;
    assert_eq!(statuses(&to_b), statuses(&to_nowhere), "{}", to_b.body);
    assert!(
        statuses(&to_b)
            .iter()
            .all(|s| !s.as_str().unwrap_or("200").starts_with('2')),
        "{}",
        to_b.body
    );

    // Filters and searches naming B's values find nothing.
    let filters = [
        ("Users", "userName eq \"bob-b\"".to_owned()),
        ("Users", "externalId eq \"ext-b\"".to_owned()),
        ("Users", format!("id eq \"{}\"", values.user)),
        ("Users", "userName sw \"bob\"".to_owned()),
        ("Groups", "displayName eq \"b-team\"".to_owned()),
        ("Groups", format!("members.value eq \"{}\"", values.user)),
        ("Groups", format!("id eq \"{}\"", values.group)),
    ];
    for (endpoint, filter) in &filters {
        let listed = server
            .call_as(
                &a.read,
                Method::GET,
                &a.url(&format!("/scim/v2/{endpoint}")),
                None,
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK);
        let query = server
            .send(
                server
                    .http
                    .get(format!(
                        "{}{}",
                        server.root,
                        a.url(&format!("/scim/v2/{endpoint}"))
                    ))
                    .query(&[("filter", filter.as_str())])
                    .bearer_auth(&a.read),
                None,
            )
            .await;
        assert_eq!(query.status, StatusCode::OK, "{filter}: {}", query.body);
        assert_eq!(query.body["totalResults"], 0, "{filter}: {}", query.body);
        for path in [
            format!("/scim/v2/{endpoint}/.search"),
            "/scim/v2/.search".to_owned(),
        ] {
            let searched = server
                .call_as(
                    &a.read,
                    Method::POST,
                    &a.url(&path),
                    Some(json!({"schemas": [SEARCH], "filter": filter})),
                )
                .await;
            assert_eq!(searched.status, StatusCode::OK, "{path} {filter}");
            assert_eq!(searched.body["totalResults"], 0, "{path} {filter}");
        }
        // The default tenant sees none of B either.
        let default = server
            .send(
                server
                    .http
                    .get(format!("{}/{endpoint}", server.base_url))
                    .query(&[("filter", filter.as_str())])
                    .bearer_auth(&server.token),
                None,
            )
            .await;
        assert_eq!(
            default.body["totalResults"], 0,
            "{filter}: {}",
            default.body
        );
    }
    // A filter on B's custom attribute: A does not know the schema, and
    // says so exactly as for a schema nobody declared.
    let custom = |urn: &str| {
        let filter = format!("{urn}:hive eq \"bob-b-hive\"");
        let (server, a) = (&server, &a);
        async move {
            server
                .send(
                    server
                        .http
                        .get(format!("{}{}", server.root, a.url("/scim/v2/Users")))
                        .query(&[("filter", filter.as_str())])
                        .bearer_auth(&a.read),
                    None,
                )
                .await
        }
    };
    let (theirs, nobodys) = (custom(BEE).await, custom(NEVER_URN).await);
    assert_eq!(
        normalized(&theirs, &[("<urn>", BEE)]),
        normalized(&nobodys, &[("<urn>", NEVER_URN)])
    );
    // A member from B is unknown in A, as an id that never existed.
    let group_with = |member: &str| {
        let body = json!({"schemas": [GROUP], "displayName": format!("with-{member}"),
                          "members": [{"value": member}]});
        as_a(Method::POST, "/scim/v2/Groups".into(), Some(body))
    };
    let (theirs, nobodys) = (
        group_with(&values.user).await,
        group_with(&never.user).await,
    );
    assert_eq!(
        normalized(&theirs, &[("<user>", &values.user)]),
        normalized(&nobodys, &[("<user>", &never.user)])
    );
    // B's userName, externalId and schema URN are free in A.
    let same_name = as_a(
        Method::POST,
        "/scim/v2/Users".into(),
        Some(plain_user("bob-b")),
    )
    .await;
    assert_eq!(same_name.status, StatusCode::CREATED, "{}", same_name.body);
    let same_schema = as_a(
        Method::PUT,
        format!("/admin/v1/schemas/{BEE}"),
        Some(json!({"id": BEE, "name": "A's bee", "attributes": [{"name": "sting", "type": "integer"}]})),
    )
    .await;
    assert_eq!(
        same_schema.status,
        StatusCode::CREATED,
        "{}",
        same_schema.body
    );
    let same_target = as_a(
        Method::PUT,
        "/admin/v1/targets/b-target".into(),
        Some(
            json!({"name": "b-target", "kind": "scim", "baseUrl": "http://127.0.0.1:9/scim/v2",
                    "auth": {"type": "bearer", "token": "a-secret"},
                    "mappings": [{"target": "userName", "expression": "userName"}]}),
        ),
    )
    .await;
    assert_eq!(same_target.status, StatusCode::OK, "{}", same_target.body);
    let _ = as_a(Method::DELETE, "/admin/v1/targets/b-target".into(), None).await;
    assert_eq!(snapshot(server, b).await, before);
}

/// Locations name the tenant's own base URL: `Location`, `meta.location`
/// in resources, lists, Bulk, `/ServiceProviderConfig`, `/Schemas` and
/// `/ResourceTypes`; the default tenant's stay under `/scim/v2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_name_the_tenants_base() {
    let server = TestServer::start().await;
    let b = tenant(&server, "b").await;
    let base = format!("{}/t/b/scim/v2", server.root);
    let created = server
        .call_as(
            &b.write,
            Method::POST,
            "/t/b/scim/v2/Users",
            Some(plain_user("loc")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let location = format!("{base}/Users/{}", id_of(&created));
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(created.body["meta"]["location"], json!(location));
    let read = server
        .call_as(
            &b.read,
            Method::GET,
            &format!("/t/b/scim/v2/Users/{}", id_of(&created)),
            None,
        )
        .await;
    assert_eq!(read.body["meta"]["location"], json!(location));
    let listed = server
        .call_as(&b.read, Method::GET, "/t/b/scim/v2/Users", None)
        .await;
    assert_eq!(
        listed.body["Resources"][0]["meta"]["location"],
        json!(location)
    );
    let bulk = server
        .call_as(
            &b.write,
            Method::POST,
            "/t/b/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "bulkId": "one", "path": "/Users", "data": plain_user("bulk-loc")}]})),
        )
        .await;
    let bulk_location = bulk.body["Operations"][0]["location"]
        .as_str()
        .unwrap_or_default();
    assert!(
        bulk_location.starts_with(&format!("{base}/Users/")),
        "{}",
        bulk.body
    );
    let config = server
        .call_as(
            &b.read,
            Method::GET,
            "/t/b/scim/v2/ServiceProviderConfig",
            None,
        )
        .await;
    assert_eq!(
        config.body["meta"]["location"],
        json!(format!("{base}/ServiceProviderConfig"))
    );
    for (path, prefix) in [
        ("/Schemas", "/Schemas/"),
        ("/ResourceTypes", "/ResourceTypes/"),
    ] {
        let listed = server
            .call_as(&b.read, Method::GET, &format!("/t/b/scim/v2{path}"), None)
            .await;
        let resources = listed.body["Resources"].as_array().unwrap();
        assert!(!resources.is_empty());
        for resource in resources {
            let location = resource["meta"]["location"].as_str().unwrap_or_default();
            assert!(
                location.starts_with(&format!("{base}{prefix}")),
                "{location}"
            );
        }
    }
    // The default tenant: `/scim/v2`, as before tenants.
    let default = server.post("/Users", plain_user("loc")).await;
    assert_eq!(
        default.header("location"),
        Some(format!("{}/Users/{}", server.base_url, id_of(&default)).as_str())
    );
    let config = server.get("/ServiceProviderConfig").await;
    assert_eq!(
        config.body["meta"]["location"],
        json!(format!("{}/ServiceProviderConfig", server.base_url))
    );
}

/// A request written as sent, byte for byte (no client normalises its
/// path): the status.
async fn raw_status(server: &TestServer, token: &str, path: &str) -> u16 {
    let address = server.root.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/scim+json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"))
}

/// Other spellings of the tenant in the URL never reach another tenant:
/// case, percent-encoding, empty segments, `..`, a second prefix, trailing
/// slashes, tenants named like routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_spellings_of_a_tenant_reach_nothing() {
    let world = world().await;
    let World { server, a, b, .. } = &world;
    let scim = tenant(server, "scim").await;
    let t = tenant(server, "t").await;
    // Tenants named like routes are tenants like the others.
    for (tenant, url) in [(&scim, "/t/scim/scim/v2/Users"), (&t, "/t/t/scim/v2/Users")] {
        assert_eq!(raw_status(server, &tenant.read, url).await, 200, "{url}");
        assert_eq!(raw_status(server, &a.read, url).await, 401, "{url}");
    }
    assert_eq!(raw_status(server, &b.read, "/t/b/scim/v2/Users").await, 200);
    let spellings = [
        "/t/B/scim/v2/Users",
        "/T/b/scim/v2/Users",
        "/t/%62/scim/v2/Users",
        "/t/b%2f..%2fa/scim/v2/Users",
        "/t/a%2f..%2fb/scim/v2/Users",
        "/t//scim/v2/Users",
        "/t/b/../a/scim/v2/Users",
        "/t/a/../b/scim/v2/Users",
        "/t/../scim/v2/Users",
        "/t/b/scim/v2/../../../t/a/scim/v2/Users",
        "/t/a/scim/v2/../../../t/b/scim/v2/Users",
        "/t/b/t/a/scim/v2/Users",
        "/t/a/t/b/scim/v2/Users",
        "/t/b/admin/v1/../../../t/a/admin/v1/schemas",
        "/t/b /scim/v2/Users",
        "/t/b/metrics",
        "/t/b/healthz",
        "/t/b",
        "/t/b/",
        "/t/b/scim",
        "/scim/v2/../../t/b/scim/v2/Users",
    ];
    for path in spellings {
        for (name, token) in [("a", &a.admin), ("b", &b.admin), ("default", &server.token)] {
            let status = raw_status(server, token, path).await;
            assert!((400..500).contains(&status), "{name} at {path}: {status}");
        }
    }
    // Trailing slashes answer as they do for the default tenant.
    for path in ["/scim/v2/Users/", "/admin/v1/schemas/"] {
        let default = raw_status(server, &server.token, path).await;
        let tenant_b = raw_status(server, &b.admin, &b.url(path)).await;
        assert_eq!(default, tenant_b, "{path}");
        assert!(default >= 400, "{path}: {default}");
    }
}

/// A removed tenant's tokens stop working (within the token cache's
/// life), its URLs answer as for any unknown tenant, writes to it are
/// refused, and a tenant of the same name made again starts empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_tenants_tokens_stop_working() {
    let server = TestServer::start().await;
    let c = tenant(&server, "c").await;
    let made = server
        .call_as(
            &c.write,
            Method::POST,
            "/t/c/scim/v2/Users",
            Some(plain_user("carol")),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        server
            .call_as(&c.read, Method::GET, "/t/c/scim/v2/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    // Refused while it holds anything; `default` never.
    let refused = server.store.remove_tenant(&c.id, false).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Conflict(text) if text.contains("resources") && text.contains("tokens")),
        "{refused:?}"
    );
    assert!(matches!(
        server
            .store
            .remove_tenant(&TenantId::default_tenant(), true)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        server
            .store
            .remove_tenant(&TenantId("nobody".into()), true)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let erased = server.store.remove_tenant(&c.id, true).await.unwrap();
    assert!(
        erased
            .iter()
            .any(|(table, count)| table == "resources" && *count == 1),
        "{erased:?}"
    );
    assert!(
        erased
            .iter()
            .any(|(table, count)| table == "tokens" && *count == 3),
        "{erased:?}"
    );
    assert!(!server.store.tenant_exists(&c.id).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = server
            .call_as(&c.read, Method::GET, "/t/c/scim/v2/Users", None)
            .await;
        if reply.status == StatusCode::UNAUTHORIZED {
            let unknown = server
                .call_as(UNKNOWN_TOKEN, Method::GET, "/t/c/scim/v2/Users", None)
                .await;
            assert_eq!(reply.body, unknown.body);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still answered: {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let write = server
        .call_as(
            &c.write,
            Method::POST,
            "/t/c/scim/v2/Users",
            Some(plain_user("late")),
        )
        .await;
    assert_eq!(write.status, StatusCode::UNAUTHORIZED);
    // Nothing can be written to a tenant that does not exist.
    let token = mint_token();
    assert!(matches!(
        server
            .store
            .create_token(
                &c.id,
                TokenRecord {
                    name: "again".into(),
                    secret_hash: token.secret_hash,
                    scopes: vec![SCOPE_READ.into()],
                    created: String::new(),
                },
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(server
        .store
        .list_tenants()
        .await
        .unwrap()
        .iter()
        .all(|t| t.tenant != c.id));
    // Made again, it is empty and the old tokens stay unknown.
    server.store.create_tenant(&c.id).await.unwrap();
    assert!(matches!(
        server.store.create_tenant(&c.id).await,
        Err(StoreError::Conflict(_))
    ));
    let fresh = server.token_in(&c.id, "fresh", &[SCOPE_READ]).await;
    let listed = server
        .call_as(&fresh, Method::GET, "/t/c/scim/v2/Users", None)
        .await;
    assert_eq!(listed.body["totalResults"], 0, "{}", listed.body);
    assert_eq!(
        server
            .call_as(&c.read, Method::GET, "/t/c/scim/v2/Users", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The registry's counts.
    let summary = server.store.list_tenants().await.unwrap();
    let c_summary = summary.iter().find(|t| t.tenant == c.id).unwrap();
    assert_eq!(
        (c_summary.users, c_summary.groups, c_summary.tokens),
        (0, 0, 1)
    );
    assert!(summary
        .iter()
        .any(|t| t.tenant == TenantId::default_tenant()));
}

/// Under `/t/{tenant}`, a tenant's own tokens get exactly what their
/// scopes allow, route by route, as at the root (`tests/scopes.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_hold_under_tenant_urls() {
    let world = world().await;
    let World {
        server,
        b,
        values,
        target,
        ..
    } = &world;
    let mut checked = 0;
    for (mount, route) in every_route() {
        let Some(scope) = route.scope else {
            continue;
        };
        let Some(path) = fill(&route, Kind::Users, values) else {
            continue;
        };
        let url = b.url(&format!("{mount}{path}"));
        let body = body(&route, Kind::Users, values, target);
        let refused: &[&String] = match scope {
            SCOPE_READ => &[],
            SCOPE_WRITE => &[&b.read],
            _ => &[&b.read, &b.write],
        };
        for token in refused {
            let reply = server
                .call_as(token, route.method.clone(), &url, body.clone())
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{} {url}",
                route.method
            );
            checked += 1;
        }
        if scope == SCOPE_READ && route.method == Method::GET {
            let reply = server.call_as(&b.read, Method::GET, &url, None).await;
            assert!(
                reply.status != StatusCode::UNAUTHORIZED && reply.status != StatusCode::FORBIDDEN,
                "GET {url}: {}",
                reply.status
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "checked only {checked}");
}
