//! Schema definitions as admins declare them: the RFC 7643 section 7
//! representation (`PUT /admin/v1/schemas/{urn}`, `muster schema apply`)
//! parsed into a [`Schema`], and the consistency rules every schema the
//! registry accepts must follow.
//!
//! Parsing is strict: an unknown member, a misspelt type or a contradiction
//! (`required` with `readOnly`) is `400 invalidValue` whose detail starts with
//! the exact location (`attributes[2].subAttributes[0].type`) and says what
//! was expected. Nothing in a definition is silently ignored, except the
//! `schemas` and `meta` members that `/Schemas` itself adds, so that a schema
//! read back from `/Schemas` can be applied again as it is.
//!
//! Defaults are RFC 7643 section 2.2's: `type` string, `multiValued`,
//! `required` and `caseExact` false, `mutability` readWrite, `returned`
//! default (never for a writeOnly attribute, whose values the RFC forbids
//! returning), `uniqueness` none.
//!
//! `canonicalValues` are kept as text, as `/Schemas` shows them: for an
//! integer, decimal or boolean attribute the JSON numbers or booleans given
//! are stored in their JSON text (`[1, 2]` reads back as `["1", "2"]`), and
//! every value must be a valid value of the attribute's type.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use super::model::{Attribute, AttributeType, Mutability, Returned, Schema, Uniqueness};
use crate::error::ScimError;
use crate::resource::{describe, is_base64, truncate_text};

/// URN of the schema that describes schemas: what `/Schemas` lists in each
/// schema's `schemas` member (RFC 7643 section 7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// URN prefixes reserved by RFC 7643 and RFC 7644: core schemas and API
/// messages cannot be declared by an admin.
const RESERVED_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:api:",
];

/// An example URN for error details.
const EXAMPLE_URN: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

/// The attribute types in the order error details list them.
const TYPES: [(&str, AttributeType); 8] = [
    ("string", AttributeType::String),
    ("boolean", AttributeType::Boolean),
    ("decimal", AttributeType::Decimal),
    ("integer", AttributeType::Integer),
    ("dateTime", AttributeType::DateTime),
    ("reference", AttributeType::Reference),
    ("binary", AttributeType::Binary),
    ("complex", AttributeType::Complex),
];

const MUTABILITIES: [(&str, Mutability); 4] = [
    ("readOnly", Mutability::ReadOnly),
    ("readWrite", Mutability::ReadWrite),
    ("immutable", Mutability::Immutable),
    ("writeOnly", Mutability::WriteOnly),
];

const RETURNED: [(&str, Returned); 4] = [
    ("always", Returned::Always),
    ("never", Returned::Never),
    ("default", Returned::Default),
    ("request", Returned::Request),
];

const UNIQUENESS: [(&str, Uniqueness); 3] = [
    ("none", Uniqueness::None),
    ("server", Uniqueness::Server),
    ("global", Uniqueness::Global),
];

/// The members of a schema definition, in canonical case.
const SCHEMA_MEMBERS: [&str; 6] = ["id", "name", "description", "attributes", "schemas", "meta"];

/// The members of an attribute definition, in canonical case.
const ATTRIBUTE_MEMBERS: [&str; 12] = [
    "name",
    "type",
    "subAttributes",
    "multiValued",
    "description",
    "required",
    "canonicalValues",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "referenceTypes",
];

/// The `meta` members `/Schemas` may return with a schema.
const META_MEMBERS: [&str; 5] = [
    "resourceType",
    "location",
    "created",
    "lastModified",
    "version",
];

/// Parses one schema definition (RFC 7643 section 7) and checks it with the
/// same rules as [`crate::SchemaRegistry::put_extension`].
///
/// Member names are case-insensitive; keyword values (`"dateTime"`,
/// `"readOnly"`) too, and they come out in canonical case. Errors are `400
/// invalidValue` with a detail such as `attributes[2].subAttributes[0].type:
/// expected one of string, boolean, decimal, integer, dateTime, reference,
/// binary, complex; got 'text'`.
pub fn parse_schema_definition(document: &Value) -> Result<Schema, ScimError> {
    parse_at(document, "")
}

/// The URN prefix of Muster's own extensions (contact-center entitlements,
/// the offboarding lock, the lifecycle description), which no admin may declare.
pub const RESERVED_URN_PREFIX: &str = "urn:muster:";

