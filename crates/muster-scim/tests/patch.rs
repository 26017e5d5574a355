//! PATCH (RFC 7644 section 3.5.2): the PatchOp message and its semantics.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::PATCH_OP_URN;
use muster_scim::schema::builtin::{
    ENTERPRISE_USER_SCHEMA as ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA,
};
use muster_scim::{
    apply_patch, canonicalize, Attribute, AttributeType, Filter, Mutability, PatchOp, PatchOpKind,
    Schema, SchemaRegistry, ScimType,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    registry
        .add_schema(Schema {
            id: CONTOSO.to_owned(),
            name: Some("Contoso".to_owned()),
            description: None,
            attributes: vec![
                Attribute::new("region", AttributeType::String),
                Attribute {
                    mutability: Mutability::Immutable,
                    ..Attribute::new("employeeId", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", CONTOSO, false).unwrap();
    registry
}

/// A stored user, canonical, with every kind of attribute.
fn full_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "id": "u-1",
        "externalId": "e-1",
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-01-01T00:00:00Z",
            "version": "W/\"1\""
        },
        "userName": "bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Agent",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-1234", "type": "work"}],
        "addresses": [{"locality": "Hollywood", "type": "home"}],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "m-1", "displayName": "John Smith"}
        }
    })
}

fn minimal_user() -> Value {
    json!({"schemas": [USER_SCHEMA], "id": "u-2", "userName": "agent"})
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Ops",
        "members": [{"value": "u-1", "display": "Babs"}, {"value": "u-2"}]
    })
}

fn message(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": operations})
}

type Expected<'a> = Result<Value, (ScimType, &'a str)>;

/// Parses `operations` as a PatchOp, applies it to `resource` (a `User`
/// unless it carries the Group schema) and compares with the expected
/// resource, or the error type and a piece of its detail.
fn check(resource: &Value, operations: Value, expected: Expected<'_>) {
    let registry = registry();
    let is_group = resource["schemas"][0] == GROUP_SCHEMA;
    let rt = registry
        .resource_type(if is_group { "Group" } else { "User" })
        .unwrap();
    let body = message(operations);
    let result = PatchOp::from_json(&body)
        .and_then(|patch| apply_patch(&registry, rt, resource, &patch.operations));
    match (result, expected) {
        (Ok(outcome), Ok(expected)) => {
            assert_eq!(outcome.resource, expected, "PATCH {body}");
            assert_eq!(
                outcome.changed,
                expected != *resource,
                "changed, PATCH {body}"
            );
            let again = canonicalize(&registry, rt, &outcome.resource).unwrap();
            assert_eq!(
                serde_json::to_string(&again).unwrap(),
                serde_json::to_string(&outcome.resource).unwrap(),
                "the result is canonical, PATCH {body}"
            );
        }
        (Err(error), Err((scim_type, detail))) => {
            assert_eq!(error.status, 400, "{error}");
            assert_eq!(error.scim_type, Some(scim_type), "{error}");
            assert!(
                error.detail.contains(detail),
                "detail {:?} should contain {:?}",
                error.detail,
                detail
            );
        }
        (actual, expected) => {
            panic!("PATCH {body}:\n got {actual:?}\n expected {expected:?}")
        }
    }
}

/// `base` with top-level members replaced (a `null` removes one).
fn with(base: &Value, changes: Value) -> Value {
    let mut resource = base.clone();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            resource.as_object_mut().unwrap().remove(key);
        } else {
            resource[key] = value.clone();
        }
    }
    resource
}

/// `base` with enterprise extension members replaced (a `null` removes one).
fn with_enterprise(base: &Value, changes: Value) -> Value {
    let mut resource = base.clone();
    let extension = resource[ENTERPRISE].as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            extension.remove(key);
        } else {
            extension.insert(key.clone(), value.clone());
        }
    }
    resource
}

fn emails(list: Value) -> Value {
    json!({ "emails": list })
}

