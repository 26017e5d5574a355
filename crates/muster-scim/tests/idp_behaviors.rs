//! Every resource and PATCH behaviour of `idp-behaviors.md` (what Entra ID,
//! Okta and Ping really send), one test each, through one `check` helper.
//! Bodies are as the providers send them; expectations are canonical JSON.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::PATCH_OP_URN;
use muster_scim::schema::builtin::{
    ENTERPRISE_USER_SCHEMA as ENTERPRISE, ENTRA_GROUP_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use muster_scim::{
    apply_patch, check_immutable, normalize, Attribute, AttributeType, PatchOp, Schema,
    SchemaRegistry,
};
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    registry
        .add_schema(Schema {
            id: CONTOSO.to_owned(),
            name: Some("Contoso".to_owned()),
            description: None,
            attributes: vec![Attribute::new("region", AttributeType::String)],
        })
        .unwrap();
    registry.bind_extension("User", CONTOSO, false).unwrap();
    registry
}

/// What a provider sends.
enum Call {
    /// POST or PUT: a resource body, validated by `normalize`.
    Create(Value),
    /// PATCH of the `before` resource: the `Operations` list.
    Patch(Value, Value),
}

/// Runs the call against a `User` (or `Group`, by the body's schemas) and
/// compares the canonical result. Each call must succeed: these are what
/// real clients send.
fn check(call: Call, expected: Value) {
    let registry = registry();
    let is_group = |resource: &Value| resource.to_string().contains(GROUP_SCHEMA);
    let (actual, shown) = match call {
        Call::Create(body) => {
            let rt = registry
                .resource_type(if is_group(&body) { "Group" } else { "User" })
                .unwrap();
            (normalize(&registry, rt, &body), body)
        }
        Call::Patch(before, operations) => {
            let rt = registry
                .resource_type(if is_group(&before) { "Group" } else { "User" })
                .unwrap();
            let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
            let result = PatchOp::from_json(&body)
                .and_then(|patch| apply_patch(&registry, rt, &before, &patch.operations))
                .map(|outcome| {
                    assert_eq!(outcome.changed, outcome.resource != before, "changed flag");
                    outcome.resource
                });
            (result, body)
        }
    };
    match actual {
        Ok(actual) => assert_eq!(actual, expected, "request: {shown}"),
        Err(error) => panic!("request {shown} was refused: {error}"),
    }
}

/// A user as Muster stores it after Entra ID created it.
fn stored_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "id": "u-1",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7a2e4a1c0e11",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                 "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
        "userName": "Test_User_dfeef4c5@contoso.com",
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "active": true,
        "emails": [{"value": "Test_User_22370c1a@contoso.com", "type": "work", "primary": true}],
        ENTERPRISE: {"department": "Sales", "manager": {"value": "m-1"}}
    })
}

fn stored_group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "externalId": "60f2c8ce-8e3a-4f9a-8f2d-1d2b7b2c0a55",
        "meta": {"resourceType": "Group", "created": "2024-01-01T00:00:00Z",
                 "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
        "displayName": "Sales",
        "members": [{"value": "u-1"}, {"value": "u-2"}]
    })
}

/// `base` with top-level members set (`null` removes).
fn with(base: &Value, changes: Value) -> Value {
    let mut resource = base.clone();
    let object = resource.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    resource
}

// ---- Microsoft Entra ID ----

/// POST /Users: core attributes, the enterprise extension nested under its
/// URN, a custom attribute as a URN-qualified key, "True"/"False" strings.
#[test]
fn entra_create_user_with_enterprise_and_custom_extension() {
    check(
        Call::Create(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7a2e4a1c0e11",
            "userName": "Test_User_dfeef4c5@contoso.com",
            "active": "True",
            "displayName": "Test User",
            "emails": [{"primary": true, "type": "work", "value": "Test_User_22370c1a@contoso.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            ENTERPRISE: {"department": "Sales", "manager": {"value": ""}},
            format!("{CONTOSO}:region"): "EMEA"
        })),
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE, CONTOSO],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7a2e4a1c0e11",
            "userName": "Test_User_dfeef4c5@contoso.com",
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "displayName": "Test User",
            "active": true,
            "emails": [{"value": "Test_User_22370c1a@contoso.com", "type": "work", "primary": true}],
            ENTERPRISE: {"department": "Sales"},
            CONTOSO: {"region": "EMEA"}
        }),
    );
}

/// Operation names capitalised: "Add", "Replace", "Remove".
#[test]
fn entra_capitalised_operation_names() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([
                {"op": "Add", "path": "title", "value": "Agent"},
                {"op": "Replace", "path": "displayName", "value": "Babs"},
                {"op": "Remove", "path": "name.formatted"}
            ]),
        ),
        with(
            &user,
            json!({"title": "Agent", "displayName": "Babs",
                   "name": {"familyName": "familyName", "givenName": "givenName"}}),
        ),
    );
}

