//! The end-to-end mapping (`/admin/mapping`): for a chosen target, every
//! target field with the expression that computes it and the Muster
//! attributes it reads, and the identity provider's attribute behind each
//! (Entra ID's default SCIM mapping). For a chosen user: the values at
//! every step (who set each source value and when, the value mapped now,
//! the value last sent) and what the user holds that does not reach the
//! target, with the reason ([`muster_sync::Targets::explain`], as
//! `GET /admin/v1/users/{id}/targets/{name}`). Beside it, the expression
//! tester: [`muster_expr::request::evaluate_request`], the procedure of
//! `POST /admin/v1/expressions/evaluate`.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use muster_expr::request::evaluate_request;
use muster_server::AppState;
use muster_store::TenantId;
use muster_sync::{Explanation, SyncError};
use muster_targets::{CompiledTarget, TargetDocument};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::layout::{notice, ok, page_at, time_element, value_text, PageError, PageResult};
use crate::session::{csrf_field, Admin, CsrfForm};

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/mapping", get(show))
        .route("/admin/mapping/evaluate", post(evaluate))
}

/// Microsoft Entra ID's default attribute mappings of a SCIM enterprise
/// application (Microsoft Learn, "Tutorial: Develop and plan provisioning
/// for a SCIM endpoint", table "Default user attribute mapping"): the
/// Muster (SCIM) path, lower case, and the Entra ID source. A custom
/// extension attribute carries the identity provider's own name
/// (`extension_<app>_<name>`), so it is its own source.
const ENTRA_DEFAULTS: [(&str, &str); 16] = [
    ("username", "userPrincipalName"),
    ("externalid", "mailNickname"),
    (
        "active",
        "Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")",
    ),
    ("displayname", "displayName"),
    ("title", "jobTitle"),
    ("preferredlanguage", "preferredLanguage"),
    ("name.givenname", "givenName"),
    ("name.familyname", "surname"),
    ("name.formatted", "Join(\" \", [givenName], [surname])"),
    ("emails", "mail"),
    (
        "phonenumbers",
        "telephoneNumber, mobile, facsimileTelephoneNumber",
    ),
    (
        "addresses",
        "streetAddress, city, state, postalCode, country, physicalDeliveryOfficeName",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber",
        "employeeId",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department",
        "department",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager",
        "manager",
    ),
    ("groups", "memberOf (group provisioning)"),
];

/// The URNs of the built-in schemas (core, enterprise), lower case: their
/// attributes are not the identity provider's own names.
const BUILT_IN_URNS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:schemas:extension:enterprise:",
];

/// Where a Muster attribute comes from upstream, when known: Entra ID's
/// default mapping, the entitlement rules for the computed extension, or
/// a custom extension attribute's own name (`urn:...:User:extension_abc_region`
/// comes from `extension_abc_region`).
fn upstream_source(muster_path: &str) -> Option<String> {
    let lower = muster_path.to_ascii_lowercase();
    if let Some((_, source)) = ENTRA_DEFAULTS.iter().find(|(path, _)| *path == lower) {
        return Some((*source).to_owned());
    }
    if lower.starts_with(&muster_rules::CONTACT_CENTER_URN.to_ascii_lowercase()) {
        return Some("(computed by Muster's entitlement rules)".to_owned());
    }
    let custom =
        lower.starts_with("urn:") && !BUILT_IN_URNS.iter().any(|urn| lower.starts_with(urn));
    if custom {
        return muster_path.rsplit(':').next().map(str::to_owned);
    }
    None
}

/// Query parameters of the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MappingQuery {
    /// The target.
    target: Option<String>,
    /// The user (`userName` or id).
    user: Option<String>,
    /// A target field whose expression (and the user's source values) the
    /// tester is filled with.
    r#try: Option<String>,
}

/// What the tester shows.
#[derive(Debug, Default)]
struct Tester {
    expression: String,
    attributes: String,
    now: String,
    /// The evaluation's answer, or why it was refused.
    result: Option<Result<Value, String>>,
}