#[test]
fn simple_attributes() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "replace", "path": "title", "value": "Lead"}]),
        Ok(with(&user, json!({"title": "Lead"}))),
    );
    // Add on a single-valued attribute replaces it.
    check(
        &user,
        json!([{"op": "add", "path": "TITLE", "value": "Lead"}]),
        Ok(with(&user, json!({"title": "Lead"}))),
    );
    // Nothing changes: changed is false.
    check(
        &user,
        json!([{"op": "replace", "path": "title", "value": "Agent"}]),
        Ok(user.clone()),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "title"}]),
        Ok(with(&user, json!({"title": null}))),
    );
    check(
        &minimal_user(),
        json!([{"op": "remove", "path": "title"}]),
        Ok(minimal_user()),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "B"}]),
        Ok(with(&user, json!({"displayName": "B"}))),
    );
}

#[test]
fn clearing_with_null_empty_string_and_empty_list() {
    let user = full_user();
    for value in [json!(null), json!(""), json!([]), json!({})] {
        check(
            &user,
            json!([{"op": "replace", "path": "title", "value": value}]),
            Ok(with(&user, json!({"title": null}))),
        );
        check(
            &user,
            json!([{"op": "replace", "path": "emails", "value": value}]),
            Ok(with(&user, json!({"emails": null}))),
        );
        check(
            &user,
            json!([{"op": "add", "path": "name", "value": value}]),
            Ok(with(&user, json!({"name": null}))),
        );
    }
    check(
        &user,
        json!([{"op": "replace", "value": {"title": null, "displayName": ""}}]),
        Ok(with(&user, json!({"title": null, "displayName": null}))),
    );
}

#[test]
fn complex_attributes_merge() {
    let user = full_user();
    let name = |given: &str| json!({"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": given}});
    for op in ["add", "replace"] {
        check(
            &user,
            json!([{"op": op, "path": "name", "value": {"givenName": "Babs"}}]),
            Ok(with(&user, name("Babs"))),
        );
    }
    check(
        &user,
        json!([{"op": "replace", "path": "name.GIVENNAME", "value": "Babs"}]),
        Ok(with(&user, name("Babs"))),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "name", "value": {"givenName": null, "middleName": "J"}}]),
        Ok(with(
            &user,
            json!({"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "middleName": "J"}}),
        )),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "name.formatted"}, {"op": "remove", "path": "name.familyName"}]),
        Ok(with(&user, json!({"name": {"givenName": "Barbara"}}))),
    );
    // Removing the last sub-attribute leaves the attribute absent.
    check(
        &user,
        json!([
            {"op": "remove", "path": "name.formatted"},
            {"op": "remove", "path": "name.familyName"},
            {"op": "remove", "path": "name.givenName"}
        ]),
        Ok(with(&user, json!({"name": null}))),
    );
    check(
        &minimal_user(),
        json!([{"op": "add", "path": "name.givenName", "value": "A"}]),
        Ok(with(&minimal_user(), json!({"name": {"givenName": "A"}}))),
    );
}

