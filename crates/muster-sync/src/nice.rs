//! What NICE CXone's SCIM cannot carry, through its Admin API: an agent's
//! skills with proficiency, from the contact-center entitlements Muster
//! computed (issue 12, point 3).
//!
//! The platform stage runs after a user's SCIM delivery. It authenticates
//! with an access key (`POST {token_url}` with
//! `{"accessKeyId","accessKeySecret"}` → `access_token`, cached until a
//! minute before its `expires_in`, dropped and fetched again on a 401),
//! finds the user's numeric agent id ([`AgentIdSource`]), resolves skill
//! names through `GET {api_root}/skills` (cached; a name not found is asked
//! again after [`MISS_TTL`]), and brings the agent's skills to what the
//! entitlements say with `POST`/`PUT`/`DELETE {api_root}/agents/{id}/skills`.
//!
//! # Proficiency
//! Muster scores a skill 0 to 5, higher better (Genesys' scale); CXone
//! scores 1 (best) to 20 (worst). [`convert`] maps one onto the other
//! linearly through a [`ProficiencyScale`]: Muster's 5 becomes
//! [`ProficiencyScale::best`], 0 becomes [`ProficiencyScale::worst`], and
//! values between are placed proportionally and rounded to the nearest
//! integer (halves away from zero). With the default scale (best 1, worst
//! 20): 5→1, 4→5, 3→9, 2.5→11, 2→12, 1→16, 0→20. Values outside 0..5 are
//! clamped first; a non-number counts as 0.
//!
//! # What is unverified, hence configurable
//! The admin API version (part of [`NiceConfig::api_root`]), the token URL,
//! how a SCIM user maps to an agent id ([`AgentIdSource`]), the proficiency
//! scale. The list key of `GET /agents/{id}/skills` is read as
//! `agentSkillAssignments` or `skills`, whichever is present.
//!
//! The access key secret is sent only in the token request's body; it is
//! never logged, never in an error, and [`NiceConfig`]'s `Debug` redacts it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use muster_rules::CONTACT_CENTER_URN;
use muster_targets::RateLimit;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

pub use crate::genesys::NotDelivered;
use crate::SyncError;

/// How long a skill name CXone did not know is remembered as missing.
pub const MISS_TTL: Duration = Duration::from_secs(30);

/// How long before its stated expiry a token is replaced.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The largest page asked of `GET /skills`.
const SKILL_PAGE: usize = 1000;

/// At most this many pages of skills are read (a bound on the loop).
const MAX_SKILL_PAGES: usize = 100;

/// The target scale of [`convert`]: which CXone proficiency Muster's best (5)
/// and worst (0) become. CXone's own scale is 1 (best) to 20 (worst), the
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProficiencyScale {
    /// What Muster's 5 (best) becomes (default 1).
    pub best: u8,
    /// What Muster's 0 (worst) becomes (default 20).
    pub worst: u8,
}

impl Default for ProficiencyScale {
    fn default() -> Self {
        Self { best: 1, worst: 20 }
    }
}

/// Converts Muster's proficiency (0 to 5, higher better) to CXone's scale:
/// linear, 5 → `scale.best`, 0 → `scale.worst`, rounded to the nearest
/// integer (halves away from zero). Out-of-range values are clamped to 0..5;
/// NaN counts as 0.
#[must_use]
pub fn convert(scale: ProficiencyScale, muster_proficiency: f64) -> u8 {
    let m = if muster_proficiency.is_nan() {
        0.0
    } else {
        muster_proficiency.clamp(0.0, 5.0)
    };
    let best = f64::from(scale.best);
    let worst = f64::from(scale.worst);
    let value = (worst + (best - worst) * (m / 5.0)).round();
    let (low, high) = if scale.best <= scale.worst {
        (scale.best, scale.worst)
    } else {
        (scale.worst, scale.best)
    };
    // Clamped between two u8 values and rounded, so the cast is exact.
    value.clamp(f64::from(low), f64::from(high)) as u8
}

