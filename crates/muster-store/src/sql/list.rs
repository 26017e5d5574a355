//! Lists: filter, order and page in SQL, planned once for either backend.
//!
//! A plan (SQL text and parameters) is made from the query and the registry
//! on the caller's task; the backend then runs it in one read transaction,
//! so the total and the page come from the same snapshot.
//!
//! Order is stable: by `seq` (creation order), or by the sort value with
//! `seq` breaking ties (ascending in both directions, as the in-memory sort
//! keeps input order). A cursor (RFC 9865) is opaque base64url of the last
//! row's (sort value, seq), so the next page starts strictly after it even
//! when rows are added or removed meanwhile.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use muster_scim::{SchemaRegistry, ScimError, ScimType};
use serde_json::{json, Value};

use super::query::QueryBuilder;
use super::sort::SortKind;
use super::{Dialect, Param};
use crate::sqlite::rules::IndexRules;
use crate::{ListQuery, Page, StoreError, TenantId};

/// A list query turned into SQL.
pub(crate) struct ListPlan {
    /// The tenant listed.
    pub tenant: TenantId,
    /// The resource type listed.
    pub resource_type: String,
    /// Whether to read a Group's members with it.
    pub include_members: bool,
    /// The index rule generation the SQL was written for.
    pub generation: i64,
    dialect: Dialect,
    with_count: &'static str,
    with_page: &'static str,
    filter: String,
    /// Whether the query has no filter (every resource of the type matches).
    unfiltered: bool,
    filter_params: usize,
    sort_value: Option<String>,
    sort_kind: SortKind,
    descending: bool,
    params: Vec<Param>,
    page: Page,
    fingerprint: String,
}

/// Makes the plan of a list query in `dialect`, for the tenant's index
/// `rules`.
pub(crate) fn plan(
    dialect: Dialect,
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
    let mut builder = QueryBuilder::new(dialect, registry, resource_type, tenant, rules);
    let filter = match &query.filter {
        Some(filter) => builder.filter(filter),
        None => dialect.truth(true).to_owned(),
    };
    let filter_params = builder.params.len();
    let with_count = builder.with_clause();
    let (sort_value, sort_kind) = match &query.sort_by {
        Some(path) => {
            let (value, kind) = builder.sort_value(path)?;
            (Some(value), kind)
        }
        None => (None, SortKind::Text),
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
        include_members: query.include_members,
        generation: rules.generation,
        dialect,
        with_count,
        with_page: builder.with_clause(),
        filter,
        unfiltered: query.filter.is_none(),
        filter_params,
        sort_value,
        sort_kind,
        descending: query.descending,
        params: builder.params,
        page: query.page.clone(),
        fingerprint,
    })
}

/// Where a row is in the order: its sort value (`None`: NULL) and `seq`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    /// The sort value.
    pub sort_value: Option<Param>,
    /// The row's `seq`.
    pub seq: i64,
}

/// Every [`Landmarks::STRIDE`]-th `seq` of the resources of one type, in
/// creation order, as of one generation of that type's set of resources: a
/// page deep in an unfiltered listing starts from the nearest landmark
/// instead of stepping over every row before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landmarks {
    /// The generation of the set of resources they were taken from.
    pub generation: i64,
    /// The `seq` of rows 0, STRIDE, 2 × STRIDE, ... in creation order.
    pub seqs: Vec<i64>,
}

impl Landmarks {
    /// Rows between two landmarks.
    pub(crate) const STRIDE: u64 = 128;

    /// Takes every [`Landmarks::STRIDE`]-th of `seqs` (all the type's rows,
    /// in creation order).
    pub(crate) fn take(generation: i64, seqs: impl IntoIterator<Item = i64>) -> Landmarks {
        let stride = usize::try_from(Landmarks::STRIDE).unwrap_or(usize::MAX);
        Landmarks {
            generation,
            seqs: seqs.into_iter().step_by(stride).collect(),
        }
    }
}

/// The rows a page reads: `limit` from `offset`, after `after`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    /// The most rows to read (0: read none).
    pub limit: u64,
    offset: u64,
    after: Option<Position>,
}