#[test]
fn extension_paths() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}]),
        Ok(with_enterprise(&user, json!({"department": "Ops"}))),
    );
    check(
        &user,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": "m-2"}]),
        Ok(with_enterprise(
            &user,
            json!({"manager": {"value": "m-2", "displayName": "John Smith"}}),
        )),
    );
    check(
        &user,
        json!([{"op": "add", "path": ENTERPRISE, "value": {"department": "Ops", "costCenter": "42"}}]),
        Ok(with_enterprise(
            &user,
            json!({"department": "Ops", "costCenter": "42"}),
        )),
    );
    // scim2-models sends the extension's own URN inside its value.
    check(
        &user,
        json!([{"op": "replace", "path": ENTERPRISE, "value": {"schemas": [ENTERPRISE], "department": "Ops"}}]),
        Ok(with_enterprise(&user, json!({"department": "Ops"}))),
    );
    check(
        &user,
        json!([{"op": "add", "path": ENTERPRISE, "value": {"schemas": [USER_SCHEMA], "department": "Ops"}}]),
        Err((ScimType::InvalidValue, ".schemas' may only list")),
    );
    // Removing the whole extension also drops it from schemas.
    let mut without = with(&user, json!({ ENTERPRISE: null }));
    without["schemas"] = json!([USER_SCHEMA]);
    check(
        &user,
        json!([{"op": "remove", "path": ENTERPRISE}]),
        Ok(without.clone()),
    );
    check(
        &user,
        json!([
            {"op": "remove", "path": format!("{ENTERPRISE}:employeeNumber")},
            {"op": "remove", "path": format!("{ENTERPRISE}:department")},
            {"op": "remove", "path": format!("{ENTERPRISE}:manager")}
        ]),
        Ok(without),
    );
    // Adding an extension attribute adds the extension to schemas.
    let minimal = minimal_user();
    check(
        &minimal,
        json!([{"op": "add", "path": format!("{CONTOSO}:region"), "value": "EMEA"}]),
        Ok(
            json!({"schemas": [USER_SCHEMA, CONTOSO], "id": "u-2", "userName": "agent", CONTOSO: {"region": "EMEA"}}),
        ),
    );
}

#[test]
fn pathless_add_and_replace() {
    let user = full_user();
    let expected = with_enterprise(
        &with(
            &user,
            json!({"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "A"}, "title": "Lead"}),
        ),
        json!({"department": "Ops"}),
    );
    for op in ["add", "replace", "Replace"] {
        check(
            &user,
            json!([{"op": op, "value": {
                "name.givenName": "A",
                format!("{ENTERPRISE}:department"): "Ops",
                "urn:ietf:params:scim:schemas:core:2.0:User:title": "Lead"
            }}]),
            Ok(expected.clone()),
        );
        check(
            &user,
            json!([{"op": op, "value": {
                "name": {"givenName": "A"},
                ENTERPRISE: {"department": "Ops"},
                "title": "Lead",
                "schemas": [USER_SCHEMA, ENTERPRISE]
            }}]),
            Ok(expected.clone()),
        );
    }
    // Path-less add merges multi-valued attributes; replace replaces them.
    let new_email = json!({"value": "new@example.com"});
    let mut merged = user["emails"].as_array().unwrap().clone();
    merged.push(new_email.clone());
    check(
        &user,
        json!([{"op": "add", "value": {"emails": [new_email.clone()]}}]),
        Ok(with(&user, emails(json!(merged)))),
    );
    check(
        &user,
        json!([{"op": "replace", "value": {"emails": [new_email.clone()]}}]),
        Ok(with(&user, emails(json!([new_email])))),
    );
    // readOnly members of a path-less value are ignored, as in a POST body.
    check(
        &user,
        json!([{"op": "replace", "value": {"id": "other", "meta": {"version": "x"}, "active": false}}]),
        Ok(with(&user, json!({"active": false}))),
    );
    check(
        &user,
        json!([{"op": "replace", "value": {"usrName": "x"}}]),
        Err((ScimType::InvalidPath, "unknown attribute 'usrName': no schema of resource type User declares it; did you mean 'userName'?")),
    );
    check(
        &user,
        json!([{"op": "replace", "value": "x"}]),
        Err((ScimType::InvalidValue, "Operations[0] (replace): a path-less replace expects an object whose keys are attribute paths, got the string \"x\"")),
    );
    check(
        &user,
        json!([{"op": "remove"}]),
        Err((
            ScimType::NoTarget,
            "Operations[0] (remove): 'remove' needs a 'path'",
        )),
    );
}

#[test]
fn multi_valued_add_merges_without_duplicates() {
    let user = full_user();
    let existing = user["emails"].clone();
    // The same value again: nothing changes.
    check(
        &user,
        json!([{"op": "add", "path": "emails", "value": [{"value": "babs@home.example", "type": "home"}]}]),
        Ok(user.clone()),
    );
    // Same `value` (case-insensitively, emails are not caseExact): merged.
    check(
        &user,
        json!([{"op": "add", "path": "emails", "value": {"value": "BABS@home.example", "display": "Home"}}]),
        Ok(with(
            &user,
            emails(json!([
                existing[0],
                {"value": "BABS@home.example", "display": "Home", "type": "home"}
            ])),
        )),
    );
    // A new primary value takes primary from the others.
    check(
        &user,
        json!([{"op": "add", "path": "emails", "value": [{"value": "c@x", "primary": "True"}]}]),
        Ok(with(
            &user,
            emails(json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                existing[1],
                {"value": "c@x", "primary": true}
            ])),
        )),
    );
    check(
        &user,
        json!([{"op": "add", "path": "emails", "value": [{"value": "c@x", "primary": true}, {"value": "d@x", "primary": true}]}]),
        Err((
            ScimType::InvalidValue,
            "attribute 'emails' has 2 values with \"primary\": true",
        )),
    );
    check(
        &minimal_user(),
        json!([{"op": "add", "path": "emails", "value": {"value": "a@x"}}]),
        Ok(with(&minimal_user(), emails(json!([{"value": "a@x"}])))),
    );
    // Replace without a filter replaces every value.
    check(
        &user,
        json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x"}]}]),
        Ok(with(&user, emails(json!([{"value": "only@x"}])))),
    );
}

