//! The HTTP API as data: every route's method, path, scope, input and
//! summary, in one table per mount ([`scim_routes`], [`admin_routes`],
//! [`root_routes`]). [`crate::router`] is built from these tables, and so is
//! the OpenAPI description served at `/openapi.json` ([`openapi`]), so the
//! description cannot drift from what the server routes.

use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use serde_json::{json, Map, Value};

use crate::{
    admin, audit, auth, bulk, discovery, expressions, health, lifecycle, oauth, offboard,
    resources, rules, targets, AppState,
};

/// What a route reads from a request, for the OpenAPI description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nothing beyond its path.
    Nothing,
    /// The SCIM query parameters of a list (`filter`, `startIndex`, ...).
    ListQuery,
    /// `attributes` and `excludedAttributes`.
    ProjectionQuery,
    /// A SCIM resource (`application/scim+json`).
    Resource,
    /// A SCIM `PatchOp` message.
    Patch,
    /// A SCIM `SearchRequest` message.
    Search,
    /// A SCIM `BulkRequest` message.
    Bulk,
    /// A JSON document of the admin API.
    Json,
    /// A text document (TOML or JSON) of the admin API.
    Document,
    /// An `application/x-www-form-urlencoded` body.
    Form,
}

/// One route of the API.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path below the mount, with `{name}` parameters.
    pub path: &'static str,
    /// The scope a bearer token needs; `None`: no token.
    pub scope: Option<&'static str>,
    /// What the request carries.
    pub input: Input,
    /// One line on what the route does.
    pub summary: &'static str,
    handler: MethodRouter<AppState>,
}

/// A route whose handler runs behind the scope check.
fn scoped<H, T>(
    method: Method,
    path: &'static str,
    scope: &'static str,
    input: Input,
    summary: &'static str,
    handler: H,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = method_filter(&method);
    let layer = from_fn_with_state(scope, auth::require_scope);
    Route {
        method,
        path,
        scope: Some(scope),
        input,
        summary,
        handler: on(filter, handler.layer(layer)),
    }
}

/// A route that needs no bearer token.
fn open<H, T>(
    method: Method,
    path: &'static str,
    input: Input,
    summary: &'static str,
    handler: H,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = method_filter(&method);
    Route {
        method,
        path,
        scope: None,
        input,
        summary,
        handler: on(filter, handler),
    }
}

