//! A Genesys Cloud simulator: SCIM 2.0 at `/api/v2/scim/v2` and the parts of the Platform
//! API that SCIM cannot do (role grants in divisions, skills, languages, WFM management
//! units, licenses), with OAuth client credentials, the per-token rate limit and a
//! recorder. See the crate docs for sources and for which facts are options.

mod authorization;
mod errors;
mod gate;
mod licenses;
mod model;
mod routing;
mod scim_groups;
mod scim_patch;
mod scim_users;
mod users;
mod wfm;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

pub use gate::RecordedRequest;
pub use model::{Grant, Grants, InheritedGrant, Proficiency, SimUser, UserState};

use model::{Division, Group, ManagementUnit, Named, Org, Role};

/// Which division a role given over SCIM (`roles[].value`) is granted in. Unverified at
/// the source ("probably home"), hence an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimRoleDivision {
    /// The organisation's home division (the default).
    Home,
    /// The user's own division.
    UserDivision,
}

/// Simulator options. `Default` gives the documented contract; fields marked
/// *unverified* model facts no primary source confirms.
#[derive(Clone, Debug)]
pub struct GenesysOptions {
    /// OAuth client id accepted at `POST /oauth/token`.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// `expires_in` of issued tokens (default 86 400 s); an expired token answers 401.
    pub token_lifetime: Duration,
    /// Requests per token per window (default 300, `client.credentials.token.rate.per.minute`).
    pub rate_limit: u32,
    /// The rate-limit window (default 60 s). A fixed window starting at a token's first request.
    pub rate_limit_window: Duration,
    /// Largest SCIM page served with the heavy attributes (default 25; above it: 429).
    pub scim_page_cap: usize,
    /// *Unverified*: largest page served when `externalId`, `roles`, `routingSkills` and
    /// `routingLanguages` are excluded (default 100; larger counts are trimmed).
    pub scim_page_cap_excluded: usize,
    /// How long a role seeded with [`GenesysSim::seed_role_just_created`] answers 404 in
    /// grants calls (default 5 s).
    pub new_role_propagation: Duration,
    /// *Unverified*: SCIM POST of the userName of a soft-deleted user answers 409
    /// `uniqueness` (default true, as the Platform API's `general.conflict`).
    pub scim_conflict_on_deleted: bool,
    /// *Unverified*: a filtered SCIM GET (other than `active eq false`) also returns
    /// inactive users (default false: only active ones, like an unfiltered GET).
    pub scim_filter_includes_inactive: bool,
    /// *Unverified*: the division a SCIM role lands in (default [`ScimRoleDivision::Home`]).
    pub scim_role_division: ScimRoleDivision,
    /// *Unverified*: a SCIM PUT without `roles` keeps the user's own grants (default false:
    /// PUT replaces, so an absent `roles` removes every own grant).
    pub scim_put_without_roles_keeps_roles: bool,
    /// *Unverified*: status of the removed `POST /Groups` and `DELETE /Groups/{id}`
    /// (default 404).
    pub removed_group_endpoint_status: u16,
    /// *Unverified*: status of `POST /api/v2/workforcemanagement/agents` (default 200; 202
    /// is the other candidate).
    pub wfm_move_status: u16,
    /// Status of a Platform API version clash (default 409 `general.conflict`; 400 also
    /// documented).
    pub version_conflict_status: u16,
    /// Name of the home division (default "Home").
    pub home_division_name: String,
    /// Items per bulk skills/languages call (default 50).
    pub bulk_limit: usize,
    /// *Unverified*: the `result` strings of license assignments (`LicenseUpdateStatus.result`
    /// is a free string in the SDK).
    pub license_results: LicenseResults,
}

/// The `result` strings `POST /api/v2/license/organization` answers per user. The SDK types
/// `result` as a plain string and no source lists its values: all three are assumptions.
#[derive(Clone, Debug)]
pub struct LicenseResults {
    /// Assigned or removed (default `Success`).
    pub success: String,
    /// The user id does not exist or is deleted (default `UserNotFound`).
    pub user_not_found: String,
    /// The license id does not exist (default `LicenseNotFound`).
    pub license_not_found: String,
}

impl Default for LicenseResults {
    fn default() -> Self {
        Self {
            success: "Success".into(),
            user_not_found: "UserNotFound".into(),
            license_not_found: "LicenseNotFound".into(),
        }
    }
}

