//! Resource endpoints: list and search, create, read, replace, patch, delete,
//! for every resource type the registry knows (`/Users`, `/Groups`, ...).
//!
//! Each operation is a plain async function over [`Request`] context so that
//! `/Bulk` runs exactly the same code as the single-resource endpoints.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use muster_scim::message::{ListResponse, SearchRequest};
use muster_scim::patch::{apply_patch_with, PatchOp, PatchOpKind, PatchOperation};
use muster_scim::projection::Projection;
use muster_scim::resource::{check_immutable, normalize_with, Normalized};
use muster_scim::{
    AttrPath, Filter, FilterValue, ResourceType, SchemaRegistry, ScimError, UndeclaredPolicy,
};
use muster_store::{
    Actor, ListQuery, Member, MemberChange, NewResource, Page, Precondition, ResourceId,
    StoredResource, UniqueAttribute, Update,
};
use serde_json::{json, Value};

use crate::auth::Client;
use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};
use crate::tenant::TenantView;
use crate::AppState;

/// The absolute SCIM base URL as the client reached it, for `meta.location`.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}/scim/v2")
}

/// Everything an operation needs to know about its caller and context.
pub struct Context {
    /// Shared state.
    pub state: AppState,
    /// The tenant's registry snapshot for this request.
    pub registry: Arc<SchemaRegistry>,
    /// The tenant's policy for attributes no schema declares.
    pub undeclared: UndeclaredPolicy,
    /// The tenant's view this request was served from.
    view: Arc<TenantView>,
    /// The authenticated client.
    pub client: Client,
    /// The actor recorded in change records.
    pub actor: Actor,
    /// The absolute base URL.
    pub base: String,
}

impl Context {
    /// The context of one request: the caller, and its tenant's schemas and
    /// policies.
    pub async fn load(
        state: AppState,
        client: Client,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let view = state
            .tenants
            .get(state.store.as_ref(), &client.tenant)
            .await?;
        Ok(Context {
            registry: Arc::clone(&view.registry),
            undeclared: view.undeclared,
            view,
            actor: Context::actor(&client, headers),
            base: base_url(headers),
            state,
            client,
        })
    }

    /// The actor recorded in change records for this client and request.
    pub fn actor(client: &Client, headers: &HeaderMap) -> Actor {
        let request_id = headers
            .get("x-request-id")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Actor {
            client: client.name.clone(),
            request_id,
        }
    }

    /// The attributes whose values a write to `rt` must keep unique.
    pub fn unique_attributes(&self, rt: &ResourceType) -> Vec<UniqueAttribute> {
        self.view.unique.get(&rt.id).cloned().unwrap_or_default()
    }

    /// The resource type served at `/{endpoint}`.
    pub fn resource_type(&self, endpoint: &str) -> Result<ResourceType, ApiError> {
        self.registry
            .resource_types()
            .iter()
            .find(|rt| {
                rt.endpoint
                    .trim_start_matches('/')
                    .eq_ignore_ascii_case(endpoint)
            })
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no such endpoint '/{endpoint}'")))
    }

    /// Adds `meta.location` and group `$ref`s, then applies the projection.
    fn render(&self, rt: &ResourceType, stored: StoredResource, projection: &Projection) -> Value {
        let mut resource = stored.resource;
        if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
            meta.insert(
                "location".into(),
                json!(format!("{}{}/{}", self.base, rt.endpoint, stored.id.0)),
            );
        }
        for (attribute, default_endpoint) in [("groups", "/Groups"), ("members", "/Users")] {
            if let Some(items) = resource.get_mut(attribute).and_then(Value::as_array_mut) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    let endpoint = match item.get("type").and_then(Value::as_str) {
                        Some("Group") => "/Groups",
                        Some("User") => "/Users",
                        _ => default_endpoint,
                    };
                    if let Some(id) = item.get("value").and_then(Value::as_str) {
                        let reference = format!("{}{endpoint}/{id}", self.base);
                        item.insert("$ref".into(), json!(reference));
                    }
                }
            }
        }
        projection.apply(&self.registry, rt, &mut resource);
        resource
    }

    fn respond(
        &self,
        status: StatusCode,
        rt: &ResourceType,
        stored: StoredResource,
        projection: &Projection,
    ) -> ScimResponse {
        let etag = Some(etag(stored.version));
        let location = (status == StatusCode::CREATED)
            .then(|| format!("{}{}/{}", self.base, rt.endpoint, stored.id.0));
        ScimResponse {
            status,
            body: self.render(rt, stored, projection),
            etag,
            location,
        }
    }
}

