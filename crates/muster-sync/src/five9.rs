//! Five9 as a target (issue 12): users and their skills through the SOAP Admin Web Service
//! (Five9 has no SCIM), one Muster user at a time.
//!
//! # Mapping (the defaults)
//!
//! | Five9 (`userGeneralInfo`) | Muster (canonical SCIM JSON) |
//! | --- | --- |
//! | `federationId` | `externalId`, else the Muster `id` |
//! | `userName` | `userName`, **at creation only** (Five9 cannot rename: a later change is reported as not delivered) |
//! | `firstName` / `lastName` | `name.givenName` / `name.familyName` |
//! | `EMail` | the primary email, else the `work` one, else the first, else `userName` |
//! | `fullName` | `displayName`, else `name.formatted` |
//! | `active` | `active` (absent: true) |
//! | skills (`userSkill{skillName, level}`) | `urn:muster:params:scim:schemas:extension:contactcenter:2.0:User` `skills[] = {name, proficiency 0..5}`, the level converted by [`SkillLevelScale`] |
//!
//! An attribute absent in Muster is not sent, so it is never cleared at Five9.
//! New users are created with an agent role ([`Five9Config::agent_role`]) and no skills;
//! skills are then added one by one (`userSkillAdd`), so an unknown skill
//! (`SkillNotFoundFault`) is reported as not delivered instead of failing the whole user.
//! Only skills Muster delivered before (`previous`) are removed: skills an administrator
//! gave in Five9 are left alone.
//!
//! # Procedure
//!
//! `getUserInfo` by the Five9 userName (the one delivered before, else the SCIM
//! `userName`); not found (`UserNotFoundFault`): `createUser`, and `UserAlreadyExistsFault`
//! there means *match* (read it again and modify). A found user whose `federationId`
//! belongs to another Muster user is refused. Then `modifyUser` with the fields that differ
//! and the skill calls for the difference (`userSkillAdd` / `userSkillModify` /
//! `userSkillRemove`; `UserAlreadyHasSkillFault` and `UserDoesntHaveSkillFault` switch to
//! the other call). Deprovisioning (a deleted or out-of-scope user) is `modifyUser` with
//! `active=false`: never `deleteUser`.
//!
//! # Errors
//!
//! `OperationsLimitExceededFault`, `ServiceUnavailableFault`, `ServerFault`,
//! `ConcurrentModificationFault`, a `5xx` without a fault
//! detail and transport errors are [`Five9Error::Retry`] (state-based delivery: the next
//! attempt finishes the job without repeating what Five9 already has); `401`/`403` is
//! [`Five9Error::Unauthorized`]; any other fault is [`Five9Error::Refused`] with the
//! request that caused it. The password only ever travels in the `Authorization` header:
//! never logged, never in an error, redacted from `Debug`.
//!
//! Unverified, hence options: the direction and range of skill levels
//! ([`SkillLevelScale`]), whether `createUser` needs a role, how long to wait after the
//! operations limit.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use muster_rules::CONTACT_CENTER_URN;
use muster_targets::RateLimit;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SyncError;

/// The service namespace of the Admin Web Service.
pub const NAMESPACE: &str = "http://service.admin.ws.five9.com/";
/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The default wait after `OperationsLimitExceededFault` (Five9 counts per minute).
pub const LIMIT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The wait after a transport error or a `5xx`.
pub const SERVER_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How a Muster proficiency (0 to 5) becomes a Five9 skill `level`.
///
/// The default is `level = 6 − proficiency` (5 → 1, 0 → 6): Five9's samples treat level 1
/// as the highest, which no primary source confirms; [`SkillLevelScale::direct`] is the
/// other reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillLevelScale {
    /// The Five9 level of each Muster proficiency 0, 1, 2, 3, 4, 5.
    pub levels: [i64; 6],
}

impl Default for SkillLevelScale {
    fn default() -> Self {
        Self {
            levels: [6, 5, 4, 3, 2, 1],
        }
    }
}

impl SkillLevelScale {
    /// Level = proficiency, with 0 raised to 1 (for a Five9 where the highest number wins).
    #[must_use]
    pub fn direct() -> Self {
        Self {
            levels: [1, 1, 2, 3, 4, 5],
        }
    }

    /// The level of a proficiency (rounded to the nearest whole number, kept within 0..=5).
    #[must_use]
    pub fn level(&self, proficiency: f64) -> i64 {
        // NaN and anything below 0.5 is the lowest proficiency.
        let rounded = proficiency.round();
        let index = (1..=5u8).take_while(|&p| rounded >= f64::from(p)).count();
        self.levels.get(index).copied().unwrap_or(1)
    }
}

