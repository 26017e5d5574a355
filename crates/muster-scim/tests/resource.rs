//! Resource validation: client bodies to canonical JSON, and the errors.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::schema::builtin::{
    ENTERPRISE_USER_SCHEMA, ENTRA_GROUP_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use muster_scim::{
    canonicalize, check_immutable, normalize, Attribute, AttributeType, Mutability, Schema,
    SchemaRegistry, ScimType,
};
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

/// A registry with a custom User extension holding one attribute of each type.
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let attribute = |name: &str, kind| Attribute::new(name, kind);
    registry
        .add_schema(Schema {
            id: CONTOSO.to_owned(),
            name: Some("Contoso".to_owned()),
            description: None,
            attributes: vec![
                attribute("region", AttributeType::String),
                attribute("level", AttributeType::Integer),
                attribute("score", AttributeType::Decimal),
                attribute("hired", AttributeType::DateTime),
                attribute("badge", AttributeType::Binary),
                attribute("remote", AttributeType::Boolean),
                Attribute {
                    multi_valued: true,
                    ..attribute("skills", AttributeType::String)
                },
                Attribute {
                    mutability: Mutability::Immutable,
                    ..attribute("employeeId", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", CONTOSO, false).unwrap();
    registry
}

type Expected<'a> = Result<Value, (ScimType, &'a str)>;

/// Normalises `input` as a resource of type `resource_type` and compares
/// with the expected canonical JSON, or the error type and a piece of its
/// detail. Canonical output must normalise to itself.
fn check_type(resource_type: &str, input: Value, expected: Expected<'_>) {
    let registry = registry();
    let rt = registry.resource_type(resource_type).unwrap();
    match (normalize(&registry, rt, &input), expected) {
        (Ok(actual), Ok(expected)) => {
            assert_eq!(actual, expected, "input: {input}");
            assert_eq!(
                serde_json::to_string(&actual).unwrap(),
                serde_json::to_string(&expected).unwrap(),
                "key order, input: {input}"
            );
            let again = normalize(&registry, rt, &actual).unwrap();
            assert_eq!(again, actual, "normalising is idempotent");
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
        (actual, expected) => panic!("input {input}:\n got {actual:?}\n expected {expected:?}"),
    }
}

fn check(input: Value, expected: Expected<'_>) {
    check_type("User", input, expected);
}

fn user(fields: Value) -> Value {
    let mut user = json!({"schemas": [USER_SCHEMA], "userName": "bjensen"});
    for (key, value) in fields.as_object().unwrap() {
        user[key] = value.clone();
    }
    user
}

fn canonical(fields: Value) -> Value {
    user(fields)
}

#[test]
fn keys_take_canonical_case_and_order() {
    check(
        json!({
            "ACTIVE": true,
            "Name": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
            "USERNAME": "bjensen",
            "SCHEMAS": [USER_SCHEMA.to_uppercase()],
            "externalid": "e-1",
        }),
        Ok(json!({
            "schemas": [USER_SCHEMA],
            "externalId": "e-1",
            "userName": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "active": true,
        })),
    );
}

#[test]
fn schemas_member() {
    check(
        json!({"userName": "x"}),
        Err((
            ScimType::InvalidValue,
            "required attribute 'schemas' is missing",
        )),
    );
    check(
        json!({"schemas": [ENTERPRISE_USER_SCHEMA], "userName": "x"}),
        Err((ScimType::InvalidValue, "must include the core schema")),
    );
    check(
        json!({"schemas": [USER_SCHEMA, "urn:example:unknown"], "userName": "x"}),
        Err((
            ScimType::InvalidValue,
            "\"urn:example:unknown\" in 'schemas'",
        )),
    );
    check(
        json!({"schemas": "not a urn", "userName": "x"}),
        Err((
            ScimType::InvalidValue,
            "\"not a urn\" in 'schemas' is not a schema of resource type User",
        )),
    );
    check(
        json!({"schemas": 5, "userName": "x"}),
        Err((ScimType::InvalidValue, "expects a list of schema URNs")),
    );
    // An extension listed but not carried is dropped; one carried but not
    // listed is added.
    check(
        json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "x"}),
        Ok(json!({"schemas": [USER_SCHEMA], "userName": "x"})),
    );
    check(
        json!({"schemas": [USER_SCHEMA], "userName": "x", ENTERPRISE_USER_SCHEMA: {"department": "Ops"}}),
        Ok(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "x",
            ENTERPRISE_USER_SCHEMA: {"department": "Ops"},
        })),
    );
    // Entra ID's extra group schema is accepted and dropped.
    check_type(
        "Group",
        json!({"schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA], "displayName": "Ops"}),
        Ok(json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops"})),
    );
}

#[test]
fn extension_attributes_in_every_form() {
    let expected = Ok(json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, CONTOSO],
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        ENTERPRISE_USER_SCHEMA: {"department": "Ops", "manager": {"value": "m-1"}},
        CONTOSO: {"region": "EMEA"},
    }));
    check(
        user(json!({
            ENTERPRISE_USER_SCHEMA: {"Department": "Ops", "manager": {"value": "m-1"}},
            CONTOSO: {"region": "EMEA"},
            "name": {"givenName": "Barbara"},
        })),
        expected.clone(),
    );
    check(
        user(json!({
            format!("{ENTERPRISE_USER_SCHEMA}:department"): "Ops",
            format!("{ENTERPRISE_USER_SCHEMA}:manager.value"): "m-1",
            format!("{CONTOSO}:REGION"): "EMEA",
            "name.givenName": "Barbara",
        })),
        expected.clone(),
    );
    // Nested and qualified forms of one attribute merge.
    check(
        user(json!({
            ENTERPRISE_USER_SCHEMA: {"department": "Ops"},
            format!("{ENTERPRISE_USER_SCHEMA}:manager"): "m-1",
            format!("{CONTOSO}:region"): "EMEA",
            format!("{USER_SCHEMA}:name"): {"givenName": "Barbara"},
        })),
        expected,
    );
    // Core attributes nested under the core URN.
    check(
        json!({"schemas": [USER_SCHEMA], USER_SCHEMA: {"userName": "x", "title": "T"}}),
        Ok(json!({"schemas": [USER_SCHEMA], "userName": "x", "title": "T"})),
    );
}

