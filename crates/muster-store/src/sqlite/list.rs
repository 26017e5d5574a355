//! Lists: filter, order and page in SQL.
//!
//! A plan (SQL text and parameters) is made from the query and the registry
//! on the caller's task; a reader connection then runs it in one read
//! transaction, so the total and the page come from the same snapshot.
//!
//! Order is stable: by `seq` (creation order), or by the sort value with
//! `seq` breaking ties (ascending in both directions, as the in-memory sort
//! keeps input order). A cursor (RFC 9865) is opaque base64url of the last
//! row's (sort value, seq), so the next page starts strictly after it even
//! when rows are added or removed meanwhile.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use muster_scim::{SchemaRegistry, ScimError, ScimType};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Value};

use super::query::QueryBuilder;
use super::read::{to_version, ReadResource, ResourceRow};
use super::rules::{self, IndexRules};
use crate::{ListPage, ListQuery, Page, ResourceId, StoreError, TenantId};

/// A list query turned into SQL.
pub(crate) struct ListPlan {
    tenant: TenantId,
    resource_type: String,
    with_count: &'static str,
    with_page: &'static str,
    filter: String,
    filter_params: usize,
    sort_value: Option<String>,
    descending: bool,
    params: Vec<SqlValue>,
    page: Page,
    include_members: bool,
    fingerprint: String,
    /// The index rule generation the SQL was written for.
    generation: i64,
}

/// What running a plan gives.
pub(crate) enum Listed {
    /// The page, its resources not yet parsed.
    Page(ReadPage),
    /// The tenant's index rules changed since the plan was made: plan
    /// again with these (read in the same transaction).
    Stale(IndexRules),
}

/// Makes the plan of a list query, for the tenant's index `rules`.
pub(crate) fn plan(
    tenant: &TenantId,
    registry: &SchemaRegistry,
    query: &ListQuery,
    rules: &IndexRules,
) -> Result<ListPlan, StoreError> {
    let resource_type = registry
        .resource_type(&query.resource_type)
        .ok_or_else(|| {
            ScimError::invalid_value(format!("unknown resource type '{}'", query.resource_type))
        })?;
    let mut builder = QueryBuilder::new(registry, resource_type, tenant, rules);
    let filter = match &query.filter {
        Some(filter) => builder.filter(filter),
        None => "1".to_owned(),
    };
    let filter_params = builder.params.len();
    let with_count = builder.with_clause();
    let sort_value = match &query.sort_by {
        Some(path) => Some(builder.sort_value(path)?),
        None => None,
    };
    let fingerprint = match &query.sort_by {
        Some(path) => format!(
            "{}:{}",
            path.to_string().to_ascii_lowercase(),
            if query.descending { "d" } else { "a" }
        ),
        None => String::new(),
    };
    Ok(ListPlan {
        tenant: tenant.clone(),
        resource_type: resource_type.id.clone(),
        with_count,
        with_page: builder.with_clause(),
        filter,
        filter_params,
        sort_value,
        descending: query.descending,
        params: builder.params,
        page: query.page.clone(),
        include_members: query.include_members,
        fingerprint,
        generation: rules.generation,
    })
}

/// Where a cursor says the previous page ended.
struct Position {
    sort_value: SqlValue,
    seq: i64,
}

/// Runs a plan, in one read transaction that first checks the tenant's
/// index rule generation is the plan's (one SELECT): SQL written for other
/// rules could rely on the lookup index for rows no longer in it.
pub(crate) fn run(connection: &Connection, plan: ListPlan) -> Result<Listed, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let listed = if rules::generation(connection, &plan.tenant)? == plan.generation {
        Listed::Page(run_in_transaction(connection, plan)?)
    } else {
        Listed::Stale(rules::load(connection, &plan.tenant)?)
    };
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(listed)
}

/// Reads a tenant's index rules, in a read transaction of their own.
pub(crate) fn read_rules(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<IndexRules, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let rules = rules::load(connection, tenant)?;
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(rules)
}

/// A page as read: its resources are parsed by the caller
/// ([`ReadPage::parse`]), on the thread that uses them.
pub(crate) struct ReadPage {
    total_results: u64,
    resources: Vec<ReadResource>,
    next_cursor: Option<String>,
}

impl ReadPage {
    /// Parses the resources.
    pub(crate) fn parse(self) -> Result<ListPage, StoreError> {
        Ok(ListPage {
            total_results: self.total_results,
            resources: self
                .resources
                .into_iter()
                .map(ReadResource::parse)
                .collect::<Result<_, _>>()?,
            next_cursor: self.next_cursor,
        })
    }
}

