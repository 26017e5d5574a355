//! SCIM `/Users`: list (eq filters only, paging capped at 25), create, read, replace,
//! patch, soft delete; the enterprise and Genesys extensions; `If-Match` versions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::errors::{parse_scim_body, scim_error, scim_response};
use super::model::{now_rfc3339, Grant, Org, SimUser, UserState};
use super::scim_patch::{apply_patch, geti, parse_eq};
use super::{ScimRoleDivision, Shared};

pub(crate) const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const GENESYS: &str =
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The immutable authority Genesys adds to `externalIds`.
const PC_AUTHORITY: &str = "x-pc:scimv2:v1";
/// Attributes a page over 25 must exclude.
const HEAVY: [&str; 4] = ["externalid", "roles", "routingskills", "routinglanguages"];

/// `W/"n"`.
pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// The version number inside `"42"`, `W/"42"` or `42`.
pub(crate) fn parse_version(s: &str) -> Option<u64> {
    s.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Check `If-Match`; a mismatch is 400 `invalidVers`.
pub(crate) fn check_if_match(headers: &HeaderMap, version: u64) -> Result<(), Response> {
    let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if v.trim() == "*" || parse_version(v) == Some(version) {
        return Ok(());
    }
    Err(scim_error(
        StatusCode::BAD_REQUEST,
        Some("invalidVers"),
        &format!(
            "The resource version {v} does not match the current version {}",
            etag(version)
        ),
    ))
}

/// A SCIM answer carrying the ETag.
pub(crate) fn with_etag(status: StatusCode, body: &Value, version: u64) -> Response {
    let mut resp = scim_response(status, body);
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn not_found(id: &str) -> Response {
    scim_error(
        StatusCode::NOT_FOUND,
        None,
        &format!("Resource {id} not found"),
    )
}

fn invalid_value(detail: &str) -> Response {
    scim_error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
}

/// Render a user as SCIM JSON.
pub(crate) fn render(org: &Org, base_url: &str, u: &SimUser) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([CORE, ENTERPRISE, GENESYS]));
    out.insert("id".into(), json!(u.id));
    out.insert("userName".into(), json!(u.user_name));
    out.insert("displayName".into(), json!(u.display_name));
    out.insert("active".into(), json!(u.state == UserState::Active));
    if let Some(t) = &u.title {
        out.insert("title".into(), json!(t));
    }
    let mut emails = vec![json!({"type": "other", "value": u.user_name, "primary": true})];
    if let Some(w) = &u.work_email {
        emails.push(json!({"type": "work", "value": w}));
    }
    out.insert("emails".into(), Value::Array(emails));
    if !u.phone_numbers.is_empty() {
        out.insert(
            "phoneNumbers".into(),
            u.phone_numbers
                .iter()
                .map(|(t, v)| json!({"type": t, "value": v}))
                .collect(),
        );
    }
    if let Some(e) = &u.external_id {
        out.insert("externalId".into(), json!(e));
    }
    let groups: Vec<Value> = org
        .groups_of(&u.id)
        .iter()
        .map(|g| json!({"value": g.id, "display": g.display_name, "$ref": format!("{base_url}/api/v2/scim/v2/Groups/{}", g.id)}))
        .collect();
    if !groups.is_empty() {
        out.insert("groups".into(), Value::Array(groups));
    }
    let roles: BTreeSet<&str> = u
        .grants
        .iter()
        .filter_map(|g| org.role(&g.role_id).map(|r| r.name.as_str()))
        .collect();
    if !roles.is_empty() {
        out.insert(
            "roles".into(),
            roles.iter().map(|r| json!({"value": r})).collect(),
        );
    }
    let mut ent = Map::new();
    if let Some(d) = org.division(&u.division_id) {
        ent.insert("division".into(), json!(d.name));
    }
    if let Some(v) = &u.department {
        ent.insert("department".into(), json!(v));
    }
    if let Some(m) = &u.manager_id {
        ent.insert("manager".into(), json!({"value": m}));
    }
    if let Some(v) = &u.employee_number {
        ent.insert("employeeNumber".into(), json!(v));
    }
    if let Some(v) = &u.date_hire {
        ent.insert("dateHire".into(), json!(v));
    }
    out.insert(ENTERPRISE.into(), Value::Object(ent));
    let mut gen = Map::new();
    let skills: Vec<Value> = u
        .skills
        .iter()
        .filter_map(|(id, p)| {
            org.skill(id)
                .map(|s| json!({"name": s.name, "proficiency": p}))
        })
        .collect();
    if !skills.is_empty() {
        gen.insert("routingSkills".into(), Value::Array(skills));
    }
    let langs: Vec<Value> = u
        .languages
        .iter()
        .filter_map(|(id, p)| {
            org.language(id)
                .map(|s| json!({"name": s.name, "proficiency": p}))
        })
        .collect();
    if !langs.is_empty() {
        gen.insert("routingLanguages".into(), Value::Array(langs));
    }
    let mut ext_ids = vec![
        json!({"authority": PC_AUTHORITY, "value": u.external_id.clone().unwrap_or_else(|| u.id.clone())}),
    ];
    ext_ids.extend(
        u.external_ids
            .iter()
            .map(|(a, v)| json!({"authority": a, "value": v})),
    );
    gen.insert("externalIds".into(), Value::Array(ext_ids));
    out.insert(GENESYS.into(), Value::Object(gen));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "lastModified": u.last_modified,
            "location": format!("{base_url}/api/v2/scim/v2/Users/{}", u.id),
            "version": etag(u.version),
        }),
    );
    Value::Object(out)
}

