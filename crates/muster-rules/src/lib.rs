//! `muster-rules`: contact-center entitlements (roles in divisions, routing
//! skills and languages, a management unit, a home division, licenses)
//! computed from a user's groups and attributes by rules an admin can read,
//! check, explain and dry-run.
//!
//! This crate does no I/O: no async runtime, no database, no HTTP, no file
//! reads. It takes text and JSON values and returns values; the CLI reads
//! files (including the CSV files tables name, through the hook of
//! [`RuleSet::parse_with_files`]) and the server stores results. It depends
//! on `muster-scim` only, whose filter evaluator decides every `when`.
//!
//! # The document
//!
//! One file, TOML (comments allowed) or the same structure in JSON:
//!
//! ```toml
//! [catalog]
//! divisions = ["Home", "Support", "APAC"]
//! licenses = ["CX 1", "CX 3"]
//! roles = [
//!   { name = "Agent", license = "CX 1" },
//!   { name = "Quality Evaluator", license = "CX 3" },
//! ]
//! skills = ["Billing"]
//! languages = ["English"]
//! management_units = [{ name = "Manila Voice", division = "APAC" }]
//!
//! [defaults]                      # for users no rule matches
//! home_division = "Home"
//!
//! [[rules]]
//! id = "tier1-agents"
//! priority = 10                   # default 0; higher wins
//! when = 'groups[display eq "Group_CC_Agents_Tier1"]'
//! grants = [{ role = "Agent", division = "Support" }]
//! skills = [{ name = "Billing", proficiency = 3 }]
//! languages = [{ name = "English", proficiency = 5 }]
//!
//! [[rules]]
//! id = "level2-quality"
//! when = 'title eq "Level 2 Support"'
//! grants = [{ role = "Quality Evaluator", division = "Support" }]
//! remove_roles = ["Agent"]        # a removal wins over grants of lower or equal priority
//!
//! [[tables]]
//! id = "unit-by-cost-center"
//! key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
//! sets = "management_unit"        # or home_division, role, skill, language, license
//! rows = { "CC-4100" = "Manila Voice" }   # or csv = "cost-centers.csv"
//! ```
//!
//! - **Catalog.** `divisions`, `roles` (with the `license` they need),
//!   `skills`, `languages`, `management_units` (each in a `division`) and
//!   `licenses`. An item is a name, or a table `{ name, id, ... }`. Names are
//!   unique per kind case-insensitively and are referred to by name
//!   (case-insensitively); results use the catalog's spelling. Every item
//!   has a stable id: `id` when given, else [`slug`] of the name
//!   (`"Manila Voice"` is `manila-voice`); keep the id to rename an item.
//! - **Rules** (`[[rules]]`): `id` (unique, case-insensitively), optional
//!   `description`, `priority` (integer, default 0), `when` (a SCIM filter;
//!   none matches every user), and what the rule gives: `grants` (role and
//!   division), `skills` and `languages` (name and proficiency 0 to 5),
//!   `licenses`, `management_unit`, `home_division`; and what it takes away:
//!   `remove_roles` (a role name: in every division; or `{ role, division
//!   }`), `remove_skills`, `remove_languages`, `remove_licenses`.
//! - **Tables** (`[[tables]]`): `id`, `priority`, optional `when`, `key` (the
//!   attribute looked up: single-valued, a string, reference, integer or
//!   boolean), `sets` (what a row gives; `role` tables also say `division`,
//!   `skill` and `language` tables `proficiency`), and rows: inline `rows = {
//!   "key" = "name" }` and/or `csv = "file.csv"` (a header line, then rows;
//!   the first two columns, or those `columns = ["key", "value"]` names).
//!   Keys match trimmed and case-insensitively unless `case_sensitive = true`.
//! - **Defaults** (`[defaults]`): what a user gets when no rule matches and
//!   no table applies; credited to the rule id `defaults`.
//!
//! # Decisions
//!
//! 1. A rule matches when its `when` holds (muster-scim's evaluator; a rule
//!    without `when` matches every user). A table applies when its `when`
//!    holds; it then looks up the user's key value: a row gives its object; a
//!    missing key or a value with no row gives a problem (`missingKey`,
//!    `unknownKey`) and nothing else, never a guess.
//! 2. `[defaults]` apply only to a user whom no rule matched and no table
//!    applied to (so a user whose cost center is missing is flagged, not
//!    given the default unit).
//! 3. Removals: a removal at priority `p` takes away every grant of the same
//!    role (in the division named, or in every division), skill, language or
//!    license given at priority `p` or lower; grants above `p` stay. The
//!    licenses a role needs follow the role: they go only when the role does.
//! 4. Grants, skills, languages and licenses are the union of what is left.
//!    A skill or language given twice keeps the proficiency of the highest
//!    priority, and among equal priorities the highest proficiency.
//! 5. The management unit and the home division hold one value: the
//!    highest priority wins; rules of that same priority giving different
//!    values are a `tie` problem and the value stays unset (never a coin
//!    toss). A table problem about them is reported only when the table's
//!    priority is at least the highest priority that gave a value, that is
//!    when the table could have changed the result.
//! 6. Credit: each entitlement names one rule, of those giving it the one
//!    with the highest priority, then the smallest id; never document order,
//!    so the result does not depend on the order of rules, tables, rows or
//!    catalog entries.
//! 7. Lifecycle: a user with `active: false` holds no grants, skills,
//!    languages or licenses (licenses are freed the moment `active` becomes
//!    false); its management unit and home division are still computed
//!    (they place the user, they grant nothing), with their problems. A user
//!    without `active` is active.
//! 8. Output is canonical: lists sorted, empty ones omitted, so equal inputs
//!    give byte-equal JSON.
//!
//! # Use
//!
//! 1. [`RuleSet::parse`] / [`RuleSet::parse_with_files`]: layout, types,
//!    duplicates, catalog references and `when` syntax, every error with its
//!    rule id, line, column and a "did you mean".
//! 2. [`RuleSet::validate`]: against the schema registry and the existing
//!    groups.
//! 3. [`RuleSet::evaluate`]: a user's [`Entitlements`], the value of the
//!    extension [`CONTACT_CENTER_URN`] ([`contact_center_schema`]).
//! 4. [`RuleSet::explain`]: why, rule by rule, with the values seen.
//! 5. [`EntitlementChanges::between`] and [`DryRunSummary`]: what a new
//!    rule set would change.

mod catalog;
mod csv;
mod diff;
mod entitlements;
mod error;
mod eval;
mod explain;
mod index;
mod node;
mod read;
mod ruleset;
mod schema;
mod validate;
mod values;

pub use catalog::{
    slug, Catalog, CatalogItem, ManagementUnit, ObjectKind, Role, MAX_CATALOG_ITEMS,
};
pub use diff::{
    ChangeKind, ChangeSummary, DryRunSummary, EntitlementChanges, UsersSample, ValueChange,
    MAX_SAMPLE_USERS,
};
pub use entitlements::{Assignment, Entitlements, Grant, Problem, ProblemCode, Proficiency};
pub use error::{ErrorKind, Location, RuleError, RuleErrors};
pub use explain::{
    Effect, Evidence, ExplainedEntitlement, Explanation, Lookup, RuleTrace, TraceKind,
};
pub use ruleset::{
    Format, RuleSet, DEFAULTS_RULE, MAX_DOCUMENT_BYTES, MAX_LIST_ENTRIES, MAX_PROFICIENCY,
    MAX_RULES, MAX_TABLE_ROWS,
};
pub use schema::{contact_center_schema, CONTACT_CENTER_URN};
pub use values::MAX_SHOWN_VALUES;
