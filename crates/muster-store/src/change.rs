//! The change feed's typed records: what a [`crate::ChangeRecord`] says
//! happened, and the feed's consumers and retention.
//!
//! A payload is stored as JSON (the `changes.payload` column) in the shape
//! [`ChangePayload::to_json`] gives; [`ChangePayload::from_stored`] reads
//! every shape any build wrote, mapping legacy or unknown ones to a variant
//! rather than failing (a legacy delete's `null` becomes
//! [`ChangePayload::Deleted`] with only the id; a shape no variant knows
//! becomes [`ChangePayload::Other`]).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{ChangeKind, ResourceId};

/// The largest cursor: [`crate::Store::register_consumer`] with it starts
/// a consumer at the feed's current head (every cursor is clamped to the
/// head, so no record committed later can fall behind it).
pub const FEED_HEAD: u64 = u64::MAX;

/// Group members added and removed by one write, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipDelta {
    /// Members added (ids of Users or Groups), in id order.
    #[serde(default)]
    pub added: Vec<ResourceId>,
    /// Members removed, in id order.
    #[serde(default)]
    pub removed: Vec<ResourceId>,
}

/// Who a deleted resource was, read in the delete's transaction before the
/// row went: what a downstream target needs to find its copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedIdentity {
    /// The deleted resource's id.
    pub id: ResourceId,
    /// A User's `userName`.
    #[serde(rename = "userName", default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// A Group's `displayName`.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// The `externalId` the identity provider gave it.
    #[serde(
        rename = "externalId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
}

impl DeletedIdentity {
    /// The identity of `resource` (its canonical JSON), with `id` as given.
    pub fn of(id: &ResourceId, resource: &Map<String, Value>) -> Self {
        let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
        DeletedIdentity {
            id: id.clone(),
            user_name: text("userName"),
            display_name: text("displayName"),
            external_id: text("externalId"),
        }
    }
}

/// A User's new derived value (see [`crate::Derivation`]), as a record of a
/// User whose computed groups changed carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedValue {
    /// The derivation's extension URN.
    pub urn: String,
    /// The new value, without its never-returned values; `None` when it is
    /// now absent.
    pub value: Option<Value>,
}

/// What a change record says happened. Each variant's contract:
#[derive(Debug, Clone, PartialEq)]
pub enum ChangePayload {
    /// A resource was created ([`ChangeKind::Create`]) or its attributes
    /// changed ([`ChangeKind::Update`]; also a schema change's rewrite, a
    /// rule set's or a schema's `rederive`). Stored as `{"resource": ..}`
    /// plus the optional keys below.
    Resource {
        /// The resource after the change: canonical JSON with `id` and
        /// `meta`, without members, computed `groups` or captured
        /// (undeclared) values, and without never-returned values (a
        /// User's `password`, [`crate::NewResource::never_returned`]).
        resource: Value,
        /// The membership delta of a Group, when the same write changed
        /// its members too (`"members"`).
        members: Option<MembershipDelta>,
        /// Values a schema change's rewrite removed, for the audit trail
        /// (`"removed"`), without never-returned values.
        removed: Option<Value>,
        /// The rule set version whose `rederive` changed the User's
        /// derived value (`"ruleSet"`).
        rule_set: Option<u64>,
    },
    /// Only a Group's membership changed ([`ChangeKind::Update`], or
    /// [`ChangeKind::Create`] never: a create carries the resource). Stored
    /// as `{"members": {"added": [ids], "removed": [ids]}}`. Also written
    /// for the groups that held a deleted resource.
    Members(MembershipDelta),
    /// A User's computed `groups` changed because of a write to something
    /// else (a group it is under gained or lost members, was renamed or
    /// deleted); its attributes did not, except its derived value when
    /// `derived` says so. Stored as `{"groups": "changed"}`, with
    /// `"<derivation URN>": value-or-null` when the derived value changed.
    /// Consumers read the User to learn its groups.
    GroupsChanged {
        /// The new derived value, when the write changed it.
        derived: Option<DerivedValue>,
    },
    /// A Group's computed `members[].display` changed because a member
    /// was renamed; nothing else about it did. Stored as
    /// `{"memberDisplay": "changed"}`.
    MemberDisplayChanged,
    /// A resource was deleted ([`ChangeKind::Delete`]). Stored as
    /// `{"deleted": {"id": .., "userName"|"displayName": .., "externalId":
    /// ..}}`; a legacy `null` reads as the id alone.
    Deleted(DeletedIdentity),
    /// A custom schema was put ([`ChangeKind::Schema`]). Stored as
    /// `{"schema": <document>, "resourceType": .., "required": ..}`.
    Schema {
        /// The RFC 7643 schema document as stored.
        schema: Value,
        /// The resource type it extends.
        resource_type: String,
        /// Whether the extension is required.
        required: bool,
    },
    /// A custom schema was deleted ([`ChangeKind::Schema`]). Stored as
    /// `{"deleted": <urn>}`.
    SchemaDeleted {
        /// The schema URN.
        urn: String,
    },
    /// A tenant setting was set ([`ChangeKind::Setting`]). Stored as
    /// `{"key": .., "value": ..}`.
    Setting {
        /// The setting's key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// An entitlement rule set was applied ([`ChangeKind::RuleSet`]).
    /// Stored as `{"version": .., "format": .., "note": ..}`.
    RuleSet {
        /// The version applied.
        version: u64,
        /// `toml` or `json`.
        format: String,
        /// Why it was applied; empty when no reason was given.
        note: String,
    },
    /// A stored shape no other variant describes (written by a build this
    /// one does not know), kept as stored.
    Other(Value),
}

impl ChangePayload {
    /// Reads a stored payload of a record of `kind` about `resource_id`.
    /// Never fails: a legacy delete (`null`) reads as
    /// [`ChangePayload::Deleted`] with the id alone, captured values
    /// (`"unmapped"`, written by older builds) are dropped, and a shape no
    /// variant describes is [`ChangePayload::Other`].
    pub fn from_stored(kind: ChangeKind, resource_id: &ResourceId, stored: Value) -> Self {
        match kind {
            ChangeKind::Delete => match stored {
                Value::Object(mut object) => match object.remove("deleted") {
                    Some(identity @ Value::Object(_)) => {
                        match serde_json::from_value::<DeletedIdentity>(identity) {
                            Ok(identity) => ChangePayload::Deleted(identity),
                            Err(_) => ChangePayload::Deleted(Self::bare(resource_id)),
                        }
                    }
                    _ => ChangePayload::Deleted(Self::bare(resource_id)),
                },
                _ => ChangePayload::Deleted(Self::bare(resource_id)),
            },
            _ => Self::from_json(stored),
        }
    }