#[test]
fn the_same_attribute_twice() {
    check(
        user(json!({"title": "A", "TITLE": "B"})),
        Err((
            ScimType::InvalidSyntax,
            "attribute 'title' is given more than once",
        )),
    );
    check(
        user(json!({"name": {"givenName": "A"}, "name.givenName": "B"})),
        Err((
            ScimType::InvalidSyntax,
            "attribute 'name.givenName' is given more than once",
        )),
    );
    check(
        user(json!({"title": "A", "TITLE": "A"})),
        Ok(canonical(json!({"title": "A"}))),
    );
}

#[test]
fn read_only_attributes_are_ignored() {
    check(
        user(json!({
            "id": "client-chosen",
            "meta": {"created": "not even a date"},
            "groups": [{"value": "g-1"}],
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m-1", "displayName": "Boss"}},
        })),
        Ok(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen",
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m-1"}},
        })),
    );
    check_type(
        "Group",
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops",
               "members": [{"value": "u-1", "display": "Babs", "$ref": null}]}),
        Ok(json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": "u-1"}]})),
    );
}

#[test]
fn absent_values_are_left_out() {
    check(
        user(json!({
            "title": null,
            "nickName": "",
            "emails": [],
            "name": {},
            "addresses": [{"type": null, "locality": ""}],
            "phoneNumbers": [null],
            ENTERPRISE_USER_SCHEMA: {"department": null, "manager": {"value": ""}},
            CONTOSO: {},
        })),
        Ok(canonical(json!({}))),
    );
}

