//! Evaluation: which rules match a user, what they give, and how conflicts
//! are decided, as the crate documentation ("Decisions") describes.
//!
//! Contributions (what each matched rule, applied table or the defaults
//! give) and removals are gathered first; `RuleSet::resolve` then decides
//! each entitlement and records what became of every contribution, which
//! explain reports.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use muster_scim::filter::{CompiledFilter, LocatedResource};
use muster_scim::{ResourceType, SchemaRegistry};
use serde_json::Value;

use crate::catalog::ObjectKind;
use crate::entitlements::{Assignment, Entitlements, Grant, Problem, ProblemCode, Proficiency};
use crate::ruleset::{Grants, RuleSet, TableSets, DEFAULTS_RULE};
use crate::values::{key_value, member};

/// Where a contribution comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    Rule(usize),
    Table(usize),
    Defaults,
}

/// One thing a source gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    Grant {
        role: u32,
        division: u32,
    },
    Skill {
        skill: u32,
        proficiency: u8,
    },
    Language {
        language: u32,
        proficiency: u8,
    },
    License(u32),
    /// The license a kept grant's role needs.
    RoleLicense {
        license: u32,
        role: u32,
    },
    ManagementUnit(u32),
    HomeDivision(u32),
}

/// One thing a source takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Removal {
    Role { role: u32, division: Option<u32> },
    Skill(u32),
    Language(u32),
    License(u32),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Contribution {
    pub(crate) item: Item,
    pub(crate) source: Source,
    pub(crate) priority: i64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RemovalEntry {
    pub(crate) removal: Removal,
    pub(crate) source: Source,
    pub(crate) priority: i64,
}

/// What became of a contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// It is in the result, credited to its source.
    Kept,
    /// It is in the result, credited to another source that gave it too.
    AlsoGiven { credited: Source },
    /// Another source of higher priority (or, for proficiencies, a higher
    /// value at the same priority) decided; `None` when that was a tie.
    Overridden { by: Option<Source> },
    /// A removal of equal or higher priority took it away.
    Removed { by: Source },
    /// It tied with a different value at the same priority.
    Tied,
    /// The user is inactive.
    Inactive,
}

/// What a table did for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableHit {
    /// Its `when` does not hold.
    NotApplied,
    /// The key attribute is missing.
    Missing,
    /// The key value has no row.
    Unknown(String),
    /// The key value found a row.
    Found { row: usize, value: String },
}

/// Everything evaluation decided, for [`RuleSet::evaluate`] and explain.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) active: bool,
    /// Per rule, whether it matched.
    pub(crate) matched: Vec<bool>,
    pub(crate) tables: Vec<TableHit>,
    pub(crate) defaults_applied: bool,
    pub(crate) contributions: Vec<Contribution>,
    pub(crate) statuses: Vec<Status>,
    pub(crate) removals: Vec<RemovalEntry>,
    pub(crate) entitlements: Entitlements,
}

/// Whether the user is active: `active` is not `false`.
pub(crate) fn is_active(user: &Value) -> bool {
    member(user, "active").and_then(Value::as_bool) != Some(false)
}

impl RuleSet {
    /// The entitlements of `user`, a canonical User (muster-scim's
    /// canonical JSON, with its computed `groups`).
    ///
    /// `registry` and `resource_type` are those the rule set was validated
    /// against ([`RuleSet::validate`]); a path they do not know matches
    /// nothing. Deterministic: equal inputs give equal (and byte-equal
    /// serialised) results, whatever the order of rules, tables or rows.
    /// How conflicts, removals and inactive users are decided: the crate
    /// documentation, "Decisions".
    pub fn evaluate(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        user: &Value,
    ) -> Entitlements {
        self.outcome(registry, resource_type, user, true)
            .entitlements
    }

    /// The ids of the rules that match `user` and of the tables that apply
    /// to it (their `when` holds), in document order: what coverage counts.
    pub fn matched_rules(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        user: &Value,
    ) -> Vec<&str> {
        let outcome = self.outcome(registry, resource_type, user, true);
        let rules = self
            .rules
            .iter()
            .zip(&outcome.matched)
            .filter(|(_, matched)| **matched)
            .map(|(rule, _)| rule.id.as_str());
        let tables = self
            .tables
            .iter()
            .zip(&outcome.tables)
            .filter(|(_, hit)| **hit != TableHit::NotApplied)
            .map(|(table, _)| table.id.as_str());
        rules.chain(tables).collect()
    }

