//! Custom extension schemas declared at run time: apply, change and remove
//! them safely while resources hold values.
//!
//! [`apply_schema`] and [`remove_schema`] are what `muster schema apply`
//! and `PUT /admin/v1/schemas/{urn}` both run. A change that would lose or
//! corrupt stored values is refused unless asked for: removing an attribute
//! that holds values needs `force` (the removed values go to the change
//! log), and a type change must convert every stored value (a dry run lists
//! those that would not).
//!
//! With an entitlement rule set in force, a change to a `User` schema
//! carries the rule set's derivation built against the schemas after the
//! change: the store recomputes every user's stored entitlements in the
//! change's transaction (a conversion may change what a rule sees). A
//! change that removes an attribute the rules read (or changes it so the
//! rules no longer validate) is refused, naming the rule: the rules change
//! first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use muster_rules::{ErrorKind, RuleError, RuleSet};
use muster_scim::patch::{PatchOpKind, PatchOperation};
use muster_scim::schema::{ConversionFailure, RemovedValue};
use muster_scim::{
    apply_patch_with, convert_resource, diff_schemas, parse_schema_definition,
    refuse_password_attributes, refuse_reserved_urn, remove_attributes, AttrPath, Attribute,
    PatchPath, ResourceType, Returned, Schema, SchemaChanges, SchemaRegistry, ScimError,
    UndeclaredPolicy, Uniqueness,
};
use muster_store::{
    Actor, RewriteFn, RewriteOutcome, SchemaRecord, SharedDerivation, Store, StoredResource,
    TenantId, UniqueAttribute,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rules::EntitlementDerivation;
use crate::tenant::{load_view, schema_unique_attributes, TenantView};
use crate::Error;

/// At most this many conversion failures are listed in a report.
const MAX_LISTED_FAILURES: usize = 100;

/// How a schema is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ApplyOptions {
    /// The resource type to bind to; default: the type it is bound to, else
    /// the URN's last segment (`...:2.0:Group`), else `User`.
    pub resource_type: Option<String>,
    /// Whether the extension is required; default: as bound, else `false`.
    pub required: Option<bool>,
    /// Remove attributes that hold values (the values are recorded in the
    /// change log).
    pub force: bool,
    /// Only report what would happen.
    pub dry_run: bool,
    /// The attributes whose values are indexed for filtering, as a
    /// comma-separated list of the extension's top-level attribute names;
    /// default: as stored (none for a new schema). Attributes with a
    /// `uniqueness` are always indexed. Filters on the others work but scan.
    pub searchable: Option<String>,
}

/// How many resources hold values at a path a change removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedPath {
    /// The attribute path, URN-qualified.
    pub path: String,
    /// Resources holding a value there.
    pub holders: u64,
}

/// A stored value that would not survive a schema change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFailure {
    /// The resource holding it.
    pub id: String,
    /// The attribute path.
    pub path: String,
    /// The stored value.
    pub value: Value,
    /// Why it does not convert.
    pub reason: String,
}

/// What a schema change did, or would do on a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaReport {
    /// The schema URN.
    pub id: String,
    /// The resource type it extends.
    pub resource_type: String,
    /// Whether it is required on that type.
    pub required: bool,
    /// The attributes indexed for filtering.
    pub searchable: Vec<String>,
    /// Whether the schema was declared for the first time.
    pub created: bool,
    /// Whether the change was made (`false` on a dry run).
    pub applied: bool,
    /// How the definition differs from the stored one.
    pub changes: SchemaChanges,
    /// Paths the change removes that hold values.
    pub removed_values: Vec<RemovedPath>,
    /// Stored values that would not convert (at most 100 listed).
    pub conversion_failures: Vec<ValueFailure>,
    /// How many stored values would not convert in all.
    pub conversion_failure_count: u64,
    /// Captured (undeclared) values that the change declares, with how many
    /// resources hold one: they move into the resources, validated; a value
    /// that does not fit its new declaration stays captured.
    pub adopted_values: Vec<RemovedPath>,
    /// Resources rewritten by the change.
    pub rewritten: u64,
    /// Users whose contact-center entitlements the change altered (an
    /// attribute the rules in force read was converted): recomputed and
    /// stored in the change's transaction. Left out when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub rederived: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// What a scan of the stored resources found.
