//! Tenant URLs: `/t/{tenant}/scim/v2/...` and `/t/{tenant}/admin/v1/...`
//! serve tenant `{tenant}` with exactly the routes of `/scim/v2` and
//! `/admin/v1`, which serve the `default` tenant.
//!
//! Before routing, [`tenant_urls`] takes the `/t/{tenant}` prefix off the
//! path and records the tenant as a [`UrlTenant`]; the routes and their
//! handlers are the same ones, unaware of the prefix (their path
//! parameters stay theirs). The authentication middleware then refuses a
//! credential whose tenant is not the URL's, with the answer of an unknown
//! credential, so nothing tells a caller what exists in another tenant.
//!
//! The tenant segment is matched as sent: it must be a tenant name in its
//! one form (lowercase letters, digits, `-`; see
//! [`muster_store::tenants::parse_tenant_name`]), never case-folded or
//! percent-decoded. Any other segment (`B`, `b%2f..`, an empty one), or a
//! prefix followed by anything but `/scim/` or `/admin/`, is left as it
//! came and answered `404` by the fallback, without authentication.
//! `/metrics` and the health checks exist only at the root.

use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::Uri;
use axum::Router;
use muster_store::tenants::parse_tenant_name;
use muster_store::TenantId;

/// The tenant a request's URL names (`/t/{tenant}/...`); absent for the
/// root paths, which are the `default` tenant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTenant(pub TenantId);

impl UrlTenant {
    /// The tenant of a request: its [`UrlTenant`], else `default`.
    pub fn of(request: &Request) -> TenantId {
        request
            .extensions()
            .get::<UrlTenant>()
            .map_or_else(TenantId::default_tenant, |url| url.0.clone())
    }
}

/// Serves `app` at the root and, for every tenant, under `/t/{tenant}`.
pub fn tenant_urls(app: Router) -> Router {
    let app = tower::ServiceBuilder::new()
        .map_request(strip_tenant_prefix)
        .service(app);
    Router::new().fallback_service(app)
}

/// Takes `/t/{tenant}` off a `/t/{tenant}/scim/...` or
/// `/t/{tenant}/admin/...` path and records the tenant; leaves any other
/// request as it is.
fn strip_tenant_prefix(mut request: Request) -> Request {
    let Some((tenant, path_and_query)) = split_tenant(request.uri()) else {
        return request;
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return request;
    };
    *request.uri_mut() = uri;
    request.extensions_mut().insert(UrlTenant(tenant));
    request
}

/// The tenant of a `/t/{tenant}/scim/...` or `/t/{tenant}/admin/...` URI
/// and the path (with the query) below it.
fn split_tenant(uri: &Uri) -> Option<(TenantId, PathAndQuery)> {
    let rest = uri.path().strip_prefix("/t/")?;
    let (name, below) = rest.split_at(rest.find('/')?);
    let tenant = parse_tenant_name(name).ok()?;
    if !(below.starts_with("/scim/") || below.starts_with("/admin/") || below == "/admin") {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{below}?{query}"),
        None => below.to_owned(),
    };
    Some((tenant, PathAndQuery::try_from(path_and_query).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expected: Option<(&str, &str)>) {
        let uri: Uri = uri.parse().unwrap_or_default();
        let split = split_tenant(&uri);
        let split = split
            .as_ref()
            .map(|(tenant, path)| (tenant.0.as_str(), path.as_str()));
        assert_eq!(split, expected, "{uri}");
    }

    #[test]
    fn tenant_prefixes() {
        check("/t/b/scim/v2/Users", Some(("b", "/scim/v2/Users")));
        check(
            "/t/acme-eu/scim/v2/Users?filter=userName%20eq%20%22x%22",
            Some(("acme-eu", "/scim/v2/Users?filter=userName%20eq%20%22x%22")),
        );
        check("/t/b/admin/v1/schemas", Some(("b", "/admin/v1/schemas")));
        check("/t/b/admin", Some(("b", "/admin")));
        check("/t/b/admin?x=1", Some(("b", "/admin?x=1")));
        check("/t/b/adminx", None);
        check("/t/scim/scim/v2/Users", Some(("scim", "/scim/v2/Users")));
        check("/t/b/t/c/scim/v2/Users", None);
        check("/t/B/scim/v2/Users", None);
        check("/t/%62/scim/v2/Users", None);
        check("/t/b%2f..%2fa/scim/v2/Users", None);
        check("/t//scim/v2/Users", None);
        check("/t/../scim/v2/Users", None);
        check("/t/b", None);
        check("/t/b/", None);
        check("/t/b/metrics", None);
        check("/t/b/healthz", None);
        check("/t/b/scimx/v2", None);
        check("/scim/v2/Users", None);
        check("/T/b/scim/v2/Users", None);
        check(&format!("/t/{}/scim/v2/Users", "a".repeat(64)), None);
    }
}
