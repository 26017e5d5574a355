//! A Five9 simulator: the user and skill operations of the SOAP Admin Web Service
//! (`/wsadmin/v13/AdminWebService`, namespace `http://service.admin.ws.five9.com/`), with
//! HTTP Basic authentication, SOAP 1.1 faults named as in the WSDL, an operations limit
//! and a recorder.
//!
//! Sources (`../shared/reference/contact-center-apis.md`, section 4): the Admin Web Service
//! WSDL as published in `sqone2/PSFive9Admin` (`Public/AdminWebService/Five9Admin.wsdl`) for
//! operation, type, element and fault names (`createUser(userInfo)` →
//! `createUserResponse/return`, `modifyUser(userGeneralInfo, rolesToSet, rolesToRemove)`,
//! `getUserInfo(userName)`, `getUsersInfo(userNamePattern)`, `userSkillAdd|Modify|Remove
//! (userSkill{id, level, skillName, userName})`; faults `UserAlreadyExistsFault{message,
//! userName}`, `UserNotFoundFault{message, userName}`, `SkillNotFoundFault{message,
//! skillName}`, `UserAlreadyHasSkillFault` and `UserDoesntHaveSkillFault{message, skillName,
//! userName}`, `OperationsLimitExceededFault{limit, message, operationType}`,
//! `MissedArgumentFault{message}`, `InvalidRegexpPatternFault{message, pattern}`).
//!
//! What it simulates:
//! - `POST /wsadmin/v13/AdminWebService` with a SOAP 1.1 envelope, HTTP Basic
//!   `username:password` (otherwise 401 with `WWW-Authenticate: Basic`, no envelope). The
//!   operation is the body's first element (document/literal wrapped; `SOAPAction` is `""`
//!   in the WSDL and ignored).
//! - Answers: 200 `text/xml` with `<ns2:{operation}Response>`; faults are HTTP 500 with
//!   `<env:Fault><faultcode>env:Server</faultcode><faultstring>{message}</faultstring>
//!   <detail><ns2:{Name}Fault>…` (a malformed envelope or an unknown operation: 500 with
//!   `env:Client` and no detail).
//! - Users keyed by `userName` (read-only after creation: `modifyUser` identifies the user
//!   by it and cannot rename), with a server-assigned `id`, any `federationId`, `active`;
//!   `modifyUser` changes only the fields it names; `password` is never returned. Skills
//!   are seeded by name; a user's skills are `{skillName → level}`.
//! - The operations limit: above [`Five9Options::operations_limit`] calls in a window
//!   (60 s by default) every call answers `OperationsLimitExceededFault` (`operationType`
//!   `Query` for `get*`, `Modify` otherwise); the fault counts as a call too.
//!
//! Unverified facts are options: the limit and its window (one counter for every
//! operation type here; Five9 counts per type, with numbers no source gives), whether
//! `getUsersInfo`'s pattern must match the whole userName (default: a search, like
//! `Regex::is_match`), whether `createUser` needs a role (default: no). Also unverified
//! but fixed: the fault code `env:Server`, the `message` wording, that `createUser` with an
//! unknown skill creates nothing.
//!
//! Left out: roles' contents, agent groups, user profiles, canned reports, `deleteUser`
//! (answered as an unknown operation, so a test sees it was called), passwords' rules.

mod xml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;

use xml::{leaf, Element};

/// The service namespace.
pub const NAMESPACE: &str = "http://service.admin.ws.five9.com/";
/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The path of the service.
pub const PATH: &str = "/wsadmin/v13/AdminWebService";

/// The `userGeneralInfo` elements in the WSDL's sequence order (`mediaTypeConfig` left out).
pub const GENERAL_FIELDS: &[&str] = &[
    "active",
    "canChangePassword",
    "EMail",
    "extension",
    "federationId",
    "firstName",
    "fullName",
    "IEXScheduled",
    "id",
    "lastName",
    "locale",
    "mustChangePassword",
    "osLogin",
    "password",
    "phoneNumber",
    "startDate",
    "unifiedCommunicationId",
    "userName",
    "userProfileName",
];

/// Simulator options. `Default` gives the documented contract.
#[derive(Clone, Debug)]
pub struct Five9Options {
    /// HTTP Basic user name accepted.
    pub username: String,
    /// HTTP Basic password accepted.
    pub password: String,
    /// *Unverified*: calls allowed per window; `None` (the default) for no limit.
    pub operations_limit: Option<u32>,
    /// The window of the operations limit (default 60 s, a fixed window from its first call).
    pub operations_window: Duration,
    /// *Unverified*: `getUsersInfo`'s `userNamePattern` must match the whole userName
    /// (default false: a search).
    pub users_pattern_full_match: bool,
    /// *Unverified*: `createUser` without `roles` answers `UserHasNoRequiredRoleFault`
    /// (default false).
    pub require_role: bool,
}

