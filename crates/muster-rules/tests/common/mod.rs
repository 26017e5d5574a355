//! Fixtures shared by the integration tests: the seeds' registry (with
//! Contoso's custom extension), groups and users, and the example rule set.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use muster_rules::RuleSet;
use muster_scim::{Attribute, AttributeType, ResourceType, Schema, SchemaRegistry};
use serde_json::{json, Value};

pub const CONTOSO_URN: &str = "urn:contoso:params:scim:schemas:extension:cc:2.0:User";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub const GROUPS: [&str; 3] = [
    "Genesys_Cloud_Users",
    "Group_CC_Agents_Tier1",
    "Group_CC_Night_Shift",
];

/// The built-in registry plus Contoso's extension (`region`, `BPO_Vendor_ID`)
/// and the computed contact-center extension.
pub fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let contoso = Schema {
        id: CONTOSO_URN.to_owned(),
        name: Some("ContosoContactCenter".to_owned()),
        description: None,
        attributes: vec![
            Attribute::new("region", AttributeType::String),
            Attribute::new("BPO_Vendor_ID", AttributeType::String),
            Attribute::new("tier", AttributeType::Integer),
        ],
    };
    registry.put_extension(contoso, "User", false).unwrap();
    registry
        .put_extension(muster_rules::contact_center_schema(), "User", false)
        .unwrap();
    registry
}

pub fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

pub fn groups() -> Vec<String> {
    GROUPS.iter().map(|group| (*group).to_owned()).collect()
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Reads a file next to the example, as the CLI would.
pub fn read_example_file(name: &str) -> Result<String, String> {
    std::fs::read_to_string(examples_dir().join(name)).map_err(|error| error.to_string())
}

pub fn contoso_text() -> String {
    read_example_file("contoso.toml").unwrap()
}

pub fn contoso() -> RuleSet {
    match RuleSet::parse_with_files(&contoso_text(), &read_example_file) {
        Ok(rule_set) => rule_set,
        Err(errors) => panic!("{errors}"),
    }
}

/// A canonical user: `groups` by display name, then attributes.
pub struct UserBuilder {
    value: Value,
}

pub fn user(name: &str) -> UserBuilder {
    UserBuilder {
        value: json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": format!("id-{name}"),
            "userName": format!("{name}@contoso.com"),
            "active": true,
        }),
    }
}

impl UserBuilder {
    pub fn groups(mut self, groups: &[&str]) -> Self {
        let groups: Vec<Value> = groups
            .iter()
            .enumerate()
            .map(|(n, display)| json!({"value": format!("g{n}"), "display": display, "type": "direct"}))
            .collect();
        self.value["groups"] = Value::Array(groups);
        self
    }

    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.value[key] = value;
        self
    }

    pub fn enterprise(mut self, key: &str, value: &str) -> Self {
        self.value[ENTERPRISE_URN][key] = json!(value);
        self
    }

    pub fn contoso(mut self, key: &str, value: Value) -> Self {
        self.value[CONTOSO_URN][key] = value;
        self
    }

    pub fn build(self) -> Value {
        self.value
    }
}
