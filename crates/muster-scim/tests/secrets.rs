//! Secrets (issue 9): every spelling of a PATCH on `password` or `members`
//! reaches the server as one canonical path ([`canonical_operations`]),
//! which applies exactly as the client's operations; and `returned: never`
//! attributes cannot be filtered, sorted or selected on.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::{targets, PatchOperation, PATCH_OP_URN};
use muster_scim::schema::builtin::{
    ENTERPRISE_USER_SCHEMA as ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA,
};
use muster_scim::schema::{Container, ResolvedAttribute, ResolvedPath};
use muster_scim::{
    apply_patch_with, canonical_operations, AttrPath, Attribute, AttributeType, Filter, Mutability,
    PatchOp, Patched, Projection, ResourceType, Returned, Schema, SchemaRegistry, ScimError,
    ScimType, SortKey, UndeclaredPolicy,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

/// The built-in registry plus a User extension with secrets:
/// `pin` (never), `badge` {`number`, `secret` (never)}, `keys` [{`value`,
/// `type`, `secret` (never)}], `vault` (multi-valued, never), `tokens`
/// {`value` (never), `label`}, `employeeId` (immutable) and `region`.
fn registry() -> SchemaRegistry {
    let never = |attribute: Attribute| Attribute {
        returned: Returned::Never,
        mutability: Mutability::WriteOnly,
        ..attribute
    };
    let string = |name: &str| Attribute::new(name, AttributeType::String);
    let mut registry = SchemaRegistry::builtin();
    registry
        .put_extension(
            Schema {
                id: ACME.to_owned(),
                name: Some("Acme".to_owned()),
                description: None,
                attributes: vec![
                    string("region"),
                    never(string("pin")),
                    Attribute {
                        sub_attributes: vec![string("number"), never(string("secret"))],
                        ..Attribute::new("badge", AttributeType::Complex)
                    },
                    Attribute {
                        multi_valued: true,
                        sub_attributes: vec![
                            string("value"),
                            string("type"),
                            never(string("secret")),
                        ],
                        ..Attribute::new("keys", AttributeType::Complex)
                    },
                    never(Attribute {
                        multi_valued: true,
                        ..string("vault")
                    }),
                    Attribute {
                        sub_attributes: vec![never(string("value")), string("label")],
                        ..Attribute::new("tokens", AttributeType::Complex)
                    },
                    Attribute {
                        mutability: Mutability::Immutable,
                        ..string("employeeId")
                    },
                ],
            },
            "User",
            false,
        )
        .unwrap();
    registry
}

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

fn group_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("Group").unwrap()
}

fn stored_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE, ACME],
        "id": "u-1",
        "meta": {"resourceType": "User", "version": "W/\"1\""},
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": true,
        "password": "argon2:old",
        "emails": [
            {"value": "b@work.example", "type": "work", "primary": true},
            {"value": "b@home.example", "type": "home"}
        ],
        ENTERPRISE: {"department": "Ops", "manager": {"value": "m-1"}},
        ACME: {
            "region": "emea",
            "pin": "0000",
            "badge": {"number": "B-1", "secret": "s"},
            "keys": [{"value": "k1", "type": "a", "secret": "x"}],
            "employeeId": "E-1"
        }
    })
}

fn minimal_user() -> Value {
    json!({"schemas": [USER_SCHEMA], "id": "u-2", "userName": "agent"})
}

fn stored_group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Ops",
        "members": [{"value": "u-1"}, {"value": "u-2"}]
    })
}

fn operations(operations: Value) -> Vec<PatchOperation> {
    PatchOp::from_json(&json!({"schemas": [PATCH_OP_URN], "Operations": operations}))
        .unwrap()
        .operations
}

fn apply(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
    unmapped: &Map<String, Value>,
    operations: &[PatchOperation],
    policy: UndeclaredPolicy,
) -> Result<Patched, ScimError> {
    apply_patch_with(
        registry,
        resource_type,
        resource,
        unmapped,
        operations,
        policy,
    )
}

/// What the server's hashing step does, by canonical path only: the value
/// of every operation on `password` becomes `hashed(<value>)`.
fn hash_passwords(operations: Vec<PatchOperation>) -> Vec<PatchOperation> {
    operations
        .into_iter()
        .map(|mut operation| {
            if targets(&operation, "password") {
                if let Some(Value::String(clear)) = &operation.value {
                    operation.value = Some(json!(format!("hashed({clear})")));
                }
            }
            operation
        })
        .collect()
}

