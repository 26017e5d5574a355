//! The six phases run against one target.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use reqwest::StatusCode;

use crate::bodies;
use crate::launch::{cpu_seconds, memory_of, Memory};
use crate::load::{self, pick, Bound, PhaseResult, RequestFn};
use crate::target::Target;

/// Size of a page in the list phase.
const PAGE: usize = 100;

/// How many distinct PATCH bodies the user PATCH phase cycles through.
const PATCH_VARIANTS: usize = 64;

/// What a run asks for; the same for every target.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Users created in phase 1.
    pub users: usize,
    /// Concurrent requests in phases 1 to 5.
    pub concurrency: usize,
    /// When phases 2 to 5 stop.
    pub read_bound: Bound,
    /// Longest any phase (and the untimed group fill) may run.
    pub max_phase: Duration,
    /// Members put in the group before the timed PATCHes.
    pub group_size: usize,
    /// Members per PATCH while filling the group (not timed).
    pub group_batch: usize,
    /// Timed group PATCHes.
    pub group_patches: usize,
    /// New members per timed group PATCH.
    pub group_add: usize,
    /// Timed group PATCHes between two rebuilds of the group.
    pub group_rebuild_every: usize,
    /// Seed of the random choices.
    pub seed: u64,
    /// Unique tag of this run, part of every userName.
    pub tag: String,
}

/// The phases, in run order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// 1: POST /Users.
    Create,
    /// 2: GET /Users/{id}.
    GetById,
    /// 3: GET /Users?filter=userName eq "...".
    FilterUserName,
    /// 4: PATCH /Users/{id}.
    PatchUser,
    /// 5: GET /Users?startIndex=..&count=100.
    ListPage,
    /// 6: PATCH /Groups/{id} adding members.
    GroupAdd,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 6] = [
        Phase::Create,
        Phase::GetById,
        Phase::FilterUserName,
        Phase::PatchUser,
        Phase::ListPage,
        Phase::GroupAdd,
    ];

    /// Label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Create => "1 POST /Users",
            Phase::GetById => "2 GET /Users/{id}",
            Phase::FilterUserName => "3 GET ?filter=userName eq",
            Phase::PatchUser => "4 PATCH /Users/{id}",
            Phase::ListPage => "5 GET ?startIndex&count=100",
            Phase::GroupAdd => "6 PATCH /Groups +members",
        }
    }
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// Its figures.
    pub result: PhaseResult,
    /// Server memory right after it, when the pid is known.
    pub memory_after: Option<Memory>,
    /// Server CPU use during the phase, in cores (1.0 = one core busy).
    pub server_cores: Option<f64>,
    /// This benchmark's own CPU use during the phase, in cores.
    pub client_cores: Option<f64>,
}

/// CPU times at the start of a phase.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    /// When the mark was taken.
    at: Instant,
    /// Server CPU seconds so far.
    server: Option<f64>,
    /// Client CPU seconds so far.
    client: Option<f64>,
}

impl CpuMark {
    /// Takes a mark now.
    fn take(target: &Target) -> Self {
        CpuMark {
            at: Instant::now(),
            server: target.pid.and_then(cpu_seconds),
            client: cpu_seconds(std::process::id()),
        }
    }

    /// CPU use since the mark, in cores, as (server, client).
    fn cores_since(&self, target: &Target) -> (Option<f64>, Option<f64>) {
        let wall = self.at.elapsed().as_secs_f64();
        let cores = |before: Option<f64>, now: Option<f64>| match (before, now) {
            (Some(before), Some(now)) if wall > 0.0 => Some((now - before) / wall),
            _ => None,
        };
        (
            cores(self.server, target.pid.and_then(cpu_seconds)),
            cores(self.client, cpu_seconds(std::process::id())),
        )
    }
}

/// Everything measured on one target.
#[derive(Debug, Clone)]
pub struct TargetReport {
    /// Target name.
    pub name: String,
    /// Its SCIM base URL.
    pub base: String,
    /// Its process id, if known.
    pub pid: Option<u32>,
    /// The phases that ran.
    pub phases: Vec<PhaseReport>,
    /// Remarks: failed sanity checks, skipped phases, group set-up figures.
    pub notes: Vec<String>,
    /// Server memory at the end.
    pub memory_end: Option<Memory>,
}

