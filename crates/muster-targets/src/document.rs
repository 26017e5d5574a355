//! The target document an admin writes (`muster target apply FILE.json`,
//! `PUT /admin/v1/targets/{name}`), read strictly: an unknown key, a
//! malformed URL, an unknown attribute or function is refused with the
//! field and the reason.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::error::{DocumentError, Problem};

/// Longest target name.
pub const MAX_NAME_LENGTH: usize = 64;

/// Most mappings in one document.
pub const MAX_MAPPINGS: usize = 256;

/// A downstream target, as written by the admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetDocument {
    /// Unique within the tenant: letters, digits, `-` and `_`.
    pub name: String,
    /// What the target is.
    pub kind: TargetKind,
    /// The SCIM base URL (`scim` targets), e.g. `https://cc.example.com/scim/v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The Genesys Cloud region's domain (`genesys-cloud` targets), e.g.
    /// `mypurecloud.ie`: the API at `https://api.<region>`, the token
    /// endpoint at `https://login.<region>/oauth/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Overrides the API root a region gives (a proxy, a test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Overrides the login root a region gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// The directory files are written to (`csv` targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// How Muster authenticates to the target (`scim` targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Which users and groups go there.
    #[serde(default)]
    pub scope: Scope,
    /// Target attribute ← expression; empty means the kind's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<MappingSpec>,
    /// What leaving Muster (or the scope) does to a user at the target.
    #[serde(default)]
    pub deletion: Deletion,
    /// How fast Muster may call the target (each kind has a default:
    /// Genesys Cloud's documented 300 requests a minute for `genesys-cloud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// How Muster's skill proficiency (0 to 5, higher is better) becomes
    /// the platform's (`nice-cxone`: 1 best to 20 by default; `five9`: level
    /// 1 best to 6); linear, rounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_scale: Option<SkillScale>,
    /// Pauses the target when too many users would be removed at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_guard: Option<DeletionGuard>,
    /// Genesys Cloud's settings (`genesys-cloud` targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesys: Option<GenesysSettings>,
    /// Loop prevention: the names of Muster's inbound clients (tokens or
    /// OAuth clients) that the system this target writes to uses to write
    /// back into Muster. Changes made by them are never sent to this
    /// target (they came from it); the worker passes over them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_changes_from: Vec<String>,
}

/// Most client names in [`TargetDocument::skip_changes_from`].
pub const MAX_SKIPPED_CLIENTS: usize = 64;

/// How Muster spends a Genesys Cloud organisation's request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesysSettings {
    /// Give a new user's role grants in the organisation's home division
    /// as SCIM `roles` on its create, saving a grants request per user.
    /// Off by default: Genesys documents SCIM roles but not the division
    /// they land in ("probably home"); turn it on once checked in the org.
    #[serde(default)]
    pub roles_over_scim: bool,
    /// Most users in one management-unit move or license assignment
    /// request (1 to 100; Genesys documents no limit).
    #[serde(default = "default_batch_size")]
    pub batch_size: u16,
}

impl Default for GenesysSettings {
    fn default() -> Self {
        GenesysSettings {
            roles_over_scim: false,
            batch_size: default_batch_size(),
        }
    }
}

fn default_batch_size() -> u16 {
    100
}

/// The kinds of target this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Any SCIM 2.0 service provider.
    Scim,
    /// CSV files in a directory, for platforms that import files.
    Csv,
    /// Genesys Cloud: users over its SCIM, entitlements (role grants in
    /// divisions, skills, languages, management unit, licenses) over its
    /// Platform API.
    #[serde(rename = "genesys-cloud")]
    GenesysCloud,
    /// NICE CXone: users over its SCIM, agent skills (proficiency 1 best
    /// to 20) over its admin API.
    #[serde(rename = "nice-cxone")]
    NiceCxone,
    /// Five9: users and skills over its SOAP Admin Web Service (no SCIM).
    #[serde(rename = "five9")]
    Five9,
}