impl Window {
    /// How many matching rows the window skips before its first.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

impl ListPlan {
    /// The kind of the sort values (text when sorted by creation: the sort
    /// value is then always NULL).
    pub(crate) fn sort_kind(&self) -> SortKind {
        self.sort_kind
    }

    /// The rows to read for the page asked for; a cursor is checked here.
    pub(crate) fn window(&self) -> Result<Window, StoreError> {
        Ok(match &self.page {
            Page::Index { start_index, count } => Window {
                limit: *count,
                offset: start_index.saturating_sub(1),
                after: None,
            },
            Page::Cursor { count: 0, .. } => Window {
                limit: 0,
                offset: 0,
                after: None,
            },
            Page::Cursor { cursor, count } => Window {
                limit: count.saturating_add(1),
                offset: 0,
                after: match cursor {
                    Some(cursor) => Some(self.decode_cursor(cursor)?),
                    None => None,
                },
            },
        })
    }

    /// Whether the plan pages by index through every resource of its type in
    /// creation order: the listing an identity provider's full import makes,
    /// whose total and page start [`Landmarks`] answer without counting.
    pub(crate) fn lists_every_resource_by_index(&self) -> bool {
        self.unfiltered && self.sort_value.is_none() && matches!(self.page, Page::Index { .. })
    }

    /// Moves an index window of an unfiltered listing in creation order (see
    /// [`ListPlan::lists_every_resource_by_index`]) to start at the last
    /// landmark before its offset: the same rows, with at most
    /// [`Landmarks::STRIDE`] - 1 stepped over.
    pub(crate) fn skip_to_landmark(&self, window: &mut Window, landmarks: &Landmarks) {
        if !self.lists_every_resource_by_index() || window.after.is_some() {
            return;
        }
        // Past the last row, the last landmark: the page is then empty
        // after at most STRIDE rows instead of a walk over all of them.
        let last = landmarks.seqs.len().saturating_sub(1) as u64;
        let index = (window.offset / Landmarks::STRIDE).min(last);
        if index == 0 {
            return;
        }
        let Some(&seq) = usize::try_from(index)
            .ok()
            .and_then(|index| landmarks.seqs.get(index))
        else {
            return;
        };
        window.offset -= index * Landmarks::STRIDE;
        // Rows are ordered by `seq` alone: "after seq - 1" starts at seq.
        window.after = Some(Position {
            sort_value: None,
            seq: seq - 1,
        });
    }

    /// The total when the rows found on `window` hold every match: a first
    /// page that is not full (the common `userName eq "..."` lookup answers
    /// from one query); `None` when the matches must be counted.
    pub(crate) fn total_from(&self, window: &Window, found: usize) -> Option<u64> {
        let first_page = window.offset == 0 && window.after.is_none();
        let found = found as u64;
        (first_page && found < window.limit).then_some(found)
    }

    /// The page of `found` (in order): a cursor page reads one row more than
    /// it returns, to know whether another page follows; its cursor is then
    /// the position of the page's last row.
    pub(crate) fn finish<T>(&self, mut found: Vec<(Position, T)>) -> (Vec<T>, Option<String>) {
        let mut next_cursor = None;
        if let Page::Cursor { count, .. } = self.page {
            let wanted = usize::try_from(count).unwrap_or(usize::MAX);
            if found.len() > wanted {
                found.truncate(wanted);
                if let Some((position, _)) = found.last() {
                    next_cursor = Some(self.encode_cursor(position));
                }
            }
        }
        (found.into_iter().map(|(_, row)| row).collect(), next_cursor)
    }

    /// The SQL counting every match, and its parameters.
    pub(crate) fn count_query(&self) -> (String, &[Param]) {
        let sql = format!(
            "{}SELECT count(*) FROM resources r
             WHERE r.tenant_id = {} AND r.resource_type = {} AND {}",
            self.with_count,
            self.dialect.placeholder(1),
            self.dialect.placeholder(2),
            self.filter
        );
        (
            sql,
            self.params.get(..self.filter_params).unwrap_or_default(),
        )
    }

