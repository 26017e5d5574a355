//! The phases run against one target: the six of issue 4 and, when the run
//! declares custom attributes (issue 5), a create phase for users carrying
//! them (1b, interleaved with phase 1) and a filter on one of them (3b).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use reqwest::StatusCode;

use crate::bodies;
use crate::extension::{Extension, EXTENSION_URN};
use crate::launch::{cpu_seconds, memory_of, Memory};
use crate::load::{self, pick, Bound, PhaseResult, RequestFn};
use crate::target::Target;

/// Size of a page in the list phase.
const PAGE: usize = 100;

/// How many distinct PATCH bodies the user PATCH phase cycles through.
const PATCH_VARIANTS: usize = 64;

/// Rounds of phase 1 when it alternates plain users and users carrying
/// custom attributes (see [`create_phase`]).
const CREATE_ROUNDS: usize = 10;

/// What a run asks for; the same for every target.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Users created in phase 1 (with custom attributes: phases 1 and 1b
    /// together).
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
    /// The custom extension declared before phase 1 (`--custom-attributes`),
    /// on targets that have Muster's admin API.
    pub extension: Option<Extension>,
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
    /// 1b: POST /Users carrying the custom extension's values, in blocks
    /// alternating with those of phase 1.
    CreateCustom,
    /// 2: GET /Users/{id}.
    GetById,
    /// 3: GET /Users?filter=userName eq "...".
    FilterUserName,
    /// 3b: GET /Users?filter=<custom attribute> eq "..." matching one user.
    FilterCustom,
    /// 4: PATCH /Users/{id}.
    PatchUser,
    /// 5: GET /Users?startIndex=..&count=100.
    ListPage,
    /// 6: PATCH /Groups/{id} adding members.
    GroupAdd,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 8] = [
        Phase::Create,
        Phase::CreateCustom,
        Phase::GetById,
        Phase::FilterUserName,
        Phase::FilterCustom,
        Phase::PatchUser,
        Phase::ListPage,
        Phase::GroupAdd,
    ];

    /// The six phases of issue 4, which every target runs.
    pub const ISSUE4: [Phase; 6] = [
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
            Phase::CreateCustom => "1b POST /Users +custom attrs",
            Phase::GetById => "2 GET /Users/{id}",
            Phase::FilterUserName => "3 GET ?filter=userName eq",
            Phase::FilterCustom => "3b GET ?filter=custom eq",
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

impl PhaseReport {
    /// Server CPU time per successful request, in milliseconds, when the
    /// server's CPU use is known.
    pub fn server_cpu_ms_per_request(&self) -> Option<f64> {
        let ops = self.result.ops_per_sec();
        self.server_cores
            .filter(|_| ops > 0.0)
            .map(|cores| cores / ops * 1000.0)
    }
}

/// CPU times at the start of a stretch of work.
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

    /// The CPU used since the mark.
    fn spent(&self, target: &Target) -> CpuSpent {
        let used = |before: Option<f64>, now: Option<f64>| before.zip(now).map(|(b, n)| n - b);
        CpuSpent {
            wall: self.at.elapsed().as_secs_f64(),
            server: used(self.server, target.pid.and_then(cpu_seconds)),
            client: used(self.client, cpu_seconds(std::process::id())),
            stretches: 1,
        }
    }
}

/// CPU time used over one or more stretches of wall time (phase 1 and 1b
/// each add up several blocks).
#[derive(Debug, Clone, Copy, Default)]
struct CpuSpent {
    /// Wall time, in seconds.
    wall: f64,
    /// Server CPU seconds, when known for every stretch.
    server: Option<f64>,
    /// Client CPU seconds, when known for every stretch.
    client: Option<f64>,
    /// How many stretches were added up.
    stretches: usize,
}

