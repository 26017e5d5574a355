//! Sorting canonical resources by `sortBy` / `sortOrder` (RFC 7644 section
//! 3.4.2.3): primary values of multi-valued attributes, caseExact, numbers,
//! dateTimes, booleans, missing values and stability.

// Test helpers outside `#[test]` functions unwrap freely.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::schema::builtin::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use muster_scim::sort::{compare, sort_by_key};
use muster_scim::{
    sort_resources, AttrPath, Attribute, AttributeType, ResourceType, Schema, SchemaRegistry,
    ScimType, SortKey, SortOrder, SortValue,
};
use serde_json::{json, Value};

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

/// The built-in registry plus a custom User extension with an integer, a
/// decimal, a dateTime and a multi-valued string.
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    registry
        .add_schema(Schema {
            id: ACME.to_owned(),
            name: Some("Acme".to_owned()),
            description: None,
            attributes: vec![
                Attribute::new("level", AttributeType::Integer),
                Attribute::new("score", AttributeType::Decimal),
                Attribute::new("hired", AttributeType::DateTime),
                Attribute {
                    multi_valued: true,
                    ..Attribute::new("skills", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", ACME, false).unwrap();
    registry
}

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

/// A user with id `id` and the given members.
fn user(id: &str, members: Value) -> Value {
    let mut resource = json!({"schemas": [USER_SCHEMA], "id": id, "userName": id});
    for (key, value) in members.as_object().unwrap() {
        resource[key] = value.clone();
    }
    resource
}

/// Sorts `resources` by `sort_by` in `order` and compares the ids.
fn check(sort_by: &str, order: &str, resources: &[Value], expected_ids: &[&str]) {
    let registry = registry();
    let key = SortKey::parse(&registry, user_type(&registry), sort_by)
        .unwrap_or_else(|error| panic!("sortBy={sort_by}: {error}"));
    let order = SortOrder::parse(order).unwrap();
    let mut sorted = resources.to_vec();
    sort_resources(&mut sorted, &key, order);
    let ids: Vec<&str> = sorted
        .iter()
        .map(|resource| resource["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected_ids, "sortBy={sort_by} sortOrder={order:?}");
}

#[test]
fn strings_compare_case_insensitively_unless_case_exact() {
    let users = [
        user("1", json!({"displayName": "bob", "externalId": "b"})),
        user("2", json!({"displayName": "Alice", "externalId": "B"})),
        user("3", json!({"displayName": "carol", "externalId": "a"})),
    ];
    check("displayName", "ascending", &users, &["2", "1", "3"]);
    check("DISPLAYNAME", "Descending", &users, &["3", "1", "2"]);
    // externalId is caseExact: code point order, upper case first.
    check("externalId", "ascending", &users, &["2", "3", "1"]);
    check("externalId", "descending", &users, &["1", "3", "2"]);
    check(
        "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
        "ascending",
        &users,
        &["2", "1", "3"],
    );
}

#[test]
fn multi_valued_attributes_sort_by_primary_else_first() {
    let users = [
        // Primary is the second element.
        user(
            "p",
            json!({"emails": [
                {"value": "zed@example.com", "type": "home"},
                {"value": "Amy@example.com", "type": "work", "primary": true}
            ]}),
        ),
        // No primary: the first element.
        user(
            "f",
            json!({"emails": [
                {"value": "mia@example.com", "type": "other"},
                {"value": "aaa@example.com", "type": "home"}
            ]}),
        ),
        user("none", json!({})),
        user("b", json!({"emails": [{"value": "bea@example.com"}]})),
    ];
    check("emails", "ascending", &users, &["p", "b", "f", "none"]);
    check(
        "emails.value",
        "ascending",
        &users,
        &["p", "b", "f", "none"],
    );
    check("emails", "descending", &users, &["none", "f", "b", "p"]);
    // The sub-attribute of the chosen element; "b" has no type: missing.
    check("emails.type", "ascending", &users, &["f", "p", "none", "b"]);
    // A multi-valued simple attribute: its first value.
    let skilled = [
        user("x", json!({(ACME): {"skills": ["sql", "ada"]}})),
        user("y", json!({(ACME): {"skills": ["rust"]}})),
    ];
    check(
        &format!("{ACME}:skills"),
        "ascending",
        &skilled,
        &["y", "x"],
    );
}

#[test]
fn missing_values_last_ascending_first_descending() {
    let users = [
        user("none1", json!({})),
        user("smith", json!({"name": {"familyName": "Smith"}})),
        user("given", json!({"name": {"givenName": "Ann"}})),
        user("jones", json!({"name": {"familyName": "jones"}})),
        user("none2", json!({})),
    ];
    check(
        "name.familyName",
        "ascending",
        &users,
        &["jones", "smith", "none1", "given", "none2"],
    );
    check(
        "name.familyName",
        "descending",
        &users,
        &["none1", "given", "none2", "smith", "jones"],
    );
}

#[test]
fn ties_keep_input_order_in_both_directions() {
    let users = [
        user("a", json!({"title": "Dev"})),
        user("b", json!({"title": "Ops"})),
        user("c", json!({"title": "dev"})),
        user("d", json!({"title": "DEV"})),
    ];
    check("title", "ascending", &users, &["a", "c", "d", "b"]);
    check("title", "descending", &users, &["b", "a", "c", "d"]);
}

#[test]
fn date_times_sort_chronologically() {
    let users = [
        // 08:00Z, lexically after the next one.
        user(
            "early",
            json!({"meta": {"lastModified": "2024-01-01T10:00:00+02:00"}}),
        ),
        user(
            "late",
            json!({"meta": {"lastModified": "2024-01-01T09:00:00Z"}}),
        ),
        user(
            "fraction",
            json!({"meta": {"lastModified": "2024-01-01T08:00:00.5Z"}}),
        ),
        user("never", json!({})),
    ];
    check(
        "meta.lastModified",
        "ascending",
        &users,
        &["early", "fraction", "late", "never"],
    );
    check(
        "meta.lastModified",
        "descending",
        &users,
        &["never", "late", "fraction", "early"],
    );
    let hired = [
        user("b", json!({(ACME): {"hired": "2020-06-01T00:00:00-05:00"}})),
        user("a", json!({(ACME): {"hired": "2020-06-01T04:00:00Z"}})),
    ];
    check(&format!("{ACME}:hired"), "ascending", &hired, &["a", "b"]);
}

#[test]
fn numbers_sort_numerically() {
    let users = [
        user("ten", json!({(ACME): {"level": 10, "score": 2.5}})),
        user("nine", json!({(ACME): {"level": 9, "score": 10}})),
        user("hundred", json!({(ACME): {"level": 100, "score": -1.25}})),
        user("minus", json!({(ACME): {"level": -3}})),
    ];
    check(
        &format!("{ACME}:level"),
        "ascending",
        &users,
        &["minus", "nine", "ten", "hundred"],
    );
    check(
        &format!("{}:LEVEL", ACME.to_uppercase()),
        "descending",
        &users,
        &["hundred", "ten", "nine", "minus"],
    );
    check(
        &format!("{ACME}:score"),
        "ascending",
        &users,
        &["hundred", "ten", "nine", "minus"],
    );
}

#[test]
fn booleans_false_before_true() {
    let users = [
        user("t", json!({"active": true})),
        user("unset", json!({})),
        user("f", json!({"active": false})),
    ];
    check("active", "ascending", &users, &["f", "t", "unset"]);
    check("active", "descending", &users, &["unset", "t", "f"]);
}

#[test]
fn extension_attributes_and_complex_values() {
    let users = [
        user(
            "1",
            json!({(ENTERPRISE_USER_SCHEMA): {"employeeNumber": "300", "manager": {"value": "m-a"}}}),
        ),
        user(
            "2",
            json!({(ENTERPRISE_USER_SCHEMA): {"employeeNumber": "1000", "manager": {"value": "M-B"}}}),
        ),
        user("3", json!({(ENTERPRISE_USER_SCHEMA): {"department": "x"}})),
    ];
    // A string attribute: lexical, not numeric.
    check(
        &format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"),
        "ascending",
        &users,
        &["2", "1", "3"],
    );
    // A single complex attribute without sub-attribute: its `value`;
    // manager.value is caseExact, so "M-B" sorts before "m-a".
    check(
        &format!("{ENTERPRISE_USER_SCHEMA}:manager"),
        "ascending",
        &users,
        &["2", "1", "3"],
    );
}

fn check_error(sort_by: &str, expected_detail: &[&str]) {
    check_error_type(sort_by, ScimType::InvalidValue, expected_detail);
}

fn check_error_type(sort_by: &str, scim_type: ScimType, expected_detail: &[&str]) {
    let registry = registry();
    let error =
        SortKey::parse(&registry, user_type(&registry), sort_by).expect_err("expected an error");
    assert_eq!(error.status, 400, "{sort_by}");
    assert_eq!(error.scim_type, Some(scim_type), "{sort_by}: {error}");
    for part in expected_detail {
        assert!(
            error.detail.contains(part),
            "{sort_by}: {:?} lacks {part:?}",
            error.detail
        );
    }
}

#[test]
fn bad_sort_by_is_refused() {
    check_error(
        "usrName",
        &[
            "sortBy:",
            "unknown attribute 'usrName'",
            "did you mean 'userName'?",
        ],
    );
    check_error(
        &format!("{ACME}:levle"),
        &[&format!("did you mean '{ACME}:level'?")],
    );
    check_error(
        "name",
        &["complex attribute 'name'", "e.g. 'name.formatted'"],
    );
    // As in a filter: a never-returned attribute is `invalidFilter`.
    check_error_type(
        "password",
        ScimType::InvalidFilter,
        &[
            "sortBy 'password'",
            "attribute 'password' is never returned",
        ],
    );
    check_error(ENTERPRISE_USER_SCHEMA, &["whole extension"]);
    check_error("emails[type eq \"work\"]", &["sortBy:"]);
    check_error("", &["sortBy:"]);
}

#[test]
fn keys_report_what_the_storage_layer_needs() {
    let registry = registry();
    let user_type = user_type(&registry);
    let key = |text: &str| SortKey::parse(&registry, user_type, text).unwrap();

    assert_eq!(key("Emails").canonical_path(), "emails.value");
    assert_eq!(key("EMAILS.TYPE").canonical_path(), "emails.type");
    assert_eq!(
        key(&format!("{ACME}:LEVEL")).canonical_path(),
        format!("{ACME}:level")
    );
    assert_eq!(
        key("meta.created").attribute_type(),
        AttributeType::DateTime
    );
    assert!(key("id").case_exact());
    assert!(!key("userName").case_exact());
    let from_path = SortKey::new(
        &registry,
        user_type,
        &AttrPath::with_sub("name", "givenName"),
    );
    assert_eq!(from_path.unwrap(), key("name.givenName"));

    let resource = user(
        "1",
        json!({"displayName": "Ünal ÖZ", "active": false, (ACME): {"level": 7}}),
    );
    let extract = |text: &str| key(text).extract(&resource);
    assert_eq!(
        extract("displayName"),
        Some(SortValue::String("ünal öz".into()))
    );
    assert_eq!(extract("id"), Some(SortValue::String("1".into())));
    assert_eq!(extract("active"), Some(SortValue::Boolean(false)));
    assert_eq!(
        extract(&format!("{ACME}:level")),
        Some(SortValue::Integer(7))
    );
    assert_eq!(extract("nickName"), None);
    assert_eq!(extract("emails"), None);
    // A dateTime that does not parse still sorts, as a string.
    let odd = user("2", json!({"meta": {"created": "yesterday"}}));
    assert_eq!(
        key("meta.created").extract(&odd),
        Some(SortValue::String("yesterday".into()))
    );
}

#[test]
fn sort_by_key_sorts_any_rows() {
    let registry = registry();
    let key = SortKey::parse(&registry, user_type(&registry), "userName").unwrap();
    let mut rows = vec![
        (3, user("c", json!({}))),
        (1, user("A", json!({}))),
        (2, user("b", json!({}))),
    ];
    sort_by_key(&mut rows, &key, SortOrder::Ascending, |row| &row.1);
    let order: Vec<i32> = rows.iter().map(|row| row.0).collect();
    assert_eq!(order, [1, 2, 3]);
    let one = SortValue::Integer(1);
    assert_eq!(
        compare(None, Some(&one), SortOrder::Descending),
        std::cmp::Ordering::Less
    );
}