/// How to reach one Five9 domain.
#[derive(Clone)]
pub struct Five9Config {
    /// The SOAP URL, e.g. `https://api.five9.com/wsadmin/v13/AdminWebService`.
    pub endpoint: String,
    /// The administrator's user name (HTTP Basic).
    pub username: String,
    /// The administrator's password (HTTP Basic; never logged nor returned).
    pub password: String,
    /// Proficiency → level (default: `6 − proficiency`).
    pub skill_level: SkillLevelScale,
    /// Create users with an (empty) agent role (default true; whether Five9 needs one is
    /// unverified).
    pub agent_role: bool,
    /// How long to wait after `OperationsLimitExceededFault` (default 60 s).
    pub limit_retry_after: Duration,
    /// The timeout of one request (default 30 s).
    pub timeout: Duration,
}

impl Five9Config {
    /// A configuration with the defaults.
    #[must_use]
    pub fn new(endpoint: &str, username: &str, password: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            skill_level: SkillLevelScale::default(),
            agent_role: true,
            limit_retry_after: LIMIT_RETRY_AFTER,
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for Five9Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Five9Config")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("skill_level", &self.skill_level)
            .field("agent_role", &self.agent_role)
            .field("limit_retry_after", &self.limit_retry_after)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a delivery to Five9 failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Five9Error {
    /// Five9 is throttling or unavailable: deliver again after `after`.
    #[error("Five9 asks to retry after {after:?}: {reason}")]
    Retry {
        /// How long to wait.
        after: Duration,
        /// What happened (the fault, the status or the transport error).
        reason: String,
    },
    /// Five9 refused a request for this user: a dead letter.
    #[error("Five9 refused {operation}: {fault}")]
    Refused {
        /// The operation refused (`createUser`, `modifyUser`, ...).
        operation: String,
        /// The SOAP envelope sent (it never carries the password).
        request: String,
        /// The fault: its detail element and `faultstring`.
        fault: String,
    },
    /// The credentials were refused (`401`/`403`): nothing will work until they change.
    #[error("Five9 refused the credentials (HTTP {status})")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
}

/// What [`Five9Delivery::deliver_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Five9Action {
    /// The user was created.
    Created,
    /// The user existed (found by userName, or `UserAlreadyExists`) and was brought in line.
    Matched,
    /// The known user was changed.
    Updated,
    /// Nothing to send.
    Unchanged,
    /// The user was deactivated (`active=false`).
    Deactivated,
    /// No user in Muster and none delivered: nothing to do (or the Five9 user is gone).
    Absent,
}

/// One thing Five9 did not receive, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDelivered {
    /// What (`userName`, `skills[name eq "Billing"]`).
    pub attribute: String,
    /// Why.
    pub reason: String,
}

/// The result of one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Five9Outcome {
    /// What was done.
    pub action: Five9Action,
    /// What Five9 now holds of the user (a [`Five9Record`] as JSON), to store and hand back
    /// as `previous` next time; `None` when there is nothing at Five9 to remember.
    pub delivered: Option<Value>,
    /// What was not delivered, with the reasons.
    pub not_delivered: Vec<NotDelivered>,
    /// The SOAP operations called, in order.
    pub operations: Vec<String>,
}

/// What was delivered to Five9 for one user (the `previous` JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Five9Record {
    /// The Five9 userName (fixed at creation).
    pub user_name: String,
    /// The `federationId`.
    pub federation_id: String,
    /// `active`.
    pub active: bool,
    /// The skills Muster delivered: name → Five9 level.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
}

/// What Muster wants Five9 to hold.
#[derive(Debug, Clone, Default, PartialEq)]
struct Desired {
    user_name: String,
    /// `userGeneralInfo` fields (without `userName`), in WSDL order when rendered.
    general: BTreeMap<&'static str, String>,
    skills: BTreeMap<String, i64>,
}

fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cursor = value;
    for key in path {
        cursor = cursor.get(key)?;
    }
    cursor.as_str().filter(|s| !s.is_empty())
}

fn email_of(user: &Value) -> Option<String> {
    let emails = user.get("emails")?.as_array()?;
    let pick = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
        })
        .or_else(|| emails.first())?;
    text_at(pick, &["value"]).map(str::to_owned)
}