/// Refuses a definition whose URN is in Muster's own namespace
/// ([`RESERVED_URN_PREFIX`], in any case): a schema declared there could
/// shadow a value Muster keeps for itself, such as an offboarding lock.
pub fn refuse_reserved_urn(schema: &Schema) -> Result<(), ScimError> {
    let prefix = RESERVED_URN_PREFIX.len();
    let reserved = schema
        .id
        .get(..prefix)
        .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_URN_PREFIX));
    if reserved {
        return Err(invalid(
            "id",
            format!(
                "'{}' is in the namespace '{RESERVED_URN_PREFIX}', which Muster keeps for its \
                 own extensions; declare custom schemas under your own URN, e.g. \
                 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'",
                schema.id
            ),
        ));
    }
    Ok(())
}

/// Refuses a definition that declares a `password` (in any case, at any
/// depth): Muster stores a password only as the core User `password`,
/// which it hashes, and would keep an extension's in clear. Checked when a
/// schema is declared or changed; a definition stored before this check
/// still loads.
pub fn refuse_password_attributes(schema: &Schema) -> Result<(), ScimError> {
    fn walk(attributes: &[Attribute], at: &str) -> Result<(), ScimError> {
        for (index, attribute) in attributes.iter().enumerate() {
            let here = format!("{at}[{index}]");
            if attribute.name.eq_ignore_ascii_case("password") {
                return Err(invalid(
                    &join(&here, "name"),
                    "'password' cannot be declared in an extension: Muster stores a password \
                     only as the core User 'password', which it hashes, and would keep an \
                     extension's in clear",
                ));
            }
            walk(&attribute.sub_attributes, &join(&here, "subAttributes"))?;
        }
        Ok(())
    }
    walk(&schema.attributes, "attributes")
}

/// Parses what `muster schema apply` reads: one schema definition or a JSON
/// array of them. Locations in errors of an array start with the index
/// (`[1].attributes[0].name`); two definitions of the same URN are refused.
pub fn parse_schema_definitions(document: &Value) -> Result<Vec<Schema>, ScimError> {
    let Value::Array(items) = document else {
        return parse_schema_definition(document).map(|schema| vec![schema]);
    };
    let mut schemas: Vec<Schema> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("[{index}]");
        let schema = parse_at(item, &at)?;
        if let Some(first) = schemas
            .iter()
            .position(|other| other.id.eq_ignore_ascii_case(&schema.id))
        {
            return Err(invalid(
                &join(&at, "id"),
                format!(
                    "schema '{}' is already defined by [{first}]; define each schema once",
                    schema.id
                ),
            ));
        }
        schemas.push(schema);
    }
    Ok(schemas)
}

fn parse_at(document: &Value, at: &str) -> Result<Schema, ScimError> {
    let Value::Object(object) = document else {
        return Err(invalid(
            or_root(at),
            format!(
                "expected a schema object (RFC 7643 section 7) with id, name, description and attributes; got {}",
                describe(document)
            ),
        ));
    };
    let [id, name, description, attributes, schemas, meta] =
        members(object, SCHEMA_MEMBERS, at, "a schema")?;
    let id = match id {
        Some(id) => string(id, &join(at, "id"))?,
        None => {
            return Err(invalid(
                &join(at, "id"),
                format!("required: the schema URN, such as '{EXAMPLE_URN}'"),
            ))
        }
    };
    check_id(&id).map_err(|message| invalid(&join(at, "id"), message))?;
    if let Some(schemas) = schemas {
        check_schemas_member(schemas, &join(at, "schemas"))?;
    }
    if let Some(meta) = meta {
        check_meta(meta, &join(at, "meta"))?;
    }
    let attributes_at = join(at, "attributes");
    let attributes = match attributes {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_attribute(item, &format!("{attributes_at}[{index}]"), 0))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(invalid(
                &attributes_at,
                format!(
                    "expected a list of attribute definitions; got {}",
                    describe(other)
                ),
            ))
        }
        None => {
            return Err(invalid(
                &attributes_at,
                "required: a list of attribute definitions (each with name and type)",
            ))
        }
    };
    let schema = Schema {
        id,
        name: name
            .map(|name| string(name, &join(at, "name")))
            .transpose()?,
        description: description
            .map(|text| string(text, &join(at, "description")))
            .transpose()?,
        attributes,
    };
    check_schema_at(&schema, at)?;
    Ok(schema)
}

