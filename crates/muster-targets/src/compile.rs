//! A target document checked against the tenant's schemas and made ready
//! to use: URLs parsed, scope filters parsed and checked, every mapping's
//! target path and expression parsed, every source attribute resolved.

use std::collections::{HashMap, HashSet};

use muster_expr::{Expression, Outcome};
use muster_scim::{AttrPath, Filter, ResourceType, SchemaRegistry};
use serde_json::{Map, Value};
use url::Url;

use crate::defaults::{default_group_mappings, default_user_mappings};
use crate::document::{
    check_env_name, check_name, check_url, Auth, GroupChoice, GroupScope, MappingSpec, Query,
    RateLimit, Secret, TargetDocument, TargetKind, MAX_MAPPINGS,
};
use crate::error::{DocumentError, Problem};
use crate::path::JsonPath;

/// Most requests per second a rate limit may allow.
const MAX_RATE: f64 = 10_000.0;

/// A target document ready to use.
#[derive(Debug, Clone)]
pub struct CompiledTarget {
    /// The document, as written.
    pub document: TargetDocument,
    /// The SCIM base URL without a trailing `/` (`scim` targets).
    pub base_url: Option<Url>,
    /// The token URL (OAuth client credentials).
    pub token_url: Option<Url>,
    /// The platform API's root (`genesys-cloud`: `https://api.<region>`).
    pub api_root: Option<Url>,
    /// The rate limit in force (the document's, or the kind's default).
    pub rate_limit: RateLimit,
    /// The users that go there (`None`: all).
    pub user_scope: Option<Filter>,
    /// The groups that go there.
    pub group_scope: GroupSelection,
    /// How each user attribute at the target is computed.
    pub user_mappings: Vec<Mapping>,
    /// How each group attribute at the target is computed (members are
    /// delivered apart, as the target's ids of the delivered members).
    pub group_mappings: Vec<Mapping>,
}

/// Which groups go to a target.
#[derive(Debug, Clone)]
pub enum GroupSelection {
    /// Every group.
    All,
    /// None.
    None,
    /// The groups matching the filter.
    Matching(Filter),
}

/// One compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The attribute at the target.
    pub target: JsonPath,
    /// The expression as written.
    pub text: String,
    /// The parsed expression.
    pub expression: Expression,
    /// Each source attribute the expression names, resolved to where it
    /// sits in a Muster resource.
    pub sources: Vec<(String, JsonPath)>,
}

/// What mapping one resource gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Target path → value (`Null`: clear it at the target), in mapping
    /// order.
    pub values: Map<String, Value>,
    /// Mappings whose expression failed on this resource: target path and
    /// error. Their attributes are neither sent nor cleared.
    pub errors: Vec<(String, String)>,
}

impl Mapping {
    /// Evaluates the expression against a Muster resource (canonical JSON):
    /// `None` when the expression skips the attribute
    /// (`IgnoreFlowIfNullOrEmpty`).
    pub fn evaluate(&self, resource: &Value) -> Result<Option<Value>, String> {
        let source: Map<String, Value> = self
            .sources
            .iter()
            .map(|(name, path)| (name.clone(), path.read(resource)))
            .collect();
        match self.expression.evaluate(&source) {
            Ok(Outcome::Value(value)) => Ok(Some(value)),
            Ok(Outcome::Skip) => Ok(None),
            Err(error) => Err(format!("{}: {error}", self.text)),
        }
    }

    /// The source values the expression reads from `resource`.
    pub fn source_values(&self, resource: &Value) -> Vec<(String, Value)> {
        self.sources
            .iter()
            .map(|(name, path)| (name.clone(), path.read(resource)))
            .collect()
    }
}

/// Maps a resource through `mappings`.
pub fn map_resource(mappings: &[Mapping], resource: &Value) -> Mapped {
    let mut mapped = Mapped::default();
    for mapping in mappings {
        match mapping.evaluate(resource) {
            Ok(Some(value)) => {
                mapped
                    .values
                    .insert(mapping.target.as_str().to_owned(), empty_to_null(value));
            }
            Ok(None) => {}
            Err(error) => mapped
                .errors
                .push((mapping.target.as_str().to_owned(), error)),
        }
    }
    mapped
}

/// An empty string, array or object clears the target attribute, like null.
fn empty_to_null(value: Value) -> Value {
    match &value {
        Value::String(text) if text.is_empty() => Value::Null,
        Value::Array(items) if items.is_empty() => Value::Null,
        Value::Object(fields) if fields.is_empty() => Value::Null,
        _ => value,
    }
}

