//! The custom extension of issue 5: a User schema extension of N string
//! attributes, declared at run time through Muster's admin API
//! (`PUT /admin/v1/schemas/{urn}`), and the values each generated user
//! carries under it.
//!
//! Attribute 1, `agentCode`, holds a value unique to each user, so that an
//! equality filter on it returns exactly one user: the filter phase measures
//! an indexed lookup, not the cost of returning many matches. Attribute 2,
//! `region`, cycles through four regions as a contact center's does (many
//! users share each value, as in a real attribute index). The others,
//! `attr03`, `attr04`, ..., hold values of moderate cardinality. All are
//! plain optional strings without uniqueness, so the cost measured is the
//! cost of carrying custom values, not of extra checks. Only `agentCode` is
//! declared searchable (indexed for filters).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::bodies::percent_encode;

/// URN of the extension the benchmark declares.
pub const EXTENSION_URN: &str = "urn:ietf:params:scim:schemas:extension:loadbench:2.0:User";

/// Most attributes the extension may have (a benchmark, not a stress test
/// of schema size).
pub const MAX_ATTRIBUTES: usize = 100;

/// The attribute the filter phase looks users up by (unique per user).
const KEY_ATTRIBUTE: &str = "agentCode";

/// The low-cardinality attribute.
const REGION_ATTRIBUTE: &str = "region";

/// The values of `region`.
const REGIONS: [&str; 4] = ["APAC", "EMEA", "AMER", "LATAM"];

/// Distinct values of each `attrNN` attribute.
const VALUES_PER_ATTRIBUTE: usize = 50;

/// The extension of one run: how many string attributes it declares
/// (at least 1, at most [`MAX_ATTRIBUTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// Number of attributes, in `1..=MAX_ATTRIBUTES`.
    attributes: usize,
}

impl Extension {
    /// The extension with `attributes` attributes; `None` for 0 (no custom
    /// attributes) or more than [`MAX_ATTRIBUTES`].
    pub fn new(attributes: usize) -> Option<Self> {
        (1..=MAX_ATTRIBUTES)
            .contains(&attributes)
            .then_some(Extension { attributes })
    }

    /// How many attributes it declares.
    pub fn attributes(self) -> usize {
        self.attributes
    }

    /// The name of attribute `k` (1-based).
    fn attribute_name(k: usize) -> String {
        match k {
            1 => KEY_ATTRIBUTE.to_owned(),
            2 => REGION_ATTRIBUTE.to_owned(),
            _ => format!("attr{k:02}"),
        }
    }

    /// The admin API path that declares it, relative to `/admin/v1`: only
    /// the attribute the filter phase looks up is searchable (indexed), as
    /// an admin would mark the one attribute the IdP matches on.
    pub fn admin_path() -> String {
        format!("/schemas/{EXTENSION_URN}?searchable={KEY_ATTRIBUTE}")
    }

    /// The RFC 7643 section 7 schema document declaring it.
    pub fn schema_document(self) -> Bytes {
        let attributes: Vec<Value> = (1..=self.attributes)
            .map(|k| {
                json!({
                    "name": Self::attribute_name(k),
                    "type": "string",
                    "multiValued": false,
                    "required": false,
                    "caseExact": false,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                })
            })
            .collect();
        let body = json!({
            "id": EXTENSION_URN,
            "name": "LoadbenchUser",
            "description": "Custom attributes declared by muster-loadbench (issue 5)",
            "attributes": attributes,
        });
        Bytes::from(body.to_string())
    }

    /// The value of the key attribute of generated user `i` in run `tag`.
    pub fn key_value(tag: &str, i: usize) -> String {
        format!("AC-{tag}-{i:07}")
    }

    /// The object user `i` carries under [`EXTENSION_URN`].
    pub fn values(self, tag: &str, i: usize) -> Value {
        let mut values = Map::new();
        for k in 1..=self.attributes {
            let value = match k {
                1 => Self::key_value(tag, i),
                2 => REGIONS
                    .get(i % REGIONS.len())
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                _ => format!("value {k}-{}", (i + k) % VALUES_PER_ATTRIBUTE),
            };
            values.insert(Self::attribute_name(k), Value::String(value));
        }
        Value::Object(values)
    }

    /// The query string of `GET /Users?filter=<urn>:agentCode eq "<key>"`.
    pub fn key_filter_query(key: &str) -> String {
        let filter = format!("{EXTENSION_URN}:{KEY_ATTRIBUTE} eq \"{key}\"");
        format!("?filter={}", percent_encode(&filter))
    }

    /// The key value a returned user carries, if any.
    pub fn key_of(user: &Value) -> Option<&str> {
        user.get(EXTENSION_URN)?.get(KEY_ATTRIBUTE)?.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded() {
        for (attributes, valid) in [(0, false), (1, true), (20, true), (100, true), (101, false)] {
            assert_eq!(Extension::new(attributes).is_some(), valid, "{attributes}");
        }
    }

    #[test]
    fn schema_declares_every_attribute_as_a_string() {
        let extension = Extension::new(20).unwrap();
        let schema: Value = serde_json::from_slice(&extension.schema_document()).unwrap();
        assert_eq!(schema["id"], EXTENSION_URN);
        let attributes = schema["attributes"].as_array().unwrap();
        assert_eq!(attributes.len(), 20);
        assert_eq!(attributes[0]["name"], "agentCode");
        assert_eq!(attributes[1]["name"], "region");
        assert_eq!(attributes[2]["name"], "attr03");
        assert_eq!(attributes[19]["name"], "attr20");
        assert!(attributes.iter().all(|a| a["type"] == "string"));
    }

    #[test]
    fn values_match_the_schema_and_the_key_is_unique() {
        let extension = Extension::new(20).unwrap();
        let values = extension.values("t1", 42);
        let object = values.as_object().unwrap();
        assert_eq!(object.len(), 20);
        assert_eq!(object["agentCode"], "AC-t1-0000042");
        assert!(REGIONS.contains(&object["region"].as_str().unwrap()));
        assert_ne!(
            Extension::key_value("t1", 42),
            Extension::key_value("t1", 43)
        );
        let user = json!({ EXTENSION_URN: values });
        assert_eq!(Extension::key_of(&user), Some("AC-t1-0000042"));
    }

    #[test]
    fn key_filter_is_percent_encoded() {
        assert_eq!(
            Extension::key_filter_query("AC-t-1"),
            "?filter=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aloadbench%3A2.0%3AUser%3AagentCode%20eq%20%22AC-t-1%22"
        );
    }
}