/// The weak ETag of a version.
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// The `If-Match` precondition, if any. `*` matches any version.
pub fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Precondition::None);
    };
    precondition_from_text(value.to_str().unwrap_or_default())
}

/// A precondition from an ETag text (`If-Match` or a bulk `version`).
pub fn precondition_from_text(text: &str) -> Result<Precondition, ApiError> {
    let text = text.trim();
    if text == "*" {
        return Ok(Precondition::None);
    }
    parse_etag(text).map(Precondition::Version).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "If-Match '{text}' is not an ETag of this server (expected W/\"<version>\")"
        ))
        .into()
    })
}

fn parse_etag(text: &str) -> Option<u64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Query parameters in the order given; duplicates are kept so that they can
/// be refused rather than silently resolved.
pub type QueryParams = Vec<(String, String)>;

fn query_param<'q>(query: &'q QueryParams, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn projection_from_query(
    ctx: &Context,
    rt: &ResourceType,
    query: &QueryParams,
) -> Result<Projection, ApiError> {
    Ok(Projection::parse(
        &ctx.registry,
        rt,
        query_param(query, "attributes"),
        query_param(query, "excludedAttributes"),
    )?)
}

/// `GET /{endpoint}`: list with filter, sort, paging and projection.
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    Query(query): Query<QueryParams>,
) -> Result<ScimResponse, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let request = SearchRequest::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    search_one(&ctx, &rt, request).await.map(ScimResponse::ok)
}

/// `POST /{endpoint}/.search`.
pub async fn search(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let request = SearchRequest::from_json(&body)?;
    search_one(&ctx, &rt, request).await.map(ScimResponse::ok)
}

