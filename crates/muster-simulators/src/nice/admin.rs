//! The Admin API: skills, agents and agent skills.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::gate::{api_error, json_response, query_params};
use super::{Shared, SimUser};

fn param(query: Option<&str>, name: &str) -> Option<String> {
    query_params(query)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `skip` and `top` paging over a list.
fn paged(items: Vec<Value>, query: Option<&str>) -> Vec<Value> {
    let skip = param(query, "skip")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let top = param(query, "top")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    items.into_iter().skip(skip).take(top).collect()
}

/// `GET /skills?searchString=&skip=&top=`.
pub(crate) async fn skills(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let search = param(q.as_deref(), "searchString").map(|s| s.to_ascii_lowercase());
    let unit = shared.unit();
    let all: Vec<Value> = unit
        .skills
        .iter()
        .filter(|s| {
            search
                .as_deref()
                .is_none_or(|needle| s.name.to_ascii_lowercase().contains(needle))
        })
        .map(|s| json!({"skillId": s.id, "skillName": s.name, "isActive": true, "mediaTypeId": 4}))
        .collect();
    let total = all.len();
    let page = paged(all, q.as_deref());
    json_response(
        StatusCode::OK,
        &json!({"totalRecords": total, "skills": page}),
    )
}

fn agent_json(user: &SimUser) -> Value {
    json!({
        "agentId": user.agent_id,
        "userName": user.user_name,
        "firstName": user.given_name,
        "lastName": user.family_name,
        "emailAddress": user.emails.first().and_then(|e| e.get("value")).cloned().unwrap_or(Value::Null),
        "isActive": user.active,
        "teamName": user.team,
    })
}

/// `GET /agents?searchString=`: matches userName, names and email (contains,
/// case-insensitive).
pub(crate) async fn agents(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let search = param(q.as_deref(), "searchString").map(|s| s.to_ascii_lowercase());
    let unit = shared.unit();
    let all: Vec<Value> = unit
        .users
        .iter()
        .filter(|u| {
            search.as_deref().is_none_or(|needle| {
                let email = u
                    .emails
                    .first()
                    .and_then(|e| e.get("value"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                [u.user_name.as_str(), &u.given_name, &u.family_name, email]
                    .iter()
                    .any(|h| h.to_ascii_lowercase().contains(needle))
            })
        })
        .map(agent_json)
        .collect();
    let total = all.len();
    let page = paged(all, q.as_deref());
    json_response(
        StatusCode::OK,
        &json!({"totalRecords": total, "agents": page}),
    )
}

fn agent_not_found(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "AgentNotFound",
        &format!("Agent {id} was not found."),
    )
}

/// `GET /agents/{id}`.
pub(crate) async fn agent(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let unit = shared.unit();
    match id.parse::<u64>().ok().and_then(|n| unit.agent(n)) {
        Some(u) => json_response(StatusCode::OK, &json!({"agents": [agent_json(u)]})),
        None => agent_not_found(&id),
    }
}

/// `GET /agents/{id}/skills`.
pub(crate) async fn agent_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let unit = shared.unit();
    let Some(user) = id.parse::<u64>().ok().and_then(|n| unit.agent(n)) else {
        return agent_not_found(&id);
    };
    let list: Vec<Value> = user
        .skills
        .iter()
        .map(|(skill_id, (proficiency, is_active))| {
            json!({
                "agentId": user.agent_id,
                "skillId": skill_id,
                "skillName": unit.skill(*skill_id).map(|s| s.name.clone()),
                "isActive": is_active,
                "proficiency": proficiency,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"totalRecords": list.len(), "agentSkillAssignments": list}),
    )
}

#[derive(Clone, Copy)]
enum Change {
    Assign,
    Modify,
    Remove,
}

fn invalid(description: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "InvalidRequest", description)
}

/// POST, PUT and DELETE of `/agents/{id}/skills`: all or nothing.
fn change(shared: &Shared, id: &str, bytes: &Bytes, change: Change) -> Response {
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return invalid("The request body is not valid JSON."),
    };
    let Some(items) = body.get("skills").and_then(Value::as_array) else {
        return invalid("skills is required.");
    };
    let mut unit = shared.unit();
    let known: Vec<u64> = unit.skills.iter().map(|s| s.id).collect();
    let Some(user) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| unit.users.iter_mut().find(|u| u.agent_id == n))
    else {
        return agent_not_found(id);
    };
    let mut skills: BTreeMap<u64, (u8, bool)> = user.skills.clone();
    for item in items {
        let Some(skill_id) = item.get("skillId").and_then(Value::as_u64) else {
            return invalid("skillId is required.");
        };
        if !known.contains(&skill_id) {
            return invalid(&format!("Skill {skill_id} does not exist."));
        }
        if let Change::Remove = change {
            skills.remove(&skill_id);
            continue;
        }
        let proficiency = match item.get("proficiency") {
            None | Some(Value::Null) => skills.get(&skill_id).map_or(1, |(p, _)| *p),
            Some(v) => match v.as_u64().filter(|p| (1..=20).contains(p)) {
                Some(p) => u8::try_from(p).unwrap_or(20),
                None => return invalid("proficiency must be an integer from 1 to 20."),
            },
        };
        let is_active = item
            .get("isActive")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let assigned = skills.contains_key(&skill_id);
        match change {
            Change::Assign if assigned => {
                return invalid(&format!(
                    "Skill {skill_id} is already assigned to agent {id}."
                ))
            }
            Change::Modify if !assigned => {
                return invalid(&format!("Skill {skill_id} is not assigned to agent {id}."))
            }
            _ => {}
        }
        skills.insert(skill_id, (proficiency, is_active));
    }
    user.skills = skills;
    json_response(StatusCode::OK, &json!({}))
}

/// `POST /agents/{id}/skills`: assign.
pub(crate) async fn assign_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    change(&shared, &id, &bytes, Change::Assign)
}

/// `PUT /agents/{id}/skills`: modify.
pub(crate) async fn modify_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    change(&shared, &id, &bytes, Change::Modify)
}

/// `DELETE /agents/{id}/skills`: remove.
pub(crate) async fn remove_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    change(&shared, &id, &bytes, Change::Remove)
}
