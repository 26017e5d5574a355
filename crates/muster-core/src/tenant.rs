//! What each tenant has declared: its schema registry (built-in schemas plus
//! the custom extensions stored for it) and its undeclared-attribute policy.
//!
//! The store is the source of truth. Views are cached for
//! [`TENANT_VIEW_TTL`], so a schema applied through another process (the
//! `muster schema apply` CLI, or another replica) is served within that
//! time, and one applied through this server's admin API at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use muster_scim::{
    parse_schema_definition, Attribute, ResourceType, Schema, SchemaRegistry, ScimError,
    UndeclaredPolicy, Uniqueness,
};
use muster_store::{SharedDerivation, Store, StoreError, TenantId, UniqueAttribute};

/// How long a tenant view is served before it is read again from the store.
pub const TENANT_VIEW_TTL: Duration = Duration::from_secs(1);

/// The setting that holds a tenant's [`UndeclaredPolicy`].
pub const UNDECLARED_SETTING: &str = "undeclaredAttributes";

/// A tenant's schemas and policies, as of one read of the store.
#[derive(Debug, Clone)]
pub struct TenantView {
    /// The tenant's schema generation this view was read at: writes
    /// validated against it carry it, and the store refuses them once the
    /// stored schemas or settings have moved on.
    pub generation: u64,
    /// Built-in schemas plus the tenant's custom extensions.
    pub registry: Arc<SchemaRegistry>,
    /// What happens to attributes no schema declares.
    pub undeclared: UndeclaredPolicy,
    /// Extension attributes whose values the store keeps unique, by
    /// resource type id.
    pub unique: HashMap<String, Vec<UniqueAttribute>>,
    /// Paths of attributes declared `returned: never`, by resource type id:
    /// the store keeps their values out of its index and change payloads.
    pub never_returned: HashMap<String, Vec<String>>,
    /// The entitlement rule set in force, if any.
    pub rules: crate::rules::SharedRules,
    /// The derivation of the rule set in force (a user's contact-center
    /// entitlements), built against `registry`; `None` without a rule set.
    /// Every write validated against this view carries it, so the store
    /// recomputes the entitlements of the users the write affects.
    pub derivation: Option<SharedDerivation>,
    /// The tenant's origin settings (see [`crate::origin`]): the tag each
    /// write's resource holds, and what a foreign tag means.
    pub origin: crate::origin::OriginPolicy,
}

impl TenantView {
    /// The attributes whose values a write to `rt` must keep unique.
    pub fn unique_attributes(&self, rt: &ResourceType) -> Vec<UniqueAttribute> {
        self.unique.get(&rt.id).cloned().unwrap_or_default()
    }

    /// The paths of `rt` whose values are never returned.
    pub fn never_returned(&self, rt: &ResourceType) -> Vec<String> {
        self.never_returned.get(&rt.id).cloned().unwrap_or_default()
    }
}

/// Reads a tenant's view from the store.
///
/// A stored schema that no longer parses (written by a newer version, or
/// edited by hand) is an error rather than silently skipped: serving without
/// it would refuse or misplace the values it declares.
pub async fn load_view(store: &dyn Store, tenant: &TenantId) -> Result<TenantView, StoreError> {
    let mut registry = SchemaRegistry::builtin();
    let (generation, records) = store.tenant_schemas(tenant).await?;
    for record in records {
        let schema = parse_schema_definition(&record.document).map_err(|error| {
            StoreError::Database(format!(
                "stored schema '{}' is invalid: {}",
                record.urn, error.detail
            ))
        })?;
        registry
            .put_extension(schema, &record.resource_type, record.required)
            .map_err(|error| {
                StoreError::Database(format!(
                    "stored schema '{}' cannot be bound to {}: {}",
                    record.urn, record.resource_type, error.detail
                ))
            })?;
    }
    let rules = match store.rule_set(tenant, None).await? {
        None => None,
        Some(record) => Some(Arc::new(
            crate::rules::parse_stored(&record)
                .map_err(|error| StoreError::Database(error.to_string()))?,
        )),
    };
    if rules.is_some() {
        // The computed contact-center extension exists once a rule set is
        // in force: listed in /Schemas and /ResourceTypes, stored with each
        // user by the store from the rules (see `derivation`), never
        // writable by clients.
        registry
            .put_extension(muster_rules::contact_center_schema(), "User", false)
            .map_err(|error| {
                StoreError::Database(format!("contact-center schema: {}", error.detail))
            })?;
    }
    let undeclared = match store.get_setting(tenant, UNDECLARED_SETTING).await? {
        None => UndeclaredPolicy::default(),
        Some(text) => UndeclaredPolicy::parse(&text).ok_or_else(|| {
            StoreError::Scim(ScimError::invalid_value(format!(
                "stored setting {UNDECLARED_SETTING} is '{text}', expected 'reject' or 'capture'"
            )))
        })?,
    };
    let unique = registry
        .resource_types()
        .iter()
        .map(|rt| (rt.id.clone(), unique_attributes(&registry, rt)))
        .collect();
    let never_returned = registry
        .resource_types()
        .iter()
        .map(|rt| (rt.id.clone(), registry.never_returned_paths(rt)))
        .collect();
    let registry = Arc::new(registry);
    let derivation = match &rules {
        None => None,
        Some(rules) => Some(
            crate::rules::EntitlementDerivation::shared(Arc::clone(rules), Arc::clone(&registry))
                .map_err(|error| StoreError::Database(error.to_string()))?,
        ),
    };
    let origin = crate::origin::load(store, tenant).await?;
    Ok(TenantView {
        origin,
        rules,
        derivation,
        generation,
        never_returned,
        registry,
        undeclared,
        unique,
    })
}