/// `attributes` / `excludedAttributes` of a request, as last-segment names in lower case.
#[derive(Debug, Default)]
pub(crate) struct Projection {
    excluded: Vec<String>,
    included: Option<Vec<String>>,
}

fn names(q: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| {
            v.split(',')
                .map(|s| {
                    let s = s.trim();
                    s.rsplit(':').next().unwrap_or(s).to_ascii_lowercase()
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
}

/// Attributes always returned, whatever the projection.
const ALWAYS: [&str; 5] = ["schemas", "id", "username", "active", "meta"];

impl Projection {
    /// From the query string.
    pub(crate) fn from_query(q: &HashMap<String, String>) -> Self {
        Self {
            excluded: names(q, "excludedAttributes").unwrap_or_default(),
            included: names(q, "attributes"),
        }
    }

    /// Whether the expensive secondary lookups (`externalId`, `roles`, `routingSkills`,
    /// `routingLanguages`) are all left out, by exclusion or by an include list.
    fn light(&self) -> bool {
        match &self.included {
            Some(inc) => !HEAVY.iter().any(|h| inc.iter().any(|i| i == h)),
            None => HEAVY.iter().all(|h| self.excluded.iter().any(|e| e == h)),
        }
    }

    fn keeps(&self, key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        if ALWAYS.contains(&k.as_str()) {
            return true;
        }
        if self.excluded.contains(&k) {
            return false;
        }
        self.included.as_ref().is_none_or(|inc| inc.contains(&k))
    }

    /// Drop what the projection leaves out (extension attributes by their own names).
    pub(crate) fn apply(&self, doc: &mut Value) {
        if self.excluded.is_empty() && self.included.is_none() {
            return;
        }
        let Some(obj) = doc.as_object_mut() else {
            return;
        };
        obj.retain(|k, v| {
            if k.starts_with("urn:") {
                if let Some(ext) = v.as_object_mut() {
                    ext.retain(|ek, _| self.keeps(ek));
                    return !ext.is_empty();
                }
            }
            self.keeps(k)
        });
    }
}

/// A parsed user filter.
#[derive(Debug, PartialEq)]
enum Filter {
    Id(String),
    UserName(String),
    ExternalId(String),
    Active(bool),
    Email(String),
    Manager(String),
    Division(String),
    EmployeeNumber(String),
    ExternalIds { authority: String, value: String },
}

fn invalid_filter(f: &str) -> Response {
    scim_error(
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
        &format!("Unsupported filter: {f}. Only eq on id, userName, externalId, active, email, manager, division, employeeNumber and externalIds[authority eq .. and value eq ..] is supported"),
    )
}

fn parse_filter(f: &str) -> Result<Filter, Response> {
    let lower = f.to_ascii_lowercase();
    let stripped = [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:",
        "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:user:",
        "urn:ietf:params:scim:schemas:core:2.0:user:",
    ]
    .iter()
    .find(|p| lower.starts_with(*p))
    .map_or(f, |p| f.get(p.len()..).unwrap_or_default());
    if stripped.to_ascii_lowercase().starts_with("externalids[") {
        let inner = stripped
            .get("externalIds[".len()..)
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| invalid_filter(f))?;
        let lower_inner = inner.to_ascii_lowercase();
        let cut = lower_inner.find(" and ").ok_or_else(|| invalid_filter(f))?;
        let a = parse_eq(inner.get(..cut).unwrap_or_default()).ok_or_else(|| invalid_filter(f))?;
        let b =
            parse_eq(inner.get(cut + 5..).unwrap_or_default()).ok_or_else(|| invalid_filter(f))?;
        let (auth, val) = match (
            a.0.to_ascii_lowercase().as_str(),
            b.0.to_ascii_lowercase().as_str(),
        ) {
            ("authority", "value") => (a.1, b.1),
            ("value", "authority") => (b.1, a.1),
            _ => return Err(invalid_filter(f)),
        };
        return Ok(Filter::ExternalIds {
            authority: auth,
            value: val,
        });
    }
    let lower_rest = stripped.to_ascii_lowercase();
    if lower_rest.contains(" and ") || lower_rest.contains(" or ") || lower_rest.starts_with("not")
    {
        return Err(invalid_filter(f));
    }
    let (attr, value) = parse_eq(stripped).ok_or_else(|| invalid_filter(f))?;
    Ok(match attr.to_ascii_lowercase().as_str() {
        "id" => Filter::Id(value),
        "username" => Filter::UserName(value),
        "externalid" => Filter::ExternalId(value),
        "active" => match value.to_ascii_lowercase().as_str() {
            "true" => Filter::Active(true),
            "false" => Filter::Active(false),
            _ => return Err(invalid_filter(f)),
        },
        "email" | "emails" | "emails.value" => Filter::Email(value),
        "manager" | "manager.value" => Filter::Manager(value),
        "division" => Filter::Division(value),
        "employeenumber" => Filter::EmployeeNumber(value),
        _ => return Err(invalid_filter(f)),
    })
}

fn matches(org: &Org, u: &SimUser, f: &Filter, include_inactive: bool) -> bool {
    let visible = match f {
        Filter::Active(true) => u.state == UserState::Active,
        Filter::Active(false) => u.state == UserState::Inactive,
        _ => u.state == UserState::Active || (include_inactive && u.state == UserState::Inactive),
    };
    visible
        && match f {
            Filter::Active(_) => true,
            Filter::Id(v) => u.id == *v,
            Filter::UserName(v) => u.user_name.eq_ignore_ascii_case(v),
            Filter::ExternalId(v) => u.external_id.as_deref() == Some(v.as_str()),
            Filter::Email(v) => {
                u.user_name.eq_ignore_ascii_case(v)
                    || u.work_email
                        .as_deref()
                        .is_some_and(|w| w.eq_ignore_ascii_case(v))
            }
            Filter::Manager(v) => u.manager_id.as_deref() == Some(v.as_str()),
            Filter::Division(v) => org
                .division(&u.division_id)
                .is_some_and(|d| d.name.eq_ignore_ascii_case(v)),
            Filter::EmployeeNumber(v) => u.employee_number.as_deref() == Some(v.as_str()),
            Filter::ExternalIds { authority, value } => {
                (authority == PC_AUTHORITY && u.external_id.as_deref().unwrap_or(&u.id) == value)
                    || u.external_ids
                        .iter()
                        .any(|(a, v)| a == authority && v == value)
            }
        }
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Page parameters: `(startIndex, count)` or an error answer; records the count asked.
pub(crate) fn page(
    shared: &Shared,
    org: &mut Org,
    q: &HashMap<String, String>,
    projection: &Projection,
) -> Result<(usize, usize), Response> {
    let start = param(q, "startIndex")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = match param(q, "count") {
        Some(c) => c.parse::<usize>().map_err(|_| {
            scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                "count must be a non-negative integer",
            )
        })?,
        None => 25,
    };
    org.max_page_size_seen = org.max_page_size_seen.max(count);
    let cap = shared.options.scim_page_cap;
    if count <= cap {
        return Ok((start, count));
    }
    if projection.light() {
        return Ok((start, count.min(shared.options.scim_page_cap_excluded)));
    }
    Err(scim_error(
        StatusCode::TOO_MANY_REQUESTS,
        None,
        &format!("A page size over {cap} may exceed internal resource limits; exclude externalId, roles, routingSkills and routingLanguages with excludedAttributes (or leave them out of attributes)"),
    ))
}

/// A ListResponse of already rendered resources.
pub(crate) fn list_response(total: usize, start: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start,
        "Resources": resources,
    })
}