impl Default for Five9Options {
    fn default() -> Self {
        Self {
            username: "admin@example.com".into(),
            password: "five9-secret".into(),
            operations_limit: None,
            operations_window: Duration::from_secs(60),
            users_pattern_full_match: false,
            require_role: false,
        }
    }
}

/// A user as the simulator holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimUser {
    /// `userGeneralInfo` fields by element name (text as sent; `id` and `userName` set by
    /// the simulator at creation).
    pub general: BTreeMap<String, String>,
    /// Whether `roles` carried an `agent` role at creation.
    pub agent: bool,
    /// Skill name → level.
    pub skills: BTreeMap<String, i64>,
}

impl SimUser {
    /// A field of `userGeneralInfo`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.general.get(name).map(String::as_str)
    }

    /// `userName`.
    #[must_use]
    pub fn user_name(&self) -> &str {
        self.field("userName").unwrap_or_default()
    }

    /// `active` (a user created without it is active).
    #[must_use]
    pub fn active(&self) -> bool {
        self.field("active") != Some("false")
    }

    /// `federationId`.
    #[must_use]
    pub fn federation_id(&self) -> Option<&str> {
        self.field("federationId")
    }
}

/// A pre-existing user to seed (see [`Five9Sim::seed_user`]).
#[derive(Clone, Debug)]
pub struct SeedUser {
    /// The user.
    pub user: SimUser,
}

impl SeedUser {
    /// An active user with this userName.
    #[must_use]
    pub fn new(user_name: &str) -> Self {
        let mut general = BTreeMap::new();
        general.insert("userName".to_owned(), user_name.to_owned());
        general.insert("active".to_owned(), "true".to_owned());
        Self {
            user: SimUser {
                general,
                agent: true,
                skills: BTreeMap::new(),
            },
        }
    }

    /// With this `userGeneralInfo` field.
    #[must_use]
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.user.general.insert(name.to_owned(), value.to_owned());
        self
    }

    /// With this skill at this level.
    #[must_use]
    pub fn skill(mut self, name: &str, level: i64) -> Self {
        self.user.skills.insert(name.to_owned(), level);
        self
    }
}

/// One request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The operation (the body's first element), empty when the envelope did not parse.
    pub operation: String,
    /// The raw body.
    pub body: String,
    /// Whether the Basic credentials were right.
    pub authenticated: bool,
    /// HTTP status answered.
    pub status: u16,
    /// The fault element answered (`UserAlreadyExistsFault`, …), if any.
    pub fault: Option<String>,
    /// When it arrived.
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct Domain {
    users: BTreeMap<String, SimUser>,
    skills: Vec<String>,
    hidden: std::collections::BTreeSet<String>,
    reveal_on_conflict: std::collections::BTreeSet<String>,
    next_id: i64,
    window: Option<(Instant, u32)>,
}

