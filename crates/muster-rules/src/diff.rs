//! Dry runs: what changes for one user between two results, and a summary
//! of the changes across many users.
//!
//! Changes compare values, not credit: a grant that stays but is now
//! credited to another rule is no change (nothing is delivered for it). A
//! skill or language whose proficiency changes is removed at the old
//! proficiency and added at the new one.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::entitlements::{Assignment, Entitlements, Grant, Problem, Proficiency};

/// How many users a summary names per change.
pub const MAX_SAMPLE_USERS: usize = 20;

/// A single-valued entitlement that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueChange {
    /// The name before (absent: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The name after (absent: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// What changes for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementChanges {
    /// Grants the user gains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants_added: Vec<Grant>,
    /// Grants the user loses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants_removed: Vec<Grant>,
    /// Skills gained (or at a new proficiency).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skills_added: Vec<Proficiency>,
    /// Skills lost (or at an old proficiency).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skills_removed: Vec<Proficiency>,
    /// Languages gained (or at a new proficiency).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages_added: Vec<Proficiency>,
    /// Languages lost (or at an old proficiency).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages_removed: Vec<Proficiency>,
    /// The management unit, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_unit: Option<ValueChange>,
    /// The home division, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_division: Option<ValueChange>,
    /// Licenses gained.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses_added: Vec<Assignment>,
    /// Licenses freed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses_removed: Vec<Assignment>,
    /// Problems the user gains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems_gained: Vec<Problem>,
    /// Problems the user no longer has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems_resolved: Vec<Problem>,
}

/// The elements of `after` whose key `before` lacks, in `after`'s order.
fn added<T: Clone, K: Ord>(before: &[T], after: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let present: BTreeSet<K> = before.iter().map(&key).collect();
    after
        .iter()
        .filter(|item| !present.contains(&key(item)))
        .cloned()
        .collect()
}

fn value_change(before: Option<&Assignment>, after: Option<&Assignment>) -> Option<ValueChange> {
    let before = before.map(|assignment| assignment.name.clone());
    let after = after.map(|assignment| assignment.name.clone());
    (before != after).then_some(ValueChange { before, after })
}

impl EntitlementChanges {
    /// The changes from `before` to `after`.
    pub fn between(before: &Entitlements, after: &Entitlements) -> EntitlementChanges {
        let grant = |grant: &Grant| (grant.role.clone(), grant.division.clone());
        let proficiency = |item: &Proficiency| (item.name.clone(), item.proficiency);
        let license = |item: &Assignment| item.name.clone();
        let problem = |item: &Problem| (item.code, item.detail.clone());
        EntitlementChanges {
            grants_added: added(&before.grants, &after.grants, grant),
            grants_removed: added(&after.grants, &before.grants, grant),
            skills_added: added(&before.skills, &after.skills, proficiency),
            skills_removed: added(&after.skills, &before.skills, proficiency),
            languages_added: added(&before.languages, &after.languages, proficiency),
            languages_removed: added(&after.languages, &before.languages, proficiency),
            management_unit: value_change(
                before.management_unit.as_ref(),
                after.management_unit.as_ref(),
            ),
            home_division: value_change(
                before.home_division.as_ref(),
                after.home_division.as_ref(),
            ),
            licenses_added: added(&before.licenses, &after.licenses, license),
            licenses_removed: added(&after.licenses, &before.licenses, license),
            problems_gained: added(&before.problems, &after.problems, problem),
            problems_resolved: added(&after.problems, &before.problems, problem),
        }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self == &EntitlementChanges::default()
    }
}

/// The kinds of change a dry run counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// A role granted in a division.
    GrantAdded,
    /// A grant taken away.
    GrantRemoved,
    /// A skill gained (or at a new proficiency).
    SkillAdded,
    /// A skill lost (or its old proficiency).
    SkillRemoved,
    /// A language gained (or at a new proficiency).
    LanguageAdded,
    /// A language lost (or its old proficiency).
    LanguageRemoved,
    /// The management unit changes (set, unset or moved).
    ManagementUnitChanged,
    /// The home division changes.
    HomeDivisionChanged,
    /// A license taken.
    LicenseAdded,
    /// A license freed.
    LicenseRemoved,
    /// A problem gained, by code.
    ProblemGained,
    /// A problem resolved, by code.
    ProblemResolved,
}

