//! `/admin/clients`: the tenant's bearer tokens and OAuth clients; create,
//! rotate and revoke them ([`muster_core::credentials`], shared with the
//! CLI). A new secret is shown once, on the answer to the form that made
//! it (never stored, never cached: `no-store`), with a copy button.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use muster_core::clients::{parse_duration, unix_now};
use muster_core::credentials::{
    create_client, create_token, revoke_client, revoke_token, rotate_client,
};
use muster_core::tokens::SCOPES;
use muster_server::AppState;
use muster_store::clients::CredentialOptions;

use crate::layout::{copy_button, notice, ok, page_at, PageError, PageResult};
use crate::session::{csrf_field, Admin, CsrfForm};

/// The grace periods offered when rotating a client's secret.
const GRACES: [(&str, &str); 4] = [
    ("0s", "none: the old secret and its access tokens stop now"),
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
];

/// Scope checkboxes named `scope`, ids `{prefix}-scope-{scope}`.
fn scope_boxes(prefix: &str) -> Markup {
    html! {
        fieldset {
            legend { "Scopes" }
            @for scope in SCOPES {
                @let id = format!("{prefix}-scope-{}", scope.replace('.', "-"));
                div {
                    input type="checkbox" id=(id) name="scope" value=(scope) checked[scope != "admin"];
                    " "
                    label.inline for=(id) { (scope) }
                }
            }
        }
    }
}

/// `GET /admin/clients`.
async fn clients(State(state): State<AppState>, admin: Admin) -> PageResult {
    let store = state.store();
    let tokens = store.list_tokens(&admin.tenant).await?;
    let clients = store.list_clients(&admin.tenant).await?;
    let now = unix_now();
    let body = html! {
        section aria-labelledby="tokens-heading" {
            h2 id="tokens-heading" { "Bearer tokens" }
            div.table-wrap { table id="tokens" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Scopes" } th scope="col" { "Created" } th scope="col" { "Revoke" } } }
                tbody { @for token in &tokens {
                    tr data-test="token" data-name=(token.name) {
                        th scope="row" { (token.name) }
                        td { (token.scopes.join(", ")) }
                        td { (token.created) }
                        td {
                            form method="post" action=(admin.link("/clients/tokens/revoke")) {
                                (csrf_field(&admin))
                                input type="hidden" name="name" value=(token.name);
                                button.danger type="submit" data-test={"revoke-token-" (token.name)} {
                                    "Revoke" span.visually-hidden { " token " (token.name) }
                                }
                            }
                        }
                    }
                } }
            } }
            h3 { "New token" }
            form.stack method="post" action=(admin.link("/clients/tokens")) id="create-token-form" {
                (csrf_field(&admin))
                div.field {
                    label for="token-name" { "Name" }
                    span.hint id="token-name-hint" { "Shows as the client of every change the token makes." }
                    input id="token-name" name="name" type="text" required aria-describedby="token-name-hint";
                }
                (scope_boxes("token"))
                div { button type="submit" id="create-token" { "Create token" } }
            }
        }
        section aria-labelledby="clients-heading" {
            h2 id="clients-heading" { "OAuth clients" }
            div.table-wrap { table id="oauth-clients" {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "client_id" } th scope="col" { "Scopes" }
                    th scope="col" { "Created" } th scope="col" { "Rotate the secret" } th scope="col" { "Revoke" }
                } }
                tbody { @for client in &clients {
                    tr data-test="oauth-client" data-name=(client.name) {
                        th scope="row" { (client.name) }
                        td.mono { (client.client_id) }
                        td { (client.scopes.join(", ")) }
                        td { (client.created)
                            @if let (Some(_), Some(until)) = (&client.previous_secret_hash, client.previous_valid_until) {
                                @if until > now { br; span.hint { "previous secret valid " (until - now) " s more" } }
                            }
                        }
                        td {
                            form.inline method="post" action=(admin.link("/clients/oauth/rotate")) {
                                (csrf_field(&admin))
                                input type="hidden" name="name" value=(client.name);
                                @let id = format!("grace-{}", client.name);
                                div.field {
                                    label for=(id) { "Old secret stays valid" }
                                    select id=(id) name="grace" {
                                        @for (value, label) in GRACES {
                                            option value=(value) selected[value == "24h"] { (label) }
                                        }
                                    }
                                }
                                button.secondary type="submit" data-test={"rotate-client-" (client.name)} {
                                    "Rotate" span.visually-hidden { " the secret of " (client.name) }
                                }
                            }
                        }
                        td {
                            form method="post" action=(admin.link("/clients/oauth/revoke")) {
                                (csrf_field(&admin))
                                input type="hidden" name="name" value=(client.name);
                                button.danger type="submit" data-test={"revoke-client-" (client.name)} {
                                    "Revoke" span.visually-hidden { " client " (client.name) }
                                }
                            }
                        }
                    }
                } }
            } }
            h3 { "New OAuth client" }
            form.stack method="post" action=(admin.link("/clients/oauth")) id="create-client-form" {
                (csrf_field(&admin))
                div.field {
                    label for="client-name" { "Name" }
                    input id="client-name" name="name" type="text" required;
                }
                (scope_boxes("client"))
                div { button type="submit" id="create-client" { "Create client" } }
            }
        }
    };
    ok(page_at(&admin, "/clients", "Clients and tokens", body))
}

