//! A NICE CXone simulator: the access-key token endpoint, SCIM 2.0 Users with CXone's fixed
//! set of fields, and the Admin API's agents, skills and agent skills, with a recorder.
//!
//! Sources (gathered in `../shared/reference/contact-center-apis.md`, section 3, and
//! `contact-center-targets.md`, NICE section): help.nice-incontact.com
//! (`…/provisionemployeeaccountswithscim/scim.htm`, `integrateidpwithscim.htm`: the SCIM
//! fields, the Agent role, deactivation; `…/skills/manageskills.htm`: proficiency 1 best to
//! 20 worst), developer.niceincontact.com (`UserHubGettingStarted`, `DataExtractionAPI`,
//! `FAQ`: access-key tokens lasting about an hour) and the Admin API paths and bodies of
//! NICE's "admin-agents-api-docs" OpenAPI and `walterplaza/protractor`'s
//! `agent-management-v12.ts`.
//!
//! What it simulates:
//! - **Access-key token**: `POST {token_path}` (default
//!   `/authentication/v1/token/access-key`) with JSON `{"accessKeyId","accessKeySecret"}` →
//!   `{access_token, token_type: "Bearer", expires_in}`; a wrong key or secret answers 401
//!   `{"error":"invalid_client","error_description":…}`. Every other call needs a live
//!   bearer token, else 401; a token expires after [`NiceOptions::token_lifetime`].
//! - **SCIM 2.0 Users** under [`NiceOptions::scim_base_path`]: `POST /Users`, `GET /Users`
//!   (filters `userName eq "…"` and `externalId eq "…"` only, anything else 400
//!   `invalidFilter`; `startIndex`/`count`), `GET`/`PUT`/`PATCH /Users/{id}`. Required:
//!   `userName`, `name.givenName`, `name.familyName`, `emails` (a value); optional:
//!   `displayName`, `name.middleName`, `phoneNumbers` (mobile), `timezone`, `userType`,
//!   `externalId`, `active`, and the CXone extension (`loginAuthenticator`, `primaryRole`,
//!   `team`). Attributes outside that set are ignored by default (the help pages say
//!   CXone "sets a fixed set of fields" and custom fields are mapped in its console;
//!   nothing documents a refusal): [`UnknownAttributes::Refuse`] answers 400
//!   `invalidSyntax` instead. `active=false` deactivates (the agent stays, inactive); a
//!   new user gets the Agent role, and creation fails (400) if no Agent role exists.
//!   `DELETE` is not part of the documented contract (create, update, deactivate): 405.
//! - **Agent id**: every user is also an Admin-API agent with a numeric `agentId`. It is
//!   shown on the SCIM user at [`NiceOptions::agent_id_attribute`] (an extension attribute,
//!   by default), and found with `GET /agents?searchString=…` (matching userName, names or
//!   email) and `GET /agents/{id}`.
//! - **Admin API** under [`NiceOptions::admin_base_path`] (default
//!   `/inContactAPI/services/v24.0`): `GET /skills` (`searchString`, `skip`, `top`) →
//!   `{"skills":[{skillId, skillName, isActive, mediaTypeId}], "totalRecords"}`;
//!   `GET /agents/{id}/skills` → `{"agentSkillAssignments":[{agentId, skillId, skillName,
//!   isActive, proficiency}], "totalRecords"}`; `POST` (assign), `PUT` (modify) with
//!   `{"skills":[{"skillId","isActive","proficiency"}]}` and `DELETE` with
//!   `{"skills":[{"skillId"}]}`. Proficiency outside 1..20, an unknown skill id, a POST of
//!   an assigned skill or a PUT of an unassigned one fail the whole call with 400
//!   `{"error":"InvalidRequest","error_description":…}` and change nothing (unverified);
//!   a DELETE of an unassigned skill is ignored. An unknown agent is 404.
//!
//! Unverified facts are options of [`NiceOptions`]: the SCIM base path, the admin API
//! version, the agent id's place on the SCIM user, the policy for unknown attributes, the
//! token lifetime. Left out: rate limits (unpublished), teams, the user-management API,
//! `/Groups`, `/Schemas`, the `cxone.niceincontact.com/auth/token` flow, refresh tokens.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use muster_simulators::nice::{NiceOptions, NiceSim};
//!
//! let sim = NiceSim::start(NiceOptions::default()).await;
//! let billing = sim.seed_skill("Billing");
//! let agent = sim.seed_user("ada@example.com");
//! sim.seed_agent_skill(agent, billing, 1);
//! assert_eq!(sim.skills_of(agent)[0].skill_name, "Billing");
//! assert!(sim.token_url().ends_with("/authentication/v1/token/access-key"));
//! # }
//! ```

