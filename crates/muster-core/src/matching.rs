//! Conflict matching: what a client's `POST /Users` does when it names a
//! user that already exists.
//!
//! By default (an empty [`MatchPolicy`]) such a POST is refused with
//! `409 uniqueness`, as RFC 7644 section 3.3 says. A client (a bearer token
//! or an OAuth client) may instead carry a policy listing the attributes on
//! which its POST is matched against existing users, like an identity
//! provider's "matching attributes" (Entra ID's soft match): when the
//! request's value of one of them identifies an existing user, the request is
//! applied to that user as a replace would be (same id, never a duplicate)
//! and answered as a create would be (`201`, `Location`, the resource).
//!
//! On the wire (CLI `--match`, storage, serde) a policy is a comma-separated
//! list of attribute names:
//!
//! | name         | attribute                                            |
//! |--------------|------------------------------------------------------|
//! | `externalId` | `externalId` (exact, case-sensitive)                 |
//! | `userName`   | `userName` (case-insensitive, as its uniqueness is)  |
//! | `emails`     | the `work` email's `value` (case-insensitive); `workEmail` is accepted as an alias |
//!
//! The empty string is the empty policy (no matching).
//!
//! Every attribute of the policy that the POST body carries is looked up
//! (at most two holders each); when they all name the same user, the POST
//! is linked to it, and when they name different users (an `externalId`
//! held by one, the `userName` by another) the POST is refused with
//! `409 uniqueness` naming both, since linking either would leave the other
//! a duplicate. The order of the policy is the order the lookups run and
//! are reported in; `externalId` first is what identity providers do. A
//! link is logged (`linked a POST to an existing user`) and recorded as the
//! replace's `Update` change record, which the audit trail keeps. A create
//! that loses a race to a concurrent one with the same `userName` is
//! matched again, so two POSTs of one user never make two users.
//! Policies apply to `/Users` only; `/Groups` POSTs are never matched.

use std::fmt;

use muster_scim::projection::Projection;
use muster_scim::resource::{normalize_with, Normalized};
use muster_scim::{Filter, ResourceType, ScimError};
use muster_store::{ListQuery, Page, Precondition, ResourceId, StoreError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{Error, Rendered, Session};

/// One attribute a POST may be matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchAttribute {
    /// `externalId`: the identity provider's own id for the user.
    ExternalId,
    /// `userName`, compared case-insensitively.
    UserName,
    /// The value of the user's `emails` entry of type `work`, compared
    /// case-insensitively.
    WorkEmail,
}

impl MatchAttribute {
    /// Every attribute, in the order an identity provider tries them
    /// (`externalId` first).
    pub const ALL: [MatchAttribute; 3] = [
        MatchAttribute::ExternalId,
        MatchAttribute::UserName,
        MatchAttribute::WorkEmail,
    ];

    /// The attribute's name on the wire, in storage and on the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchAttribute::ExternalId => "externalId",
            MatchAttribute::UserName => "userName",
            MatchAttribute::WorkEmail => "emails",
        }
    }

    /// The attribute named `name` (`externalId`, `userName`, `emails` or
    /// `workEmail`; case-insensitive).
    pub fn parse(name: &str) -> Result<MatchAttribute, String> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("externalId") {
            Ok(MatchAttribute::ExternalId)
        } else if name.eq_ignore_ascii_case("userName") {
            Ok(MatchAttribute::UserName)
        } else if name.eq_ignore_ascii_case("emails") || name.eq_ignore_ascii_case("workEmail") {
            Ok(MatchAttribute::WorkEmail)
        } else {
            Err(format!(
                "unknown matching attribute `{name}`: expected externalId, userName or emails (workEmail)"
            ))
        }
    }
}

impl fmt::Display for MatchAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attributes a client's `POST /Users` is matched on, in the order
/// given. Empty (the default) means no matching: a POST of an existing
/// userName is `409 uniqueness`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MatchPolicy(pub Vec<MatchAttribute>);

impl MatchPolicy {
    /// No matching (today's `409 uniqueness`).
    pub fn none() -> MatchPolicy {
        MatchPolicy(Vec::new())
    }

    /// Parses a comma-separated list (`externalId,userName,emails`); blanks
    /// around names are ignored, a repeated name is kept once, the empty
    /// string is the empty policy.
    pub fn parse(text: &str) -> Result<MatchPolicy, String> {
        let mut attributes = Vec::new();
        for name in text.split(',') {
            if name.trim().is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "empty name in matching policy `{text}`: expected a comma-separated list of externalId, userName, emails"
                ));
            }
            let attribute = MatchAttribute::parse(name)?;
            if !attributes.contains(&attribute) {
                attributes.push(attribute);
            }
        }
        Ok(MatchPolicy(attributes))
    }

    /// Whether the policy matches nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes, in the order given.
    pub fn attributes(&self) -> &[MatchAttribute] {
        &self.0
    }

    /// Whether the policy lists `attribute`.
    pub fn contains(&self, attribute: MatchAttribute) -> bool {
        self.0.contains(&attribute)
    }

    /// The stored form: the comma-separated list (`""` when empty).
    pub fn as_str(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MatchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attribute) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(attribute.as_str())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for MatchPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MatchPolicy::parse(text)
    }
}

impl Serialize for MatchPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MatchPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MatchPolicy::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The most holders one attribute's lookup reads: two are enough to tell
/// one holder from several.
const HOLDERS_READ: u64 = 2;