/// `GET /Users`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let projection = Projection::from_query(&q);
    let mut org = shared.org();
    let (start, count) = match page(&shared, &mut org, &q, &projection) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let filter = match param(&q, "filter").map(parse_filter).transpose() {
        Ok(f) => f,
        Err(r) => return r,
    };
    let include_inactive = shared.options.scim_filter_includes_inactive;
    let hits: Vec<&SimUser> = org
        .users
        .iter()
        .filter(|u| match &filter {
            Some(f) => matches(&org, u, f, include_inactive),
            None => u.state == UserState::Active,
        })
        .collect();
    let resources: Vec<Value> = hits
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|u| {
            let mut doc = render(&org, &shared.base_url, u);
            projection.apply(&mut doc);
            doc
        })
        .collect();
    scim_response(StatusCode::OK, &list_response(hits.len(), start, resources))
}

/// Everything a SCIM user document asks for, resolved against the organisation.
struct Resolved {
    user_name: String,
    display_name: String,
    active: bool,
    external_id: Option<String>,
    external_ids: Vec<(String, String)>,
    title: Option<String>,
    work_email: Option<String>,
    phone_numbers: Vec<(String, String)>,
    division_id: Option<String>,
    manager_id: Option<String>,
    department: Option<String>,
    employee_number: Option<String>,
    date_hire: Option<String>,
    roles: Option<Vec<String>>,
    skills: BTreeMap<String, f64>,
    languages: BTreeMap<String, f64>,
}