/// One attribute definition; `depth` is 1 for a sub-attribute.
fn parse_attribute(value: &Value, at: &str, depth: usize) -> Result<Attribute, ScimError> {
    let Value::Object(object) = value else {
        return Err(invalid(
            at,
            format!(
                "expected an attribute definition object with name and type; got {}",
                describe(value)
            ),
        ));
    };
    let [name, kind, sub_attributes, multi_valued, description, required, canonical_values, case_exact, mutability, returned, uniqueness, reference_types] =
        members(object, ATTRIBUTE_MEMBERS, at, "an attribute")?;
    let name = match name {
        Some(name) => string(name, &join(at, "name"))?,
        None => {
            return Err(invalid(
                &join(at, "name"),
                "required: the attribute name, such as 'region'",
            ))
        }
    };
    let kind = match kind {
        Some(kind) => keyword(kind, &join(at, "type"), &TYPES)?,
        None if sub_attributes.is_some() => {
            return Err(invalid(
                &join(at, "type"),
                "required when subAttributes are given: expected 'complex'",
            ))
        }
        // RFC 7643 section 2.2: "type" defaults to string.
        None => AttributeType::String,
    };
    let mut attribute = Attribute::new(&name, kind);
    if let Some(sub_attributes) = sub_attributes {
        let subs_at = join(at, "subAttributes");
        if depth > 0 {
            return Err(invalid(
                &subs_at,
                "a sub-attribute cannot have sub-attributes of its own (RFC 7643 section 2.3.8)",
            ));
        }
        let Value::Array(items) = sub_attributes else {
            return Err(invalid(
                &subs_at,
                format!(
                    "expected a list of attribute definitions; got {}",
                    describe(sub_attributes)
                ),
            ));
        };
        attribute.sub_attributes = items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_attribute(item, &format!("{subs_at}[{index}]"), depth + 1))
            .collect::<Result<_, _>>()?;
    }
    if let Some(flag) = multi_valued {
        attribute.multi_valued = boolean(flag, &join(at, "multiValued"))?;
    }
    if let Some(text) = description {
        attribute.description = Some(string(text, &join(at, "description"))?);
    }
    if let Some(flag) = required {
        attribute.required = boolean(flag, &join(at, "required"))?;
    }
    if let Some(values) = canonical_values {
        attribute.canonical_values = canonical_texts(values, kind, &join(at, "canonicalValues"))?;
    }
    if let Some(flag) = case_exact {
        attribute.case_exact = boolean(flag, &join(at, "caseExact"))?;
    }
    if let Some(value) = mutability {
        attribute.mutability = keyword(value, &join(at, "mutability"), &MUTABILITIES)?;
    }
    attribute.returned = match returned {
        Some(value) => keyword(value, &join(at, "returned"), &RETURNED)?,
        None if attribute.mutability == Mutability::WriteOnly => Returned::Never,
        None => Returned::Default,
    };
    if let Some(value) = uniqueness {
        attribute.uniqueness = keyword(value, &join(at, "uniqueness"), &UNIQUENESS)?;
    }
    if let Some(values) = reference_types {
        let types_at = join(at, "referenceTypes");
        let Value::Array(items) = values else {
            return Err(invalid(
                &types_at,
                format!(
                    "expected a list of resource type names such as [\"User\", \"external\"]; got {}",
                    describe(values)
                ),
            ));
        };
        attribute.reference_types = items
            .iter()
            .enumerate()
            .map(|(index, item)| string(item, &format!("{types_at}[{index}]")))
            .collect::<Result<_, _>>()?;
    }
    Ok(attribute)
}

