//! Entitlement rules (`/admin/rules`): the rule set in force and its
//! version history; an editor that validates a rule set and dry-runs it
//! across every user (counts per kind of change, sample users, one user's
//! before and after), then applies it from the dry run's report; and a
//! rollback to an earlier version, dry-run first too.
//!
//! The procedures are [`muster_core::rules`]' (`check_rules`,
//! `apply_rules`, `roll_back`, `rule_set_record`), those of
//! `PUT /admin/v1/rules` and `muster rules ...`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use muster_core::rules::{
    apply_rules, check_rules, roll_back, ApplyRules, RulesDocument, RulesReport,
};
use muster_rules::ChangeKind;
use muster_server::AppState;
use muster_store::RuleSetRecord;
use serde::Deserialize;

use crate::layout::{notice, ok, page_at, pager, time_element, PageError, PageResult};
use crate::session::{csrf_field, Admin, CsrfForm};

/// Versions shown per page of the history.
const VERSIONS_PER_PAGE: usize = 20;

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/rules", get(show))
        .route("/admin/rules/validate", post(validate))
        .route("/admin/rules/dry-run", post(dry_run))
        .route("/admin/rules/apply", post(apply))
        .route("/admin/rules/rollback-dry-run", post(rollback_dry_run))
        .route("/admin/rules/rollback", post(rollback))
}

/// Query parameters of the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RulesQuery {
    /// A version to show (and offer to roll back to).
    version: Option<u64>,
    /// The first history row shown (1-based, newest first).
    start: Option<usize>,
}

/// The editor's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RulesForm {
    /// The rule set, TOML or JSON.
    text: String,
    /// A user (`userName` or id) whose before and after the dry run shows.
    user: String,
}

impl RulesForm {
    fn apply_options(&self, dry_run: bool) -> ApplyRules {
        ApplyRules {
            dry_run,
            user: Some(self.user.trim().to_owned()).filter(|user| !user.is_empty()),
            ..ApplyRules::default()
        }
    }
}

/// The rollback forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RollbackForm {
    version: Option<u64>,
    user: String,
}

/// What a posted form gave, shown above the page.
enum Outcome {
    /// The rule set is valid: how many rules it has.
    Valid(usize),
    /// A dry run of the editor's text.
    DryRun(RulesReport),
    /// A dry run of a rollback to a version.
    RollbackDryRun(u64, RulesReport),
    /// Stored.
    Applied(RulesReport),
    /// Refused (a `4xx`): the status and why.
    Refused(StatusCode, String),
}

