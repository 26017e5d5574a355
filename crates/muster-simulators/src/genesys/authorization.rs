//! Authorization: subjects and their grants (bulk add, remove, replace; single grant and
//! revoke), divisions (list, home, move a user) and roles.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::errors::{bad_request, json_response, not_found, parse_api_body};
use super::model::{entity_ref, Grant, Org, UserState};
use super::{string_list, Shared};

/// Query parameters, repeated ones kept.
pub(crate) type Params = Vec<(String, String)>;

/// All values of a query parameter.
pub(crate) fn values<'a>(q: &'a Params, name: &str) -> Vec<&'a str> {
    q.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A Platform API entity listing: `{entities, pageSize, pageNumber, total, pageCount}`.
pub(crate) fn entity_page(entities: Vec<Value>, q: &Params) -> Value {
    let size = values(q, "pageSize")
        .first()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(25)
        .max(1);
    let number = values(q, "pageNumber")
        .first()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = entities.len();
    let page: Vec<Value> = entities
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    json!({
        "entities": page,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": total.div_ceil(size),
    })
}

/// An empty 204.
pub(crate) fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}

fn live_user<'a>(org: &'a Org, id: &str) -> Option<&'a super::model::SimUser> {
    org.user(id).filter(|u| u.state != UserState::Deleted)
}

fn grant_json(
    org: &Org,
    base: &str,
    subject: &str,
    role_id: &str,
    division_id: &str,
    at: &str,
) -> Value {
    json!({
        "subjectId": subject,
        "division": entity_ref(division_id, org.division(division_id).map(|d| d.name.as_str()), &format!("{base}/api/v2/authorization/divisions/{division_id}")),
        "role": entity_ref(role_id, org.role(role_id).map(|r| r.name.as_str()), &format!("{base}/api/v2/authorization/roles/{role_id}")),
        "grantMadeAt": at,
    })
}

/// `GET /api/v2/authorization/subjects/{id}?includeDuplicates=`.
pub(crate) async fn subject(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    let Some(u) = live_user(&org, &id) else {
        return not_found("subject", &id);
    };
    let duplicates = values(&q, "includeDuplicates")
        .first()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let all = org.grants_of(&id);
    let base = &shared.base_url;
    let mut seen = BTreeSet::new();
    let mut grants = Vec::new();
    for g in &all.own {
        seen.insert((g.role_id.clone(), g.division_id.clone()));
        grants.push(grant_json(
            &org,
            base,
            &id,
            &g.role_id,
            &g.division_id,
            &u.last_modified,
        ));
    }
    for g in &all.inherited {
        let key = (g.role_id.clone(), g.division_id.clone());
        if duplicates || seen.insert(key) {
            grants.push(grant_json(
                &org,
                base,
                &g.group_id,
                &g.role_id,
                &g.division_id,
                &u.last_modified,
            ));
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "id": u.id,
            "name": u.display_name,
            "version": u.version,
            "grants": grants,
            "selfUri": format!("{base}/api/v2/authorization/subjects/{}", u.id),
        }),
    )
}

/// Check a role and a division exist and the role has propagated; 404 otherwise.
fn check_ids(org: &Org, role_id: &str, division_id: &str) -> Result<(), Response> {
    match org.role(role_id) {
        Some(r) if r.available_at <= Instant::now() => {}
        _ => return Err(not_found("role", role_id)),
    }
    if org.division(division_id).is_none() {
        return Err(not_found("division", division_id));
    }
    Ok(())
}

fn subject_type_ok(q: &Params) -> Result<(), Response> {
    match values(q, "subjectType").first() {
        None => Ok(()),
        Some(t) if *t == "PC_USER" => Ok(()),
        Some(t) => Err(bad_request(&format!(
            "subjectType {t} is not supported by the simulator: use PC_USER"
        ))),
    }
}

/// `POST /api/v2/authorization/subjects/{id}/bulkadd|bulkremove|bulkreplace`. Every id is
/// checked first: one missing role or division (or a role still propagating) fails the
/// whole call with 404 and changes nothing.
pub(crate) async fn bulk(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<Params>,
    body: Bytes,
) -> Response {
    if !matches!(action.as_str(), "bulkadd" | "bulkremove" | "bulkreplace") {
        return super::errors::api_error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        );
    }
    if let Err(e) = subject_type_ok(&q) {
        return e;
    }
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(items) = body.get("grants").and_then(Value::as_array) else {
        return bad_request("body needs grants[{roleId, divisionId}]");
    };
    let mut grants = Vec::new();
    for g in items {
        let role = g.get("roleId").and_then(Value::as_str).unwrap_or_default();
        let division = g
            .get("divisionId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        grants.push(Grant {
            role_id: role.into(),
            division_id: division.into(),
        });
    }
    let mut org = shared.org();
    if live_user(&org, &id).is_none() {
        return not_found("subject", &id);
    }
    for g in &grants {
        if let Err(e) = check_ids(&org, &g.role_id, &g.division_id) {
            return e;
        }
    }
    let Some(u) = org.user_mut(&id) else {
        return not_found("subject", &id);
    };
    match action.as_str() {
        "bulkadd" => u.grants.extend(grants),
        "bulkremove" => {
            for g in &grants {
                u.grants.remove(g);
            }
        }
        _ => u.grants = grants.into_iter().collect(),
    }
    u.touch();
    no_content()
}