fn str_of(obj: &Map<String, Value>, key: &str) -> Option<String> {
    geti(obj, key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn bool_of(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn named_list(
    ext: Option<&Map<String, Value>>,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Result<BTreeMap<String, f64>, Response> {
    let Some(items) = ext.and_then(|e| geti(e, key)).and_then(Value::as_array) else {
        return Ok(BTreeMap::new());
    };
    if items.len() > 50 {
        return Err(invalid_value(&format!("{key} holds at most 50 items")));
    }
    let mut out = BTreeMap::new();
    for item in items {
        let obj = item.as_object();
        let name = obj.and_then(|o| str_of(o, "name")).unwrap_or_default();
        let id = lookup(&name)
            .ok_or_else(|| invalid_value(&format!("The {what} '{name}' does not exist")))?;
        let p = obj
            .and_then(|o| geti(o, "proficiency"))
            .and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0.0);
        if !(0.0..=5.0).contains(&p) {
            return Err(invalid_value(&format!(
                "proficiency of {what} '{name}' must be 0.0 to 5.0"
            )));
        }
        out.insert(id, p);
    }
    Ok(out)
}

fn resolve(org: &Org, doc: &Value) -> Result<Resolved, Response> {
    let obj = doc.as_object().ok_or_else(|| {
        scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "a user must be a JSON object",
        )
    })?;
    let user_name = str_of(obj, "userName").ok_or_else(|| invalid_value("userName is required"))?;
    let display_name =
        str_of(obj, "displayName").ok_or_else(|| invalid_value("displayName is required"))?;
    let active = bool_of(geti(obj, "active")).unwrap_or(true);
    let mut work_email = None;
    for e in geti(obj, "emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(o) = e.as_object() {
            // `other` is the userName and read-only: ignored on input.
            if str_of(o, "type").is_some_and(|t| t.eq_ignore_ascii_case("work")) {
                work_email = str_of(o, "value");
            }
        }
    }
    let mut phone_numbers = Vec::new();
    for p in geti(obj, "phoneNumbers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(o) = p.as_object() {
            let t = str_of(o, "type").unwrap_or_else(|| "work".into());
            let allowed = [
                "work",
                "work2",
                "work3",
                "work4",
                "home",
                "mobile",
                "other",
                "microsoftteams",
                "zoomphone",
                "eightbyeight",
                "ringcentral",
            ];
            if !allowed.contains(&t.to_ascii_lowercase().as_str()) {
                return Err(invalid_value(&format!(
                    "phone number type {t} is not supported"
                )));
            }
            if let Some(v) = str_of(o, "value") {
                phone_numbers.push((t.to_ascii_lowercase(), v));
            }
        }
    }
    let roles = match geti(obj, "roles") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let mut ids = Vec::new();
            for r in v.as_array().into_iter().flatten() {
                let name = r
                    .as_object()
                    .and_then(|o| str_of(o, "value"))
                    .unwrap_or_default();
                let role = org
                    .role_by_name(&name)
                    .ok_or_else(|| invalid_value(&format!("The role '{name}' does not exist")))?;
                ids.push(role.id.clone());
            }
            Some(ids)
        }
    };
    let ent = geti(obj, ENTERPRISE).and_then(Value::as_object);
    let division_id = match ent.and_then(|e| str_of(e, "division")) {
        Some(name) => Some(
            org.division_by_name(&name)
                .map(|d| d.id.clone())
                .ok_or_else(|| invalid_value(&format!("The division '{name}' does not exist")))?,
        ),
        None => None,
    };
    let manager_id = match ent.and_then(|e| geti(e, "manager")) {
        Some(Value::Object(m)) => str_of(m, "value"),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    if let Some(m) = &manager_id {
        if org.user(m).is_none_or(|u| u.state == UserState::Deleted) {
            return Err(invalid_value(&format!(
                "The manager '{m}' is not a Genesys user id"
            )));
        }
    }
    let gen = geti(obj, GENESYS).and_then(Value::as_object);
    let skills = named_list(
        gen,
        "routingSkills",
        &|n| {
            org.skills
                .iter()
                .find(|s| s.name == n)
                .map(|s| s.id.clone())
        },
        "routing skill",
    )?;
    let languages = named_list(
        gen,
        "routingLanguages",
        &|n| {
            org.languages
                .iter()
                .find(|s| s.name == n)
                .map(|s| s.id.clone())
        },
        "routing language",
    )?;
    let external_ids = gen
        .and_then(|g| geti(g, "externalIds"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let o = e.as_object()?;
            Some((str_of(o, "authority")?, str_of(o, "value")?))
        })
        .filter(|(a, _)| !a.starts_with(PC_AUTHORITY))
        .collect();
    Ok(Resolved {
        user_name,
        display_name,
        active,
        external_id: str_of(obj, "externalId"),
        external_ids,
        title: str_of(obj, "title"),
        work_email,
        phone_numbers,
        division_id,
        manager_id,
        department: ent.and_then(|e| str_of(e, "department")),
        employee_number: ent.and_then(|e| str_of(e, "employeeNumber")),
        date_hire: ent.and_then(|e| str_of(e, "dateHire")),
        roles,
        skills,
        languages,
    })
}

