//! Custom attributes declared at run time (issue #5), end to end over HTTP
//! against a real server on a real SQLite file: the seeds' case (Entra ID's
//! `extension_abc123_region` mapped to a Contoso extension, `costCenter`,
//! Genesys `customFields.BPO_Vendor_ID`) through declaring, writing,
//! reading, filtering, clearing, the undeclared-attribute policy, schema
//! evolution, the explain table and the admin scope.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use muster_store::{ChangeKind, TenantId};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
const GENESYS: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
const CONTOSO_GROUP: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group";
const TEAM: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:Team";

/// The Contoso extension with every attribute type of RFC 7643.
fn contoso_schema() -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": CONTOSO,
        "name": "ContosoAgent",
        "description": "Contoso contact-center agent attributes",
        "attributes": [
            {"name": "region", "type": "string", "description": "from extension_abc123_region"},
            {"name": "costCenter", "type": "string"},
            {"name": "tier", "type": "integer"},
            {"name": "hired", "type": "dateTime"},
            {"name": "remote", "type": "boolean"},
            {"name": "rate", "type": "decimal"},
            {"name": "badge", "type": "binary"},
            {"name": "profile", "type": "reference", "referenceTypes": ["external"]},
            {"name": "skills", "type": "string", "multiValued": true,
             "canonicalValues": ["voice", "chat", "email"]},
            {"name": "location", "type": "complex", "subAttributes": [
                {"name": "building", "type": "string"},
                {"name": "floor", "type": "integer"}
            ]},
            {"name": "employeeCode", "type": "string", "uniqueness": "server"}
        ]
    })
}

/// The Genesys Cloud extension: custom fields inside one complex attribute.
fn genesys_schema() -> Value {
    json!({
        "id": GENESYS,
        "name": "GenesysCloudUser",
        "attributes": [{
            "name": "customFields",
            "type": "complex",
            "subAttributes": [
                {"name": "BPO_Vendor_ID", "type": "string"},
                {"name": "Agent_Tier", "type": "integer"}
            ]
        }]
    })
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

fn detail(reply: &Reply) -> &str {
    reply.body["detail"].as_str().unwrap_or_default()
}

fn assert_scim_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], status.as_str(), "{}", reply.body);
    assert!(!detail(reply).is_empty(), "{}", reply.body);
}

/// `PUT /admin/v1/schemas/{urn}{query}`.
async fn put_schema(server: &TestServer, urn: &str, query: &str, schema: Value) -> Reply {
    server
        .admin(Method::PUT, &format!("/schemas/{urn}{query}"), Some(schema))
        .await
}

/// Declares a schema for the first time: `201` and an applied report.
async fn declare(server: &TestServer, urn: &str, schema: Value) -> Value {
    let reply = put_schema(server, urn, "", schema).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["created"], true, "{}", reply.body);
    assert_eq!(reply.body["applied"], true, "{}", reply.body);
    reply.body
}

/// A server with the Contoso and Genesys extensions declared.
async fn server_with_extensions() -> TestServer {
    let server = TestServer::start().await;
    declare(&server, CONTOSO, contoso_schema()).await;
    declare(&server, GENESYS, genesys_schema()).await;
    server
}

fn user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true,
           "name": {"givenName": "Ann", "familyName": "Agent"}})
}

/// An Entra-style user: core, enterprise and Contoso attributes.
fn entra_user(user_name: &str, region: &str, cost_center: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE, CONTOSO],
        "externalId": format!("aad-{user_name}"),
        "userName": user_name,
        "active": true,
        "displayName": "Ann Agent",
        "name": {"givenName": "Ann", "familyName": "Agent"},
        ENTERPRISE: {"department": "Operations", "employeeNumber": "1001"},
        CONTOSO: {"region": region, "costCenter": cost_center}
    })
}

