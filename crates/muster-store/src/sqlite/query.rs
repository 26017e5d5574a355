//! The SQL builder shared by filter and sort translation: bound parameters,
//! fresh table aliases, and where an attribute's values come from.
//!
//! A resource query reads `resources r`; parameter `?1` is the tenant and
//! `?2` the resource type. Values come from one of three sources:
//!
//! - stored attributes: rows of `resource_values` (see `values.rs`), matched
//!   by lower-cased canonical path; a clause on an indexed path says
//!   `indexed = 1` so that SQLite may use the partial lookup index, and one
//!   on a path that is not indexed (see `rules.rs`) never does;
//! - `id` and `meta`: columns of the resource row itself (they change on
//!   every write, so keeping them out of the attribute index keeps a write's
//!   index work to the attributes it really changed);
//! - a Group's `members`: rows of `group_members`;
//! - a User's computed `groups`: the `user_groups` CTE ([`GROUPS_CTE`]), the
//!   transitive closure of memberships, which a query includes only when it
//!   needs it.

use muster_scim::schema::Container;
use muster_scim::{AttrPath, Attribute, ResourceType, SchemaRegistry};
use rusqlite::types::Value as SqlValue;

use super::read::{GROUP, USER};
use super::rules::IndexRules;
use crate::TenantId;

/// Every (member, group) pair of the tenant, direct (depth 0) or through
/// nested groups (depth 1), with the group's display name. Finite even for
/// cyclic nesting: `UNION` drops repeated (member, group, depth) rows.
/// `CROSS JOIN` fixes the join order the planner would otherwise guess.
pub(crate) const GROUPS_CTE: &str = "WITH RECURSIVE closure(member_id, group_id, depth) AS (
    SELECT member_id, group_id, 0 FROM group_members WHERE tenant_id = ?1
    UNION
    SELECT closure.member_id, m.group_id, 1 FROM closure
    CROSS JOIN group_members m ON m.tenant_id = ?1 AND m.member_id = closure.group_id
),
user_groups AS MATERIALIZED (
    SELECT closure.member_id, closure.group_id, min(closure.depth) AS depth,
        g.display_name AS display
    FROM closure CROSS JOIN resources g ON g.tenant_id = ?1 AND g.id = closure.group_id
    GROUP BY closure.member_id, closure.group_id
) ";

/// Where the values of a top-level attribute live.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// Stored in `resource_values` under this lower-cased path prefix.
    Stored(String),
    /// `id` or `meta`: columns of `resources`.
    Common,
    /// A Group's membership rows.
    Members,
    /// A User's computed groups.
    Groups,
}

/// A path resolved for SQL.
pub(crate) struct Located<'r> {
    /// Where the values live.
    pub source: Source,
    /// The top-level attribute.
    pub attribute: &'r Attribute,
    /// The sub-attribute the path names, if any.
    pub step: Option<&'r Attribute>,
    /// Whether the attribute's rows are in the lookup index (see
    /// `rules.rs`); always true for values that are not stored rows.
    pub indexed: bool,
}

/// SQL expressions reading one value of a source row.
pub(crate) struct Columns {
    /// The lower-cased text, NULL unless a string.
    pub lower: String,
    /// The exact text, NULL unless a string.
    pub exact: String,
    /// The sortable instant, NULL unless an RFC 3339 string.
    pub time: String,
    /// The number, NULL unless a number.
    pub number: String,
    /// The boolean as 0/1, NULL unless a boolean.
    pub flag: String,
    /// Whether the value is present in the `pr` sense (0/1, never NULL).
    pub present: String,
}

impl Columns {
    /// The value columns of a `resource_values` row.
    pub(crate) fn stored(alias: &str) -> Columns {
        Columns {
            lower: format!("{alias}.value_lower"),
            exact: format!("coalesce({alias}.value_exact, {alias}.value_lower)"),
            time: format!("{alias}.value_time"),
            number: format!("{alias}.value_num"),
            flag: format!("{alias}.value_bool"),
            present: format!("{alias}.present = 1"),
        }
    }

    /// The columns of a computed text value (always a string or NULL).
    fn text(expression: &str) -> Columns {
        Columns::text_with_time(expression, &format!("muster_instant({expression})"))
    }

    /// The columns of a text value whose sortable instant is `time`.
    fn text_with_time(expression: &str, time: &str) -> Columns {
        Columns {
            lower: format!("muster_lower({expression})"),
            exact: expression.to_owned(),
            time: time.to_owned(),
            number: "NULL".to_owned(),
            flag: "NULL".to_owned(),
            present: format!("coalesce({expression} <> '', 0)"),
        }
    }
}

/// A query under construction: its parameters and what it needs.
pub(crate) struct QueryBuilder<'r> {
    /// The registry that resolves paths.
    pub registry: &'r SchemaRegistry,
    /// The resource type queried.
    pub resource_type: &'r ResourceType,
    /// The parameters, `?1` first.
    pub params: Vec<SqlValue>,
    /// Whether the query reads `user_groups` (prefix it with [`GROUPS_CTE`]).
    pub needs_groups: bool,
    /// The tenant's index rules: which stored paths are in the lookup index.
    rules: &'r IndexRules,
    aliases: usize,
}