/// How many users share one change, and the first of them by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    count: usize,
    users: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, user: &str) {
        self.count += 1;
        if self.users.len() < MAX_SAMPLE_USERS
            || self.users.last().is_some_and(|last| user < last.as_str())
        {
            self.users.insert(user.to_owned());
            if self.users.len() > MAX_SAMPLE_USERS {
                self.users.pop_last();
            }
        }
    }
}

/// One change across users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSummary {
    /// The kind of change.
    pub kind: ChangeKind,
    /// The change in words (`Agent in Support`, `Cebu Chat -> Manila Voice`,
    /// `missingKey`).
    pub change: String,
    /// How many users it affects.
    pub count: usize,
    /// The first [`MAX_SAMPLE_USERS`] of them in name order.
    pub users: Vec<String>,
}

/// Users gaining problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersSample {
    /// How many.
    pub count: usize,
    /// The first [`MAX_SAMPLE_USERS`] in name order.
    pub users: Vec<String>,
}

/// The changes a new rule set would make across users, for `muster rules
/// apply --dry-run`. Record each user once; the result does not depend on
/// the order users are recorded in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunSummary {
    users: usize,
    users_changed: usize,
    changes: BTreeMap<(ChangeKind, String), Tally>,
    problems_gained: Tally,
}

impl DryRunSummary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the changes of one user.
    pub fn record(&mut self, user_name: &str, changes: &EntitlementChanges) {
        self.users += 1;
        if changes.is_empty() {
            return;
        }
        self.users_changed += 1;
        let mut count = |kind: ChangeKind, change: String| {
            self.changes
                .entry((kind, change))
                .or_default()
                .add(user_name);
        };
        let grant = |grant: &Grant| format!("{} in {}", grant.role, grant.division);
        let proficiency = |item: &Proficiency| format!("{} ({})", item.name, item.proficiency);
        for item in &changes.grants_added {
            count(ChangeKind::GrantAdded, grant(item));
        }
        for item in &changes.grants_removed {
            count(ChangeKind::GrantRemoved, grant(item));
        }
        for item in &changes.skills_added {
            count(ChangeKind::SkillAdded, proficiency(item));
        }
        for item in &changes.skills_removed {
            count(ChangeKind::SkillRemoved, proficiency(item));
        }
        for item in &changes.languages_added {
            count(ChangeKind::LanguageAdded, proficiency(item));
        }
        for item in &changes.languages_removed {
            count(ChangeKind::LanguageRemoved, proficiency(item));
        }
        let moved = |change: &ValueChange| {
            format!(
                "{} -> {}",
                change.before.as_deref().unwrap_or("(none)"),
                change.after.as_deref().unwrap_or("(none)")
            )
        };
        if let Some(change) = &changes.management_unit {
            count(ChangeKind::ManagementUnitChanged, moved(change));
        }
        if let Some(change) = &changes.home_division {
            count(ChangeKind::HomeDivisionChanged, moved(change));
        }
        for item in &changes.licenses_added {
            count(ChangeKind::LicenseAdded, item.name.clone());
        }
        for item in &changes.licenses_removed {
            count(ChangeKind::LicenseRemoved, item.name.clone());
        }
        let codes: BTreeSet<&str> = changes
            .problems_gained
            .iter()
            .map(|problem| problem.code.as_str())
            .collect();
        for code in codes {
            count(ChangeKind::ProblemGained, code.to_owned());
        }
        let codes: BTreeSet<&str> = changes
            .problems_resolved
            .iter()
            .map(|problem| problem.code.as_str())
            .collect();
        for code in codes {
            count(ChangeKind::ProblemResolved, code.to_owned());
        }
        if !changes.problems_gained.is_empty() {
            self.problems_gained.add(user_name);
        }
    }

    /// How many users were recorded.
    pub fn users(&self) -> usize {
        self.users
    }

    /// How many of them change.
    pub fn users_changed(&self) -> usize {
        self.users_changed
    }

    /// Every change, by kind then change.
    pub fn changes(&self) -> Vec<ChangeSummary> {
        self.changes
            .iter()
            .map(|((kind, change), tally)| ChangeSummary {
                kind: *kind,
                change: change.clone(),
                count: tally.count,
                users: tally.users.iter().cloned().collect(),
            })
            .collect()
    }

    /// The users who gain at least one problem.
    pub fn problems_gained(&self) -> UsersSample {
        UsersSample {
            count: self.problems_gained.count,
            users: self.problems_gained.users.iter().cloned().collect(),
        }
    }
}