mod admin;
mod gate;
mod scim;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

pub use gate::RecordedRequest;

/// What SCIM does with attributes outside CXone's fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownAttributes {
    /// Ignore them: not stored, not returned (the default).
    Ignore,
    /// Refuse the request: 400 `invalidSyntax` naming the attribute.
    Refuse,
}

/// Simulator options. `Default` gives the documented contract; fields marked
/// *unverified* model facts no primary source confirms.
#[derive(Clone, Debug)]
pub struct NiceOptions {
    /// The access key id accepted at the token endpoint.
    pub access_key_id: String,
    /// The access key secret.
    pub access_key_secret: String,
    /// Path of the token endpoint (default `/authentication/v1/token/access-key`).
    pub token_path: String,
    /// `expires_in` of issued tokens (default 3 600 s); an expired token answers 401.
    pub token_lifetime: Duration,
    /// *Unverified*: the SCIM base path (default `/scim/v2`).
    pub scim_base_path: String,
    /// *Unverified*: the admin API base path, `{baseUri}services/v{N}.0` (default
    /// `/inContactAPI/services/v24.0`).
    pub admin_base_path: String,
    /// *Unverified*: where the agent id shows on a SCIM user, as a SCIM path whose last
    /// `:` separates an extension URN from the attribute (default
    /// `urn:ietf:params:scim:schemas:extension:nice:2.0:User:agentId`); `None`: not shown
    /// (clients use `GET /agents?searchString=`).
    pub agent_id_attribute: Option<String>,
    /// *Unverified*: unknown SCIM attributes (default [`UnknownAttributes::Ignore`]).
    pub unknown_attributes: UnknownAttributes,
    /// The name of the role new users get (default `Agent`).
    pub agent_role_name: String,
    /// The first agent id handed out (default 1001).
    pub first_agent_id: u64,
    /// *Unverified* (CXone publishes no Admin API limits): requests per token per
    /// [`NiceOptions::rate_limit_window`] before 429 with `Retry-After` (default `None`: no
    /// limit). Counts every authenticated call, SCIM and Admin API.
    pub rate_limit: Option<u32>,
    /// The rate-limit window (default 60 s), a fixed window from a token's first request.
    pub rate_limit_window: Duration,
}

/// The CXone SCIM extension URN the simulator uses for CXone-specific fields.
pub const NICE_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:nice:2.0:User";

impl Default for NiceOptions {
    fn default() -> Self {
        Self {
            access_key_id: "muster-access-key".into(),
            access_key_secret: "muster-access-secret".into(),
            token_path: "/authentication/v1/token/access-key".into(),
            token_lifetime: Duration::from_secs(3600),
            scim_base_path: "/scim/v2".into(),
            admin_base_path: "/inContactAPI/services/v24.0".into(),
            agent_id_attribute: Some(format!("{NICE_EXTENSION}:agentId")),
            unknown_attributes: UnknownAttributes::Ignore,
            agent_role_name: "Agent".into(),
            first_agent_id: 1001,
            rate_limit: None,
            rate_limit_window: Duration::from_secs(60),
        }
    }
}

/// A skill assigned to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSkill {
    /// The skill id.
    pub skill_id: u64,
    /// The skill name.
    pub skill_name: String,
    /// 1 (best) to 20 (worst).
    pub proficiency: u8,
    /// Whether the assignment is active.
    pub is_active: bool,
}

