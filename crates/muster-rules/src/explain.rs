//! Explain: why a user has each entitlement, and why each rule that did not
//! match did not.
//!
//! For a rule that matched, the evidence is what made its `when` hold: every
//! operand of an `and`, the first operand of an `or` that holds. For a rule
//! that did not match, it is what made it fail: the first failing operand of
//! an `and`, every operand of an `or`. `not (x)` swaps the two. Each piece of
//! evidence is one comparison with the path it reads and the values found
//! there in the user (at most [`crate::MAX_SHOWN_VALUES`]).

use std::collections::HashMap;
use std::fmt;

use muster_scim::{AttrPath, Filter, ResourceType, SchemaRegistry};
use serde::Serialize;
use serde_json::Value;

use crate::catalog::ObjectKind;
use crate::entitlements::Entitlements;
use crate::eval::{Item, Outcome, Removal, Source, Status, TableHit};
use crate::ruleset::{RuleSet, DEFAULTS_RULE};
use crate::values::{member, values_at, MAX_SHOWN_VALUES};

/// Why a user has the entitlements it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// Whether the user is active (an inactive user holds no grants, skills,
    /// languages or licenses).
    pub active: bool,
    /// Whether `[defaults]` applied (no rule matched, no table applied).
    pub defaults_applied: bool,
    /// The result, as [`RuleSet::evaluate`] gives it.
    pub entitlements: Entitlements,
    /// Each entitlement held, with the rule credited and its evidence.
    pub held: Vec<ExplainedEntitlement>,
    /// Every rule and table in document order, then the defaults when they
    /// applied.
    pub rules: Vec<RuleTrace>,
}

/// One entitlement the user holds and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainedEntitlement {
    /// The entitlement in words (`role 'Agent' in 'Support'`).
    pub entitlement: String,
    /// The rule credited.
    pub rule: String,
    /// The attribute values that made the rule apply.
    pub evidence: Vec<Evidence>,
}

/// What kind of source a trace describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TraceKind {
    /// A condition rule (`[[rules]]`).
    Rule,
    /// A table rule (`[[tables]]`).
    Table,
    /// The `[defaults]`.
    Defaults,
}

/// What one rule did for the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTrace {
    /// The rule id.
    pub rule: String,
    /// Rule, table or defaults.
    pub kind: TraceKind,
    /// Its priority.
    pub priority: i64,
    /// Its `when`, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Whether it matched (for a table: its `when` held).
    pub matched: bool,
    /// Why it matched or why not.
    pub evidence: Vec<Evidence>,
    /// For a table: the key looked up and what was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<Lookup>,
    /// What it gave or took away, and what became of each.
    pub effects: Vec<Effect>,
}

/// One comparison of a condition, with the values it read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The comparison (`title eq "Level 2 Support"`).
    pub condition: String,
    /// The path read, canonical.
    pub path: String,
    /// The values found there (empty: absent).
    pub values: Vec<Value>,
    /// Whether the comparison holds.
    pub holds: bool,
}

/// A table's lookup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    /// The key attribute.
    pub key: String,
    /// The user's value (absent: the key is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The row found, as written in the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
}

/// Something a rule gave or took away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// The entitlement in words.
    pub entitlement: String,
    /// What became of it (`held`, `removed by 'x'`, ...).
    pub outcome: String,
}

