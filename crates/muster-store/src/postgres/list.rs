//! Lists and scans on PostgreSQL: filters, sorting and paging in the
//! database.
//!
//! A list runs in one snapshot (`begin_snapshot`): it reads the tenant's
//! index rule generation, plans the query (`sql/list.rs`, in PostgreSQL's
//! dialect) with the rules cached for that generation (reading them, in
//! the same snapshot, when the cache has others), then reads the page, the
//! total and the page's computed attributes. So the SQL always matches the
//! rules the rows it reads were indexed under, whichever process changed
//! them.
//!
//! Statements are sent with their parameters' types (`query_typed`: one
//! round trip, an unnamed statement), so PostgreSQL plans each with the
//! values bound: a `LIKE 'abc%'` is answered from the pattern index and a
//! `LIKE '%abc%'` from the trigram index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use muster_scim::{SchemaRegistry, ScimError, ScimType};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use super::{begin_snapshot, read, rules, PostgresStore};
use crate::sql::list::{self as planner, ListPlan, Position};
use crate::sql::sort::SortKind;
use crate::sql::{Dialect, Param};
use crate::sqlite::rules::IndexRules;
use crate::{ListPage, ListQuery, StoreError, StoredResource, TenantId, VisitFn};

/// How many resources a scan reads per round trip.
const SCAN_BATCH: i32 = 256;

/// Each tenant's index rules as last read by a list, to plan the next one
/// (a list checks their generation in its own snapshot).
#[derive(Debug, Default)]
pub(super) struct RulesCache {
    rules: Mutex<HashMap<TenantId, Arc<IndexRules>>>,
}

impl RulesCache {
    /// The cached rules of `tenant`, when they are at `generation`.
    fn at(&self, tenant: &TenantId, generation: i64) -> Option<Arc<IndexRules>> {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .filter(|rules| rules.generation == generation)
            .cloned()
    }

    /// Caches rules a list read, for the next list of the tenant.
    fn remember(&self, tenant: &TenantId, rules: IndexRules) -> Arc<IndexRules> {
        let rules = Arc::new(rules);
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone(), Arc::clone(&rules));
        rules
    }
}

/// [`crate::Store::list`].
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let mut client = store.client().await?;
    let transaction = begin_snapshot(&mut client).await?;
    let generation = rules::generation(&*transaction, tenant).await?;
    let rules = match store.list_rules.at(tenant, generation) {
        Some(rules) => rules,
        None => {
            let rules = rules::load(&*transaction, tenant).await?;
            store.list_rules.remember(tenant, rules)
        }
    };
    let plan = planner::plan(Dialect::Postgres, tenant, registry, query, &rules)?;
    let page = run(&*transaction, &plan).await?;
    transaction.commit().await?;
    Ok(page)
}

/// Reads the page of `plan`, its total and its resources' computed
/// attributes.
async fn run(
    client: &(impl GenericClient + Sync),
    plan: &ListPlan,
) -> Result<ListPage, StoreError> {
    let window = plan.window()?;
    // The filter's values come first, the cursor's key after them.
    if holds_nul(plan.count_query().1) {
        return Err(StoreError::Scim(ScimError::invalid_filter(
            "the filter holds the NUL character (U+0000), which the database cannot store",
        )));
    }
    let mut found: Vec<(Position, StoredResource)> = Vec::new();
    if window.limit > 0 {
        let (sql, params) = plan.page_query(&window, read::COLUMNS);
        if holds_nul(&params) {
            return Err(StoreError::Scim(ScimError::bad_request(
                ScimType::InvalidCursor,
                "the cursor holds the NUL character (U+0000), which the database cannot store; \
                 it was not issued by this server",
            )));
        }
        for row in client.query_typed(&sql, &typed(&params)).await? {
            // The resource's columns (0 to 4), then its seq and sort value.
            let position = Position {
                seq: row.try_get(5)?,
                sort_value: sort_value(&row, 6, plan.sort_kind())?,
            };
            found.push((position, read::stored_from_row(&row)?));
        }
    }
    let total_results = match plan.total_from(&window, found.len()) {
        Some(total) => total,
        None => {
            let (sql, params) = plan.count_query();
            let total: i64 = client
                .query_typed_one(&sql, &typed(params))
                .await?
                .try_get(0)?;
            u64::try_from(total).unwrap_or(0)
        }
    };
    let (resources, next_cursor) = plan.finish(found);
    let resources =
        read::finish_many(client, &plan.tenant, resources, plan.include_members).await?;
    Ok(ListPage {
        total_results,
        resources,
        next_cursor,
    })
}