#[derive(Debug)]
struct Shared {
    options: Five9Options,
    domain: Mutex<Domain>,
    recorded: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    fn domain(&self) -> MutexGuard<'_, Domain> {
        self.domain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn recorded(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Five9Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Five9Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Five9Sim {
    /// Start a simulator on `127.0.0.1:0`. Needs a Tokio runtime.
    ///
    /// # Panics
    /// If the port cannot be bound (test support: fail loudly).
    pub async fn start(options: Five9Options) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            options,
            domain: Mutex::new(Domain {
                next_id: 1000,
                ..Domain::default()
            }),
            recorded: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(PATH, post(handle))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "five9 simulator stopped");
            }
        });
        Self { shared, addr, task }
    }

    /// `http://127.0.0.1:PORT/wsadmin/v13/AdminWebService`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// The options the simulator runs with.
    #[must_use]
    pub fn options(&self) -> &Five9Options {
        &self.shared.options
    }

    /// Seed a skill by name.
    pub fn seed_skill(&self, name: &str) {
        let mut domain = self.shared.domain();
        if !domain.skills.iter().any(|s| s == name) {
            domain.skills.push(name.to_owned());
        }
    }

    /// Seed a user (its `id` is assigned here); skills it names are seeded too.
    pub fn seed_user(&self, seed: SeedUser) {
        let mut domain = self.shared.domain();
        let mut user = seed.user;
        domain.next_id += 1;
        user.general
            .insert("id".to_owned(), domain.next_id.to_string());
        for skill in user.skills.keys() {
            if !domain.skills.contains(skill) {
                domain.skills.push(skill.clone());
            }
        }
        domain.users.insert(user.user_name().to_owned(), user);
    }

    /// The user with this userName.
    #[must_use]
    pub fn user(&self, user_name: &str) -> Option<SimUser> {
        self.shared.domain().users.get(user_name).cloned()
    }

    /// Every user, by userName.
    #[must_use]
    pub fn users(&self) -> Vec<SimUser> {
        self.shared.domain().users.values().cloned().collect()
    }

    /// Every request so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded().clone()
    }

    /// The operations called so far, in order.
    #[must_use]
    pub fn operations(&self) -> Vec<String> {
        self.shared
            .recorded()
            .iter()
            .map(|r| r.operation.clone())
            .collect()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.recorded().clear();
    }

    /// Test hook: `getUserInfo` and `getUsersInfo` no longer see this user, while
    /// `createUser` still answers `UserAlreadyExistsFault` for it: the race of a user
    /// created at Five9 between a lookup and a create.
    pub fn hide_from_reads(&self, user_name: &str) {
        self.shared.domain().hidden.insert(user_name.to_owned());
    }

    /// Test hook: once `createUser` answers `UserAlreadyExistsFault` for this hidden user,
    /// reads see it again (it appeared at Five9 just after Muster's lookup).
    pub fn reveal_after_create_fault(&self, user_name: &str) {
        self.shared
            .domain()
            .reveal_on_conflict
            .insert(user_name.to_owned());
    }

    /// Start a new operations-limit window now.
    pub fn reset_operations_window(&self) {
        self.shared.domain().window = None;
    }
}

/// A SOAP fault: its detail element name and children.
struct Fault {
    code: &'static str,
    message: String,
    detail: Option<(&'static str, Vec<(&'static str, String)>)>,
}

impl Fault {
    fn new(name: &'static str, message: String, fields: Vec<(&'static str, String)>) -> Self {
        let mut all = vec![("message", message.clone())];
        all.extend(fields);
        all.sort_by_key(|(k, _)| *k);
        Fault {
            code: "env:Server",
            message,
            detail: Some((name, all)),
        }
    }

    fn client(message: String) -> Self {
        Fault {
            code: "env:Client",
            message,
            detail: None,
        }
    }

    fn user_not_found(user_name: &str) -> Self {
        Fault::new(
            "UserNotFoundFault",
            format!("User \"{user_name}\" not found"),
            vec![("userName", user_name.to_owned())],
        )
    }

    fn skill_not_found(skill: &str) -> Self {
        Fault::new(
            "SkillNotFoundFault",
            format!("Skill \"{skill}\" not found"),
            vec![("skillName", skill.to_owned())],
        )
    }

    fn missed(what: &str) -> Self {
        Fault::new(
            "MissedArgumentFault",
            format!("Missed argument: {what}"),
            vec![],
        )
    }

    fn render(&self) -> String {
        let mut out = format!("<env:Envelope xmlns:env=\"{SOAP_ENV}\"><env:Body><env:Fault>");
        leaf(&mut out, "faultcode", self.code);
        leaf(&mut out, "faultstring", &self.message);
        if let Some((name, fields)) = &self.detail {
            out.push_str(&format!("<detail><ns2:{name} xmlns:ns2=\"{NAMESPACE}\">"));
            for (k, v) in fields {
                leaf(&mut out, k, v);
            }
            out.push_str(&format!("</ns2:{name}></detail>"));
        }
        out.push_str("</env:Fault></env:Body></env:Envelope>");
        out
    }

    fn element(&self) -> Option<String> {
        self.detail.as_ref().map(|(n, _)| (*n).to_owned())
    }
}

fn response(operation: &str, inner: &str) -> String {
    format!(
        "<env:Envelope xmlns:env=\"{SOAP_ENV}\"><env:Body><ns2:{operation}Response xmlns:ns2=\"{NAMESPACE}\">{inner}</ns2:{operation}Response></env:Body></env:Envelope>"
    )
}

