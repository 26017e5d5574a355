//! Schemas and custom attributes (`/admin/schemas`): the tenant's custom
//! extension schemas with their searchable (indexed) attributes; a form to
//! declare or change one, whose dry-run report (what the change adds,
//! removes and converts in the stored resources) is shown before the
//! change can be applied; and the attribute explain table, searched and
//! paged on the server. Counting each attribute's holders reads every
//! resource, so the table loads right after the page
//! (`/admin/schemas/attributes`, a plain link when JavaScript is off).
//!
//! The procedures are [`muster_core::schemas::apply_schema`] and
//! [`muster_core::explain::explain`], those of `PUT /admin/v1/schemas/{urn}`
//! and `GET /admin/v1/attributes`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use muster_core::explain::{explain, AttributeRow};
use muster_core::schemas::{apply_schema, ApplyOptions, SchemaReport};
use muster_server::AppState;
use muster_store::SchemaRecord;
use serde::Deserialize;
use serde_json::Value;

use crate::data::full_read;
use crate::layout::{
    html_response, notice, ok, page_at, pager, time_element, PageError, PageResult,
};
use crate::session::{csrf_field, Admin, CsrfForm};

/// Attribute rows shown per page.
const ROWS_PER_PAGE: usize = 50;

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/schemas", get(show))
        .route("/admin/schemas/attributes", get(attributes))
        .route("/admin/schemas/dry-run", post(dry_run))
        .route("/admin/schemas/apply", post(apply))
}

/// Query parameters of the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SchemasQuery {
    /// Text the attribute rows are searched for (path, schema, type, last
    /// writer), case-insensitively.
    q: Option<String>,
    /// Only this resource type's attributes.
    r#type: Option<String>,
    /// The first row shown (1-based).
    start: Option<usize>,
    /// A custom schema to put in the form.
    edit: Option<String>,
    /// `/admin/schemas/attributes` only: the table alone, for the page to
    /// load in place.
    fragment: bool,
}

/// The declare-or-change form, as posted (and carried from the dry run to
/// the apply).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct SchemaForm {
    /// The RFC 7643 section 7 schema JSON.
    document: String,
    /// `User`, `Group`, or empty (as bound, else from the URN).
    resource_type: String,
    /// `true`, `false`, or empty (as bound, else `false`).
    required: String,
    /// Comma-separated top-level attribute names to index.
    searchable: String,
    /// `yes`: remove attributes that hold values.
    force: Option<String>,
}

impl SchemaForm {
    fn from_record(record: &SchemaRecord) -> Self {
        let document = serde_json::to_string_pretty(&record.document).unwrap_or_default();
        SchemaForm {
            document,
            resource_type: record.resource_type.clone(),
            required: record.required.to_string(),
            searchable: record.searchable.join(", "),
            force: None,
        }
    }

    /// The document and the apply options, or a `400` naming the field.
    fn parse(&self, dry_run: bool) -> Result<(Value, ApplyOptions), PageError> {
        let document: Value = serde_json::from_str(&self.document).map_err(|error| {
            PageError::bad_request(format!(
                "document: expected an RFC 7643 schema as a JSON object ({error})"
            ))
        })?;
        let required = match self.required.as_str() {
            "" => None,
            "true" => Some(true),
            "false" => Some(false),
            other => {
                return Err(PageError::bad_request(format!(
                    "required: expected true, false or nothing, found '{}'",
                    other.chars().take(40).collect::<String>()
                )))
            }
        };
        let options = ApplyOptions {
            resource_type: Some(self.resource_type.trim().to_owned()).filter(|t| !t.is_empty()),
            required,
            force: self.force.as_deref() == Some("yes"),
            dry_run,
            searchable: Some(self.searchable.trim().to_owned()).filter(|s| !s.is_empty()),
        };
        Ok((document, options))
    }
}

/// `GET /admin/schemas`.
async fn show(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<SchemasQuery>,
) -> PageResult {
    let schemas = state.store().list_schemas(&admin.tenant).await?;
    let form = match &query.edit {
        Some(urn) => {
            let record = schemas
                .iter()
                .find(|record| record.urn.eq_ignore_ascii_case(urn))
                .ok_or_else(|| PageError::not_found(format!("no custom schema '{urn}'")))?;
            SchemaForm::from_record(record)
        }
        None => SchemaForm::default(),
    };
    render(&admin, &query, &schemas, &form, None)
}

