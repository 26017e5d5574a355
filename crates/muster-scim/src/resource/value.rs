//! What one attribute's JSON value becomes in canonical form.
//!
//! Shared by resource validation ([`super::normalize`]) and PATCH
//! ([`crate::patch::apply_patch`]) so that a POST body and a PATCH value are
//! accepted and refused by the same code.

use std::cell::RefCell;
use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::undeclared::Unmapped;
use crate::error::{ScimError, ScimType};
use crate::path::{AttrPath, MAX_PATH_LENGTH};
use crate::schema::{Attribute, AttributeType, Mutability, ResourceType, SchemaRegistry};

/// Standard base64 that accepts input with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest piece of client text quoted back in an error detail.
const QUOTE_LIMIT: usize = 120;

/// How to declare an attribute, appended to the detail of an unknown one.
const HOW_TO_DECLARE: &str =
    "declare it in an extension schema (PUT /admin/v1/schemas/{urn} or 'muster schema apply')";

/// Whether a value means "absent": `null`, `""`, `[]` or `{}`.
///
/// Canonical resources never hold such values; on input they clear the
/// attribute (RFC 7643 section 2.5, and what Entra ID sends to clear).
pub fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(object) => object.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Where an attribute sits, for error details: `[urn:]attribute[.sub]` with
/// canonical names, formatted only when an error is actually reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Where<'a> {
    /// The extension URN, for extension attributes.
    pub urn: Option<&'a str>,
    /// The top-level attribute name.
    pub attribute: &'a str,
    /// The sub-attribute name.
    pub sub: Option<&'a str>,
}

impl<'a> Where<'a> {
    /// The same place, one level down.
    pub fn sub(self, sub: &'a str) -> Where<'a> {
        Where {
            sub: Some(sub),
            ..self
        }
    }
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(self.attribute)?;
        if let Some(sub) = self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// How values are checked: against which registry and resource type, what
/// happens to readOnly values, and how an unknown name is reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'r> {
    /// The registry names are resolved against (for "did you mean").
    pub registry: &'r SchemaRegistry,
    /// The resource type the value belongs to.
    pub resource_type: &'r ResourceType,
    /// `false` for client input: readOnly values are ignored (RFC 7644
    /// section 3.3). `true` for a stored resource, where the server set them.
    pub keep_read_only: bool,
    /// The `scimType` of an unknown attribute: `invalidSyntax` in a resource
    /// body, `invalidPath` in a PATCH operation.
    pub unknown: ScimType,
    /// Where undeclared attributes are captured; `None` refuses them
    /// ([`super::UndeclaredPolicy`]).
    pub undeclared: Option<&'r RefCell<Unmapped>>,
}

impl<'r> Rules<'r> {
    /// Whether a value of this attribute is dropped rather than checked.
    pub fn ignores(&self, attribute: &Attribute) -> bool {
        attribute.mutability == Mutability::ReadOnly && !self.keep_read_only
    }

    /// The error for a name no schema declares, with a "did you mean" and
    /// how to declare it.
    pub fn unknown_attribute(&self, path: &str) -> ScimError {
        let path = truncate(path);
        let mut detail = self
            .registry
            .unknown_attribute(self.resource_type, path.as_ref());
        if detail.ends_with('?') {
            detail.push_str(" Otherwise ");
        } else {
            detail.push_str("; ");
        }
        detail.push_str(HOW_TO_DECLARE);
        ScimError::bad_request(self.unknown, detail)
    }

    /// Whether undeclared attributes are captured rather than refused.
    pub fn captures(&self) -> bool {
        self.undeclared.is_some()
    }