impl Desired {
    fn of(user: &Value, scale: &SkillLevelScale) -> Result<Desired, String> {
        let user_name = text_at(user, &["userName"])
            .ok_or("the user has no userName")?
            .to_owned();
        let federation_id = text_at(user, &["externalId"])
            .or_else(|| text_at(user, &["id"]))
            .ok_or("the user has neither externalId nor id")?;
        let mut general = BTreeMap::new();
        general.insert("federationId", federation_id.to_owned());
        if let Some(v) = text_at(user, &["name", "givenName"]) {
            general.insert("firstName", v.to_owned());
        }
        if let Some(v) = text_at(user, &["name", "familyName"]) {
            general.insert("lastName", v.to_owned());
        }
        general.insert("EMail", email_of(user).unwrap_or_else(|| user_name.clone()));
        if let Some(v) =
            text_at(user, &["displayName"]).or_else(|| text_at(user, &["name", "formatted"]))
        {
            general.insert("fullName", v.to_owned());
        }
        let active = user.get("active").and_then(Value::as_bool).unwrap_or(true);
        general.insert("active", active.to_string());
        let mut skills = BTreeMap::new();
        let items = user
            .get(CONTACT_CENTER_URN)
            .and_then(|e| e.get("skills"))
            .and_then(Value::as_array);
        for item in items.into_iter().flatten() {
            if let Some(name) = text_at(item, &["name"]) {
                let proficiency = item
                    .get("proficiency")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                skills.insert(name.to_owned(), scale.level(proficiency));
            }
        }
        Ok(Desired {
            user_name,
            general,
            skills,
        })
    }
}

/// What Five9 holds of a user (from `getUserInfo` / `createUser`).
#[derive(Debug, Clone, Default, PartialEq)]
struct Current {
    general: BTreeMap<String, String>,
    skills: BTreeMap<String, i64>,
}