/// 409 `uniqueness` if another user holds the userName.
fn check_unique(
    shared: &Shared,
    org: &Org,
    user_name: &str,
    except: Option<&str>,
) -> Result<(), Response> {
    let clash = org.users.iter().any(|u| {
        Some(u.id.as_str()) != except
            && u.user_name.eq_ignore_ascii_case(user_name)
            && (u.state != UserState::Deleted || shared.options.scim_conflict_on_deleted)
    });
    if clash {
        return Err(scim_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            &format!("User name already in use: {user_name}"),
        ));
    }
    Ok(())
}

/// Write resolved values into the user at `idx`.
fn apply(shared: &Shared, org: &mut Org, idx: usize, r: Resolved, keep_roles_if_absent: bool) {
    let home = org
        .home_division()
        .map(|d| d.id.clone())
        .unwrap_or_default();
    let Some(u) = org.users.get_mut(idx) else {
        return;
    };
    u.user_name = r.user_name;
    u.display_name = r.display_name;
    match (r.active, u.state) {
        (false, UserState::Active) => {
            u.state = UserState::Inactive;
            // Deactivation frees the license.
            u.licenses.clear();
        }
        (true, UserState::Inactive) => u.state = UserState::Active,
        _ => {}
    }
    u.external_id = r.external_id;
    u.external_ids = r.external_ids;
    u.title = r.title;
    u.work_email = r.work_email;
    u.phone_numbers = r.phone_numbers;
    if let Some(d) = r.division_id {
        u.division_id = d;
    }
    u.manager_id = r.manager_id;
    u.department = r.department;
    u.employee_number = r.employee_number;
    u.date_hire = r.date_hire;
    u.skills = r.skills;
    u.languages = r.languages;
    let roles = match r.roles {
        Some(roles) => Some(roles),
        None if keep_roles_if_absent => None,
        None => Some(Vec::new()),
    };
    if let Some(roles) = roles {
        u.grants.retain(|g| roles.contains(&g.role_id));
        let division = match shared.options.scim_role_division {
            ScimRoleDivision::Home => home,
            ScimRoleDivision::UserDivision => u.division_id.clone(),
        };
        for role in roles {
            if !u.grants.iter().any(|g| g.role_id == role) {
                u.grants.insert(Grant {
                    role_id: role,
                    division_id: division.clone(),
                });
            }
        }
    }
    u.touch();
}