impl Default for GenesysOptions {
    fn default() -> Self {
        Self {
            client_id: "muster-client".into(),
            client_secret: "muster-secret".into(),
            token_lifetime: Duration::from_secs(86_400),
            rate_limit: 300,
            rate_limit_window: Duration::from_secs(60),
            scim_page_cap: 25,
            scim_page_cap_excluded: 100,
            new_role_propagation: Duration::from_secs(5),
            scim_conflict_on_deleted: true,
            scim_filter_includes_inactive: false,
            scim_role_division: ScimRoleDivision::Home,
            scim_put_without_roles_keeps_roles: false,
            removed_group_endpoint_status: 404,
            wfm_move_status: 200,
            version_conflict_status: 409,
            home_division_name: "Home".into(),
            bulk_limit: 50,
            license_results: LicenseResults::default(),
        }
    }
}

/// A pre-existing user to seed (see [`GenesysSim::seed_user`]).
#[derive(Clone, Debug)]
pub struct SeedUser {
    /// `userName` (email).
    pub user_name: String,
    /// `displayName` (defaults to the userName).
    pub display_name: Option<String>,
    /// Lifecycle state (default active).
    pub state: UserState,
    /// SCIM `externalId`.
    pub external_id: Option<String>,
    /// Division id (default home).
    pub division_id: Option<String>,
}

impl SeedUser {
    /// An active user in the home division.
    #[must_use]
    pub fn new(user_name: &str) -> Self {
        Self {
            user_name: user_name.into(),
            display_name: None,
            state: UserState::Active,
            external_id: None,
            division_id: None,
        }
    }

    /// With this state.
    #[must_use]
    pub fn state(mut self, state: UserState) -> Self {
        self.state = state;
        self
    }

    /// With this externalId.
    #[must_use]
    pub fn external_id(mut self, external_id: &str) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// In this division.
    #[must_use]
    pub fn division(mut self, division_id: &str) -> Self {
        self.division_id = Some(division_id.into());
        self
    }
}

/// Token bookkeeping and rate-limit windows.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// token → expiry.
    pub issued: HashMap<String, Instant>,
    /// token → (window start, requests in window).
    pub windows: HashMap<String, (Instant, u32)>,
}

/// State shared by the handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: GenesysOptions,
    pub base_url: String,
    pub org: Mutex<Org>,
    pub tokens: Mutex<Tokens>,
    pub recorded: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    /// Lock the organisation (a poisoned lock is recovered: state is plain data).
    pub fn org(&self) -> MutexGuard<'_, Org> {
        self.org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn recorded(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct GenesysSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GenesysSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let scim = Router::new()
        .route("/Users", get(scim_users::list).post(scim_users::create))
        .route(
            "/Users/{id}",
            get(scim_users::get_one)
                .put(scim_users::replace)
                .patch(scim_users::patch)
                .delete(scim_users::delete),
        )
        .route(
            "/Groups",
            get(scim_groups::list).post(scim_groups::removed_create),
        )
        .route(
            "/Groups/{id}",
            get(scim_groups::get_one)
                .put(scim_groups::replace)
                .patch(scim_groups::patch)
                .delete(scim_groups::removed_delete),
        )
        .route(
            "/ServiceProviderConfig",
            get(scim_users::service_provider_config),
        );
    let api = Router::new()
        .route("/authorization/subjects/{id}", get(authorization::subject))
        .route(
            "/authorization/subjects/{id}/{action}",
            post(authorization::bulk),
        )
        .route(
            "/authorization/subjects/{id}/divisions/{division_id}/roles/{role_id}",
            post(authorization::grant_one).delete(authorization::revoke_one),
        )
        .route("/authorization/divisions", get(authorization::divisions))
        .route("/authorization/divisions/home", get(authorization::home))
        .route(
            "/authorization/divisions/{division_id}/objects/{object_type}",
            post(authorization::move_objects),
        )
        .route("/authorization/roles", get(authorization::roles))
        .route("/routing/skills", get(routing::skills))
        .route("/routing/languages", get(routing::languages))
        .route("/users", post(users::create))
        .route("/users/search", post(users::search))
        .route("/users/{id}", get(users::get_one).patch(users::patch))
        .route("/users/{id}/routingskills", get(routing::user_skills))
        .route(
            "/users/{id}/routingskills/bulk",
            axum::routing::put(routing::replace_skills).patch(routing::add_skills),
        )
        .route("/users/{id}/routinglanguages", get(routing::user_languages))
        .route(
            "/users/{id}/routinglanguages/bulk",
            axum::routing::patch(routing::add_languages),
        )
        .route("/workforcemanagement/agents", post(wfm::move_agents))
        .route(
            "/workforcemanagement/agents/{id}/managementunit",
            get(wfm::agent_unit),
        )
        .route(
            "/workforcemanagement/managementunits",
            get(wfm::management_units),
        )
        .route("/license/organization", post(licenses::assign))
        .route("/license/users/{id}", get(licenses::user_licenses))
        .route("/license/definitions", get(licenses::definitions))
        .nest("/scim/v2", scim);
    Router::new()
        .route("/oauth/token", post(gate::token))
        .nest("/api/v2", api)
        .fallback(gate::fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::gate,
        ))
        .with_state(shared)
}

