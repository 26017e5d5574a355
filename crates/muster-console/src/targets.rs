//! Targets and delivery (`/admin/targets`): every target with its status;
//! one target's page with pause and resume (resuming confirms what the
//! deletion guard held back), a reconcile run first as a dry run and then
//! for real, with its progress polled, and the target's dead letters with
//! retry and discard.
//!
//! The procedures are [`muster_sync::Targets`]'s, the ones the admin API
//! (`/admin/v1/targets`, `/admin/v1/sync/dead-letters`) and `muster sync`
//! call. A reconcile runs in a task of this process ([`Runs`]); its page
//! polls the run (htmx, or a plain link without JavaScript). A reconcile
//! for real starts only from the report of a finished dry run of the same
//! target.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use muster_server::AppState;
use muster_store::sync::DeadLetter;
use muster_store::TenantId;
use muster_sync::{Reconciled, TargetView, Targets};
use rand::RngCore;
use serde::Deserialize;

use crate::data::targets;
use crate::layout::{notice, ok, page_at, pager, time_element, PageError, PageResult};
use crate::session::{csrf_field, Admin, CsrfForm};

/// Dead letters shown per page.
const LETTERS_PER_PAGE: usize = 25;

/// Reconcile runs kept in memory (finished ones beyond this are forgotten,
/// oldest first).
const KEPT_RUNS: usize = 16;

/// Writes of a dry run listed on its report (the rest are counted).
const SHOWN_REQUESTS: usize = 50;

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/targets", get(list))
        .route("/admin/targets/{name}", get(show))
        .route("/admin/targets/{name}/pause", post(pause))
        .route("/admin/targets/{name}/resume", post(resume))
        .route("/admin/targets/{name}/reconcile", post(start_reconcile))
        .route("/admin/targets/{name}/reconcile/{run}", get(show_reconcile))
        .route(
            "/admin/targets/{name}/dead-letters/{id}/retry",
            post(retry_letter),
        )
        .route(
            "/admin/targets/{name}/dead-letters/{id}/discard",
            post(discard_letter),
        )
        .layer(Extension(Arc::new(Runs::default())))
}

/// Tells the engine a target changed, so its worker starts or stops now.
fn wake_engine(state: &AppState) {
    if let Some(sync) = &state.sync {
        sync.engine.wake();
    }
}

