//! A client's `x-request-id` is kept only when it is a short token; any
//! other is replaced by one the server mints, since the id is stored with
//! every change a request makes and written to the log.

#![allow(
    clippy::panic,
    reason = "a failed set-up step must fail the test loudly"
)]

use muster_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::json;

async fn create_with_request_id(server: &TestServer, user_name: &str, id: &str) -> String {
    let response = server
        .http
        .post(format!("{}/Users", server.base_url))
        .bearer_auth(&server.token)
        .header("content-type", "application/scim+json")
        .header("x-request-id", id)
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name})
                .to_string(),
        )
        .send()
        .await
        .unwrap_or_else(|error| panic!("send: {error}"));
    assert_eq!(response.status(), StatusCode::CREATED);
    response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn stored_request_ids(server: &TestServer) -> Vec<String> {
    let path = server.data_dir().join(muster_store::sqlite::DATABASE_FILE);
    let connection = rusqlite::Connection::open(path).unwrap_or_else(|error| panic!("{error}"));
    let mut statement = connection
        .prepare("SELECT request_id FROM changes ORDER BY sequence")
        .unwrap_or_else(|error| panic!("{error}"));
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap_or_else(|error| panic!("{error}"))
        .map(|row| row.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn only_short_token_request_ids_are_kept() {
    let server = TestServer::start_sqlite().await;
    let kept = create_with_request_id(&server, "kept", "entra-7f3a.9_b").await;
    assert_eq!(kept, "entra-7f3a.9_b");
    let huge = "R".repeat(400_000);
    let minted = create_with_request_id(&server, "huge", &huge).await;
    assert!(
        !minted.is_empty() && minted.len() <= 64,
        "{} bytes",
        minted.len()
    );
    let spaced = create_with_request_id(&server, "spaced", "id with spaces").await;
    assert_ne!(spaced, "id with spaces");
    let ids = stored_request_ids(&server);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0], "entra-7f3a.9_b");
    assert!(ids.iter().all(|id| id.len() <= 64), "{ids:?}");
    assert_eq!(ids[1], minted);
    assert_eq!(ids[2], spaced);
}