impl GenesysSim {
    /// Start a simulator on `127.0.0.1:0` with a home division. Needs a Tokio runtime.
    ///
    /// # Panics
    /// If the port cannot be bound (test support: fail loudly).
    pub async fn start(options: GenesysOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut org = Org::default();
        org.divisions.push(Division {
            id: model::new_id(),
            name: options.home_division_name.clone(),
            home: true,
        });
        let shared = Arc::new(Shared {
            options,
            base_url: format!("http://{addr}"),
            org: Mutex::new(org),
            tokens: Mutex::new(Tokens::default()),
            recorded: Mutex::new(Vec::new()),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "genesys simulator stopped");
            }
        });
        Self { shared, addr, task }
    }

    /// `http://127.0.0.1:PORT`: the `api.` host (SCIM under `/api/v2/scim/v2`).
    #[must_use]
    pub fn api_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/api/v2/scim/v2`.
    #[must_use]
    pub fn scim_base_url(&self) -> String {
        format!("http://{}/api/v2/scim/v2", self.addr)
    }

    /// The `login.` host: the token endpoint is `{login_url}/oauth/token`.
    #[must_use]
    pub fn login_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The options the simulator runs with.
    #[must_use]
    pub fn options(&self) -> &GenesysOptions {
        &self.shared.options
    }

    /// Issue a token without a request (not recorded, not counted).
    #[must_use]
    pub fn issue_token(&self) -> String {
        gate::issue(&self.shared)
    }

    // ----- seeding -----

    /// The home division's id.
    #[must_use]
    pub fn home_division_id(&self) -> String {
        self.shared
            .org()
            .home_division()
            .map(|d| d.id.clone())
            .unwrap_or_default()
    }

    /// Seed a division; returns its id.
    pub fn seed_division(&self, name: &str) -> String {
        let id = model::new_id();
        self.shared.org().divisions.push(Division {
            id: id.clone(),
            name: name.into(),
            home: false,
        });
        id
    }

    /// Delete a division (its id becomes stale; grants in it vanish).
    pub fn delete_division(&self, id: &str) {
        let mut org = self.shared.org();
        org.divisions.retain(|d| d.id != id || d.home);
        for u in &mut org.users {
            u.grants.retain(|g| g.division_id != id);
        }
        for g in &mut org.groups {
            g.grants.retain(|gr| gr.division_id != id);
        }
    }

    /// Seed a role, usable at once; returns its id.
    pub fn seed_role(&self, name: &str) -> String {
        self.push_role(name, Instant::now())
    }

    /// Makes the next SCIM write (PUT or PATCH) to a user that carries no
    /// `If-Match` lose a race with another writer: the user's version moves
    /// on and the write answers `400 invalidVers`, as a version-checked
    /// write does when the user changed meanwhile.
    pub fn race_next_write(&self, user_id: &str) {
        self.shared.org().racing.insert(user_id.to_owned());
    }

    /// Seed a role that is listed at once but answers 404 in grants calls for
    /// [`GenesysOptions::new_role_propagation`] (the authorization cache lag).
    pub fn seed_role_just_created(&self, name: &str) -> String {
        self.push_role(
            name,
            Instant::now() + self.shared.options.new_role_propagation,
        )
    }

    fn push_role(&self, name: &str, available_at: Instant) -> String {
        let id = model::new_id();
        self.shared.org().roles.push(Role {
            id: id.clone(),
            name: name.into(),
            available_at,
        });
        id
    }

    /// Delete a role (its id becomes stale; its grants vanish).
    pub fn delete_role(&self, id: &str) {
        let mut org = self.shared.org();
        org.roles.retain(|r| r.id != id);
        for u in &mut org.users {
            u.grants.retain(|g| g.role_id != id);
        }
        for g in &mut org.groups {
            g.grants.retain(|gr| gr.role_id != id);
        }
    }

    /// Seed a routing skill; returns its id.
    pub fn seed_skill(&self, name: &str) -> String {
        let id = model::new_id();
        self.shared.org().skills.push(Named {
            id: id.clone(),
            name: name.into(),
        });
        id
    }

    /// Seed a routing language; returns its id.
    pub fn seed_language(&self, name: &str) -> String {
        let id = model::new_id();
        self.shared.org().languages.push(Named {
            id: id.clone(),
            name: name.into(),
        });
        id
    }

    /// Seed a WFM management unit in a division (one business unit per division);
    /// returns its id.
    pub fn seed_management_unit(&self, name: &str, division_id: &str) -> String {
        let id = model::new_id();
        let mut org = self.shared.org();
        let business_unit_id = org
            .management_units
            .iter()
            .find(|m| m.division_id == division_id)
            .map_or_else(model::new_id, |m| m.business_unit_id.clone());
        org.management_units.push(ManagementUnit {
            id: id.clone(),
            name: name.into(),
            division_id: division_id.into(),
            business_unit_id,
            agent_limit: None,
        });
        id
    }

    /// Cap a management unit's agents (moves beyond it answer
    /// `DestinationManagementUnitAgentLimitExceeded`).
    pub fn set_management_unit_agent_limit(&self, mu_id: &str, limit: usize) {
        let mut org = self.shared.org();
        if let Some(m) = org.management_units.iter_mut().find(|m| m.id == mu_id) {
            m.agent_limit = Some(limit);
        }
    }

    /// Seed a license definition (ids look like `cloudCX3`); returns the id.
    pub fn seed_license(&self, id: &str) -> String {
        self.shared.org().licenses.push(id.into());
        id.into()
    }

    /// Seed a group (groups cannot be created over SCIM); returns its id.
    pub fn seed_group(&self, display_name: &str) -> String {
        let id = model::new_id();
        self.shared.org().groups.push(Group {
            id: id.clone(),
            display_name: display_name.into(),
            members: BTreeSet::new(),
            grants: BTreeSet::new(),
            version: 1,
            last_modified: model::now_rfc3339(),
        });
        id
    }

    /// Give a group a role in a division: its members inherit the grant.
    pub fn seed_group_grant(&self, group_id: &str, role_id: &str, division_id: &str) {
        let mut org = self.shared.org();
        if let Some(g) = org.groups.iter_mut().find(|g| g.id == group_id) {
            g.grants.insert(Grant {
                role_id: role_id.into(),
                division_id: division_id.into(),
            });
        }
    }

    /// Put a user in a group.
    pub fn seed_group_member(&self, group_id: &str, user_id: &str) {
        let mut org = self.shared.org();
        if let Some(g) = org.groups.iter_mut().find(|g| g.id == group_id) {
            g.members.insert(user_id.into());
        }
    }

    /// Seed a user (active, inactive or soft-deleted); returns its id.
    pub fn seed_user(&self, seed: SeedUser) -> String {
        let mut org = self.shared.org();
        let division = seed
            .division_id
            .or_else(|| org.home_division().map(|d| d.id.clone()))
            .unwrap_or_default();
        let display = seed.display_name.unwrap_or_else(|| seed.user_name.clone());
        let mut user = SimUser::new(&seed.user_name, &display, &division);
        user.state = seed.state;
        user.external_id = seed.external_id;
        let id = user.id.clone();
        org.users.push(user);
        id
    }

    /// Give a seeded user an own grant.
    pub fn seed_user_grant(&self, user_id: &str, role_id: &str, division_id: &str) {
        if let Some(u) = self.shared.org().user_mut(user_id) {
            u.grants.insert(Grant {
                role_id: role_id.into(),
                division_id: division_id.into(),
            });
        }
    }

    // ----- inspection -----

    /// Every request answered so far, in order (the token endpoint included).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded().clone()
    }

    /// Forget the recorded requests (and the largest page seen).
    pub fn clear_requests(&self) {
        self.shared.recorded().clear();
        self.shared.org().max_page_size_seen = 0;
    }

    /// The user with this userName (case-insensitive), in any state.
    #[must_use]
    pub fn user_by_user_name(&self, user_name: &str) -> Option<SimUser> {
        self.shared.org().user_by_name(user_name).cloned()
    }

    /// The user with this id, in any state.
    #[must_use]
    pub fn user(&self, id: &str) -> Option<SimUser> {
        self.shared.org().user(id).cloned()
    }

    /// Every user, in any state.
    #[must_use]
    pub fn users(&self) -> Vec<SimUser> {
        self.shared.org().users.clone()
    }

    /// A user's grants, own and inherited apart.
    #[must_use]
    pub fn grants_of(&self, user_id: &str) -> Grants {
        self.shared.org().grants_of(user_id)
    }

    /// A user's skills with names, sorted by name.
    #[must_use]
    pub fn skills_of(&self, user_id: &str) -> Vec<Proficiency> {
        let org = self.shared.org();
        let mut out: Vec<Proficiency> = org
            .user(user_id)
            .map(|u| {
                u.skills
                    .iter()
                    .filter_map(|(id, p)| {
                        org.skill(id).map(|s| Proficiency {
                            id: id.clone(),
                            name: s.name.clone(),
                            proficiency: *p,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A user's languages with names, sorted by name.
    #[must_use]
    pub fn languages_of(&self, user_id: &str) -> Vec<Proficiency> {
        let org = self.shared.org();
        let mut out: Vec<Proficiency> = org
            .user(user_id)
            .map(|u| {
                u.languages
                    .iter()
                    .filter_map(|(id, p)| {
                        org.language(id).map(|s| Proficiency {
                            id: id.clone(),
                            name: s.name.clone(),
                            proficiency: *p,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A user's management unit id.
    #[must_use]
    pub fn management_unit_of(&self, user_id: &str) -> Option<String> {
        self.shared
            .org()
            .user(user_id)
            .and_then(|u| u.management_unit.clone())
    }

    /// A user's license ids, sorted.
    #[must_use]
    pub fn licenses_of(&self, user_id: &str) -> Vec<String> {
        self.shared
            .org()
            .user(user_id)
            .map(|u| u.licenses.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Member user ids of a group, sorted.
    #[must_use]
    pub fn group_members(&self, group_id: &str) -> Vec<String> {
        self.shared
            .org()
            .group(group_id)
            .map(|g| g.members.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Attempts to create a group (`POST /Groups`, always refused): must stay 0.
    #[must_use]
    pub fn groups_created(&self) -> usize {
        self.shared.org().groups_created
    }

    /// The largest `count` asked of a SCIM list (25 when absent).
    #[must_use]
    pub fn max_page_size_seen(&self) -> usize {
        self.shared.org().max_page_size_seen
    }

    /// The largest number of requests one token made within one rate-limit window, as
    /// recorded (429s included): compare with [`GenesysOptions::rate_limit`].
    #[must_use]
    pub fn max_requests_per_window(&self) -> usize {
        let window = self.shared.options.rate_limit_window;
        let recorded = self.shared.recorded();
        let mut by_token: HashMap<&str, Vec<SystemTime>> = HashMap::new();
        for r in recorded.iter() {
            if let Some(t) = r.token.as_deref() {
                by_token.entry(t).or_default().push(r.at);
            }
        }
        by_token
            .values()
            .map(|times| {
                let mut best = 0;
                let mut start = 0;
                for (end, t) in times.iter().enumerate() {
                    while times
                        .get(start)
                        .and_then(|s| t.duration_since(*s).ok())
                        .is_some_and(|d| d >= window)
                    {
                        start += 1;
                    }
                    best = best.max(end + 1 - start);
                }
                best
            })
            .max()
            .unwrap_or(0)
    }
}

/// Parse a JSON value as a string list (`["a","b"]`), ignoring non-strings.
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
