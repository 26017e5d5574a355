//! Custom attributes declared at run time (issue #5): schema definitions
//! as admins send them, binding and removal in the registry, every
//! attribute type through validation, filters, PATCH, sorting and
//! projection, the undeclared-attribute policy, and schema evolution.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::patch::PATCH_OP_URN;
use muster_scim::projection::Projection;
use muster_scim::schema::builtin::{
    enterprise_user_schema, ENTERPRISE_USER_SCHEMA as ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA,
};
use muster_scim::schema::{
    MultiValuedChange, PropertyChange, RemovedValue, TypeChange, SCHEMA_SCHEMA,
};
use muster_scim::{
    apply_patch, apply_patch_with, convert_resource, convert_value, diff_schemas, normalize,
    normalize_with, parse_schema_definition, parse_schema_definitions, refuse_password_attributes,
    remove_attributes, sort_resources, Attribute, AttributeType, Filter, Mutability, PatchOp,
    ResourceType, Returned, Schema, SchemaChanges, SchemaRegistry, ScimType, SortKey, SortOrder,
    UndeclaredPolicy,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
const GENESYS: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const TEAM: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group";
const DECLARE: &str =
    "declare it in an extension schema (PUT /admin/v1/schemas/{urn} or 'muster schema apply')";

/// The Contoso extension, as an admin would PUT it.
fn contoso_definition() -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": CONTOSO,
        "name": "Contoso",
        "description": "Contoso agent attributes",
        "attributes": [
            {"name": "region", "type": "string", "canonicalValues": ["APAC", "EMEA", "AMER"]},
            {"name": "costCenter", "type": "string", "caseExact": true},
            {"name": "tier", "type": "integer", "canonicalValues": [1, 2, 3]}
        ],
        "meta": {"resourceType": "Schema", "location": format!("https://muster.example/scim/v2/Schemas/{CONTOSO}")}
    })
}

/// The Genesys Cloud extension: custom fields in one complex attribute.
fn genesys_definition() -> Value {
    json!({
        "id": GENESYS,
        "name": "GenesysCloudUser",
        "attributes": [{
            "name": "customFields",
            "type": "complex",
            "subAttributes": [
                {"name": "BPO_Vendor_ID", "type": "string"},
                {"name": "Agent_Tier", "type": "integer"},
                {"name": "Language_Fluency", "type": "string", "multiValued": true}
            ]
        }]
    })
}

/// An extension with every attribute type.
fn acme_definition() -> Value {
    json!({
        "id": ACME,
        "attributes": [
            {"name": "nickname", "type": "string"},
            {"name": "remote", "type": "boolean"},
            {"name": "level", "type": "integer"},
            {"name": "score", "type": "decimal"},
            {"name": "hired", "type": "dateTime"},
            {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
            {"name": "badge", "type": "binary"},
            {"name": "skills", "type": "string", "multiValued": true},
            {"name": "desk", "type": "complex", "subAttributes": [
                {"name": "building", "type": "string", "required": true},
                {"name": "floor", "type": "integer"}
            ]},
            {"name": "shifts", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "start", "type": "dateTime"},
                {"name": "primary", "type": "boolean"}
            ]},
            {"name": "extension_abc123_region", "type": "string"}
        ]
    })
}

/// A Group extension.
fn team_definition() -> Value {
    json!({"id": TEAM, "attributes": [{"name": "queue", "type": "string"}]})
}

/// The built-in registry with every custom extension above, bound where
/// their URN says.
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    for definition in [
        contoso_definition(),
        genesys_definition(),
        acme_definition(),
        team_definition(),
    ] {
        let schema = parse_schema_definition(&definition).unwrap();
        let target = registry
            .extension_resource_type(&schema.id, None)
            .unwrap()
            .id
            .clone();
        registry.put_extension(schema, &target, false).unwrap();
    }
    registry
}

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

/// A user body with `userName` and the given members.
fn user(members: Value) -> Value {
    let mut body = json!({"schemas": [USER_SCHEMA], "userName": "bjensen"});
    for (key, value) in members.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

type Expected<'a> = Result<Value, (ScimType, &'a str)>;

/// Compares a result with the expected value, or the error's type and a
/// piece of its detail.
fn compare(result: Result<Value, muster_scim::ScimError>, expected: Expected<'_>, shown: &Value) {
    match (result, expected) {
        (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "input: {shown}"),
        (Err(error), Err((scim_type, detail))) => {
            assert_eq!(error.scim_type, Some(scim_type), "{error}");
            assert!(
                error.detail.contains(detail),
                "detail {:?} should contain {:?}",
                error.detail,
                detail
            );
        }
        (actual, expected) => panic!("input {shown}:\n got {actual:?}\n expected {expected:?}"),
    }
}

// ---- Schema definitions ----

#[test]
fn definitions_take_the_rfc_representation_with_defaults() {
    let schema = parse_schema_definition(&contoso_definition()).unwrap();
    let expected = Schema {
        id: CONTOSO.to_owned(),
        name: Some("Contoso".to_owned()),
        description: Some("Contoso agent attributes".to_owned()),
        attributes: vec![
            Attribute {
                canonical_values: vec!["APAC".into(), "EMEA".into(), "AMER".into()],
                ..Attribute::new("region", AttributeType::String)
            },
            Attribute {
                case_exact: true,
                ..Attribute::new("costCenter", AttributeType::String)
            },
            Attribute {
                canonical_values: vec!["1".into(), "2".into(), "3".into()],
                ..Attribute::new("tier", AttributeType::Integer)
            },
        ],
    };
    assert_eq!(schema, expected);

    // Member names and keywords in any case; type defaults to string;
    // writeOnly defaults to returned never.
    let schema = parse_schema_definition(&json!({
        "ID": CONTOSO,
        "Attributes": [
            {"NAME": "region"},
            {"name": "pin", "Mutability": "WRITEONLY", "CASEEXACT": true},
            {"name": "hired", "type": "DATETIME", "returned": "Request", "uniqueness": "SERVER", "required": true},
            {"name": "manager", "type": "reference", "referenceTypes": ["User"], "mutability": "immutable"}
        ]
    }))
    .unwrap();
    assert_eq!(schema.name, None);
    assert_eq!(
        schema.attributes,
        vec![
            Attribute::new("region", AttributeType::String),
            Attribute {
                mutability: Mutability::WriteOnly,
                returned: Returned::Never,
                case_exact: true,
                ..Attribute::new("pin", AttributeType::String)
            },
            Attribute {
                returned: Returned::Request,
                uniqueness: muster_scim::Uniqueness::Server,
                required: true,
                ..Attribute::new("hired", AttributeType::DateTime)
            },
            Attribute {
                reference_types: vec!["User".into()],
                mutability: Mutability::Immutable,
                ..Attribute::new("manager", AttributeType::Reference)
            },
        ]
    );
}

/// What `/Schemas` returns for a schema can be applied again as it is.
fn as_schemas_endpoint_returns(schema: &Schema) -> Value {
    let mut value = serde_json::to_value(schema).unwrap();
    value["schemas"] = json!([SCHEMA_SCHEMA]);
    value["meta"] = json!({
        "resourceType": "Schema",
        "location": format!("https://muster.example/scim/v2/Schemas/{}", schema.id)
    });
    value
}

#[test]
fn schemas_round_trip_through_their_json() {
    let enterprise = enterprise_user_schema();
    assert_eq!(
        parse_schema_definition(&serde_json::to_value(&enterprise).unwrap()).unwrap(),
        enterprise
    );
    assert_eq!(
        parse_schema_definition(&as_schemas_endpoint_returns(&enterprise)).unwrap(),
        enterprise
    );
    for definition in [
        contoso_definition(),
        genesys_definition(),
        acme_definition(),
    ] {
        let schema = parse_schema_definition(&definition).unwrap();
        let again = parse_schema_definition(&as_schemas_endpoint_returns(&schema)).unwrap();
        assert_eq!(again, schema, "{definition}");
    }
}

#[test]
fn real_world_names_are_valid() {
    for name in [
        "BPO_Vendor_ID",
        "extension_abc123_region",
        "Agent_Tier",
        "costCenter",
        "cost-center",
    ] {
        let definition = json!({"id": CONTOSO, "attributes": [{"name": name, "type": "string"}]});
        assert!(
            parse_schema_definition(&definition).is_ok(),
            "{name} should be valid"
        );
    }
}

