//! The schemas page over HTTP: signed in or sent to sign in; a custom
//! extension declared through its dry run (which changes nothing) and then
//! applied; the explain table searched; forms refused without their CSRF
//! token.

#![allow(clippy::expect_used, clippy::panic, reason = "tests")]

mod common;
mod console_c2;

use console_c2::{check_page_needs_a_session, check_post_needs_csrf, check_unique_ids, Console};
use reqwest::{Method, StatusCode};
use serde_json::json;

const URN: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

fn contoso_schema() -> String {
    json!({
        "id": URN,
        "name": "Contoso",
        "attributes": [
            {"name": "region", "type": "string", "multiValued": false},
            {"name": "badge", "type": "integer", "multiValued": false}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn the_page_needs_a_session() {
    let mut console = Console::signed_in().await;
    check_page_needs_a_session(
        &mut console,
        "/admin/schemas",
        "Schemas and custom attributes",
    )
    .await;
}

#[tokio::test]
async fn an_extension_is_declared_through_its_dry_run() {
    let console = Console::signed_in().await;
    let schema = contoso_schema();
    let fields = [
        ("document", schema.as_str()),
        ("resource_type", "User"),
        ("required", ""),
        ("searchable", "region"),
    ];

    let dry_run = console.post("/admin/schemas/dry-run", &fields).await;
    assert_eq!(dry_run.status, StatusCode::OK, "{}", dry_run.text);
    check_unique_ids(&dry_run.text);
    dry_run
        .expect_text("Dry run: nothing was changed")
        .expect_text("id=\"schema-apply-form\"")
        .expect_text(&format!("{URN}:region"));
    let (_, schemas) = console.api(Method::GET, "/admin/v1/schemas", None).await;
    assert_eq!(
        schemas["totalResults"], 0,
        "a dry run declares nothing: {schemas}"
    );

    let applied = console.post("/admin/schemas/apply", &fields).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    applied.expect_text("Applied: ");
    let (_, schemas) = console.api(Method::GET, "/admin/v1/schemas", None).await;
    assert_eq!(schemas["totalResults"], 1, "{schemas}");
    assert_eq!(schemas["Resources"][0]["searchable"], json!(["region"]));

    // Live at once: a user carries the attribute, and the explain table,
    // searched, shows it indexed with one holder.
    console
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
            "userName": "ana@contoso.com",
            URN: {"region": "EMEA"}
        }))
        .await;
    // The page loads the table right after itself, searched as asked; the
    // table alone is a fragment, and a page of its own without JavaScript.
    let page = console.get("/admin/schemas?q=region").await;
    assert_eq!(page.status, StatusCode::OK);
    page.expect_text("hx-get=\"/admin/schemas/attributes?q=region&amp;fragment=true\"")
        .expect_text("href=\"/admin/schemas/attributes?q=region\"");
    assert!(
        !page.text.contains("id=\"attributes\""),
        "the table is not in the page itself"
    );
    let whole = console.get("/admin/schemas/attributes?q=region").await;
    assert_eq!(whole.status, StatusCode::OK);
    whole.expect_text(&format!("data-test=\"attribute-{URN}:region\""));
    let found = console
        .get("/admin/schemas/attributes?q=region&fragment=true")
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(!found.text.contains("<html"), "a fragment, not a page");
    let row_start = found
        .text
        .find(&format!("data-test=\"attribute-{URN}:region\""))
        .expect("the region row");
    let row = found.text.get(row_start..).unwrap_or_default();
    let row = row
        .get(..row.find("</tr>").unwrap_or(row.len()))
        .unwrap_or_default();
    assert!(row.contains("data-test=\"indexed\">yes<"), "{row}");
    assert!(row.contains("data-test=\"holders\">1<"), "{row}");
    assert!(
        !found.text.contains("data-test=\"attribute-userName\""),
        "the search leaves other rows out"
    );

    // The change form starts from the stored schema.
    let edit = console.get(&format!("/admin/schemas?edit={URN}")).await;
    assert_eq!(edit.status, StatusCode::OK);
    edit.expect_text("&quot;badge&quot;");
}

#[tokio::test]
async fn a_refused_change_names_the_problem_and_changes_nothing() {
    let console = Console::signed_in().await;
    let page = console
        .post("/admin/schemas/dry-run", &[("document", "{not json")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.expect_text("document: expected an RFC 7643 schema");

    let bad_type =
        json!({"id": URN, "name": "Contoso", "attributes": [{"name": "region", "type": "text"}]})
            .to_string();
    let page = console
        .post("/admin/schemas/apply", &[("document", bad_type.as_str())])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    page.expect_text("data-test=\"refusal\"");
    let (_, schemas) = console.api(Method::GET, "/admin/v1/schemas", None).await;
    assert_eq!(schemas["totalResults"], 0);
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let console = Console::signed_in().await;
    let schema = contoso_schema();
    check_post_needs_csrf(
        &console,
        "/admin/schemas/apply",
        &[("document", schema.as_str())],
    )
    .await;
    check_post_needs_csrf(
        &console,
        "/admin/schemas/dry-run",
        &[("document", schema.as_str())],
    )
    .await;
    let (_, schemas) = console.api(Method::GET, "/admin/v1/schemas", None).await;
    assert_eq!(schemas["totalResults"], 0);
}