#[derive(Default)]
struct ScanFindings {
    holders: BTreeMap<String, u64>,
    adopted: BTreeMap<String, u64>,
    failures: Vec<ValueFailure>,
    failure_count: u64,
}

/// How one stored resource fares under a schema change: its rewritten form,
/// the values removed, or the values that would not convert.
struct Rewrite {
    resource: Value,
    removed: Vec<RemovedValue>,
    /// The captured values left once declared ones were adopted; `None`
    /// when none was adopted.
    unmapped: Option<Map<String, Value>>,
    /// The captured paths adopted into the resource.
    adopted: Vec<String>,
}

/// The rules of one schema change, applied to each stored resource.
#[derive(Clone)]
struct Migration {
    old: Option<Schema>,
    new: Option<Schema>,
    removed: Vec<String>,
    required_urn: Option<String>,
    /// Attributes that become unique (or whose values change type or case
    /// rule while unique): the stored values must not clash.
    unique: Vec<UniqueAttribute>,
    /// The registry after the change, when captured values it now declares
    /// are to be adopted.
    adopt: Option<Adoption>,
    /// Paths never returned before or after the change: their values stay
    /// out of the index and of the change records (removed values too).
    never_returned: Vec<String>,
}

/// What adopting captured values needs: the registry after the change.
#[derive(Clone)]
struct Adoption {
    registry: Arc<SchemaRegistry>,
    resource_type: ResourceType,
}

impl Adoption {
    /// Moves the captured values the registry now declares into `resource`,
    /// each validated as a PATCH `replace` would; one that does not fit
    /// stays captured.
    fn apply(
        &self,
        resource: &mut Value,
        unmapped: &Map<String, Value>,
    ) -> (Option<Map<String, Value>>, Vec<String>) {
        let mut remaining = unmapped.clone();
        let mut adopted = Vec::new();
        for (key, value) in unmapped {
            if !declares(&self.registry, &self.resource_type, key) {
                continue;
            }
            let Ok(path) = PatchPath::parse(key) else {
                continue;
            };
            let operation = PatchOperation {
                op: PatchOpKind::Replace,
                path: Some(path),
                value: Some(value.clone()),
            };
            let patched = apply_patch_with(
                &self.registry,
                &self.resource_type,
                resource,
                &Map::new(),
                std::slice::from_ref(&operation),
                UndeclaredPolicy::Reject,
            );
            if let Ok(patched) = patched {
                *resource = patched.resource;
                remaining.remove(key);
                adopted.push(key.clone());
            }
        }
        let unmapped = (!adopted.is_empty()).then_some(remaining);
        (unmapped, adopted)
    }
}

/// Whether `rt` declares the path `name` (an attribute or a whole extension).
fn declares(registry: &SchemaRegistry, rt: &ResourceType, name: &str) -> bool {
    AttrPath::parse(name).is_ok_and(|path| registry.resolve(rt, &path).is_some())
}

/// The values seen so far at each attribute that must be unique, across
/// the resources of one scan or rewrite.
struct UniqueValues {
    attributes: Vec<UniqueAttribute>,
    /// (attribute index, comparable value) to the id of its first holder.
    holders: HashMap<(usize, String), String>,
}

impl UniqueValues {
    fn new(attributes: Vec<UniqueAttribute>) -> Self {
        UniqueValues {
            attributes,
            holders: HashMap::new(),
        }
    }