impl RuleSet {
    /// Explains the entitlements of `user` (same inputs as
    /// [`RuleSet::evaluate`], whose result it carries).
    pub fn explain(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        user: &Value,
    ) -> Explanation {
        let outcome = self.outcome(registry, resource_type, user, false);
        let reader = EvidenceReader {
            registry,
            resource_type,
            user,
        };
        let mut effects = self.effects(&outcome);
        let mut effects_of = |source: Source| effects.remove(&source).unwrap_or_default();
        let mut rules = Vec::new();
        for (rule, matched) in self.rules.iter().zip(&outcome.matched) {
            let evidence = match &rule.when {
                Some(when) => reader.why(&when.filter, *matched),
                None => Vec::new(),
            };
            rules.push(RuleTrace {
                rule: rule.id.clone(),
                kind: TraceKind::Rule,
                priority: rule.priority,
                when: rule.when.as_ref().map(|when| when.text.clone()),
                matched: *matched,
                evidence,
                lookup: None,
                effects: effects_of(Source::Rule(rule.index)),
            });
        }
        for (table, hit) in self.tables.iter().zip(&outcome.tables) {
            let applied = *hit != TableHit::NotApplied;
            let evidence = match &table.when {
                Some(when) => reader.why(&when.filter, applied),
                None => Vec::new(),
            };
            let lookup = applied.then(|| Lookup {
                key: table.key.to_string(),
                value: match hit {
                    TableHit::Unknown(value) | TableHit::Found { value, .. } => Some(value.clone()),
                    TableHit::NotApplied | TableHit::Missing => None,
                },
                row: match hit {
                    TableHit::Found { row, .. } => table.rows.get(*row).map(|row| row.key.clone()),
                    TableHit::NotApplied | TableHit::Missing | TableHit::Unknown(_) => None,
                },
            });
            rules.push(RuleTrace {
                rule: table.id.clone(),
                kind: TraceKind::Table,
                priority: table.priority,
                when: table.when.as_ref().map(|when| when.text.clone()),
                matched: applied,
                evidence,
                lookup,
                effects: effects_of(Source::Table(table.position)),
            });
        }
        if outcome.defaults_applied {
            rules.push(RuleTrace {
                rule: DEFAULTS_RULE.to_owned(),
                kind: TraceKind::Defaults,
                priority: 0,
                when: None,
                matched: true,
                evidence: Vec::new(),
                lookup: None,
                effects: effects_of(Source::Defaults),
            });
        }
        let mut held = Vec::new();
        for (contribution, status) in outcome.contributions.iter().zip(&outcome.statuses) {
            if *status != Status::Kept || !self.is_held(&outcome, contribution.item) {
                continue;
            }
            let position = match contribution.source {
                Source::Rule(index) => Some(index),
                Source::Table(index) => Some(self.rules.len() + index),
                Source::Defaults => Some(self.rules.len() + self.tables.len()),
            };
            let source_trace = position.and_then(|position| rules.get(position));
            let mut evidence = source_trace
                .map(|trace| trace.evidence.clone())
                .unwrap_or_default();
            if let Some(lookup) = source_trace.and_then(|trace| trace.lookup.as_ref()) {
                evidence.push(Evidence {
                    condition: format!(
                        "{} is a key of table '{}'",
                        lookup.key,
                        self.source_id(contribution.source)
                    ),
                    path: lookup.key.clone(),
                    values: lookup
                        .value
                        .iter()
                        .map(|value| Value::String(value.clone()))
                        .collect(),
                    holds: true,
                });
            }
            held.push(ExplainedEntitlement {
                entitlement: self.describe(contribution.item),
                rule: self.source_id(contribution.source).to_owned(),
                evidence,
            });
        }
        held.sort_by(|a, b| a.entitlement.cmp(&b.entitlement));
        Explanation {
            active: outcome.active,
            defaults_applied: outcome.defaults_applied,
            entitlements: outcome.entitlements,
            held,
            rules,
        }
    }

    /// Whether the kept contribution `item` is in the result (a kept
    /// contribution is; this guards against a single value left unset).
    fn is_held(&self, outcome: &Outcome, item: Item) -> bool {
        match item {
            Item::ManagementUnit(_) => outcome.entitlements.management_unit.is_some(),
            Item::HomeDivision(_) => outcome.entitlements.home_division.is_some(),
            Item::Grant { .. }
            | Item::Skill { .. }
            | Item::Language { .. }
            | Item::License(_)
            | Item::RoleLicense { .. } => true,
        }
    }

    /// What each source gave or took away, in the order given.
    fn effects(&self, outcome: &Outcome) -> HashMap<Source, Vec<Effect>> {
        let mut effects: HashMap<Source, Vec<Effect>> = HashMap::new();
        for (contribution, status) in outcome.contributions.iter().zip(&outcome.statuses) {
            effects
                .entry(contribution.source)
                .or_default()
                .push(Effect {
                    entitlement: self.describe(contribution.item),
                    outcome: self.describe_status(*status),
                });
        }
        for removal in &outcome.removals {
            effects.entry(removal.source).or_default().push(Effect {
                entitlement: self.describe_removal(removal.removal),
                outcome: format!(
                    "removes what rules of priority {} or lower give",
                    removal.priority
                ),
            });
        }
        effects
    }