/// `GET /admin/mapping[?target=T][&user=U][&try=FIELD]`.
async fn show(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<MappingQuery>,
) -> PageResult {
    let target = non_empty(query.target);
    let user = non_empty(query.user);
    let context = Context::load(&admin, &state, target.as_deref(), user.as_deref()).await?;
    let tester = match non_empty(query.r#try) {
        Some(field) => context.tester_for(&field),
        None => Tester {
            attributes: "{}".to_owned(),
            ..Tester::default()
        },
    };
    render(&admin, &context, &tester)
}

/// The form of `POST /admin/mapping/evaluate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EvaluateForm {
    expression: String,
    attributes: String,
    now: String,
    target: String,
    user: String,
}

/// `POST /admin/mapping/evaluate`: the page with the tester's answer, or
/// why the expression or its attributes were refused (a `200` page too: the
/// answer region is what htmx swaps in).
async fn evaluate(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<EvaluateForm>,
) -> PageResult {
    let target = non_empty(Some(form.target.clone()));
    let user = non_empty(Some(form.user.clone()));
    let context = Context::load(&admin, &state, target.as_deref(), user.as_deref()).await?;
    let result = tester_body(&form).and_then(evaluate_request);
    let tester = Tester {
        expression: form.expression,
        attributes: form.attributes,
        now: form.now,
        result: Some(result),
    };
    render(&admin, &context, &tester)
}

/// The evaluate body of the tester's fields.
fn tester_body(form: &EvaluateForm) -> Result<Value, String> {
    let attributes: Value = if form.attributes.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&form.attributes).map_err(|error| {
            format!("attributes: expected a JSON object of attribute names to values ({error})")
        })?
    };
    let mut body = json!({"expression": form.expression, "attributes": attributes});
    if !form.now.trim().is_empty() {
        body["now"] = json!(form.now.trim());
    }
    Ok(body)
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// What the page shows: the targets to choose from, the chosen target's
/// mappings, the chosen user's explanation.
struct Context {
    targets: Vec<String>,
    target: Option<String>,
    user: Option<String>,
    compiled: Option<CompiledTarget>,
    explanation: Option<Explanation>,
    /// Why the user's explanation is missing (no such user).
    user_problem: Option<String>,
}

impl Context {
    async fn load(
        admin: &Admin,
        state: &AppState,
        target: Option<&str>,
        user: Option<&str>,
    ) -> Result<Context, PageError> {
        let mut context = Context {
            targets: state
                .store()
                .targets(&admin.tenant)
                .await?
                .into_iter()
                .map(|record| record.name)
                .collect(),
            target: target.map(str::to_owned),
            user: user.map(str::to_owned),
            compiled: None,
            explanation: None,
            user_problem: None,
        };
        let Some(target) = target else {
            return Ok(context);
        };
        context.compiled = Some(compiled(state, &admin.tenant, target).await?);
        let (Some(user), Some(sync)) = (user, &state.sync) else {
            return Ok(context);
        };
        let explained = match sync.targets.find_user(&admin.tenant, user).await {
            Ok(id) => sync.targets.explain(&admin.tenant, target, &id).await,
            Err(error) => Err(error),
        };
        match explained {
            Ok(explanation) => context.explanation = Some(explanation),
            Err(SyncError::NotFound(detail)) => context.user_problem = Some(detail),
            Err(error) => return Err(error.into()),
        }
        Ok(context)
    }

