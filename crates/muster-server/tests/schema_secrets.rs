//! Schema changes and never-returned attributes: a dry run or a refusal
//! never shows their values, `returned` cannot flip to or from `never` in
//! place, and uniqueness is refused on them (their values stay out of the
//! index the check needs).

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const URN: &str = "urn:ietf:params:scim:schemas:extension:vault:2.0:User";

fn schema(pin: Value) -> Value {
    json!({"id": URN, "name": "Vault", "attributes": [pin, {"name": "badge", "type": "string"}]})
}

#[tokio::test]
async fn never_returned_values_stay_hidden_through_schema_changes() {
    let server = TestServer::start().await;
    let pin =
        json!({"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"});
    let declared = server
        .admin(Method::PUT, &format!("/schemas/{URN}"), Some(schema(pin)))
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.body);
    let created = server
        .call(
            Method::POST,
            "/Users",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
                "userName": "vault@contoso.com", URN: {"pin": "PIN-7731-SECRET", "badge": "B1"}}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    // A type change the value cannot take: the dry run and the refusal say
    // so without showing it.
    let integer =
        json!({"name": "pin", "type": "integer", "mutability": "writeOnly", "returned": "never"});
    for query in ["?dryRun=true", ""] {
        let reply = server
            .admin(
                Method::PUT,
                &format!("/schemas/{URN}{query}"),
                Some(schema(integer.clone())),
            )
            .await;
        let text = reply.body.to_string();
        assert!(!text.contains("PIN-7731-SECRET"), "{query}: {text}");
        assert!(text.contains("pin"), "{query}: {text}");
    }

    // `returned` cannot flip in place, either way.
    let shown = json!({"name": "pin", "type": "string"});
    let flipped = server
        .admin(Method::PUT, &format!("/schemas/{URN}"), Some(schema(shown)))
        .await;
    assert_eq!(flipped.status, StatusCode::CONFLICT, "{}", flipped.body);
    assert!(flipped.body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("returned"));
    let hidden_badge = json!({"id": URN, "name": "Vault", "attributes": [
        {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
        {"name": "badge", "type": "string", "returned": "never"}]});
    let flipped = server
        .admin(Method::PUT, &format!("/schemas/{URN}"), Some(hidden_badge))
        .await;
    assert_eq!(flipped.status, StatusCode::CONFLICT, "{}", flipped.body);

    // Uniqueness on a never-returned attribute is refused at declaration.
    let unique = json!({"id": "urn:ietf:params:scim:schemas:extension:uq:2.0:User", "attributes": [
        {"name": "hidden", "type": "string", "uniqueness": "server", "returned": "never"}]});
    let refused = server
        .admin(
            Method::PUT,
            "/schemas/urn:ietf:params:scim:schemas:extension:uq:2.0:User",
            Some(unique),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // Nothing changed: the value is still there, still hidden.
    let user = server
        .call(
            Method::GET,
            &format!("/Users/{}", created.body["id"].as_str().unwrap_or_default()),
            None,
        )
        .await;
    assert_eq!(user.body[URN], json!({"badge": "B1"}));
}