    fn describe(&self, item: Item) -> String {
        let name = |kind: ObjectKind, index: u32| self.catalog.name(kind, index);
        match item {
            Item::Grant { role, division } => format!(
                "role '{}' in '{}'",
                name(ObjectKind::Role, role),
                name(ObjectKind::Division, division)
            ),
            Item::Skill { skill, proficiency } => {
                format!("skill '{}' ({proficiency})", name(ObjectKind::Skill, skill))
            }
            Item::Language {
                language,
                proficiency,
            } => format!(
                "language '{}' ({proficiency})",
                name(ObjectKind::Language, language)
            ),
            Item::License(license) => format!("license '{}'", name(ObjectKind::License, license)),
            Item::RoleLicense { license, role } => format!(
                "license '{}' (needed by role '{}')",
                name(ObjectKind::License, license),
                name(ObjectKind::Role, role)
            ),
            Item::ManagementUnit(unit) => format!(
                "management unit '{}'",
                name(ObjectKind::ManagementUnit, unit)
            ),
            Item::HomeDivision(division) => {
                format!("home division '{}'", name(ObjectKind::Division, division))
            }
        }
    }

    fn describe_removal(&self, removal: Removal) -> String {
        let name = |kind: ObjectKind, index: u32| self.catalog.name(kind, index);
        match removal {
            Removal::Role {
                role,
                division: Some(division),
            } => format!(
                "no role '{}' in '{}'",
                name(ObjectKind::Role, role),
                name(ObjectKind::Division, division)
            ),
            Removal::Role {
                role,
                division: None,
            } => format!("no role '{}' in any division", name(ObjectKind::Role, role)),
            Removal::Skill(skill) => format!("no skill '{}'", name(ObjectKind::Skill, skill)),
            Removal::Language(language) => {
                format!("no language '{}'", name(ObjectKind::Language, language))
            }
            Removal::License(license) => {
                format!("no license '{}'", name(ObjectKind::License, license))
            }
        }
    }

    fn describe_status(&self, status: Status) -> String {
        match status {
            Status::Kept => "held".to_owned(),
            Status::AlsoGiven { credited } => {
                format!("held, credited to '{}'", self.source_id(credited))
            }
            Status::Overridden { by: Some(by) } => {
                format!("not held: '{}' decides", self.source_id(by))
            }
            Status::Overridden { by: None } => "not held: rules of higher priority tie".to_owned(),
            Status::Removed { by } => format!("not held: removed by '{}'", self.source_id(by)),
            Status::Tied => "not held: a tie with another value of the same priority".to_owned(),
            Status::Inactive => "not held: the user is inactive".to_owned(),
        }
    }
}

/// Reads the evidence for conditions in one user.
struct EvidenceReader<'a> {
    registry: &'a SchemaRegistry,
    resource_type: &'a ResourceType,
    user: &'a Value,
}