/// `POST /Users`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let doc = match parse_scim_body(&body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut org = shared.org();
    let r = match resolve(&org, &doc) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if let Err(e) = check_unique(&shared, &org, &r.user_name, None) {
        return e;
    }
    let home = org
        .home_division()
        .map(|d| d.id.clone())
        .unwrap_or_default();
    let user = SimUser::new(&r.user_name, &r.display_name, &home);
    org.users.push(user);
    let idx = org.users.len() - 1;
    apply(&shared, &mut org, idx, r, false);
    if let Some(u) = org.users.get_mut(idx) {
        u.version = 1;
        u.last_modified = now_rfc3339();
    }
    let Some(u) = org.users.get(idx) else {
        return not_found("new user");
    };
    let body = render(&org, &shared.base_url, u);
    let mut resp = with_etag(StatusCode::CREATED, &body, u.version);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}/api/v2/scim/v2/Users/{}",
        shared.base_url, u.id
    )) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn visible_index(org: &Org, id: &str) -> Option<usize> {
    org.users
        .iter()
        .position(|u| u.id == id && u.state != UserState::Deleted)
}

/// `GET /Users/{id}` (`If-None-Match` gives 304).
pub(crate) async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let org = shared.org();
    let Some(u) = visible_index(&org, &id).and_then(|i| org.users.get(i)) else {
        return not_found(&id);
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_version)
        == Some(u.version)
    {
        let mut resp = scim_response(StatusCode::NOT_MODIFIED, &Value::Null);
        *resp.body_mut() = axum::body::Body::empty();
        return resp;
    }
    let mut doc = render(&org, &shared.base_url, u);
    Projection::from_query(&q).apply(&mut doc);
    with_etag(StatusCode::OK, &doc, u.version)
}

