//! The SQL builder shared by filter and sort translation: bound parameters,
//! fresh table aliases, and where an attribute's values come from.
//!
//! A resource query reads `resources r`; parameter 1 is the tenant and 2
//! the resource type. Values come from one of three sources:
//!
//! - stored attributes: rows of `resource_values` (see
//!   `sqlite/values.rs`), matched by lower-cased canonical path; a clause on
//!   an indexed path says that the row is `indexed` so that the database
//!   may use the partial lookup index, and one on a path that is not
//!   indexed (see `sqlite/rules.rs`) never does;
//! - `id` and `meta`: columns of the resource row itself (they change on
//!   every write, so keeping them out of the attribute index keeps a write's
//!   index work to the attributes it really changed);
//! - a Group's `members`: rows of `group_members`;
//! - a User's computed `groups`: the `user_groups` CTE ([`groups_cte`]), the
//!   transitive closure of memberships, which a query includes only when it
//!   needs it.

use muster_scim::schema::Container;
use muster_scim::{AttrPath, Attribute, ResourceType, SchemaRegistry};

use super::{Dialect, Param};
use crate::sqlite::read::{GROUP, USER};
use crate::sqlite::rules::IndexRules;
use crate::TenantId;

/// Every (member, group) pair of the tenant, direct (depth 0) or through
/// nested groups (depth 1), with the group's display name. Finite even for
/// cyclic nesting: `UNION` drops repeated (member, group, depth) rows.
/// SQLite's `CROSS JOIN` fixes the join order the planner would otherwise
/// guess.
const SQLITE_GROUPS_CTE: &str = "WITH RECURSIVE closure(member_id, group_id, depth) AS (
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

/// [`SQLITE_GROUPS_CTE`] in PostgreSQL's words (a group's display name is
/// one per (member, group), so `min` only satisfies `GROUP BY`).
const POSTGRES_GROUPS_CTE: &str = "WITH RECURSIVE closure(member_id, group_id, depth) AS (
    SELECT member_id, group_id, 0 FROM group_members WHERE tenant_id = $1
    UNION
    SELECT closure.member_id, m.group_id, 1 FROM closure
    JOIN group_members m ON m.tenant_id = $1 AND m.member_id = closure.group_id
),
user_groups AS MATERIALIZED (
    SELECT closure.member_id, closure.group_id, min(closure.depth) AS depth,
        min(g.display_name) AS display
    FROM closure JOIN resources g ON g.tenant_id = $1 AND g.id = closure.group_id
    GROUP BY closure.member_id, closure.group_id
) ";

/// The `WITH` clause defining `user_groups` in `dialect`.
pub(crate) fn groups_cte(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => SQLITE_GROUPS_CTE,
        Dialect::Postgres => POSTGRES_GROUPS_CTE,
    }
}

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
    /// The instant, NULL unless an RFC 3339 string (SQLite: sortable text,
    /// PostgreSQL: `timestamptz`).
    pub time: String,
    /// The number, NULL unless a number.
    pub number: String,
    /// The boolean (SQLite: 0/1), NULL unless a boolean.
    pub flag: String,
    /// Whether the value is present in the `pr` sense (never NULL).
    pub present: String,
}

impl Columns {
    /// The value columns of a `resource_values` row.
    pub(crate) fn stored(dialect: Dialect, alias: &str) -> Columns {
        Columns {
            lower: format!("{alias}.value_lower"),
            exact: format!("coalesce({alias}.value_exact, {alias}.value_lower)"),
            time: format!("{alias}.value_time"),
            number: format!("{alias}.value_num"),
            flag: format!("{alias}.value_bool"),
            present: dialect.holds(&format!("{alias}.present")),
        }
    }

    /// The columns of a computed text value (always a string or NULL).
    fn text(dialect: Dialect, expression: &str) -> Columns {
        Columns::text_with_time(dialect, expression, &dialect.instant_of_text(expression))
    }

    /// The columns of a text value whose instant is `time`.
    fn text_with_time(dialect: Dialect, expression: &str, time: &str) -> Columns {
        Columns {
            lower: dialect.lower(expression),
            exact: expression.to_owned(),
            time: time.to_owned(),
            number: "NULL".to_owned(),
            flag: "NULL".to_owned(),
            present: format!("coalesce({expression} <> '', {})", dialect.truth(false)),
        }
    }
}

/// A query under construction: its parameters and what it needs.
pub(crate) struct QueryBuilder<'r> {
    /// The registry that resolves paths.
    pub registry: &'r SchemaRegistry,
    /// The resource type queried.
    pub resource_type: &'r ResourceType,
    /// The dialect the SQL is written in.
    pub dialect: Dialect,
    /// The parameters, the first first.
    pub params: Vec<Param>,
    /// Whether the query reads `user_groups` (prefix it with [`groups_cte`]).
    pub needs_groups: bool,
    /// The tenant's index rules: which stored paths are in the lookup index.
    rules: &'r IndexRules,
    aliases: usize,
}

impl<'r> QueryBuilder<'r> {
    /// A builder for `resource_type` in `tenant`, in `dialect`: parameter
    /// 1 is the tenant, 2 the resource type id. `rules` are the tenant's
    /// index rules the query is planned with.
    pub(crate) fn new(
        dialect: Dialect,
        registry: &'r SchemaRegistry,
        resource_type: &'r ResourceType,
        tenant: &TenantId,
        rules: &'r IndexRules,
    ) -> Self {
        QueryBuilder {
            registry,
            resource_type,
            dialect,
            params: vec![
                Param::Text(tenant.0.clone()),
                Param::Text(resource_type.id.clone()),
            ],
            needs_groups: false,
            rules,
            aliases: 0,
        }
    }

    /// Binds a parameter; returns its placeholder.
    pub(crate) fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        self.dialect.placeholder(self.params.len())
    }

    /// Binds a text parameter.
    pub(crate) fn bind_text(&mut self, text: &str) -> String {
        self.bind(Param::Text(text.to_owned()))
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
            groups_cte(self.dialect)
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
        let dialect = self.dialect;
        let tenant = dialect.placeholder(1);
        let expression = match (source, name.as_str()) {
            (Source::Members, "value") => format!("{alias}.member_id"),
            (Source::Members, "type") => format!("{alias}.member_type"),
            (Source::Members, "display") => {
                let display = self.alias();
                format!(
                    "(SELECT {display}.display_name FROM resources {display}
                      WHERE {display}.tenant_id = {tenant} AND {display}.id = {alias}.member_id)"
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
                return Some(meta_instant(dialect, alias, "created", "created"))
            }
            (Source::Common, "lastmodified") => {
                return Some(meta_instant(
                    dialect,
                    alias,
                    "last_modified",
                    "lastModified",
                ))
            }
            _ => return None,
        };
        Some(Columns::text(dialect, &expression))
    }
}

/// The columns of `meta.created` or `meta.lastModified` of the resource
/// row `alias`: SQLite keeps the text in `column` and its sortable instant
/// in `{column}_instant`; PostgreSQL keeps the instant in `column` and the
/// text only in the resource's `meta` (`key`).
fn meta_instant(dialect: Dialect, alias: &str, column: &str, key: &str) -> Columns {
    match dialect {
        Dialect::Sqlite => Columns::text_with_time(
            dialect,
            &format!("{alias}.{column}"),
            &format!("{alias}.{column}_instant"),
        ),
        Dialect::Postgres => Columns::text_with_time(
            dialect,
            &format!("({alias}.json -> 'meta' ->> '{key}')"),
            &format!("{alias}.{column}"),
        ),
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
