//! Searches: one resource type (`GET /{type}`, `POST /{type}/.search`) with
//! index or cursor paging, and every type at once (`POST /.search`).

use muster_scim::message::{ListResponse, SearchRequest};
use muster_scim::projection::Projection;
use muster_scim::{AttrPath, Filter, ResourceType, SchemaRegistry, ScimError, ScimType};
use muster_store::{ListQuery, Page};
use serde_json::Value;

use crate::{Error, Session};

impl Session<'_> {
    /// Searches the resources of `rt`: a list response.
    pub async fn search(&self, rt: &ResourceType, request: SearchRequest) -> Result<Value, Error> {
        search_one(self, rt, request).await
    }

    /// Searches every resource type (`POST /.search`; index paging only):
    /// each type gets the attributes it declares, and the window is taken
    /// across the types in resource-type order.
    pub async fn search_all(&self, request: SearchRequest) -> Result<Value, Error> {
        let ctx = self;
        if request.cursor.is_some() {
            return Err(ScimError::bad_request(
                ScimType::InvalidCursor,
                "cursor paging is supported per resource type, not on the root /.search",
            )
            .into());
        }
        let paging = request.paging(
            ctx.service().limits().default_page_size,
            ctx.service().limits().max_page_size,
        );
        // A root search spans types that declare different attributes: each type
        // gets the attributes it knows; one none of them knows is an error.
        let rts: Vec<ResourceType> = ctx.registry().resource_types().to_vec();
        let mut plans = Vec::new();
        let mut first_error = None;
        for rt in &rts {
            let mut typed = request.clone();
            typed
                .attributes
                .retain(|name| declares(ctx.registry(), rt, name));
            typed
                .excluded_attributes
                .retain(|name| declares(ctx.registry(), rt, name));
            if !request.attributes.is_empty() && typed.attributes.is_empty() {
                continue;
            }
            // A filter on attributes a type does not declare matches none of it.
            match list_query(
                ctx,
                rt,
                &typed,
                Page::Index {
                    start_index: 1,
                    count: 0,
                },
            ) {
                Ok((count_query, _)) => plans.push((rt, typed, count_query)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        for list in [&request.attributes, &request.excluded_attributes] {
            if let Some(unknown) = list
                .iter()
                .find(|name| !rts.iter().any(|rt| declares(ctx.registry(), rt, name)))
            {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{unknown}' is declared by no resource type"
                ))
                .into());
            }
        }
        if plans.is_empty() {
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        // Count every type first, then take the requested window across them in
        // resource-type order.
        let mut totals = Vec::new();
        for (_, _, count_query) in &plans {
            let page = ctx
                .service()
                .store()
                .list(ctx.tenant(), ctx.registry(), count_query)
                .await?;
            totals.push(page.total_results);
        }
        let total: u64 = totals.iter().sum();
        let mut resources = Vec::new();
        let mut skip = paging.offset();
        let mut remaining = paging.count;
        for ((rt, typed, _), type_total) in plans.iter().zip(totals) {
            if skip >= type_total {
                skip -= type_total;
                continue;
            }
            if remaining == 0 {
                break;
            }
            let page = Page::Index {
                start_index: skip + 1,
                count: remaining,
            };
            skip = 0;
            let (query, projection) = list_query(ctx, rt, typed, page)?;
            let page = ctx
                .service()
                .store()
                .list(ctx.tenant(), ctx.registry(), &query)
                .await?;
            remaining = remaining.saturating_sub(page.resources.len() as u64);
            resources.extend(
                page.resources
                    .into_iter()
                    .map(|s| ctx.render(rt, s, &projection)),
            );
        }
        Ok(list_json(ListResponse::new(
            resources,
            total,
            paging.start_index,
        )))
    }
}

/// Whether `rt` declares the attribute path `name` (or the extension it names).
fn declares(registry: &SchemaRegistry, rt: &ResourceType, name: &str) -> bool {
    AttrPath::parse(name).is_ok_and(|path| registry.resolve(rt, &path).is_some())
}

fn list_query(
    ctx: &Session<'_>,
    rt: &ResourceType,
    request: &SearchRequest,
    page: Page,
) -> Result<(ListQuery, Projection), Error> {
    let filter = match &request.filter {
        Some(text) => {
            let filter = Filter::parse_with(text, &ctx.service().limits().filter_limits)?;
            filter.check(ctx.registry(), rt)?;
            Some(filter)
        }
        None => None,
    };
    let sort = request.sort(ctx.registry(), rt)?;
    let sort_by = sort
        .as_ref()
        .map(|(key, _)| AttrPath::parse(&key.canonical_path()))
        .transpose()?;
    let projection = request.projection(ctx.registry(), rt)?;
    Ok((
        ListQuery {
            resource_type: rt.id.clone(),
            filter,
            sort_by,
            descending: sort.is_some_and(|(_, order)| order.is_descending()),
            page,
            include_members: projection.includes_members(),
        },
        projection,
    ))
}

async fn search_one(
    ctx: &Session<'_>,
    rt: &ResourceType,
    request: SearchRequest,
) -> Result<Value, Error> {
    let paging = request.paging(
        ctx.service().limits().default_page_size,
        ctx.service().limits().max_page_size,
    );
    let page = match &request.cursor {
        Some(cursor) => Page::Cursor {
            cursor: (!cursor.is_empty()).then(|| cursor.clone()),
            count: paging.count,
        },
        None => Page::Index {
            start_index: paging.start_index,
            count: paging.count,
        },
    };
    let (query, projection) = list_query(ctx, rt, &request, page)?;
    let page = ctx
        .service()
        .store()
        .list(ctx.tenant(), ctx.registry(), &query)
        .await?;
    let resources: Vec<Value> = page
        .resources
        .into_iter()
        .map(|stored| ctx.render(rt, stored, &projection))
        .collect();
    let response = match query.page {
        Page::Index { start_index, .. } => {
            ListResponse::new(resources, page.total_results, start_index)
        }
        Page::Cursor { .. } => {
            ListResponse::with_cursor(resources, page.total_results, page.next_cursor)
        }
    };
    Ok(list_json(response))
}

/// A list response as JSON, its resources moved rather than copied (they
/// are most of its size).
fn list_json(mut response: ListResponse) -> Value {
    let resources = std::mem::take(&mut response.resources);
    let mut value = serde_json::to_value(&response).unwrap_or(Value::Null);
    if let Value::Object(members) = &mut value {
        // `Resources` is always serialised, so this keeps its place.
        members.insert("Resources".to_owned(), Value::Array(resources));
    }
    value
}