fn method_filter(method: &Method) -> MethodFilter {
    match *method {
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

/// The SCIM service provider, mounted at `/scim/v2` (the default tenant)
/// and `/t/{tenant}/scim/v2`.
pub fn scim_routes() -> Vec<Route> {
    use Input::*;
    use Method as M;
    vec![
        scoped(
            M::GET,
            "/ServiceProviderConfig",
            SCOPE_READ,
            Nothing,
            "The service provider's configuration (RFC 7644 section 4)",
            discovery::service_provider_config,
        ),
        scoped(
            M::GET,
            "/Schemas",
            SCOPE_READ,
            Nothing,
            "Every schema",
            discovery::schemas,
        ),
        scoped(
            M::GET,
            "/Schemas/{id}",
            SCOPE_READ,
            Nothing,
            "One schema by URN",
            discovery::schema,
        ),
        scoped(
            M::GET,
            "/ResourceTypes",
            SCOPE_READ,
            Nothing,
            "Every resource type",
            discovery::resource_types,
        ),
        scoped(
            M::GET,
            "/ResourceTypes/{id}",
            SCOPE_READ,
            Nothing,
            "One resource type",
            discovery::resource_type,
        ),
        scoped(
            M::POST,
            "/Bulk",
            SCOPE_WRITE,
            Bulk,
            "Many operations in one request",
            bulk::bulk,
        ),
        scoped(
            M::POST,
            "/.search",
            SCOPE_READ,
            Search,
            "Search every resource type",
            resources::search_root,
        ),
        scoped(
            M::GET,
            "/{endpoint}",
            SCOPE_READ,
            ListQuery,
            "List or filter resources",
            resources::list,
        ),
        scoped(
            M::POST,
            "/{endpoint}",
            SCOPE_WRITE,
            Resource,
            "Create a resource",
            resources::create,
        ),
        scoped(
            M::POST,
            "/{endpoint}/.search",
            SCOPE_READ,
            Search,
            "Search resources of one type",
            resources::search,
        ),
        scoped(
            M::GET,
            "/{endpoint}/{id}",
            SCOPE_READ,
            ProjectionQuery,
            "Read a resource",
            resources::get,
        ),
        scoped(
            M::PUT,
            "/{endpoint}/{id}",
            SCOPE_WRITE,
            Resource,
            "Replace a resource",
            resources::replace,
        ),
        scoped(
            M::PATCH,
            "/{endpoint}/{id}",
            SCOPE_WRITE,
            Patch,
            "Modify a resource",
            resources::patch,
        ),
        scoped(
            M::DELETE,
            "/{endpoint}/{id}",
            SCOPE_WRITE,
            Nothing,
            "Delete a resource",
            resources::delete,
        ),
    ]
}

/// The admin API, mounted at `/admin/v1` (the default tenant) and
/// `/t/{tenant}/admin/v1`.
pub fn admin_routes() -> Vec<Route> {
    use Input::*;
    use Method as M;
    vec![
        scoped(M::GET, "/schemas", SCOPE_ADMIN, Nothing, "The tenant's custom schemas",
            admin::list_schemas),
        scoped(M::GET, "/schemas/{urn}", SCOPE_ADMIN, Nothing, "One custom schema",
            admin::get_schema),
        scoped(M::PUT, "/schemas/{urn}", SCOPE_ADMIN, Json,
            "Declare or change a custom schema", admin::put_schema),
        scoped(M::DELETE, "/schemas/{urn}", SCOPE_ADMIN, Nothing, "Remove a custom schema",
            admin::delete_schema),
        scoped(M::GET, "/attributes", SCOPE_ADMIN, Nothing,
            "Every attribute path: schema, type, holders, last writer", admin::attributes),
        scoped(M::GET, "/settings", SCOPE_ADMIN, Nothing, "The tenant's settings",
            admin::get_settings),
        scoped(M::PUT, "/settings", SCOPE_ADMIN, Json, "Change the tenant's settings",
            admin::put_settings),
        scoped(M::GET, "/resources/{endpoint}/{id}", SCOPE_ADMIN, Nothing,
            "A resource as stored, with its captured values", admin::stored_resource),
        scoped(M::GET, "/rules", SCOPE_ADMIN, Nothing, "The entitlement rule set in force",
            rules::get_rules),
        scoped(M::PUT, "/rules", SCOPE_ADMIN, Document,
            "Apply an entitlement rule set (or dry-run it)", rules::put_rules),
        scoped(M::GET, "/rules/history", SCOPE_ADMIN, Nothing, "Every applied rule set",
            rules::rules_history),
        scoped(M::GET, "/rules/stats", SCOPE_ADMIN, Nothing,
            "How many users each rule and entitlement covers", rules::get_rules_stats),
        scoped(M::GET, "/users/{id}/entitlements/explain", SCOPE_ADMIN, Nothing,
            "Why a user has its entitlements, rule by rule", rules::explain),
        scoped(M::POST, "/expressions/evaluate", SCOPE_ADMIN, Json,
            "Evaluate a mapping expression against a user", expressions::evaluate),
        scoped(M::GET, "/targets", SCOPE_ADMIN, Nothing, "Every sync target and its state",
            targets::list_targets),
        scoped(M::GET, "/targets/{name}", SCOPE_ADMIN, Nothing, "One sync target",
            targets::get_target),
        scoped(M::PUT, "/targets/{name}", SCOPE_ADMIN, Json, "Create or change a target",
            targets::put_target),
        scoped(M::DELETE, "/targets/{name}", SCOPE_ADMIN, Nothing, "Remove a target",
            targets::delete_target),
        scoped(M::POST, "/targets/{name}/resume", SCOPE_ADMIN, Nothing,
            "Resume a target stopped by its deletion guard", targets::resume_target),
        scoped(M::GET, "/sync/dead-letters", SCOPE_ADMIN, Nothing,
            "Deliveries that failed for good", targets::dead_letters),
        scoped(M::DELETE, "/sync/dead-letters/{id}", SCOPE_ADMIN, Nothing,
            "Discard a dead letter", targets::discard_dead_letter),
        scoped(M::POST, "/sync/dead-letters/{id}/retry", SCOPE_ADMIN, Nothing,
            "Deliver a dead letter again", targets::retry_dead_letter),
        scoped(M::GET, "/users/{id}/targets/{name}", SCOPE_ADMIN, Nothing,
            "Explain, field by field, what a target gets for a user", targets::explain_user),
        scoped(M::POST, "/users/{id}/targets/{name}/provision", SCOPE_ADMIN, Nothing,
            "Deliver a user to a target now", targets::provision_user),
        scoped(M::POST, "/users/{id}/offboard", SCOPE_ADMIN, Json,
            "Offboard a user now: deactivate, lock, deliver to every target", offboard::offboard),
        scoped(M::POST, "/users/{id}/unlock", SCOPE_ADMIN, Nothing,
            "Remove a user's offboarding lock", offboard::unlock),
        scoped(M::GET, "/users/deleted", SCOPE_ADMIN, Nothing,
            "Soft-deleted users: who deleted them, when their retention ends", lifecycle::list_deleted),
        scoped(M::POST, "/users/{id}/restore", SCOPE_ADMIN, Nothing,
            "Restore a soft-deleted user (id or userName): the same id comes back", lifecycle::restore),
        scoped(M::POST, "/users/{id}/purge", SCOPE_ADMIN, Nothing,
            "Erase a soft-deleted user's personal data now, keeping a skeleton", lifecycle::purge),
        scoped(M::GET, "/lifecycle", SCOPE_ADMIN, Nothing,
            "What DELETE, active false and an offboarding lock mean in this tenant",
            lifecycle::lifecycle),
        scoped(M::GET, "/audit", SCOPE_ADMIN, Nothing,
            "The audit trail: by user, client and time range (user, client, since, until, count, cursor)",
            audit::audit),
    ]
}

/// Routes at the root: health, metrics and this description.
pub fn root_routes() -> Vec<Route> {
    use Input::*;
    use Method as M;
    vec![
        open(
            M::GET,
            "/healthz",
            Nothing,
            "Liveness: the process answers",
            health::healthz,
        ),
        open(
            M::GET,
            "/readyz",
            Nothing,
            "Readiness: the database answers",
            health::readyz,
        ),
        open(
            M::GET,
            "/openapi.json",
            Nothing,
            "This OpenAPI description",
            openapi_json,
        ),
        open(
            M::POST,
            "/oauth/token",
            Form,
            "OAuth 2.0 client credentials grant (RFC 6749 section 4.4)",
            oauth::token,
        ),
        open(
            M::POST,
            "/t/{tenant}/oauth/token",
            Form,
            "OAuth 2.0 client credentials grant for a tenant's clients",
            oauth::tenant_token,
        ),
        scoped(
            M::GET,
            "/metrics",
            SCOPE_ADMIN,
            Nothing,
            "Prometheus metrics",
            targets::metrics,
        ),
    ]
}

/// A router of `routes` (paths relative to where it is nested).
pub fn build(routes: Vec<Route>) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |router, route| {
        router.route(route.path, route.handler)
    })
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi())
}