    /// A value at a path no schema declares: refused with
    /// [`Rules::unknown_attribute`], or captured in the unmapped object
    /// (`element`: one element of a multi-valued attribute's values).
    ///
    /// Only a key [`is_capturable_key`] accepts is captured; any other key
    /// (`"password "`, a key holding a tab or NUL, a 60 KB key) is `400
    /// invalidPath` naming it, escaped and truncated, in either mode.
    pub fn undeclared(&self, path: &str, value: &Value, element: bool) -> Result<(), ScimError> {
        match self.undeclared {
            None => Err(self.unknown_attribute(path)),
            Some(_) if !is_capturable_key(path) => Err(not_a_path(path)),
            Some(_) if holds_password(path, value) => Err(ScimError::invalid_value(format!(
                "'{}' holds a 'password' no schema declares: Muster never captures one, as it \
                 would be kept in clear; send it as the core User 'password' (which Muster \
                 hashes) or leave it out",
                truncate(path)
            ))),
            Some(unmapped) => unmapped
                .try_borrow_mut()
                .map_err(|_| ScimError::status(500, "the unmapped attributes are in use"))?
                .put(path, value, element),
        }
    }

    /// Removes a captured undeclared path (PATCH `remove`), or refuses it.
    pub fn forget(&self, path: &str) -> Result<(), ScimError> {
        match self.undeclared {
            None => Err(self.unknown_attribute(path)),
            Some(unmapped) => {
                unmapped
                    .try_borrow_mut()
                    .map_err(|_| ScimError::status(500, "the unmapped attributes are in use"))?
                    .remove(path);
                Ok(())
            }
        }
    }

    /// The canonical value of an attribute (single- or multi-valued), or
    /// `None` when the value means absent.
    pub fn value(
        &self,
        attribute: &Attribute,
        at: Where<'_>,
        value: &Value,
    ) -> Result<Option<Value>, ScimError> {
        if is_absent(value) {
            return Ok(None);
        }
        if attribute.mutability == Mutability::ReadOnly && self.keep_read_only {
            // Set by the server: kept as it is.
            return Ok(Some(value.clone()));
        }
        if !attribute.multi_valued {
            if let Value::Array(_) = value {
                return Err(expected(at, &expectation(attribute), value));
            }
            return self.single(attribute, at, value);
        }
        let items = match value {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut elements: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            if let Value::Array(_) = item {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{at}' expects a list of {}, got a list holding an array",
                    plural_expectation(attribute)
                )));
            }
            if let Some(element) = self.single(attribute, at, item)? {
                elements.push(element);
            }
        }
        dedup(&mut elements);
        if elements.is_empty() {
            return Ok(None);
        }
        check_count(at, elements.len())?;
        check_primary(attribute, at, &elements)?;
        Ok(Some(Value::Array(elements)))
    }

    /// The canonical value of one element (or of a single-valued attribute).
    pub fn single(
        &self,
        attribute: &Attribute,
        at: Where<'_>,
        value: &Value,
    ) -> Result<Option<Value>, ScimError> {
        if is_absent(value) {
            return Ok(None);
        }
        if !attribute.is_complex() {
            return primitive(attribute, at, value).map(Some);
        }
        match value {
            Value::Object(object) => self.complex(attribute, at, object),
            Value::Array(_) => Err(expected(at, "an object of sub-attributes", value)),
            primitive_value => match attribute.sub_attribute("value") {
                // A primitive stands for `{"value": x}`: Entra ID sends the
                // enterprise `manager` as a plain id string.
                Some(value_sub) => {
                    let canonical = primitive(value_sub, at.sub(&value_sub.name), primitive_value)?;
                    let mut object = Map::new();
                    object.insert(value_sub.name.clone(), canonical);
                    Ok(Some(Value::Object(object)))
                }
                None => Err(expected(at, "an object of sub-attributes", value)),
            },
        }
    }

    /// The canonical value of a complex attribute given as an object:
    /// sub-attributes in declared order, absent ones left out.
    fn complex(
        &self,
        attribute: &Attribute,
        at: Where<'_>,
        object: &Map<String, Value>,
    ) -> Result<Option<Value>, ScimError> {
        let mut slots: Vec<Option<Value>> = vec![None; attribute.sub_attributes.len()];
        for (key, raw) in object {
            let Some((sub, slot)) = attribute
                .sub_attributes
                .iter()
                .zip(slots.iter_mut())
                .find(|(sub, _)| sub.name.eq_ignore_ascii_case(key))
            else {
                self.undeclared(&format!("{at}.{key}"), raw, attribute.multi_valued)?;
                continue;
            };
            if self.ignores(sub) {
                continue;
            }
            let sub_at = at.sub(&sub.name);
            let canonical = self.value(sub, sub_at, raw)?;
            if slot.is_some() && canonical.is_some() && *slot != canonical {
                return Err(given_twice(sub_at));
            }
            if canonical.is_some() {
                *slot = canonical;
            }
        }
        let mut canonical = Map::new();
        for (sub, slot) in attribute.sub_attributes.iter().zip(slots) {
            if let Some(value) = slot {
                canonical.insert(sub.name.clone(), value);
            }
        }
        Ok((!canonical.is_empty()).then_some(Value::Object(canonical)))
    }
}