/// A user as the simulator holds it (SCIM user and Admin-API agent at once).
#[derive(Clone, Debug, PartialEq)]
pub struct SimUser {
    /// SCIM `id` (a UUID).
    pub id: String,
    /// The Admin API's numeric agent id.
    pub agent_id: u64,
    /// `userName`.
    pub user_name: String,
    /// `name.givenName`.
    pub given_name: String,
    /// `name.familyName`.
    pub family_name: String,
    /// `name.middleName`.
    pub middle_name: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `emails` as given.
    pub emails: Vec<serde_json::Value>,
    /// `phoneNumbers` as given.
    pub phone_numbers: Vec<serde_json::Value>,
    /// `timezone`.
    pub timezone: Option<String>,
    /// `userType`.
    pub user_type: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `active`.
    pub active: bool,
    /// The primary role's name (the Agent role for a new user).
    pub role: String,
    /// The extension's `loginAuthenticator`.
    pub login_authenticator: Option<String>,
    /// The extension's `team`.
    pub team: Option<String>,
    /// Assigned skills by skill id.
    pub skills: BTreeMap<u64, (u8, bool)>,
    /// Bumped on each write.
    pub version: u64,
}

/// A skill of the business unit.
#[derive(Clone, Debug)]
pub(crate) struct Skill {
    pub id: u64,
    pub name: String,
}

/// The business unit's state.
#[derive(Debug, Default)]
pub(crate) struct Unit {
    pub users: Vec<SimUser>,
    pub skills: Vec<Skill>,
    pub roles: Vec<String>,
    pub next_agent_id: u64,
    pub next_skill_id: u64,
}

impl Unit {
    pub fn user(&self, id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn agent(&self, agent_id: u64) -> Option<&SimUser> {
        self.users.iter().find(|u| u.agent_id == agent_id)
    }
    pub fn skill(&self, id: u64) -> Option<&Skill> {
        self.skills.iter().find(|s| s.id == id)
    }
}

/// State shared by the handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: NiceOptions,
    pub unit: Mutex<Unit>,
    pub tokens: Mutex<BTreeMap<String, std::time::Instant>>,
    /// token → (window start, requests in it).
    pub windows: Mutex<BTreeMap<String, (std::time::Instant, u32)>>,
    pub recorded: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    /// Lock the business unit (a poisoned lock is recovered: state is plain data).
    pub fn unit(&self) -> MutexGuard<'_, Unit> {
        self.unit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn tokens(&self) -> MutexGuard<'_, BTreeMap<String, std::time::Instant>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn windows(&self) -> MutexGuard<'_, BTreeMap<String, (std::time::Instant, u32)>> {
        self.windows
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
pub struct NiceSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NiceSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let scim = Router::new()
        .route("/Users", get(scim::list).post(scim::create))
        .route(
            "/Users/{id}",
            get(scim::get_one)
                .put(scim::replace)
                .patch(scim::patch)
                .delete(scim::delete),
        );
    let admin = Router::new()
        .route("/skills", get(admin::skills))
        .route("/agents", get(admin::agents))
        .route("/agents/{id}", get(admin::agent))
        .route(
            "/agents/{id}/skills",
            get(admin::agent_skills)
                .post(admin::assign_skills)
                .put(admin::modify_skills)
                .delete(admin::remove_skills),
        );
    Router::new()
        .route(&shared.options.token_path, post(gate::token))
        .nest(&shared.options.scim_base_path, scim)
        .nest(&shared.options.admin_base_path, admin)
        .fallback(gate::fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::gate,
        ))
        .with_state(shared)
}