fn run_in_transaction(connection: &Connection, plan: ListPlan) -> Result<ReadPage, StoreError> {
    let (limit, offset, after) = match &plan.page {
        Page::Index { start_index, count } => (*count, start_index.saturating_sub(1), None),
        Page::Cursor { count: 0, .. } => (0, 0, None),
        Page::Cursor { cursor, count } => {
            let after = match cursor {
                Some(cursor) => Some(decode_cursor(cursor, &plan)?),
                None => None,
            };
            (count.saturating_add(1), 0, after)
        }
    };
    // Each match's (seq, sort value) position and row.
    let mut found: Vec<(Position, ResourceRow)> = Vec::new();
    if limit > 0 {
        let (sql, params) = page_query(&plan, after.as_ref(), limit, offset);
        let mut statement = connection.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            let position = Position {
                seq: row.get(0)?,
                sort_value: SqlValue::from(row.get_ref(4)?),
            };
            let resource = ResourceRow {
                id: ResourceId(row.get(1)?),
                resource_type: plan.resource_type.clone(),
                json: row.get(2)?,
                version: row.get(3)?,
                unmapped: row.get(5)?,
            };
            found.push((position, resource));
        }
    }
    // A first page that is not full holds every match: no need to count
    // (the common `userName eq "..."` lookup answers from one query).
    let first_page = offset == 0 && after.is_none();
    let found_all = first_page && (found.len() as u64) < limit;
    let total_results = if found_all {
        found.len() as u64
    } else {
        let (count_sql, count_params) = count_query(&plan);
        let total: i64 = connection
            .prepare_cached(&count_sql)?
            .query_row(params_from_iter(count_params.iter()), |row| row.get(0))?;
        to_version(total)
    };

    let mut next_cursor = None;
    if let Page::Cursor { count, .. } = plan.page {
        let wanted = usize::try_from(count).unwrap_or(usize::MAX);
        if found.len() > wanted {
            found.truncate(wanted);
            if let Some((position, _)) = found.last() {
                next_cursor = Some(encode_cursor(position, &plan));
            }
        }
    }
    let resources = found
        .into_iter()
        .map(|(_, row)| ReadResource::read(connection, &plan.tenant, row, plan.include_members))
        .collect::<Result<_, _>>()?;
    Ok(ReadPage {
        total_results,
        resources,
        next_cursor,
    })
}

/// The SQL counting every match, and its parameters.
fn count_query(plan: &ListPlan) -> (String, &[SqlValue]) {
    let sql = format!(
        "{}SELECT count(*) FROM resources r
         WHERE r.tenant_id = ?1 AND r.resource_type = ?2 AND {}",
        plan.with_count, plan.filter
    );
    (
        sql,
        plan.params.get(..plan.filter_params).unwrap_or_default(),
    )
}

/// The SQL of one page: matches after `after`, in order, `limit` from
/// `offset`.
///
/// The page is chosen on narrow rows (seq and sort value), then joined to
/// the resources, so sorting many matches never holds their JSON.
fn page_query(
    plan: &ListPlan,
    after: Option<&Position>,
    limit: u64,
    offset: u64,
) -> (String, Vec<SqlValue>) {
    let mut params = plan.params.clone();
    let mut bind = |value: SqlValue| {
        params.push(value);
        format!("?{}", params.len())
    };
    let sort_value = plan.sort_value.as_deref().unwrap_or("NULL");
    let mut matches = format!(
        "SELECT seq, sort_value FROM (
             SELECT r.seq AS seq, {sort_value} AS sort_value
             FROM resources r
             WHERE r.tenant_id = ?1 AND r.resource_type = ?2 AND {})",
        plan.filter
    );
    if let Some(after) = after {
        let seq = bind(SqlValue::Integer(after.seq));
        let condition = if plan.sort_value.is_none() {
            format!("seq > {seq}")
        } else {
            match (&after.sort_value, plan.descending) {
                (SqlValue::Null, false) => format!("(sort_value IS NULL AND seq > {seq})"),
                (SqlValue::Null, true) => {
                    format!("((sort_value IS NULL AND seq > {seq}) OR sort_value IS NOT NULL)")
                }
                (value, false) => {
                    let key = bind(value.clone());
                    format!(
                        "(sort_value IS NULL OR sort_value > {key}
                          OR (sort_value = {key} AND seq > {seq}))"
                    )
                }
                (value, true) => {
                    let key = bind(value.clone());
                    format!("(sort_value < {key} OR (sort_value = {key} AND seq > {seq}))")
                }
            }
        };
        matches.push_str(" WHERE ");
        matches.push_str(&condition);
    }
    let (inner_order, outer_order) = match (&plan.sort_value, plan.descending) {
        (None, _) => ("seq", "page.seq"),
        (Some(_), false) => (
            "(sort_value IS NULL), sort_value, seq",
            "(page.sort_value IS NULL), page.sort_value, page.seq",
        ),
        (Some(_), true) => (
            "(sort_value IS NULL) DESC, sort_value DESC, seq",
            "(page.sort_value IS NULL) DESC, page.sort_value DESC, page.seq",
        ),
    };
    let limit = bind(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let offset = bind(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let sql = format!(
        "{}SELECT page.seq, r.id, r.json, r.version, page.sort_value, r.unmapped FROM (
             {matches} ORDER BY {inner_order} LIMIT {limit} OFFSET {offset}
         ) AS page CROSS JOIN resources r ON r.seq = page.seq
         ORDER BY {outer_order}",
        plan.with_page
    );
    (sql, params)
}