/// Whether an undeclared key may be captured: an attribute path
/// (`AttrPath::parse`: names of letters, digits, `-` and `_`, an optional
/// URN and sub-attribute, at most [`MAX_PATH_LENGTH`] bytes), where words
/// of a name may also be separated by single spaces (`Cost Center Code`,
/// as some IdPs name custom attributes). No leading, trailing or repeated
/// space, no other whitespace or control character, nothing longer.
pub(crate) fn is_capturable_key(key: &str) -> bool {
    if !key.contains(' ') {
        return AttrPath::parse(key).is_ok();
    }
    key.split(' ').all(|word| !word.is_empty()) && AttrPath::parse(&key.replace(' ', "_")).is_ok()
}

/// Whether an undeclared value is, or holds at any depth, a `password`
/// (any case): such a value is never captured.
fn holds_password(path: &str, value: &Value) -> bool {
    fn is_password(name: &str) -> bool {
        name.rsplit(['.', ':'])
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case("password"))
    }
    fn within(value: &Value) -> bool {
        match value {
            Value::Object(fields) => fields
                .iter()
                .any(|(key, value)| is_password(key) || within(value)),
            Value::Array(items) => items.iter().any(within),
            _ => false,
        }
    }
    is_password(path) || within(value)
}

/// The error for an undeclared key that is not an attribute path: named
/// escaped (control characters and quotes visible) and truncated.
fn not_a_path(key: &str) -> ScimError {
    let shown = truncate(key);
    let length = if key.len() > MAX_PATH_LENGTH {
        format!(
            " ({} bytes; a path is at most {MAX_PATH_LENGTH})",
            key.len()
        )
    } else {
        String::new()
    };
    ScimError::invalid_path(format!(
        "key {shown:?}{length} is not an attribute path, so it is neither a declared attribute nor captured as an undeclared one; a name starts with a letter and holds only letters, digits, '-' and '_' (optionally 'urn:...:' before it and '.sub' after it)"
    ))
}

/// The canonical value of a non-complex attribute.
///
/// Booleans also accept the strings `"True"`/`"False"` in any case (Entra
/// ID's legacy mode) and become JSON booleans.
pub(crate) fn primitive(
    attribute: &Attribute,
    at: Where<'_>,
    value: &Value,
) -> Result<Value, ScimError> {
    let accepted = match (attribute.kind, value) {
        (AttributeType::String | AttributeType::Reference, Value::String(_)) => true,
        (AttributeType::Boolean, Value::Bool(_)) => true,
        (AttributeType::Boolean, Value::String(text)) => {
            if text.eq_ignore_ascii_case("true") {
                return Ok(Value::Bool(true));
            }
            if text.eq_ignore_ascii_case("false") {
                return Ok(Value::Bool(false));
            }
            false
        }
        (AttributeType::Integer, Value::Number(number)) => number.is_i64() || number.is_u64(),
        (AttributeType::Decimal, Value::Number(_)) => true,
        (AttributeType::DateTime, Value::String(text)) => {
            OffsetDateTime::parse(text, &Rfc3339).is_ok()
        }
        (AttributeType::Binary, Value::String(text)) => is_base64(text),
        (
            AttributeType::String
            | AttributeType::Reference
            | AttributeType::Boolean
            | AttributeType::Integer
            | AttributeType::Decimal
            | AttributeType::DateTime
            | AttributeType::Binary
            | AttributeType::Complex,
            _,
        ) => false,
    };
    if accepted {
        Ok(value.clone())
    } else {
        Err(expected(at, &expectation(attribute), value))
    }
}