impl CompiledTarget {
    /// Checks `document` against the tenant's schemas; every problem is
    /// reported with its field.
    pub fn compile(
        document: TargetDocument,
        registry: &SchemaRegistry,
    ) -> Result<CompiledTarget, DocumentError> {
        let mut problems = Vec::new();
        if let Err(problem) = check_name(&document.name) {
            problems.push(problem);
        }
        let (user_type, group_type) = (
            registry.resource_type("User"),
            registry.resource_type("Group"),
        );
        let mut base_url = None;
        let mut token_url = None;
        let mut api_root = None;
        if document.skip_changes_from.len() > crate::document::MAX_SKIPPED_CLIENTS
            || document
                .skip_changes_from
                .iter()
                .any(|client| client.trim().is_empty() || client.len() > 256)
        {
            problems.push(Problem::new(
                "skipChangesFrom",
                format!(
                    "at most {} client names, none empty or longer than 256 bytes",
                    crate::document::MAX_SKIPPED_CLIENTS
                ),
            ));
        }
        if document.genesys.is_some() && document.kind != TargetKind::GenesysCloud {
            problems.push(Problem::new(
                "genesys",
                "Genesys Cloud's settings are only for genesys-cloud targets",
            ));
        }
        match document.kind {
            TargetKind::Scim => {
                match &document.base_url {
                    Some(text) => match check_url("baseUrl", text, Query::Refused) {
                        Ok(url) => base_url = Some(url),
                        Err(problem) => problems.push(problem),
                    },
                    None => problems.push(Problem::new(
                        "baseUrl",
                        "a scim target needs its SCIM base URL",
                    )),
                }
                match &document.auth {
                    None => problems.push(Problem::new(
                        "auth",
                        "a scim target needs auth: {\"type\": \"bearer\", \"token\": ...} or \
                         {\"type\": \"oauth-client-credentials\", ...}",
                    )),
                    Some(Auth::OauthClientCredentials { token_url: url, .. }) => match url {
                        Some(url) => match check_url("auth.tokenUrl", url, Query::NoCredentials) {
                            Ok(url) => token_url = Some(url),
                            Err(problem) => problems.push(problem),
                        },
                        None => problems.push(Problem::new(
                            "auth.tokenUrl",
                            "OAuth client credentials need the token endpoint's URL",
                        )),
                    },
                    Some(Auth::Bearer { .. }) => {}
                    Some(Auth::AccessKey { .. } | Auth::Basic { .. }) => {
                        problems.push(Problem::new(
                            "auth.type",
                            "a scim target takes bearer or oauth-client-credentials",
                        ))
                    }
                }
                if document.directory.is_some() {
                    problems.push(Problem::new("directory", "only csv targets write files"));
                }
            }
            TargetKind::NiceCxone => {
                for (field, given) in [
                    ("baseUrl", &document.base_url),
                    ("apiBaseUrl", &document.api_base_url),
                ] {
                    match given {
                        Some(text) => match check_url(field, text, Query::Refused) {
                            Ok(url) if field == "baseUrl" => base_url = Some(url),
                            Ok(url) => api_root = Some(url),
                            Err(problem) => problems.push(problem),
                        },
                        None => problems.push(Problem::new(
                            field,
                            "a nice-cxone target needs its SCIM base URL (baseUrl) and its admin \
                             API root (apiBaseUrl, e.g. https://api-na1.niceincontact.com/inContactAPI/services/v24.0)",
                        )),
                    }
                }
                match &document.auth {
                    Some(Auth::AccessKey { token_url: url, .. }) => {
                        match check_url("auth.tokenUrl", url, Query::NoCredentials) {
                            Ok(url) => token_url = Some(url),
                            Err(problem) => problems.push(problem),
                        }
                    }
                    _ => problems.push(Problem::new(
                        "auth",
                        "a nice-cxone target authenticates with an access key: {\"type\": \
                         \"access-key\", \"tokenUrl\": ..., \"accessKeyId\": ..., \"accessKeySecret\": ...}",
                    )),
                }
            }
            TargetKind::Five9 => {
                let endpoint = document.base_url.as_deref().unwrap_or(FIVE9_ENDPOINT);
                match check_url("baseUrl", endpoint, Query::Refused) {
                    Ok(url) => base_url = Some(url),
                    Err(problem) => problems.push(problem),
                }
                if !matches!(document.auth, Some(Auth::Basic { .. })) {
                    problems.push(Problem::new(
                        "auth",
                        "a five9 target authenticates with HTTP Basic: {\"type\": \"basic\", \
                         \"username\": ..., \"password\": ...}",
                    ));
                }
                if !document.mappings.is_empty() {
                    problems.push(Problem::new(
                        "mappings",
                        "five9 targets map fixed fields (federationId, userName, names, email, \
                         active, skills); mappings are not taken",
                    ));
                }
            }
            TargetKind::GenesysCloud => {
                let (api, login) = genesys_roots(&document, &mut problems);
                api_root = api;
                if let Some(api) = &api_root {
                    base_url = Url::parse(&format!(
                        "{}/api/v2/scim/v2",
                        api.as_str().trim_end_matches('/')
                    ))
                    .ok();
                }
                match &document.auth {
                    Some(Auth::OauthClientCredentials { token_url: url, .. }) => {
                        let url = match url {
                            Some(url) => check_url("auth.tokenUrl", url, Query::NoCredentials).map(Some),
                            None => Ok(login.map(|login| {
                                Url::parse(&format!("{}/oauth/token", login.as_str().trim_end_matches('/')))
                                    .ok()
                            }).unwrap_or_default()),
                        };
                        match url {
                            Ok(url) => token_url = url,
                            Err(problem) => problems.push(problem),
                        }
                    }
                    _ => problems.push(Problem::new(
                        "auth",
                        "a genesys-cloud target authenticates with OAuth client credentials: \
                         {\"type\": \"oauth-client-credentials\", \"clientId\": ..., \"clientSecret\": ...}",
                    )),
                }
                for (field, present) in [
                    ("baseUrl", document.base_url.is_some()),
                    ("directory", document.directory.is_some()),
                ] {
                    if present {
                        problems.push(Problem::new(
                            field,
                            "not used by genesys-cloud targets: give region (or apiBaseUrl and loginUrl)",
                        ));
                    }
                }
                if let Some(settings) = &document.genesys {
                    if !(1..=100).contains(&settings.batch_size) {
                        problems.push(Problem::new(
                            "genesys.batchSize",
                            format!(
                                "{} is out of range: give 1 to 100 users per request",
                                settings.batch_size
                            ),
                        ));
                    }
                }
            }
            TargetKind::Csv => {
                match &document.directory {
                    None => problems.push(Problem::new(
                        "directory",
                        "a csv target needs the directory its files go to",
                    )),
                    Some(directory) if !directory.is_absolute() => problems.push(Problem::new(
                        "directory",
                        format!(
                            "'{}' is relative: give an absolute path (the server and the CLI run \
                             in different directories)",
                            directory.display()
                        ),
                    )),
                    Some(directory)
                        if directory
                            .components()
                            .any(|part| matches!(part, std::path::Component::ParentDir)) =>
                    {
                        problems.push(Problem::new(
                            "directory",
                            "'..' is refused in the directory: give the path without it",
                        ));
                    }
                    Some(_) => {}
                }
                for (field, present) in [
                    ("baseUrl", document.base_url.is_some()),
                    ("auth", document.auth.is_some()),
                ] {
                    if present {
                        problems.push(Problem::new(field, "a csv target calls no service"));
                    }
                }
            }
        }
        for (field, secret) in document.secrets() {
            match secret {
                Secret::Value(text) if text.is_empty() => {
                    problems.push(Problem::new(field, "the secret is empty"));
                }
                Secret::Env { env } => {
                    if let Err(problem) = check_env_name(field, env) {
                        problems.push(problem);
                    }
                }
                _ => {}
            }
        }
        let user_scope = match (&document.scope.users, user_type) {
            (Some(text), Some(rt)) => {
                scope_filter("scope.users", text, registry, rt, &mut problems)
            }
            _ => None,
        };
        let group_scope = match (&document.scope.groups, group_type) {
            (GroupScope::Every(GroupChoice::All), _) => GroupSelection::All,
            (GroupScope::Every(GroupChoice::None), _) => GroupSelection::None,
            (GroupScope::Filter { filter }, Some(rt)) => {
                match scope_filter("scope.groups.filter", filter, registry, rt, &mut problems) {
                    Some(filter) => GroupSelection::Matching(filter),
                    None => GroupSelection::None,
                }
            }
            (GroupScope::Filter { .. }, None) => GroupSelection::None,
        };
        let rate = document
            .rate_limit
            .unwrap_or_else(|| default_rate_limit(document.kind));
        if !(rate.requests_per_second.is_finite()
            && rate.requests_per_second > 0.0
            && rate.requests_per_second <= MAX_RATE)
        {
            problems.push(Problem::new(
                "rateLimit.requestsPerSecond",
                format!("expected a number above 0 and at most {MAX_RATE}"),
            ));
        }
        if rate.burst == 0 {
            problems.push(Problem::new("rateLimit.burst", "expected at least 1"));
        }
        if let Some(guard) = document.deletion_guard {
            if !(guard.max_share.is_finite() && guard.max_share > 0.0 && guard.max_share <= 1.0) {
                problems.push(Problem::new(
                    "deletionGuard.maxShare",
                    "expected a share above 0 and at most 1 (0.1 is 10%)",
                ));
            }
            if guard.window_seconds == 0 {
                problems.push(Problem::new(
                    "deletionGuard.windowSeconds",
                    "expected at least 1",
                ));
            }
        }
        if document.mappings.len() > MAX_MAPPINGS {
            problems.push(Problem::new(
                "mappings",
                format!(
                    "{} mappings; at most {MAX_MAPPINGS}",
                    document.mappings.len()
                ),
            ));
        }
        let specs = if document.mappings.is_empty() {
            default_user_mappings(document.kind)
        } else {
            document.mappings.clone()
        };
        let user_mappings = match user_type {
            Some(rt) => compile_mappings(&specs, document.kind, registry, rt, &mut problems),
            None => Vec::new(),
        };
        let group_mappings = match group_type {
            Some(rt) => {
                let mut ignored = Vec::new();
                compile_mappings(
                    &default_group_mappings(),
                    TargetKind::Scim,
                    registry,
                    rt,
                    &mut ignored,
                )
            }
            None => Vec::new(),
        };
        if !problems.is_empty() {
            return Err(DocumentError { problems });
        }
        Ok(CompiledTarget {
            document,
            base_url,
            token_url,
            api_root,
            rate_limit: rate,
            user_scope,
            group_scope,
            user_mappings,
            group_mappings,
        })
    }