/// How the platform stage finds a SCIM user's numeric Admin-API agent id.
/// NICE does not document the link, so it is configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentIdSource {
    /// An attribute of the user as CXone's SCIM returned it: a SCIM path,
    /// either an extension URN and the attribute after its last `:`
    /// (`urn:…:User:agentId`) or a top-level attribute (`agentId`). The
    /// value may be a number or a string of digits.
    ScimAttribute(String),
    /// The SCIM `id` itself is the agent id.
    ScimId,
    /// `GET {api_root}/agents?searchString={userName}`, taking the agent
    /// whose `userName` equals the SCIM user's (case-insensitively).
    SearchByUserName,
}

impl Default for AgentIdSource {
    fn default() -> Self {
        AgentIdSource::ScimAttribute(
            "urn:ietf:params:scim:schemas:extension:nice:2.0:User:agentId".into(),
        )
    }
}

/// How to reach a CXone business unit's Admin API.
#[derive(Clone)]
pub struct NiceConfig {
    /// The admin API base, `{baseUri}services/v{N}.0`, for example
    /// `https://api-na1.niceincontact.com/inContactAPI/services/v24.0`
    /// (no trailing slash needed).
    pub api_root: String,
    /// The access-key token endpoint, for example
    /// `https://na1.nice-incontact.com/authentication/v1/token/access-key`.
    pub token_url: String,
    /// The access key id.
    pub access_key_id: String,
    /// The access key secret (never logged; redacted by `Debug`).
    pub access_key_secret: String,
    /// The proficiency conversion (default 1 best, 20 worst).
    pub proficiency: ProficiencyScale,
    /// How the agent id is found (default: the attribute
    /// `urn:ietf:params:scim:schemas:extension:nice:2.0:User:agentId`).
    pub agent_id: AgentIdSource,
    /// A token bucket for the Admin API calls (token requests included).
    /// CXone publishes no Admin API limits, so `None` (no limit of Muster's
    /// own) is allowed; [`NicePlatform::with_limiter`] shares the SCIM
    /// client's bucket instead.
    pub rate_limit: Option<RateLimit>,
}

impl fmt::Debug for NiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NiceConfig")
            .field("api_root", &self.api_root)
            .field("token_url", &self.token_url)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("proficiency", &self.proficiency)
            .field("agent_id", &self.agent_id)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// A cached access token and when to stop using it.
type CachedToken = (String, Instant);

/// Skill name (lower case) → id, and when the list was read.
#[derive(Default)]
struct SkillCache {
    by_name: HashMap<String, u64>,
    read_at: Option<Instant>,
}

/// The NICE CXone platform stage: sets agents' skills through the Admin
/// API. Holds a token cache and a skill-name cache; share one per target.
pub struct NicePlatform {
    config: NiceConfig,
    api_root: String,
    token: Mutex<Option<CachedToken>>,
    skills: Mutex<SkillCache>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl fmt::Debug for NicePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NicePlatform")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One answer from CXone.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// `STATUS: description` for messages.
    fn summary(&self) -> String {
        let detail = ["error_description", "message", "detail", "error"]
            .iter()
            .find_map(|k| self.body.get(*k).and_then(Value::as_str))
            .unwrap_or_default();
        if detail.is_empty() {
            self.status.to_string()
        } else {
            format!("{}: {detail}", self.status)
        }
    }
}

/// A skill as delivered: id, name, CXone proficiency.
type SkillState = BTreeMap<u64, (String, u8)>;