#[test]
fn types_are_checked() {
    let ok = |fields: Value, expected: Value| check(user(fields), Ok(canonical(expected)));
    ok(json!({"active": "True"}), json!({"active": true}));
    ok(json!({"active": "false"}), json!({"active": false}));
    ok(
        json!({"emails": [{"value": "a@x", "primary": "TRUE"}]}),
        json!({"emails": [{"value": "a@x", "primary": true}]}),
    );
    ok(
        json!({"profileUrl": "https://x/me"}),
        json!({"profileUrl": "https://x/me"}),
    );
    ok(
        json!({"x509Certificates": [{"value": "TUlJ"}]}),
        json!({"x509Certificates": [{"value": "TUlJ"}]}),
    );
    let bad = |fields: Value, detail: &str| {
        check(user(fields), Err((ScimType::InvalidValue, detail)));
    };
    bad(
        json!({"active": "yes"}),
        "attribute 'active' expects a boolean, got the string \"yes\"",
    );
    bad(
        json!({"active": 1}),
        "attribute 'active' expects a boolean, got the number 1",
    );
    bad(
        json!({"userName": 42}),
        "attribute 'userName' expects a string, got the number 42",
    );
    bad(
        json!({"title": ["a"]}),
        "attribute 'title' expects a string, got an array",
    );
    bad(
        json!({"name": "Barbara"}),
        "attribute 'name' expects an object of sub-attributes, got the string \"Barbara\"",
    );
    bad(
        json!({"name": {"givenName": false}}),
        "attribute 'name.givenName' expects a string, got the boolean false",
    );
    bad(
        json!({"emails": [{"value": 5}]}),
        "attribute 'emails.value' expects a string, got the number 5",
    );
    bad(
        json!({"emails": [["a@x"]]}),
        "attribute 'emails' expects a list of objects, got a list holding an array",
    );
    bad(
        json!({"x509Certificates": [{"value": "%%%"}]}),
        "attribute 'x509Certificates.value' expects a base64-encoded string",
    );
}

#[test]
fn custom_extension_types() {
    let ext = |fields: Value| user(json!({ CONTOSO: fields }));
    let canonical_ext = |fields: Value| json!({"schemas": [USER_SCHEMA, CONTOSO], "userName": "bjensen", CONTOSO: fields});
    let all = json!({
        "region": "EMEA", "level": 3, "score": 4.5, "hired": "2024-05-01T09:00:00+02:00",
        "badge": "aGVsbG8=", "remote": true, "skills": ["voice", "chat"], "employeeId": "E1",
    });
    check(ext(all.clone()), Ok(canonical_ext(all)));
    check(
        ext(json!({"skills": "voice"})),
        Ok(canonical_ext(json!({"skills": ["voice"]}))),
    );
    check(
        ext(json!({"skills": ["voice", "voice"]})),
        Ok(canonical_ext(json!({"skills": ["voice"]}))),
    );
    check(
        ext(json!({"score": 4})),
        Ok(canonical_ext(json!({"score": 4}))),
    );
    check(
        ext(json!({"remote": "TRUE"})),
        Ok(canonical_ext(json!({"remote": true}))),
    );
    let bad =
        |fields: Value, detail: &str| check(ext(fields), Err((ScimType::InvalidValue, detail)));
    bad(
        json!({"level": 3.5}),
        &format!("attribute '{CONTOSO}:level' expects an integer, got the number 3.5"),
    );
    bad(
        json!({"level": "3"}),
        "expects an integer, got the string \"3\"",
    );
    bad(
        json!({"score": "4.5"}),
        "expects a number, got the string \"4.5\"",
    );
    bad(
        json!({"hired": "yesterday"}),
        "expects an RFC 3339 dateTime string",
    );
    bad(
        json!({"hired": "2024-05-01"}),
        "expects an RFC 3339 dateTime string",
    );
    bad(
        json!({"badge": "not base64"}),
        "expects a base64-encoded string",
    );
    bad(
        json!({"skills": [1]}),
        "expects a string or a list of strings, got the number 1",
    );
    check(
        user(json!({ CONTOSO: "EMEA" })),
        Err((
            ScimType::InvalidValue,
            "expects an object of the schema's attributes",
        )),
    );
}

