//! What evaluation gives a user: the value of the contact-center extension
//! (`urn:muster:params:scim:schemas:extension:contactcenter:2.0:User`).
//!
//! Serialised in canonical form: camelCase keys, lists sorted, empty lists
//! and unset values omitted, so equal entitlements are byte-equal JSON.

use serde::{Deserialize, Serialize};

/// A role granted in a division.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The role, as the catalog spells it.
    pub role: String,
    /// The division the role is granted in.
    pub division: String,
    /// The rule credited with the grant.
    pub rule: String,
}

/// A routing skill or language with its proficiency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proficiency {
    /// The skill or language, as the catalog spells it.
    pub name: String,
    /// 0 to 5.
    pub proficiency: u8,
    /// The rule credited with it.
    pub rule: String,
}

/// A single named object and the rule that gave it (a management unit, a
/// home division, a license).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The object, as the catalog spells it.
    pub name: String,
    /// The rule credited with it.
    pub rule: String,
}

/// Why a user's entitlements are incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProblemCode {
    /// Rules of the same, highest priority give a single-valued entitlement
    /// (management unit, home division) different values; it stays unset.
    Tie,
    /// A table's key attribute is missing on the user (no cost center).
    MissingKey,
    /// A table's key value is not in the table (an unknown cost center).
    UnknownKey,
}

impl ProblemCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Tie => "tie",
            ProblemCode::MissingKey => "missingKey",
            ProblemCode::UnknownKey => "unknownKey",
        }
    }
}

/// Something an admin should fix for this user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What kind of problem.
    pub code: ProblemCode,
    /// What happened, in words.
    pub detail: String,
    /// The rules involved, sorted.
    pub rules: Vec<String>,
}

/// A user's computed entitlements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entitlements {
    /// Roles in divisions, sorted by role then division.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// Routing skills, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<Proficiency>,
    /// Routing languages, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Proficiency>,
    /// The one workforce-management unit, when one rule decides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_unit: Option<Assignment>,
    /// The one home division, when one rule decides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_division: Option<Assignment>,
    /// Licenses, sorted by name: those granted, and those the granted roles
    /// need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<Assignment>,
    /// Problems, sorted by code then detail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

impl Entitlements {
    /// Whether nothing is set and no problem reported: the extension is
    /// then absent from the user.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
            && self.skills.is_empty()
            && self.languages.is_empty()
            && self.management_unit.is_none()
            && self.home_division.is_none()
            && self.licenses.is_empty()
            && self.problems.is_empty()
    }

    /// The canonical JSON of the extension (an object, `{}` when empty).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Sorts every list, the canonical order.
    pub(crate) fn sort(&mut self) {
        self.grants.sort();
        self.skills.sort();
        self.languages.sort();
        self.licenses.sort();
        self.problems.sort();
    }
}