    /// Whether a user (canonical JSON) goes to this target.
    pub fn user_in_scope(&self, user: &Value, registry: &SchemaRegistry) -> bool {
        match (&self.user_scope, registry.resource_type("User")) {
            (Some(filter), Some(rt)) => filter.matches(user, registry, rt),
            _ => true,
        }
    }

    /// Whether a group (canonical JSON) goes to this target.
    pub fn group_in_scope(&self, group: &Value, registry: &SchemaRegistry) -> bool {
        match (&self.group_scope, registry.resource_type("Group")) {
            (GroupSelection::All, _) => true,
            (GroupSelection::None, _) => false,
            (GroupSelection::Matching(filter), Some(rt)) => filter.matches(group, registry, rt),
            (GroupSelection::Matching(_), None) => false,
        }
    }

    /// Whether any group goes to this target.
    pub fn delivers_groups(&self) -> bool {
        !matches!(self.group_scope, GroupSelection::None)
    }
}

/// The rate limit of a kind when the document gives none.
pub fn default_rate_limit(kind: TargetKind) -> RateLimit {
    match kind {
        // The documented 300 requests a minute per client-credentials token:
        // 4.9 a second without a burst stays under it in any window, however
        // the platform aligns its windows and after however long an idle time.
        TargetKind::GenesysCloud => RateLimit {
            requests_per_second: 4.9,
            burst: 1,
        },
        TargetKind::Scim | TargetKind::Csv | TargetKind::NiceCxone => RateLimit::default(),
        // Five9 counts operations per minute; its samples pause between calls.
        TargetKind::Five9 => RateLimit {
            requests_per_second: 2.0,
            burst: 2,
        },
    }
}

