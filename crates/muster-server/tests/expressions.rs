//! `POST /admin/v1/expressions/evaluate` over HTTP: the seed-003 (Genesys
//! Cloud) mappings, errors naming their position, a body without an
//! expression, and the admin scope.

use muster_core::tokens::SCOPE_READ;
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PATH: &str = "/expressions/evaluate";
const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Posts `body`; the reply's status and body.
async fn evaluate(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let reply = server.admin(Method::POST, PATH, Some(body)).await;
    (reply.status, reply.body)
}

/// Checks a 400 SCIM error whose detail contains every `needles`.
fn check_error(status: StatusCode, body: &Value, needles: &[&str]) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["schemas"], json!([SCIM_ERROR]), "{body}");
    assert_eq!(body["status"], json!("400"), "{body}");
    assert_eq!(body["scimType"], json!("invalidValue"), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
    }
}

#[tokio::test]
async fn seed_003_mappings_evaluate() {
    let server = TestServer::start().await;
    let attributes = json!({
        "givenName": "Ana",
        "surname": "Silva",
        "telephoneNumber": "+1 555 123 4567",
        "ext": "1 23",
        "department": "Legal",
        "jobTitle": "Team Lead"
    });
    for (expression, expected) in [
        (
            r#"Join(" ", [givenName], [surname])"#,
            json!({"value": "Ana Silva"}),
        ),
        (
            r#"Append("tel:", StripSpaces([telephoneNumber]))"#,
            json!({"value": "tel:+15551234567"}),
        ),
        (
            r#"IIF(IsNullOrEmpty(StripSpaces([ext])), StripSpaces([telephoneNumber]), Join(";ext=", Append("tel:", StripSpaces([telephoneNumber])), StripSpaces([ext])))"#,
            json!({"value": "tel:+15551234567;ext=123"}),
        ),
        (
            r#"Switch([jobTitle], "Agent", "Level 2 Support", "Quality Evaluator", "Team Lead", "Supervisor")"#,
            json!({"value": "Supervisor"}),
        ),
        (
            r#"IgnoreFlowIfNullOrEmpty(Switch([department], "", "Sales", "Sales Division"))"#,
            json!({"skipFlow": true}),
        ),
        (r#"Not(IsPresent([mail]))"#, json!({"value": true})),
    ] {
        let (status, body) = evaluate(
            &server,
            json!({"expression": expression, "attributes": attributes}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{expression}: {body}");
        assert_eq!(body, expected, "{expression}");
    }
}

#[tokio::test]
async fn errors_name_the_problem_and_its_position() {
    let server = TestServer::start().await;
    let (status, body) = evaluate(
        &server,
        json!({"expression": r#"Append("abc, "x")"#, "attributes": {}}),
    )
    .await;
    check_error(status, &body, &["malformed string literal", "column 8"]);
    let (status, body) = evaluate(
        &server,
        json!({"expression": "ToLower(Frobnicate([mail]))", "attributes": {}}),
    )
    .await;
    check_error(
        status,
        &body,
        &["unknown function 'Frobnicate'", "column 9"],
    );
    let (status, body) = evaluate(
        &server,
        json!({"expression": r#"CDate([hired])"#, "attributes": {"hired": "soon"}}),
    )
    .await;
    check_error(status, &body, &["cannot read 'soon' as a date", "column 1"]);
}

#[tokio::test]
async fn the_body_must_carry_an_expression() {
    let server = TestServer::start().await;
    let (status, body) = evaluate(&server, json!({"attributes": {"mail": "a@b.c"}})).await;
    check_error(status, &body, &["\"expression\""]);
    let (status, body) = evaluate(&server, json!({"expression": 7})).await;
    check_error(status, &body, &["\"expression\" must be a string"]);
    let (status, body) = evaluate(
        &server,
        json!({"expression": "Now()", "attributes": [], "x": 1}),
    )
    .await;
    check_error(status, &body, &["\"attributes\" must be an object"]);
    let (status, body) = evaluate(
        &server,
        json!({"expression": "Now()", "now": "2021-07-02T15:33:38Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"value": "7/2/2021 3:33:38 PM"}));
}

#[tokio::test]
async fn evaluating_needs_the_admin_scope() {
    let server = TestServer::start().await;
    let reader = server.token_with("reader", &[SCOPE_READ]).await;
    let reply = server
        .call_as(
            &reader,
            Method::POST,
            &format!("/admin/v1{PATH}"),
            Some(json!({"expression": "Now()"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
}