/// `POST /admin/schemas/dry-run`: the report of what the change would do,
/// and the form to apply it.
async fn dry_run(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<SchemaForm>,
) -> PageResult {
    let (document, options) = form.parse(true)?;
    let outcome = apply_schema(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &document,
        None,
        &options,
    )
    .await;
    let result = match outcome {
        Ok(report) => Outcome::DryRun(report),
        Err(error) => refused(error)?,
    };
    let schemas = state.store().list_schemas(&admin.tenant).await?;
    render(
        &admin,
        &SchemasQuery::default(),
        &schemas,
        &form,
        Some(result),
    )
}

/// `POST /admin/schemas/apply`.
async fn apply(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<SchemaForm>,
) -> PageResult {
    let (document, options) = form.parse(false)?;
    let outcome = apply_schema(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &document,
        None,
        &options,
    )
    .await;
    let result = match outcome {
        Ok(report) => {
            state.service.invalidate(&admin.tenant);
            Outcome::Applied(report)
        }
        Err(error) => refused(error)?,
    };
    let schemas = state.store().list_schemas(&admin.tenant).await?;
    render(
        &admin,
        &SchemasQuery::default(),
        &schemas,
        &form,
        Some(result),
    )
}

/// What a posted form gave.
enum Outcome {
    DryRun(SchemaReport),
    Applied(SchemaReport),
    /// The change was refused (a `4xx`): the status and why.
    Refused(StatusCode, String),
}

