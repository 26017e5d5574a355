//! SCIM 2.0 Users with CXone's fixed set of fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::gate::{query_params, scim_error, scim_response};
use super::{Shared, SimUser, UnknownAttributes, NICE_EXTENSION};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The writable fields of a user, as read from a request body.
struct Fields {
    user_name: String,
    given_name: String,
    family_name: String,
    middle_name: Option<String>,
    display_name: Option<String>,
    emails: Vec<Value>,
    phone_numbers: Vec<Value>,
    timezone: Option<String>,
    user_type: Option<String>,
    external_id: Option<String>,
    active: Option<bool>,
    login_authenticator: Option<String>,
    primary_role: Option<String>,
    team: Option<String>,
}

fn bad(detail: &str) -> Response {
    scim_error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
}

/// The agent id attribute's place: (extension URN or `None` for top level, attribute).
fn agent_id_place(shared: &Shared) -> Option<(Option<String>, String)> {
    let path = shared.options.agent_id_attribute.as_deref()?;
    match path.rsplit_once(':') {
        Some((urn, attr)) => Some((Some(urn.to_owned()), attr.to_owned())),
        None => Some((None, path.to_owned())),
    }
}

/// A member of an object, by case-insensitive name.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    member(object, name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn boolean(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Read a request body into fields, applying the unknown-attribute policy.
fn parse(shared: &Shared, body: &Value) -> Result<Fields, Response> {
    let Some(object) = body.as_object() else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "The request body must be a JSON object.",
        ));
    };
    let refuse = shared.options.unknown_attributes == UnknownAttributes::Refuse;
    let agent_place = agent_id_place(shared);
    let extension_urn = NICE_EXTENSION.to_ascii_lowercase();
    let known_top = [
        "schemas",
        "id",
        "meta",
        "externalid",
        "username",
        "name",
        "displayname",
        "emails",
        "phonenumbers",
        "timezone",
        "usertype",
        "active",
    ];
    for key in object.keys() {
        let lower = key.to_ascii_lowercase();
        let is_agent_attr = match &agent_place {
            Some((None, attr)) => attr.eq_ignore_ascii_case(key),
            Some((Some(urn), _)) => urn.eq_ignore_ascii_case(key),
            None => false,
        };
        if refuse
            && !known_top.contains(&lower.as_str())
            && lower != extension_urn
            && !is_agent_attr
        {
            return Err(scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                &format!("Attribute '{key}' is not supported by CXone SCIM."),
            ));
        }
    }
    let name = member(object, "name").and_then(Value::as_object);
    let extension = member(object, NICE_EXTENSION).and_then(Value::as_object);
    if refuse {
        for (key, allowed) in [
            (name, &["givenname", "familyname", "middlename"][..]),
            (
                extension,
                &["loginauthenticator", "primaryrole", "team", "agentid"][..],
            ),
        ] {
            for k in key.into_iter().flat_map(Map::keys) {
                if !allowed.contains(&k.to_ascii_lowercase().as_str()) {
                    return Err(scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidSyntax"),
                        &format!("Attribute '{k}' is not supported by CXone SCIM."),
                    ));
                }
            }
        }
    }
    let Some(user_name) = text(object, "userName") else {
        return Err(bad("userName is required."));
    };
    let Some(given_name) = name.and_then(|n| text(n, "givenName")) else {
        return Err(bad("name.givenName (First Name) is required."));
    };
    let Some(family_name) = name.and_then(|n| text(n, "familyName")) else {
        return Err(bad("name.familyName (Last Name) is required."));
    };
    let emails: Vec<Value> = member(object, "emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !emails.iter().any(|e| {
        e.get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    }) {
        return Err(bad("emails (Email) is required."));
    }
    let active = match member(object, "active") {
        None | Some(Value::Null) => None,
        Some(v) => match boolean(Some(v)) {
            Some(b) => Some(b),
            None => return Err(bad("active must be a boolean.")),
        },
    };
    Ok(Fields {
        user_name,
        given_name,
        family_name,
        middle_name: name.and_then(|n| text(n, "middleName")),
        display_name: text(object, "displayName"),
        emails,
        phone_numbers: member(object, "phoneNumbers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        timezone: text(object, "timezone"),
        user_type: text(object, "userType"),
        external_id: text(object, "externalId"),
        active,
        login_authenticator: extension.and_then(|e| text(e, "loginAuthenticator")),
        primary_role: extension.and_then(|e| text(e, "primaryRole")),
        team: extension.and_then(|e| text(e, "team")),
    })
}