    /// Notes the values `resource` (with id `id`) holds, and reports each
    /// one another resource already holds.
    fn check(&mut self, id: &str, resource: &Value) -> Vec<ConversionFailure> {
        let mut failures = Vec::new();
        for (index, attribute) in self.attributes.iter().enumerate() {
            let mut values = Vec::new();
            values_at(resource, &attribute.path, &mut values);
            let mut own: Vec<String> = Vec::new();
            for value in values {
                let key = match value {
                    Value::String(text) if !attribute.case_exact => text.to_lowercase(),
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                if own.contains(&key) {
                    continue;
                }
                own.push(key.clone());
                match self.holders.get(&(index, key.clone())) {
                    Some(holder) => failures.push(ConversionFailure {
                        path: attribute.path.clone(),
                        value: value.clone(),
                        reason: format!(
                            "resource {holder} holds the same value, and the attribute's values must be unique"
                        ),
                    }),
                    None => {
                        self.holders.insert((index, key), id.to_owned());
                    }
                }
            }
        }
        failures
    }
}

/// The present scalar values of a resource at a URN-qualified path
/// (`urn:...:User:code` or `urn:...:User:complex.sub`), names matched
/// case-insensitively.
fn values_at<'v>(resource: &'v Value, path: &str, values: &mut Vec<&'v Value>) {
    fn member<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
        value
            .as_object()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
    fn scalars<'v>(value: &'v Value, values: &mut Vec<&'v Value>) {
        match value {
            Value::Array(items) => items.iter().for_each(|item| scalars(item, values)),
            Value::Null | Value::Object(_) => {}
            Value::String(text) if text.is_empty() => {}
            scalar => values.push(scalar),
        }
    }
    let Some((urn, attribute)) = path.rsplit_once(':') else {
        return;
    };
    let Some(extension) = member(resource, urn) else {
        return;
    };
    match attribute.split_once('.') {
        None => {
            if let Some(value) = member(extension, attribute) {
                scalars(value, values);
            }
        }
        Some((name, sub)) => match member(extension, name) {
            Some(Value::Array(elements)) => {
                for element in elements {
                    if let Some(value) = member(element, sub) {
                        scalars(value, values);
                    }
                }
            }
            Some(element) => {
                if let Some(value) = member(element, sub) {
                    scalars(value, values);
                }
            }
            None => {}
        },
    }
}