impl NicePlatform {
    /// A platform stage for this configuration; refuses unusable URLs and an
    /// empty access key.
    pub fn new(config: NiceConfig) -> Result<Self, SyncError> {
        for (what, url) in [
            ("api_root", &config.api_root),
            ("token_url", &config.token_url),
        ] {
            let parsed = url::Url::parse(url)
                .map_err(|e| SyncError::Config(format!("NICE CXone {what} '{url}': {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SyncError::Config(format!(
                    "NICE CXone {what} '{url}' must be http or https"
                )));
            }
        }
        if config.access_key_id.is_empty() || config.access_key_secret.is_empty() {
            return Err(SyncError::Config(
                "NICE CXone needs an access key id and secret".into(),
            ));
        }
        if let AgentIdSource::ScimAttribute(path) = &config.agent_id {
            if path.is_empty() {
                return Err(SyncError::Config(
                    "NICE CXone agent id attribute must not be empty".into(),
                ));
            }
        }
        let api_root = config.api_root.trim_end_matches('/').to_owned();
        let limiter = config
            .rate_limit
            .map(|rate| Arc::new(crate::client::limiter(rate)));
        Ok(Self {
            config,
            api_root,
            token: Mutex::new(None),
            skills: Mutex::new(SkillCache::default()),
            limiter,
        })
    }

    /// Uses this token bucket for every call (for example the one the
    /// target's SCIM client uses, so SCIM and Admin API calls share one
    /// budget), in place of [`NiceConfig::rate_limit`].
    #[must_use]
    pub fn with_limiter(mut self, limiter: Arc<DefaultDirectRateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Waits for the token bucket, if there is one.
    async fn wait_turn(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &NiceConfig {
        &self.config
    }

    /// A live access token: the cached one, or a new one.
    async fn token(&self, http: &reqwest::Client) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let body = json!({
            "accessKeyId": self.config.access_key_id,
            "accessKeySecret": self.config.access_key_secret,
        });
        self.wait_turn().await;
        let response = http
            .post(&self.config.token_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("NICE CXone token request failed: {}", e.without_url()))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let answer = Answer {
                status,
                body: answer,
            };
            return Err(format!(
                "NICE CXone refused the access key {}: {}",
                self.config.access_key_id,
                answer.summary()
            ));
        }
        let Some(token) = answer.get("access_token").and_then(Value::as_str) else {
            return Err("NICE CXone's token answer has no access_token".into());
        };
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .map_or(Duration::from_secs(3600), Duration::from_secs);
        let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(lifetime / 2);
        *cached = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    /// One authenticated call; on a 401 the token is dropped and the call
    /// made once more with a new one. `Err` is a transport failure.
    async fn call(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        for attempt in 0..2 {
            let token = self.token(http).await?;
            let mut request = http
                .request(method.clone(), url)
                .bearer_auth(&token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            self.wait_turn().await;
            let response = request
                .send()
                .await
                .map_err(|e| format!("NICE CXone {method} {url} failed: {}", e.without_url()))?;
            let status = response.status();
            let body = response.json().await.unwrap_or(Value::Null);
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                let mut cached = self.token.lock().await;
                if cached.as_ref().is_some_and(|(t, _)| *t == token) {
                    *cached = None;
                }
                continue;
            }
            return Ok(Answer { status, body });
        }
        Err(format!("NICE CXone {method} {url}: 401 Unauthorized"))
    }

    /// The agent id of a SCIM user.
    async fn agent_id(&self, http: &reqwest::Client, scim_user: &Value) -> Result<u64, String> {
        let number = |v: &Value| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse::<u64>().ok()))
        };
        match &self.config.agent_id {
            AgentIdSource::ScimId => scim_user
                .get("id")
                .and_then(number)
                .ok_or_else(|| "the CXone SCIM user's id is not a numeric agent id".to_owned()),
            AgentIdSource::ScimAttribute(path) => {
                let found = match path.rsplit_once(':') {
                    Some((urn, attr)) => scim_user
                        .as_object()
                        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(urn)))
                        .and_then(|(_, ext)| ext.as_object())
                        .and_then(|ext| ext.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)))
                        .map(|(_, v)| v),
                    None => scim_user
                        .as_object()
                        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(path)))
                        .map(|(_, v)| v),
                };
                found
                    .and_then(number)
                    .ok_or_else(|| format!("the CXone SCIM user has no agent id at '{path}'"))
            }
            AgentIdSource::SearchByUserName => {
                let Some(user_name) = scim_user.get("userName").and_then(Value::as_str) else {
                    return Err("the CXone SCIM user has no userName".into());
                };
                let url = format!(
                    "{}/agents?searchString={}",
                    self.api_root,
                    encode(user_name)
                );
                let answer = self.call(http, Method::GET, &url, None).await?;
                if !answer.ok() {
                    return Err(format!("searching agent {user_name}: {}", answer.summary()));
                }
                answer
                    .body
                    .get("agents")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| {
                        a.get("userName")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
                    })
                    .and_then(|a| a.get("agentId"))
                    .and_then(number)
                    .ok_or_else(|| format!("NICE CXone has no agent with userName {user_name}"))
            }
        }
    }

    /// The id of a skill by name (case-insensitive); `Ok(None)` when CXone
    /// has none of that name. The list is read when first needed and again
    /// when a name is missing and the list is older than [`MISS_TTL`].
    async fn skill_id(&self, http: &reqwest::Client, name: &str) -> Result<Option<u64>, String> {
        let key = name.to_lowercase();
        let mut cache = self.skills.lock().await;
        if let Some(id) = cache.by_name.get(&key) {
            return Ok(Some(*id));
        }
        if cache.read_at.is_some_and(|at| at.elapsed() < MISS_TTL) {
            return Ok(None);
        }
        let mut by_name = HashMap::new();
        for page in 0..MAX_SKILL_PAGES {
            let url = format!(
                "{}/skills?skip={}&top={SKILL_PAGE}",
                self.api_root,
                page * SKILL_PAGE
            );
            let answer = self.call(http, Method::GET, &url, None).await?;
            if !answer.ok() {
                return Err(format!("listing skills: {}", answer.summary()));
            }
            let items = answer
                .body
                .get("skills")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for skill in &items {
                if let (Some(id), Some(found)) = (
                    skill.get("skillId").and_then(Value::as_u64),
                    skill.get("skillName").and_then(Value::as_str),
                ) {
                    by_name.insert(found.to_lowercase(), id);
                }
            }
            let total = answer
                .body
                .get("totalRecords")
                .and_then(Value::as_u64)
                .and_then(|t| usize::try_from(t).ok());
            let seen = page * SKILL_PAGE + items.len();
            if items.len() < SKILL_PAGE || total.is_some_and(|t| seen >= t) {
                break;
            }
        }
        cache.by_name = by_name;
        cache.read_at = Some(Instant::now());
        Ok(cache.by_name.get(&key).copied())
    }

    /// The agent's skills as CXone holds them now.
    async fn read_skills(&self, http: &reqwest::Client, agent: u64) -> Result<SkillState, String> {
        let url = format!("{}/agents/{agent}/skills", self.api_root);
        let answer = self.call(http, Method::GET, &url, None).await?;
        if !answer.ok() {
            return Err(format!(
                "reading agent {agent}'s skills: {}",
                answer.summary()
            ));
        }
        let list = answer
            .body
            .get("agentSkillAssignments")
            .or_else(|| answer.body.get("skills"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|item| {
                let id = item.get("skillId").and_then(Value::as_u64)?;
                let name = item
                    .get("skillName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let proficiency = item
                    .get("proficiency")
                    .and_then(Value::as_u64)
                    .and_then(|p| u8::try_from(p).ok())
                    .unwrap_or(0);
                Some((id, (name, proficiency)))
            })
            .collect())
    }

    /// Sets an agent's skills from the user's computed entitlements
    /// (`user[CONTACT_CENTER_URN]["skills"] = [{name, proficiency 0..5}]`),
    /// from `before` (the state this function returned last time for this
    /// user; `None` = unknown: the agent's skills are read) to now.
    ///
    /// `scim_user` is the user as CXone's SCIM returned it, for the agent
    /// id ([`AgentIdSource`]). Every skill on the agent is Muster's: a skill
    /// not in the entitlements is removed. Returns the new delivered state
    /// (`{"agentId": n, "skills": [{"skillId", "name", "proficiency"}]}`, to
    /// pass as `before` next time) and what was not delivered (skill names
    /// CXone does not know); `Err` when a call failed in a way retrying later
    /// may fix (transport, 429, 5xx), or the agent id cannot be found.
    pub async fn deliver_skills(
        &self,
        http: &reqwest::Client,
        scim_user: &Value,
        user: &Value,
        before: Option<&Value>,
    ) -> Result<(Value, Vec<NotDelivered>), String> {
        let agent = self.agent_id(http, scim_user).await?;
        let mut missing = Vec::new();
        let mut desired: SkillState = BTreeMap::new();
        for (name, proficiency) in wanted_skills(user) {
            match self.skill_id(http, &name).await? {
                Some(id) => {
                    desired.insert(id, (name, convert(self.config.proficiency, proficiency)));
                }
                None => missing.push(NotDelivered {
                    what: format!("skill {name}"),
                    reason: format!("NICE CXone has no skill named '{name}'"),
                }),
            }
        }
        let known = before.and_then(|b| parse_state(b, agent));
        let from_record = known.is_some();
        let current = match known {
            Some(state) => state,
            None => self.read_skills(http, agent).await?,
        };
        match self.apply(http, agent, &current, &desired).await {
            Ok(()) => {}
            // What Muster last sent may no longer be what CXone holds (an
            // admin edited the agent): read it and try once more.
            Err(Failure::Refused(_)) if from_record => {
                let actual = self.read_skills(http, agent).await?;
                self.apply(http, agent, &actual, &desired)
                    .await
                    .map_err(Failure::into_message)?;
            }
            Err(failure) => return Err(failure.into_message()),
        }
        Ok((state_json(agent, &desired), missing))
    }

    /// The calls that bring `current` to `desired`: DELETE the removed,
    /// POST the added, PUT the changed.
    async fn apply(
        &self,
        http: &reqwest::Client,
        agent: u64,
        current: &SkillState,
        desired: &SkillState,
    ) -> Result<(), Failure> {
        let url = format!("{}/agents/{agent}/skills", self.api_root);
        let removed: Vec<Value> = current
            .keys()
            .filter(|id| !desired.contains_key(id))
            .map(|id| json!({"skillId": id}))
            .collect();
        let item = |id: &u64, p: &u8| json!({"skillId": id, "isActive": true, "proficiency": p});
        let added: Vec<Value> = desired
            .iter()
            .filter(|(id, _)| !current.contains_key(id))
            .map(|(id, (_, p))| item(id, p))
            .collect();
        let changed: Vec<Value> = desired
            .iter()
            .filter(|(id, (_, p))| current.get(id).is_some_and(|(_, was)| was != p))
            .map(|(id, (_, p))| item(id, p))
            .collect();
        for (method, items, what) in [
            (Method::DELETE, removed, "removing"),
            (Method::POST, added, "assigning"),
            (Method::PUT, changed, "changing"),
        ] {
            if items.is_empty() {
                continue;
            }
            let answer = self
                .call(http, method, &url, Some(&json!({"skills": items})))
                .await
                .map_err(Failure::Retry)?;
            if !answer.ok() {
                let message = format!("{what} agent {agent}'s skills: {}", answer.summary());
                let retryable = answer.status == StatusCode::TOO_MANY_REQUESTS
                    || answer.status.is_server_error()
                    || answer.status == StatusCode::UNAUTHORIZED;
                return Err(if retryable {
                    Failure::Retry(message)
                } else {
                    Failure::Refused(message)
                });
            }
        }
        Ok(())
    }
}