/// The `canonicalValues` of an attribute as text. Values are JSON strings;
/// an integer, decimal or boolean attribute also takes JSON numbers or
/// booleans. Whether each text is a valid value is checked with the schema.
fn canonical_texts(
    values: &Value,
    kind: AttributeType,
    at: &str,
) -> Result<Vec<String>, ScimError> {
    let Value::Array(items) = values else {
        return Err(invalid(
            at,
            format!(
                "expected a list of suggested values such as [\"work\", \"home\"]; got {}",
                describe(values)
            ),
        ));
    };
    let mut texts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let text = match (kind, item) {
            (_, Value::String(text)) => text.clone(),
            (AttributeType::Integer | AttributeType::Decimal, Value::Number(number)) => {
                number.to_string()
            }
            (AttributeType::Boolean, Value::Bool(flag)) => flag.to_string(),
            (_, other) => {
                return Err(invalid(
                    &format!("{at}[{index}]"),
                    format!(
                        "expected {} (the attribute's type is {}); got {}",
                        value_expectation(kind),
                        kind.as_str(),
                        describe(other)
                    ),
                ))
            }
        };
        texts.push(text);
    }
    Ok(texts)
}

/// `schemas` is ignored only when it is what `/Schemas` returns.
fn check_schemas_member(value: &Value, at: &str) -> Result<(), ScimError> {
    let is_schema_schema = |item: &Value| {
        item.as_str()
            .is_some_and(|urn| urn.eq_ignore_ascii_case(SCHEMA_SCHEMA))
    };
    let valid = match value {
        Value::Array(items) => items.len() == 1 && items.iter().all(is_schema_schema),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(invalid(
            at,
            format!(
                "expected [\"{SCHEMA_SCHEMA}\"] (as /Schemas returns it) or nothing; got {}",
                shown(value)
            ),
        ))
    }
}

/// `meta` is ignored only when it is what `/Schemas` returns.
fn check_meta(value: &Value, at: &str) -> Result<(), ScimError> {
    let Value::Object(object) = value else {
        return Err(invalid(
            at,
            format!(
                "expected the object /Schemas returns ({{\"resourceType\": \"Schema\", \"location\": ...}}) or nothing; got {}",
                describe(value)
            ),
        ));
    };
    let found = members(object, META_MEMBERS, at, "a schema's meta")?;
    for (name, member) in META_MEMBERS.iter().zip(found) {
        let Some(member) = member else {
            continue;
        };
        let member_at = join(at, name);
        let text = string(member, &member_at)?;
        if *name == "resourceType" && !text.eq_ignore_ascii_case("Schema") {
            return Err(invalid(
                &member_at,
                format!("expected 'Schema'; got {}", shown(member)),
            ));
        }
    }
    Ok(())
}

/// Checks a schema's own consistency, with error locations relative to the
/// schema definition (`attributes[1].subAttributes[0].name`).
///
/// The id must be a URN usable in attribute paths and not reserved; names
/// must be valid and unique (case-insensitively) at each level; only
/// complex attributes have sub-attributes, and sub-attributes are not
/// complex (RFC 7643 section 2.3.8); `referenceTypes` only on references;
/// `canonicalValues` valid for the type; `required` never with `readOnly`;
/// writeOnly values never returned.
pub(crate) fn check_schema(schema: &Schema) -> Result<(), ScimError> {
    check_schema_at(schema, "")
}

fn check_schema_at(schema: &Schema, at: &str) -> Result<(), ScimError> {
    check_id(&schema.id).map_err(|message| invalid(&join(at, "id"), message))?;
    check_attributes(&schema.attributes, &join(at, "attributes"), 0)
}

/// Why `id` cannot name a declared schema, if it cannot.
fn check_id(id: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "expected a URN such as '{EXAMPLE_URN}'; got {}",
            shown(&Value::String(id.to_owned()))
        )
    };
    let has_prefix = |prefix: &str| {
        id.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    if !has_prefix("urn:") {
        return Err(expected());
    }
    let mut parts = id.split(':').skip(1);
    let namespace = parts.next().unwrap_or_default();
    let specific = parts.next().unwrap_or_default();
    let namespace_valid = !namespace.is_empty()
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !namespace_valid || specific.is_empty() {
        return Err(expected());
    }
    if let Some(bad) = id.chars().find(|c| !is_urn_char(*c)) {
        let what = if bad.is_whitespace() {
            "whitespace".to_owned()
        } else {
            format!("'{bad}'")
        };
        return Err(format!("{}: a schema URN may not hold {what}", expected()));
    }
    let last = id.rsplit(':').next().unwrap_or_default();
    if !is_attribute_name(last) || last == "$ref" {
        return Err(format!(
            "the URN must end in a name such as ':User' (a letter, then letters, digits, '-' or '_') so that it can stand as an attribute path prefix; '{id}' ends in '{}'",
            truncate_text(last)
        ));
    }
    for (builtin, name) in [(USER_SCHEMA, "User"), (GROUP_SCHEMA, "Group")] {
        if id.eq_ignore_ascii_case(builtin) {
            return Err(format!(
                "'{builtin}' is the built-in core {name} schema and cannot be redefined; declare custom attributes in an extension schema such as '{EXAMPLE_URN}'"
            ));
        }
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|prefix| has_prefix(prefix)) {
        return Err(format!(
            "URNs starting with '{prefix}' are reserved by RFC 7643 and RFC 7644; declare custom attributes in an extension schema such as '{EXAMPLE_URN}'"
        ));
    }
    Ok(())
}

