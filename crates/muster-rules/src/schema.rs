//! The SCIM schema of the computed contact-center extension.
//!
//! Every attribute is `readOnly` (clients never write it; the server
//! computes it from the rules) and `returned: default`.

use muster_scim::{Attribute, AttributeType, Mutability, Schema};

/// The URN of the extension that carries a user's computed entitlements.
pub const CONTACT_CENTER_URN: &str =
    "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";

fn read_only(name: &str, kind: AttributeType, description: &str) -> Attribute {
    Attribute {
        mutability: Mutability::ReadOnly,
        description: Some(description.to_owned()),
        ..Attribute::new(name, kind)
    }
}

fn string(name: &str, description: &str) -> Attribute {
    read_only(name, AttributeType::String, description)
}

fn rule() -> Attribute {
    string("rule", "The id of the rule credited with this entitlement.")
}

fn complex(name: &str, multi_valued: bool, description: &str, subs: Vec<Attribute>) -> Attribute {
    Attribute {
        sub_attributes: subs,
        multi_valued,
        ..read_only(name, AttributeType::Complex, description)
    }
}

fn proficiencies(name: &str, what: &str) -> Attribute {
    complex(
        name,
        true,
        &format!("Routing {what}s with a proficiency, computed by the rules."),
        vec![
            string(
                "name",
                &format!("The routing {what}, as the catalog names it."),
            ),
            read_only(
                "proficiency",
                AttributeType::Integer,
                "The proficiency, 0 to 5.",
            ),
            rule(),
        ],
    )
}

fn assignment(name: &str, multi_valued: bool, description: &str, what: &str) -> Attribute {
    complex(
        name,
        multi_valued,
        description,
        vec![
            string("name", &format!("The {what}, as the catalog names it.")),
            rule(),
        ],
    )
}

/// The schema of [`CONTACT_CENTER_URN`]: `grants` (`role`, `division`,
/// `rule`), `skills` and `languages` (`name`, `proficiency`, `rule`),
/// `managementUnit` and `homeDivision` (`name`, `rule`), `licenses`
/// (`name`, `rule`) and `problems` (`code`, `detail`, `rules`).
pub fn contact_center_schema() -> Schema {
    Schema {
        id: CONTACT_CENTER_URN.to_owned(),
        name: Some("ContactCenterUser".to_owned()),
        description: Some(
            "Contact-center entitlements computed by Muster's rules; read-only.".to_owned(),
        ),
        attributes: vec![
            complex(
                "grants",
                true,
                "Roles granted in divisions.",
                vec![
                    string("role", "The role, as the catalog names it."),
                    string("division", "The division the role is granted in."),
                    rule(),
                ],
            ),
            proficiencies("skills", "skill"),
            proficiencies("languages", "language"),
            assignment(
                "managementUnit",
                false,
                "The workforce-management unit; unset when no rule decides it.",
                "management unit",
            ),
            assignment(
                "homeDivision",
                false,
                "The home division; unset when no rule decides it.",
                "division",
            ),
            assignment(
                "licenses",
                true,
                "Licenses granted or needed by the granted roles.",
                "license",
            ),
            complex(
                "problems",
                true,
                "Why the entitlements are incomplete (a tie, a missing or unknown table key).",
                vec![
                    Attribute {
                        canonical_values: vec![
                            "tie".to_owned(),
                            "missingKey".to_owned(),
                            "unknownKey".to_owned(),
                        ],
                        case_exact: true,
                        ..string("code", "The kind of problem.")
                    },
                    string("detail", "What happened, in words."),
                    Attribute {
                        multi_valued: true,
                        ..string("rules", "The ids of the rules involved.")
                    },
                ],
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_scim::{Returned, SchemaRegistry};

    #[test]
    fn the_registry_accepts_and_resolves_it() {
        let mut registry = SchemaRegistry::builtin();
        let added = registry.add_schema(contact_center_schema());
        assert!(added.is_ok(), "{added:?}");
        let bound = registry.bind_extension("User", CONTACT_CENTER_URN, false);
        assert!(bound.is_ok(), "{bound:?}");
        let Some(user_type) = registry.resource_type("User") else {
            panic!("User");
        };
        let Ok(filter) = muster_scim::Filter::parse(&format!(
            "{CONTACT_CENTER_URN}:managementUnit.name eq \"Manila Voice\""
        )) else {
            panic!("parses");
        };
        assert!(filter.check(&registry, user_type).is_ok());
    }

    #[test]
    fn every_attribute_is_read_only_and_returned_by_default() {
        let schema = contact_center_schema();
        for attribute in &schema.attributes {
            assert_eq!(
                attribute.mutability,
                Mutability::ReadOnly,
                "{}",
                attribute.name
            );
            assert_eq!(attribute.returned, Returned::Default, "{}", attribute.name);
            for sub in &attribute.sub_attributes {
                assert_eq!(sub.mutability, Mutability::ReadOnly, "{}", sub.name);
                assert_eq!(sub.returned, Returned::Default, "{}", sub.name);
            }
        }
    }
}