fn encode_cursor(position: &Position, plan: &ListPlan) -> String {
    let key = match &position.sort_value {
        SqlValue::Null | SqlValue::Blob(_) => Value::Null,
        SqlValue::Integer(integer) => json!(integer),
        SqlValue::Real(real) => json!(real),
        SqlValue::Text(text) => json!(text),
    };
    let cursor = json!({ "s": position.seq, "k": key, "f": plan.fingerprint });
    URL_SAFE_NO_PAD.encode(cursor.to_string())
}

fn decode_cursor(cursor: &str, plan: &ListPlan) -> Result<Position, StoreError> {
    let invalid = || {
        StoreError::Scim(ScimError::bad_request(
            ScimType::InvalidCursor,
            format!("cursor '{cursor}' was not issued by this server for this query"),
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value.get("f").and_then(Value::as_str) != Some(plan.fingerprint.as_str()) {
        return Err(invalid());
    }
    let seq = value.get("s").and_then(Value::as_i64).ok_or_else(invalid)?;
    let sort_value = match value.get("k") {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::String(text)) => SqlValue::Text(text.clone()),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(integer) => SqlValue::Integer(integer),
            None => SqlValue::Real(number.as_f64().ok_or_else(invalid)?),
        },
        Some(_) => return Err(invalid()),
    };
    Ok(Position { sort_value, seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema::open_reader;
    use crate::sqlite::{SqliteStore, DATABASE_FILE};
    use muster_scim::{AttrPath, Filter};

    /// The query plans (count, page) of a filter and sort.
    fn plans(filter: &str, sort_by: Option<&str>) -> (String, String) {
        plans_with(
            &SchemaRegistry::builtin(),
            &IndexRules::default(),
            filter,
            sort_by,
        )
    }

    /// The query plans (count, page) of a filter and sort, for a registry
    /// and index rules.
    fn plans_with(
        registry: &SchemaRegistry,
        rules: &IndexRules,
        filter: &str,
        sort_by: Option<&str>,
    ) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let connection = open_reader(&dir.path().join(DATABASE_FILE)).unwrap();
        let query = ListQuery {
            resource_type: if filter.contains("members") {
                "Group"
            } else {
                "User"
            }
            .to_owned(),
            filter: Some(Filter::parse(filter).unwrap()),
            sort_by: sort_by.map(|path| AttrPath::parse(path).unwrap()),
            descending: false,
            page: Page::Index {
                start_index: 1,
                count: 10,
            },
            include_members: true,
        };
        let plan = plan(&TenantId::default_tenant(), registry, &query, rules).unwrap();
        let explain = |sql: &str, params: &[SqlValue]| {
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = statement
                .query_map(params_from_iter(params.iter()), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        };
        let (count_sql, count_params) = count_query(&plan);
        let (page_sql, page_params) = page_query(&plan, None, 10, 0);
        (
            explain(&count_sql, count_params),
            explain(&page_sql, &page_params),
        )
    }

    /// Filters that name a value find their resources through an index,
    /// never by scanning every resource or every index row.
    #[test]
    fn indexed_filters_do_not_scan() {
        for (filter, sort) in [
            (r#"userName eq "x""#, None),
            (r#"userName eq "x" and active eq true"#, None),
            (r#"not (active eq true) and userName sw "ab""#, None),
            (r#"userName eq "x" or externalId eq "y""#, None),
            (r#"emails[type eq "work" and value co "x"]"#, None),
            (r#"emails.value ew "x" and (title pr or nickName pr)"#, None),
            (r#"members.value eq "x""#, None),
            (r#"userName eq "x""#, Some("emails")),
            (r#"userName gt "x""#, Some("name.familyName")),
        ] {
            let (count, page) = plans(filter, sort);
            if !filter.contains("members") {
                assert!(
                    count.contains("resource_values_lookup"),
                    "{filter}:\n{count}"
                );
            }
            for plan in [&count, &page] {
                assert!(
                    plan.lines()
                        .any(|line| line.starts_with("SEARCH r ") && line.contains("seq=?")),
                    "{filter}: resources are not looked up by seq:\n{plan}"
                );
                assert!(
                    !plan
                        .lines()
                        .any(|line| line.starts_with("SCAN") && line != "SCAN page"),
                    "{filter}: a scan:\n{plan}"
                );
            }
        }
    }

    const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

    /// The built-in registry plus a Contoso extension: `region`,
    /// `costCenter`, and complex `customFields` (`BPO_Vendor_ID`, `site`).
    fn contoso_registry() -> SchemaRegistry {
        use muster_scim::{Attribute, AttributeType, Schema};
        let mut registry = SchemaRegistry::builtin();
        let string = |name: &str| Attribute::new(name, AttributeType::String);
        registry
            .add_schema(Schema {
                id: CONTOSO.to_owned(),
                name: Some("Contoso".to_owned()),
                description: None,
                attributes: vec![
                    string("region"),
                    string("costCenter"),
                    Attribute {
                        sub_attributes: vec![string("BPO_Vendor_ID"), string("site")],
                        multi_valued: true,
                        ..Attribute::new("customFields", AttributeType::Complex)
                    },
                ],
            })
            .unwrap();
        registry.bind_extension("User", CONTOSO, false).unwrap();
        registry
    }

    /// A searchable custom attribute is found through the partial lookup
    /// index; one that is not searchable never uses it, is checked per
    /// resource of the tenant and type (no scan of the attribute index),
    /// and never drives a conjunction that has an indexed operand.
    #[test]
    fn searchable_paths_use_the_partial_index() {
        let registry = contoso_registry();
        let rules = IndexRules::new(1, [(CONTOSO, vec!["REGION".to_owned()])]);
        let lookup = "resource_values_lookup";
        for filter in [
            format!(r#"{CONTOSO}:region eq "APAC""#),
            format!(r#"{CONTOSO}:region sw "AP" and {CONTOSO}:costCenter eq "7""#),
            format!(r#"{CONTOSO}:costCenter eq "7" and userName eq "x""#),
            format!(r#"userName eq "x" or {CONTOSO}:region eq "EU""#),
        ] {
            let (count, page) = plans_with(&registry, &rules, &filter, None);
            for plan in [&count, &page] {
                assert!(plan.contains(lookup), "{filter}: no lookup index:\n{plan}");
                assert!(
                    !plan
                        .lines()
                        .any(|line| line.starts_with("SCAN") && line != "SCAN page"),
                    "{filter}: a scan:\n{plan}"
                );
            }
        }
        for filter in [
            format!(r#"{CONTOSO}:costCenter eq "7""#),
            format!(r#"{CONTOSO}:costCenter co "7""#),
            format!(r#"{CONTOSO}:customFields pr"#),
            format!(r#"{CONTOSO}:customFields.BPO_Vendor_ID eq "v1""#),
            format!(r#"{CONTOSO}:customFields[BPO_Vendor_ID eq "v1" and site pr]"#),
        ] {
            let (count, page) = plans_with(&registry, &rules, &filter, Some("userName"));
            for plan in [&count, &page] {
                assert!(!plan.contains(lookup), "{filter}: lookup index:\n{plan}");
                assert!(
                    plan.lines()
                        .any(|line| line
                            .starts_with("SEARCH r USING COVERING INDEX resources_by_type")),
                    "{filter}: not per resource of the type:\n{plan}"
                );
                assert!(
                    !plan
                        .lines()
                        .any(|line| line.starts_with("SCAN") && line != "SCAN page"),
                    "{filter}: a scan:\n{plan}"
                );
            }
        }
        // With every Contoso attribute searchable, the same filters drive.
        let all = IndexRules::new(
            2,
            [(
                CONTOSO,
                vec![
                    "region".to_owned(),
                    "costcenter".to_owned(),
                    "customFields".to_owned(),
                ],
            )],
        );
        let filter = format!(r#"{CONTOSO}:customFields[BPO_Vendor_ID eq "v1" and site pr]"#);
        let (count, _) = plans_with(&registry, &all, &filter, None);
        assert!(count.contains(lookup), "{count}");
    }
}
