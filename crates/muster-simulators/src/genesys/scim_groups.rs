//! SCIM `/Groups`: list (filter `displayName` or `id`), read, replace and patch members.
//! Create and delete were removed (SDK 109.0.0): groups must pre-exist.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::errors::{parse_scim_body, scim_error, scim_response};
use super::model::{now_rfc3339, Group, Org, UserState};
use super::scim_patch::{apply_patch, geti, parse_eq};
use super::scim_users::{check_if_match, etag, list_response, page, with_etag, Projection};
use super::Shared;

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn render(org: &Org, base_url: &str, g: &Group) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|m| {
            let display = org.user(m).map(|u| u.display_name.clone()).unwrap_or_default();
            json!({"value": m, "display": display, "type": "User", "$ref": format!("{base_url}/api/v2/scim/v2/Users/{m}")})
        })
        .collect();
    let mut doc = json!({
        "schemas": [GROUP],
        "id": g.id,
        "displayName": g.display_name,
        "meta": {
            "resourceType": "Group",
            "lastModified": g.last_modified,
            "location": format!("{base_url}/api/v2/scim/v2/Groups/{}", g.id),
            "version": etag(g.version),
        },
    });
    if let (false, Some(o)) = (members.is_empty(), doc.as_object_mut()) {
        o.insert("members".into(), Value::Array(members));
    }
    doc
}

fn not_found(id: &str) -> Response {
    scim_error(
        StatusCode::NOT_FOUND,
        None,
        &format!("Resource {id} not found"),
    )
}

/// `GET /Groups`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let projection = Projection::from_query(&q);
    let mut org = shared.org();
    // The SDK documents the same page cap for groups, with the same way round it.
    let (start, count) = match page(&shared, &mut org, &q, &projection) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let filter = q
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
        .map(|(_, f)| {
            parse_eq(f)
                .filter(|(a, _)| {
                    a.eq_ignore_ascii_case("displayName") || a.eq_ignore_ascii_case("id")
                })
                .ok_or_else(|| {
                    scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidFilter"),
                        &format!(
                            "Unsupported filter: {f}. Only displayName eq and id eq are supported"
                        ),
                    )
                })
        })
        .transpose();
    let filter = match filter {
        Ok(f) => f,
        Err(r) => return r,
    };
    let hits: Vec<&Group> = org
        .groups
        .iter()
        .filter(|g| match &filter {
            None => true,
            Some((a, v)) if a.eq_ignore_ascii_case("id") => g.id == *v,
            Some((_, v)) => g.display_name.eq_ignore_ascii_case(v),
        })
        .collect();
    let resources = hits
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|g| {
            let mut d = render(&org, &shared.base_url, g);
            projection.apply(&mut d);
            d
        })
        .collect();
    scim_response(StatusCode::OK, &list_response(hits.len(), start, resources))
}

/// `GET /Groups/{id}`.
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let org = shared.org();
    match org.group(&id) {
        Some(g) => with_etag(
            StatusCode::OK,
            &render(&org, &shared.base_url, g),
            g.version,
        ),
        None => not_found(&id),
    }
}

fn write(
    shared: &Shared,
    id: &str,
    headers: &HeaderMap,
    doc_for: impl FnOnce(&Org, &Group) -> Result<Value, Response>,
) -> Response {
    let mut org = shared.org();
    let Some(g) = org.group(id) else {
        return not_found(id);
    };
    if let Err(e) = check_if_match(headers, g.version) {
        return e;
    }
    let doc = match doc_for(&org, g) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let name = g.display_name.clone();
    let obj = doc.as_object();
    if let Some(n) = obj
        .and_then(|o| geti(o, "displayName"))
        .and_then(Value::as_str)
    {
        if n != name {
            return scim_error(
                StatusCode::BAD_REQUEST,
                Some("mutability"),
                "displayName cannot be changed over SCIM",
            );
        }
    }
    let mut members = BTreeSet::new();
    for m in obj
        .and_then(|o| geti(o, "members"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(v) = m.get("value").and_then(Value::as_str) else {
            continue;
        };
        if org.user(v).is_none_or(|u| u.state == UserState::Deleted) {
            return scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                &format!("Member {v} is not a user"),
            );
        }
        members.insert(v.to_string());
    }
    let Some(g) = org.groups.iter_mut().find(|g| g.id == id) else {
        return not_found(id);
    };
    if g.members != members {
        g.members = members;
        g.version += 1;
        g.last_modified = now_rfc3339();
    }
    let version = g.version;
    let Some(g) = org.group(id) else {
        return not_found(id);
    };
    with_etag(StatusCode::OK, &render(&org, &shared.base_url, g), version)
}

/// `PUT /Groups/{id}`: replaces the members.
pub(crate) async fn replace(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let doc = match parse_scim_body(&body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    write(&shared, &id, &headers, |_, _| Ok(doc))
}

/// `PATCH /Groups/{id}`: add or remove members.
pub(crate) async fn patch(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ops = match parse_scim_body(&body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let base = shared.base_url.clone();
    write(&shared, &id, &headers, |org, g| {
        let mut doc = render(org, &base, g);
        apply_patch(&mut doc, &ops)?;
        Ok(doc)
    })
}

fn removed(shared: &Shared) -> Response {
    let status = StatusCode::from_u16(shared.options.removed_group_endpoint_status)
        .unwrap_or(StatusCode::NOT_FOUND);
    scim_error(
        status,
        None,
        "Groups cannot be created or deleted over SCIM: they must pre-exist",
    )
}

/// `POST /Groups`: removed; counted as an attempt (see `groups_created`).
pub(crate) async fn removed_create(State(shared): State<Arc<Shared>>) -> Response {
    shared.org().groups_created += 1;
    removed(&shared)
}

/// `DELETE /Groups/{id}`: removed.
pub(crate) async fn removed_delete(State(shared): State<Arc<Shared>>) -> Response {
    removed(&shared)
}