/// The same outcome: the same result, or errors of the same status, type
/// and detail but for the operation they name (`Operations[i] (...)`
/// counts canonical operations).
fn assert_same(
    actual: &Result<Patched, ScimError>,
    expected: &Result<Patched, ScimError>,
    what: &str,
) {
    let detail = |error: &ScimError| {
        error
            .detail
            .split_once("): ")
            .map_or(error.detail.clone(), |(_, rest)| rest.to_owned())
    };
    match (actual, expected) {
        (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{what}"),
        (Err(actual), Err(expected)) => {
            assert_eq!(
                (actual.status, actual.scim_type, detail(actual)),
                (expected.status, expected.scim_type, detail(expected)),
                "{what}"
            );
        }
        _ => panic!("{what}: got {actual:?}, expected {expected:?}"),
    }
}

// ---------------------------------------------------------------------------
// password and members, however spelled
// ---------------------------------------------------------------------------

/// Every spelling of a PATCH on `password` is one canonical operation on
/// `password`, so the hashing step sees it: the stored resource holds the
/// hash and nothing stored (resource or captured unmapped values) holds the
/// clear text, under either undeclared-attribute policy.
#[test]
fn every_password_spelling_is_hashed() {
    let registry = registry();
    let rt = user_type(&registry);
    let spellings = [
        json!({"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "Secret9"}}),
        json!({"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User": {"password": "Secret9"}}}),
        json!({"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {"PASSWORD": "Secret9"}}),
        json!({"op": "replace", "value": {"PassWord": "Secret9", "displayName": "B"}}),
        json!({"op": "Replace", "path": "PASSWORD", "value": "Secret9"}),
        json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "Secret9"}),
        json!({"op": "add", "value": {"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER": {"Password": "Secret9"}, "title": "T"}}),
        json!({"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:user", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "Secret9"}}),
        json!({"op": "replace", "value": {"schemas": [USER_SCHEMA], "urn:ietf:params:scim:schemas:core:2.0:User": {"schemas": [USER_SCHEMA], "pAsSwOrD": "Secret9"}}}),
    ];
    for spelling in spellings {
        let canonical = canonical_operations(&registry, rt, operations(json!([spelling]))).unwrap();
        let on_password: Vec<&PatchOperation> = canonical
            .iter()
            .filter(|operation| targets(operation, "password"))
            .collect();
        assert_eq!(on_password.len(), 1, "{spelling}: {canonical:?}");
        assert_eq!(
            on_password[0].path.as_ref().unwrap().to_string(),
            "password",
            "{spelling}"
        );
        let hashed = hash_passwords(canonical);
        for policy in [UndeclaredPolicy::Reject, UndeclaredPolicy::Capture] {
            let patched = apply(&registry, rt, &stored_user(), &Map::new(), &hashed, policy)
                .unwrap_or_else(|error| panic!("{spelling} ({policy:?}): {error}"));
            assert_eq!(
                patched.resource["password"],
                json!("hashed(Secret9)"),
                "{spelling} ({policy:?})"
            );
            let stored = format!("{} {:?}", patched.resource, patched.unmapped);
            assert!(
                !stored.contains("\"Secret9\""),
                "{spelling} ({policy:?}) stores the clear text: {stored}"
            );
        }
    }
}

/// Every spelling of an operation on a group's members is one canonical
/// operation whose path is `members` (value filters and sub-attributes
/// kept), and no other operation carries members.
#[test]
fn every_members_spelling_is_members() {
    let registry = registry();
    let rt = group_type(&registry);
    let spellings = [
        (
            json!({"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": "u-9"}]}),
            "members",
        ),
        (
            json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq \"u-1\"]"}),
            "members[value eq \"u-1\"]",
        ),
        (
            json!({"op": "remove", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP:MEMBERS[value eq \"u-1\"].VALUE"}),
            "members[value eq \"u-1\"].value",
        ),
        (
            json!({"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "u-9"}]}}),
            "members",
        ),
        (
            json!({"op": "replace", "value": {"displayName": "Ops 2", "urn:ietf:params:scim:schemas:core:2.0:Group": {"Members": [{"value": "u-9"}]}}}),
            "members",
        ),
        (
            json!({"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group", "value": {"MEMBERS": [{"value": "u-9"}]}}),
            "members",
        ),
        (
            json!({"op": "replace", "path": "Members", "value": []}),
            "members",
        ),
        (
            json!({"op": "add", "value": {"members.value": "u-9"}}),
            "members.value",
        ),
    ];
    for (spelling, path) in spellings {
        let canonical = canonical_operations(&registry, rt, operations(json!([spelling]))).unwrap();
        let on_members: Vec<&PatchOperation> = canonical
            .iter()
            .filter(|operation| targets(operation, "members"))
            .collect();
        assert_eq!(on_members.len(), 1, "{spelling}: {canonical:?}");
        assert_eq!(
            on_members[0].path.as_ref().unwrap().to_string(),
            path,
            "{spelling}"
        );
        for operation in canonical.iter().filter(|op| !targets(op, "members")) {
            assert!(
                !operation
                    .to_json()
                    .to_string()
                    .to_lowercase()
                    .contains("members"),
                "{spelling}: {operation:?} carries members"
            );
        }
        let original = operations(json!([spelling]));
        for policy in [UndeclaredPolicy::Reject, UndeclaredPolicy::Capture] {
            let expected = apply(
                &registry,
                rt,
                &stored_group(),
                &Map::new(),
                &original,
                policy,
            );
            let actual = apply(
                &registry,
                rt,
                &stored_group(),
                &Map::new(),
                &canonical,
                policy,
            );
            if spelling["path"].as_str() == Some(GROUP_SCHEMA) {
                // Used to be an unknown path; now what it says.
                assert!(actual.is_ok(), "{spelling}: {actual:?}");
            } else {
                assert_same(&actual, &expected, &format!("{spelling} ({policy:?})"));
            }
        }
    }
}

/// A path naming the core schema URN with an object value means what the
/// path-less value `{"<core URN>": {...}}` means (it used to be an unknown
/// path, captured whole, clear-text password included, under capture).
#[test]
fn a_core_schema_path_is_its_attributes() {
    let registry = registry();
    let rt = user_type(&registry);
    let value = json!({"PASSWORD": "x", "name.givenName": "B", "nickName": null, "foo": 1});
    let with_path = operations(json!([{"op": "add", "path": USER_SCHEMA, "value": value}]));
    let pathless = operations(json!([{"op": "add", "value": {USER_SCHEMA: value}}]));
    for policy in [UndeclaredPolicy::Reject, UndeclaredPolicy::Capture] {
        let expected = apply(
            &registry,
            rt,
            &stored_user(),
            &Map::new(),
            &pathless,
            policy,
        );
        let canonical = canonical_operations(&registry, rt, with_path.clone())
            .and_then(|ops| apply(&registry, rt, &stored_user(), &Map::new(), &ops, policy));
        assert_same(&canonical, &expected, &format!("{policy:?}"));
    }
    let captured = apply(
        &registry,
        rt,
        &stored_user(),
        &Map::new(),
        &canonical_operations(&registry, rt, with_path).unwrap(),
        UndeclaredPolicy::Capture,
    )
    .unwrap();
    assert_eq!(captured.resource["password"], json!("x"));
    assert_eq!(Value::Object(captured.unmapped), json!({"foo": 1}));
}

/// The canonical form of each kind of operation, in order: keys resolved
/// to canonical paths, readOnly and `schemas` keys left out, undeclared
/// keys kept together (nested under the core URN where they were) at the
/// place of the first of them.
#[test]
fn canonical_forms() {
    let registry = registry();
    let rt = user_type(&registry);
    let check = |input: Value, expected: Value| {
        let canonical = canonical_operations(&registry, rt, operations(input.clone())).unwrap();
        let json: Vec<Value> = canonical.iter().map(PatchOperation::to_json).collect();
        assert_eq!(Value::Array(json), expected, "{input}");
    };
    check(
        json!([{"op": "replace", "value": {
            "NAME.GIVENNAME": "B",
            "id": "ignored",
            "schemas": [USER_SCHEMA],
            "foo": 1,
            (ENTERPRISE.to_uppercase()): {"DEPARTMENT": "Ops", "Manager": "m-2", "zz": 1},
            (format!("{ENTERPRISE}:EmployeeNumber")): "7",
            "urn:ietf:params:scim:schemas:core:2.0:User": {"Title": "T", "bar": 2, "meta": {}},
            "groups": []
        }}]),
        json!([
            {"op": "replace", "path": "name.givenName", "value": "B"},
            {"op": "replace", "value": {
                "foo": 1,
                "urn:ietf:params:scim:schemas:core:2.0:User": {"bar": 2}
            }},
            {"op": "replace", "path": ENTERPRISE, "value": {"department": "Ops", "manager": "m-2", "zz": 1}},
            {"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"},
            {"op": "replace", "path": "title", "value": "T"}
        ]),
    );
    // Paths: URN-qualified core paths lose the URN; names take their
    // declared case; value filters are kept.
    check(
        json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:Emails[type eq \"work\"].VALUE", "value": "x@y"},
            {"op": "remove", "path": format!("{}:Manager.Value", ENTERPRISE.to_lowercase())},
            {"op": "replace", "path": ACME.to_uppercase(), "value": {"Region": "apac"}},
            {"op": "remove", "path": "nope"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:externalId", "value": "e"}
        ]),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@y"},
            {"op": "remove", "path": format!("{ENTERPRISE}:manager.value")},
            {"op": "replace", "path": ACME, "value": {"Region": "apac"}},
            {"op": "remove", "path": "nope"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:externalId", "value": "e"}
        ]),
    );
    // Two keys naming one extension attribute: two operations, in order.
    check(
        json!([{"op": "add", "value": {ENTERPRISE: {"department": "a", "Department": "b", "costCenter": "c"}}}]),
        json!([
            {"op": "add", "path": ENTERPRISE, "value": {"department": "a"}},
            {"op": "add", "path": ENTERPRISE, "value": {"department": "b", "costCenter": "c"}}
        ]),
    );
    // What applying refuses is kept for it to refuse.
    check(
        json!([
            {"op": "remove"},
            {"op": "add", "value": "not an object"},
            {"op": "add", "value": {USER_SCHEMA: null}},
            {"op": "add", "path": USER_SCHEMA, "value": "x"}
        ]),
        json!([
            {"op": "remove"},
            {"op": "add", "value": "not an object"},
            {"op": "add", "value": {USER_SCHEMA: null}},
            {"op": "add", "path": USER_SCHEMA, "value": "x"}
        ]),
    );
}