impl NiceSim {
    /// Start a simulator on `127.0.0.1:0` with an Agent role and no skills. Needs a Tokio
    /// runtime.
    ///
    /// # Panics
    /// If the port cannot be bound (test support: fail loudly).
    pub async fn start(options: NiceOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let unit = Unit {
            roles: vec![options.agent_role_name.clone()],
            next_agent_id: options.first_agent_id,
            next_skill_id: 4_000_001,
            ..Unit::default()
        };
        let shared = Arc::new(Shared {
            options,
            unit: Mutex::new(unit),
            tokens: Mutex::new(BTreeMap::new()),
            windows: Mutex::new(BTreeMap::new()),
            recorded: Mutex::new(Vec::new()),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "nice simulator stopped");
            }
        });
        Self { shared, addr, task }
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint's URL.
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.options.token_path)
    }

    /// The SCIM base URL (`…/scim/v2` by default).
    #[must_use]
    pub fn scim_base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.options.scim_base_path)
    }

    /// The admin API root (`…/inContactAPI/services/v24.0` by default).
    #[must_use]
    pub fn admin_api_root(&self) -> String {
        format!(
            "http://{}{}",
            self.addr, self.shared.options.admin_base_path
        )
    }

    /// The options the simulator runs with.
    #[must_use]
    pub fn options(&self) -> &NiceOptions {
        &self.shared.options
    }

    /// Issue a token without a request (not recorded).
    #[must_use]
    pub fn issue_token(&self) -> String {
        gate::issue(&self.shared)
    }

    /// Make every issued token expired now (the next call with one answers 401).
    pub fn expire_tokens(&self) {
        let now = std::time::Instant::now();
        for expiry in self.shared.tokens().values_mut() {
            *expiry = now;
        }
    }

    // ----- seeding -----

    /// Seed a skill; returns its id.
    pub fn seed_skill(&self, name: &str) -> u64 {
        let mut unit = self.shared.unit();
        let id = unit.next_skill_id;
        unit.next_skill_id += 1;
        unit.skills.push(Skill {
            id,
            name: name.into(),
        });
        id
    }

    /// Seed a role.
    pub fn seed_role(&self, name: &str) {
        self.shared.unit().roles.push(name.into());
    }

    /// Delete a role (deleting the Agent role makes SCIM creation fail).
    pub fn delete_role(&self, name: &str) {
        self.shared.unit().roles.retain(|r| r != name);
    }

    /// Seed an active user (given and family names from the userName); returns its agent id.
    pub fn seed_user(&self, user_name: &str) -> u64 {
        let mut unit = self.shared.unit();
        let agent_id = unit.next_agent_id;
        unit.next_agent_id += 1;
        let role = self.shared.options.agent_role_name.clone();
        unit.users.push(SimUser {
            id: uuid::Uuid::new_v4().to_string(),
            agent_id,
            user_name: user_name.into(),
            given_name: user_name.into(),
            family_name: user_name.into(),
            middle_name: None,
            display_name: None,
            emails: vec![serde_json::json!({"value": user_name, "type": "work", "primary": true})],
            phone_numbers: Vec::new(),
            timezone: None,
            user_type: None,
            external_id: None,
            active: true,
            role,
            login_authenticator: None,
            team: None,
            skills: BTreeMap::new(),
            version: 1,
        });
        agent_id
    }

    /// Assign a skill to an agent directly (as an admin in the console would).
    pub fn seed_agent_skill(&self, agent_id: u64, skill_id: u64, proficiency: u8) {
        let mut unit = self.shared.unit();
        if let Some(u) = unit.users.iter_mut().find(|u| u.agent_id == agent_id) {
            u.skills.insert(skill_id, (proficiency, true));
        }
    }

    // ----- inspection -----

    /// Every request answered so far, in order (the token endpoint included).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded().clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.recorded().clear();
    }

    /// How many tokens were issued through the token endpoint (successful calls).
    #[must_use]
    pub fn tokens_issued(&self) -> usize {
        self.shared
            .recorded()
            .iter()
            .filter(|r| r.path == self.shared.options.token_path && r.status == 200)
            .count()
    }

    /// Every user.
    #[must_use]
    pub fn users(&self) -> Vec<SimUser> {
        self.shared.unit().users.clone()
    }

    /// The user with this userName (case-insensitive).
    #[must_use]
    pub fn user_by_user_name(&self, user_name: &str) -> Option<SimUser> {
        self.shared
            .unit()
            .users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(user_name))
            .cloned()
    }

    /// An agent's skills, sorted by name.
    #[must_use]
    pub fn skills_of(&self, agent_id: u64) -> Vec<AgentSkill> {
        let unit = self.shared.unit();
        let mut out: Vec<AgentSkill> = unit
            .agent(agent_id)
            .map(|u| {
                u.skills
                    .iter()
                    .map(|(id, (proficiency, is_active))| AgentSkill {
                        skill_id: *id,
                        skill_name: unit.skill(*id).map(|s| s.name.clone()).unwrap_or_default(),
                        proficiency: *proficiency,
                        is_active: *is_active,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.skill_name.cmp(&b.skill_name));
        out
    }
}