    /// The id of a source.
    pub(crate) fn source_id(&self, source: Source) -> &str {
        match source {
            Source::Rule(index) => self.rules.get(index).map_or("", |rule| rule.id.as_str()),
            Source::Table(index) => self.tables.get(index).map_or("", |table| table.id.as_str()),
            Source::Defaults => DEFAULTS_RULE,
        }
    }

    pub(crate) fn outcome(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        user: &Value,
        use_index: bool,
    ) -> Outcome {
        let active = is_active(user);
        let candidates = if use_index {
            self.index
                .candidates(registry, resource_type, user, self.rules.len())
        } else {
            vec![true; self.rules.len()]
        };
        // Each path of the conditions is resolved and looked up in the user
        // once, however many conditions name it.
        let located = LocatedResource::new(user, registry, resource_type, &self.compiled.paths);
        let holds = |when: Option<&Option<CompiledFilter>>| match when {
            Some(when) => when.as_ref().is_none_or(|when| when.matches(&located)),
            // Not compiled (cannot happen: every rule set is compiled when read).
            None => false,
        };
        let matched: Vec<bool> = candidates
            .iter()
            .enumerate()
            .map(|(position, candidate)| *candidate && holds(self.compiled.rules.get(position)))
            .collect();
        let tables: Vec<TableHit> = self
            .tables
            .iter()
            .enumerate()
            .map(|(position, table)| {
                let applies = holds(self.compiled.tables.get(position));
                if !applies {
                    return TableHit::NotApplied;
                }
                match key_value(registry, resource_type, user, &table.key) {
                    None => TableHit::Missing,
                    Some(value) => match table.index.get(&table.normalize(&value)) {
                        Some(row) => TableHit::Found { row: *row, value },
                        None => TableHit::Unknown(value),
                    },
                }
            })
            .collect();
        let mut collector = Collector::default();
        for (rule, _) in self.rules.iter().zip(&matched).filter(|(_, m)| **m) {
            collector.add(&rule.grants, Source::Rule(rule.index), rule.priority);
        }
        for (table, hit) in self.tables.iter().zip(&tables) {
            if let TableHit::Found { row, .. } = hit {
                if let Some(row) = table.rows.get(*row) {
                    collector.add(&row.grants, Source::Table(table.position), table.priority);
                }
            }
        }
        let nothing_applied =
            !matched.iter().any(|m| *m) && tables.iter().all(|hit| *hit == TableHit::NotApplied);
        let defaults_applied = match (&self.defaults, nothing_applied) {
            (Some(defaults), true) => {
                collector.add(defaults, Source::Defaults, 0);
                true
            }
            _ => false,
        };
        let mut outcome = Outcome {
            active,
            matched,
            tables,
            defaults_applied,
            contributions: collector.contributions,
            statuses: Vec::new(),
            removals: collector.removals,
            entitlements: Entitlements::default(),
        };
        self.resolve(&mut outcome);
        outcome
    }

    /// The strongest removal of each target: the highest priority, then the
    /// smallest id. A contribution is removed when the strongest removal of
    /// its target (or, for a grant, of its role in every division) has at
    /// least its priority, so looking at the strongest is enough.
    fn strongest_removals(&self, removals: &[RemovalEntry]) -> HashMap<Removal, RemovalEntry> {
        let mut strongest: HashMap<Removal, RemovalEntry> = HashMap::new();
        for entry in removals {
            let stronger = strongest.get(&entry.removal).is_none_or(|current| {
                entry.priority > current.priority
                    || (entry.priority == current.priority
                        && self.source_id(entry.source) < self.source_id(current.source))
            });
            if stronger {
                strongest.insert(entry.removal, *entry);
            }
        }
        strongest
    }

