//! Bounds found by an attacker review (issue 9, "Bounded everything"): the
//! number of values of one multi-valued attribute, in a body and after
//! PATCH, and the keys captured under the `capture` policy.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::PATCH_OP_URN;
use muster_scim::resource::MAX_VALUES;
use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use muster_scim::{
    apply_patch_with, normalize, normalize_with, Normalized, PatchOp, ResourceType, SchemaRegistry,
    ScimError, ScimType, UndeclaredPolicy,
};
use serde_json::{json, Map, Value};

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

fn emails(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|n| json!({"value": format!("u{n}@example.com")}))
            .collect(),
    )
}

fn patch(operations: Value) -> PatchOp {
    PatchOp::from_json(&json!({"schemas": [PATCH_OP_URN], "Operations": operations})).unwrap()
}

fn assert_too_many(error: &ScimError, attribute: &str) {
    assert_eq!(error.status, 400, "{error:?}");
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
    assert!(
        error.detail.contains(&format!("'{attribute}'"))
            && error.detail.contains(&MAX_VALUES.to_string()),
        "{}",
        error.detail
    );
}

#[test]
fn a_body_holds_at_most_max_values_per_attribute() {
    let registry = SchemaRegistry::builtin();
    let rt = user_type(&registry);
    let body = |emails: Value| json!({"schemas": [USER_SCHEMA], "userName": "b", "emails": emails});
    let check = |count: usize, accepted: bool| {
        let result = normalize(&registry, rt, &body(emails(count)));
        match (result, accepted) {
            (Ok(resource), true) => {
                assert_eq!(resource["emails"].as_array().unwrap().len(), count);
            }
            (Err(error), false) => assert_too_many(&error, "emails"),
            (other, _) => panic!("{count} emails: {other:?}"),
        }
    };
    check(1, true);
    check(MAX_VALUES, true);
    check(MAX_VALUES + 1, false);
    check(5 * MAX_VALUES, false);

    // Duplicates are removed first: what counts is what would be stored.
    let mut list = emails(MAX_VALUES);
    list.as_array_mut()
        .unwrap()
        .push(json!({"value": "u0@example.com"}));
    assert!(normalize(&registry, rt, &body(list)).is_ok());
}

/// A group's members are kept as rows (muster-core takes them out of the
/// canonical resource before it is stored), so they are not capped here.
#[test]
fn group_members_are_not_capped() {
    let registry = SchemaRegistry::builtin();
    let rt = registry.resource_type("Group").unwrap();
    let members: Vec<Value> = (0..3 * MAX_VALUES)
        .map(|n| json!({"value": format!("id-{n}")}))
        .collect();
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "big", "members": members});
    let resource = normalize(&registry, rt, &body).unwrap();
    assert_eq!(
        resource["members"].as_array().unwrap().len(),
        3 * MAX_VALUES
    );
}

/// Repeated PATCH `add`s stop at the cap; a PATCH that would pass it is
/// refused whole and changes nothing (neither resource nor unmapped).
#[test]
fn patch_cannot_grow_an_attribute_past_the_cap() {
    let registry = SchemaRegistry::builtin();
    let rt = user_type(&registry);
    let mut stored = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "b"});
    let step = 300;
    let mut refused = 0;
    for round in 0..6 {
        let values: Vec<Value> = (0..step)
            .map(|n| json!({"value": format!("r{round}-{n}@example.com")}))
            .collect();
        let operations = patch(json!([
            {"op": "replace", "path": "displayName", "value": format!("round {round}")},
            {"op": "add", "path": "emails", "value": values},
        ]));
        match apply_patch_with(
            &registry,
            rt,
            &stored,
            &Map::new(),
            &operations.operations,
            UndeclaredPolicy::Capture,
        ) {
            Ok(patched) => stored = patched.resource,
            Err(error) => {
                assert_too_many(&error, "emails");
                refused += 1;
            }
        }
        let count = stored["emails"].as_array().map_or(0, Vec::len);
        assert!(count <= MAX_VALUES, "{count}");
    }
    // 3 rounds fit (900); the 4th and later would pass 1,000.
    assert_eq!(refused, 3);
    assert_eq!(stored["emails"].as_array().unwrap().len(), 3 * step);
    assert_eq!(stored["displayName"], "round 2");

    // Filling up to exactly the cap is fine; one more is refused.
    let fill: Vec<Value> = (0..MAX_VALUES - 3 * step)
        .map(|n| json!({"value": format!("fill-{n}@example.com")}))
        .collect();
    let full = apply_patch_with(
        &registry,
        rt,
        &stored,
        &Map::new(),
        &patch(json!([{"op": "add", "path": "emails", "value": fill}])).operations,
        UndeclaredPolicy::Reject,
    )
    .unwrap()
    .resource;
    assert_eq!(full["emails"].as_array().unwrap().len(), MAX_VALUES);
    let error = apply_patch_with(
        &registry,
        rt,
        &full,
        &Map::new(),
        &patch(
            json!([{"op": "add", "path": "emails", "value": {"value": "one-more@example.com"}}]),
        )
        .operations,
        UndeclaredPolicy::Reject,
    )
    .unwrap_err();
    assert_too_many(&error, "emails");
    // Adding a value already there changes nothing and is fine.
    let same = apply_patch_with(
        &registry,
        rt,
        &full,
        &Map::new(),
        &patch(json!([{"op": "add", "path": "emails", "value": {"value": "fill-0@example.com"}}]))
            .operations,
        UndeclaredPolicy::Reject,
    )
    .unwrap();
    assert!(!same.changed);
}