/// Parses `definition` and expects `400 invalidValue` with exactly
/// `detail`.
fn check_definition_error(definition: Value, detail: &str) {
    let error = parse_schema_definition(&definition).unwrap_err();
    assert_eq!(error.status, 400, "{definition}");
    assert_eq!(
        error.scim_type,
        Some(ScimType::InvalidValue),
        "{definition}"
    );
    assert_eq!(error.detail, detail, "{definition}");
}

/// A definition of the Contoso URN with the given attributes.
fn with_attributes(attributes: Value) -> Value {
    json!({"id": CONTOSO, "attributes": attributes})
}

#[test]
fn definition_errors_name_the_location_and_what_was_expected() {
    let string = |name: &str| json!({"name": name, "type": "string"});
    check_definition_error(
        with_attributes(json!([
            string("a"),
            string("b"),
            {"name": "c", "type": "complex", "subAttributes": [{"name": "d", "type": "text"}]}
        ])),
        "attributes[2].subAttributes[0].type: expected one of string, boolean, decimal, integer, dateTime, reference, binary, complex; got 'text'",
    );
    check_definition_error(
        json!({"id": CONTOSO, "attributes": [], "version": 2}),
        "version: unknown member; a schema holds id, name, description, attributes, schemas, meta",
    );
    check_definition_error(
        with_attributes(json!([{"name": "a", "type": "string", "mutable": "readOnly"}])),
        "attributes[0].mutable: unknown member (did you mean 'mutability'?); an attribute holds name, type, subAttributes, multiValued, description, required, canonicalValues, caseExact, mutability, returned, uniqueness, referenceTypes",
    );
    check_definition_error(
        with_attributes(json!([{"name": "a", "Type": "string", "TYPE": "integer"}])),
        "attributes[0].TYPE: given twice (member names are case-insensitive)",
    );
    check_definition_error(
        json!({"id": "contoso", "attributes": []}),
        "id: expected a URN such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'; got 'contoso'",
    );
    check_definition_error(
        json!({"id": "urn:contoso:agent fields:User", "attributes": []}),
        "id: expected a URN such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'; got 'urn:contoso:agent fields:User': a schema URN may not hold whitespace",
    );
    check_definition_error(
        json!({"id": "urn:contoso:agents:2.0", "attributes": []}),
        "id: the URN must end in a name such as ':User' (a letter, then letters, digits, '-' or '_') so that it can stand as an attribute path prefix; 'urn:contoso:agents:2.0' ends in '2.0'",
    );
    check_definition_error(
        json!({"attributes": []}),
        "id: required: the schema URN, such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'",
    );
    check_definition_error(
        json!({"id": USER_SCHEMA, "attributes": [string("region")]}),
        "id: 'urn:ietf:params:scim:schemas:core:2.0:User' is the built-in core User schema and cannot be redefined; declare custom attributes in an extension schema such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'",
    );
    check_definition_error(
        json!({"id": GROUP_SCHEMA.to_uppercase().replace("URN", "urn"), "attributes": []}),
        "id: 'urn:ietf:params:scim:schemas:core:2.0:Group' is the built-in core Group schema and cannot be redefined; declare custom attributes in an extension schema such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'",
    );
    check_definition_error(
        json!({"id": "urn:ietf:params:scim:api:messages:2.0:PatchOp", "attributes": []}),
        "id: URNs starting with 'urn:ietf:params:scim:api:' are reserved by RFC 7643 and RFC 7644; declare custom attributes in an extension schema such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'",
    );
    check_definition_error(
        with_attributes(json!([string("Cost Center Code")])),
        "attributes[0].name: expected a name that starts with a letter and holds only letters, digits, '-' and '_'; got 'Cost Center Code' (try 'CostCenterCode')",
    );
    check_definition_error(
        with_attributes(json!([string("1tier")])),
        "attributes[0].name: expected a name that starts with a letter and holds only letters, digits, '-' and '_'; got '1tier'",
    );
    check_definition_error(
        with_attributes(json!([{"type": "string"}])),
        "attributes[0].name: required: the attribute name, such as 'region'",
    );
    check_definition_error(
        with_attributes(json!([string("region"), string("costCenter"), string("Region")])),
        "attributes[2].name: 'Region' is already declared by attributes[0] (attribute names are case-insensitive)",
    );
    check_definition_error(
        with_attributes(json!([{"name": "c", "type": "complex", "subAttributes": [string("x"), string("X")]}])),
        "attributes[0].subAttributes[1].name: 'X' is already declared by attributes[0].subAttributes[0] (attribute names are case-insensitive)",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "type": "string", "subAttributes": [string("code")]}])),
        "attributes[0].subAttributes: only complex attributes have sub-attributes; 'region' is of type string",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "subAttributes": [string("code")]}])),
        "attributes[0].type: required when subAttributes are given: expected 'complex'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "customFields", "type": "complex"}])),
        "attributes[0].subAttributes: complex attribute 'customFields' needs at least one sub-attribute",
    );
    check_definition_error(
        with_attributes(json!([{"name": "customFields", "type": "complex", "subAttributes": [
            {"name": "inner", "type": "complex", "subAttributes": [string("x")]}
        ]}])),
        "attributes[0].subAttributes[0].subAttributes: a sub-attribute cannot have sub-attributes of its own (RFC 7643 section 2.3.8)",
    );
    check_definition_error(
        with_attributes(json!([{"name": "customFields", "type": "complex", "subAttributes": [
            {"name": "inner", "type": "complex"}
        ]}])),
        "attributes[0].subAttributes[0].type: a sub-attribute cannot be complex (RFC 7643 section 2.3.8)",
    );
    check_definition_error(
        with_attributes(json!([{"name": "tier", "type": "integer", "canonicalValues": [1, "two"]}])),
        "attributes[0].canonicalValues[1]: expected an integer (the attribute's type is integer); got 'two'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "tier", "type": "integer", "canonicalValues": [1.5]}])),
        "attributes[0].canonicalValues[0]: expected an integer (the attribute's type is integer); got '1.5'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "type": "string", "canonicalValues": ["APAC", 2]}])),
        "attributes[0].canonicalValues[1]: expected a string (the attribute's type is string); got the number 2",
    );
    check_definition_error(
        with_attributes(json!([{"name": "hired", "type": "dateTime", "canonicalValues": ["yesterday"]}])),
        "attributes[0].canonicalValues[0]: expected an RFC 3339 dateTime such as \"2024-05-01T12:00:00Z\" (the attribute's type is dateTime); got 'yesterday'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "type": "string", "referenceTypes": ["User"]}])),
        "attributes[0].referenceTypes: only reference attributes have referenceTypes; 'region' is of type string",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "required": true, "mutability": "readOnly"}])),
        "attributes[0]: 'region' cannot be both required and readOnly: clients cannot set a readOnly attribute",
    );
    check_definition_error(
        with_attributes(json!([{"name": "pin", "mutability": "writeOnly", "returned": "default"}])),
        "attributes[0].returned: a writeOnly attribute is never returned (RFC 7643 section 7): expected 'never' or nothing; got 'default'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "multiValued": "yes"}])),
        "attributes[0].multiValued: expected true or false; got 'yes'",
    );
    check_definition_error(
        with_attributes(json!([{"name": "region", "mutability": "sometimes"}])),
        "attributes[0].mutability: expected one of readOnly, readWrite, immutable, writeOnly; got 'sometimes'",
    );
    check_definition_error(
        with_attributes(json!([string("schemas")])),
        "attributes[0].name: 'schemas' is reserved: it lists a resource's schema URNs",
    );
    check_definition_error(
        with_attributes(json!(["region"])),
        "attributes[0]: expected an attribute definition object with name and type; got the string \"region\"",
    );
    check_definition_error(
        json!({"id": CONTOSO}),
        "attributes: required: a list of attribute definitions (each with name and type)",
    );
    check_definition_error(
        json!({"id": CONTOSO, "attributes": [], "schemas": [USER_SCHEMA]}),
        "schemas: expected [\"urn:ietf:params:scim:schemas:core:2.0:Schema\"] (as /Schemas returns it) or nothing; got an array",
    );
    check_definition_error(
        json!({"id": CONTOSO, "attributes": [], "meta": {"resourceType": "User"}}),
        "meta.resourceType: expected 'Schema'; got 'User'",
    );
    check_definition_error(
        json!({"id": CONTOSO, "attributes": [], "meta": {"resourceType": "Schema", "owner": "x"}}),
        "meta.owner: unknown member; a schema's meta holds resourceType, location, created, lastModified, version",
    );
    check_definition_error(
        json!([contoso_definition()]),
        "schema: expected a schema object (RFC 7643 section 7) with id, name, description and attributes; got an array",
    );
}