    /// The tester filled with the mapping of `field`: its expression, and
    /// its source attributes with the chosen user's values (null without
    /// a user).
    fn tester_for(&self, field: &str) -> Tester {
        let mut tester = Tester {
            attributes: "{}".to_owned(),
            ..Tester::default()
        };
        let Some(mapping) = self.compiled.as_ref().and_then(|compiled| {
            compiled
                .user_mappings
                .iter()
                .find(|mapping| mapping.target.as_str() == field)
        }) else {
            return tester;
        };
        let row = self.explanation.as_ref().and_then(|explanation| {
            explanation
                .attributes
                .iter()
                .find(|row| row.target == field)
        });
        let mut attributes = Map::new();
        for (name, _) in &mapping.sources {
            let value = row
                .and_then(|row| {
                    row.sources.iter().find(|source| {
                        source.get("attribute").and_then(Value::as_str) == Some(name.as_str())
                    })
                })
                .and_then(|source| source.get("value").cloned())
                .unwrap_or(Value::Null);
            attributes.insert(name.clone(), value);
        }
        tester.expression = mapping.text.clone();
        tester.attributes = serde_json::to_string_pretty(&Value::Object(attributes))
            .unwrap_or_else(|_| "{}".to_owned());
        tester
    }
}

/// The stored target `name`, compiled against the tenant's schemas (as the
/// sync engine compiles it).
async fn compiled(
    state: &AppState,
    tenant: &TenantId,
    name: &str,
) -> Result<CompiledTarget, PageError> {
    let record = state
        .store()
        .target(tenant, name)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no target named '{name}'")))?;
    let view = state.service.view(tenant).await?;
    let document = TargetDocument::from_json(&record.document)
        .map_err(|refused| PageError::from(SyncError::from(refused)))?;
    CompiledTarget::compile(document, &view.registry)
        .map_err(|refused| PageError::from(SyncError::from(refused)))
}

fn render(admin: &Admin, context: &Context, tester: &Tester) -> PageResult {
    ok(page_at(
        admin,
        "/mapping",
        "Mapping",
        html! {
            p { "Where each field a target receives comes from: the identity provider's attribute, the Muster attribute it lands in, the expression that maps it, and the target's field. Choose a user to see the values at every step." }
            (chooser(admin, context))
            div {
                div {
                    @if let Some(compiled) = &context.compiled {
                        (mapping_section(admin, context, compiled))
                    }
                }
                (tester_section(admin, context, tester))
            }
        },
    ))
}

fn chooser(admin: &Admin, context: &Context) -> Markup {
    html! {
        form.stack id="mapping-chooser" method="get" action=(admin.link("/mapping")) {
            div.field {
                label for="mapping-target" { "Target" }
                select id="mapping-target" name="target" required {
                    option value="" { "Choose a target" }
                    @for name in &context.targets {
                        option value=(name) selected[context.target.as_deref() == Some(name.as_str())] { (name) }
                    }
                }
            }
            div.field {
                label for="mapping-user" { "User (userName or id, optional)" }
                input type="text" id="mapping-user" name="user" value=(context.user.as_deref().unwrap_or_default()) autocomplete="off";
            }
            button type="submit" id="mapping-show" { "Show mapping" }
        }
        @if context.targets.is_empty() {
            p data-test="no-targets" { "No targets yet: the mapping shows once a target exists." }
        }
    }
}