impl TargetReport {
    /// The figures of `phase`, if it ran.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.phase == phase)
    }
}

/// Prints a progress line on standard error.
fn progress(target: &Target, message: &str) {
    eprintln!("[{}] {message}", target.name);
}

/// Runs every phase against `target`.
pub async fn run_target(target: Arc<Target>, settings: &Settings) -> Result<TargetReport> {
    let mut report = TargetReport {
        name: target.name.clone(),
        base: target.base.clone(),
        pid: target.pid,
        phases: Vec::new(),
        notes: Vec::new(),
        memory_end: None,
    };

    // Phase 1: create the users.
    progress(
        &target,
        &format!(
            "{}: creating {} users, concurrency {}",
            Phase::Create.label(),
            settings.users,
            settings.concurrency
        ),
    );
    let (created, result, mark) =
        create_users(&target, settings, 0, settings.users, settings.seed).await?;
    record(&mut report, &target, Phase::Create, result, mark);
    let mut users: Vec<(String, String)> = created;
    if users.len() < settings.users {
        report.notes.push(format!(
            "only {} of {} users were created (errors, or the phase hit --max-phase-secs); \
             later phases ran on those",
            users.len(),
            settings.users
        ));
    }
    if users.is_empty() {
        report
            .notes
            .push("no user was created; the remaining phases were skipped".to_owned());
        report.memory_end = target.pid.and_then(memory_of);
        return Ok(report);
    }
    sanity_checks(&target, &users, &mut report).await;
    let users_shared = Arc::new(users.clone());

    // Phase 2: GET by id.
    progress(&target, Phase::GetById.label());
    let request: RequestFn = {
        let target = Arc::clone(&target);
        let users = Arc::clone(&users_shared);
        Arc::new(move |_, random| {
            let target = Arc::clone(&target);
            let path = users
                .get(pick(random, users.len()))
                .map(|(id, _)| format!("/Users/{id}"))
                .unwrap_or_default();
            Box::pin(async move { target.get(&path).await?.expect(&[StatusCode::OK]) })
        })
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(
        settings.concurrency,
        settings.read_bound,
        settings.seed ^ 2,
        request,
    )
    .await?;
    record(&mut report, &target, Phase::GetById, result, mark);

    // Phase 3: filter on userName.
    progress(&target, Phase::FilterUserName.label());
    let request: RequestFn = {
        let target = Arc::clone(&target);
        let users = Arc::clone(&users_shared);
        Arc::new(move |_, random| {
            let target = Arc::clone(&target);
            let path = users
                .get(pick(random, users.len()))
                .map(|(_, name)| format!("/Users{}", bodies::user_name_filter_query(name)))
                .unwrap_or_default();
            Box::pin(async move { target.get(&path).await?.expect(&[StatusCode::OK]) })
        })
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(
        settings.concurrency,
        settings.read_bound,
        settings.seed ^ 3,
        request,
    )
    .await?;
    record(&mut report, &target, Phase::FilterUserName, result, mark);

    // Phase 4: PATCH users.
    progress(&target, Phase::PatchUser.label());
    let patches: Arc<Vec<Bytes>> =
        Arc::new((0..PATCH_VARIANTS).map(bodies::user_patch_body).collect());
    let request: RequestFn = {
        let target = Arc::clone(&target);
        let users = Arc::clone(&users_shared);
        Arc::new(move |seq, random| {
            let target = Arc::clone(&target);
            let path = users
                .get(pick(random, users.len()))
                .map(|(id, _)| format!("/Users/{id}"))
                .unwrap_or_default();
            let body = patches
                .get(seq % PATCH_VARIANTS)
                .cloned()
                .unwrap_or_default();
            Box::pin(async move {
                target
                    .patch(&path, body)
                    .await?
                    .expect(&[StatusCode::OK, StatusCode::NO_CONTENT])
            })
        })
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(
        settings.concurrency,
        settings.read_bound,
        settings.seed ^ 4,
        request,
    )
    .await?;
    record(&mut report, &target, Phase::PatchUser, result, mark);

    // Phase 5: list pages.
    progress(&target, Phase::ListPage.label());
    let request: RequestFn = {
        let target = Arc::clone(&target);
        let last_start = users_shared.len().saturating_sub(PAGE - 1).max(1);
        Arc::new(move |_, random| {
            let target = Arc::clone(&target);
            let path = format!(
                "/Users?startIndex={}&count={PAGE}",
                pick(random, last_start) + 1
            );
            Box::pin(async move { target.get(&path).await?.expect(&[StatusCode::OK]) })
        })
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(
        settings.concurrency,
        settings.read_bound,
        settings.seed ^ 5,
        request,
    )
    .await?;
    record(&mut report, &target, Phase::ListPage, result, mark);

    // Phase 6: group membership.
    group_phase(&target, settings, &mut users, &mut report).await?;

    report.memory_end = target.pid.and_then(memory_of);
    Ok(report)
}

/// Stores a phase's figures (with the server's memory right after it) and
/// prints a one-line summary.
fn record(
    report: &mut TargetReport,
    target: &Target,
    phase: Phase,
    result: PhaseResult,
    mark: CpuMark,
) {
    let (server_cores, client_cores) = mark.cores_since(target);
    progress(
        target,
        &format!(
            "  {} ok, {} errors, {:.0} ops/s, p99 {}",
            result.ok,
            result.errors,
            result.ops_per_sec(),
            result
                .quantile_ms(0.99)
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2} ms"))
        ),
    );
    report.phases.push(PhaseReport {
        phase,
        result,
        memory_after: target.pid.and_then(memory_of),
        server_cores,
        client_cores,
    });
}

/// Creates generated users `first..first + count` with POST /Users and
/// returns the `(id, userName)` of those created, in index order.
async fn create_users(
    target: &Arc<Target>,
    settings: &Settings,
    first: usize,
    count: usize,
    seed: u64,
) -> Result<(Vec<(String, String)>, PhaseResult, CpuMark)> {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (first..first + count)
            .map(|i| bodies::user_body(&settings.tag, i))
            .collect(),
    );
    let ids: Arc<Vec<OnceLock<String>>> = Arc::new((0..count).map(|_| OnceLock::new()).collect());
    let request: RequestFn = {
        let target = Arc::clone(target);
        let bodies = Arc::clone(&bodies);
        let ids = Arc::clone(&ids);
        Arc::new(move |seq, _| {
            let target = Arc::clone(&target);
            let ids = Arc::clone(&ids);
            let body = bodies.get(seq).cloned().unwrap_or_default();
            Box::pin(async move {
                let reply = target.post("/Users", body).await?;
                let size = reply.expect(&[StatusCode::CREATED])?;
                let id = reply
                    .json()
                    .ok()
                    .and_then(|json| json.get("id").and_then(|v| v.as_str()).map(str::to_owned))
                    .ok_or_else(|| "201 without an id".to_owned())?;
                if let Some(slot) = ids.get(seq) {
                    let _ = slot.set(id);
                }
                Ok(size)
            })
        })
    };
    let bound = Bound {
        requests: Some(count),
        duration: settings.max_phase,
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(settings.concurrency, bound, seed, request).await?;
    let created = ids
        .iter()
        .enumerate()
        .filter_map(|(offset, slot)| {
            slot.get()
                .map(|id| (id.clone(), bodies::user_name(&settings.tag, first + offset)))
        })
        .collect();
    Ok((created, result, mark))
}

/// Checks, before the read phases, that the target answers them correctly
/// (so a fast wrong answer is not mistaken for a fast right one); failures
/// become notes.
async fn sanity_checks(target: &Target, users: &[(String, String)], report: &mut TargetReport) {
    let Some((id, name)) = users.first() else {
        return;
    };
    let mut failures = Vec::new();
    match target.get(&format!("/Users/{id}")).await {
        Ok(reply) if reply.status == StatusCode::OK => match reply.json() {
            Ok(json) if json.get("id").and_then(|v| v.as_str()) == Some(id) => {}
            _ => failures.push(format!("GET /Users/{id} did not return that user")),
        },
        Ok(reply) => failures.push(format!("GET /Users/{{id}}: {}", reply.describe())),
        Err(e) => failures.push(format!("GET /Users/{{id}}: {e}")),
    }
    match target
        .get(&format!("/Users{}", bodies::user_name_filter_query(name)))
        .await
    {
        Ok(reply) if reply.status == StatusCode::OK => {
            let json = reply.json().ok();
            let total = json
                .as_ref()
                .and_then(|j| j.get("totalResults"))
                .and_then(|v| v.as_u64());
            let first_id = json
                .as_ref()
                .and_then(|j| j.get("Resources"))
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("id"))
                .and_then(|v| v.as_str());
            if total != Some(1) || first_id != Some(id.as_str()) {
                failures.push(format!(
                    "filter userName eq returned totalResults {total:?}, first id {first_id:?} (expected 1, {id})"
                ));
            }
        }
        Ok(reply) => failures.push(format!("filter userName eq: {}", reply.describe())),
        Err(e) => failures.push(format!("filter userName eq: {e}")),
    }
    match target
        .get(&format!("/Users?startIndex=1&count={PAGE}"))
        .await
    {
        Ok(reply) if reply.status == StatusCode::OK => {
            let count = reply
                .json()
                .ok()
                .and_then(|j| j.get("Resources").and_then(|r| r.as_array()).map(Vec::len));
            if !matches!(count, Some(n) if n > 0 && n <= PAGE) {
                failures.push(format!(
                    "list page returned {count:?} resources (expected 1..={PAGE})"
                ));
            }
        }
        Ok(reply) => failures.push(format!("list page: {}", reply.describe())),
        Err(e) => failures.push(format!("list page: {e}")),
    }
    for failure in failures {
        progress(target, &format!("sanity check failed: {failure}"));
        report.notes.push(format!("sanity check failed: {failure}"));
    }
}

/// Phase 6: builds a group of `group_size` members (not timed), then times
/// PATCHes that each add `group_add` members not in it, one after another
/// as an identity provider sends them for one group. Every
/// `group_rebuild_every` PATCHes the group is deleted and built again (not
/// timed), so it never grows past `group_size + group_rebuild_every *
/// group_add` members; the figures are for a group of about `group_size`.
async fn group_phase(
    target: &Arc<Target>,
    settings: &Settings,
    users: &mut Vec<(String, String)>,
    report: &mut TargetReport,
) -> Result<()> {
    let per_patch = settings.group_add.max(1);
    let rebuild_every = settings.group_rebuild_every.max(1);
    let needed = settings.group_size + per_patch * rebuild_every;
    if users.len() < needed {
        let missing = needed - users.len();
        progress(
            target,
            &format!("group phase needs {needed} users: creating {missing} more (not timed)"),
        );
        let (extra, result, _) =
            create_users(target, settings, settings.users, missing, settings.seed ^ 6).await?;
        report.notes.push(format!(
            "created {} extra users for the group phase ({:.0} users/s, not counted)",
            extra.len(),
            result.ops_per_sec()
        ));
        users.extend(extra);
    }
    let members = users
        .get(..settings.group_size.min(users.len()))
        .unwrap_or_default();
    let chunks: Vec<Bytes> = users
        .get(members.len()..)
        .unwrap_or_default()
        .chunks_exact(per_patch)
        .take(rebuild_every)
        .map(|chunk| bodies::add_members_body(chunk.iter().map(|(id, _)| id.as_str())))
        .collect();
    if chunks.is_empty() {
        report
            .notes
            .push("group phase skipped: no users left outside the group to add".to_owned());
        return Ok(());
    }
    let rebuild_every = chunks.len();
    progress(
        target,
        &format!(
            "{}: group of {} members, {} PATCHes adding {per_patch} each, rebuilt every {rebuild_every} (not timed)",
            Phase::GroupAdd.label(),
            members.len(),
            settings.group_patches,
        ),
    );

    let deadline = Instant::now() + settings.max_phase;
    let mut setup = GroupSetup::default();
    let mut result = load::empty_result(1)?;
    let mut busy = Duration::ZERO;
    let mut group: Option<String> = None;
    let mark = CpuMark::take(target.as_ref());
    for (k, chunk) in chunks
        .iter()
        .cycle()
        .take(settings.group_patches)
        .enumerate()
    {
        if Instant::now() >= deadline {
            report.notes.push(format!(
                "group phase stopped at --max-phase-secs after {k} PATCHes"
            ));
            break;
        }
        if k % rebuild_every == 0 {
            if let Some(old) = group.take() {
                setup.delete(target, &old).await;
            }
            match setup.build(target, settings, members, deadline).await {
                Ok(id) => group = Some(id),
                Err(message) => {
                    report.notes.push(format!("group phase stopped: {message}"));
                    break;
                }
            }
        }
        let Some(id) = &group else { break };
        let started = Instant::now();
        let outcome = target
            .patch(&format!("/Groups/{id}"), chunk.clone())
            .await
            .and_then(|reply| reply.expect(&[StatusCode::OK, StatusCode::NO_CONTENT]));
        let took = started.elapsed();
        busy += took;
        result.record(outcome, took);
    }
    if let Some(old) = group.take() {
        setup.delete(target, &old).await;
    }
    // ops/s over the timed PATCHes only, not the untimed rebuilds.
    result.elapsed = busy;
    report.notes.push(format!(
        "group phase set-up (not timed): {} group builds of {} members in PATCHes of {} took {:.2} s; \
         {} fill PATCHes and {} deletes failed",
        setup.builds,
        members.len(),
        settings.group_batch,
        setup.time.as_secs_f64(),
        setup.fill_errors,
        setup.delete_errors
    ));
    if let Some(message) = setup.first_error {
        report.notes.push(format!("group set-up error: {message}"));
    }
    record(report, target, Phase::GroupAdd, result, mark);
    Ok(())
}

/// The untimed group work of phase 6 and what it cost.
#[derive(Debug, Default)]
struct GroupSetup {
    /// Groups built.
    builds: usize,
    /// Time spent building and deleting.
    time: Duration,
    /// Fill PATCHes that failed.
    fill_errors: usize,
    /// Deletes that failed.
    delete_errors: usize,
    /// The first failure.
    first_error: Option<String>,
}

impl GroupSetup {
    /// Creates a group and fills it with `members` in PATCHes of
    /// `group_batch`; returns its id.
    async fn build(
        &mut self,
        target: &Target,
        settings: &Settings,
        members: &[(String, String)],
        deadline: Instant,
    ) -> std::result::Result<String, String> {
        let started = Instant::now();
        let body = bodies::group_body(&format!("{}-{}", settings.tag, self.builds));
        let reply = target.post("/Groups", body).await?;
        let id = match reply.expect(&[StatusCode::CREATED]) {
            Ok(_) => reply
                .json()
                .ok()
                .and_then(|j| j.get("id").and_then(|v| v.as_str()).map(str::to_owned))
                .ok_or_else(|| "POST /Groups answered 201 without an id".to_owned())?,
            Err(message) => return Err(format!("POST /Groups: {message}")),
        };
        for chunk in members.chunks(settings.group_batch.max(1)) {
            if Instant::now() >= deadline {
                self.time += started.elapsed();
                return Err("group fill hit --max-phase-secs".to_owned());
            }
            let body = bodies::add_members_body(chunk.iter().map(|(id, _)| id.as_str()));
            let outcome = target
                .patch(&format!("/Groups/{id}"), body)
                .await
                .and_then(|reply| reply.expect(&[StatusCode::OK, StatusCode::NO_CONTENT]));
            if let Err(message) = outcome {
                self.fill_errors += 1;
                self.first_error
                    .get_or_insert(format!("fill PATCH: {message}"));
            }
        }
        self.builds += 1;
        self.time += started.elapsed();
        Ok(id)
    }

    /// Deletes group `id`.
    async fn delete(&mut self, target: &Target, id: &str) {
        let started = Instant::now();
        let outcome = target
            .send(reqwest::Method::DELETE, &format!("/Groups/{id}"), None)
            .await
            .and_then(|reply| reply.expect(&[StatusCode::NO_CONTENT, StatusCode::OK]));
        if let Err(message) = outcome {
            self.delete_errors += 1;
            self.first_error
                .get_or_insert(format!("DELETE group: {message}"));
        }
        self.time += started.elapsed();
    }
}