/// A function giving one of the route tables.
type RouteTable = fn() -> Vec<Route>;

/// Where each table is mounted, as OpenAPI paths (the tenant one with its
/// parameter).
const MOUNTS: [(&str, RouteTable); 5] = [
    ("", root_routes),
    ("/scim/v2", scim_routes),
    ("/t/{tenant}/scim/v2", scim_routes),
    ("/admin/v1", admin_routes),
    ("/t/{tenant}/admin/v1", admin_routes),
];

/// The OpenAPI 3.0 description of every route, built from the route tables.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (mount, table) in MOUNTS {
        for route in table() {
            let path = format!("{mount}{}", route.path);
            let entry = paths
                .entry(path.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(methods) = entry {
                let mut operation = operation(&path, &route);
                if route.method == Method::POST && route.path == "/{endpoint}" {
                    operation["responses"]["201"] = created_links(mount);
                }
                methods.insert(route.method.as_str().to_ascii_lowercase(), operation);
            }
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Muster",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SCIM 2.0 provisioning hub for contact centers (RFC 7643, RFC 7644), \
                and its admin API. Generated from the server's route tables.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["schemas", "status"],
                    "properties": {
                        "schemas": {"type": "array", "items": {"type": "string"}},
                        "status": {"type": "string"},
                        "scimType": {"type": "string"},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    })
}