// ---------------------------------------------------------------------------
// Canonical operations apply exactly as the client's
// ---------------------------------------------------------------------------

/// Spellings of a core attribute: as declared, upper and lower case, and
/// URN-qualified.
fn spelled(name: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        Just(name.to_owned()),
        Just(name.to_uppercase()),
        Just(name.to_lowercase()),
        Just(format!("{USER_SCHEMA}:{name}")),
        Just(format!(
            "{}:{}",
            USER_SCHEMA.to_lowercase(),
            name.to_uppercase()
        )),
    ]
    .boxed()
}

/// Spellings of a URN or URN-qualified path: as declared, upper case.
fn urn(text: String) -> BoxedStrategy<String> {
    prop_oneof![Just(text.clone()), Just(text.to_uppercase())].boxed()
}

fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => "[a-c]{1,2}".prop_map(Value::String),
        2 => Just(Value::Null),
        1 => Just(json!("")),
        1 => Just(json!(7)),
    ]
    .boxed()
}

/// An object holding some of `members` (key, value strategy).
fn object_of(members: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let count = members.len();
    let (keys, values): (Vec<_>, Vec<_>) = members.into_iter().unzip();
    (
        proptest::sample::subsequence((0..count).collect::<Vec<_>>(), 0..=count),
        values,
    )
        .prop_map(move |(chosen, values)| {
            let mut object = Map::new();
            for index in chosen {
                object.insert(keys[index].to_owned(), values[index].clone());
            }
            Value::Object(object)
        })
        .boxed()
}