impl Migration {
    /// Failures as an admin may see them: the values of attributes that
    /// are never returned are not shown.
    fn redact(&self, failures: Vec<ConversionFailure>) -> Vec<ConversionFailure> {
        failures
            .into_iter()
            .map(|failure| {
                let hidden = self.never_returned.iter().any(|path| {
                    failure.path.eq_ignore_ascii_case(path)
                        || failure
                            .path
                            .get(..path.len() + 1)
                            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(&format!("{path}.")))
                });
                if hidden {
                    ConversionFailure {
                        value: Value::String("(not shown: never returned)".to_owned()),
                        reason: "the stored value does not fit the new definition".to_owned(),
                        ..failure
                    }
                } else {
                    failure
                }
            })
            .collect()
    }

    fn rewrite(&self, stored: &StoredResource) -> Result<Rewrite, Vec<ConversionFailure>> {
        self.rewrite_unredacted(stored)
            .map_err(|failures| self.redact(failures))
    }

    fn rewrite_unredacted(
        &self,
        stored: &StoredResource,
    ) -> Result<Rewrite, Vec<ConversionFailure>> {
        let mut rewritten = stored.resource.clone();
        let removed = remove_attributes(&mut rewritten, &self.removed);
        if let (Some(old), Some(new)) = (&self.old, &self.new) {
            rewritten = convert_resource(old, new, &rewritten)?;
        }
        if let Some(urn) = &self.required_urn {
            if !holds_extension(&rewritten, urn) {
                return Err(vec![ConversionFailure {
                    path: urn.clone(),
                    value: Value::Null,
                    reason: "the extension becomes required and this resource has none of it"
                        .to_owned(),
                }]);
            }
        }
        let (unmapped, adopted) = match &self.adopt {
            Some(adoption) if !stored.unmapped.is_empty() => {
                adoption.apply(&mut rewritten, &stored.unmapped)
            }
            _ => (None, Vec::new()),
        };
        Ok(Rewrite {
            resource: rewritten,
            removed,
            unmapped,
            adopted,
        })
    }

    fn is_needed(&self) -> bool {
        !self.removed.is_empty()
            || self.required_urn.is_some()
            || self.old.is_some()
            || !self.unique.is_empty()
            || self.adopt.is_some()
    }

    /// Scans every resource of the type: who holds removed values, which
    /// values would not convert.
    async fn scan(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        resource_type: &str,
    ) -> Result<ScanFindings, Error> {
        let findings = Arc::new(Mutex::new(ScanFindings::default()));
        let migration = self.clone();
        let sink = Arc::clone(&findings);
        let mut unique = UniqueValues::new(self.unique.clone());
        store
            .scan(
                tenant,
                resource_type,
                Box::new(move |stored: &StoredResource| {
                    let mut findings = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    let checked = migration.rewrite(stored).and_then(|rewrite| {
                        let clashes =
                            migration.redact(unique.check(&stored.id.0, &rewrite.resource));
                        if clashes.is_empty() {
                            Ok(rewrite)
                        } else {
                            Err(clashes)
                        }
                    });
                    match checked {
                        Ok(rewrite) => {
                            for path in rewrite.adopted {
                                *findings.adopted.entry(path).or_default() += 1;
                            }
                            let mut seen = Vec::new();
                            for removed in rewrite.removed {
                                if !seen.contains(&removed.path) {
                                    *findings.holders.entry(removed.path.clone()).or_default() += 1;
                                    seen.push(removed.path);
                                }
                            }
                        }
                        Err(failures) => {
                            for failure in failures {
                                findings.failure_count += 1;
                                if findings.failures.len() < MAX_LISTED_FAILURES {
                                    findings.failures.push(ValueFailure {
                                        id: stored.id.0.clone(),
                                        path: failure.path,
                                        value: failure.value,
                                        reason: failure.reason,
                                    });
                                }
                            }
                        }
                    }
                }),
            )
            .await?;
        let mut findings = findings.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *findings))
    }

    /// The same rules, run by the store inside the schema write: a value
    /// that stopped converting since the scan aborts the change.
    fn into_rewrite_fn(self) -> RewriteFn {
        let mut unique = UniqueValues::new(self.unique.clone());
        Box::new(move |stored: &StoredResource| {
            let rewrite = self
                .rewrite(stored)
                .map_err(|failures| conversion_error(&stored.id.0, &failures))?;
            let clashes = self.redact(unique.check(&stored.id.0, &rewrite.resource));
            if !clashes.is_empty() {
                return Err(conversion_error(&stored.id.0, &clashes));
            }
            if rewrite.resource == stored.resource && rewrite.unmapped.is_none() {
                return Ok(None);
            }
            let removed = if rewrite.removed.is_empty() {
                Value::Null
            } else {
                serde_json::to_value(&rewrite.removed).unwrap_or(Value::Null)
            };
            Ok(Some(RewriteOutcome {
                resource: rewrite.resource,
                removed,
                unmapped: rewrite.unmapped,
                never_returned: self.never_returned.clone(),
            }))
        })
    }
}

/// Refuses to turn a declared attribute's `returned` to or from `never`:
/// stored values of a never-returned attribute are kept out of the lookup
/// index and the change log, and a change in place would leave them on the
/// wrong side of that line.
fn refuse_never_returned_changes(old: &Schema, new: &Schema) -> Result<(), ScimError> {
    let pairs = |old: &'_ [Attribute], new: &'_ [Attribute]| -> Vec<(String, bool, bool)> {
        new.iter()
            .filter_map(|attribute| {
                let before = old
                    .iter()
                    .find(|candidate| candidate.name.eq_ignore_ascii_case(&attribute.name))?;
                Some((
                    attribute.name.clone(),
                    before.returned == Returned::Never,
                    attribute.returned == Returned::Never,
                ))
            })
            .collect()
    };
    let mut changed = pairs(&old.attributes, &new.attributes);
    for attribute in &new.attributes {
        if let Some(before) = old.attribute(&attribute.name) {
            changed.extend(
                pairs(&before.sub_attributes, &attribute.sub_attributes)
                    .into_iter()
                    .map(|(name, was, is)| (format!("{}.{name}", attribute.name), was, is)),
            );
        }
    }
    match changed.into_iter().find(|(_, was, is)| was != is) {
        Some((name, was, _)) => Err(ScimError::status(
            409,
            format!(
                "'{}:{name}' cannot change 'returned' {} 'never' in place; remove the attribute (force) and declare it again; nothing was changed",
                new.id,
                if was { "from" } else { "to" }
            ),
        )),
        None => Ok(()),
    }
}