/// The kind of a target as its document spells it.
fn kind_text(view: &TargetView) -> String {
    serde_json::to_value(view.document.kind)
        .ok()
        .and_then(|kind| kind.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET /admin/targets`: every target with its state.
async fn list(admin: Admin, State(state): State<AppState>) -> PageResult {
    let views = targets(&state)?.list(&admin.tenant).await?;
    ok(page_at(
        &admin,
        "/targets",
        "Targets",
        html! {
            p { "Where Muster delivers users and groups, and how delivery stands. Open a target to pause or resume it, reconcile it, or handle its dead letters." }
            @if views.is_empty() {
                p data-test="no-targets" { "No targets yet: add one with " code { "muster target apply" } " or " code { "PUT /admin/v1/targets/{name}" } "." }
            } @else {
                div.table-wrap {
                    table id="targets" {
                        caption { "Targets and their delivery state" }
                        thead {
                            tr {
                                th scope="col" { "Target" }
                                th scope="col" { "Kind" }
                                th scope="col" { "State" }
                                th scope="col" { "Queue" }
                                th scope="col" { "Oldest pending" }
                                th scope="col" { "Last success" }
                                th scope="col" { "Errors" }
                                th scope="col" { "Dead letters" }
                            }
                        }
                        tbody {
                            @for view in &views {
                                tr data-test={"target-" (view.document.name)} {
                                    th scope="row" {
                                        a href=(admin.link(&format!("/targets/{}", view.document.name))) { (view.document.name) }
                                    }
                                    td { (kind_text(view)) }
                                    td data-test="state" { (state_text(view)) }
                                    td data-test="queue" { (view.queue_depth) }
                                    td { (optional_time(view.oldest_pending.as_deref())) }
                                    td { (optional_time(view.state.last_success.as_deref())) }
                                    td { (view.state.errors) }
                                    td data-test="dead-letters" { (view.dead_letters) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Paused, throttled or delivering, in words.
fn state_text(view: &TargetView) -> String {
    match (&view.paused, &view.state.throttled_until) {
        (Some(_), _) => "paused".to_owned(),
        (None, Some(until)) => format!("throttled until {until}"),
        (None, None) => "delivering".to_owned(),
    }
}

fn optional_time(text: Option<&str>) -> Markup {
    match text {
        Some(text) => time_element(text),
        None => html! { "—" },
    }
}

/// Query parameters of a target's page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TargetQuery {
    /// The first dead letter shown (1-based).
    start: Option<usize>,
}

/// `GET /admin/targets/{name}`.
async fn show(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path(name): Path<String>,
    Query(query): Query<TargetQuery>,
) -> PageResult {
    target_page(&admin, &state, &runs, &name, query.start.unwrap_or(1), None).await
}

/// A target's page, with `message` (kind, text) above it.
async fn target_page(
    admin: &Admin,
    state: &AppState,
    runs: &Runs,
    name: &str,
    start: usize,
    message: Option<(&str, Markup)>,
) -> PageResult {
    let targets = targets(state)?;
    let view = targets.get(&admin.tenant, name).await?;
    let letters = targets.dead_letters(&admin.tenant, Some(name)).await?;
    let path = admin.link(&format!("/targets/{name}"));
    ok(page_at(
        admin,
        "/targets",
        &format!("Target {name}"),
        html! {
            @if let Some((kind, text)) = message {
                (notice(kind, text))
            }
            p { a href=(admin.link("/targets")) { "All targets" } }
            (status_section(&view))
            (pause_section(admin, &view, &path))
            (reconcile_section(admin, &view, &path, runs.latest(&admin.tenant, name).as_deref()))
            (letters_section(admin, &letters, start, &path))
        },
    ))
}

fn status_section(view: &TargetView) -> Markup {
    html! {
        section aria-labelledby="status-heading" {
            h2 id="status-heading" { "Status" }
            dl.props id="target-status" {
                dt { "Kind" } dd { (kind_text(view)) }
                dt { "State" } dd data-test="state" { (state_text(view)) }
                @if let Some(reason) = &view.paused {
                    dt { "Paused because" } dd data-test="paused-reason" { (reason) }
                }
                dt { "Changes waiting" } dd data-test="queue" { (view.queue_depth) }
                dt { "Oldest waiting change" } dd { (optional_time(view.oldest_pending.as_deref())) }
                dt { "Last success" } dd { (optional_time(view.state.last_success.as_deref())) }
                dt { "Errors since start" } dd { (view.state.errors) }
                @if let Some(error) = &view.state.last_error {
                    dt { "Last error" }
                    dd data-test="last-error" {
                        (error)
                        @if let Some(at) = &view.state.last_error_at { " (" (time_element(at)) ")" }
                    }
                }
                dt { "Deletion guard" }
                dd data-test="deletion-guard" {
                    @match &view.document.deletion_guard {
                        Some(guard) => {
                            "pauses deliveries when more than " (format!("{:.0}", guard.max_share * 100.0)) "% of the target's users "
                            "would be removed within " (guard.window_seconds) " s (" (guard.minimum) " always allowed)"
                        }
                        None => { "none" }
                    }
                }
                dt { "Dead letters" } dd data-test="dead-letter-count" { (view.dead_letters) }
                dt { "Last changed" } dd { (time_element(&view.updated)) " by " (view.client) }
            }
        }
    }
}

fn pause_section(admin: &Admin, view: &TargetView, path: &str) -> Markup {
    html! {
        section aria-labelledby="pause-heading" {
            @if view.paused.is_some() {
                h2 id="pause-heading" { "Resume" }
                p {
                    "While paused, changes wait in the queue (" (view.queue_depth) " now). "
                    "Resuming delivers every one of them, including the deactivations and deletions "
                    "the deletion guard held back. Check them first with a reconcile dry run below."
                }
                form.stack id="resume-form" method="post" action={(path) "/resume"} {
                    (csrf_field(admin))
                    div {
                        input type="checkbox" id="resume-confirm" name="confirm" value="yes" required;
                        " " label.inline for="resume-confirm" { "I have checked the waiting changes and confirm the removals they make" }
                    }
                    button type="submit" id="resume" { "Resume deliveries" }
                }
            } @else {
                h2 id="pause-heading" { "Pause" }
                p { "Deliveries stop; changes wait in the queue until you resume." }
                form.stack id="pause-form" method="post" action={(path) "/pause"} {
                    (csrf_field(admin))
                    div.field {
                        label for="pause-reason" { "Reason (shown in the target's status)" }
                        input type="text" id="pause-reason" name="reason" required maxlength="500";
                    }
                    button type="submit" id="pause" { "Pause deliveries" }
                }
            }
        }
    }
}

fn reconcile_section(admin: &Admin, view: &TargetView, path: &str, latest: Option<&Run>) -> Markup {
    html! {
        section aria-labelledby="reconcile-heading" {
            h2 id="reconcile-heading" { "Reconcile" }
            p {
                "Compares the target with Muster: every user and group in scope is created, updated "
                "or reactivated there; every one it holds from Muster that left Muster or the scope "
                "is deprovisioned. The dry run sends only look-ups and lists what it would write; "
                "the reconcile itself starts from its report."
            }
            @if view.document.kind == muster_targets::TargetKind::Csv {
                p { "This target writes CSV files: a reconcile writes a full export (its dry run writes nothing)." }
            }
            @if let Some(run) = latest {
                p id="reconcile-latest" data-state=(run.state().as_str()) {
                    a href={(path) "/reconcile/" (run.id)} {
                        "The latest " @if run.dry_run { "dry run" } @else { "reconcile" } " in this server: " (run.state().as_str())
                    }
                }
            }
            form id="reconcile-form" method="post" action={(path) "/reconcile"} {
                (csrf_field(admin))
                input type="hidden" name="mode" value="dry-run";
                button type="submit" id="reconcile-dry-run" { "Dry run a reconcile" }
            }
        }
    }
}

fn letters_section(admin: &Admin, letters: &[DeadLetter], start: usize, path: &str) -> Markup {
    let start = start.clamp(1, letters.len().max(1));
    let shown = letters
        .iter()
        .skip(start.saturating_sub(1))
        .take(LETTERS_PER_PAGE);
    html! {
        section aria-labelledby="letters-heading" {
            h2 id="letters-heading" { "Dead letters" }
            p { "Deliveries that failed for good. Retry delivers the resource's current state now; discard forgets the letter." }
            @if letters.is_empty() {
                p data-test="no-dead-letters" { "None." }
            } @else {
                div.table-wrap {
                    table id="dead-letters" {
                        caption { "Dead letters of this target" }
                        thead {
                            tr {
                                th scope="col" { "Number" }
                                th scope="col" { "When" }
                                th scope="col" { "Resource" }
                                th scope="col" { "Reason" }
                                th scope="col" { "Answer" }
                                th scope="col" { "Actions" }
                            }
                        }
                        tbody {
                            @for letter in shown {
                                tr data-test={"dead-letter-" (letter.id)} {
                                    th scope="row" { (letter.id) }
                                    td { (time_element(&letter.at)) }
                                    td { (letter.resource_type) " " code { (letter.resource_id.0) } }
                                    td { (letter.reason) }
                                    td { details { summary { "Request and answer" } pre { (pretty(&serde_json::json!({"request": letter.request, "response": letter.response}))) } } }
                                    td {
                                        form method="post" action={(path) "/dead-letters/" (letter.id) "/retry"} {
                                            (csrf_field(admin))
                                            button type="submit" id={"retry-" (letter.id)} aria-label={"Retry dead letter " (letter.id)} { "Retry" }
                                        }
                                        form method="post" action={(path) "/dead-letters/" (letter.id) "/discard"} {
                                            (csrf_field(admin))
                                            button type="submit" class="danger" id={"discard-" (letter.id)} aria-label={"Discard dead letter " (letter.id)} { "Discard" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (pager(start, LETTERS_PER_PAGE, letters.len(), |first| format!("{path}?start={first}")))
            }
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The form of `POST .../pause`.
#[derive(Debug, Deserialize)]
struct PauseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/targets/{name}/pause`.
async fn pause(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<PauseForm>,
) -> PageResult {
    let reason = form.reason.trim();
    if reason.is_empty() {
        return Err(PageError::bad_request(
            "reason: say why the target is paused (it is shown in its status)",
        ));
    }
    targets(&state)?
        .pause(&admin.tenant, &admin.actor, &name, reason)
        .await?;
    wake_engine(&state);
    let message = html! { "Paused: changes wait in the queue until you resume." };
    target_page(&admin, &state, &runs, &name, 1, Some(("ok", message))).await
}

/// The form of `POST .../resume`.
#[derive(Debug, Deserialize)]
struct ResumeForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /admin/targets/{name}/resume`: needs the confirmation.
async fn resume(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<ResumeForm>,
) -> PageResult {
    if form.confirm.as_deref() != Some("yes") {
        return Err(PageError::bad_request(
            "confirm: tick the confirmation that you checked the waiting changes, \
             including the removals the deletion guard held back",
        ));
    }
    targets(&state)?
        .resume(&admin.tenant, &admin.actor, &name)
        .await?;
    wake_engine(&state);
    let message = html! { "Resumed: the waiting changes are being delivered." };
    target_page(&admin, &state, &runs, &name, 1, Some(("ok", message))).await
}

/// The form of `POST .../dead-letters/{id}/...`.
#[derive(Debug, Deserialize)]
struct NoFields {}

/// A dead letter of the target `name`, or `404`.
async fn letter_of(
    targets: &Targets,
    tenant: &TenantId,
    name: &str,
    id: &str,
) -> Result<u64, PageError> {
    let not_found = || PageError::not_found(format!("target '{name}' has no dead letter '{id}'"));
    let id = id.parse::<u64>().map_err(|_| not_found())?;
    let letters = targets.dead_letters(tenant, Some(name)).await?;
    if letters.iter().any(|letter| letter.id == id) {
        Ok(id)
    } else {
        Err(not_found())
    }
}

/// `POST /admin/targets/{name}/dead-letters/{id}/retry`.
async fn retry_letter(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path((name, id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> PageResult {
    let targets = targets(&state)?;
    let id = letter_of(targets, &admin.tenant, &name, &id).await?;
    let delivered = targets.retry(&admin.tenant, id).await?;
    let message = html! {
        "Dead letter " (id) " retried: " span data-test="retry-outcome" { (delivered.outcome) }
        ". A new dead letter is made if it failed again."
    };
    target_page(&admin, &state, &runs, &name, 1, Some(("ok", message))).await
}

/// `POST /admin/targets/{name}/dead-letters/{id}/discard`.
async fn discard_letter(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path((name, id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> PageResult {
    let targets = targets(&state)?;
    let id = letter_of(targets, &admin.tenant, &name, &id).await?;
    targets.discard(&admin.tenant, id).await?;
    let message = html! { "Dead letter " (id) " discarded." };
    target_page(&admin, &state, &runs, &name, 1, Some(("ok", message))).await
}

/// A reconcile run of this process.
struct Run {
    id: String,
    tenant: TenantId,
    target: String,
    dry_run: bool,
    /// Resources compared, of all (as the procedure reports).
    progress: Mutex<(u64, u64)>,
    /// The report (its dry-run writes cut to [`SHOWN_REQUESTS`]) with how
    /// many writes it listed, or why it failed; `None` while running.
    outcome: Mutex<Option<Result<Finished, String>>>,
}

impl Run {
    fn progress(&self) -> (u64, u64) {
        self.progress.lock().map(|done| *done).unwrap_or_default()
    }

    fn state(&self) -> RunState {
        match self.outcome.lock().as_deref() {
            Ok(None) => RunState::Running,
            Ok(Some(Ok(_))) => RunState::Finished,
            Ok(Some(Err(_))) | Err(_) => RunState::Failed,
        }
    }

    fn outcome(&self) -> Option<Result<Finished, String>> {
        self.outcome.lock().ok().and_then(|outcome| outcome.clone())
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    Finished,
    Failed,
}

impl RunState {
    /// As the pages' `data-state` and text say it.
    fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }
}

/// A finished reconcile: its report, whose dry-run writes are cut to the
/// first [`SHOWN_REQUESTS`] (a run over every user would otherwise keep
/// them all in memory), and how many writes it listed.
#[derive(Clone)]
struct Finished {
    report: Reconciled,
    requests: usize,
}

/// The reconcile runs of this process, newest last.
#[derive(Default)]
struct Runs {
    runs: Mutex<VecDeque<Arc<Run>>>,
}

impl Runs {
    fn add(&self, run: Arc<Run>) {
        if let Ok(mut runs) = self.runs.lock() {
            while runs.len() >= KEPT_RUNS {
                let finished = runs.iter().position(|run| run.state() != RunState::Running);
                match finished {
                    Some(index) => {
                        runs.remove(index);
                    }
                    None => break,
                }
            }
            runs.push_back(run);
        }
    }

    /// The run `id` of `target` in `tenant` (another tenant's is not found).
    fn find(&self, tenant: &TenantId, target: &str, id: &str) -> Option<Arc<Run>> {
        self.runs.lock().ok().and_then(|runs| {
            runs.iter()
                .find(|run| run.id == id && run.tenant == *tenant && run.target == target)
                .cloned()
        })
    }

    /// The newest run of `target`.
    fn latest(&self, tenant: &TenantId, target: &str) -> Option<Arc<Run>> {
        self.runs.lock().ok().and_then(|runs| {
            runs.iter()
                .rev()
                .find(|run| run.tenant == *tenant && run.target == target)
                .cloned()
        })
    }

    /// Whether a run of `target` is going on.
    fn running(&self, tenant: &TenantId, target: &str) -> Option<Arc<Run>> {
        self.runs.lock().ok().and_then(|runs| {
            runs.iter()
                .find(|run| {
                    run.tenant == *tenant
                        && run.target == target
                        && run.state() == RunState::Running
                })
                .cloned()
        })
    }
}

/// The form of `POST .../reconcile`: `mode` is `dry-run`, or `apply` with
/// `reviewed`, the finished dry run whose report the administrator read.
#[derive(Debug, Deserialize)]
struct ReconcileForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    reviewed: String,
}

/// `POST /admin/targets/{name}/reconcile`: starts a run, then `303` to its
/// page.
async fn start_reconcile(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<ReconcileForm>,
) -> PageResult {
    let targets = targets(&state)?;
    // Not found before anything starts.
    targets.get(&admin.tenant, &name).await?;
    let dry_run = match form.mode.as_str() {
        "dry-run" => true,
        "apply" => {
            let reviewed = runs
                .find(&admin.tenant, &name, &form.reviewed)
                .filter(|run| run.dry_run && run.state() == RunState::Finished);
            if reviewed.is_none() {
                return Err(PageError::bad_request(
                    "reviewed: a reconcile starts from the report of a finished dry run of this \
                     target; run the dry run first",
                ));
            }
            false
        }
        other => {
            return Err(PageError::bad_request(format!(
                "mode: expected dry-run or apply, found '{}'",
                other.chars().take(40).collect::<String>()
            )))
        }
    };
    if let Some(running) = runs.running(&admin.tenant, &name) {
        let link = admin.link(&format!("/targets/{name}/reconcile/{}", running.id));
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!("a reconcile of '{name}' is already running: see {link}"),
        ));
    }
    let run = Arc::new(Run {
        id: run_id(),
        tenant: admin.tenant.clone(),
        target: name.clone(),
        dry_run,
        progress: Mutex::new((0, 0)),
        outcome: Mutex::new(None),
    });
    runs.add(Arc::clone(&run));
    let targets = targets.clone();
    let running = Arc::clone(&run);
    tokio::spawn(async move {
        let reporter = Arc::clone(&running);
        let progress = move |done: u64, total: u64| {
            if let Ok(mut progress) = reporter.progress.lock() {
                *progress = (done, total);
            }
        };
        let outcome = targets
            .reconcile(
                &running.tenant,
                &running.target,
                running.dry_run,
                Some(&progress),
            )
            .await
            .map(|mut report| {
                let requests = report.requests.len();
                report.requests.truncate(SHOWN_REQUESTS);
                Finished { report, requests }
            })
            .map_err(|error| PageError::from(error).detail().to_owned());
        if let Ok(mut slot) = running.outcome.lock() {
            *slot = Some(outcome);
        }
    });
    if !dry_run {
        wake_engine(&state);
    }
    Ok(Redirect::to(&admin.link(&format!("/targets/{name}/reconcile/{}", run.id))).into_response())
}

/// 128 random bits, hex: a run's id.
fn run_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `GET /admin/targets/{name}/reconcile/{run}`: the run's progress, or its
/// report once finished.
async fn show_reconcile(
    admin: Admin,
    State(state): State<AppState>,
    Extension(runs): Extension<Arc<Runs>>,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    targets(&state)?;
    let run = runs.find(&admin.tenant, &name, &id).ok_or_else(|| {
        PageError::not_found(format!("no reconcile run '{id}' of target '{name}'"))
    })?;
    let path = admin.link(&format!("/targets/{name}/reconcile/{id}"));
    let title = if run.dry_run {
        format!("Reconcile dry run of {name}")
    } else {
        format!("Reconcile of {name}")
    };
    let outcome = run.outcome();
    let (done, total) = run.progress();
    ok(page_at(
        &admin,
        "/targets",
        &title,
        html! {
            p { a href=(admin.link(&format!("/targets/{name}"))) { "Back to target " (name) } }
            @match &outcome {
                None => {
                    div id="reconcile-run" data-state="running" hx-get=(path) hx-trigger="every 1s" hx-select="#reconcile-run" hx-swap="outerHTML" {
                        p role="status" {
                            "Running: " span data-test="progress" { (done) " of " (total) } " resources compared."
                        }
                        progress id="reconcile-progress" max=(total.max(1)) value=(done) aria-label="Reconcile progress" {}
                        p { a href=(path) { "Refresh" } " (the page refreshes itself when JavaScript runs)." }
                    }
                }
                Some(Err(detail)) => {
                    div id="reconcile-run" data-state="failed" {
                        (notice("error", html! { "The reconcile failed: " (detail) }))
                    }
                }
                Some(Ok(finished)) => {
                    div id="reconcile-run" data-state="finished" {
                        (report_markup(&admin, &name, &run, finished))
                    }
                }
            }
        },
    ))
}

fn report_markup(admin: &Admin, name: &str, run: &Run, finished: &Finished) -> Markup {
    let report = &finished.report;
    let counts = [
        ("created", "Created (or matched)", report.created.len()),
        ("updated", "Updated", report.updated.len()),
        ("deprovisioned", "Deprovisioned", report.deprovisioned.len()),
        (
            "unchanged",
            "Unchanged",
            usize::try_from(report.unchanged).unwrap_or(usize::MAX),
        ),
        ("failed", "Failed", report.failed.len()),
    ];
    html! {
        @if run.dry_run {
            (notice("ok", html! { "Dry run finished: nothing was written. This is what a reconcile would do." }))
        } @else {
            (notice("ok", html! { "Reconcile finished." }))
        }
        h2 { "Counts" }
        table id="reconcile-counts" {
            caption { "Resources by outcome" }
            thead { tr { th scope="col" { "Outcome" } th scope="col" { "Resources" } } }
            tbody {
                @for (key, label, count) in counts {
                    tr data-test={"count-" (key)} { th scope="row" { (label) } td { (count) } }
                }
            }
        }
        @if !report.failed.is_empty() {
            h2 { "Failures" }
            ul id="reconcile-failures" {
                @for failure in &report.failed {
                    li { code { (failure.get("id").and_then(|id| id.as_str()).unwrap_or_default()) } ": " (failure.get("reason").and_then(|reason| reason.as_str()).unwrap_or_default()) }
                }
            }
        }
        @if let Some(export) = &report.export {
            h2 { "Export" }
            pre id="reconcile-export" { (serde_json::to_string_pretty(export).unwrap_or_default()) }
        }
        @if run.dry_run {
            h2 { "Writes it would send" }
            p { span data-test="requests" { (finished.requests) } " write(s)" @if finished.requests > SHOWN_REQUESTS { "; the first " (SHOWN_REQUESTS) " are shown" } "." }
            @if !report.requests.is_empty() {
                pre id="reconcile-requests" { (pretty(&serde_json::Value::Array(report.requests.clone()))) }
            }
            form id="reconcile-apply-form" method="post" action=(admin.link(&format!("/targets/{name}/reconcile"))) {
                (csrf_field(admin))
                input type="hidden" name="mode" value="apply";
                input type="hidden" name="reviewed" value=(run.id);
                button type="submit" id="reconcile-apply" { "Reconcile now" }
            }
        }
    }
}