/// Whether `text` is base64 as binary values are accepted: padding
/// optional, whitespace (line breaks) ignored.
pub(crate) fn is_base64(text: &str) -> bool {
    let compact: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    BASE64.decode(compact).is_ok()
}

/// What a value of the attribute must look like, for error details.
fn expectation(attribute: &Attribute) -> String {
    let single = match attribute.kind {
        AttributeType::String => "a string",
        AttributeType::Boolean => "a boolean",
        AttributeType::Decimal => "a number",
        AttributeType::Integer => "an integer",
        AttributeType::DateTime => "an RFC 3339 dateTime string such as \"2024-05-01T12:00:00Z\"",
        AttributeType::Binary => "a base64-encoded string",
        AttributeType::Reference => "a reference (URI string)",
        AttributeType::Complex => "an object of sub-attributes",
    };
    if attribute.multi_valued {
        format!("{single} or a list of {}", plural_expectation(attribute))
    } else {
        single.to_owned()
    }
}

fn plural_expectation(attribute: &Attribute) -> &'static str {
    match attribute.kind {
        AttributeType::String => "strings",
        AttributeType::Boolean => "booleans",
        AttributeType::Decimal => "numbers",
        AttributeType::Integer => "integers",
        AttributeType::DateTime => "dateTime strings",
        AttributeType::Binary => "base64 strings",
        AttributeType::Reference => "references",
        AttributeType::Complex => "objects",
    }
}

/// `attribute 'active' expects a boolean, got the string "yes"`.
fn expected(at: Where<'_>, expectation: &str, got: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "attribute '{at}' expects {expectation}, got {}",
        describe(got)
    ))
}

fn given_twice(at: Where<'_>) -> ScimError {
    ScimError::invalid_syntax(format!(
        "attribute '{at}' is given more than once with different values (names are case-insensitive)"
    ))
}

/// A short description of a JSON value: `the string "yes"`, `an array`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => {
            let quoted = serde_json::to_string(truncate(text).as_ref())
                .unwrap_or_else(|_| String::from("\"?\""));
            format!("the string {quoted}")
        }
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Client text cut to [`QUOTE_LIMIT`] characters for quoting in a detail.
pub(crate) fn truncate(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}...", text.get(..cut).unwrap_or(""))),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Refuses more than [`super::MAX_VALUES`] values in one multi-valued
/// attribute (`count`, duplicates removed) with `400 invalidValue`. A
/// group's core `members` are exempt: they are kept as rows, not in the
/// resource JSON, and never grow it.
pub(crate) fn check_count(at: Where<'_>, count: usize) -> Result<(), ScimError> {
    let membership = at.urn.is_none() && at.sub.is_none() && at.attribute == "members";
    if count <= super::MAX_VALUES || membership {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "attribute '{at}' holds at most {} values; this request would give it {count}",
        super::MAX_VALUES
    )))
}

/// Removes exact duplicate elements, keeping the first of each.
pub(crate) fn dedup(elements: &mut Vec<Value>) {
    if elements.len() < 2 {
        return;
    }
    if elements.len() <= 32 {
        let mut index = 1;
        while index < elements.len() {
            let (before, rest) = elements.split_at(index);
            if rest.first().is_some_and(|element| before.contains(element)) {
                elements.remove(index);
            } else {
                index += 1;
            }
        }
    } else {
        // Large lists (a group's members): compare by serialised form.
        let mut seen = std::collections::HashSet::with_capacity(elements.len());
        elements.retain(|element| seen.insert(element.to_string()));
    }
}

/// The canonical name of the boolean `primary` sub-attribute, if declared.
pub(crate) fn primary_name(attribute: &Attribute) -> Option<&str> {
    attribute
        .sub_attribute("primary")
        .filter(|sub| sub.kind == AttributeType::Boolean && !sub.multi_valued)
        .map(|sub| sub.name.as_str())
}

/// Whether an element carries `"primary": true`.
pub(crate) fn is_primary(element: &Value, primary: &str) -> bool {
    element.get(primary) == Some(&Value::Bool(true))
}

