//! The RFC 7643 section 7 schema representation, serialisable exactly as
//! `/Schemas` returns it and as admins declare custom extensions.

use serde::{Deserialize, Serialize};

/// The data type of an attribute (RFC 7643 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    /// A sequence of characters.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number with at least one digit after the decimal point.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` (RFC 3339) string.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI for a resource.
    Reference,
    /// A composition of sub-attributes.
    Complex,
}

impl AttributeType {
    /// The name as it appears in schema JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Decimal => "decimal",
            AttributeType::Integer => "integer",
            AttributeType::DateTime => "dateTime",
            AttributeType::Binary => "binary",
            AttributeType::Reference => "reference",
            AttributeType::Complex => "complex",
        }
    }
}

/// Whether and how a client may change an attribute (RFC 7643 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only; client input is ignored.
    ReadOnly,
    /// Freely updated.
    #[default]
    ReadWrite,
    /// Set once (on create or when still empty), never changed after.
    Immutable,
    /// Written by clients, never returned (e.g. `password`).
    WriteOnly,
}

/// When an attribute is returned in a response (RFC 7643 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, whatever `attributes` or `excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded or unless `attributes` names others only.
    #[default]
    Default,
    /// Returned only when `attributes` names it.
    Request,
}

/// How the service provider enforces uniqueness (RFC 7643 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness enforced.
    #[default]
    None,
    /// Unique within the service provider (per tenant in Muster).
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition, possibly with sub-attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// The attribute name; matched case-insensitively.
    pub name: String,
    /// The data type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Sub-attributes of a complex attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
    /// Whether the attribute holds a list of values.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a resource must carry it.
    #[serde(default)]
    pub required: bool,
    /// Suggested values (e.g. `work`, `home`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// Whether and how clients may change it.
    #[serde(default)]
    pub mutability: Mutability,
    /// When it is returned.
    #[serde(default)]
    pub returned: Returned,
    /// How uniqueness is enforced.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// For references: the resource types it may point to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
}

impl Attribute {
    /// A single-valued, optional, readWrite, case-insensitive attribute.
    pub fn new(name: &str, kind: AttributeType) -> Self {
        Attribute {
            name: name.to_owned(),
            kind,
            sub_attributes: Vec::new(),
            multi_valued: false,
            description: None,
            required: false,
            canonical_values: Vec::new(),
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            reference_types: Vec::new(),
        }
    }

    /// Finds a sub-attribute by name, case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|sub| sub.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is a complex attribute.
    pub fn is_complex(&self) -> bool {
        self.kind == AttributeType::Complex
    }
}

/// A schema: an id (URN), a name and its attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN, e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The top-level attributes.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// Finds a top-level attribute by name, case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension bound to a resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaExtension {
    /// The extension schema URN.
    pub schema: String,
    /// Whether every resource of the type must carry the extension.
    pub required: bool,
}

/// A resource type (RFC 7643 section 6): endpoint, core schema, extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type id, e.g. `User`.
    pub id: String,
    /// The resource type name, e.g. `User`.
    pub name: String,
    /// The endpoint relative to the base URL, e.g. `/Users`.
    pub endpoint: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The core schema URN.
    pub schema: String,
    /// Extension schemas bound to the type.
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
}