/// How Muster authenticates to a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    /// A long-lived bearer token.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// OAuth 2.0 client credentials (RFC 6749 section 4.4).
    #[serde(rename_all = "camelCase")]
    OauthClientCredentials {
        /// The token endpoint (for `genesys-cloud`, given by the region).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_url: Option<String>,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// Scopes to ask for, space-separated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
    /// NICE CXone's access key (`POST .../authentication/v1/token/access-key`).
    #[serde(rename_all = "camelCase")]
    AccessKey {
        /// The token endpoint.
        token_url: String,
        /// The access key id.
        access_key_id: String,
        /// The access key secret.
        access_key_secret: Secret,
    },
    /// HTTP Basic (Five9's Admin Web Service).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

/// A secret in a document: a value, a reference to an environment
/// variable, or (as stored and returned) its sealed or redacted form.
///
/// Read strictly: a string, or an object with exactly one of `env` (a
/// string), `sealed` (a string) or `redacted` (`true`); anything else is
/// refused, so no member is silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Secret {
    /// Read from this environment variable of the Muster process when
    /// used; nothing secret is stored.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Sealed with the data directory's key (how a value is stored).
    Sealed {
        /// Base64 of nonce and ciphertext.
        sealed: String,
    },
    /// What the API returns instead of a value; putting it back keeps the
    /// stored secret.
    Redacted {
        /// Always `true`.
        redacted: bool,
    },
    /// The secret itself, as an admin writes it (never stored so).
    Value(String),
}

/// What a secret may be written as, for error messages.
const SECRET_FORMS: &str = "expected the secret as a string, {\"env\": \"MUSTER_TARGET_...\"} or \
                            {\"redacted\": true} (to keep the stored one)";

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Secret::Value(text)),
            Value::Object(members) => {
                let mut members = members.into_iter();
                let (Some((key, value)), None) = (members.next(), members.next()) else {
                    return Err(D::Error::custom(format!(
                        "a secret object takes exactly one member; {SECRET_FORMS}"
                    )));
                };
                match (key.as_str(), value) {
                    ("env", Value::String(env)) => Ok(Secret::Env { env }),
                    ("sealed", Value::String(sealed)) => Ok(Secret::Sealed { sealed }),
                    ("redacted", Value::Bool(true)) => Ok(Secret::Redacted { redacted: true }),
                    (key, _) => Err(D::Error::custom(format!(
                        "a secret does not take {{\"{key}\": ...}} in that form; {SECRET_FORMS}"
                    ))),
                }
            }
            other => Err(D::Error::custom(format!(
                "a secret cannot be {}; {SECRET_FORMS}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => "an array",
                }
            ))),
        }
    }
}

/// The prefix every environment variable named by `{"env": ...}` must
/// carry, so a target document cannot send another of the process's
/// variables (`MUSTER_SECRETS_KEY`, cloud credentials) to a URL of the
/// admin's choosing.
pub const ENV_PREFIX: &str = "MUSTER_TARGET_";

/// Checks the variable name of an `{"env": ...}` secret: [`ENV_PREFIX`]
/// then upper-case letters, digits and `_`.
pub fn check_env_name(field: &str, name: &str) -> Result<(), Problem> {
    let rest = name.strip_prefix(ENV_PREFIX).unwrap_or_default();
    if !rest.is_empty()
        && name.len() <= 256
        && rest
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return Ok(());
    }
    Err(Problem::new(
        field,
        format!(
            "'{}' is not a variable a target may read: expected {ENV_PREFIX} followed by \
             upper-case letters, digits or '_' (e.g. {ENV_PREFIX}CC_TOKEN)",
            name.chars().take(80).collect::<String>()
        ),
    ))
}

impl Secret {
    /// The form the API returns: environment references as they are,
    /// every value redacted.
    pub fn redacted(&self) -> Secret {
        match self {
            Secret::Env { env } => Secret::Env { env: env.clone() },
            _ => Secret::Redacted { redacted: true },
        }
    }
}

/// Which users and groups a target receives.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    /// A SCIM filter choosing the users (all users when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    /// Which groups.
    #[serde(default)]
    pub groups: GroupScope,
}

/// Which groups a target receives: `"all"`, `"none"` (the default) or
/// `{"filter": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupScope {
    /// `"all"` or `"none"`.
    Every(GroupChoice),
    /// The groups matching a SCIM filter.
    Filter {
        /// The filter.
        filter: String,
    },
}

impl Default for GroupScope {
    fn default() -> Self {
        GroupScope::Every(GroupChoice::None)
    }
}

/// `"all"` or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupChoice {
    /// Every group.
    All,
    /// No group.
    None,
}

/// One mapping: a target attribute and the expression giving its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingSpec {
    /// The SCIM path at the target (`name.givenName`,
    /// `emails[type eq "work"].value`, an extension URN path), or the
    /// column name of a CSV target.
    pub target: String,
    /// An Entra-compatible expression; a plain attribute path is the
    /// simplest (`userName`, `[userName]`).
    pub expression: String,
}