async fn create(server: &TestServer, body: Value) -> String {
    let reply = server.post("/Users", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn get_user(server: &TestServer, id: &str) -> Value {
    let reply = server.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn patch(server: &TestServer, id: &str, operations: Value) -> Reply {
    server
        .patch(&format!("/Users/{id}"), patch_body(operations))
        .await
}

async fn patch_ok(server: &TestServer, id: &str, operations: Value) -> Value {
    let reply = patch(server, id, operations).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The userNames a filter finds, in the order returned.
async fn find(server: &TestServer, filter: &str) -> Vec<String> {
    let reply = server
        .get(&format!("/Users?filter={}", encode(filter)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
    let names: Vec<String> = reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reply.body["totalResults"], names.len(), "{}", reply.body);
    names
}

/// The stored resource and its captured values, from the admin API.
async fn stored(server: &TestServer, id: &str) -> Value {
    let reply = server
        .admin(Method::GET, &format!("/resources/Users/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The explain table's rows.
async fn explain(server: &TestServer) -> Vec<Value> {
    let reply = server.admin(Method::GET, "/attributes", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rows = reply.body["Resources"].as_array().unwrap().clone();
    assert_eq!(reply.body["totalResults"], rows.len());
    rows
}

/// The explain row of a path (case-insensitive), if any.
fn row<'r>(rows: &'r [Value], resource_type: &str, path: &str) -> Option<&'r Value> {
    rows.iter().find(|row| {
        row["resourceType"] == resource_type
            && row["path"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(path))
    })
}

fn schema_attribute<'s>(schema: &'s Value, name: &str) -> &'s Value {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no attribute {name} in {schema}"))
}

fn extension_of<'r>(resource_type: &'r Value, urn: &str) -> Option<&'r Value> {
    resource_type["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ext| ext["schema"] == urn)
}

// 1. Declaring: the schema is served at once, no restart.

#[tokio::test]
async fn declared_schemas_appear_at_once_in_discovery() {
    let server = TestServer::start().await;
    // Load the registry once so that a stale cache would show.
    assert_eq!(server.get("/Schemas").await.body["totalResults"], 3);
    assert!(extension_of(&server.get("/ResourceTypes/User").await.body, CONTOSO).is_none());
    assert_eq!(
        server.get(&format!("/Schemas/{CONTOSO}")).await.status,
        StatusCode::NOT_FOUND
    );

    let report = declare(&server, CONTOSO, contoso_schema()).await;
    assert_eq!(report["id"], CONTOSO);
    assert_eq!(report["resourceType"], "User");
    assert_eq!(report["required"], false);
    // The id may be left out of the document: the path gives it.
    let mut genesys = genesys_schema();
    genesys.as_object_mut().unwrap().remove("id");
    declare(&server, GENESYS, genesys).await;

    let schemas = server.get("/Schemas").await;
    assert_eq!(schemas.status, StatusCode::OK);
    assert_eq!(schemas.body["totalResults"], 5, "{}", schemas.body);
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&CONTOSO) && ids.contains(&GENESYS), "{ids:?}");

    let contoso = server.get(&format!("/Schemas/{CONTOSO}")).await;
    assert_eq!(contoso.status, StatusCode::OK, "{}", contoso.body);
    assert_eq!(contoso.body["id"], CONTOSO);
    assert_eq!(contoso.body["name"], "ContosoAgent");
    for (name, kind) in [
        ("region", "string"),
        ("costCenter", "string"),
        ("tier", "integer"),
        ("hired", "dateTime"),
        ("remote", "boolean"),
        ("rate", "decimal"),
        ("badge", "binary"),
        ("profile", "reference"),
        ("skills", "string"),
        ("location", "complex"),
        ("employeeCode", "string"),
    ] {
        assert_eq!(
            schema_attribute(&contoso.body, name)["type"],
            kind,
            "{name}"
        );
    }
    let skills = schema_attribute(&contoso.body, "skills");
    assert_eq!(skills["multiValued"], true);
    assert_eq!(skills["canonicalValues"], json!(["voice", "chat", "email"]));
    assert_eq!(
        schema_attribute(&contoso.body, "employeeCode")["uniqueness"],
        "server"
    );
    assert_eq!(
        schema_attribute(&contoso.body, "profile")["referenceTypes"],
        json!(["external"])
    );
    let location = schema_attribute(&contoso.body, "location");
    let subs: Vec<&str> = location["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["building", "floor"]);

    // Case-insensitive URN lookup, as for the built-in schemas.
    let genesys = server
        .get(&format!("/Schemas/{}", GENESYS.to_ascii_uppercase()))
        .await;
    assert_eq!(genesys.status, StatusCode::OK, "{}", genesys.body);
    let custom_fields = schema_attribute(&genesys.body, "customFields");
    assert_eq!(custom_fields["type"], "complex");
    assert_eq!(custom_fields["subAttributes"][0]["name"], "BPO_Vendor_ID");

    let user_type = server.get("/ResourceTypes/User").await;
    for urn in [ENTERPRISE, CONTOSO, GENESYS] {
        let ext = extension_of(&user_type.body, urn)
            .unwrap_or_else(|| panic!("{urn} missing: {}", user_type.body));
        if urn != ENTERPRISE {
            assert_eq!(ext["required"], false, "{ext}");
        }
    }
    let group_type = server.get("/ResourceTypes/Group").await;
    assert!(extension_of(&group_type.body, CONTOSO).is_none());
    let all_types = server.get("/ResourceTypes").await;
    let user_in_list = all_types.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rt| rt["id"] == "User")
        .unwrap();
    assert!(extension_of(user_in_list, GENESYS).is_some());

    // The admin API lists and reads back what was declared.
    let listed = server.admin(Method::GET, "/schemas", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["totalResults"], 2);
    assert_eq!(listed.body["Resources"][0]["id"], CONTOSO);
    assert_eq!(listed.body["Resources"][0]["resourceType"], "User");
    assert_eq!(listed.body["Resources"][0]["required"], false);
    assert_eq!(listed.body["Resources"][0]["updatedBy"], "test-admin");
    assert_eq!(listed.body["Resources"][1]["id"], GENESYS);
    let one = server
        .admin(Method::GET, &format!("/schemas/{GENESYS}"), None)
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["schema"]["id"], GENESYS);
    assert_eq!(
        one.body["schema"]["attributes"][0]["subAttributes"][0]["name"],
        "BPO_Vendor_ID"
    );
    let missing = server
        .admin(
            Method::GET,
            "/schemas/urn:ietf:params:scim:schemas:extension:nope:2.0:User",
            None,
        )
        .await;
    assert_scim_error(&missing, StatusCode::NOT_FOUND);

    // Putting the same definition again changes nothing: 200, not created.
    let again = put_schema(&server, CONTOSO, "", contoso_schema()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["created"], false);
    assert_eq!(again.body["changes"]["added"], json!([]));

    // A malformed definition is refused with the location of the error,
    // and declares nothing.
    let bad = put_schema(
        &server,
        "urn:ietf:params:scim:schemas:extension:bad:2.0:User",
        "",
        json!({"attributes": [{"name": "x", "type": "strin"}]}),
    )
    .await;
    assert_scim_error(&bad, StatusCode::BAD_REQUEST);
    assert!(detail(&bad).contains("strin"), "{}", bad.body);
    // An id that contradicts the path is refused.
    let mismatch = put_schema(&server, CONTOSO, "", genesys_schema()).await;
    assert_scim_error(&mismatch, StatusCode::BAD_REQUEST);
    assert_eq!(server.get("/Schemas").await.body["totalResults"], 5);
}

#[tokio::test]
async fn group_extensions_bind_to_the_group_type() {
    let server = TestServer::start().await;
    // Bound by the URN's last segment.
    let by_urn = declare(
        &server,
        CONTOSO_GROUP,
        json!({"attributes": [{"name": "queue", "type": "string"}]}),
    )
    .await;
    assert_eq!(by_urn["resourceType"], "Group");
    // Bound by the query parameter.
    let reply = put_schema(
        &server,
        TEAM,
        "?resourceType=Group",
        json!({"attributes": [{"name": "managementUnit", "type": "string"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["resourceType"], "Group");

    let group_type = server.get("/ResourceTypes/Group").await;
    for urn in [CONTOSO_GROUP, TEAM] {
        let ext = extension_of(&group_type.body, urn)
            .unwrap_or_else(|| panic!("{urn} missing: {}", group_type.body));
        assert_eq!(ext["required"], false);
    }
    let user_type = server.get("/ResourceTypes/User").await;
    assert!(extension_of(&user_type.body, TEAM).is_none());
    assert!(extension_of(&user_type.body, CONTOSO_GROUP).is_none());

    let created = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP, CONTOSO_GROUP, TEAM], "displayName": "Tier 1",
                   CONTOSO_GROUP: {"queue": "Billing"},
                   format!("{TEAM}:managementUnit"): "MU-APAC"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let group = server.get(&format!("/Groups/{id}")).await;
    assert_eq!(
        group.body[CONTOSO_GROUP]["queue"], "Billing",
        "{}",
        group.body
    );
    assert_eq!(
        group.body[TEAM]["managementUnit"], "MU-APAC",
        "{}",
        group.body
    );
    let found = server
        .get(&format!(
            "/Groups?filter={}",
            encode(&format!("{TEAM}:managementUnit eq \"MU-APAC\""))
        ))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    // A User cannot carry a Group extension.
    let wrong = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "g@x.com", CONTOSO_GROUP: {"queue": "x"}}),
        )
        .await;
    assert_scim_error(&wrong, StatusCode::BAD_REQUEST);
}

// 2. Values: validated, stored, returned, filtered, sorted, projected.

#[tokio::test]
async fn entra_post_and_patch_round_trip() {
    let server = server_with_extensions().await;
    // Nested-object form.
    let nested = create(&server, entra_user("ann@contoso.com", "APAC", "CC-100")).await;
    let ann = get_user(&server, &nested).await;
    assert_eq!(ann[CONTOSO]["region"], "APAC", "{ann}");
    assert_eq!(ann[CONTOSO]["costCenter"], "CC-100", "{ann}");
    assert_eq!(ann[ENTERPRISE]["department"], "Operations");
    assert!(
        ann["schemas"].as_array().unwrap().contains(&json!(CONTOSO)),
        "{ann}"
    );

    // URN-qualified key form, as Entra's attribute mapping writes the target.
    let qualified = create(
        &server,
        json!({
            "schemas": [USER],
            "userName": "bob@contoso.com",
            format!("{CONTOSO}:region"): "EMEA",
            format!("{CONTOSO}:costCenter"): "CC-200",
            format!("{CONTOSO}:tier"): 2,
            format!("{CONTOSO}:hired"): "2024-03-01T09:00:00Z",
            format!("{CONTOSO}:remote"): true,
            format!("{CONTOSO}:rate"): 17.5,
            format!("{CONTOSO}:badge"): "QmFkZ2UtMQ==",
            format!("{CONTOSO}:profile"): "https://hr.contoso.com/people/bob",
            format!("{CONTOSO}:skills"): ["voice", "chat"],
            format!("{CONTOSO}:location"): {"building": "B7", "floor": 3},
            format!("{CONTOSO}:employeeCode"): "E-2",
            format!("{GENESYS}:customFields.BPO_Vendor_ID"): "BPO-1"
        }),
    )
    .await;
    let bob = get_user(&server, &qualified).await;
    let expected = json!({
        "region": "EMEA", "costCenter": "CC-200", "tier": 2,
        "hired": "2024-03-01T09:00:00Z", "remote": true, "rate": 17.5,
        "badge": "QmFkZ2UtMQ==", "profile": "https://hr.contoso.com/people/bob",
        "skills": ["voice", "chat"], "location": {"building": "B7", "floor": 3},
        "employeeCode": "E-2"
    });
    for (name, value) in expected.as_object().unwrap() {
        assert_eq!(&bob[CONTOSO][name], value, "{name}: {bob}");
    }
    assert_eq!(bob[GENESYS]["customFields"]["BPO_Vendor_ID"], "BPO-1");
    for urn in [CONTOSO, GENESYS] {
        assert!(
            bob["schemas"].as_array().unwrap().contains(&json!(urn)),
            "{bob}"
        );
    }
    // Keys with another case land on the declared names.
    let cased = create(
        &server,
        json!({"schemas": [USER], "userName": "cy@contoso.com",
               CONTOSO.to_ascii_uppercase(): {"REGION": "AMER"}}),
    )
    .await;
    assert_eq!(get_user(&server, &cased).await[CONTOSO]["region"], "AMER");

    // PATCH with Entra's capitalised ops: path with the URN.
    let patched = patch_ok(
        &server,
        &nested,
        json!([
            {"op": "Replace", "path": format!("{CONTOSO}:region"), "value": "EMEA"},
            {"op": "Add", "path": format!("{CONTOSO}:remote"), "value": "True"}
        ]),
    )
    .await;
    assert_eq!(patched[CONTOSO]["region"], "EMEA", "{patched}");
    assert_eq!(patched[CONTOSO]["remote"], true, "{patched}");
    // Path-less, keys URN-qualified, booleans as strings.
    patch_ok(
        &server,
        &nested,
        json!([{"op": "replace", "value": {
            format!("{CONTOSO}:costCenter"): "CC-300",
            format!("{CONTOSO}:remote"): "False",
            format!("{ENTERPRISE}:department"): "Billing",
            "name.givenName": "Anne"
        }}]),
    )
    .await;
    let ann = get_user(&server, &nested).await;
    assert_eq!(ann[CONTOSO]["costCenter"], "CC-300", "{ann}");
    assert_eq!(ann[CONTOSO]["remote"], false, "{ann}");
    assert_eq!(ann[CONTOSO]["region"], "EMEA", "{ann}");
    assert_eq!(ann[ENTERPRISE]["department"], "Billing");
    assert_eq!(ann["name"]["givenName"], "Anne");
    // Path-less with the extension object itself.
    patch_ok(
        &server,
        &nested,
        json!([{"op": "replace", "value": {CONTOSO: {"tier": 3}}}]),
    )
    .await;
    // Path with the string boolean directly.
    patch_ok(
        &server,
        &nested,
        json!([{"op": "Replace", "path": format!("{CONTOSO}:remote"), "value": "True"}]),
    )
    .await;
    // Sub-attribute of a complex custom attribute, and a multi-valued add.
    patch_ok(
        &server,
        &nested,
        json!([
            {"op": "add", "path": format!("{CONTOSO}:location.floor"), "value": 4},
            {"op": "add", "path": format!("{CONTOSO}:skills"), "value": ["email"]},
            {"op": "add", "path": format!("{CONTOSO}:skills"), "value": ["voice"]}
        ]),
    )
    .await;
    let ann = get_user(&server, &nested).await;
    assert_eq!(ann[CONTOSO]["tier"], 3, "{ann}");
    assert_eq!(ann[CONTOSO]["costCenter"], "CC-300", "{ann}");
    assert_eq!(ann[CONTOSO]["remote"], true, "{ann}");
    assert_eq!(ann[CONTOSO]["location"]["floor"], 4, "{ann}");
    assert_eq!(ann[CONTOSO]["skills"], json!(["email", "voice"]), "{ann}");

    // A PUT (Okta, Ping) replaces the extension values too.
    let mut replacement = entra_user("ann@contoso.com", "AMER", "CC-400");
    replacement[CONTOSO]["tier"] = json!(1);
    let put = server.put(&format!("/Users/{nested}"), replacement).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let ann = get_user(&server, &nested).await;
    assert_eq!(
        ann[CONTOSO],
        json!({"region": "AMER", "costCenter": "CC-400", "tier": 1}),
        "{ann}"
    );
}

#[tokio::test]
async fn genesys_custom_fields_by_dotted_path() {
    let server = server_with_extensions().await;
    let id = create(&server, user("gc@contoso.com")).await;
    let path = format!("{GENESYS}:customFields.BPO_Vendor_ID");
    patch_ok(
        &server,
        &id,
        json!([{"op": "Add", "path": path, "value": "BPO-7"}]),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert_eq!(
        got[GENESYS]["customFields"]["BPO_Vendor_ID"], "BPO-7",
        "{got}"
    );
    assert!(got["schemas"].as_array().unwrap().contains(&json!(GENESYS)));
    patch_ok(
        &server,
        &id,
        json!([
            {"op": "Replace", "path": path, "value": "BPO-8"},
            {"op": "Replace", "path": format!("{GENESYS}:customFields.Agent_Tier"), "value": 2}
        ]),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert_eq!(
        got[GENESYS]["customFields"],
        json!({"BPO_Vendor_ID": "BPO-8", "Agent_Tier": 2}),
        "{got}"
    );
    // A path-less replace with the dotted key.
    patch_ok(
        &server,
        &id,
        json!([{"op": "replace", "value": {path.clone(): "BPO-9"}}]),
    )
    .await;
    assert_eq!(
        get_user(&server, &id).await[GENESYS]["customFields"]["BPO_Vendor_ID"],
        "BPO-9"
    );
    let other = create(&server, user("other@contoso.com")).await;
    patch_ok(
        &server,
        &other,
        json!([{"op": "add", "path": path, "value": "BPO-1"}]),
    )
    .await;
    // Both filter forms: dotted and with the complex attribute's filter.
    assert_eq!(
        find(&server, &format!("{path} eq \"BPO-9\"")).await,
        ["gc@contoso.com"]
    );
    assert_eq!(
        find(
            &server,
            &format!("{GENESYS}:customFields[BPO_Vendor_ID eq \"BPO-1\"]")
        )
        .await,
        ["other@contoso.com"]
    );
    // Case-insensitive path names, as for core attributes.
    assert_eq!(
        find(
            &server,
            &format!(
                "{}:CUSTOMFIELDS.bpo_vendor_id eq \"BPO-9\"",
                GENESYS.to_ascii_uppercase()
            )
        )
        .await,
        ["gc@contoso.com"]
    );
    // PATCH remove of the dotted path.
    patch_ok(&server, &id, json!([{"op": "Remove", "path": path}])).await;
    let got = get_user(&server, &id).await;
    assert!(
        got[GENESYS]["customFields"].get("BPO_Vendor_ID").is_none(),
        "{got}"
    );
    assert_eq!(got[GENESYS]["customFields"]["Agent_Tier"], 2, "{got}");
    assert!(find(&server, &format!("{path} eq \"BPO-9\""))
        .await
        .is_empty());
}

#[tokio::test]
async fn wrong_types_are_refused_naming_the_path() {
    let server = server_with_extensions().await;
    let bad_bodies = [
        (
            format!("{CONTOSO}:tier"),
            json!({CONTOSO: {"tier": "three"}}),
        ),
        (format!("{CONTOSO}:tier"), json!({CONTOSO: {"tier": 2.5}})),
        (
            format!("{CONTOSO}:remote"),
            json!({CONTOSO: {"remote": "maybe"}}),
        ),
        (
            format!("{CONTOSO}:hired"),
            json!({CONTOSO: {"hired": "yesterday"}}),
        ),
        (
            format!("{CONTOSO}:rate"),
            json!({CONTOSO: {"rate": "fast"}}),
        ),
        (
            format!("{CONTOSO}:badge"),
            json!({CONTOSO: {"badge": "not base64!"}}),
        ),
        (format!("{CONTOSO}:region"), json!({CONTOSO: {"region": 7}})),
        (
            format!("{CONTOSO}:region"),
            json!({CONTOSO: {"region": ["APAC", "EMEA"]}}),
        ),
        (
            format!("{CONTOSO}:skills"),
            json!({CONTOSO: {"skills": [1, 2]}}),
        ),
        (
            format!("{CONTOSO}:location.floor"),
            json!({CONTOSO: {"location": {"floor": "ground"}}}),
        ),
        (
            format!("{GENESYS}:customFields.BPO_Vendor_ID"),
            json!({format!("{GENESYS}:customFields.BPO_Vendor_ID"): 42}),
        ),
    ];
    for (index, (path, extra)) in bad_bodies.iter().enumerate() {
        let mut body = user(&format!("bad{index}@contoso.com"));
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let reply = server.post("/Users", body).await;
        assert_scim_error(&reply, StatusCode::BAD_REQUEST);
        assert!(
            detail(&reply).contains(path.as_str()),
            "detail should name {path}: {}",
            reply.body
        );
    }
    assert!(find(&server, "userName sw \"bad\"").await.is_empty());

    let id = create(&server, entra_user("ann@contoso.com", "APAC", "CC-1")).await;
    let before = get_user(&server, &id).await;
    for (path, value) in [
        (format!("{CONTOSO}:tier"), json!("x")),
        (format!("{CONTOSO}:remote"), json!("yes")),
        (format!("{GENESYS}:customFields.Agent_Tier"), json!("two")),
        (format!("{CONTOSO}:location.floor"), json!(true)),
    ] {
        let reply = patch(
            &server,
            &id,
            json!([{"op": "replace", "path": path, "value": value}]),
        )
        .await;
        assert_scim_error(&reply, StatusCode::BAD_REQUEST);
        assert!(
            detail(&reply).contains(path.as_str()),
            "detail should name {path}: {}",
            reply.body
        );
    }
    // A failed operation leaves the resource as it was, even after a good one.
    let reply = patch(
        &server,
        &id,
        json!([
            {"op": "replace", "path": format!("{CONTOSO}:region"), "value": "EMEA"},
            {"op": "replace", "path": format!("{CONTOSO}:tier"), "value": "x"}
        ]),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(get_user(&server, &id).await, before);
}

#[tokio::test]
async fn filters_sort_and_projection_on_custom_paths() {
    let server = server_with_extensions().await;
    for (name, region, tier, cost_center) in [
        ("ann@contoso.com", "APAC", 3, "CC-1"),
        ("bob@contoso.com", "EMEA", 1, "CC-2"),
        ("cy@contoso.com", "apac-south", 2, "CC-3"),
    ] {
        let mut body = entra_user(name, region, cost_center);
        body[CONTOSO]["tier"] = json!(tier);
        create(&server, body).await;
    }
    create(&server, user("dee@contoso.com")).await;

    assert_eq!(
        find(&server, &format!("{CONTOSO}:region eq \"APAC\"")).await,
        ["ann@contoso.com"]
    );
    // caseExact false: eq is case-insensitive, as for core strings.
    assert_eq!(
        find(&server, &format!("{CONTOSO}:region eq \"apac\"")).await,
        ["ann@contoso.com"]
    );
    let mut starts = find(&server, &format!("{CONTOSO}:region sw \"APAC\"")).await;
    starts.sort();
    assert_eq!(starts, ["ann@contoso.com", "cy@contoso.com"]);
    assert_eq!(
        find(
            &server,
            &format!("{CONTOSO}:tier gt 1 and {CONTOSO}:costCenter eq \"CC-3\"")
        )
        .await,
        ["cy@contoso.com"]
    );
    assert_eq!(
        find(&server, &format!("{CONTOSO}:region pr")).await.len(),
        3
    );
    assert_eq!(
        find(&server, &format!("not ({CONTOSO}:region pr)")).await,
        ["dee@contoso.com"]
    );
    // A filter on an attribute no schema declares is an error, not an
    // empty result.
    let unknown = server
        .get(&format!(
            "/Users?filter={}",
            encode(&format!("{CONTOSO}:regoin eq \"APAC\""))
        ))
        .await;
    assert_scim_error(&unknown, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["scimType"], "invalidFilter");
    // The same filter through POST /.search.
    let searched = server
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": format!("{CONTOSO}:region eq \"EMEA\""),
                   "attributes": [format!("{CONTOSO}:region")]}),
        )
        .await;
    assert_eq!(searched.status, StatusCode::OK, "{}", searched.body);
    assert_eq!(searched.body["totalResults"], 1);
    assert_eq!(
        searched.body["Resources"][0][CONTOSO],
        json!({"region": "EMEA"})
    );

    // sortBy a custom integer, both orders.
    let sorted = |order: &'static str| {
        let server = &server;
        async move {
            let reply = server
                .get(&format!(
                    "/Users?filter={}&sortBy={}&sortOrder={order}",
                    encode(&format!("{CONTOSO}:tier pr")),
                    encode(&format!("{CONTOSO}:tier"))
                ))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sorted("ascending").await,
        ["bob@contoso.com", "cy@contoso.com", "ann@contoso.com"]
    );
    assert_eq!(
        sorted("descending").await,
        ["ann@contoso.com", "cy@contoso.com", "bob@contoso.com"]
    );

    // attributes= with a custom path returns it (and id), not the rest.
    let reply = server
        .get(&format!(
            "/Users?filter={}&attributes={}",
            encode("userName eq \"ann@contoso.com\""),
            encode(&format!("{CONTOSO}:region"))
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let only = &reply.body["Resources"][0];
    assert_eq!(only[CONTOSO], json!({"region": "APAC"}), "{only}");
    assert!(only.get("userName").is_none(), "{only}");
    assert!(only.get(ENTERPRISE).is_none(), "{only}");
    assert!(only["id"].is_string());
    // attributes= with the extension URN returns the whole extension.
    let reply = server
        .get(&format!(
            "/Users?filter={}&attributes={}",
            encode("userName eq \"ann@contoso.com\""),
            encode(CONTOSO)
        ))
        .await;
    assert_eq!(
        reply.body["Resources"][0][CONTOSO],
        json!({"region": "APAC", "costCenter": "CC-1", "tier": 3}),
        "{}",
        reply.body
    );
    // excludedAttributes= with a custom path drops only it.
    let id = reply.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = server
        .get(&format!(
            "/Users/{id}?excludedAttributes={}",
            encode(&format!("{CONTOSO}:costCenter,{CONTOSO}:tier"))
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body[CONTOSO],
        json!({"region": "APAC"}),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["userName"], "ann@contoso.com");
    assert_eq!(reply.body[ENTERPRISE]["department"], "Operations");
    // An unknown name in attributes is refused with a suggestion.
    let reply = server
        .get(&format!(
            "/Users/{id}?attributes={}",
            encode(&format!("{CONTOSO}:regoin"))
        ))
        .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert!(
        detail(&reply).contains(&format!("{CONTOSO}:region")),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn uniqueness_server_is_enforced_on_custom_attributes() {
    let server = server_with_extensions().await;
    let code = format!("{CONTOSO}:employeeCode");
    let first = create(
        &server,
        json!({"schemas": [USER], "userName": "a@contoso.com", code.clone(): "E-1"}),
    )
    .await;
    for (name, value) in [("b@contoso.com", "E-1"), ("c@contoso.com", "e-1")] {
        let clash = server
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": name, code.clone(): value}),
            )
            .await;
        assert_scim_error(&clash, StatusCode::CONFLICT);
        assert_eq!(clash.body["scimType"], "uniqueness", "{}", clash.body);
        assert!(
            detail(&clash).to_ascii_lowercase().contains("employeecode"),
            "{}",
            clash.body
        );
    }
    assert!(find(&server, "userName eq \"b@contoso.com\"")
        .await
        .is_empty());
    let second = create(
        &server,
        json!({"schemas": [USER], "userName": "b@contoso.com", code.clone(): "E-2"}),
    )
    .await;
    // PATCH and PUT into a clash are refused too.
    let clash = patch(
        &server,
        &second,
        json!([{"op": "replace", "path": code, "value": "E-1"}]),
    )
    .await;
    assert_scim_error(&clash, StatusCode::CONFLICT);
    assert_eq!(clash.body["scimType"], "uniqueness");
    let clash = server
        .put(
            &format!("/Users/{second}"),
            json!({"schemas": [USER], "userName": "b@contoso.com", CONTOSO: {"employeeCode": "E-1"}}),
        )
        .await;
    assert_scim_error(&clash, StatusCode::CONFLICT);
    assert_eq!(
        get_user(&server, &second).await[CONTOSO]["employeeCode"],
        "E-2"
    );
    // A resource keeping its own value is no clash; a freed value is free.
    patch_ok(
        &server,
        &first,
        json!([{"op": "replace", "path": code, "value": "E-1"},
               {"op": "replace", "path": format!("{CONTOSO}:region"), "value": "APAC"}]),
    )
    .await;
    patch_ok(&server, &first, json!([{"op": "remove", "path": code}])).await;
    patch_ok(
        &server,
        &second,
        json!([{"op": "replace", "path": code, "value": "E-1"}]),
    )
    .await;
}

// 3. Clearing: null, "" and [] clear the attribute.

#[tokio::test]
async fn null_empty_and_empty_list_clear_custom_attributes() {
    let server = server_with_extensions().await;
    let region_pr = format!("{CONTOSO}:region pr");
    let bpo = format!("{GENESYS}:customFields.BPO_Vendor_ID");

    // POST: absent values are not stored.
    let id = create(
        &server,
        json!({"schemas": [USER], "userName": "post@contoso.com",
               CONTOSO: {"region": null, "costCenter": "", "skills": [], "tier": 1},
               bpo.clone(): ""}),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert_eq!(got[CONTOSO], json!({"tier": 1}), "{got}");
    assert!(got.get(GENESYS).is_none(), "{got}");
    assert!(find(&server, &region_pr).await.is_empty());
    assert!(find(&server, &format!("{bpo} pr")).await.is_empty());

    let full = || {
        json!({"schemas": [USER], "userName": "clear@contoso.com",
               CONTOSO: {"region": "APAC", "costCenter": "CC-1", "skills": ["voice"], "tier": 2,
                         "location": {"building": "B1"}},
               bpo.clone(): "BPO-1"})
    };
    let id = create(&server, full()).await;
    assert_eq!(find(&server, &region_pr).await, ["clear@contoso.com"]);

    // PATCH with a path: null, "" and [] each clear.
    for (attribute, value) in [
        ("region", json!(null)),
        ("costCenter", json!("")),
        ("skills", json!([])),
        ("location", json!({})),
    ] {
        patch_ok(
            &server,
            &id,
            json!([{"op": "Replace", "path": format!("{CONTOSO}:{attribute}"), "value": value}]),
        )
        .await;
        let got = get_user(&server, &id).await;
        assert!(
            got[CONTOSO].get(attribute).is_none(),
            "{attribute} not cleared by {value}: {got}"
        );
        assert!(
            find(&server, &format!("{CONTOSO}:{attribute} pr"))
                .await
                .is_empty(),
            "{attribute} pr still matches"
        );
    }
    patch_ok(
        &server,
        &id,
        json!([{"op": "Add", "path": bpo, "value": null}]),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert!(got.get(GENESYS).is_none(), "{got}");
    assert!(find(&server, &format!("{bpo} pr")).await.is_empty());
    assert_eq!(got[CONTOSO], json!({"tier": 2}), "{got}");

    // PATCH without a path: URN-qualified keys with null and "".
    let id = create(&server, {
        let mut body = full();
        body["userName"] = json!("pathless@contoso.com");
        body
    })
    .await;
    patch_ok(
        &server,
        &id,
        json!([{"op": "replace", "value": {
            format!("{CONTOSO}:region"): null,
            format!("{CONTOSO}:costCenter"): "",
            format!("{CONTOSO}:skills"): [],
            bpo.clone(): null
        }}]),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert_eq!(
        got[CONTOSO],
        json!({"tier": 2, "location": {"building": "B1"}}),
        "{got}"
    );
    assert!(got.get(GENESYS).is_none(), "{got}");
    // And in the nested-object form.
    patch_ok(
        &server,
        &id,
        json!([{"op": "replace", "value": {CONTOSO: {"tier": null, "location": null}}}]),
    )
    .await;
    let got = get_user(&server, &id).await;
    assert!(got.get(CONTOSO).is_none(), "{got}");
    assert!(
        !got["schemas"].as_array().unwrap().contains(&json!(CONTOSO)),
        "an extension without values is not listed in schemas: {got}"
    );

    // PUT: null, "" and [] in the replacement clear.
    let id = create(&server, {
        let mut body = full();
        body["userName"] = json!("put@contoso.com");
        body
    })
    .await;
    let reply = server
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER], "userName": "put@contoso.com",
                   CONTOSO: {"region": null, "costCenter": "", "skills": [], "tier": 2},
                   bpo.clone(): null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let got = get_user(&server, &id).await;
    assert_eq!(got[CONTOSO], json!({"tier": 2}), "{got}");
    assert!(got.get(GENESYS).is_none(), "{got}");
    assert!(find(&server, &region_pr).await.is_empty());
    assert!(find(&server, &format!("{CONTOSO}:skills pr"))
        .await
        .is_empty());
    assert!(find(&server, &format!("{bpo} pr")).await.is_empty());

    // PATCH remove with the extension's URN clears the whole extension.
    let id = create(&server, {
        let mut body = full();
        body["userName"] = json!("whole@contoso.com");
        body
    })
    .await;
    patch_ok(&server, &id, json!([{"op": "remove", "path": CONTOSO}])).await;
    let got = get_user(&server, &id).await;
    assert!(got.get(CONTOSO).is_none(), "{got}");
    assert_eq!(
        got[GENESYS]["customFields"]["BPO_Vendor_ID"], "BPO-1",
        "{got}"
    );
    assert!(find(&server, &region_pr).await.is_empty());
}

// 4. Undeclared attributes: rejected by default, captured on request.

fn regoin_body(user_name: &str) -> Value {
    json!({"schemas": [USER, CONTOSO], "userName": user_name,
           format!("{CONTOSO}:regoin"): "APAC"})
}

fn assert_regoin_refusal(reply: &Reply) {
    assert_scim_error(reply, StatusCode::BAD_REQUEST);
    let scim_type = reply.body["scimType"].as_str().unwrap_or_default();
    assert!(
        ["invalidValue", "invalidSyntax", "invalidPath"].contains(&scim_type),
        "{}",
        reply.body
    );
    let detail = detail(reply);
    assert!(
        detail.contains(&format!("{CONTOSO}:regoin")),
        "names the full path: {detail}"
    );
    assert!(
        detail.contains(&format!("did you mean '{CONTOSO}:region'")),
        "suggests region: {detail}"
    );
    assert!(
        detail.contains("/admin/v1/schemas"),
        "says how to declare it: {detail}"
    );
}

#[tokio::test]
async fn undeclared_attributes_are_rejected_by_default() {
    let server = server_with_extensions().await;
    let settings = server.admin(Method::GET, "/settings", None).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_eq!(settings.body["undeclaredAttributes"], "reject");

    // POST: URN-qualified key and nested form.
    assert_regoin_refusal(&server.post("/Users", regoin_body("typo@contoso.com")).await);
    let nested = server
        .post(
            "/Users",
            json!({"schemas": [USER, CONTOSO], "userName": "typo@contoso.com",
                   CONTOSO: {"region": "APAC", "regoin": "APAC"}}),
        )
        .await;
    assert_regoin_refusal(&nested);
    assert!(find(&server, "userName eq \"typo@contoso.com\"")
        .await
        .is_empty());
    // An unknown core attribute and an unknown extension are refused too.
    let unknown_core = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "typo@contoso.com", "usrName": "x"}),
        )
        .await;
    assert_scim_error(&unknown_core, StatusCode::BAD_REQUEST);
    assert!(
        detail(&unknown_core).contains("usrName"),
        "{}",
        unknown_core.body
    );
    let unknown_urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let unknown_extension = server
        .post(
            "/Users",
            json!({"schemas": [USER, unknown_urn], "userName": "typo@contoso.com",
                   unknown_urn: {"badge": "1"}}),
        )
        .await;
    assert_scim_error(&unknown_extension, StatusCode::BAD_REQUEST);
    assert!(
        detail(&unknown_extension).contains(unknown_urn),
        "{}",
        unknown_extension.body
    );
    assert!(find(&server, "userName eq \"typo@contoso.com\"")
        .await
        .is_empty());
    assert!(explain(&server)
        .await
        .iter()
        .all(|row| row["declared"] == true));

    // PATCH with the path, and path-less.
    let id = create(&server, entra_user("ann@contoso.com", "APAC", "CC-1")).await;
    let before = get_user(&server, &id).await;
    let reply = patch(
        &server,
        &id,
        json!([{"op": "Replace", "path": format!("{CONTOSO}:regoin"), "value": "EMEA"}]),
    )
    .await;
    assert_regoin_refusal(&reply);
    let reply = patch(
        &server,
        &id,
        json!([{"op": "replace", "value": {format!("{CONTOSO}:regoin"): "EMEA"}}]),
    )
    .await;
    assert_regoin_refusal(&reply);
    // PATCH with the extension's URN as the path, the key inside the value.
    let reply = patch(
        &server,
        &id,
        json!([{"op": "add", "path": CONTOSO, "value": {"regoin": "EMEA"}}]),
    )
    .await;
    assert_regoin_refusal(&reply);
    // PUT too.
    let mut body = entra_user("ann@contoso.com", "APAC", "CC-1");
    body[format!("{CONTOSO}:regoin")] = json!("EMEA");
    assert_regoin_refusal(&server.put(&format!("/Users/{id}"), body).await);
    assert_eq!(get_user(&server, &id).await, before);
    assert_eq!(stored(&server, &id).await["unmapped"], json!({}));
}

#[tokio::test]
async fn undeclared_attributes_are_captured_when_the_tenant_asks() {
    let server = server_with_extensions().await;
    let regoin = format!("{CONTOSO}:regoin");
    let bad = server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "drop"})),
        )
        .await;
    assert_scim_error(&bad, StatusCode::BAD_REQUEST);
    let set = server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "capture"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        server.admin(Method::GET, "/settings", None).await.body["undeclaredAttributes"],
        "capture"
    );

    // The same POST now succeeds; the value is kept apart, never returned.
    let mut body = regoin_body("typo@contoso.com");
    body[CONTOSO] = json!({"region": "EMEA"});
    let created = server.post("/Users", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(
        !created.body.to_string().contains("regoin"),
        "{}",
        created.body
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let got = get_user(&server, &id).await;
    assert!(!got.to_string().contains("regoin"), "{got}");
    assert_eq!(got[CONTOSO], json!({"region": "EMEA"}));
    let admin_view = stored(&server, &id).await;
    assert_eq!(
        admin_view["unmapped"],
        json!({regoin.clone(): "APAC"}),
        "{admin_view}"
    );
    assert_eq!(admin_view["resource"][CONTOSO]["region"], "EMEA");
    assert!(!admin_view["resource"].to_string().contains("regoin"));
    // Captured values are not filterable as if declared.
    let filtered = server
        .get(&format!(
            "/Users?filter={}",
            encode(&format!("{regoin} eq \"APAC\""))
        ))
        .await;
    assert_scim_error(&filtered, StatusCode::BAD_REQUEST);

    let rows = explain(&server).await;
    let captured = row(&rows, "User", &regoin).unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(captured["declared"], false, "{captured}");
    assert_eq!(captured["holders"], 1, "{captured}");
    assert_eq!(captured["lastClient"], "test-admin", "{captured}");
    assert!(captured["lastSet"].is_string(), "{captured}");

    // Declared values are still validated under capture.
    let mut wrong = regoin_body("wrong@contoso.com");
    wrong[format!("{CONTOSO}:tier")] = json!("x");
    assert_scim_error(&server.post("/Users", wrong).await, StatusCode::BAD_REQUEST);

    // PATCH sets, changes and removes captured values; declared ones apply too.
    patch_ok(
        &server,
        &id,
        json!([
            {"op": "Replace", "path": regoin, "value": "AMER"},
            {"op": "add", "value": {"favouriteColour": "teal",
                                     format!("{CONTOSO}:costCenter"): "CC-9"}}
        ]),
    )
    .await;
    let admin_view = stored(&server, &id).await;
    assert_eq!(
        admin_view["unmapped"],
        json!({regoin.clone(): "AMER", "favouriteColour": "teal"}),
        "{admin_view}"
    );
    assert_eq!(admin_view["resource"][CONTOSO]["costCenter"], "CC-9");
    let got = get_user(&server, &id).await;
    assert!(!got.to_string().contains("AMER"), "{got}");
    assert!(!got.to_string().contains("teal"), "{got}");
    // Nor in a list, whatever is asked for.
    let listed = server
        .get(&format!(
            "/Users?filter={}&attributes={}",
            encode("userName eq \"typo@contoso.com\""),
            encode(CONTOSO)
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["totalResults"], 1);
    assert!(!listed.body.to_string().contains("AMER"), "{}", listed.body);
    patch_ok(&server, &id, json!([{"op": "remove", "path": regoin}])).await;
    assert_eq!(
        stored(&server, &id).await["unmapped"],
        json!({"favouriteColour": "teal"})
    );

    // A PATCH that only touches declared attributes keeps captured values,
    // even after the tenant goes back to reject.
    let set = server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "reject"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    patch_ok(
        &server,
        &id,
        json!([{"op": "replace", "path": format!("{CONTOSO}:region"), "value": "APAC"}]),
    )
    .await;
    assert_eq!(
        stored(&server, &id).await["unmapped"],
        json!({"favouriteColour": "teal"})
    );
    assert_regoin_refusal(
        &server
            .post("/Users", regoin_body("again@contoso.com"))
            .await,
    );

    // Under capture, a whole undeclared extension is kept, and a PUT
    // replaces the captured values along with the resource.
    server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "capture"})),
        )
        .await;
    let acme = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let reply = server
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER, acme], "userName": "typo@contoso.com",
                   acme: {"badge": "B-1"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(!reply.body.to_string().contains("B-1"), "{}", reply.body);
    let admin_view = stored(&server, &id).await;
    assert_eq!(
        admin_view["unmapped"],
        json!({acme: {"badge": "B-1"}}),
        "{admin_view}"
    );
}