/// The paths of `resource_type` never returned under any of `registries`.
fn never_returned_paths<const N: usize>(
    registries: [&SchemaRegistry; N],
    resource_type: &str,
) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for registry in registries {
        if let Some(rt) = registry.resource_type(resource_type) {
            for path in registry.never_returned_paths(rt) {
                if !paths.iter().any(|known| known.eq_ignore_ascii_case(&path)) {
                    paths.push(path);
                }
            }
        }
    }
    paths
}

fn conversion_error(id: &str, failures: &[ConversionFailure]) -> ScimError {
    let listed: Vec<String> = failures
        .iter()
        .map(|f| format!("{} = {} ({})", f.path, f.value, f.reason))
        .collect();
    ScimError::status(
        409,
        format!(
            "resource {id} holds values the new schema cannot take: {}; nothing was changed",
            listed.join("; ")
        ),
    )
}

/// Whether a canonical resource holds any value of the extension `urn`.
fn holds_extension(resource: &Value, urn: &str) -> bool {
    resource.as_object().is_some_and(|object| {
        object.iter().any(|(key, value)| {
            key.eq_ignore_ascii_case(urn) && value.as_object().is_some_and(|o| !o.is_empty())
        })
    })
}

/// Declares or changes a custom extension schema: validates the definition,
/// checks what it does to stored values, and stores it (rewriting the
/// resources it affects in the same transaction) unless `options.dry_run`.
///
/// `path_urn` is the URN of `PUT /admin/v1/schemas/{urn}`: the document's
/// `id` must match it, or may be left out.
pub async fn apply_schema(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    document: &Value,
    path_urn: Option<&str>,
    options: &ApplyOptions,
) -> Result<SchemaReport, Error> {
    crate::retry_when_stale(|| apply_schema_once(store, tenant, actor, document, path_urn, options))
        .await
}

async fn apply_schema_once(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    document: &Value,
    path_urn: Option<&str>,
    options: &ApplyOptions,
) -> Result<SchemaReport, Error> {
    let document = with_path_urn(document, path_urn)?;
    let schema = parse_schema_definition(&document)?;
    refuse_password_attributes(&schema)?;
    refuse_reserved_urn(&schema)?;
    let view = load_view(store, tenant).await?;
    let mut registry = SchemaRegistry::clone(&view.registry);
    let (resource_type, was_required) = {
        let rt = registry.extension_resource_type(&schema.id, options.resource_type.as_deref())?;
        let bound = rt
            .schema_extensions
            .iter()
            .find(|ext| ext.schema.eq_ignore_ascii_case(&schema.id))
            .map(|ext| ext.required);
        (rt.id.clone(), bound)
    };
    let required = options.required.or(was_required).unwrap_or(false);
    let stored_searchable = store
        .list_schemas(tenant)
        .await?
        .into_iter()
        .find(|record| record.urn.eq_ignore_ascii_case(&schema.id))
        .map(|record| record.searchable);
    let searchable =
        searchable_attributes(&schema, options.searchable.as_deref(), stored_searchable)?;
    let old = registry.put_extension(schema.clone(), &resource_type, required)?;
    if let Some(old) = &old {
        refuse_never_returned_changes(old, &schema)?;
    }
    let changes = old
        .as_ref()
        .map(|old| diff_schemas(old, &schema))
        .unwrap_or_default();
    let adopt = adoption(store, tenant, &registry, &resource_type).await?;
    let never_returned = never_returned_paths([&view.registry, &registry], &resource_type);
    let migration = Migration {
        never_returned,
        removed: changes.removed.clone(),
        required_urn: (required && !was_required.unwrap_or(false)).then(|| schema.id.clone()),
        unique: newly_unique(old.as_ref(), &schema, &changes),
        new: old.as_ref().map(|_| schema.clone()),
        old,
        adopt,
    };
    let findings = if migration.is_needed() {
        migration.scan(store, tenant, &resource_type).await?
    } else {
        ScanFindings::default()
    };
    let mut report = SchemaReport {
        id: schema.id.clone(),
        resource_type: resource_type.clone(),
        required,
        searchable: searchable.clone(),
        created: migration.old.is_none(),
        applied: false,
        changes,
        removed_values: findings
            .holders
            .into_iter()
            .map(|(path, holders)| RemovedPath { path, holders })
            .collect(),
        conversion_failures: findings.failures,
        conversion_failure_count: findings.failure_count,
        adopted_values: findings
            .adopted
            .into_iter()
            .map(|(path, holders)| RemovedPath { path, holders })
            .collect(),
        rewritten: 0,
        rederived: 0,
    };
    if options.dry_run {
        return Ok(report);
    }
    refuse_unsafe(&report, options.force)?;
    let rederive = rederive_users(&view, &registry, &report.resource_type)?;
    let record = SchemaRecord {
        urn: schema.id.clone(),
        resource_type,
        required,
        document: serde_json::to_value(&schema)
            .map_err(|error| Error::Internal(format!("schema document: {error}")))?,
        updated: String::new(),
        client: String::new(),
        searchable,
    };
    let rewrite = migration.is_needed().then(|| migration.into_rewrite_fn());
    let outcome = store
        .put_schema(
            tenant,
            actor,
            record,
            rewrite,
            rederive,
            Some(view.generation),
        )
        .await?;
    report.applied = true;
    report.rewritten = outcome.rewritten;
    report.rederived = outcome.rederived;
    Ok(report)
}

