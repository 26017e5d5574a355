//! Projection of canonical resources by `attributes` / `excludedAttributes`
//! and the schemas' `returned` settings, on a realistic user carrying a
//! password, the enterprise extension and a custom extension.

// Test helpers outside `#[test]` functions unwrap freely.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::schema::builtin::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use muster_scim::{
    remove_never_returned, AttrPath, Attribute, AttributeType, Projection, ResourceType, Returned,
    Schema, SchemaRegistry, ScimType,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const AUDIT: &str = "urn:example:scim:schemas:extension:audit:1.0:User";

/// The built-in registry plus two custom User extensions:
/// - acme: `region` (default), `costCode` (request), `pin` (never),
///   `badge` {`number`, `secret` (never), `issued`}, `skills` (multi-valued);
/// - audit: `trackingId` (always), `note` (default).
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let returned = |name: &str, kind, returned| Attribute {
        returned,
        ..Attribute::new(name, kind)
    };
    registry
        .add_schema(Schema {
            id: ACME.to_owned(),
            name: Some("Acme".to_owned()),
            description: None,
            attributes: vec![
                Attribute::new("region", AttributeType::String),
                returned("costCode", AttributeType::String, Returned::Request),
                returned("pin", AttributeType::String, Returned::Never),
                Attribute {
                    sub_attributes: vec![
                        Attribute::new("number", AttributeType::String),
                        returned("secret", AttributeType::String, Returned::Never),
                        Attribute::new("issued", AttributeType::DateTime),
                    ],
                    ..Attribute::new("badge", AttributeType::Complex)
                },
                Attribute {
                    multi_valued: true,
                    ..Attribute::new("skills", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", ACME, false).unwrap();
    registry
        .add_schema(Schema {
            id: AUDIT.to_owned(),
            name: Some("Audit".to_owned()),
            description: None,
            attributes: vec![
                returned("trackingId", AttributeType::String, Returned::Always),
                Attribute::new("note", AttributeType::String),
            ],
        })
        .unwrap();
    registry.bind_extension("User", AUDIT, false).unwrap();
    registry
}

/// Barbara Jensen (after RFC 7643 section 8.2), canonical, with a password
/// and every kind of extension attribute.
fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, ACME],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\""
        },
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara"
        },
        "displayName": "Babs Jensen",
        "active": true,
        "password": "t1meMa$heen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "groups": [
            {"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}
        ],
        (ENTERPRISE_USER_SCHEMA): {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        (ACME): {
            "region": "emea",
            "costCode": "CC-7",
            "pin": "1234",
            "badge": {"number": "B-1", "secret": "s3cr3t", "issued": "2024-01-01T00:00:00Z"},
            "skills": ["rust", "scim"]
        }
    })
}

/// The user as a plain GET returns it: no password, pin, badge secret or
/// (request-only) costCode.
fn user_default() -> Value {
    let mut expected = user();
    remove(&mut expected, &["password"]);
    remove(&mut expected, &[ACME, "pin"]);
    remove(&mut expected, &[ACME, "costCode"]);
    remove(&mut expected, &[ACME, "badge", "secret"]);
    expected
}

/// Removes the member at `path` (object keys only).
fn remove(value: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().unwrap();
    let mut target = value;
    for key in parents {
        target = target.get_mut(*key).unwrap();
    }
    target.as_object_mut().unwrap().remove(*last).unwrap();
}

/// The always-present core of any projection of [`user`].
fn minimal(extra: Value) -> Value {
    let mut expected = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, ACME],
        "id": "2819c223-7f76-453a-919d-413861904646",
    });
    let object = expected.as_object_mut().unwrap();
    for (key, value) in extra.as_object().unwrap() {
        object.insert(key.clone(), value.clone());
    }
    expected
}

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