// 5. Evolution online.

async fn schema_of(server: &TestServer, urn: &str) -> Value {
    let reply = server.get(&format!("/Schemas/{urn}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn has_attribute(schema: &Value, name: &str) -> bool {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == name)
}

/// The Contoso schema with one attribute's definition replaced or removed.
fn contoso_with(name: &str, definition: Option<Value>) -> Value {
    let mut schema = contoso_schema();
    let attributes = schema["attributes"].as_array_mut().unwrap();
    let index = attributes.iter().position(|a| a["name"] == name).unwrap();
    match definition {
        Some(definition) => attributes[index] = definition,
        None => {
            attributes.remove(index);
        }
    }
    schema
}

#[tokio::test]
async fn adding_attributes_and_schemas_needs_no_restart() {
    let server = server_with_extensions().await;
    let id = create(&server, entra_user("ann@contoso.com", "APAC", "CC-1")).await;
    // Before: refused.
    let early = patch(
        &server,
        &id,
        json!([{"op": "add", "path": format!("{CONTOSO}:languageFluency"), "value": ["en", "ja"]}]),
    )
    .await;
    assert_scim_error(&early, StatusCode::BAD_REQUEST);

    let mut schema = contoso_schema();
    schema["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "languageFluency", "type": "string", "multiValued": true}));
    let reply = put_schema(&server, CONTOSO, "", schema).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["created"], false);
    assert_eq!(reply.body["applied"], true);
    assert_eq!(
        reply.body["changes"]["added"],
        json!([format!("{CONTOSO}:languageFluency")]),
        "{}",
        reply.body
    );
    assert!(has_attribute(
        &schema_of(&server, CONTOSO).await,
        "languageFluency"
    ));
    patch_ok(
        &server,
        &id,
        json!([{"op": "add", "path": format!("{CONTOSO}:languageFluency"), "value": ["en", "ja"]}]),
    )
    .await;
    assert_eq!(
        find(&server, &format!("{CONTOSO}:languageFluency eq \"ja\"")).await,
        ["ann@contoso.com"]
    );
    let got = get_user(&server, &id).await;
    assert_eq!(got[CONTOSO]["languageFluency"], json!(["en", "ja"]));
    assert_eq!(
        got[CONTOSO]["region"], "APAC",
        "existing values survive: {got}"
    );
}

#[tokio::test]
async fn removing_an_attribute_that_holds_values_needs_force() {
    let server = server_with_extensions().await;
    let ann = create(&server, entra_user("ann@contoso.com", "APAC", "CC-100")).await;
    let bob = create(&server, entra_user("bob@contoso.com", "EMEA", "CC-200")).await;
    create(&server, user("cy@contoso.com")).await;
    let without_cost_center = contoso_with("costCenter", None);

    // A dry run reports who holds values.
    let dry = put_schema(
        &server,
        CONTOSO,
        "?dryRun=true",
        without_cost_center.clone(),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(
        dry.body["removedValues"],
        json!([{"path": format!("{CONTOSO}:costCenter"), "holders": 2}]),
        "{}",
        dry.body
    );

    // Without force: 409, nothing changed.
    let refused = put_schema(&server, CONTOSO, "", without_cost_center.clone()).await;
    assert_scim_error(&refused, StatusCode::CONFLICT);
    assert!(detail(&refused).contains("force"), "{}", refused.body);
    assert!(
        detail(&refused).contains(&format!("{CONTOSO}:costCenter")),
        "{}",
        refused.body
    );
    assert!(has_attribute(
        &schema_of(&server, CONTOSO).await,
        "costCenter"
    ));
    assert_eq!(
        get_user(&server, &ann).await[CONTOSO]["costCenter"],
        "CC-100"
    );
    assert_eq!(
        find(&server, &format!("{CONTOSO}:costCenter eq \"CC-200\"")).await,
        ["bob@contoso.com"]
    );

    let before = server
        .store
        .changes(&TenantId::default_tenant(), 0, 10_000)
        .await
        .unwrap()
        .last()
        .map_or(0, |change| change.sequence);

    // With force: the values go, and the change log keeps them.
    let forced = put_schema(&server, CONTOSO, "?force=true", without_cost_center).await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.body);
    assert_eq!(forced.body["applied"], true);
    assert_eq!(forced.body["rewritten"], 2, "{}", forced.body);
    assert!(!has_attribute(
        &schema_of(&server, CONTOSO).await,
        "costCenter"
    ));
    for id in [&ann, &bob] {
        let got = get_user(&server, id).await;
        assert!(got[CONTOSO].get("costCenter").is_none(), "{got}");
        assert!(got[CONTOSO]["region"].is_string(), "{got}");
    }
    let filter = server
        .get(&format!(
            "/Users?filter={}",
            encode(&format!("{CONTOSO}:costCenter pr"))
        ))
        .await;
    assert_scim_error(&filter, StatusCode::BAD_REQUEST);

    let changes = server
        .store
        .changes(&TenantId::default_tenant(), before, 10_000)
        .await
        .unwrap();
    assert!(
        changes
            .iter()
            .any(|change| change.kind == ChangeKind::Schema
                && change.resource_id.0.eq_ignore_ascii_case(CONTOSO)),
        "{changes:?}"
    );
    for (id, value) in [(&ann, "CC-100"), (&bob, "CC-200")] {
        let update = changes
            .iter()
            .find(|change| change.kind == ChangeKind::Update && &change.resource_id.0 == id)
            .unwrap_or_else(|| panic!("no update for {id}: {changes:?}"));
        let removed = update.payload.removed().map(Value::to_string);
        let removed = removed.unwrap_or_default();
        assert!(
            removed.contains(value) && removed.contains("costCenter"),
            "{:?}",
            update.payload
        );
        assert!(update.payload.resource().unwrap()[CONTOSO]
            .get("costCenter")
            .is_none());
        assert_eq!(update.actor.client, "test-admin");
    }

    // Deleting a whole schema that holds values: the same rules.
    let gc = create(
        &server,
        json!({"schemas": [USER], "userName": "gc@contoso.com",
               format!("{GENESYS}:customFields.BPO_Vendor_ID"): "BPO-7"}),
    )
    .await;
    let refused = server
        .admin(Method::DELETE, &format!("/schemas/{GENESYS}"), None)
        .await;
    assert_scim_error(&refused, StatusCode::CONFLICT);
    assert!(detail(&refused).contains("force"), "{}", refused.body);
    assert_eq!(
        get_user(&server, &gc).await[GENESYS]["customFields"]["BPO_Vendor_ID"],
        "BPO-7"
    );
    let dry = server
        .admin(
            Method::DELETE,
            &format!("/schemas/{GENESYS}?dryRun=true"),
            None,
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(dry.body["removedValues"][0]["holders"], 1, "{}", dry.body);
    assert_eq!(
        server.get(&format!("/Schemas/{GENESYS}")).await.status,
        StatusCode::OK
    );
    let deleted = server
        .admin(
            Method::DELETE,
            &format!("/schemas/{GENESYS}?force=true"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["applied"], true);
    assert_eq!(
        server.get(&format!("/Schemas/{GENESYS}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(extension_of(&server.get("/ResourceTypes/User").await.body, GENESYS).is_none());
    let got = get_user(&server, &gc).await;
    assert!(got.get(GENESYS).is_none(), "{got}");
    assert!(
        !got["schemas"].as_array().unwrap().contains(&json!(GENESYS)),
        "{got}"
    );
    let changes = server
        .store
        .changes(&TenantId::default_tenant(), 0, 10_000)
        .await
        .unwrap();
    let update = changes
        .iter()
        .rev()
        .find(|change| change.kind == ChangeKind::Update && change.resource_id.0 == gc)
        .unwrap();
    assert!(
        update
            .payload
            .removed()
            .is_some_and(|removed| removed.to_string().contains("BPO-7")),
        "{:?}",
        update.payload
    );
    // The schema is gone for the admin API too.
    let gone = server
        .admin(Method::GET, &format!("/schemas/{GENESYS}"), None)
        .await;
    assert_scim_error(&gone, StatusCode::NOT_FOUND);

    // Removing an attribute nobody holds needs no force.
    let reply = put_schema(&server, CONTOSO, "", {
        let mut schema = contoso_with("costCenter", None);
        let attributes = schema["attributes"].as_array_mut().unwrap();
        attributes.retain(|a| a["name"] != "badge");
        schema
    })
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["removedValues"], json!([]));
}

#[tokio::test]
async fn type_changes_are_reported_and_refused_unless_every_value_converts() {
    let server = server_with_extensions().await;
    let mut ann_body = entra_user("ann@contoso.com", "APAC", "abc");
    ann_body[CONTOSO]["tier"] = json!(2);
    let ann = create(&server, ann_body).await;
    let mut bob_body = entra_user("bob@contoso.com", "EMEA", "123");
    bob_body[CONTOSO]["tier"] = json!(3);
    let bob = create(&server, bob_body).await;

    // tier: integer to string converts every value.
    let tier_as_string = contoso_with("tier", Some(json!({"name": "tier", "type": "string"})));
    let dry = put_schema(&server, CONTOSO, "?dryRun=true", tier_as_string.clone()).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(dry.body["conversionFailureCount"], 0);
    assert_eq!(
        dry.body["changes"]["typeChanges"][0]["path"],
        format!("{CONTOSO}:tier"),
        "{}",
        dry.body
    );
    // The dry run changed nothing.
    assert_eq!(get_user(&server, &ann).await[CONTOSO]["tier"], 2);
    assert_eq!(
        schema_attribute(&schema_of(&server, CONTOSO).await, "tier")["type"],
        "integer"
    );
    let applied = put_schema(&server, CONTOSO, "", tier_as_string).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["applied"], true);
    assert_eq!(applied.body["rewritten"], 2, "{}", applied.body);
    assert_eq!(
        schema_attribute(&schema_of(&server, CONTOSO).await, "tier")["type"],
        "string"
    );
    assert_eq!(get_user(&server, &ann).await[CONTOSO]["tier"], "2");
    assert_eq!(get_user(&server, &bob).await[CONTOSO]["tier"], "3");
    assert_eq!(
        find(&server, &format!("{CONTOSO}:tier eq \"3\"")).await,
        ["bob@contoso.com"]
    );
    // New writes follow the new type at once.
    let reply = patch(
        &server,
        &ann,
        json!([{"op": "replace", "path": format!("{CONTOSO}:tier"), "value": 5}]),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    patch_ok(
        &server,
        &ann,
        json!([{"op": "replace", "path": format!("{CONTOSO}:tier"), "value": "gold"}]),
    )
    .await;

    // costCenter: string to integer cannot convert "abc" (the schema keeps
    // tier a string, as now stored).
    let cost_center_as_integer = {
        let mut schema = contoso_with("tier", Some(json!({"name": "tier", "type": "string"})));
        let attributes = schema["attributes"].as_array_mut().unwrap();
        let cost_center = attributes
            .iter_mut()
            .find(|a| a["name"] == "costCenter")
            .unwrap();
        *cost_center = json!({"name": "costCenter", "type": "integer"});
        schema
    };
    let dry = put_schema(
        &server,
        CONTOSO,
        "?dryRun=true",
        cost_center_as_integer.clone(),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(dry.body["conversionFailureCount"], 1, "{}", dry.body);
    assert_eq!(
        dry.body["changes"]["typeChanges"],
        json!([{"path": format!("{CONTOSO}:costCenter"), "old": "string", "new": "integer"}]),
        "{}",
        dry.body
    );
    let failure = &dry.body["conversionFailures"][0];
    assert_eq!(failure["id"], ann.as_str(), "{failure}");
    assert_eq!(failure["value"], "abc", "{failure}");
    assert_eq!(
        failure["path"],
        format!("{CONTOSO}:costCenter"),
        "{failure}"
    );
    assert!(failure["reason"].is_string());

    let refused = put_schema(&server, CONTOSO, "", cost_center_as_integer.clone()).await;
    assert_scim_error(&refused, StatusCode::CONFLICT);
    assert!(detail(&refused).contains("abc"), "{}", refused.body);
    assert!(detail(&refused).contains(&ann), "{}", refused.body);
    // force does not override a failed conversion.
    let forced = put_schema(
        &server,
        CONTOSO,
        "?force=true",
        cost_center_as_integer.clone(),
    )
    .await;
    assert_scim_error(&forced, StatusCode::CONFLICT);
    // Nothing changed.
    assert_eq!(
        schema_attribute(&schema_of(&server, CONTOSO).await, "costCenter")["type"],
        "string"
    );
    assert_eq!(get_user(&server, &ann).await[CONTOSO]["costCenter"], "abc");
    assert_eq!(get_user(&server, &bob).await[CONTOSO]["costCenter"], "123");
    assert_eq!(
        find(&server, &format!("{CONTOSO}:costCenter eq \"123\"")).await,
        ["bob@contoso.com"]
    );

    // Once the bad value is fixed, the change goes through and converts.
    patch_ok(
        &server,
        &ann,
        json!([{"op": "replace", "path": format!("{CONTOSO}:costCenter"), "value": "456"}]),
    )
    .await;
    let applied = put_schema(&server, CONTOSO, "", cost_center_as_integer).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["rewritten"], 2, "{}", applied.body);
    assert_eq!(get_user(&server, &ann).await[CONTOSO]["costCenter"], 456);
    assert_eq!(get_user(&server, &bob).await[CONTOSO]["costCenter"], 123);
    assert_eq!(get_user(&server, &ann).await[CONTOSO]["tier"], "gold");
    assert_eq!(
        find(&server, &format!("{CONTOSO}:costCenter gt 200")).await,
        ["ann@contoso.com"]
    );
}

#[tokio::test]
async fn making_an_extension_required_is_refused_while_resources_lack_it() {
    let server = server_with_extensions().await;
    create(&server, user("plain@contoso.com")).await;
    let reply = put_schema(&server, GENESYS, "?required=true", genesys_schema()).await;
    assert_scim_error(&reply, StatusCode::CONFLICT);
    let user_type = server.get("/ResourceTypes/User").await;
    assert_eq!(
        extension_of(&user_type.body, GENESYS).unwrap()["required"],
        false
    );
    // A new required extension on a type with no resources is fine, and
    // then enforced.
    let reply = put_schema(
        &server,
        CONTOSO_GROUP,
        "?required=true",
        json!({"attributes": [{"name": "queue", "type": "string"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["required"], true);
    let group_type = server.get("/ResourceTypes/Group").await;
    assert_eq!(
        extension_of(&group_type.body, CONTOSO_GROUP).unwrap()["required"],
        true
    );
    let missing = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "No queue"}),
        )
        .await;
    assert_scim_error(&missing, StatusCode::BAD_REQUEST);
    let ok = server
        .post(
            "/Groups",
            json!({"schemas": [GROUP, CONTOSO_GROUP], "displayName": "Queue",
                   CONTOSO_GROUP: {"queue": "Billing"}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

// 6. Explain.

#[tokio::test]
async fn explain_lists_every_path_with_usage() {
    let server = server_with_extensions().await;
    let entra = server
        .token_with("entra-provisioning", &["scim.write"])
        .await;
    let as_entra = |method: Method, path: String, body: Option<Value>| {
        let server = &server;
        let entra = entra.clone();
        async move {
            server
                .call_as(&entra, method, &format!("/scim/v2{path}"), body)
                .await
        }
    };
    let mut ids = Vec::new();
    for (name, region) in [("ann@contoso.com", "APAC"), ("bob@contoso.com", "EMEA")] {
        let reply = as_entra(
            Method::POST,
            "/Users".to_owned(),
            Some(entra_user(name, region, "CC-1")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    let reply = as_entra(
        Method::PATCH,
        format!("/Users/{}", ids[0]),
        Some(patch_body(json!([{"op": "add",
            "path": format!("{GENESYS}:customFields.BPO_Vendor_ID", ), "value": "BPO-7"}]))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    create(&server, user("cy@contoso.com")).await;

    let rows = explain(&server).await;
    let check = |resource_type: &str, path: &str, schema: &str, kind: &str, holders: u64| {
        let found = row(&rows, resource_type, path)
            .unwrap_or_else(|| panic!("no row for {resource_type} {path}"));
        assert_eq!(found["declared"], true, "{found}");
        assert_eq!(found["schema"], schema, "{found}");
        assert_eq!(found["type"], kind, "{found}");
        assert_eq!(found["holders"], holders, "{found}");
        found.clone()
    };
    // Core.
    let user_name = check("User", "userName", USER, "string", 3);
    assert_eq!(user_name["path"], "userName", "canonical spelling");
    assert_eq!(user_name["multiValued"], false);
    check("User", "name.givenName", USER, "string", 3);
    check("User", "emails.value", USER, "string", 0);
    let emails = check("User", "emails", USER, "complex", 0);
    assert_eq!(emails["multiValued"], true);
    check("Group", "displayName", GROUP, "string", 0);
    // Enterprise.
    let department = check(
        "User",
        &format!("{ENTERPRISE}:department"),
        ENTERPRISE,
        "string",
        2,
    );
    assert_eq!(department["lastClient"], "entra-provisioning");
    check(
        "User",
        &format!("{ENTERPRISE}:manager"),
        ENTERPRISE,
        "complex",
        0,
    );
    // Custom.
    let region = check("User", &format!("{CONTOSO}:region"), CONTOSO, "string", 2);
    assert_eq!(region["path"], format!("{CONTOSO}:region"));
    assert_eq!(region["lastClient"], "entra-provisioning", "{region}");
    let last_set = region["lastSet"].as_str().unwrap();
    assert!(
        last_set.len() >= 20 && last_set.starts_with("20") && last_set.contains('T'),
        "RFC 3339: {last_set}"
    );
    let tier = check("User", &format!("{CONTOSO}:tier"), CONTOSO, "integer", 0);
    assert!(
        tier["lastClient"].is_null() && tier["lastSet"].is_null(),
        "{tier}"
    );
    let skills = check("User", &format!("{CONTOSO}:skills"), CONTOSO, "string", 0);
    assert_eq!(skills["multiValued"], true);
    check(
        "User",
        &format!("{CONTOSO}:location.floor"),
        CONTOSO,
        "integer",
        0,
    );
    check("User", &format!("{CONTOSO}:hired"), CONTOSO, "dateTime", 0);
    let bpo = check(
        "User",
        &format!("{GENESYS}:customFields.BPO_Vendor_ID"),
        GENESYS,
        "string",
        1,
    );
    assert_eq!(bpo["path"], format!("{GENESYS}:customFields.BPO_Vendor_ID"));
    assert_eq!(bpo["lastClient"], "entra-provisioning");
    assert!(rows.iter().all(|row| row["declared"] == true));
    // Never-returned values are not explained as readable, but listed.
    assert!(row(&rows, "User", "password").is_some());

    // Another client sets a value: it becomes the last client; clearing
    // lowers the count but is not a set.
    patch_ok(
        &server,
        &ids[1],
        json!([{"op": "replace", "path": format!("{CONTOSO}:region"), "value": "AMER"}]),
    )
    .await;
    let reply = as_entra(
        Method::PATCH,
        format!("/Users/{}", ids[0]),
        Some(patch_body(
            json!([{"op": "remove", "path": format!("{CONTOSO}:region")}]),
        )),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rows = explain(&server).await;
    let region = row(&rows, "User", &format!("{CONTOSO}:region")).unwrap();
    assert_eq!(region["holders"], 1, "{region}");
    assert_eq!(region["lastClient"], "test-admin", "{region}");
    // A deleted user holds nothing.
    assert_eq!(
        server.delete(&format!("/Users/{}", ids[1])).await.status,
        StatusCode::NO_CONTENT
    );
    let rows = explain(&server).await;
    assert_eq!(
        row(&rows, "User", &format!("{CONTOSO}:region")).unwrap()["holders"],
        0
    );
    assert_eq!(row(&rows, "User", "userName").unwrap()["holders"], 2);
}

// 7. Auth.

#[tokio::test]
async fn the_admin_api_needs_the_admin_scope() {
    let server = TestServer::start().await;
    let writer = server.token_with("entra", &["scim.write"]).await;
    let reader = server.token_with("reader", &["scim.read"]).await;
    let admin = server.token_with("ops-admin", &["admin"]).await;
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/v1/schemas".into(), None),
        (Method::GET, format!("/admin/v1/schemas/{CONTOSO}"), None),
        (
            Method::PUT,
            format!("/admin/v1/schemas/{CONTOSO}"),
            Some(contoso_schema()),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/schemas/{CONTOSO}?force=true"),
            None,
        ),
        (Method::GET, "/admin/v1/attributes".into(), None),
        (Method::GET, "/admin/v1/settings".into(), None),
        (
            Method::PUT,
            "/admin/v1/settings".into(),
            Some(json!({"undeclaredAttributes": "capture"})),
        ),
        (Method::GET, "/admin/v1/resources/Users/x".into(), None),
    ];
    for token in [&writer, &reader] {
        for (method, path, body) in &requests {
            let reply = server
                .call_as(token, method.clone(), path, body.clone())
                .await;
            assert_scim_error(&reply, StatusCode::FORBIDDEN);
            assert!(
                detail(&reply).contains("admin"),
                "{method} {path}: {}",
                reply.body
            );
        }
    }
    for (method, path, body) in &requests {
        let anonymous = server
            .send(
                server
                    .http
                    .request(method.clone(), format!("{}{path}", server.root)),
                body.clone(),
            )
            .await;
        assert_scim_error(&anonymous, StatusCode::UNAUTHORIZED);
    }
    // Nothing was declared or set by the refused calls.
    assert_eq!(server.get("/Schemas").await.body["totalResults"], 3);
    assert_eq!(
        server.admin(Method::GET, "/settings", None).await.body["undeclaredAttributes"],
        "reject"
    );
    // An admin-only token may declare.
    let reply = server
        .call_as(
            &admin,
            Method::PUT,
            &format!("/admin/v1/schemas/{CONTOSO}"),
            Some(contoso_schema()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let listed = server.admin(Method::GET, "/schemas", None).await;
    assert_eq!(listed.body["Resources"][0]["updatedBy"], "ops-admin");
    // And a scim.write token then uses the declared attributes.
    let reply = server
        .call_as(
            &writer,
            Method::POST,
            "/scim/v2/Users",
            Some(entra_user("ann@contoso.com", "APAC", "CC-1")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

// Attribute properties: required, caseExact, mutability, returned.

#[tokio::test]
async fn attribute_properties_apply_to_custom_attributes() {
    let server = TestServer::start().await;
    let urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    declare(
        &server,
        urn,
        json!({"attributes": [
            {"name": "agentId", "type": "string", "required": true, "caseExact": true},
            {"name": "hireSource", "type": "string", "mutability": "immutable"},
            {"name": "score", "type": "integer", "mutability": "readOnly"},
            {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
            {"name": "notes", "type": "string", "returned": "request"},
            {"name": "site", "type": "string", "returned": "always"}
        ]}),
    )
    .await;
    // Required inside an optional extension: only when the extension is given.
    create(&server, user("none@acme.com")).await;
    let missing = server
        .post(
            "/Users",
            json!({"schemas": [USER, urn], "userName": "x@acme.com", urn: {"site": "Oslo"}}),
        )
        .await;
    assert_scim_error(&missing, StatusCode::BAD_REQUEST);
    assert!(
        detail(&missing).contains(&format!("{urn}:agentId")),
        "{}",
        missing.body
    );

    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER, urn], "userName": "a@acme.com",
                   urn: {"agentId": "AG-1", "hireSource": "BPO", "pin": "1234",
                         "notes": "night shift", "site": "Oslo"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let got = get_user(&server, &id).await;
    assert_eq!(got[urn]["agentId"], "AG-1");
    assert!(got[urn].get("pin").is_none(), "returned never: {got}");
    assert!(got[urn].get("notes").is_none(), "returned request: {got}");
    assert!(!got.to_string().contains("1234"), "{got}");
    let asked = server
        .get(&format!(
            "/Users/{id}?attributes={}",
            encode(&format!("{urn}:notes"))
        ))
        .await;
    assert_eq!(asked.body[urn]["notes"], "night shift", "{}", asked.body);
    assert_eq!(
        asked.body[urn]["site"], "Oslo",
        "returned always: {}",
        asked.body
    );
    assert!(!stored(&server, &id).await.to_string().contains("1234"));

    // caseExact: filters compare exactly.
    assert_eq!(
        find(&server, &format!("{urn}:agentId eq \"AG-1\"")).await,
        ["a@acme.com"]
    );
    assert!(find(&server, &format!("{urn}:agentId eq \"ag-1\""))
        .await
        .is_empty());

    // readOnly: a client value is refused or ignored, never stored.
    let reply = patch(
        &server,
        &id,
        json!([{"op": "add", "path": format!("{urn}:score"), "value": 5}]),
    )
    .await;
    assert!(
        reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::OK,
        "{}",
        reply.body
    );
    assert!(get_user(&server, &id).await[urn].get("score").is_none());
    // immutable: may not change once set.
    let reply = patch(
        &server,
        &id,
        json!([{"op": "replace", "path": format!("{urn}:hireSource"), "value": "Direct"}]),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "mutability", "{}", reply.body);
    assert_eq!(get_user(&server, &id).await[urn]["hireSource"], "BPO");
    // A required attribute cannot be removed.
    let reply = patch(
        &server,
        &id,
        json!([{"op": "remove", "path": format!("{urn}:agentId")}]),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    // Nor the whole extension while it holds an immutable value.
    let reply = patch(&server, &id, json!([{"op": "remove", "path": urn}])).await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "mutability", "{}", reply.body);
    assert_eq!(get_user(&server, &id).await[urn]["agentId"], "AG-1");
}

#[tokio::test]
async fn filters_on_every_custom_type() {
    let server = server_with_extensions().await;
    create(
        &server,
        json!({"schemas": [USER], "userName": "ann@contoso.com", CONTOSO: {
            "tier": 3, "hired": "2024-03-01T09:00:00Z", "remote": true, "rate": 17.5,
            "skills": ["voice", "chat"], "location": {"building": "B7", "floor": 3},
            "profile": "https://hr.contoso.com/ann"}}),
    )
    .await;
    create(
        &server,
        json!({"schemas": [USER], "userName": "bob@contoso.com", CONTOSO: {
            "tier": 1, "hired": "2021-06-15T00:00:00+02:00", "remote": false, "rate": 9.25,
            "skills": ["email"], "location": {"building": "B1", "floor": 0}}}),
    )
    .await;
    for (filter, expected) in [
        (format!("{CONTOSO}:tier ge 2"), vec!["ann@contoso.com"]),
        (
            format!("{CONTOSO}:hired gt \"2023-01-01T00:00:00Z\""),
            vec!["ann@contoso.com"],
        ),
        (
            format!("{CONTOSO}:hired lt \"2021-06-15T00:00:00Z\""),
            vec!["bob@contoso.com"],
        ),
        (
            format!("{CONTOSO}:remote eq false"),
            vec!["bob@contoso.com"],
        ),
        (format!("{CONTOSO}:rate gt 10"), vec!["ann@contoso.com"]),
        (format!("{CONTOSO}:rate lt 9.5"), vec!["bob@contoso.com"]),
        (
            format!("{CONTOSO}:skills eq \"chat\""),
            vec!["ann@contoso.com"],
        ),
        (
            format!("{CONTOSO}:skills co \"mai\""),
            vec!["bob@contoso.com"],
        ),
        (
            format!("{CONTOSO}:location.floor ge 3"),
            vec!["ann@contoso.com"],
        ),
        (
            format!("{CONTOSO}:location.building eq \"b1\""),
            vec!["bob@contoso.com"],
        ),
        (
            format!("{CONTOSO}:location[building eq \"B7\" and floor eq 3]"),
            vec!["ann@contoso.com"],
        ),
        (format!("{CONTOSO}:profile pr"), vec!["ann@contoso.com"]),
    ] {
        assert_eq!(find(&server, &filter).await, expected, "{filter}");
    }
    // Sorting by a custom string and a dateTime.
    let reply = server
        .get(&format!(
            "/Users?sortBy={}",
            encode(&format!("{CONTOSO}:hired"))
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["Resources"][0]["userName"], "bob@contoso.com");
    let reply = server
        .get(&format!(
            "/Users?sortBy={}&sortOrder=descending",
            encode(&format!("{CONTOSO}:location.building"))
        ))
        .await;
    assert_eq!(
        reply.body["Resources"][0]["userName"], "ann@contoso.com",
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn multi_valued_and_uniqueness_changes_check_stored_values() {
    let server = server_with_extensions().await;
    let ann = create(&server, entra_user("ann@contoso.com", "APAC", "CC-1")).await;
    let bob = create(&server, entra_user("bob@contoso.com", "EMEA", "CC-1")).await;
    // region becomes multi-valued: single values become one-element lists.
    let reply = put_schema(
        &server,
        CONTOSO,
        "",
        contoso_with(
            "region",
            Some(json!({"name": "region", "type": "string", "multiValued": true})),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        get_user(&server, &ann).await[CONTOSO]["region"],
        json!(["APAC"])
    );
    assert_eq!(
        find(&server, &format!("{CONTOSO}:region eq \"EMEA\"")).await,
        ["bob@contoso.com"]
    );
    // costCenter becomes unique while two users share a value: refused.
    let mut unique = contoso_with(
        "costCenter",
        Some(json!({"name": "costCenter", "type": "string", "uniqueness": "server"})),
    );
    unique["attributes"][0] = json!({"name": "region", "type": "string", "multiValued": true});
    let dry = put_schema(&server, CONTOSO, "?dryRun=true", unique.clone()).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert!(
        dry.body["conversionFailureCount"].as_u64().unwrap() >= 1,
        "{}",
        dry.body
    );
    let refused = put_schema(&server, CONTOSO, "", unique.clone()).await;
    assert_scim_error(&refused, StatusCode::CONFLICT);
    assert!(detail(&refused).contains("CC-1"), "{}", refused.body);
    assert_eq!(
        schema_attribute(&schema_of(&server, CONTOSO).await, "costCenter")["uniqueness"],
        "none"
    );
    // Once the values differ, it applies, and is enforced.
    patch_ok(
        &server,
        &bob,
        json!([{"op": "replace", "path": format!("{CONTOSO}:costCenter"), "value": "CC-2"}]),
    )
    .await;
    let reply = put_schema(&server, CONTOSO, "", unique).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let clash = patch(
        &server,
        &bob,
        json!([{"op": "replace", "path": format!("{CONTOSO}:costCenter"), "value": "CC-1"}]),
    )
    .await;
    assert_scim_error(&clash, StatusCode::CONFLICT);
    assert_eq!(clash.body["scimType"], "uniqueness");
}

// Bulk and the root search run the same code.

#[tokio::test]
async fn bulk_and_root_search_carry_custom_attributes() {
    let server = server_with_extensions().await;
    let reply = server
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "ann",
                     "data": entra_user("ann@contoso.com", "APAC", "CC-1")},
                    {"method": "PATCH", "path": "/Users/bulkId:ann",
                     "data": patch_body(json!([{"op": "add",
                        "path": format!("{GENESYS}:customFields.BPO_Vendor_ID"), "value": "BPO-3"}]))},
                    {"method": "POST", "path": "/Users", "bulkId": "typo",
                     "data": regoin_body("typo@contoso.com")}
                ]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let operations = reply.body["Operations"].as_array().unwrap();
    assert_eq!(operations[0]["status"], "201", "{}", reply.body);
    assert!(
        ["200", "204"].contains(&operations[1]["status"].as_str().unwrap()),
        "{}",
        reply.body
    );
    assert_eq!(operations[2]["status"], "400", "{}", reply.body);
    assert!(
        operations[2]["response"]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("did you mean '{CONTOSO}:region'")),
        "{}",
        reply.body
    );
    assert_eq!(
        find(
            &server,
            &format!("{GENESYS}:customFields.BPO_Vendor_ID eq \"BPO-3\"")
        )
        .await,
        ["ann@contoso.com"]
    );
    assert!(find(&server, "userName eq \"typo@contoso.com\"")
        .await
        .is_empty());

    let searched = server
        .post(
            "/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": format!("{CONTOSO}:region eq \"APAC\""),
                   "attributes": ["userName", format!("{CONTOSO}:region")]}),
        )
        .await;
    assert_eq!(searched.status, StatusCode::OK, "{}", searched.body);
    assert_eq!(searched.body["totalResults"], 1, "{}", searched.body);
    assert_eq!(
        searched.body["Resources"][0][CONTOSO],
        json!({"region": "APAC"})
    );
}

#[tokio::test]
async fn bad_admin_query_parameters_are_scim_errors_and_change_nothing() {
    let server = server_with_extensions().await;
    let id = create(&server, entra_user("ann@contoso.com", "APAC", "CC-1")).await;
    let tier_as_string = contoso_with("tier", Some(json!({"name": "tier", "type": "string"})));
    // A misspelt dry run must not apply the change.
    for query in ["?dryrun=true", "?dry_run=true", "?dryRun=yes", "?force=1"] {
        let reply = put_schema(&server, CONTOSO, query, tier_as_string.clone()).await;
        assert_scim_error(&reply, StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.body["scimType"], "invalidValue",
            "{query}: {}",
            reply.body
        );
        assert!(detail(&reply).contains("dryRun"), "{query}: {}", reply.body);
    }
    assert_eq!(
        schema_attribute(&schema_of(&server, CONTOSO).await, "tier")["type"],
        "integer"
    );
    let reply = server
        .admin(
            Method::DELETE,
            &format!("/schemas/{CONTOSO}?dryrun=true"),
            None,
        )
        .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get(&format!("/Schemas/{CONTOSO}")).await.status,
        StatusCode::OK
    );
    assert_eq!(get_user(&server, &id).await[CONTOSO]["region"], "APAC");
}

/// Declaring an attribute that was captured while undeclared moves the
/// captured values into the resources (validated); a value that does not
/// fit its declaration stays captured.
#[tokio::test]
async fn declaring_a_captured_attribute_adopts_its_values() {
    let server = server_with_extensions().await;
    let set = server
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"undeclaredAttributes": "capture"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let badge = format!("{CONTOSO}:badgeColor");
    let mut fits = user("fits@contoso.com");
    fits[&badge] = json!("blue");
    let fits = create(&server, fits).await;
    let mut misfit = user("misfit@contoso.com");
    misfit[&badge] = json!({"not": "a string"});
    let misfit = create(&server, misfit).await;
    assert_eq!(stored(&server, &fits).await["unmapped"][&badge], "blue");

    let mut schema = contoso_schema();
    schema["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "badgeColor", "type": "string"}));
    let dry = put_schema(&server, CONTOSO, "?dryRun=true", schema.clone()).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(
        dry.body["adoptedValues"],
        json!([{"path": badge, "holders": 1}]),
        "{}",
        dry.body
    );
    assert!(
        stored(&server, &fits).await["unmapped"]
            .get(&badge)
            .is_some(),
        "a dry run changed nothing"
    );
    let applied = put_schema(&server, CONTOSO, "", schema).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["rewritten"], 1, "{}", applied.body);

    assert_eq!(
        get_user(&server, &fits).await[CONTOSO]["badgeColor"],
        "blue"
    );
    assert!(stored(&server, &fits).await["unmapped"]
        .get(&badge)
        .is_none());
    assert_eq!(
        find(&server, &format!("{badge} eq \"blue\"")).await,
        ["fits@contoso.com"]
    );
    // The misfit keeps its value, captured, for an admin to look at.
    assert_eq!(
        stored(&server, &misfit).await["unmapped"][&badge],
        json!({"not": "a string"})
    );
    assert!(get_user(&server, &misfit).await.get(CONTOSO).is_none());
}

/// Custom attributes are indexed for filters when declared searchable (and
/// always when unique); filters on the others still find the right users.
#[tokio::test]
async fn searchable_attributes_are_declared_and_explained() {
    let server = TestServer::start().await;
    let unknown = put_schema(&server, CONTOSO, "?searchable=regoin", contoso_schema()).await;
    assert_scim_error(&unknown, StatusCode::BAD_REQUEST);
    assert!(
        detail(&unknown).contains("searchable: 'regoin'"),
        "{}",
        unknown.body
    );

    let declared = put_schema(&server, CONTOSO, "?searchable=Region", contoso_schema()).await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.body);
    let searchable = declared.body["searchable"].as_array().unwrap().clone();
    assert!(searchable.contains(&json!("region")), "{}", declared.body);
    assert!(
        searchable.contains(&json!("employeeCode")),
        "unique attributes are always indexed: {}",
        declared.body
    );
    assert!(
        !searchable.contains(&json!("costCenter")),
        "{}",
        declared.body
    );
    let listed = server.admin(Method::GET, "/schemas", None).await;
    assert_eq!(listed.body["Resources"][0]["searchable"], json!(searchable));

    let rows = explain(&server).await;
    let region = row(&rows, "User", &format!("{CONTOSO}:region")).unwrap();
    assert_eq!(region["indexed"], true, "{region}");
    let cost = row(&rows, "User", &format!("{CONTOSO}:costCenter")).unwrap();
    assert_eq!(cost["indexed"], false, "{cost}");
    let user_name = row(&rows, "User", "userName").unwrap();
    assert_eq!(user_name["indexed"], true, "{user_name}");

    create(&server, entra_user("apac@contoso.com", "APAC", "CC-1")).await;
    create(&server, entra_user("emea@contoso.com", "EMEA", "CC-2")).await;
    assert_eq!(
        find(&server, &format!("{CONTOSO}:region eq \"apac\"")).await,
        ["apac@contoso.com"]
    );
    assert_eq!(
        find(&server, &format!("{CONTOSO}:costCenter eq \"CC-2\"")).await,
        ["emea@contoso.com"]
    );

    // Re-applying without ?searchable keeps the list; a new list replaces it.
    let again = put_schema(&server, CONTOSO, "", contoso_schema()).await;
    assert_eq!(
        again.body["searchable"],
        json!(searchable),
        "{}",
        again.body
    );
    let changed = put_schema(&server, CONTOSO, "?searchable=costCenter", contoso_schema()).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.body["searchable"]
        .as_array()
        .unwrap()
        .contains(&json!("costCenter")));
    assert_eq!(
        find(&server, &format!("{CONTOSO}:costCenter eq \"CC-2\"")).await,
        ["emea@contoso.com"]
    );
    assert_eq!(
        find(&server, &format!("{CONTOSO}:region eq \"apac\"")).await,
        ["apac@contoso.com"]
    );
}
