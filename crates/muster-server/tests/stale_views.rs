//! No stale schema decides a write: a schema changed behind the server's
//! back (by the CLI or another replica, on the same database) decides the
//! very next write, although the server's cached view is younger than its
//! one-second lifetime.

use muster_core::schemas::{apply_schema, remove_schema, ApplyOptions};
use muster_store::{Actor, TenantId};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

const URN: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

fn other_process() -> Actor {
    Actor {
        client: "cli:test".to_owned(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn a_schema_applied_elsewhere_decides_the_next_write() {
    let server = TestServer::start().await;
    // The server reads and caches the tenant's view.
    let warm = server.call(Method::GET, "/Users", None).await;
    assert_eq!(warm.status, StatusCode::OK);
    let schema = json!({"id": URN, "name": "Contoso",
        "attributes": [{"name": "region", "type": "string"}]});
    apply_schema(
        server.store.as_ref(),
        &TenantId::default_tenant(),
        &other_process(),
        &schema,
        None,
        &ApplyOptions::default(),
    )
    .await
    .expect("apply the schema as the CLI does");
    // At once, within the cached view's lifetime: the new attribute is taken.
    let created = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
                "userName": "fresh@contoso.com",
                URN: {"region": "APAC"}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body[URN]["region"], "APAC");
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();

    // And removed elsewhere: the next write no longer takes it, and nothing
    // is stored under the removed schema.
    remove_schema(
        server.store.as_ref(),
        &TenantId::default_tenant(),
        &other_process(),
        URN,
        true,
        false,
    )
    .await
    .expect("remove the schema as the CLI does");
    let patched = server
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": format!("{URN}:region"), "value": "EMEA"}]})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{}", patched.body);
    let read = server
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert!(read.body.get(URN).is_none(), "{}", read.body);
}