/// A refusal shown above the editor, or (a server failure) the error page.
fn refused(error: muster_core::Error) -> Result<Outcome, PageError> {
    let scim = error.into_scim();
    let status = StatusCode::from_u16(scim.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_client_error() {
        Ok(Outcome::Refused(status, scim.detail))
    } else {
        Err(PageError::new(status, scim.detail))
    }
}

/// `GET /admin/rules[?version=N][&start=S]`.
async fn show(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<RulesQuery>,
) -> PageResult {
    let in_force = state.store().rule_set(&admin.tenant, None).await?;
    let form = RulesForm {
        text: in_force
            .as_ref()
            .map(|record| record.document.clone())
            .unwrap_or_default(),
        user: String::new(),
    };
    render(&admin, &state, &query, &form, None).await
}

/// `POST /admin/rules/validate`.
async fn validate(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RulesForm>,
) -> PageResult {
    let document = RulesDocument {
        text: &form.text,
        files: None,
    };
    let outcome = match check_rules(state.store(), &admin.tenant, &document).await {
        Ok(rule_set) => Outcome::Valid(rule_set.rule_ids().len()),
        Err(error) => refused(error)?,
    };
    render(&admin, &state, &RulesQuery::default(), &form, Some(outcome)).await
}

/// `POST /admin/rules/dry-run`: what the rule set would change, and the
/// form to apply it.
async fn dry_run(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RulesForm>,
) -> PageResult {
    let document = RulesDocument {
        text: &form.text,
        files: None,
    };
    let outcome = match apply_rules(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &document,
        &form.apply_options(true),
    )
    .await
    {
        Ok(report) => Outcome::DryRun(report),
        Err(error) => refused(error)?,
    };
    render(&admin, &state, &RulesQuery::default(), &form, Some(outcome)).await
}

/// `POST /admin/rules/apply`.
async fn apply(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RulesForm>,
) -> PageResult {
    let document = RulesDocument {
        text: &form.text,
        files: None,
    };
    let outcome = match apply_rules(
        state.store(),
        &admin.tenant,
        &admin.actor,
        &document,
        &form.apply_options(false),
    )
    .await
    {
        Ok(report) => {
            state.service.invalidate(&admin.tenant);
            Outcome::Applied(report)
        }
        Err(error) => refused(error)?,
    };
    render(&admin, &state, &RulesQuery::default(), &form, Some(outcome)).await
}

fn rollback_version(form: &RollbackForm) -> Result<u64, PageError> {
    form.version
        .ok_or_else(|| PageError::bad_request("version: expected the number of a version"))
}

/// `POST /admin/rules/rollback-dry-run`: what applying version N again
/// would change, and the form to do it.
async fn rollback_dry_run(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RollbackForm>,
) -> PageResult {
    let version = rollback_version(&form)?;
    let options = RulesForm {
        text: String::new(),
        user: form.user.clone(),
    }
    .apply_options(true);
    let outcome = match roll_back(
        state.store(),
        &admin.tenant,
        &admin.actor,
        version,
        &options,
    )
    .await
    {
        Ok(report) => Outcome::RollbackDryRun(version, report),
        Err(error) => refused(error)?,
    };
    let in_force = state.store().rule_set(&admin.tenant, None).await?;
    let editor = RulesForm {
        text: in_force.map(|record| record.document).unwrap_or_default(),
        user: form.user,
    };
    render(
        &admin,
        &state,
        &RulesQuery::default(),
        &editor,
        Some(outcome),
    )
    .await
}

/// `POST /admin/rules/rollback`.
async fn rollback(
    admin: Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<RollbackForm>,
) -> PageResult {
    let version = rollback_version(&form)?;
    let options = ApplyRules::default();
    let outcome = match roll_back(
        state.store(),
        &admin.tenant,
        &admin.actor,
        version,
        &options,
    )
    .await
    {
        Ok(report) => {
            state.service.invalidate(&admin.tenant);
            Outcome::Applied(report)
        }
        Err(error) => refused(error)?,
    };
    let in_force = state.store().rule_set(&admin.tenant, None).await?;
    let editor = RulesForm {
        text: in_force.map(|record| record.document).unwrap_or_default(),
        user: String::new(),
    };
    render(
        &admin,
        &state,
        &RulesQuery::default(),
        &editor,
        Some(outcome),
    )
    .await
}

async fn render(
    admin: &Admin,
    state: &AppState,
    query: &RulesQuery,
    form: &RulesForm,
    outcome: Option<Outcome>,
) -> PageResult {
    let mut history = state.store().rule_set_history(&admin.tenant).await?;
    history.reverse();
    let in_force = history.first();
    let shown = match query.version {
        Some(version) => Some(
            history
                .iter()
                .find(|record| record.version == version)
                .ok_or_else(|| PageError::not_found(format!("no rule set version {version}")))?,
        ),
        None => None,
    };
    let status = match &outcome {
        Some(Outcome::Refused(status, _)) => *status,
        _ => StatusCode::OK,
    };
    let markup = page_at(
        admin,
        "/rules",
        "Rules",
        html! {
            @if let Some(outcome) = &outcome {
                (outcome_markup(admin, form, outcome))
            }
            section aria-labelledby="in-force-heading" {
                h2 id="in-force-heading" { "Rule set in force" }
                @match in_force {
                    Some(record) => {
                        p id="rules-in-force" data-version=(record.version) {
                            "Version " strong data-test="version-in-force" { (record.version) }
                            ", applied " (time_element(&record.applied)) " by " (record.client)
                            @if !record.note.is_empty() { " (" (record.note) ")" }
                            "."
                        }
                    }
                    None => { p id="rules-in-force" data-version="0" { "No rule set is in force: users have no computed entitlements." } }
                }
            }
            @if let Some(record) = shown {
                (version_section(admin, record))
            }
            (editor_section(admin, form))
            (history_section(admin, &history, query.start.unwrap_or(1)))
        },
    );
    let mut response = ok(markup)?;
    *response.status_mut() = status;
    Ok(response)
}

fn outcome_markup(admin: &Admin, form: &RulesForm, outcome: &Outcome) -> Markup {
    match outcome {
        Outcome::Valid(rules) => notice(
            "ok",
            html! { span data-test="valid" { "Valid: " (rules) " rule(s), checked against the tenant's schemas and groups." } },
        ),
        Outcome::Refused(_, detail) => notice(
            "error",
            html! { "Refused: " span data-test="refusal" { (detail) } },
        ),
        Outcome::Applied(report) => html! {
            (notice("ok", html! {
                "Applied as version " span data-test="applied-version" { (report.version.unwrap_or_default()) } "; "
                (report.rewritten.unwrap_or_default()) " user(s) rewritten."
            }))
            (report_section(report, false))
        },
        Outcome::DryRun(report) => html! {
            (report_section(report, true))
            form id="rules-apply-form" method="post" action=(admin.link("/rules/apply")) {
                (csrf_field(admin))
                input type="hidden" name="text" value=(form.text);
                input type="hidden" name="user" value=(form.user);
                button type="submit" id="rules-apply" { "Apply this rule set" }
            }
        },
        Outcome::RollbackDryRun(version, report) => html! {
            (report_section(report, true))
            form id="rules-rollback-form" method="post" action=(admin.link("/rules/rollback")) {
                (csrf_field(admin))
                input type="hidden" name="version" value=(version);
                button type="submit" id="rules-rollback" { "Roll back to version " (version) }
            }
        },
    }
}

/// A kind of change in words.
fn kind_label(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::GrantAdded => "Role granted",
        ChangeKind::GrantRemoved => "Role removed",
        ChangeKind::SkillAdded => "Skill added",
        ChangeKind::SkillRemoved => "Skill removed",
        ChangeKind::LanguageAdded => "Language added",
        ChangeKind::LanguageRemoved => "Language removed",
        ChangeKind::ManagementUnitChanged => "Management unit changed",
        ChangeKind::HomeDivisionChanged => "Home division changed",
        ChangeKind::LicenseAdded => "License added",
        ChangeKind::LicenseRemoved => "License removed",
        ChangeKind::ProblemGained => "Problem gained",
        ChangeKind::ProblemResolved => "Problem resolved",
    }
}