fn operation(path: &str, route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(path).map(parameter).collect();
    parameters.extend(query_parameters(route.input));
    let mut operation = json!({
        "summary": route.summary,
        "operationId": operation_id(&route.method, path),
        "parameters": parameters,
        "responses": {
            "default": {
                "description": "An RFC 7644 section 3.12 error",
                "content": {"application/scim+json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "2XX": {"description": "Success"},
        },
    });
    if let Some(body) = request_body(route.input) {
        operation["requestBody"] = body;
    }
    if route.scope.is_some() {
        operation["security"] = json!([{"bearer": []}]);
    }
    operation
}

/// A create's `201` with OpenAPI links to the operations on the resource it
/// made, so a fuzzer's stateful phase reads, replaces, patches and deletes
/// resources that exist.
fn created_links(mount: &str) -> Value {
    let resource = format!("{mount}/{{endpoint}}/{{id}}");
    let mut parameters = json!({
        "endpoint": "$request.path.endpoint",
        "id": "$response.body#/id",
    });
    if mount.contains("{tenant}") {
        parameters["tenant"] = json!("$request.path.tenant");
    }
    let links: Map<String, Value> = [Method::GET, Method::PUT, Method::PATCH, Method::DELETE]
        .iter()
        .map(|method| {
            let id = operation_id(method, &resource);
            (
                id.clone(),
                json!({"operationId": id, "parameters": parameters}),
            )
        })
        .collect();
    json!({"description": "Created", "links": links})
}

fn operation_id(method: &Method, path: &str) -> String {
    let words: String = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.trim_matches(|c| c == '{' || c == '}' || c == '.'))
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{words}", method.as_str().to_ascii_lowercase())
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn parameter(name: &str) -> Value {
    let schema = match name {
        "endpoint" => json!({"type": "string", "enum": ["Users", "Groups"]}),
        "tenant" => json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}),
        _ => json!({"type": "string", "minLength": 1}),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

fn query_parameters(input: Input) -> Vec<Value> {
    let text = || json!({"type": "string"});
    let projection = || {
        vec![
            query("attributes", text()),
            query("excludedAttributes", text()),
        ]
    };
    match input {
        Input::ListQuery => {
            let mut list = vec![
                query("filter", text()),
                query("startIndex", json!({"type": "integer"})),
                query("count", json!({"type": "integer"})),
                query("sortBy", text()),
                query(
                    "sortOrder",
                    json!({"type": "string", "enum": ["ascending", "descending"]}),
                ),
            ];
            list.extend(projection());
            list
        }
        Input::ProjectionQuery => projection(),
        _ => Vec::new(),
    }
}

fn request_body(input: Input) -> Option<Value> {
    let scim = |schema: Value| {
        json!({
            "required": true,
            "content": {
                "application/scim+json": {"schema": schema},
                "application/json": {"schema": schema},
            },
        })
    };
    let messages = |urn: &str, properties: Value| {
        json!({
            "type": "object",
            "required": ["schemas"],
            "properties": {
                "schemas": {"type": "array", "items": {"type": "string", "enum": [urn]}},
            }
        })
        .as_object()
        .map(|object| {
            let mut object = object.clone();
            if let (Some(Value::Object(target)), Value::Object(extra)) =
                (object.get_mut("properties"), properties)
            {
                target.extend(extra);
            }
            Value::Object(object)
        })
        .unwrap_or_default()
    };
    match input {
        Input::Nothing | Input::ListQuery | Input::ProjectionQuery => None,
        Input::Resource => Some(scim(json!({
            "type": "object",
            "properties": {
                "schemas": {"type": "array", "items": {"type": "string"}},
                "userName": {"type": "string"},
                "displayName": {"type": "string"},
                "externalId": {"type": "string"},
                "active": {"type": "boolean"},
                "emails": {"type": "array", "items": {"type": "object", "properties": {
                    "value": {"type": "string"}, "type": {"type": "string"},
                    "primary": {"type": "boolean"}}}},
                "members": {"type": "array", "items": {"type": "object", "properties": {
                    "value": {"type": "string"}}}},
            },
        }))),
        Input::Patch => Some(scim(messages(
            "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            json!({"Operations": {"type": "array", "items": {
                "type": "object",
                "required": ["op"],
                "properties": {
                    "op": {"type": "string", "enum": ["add", "remove", "replace", "Add", "Replace"]},
                    "path": {"type": "string"},
                    "value": {},
                },
            }}}),
        ))),
        Input::Search => Some(scim(messages(
            "urn:ietf:params:scim:api:messages:2.0:SearchRequest",
            json!({
                "filter": {"type": "string"},
                "startIndex": {"type": "integer"},
                "count": {"type": "integer"},
                "sortBy": {"type": "string"},
                "attributes": {"type": "array", "items": {"type": "string"}},
            }),
        ))),
        Input::Bulk => Some(scim(messages(
            "urn:ietf:params:scim:api:messages:2.0:BulkRequest",
            json!({
                "failOnErrors": {"type": "integer"},
                "Operations": {"type": "array", "items": {
                    "type": "object",
                    "required": ["method"],
                    "properties": {
                        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE"]},
                        "bulkId": {"type": "string"},
                        "path": {"type": "string"},
                        "data": {"type": "object"},
                    },
                }},
            }),
        ))),
        Input::Json => Some(json!({
            "required": true,
            "content": {"application/json": {"schema": {"type": "object"}}},
        })),
        Input::Document => Some(json!({
            "required": true,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/toml": {"schema": {"type": "string"}},
            },
        })),
        Input::Form => Some(json!({
            "required": true,
            "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {"type": "string"},
                    "client_id": {"type": "string"},
                    "client_secret": {"type": "string"},
                },
            }}},
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_once_per_mount() {
        let document = openapi();
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        for (mount, table) in MOUNTS {
            for route in table() {
                let path = format!("{mount}{}", route.path);
                let method = route.method.as_str().to_ascii_lowercase();
                assert!(
                    paths.get(&path).and_then(|p| p.get(&method)).is_some(),
                    "{method} {path} is not described"
                );
            }
        }
    }

    #[test]
    fn path_parameters_are_declared() {
        let document = openapi();
        let operation = &document["paths"]["/t/{tenant}/scim/v2/{endpoint}/{id}"]["patch"];
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["tenant", "endpoint", "id"]);
        assert_eq!(operation["security"], json!([{"bearer": []}]));
        assert!(document["paths"]["/healthz"]["get"]
            .get("security")
            .is_none());
    }
}