fn mapping_section(admin: &Admin, context: &Context, compiled: &CompiledTarget) -> Markup {
    let name = &compiled.document.name;
    let explanation = context.explanation.as_ref();
    let try_link = |field: &str| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("target", name);
        if let Some(user) = &context.user {
            query.append_pair("user", user);
        }
        query.append_pair("try", field);
        format!(
            "{}?{}#tester-heading",
            admin.link("/mapping"),
            query.finish()
        )
    };
    html! {
        section aria-labelledby="mapping-heading" {
            h2 id="mapping-heading" { "Users at " (name) }
            @if let Some(problem) = &context.user_problem {
                (notice("error", html! { (problem) }))
            }
            @if let Some(explanation) = explanation {
                (delivery_summary(explanation))
            }
            div.table-wrap {
                table id="mapping-table" {
                    caption { "Each field " (name) " receives for a user, and where it comes from" }
                    thead {
                        tr {
                            th scope="col" { "Identity provider (Entra ID)" }
                            th scope="col" { "Muster attribute" }
                            th scope="col" { "Expression" }
                            th scope="col" { "Target field" }
                            @if explanation.is_some() {
                                th scope="col" { "Value now" }
                                th scope="col" { "Last sent" }
                            }
                            th scope="col" { "Tester" }
                        }
                    }
                    tbody {
                        @for mapping in &compiled.user_mappings {
                            @let field = mapping.target.as_str();
                            @let row = explanation.and_then(|explanation| explanation.attributes.iter().find(|row| row.target == field));
                            tr data-test={"mapping-" (field)} {
                                td {
                                    ul {
                                        @for (_, path) in &mapping.sources {
                                            li { (upstream_source(path.as_str()).unwrap_or_else(|| "—".to_owned())) }
                                        }
                                    }
                                }
                                td {
                                    ul {
                                        @for (name, path) in &mapping.sources {
                                            @let source = row.and_then(|row| row.sources.iter().find(|source| source.get("attribute").and_then(Value::as_str) == Some(name.as_str())));
                                            li {
                                                code { (path.as_str()) }
                                                @if let Some(source) = source {
                                                    " = " span data-test="source-value" { (shown(source.get("value"))) }
                                                    @if let Some(client) = source.get("setBy").and_then(Value::as_str) {
                                                        br; small { "set by " (client) @if let Some(at) = source.get("setAt").and_then(Value::as_str) { " at " (time_element(at)) } }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                                td { code { (mapping.text) } }
                                th scope="row" { code { (field) } }
                                @if explanation.is_some() {
                                    td data-test="value-now" {
                                        @match row {
                                            Some(row) => {
                                                @if let Some(error) = &row.error {
                                                    span.status-error { "fails: " (error) }
                                                } @else if let Some(value) = &row.value {
                                                    (shown(Some(value)))
                                                } @else {
                                                    "left out (IgnoreFlowIfNullOrEmpty)"
                                                }
                                            }
                                            None => { "—" }
                                        }
                                    }
                                    td data-test="value-sent" { (row.map_or_else(|| "—".to_owned(), |row| shown(row.sent.as_ref()))) }
                                }
                                td { a href=(try_link(field)) aria-label={"Try the expression of " (field)} { "Try" } }
                            }
                        }
                    }
                }
            }
            @if let Some(explanation) = explanation {
                (not_sent_section(explanation))
            } @else {
                p { "Choose a user to see example values and the fields that cannot be delivered." }
            }
            @if !compiled.group_mappings.is_empty() {
                h3 { "Groups at " (name) }
                div.table-wrap {
                    table id="group-mapping-table" {
                        caption { "Each field " (name) " receives for a group (members are delivered apart)" }
                        thead { tr { th scope="col" { "Muster attribute" } th scope="col" { "Expression" } th scope="col" { "Target field" } } }
                        tbody {
                            @for mapping in &compiled.group_mappings {
                                tr {
                                    td { @for (_, path) in &mapping.sources { code { (path.as_str()) } " " } }
                                    td { code { (mapping.text) } }
                                    th scope="row" { code { (mapping.target.as_str()) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A value as shown in a cell: `(none)` when absent.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(value) => value_text(value),
    }
}

fn delivery_summary(explanation: &Explanation) -> Markup {
    html! {
        dl.props id="mapping-delivery" {
            dt { "User" } dd data-test="user-name" { (value_text(&explanation.user_name)) " (" code { (explanation.user) } ")" }
            dt { "In the target's scope" } dd data-test="in-scope" { @if explanation.in_scope { "yes" } @else { "no" } }
            dt { "Id at the target" } dd { (explanation.remote_id.as_deref().unwrap_or("— (never delivered)")) }
            dt { "Last delivered" } dd { @match &explanation.delivered { Some(at) => { (time_element(at)) }, None => { "never" } } }
            @if let Some(status) = explanation.status {
                dt { "Target's answer" } dd { (status) @if let Some(answer) = &explanation.answer { " " (answer) } }
            }
            @if explanation.deprovisioned {
                dt { "Deprovisioned" } dd { "yes" }
            }
        }
    }
}

fn not_sent_section(explanation: &Explanation) -> Markup {
    html! {
        h3 id="not-sent-heading" { "What " (value_text(&explanation.user_name)) " holds that does not reach " (explanation.target) }
        @if explanation.not_sent.is_empty() {
            p data-test="all-sent" { "Everything the user holds is delivered." }
        } @else {
            div.table-wrap {
                table id="not-sent-table" aria-labelledby="not-sent-heading" {
                    thead { tr { th scope="col" { "Attribute" } th scope="col" { "Value" } th scope="col" { "Why it is not delivered" } } }
                    tbody {
                        @for row in &explanation.not_sent {
                            tr {
                                th scope="row" { code { (row.get("attribute").map(value_text).unwrap_or_default()) } }
                                td { (shown(row.get("value"))) }
                                td { (row.get("reason").map(value_text).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn tester_section(admin: &Admin, context: &Context, tester: &Tester) -> Markup {
    html! {
        section aria-labelledby="tester-heading" {
            h2 id="tester-heading" { "Expression tester" }
            p { "Evaluates an Entra ID mapping expression against the attributes you give (a JSON object of attribute names to values), as " code { "POST /admin/v1/expressions/evaluate" } " does." }
            form.stack id="expression-form" method="post" action=(admin.link("/mapping/evaluate"))
                hx-post=(admin.link("/mapping/evaluate")) hx-select="#expression-result" hx-target="#expression-result" hx-swap="outerHTML" {
                (csrf_field(admin))
                input type="hidden" name="target" value=(context.target.as_deref().unwrap_or_default());
                input type="hidden" name="user" value=(context.user.as_deref().unwrap_or_default());
                div.field {
                    label for="expression" { "Expression" }
                    textarea id="expression" name="expression" rows="3" required spellcheck="false" { (tester.expression) }
                }
                div.field {
                    label for="expression-attributes" { "Attributes (JSON object)" }
                    textarea id="expression-attributes" name="attributes" rows="8" spellcheck="false" { (tester.attributes) }
                }
                div.field {
                    label for="expression-now" { "Now() as (RFC 3339, optional)" }
                    input type="text" id="expression-now" name="now" value=(tester.now) placeholder="2026-01-31T09:00:00Z";
                }
                button type="submit" id="expression-evaluate" { "Evaluate" }
            }
            div id="expression-result" aria-live="polite" {
                @match &tester.result {
                    None => {}
                    Some(Ok(answer)) => {
                        @if answer.get("skipFlow").is_some() {
                            p data-test="expression-skip" { "The attribute is left out of this flow (IgnoreFlowIfNullOrEmpty)." }
                        } @else {
                            p { "Value: " output data-test="expression-value" { (serde_json::to_string(answer.get("value").unwrap_or(&Value::Null)).unwrap_or_default()) } }
                        }
                        @if let Some(warnings) = answer.get("warnings").and_then(Value::as_array) {
                            ul { @for warning in warnings { li { (value_text(warning)) } } }
                        }
                    }
                    Some(Err(detail)) => {
                        p.notice.error role="alert" data-test="expression-error" { (detail) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(muster_path: &str, expected: Option<&str>) {
        assert_eq!(
            upstream_source(muster_path).as_deref(),
            expected,
            "{muster_path}"
        );
    }

    #[test]
    fn upstream_sources() {
        check("userName", Some("userPrincipalName"));
        check("NAME.givenName", Some("givenName"));
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            Some("department"),
        );
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            None,
        );
        check("nickName", None);
        check(
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:extension_abc123_region",
            Some("extension_abc123_region"),
        );
        check(
            &format!("{}:grants", muster_rules::CONTACT_CENTER_URN),
            Some("(computed by Muster's entitlement rules)"),
        );
    }
}
