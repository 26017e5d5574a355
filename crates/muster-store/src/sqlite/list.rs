//! Lists on SQLite: a plan (`sql/list.rs`, made on the caller's task) run by
//! a reader connection in one read transaction, so the total and the page
//! come from the same snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use muster_scim::SchemaRegistry;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql};

use super::read::{to_version, ReadResource, ResourceRow};
use super::rules::{self, IndexRules};
use crate::sql::list::{self as planner, Landmarks, ListPlan, Position};
use crate::sql::{Dialect, Param};
use crate::{ListPage, ListQuery, ResourceId, StoreError, TenantId};

/// The migration step of this module (see `schema.rs`), version 13: how
/// many resources each tenant has of each type, and a generation that
/// every insert or delete of one moves on, kept by triggers in the
/// transaction that changes `resources` (whichever code or process writes
/// it). An unfiltered list answers its total from here, and finds where a
/// deep page starts from [`Landmarks`] of the current generation, instead
/// of counting and stepping over 100,000 rows per page (BENCHMARKS.md,
/// issue 15).
pub(crate) const MIGRATION: &str = "
CREATE TABLE resource_counts (
    tenant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    total INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, resource_type)
) WITHOUT ROWID;
INSERT INTO resource_counts (tenant_id, resource_type, total, generation)
    SELECT tenant_id, resource_type, count(*), 1 FROM resources
    GROUP BY tenant_id, resource_type;
CREATE TRIGGER resources_counted_on_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, total, generation)
        VALUES (NEW.tenant_id, NEW.resource_type, 1, 1)
        ON CONFLICT (tenant_id, resource_type)
        DO UPDATE SET total = total + 1, generation = generation + 1;
END;
CREATE TRIGGER resources_counted_on_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET total = total - 1, generation = generation + 1
        WHERE tenant_id = OLD.tenant_id AND resource_type = OLD.resource_type;
END;
CREATE TRIGGER resources_counted_on_move
    AFTER UPDATE OF tenant_id, resource_type, seq ON resources BEGIN
    UPDATE resource_counts SET total = total - 1, generation = generation + 1
        WHERE tenant_id = OLD.tenant_id AND resource_type = OLD.resource_type;
    INSERT INTO resource_counts (tenant_id, resource_type, total, generation)
        VALUES (NEW.tenant_id, NEW.resource_type, 1, 1)
        ON CONFLICT (tenant_id, resource_type)
        DO UPDATE SET total = total + 1, generation = generation + 1;
END;
";

/// The [`Landmarks`] of each tenant's resource types, as last taken; used
/// only while their generation is the one read in a list's transaction.
#[derive(Default)]
pub(crate) struct LandmarkCache {
    by_type: Mutex<HashMap<(TenantId, String), Arc<Landmarks>>>,
}

impl LandmarkCache {
    /// The landmarks of `plan`'s type at `generation`: kept ones, or taken
    /// now (one pass over the type's `seq`s) and kept.
    fn at(
        &self,
        connection: &Connection,
        plan: &ListPlan,
        generation: i64,
    ) -> Result<Arc<Landmarks>, StoreError> {
        let key = (plan.tenant.clone(), plan.resource_type.clone());
        let kept = self
            .by_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|landmarks| landmarks.generation == generation)
            .cloned();
        if let Some(landmarks) = kept {
            return Ok(landmarks);
        }
        let mut statement = connection.prepare_cached(
            "SELECT seq FROM resources WHERE tenant_id = ?1 AND resource_type = ?2 ORDER BY seq",
        )?;
        let seqs = statement
            .query_map(params![plan.tenant.0, plan.resource_type], |row| row.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        let landmarks = Arc::new(Landmarks::take(generation, seqs));
        self.by_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::clone(&landmarks));
        Ok(landmarks)
    }
}

/// How many resources of `plan`'s type its tenant has, and the generation
/// of that set (0 and 0 before the first).
fn counted(connection: &Connection, plan: &ListPlan) -> Result<(u64, i64), StoreError> {
    let counted = connection
        .prepare_cached(
            "SELECT total, generation FROM resource_counts
             WHERE tenant_id = ?1 AND resource_type = ?2",
        )?
        .query_row(params![plan.tenant.0, plan.resource_type], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })
        .optional()?;
    Ok(counted.map_or((0, 0), |(total, generation)| {
        (to_version(total), generation)
    }))
}