impl CpuSpent {
    /// Adds the stretch (or stretches) `other`.
    fn add(&mut self, other: CpuSpent) {
        let first = self.stretches == 0;
        let sum = |a: Option<f64>, b: Option<f64>| {
            if first {
                b
            } else {
                a.zip(b).map(|(a, b)| a + b)
            }
        };
        self.server = sum(self.server, other.server);
        self.client = sum(self.client, other.client);
        self.wall += other.wall;
        self.stretches += other.stretches;
    }

    /// CPU use in cores, as (server, client).
    fn cores(&self) -> (Option<f64>, Option<f64>) {
        let per_wall = |cpu: Option<f64>| cpu.filter(|_| self.wall > 0.0).map(|c| c / self.wall);
        (per_wall(self.server), per_wall(self.client))
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
    /// Concurrency of its phases 1 to 5 (targets may differ).
    pub concurrency: usize,
    /// The custom extension declared and measured on it (`None` when the
    /// run asked for none, or the target has no admin API to declare it).
    pub extension: Option<Extension>,
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

/// A user created by phase 1 (or for the group phase).
#[derive(Debug, Clone)]
struct CreatedUser {
    /// Index of the generated user (see [`bodies::user_body`]).
    index: usize,
    /// The id the server gave it.
    id: String,
    /// Whether it carries the custom extension's values.
    custom: bool,
}

/// Runs every phase against `target`.
pub async fn run_target(target: Arc<Target>, settings: &Settings) -> Result<TargetReport> {
    let mut report = TargetReport {
        name: target.name.clone(),
        base: target.base.clone(),
        pid: target.pid,
        concurrency: settings.concurrency,
        extension: None,
        phases: Vec::new(),
        notes: Vec::new(),
        memory_end: None,
    };
    report.extension = declare_extension(&target, settings, &mut report).await?;

    // Phase 1 (and 1b): create the users.
    let created = create_phase(&target, settings, report.extension, &mut report).await?;
    let mut users: Vec<(String, String)> = created
        .iter()
        .map(|u| (u.id.clone(), bodies::user_name(&settings.tag, u.index)))
        .collect();
    let custom_users: Vec<(String, String)> = created
        .iter()
        .filter(|u| u.custom)
        .map(|u| (u.id.clone(), Extension::key_value(&settings.tag, u.index)))
        .collect();
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
    if report.extension.is_some() {
        custom_sanity_checks(&target, &custom_users, &mut report).await;
    }
    let users_shared = Arc::new(users.clone());

    // Phase 2: GET by id.
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
    timed_phase(&target, settings, Phase::GetById, 2, request, &mut report).await?;

    // Phase 3: filter on userName.
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
    timed_phase(
        &target,
        settings,
        Phase::FilterUserName,
        3,
        request,
        &mut report,
    )
    .await?;

    // Phase 3b: filter on a custom attribute.
    if report.extension.is_some() {
        filter_custom_phase(&target, settings, custom_users, &mut report).await?;
    }

    // Phase 4: PATCH users.
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
    timed_phase(&target, settings, Phase::PatchUser, 4, request, &mut report).await?;

    // Phase 5: list pages.
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
    timed_phase(&target, settings, Phase::ListPage, 5, request, &mut report).await?;

    // Phase 6: group membership.
    group_phase(&target, settings, &mut users, &mut report).await?;

    report.memory_end = target.pid.and_then(memory_of);
    Ok(report)
}

/// Runs one of the phases bounded by `--duration-secs` or `--requests`
/// (2 to 5, and 3b) at the run's concurrency, and records it; `salt` makes
/// its random choices differ from the other phases'.
async fn timed_phase(
    target: &Arc<Target>,
    settings: &Settings,
    phase: Phase,
    salt: u64,
    request: RequestFn,
    report: &mut TargetReport,
) -> Result<()> {
    progress(target, phase.label());
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(
        settings.concurrency,
        settings.read_bound,
        settings.seed ^ salt,
        request,
    )
    .await?;
    record(report, target, phase, result, mark.spent(target));
    Ok(())
}

/// Stores a phase's figures (with the server's memory right after it) and
/// prints a one-line summary.
fn record(
    report: &mut TargetReport,
    target: &Target,
    phase: Phase,
    result: PhaseResult,
    spent: CpuSpent,
) {
    let (server_cores, client_cores) = spent.cores();
    progress(
        target,
        &format!(
            "  {}: {} ok, {} errors, {:.0} ops/s, p99 {}",
            phase.label(),
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

/// Declares the custom extension on `target` before phase 1 when the run
/// asks for custom attributes, and returns it. Returns `None` when the run
/// does not ask, or when the target has no Muster admin API (another SCIM
/// server, such as the Python one): then a note says phases 1b and 3b are
/// skipped there and every user is created plain.
async fn declare_extension(
    target: &Target,
    settings: &Settings,
    report: &mut TargetReport,
) -> Result<Option<Extension>> {
    let Some(extension) = settings.extension else {
        return Ok(None);
    };
    if !target.has_admin() {
        let note = format!(
            "--custom-attributes {}: skipped on {} (no Muster admin API to declare {EXTENSION_URN}); \
             phases 1b and 3b did not run there and all its users were created plain in phase 1",
            extension.attributes(),
            target.name
        );
        progress(target, &note);
        report.notes.push(note);
        return Ok(None);
    }
    let path = Extension::admin_path();
    progress(
        target,
        &format!(
            "declaring {} string attributes: PUT /admin/v1{path}",
            extension.attributes()
        ),
    );
    let reply = target
        .admin_put(&path, extension.schema_document())
        .await
        .map_err(|e| anyhow!("declaring the custom extension (PUT /admin/v1{path}): {e}"))?;
    match reply.status {
        StatusCode::CREATED => {}
        StatusCode::OK => report.notes.push(format!(
            "{EXTENSION_URN} was already declared on {}; PUT answered 200",
            target.name
        )),
        _ => bail!(
            "declaring the custom extension (PUT /admin/v1{path}): {}; \
             run with --custom-attributes 0 against a server without Muster's admin API",
            reply.describe()
        ),
    }
    Ok(Some(extension))
}

/// The share of `total` users that round `round` of [`CREATE_ROUNDS`]
/// creates (the first `total % CREATE_ROUNDS` rounds take one more).
fn round_share(total: usize, round: usize) -> usize {
    total / CREATE_ROUNDS + usize::from(round < total % CREATE_ROUNDS)
}

/// Phase 1: creates `settings.users` users and returns those created, in
/// index order.
///
/// Without an extension, in one run. With one, half are plain (phase 1) and
/// half carry the extension's values (phase 1b), created in
/// [`CREATE_ROUNDS`] rounds of one block of each kind, the order within a
/// round alternating (plain then custom, custom then plain, ...), every
/// block at the same concurrency. Both kinds thus see the same database
/// sizes, the same warm-up, and the same noise from other processes on the
/// machine, so the ratio of their throughputs is the cost of the custom
/// values alone, measured in one run.
async fn create_phase(
    target: &Arc<Target>,
    settings: &Settings,
    extension: Option<Extension>,
    report: &mut TargetReport,
) -> Result<Vec<CreatedUser>> {
    let Some(extension) = extension else {
        progress(
            target,
            &format!(
                "{}: creating {} users, concurrency {}",
                Phase::Create.label(),
                settings.users,
                settings.concurrency
            ),
        );
        let batch = UserBatch {
            first: 0,
            count: settings.users,
            extension: None,
            seed: settings.seed,
            limit: settings.max_phase,
        };
        let (created, result, spent) = create_users(target, settings, batch).await?;
        record(report, target, Phase::Create, result, spent);
        return Ok(created);
    };
    let custom_total = settings.users / 2;
    let plain_total = settings.users - custom_total;
    progress(
        target,
        &format!(
            "{} / {}: creating {plain_total} plain users and {custom_total} with {} custom attributes, \
             in {CREATE_ROUNDS} alternating rounds, concurrency {}",
            Phase::Create.label(),
            Phase::CreateCustom.label(),
            extension.attributes(),
            settings.concurrency
        ),
    );
    // Two phases, each allowed --max-phase-secs.
    let deadline = Instant::now() + settings.max_phase.saturating_mul(2);
    let mut plain = BlockTally::new(settings.concurrency)?;
    let mut custom = BlockTally::new(settings.concurrency)?;
    let mut created = Vec::with_capacity(settings.users);
    let mut first = 0;
    for round in 0..CREATE_ROUNDS {
        let mut blocks = [
            (round_share(plain_total, round), None),
            (round_share(custom_total, round), Some(extension)),
        ];
        if round % 2 == 1 {
            blocks.reverse();
        }
        for (count, block_extension) in blocks {
            let limit = deadline.saturating_duration_since(Instant::now());
            if count == 0 || limit.is_zero() {
                continue;
            }
            let batch = UserBatch {
                first,
                count,
                extension: block_extension,
                seed: settings.seed ^ ((round as u64 + 1) << 8),
                limit,
            };
            first += count;
            let (block, result, spent) = create_users(target, settings, batch).await?;
            let tally = if block_extension.is_some() {
                &mut custom
            } else {
                &mut plain
            };
            tally.add(result, spent)?;
            created.extend(block);
        }
    }
    if first < settings.users {
        report.notes.push(format!(
            "phases 1 and 1b stopped at twice --max-phase-secs after {first} of {} users",
            settings.users
        ));
    }
    record(report, target, Phase::Create, plain.result, plain.spent);
    record(
        report,
        target,
        Phase::CreateCustom,
        custom.result,
        custom.spent,
    );
    Ok(created)
}

/// The blocks of one kind of phase 1, added up.
#[derive(Debug)]
struct BlockTally {
    /// Counts and latencies; `elapsed` is the sum of the blocks' times.
    result: PhaseResult,
    /// CPU over the blocks.
    spent: CpuSpent,
}

impl BlockTally {
    /// Nothing yet, for blocks run at `concurrency`.
    fn new(concurrency: usize) -> Result<Self> {
        Ok(BlockTally {
            result: load::empty_result(concurrency)?,
            spent: CpuSpent::default(),
        })
    }

    /// Adds one block.
    fn add(&mut self, result: PhaseResult, spent: CpuSpent) -> Result<()> {
        self.result.elapsed += result.elapsed;
        self.result.merge(result)?;
        self.spent.add(spent);
        Ok(())
    }
}

/// A range of generated users created in one timed run.
#[derive(Debug, Clone, Copy)]
struct UserBatch {
    /// Index of the first user.
    first: usize,
    /// How many.
    count: usize,
    /// The custom extension whose values they carry, if any.
    extension: Option<Extension>,
    /// Seed of the load engine.
    seed: u64,
    /// Longest the run may take.
    limit: Duration,
}

/// Creates the generated users of `batch` with POST /Users and returns
/// those created, in index order.
async fn create_users(
    target: &Arc<Target>,
    settings: &Settings,
    batch: UserBatch,
) -> Result<(Vec<CreatedUser>, PhaseResult, CpuSpent)> {
    let UserBatch {
        first,
        count,
        extension,
        seed,
        limit,
    } = batch;
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (first..first + count)
            .map(|i| bodies::user_body(&settings.tag, i, extension))
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
        duration: limit,
    };
    let mark = CpuMark::take(target.as_ref());
    let result = load::run(settings.concurrency, bound, seed, request).await?;
    let spent = mark.spent(target);
    let created = ids
        .iter()
        .enumerate()
        .filter_map(|(offset, slot)| {
            slot.get().map(|id| CreatedUser {
                index: first + offset,
                id: id.clone(),
                custom: extension.is_some(),
            })
        })
        .collect();
    Ok((created, result, spent))
}

/// Phase 3b: `GET /Users?filter=<urn>:agentCode eq "<key>"` for random
/// users carrying custom values (`(id, key)` pairs); each key belongs to
/// one user, so any answer other than exactly that user counts as an error.
async fn filter_custom_phase(
    target: &Arc<Target>,
    settings: &Settings,
    custom_users: Vec<(String, String)>,
    report: &mut TargetReport,
) -> Result<()> {
    if custom_users.is_empty() {
        report.notes.push(format!(
            "{} skipped: no user with custom attributes was created",
            Phase::FilterCustom.label()
        ));
        return Ok(());
    }
    let custom_users = Arc::new(custom_users);
    let request: RequestFn = {
        let target = Arc::clone(target);
        Arc::new(move |_, random| {
            let target = Arc::clone(&target);
            let (id, path) = custom_users
                .get(pick(random, custom_users.len()))
                .map(|(id, key)| {
                    (
                        id.clone(),
                        format!("/Users{}", Extension::key_filter_query(key)),
                    )
                })
                .unwrap_or_default();
            Box::pin(async move { target.get(&path).await?.expect_single(&id) })
        })
    };
    timed_phase(target, settings, Phase::FilterCustom, 7, request, report).await
}

/// Checks, before the read phases, that a user created with custom values
/// returns them (nothing silently dropped) and that the filter on its key
/// finds that user alone; failures become notes.
async fn custom_sanity_checks(
    target: &Target,
    custom_users: &[(String, String)],
    report: &mut TargetReport,
) {
    let Some((id, key)) = custom_users.first() else {
        return;
    };
    let mut failures = Vec::new();
    match target.get(&format!("/Users/{id}")).await {
        Ok(reply) if reply.status == StatusCode::OK => match reply.json() {
            Ok(json) if Extension::key_of(&json) == Some(key.as_str()) => {}
            _ => failures.push(format!(
                "GET /Users/{id} did not return its {EXTENSION_URN} values"
            )),
        },
        Ok(reply) => failures.push(format!("GET /Users/{{id}}: {}", reply.describe())),
        Err(e) => failures.push(format!("GET /Users/{{id}}: {e}")),
    }
    let filtered = target
        .get(&format!("/Users{}", Extension::key_filter_query(key)))
        .await
        .and_then(|reply| reply.expect_single(id));
    if let Err(e) = filtered {
        failures.push(format!("filter custom eq: {e}"));
    }
    for failure in failures {
        progress(target, &format!("sanity check failed: {failure}"));
        report.notes.push(format!("sanity check failed: {failure}"));
    }
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
        let batch = UserBatch {
            first: settings.users,
            count: missing,
            extension: None,
            seed: settings.seed ^ 6,
            limit: settings.max_phase,
        };
        let (extra, result, _) = create_users(target, settings, batch).await?;
        report.notes.push(format!(
            "created {} extra users for the group phase ({:.0} users/s, not counted)",
            extra.len(),
            result.ops_per_sec()
        ));
        users.extend(
            extra
                .into_iter()
                .map(|u| (u.id, bodies::user_name(&settings.tag, u.index))),
        );
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
    record(report, target, Phase::GroupAdd, result, mark.spent(target));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_share_every_user() {
        for total in [0, 1, 9, 10, 11, 1_500, 50_000, 50_003] {
            let shares: Vec<usize> = (0..CREATE_ROUNDS).map(|r| round_share(total, r)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{total}");
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1));
        }
    }

    fn stretch(wall: f64, server: Option<f64>, client: Option<f64>) -> CpuSpent {
        CpuSpent {
            wall,
            server,
            client,
            stretches: 1,
        }
    }

    #[test]
    fn cpu_of_several_stretches_adds_up() {
        let mut spent = CpuSpent::default();
        spent.add(stretch(1.0, Some(0.5), Some(0.2)));
        spent.add(stretch(3.0, Some(1.5), None));
        assert_eq!(spent.cores(), (Some(0.5), None));
        assert_eq!(CpuSpent::default().cores(), (None, None));
    }
}
