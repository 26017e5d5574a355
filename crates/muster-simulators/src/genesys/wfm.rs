//! Workforce management: move agents between management units (per-user results), read
//! an agent's unit, list units.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::authorization::{entity_page, values, Params};
use super::errors::{bad_request, json_response, not_found, parse_api_body};
use super::model::UserState;
use super::{string_list, Shared};

/// The id reported as `requestingUser` (a client-credentials token has no user).
const REQUESTING_USER: &str = "00000000-0000-0000-0000-00000000c11e";

/// `POST /api/v2/workforcemanagement/agents` with `{userIds, destinationManagementUnitId}`;
/// a null or absent destination removes the agents from their unit. Unknown user ids fail
/// the whole call with 400 (unverified).
pub(crate) async fn move_agents(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let user_ids = string_list(body.get("userIds"));
    if user_ids.is_empty() {
        return bad_request("userIds must not be empty");
    }
    let dest = body
        .get("destinationManagementUnitId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut org = shared.org();
    let unknown: Vec<&String> = user_ids
        .iter()
        .filter(|id| org.user(id).is_none_or(|u| u.state == UserState::Deleted))
        .collect();
    if !unknown.is_empty() {
        return bad_request(&format!("Unknown user ids: {unknown:?}"));
    }
    let unit = dest
        .as_ref()
        .and_then(|d| org.management_units.iter().find(|m| m.id == *d).cloned());
    let mut members = unit.as_ref().map_or(0, |m| {
        org.users
            .iter()
            .filter(|u| u.management_unit.as_deref() == Some(m.id.as_str()))
            .count()
    });
    let mut results = Vec::new();
    for id in &user_ids {
        let Some(u) = org.user_mut(id) else {
            continue;
        };
        let result = match (&dest, &unit) {
            (Some(_), None) => "DestinationManagementUnitDoesNotExist",
            (Some(d), Some(_)) if u.management_unit.as_deref() == Some(d.as_str()) => {
                "AlreadyMoved"
            }
            (Some(_), Some(m)) if m.agent_limit.is_some_and(|l| members >= l) => {
                "DestinationManagementUnitAgentLimitExceeded"
            }
            (Some(d), Some(_)) => {
                u.management_unit = Some(d.clone());
                members += 1;
                "MoveSuccessful"
            }
            (None, _) if u.management_unit.is_none() => "NothingToDo",
            (None, _) => {
                u.management_unit = None;
                "MoveSuccessful"
            }
        };
        results.push(json!({"user": {"id": id}, "result": result}));
    }
    let status = StatusCode::from_u16(shared.options.wfm_move_status).unwrap_or(StatusCode::OK);
    let mut out = json!({
        "requestingUser": {"id": REQUESTING_USER},
        "results": results,
    });
    if let (Some(d), Some(o)) = (dest, out.as_object_mut()) {
        o.insert("destinationManagementUnit".into(), json!({"id": d}));
    }
    json_response(status, &out)
}

/// `GET /api/v2/workforcemanagement/agents/{id}/managementunit` (404 when in none).
pub(crate) async fn agent_unit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let org = shared.org();
    let Some(u) = org.user(&id).filter(|u| u.state != UserState::Deleted) else {
        return not_found("user", &id);
    };
    let Some(m) = u
        .management_unit
        .as_ref()
        .and_then(|mu| org.management_units.iter().find(|m| m.id == *mu))
    else {
        return not_found("management unit of agent", &id);
    };
    let base = &shared.base_url;
    json_response(
        StatusCode::OK,
        &json!({
            "user": {"id": u.id, "selfUri": format!("{base}/api/v2/users/{}", u.id)},
            "managementUnit": {"id": m.id, "name": m.name, "selfUri": format!("{base}/api/v2/workforcemanagement/managementunits/{}", m.id)},
            "businessUnit": {"id": m.business_unit_id, "selfUri": format!("{base}/api/v2/workforcemanagement/businessunits/{}", m.business_unit_id)},
        }),
    )
}

/// `GET /api/v2/workforcemanagement/managementunits?divisionId=`.
pub(crate) async fn management_units(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    let divisions = values(&q, "divisionId");
    let entities = org
        .management_units
        .iter()
        .filter(|m| divisions.is_empty() || divisions.contains(&m.division_id.as_str()))
        .map(|m| {
            json!({
                "id": m.id,
                "name": m.name,
                "division": {"id": m.division_id},
                "businessUnit": {"id": m.business_unit_id},
                "selfUri": format!("{}/api/v2/workforcemanagement/managementunits/{}", shared.base_url, m.id),
            })
        })
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, &q))
}