/// The unique attributes of `new` whose stored values must be checked for
/// clashes: those that were not unique (or not declared) in `old`, or
/// whose type, multi-valuedness or case rule changes (values that differed
/// may become equal).
fn newly_unique(
    old: Option<&Schema>,
    new: &Schema,
    changes: &SchemaChanges,
) -> Vec<UniqueAttribute> {
    let Some(old) = old else {
        // A schema declared for the first time holds no stored values.
        return Vec::new();
    };
    let before = schema_unique_attributes(old);
    let changed = |path: &str| {
        changes
            .type_changes
            .iter()
            .any(|change| change.path.eq_ignore_ascii_case(path))
            || changes
                .multi_valued_changes
                .iter()
                .any(|change| change.path.eq_ignore_ascii_case(path))
    };
    schema_unique_attributes(new)
        .into_iter()
        .filter(|attribute| {
            changed(&attribute.path)
                || !before.iter().any(|old| {
                    old.path.eq_ignore_ascii_case(&attribute.path)
                        && old.case_exact == attribute.case_exact
                })
        })
        .collect()
}

/// Removes a custom extension schema. Values stored under it are removed
/// too (and recorded in the change log), which needs `force` when any
/// resource holds one.
pub async fn remove_schema(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    urn: &str,
    force: bool,
    dry_run: bool,
) -> Result<SchemaReport, Error> {
    crate::retry_when_stale(|| remove_schema_once(store, tenant, actor, urn, force, dry_run)).await
}