/// Whether a text parameter holds the NUL character, which PostgreSQL's
/// `text` cannot (no stored value holds one, so nothing could match).
fn holds_nul(params: &[Param]) -> bool {
    params
        .iter()
        .any(|param| matches!(param, Param::Text(text) if super::limits::holds_nul(text)))
}

/// Parameters with their PostgreSQL types.
fn typed(params: &[Param]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|param| -> (&(dyn ToSql + Sync), Type) {
            match param {
                Param::Text(text) => (text, Type::TEXT),
                Param::Integer(integer) => (integer, Type::INT8),
                Param::Real(real) => (real, Type::FLOAT8),
                Param::Bool(flag) => (flag, Type::BOOL),
                Param::Time(time) => (time, Type::TIMESTAMPTZ),
            }
        })
        .collect()
}

/// The sort value in column `index` of `row`, of `kind`.
fn sort_value(row: &Row, index: usize, kind: SortKind) -> Result<Option<Param>, StoreError> {
    Ok(match kind {
        SortKind::Text => row.try_get::<_, Option<String>>(index)?.map(Param::Text),
        SortKind::Number => row.try_get::<_, Option<f64>>(index)?.map(Param::Real),
        SortKind::Flag => row.try_get::<_, Option<bool>>(index)?.map(Param::Bool),
    })
}