#[test]
fn value_filters() {
    let user = full_user();
    let existing = user["emails"].clone();
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x"}]),
        Ok(with(
            &user,
            emails(json!([{"value": "w@x", "type": "work", "primary": true}, existing[1]])),
        )),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        Ok(with(
            &user,
            emails(json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@home.example", "type": "home", "primary": true}
            ])),
        )),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        Ok(with(&user, emails(json!([existing[0]])))),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "emails[type eq \"home\"].type"}]),
        Ok(with(
            &user,
            emails(json!([existing[0], {"value": "babs@home.example"}])),
        )),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "emails[type eq \"home\" or type eq \"work\"]"}]),
        Ok(with(&user, json!({"emails": null}))),
    );
    // Removing through a filter that matches nothing changes nothing.
    check(
        &user,
        json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
        Ok(user.clone()),
    );
    // Replace of whole values through a filter.
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@x", "type": "home"}}]),
        Ok(with(
            &user,
            emails(json!([existing[0], {"value": "h@x", "type": "home"}])),
        )),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "o@x"}}]),
        Err((
            ScimType::NoTarget,
            "no value of 'emails' matches [type eq \"other\"]",
        )),
    );
    // Add through a filter with no match creates the value from the filter.
    check(
        &user,
        json!([{"op": "add", "path": "emails[type eq \"other\"]", "value": {"value": "o@x"}}]),
        Ok(with(
            &user,
            emails(json!([existing[0], existing[1], {"type": "other", "value": "o@x"}])),
        )),
    );
    // A filter that does not describe a value cannot create one.
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type co \"oth\"].value", "value": "o@x"}]),
        Err((ScimType::NoTarget, "the filter does not say what to create")),
    );
    // Clearing through a filter that matches nothing creates nothing.
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": null}]),
        Ok(user.clone()),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "y"}]),
        Err((ScimType::InvalidPath, "'title' is single-valued")),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].kind", "value": "y"}]),
        Err((ScimType::InvalidPath, "unknown attribute 'emails.kind'")),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": 7}]),
        Err((ScimType::InvalidValue, "Operations[0] (replace, emails[type eq \"work\"].value): attribute 'emails.value' expects a string, got the number 7")),
    );
}

#[test]
fn sub_attribute_of_a_multi_valued_attribute_without_filter() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "remove", "path": "emails.type"}]),
        Ok(with(
            &user,
            emails(json!([
                {"value": "bjensen@example.com", "primary": true},
                {"value": "babs@home.example"}
            ])),
        )),
    );
    check(
        &minimal_user(),
        json!([{"op": "add", "path": "emails.value", "value": "a@x"}]),
        Ok(with(&minimal_user(), emails(json!([{"value": "a@x"}])))),
    );
}