    /// Reads a payload from its JSON without knowing the record's kind
    /// (see [`ChangePayload::from_stored`], which also knows the id of a
    /// legacy delete).
    pub fn from_json(stored: Value) -> Self {
        let Value::Object(mut object) = stored else {
            return ChangePayload::Other(stored);
        };
        // Captured values were published by older builds: never now.
        object.remove("unmapped");
        if let Some(resource) = object.remove("resource") {
            let members = object.remove("members").and_then(Self::delta);
            let removed = object.remove("removed").filter(|value| !value.is_null());
            let rule_set = object.get("ruleSet").and_then(Value::as_u64);
            return ChangePayload::Resource {
                resource,
                members,
                removed,
                rule_set,
            };
        }
        if object.get("groups").and_then(Value::as_str) == Some("changed") {
            object.remove("groups");
            let derived = object.into_iter().next().map(|(urn, value)| DerivedValue {
                urn,
                value: Some(value).filter(|value| !value.is_null()),
            });
            return ChangePayload::GroupsChanged { derived };
        }
        if object.get("memberDisplay").and_then(Value::as_str) == Some("changed") {
            return ChangePayload::MemberDisplayChanged;
        }
        if object.len() == 1 {
            if let Some(delta) = object.get("members").cloned().and_then(Self::delta) {
                return ChangePayload::Members(delta);
            }
        }
        match object.get("deleted") {
            Some(Value::String(urn)) if object.len() == 1 => {
                return ChangePayload::SchemaDeleted { urn: urn.clone() }
            }
            Some(identity @ Value::Object(_)) if object.len() == 1 => {
                if let Ok(identity) = serde_json::from_value(identity.clone()) {
                    return ChangePayload::Deleted(identity);
                }
            }
            _ => {}
        }
        if let (Some(schema), Some(Value::String(resource_type))) =
            (object.get("schema"), object.get("resourceType"))
        {
            return ChangePayload::Schema {
                schema: schema.clone(),
                resource_type: resource_type.clone(),
                required: object
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            };
        }
        if let (Some(Value::String(key)), Some(Value::String(value))) =
            (object.get("key"), object.get("value"))
        {
            return ChangePayload::Setting {
                key: key.clone(),
                value: value.clone(),
            };
        }
        if let (Some(version), Some(Value::String(format))) = (
            object.get("version").and_then(Value::as_u64),
            object.get("format"),
        ) {
            return ChangePayload::RuleSet {
                version,
                format: format.clone(),
                note: object
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            };
        }
        ChangePayload::Other(Value::Object(object))
    }