/// [`crate::Store::scan`]: every resource of the type as stored (without
/// computed attributes), in creation order, from one snapshot, read a batch
/// at a time so memory stays that of one batch whatever the count.
pub(super) async fn scan(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    mut visit: VisitFn,
) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
    let transaction = begin_snapshot(&mut client).await?;
    let statement = transaction
        .prepare(&format!(
            "SELECT {} FROM resources r
             WHERE r.tenant_id = $1 AND r.resource_type = $2 ORDER BY r.seq",
            read::COLUMNS
        ))
        .await?;
    let portal = transaction
        .bind(&statement, &[&tenant.0, &resource_type])
        .await?;
    let mut visited = 0;
    loop {
        let rows = transaction.query_portal(&portal, SCAN_BATCH).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            visit(&read::stored_from_row(row)?);
            visited += 1;
        }
    }
    transaction.commit().await?;
    Ok(visited)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use muster_scim::{AttrPath, Filter};
    use tokio_postgres::{Client, NoTls};

    use super::*;
    use crate::Page;

    /// The maintenance database's URL (as `tests/pg/mod.rs`).
    fn maintenance_url() -> String {
        std::env::var("MUSTER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    async fn connect(url: &str) -> Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A fresh migrated database: its name and URL.
    async fn database() -> (String, String) {
        let name = format!(
            "muster_unit_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&maintenance_url()).await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = maintenance_url();
        let root = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(root, _)| root);
        let url = format!("{root}/{name}");
        crate::postgres::migrate(&url).await.unwrap();
        (name, url)
    }

    async fn drop_database(name: &str) {
        connect(&maintenance_url())
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }

    const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

    /// The built-in registry plus a Contoso extension with `costCenter`.
    fn contoso_registry() -> SchemaRegistry {
        use muster_scim::{Attribute, AttributeType, Schema};
        let mut registry = SchemaRegistry::builtin();
        registry
            .add_schema(Schema {
                id: CONTOSO.to_owned(),
                name: Some("Contoso".to_owned()),
                description: None,
                attributes: vec![Attribute::new("costCenter", AttributeType::String)],
            })
            .unwrap();
        registry.bind_extension("User", CONTOSO, false).unwrap();
        registry
    }

    /// The plans (count, page) PostgreSQL makes for the SQL the planner
    /// renders for `filter` on Users, with Contoso's `costCenter` not
    /// searchable.
    async fn explain(client: &Client, filter: &str, sort_by: Option<&str>) -> (String, String) {
        let query = ListQuery {
            resource_type: "User".to_owned(),
            filter: Some(Filter::parse(filter).unwrap()),
            sort_by: sort_by.map(|path| AttrPath::parse(path).unwrap()),
            descending: false,
            page: Page::Index {
                start_index: 1,
                count: 10,
            },
            include_members: true,
        };
        let plan = planner::plan(
            Dialect::Postgres,
            &TenantId::default_tenant(),
            &contoso_registry(),
            &query,
            &IndexRules::new(1, [(CONTOSO, Vec::new())]),
        )
        .unwrap();
        let explain = |sql: String, params: Vec<Param>| async move {
            let rows = client
                .query_typed(&format!("EXPLAIN {sql}"), &typed(&params))
                .await
                .unwrap();
            rows.iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (count_sql, count_params) = plan.count_query();
        let count = explain(count_sql.clone(), count_params.to_vec()).await;
        let (page_sql, page_params) = plan.page_query(&plan.window().unwrap(), read::COLUMNS);
        (count, explain(page_sql, page_params).await)
    }

    /// At 100,000 users, `eq` and `sw` on a searchable attribute are
    /// answered from the pattern index and `co` and `ew` from the trigram
    /// index, as the planner writes them; resources are then found by key.
    #[tokio::test]
    async fn rendered_filters_use_the_attribute_indexes_at_100000_rows() {
        let (name, url) = database().await;
        let client = connect(&url).await;
        client
            .batch_execute(
                "INSERT INTO attribute_paths (path) VALUES ('username'), ('title'),
                     ('urn:ietf:params:scim:schemas:extension:contoso:2.0:user:costcenter');
                 INSERT INTO resources (tenant_id, id, resource_type, json, version, created,
                     last_modified, user_name_lower)
                 SELECT 'default', 'u' || n, 'User', '{}', 1, now(), now(),
                     'user' || n || '@contoso.com'
                 FROM generate_series(1, 100000) AS n;
                 INSERT INTO resource_values (resource_seq, path_id, element, item, tenant_id,
                     present, value_lower)
                 SELECT seq, 1, 0, 0, 'default', true, user_name_lower FROM resources;
                 INSERT INTO resource_values (resource_seq, path_id, element, item, tenant_id,
                     present, value_lower)
                 SELECT seq, 2, 0, 0, 'default', true, 'title ' || (seq % 50) FROM resources;
                 INSERT INTO resource_values (resource_seq, path_id, element, item, tenant_id,
                     present, indexed, value_lower)
                 SELECT seq, 3, 0, 0, 'default', true, false, 'cc' || (seq % 1000)
                 FROM resources;
                 ANALYZE resources; ANALYZE resource_values; ANALYZE attribute_paths;",
            )
            .await
            .unwrap();
        let lookup = "resource_values_lookup";
        let trigram = "resource_values_trigram";
        for (filter, sort, index) in [
            (r#"userName eq "User77@contoso.com""#, None, lookup),
            (r#"userName sw "user777""#, None, lookup),
            (r#"userName co "er7777@con""#, None, trigram),
            (r#"userName ew "7777@contoso.com""#, None, trigram),
            (
                r#"userName eq "user5@contoso.com" and title pr"#,
                None,
                lookup,
            ),
            (
                r#"userName sw "user777" and not (title eq "x")"#,
                None,
                lookup,
            ),
            (r#"userName eq "a" or userName co "er7777@""#, None, trigram),
            (r#"userName sw "user777""#, Some("title"), lookup),
        ] {
            let (count, page) = explain(&client, filter, sort).await;
            for plan in [&count, &page] {
                assert!(plan.contains(index), "{filter}: no {index}:\n{plan}");
                assert!(
                    !plan.contains("Seq Scan on resource"),
                    "{filter}: a sequential scan:\n{plan}"
                );
                assert!(
                    plan.contains("resources_pkey"),
                    "{filter}: resources not found by key:\n{plan}"
                );
            }
        }
        // A clause on a path that is not searchable never reads the
        // attribute indexes: it checks the resources the rest of the filter
        // found, by key; alone, the resources of the type (PostgreSQL picks
        // how).
        let filter = format!(r#"{CONTOSO}:costCenter eq "cc7" and userName sw "user777""#);
        let (count, page) = explain(&client, &filter, None).await;
        for plan in [&count, &page] {
            assert_eq!(plan.matches(lookup).count(), 1, "{filter}:\n{plan}");
            assert!(!plan.contains(trigram), "{filter}:\n{plan}");
            assert!(
                plan.contains("resource_values_pkey"),
                "{filter}: not checked by key:\n{plan}"
            );
            assert!(
                !plan.contains("Seq Scan on resource"),
                "{filter}: a sequential scan:\n{plan}"
            );
        }
        let filter = format!(r#"{CONTOSO}:costCenter co "7""#);
        let (count, page) = explain(&client, &filter, None).await;
        for plan in [&count, &page] {
            assert!(
                !plan.contains(lookup) && !plan.contains(trigram),
                "{filter}: an attribute index:\n{plan}"
            );
        }
        drop(client);
        drop_database(&name).await;
    }
}