#[test]
fn group_members() {
    let group = group();
    check(
        &group,
        json!([{"op": "add", "path": "members", "value": [{"value": "u-3", "display": "ignored"}, {"value": "u-1"}]}]),
        Ok(with(
            &group,
            json!({"members": [{"value": "u-1", "display": "Babs"}, {"value": "u-2"}, {"value": "u-3"}]}),
        )),
    );
    check(
        &group,
        json!([{"op": "remove", "path": "members", "value": [{"value": "u-1"}]}]),
        Ok(with(&group, json!({"members": [{"value": "u-2"}]}))),
    );
    check(
        &group,
        json!([{"op": "remove", "path": "members[value eq \"u-2\"]"}]),
        Ok(with(
            &group,
            json!({"members": [{"value": "u-1", "display": "Babs"}]}),
        )),
    );
    check(
        &group,
        json!([{"op": "remove", "path": "members"}]),
        Ok(with(&group, json!({"members": null}))),
    );
    check(
        &group,
        json!([{"op": "replace", "path": "members[value eq \"u-2\"].display", "value": "x"}]),
        Err((
            ScimType::Mutability,
            "attribute 'members.display' is readOnly",
        )),
    );
    // members.value is immutable: a member cannot be rewritten in place,
    // only removed and added.
    for operation in [
        json!({"op": "replace", "path": "members[value eq \"u-2\"].value", "value": "u-9"}),
        json!({"op": "remove", "path": "members[value eq \"u-2\"].value"}),
        json!({"op": "replace", "path": "members.value", "value": "u-9"}),
    ] {
        check(
            &group,
            json!([operation]),
            Err((
                ScimType::Mutability,
                "attribute 'members.value' is immutable",
            )),
        );
    }
    check(
        &group,
        json!([{"op": "replace", "path": "members[value eq \"u-2\"].value", "value": "u-2"}]),
        Ok(group.clone()),
    );
    check(
        &group,
        json!([{"op": "replace", "path": "members[value eq \"u-2\"].type", "value": "User"}]),
        Ok(with(
            &group,
            json!({"members": [{"value": "u-1", "display": "Babs"}, {"value": "u-2", "type": "User"}]}),
        )),
    );
}

#[test]
fn read_only_and_immutable() {
    let user = full_user();
    for path in [
        "id",
        "meta",
        "meta.created",
        "groups",
        &format!("{ENTERPRISE}:manager.displayName"),
    ] {
        check(
            &user,
            json!([{"op": "replace", "path": path, "value": "x"}]),
            Err((ScimType::Mutability, "is readOnly: the server sets it")),
        );
        check(
            &user,
            json!([{"op": "remove", "path": path}]),
            Err((ScimType::Mutability, "is readOnly")),
        );
    }
    let path = format!("{CONTOSO}:employeeId");
    let with_id = |id: &str| json!({"schemas": [USER_SCHEMA, CONTOSO], "id": "u-2", "userName": "agent", CONTOSO: {"employeeId": id}});
    check(
        &minimal_user(),
        json!([{"op": "add", "path": path, "value": "E1"}]),
        Ok(with_id("E1")),
    );
    check(
        &with_id("E1"),
        json!([{"op": "replace", "path": path, "value": "E1"}]),
        Ok(with_id("E1")),
    );
    for operation in [
        json!({"op": "replace", "path": path, "value": "E2"}),
        json!({"op": "remove", "path": path}),
        json!({"op": "replace", "value": { CONTOSO: {"employeeId": "E2"} }}),
    ] {
        check(
            &with_id("E1"),
            json!([{"op": "add", "path": "title", "value": "ok"}, operation]),
            Err((
                ScimType::Mutability,
                &format!("Operations[1] ({}", operation["op"].as_str().unwrap()),
            )),
        );
    }
    check(
        &with_id("E1"),
        json!([{"op": "replace", "path": path, "value": "E2"}]),
        Err((ScimType::Mutability, "is immutable: it is already set")),
    );
}