/// What running a plan gives.
pub(crate) enum Listed {
    /// The page, its resources not yet parsed.
    Page(ReadPage),
    /// The tenant's index rules changed since the plan was made: plan
    /// again with these (read in the same transaction).
    Stale(IndexRules),
}

/// Makes the plan of a list query in SQLite's dialect, for the tenant's
/// index `rules`.
pub(crate) fn plan(
    tenant: &TenantId,
    registry: &SchemaRegistry,
    query: &ListQuery,
    rules: &IndexRules,
) -> Result<ListPlan, StoreError> {
    planner::plan(Dialect::Sqlite, tenant, registry, query, rules)
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Text(text) => ValueRef::Text(text.as_bytes()),
            Param::Integer(integer) => ValueRef::Integer(*integer),
            Param::Real(real) => ValueRef::Real(*real),
            Param::Bool(flag) => ValueRef::Integer(i64::from(*flag)),
            // SQLite's dialect binds instants as their sortable text.
            Param::Time(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "an instant is bound as text on SQLite".into(),
                ))
            }
        }))
    }
}

/// A sort value as SQLite returned it (`None`: NULL; a blob, which no sort
/// value is, counts as NULL).
fn sort_value(value: ValueRef<'_>) -> Result<Option<Param>, StoreError> {
    Ok(match value {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(integer) => Some(Param::Integer(integer)),
        ValueRef::Real(real) => Some(Param::Real(real)),
        ValueRef::Text(text) => Some(Param::Text(
            std::str::from_utf8(text)
                .map_err(|error| StoreError::Database(format!("a sort value: {error}")))?
                .to_owned(),
        )),
    })
}

/// Runs a plan, in one read transaction that first checks the tenant's
/// index rule generation is the plan's (one SELECT): SQL written for other
/// rules could rely on the lookup index for rows no longer in it.
pub(crate) fn run(
    connection: &Connection,
    plan: ListPlan,
    landmarks: &LandmarkCache,
) -> Result<Listed, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let listed = if rules::generation(connection, &plan.tenant)? == plan.generation {
        Listed::Page(run_in_transaction(connection, &plan, landmarks)?)
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

fn run_in_transaction(
    connection: &Connection,
    plan: &ListPlan,
    landmarks: &LandmarkCache,
) -> Result<ReadPage, StoreError> {
    let mut window = plan.window()?;
    let mut known_total = None;
    if plan.lists_every_resource_by_index() {
        let (total, generation) = counted(connection, plan)?;
        known_total = Some(total);
        if window.offset() >= Landmarks::STRIDE {
            plan.skip_to_landmark(&mut window, &*landmarks.at(connection, plan, generation)?);
        }
    }
    // Each match's position and row.
    let mut found: Vec<(Position, ResourceRow)> = Vec::new();
    if window.limit > 0 {
        let (sql, params) = plan.page_query(&window, "r.id, r.json, r.version, r.unmapped");
        let mut statement = connection.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            let position = Position {
                seq: row.get(4)?,
                sort_value: sort_value(row.get_ref(5)?)?,
            };
            let resource = ResourceRow {
                id: ResourceId(row.get(0)?),
                resource_type: plan.resource_type.clone(),
                json: row.get(1)?,
                version: row.get(2)?,
                unmapped: row.get(3)?,
            };
            found.push((position, resource));
        }
    }
    let total_results = match known_total.or_else(|| plan.total_from(&window, found.len())) {
        Some(total) => total,
        None => {
            let (count_sql, count_params) = plan.count_query();
            let total: i64 = connection
                .prepare_cached(&count_sql)?
                .query_row(params_from_iter(count_params.iter()), |row| row.get(0))?;
            to_version(total)
        }
    };
    let (rows, next_cursor) = plan.finish(found);
    let resources = rows
        .into_iter()
        .map(|row| ReadResource::read(connection, &plan.tenant, row, plan.include_members))
        .collect::<Result<_, _>>()?;
    Ok(ReadPage {
        total_results,
        resources,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema::open_reader;
    use crate::sqlite::{SqliteStore, DATABASE_FILE};
    use crate::Page;
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
        let explain = |sql: &str, params: &[Param]| {
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
        let (count_sql, count_params) = plan.count_query();
        let (page_sql, page_params) = plan.page_query(&plan.window().unwrap(), "r.id, r.json");
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