/// Booleans as the strings "True"/"False" (legacy mode).
#[test]
fn entra_boolean_strings() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        ),
        with(&user, json!({"active": false})),
    );
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].primary", "value": "True"}]),
        ),
        user.clone(),
    );
}

/// Path-less replace whose value keys are paths (dotted and URN-qualified).
#[test]
fn entra_pathless_replace_with_dotted_and_urn_keys() {
    let user = stored_user();
    let mut expected = with(
        &user,
        json!({"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "A"}}),
    );
    expected[ENTERPRISE]["department"] = json!("Ops");
    check(
        Call::Patch(
            user,
            json!([{"op": "replace", "value": {
                "name.givenName": "A",
                format!("{ENTERPRISE}:department"): "Ops"
            }}]),
        ),
        expected,
    );
}

/// `emails[type eq "work"].value` on a user with no work email creates it.
#[test]
fn entra_work_email_created_through_filter_path() {
    let user = with(&stored_user(), json!({"emails": null}));
    for op in ["Add", "Replace"] {
        check(
            Call::Patch(
                user.clone(),
                json!([{"op": op, "path": "emails[type eq \"work\"].value", "value": "w@contoso.com"}]),
            ),
            with(
                &user,
                json!({"emails": [{"value": "w@contoso.com", "type": "work"}]}),
            ),
        );
    }
    // With an existing work email it is updated, not duplicated.
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@contoso.com"}]),
        ),
        with(
            &user,
            json!({"emails": [{"value": "w@contoso.com", "type": "work", "primary": true}]}),
        ),
    );
}

/// `phoneNumbers[type eq "mobile"].value` likewise.
#[test]
fn entra_mobile_phone_created_through_filter_path() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0100"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"}
            ]),
        ),
        with(
            &user,
            json!({"phoneNumbers": [
                {"value": "+1 555 0100", "type": "work"},
                {"value": "+1 555 0199", "type": "mobile"}
            ]}),
        ),
    );
}

/// `addresses[type eq "work"].locality` likewise, field by field.
#[test]
fn entra_work_address_created_through_filter_path() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([
                {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
                {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}
            ]),
        ),
        with(
            &user,
            json!({"addresses": [{"streetAddress": "1 Main St", "locality": "Redmond",
                                  "postalCode": "98052", "type": "work"}]}),
        ),
    );
}

/// Manager set with a plain id string, then removed with no value.
#[test]
fn entra_manager_as_plain_string_and_removed() {
    let user = stored_user();
    let path = format!("{ENTERPRISE}:manager");
    let mut expected = user.clone();
    expected[ENTERPRISE]["manager"] = json!({"value": "m-2"});
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "Add", "path": path, "value": "m-2"}]),
        ),
        expected,
    );
    let mut expected = user.clone();
    expected[ENTERPRISE]
        .as_object_mut()
        .unwrap()
        .remove("manager");
    check(
        Call::Patch(user.clone(), json!([{"op": "Remove", "path": path}])),
        expected.clone(),
    );
    // Entra ID may also clear it with an empty value.
    check(
        Call::Patch(user, json!([{"op": "Replace", "path": path, "value": ""}])),
        expected,
    );
}

/// A null or empty value clears the attribute ("match null values").
#[test]
fn entra_null_and_empty_values_clear() {
    let user = with(&stored_user(), json!({"title": "Agent", "nickName": "B"}));
    let expected = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([
                {"op": "Replace", "path": "title", "value": null},
                {"op": "Replace", "path": "nickName", "value": ""}
            ]),
        ),
        expected.clone(),
    );
    check(
        Call::Patch(
            user,
            json!([{"op": "Replace", "value": {"title": "", "nickName": null}}]),
        ),
        expected,
    );
}

/// Group membership added with a value list.
#[test]
fn entra_members_added() {
    let group = stored_group();
    check(
        Call::Patch(
            group.clone(),
            json!([{"op": "Add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-1"}]}]),
        ),
        with(
            &group,
            json!({"members": [{"value": "u-1"}, {"value": "u-2"}, {"value": "u-3"}]}),
        ),
    );
}

/// Group membership removed with a value list, or with a filter path.
#[test]
fn entra_members_removed_both_forms() {
    let group = stored_group();
    let expected = with(&group, json!({"members": [{"value": "u-2"}]}));
    check(
        Call::Patch(
            group.clone(),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}]}]),
        ),
        expected.clone(),
    );
    check(
        Call::Patch(
            group,
            json!([{"op": "Remove", "path": "members[value eq \"u-1\"]"}]),
        ),
        expected,
    );
}