    /// The removal that takes `item` away at `priority`, if any.
    fn removed_by(
        &self,
        strongest: &HashMap<Removal, RemovalEntry>,
        item: Item,
        priority: i64,
    ) -> Option<Source> {
        let targets: [Option<Removal>; 2] = match item {
            Item::Grant { role, division } => [
                Some(Removal::Role {
                    role,
                    division: Some(division),
                }),
                Some(Removal::Role {
                    role,
                    division: None,
                }),
            ],
            Item::Skill { skill, .. } => [Some(Removal::Skill(skill)), None],
            Item::Language { language, .. } => [Some(Removal::Language(language)), None],
            Item::License(license) => [Some(Removal::License(license)), None],
            Item::RoleLicense { .. } | Item::ManagementUnit(_) | Item::HomeDivision(_) => {
                [None, None]
            }
        };
        targets
            .into_iter()
            .flatten()
            .filter_map(|target| strongest.get(&target))
            .filter(|entry| entry.priority >= priority)
            .min_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then_with(|| self.source_id(a.source).cmp(self.source_id(b.source)))
            })
            .map(|entry| entry.source)
    }

    fn resolve(&self, outcome: &mut Outcome) {
        let catalog = &self.catalog;
        let mut statuses = vec![Status::Kept; outcome.contributions.len()];
        let mut entitlements = Entitlements::default();

        // Grants, skills, languages and explicit licenses: removals, then
        // the best contribution of each slot.
        let strongest = self.strongest_removals(&outcome.removals);
        let mut best: BTreeMap<(u8, u32, u32), usize> = BTreeMap::new();
        for (index, contribution) in outcome.contributions.iter().enumerate() {
            let Some(slot) = slot(contribution.item) else {
                continue;
            };
            if !outcome.active {
                if let Some(status) = statuses.get_mut(index) {
                    *status = Status::Inactive;
                }
                continue;
            }
            if let Some(by) = self.removed_by(&strongest, contribution.item, contribution.priority)
            {
                if let Some(status) = statuses.get_mut(index) {
                    *status = Status::Removed { by };
                }
                continue;
            }
            let keep_current = best.get(&slot).is_some_and(|current| {
                outcome
                    .contributions
                    .get(*current)
                    .is_some_and(|current| !self.wins(contribution, current))
            });
            if !keep_current {
                best.insert(slot, index);
            }
        }
        // Statuses of the contributions that lost to a best one.
        for (index, contribution) in outcome.contributions.iter().enumerate() {
            if statuses.get(index) != Some(&Status::Kept) {
                continue;
            }
            let Some(slot) = slot(contribution.item) else {
                continue;
            };
            let Some(winner_index) = best.get(&slot).copied() else {
                continue;
            };
            if winner_index == index {
                continue;
            }
            let Some(winner) = outcome.contributions.get(winner_index) else {
                continue;
            };
            let status = if winner.item == contribution.item {
                Status::AlsoGiven {
                    credited: winner.source,
                }
            } else {
                Status::Overridden {
                    by: Some(winner.source),
                }
            };
            if let Some(entry) = statuses.get_mut(index) {
                *entry = status;
            }
        }
        // Licenses the kept roles need, with the role's source and priority.
        let mut role_licenses = Vec::new();
        for (index, contribution) in outcome.contributions.iter().enumerate() {
            let Item::Grant { role, .. } = contribution.item else {
                continue;
            };
            if !matches!(
                statuses.get(index),
                Some(Status::Kept | Status::AlsoGiven { .. })
            ) {
                continue;
            }
            if let Some(Some(license)) = catalog.role_license.get(role as usize) {
                role_licenses.push(Contribution {
                    item: Item::RoleLicense {
                        license: *license,
                        role,
                    },
                    ..*contribution
                });
            }
        }
        for contribution in role_licenses {
            let Item::RoleLicense { license, .. } = contribution.item else {
                continue;
            };
            let index = outcome.contributions.len();
            outcome.contributions.push(contribution);
            statuses.push(Status::Kept);
            let slot = (LICENSE_SLOT, license, 0);
            match best.get(&slot).copied() {
                Some(current)
                    if outcome
                        .contributions
                        .get(current)
                        .is_some_and(|current| !self.wins(&contribution, current)) =>
                {
                    let credited = outcome
                        .contributions
                        .get(current)
                        .map_or(Source::Defaults, |current| current.source);
                    if let Some(status) = statuses.get_mut(index) {
                        *status = Status::AlsoGiven { credited };
                    }
                }
                previous => {
                    if let Some(previous) = previous {
                        let credited = contribution.source;
                        if let Some(status) = statuses.get_mut(previous) {
                            *status = Status::AlsoGiven { credited };
                        }
                    }
                    best.insert(slot, index);
                }
            }
        }
        for (slot, index) in &best {
            let Some(contribution) = outcome.contributions.get(*index) else {
                continue;
            };
            let rule = self.source_id(contribution.source).to_owned();
            match (slot.0, contribution.item) {
                (GRANT_SLOT, Item::Grant { role, division }) => entitlements.grants.push(Grant {
                    role: catalog.name(ObjectKind::Role, role).to_owned(),
                    division: catalog.name(ObjectKind::Division, division).to_owned(),
                    rule,
                }),
                (SKILL_SLOT, Item::Skill { skill, proficiency }) => {
                    entitlements.skills.push(Proficiency {
                        name: catalog.name(ObjectKind::Skill, skill).to_owned(),
                        proficiency,
                        rule,
                    })
                }
                (
                    LANGUAGE_SLOT,
                    Item::Language {
                        language,
                        proficiency,
                    },
                ) => entitlements.languages.push(Proficiency {
                    name: catalog.name(ObjectKind::Language, language).to_owned(),
                    proficiency,
                    rule,
                }),
                (LICENSE_SLOT, Item::License(license) | Item::RoleLicense { license, .. }) => {
                    entitlements.licenses.push(Assignment {
                        name: catalog.name(ObjectKind::License, license).to_owned(),
                        rule,
                    })
                }
                _ => {}
            }
        }

        // Single-valued: management unit and home division.
        let mut top_priority: [Option<i64>; 2] = [None, None];
        for (slot, kind) in [ObjectKind::ManagementUnit, ObjectKind::Division]
            .into_iter()
            .enumerate()
        {
            let value_of = |item: Item| match (kind, item) {
                (ObjectKind::ManagementUnit, Item::ManagementUnit(unit)) => Some(unit),
                (ObjectKind::Division, Item::HomeDivision(division)) => Some(division),
                _ => None,
            };
            let given: Vec<(usize, u32, &Contribution)> = outcome
                .contributions
                .iter()
                .enumerate()
                .filter_map(|(index, c)| value_of(c.item).map(|value| (index, value, c)))
                .collect();
            let Some(top) = given.iter().map(|(_, _, c)| c.priority).max() else {
                continue;
            };
            if let Some(entry) = top_priority.get_mut(slot) {
                *entry = Some(top);
            }
            let at_top: BTreeSet<u32> = given
                .iter()
                .filter(|(_, _, c)| c.priority == top)
                .map(|(_, value, _)| *value)
                .collect();
            if at_top.len() == 1 {
                let winner = given
                    .iter()
                    .filter(|(_, _, c)| c.priority == top)
                    .min_by(|a, b| self.source_id(a.2.source).cmp(self.source_id(b.2.source)));
                let Some((winner_index, value, winner)) = winner.copied() else {
                    continue;
                };
                for (index, _, c) in &given {
                    if *index == winner_index {
                        continue;
                    }
                    if let Some(status) = statuses.get_mut(*index) {
                        *status = if c.priority == top {
                            Status::AlsoGiven {
                                credited: winner.source,
                            }
                        } else {
                            Status::Overridden {
                                by: Some(winner.source),
                            }
                        };
                    }
                }
                let assignment = Assignment {
                    name: catalog.name(kind, value).to_owned(),
                    rule: self.source_id(winner.source).to_owned(),
                };
                match kind {
                    ObjectKind::ManagementUnit => entitlements.management_unit = Some(assignment),
                    _ => entitlements.home_division = Some(assignment),
                }
            } else {
                let mut rules = BTreeSet::new();
                for (index, _, c) in &given {
                    if let Some(status) = statuses.get_mut(*index) {
                        if c.priority == top {
                            *status = Status::Tied;
                            rules.insert(self.source_id(c.source).to_owned());
                        } else {
                            *status = Status::Overridden { by: None };
                        }
                    }
                }
                let values: BTreeSet<String> = at_top
                    .iter()
                    .map(|value| format!("'{}'", catalog.name(kind, *value)))
                    .collect();
                let values: Vec<String> = values.into_iter().collect();
                let rule_list: Vec<String> = rules.iter().map(|id| format!("'{id}'")).collect();
                entitlements.problems.push(Problem {
                    code: ProblemCode::Tie,
                    detail: format!(
                        "{}: rules {} of the same priority {top} give different values ({}); none is set",
                        kind_words(kind),
                        rule_list.join(", "),
                        values.join(", ")
                    ),
                    rules: rules.into_iter().collect(),
                });
            }
        }

        // Table problems.
        for (table, hit) in self.tables.iter().zip(&outcome.tables) {
            let (code, detail) = match hit {
                TableHit::NotApplied | TableHit::Found { .. } => continue,
                TableHit::Missing => (
                    ProblemCode::MissingKey,
                    format!(
                        "table '{}' looks up {}, which this user does not have; it gives no {}",
                        table.id,
                        table.key,
                        kind_words(table.sets.kind())
                    ),
                ),
                TableHit::Unknown(value) => (
                    ProblemCode::UnknownKey,
                    format!(
                        "table '{}' has no row for {} '{value}'; it gives no {}",
                        table.id,
                        table.key,
                        kind_words(table.sets.kind())
                    ),
                ),
            };
            let relevant = match table.sets {
                TableSets::ManagementUnit => {
                    top_priority[0].is_none_or(|top| table.priority >= top)
                }
                TableSets::HomeDivision => top_priority[1].is_none_or(|top| table.priority >= top),
                TableSets::Role { .. }
                | TableSets::Skill { .. }
                | TableSets::Language { .. }
                | TableSets::License => outcome.active,
            };
            if relevant {
                entitlements.problems.push(Problem {
                    code,
                    detail,
                    rules: vec![table.id.clone()],
                });
            }
        }
        entitlements.sort();
        outcome.statuses = statuses;
        outcome.entitlements = entitlements;
    }

    /// Whether `a` beats `b` for the same slot: a skill or language compares
    /// priority, then proficiency, then id; anything else priority then id.
    fn wins(&self, a: &Contribution, b: &Contribution) -> bool {
        let proficiency = |item: Item| match item {
            Item::Skill { proficiency, .. } | Item::Language { proficiency, .. } => proficiency,
            _ => 0,
        };
        match a.priority.cmp(&b.priority) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match proficiency(a.item).cmp(&proficiency(b.item)) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => self.source_id(a.source) < self.source_id(b.source),
            },
        }
    }
}