    /// The stored JSON shape of this payload (see each variant).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        match self {
            ChangePayload::Resource {
                resource,
                members,
                removed,
                rule_set,
            } => {
                object.insert("resource".to_owned(), resource.clone());
                if let Some(members) = members {
                    object.insert("members".to_owned(), delta_json(members));
                }
                if let Some(removed) = removed {
                    object.insert("removed".to_owned(), removed.clone());
                }
                if let Some(version) = rule_set {
                    object.insert("ruleSet".to_owned(), Value::from(*version));
                }
            }
            ChangePayload::Members(delta) => {
                object.insert("members".to_owned(), delta_json(delta));
            }
            ChangePayload::GroupsChanged { derived } => {
                object.insert("groups".to_owned(), Value::from("changed"));
                if let Some(derived) = derived {
                    object.insert(
                        derived.urn.clone(),
                        derived.value.clone().unwrap_or(Value::Null),
                    );
                }
            }
            ChangePayload::MemberDisplayChanged => {
                object.insert("memberDisplay".to_owned(), Value::from("changed"));
            }
            ChangePayload::Deleted(identity) => {
                let identity = serde_json::to_value(identity).unwrap_or(Value::Null);
                object.insert("deleted".to_owned(), identity);
            }
            ChangePayload::Schema {
                schema,
                resource_type,
                required,
            } => {
                object.insert("schema".to_owned(), schema.clone());
                object.insert(
                    "resourceType".to_owned(),
                    Value::from(resource_type.clone()),
                );
                object.insert("required".to_owned(), Value::from(*required));
            }
            ChangePayload::SchemaDeleted { urn } => {
                object.insert("deleted".to_owned(), Value::from(urn.clone()));
            }
            ChangePayload::Setting { key, value } => {
                object.insert("key".to_owned(), Value::from(key.clone()));
                object.insert("value".to_owned(), Value::from(value.clone()));
            }
            ChangePayload::RuleSet {
                version,
                format,
                note,
            } => {
                object.insert("version".to_owned(), Value::from(*version));
                object.insert("format".to_owned(), Value::from(format.clone()));
                object.insert("note".to_owned(), Value::from(note.clone()));
            }
            ChangePayload::Other(value) => return value.clone(),
        }
        Value::Object(object)
    }

    /// The after-image of a [`ChangePayload::Resource`].
    pub fn resource(&self) -> Option<&Value> {
        match self {
            ChangePayload::Resource { resource, .. } => Some(resource),
            _ => None,
        }
    }

    /// The membership delta of a [`ChangePayload::Members`], or of a
    /// [`ChangePayload::Resource`] that carries one.
    pub fn members(&self) -> Option<&MembershipDelta> {
        match self {
            ChangePayload::Members(delta) => Some(delta),
            ChangePayload::Resource { members, .. } => members.as_ref(),
            _ => None,
        }
    }

    /// The values a schema change's rewrite removed.
    pub fn removed(&self) -> Option<&Value> {
        match self {
            ChangePayload::Resource { removed, .. } => removed.as_ref(),
            _ => None,
        }
    }

    /// An identity of the id alone.
    fn bare(id: &ResourceId) -> DeletedIdentity {
        DeletedIdentity {
            id: id.clone(),
            user_name: None,
            display_name: None,
            external_id: None,
        }
    }

    /// A membership delta from its stored JSON.
    fn delta(value: Value) -> Option<MembershipDelta> {
        serde_json::from_value(value).ok()
    }
}

/// `{"added": [..], "removed": [..]}`, both keys always.
fn delta_json(delta: &MembershipDelta) -> Value {
    let ids =
        |ids: &[ResourceId]| Value::Array(ids.iter().map(|id| Value::from(id.0.clone())).collect());
    let mut object = Map::new();
    object.insert("added".to_owned(), ids(&delta.added));
    object.insert("removed".to_owned(), ids(&delta.removed));
    Value::Object(object)
}

impl Serialize for ChangePayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChangePayload {
    /// As [`ChangePayload::from_json`]: never fails on well-formed JSON.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(ChangePayload::from_json)
    }
}

/// A reader of the change feed and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The consumer's name, unique per tenant (for example `target:genesys`).
    pub name: String,
    /// The last sequence it has passed: it reads the records after it.
    pub cursor: u64,
    /// When it was registered, RFC 3339.
    pub registered: String,
    /// When its cursor last moved (or it was registered), RFC 3339.
    pub updated: String,
}