/// What happens at the target to a user who leaves Muster or the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deletion {
    /// `active` set to false (the account and its history stay).
    #[default]
    Deactivate,
    /// The account is deleted.
    Delete,
}

/// How fast Muster calls a target: a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Requests allowed at once above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_burst() -> u32 {
    10
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests_per_second: 50.0,
            burst: default_burst(),
        }
    }
}

/// A platform's skill proficiency scale: the value for Muster's 5 (`best`)
/// and for Muster's 0 (`worst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillScale {
    /// The platform's value for proficiency 5.
    pub best: u8,
    /// The platform's value for proficiency 0.
    pub worst: u8,
}

/// The accidental-deletion guard: pause the target when more than
/// `max_share` of its users would be deprovisioned within `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletionGuard {
    /// The share of the target's users (0 to 1).
    pub max_share: f64,
    /// The window, in seconds.
    #[serde(default = "default_window")]
    pub window_seconds: u64,
    /// Removals always allowed in a window, whatever the share (so a
    /// target with ten users can lose one).
    #[serde(default = "default_minimum")]
    pub minimum: u64,
}

fn default_window() -> u64 {
    3600
}

fn default_minimum() -> u64 {
    5
}

impl TargetDocument {
    /// Reads a document from JSON, naming the field and the reason on
    /// failure (only the shape: [`crate::CompiledTarget::compile`] checks
    /// the meaning).
    pub fn from_json(text: &str) -> Result<TargetDocument, DocumentError> {
        serde_json::from_str(text).map_err(|error| {
            DocumentError::one(Problem::new(
                "",
                format!("{error} (line {}, column {})", error.line(), error.column()),
            ))
        })
    }

    /// Reads a document from a JSON value.
    pub fn from_value(value: Value) -> Result<TargetDocument, DocumentError> {
        serde_json::from_value(value)
            .map_err(|error| DocumentError::one(Problem::new("", error.to_string())))
    }

    /// The document as the API returns it: every secret value redacted.
    pub fn redacted(&self) -> TargetDocument {
        let mut copy = self.clone();
        copy.map_secrets(|secret| secret.redacted());
        copy
    }

    /// Replaces every secret with `change(secret)`.
    pub fn map_secrets(&mut self, mut change: impl FnMut(&Secret) -> Secret) {
        match &mut self.auth {
            Some(Auth::Bearer { token }) => *token = change(token),
            Some(Auth::OauthClientCredentials { client_secret, .. }) => {
                *client_secret = change(client_secret);
            }
            Some(Auth::AccessKey {
                access_key_secret, ..
            }) => *access_key_secret = change(access_key_secret),
            Some(Auth::Basic { password, .. }) => *password = change(password),
            None => {}
        }
    }

    /// Every secret of the document, with the field it sits in.
    pub fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        match &self.auth {
            Some(Auth::Bearer { token }) => vec![("auth.token", token)],
            Some(Auth::OauthClientCredentials { client_secret, .. }) => {
                vec![("auth.clientSecret", client_secret)]
            }
            Some(Auth::AccessKey {
                access_key_secret, ..
            }) => vec![("auth.accessKeySecret", access_key_secret)],
            Some(Auth::Basic { password, .. }) => vec![("auth.password", password)],
            None => Vec::new(),
        }
    }
}