/// Characters a declared schema URN may hold: those of RFC 8141 that no
/// Muster syntax gives a meaning (filters split on whitespace, parentheses,
/// brackets and quotes; `attributes=` on commas).
fn is_urn_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._:~+=@!$&'*;%/".contains(c)
}

/// Whether `name` is an attribute name: RFC 7643's ATTRNAME (`ALPHA
/// *(nameChar)`, nameChar = `-` / `_` / DIGIT / ALPHA), or `$ref`, the one
/// exception the RFC itself uses. `BPO_Vendor_ID` and Entra ID's
/// `extension_abc123_region` are names.
pub(crate) fn is_attribute_name(name: &str) -> bool {
    if name == "$ref" {
        return true;
    }
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_attributes(
    attributes: &[Attribute],
    list_at: &str,
    depth: usize,
) -> Result<(), ScimError> {
    for (index, attribute) in attributes.iter().enumerate() {
        let at = format!("{list_at}[{index}]");
        check_name(attribute, &at, depth)?;
        if let Some(first) = attributes
            .iter()
            .take(index)
            .position(|other| other.name.eq_ignore_ascii_case(&attribute.name))
        {
            return Err(invalid(
                &join(&at, "name"),
                format!(
                    "'{}' is already declared by {list_at}[{first}] (attribute names are case-insensitive)",
                    attribute.name
                ),
            ));
        }
        let kind = attribute.kind.as_str();
        match (attribute.is_complex(), attribute.sub_attributes.is_empty()) {
            (true, _) if depth > 0 => {
                return Err(invalid(
                    &join(&at, "type"),
                    "a sub-attribute cannot be complex (RFC 7643 section 2.3.8)",
                ))
            }
            (true, true) => {
                return Err(invalid(
                    &join(&at, "subAttributes"),
                    format!(
                        "complex attribute '{}' needs at least one sub-attribute",
                        attribute.name
                    ),
                ))
            }
            (false, false) => {
                return Err(invalid(
                    &join(&at, "subAttributes"),
                    format!(
                        "only complex attributes have sub-attributes; '{}' is of type {kind}",
                        attribute.name
                    ),
                ))
            }
            (true, false) | (false, true) => {}
        }
        if !attribute.reference_types.is_empty() && attribute.kind != AttributeType::Reference {
            return Err(invalid(
                &join(&at, "referenceTypes"),
                format!(
                    "only reference attributes have referenceTypes; '{}' is of type {kind}",
                    attribute.name
                ),
            ));
        }
        for (position, reference_type) in attribute.reference_types.iter().enumerate() {
            if reference_type.is_empty() || reference_type.contains(char::is_whitespace) {
                return Err(invalid(
                    &format!("{at}.referenceTypes[{position}]"),
                    format!(
                        "expected a resource type name such as 'User', 'Group', 'external' or 'uri'; got {}",
                        shown(&Value::String(reference_type.clone()))
                    ),
                ));
            }
        }
        check_canonical_values(attribute, &at)?;
        if attribute.required && attribute.mutability == Mutability::ReadOnly {
            return Err(invalid(
                &at,
                format!(
                    "'{}' cannot be both required and readOnly: clients cannot set a readOnly attribute",
                    attribute.name
                ),
            ));
        }
        if attribute.mutability == Mutability::WriteOnly && attribute.returned != Returned::Never {
            return Err(invalid(
                &join(&at, "returned"),
                format!(
                    "a writeOnly attribute is never returned (RFC 7643 section 7): expected 'never' or nothing; got '{}'",
                    returned_name(attribute.returned)
                ),
            ));
        }
        if attribute.returned == Returned::Never && attribute.uniqueness != Uniqueness::None {
            return Err(invalid(
                &join(&at, "uniqueness"),
                format!(
                    "'{}' is never returned, so its values are kept out of the lookup index that uniqueness is checked against: expected uniqueness 'none'",
                    attribute.name
                ),
            ));
        }
        check_attributes(
            &attribute.sub_attributes,
            &join(&at, "subAttributes"),
            depth + 1,
        )?;
    }
    Ok(())
}

fn check_name(attribute: &Attribute, at: &str, depth: usize) -> Result<(), ScimError> {
    let name = attribute.name.as_str();
    let at = join(at, "name");
    if !is_attribute_name(name) {
        let cleaned: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let hint = if is_attribute_name(&cleaned) {
            format!(" (try '{cleaned}')")
        } else {
            String::new()
        };
        return Err(invalid(
            &at,
            format!(
                "expected a name that starts with a letter and holds only letters, digits, '-' and '_'; got {}{hint}",
                shown(&Value::String(name.to_owned()))
            ),
        ));
    }
    if depth == 0 && name.eq_ignore_ascii_case("schemas") {
        return Err(invalid(
            &at,
            "'schemas' is reserved: it lists a resource's schema URNs",
        ));
    }
    Ok(())
}

fn check_canonical_values(attribute: &Attribute, at: &str) -> Result<(), ScimError> {
    if attribute.canonical_values.is_empty() {
        return Ok(());
    }
    if attribute.is_complex() {
        return Err(invalid(
            &join(at, "canonicalValues"),
            format!(
                "a complex attribute has no values of its own; give canonicalValues to the sub-attributes of '{}'",
                attribute.name
            ),
        ));
    }
    for (index, text) in attribute.canonical_values.iter().enumerate() {
        if !is_valid_text(attribute.kind, text) {
            return Err(invalid(
                &format!("{at}.canonicalValues[{index}]"),
                format!(
                    "expected {} (the attribute's type is {}); got {}",
                    value_expectation(attribute.kind),
                    attribute.kind.as_str(),
                    shown(&Value::String(text.clone()))
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `text` is a value of a non-complex type, written as text.
fn is_valid_text(kind: AttributeType, text: &str) -> bool {
    match kind {
        AttributeType::String | AttributeType::Reference => true,
        AttributeType::Boolean => text == "true" || text == "false",
        AttributeType::Integer => text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(),
        AttributeType::Decimal => text.parse::<f64>().is_ok_and(f64::is_finite),
        AttributeType::DateTime => OffsetDateTime::parse(text, &Rfc3339).is_ok(),
        AttributeType::Binary => is_base64(text),
        AttributeType::Complex => false,
    }
}

/// What one value of a type looks like, for error details.
pub(crate) fn value_expectation(kind: AttributeType) -> &'static str {
    match kind {
        AttributeType::String => "a string",
        AttributeType::Boolean => "a boolean (true or false)",
        AttributeType::Decimal => "a number",
        AttributeType::Integer => "an integer",
        AttributeType::DateTime => "an RFC 3339 dateTime such as \"2024-05-01T12:00:00Z\"",
        AttributeType::Binary => "a base64-encoded string",
        AttributeType::Reference => "a reference (URI string)",
        AttributeType::Complex => "an object of sub-attributes",
    }
}

fn returned_name(returned: Returned) -> &'static str {
    RETURNED
        .iter()
        .find(|(_, value)| *value == returned)
        .map_or("default", |(name, _)| name)
}

/// Looks the known members up in `object`, case-insensitively, in the order
/// of `known`; refuses unknown members (with a "did you mean") and members
/// given twice.
fn members<'v, const N: usize>(
    object: &'v Map<String, Value>,
    known: [&str; N],
    at: &str,
    what: &str,
) -> Result<[Option<&'v Value>; N], ScimError> {
    let mut found: [Option<&'v Value>; N] = [None; N];
    for (key, value) in object {
        let Some(index) = known.iter().position(|name| name.eq_ignore_ascii_case(key)) else {
            let suggestion = known
                .iter()
                .map(|name| {
                    let score = strsim::normalized_damerau_levenshtein(
                        &key.to_ascii_lowercase(),
                        &name.to_ascii_lowercase(),
                    );
                    (score, name)
                })
                .filter(|(score, _)| *score >= 0.6)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, name)| format!(" (did you mean '{name}'?)"))
                .unwrap_or_default();
            return Err(invalid(
                &join(at, &truncate_text(key)),
                format!(
                    "unknown member{suggestion}; {what} holds {}",
                    known.join(", ")
                ),
            ));
        };
        match found.get_mut(index) {
            Some(slot @ None) => *slot = Some(value),
            Some(Some(_)) | None => {
                return Err(invalid(
                    &join(at, &truncate_text(key)),
                    "given twice (member names are case-insensitive)",
                ))
            }
        }
    }
    Ok(found)
}

fn string(value: &Value, at: &str) -> Result<String, ScimError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        other => Err(invalid(
            at,
            format!("expected a string; got {}", describe(other)),
        )),
    }
}

fn boolean(value: &Value, at: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        other => Err(invalid(
            at,
            format!("expected true or false; got {}", shown(other)),
        )),
    }
}