fn emails() -> BoxedStrategy<Value> {
    proptest::collection::vec(
        object_of(vec![
            ("value", text()),
            (
                "type",
                prop_oneof![Just(json!("work")), Just(json!("home"))].boxed(),
            ),
            ("primary", any::<bool>().prop_map(Value::Bool).boxed()),
            ("kind", text()),
        ]),
        0..3,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn acme_object() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => object_of(vec![
            ("region", text()),
            ("Region", text()),
            ("employeeId", text()),
            ("EMPLOYEEID", text()),
            ("pin", text()),
            ("badge", object_of(vec![("number", text()), ("secret", text()), ("colour", text())])),
            ("keys", proptest::collection::vec(
                object_of(vec![("value", text()), ("type", text()), ("secret", text())]), 0..3)
                .prop_map(Value::Array).boxed()),
            ("qqq", text()),
            ("schemas", Just(json!([ACME])).boxed()),
        ]),
        1 => Just(Value::Null),
        1 => text(),
    ]
    .boxed()
}

fn enterprise_object() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => object_of(vec![
            ("department", text()),
            ("Department", text()),
            ("manager", prop_oneof![text(), object_of(vec![("value", text()), ("displayName", text())])].boxed()),
            ("manager.value", text()),
            ("zzz", text()),
        ]),
        1 => Just(json!({})),
    ]
    .boxed()
}