impl Current {
    fn of(info: &xml::Element) -> Current {
        let general = info
            .child("generalInfo")
            .map(|g| {
                g.children
                    .iter()
                    .map(|c| (c.name.clone(), c.text.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let skills = info
            .children_named("skills")
            .filter_map(|s| {
                let name = s.text_of("skillName")?.to_owned();
                let level = s.text_of("level")?.trim().parse().ok()?;
                Some((name, level))
            })
            .collect();
        Current { general, skills }
    }
}

/// A SOAP fault as Five9 answered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoapFault {
    /// `faultcode` (e.g. `env:Server`).
    pub code: String,
    /// `faultstring`.
    pub message: String,
    /// The local name of the detail element (`UserAlreadyExistsFault`), if any.
    pub name: Option<String>,
    /// The detail element's children (`message`, `userName`, `skillName`, `limit`, ...).
    pub fields: BTreeMap<String, String>,
}

impl SoapFault {
    /// The fault of an envelope, if its body is a fault.
    #[must_use]
    pub fn parse(envelope: &str) -> Option<SoapFault> {
        let root = xml::parse(envelope).ok()?;
        let fault = root.child("Body")?.child("Fault")?;
        let detail = fault.child("detail").and_then(|d| d.children.first());
        Some(SoapFault {
            code: fault.text_of("faultcode").unwrap_or_default().to_owned(),
            message: fault.text_of("faultstring").unwrap_or_default().to_owned(),
            name: detail.map(|d| d.name.clone()),
            fields: detail
                .map(|d| {
                    d.children
                        .iter()
                        .map(|c| (c.name.clone(), c.text.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn is(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }
}

impl fmt::Display for SoapFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}: {}", self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

/// How one SOAP call ended, short of success.
#[derive(Debug)]
enum CallError {
    /// A fault to decide on.
    Fault {
        fault: SoapFault,
        request: String,
        operation: String,
    },
    /// Already decided.
    Fatal(Five9Error),
}

impl CallError {
    fn fault(&self) -> Option<&SoapFault> {
        match self {
            CallError::Fault { fault, .. } => Some(fault),
            CallError::Fatal(_) => None,
        }
    }

    fn into_error(self) -> Five9Error {
        match self {
            CallError::Fault {
                fault,
                request,
                operation,
            } => Five9Error::Refused {
                operation,
                request,
                fault: fault.to_string(),
            },
            CallError::Fatal(e) => e,
        }
    }
}

/// Builds `<name>escaped</name>` into `out`.
fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape_text(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// XML-escapes a value and drops the characters XML 1.0 cannot carry (control
/// characters other than tab, line feed and carriage return; U+FFFE, U+FFFF).
#[must_use]
pub fn escape_text(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect();
    quick_xml::escape::escape(allowed.as_str()).into_owned()
}

/// A SOAP 1.1 envelope calling `operation` with `inner` (already escaped XML).
#[must_use]
pub fn envelope(operation: &str, inner: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\" xmlns:ser=\"{NAMESPACE}\"><soapenv:Header/><soapenv:Body><ser:{operation}>{inner}</ser:{operation}></soapenv:Body></soapenv:Envelope>"
    )
}

/// The `userGeneralInfo` fields in the WSDL's order.
const GENERAL_ORDER: &[&str] = &[
    "active",
    "EMail",
    "federationId",
    "firstName",
    "fullName",
    "lastName",
    "userName",
];

fn general_info(tag: &str, user_name: &str, fields: &BTreeMap<&'static str, String>) -> String {
    let mut out = format!("<{tag}>");
    for name in GENERAL_ORDER {
        if *name == "userName" {
            leaf(&mut out, name, user_name);
        } else if let Some(value) = fields.get(name) {
            leaf(&mut out, name, value);
        }
    }
    out.push_str(&format!("</{tag}>"));
    out
}

fn user_skill(user_name: &str, skill: &str, level: i64) -> String {
    let mut out = String::from("<userSkill>");
    leaf(&mut out, "level", &level.to_string());
    leaf(&mut out, "skillName", skill);
    leaf(&mut out, "userName", user_name);
    out.push_str("</userSkill>");
    out
}

/// Delivers Muster users to one Five9 domain.
pub struct Five9Delivery {
    config: Five9Config,
    http: reqwest::Client,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl fmt::Debug for Five9Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Five9Delivery")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The operations called during one delivery.
#[derive(Default)]
struct Log {
    operations: Vec<String>,
    not_delivered: Vec<NotDelivered>,
}

impl Five9Delivery {
    /// A delivery for this domain, sending at most `rate` (none: unthrottled; Five9's own
    /// limit still answers `OperationsLimitExceededFault`).
    pub fn new(config: Five9Config, rate: Option<RateLimit>) -> Result<Self, SyncError> {
        let url = url::Url::parse(&config.endpoint)
            .map_err(|e| SyncError::Config(format!("the Five9 endpoint is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(SyncError::Config(
                "the Five9 endpoint must be an http(s) URL".into(),
            ));
        }
        if config.username.is_empty() {
            return Err(SyncError::Config("the Five9 username is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| SyncError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            limiter: rate.map(|r| Arc::new(crate::client::limiter(r))),
        })
    }

    /// Brings Five9 in line with one Muster user: `user` is its canonical SCIM JSON, or
    /// `None` when it was deleted or left the target's scope; `previous` is the
    /// [`Five9Outcome::delivered`] of the last delivery (`None` when nothing was). See the
    /// module docs for the mapping and the procedure.
    pub async fn deliver_user(
        &self,
        user: Option<&Value>,
        previous: Option<&Value>,
    ) -> Result<Five9Outcome, Five9Error> {
        let previous: Option<Five9Record> =
            previous.and_then(|p| serde_json::from_value(p.clone()).ok());
        let mut log = Log::default();
        let (action, delivered) = match user {
            None => self.deprovision(previous, &mut log).await?,
            Some(user) => self.provision(user, previous, &mut log).await?,
        };
        Ok(Five9Outcome {
            action,
            delivered: delivered.and_then(|r| serde_json::to_value(r).ok()),
            not_delivered: log.not_delivered,
            operations: log.operations,
        })
    }

    async fn deprovision(
        &self,
        previous: Option<Five9Record>,
        log: &mut Log,
    ) -> Result<(Five9Action, Option<Five9Record>), Five9Error> {
        let Some(mut record) = previous else {
            return Ok((Five9Action::Absent, None));
        };
        if !record.active {
            return Ok((Five9Action::Unchanged, Some(record)));
        }
        let mut fields = BTreeMap::new();
        fields.insert("active", "false".to_owned());
        let inner = general_info("userGeneralInfo", &record.user_name, &fields);
        match self.call(log, "modifyUser", &inner).await {
            Ok(_) => {
                record.active = false;
                Ok((Five9Action::Deactivated, Some(record)))
            }
            Err(e) if e.fault().is_some_and(|f| f.is("UserNotFoundFault")) => {
                Ok((Five9Action::Absent, None))
            }
            Err(e) => Err(e.into_error()),
        }
    }

    async fn provision(
        &self,
        user: &Value,
        previous: Option<Five9Record>,
        log: &mut Log,
    ) -> Result<(Five9Action, Option<Five9Record>), Five9Error> {
        let desired =
            Desired::of(user, &self.config.skill_level).map_err(|reason| Five9Error::Refused {
                operation: "map".into(),
                request: String::new(),
                fault: reason,
            })?;
        let lookup_name = previous
            .as_ref()
            .map_or(desired.user_name.as_str(), |p| p.user_name.as_str())
            .to_owned();
        let mut action = Five9Action::Unchanged;
        let (user_name, current) = match self.get_user(log, &lookup_name).await? {
            Some(current) => (lookup_name, current),
            None if lookup_name != desired.user_name => {
                // The user delivered before is gone at Five9: start again under the new name.
                match self.get_user(log, &desired.user_name).await? {
                    Some(current) => {
                        action = Five9Action::Matched;
                        (desired.user_name.clone(), current)
                    }
                    None => {
                        let (a, current) = self.create(log, &desired).await?;
                        action = a;
                        (desired.user_name.clone(), current)
                    }
                }
            }
            None => {
                let (a, current) = self.create(log, &desired).await?;
                action = a;
                (desired.user_name.clone(), current)
            }
        };
        if previous.is_none() && action == Five9Action::Unchanged {
            action = Five9Action::Matched;
        }
        if action != Five9Action::Created {
            let theirs = current
                .general
                .get("federationId")
                .filter(|f| !f.is_empty());
            let ours = desired.general.get("federationId");
            if previous.is_none() && theirs.is_some() && theirs != ours {
                return Err(Five9Error::Refused {
                    operation: "match".into(),
                    request: String::new(),
                    fault: format!(
                        "the Five9 user {user_name} has federationId {}, not this user's",
                        theirs.map_or("", String::as_str)
                    ),
                });
            }
        }
        if user_name != desired.user_name {
            log.not_delivered.push(NotDelivered {
                attribute: "userName".into(),
                reason: format!(
                    "Five9 cannot rename a user: it stays {user_name} (Muster has {})",
                    desired.user_name
                ),
            });
        }
        // General information: only the fields that differ.
        let changed: BTreeMap<&'static str, String> = desired
            .general
            .iter()
            .filter(|(k, v)| current.general.get(**k) != Some(*v))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        if !changed.is_empty() {
            let inner = general_info("userGeneralInfo", &user_name, &changed);
            self.call(log, "modifyUser", &inner)
                .await
                .map_err(CallError::into_error)?;
            if action == Five9Action::Unchanged {
                action = Five9Action::Updated;
            }
        }
        let (skills, skills_changed) = self
            .sync_skills(log, &user_name, &desired, &current, previous.as_ref())
            .await?;
        if action == Five9Action::Unchanged && skills_changed {
            action = Five9Action::Updated;
        }
        let active = desired.general.get("active").map(String::as_str) != Some("false");
        let record = Five9Record {
            user_name,
            federation_id: desired
                .general
                .get("federationId")
                .cloned()
                .unwrap_or_default(),
            active,
            skills,
        };
        Ok((action, Some(record)))
    }

    /// Adds, changes and removes skills; returns the skills delivered and whether any
    /// call changed something.
    async fn sync_skills(
        &self,
        log: &mut Log,
        user_name: &str,
        desired: &Desired,
        current: &Current,
        previous: Option<&Five9Record>,
    ) -> Result<(BTreeMap<String, i64>, bool), Five9Error> {
        let mut delivered = BTreeMap::new();
        let mut changed = false;
        for (skill, &level) in &desired.skills {
            let first = match current.skills.get(skill) {
                Some(&have) if have == level => {
                    delivered.insert(skill.clone(), level);
                    continue;
                }
                Some(_) => "userSkillModify",
                None => "userSkillAdd",
            };
            let inner = user_skill(user_name, skill, level);
            let mut result = self.call(log, first, &inner).await;
            let switch = match &result {
                Err(e) => e.fault().is_some_and(|f| {
                    f.is("UserAlreadyHasSkillFault") || f.is("UserDoesntHaveSkillFault")
                }),
                Ok(_) => false,
            };
            if switch {
                let other = if first == "userSkillAdd" {
                    "userSkillModify"
                } else {
                    "userSkillAdd"
                };
                result = self.call(log, other, &inner).await;
            }
            match result {
                Ok(_) => {
                    changed = true;
                    delivered.insert(skill.clone(), level);
                }
                Err(e) if e.fault().is_some_and(|f| f.is("SkillNotFoundFault")) => {
                    log.not_delivered.push(NotDelivered {
                        attribute: format!("skills[name eq \"{skill}\"]"),
                        reason: format!("Five9 has no skill named {skill}"),
                    });
                }
                Err(e) => return Err(e.into_error()),
            }
        }
        let managed = previous.map(|p| &p.skills);
        for skill in managed.into_iter().flat_map(BTreeMap::keys) {
            if desired.skills.contains_key(skill) || !current.skills.contains_key(skill) {
                continue;
            }
            let level = current.skills.get(skill).copied().unwrap_or(1);
            let inner = user_skill(user_name, skill, level);
            match self.call(log, "userSkillRemove", &inner).await {
                Ok(_) => changed = true,
                Err(e)
                    if e.fault().is_some_and(|f| {
                        f.is("UserDoesntHaveSkillFault") || f.is("SkillNotFoundFault")
                    }) => {}
                Err(e) => return Err(e.into_error()),
            }
        }
        Ok((delivered, changed))
    }

    async fn get_user(
        &self,
        log: &mut Log,
        user_name: &str,
    ) -> Result<Option<Current>, Five9Error> {
        let mut inner = String::new();
        leaf(&mut inner, "userName", user_name);
        match self.call(log, "getUserInfo", &inner).await {
            Ok(response) => Ok(Some(
                response
                    .child("return")
                    .map(Current::of)
                    .unwrap_or_default(),
            )),
            Err(e) if e.fault().is_some_and(|f| f.is("UserNotFoundFault")) => Ok(None),
            Err(e) => Err(e.into_error()),
        }
    }

    async fn create(
        &self,
        log: &mut Log,
        desired: &Desired,
    ) -> Result<(Five9Action, Current), Five9Error> {
        let mut inner = String::from("<userInfo>");
        inner.push_str(&general_info(
            "generalInfo",
            &desired.user_name,
            &desired.general,
        ));
        if self.config.agent_role {
            inner.push_str("<roles><agent><alwaysRecorded>false</alwaysRecorded><attachVmToEmail>false</attachVmToEmail><sendEmailOnVm>false</sendEmailOnVm></agent></roles>");
        }
        inner.push_str("</userInfo>");
        match self.call(log, "createUser", &inner).await {
            Ok(response) => Ok((
                Five9Action::Created,
                response
                    .child("return")
                    .map(Current::of)
                    .unwrap_or_default(),
            )),
            Err(e) if e.fault().is_some_and(|f| f.is("UserAlreadyExistsFault")) => {
                match self.get_user(log, &desired.user_name).await? {
                    Some(current) => Ok((Five9Action::Matched, current)),
                    None => Err(e.into_error()),
                }
            }
            Err(e) => Err(e.into_error()),
        }
    }

    /// One SOAP call: the response wrapper element, or why not.
    async fn call(
        &self,
        log: &mut Log,
        operation: &str,
        inner: &str,
    ) -> Result<xml::Element, CallError> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        log.operations.push(operation.to_owned());
        let request = envelope(operation, inner);
        let retry =
            |after: Duration, reason: String| CallError::Fatal(Five9Error::Retry { after, reason });
        let answer = self
            .http
            .post(&self.config.endpoint)
            .basic_auth(&self.config.username, Some(&self.config.password))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(request.clone())
            .send()
            .await
            .map_err(|e| {
                retry(
                    SERVER_RETRY_AFTER,
                    format!("{operation}: {}", e.without_url()),
                )
            })?;
        let status = answer.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(CallError::Fatal(Five9Error::Unauthorized {
                status: status.as_u16(),
            }));
        }
        let body = answer.text().await.map_err(|e| {
            retry(
                SERVER_RETRY_AFTER,
                format!("{operation}: {}", e.without_url()),
            )
        })?;
        if let Some(fault) = SoapFault::parse(&body) {
            tracing::debug!(operation, fault = %fault, "Five9 fault");
            if fault.is("OperationsLimitExceededFault") {
                return Err(retry(
                    self.config.limit_retry_after,
                    format!("{operation}: {fault}"),
                ));
            }
            if fault.is("ServiceUnavailableFault")
                || fault.is("ServerFault")
                || fault.is("ConcurrentModificationFault")
                || (fault.name.is_none() && fault.code.ends_with("Server"))
            {
                return Err(retry(SERVER_RETRY_AFTER, format!("{operation}: {fault}")));
            }
            return Err(CallError::Fault {
                fault,
                request,
                operation: operation.to_owned(),
            });
        }
        if status.is_server_error() {
            return Err(retry(
                SERVER_RETRY_AFTER,
                format!("{operation}: HTTP {status}"),
            ));
        }
        if !status.is_success() {
            return Err(CallError::Fatal(Five9Error::Refused {
                operation: operation.to_owned(),
                request,
                fault: format!("HTTP {status}"),
            }));
        }
        let parsed = xml::parse(&body)
            .ok()
            .and_then(|root| root.child("Body").and_then(|b| b.children.first().cloned()));
        parsed.ok_or_else(|| {
            retry(
                SERVER_RETRY_AFTER,
                format!("{operation}: the answer is not a SOAP envelope"),
            )
        })
    }
}

/// A small element tree over `quick-xml` events (local names, text, children), bounded
/// in depth; enough to read SOAP answers.
mod xml {
    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    const MAX_DEPTH: usize = 32;

    /// One element.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Element {
        pub name: String,
        pub text: String,
        pub children: Vec<Element>,
    }

    impl Element {
        pub fn child(&self, name: &str) -> Option<&Element> {
            self.children.iter().find(|c| c.name == name)
        }

        pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
            self.children.iter().filter(move |c| c.name == name)
        }

        pub fn text_of(&self, name: &str) -> Option<&str> {
            self.child(name).map(|c| c.text.as_str())
        }
    }

    fn local(name: &[u8]) -> String {
        String::from_utf8_lossy(name).into_owned()
    }

    /// The document element.
    pub fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Element> = vec![Element::default()];
        loop {
            match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => {
                    if stack.len() > MAX_DEPTH {
                        return Err("the document is nested too deeply".into());
                    }
                    stack.push(Element {
                        name: local(e.local_name().as_ref()),
                        ..Element::default()
                    });
                }
                Event::Empty(e) => {
                    let element = Element {
                        name: local(e.local_name().as_ref()),
                        ..Element::default()
                    };
                    if let Some(top) = stack.last_mut() {
                        top.children.push(element);
                    }
                }
                Event::End(_) => {
                    let done = stack.pop().ok_or("unbalanced end tag")?;
                    let parent = stack.last_mut().ok_or("unbalanced end tag")?;
                    parent.children.push(done);
                }
                Event::Text(t) => {
                    let text = t
                        .xml_content(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| e.to_string())?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::CData(c) => {
                    let text = c.decode().map_err(|e| e.to_string())?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(ch) => ch.to_string(),
                        None => {
                            let name = r.decode().map_err(|e| e.to_string())?;
                            resolve_predefined_entity(&name)
                                .ok_or_else(|| format!("unknown entity &{name};"))?
                                .to_owned()
                        }
                    };
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&resolved);
                    }
                }
                Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
                Event::Eof => break,
                _ => {}
            }
        }
        match stack.pop() {
            Some(root) if stack.is_empty() && root.children.len() == 1 => {
                root.children.into_iter().next().ok_or_else(String::new)
            }
            _ => Err("expected one document element".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn check_escape(input: &str, expected: &str) {
        assert_eq!(escape_text(input), expected, "escaping {input:?}");
    }

    #[test]
    fn escapes_values_and_drops_what_xml_cannot_carry() {
        check_escape("plain", "plain");
        check_escape("a<b>&\"c'", "a&lt;b&gt;&amp;&quot;c&apos;");
        check_escape("x\u{0}y\u{1b}z\tw\n", "xyz\tw\n");
        check_escape(
            "</userName><password>x</password>",
            "&lt;/userName&gt;&lt;password&gt;x&lt;/password&gt;",
        );
    }

    #[test]
    fn an_envelope_round_trips_hostile_values() {
        let mut fields = BTreeMap::new();
        fields.insert("firstName", "Ada <&> \"Lovelace\"".to_owned());
        fields.insert("active", "true".to_owned());
        let inner = general_info("userGeneralInfo", "ada]]>&x@example.com", &fields);
        let text = envelope("modifyUser", &inner);
        let root = xml::parse(&text).unwrap();
        let op = root.child("Body").unwrap().child("modifyUser").unwrap();
        let info = op.child("userGeneralInfo").unwrap();
        assert_eq!(info.text_of("firstName"), Some("Ada <&> \"Lovelace\""));
        assert_eq!(info.text_of("userName"), Some("ada]]>&x@example.com"));
        let names: Vec<_> = info.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["active", "firstName", "userName"], "WSDL order");
    }

    fn check_fault(body: &str, name: Option<&str>, message: &str, field: Option<(&str, &str)>) {
        let fault = SoapFault::parse(body).expect("a fault");
        assert_eq!(fault.name.as_deref(), name, "{body}");
        assert_eq!(fault.message, message);
        if let Some((k, v)) = field {
            assert_eq!(fault.fields.get(k).map(String::as_str), Some(v));
        }
    }

    #[test]
    fn parses_faults() {
        check_fault(
            r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault xmlns:ns4="http://www.w3.org/2003/05/soap-envelope"><faultcode>S:Server</faultcode><faultstring>User &quot;a&amp;b&quot; already exists</faultstring><detail><ns2:UserAlreadyExistsFault xmlns:ns2="http://service.admin.ws.five9.com/"><message>User "a&amp;b" already exists</message><userName>a&amp;b</userName></ns2:UserAlreadyExistsFault></detail></S:Fault></S:Body></S:Envelope>"#,
            Some("UserAlreadyExistsFault"),
            "User \"a&b\" already exists",
            Some(("userName", "a&b")),
        );
        check_fault(
            "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><env:Fault><faultcode>env:Server</faultcode><faultstring>limit</faultstring><detail><ns2:OperationsLimitExceededFault xmlns:ns2=\"x\"><limit>5</limit><message>limit</message><operationType>Modify</operationType></ns2:OperationsLimitExceededFault></detail></env:Fault></env:Body></env:Envelope>",
            Some("OperationsLimitExceededFault"),
            "limit",
            Some(("operationType", "Modify")),
        );
        check_fault(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring><![CDATA[bad <thing>]]></faultstring></soap:Fault></soap:Body></soap:Envelope>",
            None,
            "bad <thing>",
            None,
        );
        assert!(SoapFault::parse("<a><Body><getUserInfoResponse/></Body></a>").is_none());
        assert!(SoapFault::parse("not xml <").is_none());
        assert!(SoapFault::parse("<!DOCTYPE x [<!ENTITY a \"b\">]><x/>").is_none());
    }

    #[test]
    fn levels_follow_the_scale() {
        let scale = SkillLevelScale::default();
        for (p, level) in [(5.0, 1), (4.0, 2), (0.0, 6), (2.6, 3), (9.0, 1), (-1.0, 6)] {
            assert_eq!(scale.level(p), level, "proficiency {p}");
        }
        assert_eq!(SkillLevelScale::direct().level(5.0), 5);
        assert_eq!(SkillLevelScale::direct().level(0.0), 1);
    }

    #[test]
    fn maps_a_user() {
        let user = json!({
            "id": "u1", "externalId": "E-1", "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": "Ada L.", "active": false,
            "emails": [{"value": "home@example.com", "type": "home"}, {"value": "work@example.com", "type": "work"}],
            CONTACT_CENTER_URN: {"skills": [{"name": "Sales", "proficiency": 4, "rule": "r"}]}
        });
        let d = Desired::of(&user, &SkillLevelScale::default()).unwrap();
        assert_eq!(d.user_name, "ada@example.com");
        assert_eq!(d.general.get("federationId").unwrap(), "E-1");
        assert_eq!(d.general.get("EMail").unwrap(), "work@example.com");
        assert_eq!(d.general.get("fullName").unwrap(), "Ada L.");
        assert_eq!(d.general.get("active").unwrap(), "false");
        assert_eq!(d.skills.get("Sales"), Some(&2));
        let bare = Desired::of(
            &json!({"id": "u2", "userName": "bob"}),
            &SkillLevelScale::default(),
        )
        .unwrap();
        assert_eq!(bare.general.get("federationId").unwrap(), "u2");
        assert_eq!(bare.general.get("EMail").unwrap(), "bob");
        assert!(!bare.general.contains_key("firstName"));
    }

    #[test]
    fn the_password_stays_out_of_debug() {
        let config = Five9Config::new(
            "https://api.five9.com/wsadmin/v13/AdminWebService",
            "admin",
            "hunter2",
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        let delivery = Five9Delivery::new(config, None).unwrap();
        assert!(!format!("{delivery:?}").contains("hunter2"));
        assert!(Five9Delivery::new(Five9Config::new("not a url", "a", "b"), None).is_err());
    }
}