#[test]
fn schema_files_hold_one_schema_or_a_list() {
    let one = parse_schema_definitions(&contoso_definition()).unwrap();
    assert_eq!(one.len(), 1);
    let two =
        parse_schema_definitions(&json!([contoso_definition(), genesys_definition()])).unwrap();
    assert_eq!(
        two.iter()
            .map(|schema| schema.id.as_str())
            .collect::<Vec<_>>(),
        [CONTOSO, GENESYS]
    );
    let twice = json!([contoso_definition(), genesys_definition(), {"id": CONTOSO.to_lowercase(), "attributes": []}]);
    assert_eq!(
        parse_schema_definitions(&twice).unwrap_err().detail,
        format!(
            "[2].id: schema '{}' is already defined by [0]; define each schema once",
            CONTOSO.to_lowercase()
        )
    );
    assert_eq!(
        parse_schema_definitions(&json!([genesys_definition(), {"id": CONTOSO, "attributes": [{"name": "a b"}]}]))
            .unwrap_err()
            .detail,
        "[1].attributes[0].name: expected a name that starts with a letter and holds only letters, digits, '-' and '_'; got 'a b' (try 'ab')"
    );
}

// ---- The registry at run time ----

#[test]
fn the_resource_type_comes_from_the_urn_unless_given() {
    let registry = registry();
    let check = |urn: &str, requested: Option<&str>, expected: Result<&str, &str>| match (
        registry.extension_resource_type(urn, requested),
        expected,
    ) {
        (Ok(rt), Ok(id)) => assert_eq!(rt.id, id, "{urn} {requested:?}"),
        (Err(error), Err(detail)) => assert_eq!(error.detail, detail),
        (actual, expected) => panic!("{urn}: got {actual:?}, expected {expected:?}"),
    };
    check("urn:example:agents:2.0:User", None, Ok("User"));
    check("urn:example:agents:2.0:user", None, Ok("User"));
    check("urn:example:agents:2.0:Group", None, Ok("Group"));
    check("urn:example:agents:2.0:GROUP", None, Ok("Group"));
    check("urn:example:agents:2.0:Agent", None, Ok("User"));
    check("urn:example:agents:2.0:Agent", Some("group"), Ok("Group"));
    check(TEAM, None, Ok("Group"));
    check(
        "urn:example:agents:2.0:Agent",
        Some("Device"),
        Err("unknown resource type 'Device'; the server knows User, Group"),
    );
    // Already bound: stays where it is.
    let mut registry = registry.clone();
    let schema = parse_schema_definition(&json!({
        "id": "urn:example:agents:2.0:Agent", "attributes": [{"name": "queue"}]
    }))
    .unwrap();
    registry.put_extension(schema, "Group", false).unwrap();
    assert_eq!(
        registry
            .extension_resource_type("urn:example:agents:2.0:AGENT", None)
            .unwrap()
            .id,
        "Group"
    );
}

#[test]
fn put_extension_adds_binds_and_replaces() {
    let mut registry = SchemaRegistry::builtin();
    let contoso = parse_schema_definition(&contoso_definition()).unwrap();
    assert_eq!(
        registry.put_extension(contoso.clone(), "User", false),
        Ok(None)
    );
    let rt = user_type(&registry);
    assert!(rt
        .schema_extensions
        .iter()
        .any(|ext| ext.schema == CONTOSO && !ext.required));
    assert!(registry.schemas().iter().any(|schema| schema.id == CONTOSO));

    // Replacing returns the old definition; the binding is updated.
    let mut wider = contoso.clone();
    wider
        .attributes
        .push(Attribute::new("site", AttributeType::String));
    assert_eq!(
        registry.put_extension(wider.clone(), "user", true),
        Ok(Some(contoso.clone()))
    );
    assert_eq!(registry.schema(CONTOSO), Some(&wider));
    let bindings: Vec<_> = user_type(&registry)
        .schema_extensions
        .iter()
        .filter(|ext| ext.schema == CONTOSO)
        .collect();
    assert_eq!(bindings.len(), 1);
    assert!(bindings[0].required);

    // Errors leave the registry unchanged.
    let before = registry.clone();
    let mut broken = wider.clone();
    broken
        .attributes
        .push(Attribute::new("Site", AttributeType::Integer));
    let error = registry.put_extension(broken, "User", false).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
    assert!(
        error.detail.contains("already declared"),
        "{}",
        error.detail
    );
    let error = registry
        .put_extension(wider.clone(), "Group", false)
        .unwrap_err();
    assert_eq!(
        error.detail,
        format!("schema '{CONTOSO}' is bound to resource type User; remove it first to bind it to Group")
    );
    let error = registry
        .put_extension(wider.clone(), "Device", false)
        .unwrap_err();
    assert_eq!(
        error.detail,
        "unknown resource type 'Device'; the server knows User, Group"
    );
    let core = Schema {
        id: USER_SCHEMA.to_owned(),
        name: None,
        description: None,
        attributes: vec![Attribute::new("region", AttributeType::String)],
    };
    let error = registry.put_extension(core, "User", false).unwrap_err();
    assert!(error.detail.contains("is built in and cannot be replaced"));
    assert_eq!(registry, before);

    // The enterprise extension may be extended.
    let mut enterprise = enterprise_user_schema();
    enterprise
        .attributes
        .push(Attribute::new("site", AttributeType::String));
    assert_eq!(
        registry.put_extension(enterprise, "User", false),
        Ok(Some(enterprise_user_schema()))
    );
}

#[test]
fn remove_extension_unbinds() {
    let mut registry = registry();
    let path = muster_scim::AttrPath::parse(&format!("{CONTOSO}:region")).unwrap();
    assert!(registry.resolve(user_type(&registry), &path).is_some());
    let removed = registry.remove_extension(&CONTOSO.to_lowercase()).unwrap();
    assert_eq!(removed.id, CONTOSO);
    assert!(registry.schema(CONTOSO).is_none());
    assert!(registry.resolve(user_type(&registry), &path).is_none());
    assert!(!user_type(&registry)
        .schema_extensions
        .iter()
        .any(|ext| ext.schema == CONTOSO));

    let before = registry.clone();
    let error = registry.remove_extension(ENTERPRISE).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
    assert_eq!(
        error.detail,
        format!("schema '{ENTERPRISE}' is the built-in Enterprise User extension (RFC 7643 section 4.3) and cannot be removed; leave its attributes unset instead")
    );
    let error = registry.remove_extension(GROUP_SCHEMA).unwrap_err();
    assert_eq!(
        error.detail,
        format!("schema '{GROUP_SCHEMA}' is the built-in core schema of resource type Group and cannot be removed")
    );
    let error = registry.remove_extension(CONTOSO).unwrap_err();
    assert_eq!(error.status, 404);
    assert_eq!(registry, before);
}

#[test]
fn add_schema_and_bind_extension_still_work() {
    let mut registry = SchemaRegistry::builtin();
    let contoso = parse_schema_definition(&contoso_definition()).unwrap();
    registry.add_schema(contoso).unwrap();
    registry.bind_extension("User", CONTOSO, false).unwrap();
    let body = user(json!({ CONTOSO: {"region": "APAC"} }));
    assert!(normalize(&registry, user_type(&registry), &body).is_ok());
}

// ---- Every attribute type through validation ----

/// Normalises a User body against [`registry`].
fn check_user(body: Value, expected: Expected<'_>) {
    let registry = registry();
    let result = normalize(&registry, user_type(&registry), &body);
    if let Ok(canonical) = &result {
        let again = normalize(&registry, user_type(&registry), canonical).unwrap();
        assert_eq!(&again, canonical, "normalising is idempotent");
    }
    compare(result, expected, &body);
}