/// Five9's Admin Web Service endpoint when the document gives none.
pub const FIVE9_ENDPOINT: &str = "https://api.five9.com/wsadmin/v13/AdminWebService";

/// The API and login roots of a `genesys-cloud` document: `apiBaseUrl` and
/// `loginUrl` when given, else from `region`.
fn genesys_roots(
    document: &TargetDocument,
    problems: &mut Vec<Problem>,
) -> (Option<Url>, Option<Url>) {
    let region = document.region.as_deref().map(str::trim);
    if let Some(region) = region {
        let valid = !region.is_empty()
            && region.len() <= 64
            && region.contains('.')
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            problems.push(Problem::new(
                "region",
                format!("'{region}' is not a Genesys Cloud region domain such as mypurecloud.ie"),
            ));
            return (None, None);
        }
    }
    let mut root = |field: &str, given: Option<&String>, host: &str| -> Option<Url> {
        match (given, region) {
            (Some(text), _) => match check_url(field, text, Query::Refused) {
                Ok(url) => Some(url),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
            (None, Some(region)) => Url::parse(&format!("https://{host}.{region}")).ok(),
            (None, None) => {
                problems.push(Problem::new(
                    field,
                    format!("give region (for example mypurecloud.ie) or {field}"),
                ));
                None
            }
        }
    };
    let api = root("apiBaseUrl", document.api_base_url.as_ref(), "api");
    let login = root("loginUrl", document.login_url.as_ref(), "login");
    (api, login)
}