fn authenticated(options: &Five9Options, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", options.username, options.password).as_bytes()
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let ok = authenticated(&shared.options, &headers);
    let parsed = xml::parse(&text);
    let operation = parsed
        .as_ref()
        .ok()
        .and_then(|envelope| envelope.child("Body"))
        .and_then(|body| body.children.first())
        .map(|op| op.name.clone())
        .unwrap_or_default();
    let (status, fault, out) = if !ok {
        (StatusCode::UNAUTHORIZED, None, String::new())
    } else {
        let result = match &parsed {
            Err(e) => Err(Fault::client(format!("Malformed SOAP envelope: {e}"))),
            Ok(envelope) => match envelope
                .child("Body")
                .and_then(|body| body.children.first())
            {
                None => Err(Fault::client("No operation in the SOAP body".into())),
                Some(op) => dispatch(&shared, op),
            },
        };
        match result {
            Ok(inner) => (StatusCode::OK, None, response(&operation, &inner)),
            Err(fault) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                fault.element(),
                fault.render(),
            ),
        }
    };
    shared.recorded().push(RecordedRequest {
        operation,
        body: text,
        authenticated: ok,
        status: status.as_u16(),
        fault,
        at: SystemTime::now(),
    });
    if status == StatusCode::UNAUTHORIZED {
        return (
            status,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Five9\"")],
            "Unauthorized",
        )
            .into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        out,
    )
        .into_response()
}

fn dispatch(shared: &Shared, op: &Element) -> Result<String, Fault> {
    let mut domain = shared.domain();
    if let Some(limit) = shared.options.operations_limit {
        let now = Instant::now();
        let window = match domain.window {
            Some((start, count))
                if now.duration_since(start) < shared.options.operations_window =>
            {
                (start, count + 1)
            }
            _ => (now, 1),
        };
        domain.window = Some(window);
        if window.1 > limit {
            let kind = if op.name.starts_with("get") {
                "Query"
            } else {
                "Modify"
            };
            return Err(Fault::new(
                "OperationsLimitExceededFault",
                format!("{kind} operations limit ({limit}) exceeded"),
                vec![
                    ("limit", limit.to_string()),
                    ("operationType", kind.to_owned()),
                ],
            ));
        }
    }
    match op.name.as_str() {
        "createUser" => create_user(shared, &mut domain, op),
        "modifyUser" => modify_user(&mut domain, op),
        "getUserInfo" => {
            let name = op
                .text_of("userName")
                .ok_or_else(|| Fault::missed("userName"))?;
            let user = domain
                .users
                .get(name)
                .filter(|_| !domain.hidden.contains(name))
                .ok_or_else(|| Fault::user_not_found(name))?;
            Ok(user_info("return", user))
        }
        "getUsersInfo" => {
            let pattern = op.text_of("userNamePattern").unwrap_or(".*");
            let anchored;
            let source = if shared.options.users_pattern_full_match {
                anchored = format!("^(?:{pattern})$");
                anchored.as_str()
            } else {
                pattern
            };
            let regex = regex::Regex::new(source).map_err(|e| {
                Fault::new(
                    "InvalidRegexpPatternFault",
                    format!("Invalid pattern: {e}"),
                    vec![("pattern", pattern.to_owned())],
                )
            })?;
            Ok(domain
                .users
                .values()
                .filter(|u| regex.is_match(u.user_name()) && !domain.hidden.contains(u.user_name()))
                .map(|u| user_info("return", u))
                .collect())
        }
        "userSkillAdd" | "userSkillModify" | "userSkillRemove" => user_skill(&mut domain, op),
        other => Err(Fault::client(format!(
            "Cannot find dispatch method for {{{NAMESPACE}}}{other}"
        ))),
    }
}

fn user_info(tag: &str, user: &SimUser) -> String {
    let mut out = format!("<{tag}><generalInfo>");
    for field in GENERAL_FIELDS {
        if *field == "password" {
            continue;
        }
        if let Some(value) = user.general.get(*field) {
            leaf(&mut out, field, value);
        }
    }
    out.push_str("</generalInfo><roles>");
    if user.agent {
        out.push_str("<agent><alwaysRecorded>false</alwaysRecorded><attachVmToEmail>false</attachVmToEmail><sendEmailOnVm>false</sendEmailOnVm></agent>");
    }
    out.push_str("</roles>");
    for (skill, level) in &user.skills {
        out.push_str("<skills>");
        leaf(&mut out, "level", &level.to_string());
        leaf(&mut out, "skillName", skill);
        leaf(&mut out, "userName", user.user_name());
        out.push_str("</skills>");
    }
    out.push_str(&format!("</{tag}>"));
    out
}

fn general_fields(info: &Element) -> BTreeMap<String, String> {
    info.children
        .iter()
        .filter(|c| GENERAL_FIELDS.contains(&c.name.as_str()) && c.name != "id")
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect()
}