/// `POST /.search`: searches every resource type (index paging only).
pub async fn search_root(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let request = SearchRequest::from_json(&body)?;
    if request.cursor.is_some() {
        return Err(ScimError::bad_request(
            muster_scim::ScimType::InvalidCursor,
            "cursor paging is supported per resource type, not on the root /.search",
        )
        .into());
    }
    let paging = request.paging(
        ctx.state.config.default_page_size,
        ctx.state.config.max_page_size,
    );
    // A root search spans types that declare different attributes: each type
    // gets the attributes it knows; one none of them knows is an error.
    let rts: Vec<ResourceType> = ctx.registry.resource_types().to_vec();
    let mut plans = Vec::new();
    let mut first_error = None;
    for rt in &rts {
        let mut typed = request.clone();
        typed
            .attributes
            .retain(|name| declares(&ctx.registry, rt, name));
        typed
            .excluded_attributes
            .retain(|name| declares(&ctx.registry, rt, name));
        if !request.attributes.is_empty() && typed.attributes.is_empty() {
            continue;
        }
        // A filter on attributes a type does not declare matches none of it.
        match list_query(
            &ctx,
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
            .find(|name| !rts.iter().any(|rt| declares(&ctx.registry, rt, name)))
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
            .state
            .store
            .list(&ctx.client.tenant, &ctx.registry, count_query)
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
        let (query, projection) = list_query(&ctx, rt, typed, page)?;
        let page = ctx
            .state
            .store
            .list(&ctx.client.tenant, &ctx.registry, &query)
            .await?;
        remaining = remaining.saturating_sub(page.resources.len() as u64);
        resources.extend(
            page.resources
                .into_iter()
                .map(|s| ctx.render(rt, s, &projection)),
        );
    }
    Ok(ScimResponse::ok(list_json(ListResponse::new(
        resources,
        total,
        paging.start_index,
    ))))
}

/// Whether `rt` declares the attribute path `name` (or the extension it names).
fn declares(registry: &SchemaRegistry, rt: &ResourceType, name: &str) -> bool {
    AttrPath::parse(name).is_ok_and(|path| registry.resolve(rt, &path).is_some())
}

fn list_query(
    ctx: &Context,
    rt: &ResourceType,
    request: &SearchRequest,
    page: Page,
) -> Result<(ListQuery, Projection), ApiError> {
    let filter = match &request.filter {
        Some(text) => {
            let filter = Filter::parse_with(text, &ctx.state.config.filter_limits)?;
            filter.check(&ctx.registry, rt)?;
            Some(filter)
        }
        None => None,
    };
    let sort = request.sort(&ctx.registry, rt)?;
    let sort_by = sort
        .as_ref()
        .map(|(key, _)| AttrPath::parse(&key.canonical_path()))
        .transpose()?;
    let projection = request.projection(&ctx.registry, rt)?;
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
    ctx: &Context,
    rt: &ResourceType,
    request: SearchRequest,
) -> Result<Value, ApiError> {
    let paging = request.paging(
        ctx.state.config.default_page_size,
        ctx.state.config.max_page_size,
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
        .state
        .store
        .list(&ctx.client.tenant, &ctx.registry, &query)
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

/// `POST /{endpoint}`.
pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    Query(query): Query<QueryParams>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let projection = projection_from_query(&ctx, &rt, &query)?;
    create_resource(&ctx, &rt, body, &projection).await
}

/// Creates a resource from a client body; shared by POST and Bulk.
pub async fn create_resource(
    ctx: &Context,
    rt: &ResourceType,
    body: Value,
    projection: &Projection,
) -> Result<ScimResponse, ApiError> {
    let Normalized { resource, unmapped } =
        normalize_with(&ctx.registry, rt, &body, ctx.undeclared)?;
    let (resource, members) = split_members(resource)?;
    let resource = hash_password(resource).await?;
    let stored = ctx
        .state
        .store
        .create(
            &ctx.client.tenant,
            &ctx.actor,
            &rt.id,
            NewResource {
                resource,
                members,
                unmapped,
                unique: ctx.unique_attributes(rt),
            },
        )
        .await?;
    Ok(ctx.respond(StatusCode::CREATED, rt, stored, projection))
}

/// `GET /{endpoint}/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    Query(query): Query<QueryParams>,
) -> Result<Response, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let projection = projection_from_query(&ctx, &rt, &query)?;
    let stored = ctx
        .state
        .store
        .get(
            &ctx.client.tenant,
            &rt.id,
            &ResourceId(id),
            projection.includes_members(),
        )
        .await?;
    if let Some(if_none_match) = headers.get(header::IF_NONE_MATCH) {
        let text = if_none_match.to_str().unwrap_or_default();
        let matches = text.trim() == "*"
            || text
                .split(',')
                .filter_map(parse_etag)
                .any(|version| version == stored.version);
        if matches {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag(stored.version))],
            )
                .into_response());
        }
    }
    Ok(ctx
        .respond(StatusCode::OK, &rt, stored, &projection)
        .into_response())
}

/// `PUT /{endpoint}/{id}`.
pub async fn replace(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    Query(query): Query<QueryParams>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let projection = projection_from_query(&ctx, &rt, &query)?;
    replace_resource(&ctx, &rt, &id, precondition(&headers)?, body, &projection).await
}

