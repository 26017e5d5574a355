//! Contact-center entitlement rules over a store: check, apply (with a dry
//! run across every user, or one user's before and after), roll back,
//! explain one user, and count what each rule matches.
//!
//! `muster rules ...` and `/admin/v1/rules` run these same functions. The
//! rule set in force is part of the tenant's view ([`crate::tenant`]), with
//! its [`EntitlementDerivation`]: every write carries it, and the store
//! recomputes and stores the entitlements of each user the write affects
//! (the user itself, the users under a group whose members or name change)
//! in the write's transaction. Applying a rule set recomputes every user's
//! in the transaction that stores it. So a user's entitlements are stored
//! with it (filterable, versioned, in the change log) and a read never
//! shows a result older than the rules, the user and its groups.

use std::sync::Arc;

use muster_rules::{
    DryRunSummary, EntitlementChanges, Entitlements, Explanation, Format, RuleErrors, RuleSet,
};
use muster_scim::{ResourceType, SchemaRegistry, ScimError};
use muster_store::{
    Actor, Derivation, ListQuery, Page, ResourceId, RuleSetRecord, SharedDerivation, Store,
    StoredResource, TenantId,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::tenant::{load_view, TenantView};
use crate::Error;

/// The rule set a tenant has in force, parsed.
#[derive(Debug)]
pub struct RulesInForce {
    /// Its version (numbered from 1 per tenant).
    pub version: u64,
    /// The rules.
    pub rule_set: RuleSet,
}

/// How many users a scan over all of them reads per page (large pages keep
/// a million-user scan linear; see `muster_store::each_page`).
const PAGE: u64 = 5_000;

/// A user's entitlements under one rule set, as the store derives and
/// stores them (see [`Derivation`]): the value of the extension
/// [`muster_rules::CONTACT_CENTER_URN`], absent when empty.
pub struct EntitlementDerivation {
    rules: Arc<RulesInForce>,
    registry: Arc<SchemaRegistry>,
    users: ResourceType,
    never_returned: Vec<String>,
}

impl EntitlementDerivation {
    /// The derivation of `rules`, evaluated against `registry` (the
    /// tenant's schemas, which hold the `User` resource type).
    pub fn new(
        rules: Arc<RulesInForce>,
        registry: Arc<SchemaRegistry>,
    ) -> Result<EntitlementDerivation, Error> {
        let users = user_type(&registry)?.clone();
        let never_returned = registry.never_returned_paths(&users);
        Ok(EntitlementDerivation {
            rules,
            registry,
            users,
            never_returned,
        })
    }

    /// Shared, as writes carry it.
    pub fn shared(
        rules: Arc<RulesInForce>,
        registry: Arc<SchemaRegistry>,
    ) -> Result<SharedDerivation, Error> {
        Ok(SharedDerivation::new(EntitlementDerivation::new(
            rules, registry,
        )?))
    }

    /// The rule set it evaluates.
    pub fn rules(&self) -> &RulesInForce {
        &self.rules
    }
}

impl Derivation for EntitlementDerivation {
    fn urn(&self) -> &str {
        muster_rules::CONTACT_CENTER_URN
    }

    fn derive(&self, user: &Value) -> Option<Value> {
        let entitlements = self
            .rules
            .rule_set
            .evaluate(&self.registry, &self.users, user);
        (!entitlements.is_empty()).then(|| entitlements.to_json())
    }

    fn never_returned(&self) -> &[String] {
        &self.never_returned
    }
}

/// Parses a stored version (self-contained: files were inlined on apply).
pub(crate) fn parse_stored(record: &RuleSetRecord) -> Result<RulesInForce, Error> {
    let format = if record.format.eq_ignore_ascii_case("json") {
        Format::Json
    } else {
        Format::Toml
    };
    let rule_set = RuleSet::parse_as(&record.document, format, &|name: &str| {
        Err(format!(
            "stored rule sets hold no file references ('{name}')"
        ))
    })
    .map_err(|errors| {
        Error::Internal(format!(
            "stored rule set version {} does not parse: {errors}",
            record.version
        ))
    })?;
    Ok(RulesInForce {
        version: record.version,
        rule_set,
    })
}

/// A rule set refused: `400 invalidValue` listing every error with its
/// rule id, line and "did you mean".
fn refused(errors: RuleErrors) -> Error {
    Error::Scim(ScimError::invalid_value(errors.to_string()))
}

/// The `User` resource type of a registry.
fn user_type(registry: &SchemaRegistry) -> Result<&ResourceType, Error> {
    registry
        .resource_type("User")
        .ok_or_else(|| Error::Internal("the registry has no User resource type".to_owned()))
}

/// Reads a file a rule set names: its text, or why it cannot be read.
pub type ReadFile<'f> = dyn Fn(&str) -> Result<String, String> + Sync + 'f;

/// A rule-set document as given, with the files its tables name.
pub struct RulesDocument<'d> {
    /// The text, TOML or JSON.
    pub text: &'d str,
    /// Reads a CSV file a table names (the CLI, relative to the document);
    /// `None` refuses file references (the admin API).
    pub files: Option<&'d ReadFile<'d>>,
}