/// Why applying skills stopped.
enum Failure {
    /// Transport, 401, 429 or 5xx.
    Retry(String),
    /// Another 4xx: the request did not fit what CXone holds.
    Refused(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Retry(m) | Failure::Refused(m) => m,
        }
    }
}

/// The skills a Muster user's computed extension asks for: name →
/// proficiency 0..5 (absent: 0).
fn wanted_skills(user: &Value) -> BTreeMap<String, f64> {
    user.get(CONTACT_CENTER_URN)
        .and_then(|ext| ext.get("skills"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.get("name").and_then(Value::as_str)?;
            let proficiency = item
                .get("proficiency")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            Some((name.to_owned(), proficiency))
        })
        .collect()
}

/// The delivered state as JSON.
fn state_json(agent: u64, state: &SkillState) -> Value {
    let skills: Vec<Value> = state
        .iter()
        .map(|(id, (name, p))| json!({"skillId": id, "name": name, "proficiency": p}))
        .collect();
    json!({"agentId": agent, "skills": skills})
}

/// A delivered state read back; `None` when it is malformed or for
/// another agent (then the agent's skills are read).
fn parse_state(value: &Value, agent: u64) -> Option<SkillState> {
    if value.get("agentId").and_then(Value::as_u64) != Some(agent) {
        return None;
    }
    let mut state = BTreeMap::new();
    for item in value.get("skills")?.as_array()? {
        let id = item.get("skillId")?.as_u64()?;
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let proficiency = u8::try_from(item.get("proficiency")?.as_u64()?).ok()?;
        state.insert(id, (name, proficiency));
    }
    Some(state)
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(scale: ProficiencyScale, muster: f64, expected: u8) {
        assert_eq!(
            convert(scale, muster),
            expected,
            "convert({scale:?}, {muster})"
        );
    }

    #[test]
    fn convert_default_scale() {
        let scale = ProficiencyScale::default();
        for (muster, expected) in [
            (5.0, 1),
            (4.0, 5),
            (3.0, 9),
            (2.5, 11),
            (2.0, 12),
            (1.0, 16),
            (0.0, 20),
            (7.0, 1),
            (-1.0, 20),
            (f64::NAN, 20),
            (f64::INFINITY, 1),
        ] {
            check(scale, muster, expected);
        }
    }

    #[test]
    fn convert_other_scales() {
        for (scale, muster, expected) in [
            (ProficiencyScale { best: 1, worst: 10 }, 5.0, 1),
            (ProficiencyScale { best: 1, worst: 10 }, 0.0, 10),
            (ProficiencyScale { best: 1, worst: 10 }, 2.5, 6),
            // A scale where higher is better works the same way.
            (ProficiencyScale { best: 20, worst: 1 }, 5.0, 20),
            (ProficiencyScale { best: 20, worst: 1 }, 0.0, 1),
            (ProficiencyScale { best: 3, worst: 3 }, 4.0, 3),
        ] {
            check(scale, muster, expected);
        }
    }

    #[test]
    fn convert_is_monotonic() {
        let scale = ProficiencyScale::default();
        let mut last = u8::MAX;
        for step in 0..=50 {
            let p = convert(scale, f64::from(step) / 10.0);
            assert!(p <= last, "{p} after {last}");
            last = p;
        }
    }

    fn config() -> NiceConfig {
        NiceConfig {
            api_root: "https://api-na1.niceincontact.com/inContactAPI/services/v24.0".into(),
            token_url: "https://na1.nice-incontact.com/authentication/v1/token/access-key".into(),
            access_key_id: "key".into(),
            access_key_secret: "very-secret".into(),
            proficiency: ProficiencyScale::default(),
            agent_id: AgentIdSource::default(),
            rate_limit: None,
        }
    }

    #[test]
    fn new_checks_the_config() {
        assert!(NicePlatform::new(config()).is_ok());
        for broken in [
            NiceConfig {
                api_root: "not a url".into(),
                ..config()
            },
            NiceConfig {
                token_url: "ftp://x/".into(),
                ..config()
            },
            NiceConfig {
                access_key_secret: String::new(),
                ..config()
            },
            NiceConfig {
                agent_id: AgentIdSource::ScimAttribute(String::new()),
                ..config()
            },
        ] {
            assert!(NicePlatform::new(broken).is_err());
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("very-secret"), "{shown}");
        let platform = NicePlatform::new(config()).map(|p| format!("{p:?}"));
        assert!(platform.is_ok_and(|s| !s.contains("very-secret")));
    }

    #[test]
    fn wanted_skills_reads_the_extension() {
        let user = json!({CONTACT_CENTER_URN: {"skills": [
            {"name": "Billing", "proficiency": 4},
            {"name": "Sales"},
            {"proficiency": 3}
        ]}});
        let wanted = wanted_skills(&user);
        assert_eq!(wanted.get("Billing"), Some(&4.0));
        assert_eq!(wanted.get("Sales"), Some(&0.0));
        assert_eq!(wanted.len(), 2);
        assert!(wanted_skills(&json!({"userName": "x"})).is_empty());
    }

    #[test]
    fn state_round_trips_and_checks_the_agent() {
        let mut state = SkillState::new();
        state.insert(7, ("Billing".into(), 5));
        let value = state_json(42, &state);
        assert_eq!(parse_state(&value, 42), Some(state));
        assert_eq!(parse_state(&value, 43), None);
        assert_eq!(parse_state(&json!({"agentId": 42}), 42), None);
    }
}