/// Replaces a resource from a client body; shared by PUT and Bulk.
pub async fn replace_resource(
    ctx: &Context,
    rt: &ResourceType,
    id: &str,
    precondition: Precondition,
    body: Value,
    projection: &Projection,
) -> Result<ScimResponse, ApiError> {
    // A replacement replaces the captured undeclared values too.
    let Normalized { resource, unmapped } =
        normalize_with(&ctx.registry, rt, &body, ctx.undeclared)?;
    let (resource, members) = split_members(resource)?;
    let resource = hash_password(resource).await?;
    let is_group_like = rt_has_members(&ctx.registry, rt);
    let unique = ctx.unique_attributes(rt);
    let registry = Arc::clone(&ctx.registry);
    let rt_for_update = rt.clone();
    let update: muster_store::UpdateFn = Box::new(move |current: &StoredResource| {
        let mut replacement = resource;
        keep_server_attributes(&current.resource, &mut replacement);
        check_immutable(&registry, &rt_for_update, &current.resource, &replacement)?;
        let member_changes = if is_group_like {
            vec![MemberChange::ReplaceAll(members)]
        } else {
            Vec::new()
        };
        Ok(Some(Update {
            resource: replacement,
            member_changes,
            unmapped: Some(unmapped),
            unique,
        }))
    });
    let (stored, _) = ctx
        .state
        .store
        .update(
            &ctx.client.tenant,
            &ctx.actor,
            &rt.id,
            &ResourceId(id.to_owned()),
            precondition,
            projection.includes_members(),
            update,
        )
        .await?;
    Ok(ctx.respond(StatusCode::OK, rt, stored, projection))
}

/// `PATCH /{endpoint}/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    Query(query): Query<QueryParams>,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    let projection = projection_from_query(&ctx, &rt, &query)?;
    let wants_body =
        query_param(&query, "attributes").is_some() || !rt_has_members(&ctx.registry, &rt);
    patch_resource(
        &ctx,
        &rt,
        &id,
        precondition(&headers)?,
        body,
        &projection,
        wants_body,
    )
    .await
    .map(IntoResponse::into_response)
}

/// Applies a PatchOp; shared by PATCH and Bulk.
///
/// Operations on `members` become membership row changes, so patching a
/// 50,000-member group never loads its member list. A group PATCH answers
/// `204 No Content` unless the body is wanted (RFC 7644 section 3.5.2 allows
/// it; the `attributes` parameter forces a body).
pub async fn patch_resource(
    ctx: &Context,
    rt: &ResourceType,
    id: &str,
    precondition: Precondition,
    body: Value,
    projection: &Projection,
    wants_body: bool,
) -> Result<ScimResponse, ApiError> {
    let patch = PatchOp::from_json(&body)?;
    let has_members = rt_has_members(&ctx.registry, rt);
    let (member_changes, operations) = if has_members {
        split_member_operations(patch.operations)?
    } else {
        (Vec::new(), patch.operations)
    };
    let operations = hash_patch_passwords(operations).await?;
    let registry = Arc::clone(&ctx.registry);
    let rt_for_update = rt.clone();
    let policy = ctx.undeclared;
    let unique = ctx.unique_attributes(rt);
    let update: muster_store::UpdateFn = Box::new(move |current: &StoredResource| {
        let patched = apply_patch_with(
            &registry,
            &rt_for_update,
            &current.resource,
            &current.unmapped,
            &operations,
            policy,
        )?;
        if !patched.changed && !patched.unmapped_changed && member_changes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Update {
            resource: patched.resource,
            member_changes,
            unmapped: patched.unmapped_changed.then_some(patched.unmapped),
            unique,
        }))
    });
    let (stored, _) = ctx
        .state
        .store
        .update(
            &ctx.client.tenant,
            &ctx.actor,
            &rt.id,
            &ResourceId(id.to_owned()),
            precondition,
            wants_body && projection.includes_members(),
            update,
        )
        .await?;
    if wants_body {
        Ok(ctx.respond(StatusCode::OK, rt, stored, projection))
    } else {
        Ok(ScimResponse {
            status: StatusCode::NO_CONTENT,
            body: Value::Null,
            etag: Some(etag(stored.version)),
            location: None,
        })
    }
}