/// At most one element of a multi-valued attribute may be primary
/// (RFC 7643 section 2.4).
pub(crate) fn check_primary(
    attribute: &Attribute,
    at: Where<'_>,
    elements: &[Value],
) -> Result<(), ScimError> {
    let Some(primary) = primary_name(attribute) else {
        return Ok(());
    };
    let count = elements
        .iter()
        .filter(|element| is_primary(element, primary))
        .count();
    if count > 1 {
        return Err(ScimError::invalid_value(format!(
            "attribute '{at}' has {count} values with \"{primary}\": true; at most one value may be primary"
        )));
    }
    Ok(())
}

/// Whether two values of the same attribute are equal under its
/// `caseExact` rule (strings compare case-insensitively unless caseExact).
pub(crate) fn same_value(attribute: &Attribute, left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::String(left), Value::String(right)) if !attribute.case_exact => {
            left.eq_ignore_ascii_case(right) || left.to_lowercase() == right.to_lowercase()
        }
        (left, right) => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: AttributeType, input: Value, expected: Result<Value, &str>) {
        let attribute = Attribute::new("a", kind);
        let at = Where {
            urn: None,
            attribute: "a",
            sub: None,
        };
        match (primitive(&attribute, at, &input), expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{input}"),
            (Err(error), Err(detail)) => assert_eq!(error.detail, detail, "{input}"),
            (actual, expected) => panic!("{input}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn primitives() {
        use AttributeType::*;
        check(String, json!("x"), Ok(json!("x")));
        check(
            String,
            json!(5),
            Err("attribute 'a' expects a string, got the number 5"),
        );
        check(Boolean, json!(true), Ok(json!(true)));
        check(Boolean, json!("True"), Ok(json!(true)));
        check(Boolean, json!("FALSE"), Ok(json!(false)));
        check(
            Boolean,
            json!("yes"),
            Err("attribute 'a' expects a boolean, got the string \"yes\""),
        );
        check(Integer, json!(42), Ok(json!(42)));
        check(Integer, json!(-3), Ok(json!(-3)));
        check(
            Integer,
            json!(4.5),
            Err("attribute 'a' expects an integer, got the number 4.5"),
        );
        check(Decimal, json!(4.5), Ok(json!(4.5)));
        check(Decimal, json!(4), Ok(json!(4)));
        check(
            DateTime,
            json!("2024-05-01T12:00:00Z"),
            Ok(json!("2024-05-01T12:00:00Z")),
        );
        check(
            DateTime,
            json!("2024-05-01T12:00:00.5+02:00"),
            Ok(json!("2024-05-01T12:00:00.5+02:00")),
        );
        check(
            DateTime,
            json!("2024-05-01"),
            Err("attribute 'a' expects an RFC 3339 dateTime string such as \"2024-05-01T12:00:00Z\", got the string \"2024-05-01\""),
        );
        check(Binary, json!("aGVsbG8="), Ok(json!("aGVsbG8=")));
        check(Binary, json!("aGVsbG8"), Ok(json!("aGVsbG8")));
        check(Binary, json!("aGVs\nbG8="), Ok(json!("aGVs\nbG8=")));
        check(
            Binary,
            json!("not base64!"),
            Err("attribute 'a' expects a base64-encoded string, got the string \"not base64!\""),
        );
        check(
            Reference,
            json!("https://x/Users/1"),
            Ok(json!("https://x/Users/1")),
        );
    }

    #[test]
    fn absent_values() {
        for value in [json!(null), json!(""), json!([]), json!({})] {
            assert!(is_absent(&value), "{value}");
        }
        for value in [
            json!(false),
            json!(0),
            json!(" "),
            json!([null]),
            json!({"a": null}),
        ] {
            assert!(!is_absent(&value), "{value}");
        }
    }

    #[test]
    fn long_strings_are_truncated_in_details() {
        let long = "x".repeat(1000);
        let detail = describe(&Value::String(long));
        assert!(detail.len() < 200, "{detail}");
        assert!(detail.ends_with("...\""), "{detail}");
    }
}