impl RulesDocument<'_> {
    fn parse(&self) -> Result<RuleSet, Error> {
        let parsed = match self.files {
            Some(read) => RuleSet::parse_with_files(self.text, read),
            None => RuleSet::parse(self.text),
        };
        parsed.map_err(refused)
    }

    /// What the store keeps: the text as written when it reads no files
    /// (comments and all), else the self-contained JSON form.
    fn stored_form(&self, rule_set: &RuleSet) -> (String, &'static str) {
        if RuleSet::parse(self.text).is_ok() {
            let format = match Format::detect(self.text) {
                Format::Json => "json",
                Format::Toml => "toml",
            };
            (self.text.to_owned(), format)
        } else {
            let text = serde_json::to_string_pretty(&rule_set.to_json()).unwrap_or_default();
            (text, "json")
        }
    }
}

/// Parses and validates a rule set against the tenant's schemas and
/// groups, changing nothing.
pub async fn check_rules(
    store: &dyn Store,
    tenant: &TenantId,
    document: &RulesDocument<'_>,
) -> Result<RuleSet, Error> {
    let view = load_view(store, tenant).await?;
    checked(store, tenant, &view, document).await
}

async fn checked(
    store: &dyn Store,
    tenant: &TenantId,
    view: &TenantView,
    document: &RulesDocument<'_>,
) -> Result<RuleSet, Error> {
    let rule_set = document.parse()?;
    let groups = group_names(store, tenant).await?;
    rule_set
        .validate(&view.registry, user_type(&view.registry)?, &groups)
        .map_err(refused)?;
    Ok(rule_set)
}

/// How many users the tenant has.
async fn count_users(
    store: &dyn Store,
    tenant: &TenantId,
    registry: &SchemaRegistry,
) -> Result<u64, Error> {
    let query = ListQuery {
        resource_type: "User".to_owned(),
        filter: None,
        sort_by: None,
        descending: false,
        page: Page::Index {
            start_index: 1,
            count: 0,
        },
        include_members: false,
    };
    Ok(store.list(tenant, registry, &query).await?.total_results)
}

/// The display names of the tenant's groups.
async fn group_names(store: &dyn Store, tenant: &TenantId) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    each_page(store, tenant, "Group", |group| {
        if let Some(name) = group.resource.get("displayName").and_then(Value::as_str) {
            names.push(name.to_owned());
        }
    })
    .await?;
    Ok(names)
}

/// Visits every resource of a type, page by page (users with their computed
/// groups).
async fn each_page(
    store: &dyn Store,
    tenant: &TenantId,
    resource_type: &str,
    mut visit: impl FnMut(&StoredResource),
) -> Result<(), Error> {
    let registry = SchemaRegistry::builtin();
    muster_store::each_page(
        store,
        tenant,
        &registry,
        resource_type,
        (PAGE, false),
        |page| {
            page.iter().for_each(&mut visit);
            Ok::<_, Error>(())
        },
    )
    .await
}

/// What applying a rule set did, or would do on a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesReport {
    /// The version now in force (`None` on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The version in force before (`None` when there was none).
    pub previous_version: Option<u64>,
    /// Whether the rule set was stored.
    pub applied: bool,
    /// How many users the apply rewrote: those whose stored entitlements
    /// changed, each with a new version and a change record, in the
    /// transaction that stored the rule set (`None` on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten: Option<u64>,
    /// The change across all users, per kind, with counts and samples.
    pub summary: DryRunSummary,
    /// One user's before and after, when asked for (`--user`, `?user=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserChange>,
}

/// One user's entitlements before and after a rule-set change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChange {
    /// The user's `userName`.
    pub user_name: String,
    /// Under the rule set in force.
    pub before: Entitlements,
    /// Under the new one.
    pub after: Entitlements,
    /// The difference.
    pub changes: EntitlementChanges,
}