/// Soft delete (`replace active false`) and restore (`replace active true`).
#[test]
fn entra_soft_delete_and_restore() {
    let user = stored_user();
    let disabled = with(&user, json!({"active": false}));
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "Replace", "path": "active", "value": false}]),
        ),
        disabled.clone(),
    );
    check(
        Call::Patch(
            disabled,
            json!([{"op": "Replace", "path": "active", "value": true}]),
        ),
        user,
    );
}

/// Group create with Entra's extra schema and `"$ref": null` in members.
#[test]
fn entra_group_create_with_extra_schema_and_null_refs() {
    check(
        Call::Create(json!({
            "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
            "externalId": "60f2c8ce-8e3a-4f9a-8f2d-1d2b7b2c0a55",
            "displayName": "Sales",
            "meta": {"resourceType": "Group"},
            "members": [{"value": "u-1", "$ref": null}, {"value": "u-2", "$ref": null}]
        })),
        json!({
            "schemas": [GROUP_SCHEMA],
            "externalId": "60f2c8ce-8e3a-4f9a-8f2d-1d2b7b2c0a55",
            "displayName": "Sales",
            "members": [{"value": "u-1"}, {"value": "u-2"}]
        }),
    );
}

// ---- Okta ----

/// POST /Users with `password` (writeOnly, kept for the server to hash)
/// and `"groups": []` (readOnly, ignored).
#[test]
fn okta_create_user_with_password_and_empty_groups() {
    check(
        Call::Create(json!({
            "schemas": [USER_SCHEMA],
            "userName": "isaac.brock@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock"},
            "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        })),
        json!({
            "schemas": [USER_SCHEMA],
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "isaac.brock@example.com",
            "name": {"familyName": "Brock", "givenName": "Isaac"},
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "active": true,
            "password": "1mz050nq",
            "emails": [{"value": "isaac.brock@example.com", "type": "work", "primary": true}]
        }),
    );
}

/// Deactivation: path-less replace with `{"active": false}`.
#[test]
fn okta_pathless_replace_active_false() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "replace", "value": {"active": false}}]),
        ),
        with(&user, json!({"active": false})),
    );
}

/// Updates with PUT: the full body is validated like a POST, and server
/// attributes (`id`, `meta`) in it are ignored.
#[test]
fn okta_put_full_replace() {
    let registry = registry();
    let rt = registry.resource_type("User").unwrap();
    let body = json!({
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "userName": "isaac.brock@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "active": false,
        "meta": {"resourceType": "User"}
    });
    let replacement = normalize(&registry, rt, &body).unwrap();
    assert!(replacement.get("id").is_none() && replacement.get("meta").is_none());
    check_immutable(&registry, rt, &stored_user(), &replacement).unwrap();
}

/// Group push: PATCH members add and remove in one request.
#[test]
fn okta_group_push_members() {
    let group = stored_group();
    check(
        Call::Patch(
            group.clone(),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "u-3", "display": "c@example.com"}]},
                {"op": "remove", "path": "members[value eq \"u-2\"]"}
            ]),
        ),
        with(
            &group,
            json!({"members": [{"value": "u-1"}, {"value": "u-3"}]}),
        ),
    );
}

// ---- Ping Identity ----

/// PUT-only connectors relying on externalId.
#[test]
fn ping_put_with_external_id() {
    check(
        Call::Create(json!({
            "schemas": [USER_SCHEMA],
            "externalId": "ping-42",
            "userName": "jdoe",
            "active": true
        })),
        json!({"schemas": [USER_SCHEMA], "externalId": "ping-42", "userName": "jdoe", "active": true}),
    );
}

// ---- What every client relies on ----

/// Attribute names are case-insensitive and URN-qualified names work in
/// JSON keys and in PATCH paths.
#[test]
fn case_insensitive_and_urn_qualified_names() {
    check(
        Call::Create(json!({
            "SCHEMAS": [USER_SCHEMA],
            "USERNAME": "jdoe",
            format!("{USER_SCHEMA}:displayName"): "J",
            format!("{}:Department", ENTERPRISE.to_uppercase()): "Ops"
        })),
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "jdoe",
            "displayName": "J",
            ENTERPRISE: {"department": "Ops"}
        }),
    );
    let user = stored_user();
    let mut expected = with(&user, json!({"displayName": "J"}));
    expected[ENTERPRISE]["department"] = json!("Ops");
    check(
        Call::Patch(
            user,
            json!([
                {"op": "replace", "path": format!("{USER_SCHEMA}:DISPLAYNAME"), "value": "J"},
                {"op": "replace", "path": format!("{ENTERPRISE}:DEPARTMENT"), "value": "Ops"}
            ]),
        ),
        expected,
    );
}

/// Interop drafts treat `add` on a single-valued attribute as `replace`.
#[test]
fn add_on_single_valued_attribute_replaces() {
    let user = stored_user();
    check(
        Call::Patch(
            user.clone(),
            json!([{"op": "add", "path": "userName", "value": "new"}]),
        ),
        with(&user, json!({"userName": "new"})),
    );
}