#[test]
fn unknown_paths() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "replace", "path": "usrName", "value": "x"}]),
        Err((ScimType::InvalidPath, "Operations[0] (replace, usrName): unknown attribute 'usrName': no schema of resource type User declares it; did you mean 'userName'?")),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "name.givenNmae", "value": "x"}]),
        Err((ScimType::InvalidPath, "did you mean 'name.givenName'?")),
    );
    check(
        &user,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:departmnt"), "value": "x"}]),
        Err((
            ScimType::InvalidPath,
            &format!("did you mean '{ENTERPRISE}:department'?"),
        )),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "name", "value": {"givenNmae": "x"}}]),
        Err((ScimType::InvalidPath, "unknown attribute 'name.givenNmae'")),
    );
    check(
        &user,
        json!([{"op": "add", "path": "emails", "value": [{"value": "a@x", "kind": "work"}]}]),
        Err((ScimType::InvalidPath, "unknown attribute 'emails.kind'")),
    );
    check(
        &user,
        json!([{"op": "add", "path": ENTERPRISE, "value": {"departmnt": "x"}}]),
        Err((
            ScimType::InvalidPath,
            &format!("unknown attribute '{ENTERPRISE}:departmnt'"),
        )),
    );
    check(
        &user,
        json!([{"op": "add", "path": "emails[", "value": "x"}]),
        Err((
            ScimType::InvalidPath,
            "Operations[0] (add): 'emails[': the '[' at position 6 is never closed",
        )),
    );
}

#[test]
fn values_are_checked_as_in_a_post() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "replace", "path": "active", "value": "False"}]),
        Ok(with(&user, json!({"active": false}))),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "title", "value": "ok"}, {"op": "replace", "path": "active", "value": "yes"}]),
        Err((ScimType::InvalidValue, "Operations[1] (replace, active): attribute 'active' expects a boolean, got the string \"yes\"")),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "name", "value": "Barbara"}]),
        Err((
            ScimType::InvalidValue,
            "attribute 'name' expects an object of sub-attributes",
        )),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "title", "value": ["a", "b"]}]),
        Err((
            ScimType::InvalidValue,
            "attribute 'title' expects a string, got an array",
        )),
    );
}

#[test]
fn the_result_is_validated() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "remove", "path": "userName"}]),
        Err((
            ScimType::InvalidValue,
            "the resource after the operations: required attribute 'userName' is missing",
        )),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "userName", "value": null}]),
        Err((
            ScimType::InvalidValue,
            "required attribute 'userName' is missing",
        )),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "userName"}, {"op": "add", "path": "userName", "value": "babs"}]),
        Ok(with(&user, json!({"userName": "babs"}))),
    );
    check(
        &user,
        json!([{"op": "replace", "path": "emails.primary", "value": true}]),
        Err((
            ScimType::InvalidValue,
            "has 2 values with \"primary\": true",
        )),
    );
}

/// Found by the `patch_apply` fuzz target: a multi-byte character across
/// byte 4 of a URN prefix made `AttrPath::parse` slice inside it and panic
/// (the bug is in `path.rs` `is_urn`).
#[test]
fn non_ascii_path_is_refused() {
    check(
        &full_user(),
        json!([{"op": "replace", "path": "urn\u{199}:x", "value": "E2"}]),
        Err((ScimType::InvalidPath, "Operations[0] (replace)")),
    );
    check(
        &full_user(),
        json!([{"op": "replace", "path": "émails", "value": "x"}]),
        Err((ScimType::InvalidPath, "Operations[0] (replace)")),
    );
}