/// A key of a path-less value with a value that suits it (mostly).
fn entry(nested: bool) -> BoxedStrategy<(String, Value)> {
    let mut entries: Vec<BoxedStrategy<(String, Value)>> = vec![
        (spelled("userName"), text()).boxed(),
        (spelled("displayName"), text()).boxed(),
        (spelled("password"), text()).boxed(),
        (spelled("name.givenName"), text()).boxed(),
        (
            spelled("name"),
            object_of(vec![
                ("givenName", text()),
                ("familyName", text()),
                ("foo", text()),
            ]),
        )
            .boxed(),
        (
            spelled("active"),
            prop_oneof![any::<bool>().prop_map(Value::Bool), Just(json!("True")),],
        )
            .boxed(),
        (spelled("emails"), emails()).boxed(),
        (spelled("emails.type"), text()).boxed(),
        (spelled("id"), text()).boxed(),
        (spelled("groups"), emails()).boxed(),
        (Just("meta".to_owned()), Just(json!({"version": "x"}))).boxed(),
        (Just("schemas".to_owned()), Just(json!([USER_SCHEMA]))).boxed(),
        (urn(ENTERPRISE.to_owned()), enterprise_object()).boxed(),
        (urn(format!("{ENTERPRISE}:department")), text()).boxed(),
        (urn(ACME.to_owned()), acme_object()).boxed(),
        (urn(format!("{ACME}:employeeId")), text()).boxed(),
        (urn(format!("{ACME}:region")), text()).boxed(),
        (urn(format!("{ACME}:qqq")), text()).boxed(),
        (
            prop_oneof![Just("foo"), Just("FOO"), Just("name.foo"), Just("bad key")]
                .prop_map(str::to_owned),
            text(),
        )
            .boxed(),
        (Just(format!("{USER_SCHEMA}:nope")), text()).boxed(),
    ];
    if !nested {
        entries.push(
            (
                spelled_core(),
                prop_oneof![
                    6 => pathless_value(true),
                    1 => Just(Value::Null),
                ],
            )
                .boxed(),
        );
    } else {
        entries.push((spelled_core(), text()).boxed());
    }
    proptest::strategy::Union::new(entries).boxed()
}

fn spelled_core() -> BoxedStrategy<String> {
    urn(USER_SCHEMA.to_owned())
}

/// A path-less value: an object of 0 to 5 keys.
fn pathless_value(nested: bool) -> BoxedStrategy<Value> {
    proptest::collection::vec(entry(nested), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
        .boxed()
}

/// One operation as JSON: path-less, on a path (with a value that suits
/// it, mostly), or on the core schema URN.
fn operation() -> BoxedStrategy<Value> {
    let kind = prop_oneof![Just("add"), Just("replace"), Just("remove")];
    let with_path: Vec<BoxedStrategy<(String, Value)>> = vec![
        (spelled("userName"), text()).boxed(),
        (spelled("password"), text()).boxed(),
        (spelled("name.givenName"), text()).boxed(),
        (
            spelled("name"),
            object_of(vec![("givenName", text()), ("foo", text())]),
        )
            .boxed(),
        (spelled("emails"), emails()).boxed(),
        (
            prop_oneof![
                Just("emails[type eq \"work\"].value".to_owned()),
                Just(format!("{USER_SCHEMA}:Emails[TYPE eq \"home\"].VALUE")),
                Just("emails[type eq \"work\"]".to_owned()),
            ],
            text(),
        )
            .boxed(),
        (spelled("id"), text()).boxed(),
        (urn(ENTERPRISE.to_owned()), enterprise_object()).boxed(),
        (urn(format!("{ENTERPRISE}:manager.value")), text()).boxed(),
        (urn(ACME.to_owned()), acme_object()).boxed(),
        (urn(format!("{ACME}:employeeId")), text()).boxed(),
        (
            prop_oneof![
                Just(format!("{ACME}:keys[type eq \"a\"].value")),
                Just(format!("{ACME}:KEYS[VALUE eq \"k1\"]")),
            ],
            text(),
        )
            .boxed(),
        (
            prop_oneof![Just("foo".to_owned()), Just(format!("{ACME}:qqq"))],
            text(),
        )
            .boxed(),
        (spelled_core(), pathless_value(true)).boxed(),
    ];
    prop_oneof![
        2 => (kind.clone(), pathless_value(false)).prop_map(|(op, value)| json!({"op": op, "value": value})),
        3 => (kind, proptest::strategy::Union::new(with_path), any::<bool>()).prop_map(
            |(op, (path, value), keep_value)| {
                if op == "remove" && !keep_value {
                    json!({"op": op, "path": path})
                } else {
                    json!({"op": op, "path": path, "value": value})
                }
            }
        ),
    ]
    .boxed()
}

fn resource() -> BoxedStrategy<Value> {
    let mut without_employee_id = stored_user();
    without_employee_id[ACME]
        .as_object_mut()
        .unwrap()
        .remove("employeeId");
    prop_oneof![
        Just(stored_user()),
        Just(without_employee_id),
        Just(minimal_user())
    ]
    .boxed()
}

fn unmapped() -> BoxedStrategy<Map<String, Value>> {
    prop_oneof![
        Just(Map::new()),
        Just(
            json!({"foo": "a", "name.foo": "b", (format!("{ACME}:qqq")): ["c"]})
                .as_object()
                .unwrap()
                .clone()
        ),
    ]
    .boxed()
}

/// The client's operations with a path naming the core schema URN (add or
/// replace, object value) written as the path-less value it now means.
fn as_meant(operations: &[PatchOperation]) -> Vec<PatchOperation> {
    operations
        .iter()
        .map(|operation| match (&operation.path, &operation.value) {
            (Some(path), Some(value @ Value::Object(_)))
                if operation.op != muster_scim::PatchOpKind::Remove
                    && path.value_filter.is_none()
                    && path.sub_attribute.is_none()
                    && path.attribute.to_string().eq_ignore_ascii_case(USER_SCHEMA) =>
            {
                PatchOperation {
                    op: operation.op,
                    path: None,
                    value: Some(json!({ USER_SCHEMA: value })),
                }
            }
            _ => operation.clone(),
        })
        .collect()
}

/// What one key of a path-less value writes to: a declared top-level
/// attribute, or an undeclared path (lower case) captured under capture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Footprint {
    Attribute(Option<String>, String),
    Undeclared(String),
}

