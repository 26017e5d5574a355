//! The in-memory filter evaluator: the reference semantics.

use serde_json::Value;

use super::ast::Filter;
use crate::schema::{Attribute, ResourceType, SchemaRegistry};

impl Filter {
    /// Whether a resource (canonical JSON) matches this filter.
    pub fn matches(
        &self,
        resource: &Value,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
    ) -> bool {
        let _ = (resource, registry, resource_type);
        false
    }

    /// Whether one element of a multi-valued complex attribute matches this
    /// value filter, whose paths name sub-attributes of `attribute`.
    pub fn matches_element(&self, element: &Value, attribute: &Attribute) -> bool {
        let _ = (element, attribute);
        false
    }
}