/// The SCIM representation of a user.
fn render(shared: &Shared, base: &str, user: &SimUser) -> Value {
    let mut name = Map::new();
    name.insert("givenName".into(), json!(user.given_name));
    name.insert("familyName".into(), json!(user.family_name));
    if let Some(m) = &user.middle_name {
        name.insert("middleName".into(), json!(m));
    }
    let mut ext = Map::new();
    ext.insert("primaryRole".into(), json!(user.role));
    if let Some(v) = &user.login_authenticator {
        ext.insert("loginAuthenticator".into(), json!(v));
    }
    if let Some(v) = &user.team {
        ext.insert("team".into(), json!(v));
    }
    let mut out = Map::new();
    out.insert("schemas".into(), json!([CORE, NICE_EXTENSION]));
    out.insert("id".into(), json!(user.id));
    if let Some(v) = &user.external_id {
        out.insert("externalId".into(), json!(v));
    }
    out.insert("userName".into(), json!(user.user_name));
    out.insert("name".into(), Value::Object(name));
    if let Some(v) = &user.display_name {
        out.insert("displayName".into(), json!(v));
    }
    out.insert("emails".into(), json!(user.emails));
    if !user.phone_numbers.is_empty() {
        out.insert("phoneNumbers".into(), json!(user.phone_numbers));
    }
    if let Some(v) = &user.timezone {
        out.insert("timezone".into(), json!(v));
    }
    if let Some(v) = &user.user_type {
        out.insert("userType".into(), json!(v));
    }
    out.insert("active".into(), json!(user.active));
    match agent_id_place(shared) {
        Some((Some(urn), attr)) if urn == NICE_EXTENSION => {
            ext.insert(attr, json!(user.agent_id));
        }
        Some((Some(urn), attr)) => {
            out.insert(urn, json!({ attr: user.agent_id }));
        }
        Some((None, attr)) => {
            out.insert(attr, json!(user.agent_id));
        }
        None => {}
    }
    out.insert(NICE_EXTENSION.into(), Value::Object(ext));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "version": format!("W/\"{}\"", user.version),
            "location": format!("{base}/Users/{}", user.id),
        }),
    );
    Value::Object(out)
}

fn base_url(shared: &Shared) -> String {
    shared.options.scim_base_path.clone()
}

fn not_found(id: &str) -> Response {
    scim_error(
        StatusCode::NOT_FOUND,
        None,
        &format!("User {id} was not found."),
    )
}

fn parse_body(bytes: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(bytes).map_err(|_| {
        scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "The request body is not valid JSON.",
        )
    })
}

/// Copy fields onto a user, checking the role.
fn apply(roles: &[String], user: &mut SimUser, f: Fields) -> Result<(), Response> {
    if let Some(role) = &f.primary_role {
        if !roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
            return Err(bad(&format!("Role '{role}' does not exist.")));
        }
        user.role.clone_from(role);
    }
    user.user_name = f.user_name;
    user.given_name = f.given_name;
    user.family_name = f.family_name;
    user.middle_name = f.middle_name;
    user.display_name = f.display_name;
    user.emails = f.emails;
    user.phone_numbers = f.phone_numbers;
    user.timezone = f.timezone;
    user.user_type = f.user_type;
    user.external_id = f.external_id;
    if let Some(active) = f.active {
        user.active = active;
    }
    user.login_authenticator = f.login_authenticator;
    user.team = f.team;
    Ok(())
}

/// `POST /Users`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Response {
    let body = match parse_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fields = match parse(&shared, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut unit = shared.unit();
    if unit
        .users
        .iter()
        .any(|u| u.user_name.eq_ignore_ascii_case(&fields.user_name))
    {
        return scim_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            &format!("userName '{}' is already in use.", fields.user_name),
        );
    }
    let agent_role = shared.options.agent_role_name.clone();
    if !unit.roles.contains(&agent_role) {
        return bad(&format!(
            "The user cannot be created: no '{agent_role}' role exists."
        ));
    }
    let agent_id = unit.next_agent_id;
    unit.next_agent_id += 1;
    let mut user = SimUser {
        id: uuid::Uuid::new_v4().to_string(),
        agent_id,
        user_name: String::new(),
        given_name: String::new(),
        family_name: String::new(),
        middle_name: None,
        display_name: None,
        emails: Vec::new(),
        phone_numbers: Vec::new(),
        timezone: None,
        user_type: None,
        external_id: None,
        active: true,
        role: agent_role,
        login_authenticator: None,
        team: None,
        skills: BTreeMap::new(),
        version: 1,
    };
    let roles = unit.roles.clone();
    if let Err(r) = apply(&roles, &mut user, fields) {
        return r;
    }
    let rendered = render(&shared, &base_url(&shared), &user);
    unit.users.push(user);
    scim_response(StatusCode::CREATED, &rendered)
}

