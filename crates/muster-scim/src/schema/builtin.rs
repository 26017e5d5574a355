//! The built-in schemas of RFC 7643 section 8.7.1 and the common attributes
//! (`id`, `externalId`, `meta`) of section 3.1, defined as data.

use super::model::{
    Attribute, AttributeType, Mutability, ResourceType, Returned, Schema, SchemaExtension,
    Uniqueness,
};

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the Enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Extra schema URN that Entra ID puts on groups it creates; accepted and ignored.
pub const ENTRA_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

fn string(name: &str) -> Attribute {
    Attribute::new(name, AttributeType::String)
}

fn boolean(name: &str) -> Attribute {
    Attribute::new(name, AttributeType::Boolean)
}

fn reference(name: &str, types: &[&str]) -> Attribute {
    Attribute {
        reference_types: types.iter().map(|t| (*t).to_owned()).collect(),
        ..Attribute::new(name, AttributeType::Reference)
    }
}

fn complex(name: &str, sub_attributes: Vec<Attribute>) -> Attribute {
    Attribute {
        sub_attributes,
        ..Attribute::new(name, AttributeType::Complex)
    }
}

fn multi(attribute: Attribute) -> Attribute {
    Attribute {
        multi_valued: true,
        ..attribute
    }
}

fn read_only(attribute: Attribute) -> Attribute {
    Attribute {
        mutability: Mutability::ReadOnly,
        ..attribute
    }
}

fn with_canonical(attribute: Attribute, values: &[&str]) -> Attribute {
    Attribute {
        canonical_values: values.iter().map(|v| (*v).to_owned()).collect(),
        ..attribute
    }
}

fn described(attribute: Attribute, description: &str) -> Attribute {
    Attribute {
        description: Some(description.to_owned()),
        ..attribute
    }
}

/// A multi-valued complex attribute with the RFC's standard sub-attributes
/// `value`, `display`, `type` (with canonical values) and `primary`.
fn plural(name: &str, value: Attribute, types: &[&str]) -> Attribute {
    multi(complex(
        name,
        vec![
            value,
            string("display"),
            with_canonical(string("type"), types),
            boolean("primary"),
        ],
    ))
}

/// The common attributes every resource carries (RFC 7643 section 3.1).
///
/// They are not listed in `/Schemas` (the RFC's own representation leaves
/// them out) but validation, filters and sorting resolve them.
pub fn common_attributes() -> Vec<Attribute> {
    vec![
        Attribute {
            case_exact: true,
            mutability: Mutability::ReadOnly,
            returned: Returned::Always,
            uniqueness: Uniqueness::Server,
            ..string("id")
        },
        Attribute {
            case_exact: true,
            ..string("externalId")
        },
        read_only(complex(
            "meta",
            vec![
                Attribute {
                    case_exact: true,
                    ..read_only(string("resourceType"))
                },
                read_only(Attribute::new("created", AttributeType::DateTime)),
                read_only(Attribute::new("lastModified", AttributeType::DateTime)),
                Attribute {
                    case_exact: true,
                    ..read_only(reference("location", &["uri"]))
                },
                Attribute {
                    case_exact: true,
                    ..read_only(string("version"))
                },
            ],
        )),
    ]
}

/// The core User schema.
pub fn user_schema() -> Schema {
    Schema {
        id: USER_SCHEMA.to_owned(),
        name: Some("User".to_owned()),
        description: Some("User Account".to_owned()),
        attributes: vec![
            Attribute {
                required: true,
                uniqueness: Uniqueness::Server,
                ..described(
                    string("userName"),
                    "Unique identifier for the User, typically used to sign in.",
                )
            },
            complex(
                "name",
                vec![
                    string("formatted"),
                    string("familyName"),
                    string("givenName"),
                    string("middleName"),
                    string("honorificPrefix"),
                    string("honorificSuffix"),
                ],
            ),
            string("displayName"),
            string("nickName"),
            reference("profileUrl", &["external"]),
            string("title"),
            string("userType"),
            string("preferredLanguage"),
            string("locale"),
            string("timezone"),
            boolean("active"),
            Attribute {
                mutability: Mutability::WriteOnly,
                returned: Returned::Never,
                case_exact: true,
                ..string("password")
            },
            plural("emails", string("value"), &["work", "home", "other"]),
            plural(
                "phoneNumbers",
                string("value"),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            plural(
                "ims",
                string("value"),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            plural(
                "photos",
                reference("value", &["external"]),
                &["photo", "thumbnail"],
            ),
            multi(complex(
                "addresses",
                vec![
                    string("formatted"),
                    string("streetAddress"),
                    string("locality"),
                    string("region"),
                    string("postalCode"),
                    string("country"),
                    with_canonical(string("type"), &["work", "home", "other"]),
                    boolean("primary"),
                ],
            )),
            read_only(multi(complex(
                "groups",
                vec![
                    read_only(string("value")),
                    read_only(reference("$ref", &["User", "Group"])),
                    read_only(string("display")),
                    read_only(with_canonical(string("type"), &["direct", "indirect"])),
                ],
            ))),
            plural("entitlements", string("value"), &[]),
            plural("roles", string("value"), &[]),
            plural(
                "x509Certificates",
                Attribute::new("value", AttributeType::Binary),
                &[],
            ),
        ],
    }
}

/// The core Group schema.
pub fn group_schema() -> Schema {
    let immutable = |attribute: Attribute| Attribute {
        mutability: Mutability::Immutable,
        ..attribute
    };
    Schema {
        id: GROUP_SCHEMA.to_owned(),
        name: Some("Group".to_owned()),
        description: Some("Group".to_owned()),
        attributes: vec![
            Attribute {
                required: true,
                uniqueness: Uniqueness::Server,
                ..described(
                    string("displayName"),
                    "A human-readable name for the Group.",
                )
            },
            multi(complex(
                "members",
                vec![
                    Attribute {
                        case_exact: true,
                        ..immutable(string("value"))
                    },
                    immutable(reference("$ref", &["User", "Group"])),
                    read_only(string("display")),
                    immutable(with_canonical(string("type"), &["User", "Group"])),
                ],
            )),
        ],
    }
}

/// The Enterprise User extension schema.
pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA.to_owned(),
        name: Some("EnterpriseUser".to_owned()),
        description: Some("Enterprise User".to_owned()),
        attributes: vec![
            string("employeeNumber"),
            string("costCenter"),
            string("organization"),
            string("division"),
            string("department"),
            complex(
                "manager",
                vec![
                    Attribute {
                        case_exact: true,
                        ..string("value")
                    },
                    reference("$ref", &["User"]),
                    read_only(string("displayName")),
                ],
            ),
        ],
    }
}

/// The built-in User and Group resource types.
pub fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType {
            id: "User".to_owned(),
            name: "User".to_owned(),
            endpoint: "/Users".to_owned(),
            description: Some("User Account".to_owned()),
            schema: USER_SCHEMA.to_owned(),
            schema_extensions: vec![SchemaExtension {
                schema: ENTERPRISE_USER_SCHEMA.to_owned(),
                required: false,
            }],
        },
        ResourceType {
            id: "Group".to_owned(),
            name: "Group".to_owned(),
            endpoint: "/Groups".to_owned(),
            description: Some("Group".to_owned()),
            schema: GROUP_SCHEMA.to_owned(),
            schema_extensions: Vec::new(),
        },
    ]
}