/// How a rule set is applied.
#[derive(Debug, Clone, Default)]
pub struct ApplyRules {
    /// Only report.
    pub dry_run: bool,
    /// Show this user's before and after (by `userName` or id).
    pub user: Option<String>,
    /// Why (kept with the version, e.g. `rollback to version 3`).
    pub note: String,
    /// Told how far the apply is (the CLI draws a progress bar).
    pub progress: Option<ProgressFn>,
}

/// How far an apply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesProgress {
    /// Users compared under the rules in force and the new ones, of all.
    Compared {
        /// Users compared so far.
        users: u64,
        /// Users in the tenant when the comparison started.
        total: u64,
    },
    /// The new version is being stored and every user whose entitlements
    /// change rewritten, in one transaction.
    Writing,
}

/// A callback told of an apply's progress.
#[derive(Clone)]
pub struct ProgressFn(pub Arc<dyn Fn(RulesProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

impl ApplyRules {
    fn report(&self, progress: RulesProgress) {
        if let Some(ProgressFn(report)) = &self.progress {
            report(progress);
        }
    }
}

/// Checks a rule set, computes what it changes for every user, and (unless
/// a dry run) stores it as the tenant's next version, recomputing and
/// storing every user's entitlements in the same transaction.
///
/// The rule set is checked, and its entitlements evaluated, against the
/// tenant's schemas of one generation; when they (or the settings, or the
/// rule set in force) change before it is stored, it is checked and
/// computed again.
pub async fn apply_rules(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    document: &RulesDocument<'_>,
    options: &ApplyRules,
) -> Result<RulesReport, Error> {
    crate::retry_when_stale(|| apply_once(store, tenant, actor, document, options)).await
}

async fn apply_once(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    document: &RulesDocument<'_>,
    options: &ApplyRules,
) -> Result<RulesReport, Error> {
    let view = load_view(store, tenant).await?;
    let rule_set = checked(store, tenant, &view, document).await?;
    let registry = &view.registry;
    let users = user_type(registry)?;
    let current = view.rules.as_deref();
    let mut summary = DryRunSummary::new();
    let mut user = None;
    let wanted = options.user.as_deref();
    let total = if options.progress.is_some() {
        count_users(store, tenant, registry).await?
    } else {
        0
    };
    let mut compared = 0u64;
    each_page(store, tenant, "User", |stored| {
        compared += 1;
        options.report(RulesProgress::Compared {
            users: compared,
            total: total.max(compared),
        });
        let before = current
            .map(|rules| rules.rule_set.evaluate(registry, users, &stored.resource))
            .unwrap_or_default();
        let after = rule_set.evaluate(registry, users, &stored.resource);
        let changes = EntitlementChanges::between(&before, &after);
        let name = user_name(stored);
        summary.record(&name, &changes);
        if wanted.is_some_and(|wanted| is_user(stored, wanted)) {
            user = Some(UserChange {
                user_name: name,
                before,
                after,
                changes,
            });
        }
    })
    .await?;
    if let (Some(wanted), None) = (wanted, &user) {
        return Err(Error::not_found(format!("no user '{wanted}'")));
    }
    let mut report = RulesReport {
        version: None,
        previous_version: current.map(|rules| rules.version),
        applied: false,
        rewritten: None,
        summary,
        user,
    };
    if !options.dry_run {
        options.report(RulesProgress::Writing);
        let (text, format) = document.stored_form(&rule_set);
        let next = RulesInForce {
            version: report.previous_version.map_or(1, |version| version + 1),
            rule_set,
        };
        let derivation = EntitlementDerivation::shared(Arc::new(next), Arc::clone(&view.registry))?;
        let applied = store
            .put_rule_set(
                tenant,
                actor,
                &text,
                format,
                &options.note,
                Some(derivation),
                Some(view.generation),
            )
            .await?;
        report.version = Some(applied.record.version);
        report.rewritten = Some(applied.rewritten);
        report.applied = true;
    }
    Ok(report)
}

/// Applies an earlier version again, as a new version ("rollback to
/// version N"), with the same checks and report as [`apply_rules`].
pub async fn roll_back(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    version: u64,
    options: &ApplyRules,
) -> Result<RulesReport, Error> {
    let record = store
        .rule_set(tenant, Some(version))
        .await?
        .ok_or_else(|| Error::not_found(format!("no rule set version {version}")))?;
    let options = ApplyRules {
        note: format!("rollback to version {version}"),
        ..options.clone()
    };
    let document = RulesDocument {
        text: &record.document,
        files: None,
    };
    apply_rules(store, tenant, actor, &document, &options).await
}

fn user_name(stored: &StoredResource) -> String {
    stored
        .resource
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or(&stored.id.0)
        .to_owned()
}

fn is_user(stored: &StoredResource, wanted: &str) -> bool {
    stored.id.0 == wanted
        || stored
            .resource
            .get("userName")
            .and_then(Value::as_str)
            .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
}

/// Why a user holds what it holds: each entitlement with its rule and the
/// values that produced it, and for each rule that did not match, the
/// condition that failed and the value it saw. `user` is an id or a
/// `userName`.
pub async fn explain_user(
    store: &dyn Store,
    tenant: &TenantId,
    user: &str,
) -> Result<(Option<u64>, Explanation), Error> {
    let view = load_view(store, tenant).await?;
    let rules = view
        .rules
        .as_deref()
        .ok_or_else(|| Error::not_found("no rule set is in force; apply one first"))?;
    let stored = find_user(store, tenant, &view.registry, user).await?;
    let users = user_type(&view.registry)?;
    Ok((
        Some(rules.version),
        rules
            .rule_set
            .explain(&view.registry, users, &stored.resource),
    ))
}

async fn find_user(
    store: &dyn Store,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    user: &str,
) -> Result<StoredResource, Error> {
    match store
        .get(tenant, "User", &ResourceId(user.to_owned()), false)
        .await
    {
        Ok(stored) => return Ok(stored),
        Err(muster_store::StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let filter = muster_scim::Filter::parse(&format!(
        "userName eq {}",
        serde_json::to_string(user).unwrap_or_default()
    ))?;
    let query = ListQuery {
        resource_type: "User".to_owned(),
        filter: Some(filter),
        sort_by: None,
        descending: false,
        page: Page::Index {
            start_index: 1,
            count: 1,
        },
        include_members: false,
    };
    store
        .list(tenant, registry, &query)
        .await?
        .resources
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(format!("no user '{user}' (by id or userName)")))
}

/// Coverage of the rule set in force: per rule, how many users it matches;
/// the users with problems.
pub async fn rules_stats(store: &dyn Store, tenant: &TenantId) -> Result<Value, Error> {
    let view = load_view(store, tenant).await?;
    let rules = view
        .rules
        .as_deref()
        .ok_or_else(|| Error::not_found("no rule set is in force; apply one first"))?;
    let registry = &view.registry;
    let users = user_type(registry)?;
    let ids = rules.rule_set.rule_ids();
    let mut matched = vec![0u64; ids.len()];
    let mut with_problems = Vec::new();
    let mut total = 0u64;
    each_page(store, tenant, "User", |stored| {
        total += 1;
        let hits = rules
            .rule_set
            .matched_rules(registry, users, &stored.resource);
        for (index, id) in ids.iter().enumerate() {
            if hits.contains(id) {
                if let Some(count) = matched.get_mut(index) {
                    *count += 1;
                }
            }
        }
        let entitlements = rules.rule_set.evaluate(registry, users, &stored.resource);
        if !entitlements.problems.is_empty() {
            with_problems.push(json!({
                "id": stored.id.0,
                "userName": user_name(stored),
                "problems": entitlements.problems,
            }));
        }
    })
    .await?;
    Ok(json!({
        "version": rules.version,
        "users": total,
        "rules": ids.iter().zip(matched).map(|(id, users)| json!({"rule": id, "users": users})).collect::<Vec<_>>(),
        "usersWithProblems": with_problems.len(),
        "problems": with_problems,
    }))
}

/// The rule set at `version`, or the one in force.
pub async fn rule_set_record(
    store: &dyn Store,
    tenant: &TenantId,
    version: Option<u64>,
) -> Result<RuleSetRecord, Error> {
    store
        .rule_set(tenant, version)
        .await?
        .ok_or_else(|| match version {
            Some(version) => Error::not_found(format!("no rule set version {version}")),
            None => Error::not_found("no rule set is in force; apply one first"),
        })
}

/// Whether a client body tries to write the computed extension.
pub(crate) fn writes_entitlements(body: &Value) -> bool {
    let urn = muster_rules::CONTACT_CENTER_URN;
    body.as_object().is_some_and(|object| {
        object.keys().any(|key| {
            key.get(..urn.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(urn))
        })
    })
}

/// The parsed rule set in force, shared between views.
pub(crate) type SharedRules = Option<Arc<RulesInForce>>;