/// The extension attributes and sub-attributes of a resource type declared
/// with `uniqueness` `server` or `global`, as the store checks them on each
/// write. (The core attributes that are unique, `userName` and a Group's
/// `displayName`, the store always checks.)
pub fn unique_attributes(registry: &SchemaRegistry, rt: &ResourceType) -> Vec<UniqueAttribute> {
    registry
        .extensions(rt)
        .flat_map(|(schema, _)| schema_unique_attributes(schema))
        .collect()
}

/// The attributes and sub-attributes of one extension schema declared with
/// `uniqueness` `server` or `global`.
pub fn schema_unique_attributes(schema: &Schema) -> Vec<UniqueAttribute> {
    let is_unique = |attribute: &Attribute| attribute.uniqueness != Uniqueness::None;
    let mut unique = Vec::new();
    for attribute in &schema.attributes {
        let path = format!("{}:{}", schema.id, attribute.name);
        if is_unique(attribute) {
            unique.push(UniqueAttribute {
                path: path.clone(),
                case_exact: attribute.case_exact,
            });
        }
        for sub in attribute.sub_attributes.iter().filter(|sub| is_unique(sub)) {
            unique.push(UniqueAttribute {
                path: format!("{path}.{}", sub.name),
                case_exact: sub.case_exact,
            });
        }
    }
    unique
}

/// Tenant views by tenant, each with the instant it was read.
///
/// A view read while an admin change commits could be older than the
/// change; `generation` counts invalidations so that such a view is served
/// to the request that read it but never cached.
#[derive(Default)]
pub struct TenantViews {
    views: RwLock<HashMap<TenantId, (Arc<TenantView>, Instant)>>,
    generation: AtomicU64,
}

impl TenantViews {
    /// The tenant's view, read from the store when absent or older than
    /// [`TENANT_VIEW_TTL`].
    pub async fn get(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
    ) -> Result<Arc<TenantView>, StoreError> {
        if let Some(view) = self.fresh(tenant) {
            return Ok(view);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let view = Arc::new(load_view(store, tenant).await?);
        self.put(tenant, Arc::clone(&view), generation);
        Ok(view)
    }

    /// Forgets a tenant's view, so the next request reads the store (after
    /// an admin change through this server).
    pub fn invalidate(&self, tenant: &TenantId) {
        if let Ok(mut views) = self.views.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            views.remove(tenant);
        }
    }

    fn fresh(&self, tenant: &TenantId) -> Option<Arc<TenantView>> {
        let views = self.views.read().ok()?;
        let (view, read_at) = views.get(tenant)?;
        (read_at.elapsed() < TENANT_VIEW_TTL).then(|| Arc::clone(view))
    }

    /// Caches a view read at `generation`, unless an invalidation happened
    /// since (the view may predate the change that caused it).
    fn put(&self, tenant: &TenantId, view: Arc<TenantView>, generation: u64) {
        if let Ok(mut views) = self.views.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                views.insert(tenant.clone(), (view, Instant::now()));
            }
        }
    }
}