fn report_section(report: &RulesReport, dry_run: bool) -> Markup {
    let summary = &report.summary;
    let changes = summary.changes();
    let mut per_kind: Vec<(ChangeKind, usize)> = Vec::new();
    for change in &changes {
        match per_kind.iter_mut().find(|(kind, _)| *kind == change.kind) {
            Some((_, count)) => *count += change.count,
            None => per_kind.push((change.kind, change.count)),
        }
    }
    let gaining = summary.problems_gained();
    html! {
        section aria-labelledby="rules-report-heading" id="rules-report" data-applied=(report.applied) {
            h2 id="rules-report-heading" {
                @if dry_run { "Dry run: nothing was changed" } @else { "What the rule set changed" }
            }
            p {
                span data-test="users-changed" { (summary.users_changed()) } " of " (summary.users()) " user(s) change"
                @if let Some(previous) = report.previous_version { " compared with version " (previous) } @else { " (no rule set was in force)" }
                "."
                @if gaining.count > 0 {
                    " " (gaining.count) " gain a problem: " (gaining.users.join(", ")) @if gaining.count > gaining.users.len() { ", …" } "."
                }
            }
            @if !per_kind.is_empty() {
                table id="rules-kinds" {
                    caption { "Changes per kind" }
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Changes" } } }
                    tbody {
                        @for (kind, count) in &per_kind {
                            tr data-test={"kind-" (serde_json::to_value(kind).ok().and_then(|k| k.as_str().map(str::to_owned)).unwrap_or_default())} {
                                th scope="row" { (kind_label(*kind)) } td { (count) }
                            }
                        }
                    }
                }
                div.table-wrap {
                    table id="rules-changes" {
                        caption { "Each change, with sample users" }
                        thead { tr { th scope="col" { "Kind" } th scope="col" { "Change" } th scope="col" { "Users" } th scope="col" { "Sample users" } } }
                        tbody {
                            @for change in &changes {
                                tr {
                                    td { (kind_label(change.kind)) }
                                    th scope="row" { (change.change) }
                                    td { (change.count) }
                                    td { (change.users.join(", ")) @if change.count > change.users.len() { ", …" } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(user) = &report.user {
                h3 { "Before and after for " (user.user_name) }
                @if user.changes.is_empty() {
                    p data-test="user-unchanged" { "No change for this user." }
                } @else {
                    pre id="rules-user-changes" { (serde_json::to_string_pretty(&user.changes).unwrap_or_default()) }
                }
            }
        }
    }
}

fn version_section(admin: &Admin, record: &RuleSetRecord) -> Markup {
    html! {
        section aria-labelledby="version-heading" {
            h2 id="version-heading" { "Version " (record.version) }
            p { "Applied " (time_element(&record.applied)) " by " (record.client) @if !record.note.is_empty() { " (" (record.note) ")" } "; " (record.format) "." }
            pre id="rules-version-document" { (record.document) }
            (rollback_form(admin, record.version, "rollback-dry-run-shown"))
        }
    }
}

/// The button that dry-runs a rollback to `version`.
fn rollback_form(admin: &Admin, version: u64, id: &str) -> Markup {
    html! {
        form method="post" action=(admin.link("/rules/rollback-dry-run")) {
            (csrf_field(admin))
            input type="hidden" name="version" value=(version);
            button type="submit" class="secondary" id=(id) { "Roll back to version " (version) " (dry run)" }
        }
    }
}

fn editor_section(admin: &Admin, form: &RulesForm) -> Markup {
    html! {
        section aria-labelledby="editor-heading" {
            h2 id="editor-heading" { "Edit" }
            p { "A rule set in TOML or JSON. Validate checks it against the tenant's schemas and groups; the dry run computes what it changes for every user, and you apply it from its report." }
            form.stack id="rules-form" method="post" action=(admin.link("/rules/dry-run")) {
                (csrf_field(admin))
                div.field {
                    label for="rules-text" { "Rule set" }
                    textarea id="rules-text" name="text" rows="20" spellcheck="false" { (form.text) }
                }
                div.field {
                    label for="rules-user" { "Show one user's before and after (userName or id, optional)" }
                    input type="text" id="rules-user" name="user" value=(form.user) autocomplete="off";
                }
                button type="submit" id="rules-validate" formaction=(admin.link("/rules/validate")) { "Validate" }
                " "
                button type="submit" id="rules-dry-run" { "Dry run" }
            }
        }
    }
}

fn history_section(admin: &Admin, history: &[RuleSetRecord], start: usize) -> Markup {
    let start = start.clamp(1, history.len().max(1));
    html! {
        section aria-labelledby="history-heading" {
            h2 id="history-heading" { "History" }
            @if history.is_empty() {
                p { "No version yet." }
            } @else {
                div.table-wrap {
                    table id="rules-history" {
                        caption { "Every applied version, newest first" }
                        thead {
                            tr {
                                th scope="col" { "Version" }
                                th scope="col" { "Applied" }
                                th scope="col" { "By" }
                                th scope="col" { "Note" }
                                th scope="col" { "Actions" }
                            }
                        }
                        tbody {
                            @for record in history.iter().skip(start.saturating_sub(1)).take(VERSIONS_PER_PAGE) {
                                tr data-test={"version-" (record.version)} {
                                    th scope="row" { a href={(admin.link("/rules")) "?version=" (record.version) "#version-heading"} { "Version " (record.version) } }
                                    td { (time_element(&record.applied)) }
                                    td { (record.client) }
                                    td { (record.note) }
                                    td { (rollback_form(admin, record.version, &format!("rollback-dry-run-{}", record.version))) }
                                }
                            }
                        }
                    }
                }
                (pager(start, VERSIONS_PER_PAGE, history.len(), |first| format!("{}?start={first}#history-heading", admin.link("/rules"))))
            }
        }
    }
}