impl Serialize for DryRunSummary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View {
            users: usize,
            users_changed: usize,
            changes: Vec<ChangeSummary>,
            users_gaining_problems: UsersSample,
        }
        View {
            users: self.users,
            users_changed: self.users_changed,
            changes: self.changes(),
            users_gaining_problems: self.problems_gained(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlements::ProblemCode;
    use serde_json::json;

    fn entitlements(value: serde_json::Value) -> Entitlements {
        match serde_json::from_value(value) {
            Ok(entitlements) => entitlements,
            Err(error) => panic!("{error}"),
        }
    }

    fn check(before: serde_json::Value, after: serde_json::Value, expected: serde_json::Value) {
        let changes = EntitlementChanges::between(&entitlements(before), &entitlements(after));
        assert_eq!(serde_json::to_value(&changes).ok(), Some(expected.clone()));
        assert_eq!(changes.is_empty(), expected == json!({}));
    }

    #[test]
    fn changes_compare_values_not_credit() {
        let agent = |rule: &str| json!({"role": "Agent", "division": "Home", "rule": rule});
        check(
            json!({"grants": [agent("a")], "licenses": [{"name": "CX 1", "rule": "a"}]}),
            json!({"grants": [agent("b")], "licenses": [{"name": "CX 1", "rule": "b"}]}),
            json!({}),
        );
        check(
            json!({"skills": [{"name": "Billing", "proficiency": 2, "rule": "a"}],
                   "managementUnit": {"name": "Cebu", "rule": "a"}}),
            json!({"skills": [{"name": "Billing", "proficiency": 3, "rule": "a"}],
                   "homeDivision": {"name": "Home", "rule": "a"},
                   "problems": [{"code": "tie", "detail": "d", "rules": ["a", "b"]}]}),
            json!({
                "skillsAdded": [{"name": "Billing", "proficiency": 3, "rule": "a"}],
                "skillsRemoved": [{"name": "Billing", "proficiency": 2, "rule": "a"}],
                "managementUnit": {"before": "Cebu"},
                "homeDivision": {"after": "Home"},
                "problemsGained": [{"code": "tie", "detail": "d", "rules": ["a", "b"]}]
            }),
        );
    }

    #[test]
    fn summary_counts_changes_per_kind_and_users_gaining_problems() {
        let mut summary = DryRunSummary::new();
        let before = entitlements(json!({"managementUnit": {"name": "Cebu", "rule": "a"}}));
        let after = entitlements(json!({
            "grants": [{"role": "Agent", "division": "Home", "rule": "a"}],
            "problems": [
                {"code": "missingKey", "detail": "x", "rules": ["t"]},
                {"code": "missingKey", "detail": "y", "rules": ["u"]}
            ]
        }));
        let changes = EntitlementChanges::between(&before, &after);
        for user in ["zoe", "ana", "ben"] {
            summary.record(user, &changes);
        }
        summary.record("carl", &EntitlementChanges::default());
        assert_eq!(
            serde_json::to_value(&summary).ok(),
            Some(json!({
                "users": 4,
                "usersChanged": 3,
                "changes": [
                    {"kind": "grantAdded", "change": "Agent in Home", "count": 3, "users": ["ana", "ben", "zoe"]},
                    {"kind": "managementUnitChanged", "change": "Cebu -> (none)", "count": 3, "users": ["ana", "ben", "zoe"]},
                    {"kind": "problemGained", "change": "missingKey", "count": 3, "users": ["ana", "ben", "zoe"]}
                ],
                "usersGainingProblems": {"count": 3, "users": ["ana", "ben", "zoe"]}
            }))
        );
        assert_eq!(summary.problems_gained().count, 3);
        assert!(changes
            .problems_gained
            .iter()
            .all(|p| p.code == ProblemCode::MissingKey));
    }

    #[test]
    fn samples_are_the_first_names_whatever_the_order() {
        let mut forward = Tally::default();
        let mut backward = Tally::default();
        let names: Vec<String> = (0..50).map(|n| format!("user{n:02}")).collect();
        for name in &names {
            forward.add(name);
        }
        for name in names.iter().rev() {
            backward.add(name);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.count, 50);
        assert_eq!(forward.users.len(), MAX_SAMPLE_USERS);
        assert_eq!(forward.users.first().map(String::as_str), Some("user00"));
        assert_eq!(forward.users.last().map(String::as_str), Some("user19"));
    }
}