/// The canonical user with `extensions` (URN to object) after `userName`.
fn canonical(extensions: Value) -> Value {
    let mut resource = json!({"schemas": [USER_SCHEMA], "userName": "bjensen"});
    let object = resource.as_object_mut().unwrap();
    for (urn, members) in extensions.as_object().unwrap() {
        object["schemas"].as_array_mut().unwrap().push(json!(urn));
        object.insert(urn.clone(), members.clone());
    }
    resource
}

#[test]
fn every_attribute_type_is_validated() {
    let all = json!({
        "nickname": "Babs",
        "remote": "True",
        "level": 3,
        "score": 4.5,
        "hired": "2024-05-01T12:00:00Z",
        "homepage": "https://example.com/babs",
        "badge": "aGVsbG8=",
        "skills": ["french", "german", "french"],
        "desk": {"building": "B1", "floor": 2},
        "shifts": [{"value": "early", "start": "2024-05-01T06:00:00Z", "primary": true}, {"value": "late"}],
        "extension_abc123_region": "APAC"
    });
    let mut expected = all.clone();
    expected["remote"] = json!(true);
    expected["skills"] = json!(["french", "german"]);
    check_user(
        user(json!({ ACME: all })),
        Ok(canonical(json!({ ACME: expected }))),
    );

    let bad = |members: Value, detail: &str| {
        check_user(
            user(json!({ ACME: members })),
            Err((ScimType::InvalidValue, detail)),
        );
    };
    bad(
        json!({"nickname": 5}),
        &format!("attribute '{ACME}:nickname' expects a string, got the number 5"),
    );
    bad(
        json!({"remote": "yes"}),
        &format!("attribute '{ACME}:remote' expects a boolean, got the string \"yes\""),
    );
    bad(
        json!({"level": 2.5}),
        &format!("attribute '{ACME}:level' expects an integer, got the number 2.5"),
    );
    bad(
        json!({"score": "high"}),
        &format!("attribute '{ACME}:score' expects a number"),
    );
    bad(
        json!({"hired": "2024-05-01"}),
        &format!("attribute '{ACME}:hired' expects an RFC 3339 dateTime string"),
    );
    bad(
        json!({"homepage": 7}),
        &format!("attribute '{ACME}:homepage' expects a reference"),
    );
    bad(
        json!({"badge": "not base64!"}),
        &format!("attribute '{ACME}:badge' expects a base64-encoded string"),
    );
    bad(
        json!({"skills": [1]}),
        &format!("attribute '{ACME}:skills' expects a string or a list of strings"),
    );
    bad(
        json!({"desk": {"floor": 2}}),
        &format!("required attribute '{ACME}:desk.building' is missing"),
    );
    bad(
        json!({"desk": {"building": "B1", "floor": "two"}}),
        &format!("attribute '{ACME}:desk.floor' expects an integer"),
    );
    bad(
        json!({"shifts": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
        &format!("attribute '{ACME}:shifts' has 2 values with \"primary\": true"),
    );
    bad(
        json!({"level": [1, 2]}),
        &format!("attribute '{ACME}:level' expects an integer, got an array"),
    );
}

#[test]
fn custom_attributes_in_every_form_clients_send() {
    let expected = canonical(json!({
        CONTOSO: {"region": "APAC", "costCenter": "CC-1", "tier": 2},
        GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1"}},
    }));
    // Nested under the URN.
    check_user(
        user(json!({
            CONTOSO: {"region": "APAC", "costCenter": "CC-1", "tier": 2},
            GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1"}},
        })),
        Ok(expected.clone()),
    );
    // URN-qualified keys, the dotted sub-attribute form, any case.
    check_user(
        user(json!({
            "schemas": [USER_SCHEMA, CONTOSO, GENESYS],
            format!("{CONTOSO}:region"): "APAC",
            format!("{CONTOSO}:COSTCENTER"): "CC-1",
            format!("{}:tier", CONTOSO.to_lowercase()): 2,
            format!("{GENESYS}:customFields.bpo_vendor_id"): "V-1",
        })),
        Ok(expected),
    );
}

#[test]
fn clearing_with_null_empty_string_or_empty_list() {
    for empty in [json!(null), json!(""), json!([])] {
        check_user(
            user(json!({
                CONTOSO: {"region": empty.clone(), "tier": 1},
                GENESYS: {"customFields": {"BPO_Vendor_ID": empty.clone()}},
                ACME: {"skills": empty.clone()},
            })),
            Ok(canonical(json!({ CONTOSO: {"tier": 1} }))),
        );
    }
    // PATCH: each form clears.
    let registry = registry();
    let rt = user_type(&registry);
    let stored = canonical(json!({
        CONTOSO: {"region": "APAC", "tier": 1},
        GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1"}},
        ACME: {"skills": ["french"]},
    }));
    for empty in [json!(null), json!(""), json!([])] {
        let patch = patch(json!([
            {"op": "replace", "path": format!("{CONTOSO}:region"), "value": empty.clone()},
            {"op": "replace", "path": format!("{GENESYS}:customFields.BPO_Vendor_ID"), "value": empty.clone()},
            {"op": "replace", "path": format!("{ACME}:skills"), "value": empty.clone()},
        ]));
        let outcome = apply_patch(&registry, rt, &stored, &patch.operations).unwrap();
        assert_eq!(
            outcome.resource,
            canonical(json!({ CONTOSO: {"tier": 1} })),
            "{empty}"
        );
    }
}

// ---- Filters, PATCH, sorting and projection ----

fn agents() -> Vec<Value> {
    let registry = registry();
    let rt = user_type(&registry);
    [
        json!({"userName": "ana", CONTOSO: {"region": "APAC", "tier": 1, "costCenter": "CC-1"},
               GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1", "Language_Fluency": ["en", "ja"]}},
               ACME: {"hired": "2021-01-01T00:00:00Z", "remote": true, "score": 2.5}}),
        json!({"userName": "bo", CONTOSO: {"region": "EMEA", "tier": 3, "costCenter": "cc-2"},
               GENESYS: {"customFields": {"BPO_Vendor_ID": "V-2"}},
               ACME: {"hired": "2023-06-01T00:00:00+02:00", "remote": false}}),
        json!({"userName": "cy", CONTOSO: {"tier": 2}}),
    ]
    .into_iter()
    .map(|body| {
        let mut body = body;
        body["schemas"] = json!([USER_SCHEMA]);
        let mut resource = normalize(&registry, rt, &body).unwrap();
        resource["id"] = body["userName"].clone();
        resource
    })
    .collect()
}

#[test]
fn filters_on_custom_attributes() {
    let registry = registry();
    let rt = user_type(&registry);
    let resources = agents();
    let check = |filter: &str, expected: &[&str]| {
        let parsed = Filter::parse(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        parsed
            .check(&registry, rt)
            .unwrap_or_else(|error| panic!("{filter}: {error}"));
        let matched: Vec<&str> = resources
            .iter()
            .filter(|resource| parsed.matches(resource, &registry, rt))
            .map(|resource| resource["id"].as_str().unwrap())
            .collect();
        assert_eq!(matched, expected, "{filter}");
    };
    check(&format!(r#"{CONTOSO}:region eq "APAC""#), &["ana"]);
    check(&format!(r#"{CONTOSO}:region eq "apac""#), &["ana"]);
    check(&format!(r#"{CONTOSO}:REGION pr"#), &["ana", "bo"]);
    check(&format!(r#"not ({CONTOSO}:region pr)"#), &["cy"]);
    check(&format!(r#"{CONTOSO}:tier gt 1"#), &["bo", "cy"]);
    check(
        &format!(r#"{CONTOSO}:tier le 2 and {CONTOSO}:tier ge 2"#),
        &["cy"],
    );
    check(&format!(r#"{CONTOSO}:costCenter eq "CC-2""#), &[]);
    check(&format!(r#"{CONTOSO}:costCenter eq "cc-2""#), &["bo"]);
    check(
        &format!(r#"{GENESYS}:customFields.BPO_Vendor_ID eq "V-2""#),
        &["bo"],
    );
    check(
        &format!(r#"{GENESYS}:customFields.Language_Fluency eq "ja""#),
        &["ana"],
    );
    check(
        &format!(r#"{GENESYS}:customFields.BPO_Vendor_ID sw "v-""#),
        &["ana", "bo"],
    );
    check(
        &format!(r#"{ACME}:hired gt "2022-01-01T00:00:00Z""#),
        &["bo"],
    );
    check(&format!(r#"{ACME}:remote eq false"#), &["bo"]);
    check(&format!(r#"{ACME}:score lt 3"#), &["ana"]);

    let error = Filter::parse(&format!(r#"{CONTOSO}:regoin eq "APAC""#))
        .unwrap()
        .check(&registry, rt)
        .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
    assert!(
        error
            .detail
            .contains(&format!("did you mean '{CONTOSO}:region'?")),
        "{}",
        error.detail
    );
}

fn patch(operations: Value) -> PatchOp {
    PatchOp::from_json(&json!({"schemas": [PATCH_OP_URN], "Operations": operations})).unwrap()
}

#[test]
fn patch_paths_in_both_urn_forms() {
    let registry = registry();
    let rt = user_type(&registry);
    let stored = canonical(json!({ CONTOSO: {"region": "APAC"} }));
    let check = |operations: Value, expected: Expected<'_>| {
        let operations_shown = operations.clone();
        let result = apply_patch(&registry, rt, &stored, &patch(operations).operations)
            .map(|outcome| outcome.resource);
        compare(result, expected, &operations_shown);
    };
    // Entra ID: URN-qualified paths, capitalised op names.
    check(
        json!([
            {"op": "Replace", "path": format!("{CONTOSO}:region"), "value": "EMEA"},
            {"op": "Add", "path": format!("{CONTOSO}:costCenter"), "value": "CC-9"},
            {"op": "Add", "path": format!("{GENESYS}:customFields.BPO_Vendor_ID"), "value": "V-7"},
        ]),
        Ok(canonical(json!({
            CONTOSO: {"region": "EMEA", "costCenter": "CC-9"},
            GENESYS: {"customFields": {"BPO_Vendor_ID": "V-7"}},
        }))),
    );
    // Path-less, with URN-qualified keys and a whole extension.
    check(
        json!([{"op": "add", "value": {
            format!("{CONTOSO}:tier"): "3",
            GENESYS: {"customFields": {"Agent_Tier": 2}},
        }}]),
        Err((
            ScimType::InvalidValue,
            &format!("attribute '{CONTOSO}:tier' expects an integer, got the string \"3\""),
        )),
    );
    check(
        json!([{"op": "add", "value": {
            format!("{CONTOSO}:tier"): 3,
            GENESYS: {"customFields": {"Agent_Tier": 2}},
        }}]),
        Ok(canonical(json!({
            CONTOSO: {"region": "APAC", "tier": 3},
            GENESYS: {"customFields": {"Agent_Tier": 2}},
        }))),
    );
    // Multi-valued sub-attribute; removal of a sub-attribute and of an
    // attribute.
    check(
        json!([
            {"op": "add", "path": format!("{GENESYS}:customFields.Language_Fluency"), "value": ["en", "fr"]},
            {"op": "remove", "path": format!("{CONTOSO}:region")},
        ]),
        Ok(canonical(json!({
            GENESYS: {"customFields": {"Language_Fluency": ["en", "fr"]}},
        }))),
    );
    // The issue's typo: refused, with the suggestion and how to declare.
    check(
        json!([{"op": "replace", "path": format!("{CONTOSO}:regoin"), "value": "APAC"}]),
        Err((
            ScimType::InvalidPath,
            &format!("unknown attribute '{CONTOSO}:regoin': no schema of resource type User declares it; did you mean '{CONTOSO}:region'? Otherwise {DECLARE}"),
        )),
    );
}

#[test]
fn sorting_and_projection_with_custom_attributes() {
    let registry = registry();
    let rt = user_type(&registry);
    let sorted = |sort_by: &str, order: SortOrder| {
        let key = SortKey::parse(&registry, rt, sort_by).unwrap();
        let mut resources = agents();
        sort_resources(&mut resources, &key, order);
        resources
            .iter()
            .map(|resource| resource["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sorted(&format!("{CONTOSO}:tier"), SortOrder::Descending),
        ["bo", "cy", "ana"]
    );
    assert_eq!(
        sorted(&format!("{CONTOSO}:region"), SortOrder::Ascending),
        ["ana", "bo", "cy"]
    );
    assert_eq!(
        sorted(
            &format!("{GENESYS}:customFields.BPO_Vendor_ID"),
            SortOrder::Descending
        ),
        ["cy", "bo", "ana"]
    );
    assert_eq!(
        sorted(&format!("{ACME}:hired"), SortOrder::Descending),
        ["cy", "bo", "ana"]
    );
    let error = SortKey::parse(&registry, rt, &format!("{GENESYS}:customFields")).unwrap_err();
    assert!(
        error.detail.contains("name one of its sub-attributes"),
        "{}",
        error.detail
    );

    let ana = agents().remove(0);
    let project = |attributes: Option<&str>, excluded: Option<&str>| {
        let projection = Projection::parse(&registry, rt, attributes, excluded).unwrap();
        let mut resource = ana.clone();
        projection.apply(&registry, rt, &mut resource);
        resource
    };
    let only = project(
        Some(&format!(
            "{CONTOSO}:region,{GENESYS}:customFields.BPO_Vendor_ID"
        )),
        None,
    );
    assert_eq!(only[CONTOSO], json!({"region": "APAC"}));
    assert_eq!(
        only[GENESYS],
        json!({"customFields": {"BPO_Vendor_ID": "V-1"}})
    );
    assert_eq!(only.get(ACME), None);
    assert_eq!(only.get("userName"), None);
    let without = project(
        None,
        Some(&format!(
            "{CONTOSO}:costCenter,{GENESYS}:customFields.Language_Fluency"
        )),
    );
    assert_eq!(without[CONTOSO], json!({"region": "APAC", "tier": 1}));
    assert_eq!(
        without[GENESYS],
        json!({"customFields": {"BPO_Vendor_ID": "V-1"}})
    );
    assert_eq!(without["userName"], "ana");
}

#[test]
fn group_extensions() {
    let registry = registry();
    let rt = registry.resource_type("Group").unwrap();
    let body =
        json!({"schemas": [GROUP_SCHEMA, TEAM], "displayName": "Ops", TEAM: {"queue": "Q1"}});
    assert_eq!(
        normalize(&registry, rt, &body).unwrap(),
        json!({"schemas": [GROUP_SCHEMA, TEAM], "displayName": "Ops", TEAM: {"queue": "Q1"}})
    );
    // A User extension is not a Group extension.
    let error = normalize(
        &registry,
        rt,
        &json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", format!("{CONTOSO}:region"): "APAC"}),
    )
    .unwrap_err();
    assert!(error
        .detail
        .contains("no schema of resource type Group declares it"));
}

// ---- Undeclared attributes: reject or capture ----

#[test]
fn reject_names_the_path_suggests_and_says_how_to_declare() {
    let bad = |body: Value, detail: String| {
        check_user(body, Err((ScimType::InvalidSyntax, &detail)));
    };
    bad(
        user(json!({ format!("{CONTOSO}:regoin"): "APAC" })),
        format!("unknown attribute '{CONTOSO}:regoin': no schema of resource type User declares it; did you mean '{CONTOSO}:region'? Otherwise {DECLARE}"),
    );
    bad(
        user(json!({ CONTOSO: {"regoin": "APAC"} })),
        format!("did you mean '{CONTOSO}:region'?"),
    );
    bad(
        user(json!({ GENESYS: {"customFields": {"BPO_Vendor_Id2": "x"}} })),
        format!("unknown attribute '{GENESYS}:customFields.BPO_Vendor_Id2'"),
    );
    bad(
        user(json!({"extension_abc123_region": "APAC"})),
        format!("unknown attribute 'extension_abc123_region': no schema of resource type User declares it; {DECLARE}"),
    );
    check_user(
        user(json!({"schemas": [USER_SCHEMA, "urn:example:other:2.0:User"]})),
        Err((
            ScimType::InvalidValue,
            "schema \"urn:example:other:2.0:User\" in 'schemas' is not a schema of resource type User",
        )),
    );
}

/// Normalises under the capture policy.
fn capture(body: Value) -> Result<(Value, Value), muster_scim::ScimError> {
    let registry = registry();
    normalize_with(
        &registry,
        user_type(&registry),
        &body,
        UndeclaredPolicy::Capture,
    )
    .map(|normalized| (normalized.resource, Value::Object(normalized.unmapped)))
}

#[test]
fn capture_keeps_undeclared_values_apart() {
    let other = "urn:example:other:2.0:User";
    let body = json!({
        "schemas": [USER_SCHEMA, CONTOSO, other],
        "userName": "bjensen",
        "Cost Center Code": "CC-1",
        "name": {"givenName": "Barbara", "nickname": "Babs"},
        "emails": [{"value": "a@x", "kind": "work"}, {"value": "b@x"}, {"value": "c@x", "kind": "home"}],
        format!("{CONTOSO}:regoin"): "APAC",
        CONTOSO: {"region": "EMEA", "site": "Lisbon"},
        GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1", "Shift_Code": "S1"}},
        other: {"x": 1},
        "nothing": null,
    });
    let (resource, unmapped) = capture(body).unwrap();
    assert_eq!(
        resource,
        json!({
            "schemas": [USER_SCHEMA, CONTOSO, GENESYS],
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "a@x"}, {"value": "b@x"}, {"value": "c@x"}],
            CONTOSO: {"region": "EMEA"},
            GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1"}},
        })
    );
    assert_eq!(
        unmapped,
        json!({
            "Cost Center Code": "CC-1",
            "name.nickname": "Babs",
            "emails.kind": ["work", "home"],
            format!("{CONTOSO}:regoin"): "APAC",
            format!("{CONTOSO}:site"): "Lisbon",
            format!("{GENESYS}:customFields.Shift_Code"): "S1",
            other: {"x": 1},
        })
    );

    // Declared values are validated as usual.
    let error = capture(user(json!({ CONTOSO: {"tier": "high"}, "foo": 1 }))).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
    assert!(error
        .detail
        .contains(&format!("'{CONTOSO}:tier' expects an integer")));
    // The same undeclared key twice with different values is refused.
    let error = capture(user(json!({"foo": 1, "FOO": 2}))).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
    // Reject mode through normalize_with is normalize.
    let registry = registry();
    let body = user(json!({"foo": 1}));
    assert_eq!(
        normalize_with(
            &registry,
            user_type(&registry),
            &body,
            UndeclaredPolicy::Reject
        )
        .unwrap_err(),
        normalize(&registry, user_type(&registry), &body).unwrap_err()
    );
    let plain = user(json!({ CONTOSO: {"region": "APAC"} }));
    let normalized = normalize_with(
        &registry,
        user_type(&registry),
        &plain,
        UndeclaredPolicy::Reject,
    )
    .unwrap();
    assert_eq!(
        normalized.resource,
        normalize(&registry, user_type(&registry), &plain).unwrap()
    );
    assert!(normalized.unmapped.is_empty());
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn patch_under_capture_sets_and_removes_unmapped_entries() {
    let registry = registry();
    let rt = user_type(&registry);
    let stored = canonical(json!({ CONTOSO: {"region": "APAC"} }));
    let unmapped = object(json!({"legacyId": "L-1", "tags": ["a"], "gone": 1}));
    let run = |operations: Value, policy| {
        apply_patch_with(
            &registry,
            rt,
            &stored,
            &unmapped,
            &patch(operations).operations,
            policy,
        )
    };
    let outcome = run(
        json!([
            {"op": "add", "path": format!("{CONTOSO}:regoin"), "value": "EMEA"},
            {"op": "replace", "path": "LEGACYID", "value": "L-2"},
            {"op": "add", "path": "tags", "value": ["b", "a"]},
            {"op": "remove", "path": "gone"},
            {"op": "replace", "value": {"Cost Center Code": "CC-1", format!("{CONTOSO}:tier"): 2}},
            {"op": "add", "path": CONTOSO, "value": {"site": "Lisbon"}},
            {"op": "replace", "path": "emails", "value": [{"value": "a@x", "kind": "work"}]},
        ]),
        UndeclaredPolicy::Capture,
    )
    .unwrap();
    assert_eq!(
        outcome.resource,
        json!({
            "schemas": [USER_SCHEMA, CONTOSO],
            "userName": "bjensen",
            "emails": [{"value": "a@x"}],
            CONTOSO: {"region": "APAC", "tier": 2},
        })
    );
    assert!(outcome.changed);
    assert!(outcome.unmapped_changed);
    assert_eq!(
        Value::Object(outcome.unmapped),
        json!({
            "legacyId": "L-2",
            "tags": ["a", "b"],
            format!("{CONTOSO}:regoin"): "EMEA",
            "Cost Center Code": "CC-1",
            format!("{CONTOSO}:site"): "Lisbon",
            "emails.kind": ["work"],
        })
    );

    // Clearing an entry with null; nothing declared changes.
    let outcome = run(
        json!([{"op": "replace", "path": "legacyId", "value": null}]),
        UndeclaredPolicy::Capture,
    )
    .unwrap();
    assert!(!outcome.changed);
    assert!(outcome.unmapped_changed);
    assert_eq!(
        Value::Object(outcome.unmapped),
        json!({"tags": ["a"], "gone": 1})
    );

    // Under reject, captured values stay removable, but nothing else.
    let outcome = run(
        json!([{"op": "remove", "path": "LegacyId"}]),
        UndeclaredPolicy::Reject,
    )
    .unwrap();
    assert!(!outcome.changed);
    assert!(outcome.unmapped_changed);
    assert_eq!(
        Value::Object(outcome.unmapped),
        json!({"tags": ["a"], "gone": 1})
    );
    for refused in [
        json!([{"op": "remove", "path": "neverCaptured"}]),
        json!([{"op": "replace", "path": "legacyId", "value": "L-9"}]),
    ] {
        let error = run(refused.clone(), UndeclaredPolicy::Reject).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath), "{refused}");
    }

    // A value filter cannot select inside a captured value.
    let error = run(
        json!([{"op": "remove", "path": "tags[value eq \"a\"]"}]),
        UndeclaredPolicy::Capture,
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
    assert!(error
        .detail
        .contains("'tags' is not declared by any schema"));

    // Declared values are still checked, and a failure changes nothing.
    let error = run(
        json!([
            {"op": "add", "path": "legacyId", "value": "L-3"},
            {"op": "replace", "path": format!("{CONTOSO}:tier"), "value": "high"},
        ]),
        UndeclaredPolicy::Capture,
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));

    // Reject: refused, and the unmapped object comes back as it was.
    let error = run(
        json!([{"op": "add", "path": format!("{CONTOSO}:regoin"), "value": "EMEA"}]),
        UndeclaredPolicy::Reject,
    )
    .unwrap_err();
    assert!(error
        .detail
        .contains(&format!("did you mean '{CONTOSO}:region'?")));
    let outcome = run(
        json!([{"op": "replace", "path": format!("{CONTOSO}:region"), "value": "EMEA"}]),
        UndeclaredPolicy::Reject,
    )
    .unwrap();
    assert_eq!(outcome.unmapped, unmapped);
    assert!(!outcome.unmapped_changed);

    // An undeclared extension URN in `schemas` is accepted in capture mode.
    let outcome = run(
        json!([{"op": "add", "path": "schemas", "value": ["urn:example:other:2.0:User"]}]),
        UndeclaredPolicy::Capture,
    )
    .unwrap();
    assert!(!outcome.changed);
}

// ---- Schema evolution ----

fn contoso() -> Schema {
    parse_schema_definition(&contoso_definition()).unwrap()
}

fn genesys() -> Schema {
    parse_schema_definition(&genesys_definition()).unwrap()
}

#[test]
fn diff_lists_every_change_by_canonical_path() {
    let mut new = contoso();
    new.attributes = vec![
        Attribute {
            multi_valued: true,
            case_exact: true,
            canonical_values: vec!["APAC".into(), "EMEA".into(), "AMER".into()],
            ..Attribute::new("Region", AttributeType::String)
        },
        Attribute {
            canonical_values: vec!["1".into(), "2".into(), "3".into()],
            ..Attribute::new("tier", AttributeType::Decimal)
        },
        Attribute::new("site", AttributeType::String),
    ];
    let changes = diff_schemas(&contoso(), &new);
    assert_eq!(
        changes,
        SchemaChanges {
            added: vec![format!("{CONTOSO}:site")],
            removed: vec![format!("{CONTOSO}:costCenter")],
            type_changes: vec![TypeChange {
                path: format!("{CONTOSO}:tier"),
                old: AttributeType::Integer,
                new: AttributeType::Decimal,
            }],
            multi_valued_changes: vec![MultiValuedChange {
                path: format!("{CONTOSO}:Region"),
                old: false,
                new: true,
            }],
            property_changes: vec![
                PropertyChange {
                    path: format!("{CONTOSO}:Region"),
                    property: "name",
                    old: json!("region"),
                    new: json!("Region"),
                },
                PropertyChange {
                    path: format!("{CONTOSO}:Region"),
                    property: "caseExact",
                    old: json!(false),
                    new: json!(true),
                },
            ],
        }
    );
    assert!(changes.rewrites_values());
    assert!(!changes.is_empty());
    assert!(diff_schemas(&contoso(), &contoso()).is_empty());

    let mut new = genesys();
    new.attributes[0].sub_attributes = vec![
        Attribute {
            required: true,
            ..Attribute::new("Agent_Tier", AttributeType::String)
        },
        Attribute::new("Site_Code", AttributeType::String),
        Attribute {
            multi_valued: true,
            ..Attribute::new("Language_Fluency", AttributeType::String)
        },
    ];
    let changes = diff_schemas(&genesys(), &new);
    assert_eq!(
        changes.removed,
        [format!("{GENESYS}:customFields.BPO_Vendor_ID")]
    );
    assert_eq!(changes.added, [format!("{GENESYS}:customFields.Site_Code")]);
    assert_eq!(
        changes.type_changes,
        [TypeChange {
            path: format!("{GENESYS}:customFields.Agent_Tier"),
            old: AttributeType::Integer,
            new: AttributeType::String,
        }]
    );
    assert_eq!(
        changes.property_changes,
        [PropertyChange {
            path: format!("{GENESYS}:customFields.Agent_Tier"),
            property: "required",
            old: json!(false),
            new: json!(true),
        }]
    );

    // A complex attribute that stops being complex loses its sub-attributes.
    let mut flat = genesys();
    flat.attributes[0] = Attribute::new("customFields", AttributeType::String);
    let changes = diff_schemas(&genesys(), &flat);
    assert_eq!(
        changes.removed,
        [
            format!("{GENESYS}:customFields.BPO_Vendor_ID"),
            format!("{GENESYS}:customFields.Agent_Tier"),
            format!("{GENESYS}:customFields.Language_Fluency"),
        ]
    );
    assert_eq!(changes.type_changes.len(), 1);
}

#[test]
fn value_conversions() {
    let attribute = |kind| Attribute::new("a", kind);
    let multi = |kind| Attribute {
        multi_valued: true,
        ..Attribute::new("a", kind)
    };
    let check = |attribute: &Attribute, value: Value, expected: Result<Value, &str>| {
        let actual = convert_value(attribute, &value);
        match (&actual, &expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{value}"),
            (Err(reason), Err(expected)) => assert_eq!(reason, expected, "{value}"),
            _ => panic!("{value} to {attribute:?}: got {actual:?}, expected {expected:?}"),
        }
    };
    use AttributeType::*;
    check(&attribute(Decimal), json!(2), Ok(json!(2)));
    check(&attribute(Integer), json!(2.0), Ok(json!(2)));
    check(
        &attribute(Integer),
        json!(2.5),
        Err("the number 2.5 does not convert to an integer: it has a fractional part or is too large"),
    );
    check(&attribute(Integer), json!("42"), Ok(json!(42)));
    check(
        &attribute(Integer),
        json!("abc"),
        Err("the string \"abc\" does not convert to an integer"),
    );
    check(&attribute(Decimal), json!("2.75"), Ok(json!(2.75)));
    check(&attribute(String), json!(42), Ok(json!("42")));
    check(&attribute(String), json!(2.5), Ok(json!("2.5")));
    check(&attribute(String), json!(true), Ok(json!("true")));
    check(&attribute(Boolean), json!("TRUE"), Ok(json!(true)));
    check(&attribute(Boolean), json!("False"), Ok(json!(false)));
    check(
        &attribute(Boolean),
        json!("yes"),
        Err("the string \"yes\" does not convert to a boolean (true or false)"),
    );
    check(
        &attribute(DateTime),
        json!("2024-05-01T12:00:00Z"),
        Ok(json!("2024-05-01T12:00:00Z")),
    );
    check(
        &attribute(DateTime),
        json!("01/05/2024"),
        Err("the string \"01/05/2024\" does not convert to an RFC 3339 dateTime such as \"2024-05-01T12:00:00Z\""),
    );
    check(&multi(String), json!("APAC"), Ok(json!(["APAC"])));
    check(&multi(Integer), json!(["1", 1, "2"]), Ok(json!([1, 2])));
    check(&attribute(String), json!(["APAC"]), Ok(json!("APAC")));
    check(
        &attribute(String),
        json!(["APAC", "EMEA"]),
        Err("holds 2 values; the new schema makes it single-valued"),
    );
    let complex = Attribute {
        sub_attributes: vec![
            Attribute::new("code", AttributeType::String),
            Attribute::new("tier", AttributeType::Integer),
        ],
        ..Attribute::new("a", AttributeType::Complex)
    };
    check(
        &complex,
        json!("x"),
        Err("the string \"x\" does not convert to a complex value (an object of sub-attributes)"),
    );
    check(
        &attribute(String),
        json!({"code": "x"}),
        Err("a complex value does not convert to a string"),
    );
    check(
        &complex,
        json!({"TIER": "3", "code": 7}),
        Ok(json!({"code": "7", "tier": 3})),
    );
    check(
        &complex,
        json!({"tier": "x", "other": 1}),
        Err("'a.tier': the string \"x\" does not convert to an integer; 'a.other': not declared by the new schema; remove its values first (with --force, which records them in the audit trail)"),
    );
}

#[test]
fn resources_convert_or_say_what_would_not() {
    let old = contoso();
    let mut new = contoso();
    new.id = CONTOSO.to_lowercase();
    new.attributes = vec![
        Attribute {
            multi_valued: true,
            ..Attribute::new("Region", AttributeType::String)
        },
        Attribute::new("costCenter", AttributeType::String),
        Attribute::new("tier", AttributeType::String),
    ];
    let stored = json!({
        "schemas": [USER_SCHEMA, CONTOSO],
        "id": "u-1",
        "userName": "ana",
        CONTOSO: {"tier": 2, "region": "APAC"},
    });
    assert_eq!(
        convert_resource(&old, &new, &stored).unwrap(),
        json!({
            "schemas": [USER_SCHEMA, CONTOSO.to_lowercase()],
            "id": "u-1",
            "userName": "ana",
            CONTOSO.to_lowercase(): {"Region": ["APAC"], "tier": "2"},
        })
    );
    // Not carrying the extension: unchanged.
    let plain = json!({"schemas": [USER_SCHEMA], "id": "u-2", "userName": "bo"});
    assert_eq!(convert_resource(&old, &new, &plain).unwrap(), plain);

    // Back to integer, with a value that does not convert, an attribute
    // that is gone and one that becomes required.
    let mut strict = contoso();
    strict.attributes = vec![
        Attribute::new("tier", AttributeType::Integer),
        Attribute {
            required: true,
            ..Attribute::new("site", AttributeType::String)
        },
    ];
    let stored = json!({
        "schemas": [USER_SCHEMA, CONTOSO],
        "userName": "ana",
        CONTOSO: {"region": "APAC", "tier": "gold"},
    });
    let failures = convert_resource(&contoso(), &strict, &stored).unwrap_err();
    let summary: Vec<(String, Value)> = failures
        .iter()
        .map(|failure| (failure.path.clone(), failure.value.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (format!("{CONTOSO}:region"), json!("APAC")),
            (format!("{CONTOSO}:tier"), json!("gold")),
            (format!("{CONTOSO}:site"), json!(null)),
        ]
    );
    assert_eq!(
        failures[1].reason,
        "the string \"gold\" does not convert to an integer"
    );
    assert_eq!(
        failures[2].reason,
        "required by the new schema, and this resource has no value"
    );
}

#[test]
fn forced_removal_returns_the_removed_values() {
    let mut resource = json!({
        "schemas": [USER_SCHEMA, CONTOSO, GENESYS],
        "userName": "ana",
        "title": "Agent",
        CONTOSO: {"region": "APAC", "tier": 1},
        GENESYS: {"customFields": {"BPO_Vendor_ID": "V-1"}},
        ACME: {"shifts": [{"value": "early", "start": "2024-05-01T06:00:00Z"}, {"start": "2024-05-02T06:00:00Z"}]},
    });
    let removed = remove_attributes(
        &mut resource,
        &[
            format!("{GENESYS}:customFields.bpo_vendor_id"),
            format!("{CONTOSO}:region"),
            format!("{CONTOSO}:nothing"),
            format!("{ACME}:shifts.start"),
            "urn:example:absent:2.0:User:x".to_owned(),
        ],
    );
    assert_eq!(
        removed,
        [
            RemovedValue {
                path: format!("{GENESYS}:customFields.bpo_vendor_id"),
                value: json!("V-1"),
            },
            RemovedValue {
                path: format!("{CONTOSO}:region"),
                value: json!("APAC"),
            },
            RemovedValue {
                path: format!("{ACME}:shifts.start"),
                value: json!(["2024-05-01T06:00:00Z", "2024-05-02T06:00:00Z"]),
            },
        ]
    );
    assert_eq!(
        resource,
        json!({
            "schemas": [USER_SCHEMA, CONTOSO],
            "userName": "ana",
            "title": "Agent",
            CONTOSO: {"tier": 1},
            ACME: {"shifts": [{"value": "early"}]},
        })
    );
    // A whole extension, for removing a schema.
    let removed = remove_attributes(&mut resource, &[CONTOSO, "title"]);
    assert_eq!(
        removed,
        [
            RemovedValue {
                path: CONTOSO.to_owned(),
                value: json!({"tier": 1}),
            },
            RemovedValue {
                path: "title".to_owned(),
                value: json!("Agent"),
            },
        ]
    );
    assert_eq!(resource["schemas"], json!([USER_SCHEMA]));
}

// ---- Properties ----

/// Valid attribute names (ATTRNAME).
fn name_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_-]{0,15}"
}

fn type_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "string",
        "boolean",
        "decimal",
        "integer",
        "dateTime",
        "reference",
        "binary",
    ])
}

proptest! {
    /// Any valid definition reads back from its own JSON unchanged.
    #[test]
    fn definitions_round_trip(
        attributes in prop::collection::btree_map(
            name_strategy()
                .prop_map(|name| name.to_lowercase())
                .prop_filter("'schemas' is reserved", |name| name != "schemas"),
            (type_strategy(), any::<bool>(), any::<bool>()),
            1..8,
        )
    ) {
        let attributes: Vec<Value> = attributes
            .into_iter()
            .map(|(name, (kind, multi_valued, case_exact))| json!({
                "name": name, "type": kind, "multiValued": multi_valued, "caseExact": case_exact
            }))
            .collect();
        let schema = parse_schema_definition(&json!({"id": CONTOSO, "attributes": attributes})).unwrap();
        let again = parse_schema_definition(&serde_json::to_value(&schema).unwrap()).unwrap();
        prop_assert_eq!(again, schema);
    }

    /// A name holding a character outside ATTRNAME is refused.
    #[test]
    fn invalid_names_are_refused(prefix in name_strategy(), bad in "[ .:$@#/é]") {
        let name = format!("{prefix}{bad}x");
        let definition = json!({"id": CONTOSO, "attributes": [{"name": name}]});
        let error = parse_schema_definition(&definition).unwrap_err();
        prop_assert!(error.detail.starts_with("attributes[0].name: "), "{}", error.detail);
    }

    /// Integers survive a trip through string and back, and stay as they
    /// are as decimals.
    #[test]
    fn integers_convert_through_strings(number in any::<i64>()) {
        let text = convert_value(&Attribute::new("a", AttributeType::String), &json!(number)).unwrap();
        prop_assert_eq!(&text, &json!(number.to_string()));
        let back = convert_value(&Attribute::new("a", AttributeType::Integer), &text).unwrap();
        prop_assert_eq!(back, json!(number));
        let decimal = convert_value(&Attribute::new("a", AttributeType::Decimal), &json!(number)).unwrap();
        prop_assert_eq!(decimal, json!(number));
    }

    /// Nothing a client sends is lost: under capture, every top-level key of
    /// a body lands in the resource or in the unmapped object; under reject
    /// the body is accepted only when every key is declared.
    #[test]
    fn nothing_is_silently_dropped(
        members in prop::collection::btree_map(
            prop::sample::select(vec![
                "displayName", "title", "nickName", "costCenter", "region", "Agent_Tier",
                "extension_abc123_region", "foo", "x-y",
            ]),
            "[a-z]{1,8}",
            0..6,
        ),
        qualified in any::<bool>(),
    ) {
        let registry = registry();
        let rt = user_type(&registry);
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": "u"});
        for (name, value) in &members {
            let key = if qualified { format!("{CONTOSO}:{name}") } else { (*name).to_owned() };
            body[key] = json!(value);
        }
        let captured = normalize_with(&registry, rt, &body, UndeclaredPolicy::Capture).unwrap();
        let declared = |key: &str| {
            if qualified {
                captured.resource[CONTOSO].get(key.rsplit(':').next().unwrap()).is_some()
            } else {
                captured.resource.get(key).is_some()
            }
        };
        let mut all_declared = true;
        for (key, value) in body.as_object().unwrap() {
            if key == "schemas" || key == "userName" {
                continue;
            }
            let kept = declared(key);
            let unmapped = captured.unmapped.get(key);
            prop_assert!(kept != unmapped.is_some(), "{key} kept {kept}, unmapped {unmapped:?}");
            if let Some(unmapped) = unmapped {
                prop_assert_eq!(unmapped, value);
                all_declared = false;
            }
        }
        let rejected = normalize(&registry, rt, &body);
        prop_assert_eq!(rejected.is_ok(), all_declared);
        if let Ok(resource) = rejected {
            prop_assert_eq!(resource, captured.resource);
        }
    }
}

#[test]
fn never_returned_attributes_cannot_be_unique() {
    let schema = |attribute: serde_json::Value| json!({"id": "urn:ietf:params:scim:schemas:extension:uq:2.0:User", "attributes": [attribute]});
    let refused = muster_scim::parse_schema_definition(&schema(
        json!({"name": "hidden", "type": "string", "uniqueness": "server", "returned": "never"}),
    ))
    .unwrap_err();
    assert_eq!(refused.status, 400);
    assert!(
        refused.detail.contains("attributes[0].uniqueness")
            && refused.detail.contains("'hidden' is never returned"),
        "{}",
        refused.detail
    );
    let nested = muster_scim::parse_schema_definition(&schema(json!({
        "name": "secrets", "type": "complex",
        "subAttributes": [{"name": "pin", "type": "string", "uniqueness": "global", "returned": "never"}]
    })))
    .unwrap_err();
    assert!(
        nested.detail.contains("'pin' is never returned"),
        "{}",
        nested.detail
    );
    assert!(muster_scim::parse_schema_definition(&schema(
        json!({"name": "hidden", "type": "string", "returned": "never"}),
    ))
    .is_ok());
}

/// An extension cannot declare a `password`, at any depth and in any case:
/// Muster hashes only the core User's, and would keep an extension's in
/// clear.
#[test]
fn an_extension_cannot_declare_a_password() {
    let urn = "urn:ietf:params:scim:schemas:extension:pwtest:2.0:User";
    for attributes in [
        json!([{"name": "password", "type": "string", "returned": "never",
                "mutability": "writeOnly"}]),
        json!([{"name": "PassWord", "type": "string"}]),
        json!([{"name": "login", "type": "complex",
                "subAttributes": [{"name": "password", "type": "string"}]}]),
    ] {
        let definition = json!({"id": urn, "name": "PwTest", "attributes": attributes});
        let schema = parse_schema_definition(&definition).unwrap();
        let error = refuse_password_attributes(&schema).unwrap_err();
        assert_eq!(error.status, 400, "{error:?}");
        assert!(
            error
                .detail
                .contains("'password' cannot be declared in an extension"),
            "{}",
            error.detail
        );
    }
}