const GRANT_SLOT: u8 = 0;
const SKILL_SLOT: u8 = 1;
const LANGUAGE_SLOT: u8 = 2;
const LICENSE_SLOT: u8 = 3;

/// The slot a multi-valued entitlement fills (kind, object, division of a
/// grant): contributions to one slot are one entitlement. `None` for the
/// single-valued ones.
fn slot(item: Item) -> Option<(u8, u32, u32)> {
    match item {
        Item::Grant { role, division } => Some((GRANT_SLOT, role, division)),
        Item::Skill { skill, .. } => Some((SKILL_SLOT, skill, 0)),
        Item::Language { language, .. } => Some((LANGUAGE_SLOT, language, 0)),
        Item::License(license) | Item::RoleLicense { license, .. } => {
            Some((LICENSE_SLOT, license, 0))
        }
        Item::ManagementUnit(_) | Item::HomeDivision(_) => None,
    }
}

/// A kind in words for problem details.
pub(crate) fn kind_words(kind: ObjectKind) -> &'static str {
    kind.as_str()
}

/// Gathers contributions and removals from matched sources.
#[derive(Debug, Default)]
struct Collector {
    contributions: Vec<Contribution>,
    removals: Vec<RemovalEntry>,
}

impl Collector {
    fn add(&mut self, grants: &Grants, source: Source, priority: i64) {
        let mut give = |item: Item| {
            self.contributions.push(Contribution {
                item,
                source,
                priority,
            })
        };
        for (role, division) in &grants.roles {
            give(Item::Grant {
                role: *role,
                division: *division,
            });
        }
        for (skill, proficiency) in &grants.skills {
            give(Item::Skill {
                skill: *skill,
                proficiency: *proficiency,
            });
        }
        for (language, proficiency) in &grants.languages {
            give(Item::Language {
                language: *language,
                proficiency: *proficiency,
            });
        }
        for license in &grants.licenses {
            give(Item::License(*license));
        }
        if let Some(unit) = grants.management_unit {
            give(Item::ManagementUnit(unit));
        }
        if let Some(division) = grants.home_division {
            give(Item::HomeDivision(division));
        }
        let mut take = |removal: Removal| {
            self.removals.push(RemovalEntry {
                removal,
                source,
                priority,
            })
        };
        for (role, division) in &grants.remove_roles {
            take(Removal::Role {
                role: *role,
                division: *division,
            });
        }
        for skill in &grants.remove_skills {
            take(Removal::Skill(*skill));
        }
        for language in &grants.remove_languages {
            take(Removal::Language(*language));
        }
        for license in &grants.remove_licenses {
            take(Removal::License(*license));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CATALOG: &str = r#"
[catalog]
divisions = ["Home", "Sales", "Support"]
licenses = ["CX 1", "CX 3"]
roles = [{ name = "Agent", license = "CX 1" }, { name = "Evaluator", license = "CX 3" }, "Viewer"]
skills = ["Billing"]
languages = ["English"]
management_units = [{ name = "Manila", division = "Home" }, { name = "Cebu", division = "Home" }]
"#;

    /// Evaluates `user` under the catalog plus `rules` and compares the JSON.
    fn check(rules: &str, user: Value, expected: Value) {
        let text = format!("{CATALOG}{rules}");
        let rule_set = match RuleSet::parse(&text) {
            Ok(rule_set) => rule_set,
            Err(errors) => panic!("{errors}"),
        };
        let registry = SchemaRegistry::builtin();
        let Some(user_type) = registry.resource_type("User") else {
            panic!("User");
        };
        let got = rule_set.evaluate(&registry, user_type, &user).to_json();
        assert_eq!(got, expected, "{rules}");
        let unindexed = rule_set.outcome(&registry, user_type, &user, false);
        assert_eq!(
            unindexed.entitlements.to_json(),
            expected,
            "without the index"
        );
    }

    fn titled(title: &str) -> Value {
        json!({"userName": "u", "title": title, "groups": [{"value": "1", "display": "Agents"}]})
    }

    #[test]
    fn removals_win_at_equal_or_higher_priority_only() {
        let rules = r#"
[[rules]]
id = "give"
priority = 5
when = 'title pr'
grants = [{ role = "Agent", division = "Sales" }, { role = "Agent", division = "Support" }]
skills = [{ name = "Billing", proficiency = 2 }]

[[rules]]
id = "take-sales"
priority = 5
when = 'title eq "a"'
remove_roles = [{ role = "Agent", division = "Sales" }]

[[rules]]
id = "take-skill-too-low"
priority = 4
when = 'title eq "a"'
remove_skills = ["billing"]
"#;
        check(
            rules,
            titled("a"),
            json!({
                "grants": [{"role": "Agent", "division": "Support", "rule": "give"}],
                "skills": [{"name": "Billing", "proficiency": 2, "rule": "give"}],
                "licenses": [{"name": "CX 1", "rule": "give"}]
            }),
        );
        check(
            &rules.replace(
                "remove_roles = [{ role = \"Agent\", division = \"Sales\" }]",
                "remove_roles = [\"Agent\"]",
            ),
            titled("a"),
            json!({"skills": [{"name": "Billing", "proficiency": 2, "rule": "give"}]}),
        );
    }

    #[test]
    fn proficiency_follows_priority_then_the_highest_value() {
        let rules = |second_priority: i64| {
            format!(
                r#"
[[rules]]
id = "b-high"
priority = 1
when = 'title pr'
skills = [{{ name = "Billing", proficiency = 2 }}]

[[rules]]
id = "a-other"
priority = {second_priority}
when = 'title pr'
skills = [{{ name = "Billing", proficiency = 4 }}]
languages = [{{ name = "English", proficiency = 1 }}]

[[rules]]
id = "c-same"
priority = {second_priority}
when = 'title pr'
languages = [{{ name = "English", proficiency = 1 }}]
"#
            )
        };
        check(
            &rules(0),
            titled("x"),
            json!({
                "skills": [{"name": "Billing", "proficiency": 2, "rule": "b-high"}],
                "languages": [{"name": "English", "proficiency": 1, "rule": "a-other"}]
            }),
        );
        check(
            &rules(1),
            titled("x"),
            json!({
                "skills": [{"name": "Billing", "proficiency": 4, "rule": "a-other"}],
                "languages": [{"name": "English", "proficiency": 1, "rule": "a-other"}]
            }),
        );
    }

    #[test]
    fn licenses_follow_roles_and_resist_license_removals() {
        let rules = r#"
[[rules]]
id = "evaluators"
priority = 3
when = 'title eq "QA"'
grants = [{ role = "Evaluator", division = "Support" }]
licenses = ["CX 1"]

[[rules]]
id = "no-licenses"
priority = 9
when = 'title pr'
remove_licenses = ["CX 3", "CX 1"]
"#;
        check(
            rules,
            titled("QA"),
            json!({
                "grants": [{"role": "Evaluator", "division": "Support", "rule": "evaluators"}],
                "licenses": [{"name": "CX 3", "rule": "evaluators"}]
            }),
        );
    }

    #[test]
    fn single_values_by_priority_with_ties_as_problems() {
        let rules = r#"
[[rules]]
id = "manila"
when = 'title eq "a" or title eq "b"'
management_unit = "Manila"
home_division = "Sales"

[[rules]]
id = "cebu"
when = 'title eq "b" or title eq "c"'
management_unit = "Cebu"
home_division = "sales"

[[rules]]
id = "cebu-override"
priority = 1
when = 'title eq "c"'
management_unit = "Manila"
"#;
        check(
            rules,
            titled("a"),
            json!({
                "managementUnit": {"name": "Manila", "rule": "manila"},
                "homeDivision": {"name": "Sales", "rule": "manila"}
            }),
        );
        check(
            rules,
            titled("b"),
            json!({
                "homeDivision": {"name": "Sales", "rule": "cebu"},
                "problems": [{
                    "code": "tie",
                    "detail": "management unit: rules 'cebu', 'manila' of the same priority 0 give different values ('Cebu', 'Manila'); none is set",
                    "rules": ["cebu", "manila"]
                }]
            }),
        );
        check(
            rules,
            titled("c"),
            json!({
                "managementUnit": {"name": "Manila", "rule": "cebu-override"},
                "homeDivision": {"name": "Sales", "rule": "cebu"}
            }),
        );
    }

    #[test]
    fn tables_match_trimmed_keys_case_insensitively_unless_told() {
        let table = |case_sensitive: bool| {
            format!(
                r#"
[[tables]]
id = "units"
key = "title"
sets = "management_unit"
case_sensitive = {case_sensitive}
rows = {{ "CC-4100" = "manila" }}
"#
            )
        };
        let manila = json!({"managementUnit": {"name": "Manila", "rule": "units"}});
        check(&table(false), titled(" cc-4100 "), manila.clone());
        check(&table(true), titled("CC-4100"), manila);
        check(
            &table(true),
            titled("cc-4100"),
            json!({"problems": [{
                "code": "unknownKey",
                "detail": "table 'units' has no row for title 'cc-4100'; it gives no management unit",
                "rules": ["units"]
            }]}),
        );
    }

    #[test]
    fn a_table_problem_is_reported_only_when_the_table_could_decide() {
        let rules = |rule_priority: i64| {
            format!(
                r#"
[[rules]]
id = "agents"
priority = {rule_priority}
when = 'groups[display eq "Agents"]'
management_unit = "Cebu"

[[tables]]
id = "units"
priority = 5
key = "nickName"
sets = "management_unit"
rows = {{ "x" = "Manila" }}
"#
            )
        };
        check(
            &rules(6),
            titled("a"),
            json!({"managementUnit": {"name": "Cebu", "rule": "agents"}}),
        );
        check(
            &rules(5),
            titled("a"),
            json!({
                "managementUnit": {"name": "Cebu", "rule": "agents"},
                "problems": [{
                    "code": "missingKey",
                    "detail": "table 'units' looks up nickName, which this user does not have; it gives no management unit",
                    "rules": ["units"]
                }]
            }),
        );
    }

    #[test]
    fn defaults_only_when_nothing_applies() {
        let rules = r#"
[defaults]
grants = [{ role = "Viewer", division = "Home" }]
management_unit = "Cebu"

[[rules]]
id = "agents"
when = 'groups[display eq "Agents"]'
grants = [{ role = "Agent", division = "Home" }]

[[tables]]
id = "units"
when = 'title pr'
key = "nickName"
sets = "management_unit"
rows = { "x" = "Manila" }
"#;
        let viewer = json!({
            "grants": [{"role": "Viewer", "division": "Home", "rule": "defaults"}],
            "managementUnit": {"name": "Cebu", "rule": "defaults"}
        });
        check(rules, json!({"userName": "nobody"}), viewer);
        // The table applies (title present) and finds no key: flagged, and
        // the default unit is not handed out instead.
        check(
            rules,
            json!({"userName": "n", "title": "x"}),
            json!({"problems": [{
                "code": "missingKey",
                "detail": "table 'units' looks up nickName, which this user does not have; it gives no management unit",
                "rules": ["units"]
            }]}),
        );
    }

    #[test]
    fn inactive_users_keep_placement_but_hold_nothing() {
        let rules = r#"
[[rules]]
id = "agents"
when = 'groups[display eq "Agents"]'
grants = [{ role = "Agent", division = "Home" }]
skills = [{ name = "Billing", proficiency = 1 }]
licenses = ["CX 3"]
management_unit = "Manila"

[[tables]]
id = "roles"
key = "nickName"
sets = "role"
division = "Sales"
rows = { "x" = "Agent" }
"#;
        let mut user = titled("t");
        user["active"] = json!(false);
        check(
            rules,
            user,
            json!({"managementUnit": {"name": "Manila", "rule": "agents"}}),
        );
    }

    #[test]
    fn the_index_only_skips_rules_that_cannot_match() {
        let rules = r#"
[[rules]]
id = "plain"
when = 'groups[display eq "Agents"]'
licenses = ["CX 1"]

[[rules]]
id = "and"
when = 'title pr and groups.display eq "AGENTS"'
licenses = ["CX 3"]

[[rules]]
id = "or"
when = 'groups[display eq "Other"] or groups[type eq "direct" and display eq "agents"]'
grants = [{ role = "Viewer", division = "Home" }]

[[rules]]
id = "or-not-indexed"
when = 'groups[display eq "Other"] or title sw "t"'
grants = [{ role = "Viewer", division = "Sales" }]

[[rules]]
id = "not"
when = 'not (groups[display eq "Other"])'
grants = [{ role = "Viewer", division = "Support" }]
"#;
        let text = format!("{CATALOG}{rules}");
        let Ok(rule_set) = RuleSet::parse(&text) else {
            panic!("parses");
        };
        let indexed: Vec<bool> = (0..5).map(|n| rule_set.index.is_indexed(n)).collect();
        assert_eq!(indexed, [true, true, true, false, false]);
        let user = json!({
            "userName": "u",
            "title": "t",
            "groups": [{"value": "1", "display": "Agents", "type": "direct"}]
        });
        check(
            rules,
            user,
            json!({
                "grants": [
                    {"role": "Viewer", "division": "Home", "rule": "or"},
                    {"role": "Viewer", "division": "Sales", "rule": "or-not-indexed"},
                    {"role": "Viewer", "division": "Support", "rule": "not"}
                ],
                "licenses": [{"name": "CX 1", "rule": "plain"}, {"name": "CX 3", "rule": "and"}]
            }),
        );
    }
}