#[test]
fn all_or_nothing() {
    let registry = registry();
    let rt = registry.resource_type("User").unwrap();
    let user = full_user();
    let patch = PatchOp::from_json(&message(json!([
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "replace", "path": "nope", "value": "x"}
    ])))
    .unwrap();
    let error = apply_patch(&registry, rt, &user, &patch.operations).unwrap_err();
    assert!(
        error.detail.starts_with("Operations[1] (replace, nope): "),
        "{error}"
    );
    assert_eq!(user, full_user());
}

#[test]
fn schemas_path() {
    let user = full_user();
    check(
        &user,
        json!([{"op": "add", "path": "schemas", "value": [USER_SCHEMA, ENTERPRISE]}]),
        Ok(user.clone()),
    );
    check(
        &user,
        json!([{"op": "add", "path": "schemas", "value": ["urn:x:y"]}]),
        Err((
            ScimType::InvalidValue,
            "\"urn:x:y\" is not a schema of resource type User",
        )),
    );
    check(
        &user,
        json!([{"op": "remove", "path": "schemas"}]),
        Err((ScimType::Mutability, "'schemas' is derived")),
    );
}

#[test]
fn message_parsing() {
    let parse = |body: Value| PatchOp::from_json(&body);
    let patch = parse(json!({
        "SCHEMAS": [PATCH_OP_URN.to_uppercase()],
        "operations": [
            {"OP": "Add", "PATH": "title", "VALUE": "x"},
            {"op": "REMOVE", "path": "  "},
            {"op": "Replace", "path": null, "value": {"title": "y"}}
        ]
    }))
    .unwrap();
    let kinds: Vec<_> = patch.operations.iter().map(|op| op.op).collect();
    assert_eq!(
        kinds,
        [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace]
    );
    assert_eq!(
        patch.operations[0].path.as_ref().unwrap().to_string(),
        "title"
    );
    assert!(patch.operations[1].path.is_none());
    assert!(patch.operations[1].value.is_none());
    // Round trip through to_json.
    assert_eq!(parse(patch.to_json()).unwrap(), patch);

    let bad = |body: Value, scim_type: ScimType, detail: &str| {
        let error = parse(body.clone()).unwrap_err();
        assert_eq!(error.scim_type, Some(scim_type), "{body}: {error}");
        assert!(
            error.detail.contains(detail),
            "{body}: {:?} lacks {detail:?}",
            error.detail
        );
    };
    let op = json!({"op": "add", "path": "title", "value": "x"});
    bad(
        json!([]),
        ScimType::InvalidSyntax,
        "a PATCH body must be a PatchOp object, got an array",
    );
    bad(
        json!({"Operations": [op]}),
        ScimType::InvalidSyntax,
        "'schemas' must be",
    );
    bad(
        json!({"schemas": [USER_SCHEMA], "Operations": [op]}),
        ScimType::InvalidSyntax,
        "'schemas' must be",
    );
    bad(
        json!({"schemas": [PATCH_OP_URN]}),
        ScimType::InvalidSyntax,
        "needs 'Operations'",
    );
    bad(
        json!({"schemas": [PATCH_OP_URN], "Operations": []}),
        ScimType::InvalidSyntax,
        "is empty",
    );
    bad(
        json!({"schemas": [PATCH_OP_URN], "Operations": op}),
        ScimType::InvalidSyntax,
        "must be a list",
    );
    bad(
        json!({"schemas": [PATCH_OP_URN], "Operations": [op], "extra": 1}),
        ScimType::InvalidSyntax,
        "unknown PatchOp member 'extra'",
    );
    bad(
        message(json!([op, {"op": "delete", "path": "title"}])),
        ScimType::InvalidSyntax,
        "Operations[1]: 'op' must be \"add\", \"remove\" or \"replace\", got the string \"delete\"",
    );
    bad(
        message(json!([{"path": "title"}])),
        ScimType::InvalidSyntax,
        "Operations[0]: 'op' must be \"add\", \"remove\" or \"replace\", got nothing",
    );
    bad(
        message(json!([7])),
        ScimType::InvalidSyntax,
        "Operations[0]: an operation must be an object",
    );
    bad(
        message(json!([{"op": "add", "path": "title"}])),
        ScimType::InvalidValue,
        "Operations[0] (add): 'value' is required for add",
    );
    bad(
        message(json!([{"op": "add", "path": 5, "value": 1}])),
        ScimType::InvalidPath,
        "Operations[0] (add): 'path' must be a string, got the number 5",
    );
    bad(
        message(json!([{"op": "add", "path": "a.b.c", "value": 1}])),
        ScimType::InvalidPath,
        "Operations[0] (add): 'a.b.c' is not an attribute path",
    );
    bad(
        message(json!([{"op": "add", "path": "title", "value": 1, "from": "x"}])),
        ScimType::InvalidSyntax,
        "Operations[0]: unknown operation member 'from'",
    );
}