/// Which change records are old enough for [`crate::Store::prune_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    /// Records written before this instant (RFC 3339).
    Before(String),
    /// Records older than this age.
    OlderThan(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id() -> ResourceId {
        ResourceId("u1".to_owned())
    }

    fn check(kind: ChangeKind, stored: Value, expected: &ChangePayload, round_trips: bool) {
        let read = ChangePayload::from_stored(kind, &id(), stored.clone());
        assert_eq!(&read, expected, "{stored}");
        if round_trips {
            assert_eq!(read.to_json(), stored);
        }
    }

    #[test]
    fn stored_shapes_read_as_typed_payloads() {
        let resource = json!({"id": "u1", "userName": "alice"});
        let delta = MembershipDelta {
            added: vec![ResourceId("a".to_owned())],
            removed: vec![ResourceId("b".to_owned())],
        };
        let urn = "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";
        let cases: Vec<(ChangeKind, Value, ChangePayload, bool)> = vec![
            (
                ChangeKind::Create,
                json!({"resource": resource, "members": {"added": ["a"], "removed": ["b"]}}),
                ChangePayload::Resource {
                    resource: resource.clone(),
                    members: Some(delta.clone()),
                    removed: None,
                    rule_set: None,
                },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"resource": resource, "unmapped": {"x": 1}, "removed": {"a": 1}}),
                ChangePayload::Resource {
                    resource: resource.clone(),
                    members: None,
                    removed: Some(json!({"a": 1})),
                    rule_set: None,
                },
                false,
            ),
            (
                ChangeKind::Update,
                json!({"resource": resource, "ruleSet": 3}),
                ChangePayload::Resource {
                    resource: resource.clone(),
                    members: None,
                    removed: None,
                    rule_set: Some(3),
                },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"members": {"added": ["a"], "removed": ["b"]}}),
                ChangePayload::Members(delta),
                true,
            ),
            (
                ChangeKind::Update,
                json!({"groups": "changed"}),
                ChangePayload::GroupsChanged { derived: None },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"groups": "changed", urn: {"title": "x"}}),
                ChangePayload::GroupsChanged {
                    derived: Some(DerivedValue {
                        urn: urn.to_owned(),
                        value: Some(json!({"title": "x"})),
                    }),
                },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"groups": "changed", urn: null}),
                ChangePayload::GroupsChanged {
                    derived: Some(DerivedValue {
                        urn: urn.to_owned(),
                        value: None,
                    }),
                },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"memberDisplay": "changed"}),
                ChangePayload::MemberDisplayChanged,
                true,
            ),
            (
                ChangeKind::Delete,
                json!({"deleted": {"id": "u1", "userName": "alice", "externalId": "e"}}),
                ChangePayload::Deleted(DeletedIdentity {
                    id: id(),
                    user_name: Some("alice".to_owned()),
                    display_name: None,
                    external_id: Some("e".to_owned()),
                }),
                true,
            ),
            (
                ChangeKind::Delete,
                Value::Null,
                ChangePayload::Deleted(ChangePayload::bare(&id())),
                false,
            ),
            (
                ChangeKind::Schema,
                json!({"schema": {"id": "urn:x"}, "resourceType": "User", "required": false}),
                ChangePayload::Schema {
                    schema: json!({"id": "urn:x"}),
                    resource_type: "User".to_owned(),
                    required: false,
                },
                true,
            ),
            (
                ChangeKind::Schema,
                json!({"deleted": "urn:x"}),
                ChangePayload::SchemaDeleted {
                    urn: "urn:x".to_owned(),
                },
                true,
            ),
            (
                ChangeKind::Setting,
                json!({"key": "k", "value": "v"}),
                ChangePayload::Setting {
                    key: "k".to_owned(),
                    value: "v".to_owned(),
                },
                true,
            ),
            (
                ChangeKind::RuleSet,
                json!({"version": 2, "format": "toml", "note": ""}),
                ChangePayload::RuleSet {
                    version: 2,
                    format: "toml".to_owned(),
                    note: String::new(),
                },
                true,
            ),
            (
                ChangeKind::Update,
                json!({"something": "new"}),
                ChangePayload::Other(json!({"something": "new"})),
                true,
            ),
        ];
        for (kind, stored, expected, round_trips) in cases {
            check(kind, stored, &expected, round_trips);
        }
    }

    #[test]
    fn serde_uses_the_stored_shape() {
        let payload = ChangePayload::GroupsChanged { derived: None };
        let text = serde_json::to_string(&payload).unwrap();
        assert_eq!(text, r#"{"groups":"changed"}"#);
        let back: ChangePayload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, payload);
    }
}
