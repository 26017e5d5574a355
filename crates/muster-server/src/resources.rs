//! Resource endpoints: list and search, create, read, replace, patch, delete,
//! for every resource type the tenant's registry knows (`/Users`, `/Groups`,
//! ...). Each handler extracts the request and calls a [`Session`] of
//! `muster-core`, which `/Bulk` runs too.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use muster_core::tokens::Client;
use muster_core::{etag, parse_etag, precondition_from_text, Rendered, Session};
use muster_scim::message::SearchRequest;
use muster_scim::projection::Projection;
use muster_scim::ResourceType;
use muster_store::{Actor, Precondition};
use serde_json::Value;

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse, SCIM_JSON};
use crate::AppState;

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

/// The session of the request's client in its tenant.
pub async fn session<'s>(
    state: &'s AppState,
    client: &Client,
    headers: &HeaderMap,
) -> Result<Session<'s>, ApiError> {
    Ok(state
        .service
        .session(
            client.tenant.clone(),
            actor(client, headers),
            state.scim_base(headers, &client.tenant),
        )
        .await?
        .with_matching(client.matching.clone()))
}

/// The `If-Match` precondition, if any. `*` matches any version.
fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Precondition::None);
    };
    Ok(precondition_from_text(value.to_str().unwrap_or_default())?)
}

/// Query parameters in the order given; duplicates are kept so that they can
/// be refused rather than silently resolved.
type QueryParams = Vec<(String, String)>;

fn query_param<'q>(query: &'q QueryParams, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn projection(
    session: &Session<'_>,
    rt: &ResourceType,
    query: &QueryParams,
) -> Result<Projection, ApiError> {
    Ok(session.projection(
        rt,
        query_param(query, "attributes"),
        query_param(query, "excludedAttributes"),
    )?)
}

/// A rendered resource as a response with `ETag` (and `Location` on 201).
fn respond(status: StatusCode, rendered: Rendered) -> ScimResponse {
    ScimResponse {
        status,
        etag: Some(etag(rendered.version)),
        location: (status == StatusCode::CREATED).then_some(rendered.location),
        body: rendered.body.unwrap_or(Value::Null),
    }
}

/// `GET /{endpoint}`: list with filter, sort, paging and projection.
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    Query(query): Query<QueryParams>,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let request = SearchRequest::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(ScimResponse::ok(session.search(&rt, request).await?))
}

/// `POST /{endpoint}/.search`.
pub async fn search(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let request = SearchRequest::from_json(&body)?;
    Ok(ScimResponse::ok(session.search(&rt, request).await?))
}

/// `POST /.search`: searches every resource type (index paging only).
pub async fn search_root(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let request = SearchRequest::from_json(&body)?;
    Ok(ScimResponse::ok(session.search_all(request).await?))
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
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let projection = projection(&session, &rt, &query)?;
    let rendered = session.create(&rt, body, &projection).await?;
    Ok(respond(StatusCode::CREATED, rendered))
}

/// `GET /{endpoint}/{id}`, answering `304` when `If-None-Match` names the
/// current version.
pub async fn get(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    Query(query): Query<QueryParams>,
) -> Result<Response, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let projection = projection(&session, &rt, &query)?;
    let rendered = session.get_json(&rt, &id, &projection).await?;
    if let Some(if_none_match) = headers.get(header::IF_NONE_MATCH) {
        let text = if_none_match.to_str().unwrap_or_default();
        let matches = text.trim() == "*"
            || text
                .split(',')
                .filter_map(parse_etag)
                .any(|version| version == rendered.version);
        if matches {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag(rendered.version))],
            )
                .into_response());
        }
    }
    let mut response = Response::new(axum::body::Body::from(rendered.json));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if let Ok(etag) = HeaderValue::from_str(&etag(rendered.version)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
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
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let projection = projection(&session, &rt, &query)?;
    let rendered = session
        .replace(&rt, &id, precondition(&headers)?, body, &projection)
        .await?;
    Ok(respond(StatusCode::OK, rendered))
}

/// `PATCH /{endpoint}/{id}`: `200` with the resource, or `204` for a group
/// unless `attributes` asks for a body.
pub async fn patch(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
    Query(query): Query<QueryParams>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let projection = projection(&session, &rt, &query)?;
    let wants_body = query_param(&query, "attributes").is_some() || !session.has_members(&rt);
    let rendered = session
        .patch(
            &rt,
            &id,
            precondition(&headers)?,
            body,
            &projection,
            wants_body,
        )
        .await?;
    let status = if rendered.body.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    Ok(respond(status, rendered))
}

/// `DELETE /{endpoint}/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    session.delete(&rt, &id, precondition(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