/// Captured lists and the number of captured attributes are capped too.
#[test]
fn captured_values_are_capped() {
    let registry = SchemaRegistry::builtin();
    let rt = user_type(&registry);
    let stored = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "b"});
    let tags = |from: usize, count: usize| -> Value {
        Value::Array(
            (from..from + count)
                .map(|n| json!(format!("t{n}")))
                .collect(),
        )
    };
    let run = |unmapped: &Map<String, Value>, operations: Value| {
        apply_patch_with(
            &registry,
            rt,
            &stored,
            unmapped,
            &patch(operations).operations,
            UndeclaredPolicy::Capture,
        )
    };
    let first = run(
        &Map::new(),
        json!([{"op": "add", "path": "tags", "value": tags(0, MAX_VALUES)}]),
    )
    .unwrap();
    assert!(first.unmapped_changed);
    let error = run(
        &first.unmapped,
        json!([{"op": "add", "path": "tags", "value": tags(MAX_VALUES, 1)}]),
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
    assert!(error.detail.contains("'tags'"), "{}", error.detail);

    let mut many = Map::new();
    for n in 0..MAX_VALUES {
        many.insert(format!("x{n}"), json!(n));
    }
    let error = run(
        &many,
        json!([{"op": "add", "path": "oneMore", "value": "v"}]),
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
    assert!(
        error.detail.contains("undeclared attributes"),
        "{}",
        error.detail
    );
}

fn capture(body: Value) -> Result<Normalized, ScimError> {
    let registry = SchemaRegistry::builtin();
    normalize_with(
        &registry,
        user_type(&registry),
        &body,
        UndeclaredPolicy::Capture,
    )
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Under `capture`, a key that is not an attribute path is refused (400
/// invalidPath naming it escaped and truncated), wherever it sits.
#[test]
fn capture_refuses_keys_that_are_not_paths() {
    let long = "k".repeat(60_000);
    let check = |body: Value, shown: &str| {
        let mut full = json!({"schemas": [USER_SCHEMA], "userName": "b"});
        for (key, value) in body.as_object().unwrap() {
            full[key] = value.clone();
        }
        let error = capture(full).unwrap_err();
        assert_eq!(error.status, 400, "{error:?}");
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath), "{error:?}");
        assert!(error.detail.contains(shown), "{shown}: {}", error.detail);
        assert!(error.detail.len() < 1_000, "{}", error.detail.len());
        assert!(!error.detail.contains('\t') && !error.detail.contains('\0'));
    };
    check(json!({"password ": "clear-text"}), r#""password ""#);
    check(json!({" password": "clear-text"}), r#"" password""#);
    check(json!({"pass\tword": "x"}), r#""pass\tword""#);
    check(json!({"pass\u{0}word": "x"}), r#""pass\0word""#);
    check(json!({"Cost  Center": "x"}), r#""Cost  Center""#);
    check(json!({"a.b.c": "x"}), r#""a.b.c""#);
    check(json!({ long.clone(): "x" }), "60000 bytes");
    check(json!({"name": {"nick name ": "x"}}), r#""name.nick name ""#);
    check(
        json!({"emails": [{"value": "a@x", "kind\n": "x"}]}),
        r#""emails.kind\n""#,
    );
    check(
        json!({ ENTERPRISE: {"cost center ": "x"} }),
        r#":cost center ""#,
    );
}

/// Legitimate undeclared keys are captured as before.
#[test]
fn capture_keeps_legitimate_keys() {
    let acme = "urn:example:acme:2.0:User";
    let normalized = capture(json!({
        "schemas": [USER_SCHEMA],
        "userName": "b",
        "extension_abc123_region": "EMEA",
        format!("{acme}:costCenter"): "CC-1",
        "Cost Center Code": "CC-2",
        "name": {"givenName": "B", "nickname": "Babs"},
    }))
    .unwrap();
    assert_eq!(
        Value::Object(normalized.unmapped),
        json!({
            "extension_abc123_region": "EMEA",
            format!("{acme}:costCenter"): "CC-1",
            "Cost Center Code": "CC-2",
            "name.nickname": "Babs",
        })
    );
}

/// A path-less PATCH value is checked the same way.
#[test]
fn patch_without_path_refuses_keys_that_are_not_paths() {
    let registry = SchemaRegistry::builtin();
    let rt = user_type(&registry);
    let stored = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "b"});
    let run = |value: Value| {
        apply_patch_with(
            &registry,
            rt,
            &stored,
            &Map::new(),
            &patch(json!([{"op": "replace", "value": value}])).operations,
            UndeclaredPolicy::Capture,
        )
    };
    let error = run(json!({"password ": "clear-text"})).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidPath), "{error:?}");
    assert!(error.detail.contains(r#""password ""#), "{}", error.detail);
    let patched = run(json!({"extension_abc123_region": "EMEA"})).unwrap();
    assert_eq!(
        Value::Object(patched.unmapped),
        json!({"extension_abc123_region": "EMEA"})
    );
}