fn scope_filter(
    field: &str,
    text: &str,
    registry: &SchemaRegistry,
    rt: &ResourceType,
    problems: &mut Vec<Problem>,
) -> Option<Filter> {
    let checked = Filter::parse(text).and_then(|filter| {
        filter.check(registry, rt)?;
        Ok(filter)
    });
    match checked {
        Ok(filter) => Some(filter),
        Err(error) => {
            problems.push(Problem::new(field, error.detail));
            None
        }
    }
}

fn compile_mappings(
    specs: &[MappingSpec],
    kind: TargetKind,
    registry: &SchemaRegistry,
    rt: &ResourceType,
    problems: &mut Vec<Problem>,
) -> Vec<Mapping> {
    let mut mappings = Vec::new();
    let mut seen = HashSet::new();
    for (index, spec) in specs.iter().enumerate() {
        let field = |key: &str| format!("mappings[{index}].{key}");
        let target = match kind {
            TargetKind::Scim
            | TargetKind::GenesysCloud
            | TargetKind::NiceCxone
            | TargetKind::Five9 => JsonPath::parse(&spec.target),
            TargetKind::Csv => {
                if spec.target.trim().is_empty() {
                    Err("a column needs a name".to_owned())
                } else {
                    Ok(JsonPath::from_parts(None, spec.target.trim(), None))
                }
            }
        };
        let target = match target {
            Ok(target) => target,
            Err(reason) => {
                problems.push(Problem::new(field("target"), reason));
                continue;
            }
        };
        if !seen.insert(target.as_str().to_ascii_lowercase()) {
            problems.push(Problem::new(
                field("target"),
                format!("'{}' is mapped twice", target.as_str()),
            ));
            continue;
        }
        let text = normalise_expression(&spec.expression);
        let expression = match Expression::parse(&text) {
            Ok(expression) => expression,
            Err(error) => {
                problems.push(Problem::new(field("expression"), error.to_string()));
                continue;
            }
        };
        let mut sources = Vec::new();
        let mut failed = false;
        for name in expression.attributes() {
            match resolve_source(registry, rt, name) {
                Ok(path) => sources.push((name.to_owned(), path)),
                Err(reason) => {
                    problems.push(Problem::new(field("expression"), reason));
                    failed = true;
                }
            }
        }
        if !failed {
            mappings.push(Mapping {
                target,
                text,
                expression,
                sources,
            });
        }
    }
    mappings
}

/// A bare attribute path (`userName`, `name.givenName`, an extension URN
/// path) is the expression reading it.
fn normalise_expression(text: &str) -> String {
    let trimmed = text.trim();
    let bare = !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-' | '$'));
    if bare {
        format!("[{trimmed}]")
    } else {
        trimmed.to_owned()
    }
}

/// Where a source attribute named in an expression sits in a Muster
/// resource: a core or URN-qualified path, or the bare name of an
/// extension attribute that only one extension declares.
pub fn resolve_source(
    registry: &SchemaRegistry,
    rt: &ResourceType,
    name: &str,
) -> Result<JsonPath, String> {
    let unknown = || registry.unknown_attribute(rt, name);
    let path = AttrPath::parse(name).map_err(|_| unknown())?;
    if let Some(resolved) = registry.resolve_attribute(rt, &path) {
        let schema = match resolved.container {
            muster_scim::schema::Container::Core => None,
            muster_scim::schema::Container::Extension(urn) => Some(urn),
        };
        let is_never_returned = resolved.is_never_returned();
        if is_never_returned {
            return Err(format!(
                "'{name}' is never returned, so it cannot be sent to a target"
            ));
        }
        return Ok(JsonPath::from_parts(
            schema,
            &resolved.attribute.name,
            resolved.sub_attribute.map(|sub| sub.name.as_str()),
        ));
    }
    if path.schema.is_none() {
        let mut found: HashMap<String, (String, String)> = HashMap::new();
        for (schema, _) in registry.extensions(rt) {
            if let Some(attribute) = schema.attribute(&path.attribute) {
                found.insert(
                    schema.id.clone(),
                    (schema.id.clone(), attribute.name.clone()),
                );
            }
        }
        if found.len() == 1 {
            if let Some((urn, attribute)) = found.into_values().next() {
                return Ok(JsonPath::from_parts(
                    Some(&urn),
                    &attribute,
                    path.sub_attribute.as_deref(),
                ));
            }
        }
    }
    Err(unknown())
}