/// `GET /Users/{id}`.
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let unit = shared.unit();
    match unit.user(&id) {
        Some(u) => scim_response(StatusCode::OK, &render(&shared, &base_url(&shared), u)),
        None => not_found(&id),
    }
}

/// `GET /Users` with `userName eq` or `externalId eq` filters.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = query_params(query.as_deref());
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let filter = match param("filter") {
        None => None,
        Some(f) => {
            let parsed = f.trim().split_once(' ').and_then(|(attr, rest)| {
                let (op, value) = rest.trim().split_once(' ')?;
                let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
                op.eq_ignore_ascii_case("eq")
                    .then(|| (attr.to_ascii_lowercase(), value.replace("\\\"", "\"")))
            });
            match parsed {
                Some((attr, value)) if attr == "username" || attr == "externalid" => {
                    Some((attr, value))
                }
                _ => {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidFilter"),
                        "Only 'userName eq' and 'externalId eq' filters are supported.",
                    )
                }
            }
        }
    };
    let start = param("startIndex")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = param("count")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(100);
    let unit = shared.unit();
    let matching: Vec<&SimUser> = unit
        .users
        .iter()
        .filter(|u| match &filter {
            None => true,
            Some((attr, value)) if attr == "username" => u.user_name.eq_ignore_ascii_case(value),
            Some((_, value)) => u.external_id.as_deref() == Some(value.as_str()),
        })
        .collect();
    let base = base_url(&shared);
    let page: Vec<Value> = matching
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|u| render(&shared, &base, u))
        .collect();
    scim_response(
        StatusCode::OK,
        &json!({
            "schemas": [LIST],
            "totalResults": matching.len(),
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

/// Write fields over the user `id` (PUT, and PATCH after applying its operations).
fn write(shared: &Shared, id: &str, body: &Value) -> Response {
    let fields = match parse(shared, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut unit = shared.unit();
    if unit
        .users
        .iter()
        .any(|u| u.id != id && u.user_name.eq_ignore_ascii_case(&fields.user_name))
    {
        return scim_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            &format!("userName '{}' is already in use.", fields.user_name),
        );
    }
    let roles = unit.roles.clone();
    let Some(user) = unit.users.iter_mut().find(|u| u.id == id) else {
        return not_found(id);
    };
    let mut updated = user.clone();
    if let Err(r) = apply(&roles, &mut updated, fields) {
        return r;
    }
    updated.version += 1;
    *user = updated;
    scim_response(StatusCode::OK, &render(shared, &base_url(shared), user))
}

/// `PUT /Users/{id}`.
pub(crate) async fn replace(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    match parse_body(&bytes) {
        Ok(body) => write(&shared, &id, &body),
        Err(r) => r,
    }
}

/// The key of `object` matching `name` case-insensitively, or `name` itself.
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

/// Apply one PATCH operation to a user's representation.
fn patch_one(
    doc: &mut Map<String, Value>,
    op: &str,
    path: Option<&str>,
    value: Option<&Value>,
) -> Result<(), Response> {
    let remove = op.eq_ignore_ascii_case("remove");
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        let Some(Value::Object(values)) = value else {
            return Err(bad(
                "A PATCH operation without a path needs an object value.",
            ));
        };
        for (k, v) in values {
            let key = key_of(doc, k);
            match (doc.get_mut(&key), v) {
                (Some(Value::Object(into)), Value::Object(from)) => {
                    for (k2, v2) in from {
                        let key2 = key_of(into, k2);
                        into.insert(key2, v2.clone());
                    }
                }
                _ => {
                    doc.insert(key, v.clone());
                }
            }
        }
        return Ok(());
    };
    // Strip the core URN; split an extension URN from its attribute.
    let core_prefix = format!("{CORE}:");
    let path = if path.len() > core_prefix.len()
        && path
            .get(..core_prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&core_prefix))
    {
        path.get(core_prefix.len()..).unwrap_or(path)
    } else {
        path
    };
    let (container, rest): (&mut Map<String, Value>, &str) =
        if path.to_ascii_lowercase().starts_with("urn:") {
            let Some((urn, attr)) = path.rsplit_once(':') else {
                return Err(bad("Unsupported PATCH path."));
            };
            let key = key_of(doc, urn);
            let entry = doc.entry(key).or_insert_with(|| json!({}));
            let Value::Object(ext) = entry else {
                return Err(bad("Unsupported PATCH path."));
            };
            (ext, attr)
        } else {
            (doc, path)
        };
    // `attr[type eq "x"].sub`
    if let Some((attr, filter_rest)) = rest.split_once('[') {
        let Some((filter, sub)) = filter_rest.split_once(']') else {
            return Err(bad("Unsupported PATCH path."));
        };
        let sub = sub.strip_prefix('.');
        let mut words = filter.split_whitespace();
        let (Some(fattr), Some(_eq), Some(fvalue)) = (words.next(), words.next(), words.next())
        else {
            return Err(bad("Unsupported PATCH filter."));
        };
        let fvalue = fvalue.trim_matches('"').to_owned();
        let key = key_of(container, attr);
        let list = container.entry(key).or_insert_with(|| json!([]));
        let Value::Array(items) = list else {
            return Err(bad("Unsupported PATCH path."));
        };
        let matches = |item: &Value| {
            item.as_object()
                .and_then(|o| member(o, fattr))
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(&fvalue))
        };
        if remove {
            match sub {
                None => items.retain(|i| !matches(i)),
                Some(sub) => {
                    for item in items.iter_mut().filter(|i| matches(i)) {
                        if let Value::Object(o) = item {
                            let k = key_of(o, sub);
                            o.remove(&k);
                        }
                    }
                }
            }
            return Ok(());
        }
        let Some(value) = value else {
            return Err(bad("The PATCH operation needs a value."));
        };
        if !items.iter().any(&matches) {
            items.push(json!({ fattr: fvalue }));
        }
        for item in items.iter_mut().filter(|i| matches(i)) {
            if let Value::Object(o) = item {
                match (sub, value) {
                    (Some(sub), v) => {
                        let k = key_of(o, sub);
                        o.insert(k, v.clone());
                    }
                    (None, Value::Object(v)) => {
                        for (k, v) in v {
                            let k2 = key_of(o, k);
                            o.insert(k2, v.clone());
                        }
                    }
                    (None, _) => return Err(bad("Unsupported PATCH value.")),
                }
            }
        }
        return Ok(());
    }
    let (head, tail) = match rest.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let key = key_of(container, head);
    match tail {
        None if remove => {
            container.remove(&key);
        }
        None => {
            let Some(value) = value else {
                return Err(bad("The PATCH operation needs a value."));
            };
            container.insert(key, value.clone());
        }
        Some(sub) => {
            let entry = container.entry(key).or_insert_with(|| json!({}));
            let Value::Object(inner) = entry else {
                return Err(bad("Unsupported PATCH path."));
            };
            let k = key_of(inner, sub);
            if remove {
                inner.remove(&k);
            } else {
                let Some(value) = value else {
                    return Err(bad("The PATCH operation needs a value."));
                };
                inner.insert(k, value.clone());
            }
        }
    }
    Ok(())
}

/// `PATCH /Users/{id}`: the operations applied to the user's representation, then written
/// as a PUT would be.
pub(crate) async fn patch(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let body = match parse_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let schemas_ok = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_OP)));
    let Some(ops) = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
    else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "Operations is required.",
        );
    };
    if !schemas_ok {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "schemas must name the PatchOp message.",
        );
    }
    let current = {
        let unit = shared.unit();
        match unit.user(&id) {
            Some(u) => render(&shared, &base_url(&shared), u),
            None => return not_found(&id),
        }
    };
    let Value::Object(mut doc) = current else {
        return not_found(&id);
    };
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        if !["add", "replace", "remove"]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(name))
        {
            return scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                &format!("Unknown PATCH op '{name}'."),
            );
        }
        let path = op.get("path").and_then(Value::as_str);
        if let Err(r) = patch_one(&mut doc, name, path, op.get("value")) {
            return r;
        }
    }
    write(&shared, &id, &Value::Object(doc))
}

/// `DELETE /Users/{id}`: not in CXone's documented contract (deactivate instead): 405.
pub(crate) async fn delete(Path(_id): Path<String>) -> Response {
    scim_error(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "Users cannot be deleted; set active to false to deactivate.",
    )
}