/// The values a POST body carries for each attribute of the policy, read
/// from its canonical form.
fn probes(policy: &MatchPolicy, resource: &Value) -> Vec<(MatchAttribute, String)> {
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
    let work_email = || {
        resource
            .get("emails")
            .and_then(Value::as_array)?
            .iter()
            .find(|email| {
                email
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("work"))
            })
            .and_then(|email| email.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    policy
        .attributes()
        .iter()
        .filter_map(|attribute| {
            let value = match attribute {
                MatchAttribute::ExternalId => text("externalId"),
                MatchAttribute::UserName => text("userName"),
                MatchAttribute::WorkEmail => work_email(),
            }?;
            (!value.is_empty()).then_some((*attribute, value))
        })
        .collect()
}

/// The filter that finds the holders of `value` of `attribute`.
fn filter_of(attribute: MatchAttribute, value: &str) -> Result<Filter, Error> {
    let quoted = serde_json::to_string(value)
        .map_err(|error| Error::Internal(format!("quote a matching value: {error}")))?;
    let text = match attribute {
        MatchAttribute::ExternalId => format!("externalId eq {quoted}"),
        MatchAttribute::UserName => format!("userName eq {quoted}"),
        MatchAttribute::WorkEmail => format!("emails[type eq \"work\" and value eq {quoted}]"),
    };
    Ok(Filter::parse(&text)?)
}

impl Session<'_> {
    /// The existing user a `POST` of `body` to `rt` names under the
    /// caller's policy: `None` without a policy, for other resource types,
    /// for a body that does not validate (the create reports why) or when
    /// no user matches; `409 uniqueness` when the attributes name
    /// different users.
    pub(crate) async fn matched_user(
        &self,
        rt: &ResourceType,
        body: &Value,
    ) -> Result<Option<ResourceId>, Error> {
        if self.matching().is_empty() || rt.id != "User" {
            return Ok(None);
        }
        let Ok(Normalized { resource, .. }) =
            normalize_with(self.registry(), rt, body, self.undeclared())
        else {
            return Ok(None);
        };
        let mut holders: Vec<(MatchAttribute, ResourceId)> = Vec::new();
        for (attribute, value) in probes(self.matching(), &resource) {
            let query = ListQuery {
                resource_type: rt.id.clone(),
                filter: Some(filter_of(attribute, &value)?),
                sort_by: None,
                descending: false,
                page: Page::Index {
                    start_index: 1,
                    count: HOLDERS_READ,
                },
                include_members: false,
            };
            let page = self
                .service()
                .store()
                .list(self.tenant(), self.registry(), &query)
                .await?;
            holders.extend(
                page.resources
                    .into_iter()
                    .map(|found| (attribute, found.id)),
            );
        }
        let Some((_, first)) = holders.first() else {
            return Ok(None);
        };
        if let Some((other_attribute, other)) = holders.iter().find(|(_, id)| id != first) {
            let named: Vec<String> = holders
                .iter()
                .map(|(attribute, id)| format!("{attribute} matches user {}", id.0))
                .collect();
            return Err(Error::Scim(ScimError::uniqueness(format!(
                "the POST matches more than one existing user ({}); user {} and user {} \
                     (by {other_attribute}) would both be it, so nothing was linked or created",
                named.join(", "),
                first.0,
                other.0
            ))));
        }
        Ok(Some(first.clone()))
    }

    /// Links a `POST` to the existing user the caller's policy matches, if
    /// any: the body is applied to it as a replace would be (same id; a
    /// locked user stays inactive), answered as the create would be.
    pub(crate) async fn link_on_match(
        &self,
        rt: &ResourceType,
        body: &Value,
        projection: &Projection,
    ) -> Result<Option<Rendered>, Error> {
        let Some(id) = self.matched_user(rt, body).await? else {
            return Ok(None);
        };
        let linked = self
            .replace(rt, &id.0, Precondition::None, body.clone(), projection)
            .await;
        match linked {
            Ok(rendered) => {
                tracing::info!(
                    tenant = %self.tenant().0,
                    client = %self.actor().client,
                    request_id = %self.actor().request_id,
                    user = %rendered.id,
                    policy = %self.matching(),
                    "linked a POST to an existing user (conflict matching policy)"
                );
                Ok(Some(rendered))
            }
            // Deleted since the match: the POST creates.
            Err(Error::Store(StoreError::NotFound(_))) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_wire_form() {
        let policy = MatchPolicy::parse(" externalId, userName ,workEmail").unwrap();
        assert_eq!(
            policy.attributes(),
            &[
                MatchAttribute::ExternalId,
                MatchAttribute::UserName,
                MatchAttribute::WorkEmail
            ]
        );
        assert_eq!(policy.to_string(), "externalId,userName,emails");
        assert_eq!(MatchPolicy::parse(&policy.as_str()).unwrap(), policy);
        assert_eq!(MatchPolicy::parse("").unwrap(), MatchPolicy::default());
        assert!(MatchPolicy::default().is_empty());
        assert_eq!(
            MatchPolicy::parse("userName,USERNAME")
                .unwrap()
                .attributes(),
            &[MatchAttribute::UserName]
        );
    }

    #[test]
    fn refuses_unknown_and_empty_names() {
        assert!(MatchPolicy::parse("displayName")
            .unwrap_err()
            .contains("displayName"));
        assert!(MatchPolicy::parse("userName,,emails").is_err());
        assert!(MatchPolicy::parse("userName,").is_err());
    }

    #[test]
    fn serde_is_the_string() {
        let policy = MatchPolicy::parse("emails,externalId").unwrap();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(json, "\"emails,externalId\"");
        let back: MatchPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
        assert!(serde_json::from_str::<MatchPolicy>("\"bogus\"").is_err());
    }
}