/// A keyword value, case-insensitively, from `choices`.
fn keyword<T: Copy>(value: &Value, at: &str, choices: &[(&str, T)]) -> Result<T, ScimError> {
    value
        .as_str()
        .and_then(|text| {
            choices
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text))
        })
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            invalid(
                at,
                format!("expected one of {}; got {}", names.join(", "), shown(value)),
            )
        })
}

/// A value as an error detail quotes it: strings in single quotes
/// (`'text'`), anything else described (`the number 5`).
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{}'", truncate_text(text)),
        other => describe(other),
    }
}

/// `parent.member`, or `member` at the root.
fn join(parent: &str, member: &str) -> String {
    if parent.is_empty() {
        member.to_owned()
    } else {
        format!("{parent}.{member}")
    }
}

fn or_root(at: &str) -> &str {
    if at.is_empty() {
        "schema"
    } else {
        at
    }
}

/// `400 invalidValue` with the detail `location: message`.
fn invalid(at: &str, message: impl std::fmt::Display) -> ScimError {
    ScimError::invalid_value(format!("{at}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muster_urns_are_reserved() {
        let declare = |urn: &str| {
            parse_schema_definition(&serde_json::json!({
                "id": urn,
                "attributes": [{"name": "locked", "type": "boolean"}],
            }))
            .and_then(|schema| refuse_reserved_urn(&schema))
        };
        for urn in [
            "urn:muster:params:scim:schemas:extension:lock:2.0:User",
            "URN:MUSTER:params:scim:schemas:extension:contactcenter:2.0:User",
        ] {
            let error = declare(urn).expect_err(urn);
            assert!(error.detail.contains("urn:muster:"), "{}", error.detail);
        }
        assert!(declare("urn:ietf:params:scim:schemas:extension:contoso:2.0:User").is_ok());
    }

    #[test]
    fn attribute_names() {
        for name in [
            "region",
            "BPO_Vendor_ID",
            "extension_abc123_region",
            "cost-center",
            "$ref",
            "a",
        ] {
            assert!(is_attribute_name(name), "{name}");
        }
        for name in [
            "",
            "1tier",
            "_x",
            "-x",
            "Cost Center",
            "a.b",
            "a:b",
            "ré",
            "$x",
            "x$",
        ] {
            assert!(!is_attribute_name(name), "{name}");
        }
    }

    #[test]
    fn urns() {
        for id in [
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:User",
            "URN:x:y",
            "urn:example:scim:schemas:extension:audit:1.0:User",
            "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User",
        ] {
            assert_eq!(check_id(id), Ok(()), "{id}");
        }
        for id in [
            "contoso",
            "urn:",
            "urn:x",
            "urn::y",
            "urn:x:",
            "urn:x:y z",
            "urn:x:a,b",
            "urn:x:2.0",
            "urn:x:User[1]",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Schema",
            "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            " urn:x:y",
        ] {
            assert!(check_id(id).is_err(), "{id}");
        }
    }
}