impl<'r> QueryBuilder<'r> {
    /// A builder for `resource_type` in `tenant`: `?1` is the tenant, `?2`
    /// the resource type id. `rules` are the tenant's index rules the query
    /// is planned with.
    pub(crate) fn new(
        registry: &'r SchemaRegistry,
        resource_type: &'r ResourceType,
        tenant: &TenantId,
        rules: &'r IndexRules,
    ) -> Self {
        QueryBuilder {
            registry,
            resource_type,
            params: vec![
                SqlValue::Text(tenant.0.clone()),
                SqlValue::Text(resource_type.id.clone()),
            ],
            needs_groups: false,
            rules,
            aliases: 0,
        }
    }

    /// Binds a parameter; returns its placeholder.
    pub(crate) fn bind(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }

    /// Binds a text parameter.
    pub(crate) fn bind_text(&mut self, text: &str) -> String {
        self.bind(SqlValue::Text(text.to_owned()))
    }

    /// Binds an attribute index path; returns the SQL of its `path_id`
    /// (NULL, matching nothing, for a path no resource ever stored).
    pub(crate) fn bind_path(&mut self, path: &str) -> String {
        let bound = self.bind_text(path);
        format!("(SELECT path_id FROM attribute_paths WHERE path = {bound})")
    }

    /// A table alias not used elsewhere in the query.
    pub(crate) fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("t{}", self.aliases)
    }

    /// The `WITH` clause the query needs, if any.
    pub(crate) fn with_clause(&self) -> &'static str {
        if self.needs_groups {
            GROUPS_CTE
        } else {
            ""
        }
    }

    /// Resolves a path: `None` when no schema of the type declares it.
    pub(crate) fn locate(&self, path: &AttrPath) -> Option<Located<'r>> {
        let resolved = self.registry.resolve_attribute(self.resource_type, path)?;
        let attribute = resolved.attribute;
        let source = match resolved.container {
            Container::Core
                if self.resource_type.id == GROUP
                    && attribute.name.eq_ignore_ascii_case("members") =>
            {
                Source::Members
            }
            Container::Core
                if self.resource_type.id == USER
                    && attribute.name.eq_ignore_ascii_case("groups") =>
            {
                Source::Groups
            }
            Container::Core
                if attribute.name.eq_ignore_ascii_case("id")
                    || attribute.name.eq_ignore_ascii_case("meta") =>
            {
                Source::Common
            }
            Container::Core => Source::Stored(attribute.name.to_ascii_lowercase()),
            Container::Extension(urn) => Source::Stored(format!(
                "{}:{}",
                urn.to_ascii_lowercase(),
                attribute.name.to_ascii_lowercase()
            )),
        };
        let indexed = match &source {
            Source::Stored(prefix) => self.rules.indexes(prefix),
            Source::Common | Source::Members | Source::Groups => true,
        };
        Some(Located {
            source,
            attribute,
            step: resolved.sub_attribute,
            indexed,
        })
    }

    /// The columns of a value that is not in the attribute index, read
    /// through `alias`: a sub-attribute of a computed element (`members`,
    /// `groups`; `alias` is the membership row), or `id` or a `meta`
    /// sub-attribute (`alias` is the resource row). `None` for one that is
    /// never stored (`$ref` and `meta.location`, which the server adds).
    pub(crate) fn computed_columns(
        &mut self,
        source: &Source,
        alias: &str,
        sub: &Attribute,
    ) -> Option<Columns> {
        let name = sub.name.to_ascii_lowercase();
        let expression = match (source, name.as_str()) {
            (Source::Members, "value") => format!("{alias}.member_id"),
            (Source::Members, "type") => format!("{alias}.member_type"),
            (Source::Members, "display") => {
                let display = self.alias();
                format!(
                    "(SELECT {display}.display_name FROM resources {display}
                      WHERE {display}.tenant_id = ?1 AND {display}.id = {alias}.member_id)"
                )
            }
            (Source::Groups, "value") => format!("{alias}.group_id"),
            (Source::Groups, "type") => {
                format!("(CASE WHEN {alias}.depth = 0 THEN 'direct' ELSE 'indirect' END)")
            }
            (Source::Groups, "display") => format!("{alias}.display"),
            (Source::Common, "id") => format!("{alias}.id"),
            (Source::Common, "resourcetype") => format!("{alias}.resource_type"),
            (Source::Common, "version") => format!("('W/\"' || {alias}.version || '\"')"),
            (Source::Common, "created") => {
                return Some(Columns::text_with_time(
                    &format!("{alias}.created"),
                    &format!("{alias}.created_instant"),
                ))
            }
            (Source::Common, "lastmodified") => {
                return Some(Columns::text_with_time(
                    &format!("{alias}.last_modified"),
                    &format!("{alias}.last_modified_instant"),
                ))
            }
            _ => return None,
        };
        Some(Columns::text(&expression))
    }
}

/// The definition a path inside a value filter on `attribute` names, and
/// whether it is the element itself (`value` of a multi-valued attribute
/// that is not complex): the evaluator's rule.
pub(crate) fn element_definition<'a>(
    attribute: &'a Attribute,
    path: &AttrPath,
) -> Option<(&'a Attribute, bool)> {
    if path.schema.is_some() || path.sub_attribute.is_some() {
        return None;
    }
    if attribute.is_complex() {
        attribute
            .sub_attribute(&path.attribute)
            .map(|sub| (sub, false))
    } else if path.attribute.eq_ignore_ascii_case("value") {
        Some((attribute, true))
    } else {
        None
    }
}