/// The footprint of each key of each path-less operation (operations
/// [`as_meant`]), keys nested under the core URN included.
fn footprints(registry: &SchemaRegistry, operation: &PatchOperation) -> Vec<HashSet<Footprint>> {
    let mut keys = Vec::new();
    if operation.path.is_none() {
        if let Some(Value::Object(object)) = &operation.value {
            key_footprints(registry, object, true, &mut keys);
        }
    }
    keys
}

fn key_footprints(
    registry: &SchemaRegistry,
    object: &Map<String, Value>,
    top: bool,
    keys: &mut Vec<HashSet<Footprint>>,
) {
    let rt = user_type(registry);
    let resolve = |text: &str| {
        AttrPath::parse(text)
            .ok()
            .and_then(|path| registry.resolve(rt, &path))
    };
    let attribute = |resolved: &ResolvedAttribute<'_>| {
        Footprint::Attribute(
            match resolved.container {
                Container::Core => None,
                Container::Extension(urn) => Some(urn.to_owned()),
            },
            resolved.attribute.name.clone(),
        )
    };
    for (key, raw) in object {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if top && key.eq_ignore_ascii_case(USER_SCHEMA) {
            if let Value::Object(inner) = raw {
                key_footprints(registry, inner, false, keys);
            }
            continue;
        }
        let mut set = HashSet::new();
        match resolve(key) {
            None => {
                set.insert(Footprint::Undeclared(key.to_lowercase()));
                if let Some(ResolvedPath::Attribute(parent)) =
                    key.rsplit_once('.').and_then(|(head, _)| resolve(head))
                {
                    set.insert(attribute(&parent));
                }
            }
            Some(ResolvedPath::Extension(schema)) => match raw {
                Value::Object(inner) if !inner.is_empty() => {
                    // Each key of the extension's object counts as a key.
                    for inner_key in inner.keys() {
                        if inner_key.eq_ignore_ascii_case("schemas") {
                            continue;
                        }
                        let qualified = format!("{}:{inner_key}", schema.id);
                        keys.push(HashSet::from([match resolve(&qualified) {
                            Some(ResolvedPath::Attribute(resolved)) => attribute(&resolved),
                            _ => Footprint::Undeclared(qualified.to_lowercase()),
                        }]));
                    }
                }
                _ => {
                    for declared in &schema.attributes {
                        set.insert(Footprint::Attribute(
                            Some(schema.id.clone()),
                            declared.name.clone(),
                        ));
                    }
                }
            },
            Some(ResolvedPath::Attribute(resolved)) => {
                set.insert(attribute(&resolved));
            }
        }
        keys.push(set);
    }
}