async fn remove_schema_once(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    urn: &str,
    force: bool,
    dry_run: bool,
) -> Result<SchemaReport, Error> {
    let view = load_view(store, tenant).await?;
    let mut registry = SchemaRegistry::clone(&view.registry);
    let resource_type = registry.extension_resource_type(urn, None)?.id.clone();
    let schema = registry.remove_extension(urn)?;
    let never_returned = never_returned_paths([&view.registry, &registry], &resource_type);
    let migration = Migration {
        never_returned,
        old: None,
        new: None,
        removed: vec![schema.id.clone()],
        required_urn: None,
        unique: Vec::new(),
        adopt: None,
    };
    let findings = migration.scan(store, tenant, &resource_type).await?;
    let mut report = SchemaReport {
        id: schema.id.clone(),
        resource_type,
        required: false,
        searchable: Vec::new(),
        created: false,
        applied: false,
        changes: SchemaChanges {
            removed: schema
                .attributes
                .iter()
                .map(|attribute| format!("{}:{}", schema.id, attribute.name))
                .collect(),
            ..SchemaChanges::default()
        },
        removed_values: findings
            .holders
            .into_iter()
            .map(|(path, holders)| RemovedPath { path, holders })
            .collect(),
        conversion_failures: Vec::new(),
        conversion_failure_count: 0,
        adopted_values: findings
            .adopted
            .into_iter()
            .map(|(path, holders)| RemovedPath { path, holders })
            .collect(),
        rewritten: 0,
        rederived: 0,
    };
    if dry_run {
        return Ok(report);
    }
    refuse_unsafe(&report, force)?;
    let rederive = rederive_users(&view, &registry, &report.resource_type)?;
    let rewrite = (!report.removed_values.is_empty()).then(|| migration.into_rewrite_fn());
    let outcome = store
        .delete_schema(
            tenant,
            actor,
            &schema.id,
            rewrite,
            rederive,
            Some(view.generation),
        )
        .await?;
    report.applied = true;
    report.rewritten = outcome.rewritten;
    report.rederived = outcome.rederived;
    Ok(report)
}

/// The attributes of `schema` to index for filtering: the requested
/// comma-separated names (or, when none are requested, those stored before
/// that the schema still declares), plus every attribute with a
/// `uniqueness`, whose check needs the index; in declaration order.
fn searchable_attributes(
    schema: &Schema,
    requested: Option<&str>,
    stored: Option<Vec<String>>,
) -> Result<Vec<String>, ScimError> {
    let wanted: Vec<String> = match requested {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        None => stored.unwrap_or_default(),
    };
    if requested.is_some() {
        if let Some(unknown) = wanted.iter().find(|name| schema.attribute(name).is_none()) {
            let declared: Vec<&str> = schema.attributes.iter().map(|a| a.name.as_str()).collect();
            return Err(ScimError::invalid_value(format!(
                "searchable: '{unknown}' is not a top-level attribute of '{}'; it declares {}",
                schema.id,
                declared.join(", ")
            )));
        }
    }
    Ok(schema
        .attributes
        .iter()
        .filter(|attribute| {
            attribute.uniqueness != Uniqueness::None
                || wanted
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(&attribute.name))
        })
        .map(|attribute| attribute.name.clone())
        .collect())
}

/// The adoption of captured values, when the resource type holds captured
/// values at paths `registry` (after the change) declares; `None` spares a
/// rewrite of every resource when there is nothing to adopt.
async fn adoption(
    store: &dyn Store,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    resource_type: &str,
) -> Result<Option<Adoption>, Error> {
    let Some(rt) = registry.resource_type(resource_type) else {
        return Ok(None);
    };
    let usage = store.attribute_usage(tenant).await?;
    let adoptable = usage.iter().any(|row| {
        !row.declared
            && row.holders > 0
            && row.resource_type.eq_ignore_ascii_case(&rt.id)
            && declares(registry, rt, &row.path)
    });
    Ok(adoptable.then(|| Adoption {
        registry: Arc::new(registry.clone()),
        resource_type: rt.clone(),
    }))
}

/// What a change to a schema of `resource_type` does to users'
/// entitlements, with `registry` the tenant's schemas after it: `None`
/// without a rule set in force, or for a type other than `User` (the rules
/// read only users' attributes and groups' display names); else the
/// derivation of the rule set in force against `registry`, which the store
/// runs over every user in the change's transaction, so no stored
/// entitlement outlives the schema it was derived under.
///
/// Refused (409, nothing changed) when the rule set in force reads an
/// attribute the change removes, or reads it in a way the new definition
/// no longer allows (a table key that becomes complex or multi-valued, a
/// comparison the new type refuses): the rules must be changed first.
fn rederive_users(
    view: &TenantView,
    registry: &SchemaRegistry,
    resource_type: &str,
) -> Result<Option<SharedDerivation>, Error> {
    let Some(rules) = &view.rules else {
        return Ok(None);
    };
    if !resource_type.eq_ignore_ascii_case(USER) {
        return Ok(None);
    }
    refuse_broken_rules(&rules.rule_set, rules.version, &view.registry, registry)?;
    let derivation = EntitlementDerivation::shared(Arc::clone(rules), Arc::new(registry.clone()))?;
    Ok(Some(derivation))
}

