//! Licenses: assign and remove in bulk with per-user results, read a user's licenses,
//! list the definitions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::errors::{bad_request, json_response, not_found, parse_api_body};
use super::model::UserState;
use super::{string_list, Shared};

fn definition(base: &str, id: &str) -> Value {
    json!({
        "id": id,
        "name": id,
        "description": "",
        "permissions": [],
        "prerequisites": [],
        "comprises": [],
        "selfUri": format!("{base}/api/v2/license/definitions/{id}"),
    })
}

/// `POST /api/v2/license/organization` with
/// `{"assignments":[{"licenseId","userIdsAdd":[],"userIdsRemove":[]}]}` →
/// `[{userId, licenseId, result}]`.
pub(crate) async fn assign(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match parse_api_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(assignments) = body.get("assignments").and_then(Value::as_array) else {
        return bad_request("body needs assignments[{licenseId, userIdsAdd, userIdsRemove}]");
    };
    let results = &shared.options.license_results;
    let mut org = shared.org();
    let mut out = Vec::new();
    for a in assignments {
        let license = a
            .get("licenseId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let known = org.licenses.contains(&license);
        for (ids, add) in [
            (string_list(a.get("userIdsAdd")), true),
            (string_list(a.get("userIdsRemove")), false),
        ] {
            for id in ids {
                let result = match org.user_mut(&id).filter(|u| u.state != UserState::Deleted) {
                    _ if !known => &results.license_not_found,
                    None => &results.user_not_found,
                    Some(u) => {
                        if add {
                            u.licenses.insert(license.clone());
                        } else {
                            u.licenses.remove(&license);
                        }
                        &results.success
                    }
                };
                out.push(json!({"userId": id, "licenseId": license, "result": result}));
            }
        }
    }
    json_response(StatusCode::OK, &Value::Array(out))
}

/// `GET /api/v2/license/users/{id}`.
pub(crate) async fn user_licenses(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let org = shared.org();
    let Some(u) = org.user(&id).filter(|u| u.state != UserState::Deleted) else {
        return not_found("user", &id);
    };
    let base = &shared.base_url;
    json_response(
        StatusCode::OK,
        &json!({
            "id": u.id,
            "licenses": u.licenses.iter().map(|l| definition(base, l)).collect::<Vec<_>>(),
            "selfUri": format!("{base}/api/v2/license/users/{}", u.id),
        }),
    )
}

/// `GET /api/v2/license/definitions`.
pub(crate) async fn definitions(State(shared): State<Arc<Shared>>) -> Response {
    let org = shared.org();
    json_response(
        StatusCode::OK,
        &Value::Array(
            org.licenses
                .iter()
                .map(|l| definition(&shared.base_url, l))
                .collect(),
        ),
    )
}
