//! Platform API users: create (409 `general.conflict` on an existing or deleted email),
//! search (finds soft-deleted users when `state` is asked), read, and `PATCH` with the
//! current `version` (restore: `{"state":"active","version":n}`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::errors::{api_error, bad_request, json_response, not_found, parse_api_body};
use super::model::{entity_ref, Org, SimUser, UserState};
use super::Shared;

fn user_json(org: &Org, base: &str, u: &SimUser) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.display_name,
        "division": entity_ref(&u.division_id, org.division(&u.division_id).map(|d| d.name.as_str()), &format!("{base}/api/v2/authorization/divisions/{}", u.division_id)),
        "email": u.user_name,
        "username": u.user_name,
        "state": u.state.as_str(),
        "version": u.version,
        "selfUri": format!("{base}/api/v2/users/{}", u.id),
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = &u.title {
            o.insert("title".into(), json!(t));
        }
        if let Some(d) = &u.department {
            o.insert("department".into(), json!(d));
        }
        if let Some(m) = &u.manager_id {
            o.insert(
                "manager".into(),
                json!({"id": m, "selfUri": format!("{base}/api/v2/users/{m}")}),
            );
        }
    }
    v
}

/// `POST /api/v2/users` with `{name, email, divisionId?}`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let (Some(name), Some(email)) = (
        body.get("name").and_then(Value::as_str),
        body.get("email").and_then(Value::as_str),
    ) else {
        return bad_request("name and email are required");
    };
    let mut org = shared.org();
    if org.user_by_name(email).is_some() {
        return api_error(
            StatusCode::CONFLICT,
            "general.conflict",
            &format!("A user with the email {email} already exists (possibly deleted)"),
        );
    }
    let division = match body.get("divisionId").and_then(Value::as_str) {
        Some(d) if org.division(d).is_none() => return not_found("division", d),
        Some(d) => d.to_string(),
        None => org
            .home_division()
            .map(|d| d.id.clone())
            .unwrap_or_default(),
    };
    let user = SimUser::new(email, name, &division);
    let out = user_json(&org, &shared.base_url, &user);
    org.users.push(user);
    json_response(StatusCode::OK, &out)
}

fn criterion_matches(u: &SimUser, c: &Value) -> Result<bool, Response> {
    let fields: Vec<String> = super::string_list(c.get("fields"));
    let mut wanted: Vec<String> = super::string_list(c.get("values"));
    if let Some(v) = c.get("value").and_then(Value::as_str) {
        wanted.push(v.to_string());
    }
    let ty = c.get("type").and_then(Value::as_str).unwrap_or("EXACT");
    if ty != "EXACT" {
        return Err(bad_request(&format!(
            "search type {ty} is not simulated: use EXACT"
        )));
    }
    let mut any = false;
    for f in &fields {
        let actual: Vec<String> = match f.as_str() {
            "email" | "username" => vec![u.user_name.clone()],
            "id" => vec![u.id.clone()],
            "state" => vec![u.state.as_str().to_string()],
            "name" => vec![u.display_name.clone()],
            "division.id" => vec![u.division_id.clone()],
            "department" => u.department.clone().into_iter().collect(),
            _ => return Err(bad_request(&format!("search field {f} is not simulated"))),
        };
        any |= actual
            .iter()
            .any(|a| wanted.iter().any(|w| a.eq_ignore_ascii_case(w)));
    }
    Ok(any)
}

/// `POST /api/v2/users/search`. Without a `state` criterion, deleted users are left out.
pub(crate) async fn search(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let criteria = body
        .get("query")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let asks_state = criteria.iter().any(|c| {
        super::string_list(c.get("fields"))
            .iter()
            .any(|f| f == "state")
    });
    let org = shared.org();
    let mut results = Vec::new();
    for u in &org.users {
        if !asks_state && u.state == UserState::Deleted {
            continue;
        }
        let mut all = true;
        for c in &criteria {
            match criterion_matches(u, c) {
                Ok(m) => all &= m,
                Err(e) => return e,
            }
        }
        if all {
            results.push(user_json(&org, &shared.base_url, u));
        }
    }
    let page_size = body
        .get("pageSize")
        .and_then(Value::as_u64)
        .unwrap_or(25)
        .max(1);
    let total = results.len();
    let results: Vec<Value> = results
        .into_iter()
        .take(usize::try_from(page_size).unwrap_or(25))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "total": total,
            "pageSize": page_size,
            "pageNumber": 1,
            "pageCount": (total as u64).div_ceil(page_size),
            "results": results,
        }),
    )
}

/// `GET /api/v2/users/{id}` (a deleted user is 404: find it with the search).
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let org = shared.org();
    match org.user(&id).filter(|u| u.state != UserState::Deleted) {
        Some(u) => json_response(StatusCode::OK, &user_json(&org, &shared.base_url, u)),
        None => not_found("user", &id),
    }
}

/// `PATCH /api/v2/users/{id}` with the current `version`; `state` restores or deactivates.
pub(crate) async fn patch(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(version) = body.get("version").and_then(Value::as_u64) else {
        return bad_request("version is required");
    };
    let mut org = shared.org();
    let Some(u) = org.user_mut(&id) else {
        return not_found("user", &id);
    };
    if u.version != version {
        let status = StatusCode::from_u16(shared.options.version_conflict_status)
            .unwrap_or(StatusCode::CONFLICT);
        let code = if status == StatusCode::CONFLICT {
            "general.conflict"
        } else {
            "bad.request"
        };
        return api_error(
            status,
            code,
            &format!("The version supplied ({version}) does not match the current version of the user ({})", u.version),
        );
    }
    if let Some(state) = body.get("state").and_then(Value::as_str) {
        u.state = match state {
            "active" => UserState::Active,
            "inactive" => {
                u.licenses.clear();
                UserState::Inactive
            }
            other => return bad_request(&format!("state {other} cannot be set")),
        };
    }
    if let Some(n) = body.get("name").and_then(Value::as_str) {
        u.display_name = n.to_string();
    }
    if let Some(t) = body.get("title").and_then(Value::as_str) {
        u.title = Some(t.to_string());
    }
    if let Some(d) = body.get("department").and_then(Value::as_str) {
        u.department = Some(d.to_string());
    }
    u.touch();
    let snapshot = u.clone();
    json_response(
        StatusCode::OK,
        &user_json(&org, &shared.base_url, &snapshot),
    )
}