/// `DELETE /{endpoint}/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ctx = Context::load(state, client, &headers).await?;
    let rt = ctx.resource_type(&endpoint)?;
    delete_resource(&ctx, &rt, &id, precondition(&headers)?).await
}

/// Deletes a resource; shared by DELETE and Bulk.
pub async fn delete_resource(
    ctx: &Context,
    rt: &ResourceType,
    id: &str,
    precondition: Precondition,
) -> Result<StatusCode, ApiError> {
    ctx.state
        .store
        .delete(
            &ctx.client.tenant,
            &ctx.actor,
            &rt.id,
            &ResourceId(id.to_owned()),
            precondition,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the resource type's core schema has a `members` attribute
/// (membership is kept as rows, not in the JSON).
fn rt_has_members(registry: &SchemaRegistry, rt: &ResourceType) -> bool {
    registry
        .core_schema(rt)
        .and_then(|schema| schema.attribute("members"))
        .is_some()
}

/// Server-owned attributes a PUT body cannot set: carried over from the
/// stored resource so the store sees a complete replacement.
fn keep_server_attributes(current: &Value, replacement: &mut Value) {
    if let (Some(current), Some(replacement)) = (current.as_object(), replacement.as_object_mut()) {
        for key in ["id", "meta"] {
            if let Some(value) = current.get(key) {
                replacement.insert(key.to_owned(), value.clone());
            }
        }
    }
}

/// Takes `members` out of a canonical resource: they are stored as rows.
fn split_members(mut resource: Value) -> Result<(Value, Vec<Member>), ApiError> {
    let members = match resource.as_object_mut().and_then(|o| o.remove("members")) {
        Some(list) => members_from_value(&list)?,
        None => Vec::new(),
    };
    Ok((resource, members))
}

fn members_from_value(list: &Value) -> Result<Vec<Member>, ScimError> {
    let items: Vec<&Value> = match list {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    items
        .into_iter()
        .map(|item| {
            let value = match item {
                Value::Object(object) => object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                    .map(|(_, v)| v),
                other => Some(other),
            };
            match value {
                Some(Value::String(id)) if !id.is_empty() => Ok(Member {
                    value: ResourceId(id.clone()),
                    kind: None,
                }),
                _ => Err(ScimError::invalid_value(format!(
                    "attribute 'members' expects elements with a string 'value' (the member's id), got {item}"
                ))),
            }
        })
        .collect()
}

/// Splits PATCH operations on `members` off into membership changes.
fn split_member_operations(
    operations: Vec<PatchOperation>,
) -> Result<(Vec<MemberChange>, Vec<PatchOperation>), ApiError> {
    let mut changes = Vec::new();
    let mut rest = Vec::new();
    for (index, operation) in operations.into_iter().enumerate() {
        let context = |e: ScimError| e.context(format!("Operations[{index}]"));
        match &operation.path {
            Some(path)
                if path.attribute.attribute.eq_ignore_ascii_case("members")
                    && path.attribute.schema.is_none() =>
            {
                changes.push(member_change(&operation).map_err(context)?);
            }
            None if operation.op != PatchOpKind::Remove => {
                // Path-less add/replace: a `members` key becomes a change;
                // the other keys stay an ordinary operation.
                let mut value = operation.value.clone().unwrap_or(Value::Null);
                let members = value.as_object_mut().and_then(|object| {
                    let key = object
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case("members"))
                        .cloned()?;
                    object.remove(&key)
                });
                if let Some(list) = members {
                    let members = members_from_value(&list).map_err(context)?;
                    changes.push(match operation.op {
                        PatchOpKind::Add => MemberChange::Add(members),
                        _ => MemberChange::ReplaceAll(members),
                    });
                    if value.as_object().is_some_and(|o| !o.is_empty()) {
                        rest.push(PatchOperation {
                            value: Some(value),
                            ..operation
                        });
                    }
                } else {
                    rest.push(operation);
                }
            }
            _ => rest.push(operation),
        }
    }
    Ok((changes, rest))
}

fn member_change(operation: &PatchOperation) -> Result<MemberChange, ScimError> {
    let path = operation.path.as_ref();
    let filter = path.and_then(|p| p.value_filter.as_ref());
    if path.is_some_and(|p| p.attribute.sub_attribute.is_some() || p.sub_attribute.is_some()) {
        return Err(ScimError::invalid_path(
            "members sub-attributes cannot be patched; add or remove whole members",
        ));
    }
    match (operation.op, filter) {
        (PatchOpKind::Remove, Some(filter)) => {
            let mut ids = Vec::new();
            member_ids_from_filter(filter, &mut ids)?;
            Ok(MemberChange::Remove(ids))
        }
        (PatchOpKind::Remove, None) => match &operation.value {
            None | Some(Value::Null) => Ok(MemberChange::ReplaceAll(Vec::new())),
            Some(value) => Ok(MemberChange::Remove(
                members_from_value(value)?
                    .into_iter()
                    .map(|m| m.value)
                    .collect(),
            )),
        },
        (PatchOpKind::Add, None) => Ok(MemberChange::Add(members_from_value(
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (PatchOpKind::Replace, None) => Ok(MemberChange::ReplaceAll(members_from_value(
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (PatchOpKind::Add | PatchOpKind::Replace, Some(_)) => Err(ScimError::invalid_path(
            "members[filter] can only be removed; add members with path 'members' and a value list",
        )),
    }
}

/// Collects the ids of `value eq "id"` clauses joined by `or`.
fn member_ids_from_filter(filter: &Filter, ids: &mut Vec<ResourceId>) -> Result<(), ScimError> {
    match filter {
        Filter::Or(operands) => operands
            .iter()
            .try_for_each(|operand| member_ids_from_filter(operand, ids)),
        Filter::Compare {
            path,
            op: muster_scim::CompareOp::Eq,
            value: FilterValue::String(id),
        } if path.attribute.eq_ignore_ascii_case("value") && path.sub_attribute.is_none() => {
            ids.push(ResourceId(id.clone()));
            Ok(())
        }
        other => Err(ScimError::invalid_path(format!(
            "members filter '{other}' is not supported; use members[value eq \"<id>\"]"
        ))),
    }
}

/// Replaces a clear-text `password` with its argon2 hash (never stored in clear).
async fn hash_password(mut resource: Value) -> Result<Value, ApiError> {
    let password = resource
        .as_object_mut()
        .and_then(|object| object.remove("password"));
    if let Some(Value::String(password)) = password {
        let hashed = hash_secret_value(password).await?;
        if let Some(object) = resource.as_object_mut() {
            object.insert("password".into(), Value::String(hashed));
        }
    }
    Ok(resource)
}

async fn hash_patch_passwords(
    operations: Vec<PatchOperation>,
) -> Result<Vec<PatchOperation>, ApiError> {
    let mut hashed = Vec::with_capacity(operations.len());
    for mut operation in operations {
        let targets_password = operation
            .path
            .as_ref()
            .is_some_and(|p| p.attribute.attribute.eq_ignore_ascii_case("password"));
        if targets_password {
            if let Some(Value::String(password)) = operation.value.take() {
                operation.value = Some(Value::String(hash_secret_value(password).await?));
            }
        } else if let Some(Value::Object(object)) = operation.value.as_mut() {
            let key = object
                .keys()
                .find(|k| k.eq_ignore_ascii_case("password"))
                .cloned();
            if let Some(key) = key {
                if let Some(Value::String(password)) = object.remove(&key) {
                    object.insert(key, Value::String(hash_secret_value(password).await?));
                }
            }
        }
        hashed.push(operation);
    }
    Ok(hashed)
}

async fn hash_secret_value(password: String) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let hashed = tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await;
    match hashed {
        Ok(Ok(hash)) => Ok(hash),
        _ => Err(ScimError::status(500, "password hashing failed").into()),
    }
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
