//! `/admin/tenants`: the tenants of a multi-tenant install, with what each
//! holds, and registering a new one. Tenants are the deployment's, so only
//! the `default` tenant's administrators see and manage them; another
//! tenant's console says so and shows nothing of the others.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use muster_core::audit::record_admin_action;
use muster_server::AppState;
use muster_store::tenants::parse_tenant_name;
use muster_store::TenantId;
use serde::Deserialize;

use crate::layout::{notice, ok, page_at, PageError, PageResult};
use crate::session::{base_for, csrf_field, Admin, CsrfForm};

/// `GET /admin/tenants`.
async fn tenants(State(state): State<AppState>, admin: Admin) -> PageResult {
    if admin.tenant != TenantId::default_tenant() {
        return ok(page_at(
            &admin,
            "/tenants",
            "Tenants",
            notice(
                "warn",
                html! { "Tenants are managed from the default tenant's console (" code { "/admin/tenants" } ")." },
            ),
        ));
    }
    let all = state.store().list_tenants().await?;
    let body = html! {
        div.table-wrap { table id="tenants" {
            thead { tr {
                th scope="col" { "Tenant" } th scope="col" class="num" { "Users" } th scope="col" class="num" { "Groups" }
                th scope="col" class="num" { "Tokens" } th scope="col" { "Created" } th scope="col" { "Console" }
            } }
            tbody { @for summary in &all {
                tr data-test="tenant-row" data-name=(summary.tenant.0) {
                    th scope="row" { (summary.tenant.0) }
                    td.num { (summary.users) } td.num { (summary.groups) } td.num { (summary.tokens) }
                    td { (summary.created) }
                    td { a href=(base_for(&summary.tenant)) { (base_for(&summary.tenant)) } }
                }
            } }
        } }
        h2 { "New tenant" }
        form.stack method="post" action=(admin.link("/tenants")) id="create-tenant-form" {
            (csrf_field(&admin))
            div.field {
                label for="tenant-name" { "Name" }
                span.hint id="tenant-name-hint" { "Lowercase letters, digits and hyphens; its SCIM base URL is /t/<name>/scim/v2." }
                input id="tenant-name" name="name" type="text" required aria-describedby="tenant-name-hint";
            }
            div { button type="submit" id="create-tenant" { "Create tenant" } }
        }
        p.hint { "A new tenant has no credentials: create its first admin token with "
            code { "muster token create --tenant <name> --scope admin" } "." }
    };
    ok(page_at(&admin, "/tenants", "Tenants", body))
}

/// The new tenant form.
#[derive(Deserialize)]
struct TenantForm {
    name: String,
}

/// `POST /admin/tenants`: registers a tenant (recorded in the default
/// tenant's audit trail, as `muster tenant create` does).
async fn create(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<TenantForm>,
) -> PageResult {
    if admin.tenant != TenantId::default_tenant() {
        return Err(PageError::forbidden(
            "tenants are managed from the default tenant's console",
        ));
    }
    let tenant = parse_tenant_name(form.name.trim())
        .map_err(|problem| PageError::bad_request(format!("name: {problem}")))?;
    state.store().create_tenant(&tenant).await?;
    record_admin_action(
        state.store(),
        &TenantId::default_tenant(),
        &admin.actor,
        "create",
        "Tenant",
        &tenant.0,
        serde_json::json!({}),
    )
    .await?;
    let body = html! {
        (notice("ok", html! { span data-test="tenant-created" { "Tenant " strong { (tenant.0) } " is registered." } }))
        p { "Its SCIM base URL: " code { "/t/" (tenant.0) "/scim/v2" } "; its console: " code { (base_for(&tenant)) } "." }
        p { a href=(admin.link("/tenants")) { "Back to tenants" } }
    };
    ok(page_at(&admin, "/tenants", "Tenant created", body))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", get(tenants))
        .route("/admin/tenants", post(create))
}