// ---- properties ----

const STRING_PATHS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "nickName",
    "externalId",
    "name.givenName",
    "name.familyName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:region",
];

proptest! {
    /// After `replace path "v"`, the filter `path eq "v"` matches the result.
    #[test]
    fn replace_then_filter_matches(
        path_index in 0..STRING_PATHS.len(),
        value in "[a-zA-Z0-9 @._\\\\\"-]{1,24}",
        pathless in any::<bool>(),
    ) {
        let registry = registry();
        let rt = registry.resource_type("User").unwrap();
        let path = STRING_PATHS[path_index];
        let operation = if pathless {
            json!({"op": "replace", "value": { path: value }})
        } else {
            json!({"op": "replace", "path": path, "value": value})
        };
        let patch = PatchOp::from_json(&message(json!([operation]))).unwrap();
        let outcome = apply_patch(&registry, rt, &full_user(), &patch.operations).unwrap();
        let filter_text = format!("{path} eq {}", serde_json::to_string(&value).unwrap());
        let filter = Filter::parse(&filter_text).unwrap();
        prop_assert!(
            filter.matches(&outcome.resource, &registry, rt),
            "{} does not match {}", filter_text, outcome.resource
        );
    }

    /// Whatever the operations, PATCH does not panic, and a success is canonical.
    #[test]
    fn patch_never_panics(operations in proptest::collection::vec(operation(), 1..5)) {
        let registry = registry();
        let rt = registry.resource_type("User").unwrap();
        if let Ok(patch) = PatchOp::from_json(&message(Value::Array(operations))) {
            if let Ok(outcome) = apply_patch(&registry, rt, &full_user(), &patch.operations) {
                let again = canonicalize(&registry, rt, &outcome.resource).unwrap();
                prop_assert_eq!(again, outcome.resource);
            }
        }
    }
}

const ANY_PATHS: &[&str] = &[
    "userName",
    "title",
    "active",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.primary",
    "emails[type eq \"work\"]",
    "emails[type eq \"work\"].value",
    "emails[type eq \"other\"].primary",
    "emails[value co \"@\" and primary eq true]",
    "phoneNumbers[type eq \"mobile\"].value",
    "addresses[type eq \"work\"].locality",
    "groups",
    "id",
    "meta.created",
    "x509Certificates",
    "schemas",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:employeeId",
    "nope",
    "emails[",
    "",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z@. ]{0,8}".prop_map(Value::String),
        Just(json!("True")),
        Just(json!("work")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let keys = prop_oneof![
            Just("value".to_owned()),
            Just("type".to_owned()),
            Just("primary".to_owned()),
            Just("givenName".to_owned()),
            Just("title".to_owned()),
            Just("name.givenName".to_owned()),
            Just("emails".to_owned()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("add"),
            Just("replace"),
            Just("remove"),
            Just("Replace")
        ],
        proptest::option::of(0..ANY_PATHS.len()),
        proptest::option::of(json_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut operation = json!({ "op": op });
            if let Some(path) = path {
                operation["path"] = json!(ANY_PATHS[path]);
            }
            if let Some(value) = value {
                operation["value"] = value;
            }
            operation
        })
}