#[test]
fn multi_valued_attributes() {
    // A single value is wrapped; exact duplicates are dropped.
    check(
        user(json!({"emails": {"value": "a@x", "type": "work"}})),
        Ok(canonical(
            json!({"emails": [{"value": "a@x", "type": "work"}]}),
        )),
    );
    check(
        user(json!({"emails": [{"value": "a@x"}, {"VALUE": "a@x"}]})),
        Ok(canonical(json!({"emails": [{"value": "a@x"}]}))),
    );
    // Canonical values are suggestions.
    check(
        user(json!({"emails": [{"value": "a@x", "type": "Corporate"}]})),
        Ok(canonical(
            json!({"emails": [{"value": "a@x", "type": "Corporate"}]}),
        )),
    );
    check(
        user(json!({"emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]})),
        Err((
            ScimType::InvalidValue,
            "attribute 'emails' has 2 values with \"primary\": true; at most one value may be primary",
        )),
    );
    check(
        user(
            json!({"emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}]}),
        ),
        Ok(canonical(
            json!({"emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}]}),
        )),
    );
}

#[test]
fn manager_as_a_plain_string() {
    check(
        user(json!({ ENTERPRISE_USER_SCHEMA: {"manager": "m-1"} })),
        Ok(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen",
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m-1"}},
        })),
    );
}

#[test]
fn unknown_attributes_are_refused_with_a_suggestion() {
    let bad =
        |fields: Value, detail: &str| check(user(fields), Err((ScimType::InvalidSyntax, detail)));
    bad(
        json!({"usrName": "x"}),
        "unknown attribute 'usrName': no schema of resource type User declares it; did you mean 'userName'?",
    );
    bad(
        json!({"name": {"givenNmae": "x"}}),
        "unknown attribute 'name.givenNmae'",
    );
    bad(
        json!({"name": {"givenNmae": "x"}}),
        "did you mean 'name.givenName'?",
    );
    bad(
        json!({ ENTERPRISE_USER_SCHEMA: {"departmnt": "Ops"} }),
        &format!("did you mean '{ENTERPRISE_USER_SCHEMA}:department'?"),
    );
    bad(
        json!({ format!("{CONTOSO}:regoin"): "EMEA" }),
        &format!("did you mean '{CONTOSO}:region'?"),
    );
    bad(
        json!({"urn:example:other:attr": 1}),
        "unknown attribute 'urn:example:other:attr'",
    );
    bad(json!({"not a name": 1}), "unknown attribute 'not a name'");
    bad(
        json!({"emails": [{"value": "a@x", "kind": "work"}]}),
        "unknown attribute 'emails.kind'",
    );
    // Also inside a readWrite complex value with readOnly siblings.
    bad(
        json!({ ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m", "name": "x"}} }),
        &format!("unknown attribute '{ENTERPRISE_USER_SCHEMA}:manager.name'"),
    );
}

#[test]
fn required_attributes() {
    check(
        json!({"schemas": [USER_SCHEMA], "title": "x"}),
        Err((
            ScimType::InvalidValue,
            "required attribute 'userName' is missing",
        )),
    );
    check(
        json!({"schemas": [USER_SCHEMA], "userName": ""}),
        Err((
            ScimType::InvalidValue,
            "required attribute 'userName' is missing",
        )),
    );
    check_type(
        "Group",
        json!({"schemas": [GROUP_SCHEMA], "members": []}),
        Err((
            ScimType::InvalidValue,
            "required attribute 'displayName' is missing",
        )),
    );
}

#[test]
fn required_extension_and_sub_attributes() {
    let mut registry = SchemaRegistry::builtin();
    let urn = "urn:example:required:2.0:User";
    registry
        .add_schema(Schema {
            id: urn.to_owned(),
            name: None,
            description: None,
            attributes: vec![Attribute {
                sub_attributes: vec![
                    Attribute {
                        required: true,
                        ..Attribute::new("id", AttributeType::String)
                    },
                    Attribute::new("label", AttributeType::String),
                ],
                multi_valued: true,
                ..Attribute::new("badges", AttributeType::Complex)
            }],
        })
        .unwrap();
    registry.bind_extension("User", urn, true).unwrap();
    let rt = registry.resource_type("User").unwrap();
    let error = normalize(&registry, rt, &user(json!({}))).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
    assert!(
        error
            .detail
            .contains(&format!("required extension '{urn}' is missing")),
        "{error}"
    );
    let error = normalize(
        &registry,
        rt,
        &user(json!({ urn: {"badges": [{"label": "x"}]} })),
    )
    .unwrap_err();
    assert!(
        error
            .detail
            .contains(&format!("required attribute '{urn}:badges.id' is missing")),
        "{error}"
    );
    normalize(
        &registry,
        rt,
        &user(json!({ urn: {"badges": [{"id": "b"}]} })),
    )
    .unwrap();
}

#[test]
fn not_an_object() {
    check(
        json!([1]),
        Err((
            ScimType::InvalidSyntax,
            "a User resource must be a JSON object",
        )),
    );
    check(
        json!("x"),
        Err((ScimType::InvalidSyntax, "got the string \"x\"")),
    );
}

#[test]
fn okta_post_with_password_and_empty_groups() {
    check(
        user(json!({"password": "s3cret!", "groups": [], "active": true})),
        Ok(canonical(json!({"active": true, "password": "s3cret!"}))),
    );
}

#[test]
fn canonicalize_keeps_server_attributes() {
    let registry = registry();
    let rt = registry.resource_type("User").unwrap();
    let stored = json!({
        "meta": {"resourceType": "User", "version": "W/\"3\"", "created": "2024-01-01T00:00:00Z"},
        "userName": "bjensen",
        "id": "u-1",
        "groups": [{"value": "g-1", "display": "Ops"}],
        ENTERPRISE_USER_SCHEMA: {},
    });
    let canonical = canonicalize(&registry, rt, &stored).unwrap();
    assert_eq!(
        serde_json::to_string(&canonical).unwrap(),
        serde_json::to_string(&json!({
            "schemas": [USER_SCHEMA],
            "id": "u-1",
            "meta": {"resourceType": "User", "version": "W/\"3\"", "created": "2024-01-01T00:00:00Z"},
            "userName": "bjensen",
            "groups": [{"value": "g-1", "display": "Ops"}],
        }))
        .unwrap()
    );
}

#[test]
fn immutable_attributes_on_put() {
    let registry = registry();
    let rt = registry.resource_type("User").unwrap();
    let with_id = |id: Option<&str>| {
        let mut resource = user(json!({ CONTOSO: {"region": "EMEA"} }));
        if let Some(id) = id {
            resource[CONTOSO]["employeeId"] = json!(id);
        }
        normalize(&registry, rt, &resource).unwrap()
    };
    // Unset before: may be set.
    check_immutable(&registry, rt, &with_id(None), &with_id(Some("E1"))).unwrap();
    // Same value: fine.
    check_immutable(&registry, rt, &with_id(Some("E1")), &with_id(Some("E1"))).unwrap();
    for replacement in [with_id(Some("E2")), with_id(None)] {
        let error = check_immutable(&registry, rt, &with_id(Some("E1")), &replacement).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        assert_eq!(
            error.detail,
            format!("attribute '{CONTOSO}:employeeId' is immutable: it is already set and cannot be changed or removed")
        );
    }
    // A group's members may be added and removed although members.value is immutable.
    let rt = registry.resource_type("Group").unwrap();
    let group = |members: Value| json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": members});
    check_immutable(
        &registry,
        rt,
        &group(json!([{"value": "a"}])),
        &group(json!([{"value": "b"}])),
    )
    .unwrap();
}