    /// The SQL of one page, and its parameters: the matches of `window`, in
    /// order. Its columns: the resource's `columns` (read from
    /// `resources r`), then its `seq` and its sort value.
    ///
    /// The page is chosen on narrow rows (seq and sort value), then joined
    /// to the resources, so sorting many matches never holds their JSON.
    pub(crate) fn page_query(&self, window: &Window, columns: &str) -> (String, Vec<Param>) {
        let dialect = self.dialect;
        let mut params = self.params.clone();
        let mut bind = |value: Param| {
            params.push(value);
            dialect.placeholder(params.len())
        };
        let sort_value = self.sort_value.as_deref().unwrap_or("NULL");
        let mut matches = format!(
            "SELECT seq, sort_value FROM (
             SELECT r.seq AS seq, {sort_value} AS sort_value
             FROM resources r
             WHERE r.tenant_id = {} AND r.resource_type = {} AND {})",
            dialect.placeholder(1),
            dialect.placeholder(2),
            self.filter
        );
        if dialect == Dialect::Postgres {
            // PostgreSQL names every derived table.
            matches.push_str(" AS matched");
        }
        if let Some(after) = &window.after {
            let seq = bind(Param::Integer(after.seq));
            let condition = if self.sort_value.is_none() {
                format!("seq > {seq}")
            } else {
                match (&after.sort_value, self.descending) {
                    (None, false) => format!("(sort_value IS NULL AND seq > {seq})"),
                    (None, true) => {
                        format!("((sort_value IS NULL AND seq > {seq}) OR sort_value IS NOT NULL)")
                    }
                    (Some(value), false) => {
                        let key = bind(value.clone());
                        format!(
                            "(sort_value IS NULL OR sort_value > {key}
                          OR (sort_value = {key} AND seq > {seq}))"
                        )
                    }
                    (Some(value), true) => {
                        let key = bind(value.clone());
                        format!("(sort_value < {key} OR (sort_value = {key} AND seq > {seq}))")
                    }
                }
            };
            matches.push_str(" WHERE ");
            matches.push_str(&condition);
        }
        let (inner_order, outer_order) = match (&self.sort_value, self.descending) {
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
        let limit = bind(Param::Integer(
            i64::try_from(window.limit).unwrap_or(i64::MAX),
        ));
        let offset = bind(Param::Integer(
            i64::try_from(window.offset).unwrap_or(i64::MAX),
        ));
        let sql = format!(
            "{}SELECT {columns}, page.seq, page.sort_value FROM (
             {matches} ORDER BY {inner_order} LIMIT {limit} OFFSET {offset}
         ) AS page {} resources r ON r.seq = page.seq
         ORDER BY {outer_order}",
            self.with_page,
            dialect.join()
        );
        (sql, params)
    }

    fn encode_cursor(&self, position: &Position) -> String {
        let key = match &position.sort_value {
            None => Value::Null,
            Some(Param::Integer(integer)) => json!(integer),
            Some(Param::Real(real)) => json!(real),
            Some(Param::Text(text)) => json!(text),
            Some(Param::Bool(flag)) => json!(flag),
            // No sort value is an instant (dateTimes sort as texts).
            Some(Param::Time(_)) => Value::Null,
        };
        let cursor = json!({ "s": position.seq, "k": key, "f": self.fingerprint });
        URL_SAFE_NO_PAD.encode(cursor.to_string())
    }

    fn decode_cursor(&self, cursor: &str) -> Result<Position, StoreError> {
        let invalid = || {
            StoreError::Scim(ScimError::bad_request(
                ScimType::InvalidCursor,
                format!("cursor '{cursor}' was not issued by this server for this query"),
            ))
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if value.get("f").and_then(Value::as_str) != Some(self.fingerprint.as_str()) {
            return Err(invalid());
        }
        let seq = value.get("s").and_then(Value::as_i64).ok_or_else(invalid)?;
        let sort_value = match value.get("k") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(Param::Text(text.clone())),
            Some(Value::Number(number)) => Some(match number.as_i64() {
                Some(integer) => Param::Integer(integer),
                None => Param::Real(number.as_f64().ok_or_else(invalid)?),
            }),
            Some(Value::Bool(flag)) => Some(Param::Bool(*flag)),
            Some(_) => return Err(invalid()),
        };
        if let Some(key) = &sort_value {
            if !self.sort_kind.admits(self.dialect, key) {
                return Err(invalid());
            }
        }
        Ok(Position { sort_value, seq })
    }
}