/// A refusal shown above the form, or (a server failure) the error page.
fn refused(error: muster_core::Error) -> Result<Outcome, PageError> {
    let scim = error.into_scim();
    let status = StatusCode::from_u16(scim.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_client_error() {
        Ok(Outcome::Refused(status, scim.detail))
    } else {
        Err(PageError::new(status, scim.detail))
    }
}

fn render(
    admin: &Admin,
    query: &SchemasQuery,
    schemas: &[SchemaRecord],
    form: &SchemaForm,
    outcome: Option<Outcome>,
) -> PageResult {
    let status = match &outcome {
        Some(Outcome::Refused(status, _)) => *status,
        _ => StatusCode::OK,
    };
    let markup = page_at(
        admin,
        "/schemas",
        "Schemas and custom attributes",
        html! {
            @match &outcome {
                Some(Outcome::Refused(_, detail)) => {
                    (notice("error", html! { "The change was refused: " span data-test="refusal" { (detail) } }))
                }
                Some(Outcome::Applied(report)) => {
                    (notice("ok", html! { "Applied: " code { (report.id) } (if report.created { " declared" } else { " changed" }) "; " (report.rewritten) " resource(s) rewritten." }))
                    (report_section(report, &form.document, false))
                }
                Some(Outcome::DryRun(report)) => {
                    (report_section(report, &form.document, true))
                    (apply_form(admin, form))
                }
                None => {}
            }
            (schemas_section(admin, schemas))
            (declare_section(admin, form))
            (attributes_section(admin, query, None))
        },
    );
    let mut response = ok(markup)?;
    *response.status_mut() = status;
    Ok(response)
}

fn schemas_section(admin: &Admin, schemas: &[SchemaRecord]) -> Markup {
    html! {
        section aria-labelledby="custom-heading" {
            h2 id="custom-heading" { "Custom schemas" }
            @if schemas.is_empty() {
                p data-test="no-schemas" { "None declared: only the core and enterprise schemas are in force." }
            } @else {
                div.table-wrap {
                    table id="custom-schemas" {
                        caption { "Extension schemas declared in this tenant" }
                        thead {
                            tr {
                                th scope="col" { "Schema" }
                                th scope="col" { "Resource type" }
                                th scope="col" { "Required" }
                                th scope="col" { "Searchable attributes" }
                                th scope="col" { "Changed" }
                                th scope="col" { "Actions" }
                            }
                        }
                        tbody {
                            @for record in schemas {
                                tr data-test={"schema-" (record.urn)} {
                                    th scope="row" { code { (record.urn) } }
                                    td { (record.resource_type) }
                                    td { @if record.required { "yes" } @else { "no" } }
                                    td data-test="searchable" { @if record.searchable.is_empty() { "none" } @else { (record.searchable.join(", ")) } }
                                    td { (time_element(&record.updated)) " by " (record.client) }
                                    td { a href={(admin.link("/schemas")) "?edit=" (encode(&record.urn)) "#declare-heading"} aria-label={"Change " (record.urn)} { "Change" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The form's fields (shared by the declare form and the hidden apply form).
fn declare_section(admin: &Admin, form: &SchemaForm) -> Markup {
    html! {
        section aria-labelledby="declare-heading" {
            h2 id="declare-heading" { "Declare or change an extension" }
            p { "Paste the schema in the RFC 7643 section 7 form. The dry run shows what the change does to the stored resources; you apply it from its report." }
            form.stack id="schema-form" method="post" action=(admin.link("/schemas/dry-run")) {
                (csrf_field(admin))
                div.field {
                    label for="schema-document" { "Schema (JSON)" }
                    textarea id="schema-document" name="document" rows="14" required spellcheck="false" { (form.document) }
                }
                div.field {
                    label for="schema-resource-type" { "Resource type" }
                    select id="schema-resource-type" name="resource_type" {
                        option value="" selected[form.resource_type.is_empty()] { "As bound (new: from the URN, else User)" }
                        option value="User" selected[form.resource_type == "User"] { "User" }
                        option value="Group" selected[form.resource_type == "Group"] { "Group" }
                    }
                }
                div.field {
                    label for="schema-required" { "Required on that type" }
                    select id="schema-required" name="required" {
                        option value="" selected[form.required.is_empty()] { "As bound (new: no)" }
                        option value="false" selected[form.required == "false"] { "No" }
                        option value="true" selected[form.required == "true"] { "Yes" }
                    }
                }
                div.field {
                    label for="schema-searchable" { "Searchable attributes (comma-separated top-level names; indexed for filters)" }
                    input type="text" id="schema-searchable" name="searchable" value=(form.searchable) autocomplete="off";
                }
                div {
                    input type="checkbox" id="schema-force" name="force" value="yes" checked[form.force.as_deref() == Some("yes")];
                    " " label.inline for="schema-force" { "Remove attributes that hold values (the values are kept in the change log)" }
                }
                button type="submit" id="schema-dry-run" { "Dry run" }
            }
        }
    }
}

/// The apply form under a dry-run report: the same fields, hidden.
fn apply_form(admin: &Admin, form: &SchemaForm) -> Markup {
    html! {
        form id="schema-apply-form" method="post" action=(admin.link("/schemas/apply")) {
            (csrf_field(admin))
            input type="hidden" name="document" value=(form.document);
            input type="hidden" name="resource_type" value=(form.resource_type);
            input type="hidden" name="required" value=(form.required);
            input type="hidden" name="searchable" value=(form.searchable);
            @if let Some(force) = &form.force {
                input type="hidden" name="force" value=(force);
            }
            button type="submit" id="schema-apply" { "Apply this change" }
        }
    }
}

/// The attributes a schema document declares: name and type.
fn declared_attributes(document: &str) -> Vec<(String, String)> {
    let Ok(document) = serde_json::from_str::<Value>(document) else {
        return Vec::new();
    };
    document
        .get("attributes")
        .and_then(Value::as_array)
        .map(|attributes| {
            attributes
                .iter()
                .map(|attribute| {
                    let text = |key: &str| {
                        attribute
                            .get(key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (text("name"), text("type"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn report_section(report: &SchemaReport, document: &str, dry_run: bool) -> Markup {
    let changes = &report.changes;
    html! {
        section aria-labelledby="report-heading" id="schema-report" data-applied=(report.applied) {
            h2 id="report-heading" {
                @if dry_run { "Dry run: nothing was changed" } @else { "What the change did" }
            }
            dl.props {
                dt { "Schema" } dd { code data-test="report-urn" { (report.id) } }
                dt { "Resource type" } dd { (report.resource_type) }
                dt { "Required" } dd { @if report.required { "yes" } @else { "no" } }
                dt { "Searchable" } dd { @if report.searchable.is_empty() { "none" } @else { (report.searchable.join(", ")) } }
                dt { "New schema" } dd data-test="report-created" { @if report.created { "yes" } @else { "no (a change)" } }
                dt { "Resources rewritten" } dd { (report.rewritten) }
                @if report.rederived > 0 {
                    dt { "Users whose entitlements change" } dd { (report.rederived) }
                }
            }
            @if report.created {
                h3 { "Attributes declared" }
                ul id="report-declared" {
                    @for (name, kind) in declared_attributes(document) {
                        li { code { (report.id) ":" (name) } " (" (kind) ")" }
                    }
                }
            } @else if changes.is_empty() {
                p { "The definition is the same as the one stored." }
            }
            (path_list("Attributes added", "report-added", &changes.added))
            (path_list("Attributes removed", "report-removed", &changes.removed))
            @if !changes.type_changes.is_empty() {
                h3 { "Type changes" }
                ul { @for change in &changes.type_changes { li { code { (change.path) } ": " (change.old.as_str()) " → " (change.new.as_str()) } } }
            }
            @if !changes.multi_valued_changes.is_empty() {
                h3 { "Multi-valued changes" }
                ul { @for change in &changes.multi_valued_changes { li { code { (change.path) } ": " (change.old) " → " (change.new) } } }
            }
            @if !changes.property_changes.is_empty() {
                h3 { "Other property changes" }
                ul { @for change in &changes.property_changes { li { code { (change.path) } " " (change.property) ": " (change.old) " → " (change.new) } } }
            }
            @if !report.removed_values.is_empty() {
                h3 { "Stored values removed" }
                ul id="report-removed-values" { @for removed in &report.removed_values { li { code { (removed.path) } ": " (removed.holders) " resource(s)" } } }
            }
            @if !report.adopted_values.is_empty() {
                h3 { "Captured values adopted" }
                ul { @for adopted in &report.adopted_values { li { code { (adopted.path) } ": " (adopted.holders) " resource(s)" } } }
            }
            @if report.conversion_failure_count > 0 {
                h3 { "Values that would not convert (" (report.conversion_failure_count) ")" }
                ul id="report-failures" {
                    @for failure in &report.conversion_failures {
                        li { code { (failure.id) } " " code { (failure.path) } " = " (failure.value) ": " (failure.reason) }
                    }
                }
            }
        }
    }
}

fn path_list(title: &str, id: &str, paths: &[String]) -> Markup {
    html! {
        @if !paths.is_empty() {
            h3 { (title) }
            ul id=(id) { @for path in paths { li { code { (path) } } } }
        }
    }
}

/// `GET /admin/schemas/attributes`: the attribute explain table; with
/// `fragment=true` only its rows and pager, which the schemas page loads in
/// place.
async fn attributes(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<SchemasQuery>,
) -> PageResult {
    let usage = {
        let (state, tenant) = (state.clone(), admin.tenant.clone());
        full_read(async move { Ok(state.store().attribute_usage(&tenant).await?) })
    };
    let (view, schemas, usage) = tokio::join!(
        state.service.view(&admin.tenant),
        state.store().list_schemas(&admin.tenant),
        usage,
    );
    let rows = explain(&view?.registry, &usage?, &schemas?);
    if query.fragment {
        return Ok(html_response(
            StatusCode::OK,
            attributes_table(&admin, query.search(), &rows, "/schemas"),
        ));
    }
    ok(page_at(
        &admin,
        "/schemas",
        "Attributes",
        attributes_section(&admin, &query, Some(&rows)),
    ))
}

/// The search of the explain table: lower-cased text and resource type.
struct AttributeSearch<'a> {
    needle: String,
    wanted_type: &'a str,
    start: Option<usize>,
}

impl SchemasQuery {
    fn search(&self) -> AttributeSearch<'_> {
        AttributeSearch {
            needle: self
                .q
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
            wanted_type: self.r#type.as_deref().unwrap_or_default(),
            start: self.start,
        }
    }
}

impl AttributeSearch<'_> {
    /// The query string of this search from row `start` (with `extra`
    /// pairs).
    fn query_string(&self, start: Option<usize>, extra: &[(&str, &str)]) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if !self.needle.is_empty() {
            pairs.append_pair("q", &self.needle);
        }
        if !self.wanted_type.is_empty() {
            pairs.append_pair("type", self.wanted_type);
        }
        if let Some(start) = start {
            pairs.append_pair("start", &start.to_string());
        }
        pairs.extend_pairs(extra);
        pairs.finish()
    }
}

/// Whether a row matches the search text (lower case).
fn matches(row: &AttributeRow, needle: &str) -> bool {
    let contains = |text: &str| text.to_ascii_lowercase().contains(needle);
    contains(&row.path)
        || row.schema.as_deref().is_some_and(contains)
        || row.r#type.as_deref().is_some_and(contains)
        || row.last_client.as_deref().is_some_and(contains)
}

/// The explain table's heading, explanation and search form; then the
/// table (`rows`), or, on the schemas page (`None`), the place it loads
/// into right after the page.
fn attributes_section(
    admin: &Admin,
    query: &SchemasQuery,
    rows: Option<&[AttributeRow]>,
) -> Markup {
    let search = query.search();
    // The schemas page searches in place; the table's own page (no
    // JavaScript) stays on itself.
    let base = if rows.is_some() {
        "/schemas/attributes"
    } else {
        "/schemas"
    };
    html! {
        section aria-labelledby="attributes-heading" {
            h2 id="attributes-heading" { "Attributes" }
            p { "Every attribute each resource type declares, how many resources hold a value there and who set one last; then the undeclared values captured for admins. Indexed attributes are searchable with filters through the index; the others are checked one by one." }
            form.inline id="attributes-search" method="get" action={(admin.link(base)) "#attributes-heading"} role="search" {
                div.field {
                    label for="attributes-q" { "Search attributes" }
                    input type="search" id="attributes-q" name="q" value=(search.needle);
                }
                div.field {
                    label for="attributes-type" { "Resource type" }
                    select id="attributes-type" name="type" {
                        option value="" selected[search.wanted_type.is_empty()] { "All" }
                        option value="User" selected[search.wanted_type == "User"] { "User" }
                        option value="Group" selected[search.wanted_type == "Group"] { "Group" }
                    }
                }
                button type="submit" id="attributes-search-button" { "Search" }
            }
            @if let Some(rows) = rows {
                div id="attributes-table" { (attributes_table(admin, search, rows, base)) }
            } @else {
                div id="attributes-table" hx-get={(admin.link("/schemas/attributes")) "?" (search.query_string(search.start, &[("fragment", "true")]))} hx-trigger="load" hx-swap="innerHTML" {
                    p { a href={(admin.link("/schemas/attributes")) "?" (search.query_string(search.start, &[]))} id="attributes-link" { "Show the attribute explain table (counts every resource)" } }
                }
            }
        }
    }
}

/// The rows of the explain table that match `search`, a page of them, and
/// the pager (whose links go to `base`).
fn attributes_table(
    admin: &Admin,
    search: AttributeSearch<'_>,
    rows: &[AttributeRow],
    base: &str,
) -> Markup {
    let found: Vec<&AttributeRow> = rows
        .iter()
        .filter(|row| {
            search.wanted_type.is_empty()
                || row.resource_type.eq_ignore_ascii_case(search.wanted_type)
        })
        .filter(|row| search.needle.is_empty() || matches(row, &search.needle))
        .collect();
    let start = search.start.unwrap_or(1).clamp(1, found.len().max(1));
    let link = |first: usize| {
        format!(
            "{}?{}#attributes-heading",
            admin.link(base),
            search.query_string(Some(first), &[])
        )
    };
    html! {
        div.table-wrap {
            table id="attributes" {
                caption { "Attribute explain table" }
                thead {
                    tr {
                        th scope="col" { "Resource type" }
                        th scope="col" { "Attribute" }
                        th scope="col" { "Schema" }
                        th scope="col" { "Type" }
                        th scope="col" { "Multi-valued" }
                        th scope="col" { "Searchable (indexed)" }
                        th scope="col" { "Holders" }
                        th scope="col" { "Last set by" }
                    }
                }
                tbody {
                    @for row in found.iter().skip(start.saturating_sub(1)).take(ROWS_PER_PAGE) {
                        tr data-test={"attribute-" (row.path)} {
                            td { (row.resource_type) }
                            th scope="row" {
                                code { (row.path) }
                                @if !row.declared { " " span.hint { "captured, undeclared" } }
                            }
                            td { (row.schema.as_deref().unwrap_or("—")) }
                            td { (row.r#type.as_deref().unwrap_or("—")) }
                            td { @match row.multi_valued { Some(true) => "yes", Some(false) => "no", None => "—" } }
                            td data-test="indexed" { @if row.indexed { "yes" } @else { "no" } }
                            td data-test="holders" { (row.holders) }
                            td {
                                @match (&row.last_client, &row.last_set) {
                                    (Some(client), Some(at)) => { (client) " at " (time_element(at)) }
                                    (Some(client), None) => { (client) }
                                    _ => { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(start, ROWS_PER_PAGE, found.len(), link))
    }
}