fn check(attributes: Option<&str>, excluded: Option<&str>, expected: Value) {
    let registry = registry();
    let user_type = user_type(&registry);
    let projection = Projection::parse(&registry, user_type, attributes, excluded)
        .unwrap_or_else(|error| panic!("{attributes:?} / {excluded:?}: {error}"));
    let mut resource = user();
    projection.apply(&registry, user_type, &mut resource);
    assert_eq!(
        resource,
        expected,
        "attributes={attributes:?} excludedAttributes={excluded:?}\n{}",
        serde_json::to_string_pretty(&resource).unwrap()
    );
}

#[test]
fn plain_response_drops_never_and_request_attributes() {
    check(None, None, user_default());
    check(Some(" "), Some(""), user_default());
}

#[test]
fn attributes_select() {
    let manager_id = "26118915-6090-4610-87e4-49d8ca9f808d";
    check(
        Some("userName"),
        None,
        minimal(json!({"userName": "bjensen@example.com"})),
    );
    check(
        Some("USERNAME , name.GIVENNAME"),
        None,
        minimal(json!({"userName": "bjensen@example.com", "name": {"givenName": "Barbara"}})),
    );
    check(
        Some("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName"),
        None,
        minimal(json!({"name": {"familyName": "Jensen"}})),
    );
    check(
        Some("emails.value"),
        None,
        minimal(
            json!({"emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]}),
        ),
    );
    check(
        Some("emails"),
        None,
        minimal(json!({"emails": user()["emails"]})),
    );
    check(Some("name.middleName"), None, minimal(json!({})));
    check(
        Some("meta.lastModified,meta.version"),
        None,
        minimal(json!({"meta": {
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\""
        }})),
    );
    check(Some("schemas"), None, minimal(json!({})));
    check(Some("id"), None, minimal(json!({})));
    check(
        Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")),
        None,
        minimal(json!({ENTERPRISE_USER_SCHEMA: {"manager": {"value": manager_id}}})),
    );
    check(
        Some(&format!("{ENTERPRISE_USER_SCHEMA}:Department")),
        None,
        minimal(json!({ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations"}})),
    );
}

#[test]
fn whole_extension_urn_selects_the_extension() {
    check(
        Some(ENTERPRISE_USER_SCHEMA),
        None,
        minimal(json!({ENTERPRISE_USER_SCHEMA: user()[ENTERPRISE_USER_SCHEMA]})),
    );
    check(
        Some(&ENTERPRISE_USER_SCHEMA.to_uppercase()),
        None,
        minimal(json!({ENTERPRISE_USER_SCHEMA: user()[ENTERPRISE_USER_SCHEMA]})),
    );
    // Naming the extension names its request-only attributes too, never its
    // never-returned ones.
    check(
        Some(ACME),
        None,
        minimal(json!({ACME: {
            "region": "emea",
            "costCode": "CC-7",
            "badge": {"number": "B-1", "issued": "2024-01-01T00:00:00Z"},
            "skills": ["rust", "scim"]
        }})),
    );
}

#[test]
fn request_attributes_only_when_named() {
    check(
        Some(&format!("{ACME}:costCode")),
        None,
        minimal(json!({ACME: {"costCode": "CC-7"}})),
    );
    check(
        Some(&format!("{ACME}:region")),
        None,
        minimal(json!({ACME: {"region": "emea"}})),
    );
    check(
        Some(&format!("{ACME}:skills")),
        None,
        minimal(json!({ACME: {"skills": ["rust", "scim"]}})),
    );
}

#[test]
fn never_attributes_are_never_returned() {
    // Naming a never-returned attribute in `attributes` is refused (it
    // used to be accepted and dropped); naming its parent selects the rest.
    for attributes in [
        "password,userName".to_owned(),
        format!("{ACME}:pin"),
        format!("{ACME}:badge.secret"),
    ] {
        let registry = registry();
        let error = Projection::parse(&registry, user_type(&registry), Some(&attributes), None)
            .expect_err(&attributes);
        assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{error}");
        assert!(error.detail.contains("is never returned"), "{error}");
    }
    check(
        Some(&format!("{ACME}:badge")),
        None,
        minimal(json!({ACME: {"badge": {"number": "B-1", "issued": "2024-01-01T00:00:00Z"}}})),
    );
}

#[test]
fn excluded_attributes_remove() {
    let without = |paths: &[&[&str]]| {
        let mut expected = user_default();
        for path in paths {
            remove(&mut expected, path);
        }
        expected
    };
    check(None, Some("emails"), without(&[&["emails"]]));
    check(
        None,
        Some("Meta.LastModified"),
        without(&[&["meta", "lastModified"]]),
    );
    check(
        None,
        Some("groups , externalId"),
        without(&[&["groups"], &["externalId"]]),
    );
    check(
        None,
        Some(ENTERPRISE_USER_SCHEMA),
        without(&[&[ENTERPRISE_USER_SCHEMA]]),
    );
    check(
        None,
        Some(&format!("{ACME}:badge.number,{ACME}:badge.issued")),
        without(&[&[ACME, "badge"]]),
    );
    // Emptying an object drops it: no `{}` in canonical form.
    check(
        None,
        Some("name.givenName,name.familyName,name.formatted"),
        without(&[&["name"]]),
    );
    // `id` is returned always; `password` never; excluding changes neither.
    check(None, Some("id,password"), user_default());
    check(None, Some("schemas"), user_default());
}

#[test]
fn attributes_and_excluded_attributes_combine() {
    check(
        Some("emails"),
        Some("emails.type"),
        minimal(json!({"emails": [
            {"value": "bjensen@example.com", "primary": true},
            {"value": "babs@jensen.org"}
        ]})),
    );
    check(
        Some(&format!("{ACME},userName")),
        Some(&format!("{ACME}:skills,{ACME}:costCode,{ACME}:badge")),
        minimal(json!({"userName": "bjensen@example.com", ACME: {"region": "emea"}})),
    );
}

#[test]
fn always_attributes_survive_any_projection() {
    let registry = registry();
    let user_type = user_type(&registry);
    let resource = json!({
        "schemas": [USER_SCHEMA, AUDIT],
        "id": "1",
        "userName": "a",
        (AUDIT): {"trackingId": "T-1", "note": "hello"}
    });
    let cases: &[(Option<&str>, Option<&str>, Value)] = &[
        (
            Some("userName"),
            None,
            json!({"schemas": [USER_SCHEMA, AUDIT], "id": "1", "userName": "a", (AUDIT): {"trackingId": "T-1"}}),
        ),
        (
            None,
            Some(&format!("{AUDIT},id,userName")),
            json!({"schemas": [USER_SCHEMA, AUDIT], "id": "1", (AUDIT): {"trackingId": "T-1"}}),
        ),
        (None, None, resource.clone()),
    ];
    for (attributes, excluded, expected) in cases {
        let projection = Projection::parse(&registry, user_type, *attributes, *excluded).unwrap();
        let mut projected = resource.clone();
        projection.apply(&registry, user_type, &mut projected);
        assert_eq!(&projected, expected, "{attributes:?} {excluded:?}");
    }
}

fn check_error(attributes: Option<&str>, excluded: Option<&str>, expected_detail: &[&str]) {
    let registry = registry();
    let error = Projection::parse(&registry, user_type(&registry), attributes, excluded)
        .expect_err("expected an error");
    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error}");
    for part in expected_detail {
        assert!(
            error.detail.contains(part),
            "{:?} lacks {part:?}",
            error.detail
        );
    }
}

#[test]
fn unknown_names_are_refused_with_a_suggestion() {
    check_error(
        Some("userName,usrName"),
        None,
        &[
            "attributes:",
            "unknown attribute 'usrName'",
            "did you mean 'userName'?",
        ],
    );
    check_error(
        None,
        Some("name.givenNmae"),
        &[
            "excludedAttributes:",
            "'name.givenNmae'",
            "did you mean 'name.givenName'?",
        ],
    );
    check_error(
        Some(&format!("{ACME}:regoin")),
        None,
        &[&format!("did you mean '{ACME}:region'?")],
    );
    check_error(
        Some("urn:example:unknown:2.0:User"),
        None,
        &["unknown attribute"],
    );
    check_error(Some("members"), None, &["unknown attribute 'members'"]);
    check_error(Some(r#"emails[type eq "work"]"#), None, &["attributes:"]);
    check_error(
        Some("name.givenName.x"),
        None,
        &["attributes:", "at most one sub-attribute"],
    );
}

#[test]
fn remove_never_returned_keeps_request_attributes() {
    let registry = registry();
    let mut resource = user();
    remove_never_returned(&registry, user_type(&registry), &mut resource);
    let mut expected = user();
    remove(&mut expected, &["password"]);
    remove(&mut expected, &[ACME, "pin"]);
    remove(&mut expected, &[ACME, "badge", "secret"]);
    assert_eq!(resource, expected);
}

#[test]
fn members_loading_follows_the_projection() {
    let registry = registry();
    let group_type = registry.resource_type("Group").unwrap();
    let check = |attributes: Option<&str>, excluded: Option<&str>, expected: bool| {
        let projection = Projection::parse(&registry, group_type, attributes, excluded).unwrap();
        assert_eq!(
            projection.includes_members(),
            expected,
            "includes_members {attributes:?} {excluded:?}"
        );
        assert_eq!(
            projection.wants(&registry, group_type, &AttrPath::new("members")),
            expected,
            "wants {attributes:?} {excluded:?}"
        );
    };
    check(None, None, true);
    check(None, Some("members"), false);
    check(None, Some("MEMBERS"), false);
    check(None, Some("members.display"), true);
    check(None, Some("displayName"), true);
    check(Some("displayName"), None, false);
    check(Some("displayName,members.value"), None, true);
    check(Some("members"), Some("members"), false);
}

#[test]
fn wants_reports_what_survives() {
    let registry = registry();
    let user_type = user_type(&registry);
    let check = |attributes: Option<&str>, excluded: Option<&str>, path: &str, expected: bool| {
        let projection = Projection::parse(&registry, user_type, attributes, excluded).unwrap();
        let wanted = projection.wants(&registry, user_type, &AttrPath::parse(path).unwrap());
        assert_eq!(wanted, expected, "{attributes:?} {excluded:?} wants {path}");
    };
    check(None, None, "userName", true);
    check(None, None, "password", false);
    check(None, None, &format!("{ACME}:costCode"), false);
    check(None, None, &format!("{ACME}:badge.secret"), false);
    check(None, None, ACME, true);
    check(None, None, "groups", true);
    check(None, Some("groups"), "groups", false);
    check(Some("name.givenName"), None, "name", true);
    check(Some("name.givenName"), None, "name.familyName", false);
    check(Some("name.givenName"), None, "id", true);
    check(Some("userName"), None, ENTERPRISE_USER_SCHEMA, false);
    check(Some(&format!("{ACME}:costCode")), None, ACME, true);
    check(Some("userName"), None, "unknownThing", false);
}

// ---------------------------------------------------------------------------
// Property: never-returned attributes never come back, `id` always does.
// ---------------------------------------------------------------------------

/// A user with a random subset of [`user`]'s members (always with `id`),
/// and random extra members inside the complex ones.
fn arbitrary_user() -> impl Strategy<Value = Value> {
    let full = user();
    let keys: Vec<String> = full
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| *key != "id" && *key != "schemas")
        .cloned()
        .collect();
    let acme_keys: Vec<String> = full[ACME].as_object().unwrap().keys().cloned().collect();
    (
        proptest::sample::subsequence(keys.clone(), 0..=keys.len()),
        proptest::sample::subsequence(acme_keys.clone(), 0..=acme_keys.len()),
        any::<bool>(),
        "[a-z]{1,8}",
    )
        .prop_map(move |(keep, acme_keep, upper_case_keys, password)| {
            let mut resource = Map::new();
            resource.insert("schemas".into(), full["schemas"].clone());
            resource.insert("id".into(), full["id"].clone());
            for key in &keep {
                let mut value = full[key.as_str()].clone();
                if key == ACME {
                    let acme: Map<String, Value> = acme_keep
                        .iter()
                        .map(|k| (k.clone(), full[ACME][k.as_str()].clone()))
                        .collect();
                    if acme.is_empty() {
                        continue;
                    }
                    value = Value::Object(acme);
                }
                if key == "password" {
                    value = json!(password);
                }
                // Resources not yet in canonical case still lose `password`.
                let key = if upper_case_keys && key == "password" {
                    "PassWord".to_owned()
                } else {
                    key.clone()
                };
                resource.insert(key, value);
            }
            Value::Object(resource)
        })
}

/// Attribute lists drawn from names that exist, in random case; with
/// `never`, never-returned names too (only `excludedAttributes` may name
/// them).
fn arbitrary_list(never: bool) -> impl Strategy<Value = Option<String>> {
    let never_returned = [
        "password".to_owned(),
        format!("{ACME}:pin"),
        format!("{ACME}:badge.secret"),
    ];
    let names: Vec<String> = [
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.value",
        "password",
        "id",
        "schemas",
        "meta",
        "meta.created",
        "groups.display",
        ENTERPRISE_USER_SCHEMA,
        &format!("{ENTERPRISE_USER_SCHEMA}:manager"),
        ACME,
        &format!("{ACME}:pin"),
        &format!("{ACME}:badge"),
        &format!("{ACME}:badge.secret"),
        &format!("{ACME}:costCode"),
    ]
    .iter()
    .map(|name| (*name).to_owned())
    .filter(|name| never || !never_returned.contains(name))
    .collect();
    proptest::option::of(
        (
            proptest::sample::subsequence(names.clone(), 0..=names.len()),
            any::<bool>(),
        )
            .prop_map(|(names, shout)| {
                let list = names.join(",");
                if shout {
                    list.to_uppercase()
                } else {
                    list
                }
            }),
    )
}

/// Whether `value` holds an empty object or array anywhere.
fn has_empty(value: &Value) -> bool {
    match value {
        Value::Object(members) => members.is_empty() || members.values().any(has_empty),
        Value::Array(items) => items.is_empty() || items.iter().any(has_empty),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

proptest! {
    #[test]
    fn projection_never_leaks_and_always_keeps_id(
        resource in arbitrary_user(),
        attributes in arbitrary_list(false),
        excluded in arbitrary_list(true),
    ) {
        let registry = registry();
        let user_type = user_type(&registry);
        let projection = Projection::parse(
            &registry,
            user_type,
            attributes.as_deref(),
            excluded.as_deref(),
        )
        .unwrap();
        let mut projected = resource.clone();
        projection.apply(&registry, user_type, &mut projected);
        let object = projected.as_object().unwrap();

        prop_assert!(!object.keys().any(|key| key.eq_ignore_ascii_case("password")));
        if let Some(acme) = object.get(ACME) {
            prop_assert!(acme.get("pin").is_none());
            prop_assert!(acme.pointer("/badge/secret").is_none());
        }
        prop_assert_eq!(object.get("id"), resource.get("id"));
        prop_assert_eq!(object.get("schemas"), resource.get("schemas"));
        prop_assert!(!has_empty(&projected), "empty container in {}", projected);

        // Projecting again changes nothing.
        let mut again = projected.clone();
        projection.apply(&registry, user_type, &mut again);
        prop_assert_eq!(again, projected);
    }
}