/// A form's `name` and the `scope` boxes ticked.
fn name_and_scopes(form: &[(String, String)]) -> (String, Vec<String>) {
    let name = form
        .iter()
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    let scopes = form
        .iter()
        .filter(|(key, _)| key == "scope")
        .map(|(_, value)| value.clone())
        .collect();
    (name, scopes)
}

/// The page showing a new secret, once.
fn secret_page(
    admin: &Admin,
    title: &str,
    what: Markup,
    client_id: Option<&str>,
    secret: &str,
) -> PageResult {
    let body = html! {
        (notice("warn", html! { "Copy the secret now: it is shown this once and Muster keeps only its hash." }))
        p { (what) }
        @if let Some(client_id) = client_id {
            p.secret { "client_id " code id="new-client-id" { (client_id) } (copy_button("new-client-id")) }
        }
        p.secret { "Secret " code id="new-secret" data-test="new-secret" { (secret) } (copy_button("new-secret")) }
        p { a href=(admin.link("/clients")) id="back-to-clients" { "Back to clients and tokens" } }
    };
    ok(page_at(admin, "/clients", title, body))
}

/// `POST /admin/clients/tokens`: creates a token and shows its secret.
async fn new_token(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let (name, scopes) = name_and_scopes(&form);
    if scopes.is_empty() {
        return Err(PageError::bad_request("scope: tick at least one scope"));
    }
    let token = create_token(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &name,
        &scopes,
        CredentialOptions::default(),
    )
    .await?;
    tracing::info!(tenant = %admin.tenant.0, client = %admin.actor.client, token = %name, "token created from the console");
    secret_page(
        &admin,
        "Token created",
        html! { "Token " strong { (name) } " holds " (scopes.join(", ")) "." },
        None,
        &token.secret,
    )
}

/// `POST /admin/clients/oauth`: creates a client and shows its secret.
async fn new_client(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let (name, scopes) = name_and_scopes(&form);
    if scopes.is_empty() {
        return Err(PageError::bad_request("scope: tick at least one scope"));
    }
    let client = create_client(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &name,
        &scopes,
        CredentialOptions::default(),
    )
    .await?;
    tracing::info!(tenant = %admin.tenant.0, client = %admin.actor.client, created = %name, "OAuth client created from the console");
    secret_page(
        &admin,
        "OAuth client created",
        html! { "Client " strong { (name) } " may ask for " (scopes.join(", ")) "." },
        Some(&client.client_id),
        &client.secret,
    )
}

/// The rotation form.
#[derive(serde::Deserialize)]
struct RotateForm {
    name: String,
    grace: String,
}

/// `POST /admin/clients/oauth/rotate`: a new secret, shown once.
async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<RotateForm>,
) -> PageResult {
    let grace = parse_duration(&form.grace)
        .map_err(|problem| PageError::bad_request(format!("grace: {problem}")))?;
    let secret = rotate_client(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &form.name,
        grace,
    )
    .await?;
    tracing::info!(tenant = %admin.tenant.0, client = %admin.actor.client, rotated = %form.name, "client secret rotated from the console");
    secret_page(
        &admin,
        "Secret rotated",
        html! {
            "Client " strong { (form.name) } " has a new secret. "
            @if grace.is_zero() { "The old secret and every access token issued with it no longer work." }
            @else { "The old secret keeps working for " (form.grace) "." }
        },
        None,
        &secret,
    )
}

/// A form naming a credential.
#[derive(serde::Deserialize)]
struct NameForm {
    name: String,
}

/// `POST /admin/clients/tokens/revoke`.
async fn revoke_a_token(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<NameForm>,
) -> PageResult {
    revoke_token(state.store(), &admin.tenant, &admin.actor, &form.name).await?;
    tracing::info!(tenant = %admin.tenant.0, client = %admin.actor.client, token = %form.name, "token revoked from the console");
    Ok(Redirect::to(&admin.link("/clients")).into_response())
}

/// `POST /admin/clients/oauth/revoke`.
async fn revoke_a_client(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<NameForm>,
) -> PageResult {
    revoke_client(state.store(), &admin.tenant, &admin.actor, &form.name).await?;
    tracing::info!(tenant = %admin.tenant.0, client = %admin.actor.client, revoked = %form.name, "OAuth client revoked from the console");
    Ok(Redirect::to(&admin.link("/clients")).into_response())
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/clients", get(clients))
        .route("/admin/clients/tokens", post(new_token))
        .route("/admin/clients/tokens/revoke", post(revoke_a_token))
        .route("/admin/clients/oauth", post(new_client))
        .route("/admin/clients/oauth/rotate", post(rotate))
        .route("/admin/clients/oauth/revoke", post(revoke_a_client))
}