/// The `User` resource type id.
const USER: &str = "User";

/// Refuses a schema change under which the rule set in force (`version`)
/// no longer validates, attribute-wise, where it did under `before`: each
/// rule (or table) that would read an attribute that is gone or changed
/// incompatibly is named.
fn refuse_broken_rules(
    rule_set: &RuleSet,
    version: u64,
    before: &SchemaRegistry,
    after: &SchemaRegistry,
) -> Result<(), ScimError> {
    let attribute_errors = |registry: &SchemaRegistry| -> Vec<RuleError> {
        let Some(users) = registry.resource_type(USER) else {
            return Vec::new();
        };
        match rule_set.validate(registry, users, &[]) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .0
                .into_iter()
                .filter(|error| error.kind == ErrorKind::UnknownAttribute)
                .collect(),
        }
    };
    let already: Vec<(Option<String>, String)> = attribute_errors(before)
        .into_iter()
        .map(|error| (error.rule, error.field))
        .collect();
    let broken: Vec<String> = attribute_errors(after)
        .into_iter()
        .filter(|error| {
            !already
                .iter()
                .any(|(rule, field)| *rule == error.rule && *field == error.field)
        })
        .map(|error| {
            format!(
                "rule '{}' ({}): {}",
                error.rule.as_deref().unwrap_or("?"),
                error.field,
                error.message
            )
        })
        .collect();
    if broken.is_empty() {
        return Ok(());
    }
    Err(ScimError::status(
        409,
        format!(
            "the entitlement rule set in force (version {version}) reads what this schema change removes or changes: {}; change the rules first (PUT /admin/v1/rules or muster rules apply); nothing was changed",
            broken.join("; ")
        ),
    ))
}

/// Refuses a change that would lose values without `force`, or that cannot
/// convert every stored value.
fn refuse_unsafe(report: &SchemaReport, force: bool) -> Result<(), ScimError> {
    if report.conversion_failure_count > 0 {
        let listed: Vec<String> = report
            .conversion_failures
            .iter()
            .take(5)
            .map(|f| format!("{} of {} = {} ({})", f.path, f.id, f.value, f.reason))
            .collect();
        return Err(ScimError::status(
            409,
            format!(
                "{} stored value(s) would not convert to the new definition of '{}', e.g. {}; nothing was changed (a dry run lists them: ?dryRun=true or --dry-run)",
                report.conversion_failure_count,
                report.id,
                listed.join("; ")
            ),
        ));
    }
    if !force && !report.removed_values.is_empty() {
        let listed: Vec<String> = report
            .removed_values
            .iter()
            .map(|removed| format!("'{}' ({} resources)", removed.path, removed.holders))
            .collect();
        return Err(ScimError::status(
            409,
            format!(
                "removing {} deletes stored values; repeat with force (?force=true or --force) to remove them (the removed values are kept in the change log); nothing was changed",
                listed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The document with `id` taken from the path when it has none; an `id`
/// that differs from the path is refused.
fn with_path_urn(document: &Value, path_urn: Option<&str>) -> Result<Value, ScimError> {
    let Some(path_urn) = path_urn else {
        return Ok(document.clone());
    };
    let mut document = document.clone();
    let Some(object) = document.as_object_mut() else {
        return Err(ScimError::invalid_syntax(
            "a schema must be a JSON object (RFC 7643 section 7)",
        ));
    };
    let id = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("id"))
        .map(|(_, value)| value.clone());
    match id {
        None => {
            object.insert("id".to_owned(), Value::String(path_urn.to_owned()));
        }
        Some(Value::String(id)) if id.eq_ignore_ascii_case(path_urn) => {}
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "id: the schema's id {other} differs from the URN in the path '{path_urn}'"
            )))
        }
    }
    Ok(document)
}