impl TargetDocument {
    /// The problems with keeping the secrets `stored` holds for this
    /// document (a secret given as `{"redacted": true}` or `{"sealed": ...}`
    /// keeps the stored one): a kept secret may only go where it went
    /// before, so the document must keep the kind, the auth type, the
    /// region and the origin (scheme, host, port) of `baseUrl`,
    /// `apiBaseUrl`, `loginUrl` and `auth.tokenUrl`.
    /// Otherwise whoever may put targets could send the stored secret to a
    /// host of their choosing without ever knowing it.
    pub fn kept_secret_problems(&self, stored: &TargetDocument) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (field, secret) in self.secrets() {
            if !matches!(secret, Secret::Redacted { .. } | Secret::Sealed { .. }) {
                continue;
            }
            let mut changed = Vec::new();
            if self.kind != stored.kind {
                changed.push("kind");
            }
            for (name, new, old) in [
                ("baseUrl", &self.base_url, &stored.base_url),
                ("apiBaseUrl", &self.api_base_url, &stored.api_base_url),
                ("loginUrl", &self.login_url, &stored.login_url),
            ] {
                if origin(new.as_deref()) != origin(old.as_deref()) {
                    changed.push(name);
                }
            }
            if self.region.as_deref().map(str::to_ascii_lowercase)
                != stored.region.as_deref().map(str::to_ascii_lowercase)
            {
                changed.push("region");
            }
            match (&self.auth, &stored.auth) {
                (
                    Some(Auth::OauthClientCredentials { token_url: new, .. }),
                    Some(Auth::OauthClientCredentials { token_url: old, .. }),
                ) => {
                    if origin(new.as_deref()) != origin(old.as_deref()) {
                        changed.push("auth.tokenUrl");
                    }
                }
                (
                    Some(Auth::AccessKey { token_url: new, .. }),
                    Some(Auth::AccessKey { token_url: old, .. }),
                ) => {
                    if origin(Some(new)) != origin(Some(old)) {
                        changed.push("auth.tokenUrl");
                    }
                }
                (Some(new), Some(old))
                    if std::mem::discriminant(new) == std::mem::discriminant(old) => {}
                _ => changed.push("auth.type"),
            }
            if !changed.is_empty() {
                problems.push(Problem::new(
                    field,
                    format!(
                        "{} changed, so the stored secret is not kept: give the secret's value \
                         or {{\"env\": \"{ENV_PREFIX}...\"}} again",
                        changed.join(" and ")
                    ),
                ));
            }
        }
        problems
    }
}

/// Scheme, host and port of a URL, for comparing where requests go.
fn origin(text: Option<&str>) -> Option<String> {
    let url = Url::parse(text?).ok()?;
    Some(url.origin().ascii_serialization())
}

/// Checks a target name: 1 to [`MAX_NAME_LENGTH`] letters, digits, `-`, `_`.
pub fn check_name(name: &str) -> Result<(), Problem> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LENGTH
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Problem::new(
            "name",
            format!(
                "'{}' is not a target name: use 1 to {MAX_NAME_LENGTH} letters, digits, '-' or '_'",
                name.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// What a URL field may carry in its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    /// Nothing: a SCIM base URL has paths joined to it.
    Refused,
    /// Parameters, but none named like a credential (a token endpoint may
    /// take a policy, as Azure AD B2C's `?p=`).
    NoCredentials,
}

/// Query parameter names that carry credentials (compared in lower case,
/// without `-` and `_`).
const CREDENTIAL_PARAMETERS: &[&str] = &[
    "token",
    "accesstoken",
    "apikey",
    "key",
    "secret",
    "clientsecret",
    "password",
    "pass",
    "pwd",
    "auth",
    "authorization",
    "code",
    "sig",
    "signature",
    "credential",
    "credentials",
];

/// Checks an http(s) URL field. The URL's text is never repeated in the
/// reason: it may hold a credential (that is one of the reasons to refuse
/// it), and reasons reach API answers and logs.
pub(crate) fn check_url(field: &str, text: &str, query: Query) -> Result<Url, Problem> {
    let url = Url::parse(text).map_err(|error| {
        Problem::new(
            field,
            format!("expected an absolute http or https URL; the value is not a URL ({error})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Problem::new(
            field,
            format!(
                "expected an http or https URL, found the scheme '{}'",
                url.scheme().chars().take(32).collect::<String>()
            ),
        ));
    }
    if url.host_str().is_none() {
        return Err(Problem::new(field, "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Problem::new(
            field,
            "credentials in the URL are refused: put them in auth",
        ));
    }
    if url.fragment().is_some() {
        return Err(Problem::new(
            field,
            "the URL has a fragment ('#...'), which is never sent: remove it",
        ));
    }
    match query {
        Query::Refused if url.query().is_some() => Err(Problem::new(
            field,
            "a SCIM base URL takes no query string ('?...'): paths are joined to it, and \
             credentials go in auth",
        )),
        Query::NoCredentials => {
            let credential = url.query_pairs().find(|(name, _)| {
                let name: String = name
                    .chars()
                    .filter(|c| !matches!(c, '-' | '_'))
                    .collect::<String>()
                    .to_ascii_lowercase();
                CREDENTIAL_PARAMETERS.contains(&name.as_str())
            });
            match credential {
                Some((name, _)) => Err(Problem::new(
                    field,
                    format!(
                        "the query parameter '{}' looks like a credential: put credentials in \
                         auth, never in a URL",
                        name.chars().take(64).collect::<String>()
                    ),
                )),
                None => Ok(url),
            }
        }
        Query::Refused => Ok(url),
    }
}