impl EvidenceReader<'_> {
    fn matches(&self, filter: &Filter) -> bool {
        filter.matches(self.user, self.registry, self.resource_type)
    }

    /// The evidence for `filter` evaluating to `holds`.
    fn why(&self, filter: &Filter, holds: bool) -> Vec<Evidence> {
        let mut evidence = Vec::new();
        self.walk(filter, holds, &mut evidence);
        evidence
    }

    fn walk(&self, filter: &Filter, holds: bool, evidence: &mut Vec<Evidence>) {
        match (filter, holds) {
            (Filter::And(operands), true) | (Filter::Or(operands), false) => {
                for operand in operands {
                    self.walk(operand, holds, evidence);
                }
            }
            (Filter::And(operands), false) => {
                if let Some(failing) = operands.iter().find(|operand| !self.matches(operand)) {
                    self.walk(failing, false, evidence);
                }
            }
            (Filter::Or(operands), true) => {
                if let Some(holding) = operands.iter().find(|operand| self.matches(operand)) {
                    self.walk(holding, true, evidence);
                }
            }
            (Filter::Not(operand), _) => self.walk(operand, !holds, evidence),
            (Filter::Present(path) | Filter::Compare { path, .. }, _) => {
                let (path, values) =
                    values_at(self.registry, self.resource_type, self.user, path, true);
                evidence.push(Evidence {
                    condition: filter.to_string(),
                    path,
                    values,
                    holds: self.matches(filter),
                });
            }
            (
                Filter::ValuePath {
                    path,
                    filter: inner,
                },
                _,
            ) => {
                let mut subs: Vec<&str> = Vec::new();
                sub_attributes(inner, &mut subs);
                let (path, values) = match subs.as_slice() {
                    [only] => values_at(
                        self.registry,
                        self.resource_type,
                        self.user,
                        &AttrPath {
                            sub_attribute: Some((*only).to_owned()),
                            ..path.clone()
                        },
                        false,
                    ),
                    _ => self.projected(path, &subs),
                };
                evidence.push(Evidence {
                    condition: filter.to_string(),
                    path,
                    values,
                    holds: self.matches(filter),
                });
            }
        }
    }

    /// The elements at `path`, each reduced to the sub-attributes `subs`.
    fn projected(&self, path: &AttrPath, subs: &[&str]) -> (String, Vec<Value>) {
        let (canonical, elements) =
            values_at(self.registry, self.resource_type, self.user, path, false);
        let values = elements
            .into_iter()
            .take(MAX_SHOWN_VALUES)
            .map(|element| {
                let object: serde_json::Map<String, Value> = subs
                    .iter()
                    .filter_map(|sub| {
                        member(&element, sub).map(|value| ((*sub).to_owned(), value.clone()))
                    })
                    .collect();
                Value::Object(object)
            })
            .collect();
        (canonical, values)
    }
}

/// The distinct sub-attribute names a value filter reads, in order.
fn sub_attributes<'f>(filter: &'f Filter, subs: &mut Vec<&'f str>) {
    match filter {
        Filter::And(operands) | Filter::Or(operands) => {
            for operand in operands {
                sub_attributes(operand, subs);
            }
        }
        Filter::Not(operand) => sub_attributes(operand, subs),
        Filter::Present(path) | Filter::Compare { path, .. } | Filter::ValuePath { path, .. } => {
            let name = path.attribute.as_str();
            if !subs.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
                subs.push(name);
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matched = self.rules.iter().filter(|trace| trace.matched).count();
        writeln!(
            f,
            "{}; {matched} of {} rules matched{}",
            if self.active {
                "active user"
            } else {
                "inactive user (holds no grants, skills, languages or licenses)"
            },
            self.rules.len(),
            if self.defaults_applied {
                ", so the defaults apply"
            } else {
                ""
            }
        )?;
        if self.held.is_empty() {
            writeln!(f, "holds nothing")?;
        } else {
            writeln!(f, "holds:")?;
        }
        for item in &self.held {
            writeln!(f, "  {}  <- rule '{}'", item.entitlement, item.rule)?;
            for evidence in &item.evidence {
                writeln!(f, "      {evidence}")?;
            }
        }
        for problem in &self.entitlements.problems {
            writeln!(f, "problem {}: {}", problem.code.as_str(), problem.detail)?;
        }
        writeln!(f, "rules:")?;
        for trace in &self.rules {
            let verdict = match (trace.kind, trace.matched) {
                (TraceKind::Table, true) => "applies",
                (_, true) => "matches",
                (_, false) => "does not match",
            };
            write!(
                f,
                "  '{}' (priority {}) {verdict}",
                trace.rule, trace.priority
            )?;
            match &trace.when {
                Some(when) => writeln!(f, ": {when}")?,
                None => writeln!(f)?,
            }
            for evidence in &trace.evidence {
                writeln!(f, "      {evidence}")?;
            }
            if let Some(lookup) = &trace.lookup {
                match (&lookup.value, &lookup.row) {
                    (None, _) => writeln!(f, "      {} is missing", lookup.key)?,
                    (Some(value), None) => {
                        writeln!(f, "      {} = \"{value}\": no row", lookup.key)?
                    }
                    (Some(value), Some(row)) => {
                        writeln!(f, "      {} = \"{value}\": row \"{row}\"", lookup.key)?
                    }
                }
            }
            for effect in &trace.effects {
                writeln!(f, "      -> {}: {}", effect.entitlement, effect.outcome)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = if self.values.is_empty() {
            "absent".to_owned()
        } else {
            self.values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} {}: {} is {values}",
            if self.holds { "holds" } else { "fails" },
            self.condition,
            self.path
        )
    }
}