/// Whether applying `operations` split into canonical ones may differ from
/// applying them whole, as [`canonical_operations`] documents: one
/// operation names the immutable `employeeId` twice (checked after each
/// canonical operation), or, under capture, writes one undeclared path twice
/// (directly or inside two values of one complex attribute).
fn may_differ(
    registry: &SchemaRegistry,
    operations: &[PatchOperation],
    policy: UndeclaredPolicy,
) -> bool {
    let rt = user_type(registry);
    operations.iter().any(|operation| {
        let keys = footprints(registry, operation);
        let mut seen = HashSet::new();
        let mut twice = HashSet::new();
        for set in &keys {
            for footprint in set {
                if !seen.insert(footprint.clone()) {
                    twice.insert(footprint.clone());
                }
            }
        }
        twice.iter().any(|footprint| match footprint {
            Footprint::Attribute(Some(urn), name) if urn == ACME && name == "employeeId" => true,
            Footprint::Attribute(urn, name) => {
                policy == UndeclaredPolicy::Capture
                    && registry
                        .resolve_attribute(
                            rt,
                            &AttrPath {
                                schema: urn.clone(),
                                attribute: name.clone(),
                                sub_attribute: None,
                            },
                        )
                        .is_some_and(|resolved| resolved.attribute.is_complex())
            }
            Footprint::Undeclared(_) => policy == UndeclaredPolicy::Capture,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Applying the canonical operations gives what applying the client's
    /// gives: the same resource, unmapped values and changed flags, or an
    /// error in both.
    #[test]
    fn canonical_operations_apply_as_the_originals(
        resource in resource(),
        unmapped in unmapped(),
        operations_json in proptest::collection::vec(operation(), 1..4),
        capture in any::<bool>(),
    ) {
        let registry = registry();
        let rt = user_type(&registry);
        let policy = if capture { UndeclaredPolicy::Capture } else { UndeclaredPolicy::Reject };
        let message = json!({"schemas": [PATCH_OP_URN], "Operations": operations_json});
        let Ok(patch) = PatchOp::from_json(&message) else {
            return Ok(());
        };
        let meant = as_meant(&patch.operations);
        let expected = apply(&registry, rt, &resource, &unmapped, &meant, policy);
        let canonical = canonical_operations(&registry, rt, patch.operations.clone())
            .unwrap_or_else(|error| panic!("{message}: {error}"));
        let actual = apply(&registry, rt, &resource, &unmapped, &canonical, policy);
        let same = match (&actual, &expected) {
            (Ok(actual), Ok(expected)) => actual == expected,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        prop_assert!(
            same || may_differ(&registry, &meant, policy),
            "{} ({:?}) -> {:?}\n canonical: {:?}\n original: {:?}",
            message, policy, canonical, actual, expected
        );
    }
}

// ---------------------------------------------------------------------------
// returned: never
// ---------------------------------------------------------------------------

/// A `400 invalidFilter` naming the never-returned attribute.
fn assert_never_returned(error: &ScimError, path: &str, what: &str) {
    assert_eq!(error.status, 400, "{what}: {error}");
    assert_eq!(
        error.scim_type,
        Some(ScimType::InvalidFilter),
        "{what}: {error}"
    );
    let named = format!(
        "attribute '{path}' is never returned (returned: never) and cannot be filtered, sorted or selected"
    );
    assert!(
        error.detail.contains(&named),
        "{what}: {:?} lacks {named:?}",
        error.detail
    );
}

/// Never-returned paths of each kind, as written and as they are named in
/// errors.
fn never_returned() -> Vec<(String, String)> {
    let acme = |path: &str| (format!("{ACME}:{path}"), format!("{ACME}:{path}"));
    vec![
        ("password".to_owned(), "password".to_owned()),
        ("PassWord".to_owned(), "password".to_owned()),
        (format!("{USER_SCHEMA}:password"), "password".to_owned()),
        (
            format!("{}:PIN", ACME.to_uppercase()),
            format!("{ACME}:pin"),
        ),
        acme("pin"),
        acme("badge.secret"),
        acme("keys.secret"),
        acme("vault"),
        acme("tokens.value"),
    ]
}

#[test]
fn never_returned_attributes_cannot_be_filtered_on() {
    let registry = registry();
    let rt = user_type(&registry);
    let mut refused: Vec<(String, String)> = never_returned()
        .into_iter()
        .flat_map(|(path, named)| {
            [
                (format!("{path} pr"), named.clone()),
                (format!("{path} eq \"x\""), named.clone()),
                (format!("userName eq \"b\" or not ({path} sw \"a\")"), named),
            ]
        })
        .collect();
    refused.extend([
        (
            format!("{ACME}:badge[secret eq \"s\"]"),
            format!("{ACME}:badge.secret"),
        ),
        (
            format!("{ACME}:keys[type eq \"a\" and SECRET pr]"),
            format!("{ACME}:keys.secret"),
        ),
        (
            format!("{ACME}:vault[value eq \"x\"]"),
            format!("{ACME}:vault"),
        ),
        // A complex attribute compares its `value` sub-attribute.
        (
            format!("{ACME}:tokens eq \"x\""),
            format!("{ACME}:tokens.value"),
        ),
        (
            format!("{ACME}:tokens[value pr]"),
            format!("{ACME}:tokens.value"),
        ),
    ]);
    for (text, named) in refused {
        let filter = Filter::parse(&text).unwrap();
        let error = filter.check(&registry, rt).expect_err(&text);
        assert_never_returned(&error, &named, &text);
    }
    for text in [
        "userName pr".to_owned(),
        format!("{ACME}:badge pr"),
        format!("{ACME}:badge.number eq \"B-1\""),
        format!("{ACME}:keys[type eq \"a\"]"),
        format!("{ACME}:keys eq \"k1\""),
        format!("{ACME}:tokens.label sw \"a\""),
        "emails[type eq \"work\" and value co \"@\"]".to_owned(),
    ] {
        let filter = Filter::parse(&text).unwrap();
        assert_eq!(filter.check(&registry, rt), Ok(()), "{text}");
    }
}

#[test]
fn never_returned_attributes_cannot_be_sorted_on() {
    let registry = registry();
    let rt = user_type(&registry);
    let mut refused = never_returned();
    // A complex attribute sorts by its `value` sub-attribute.
    refused.push((format!("{ACME}:tokens"), format!("{ACME}:tokens.value")));
    for (sort_by, named) in refused {
        let error = SortKey::parse(&registry, rt, &sort_by).expect_err(&sort_by);
        assert_never_returned(&error, &named, &sort_by);
        assert!(error.detail.starts_with("sortBy"), "{sort_by}: {error}");
    }
    for sort_by in [
        "userName".to_owned(),
        format!("{ACME}:badge.number"),
        format!("{ACME}:keys"),
    ] {
        assert!(SortKey::parse(&registry, rt, &sort_by).is_ok(), "{sort_by}");
    }
}

#[test]
fn never_returned_attributes_cannot_be_selected() {
    let registry = registry();
    let rt = user_type(&registry);
    for (path, named) in never_returned() {
        for attributes in [path.clone(), format!("userName, {path}")] {
            let error =
                Projection::parse(&registry, rt, Some(&attributes), None).expect_err(&attributes);
            assert_never_returned(&error, &named, &attributes);
            assert!(
                error.detail.starts_with("attributes: "),
                "{attributes}: {error}"
            );
            let error = Projection::from_lists(&registry, rt, &[attributes.as_str()], &[])
                .expect_err(&attributes);
            assert_never_returned(&error, &named, &attributes);
        }
        // Excluding it is harmless: it is never returned anyway.
        let excluded = Projection::parse(&registry, rt, None, Some(&path)).unwrap();
        let mut user = stored_user();
        excluded.apply(&registry, rt, &mut user);
        assert!(user.get("password").is_none(), "{path}");
    }
    // Naming a complex attribute or extension that holds never-returned
    // sub-attributes selects the others.
    for attributes in [
        ACME.to_owned(),
        format!("{ACME}:badge"),
        format!("{ACME}:tokens"),
    ] {
        let projection = Projection::parse(&registry, rt, Some(&attributes), None).unwrap();
        let mut user = stored_user();
        projection.apply(&registry, rt, &mut user);
        let acme = user[ACME].to_string();
        assert!(
            !acme.contains("secret") && !acme.contains("pin"),
            "{attributes}: {acme}"
        );
    }
}

/// A PATCH value filter that reads a never-returned attribute would tell,
/// by what it changes, what the attribute holds.
#[test]
fn never_returned_attributes_cannot_select_patch_values() {
    let registry = registry();
    let rt = user_type(&registry);
    let first = json!({"op": "replace", "path": "displayName", "value": "B"});
    for (path, named) in [
        (
            format!("{ACME}:keys[secret eq \"x\"]"),
            format!("{ACME}:keys.secret"),
        ),
        (
            format!("{ACME}:KEYS[not (SECRET pr)].type"),
            format!("{ACME}:keys.secret"),
        ),
        (
            format!("{ACME}:keys[type eq \"a\" or secret sw \"x\"].value"),
            format!("{ACME}:keys.secret"),
        ),
        (
            format!("{ACME}:vault[value eq \"x\"]"),
            format!("{ACME}:vault"),
        ),
        ("password[value sw \"$\"]".to_owned(), "password".to_owned()),
        // Not a sub-attribute of emails (it would match nothing), but the
        // client meant the password.
        (
            "emails[password sw \"$argon2\"].value".to_owned(),
            "password".to_owned(),
        ),
        (
            format!("emails[value pr and {USER_SCHEMA}:PASSWORD pr]"),
            "password".to_owned(),
        ),
        (
            format!("emails[type eq \"work\" or {ACME}:pin pr]"),
            format!("{ACME}:pin"),
        ),
    ] {
        for op in ["remove", "replace", "add"] {
            let ops = operations(json!([first, {"op": op, "path": path, "value": "v"}]));
            let error = canonical_operations(&registry, rt, ops).expect_err(&path);
            assert_never_returned(&error, &named, &path);
            assert!(
                error.detail.starts_with(&format!("Operations[1] ({op}, ")),
                "{error}"
            );
        }
    }
    for path in [
        format!("{ACME}:keys[type eq \"a\"]"),
        "emails[type eq \"work\"].value".to_owned(),
        // Names nothing: left to the PATCH, which matches nothing.
        "emails[typo eq \"work\"]".to_owned(),
    ] {
        let ops = operations(json!([{"op": "remove", "path": path}]));
        assert!(canonical_operations(&registry, rt, ops).is_ok(), "{path}");
    }
}

#[test]
fn never_returned_paths_are_listed() {
    let registry = registry();
    assert_eq!(
        registry.never_returned_paths(user_type(&registry)),
        [
            "password".to_owned(),
            format!("{ACME}:pin"),
            format!("{ACME}:badge.secret"),
            format!("{ACME}:keys.secret"),
            format!("{ACME}:vault"),
            format!("{ACME}:tokens.value"),
        ]
    );
    assert!(registry
        .never_returned_paths(group_type(&registry))
        .is_empty());
}