fn write(
    shared: &Shared,
    id: &str,
    headers: &HeaderMap,
    doc_for: impl FnOnce(&Org, &SimUser) -> Result<(Value, bool), Response>,
) -> Response {
    let mut org = shared.org();
    let Some(idx) = visible_index(&org, id) else {
        return not_found(id);
    };
    let Some(u) = org.users.get(idx) else {
        return not_found(id);
    };
    if let Err(e) = check_if_match(headers, u.version) {
        return e;
    }
    if !headers.contains_key(header::IF_MATCH) && org.racing.remove(id) {
        if let Some(u) = org.users.get_mut(idx) {
            u.touch();
        }
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidVers"),
            "The user was changed by another request; read it again and send its version in If-Match",
        );
    }
    let Some(u) = org.users.get(idx) else {
        return not_found(id);
    };
    let (doc, keep_roles) = match doc_for(&org, u) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let r = match resolve(&org, &doc) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if let Err(e) = check_unique(shared, &org, &r.user_name, Some(id)) {
        return e;
    }
    apply(shared, &mut org, idx, r, keep_roles);
    let Some(u) = org.users.get(idx) else {
        return not_found(id);
    };
    with_etag(
        StatusCode::OK,
        &render(&org, &shared.base_url, u),
        u.version,
    )
}

/// `PUT /Users/{id}`: replaces the representation.
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
    let keep = shared.options.scim_put_without_roles_keeps_roles;
    write(&shared, &id, &headers, |_, _| Ok((doc, keep)))
}

/// `PATCH /Users/{id}`: ops add, replace, remove.
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
    write(&shared, &id, &headers, |org, u| {
        let mut doc = render(org, &base, u);
        apply_patch(&mut doc, &ops)?;
        Ok((doc, false))
    })
}

/// `DELETE /Users/{id}`: a soft delete (state `deleted`); own grants, licenses and group
/// memberships are dropped and not restored on re-activation.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut org = shared.org();
    let Some(idx) = visible_index(&org, &id) else {
        return not_found(&id);
    };
    if let Some(u) = org.users.get_mut(idx) {
        if let Err(e) = check_if_match(&headers, u.version) {
            return e;
        }
        u.state = UserState::Deleted;
        u.grants.clear();
        u.licenses.clear();
        u.management_unit = None;
        u.touch();
    }
    for g in &mut org.groups {
        g.members.remove(&id);
    }
    let mut resp = scim_response(StatusCode::NO_CONTENT, &Value::Null);
    *resp.body_mut() = axum::body::Body::empty();
    resp
}

/// `GET /ServiceProviderConfig`.
pub(crate) async fn service_provider_config() -> Response {
    scim_response(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 25},
            "changePassword": {"supported": true},
            "sort": {"supported": false},
            "etag": {"supported": true},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "Client credentials"}],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_filters_only() {
        let ok = [
            ("userName eq \"a@x\"", Filter::UserName("a@x".into())),
            ("active eq false", Filter::Active(false)),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division eq \"Ops\"",
                Filter::Division("Ops".into()),
            ),
            (
                "externalIds[authority eq \"A\" and value eq \"V\"]",
                Filter::ExternalIds {
                    authority: "A".into(),
                    value: "V".into(),
                },
            ),
        ];
        for (f, want) in ok {
            assert_eq!(parse_filter(f).ok(), Some(want), "{f}");
        }
        for f in [
            "userName sw \"a\"",
            "title eq \"x\"",
            "userName eq \"a\" and active eq true",
            "displayName eq \"x\"",
        ] {
            assert!(parse_filter(f).is_err(), "{f}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("W/\"42\""), Some(42));
        assert_eq!(parse_version("\"42\""), Some(42));
        assert_eq!(parse_version("7"), Some(7));
    }
}
