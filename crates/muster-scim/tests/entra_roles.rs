//! Entra ID's app-role mappings (issue 9): PATCH paths that select the
//! primary role with the string "True" (`roles[primary eq "True"].value`),
//! replayed exactly as Entra ID sends them through `apply_patch` on the
//! built-in registry, asserting the resulting `roles` array.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::PATCH_OP_URN;
use muster_scim::schema::builtin::USER_SCHEMA;
use muster_scim::{apply_patch, PatchOp, SchemaRegistry};
use serde_json::{json, Value};

/// A stored user holding `members` (`roles`, `emails`, ...), canonical.
fn user(members: Value) -> Value {
    let mut user = json!({
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                 "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
        "userName": "Test_User_dfeef4c5@contoso.com",
        "active": true
    });
    if let (Some(object), Value::Object(members)) = (user.as_object_mut(), members) {
        object.extend(members);
    }
    user
}

/// Applies each request (an `Operations` list) in turn, as separate PATCH
/// calls, to `before`, and returns the resource after the last one. Every
/// request must succeed, and the result must not hold two primary values.
fn replay(before: Value, requests: &[Value]) -> Value {
    let registry = SchemaRegistry::builtin();
    let user_type = registry.resource_type("User").unwrap();
    let mut resource = before;
    for operations in requests {
        let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
        let patch = PatchOp::from_json(&body).unwrap_or_else(|error| panic!("{body}: {error}"));
        let outcome = apply_patch(&registry, user_type, &resource, &patch.operations)
            .unwrap_or_else(|error| panic!("{body} was refused: {error}"));
        for attribute in ["roles", "emails"] {
            let primaries = outcome.resource[attribute].as_array().map_or(0, |values| {
                values
                    .iter()
                    .filter(|value| value["primary"] == json!(true))
                    .count()
            });
            assert!(
                primaries <= 1,
                "{body} left {primaries} primary {attribute}"
            );
        }
        resource = outcome.resource;
    }
    resource
}

/// Replays `requests` on a user holding `members` and compares `attribute`.
fn check(members: Value, requests: &[Value], attribute: &str, expected: Value) {
    let after = replay(user(members), requests);
    assert_eq!(after[attribute], expected, "{attribute} after {requests:?}");
}

fn replace_primary_value(value: &str) -> Value {
    json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": value}])
}

/// The three operations Entra ID sends to give a user without roles its
/// app role: display, value and type of `roles[primary eq "True"]`.
fn add_primary_role() -> [Value; 3] {
    [
        json!({"op": "Add", "path": "roles[primary eq \"True\"].display", "value": "Contributor"}),
        json!({"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "User"}),
        json!({"op": "Add", "path": "roles[primary eq \"True\"].type", "value": "WindowsAzureActiveDirectoryRole"}),
    ]
}

fn primary_role() -> Value {
    json!([{
        "value": "User",
        "display": "Contributor",
        "type": "WindowsAzureActiveDirectoryRole",
        "primary": true
    }])
}

/// The string "True" selects the role whose `primary` is the boolean true:
/// its value is replaced; no second role is appended, none is demoted.
#[test]
fn replace_through_primary_eq_true_string_changes_the_primary_role() {
    check(
        json!({"roles": [{"value": "Admin", "primary": true}]}),
        &[replace_primary_value("User")],
        "roles",
        json!([{"value": "User", "primary": true}]),
    );
    check(
        json!({"roles": [
            {"value": "Reader", "display": "Reads"},
            {"value": "Admin", "display": "Administers", "primary": true}
        ]}),
        &[replace_primary_value("User")],
        "roles",
        json!([
            {"value": "Reader", "display": "Reads"},
            {"value": "User", "display": "Administers", "primary": true}
        ]),
    );
}

/// Any case of "true"/"false" is a boolean when compared with `primary`.
#[test]
fn true_and_false_strings_match_in_any_case() {
    for spelling in ["True", "TRUE", "true", "tRuE"] {
        let path = format!("roles[primary eq \"{spelling}\"].display");
        check(
            json!({"roles": [{"value": "Admin", "primary": true}, {"value": "Reader"}]}),
            &[json!([{"op": "Replace", "path": path, "value": "Main"}])],
            "roles",
            json!([{"value": "Admin", "display": "Main", "primary": true}, {"value": "Reader"}]),
        );
    }
    check(
        json!({"roles": [{"value": "Admin", "primary": true}, {"value": "Reader", "primary": false}]}),
        &[
            json!([{"op": "Replace", "path": "roles[primary eq \"False\"].value", "value": "Guest"}]),
        ],
        "roles",
        json!([{"value": "Admin", "primary": true}, {"value": "Guest", "primary": false}]),
    );
}

/// Entra ID's three `add`s in one request build one primary role holding
/// all three sub-attributes (the first creates `{"primary": true, ...}`
/// from the filter, the next two find it).
#[test]
fn three_adds_in_one_request_build_one_primary_role() {
    check(
        json!({}),
        &[Value::Array(add_primary_role().to_vec())],
        "roles",
        primary_role(),
    );
}

/// The same three operations as three PATCH requests, one after the other.
#[test]
fn three_adds_in_three_requests_build_one_primary_role() {
    let requests: Vec<Value> = add_primary_role()
        .into_iter()
        .map(|operation| json!([operation]))
        .collect();
    check(json!({}), &requests, "roles", primary_role());
}

/// The role the adds created is then found again by a later replace, and
/// the user keeps one role.
#[test]
fn adds_then_replace_keep_one_role() {
    let mut requests = vec![Value::Array(add_primary_role().to_vec())];
    requests.push(replace_primary_value("Admin"));
    check(
        json!({}),
        &requests,
        "roles",
        json!([{
            "value": "Admin",
            "display": "Contributor",
            "type": "WindowsAzureActiveDirectoryRole",
            "primary": true
        }]),
    );
}

/// Making another role primary demotes the old one, and the "True" filter
/// then selects only the new primary: at most one primary throughout.
#[test]
fn primary_stays_unique() {
    check(
        json!({"roles": [{"value": "Admin", "primary": true}, {"value": "Reader"}]}),
        &[
            json!([{"op": "Replace", "path": "roles[value eq \"Reader\"].primary", "value": "True"}]),
            json!([{"op": "Add", "path": "roles[primary eq \"True\"].display", "value": "Now primary"}]),
        ],
        "roles",
        json!([
            {"value": "Admin", "primary": false},
            {"value": "Reader", "display": "Now primary", "primary": true}
        ]),
    );
}

/// The filter Entra ID uses for mail still creates the work email when the
/// user has none, and changes it when there is one.
#[test]
fn work_email_value_path_still_creates_and_replaces() {
    let add = json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@b.c"}]);
    check(
        json!({}),
        &[add],
        "emails",
        json!([{"value": "a@b.c", "type": "work"}]),
    );
    check(
        json!({"emails": [
            {"value": "old@b.c", "type": "work", "primary": true},
            {"value": "home@b.c", "type": "home"}
        ]}),
        &[json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@b.c"}])],
        "emails",
        json!([
            {"value": "new@b.c", "type": "work", "primary": true},
            {"value": "home@b.c", "type": "home"}
        ]),
    );
    check(
        json!({}),
        &[json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@b.c"},
            {"op": "Replace", "path": "emails[type eq \"work\"].primary", "value": "True"},
            {"op": "Add", "path": "emails[type eq \"work\" and primary eq \"True\"].display", "value": "Work"}
        ])],
        "emails",
        json!([{"value": "a@b.c", "display": "Work", "type": "work", "primary": true}]),
    );
}