/// `POST /api/v2/authorization/subjects/{id}/divisions/{divisionId}/roles/{roleId}`.
pub(crate) async fn grant_one(
    State(shared): State<Arc<Shared>>,
    Path((id, division_id, role_id)): Path<(String, String, String)>,
    Query(q): Query<Params>,
) -> Response {
    if let Err(e) = subject_type_ok(&q) {
        return e;
    }
    let mut org = shared.org();
    if live_user(&org, &id).is_none() {
        return not_found("subject", &id);
    }
    if let Err(e) = check_ids(&org, &role_id, &division_id) {
        return e;
    }
    if let Some(u) = org.user_mut(&id) {
        u.grants.insert(Grant {
            role_id,
            division_id,
        });
        u.touch();
    }
    no_content()
}

/// `DELETE /api/v2/authorization/subjects/{id}/divisions/{divisionId}/roles/{roleId}`: 404
/// when the role or division is gone; 204 otherwise (also when the grant was not held).
pub(crate) async fn revoke_one(
    State(shared): State<Arc<Shared>>,
    Path((id, division_id, role_id)): Path<(String, String, String)>,
) -> Response {
    let mut org = shared.org();
    if live_user(&org, &id).is_none() {
        return not_found("subject", &id);
    }
    if let Err(e) = check_ids(&org, &role_id, &division_id) {
        return e;
    }
    if let Some(u) = org.user_mut(&id) {
        if u.grants.remove(&Grant {
            role_id,
            division_id,
        }) {
            u.touch();
        }
    }
    no_content()
}

fn division_json(base: &str, d: &super::model::Division) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "description": "",
        "homeDivision": d.home,
        "selfUri": format!("{base}/api/v2/authorization/divisions/{}", d.id),
    })
}

/// `GET /api/v2/authorization/divisions?name=&id=`.
pub(crate) async fn divisions(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    let names = values(&q, "name");
    let ids = values(&q, "id");
    let entities = org
        .divisions
        .iter()
        .filter(|d| names.is_empty() || names.iter().any(|n| d.name.eq_ignore_ascii_case(n)))
        .filter(|d| ids.is_empty() || ids.contains(&d.id.as_str()))
        .map(|d| division_json(&shared.base_url, d))
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, &q))
}

/// `GET /api/v2/authorization/divisions/home`.
pub(crate) async fn home(State(shared): State<Arc<Shared>>) -> Response {
    let org = shared.org();
    match org.home_division() {
        Some(d) => json_response(StatusCode::OK, &division_json(&shared.base_url, d)),
        None => not_found("division", "home"),
    }
}

/// `POST /api/v2/authorization/divisions/{divisionId}/objects/USER` with `["userId"]`.
pub(crate) async fn move_objects(
    State(shared): State<Arc<Shared>>,
    Path((division_id, object_type)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if object_type != "USER" {
        return bad_request(&format!(
            "object type {object_type} is not simulated: only USER"
        ));
    }
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let ids = string_list(Some(&body));
    let mut org = shared.org();
    if org.division(&division_id).is_none() {
        return not_found("division", &division_id);
    }
    if let Some(missing) = ids.iter().find(|i| live_user(&org, i).is_none()) {
        return not_found("user", missing);
    }
    for id in &ids {
        if let Some(u) = org.user_mut(id) {
            if u.division_id != division_id {
                u.division_id = division_id.clone();
                u.touch();
            }
        }
    }
    no_content()
}

/// `GET /api/v2/authorization/roles?name=&id=`.
pub(crate) async fn roles(State(shared): State<Arc<Shared>>, Query(q): Query<Params>) -> Response {
    let org = shared.org();
    let names = values(&q, "name");
    let ids = values(&q, "id");
    let entities = org
        .roles
        .iter()
        .filter(|r| names.is_empty() || names.iter().any(|n| r.name.eq_ignore_ascii_case(n)))
        .filter(|r| ids.is_empty() || ids.contains(&r.id.as_str()))
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "description": "",
                "default": false,
                "selfUri": format!("{}/api/v2/authorization/roles/{}", shared.base_url, r.id),
            })
        })
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, &q))
}