fn parse_level(skill: &Element) -> Result<i64, Fault> {
    let text = skill
        .text_of("level")
        .ok_or_else(|| Fault::missed("level"))?;
    text.trim().parse().map_err(|_| {
        Fault::new(
            "IncorrectArgumentFault",
            format!("Incorrect level \"{text}\""),
            vec![],
        )
    })
}

fn create_user(shared: &Shared, domain: &mut Domain, op: &Element) -> Result<String, Fault> {
    let info = op
        .child("userInfo")
        .ok_or_else(|| Fault::missed("userInfo"))?;
    let general = info
        .child("generalInfo")
        .ok_or_else(|| Fault::missed("generalInfo"))?;
    let mut fields = general_fields(general);
    let user_name = fields
        .get("userName")
        .filter(|n| !n.trim().is_empty())
        .cloned()
        .ok_or_else(|| Fault::missed("userName"))?;
    if domain.users.contains_key(&user_name) {
        if domain.reveal_on_conflict.remove(&user_name) {
            domain.hidden.remove(&user_name);
        }
        return Err(Fault::new(
            "UserAlreadyExistsFault",
            format!("User \"{user_name}\" already exists"),
            vec![("userName", user_name)],
        ));
    }
    let agent = info
        .child("roles")
        .is_some_and(|roles| roles.child("agent").is_some());
    if shared.options.require_role && info.child("roles").is_none_or(|r| r.children.is_empty()) {
        return Err(Fault::new(
            "UserHasNoRequiredRoleFault",
            format!("User \"{user_name}\" has no required roles"),
            vec![],
        ));
    }
    let mut skills = BTreeMap::new();
    for skill in info.children_named("skills") {
        let name = skill.text_of("skillName").unwrap_or_default();
        if !domain.skills.iter().any(|s| s == name) {
            return Err(Fault::skill_not_found(name));
        }
        skills.insert(name.to_owned(), parse_level(skill)?);
    }
    domain.next_id += 1;
    fields.insert("id".to_owned(), domain.next_id.to_string());
    fields.entry("active".to_owned()).or_insert("true".into());
    let user = SimUser {
        general: fields,
        agent,
        skills,
    };
    let out = user_info("return", &user);
    domain.users.insert(user_name, user);
    Ok(out)
}

fn modify_user(domain: &mut Domain, op: &Element) -> Result<String, Fault> {
    let general = op
        .child("userGeneralInfo")
        .ok_or_else(|| Fault::missed("userGeneralInfo"))?;
    let fields = general_fields(general);
    let user_name = fields
        .get("userName")
        .cloned()
        .ok_or_else(|| Fault::missed("userName"))?;
    let user = domain
        .users
        .get_mut(&user_name)
        .ok_or_else(|| Fault::user_not_found(&user_name))?;
    for (k, v) in fields {
        if k != "userName" {
            user.general.insert(k, v);
        }
    }
    Ok(user_info("return", user))
}

fn user_skill(domain: &mut Domain, op: &Element) -> Result<String, Fault> {
    let skill = op
        .child("userSkill")
        .ok_or_else(|| Fault::missed("userSkill"))?;
    let user_name = skill
        .text_of("userName")
        .ok_or_else(|| Fault::missed("userName"))?
        .to_owned();
    let skill_name = skill
        .text_of("skillName")
        .ok_or_else(|| Fault::missed("skillName"))?
        .to_owned();
    if !domain.users.contains_key(&user_name) {
        return Err(Fault::user_not_found(&user_name));
    }
    if !domain.skills.contains(&skill_name) {
        return Err(Fault::skill_not_found(&skill_name));
    }
    let level = if op.name == "userSkillRemove" {
        0
    } else {
        parse_level(skill)?
    };
    let user = domain
        .users
        .get_mut(&user_name)
        .ok_or_else(|| Fault::user_not_found(&user_name))?;
    let has = user.skills.contains_key(&skill_name);
    let fields = || {
        vec![
            ("skillName", skill_name.clone()),
            ("userName", user_name.clone()),
        ]
    };
    match (op.name.as_str(), has) {
        ("userSkillAdd", true) => Err(Fault::new(
            "UserAlreadyHasSkillFault",
            format!("User \"{user_name}\" already has skill \"{skill_name}\""),
            fields(),
        )),
        ("userSkillModify" | "userSkillRemove", false) => Err(Fault::new(
            "UserDoesntHaveSkillFault",
            format!("User \"{user_name}\" doesn't have skill \"{skill_name}\""),
            fields(),
        )),
        ("userSkillRemove", true) => {
            user.skills.remove(&skill_name);
            Ok(String::new())
        }
        _ => {
            user.skills.insert(skill_name.clone(), level);
            Ok(String::new())
        }
    }
}
