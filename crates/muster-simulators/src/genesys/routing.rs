//! Routing: skill and language lookups, and a user's skills (PUT bulk replaces, PATCH bulk
//! adds or updates) and languages (PATCH bulk only, at most 50).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::authorization::{entity_page, values, Params};
use super::errors::{bad_request, json_response, not_found, parse_api_body};
use super::model::{Named, Org, UserState};
use super::Shared;

fn named_json(base: &str, kind: &str, n: &Named) -> Value {
    json!({"id": n.id, "name": n.name, "state": "active", "selfUri": format!("{base}/api/v2/routing/{kind}/{}", n.id)})
}

/// `GET /api/v2/routing/skills?name=<prefix>&id=`.
pub(crate) async fn skills(State(shared): State<Arc<Shared>>, Query(q): Query<Params>) -> Response {
    let org = shared.org();
    let names = values(&q, "name");
    let ids = values(&q, "id");
    let entities = org
        .skills
        .iter()
        .filter(|s| {
            names.is_empty()
                || names
                    .iter()
                    .any(|n| s.name.to_lowercase().starts_with(&n.to_lowercase()))
        })
        .filter(|s| ids.is_empty() || ids.contains(&s.id.as_str()))
        .map(|s| named_json(&shared.base_url, "skills", s))
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, &q))
}

/// `GET /api/v2/routing/languages?name=&id=` (name matched exactly, case-insensitively).
pub(crate) async fn languages(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    let names = values(&q, "name");
    let ids = values(&q, "id");
    let entities = org
        .languages
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| s.name.eq_ignore_ascii_case(n)))
        .filter(|s| ids.is_empty() || ids.contains(&s.id.as_str()))
        .map(|s| named_json(&shared.base_url, "languages", s))
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, &q))
}

#[derive(Clone, Copy)]
enum Kind {
    Skill,
    Language,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Self::Skill => "skill",
            Self::Language => "language",
        }
    }
    fn table(self, org: &Org) -> &[Named] {
        match self {
            Self::Skill => &org.skills,
            Self::Language => &org.languages,
        }
    }
}

fn held(org: &Org, user_id: &str, kind: Kind) -> Option<BTreeMap<String, f64>> {
    let u = org
        .user(user_id)
        .filter(|u| u.state != UserState::Deleted)?;
    Some(match kind {
        Kind::Skill => u.skills.clone(),
        Kind::Language => u.languages.clone(),
    })
}

fn listing(shared: &Shared, org: &Org, user_id: &str, kind: Kind, q: &Params) -> Response {
    let Some(map) = held(org, user_id, kind) else {
        return not_found("user", user_id);
    };
    let base = &shared.base_url;
    let entities = map
        .iter()
        .filter_map(|(id, p)| {
            let n = kind.table(org).iter().find(|n| n.id == *id)?;
            let (uri_key, uri) = match kind {
                Kind::Skill => ("skillUri", format!("{base}/api/v2/routing/skills/{id}")),
                Kind::Language => (
                    "languageUri",
                    format!("{base}/api/v2/routing/languages/{id}"),
                ),
            };
            let self_kind = match kind {
                Kind::Skill => "routingskills",
                Kind::Language => "routinglanguages",
            };
            Some(json!({
                "id": id,
                "name": n.name,
                "proficiency": p,
                "state": "active",
                uri_key: uri,
                "selfUri": format!("{base}/api/v2/users/{user_id}/{self_kind}/{id}"),
            }))
        })
        .collect();
    json_response(StatusCode::OK, &entity_page(entities, q))
}

fn parse_items(
    shared: &Shared,
    org: &Org,
    body: &[u8],
    kind: Kind,
) -> Result<Vec<(String, f64)>, Response> {
    let body = parse_api_body(body)?;
    let Some(items) = body.as_array() else {
        return Err(bad_request("body must be an array of {id, proficiency}"));
    };
    if items.len() > shared.options.bulk_limit {
        return Err(bad_request(&format!(
            "at most {} {}s per bulk call",
            shared.options.bulk_limit,
            kind.what()
        )));
    }
    let mut out = Vec::new();
    for item in items {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        if !kind.table(org).iter().any(|n| n.id == id) {
            return Err(bad_request(&format!(
                "The {} {id} does not exist",
                kind.what()
            )));
        }
        let p = item
            .get("proficiency")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if !(0.0..=5.0).contains(&p) {
            return Err(bad_request("proficiency must be 0.0 to 5.0"));
        }
        out.push((id.to_string(), p));
    }
    Ok(out)
}

fn bulk(shared: &Shared, user_id: &str, body: &[u8], kind: Kind, replace: bool) -> Response {
    let mut org = shared.org();
    if held(&org, user_id, kind).is_none() {
        return not_found("user", user_id);
    }
    let items = match parse_items(shared, &org, body, kind) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if let Some(u) = org.user_mut(user_id) {
        let map = match kind {
            Kind::Skill => &mut u.skills,
            Kind::Language => &mut u.languages,
        };
        if replace {
            map.clear();
        }
        map.extend(items);
        u.touch();
    }
    listing(shared, &org, user_id, kind, &Vec::new())
}

/// `GET /api/v2/users/{id}/routingskills`.
pub(crate) async fn user_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    listing(&shared, &org, &id, Kind::Skill, &q)
}

/// `PUT /api/v2/users/{id}/routingskills/bulk`: replaces all.
pub(crate) async fn replace_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    bulk(&shared, &id, &body, Kind::Skill, true)
}

/// `PATCH /api/v2/users/{id}/routingskills/bulk`: adds or updates.
pub(crate) async fn add_skills(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    bulk(&shared, &id, &body, Kind::Skill, false)
}

/// `GET /api/v2/users/{id}/routinglanguages`.
pub(crate) async fn user_languages(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let org = shared.org();
    listing(&shared, &org, &id, Kind::Language, &q)
}

/// `PATCH /api/v2/users/{id}/routinglanguages/bulk`: adds or updates, at most 50.
pub(crate) async fn add_languages(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    bulk(&shared, &id, &body, Kind::Language, false)
}
