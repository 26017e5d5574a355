//! Resource operations of one caller in one tenant: create, read, replace,
//! patch, delete, for every resource type the tenant's registry knows.
//!
//! The single-resource endpoints and `/Bulk` run exactly these functions.
//! Every write is validated against the tenant's view of its schemas and
//! then handed to the store inside an update closure, so concurrent writers
//! never lose an update.

use std::sync::Arc;

use bytes::Bytes;
use muster_scim::patch::{apply_patch_with, canonical_operations, PatchOp};
use muster_scim::projection::Projection;
use muster_scim::resource::{check_immutable, normalize_with, Normalized};
use muster_scim::{ResourceType, SchemaRegistry, ScimError, ScimType, UndeclaredPolicy};
use muster_store::{
    Actor, Member, MemberChange, NewResource, Precondition, Removal, ResourceId, StoreError,
    StoredResource, TenantId, Update,
};
use serde_json::{json, Map, Value};

use crate::matching::MatchPolicy;
use crate::members::{has_members, split_member_operations, split_members};
use crate::rendered::{Entry, KeyRef};
use crate::secrets::{hash_patch_passwords, hash_resource_password};
use crate::tenant::TenantView;
use crate::{Error, Service};

/// A resource as answered to a client: rendered (`meta.location`, `$ref`s,
/// projection) with what the response headers need.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The resource's id.
    pub id: String,
    /// Its version, the basis of the weak ETag.
    pub version: u64,
    /// Its absolute URL.
    pub location: String,
    /// The rendered resource; `None` where no body is wanted (a group PATCH
    /// answered with no content).
    pub body: Option<Value>,
}

/// A resource serialised as a GET answers it.
#[derive(Debug, Clone)]
pub struct RenderedJson {
    /// Its version, the basis of the weak ETag.
    pub version: u64,
    /// The JSON body.
    pub json: Bytes,
}

/// One caller's work in one tenant: the store, the tenant's schemas and
/// policies as of the session's start, and who is acting.
pub struct Session<'s> {
    service: &'s Service,
    tenant: TenantId,
    actor: Actor,
    base: String,
    view: Arc<TenantView>,
    /// How the caller's `POST /Users` links to an existing user (see
    /// [`crate::matching`]); empty: `409 uniqueness`.
    matching: MatchPolicy,
}

impl<'s> Session<'s> {
    pub(crate) fn new(
        service: &'s Service,
        tenant: TenantId,
        actor: Actor,
        base: String,
        view: Arc<TenantView>,
    ) -> Self {
        Session {
            service,
            tenant,
            actor,
            base,
            view,
            matching: MatchPolicy::default(),
        }
    }

    /// The session with the caller's conflict matching policy (the
    /// authenticated client's): a `POST /Users` naming an existing user
    /// links to it (see [`crate::matching`]).
    pub fn with_matching(mut self, matching: MatchPolicy) -> Self {
        self.matching = matching;
        self
    }

    /// The caller's conflict matching policy.
    pub fn matching(&self) -> &MatchPolicy {
        &self.matching
    }

    /// The service this session runs on.
    pub fn service(&self) -> &'s Service {
        self.service
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Who is acting, as change records name them.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The tenant's schema registry as of the session's start.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.view.registry
    }

    /// The tenant's policy for attributes no schema declares.
    pub fn undeclared(&self) -> UndeclaredPolicy {
        self.view.undeclared
    }

    /// The absolute SCIM base URL resources are located under.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The resource type served at `/{endpoint}` (case-insensitive).
    pub fn resource_type(&self, endpoint: &str) -> Result<ResourceType, Error> {
        self.registry()
            .resource_types()
            .iter()
            .find(|rt| {
                rt.endpoint
                    .trim_start_matches('/')
                    .eq_ignore_ascii_case(endpoint)
            })
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no such endpoint '/{endpoint}'")))
    }

    /// The projection of `attributes` / `excludedAttributes` query values.
    pub fn projection(
        &self,
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Result<Projection, Error> {
        Ok(Projection::parse(
            self.registry(),
            rt,
            attributes,
            excluded_attributes,
        )?)
    }

    /// Whether `rt` has members (kept as rows): a PATCH of it is answered
    /// without a body unless one is asked for.
    pub fn has_members(&self, rt: &ResourceType) -> bool {
        has_members(self.registry(), rt)
    }

    /// The absolute URL of a resource.
    pub fn location(&self, rt: &ResourceType, id: &str) -> String {
        format!("{}{}/{id}", self.base, rt.endpoint)
    }

    /// Adds `meta.location` and member and group `$ref`s, then applies the
    /// projection.
    pub(crate) fn render(
        &self,
        rt: &ResourceType,
        stored: StoredResource,
        projection: &Projection,
    ) -> Value {
        let mut resource = stored.resource;
        // The offboarding lock is Muster's own record, never shown to
        // SCIM clients (the admin API reports it).
        crate::offboard::hide_lock(&mut resource);
        if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
            meta.insert(
                "location".into(),
                json!(format!("{}{}/{}", self.base, rt.endpoint, stored.id.0)),
            );
        }
        for (attribute, default_endpoint) in [("groups", "/Groups"), ("members", "/Users")] {
            if let Some(items) = resource.get_mut(attribute).and_then(Value::as_array_mut) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    let endpoint = match item.get("type").and_then(Value::as_str) {
                        Some("Group") => "/Groups",
                        Some("User") => "/Users",
                        _ => default_endpoint,
                    };
                    if let Some(id) = item.get("value").and_then(Value::as_str) {
                        let reference = format!("{}{endpoint}/{id}", self.base);
                        item.insert("$ref".into(), json!(reference));
                    }
                }
            }
        }
        projection.apply(self.registry(), rt, &mut resource);
        resource
    }

    pub(crate) fn rendered(
        &self,
        rt: &ResourceType,
        stored: StoredResource,
        projection: &Projection,
    ) -> Rendered {
        Rendered {
            id: stored.id.0.clone(),
            version: stored.version,
            location: self.location(rt, &stored.id.0),
            body: Some(self.render(rt, stored, projection)),
        }
    }

    /// Reads one resource.
    pub async fn get(
        &self,
        rt: &ResourceType,
        id: &str,
        projection: &Projection,
    ) -> Result<Rendered, Error> {
        let stored = self
            .service
            .store()
            .get(
                &self.tenant,
                &rt.id,
                &ResourceId(id.to_owned()),
                projection.includes_members(),
            )
            .await?;
        Ok(self.rendered(rt, stored, projection))
    }

    /// Reads one resource as `GET /{endpoint}/{id}` answers it: serialised,
    /// from the cache of renderings when no projection is asked for and the
    /// cached rendering is of the current version (see [`crate::rendered`]).
    pub async fn get_json(
        &self,
        rt: &ResourceType,
        id: &str,
        projection: &Projection,
    ) -> Result<RenderedJson, Error> {
        let cacheable = projection.is_default();
        if cacheable {
            let key = KeyRef(&self.tenant.0, &rt.id, id);
            let kept = self
                .service
                .rendered
                .get(&key, self.view.generation, &self.base);
            if let Some(kept) = kept {
                let current = self
                    .service
                    .store()
                    .version(&self.tenant, &rt.id, &ResourceId(id.to_owned()))
                    .await?;
                if current == Some(kept.version) {
                    return Ok(RenderedJson {
                        version: kept.version,
                        json: kept.json,
                    });
                }
            }
        }
        let rendered = self.get(rt, id, projection).await?;
        let json = Bytes::from(serde_json::to_vec(&rendered.body).map_err(|error| {
            Error::Store(StoreError::Database(format!(
                "cannot serialise a resource: {error}"
            )))
        })?);
        if cacheable {
            self.service.rendered.insert(
                (self.tenant.0.clone(), rt.id.clone(), rendered.id),
                Entry {
                    version: rendered.version,
                    generation: self.view.generation,
                    base: self.base.clone(),
                    json: json.clone(),
                },
            );
        }
        Ok(RenderedJson {
            version: rendered.version,
            json,
        })
    }

    /// Creates a resource from a client body (POST and Bulk).
    pub async fn create(
        &self,
        rt: &ResourceType,
        body: Value,
        projection: &Projection,
    ) -> Result<Rendered, Error> {
        // The caller's matching policy may link the POST to an existing
        // user instead (see `crate::matching`).
        if let Some(linked) = self.link_on_match(rt, &body, projection).await? {
            return Ok(linked);
        }
        let created = self
            .with_fresh_view(rt, |view, rt| self.create_at(view, rt, None, body.clone()))
            .await;
        let stored = match created {
            // Taken by a concurrent create since the match: linked now.
            Err(Error::Store(StoreError::Conflict(detail))) if !self.matching.is_empty() => {
                match self.link_on_match(rt, &body, projection).await? {
                    Some(linked) => return Ok(linked),
                    None => return Err(Error::Store(StoreError::Conflict(detail))),
                }
            }
            created => created?,
        };
        Ok(self.rendered(rt, stored, projection))
    }

    /// Creates a resource exported from a Muster (`muster import`):
    /// validated as a POST body is (read-only attributes such as `meta`,
    /// computed `groups` and derived values are ignored and computed
    /// again), keeping its `id` when it has one, so members, delivered
    /// records and an identity provider's references still match. A
    /// resource whose id the tenant holds already is left as it is (an
    /// import run again after an interruption).
    pub async fn import(&self, rt: &ResourceType, body: Value) -> Result<Imported, Error> {
        let (id, mut body) = importable(body)?;
        // An id kept by a soft-deleted (or purged) resource is not free: a
        // live resource under it would make the tombstone unrestorable and
        // its purge redact the live one's audit entries.
        if let Some(id) = &id {
            if let Some(tombstone) = self.service.store().tombstone(&self.tenant, id).await? {
                let state = if tombstone.purged_at.is_some() {
                    "was purged; its id is never given again"
                } else {
                    "is soft-deleted; restore it (muster user restore) or purge it first"
                };
                return Err(Error::Scim(ScimError::bad_request(
                    ScimType::Uniqueness,
                    format!(
                        "id: '{}' belongs to a {} that {state}",
                        id.0, tombstone.resource_type
                    ),
                )));
            }
        }
        // An exported offboarding lock is put back after the create.
        let lock = crate::offboard::take_lock(&mut body);
        let created = self
            .with_fresh_view(rt, |view, rt| {
                self.create_at(view, rt, id.clone(), body.clone())
            })
            .await;
        match (created, &id) {
            (Ok(stored), _) => {
                if let Some(lock) = lock {
                    self.put_lock(&stored.id.0, lock).await?;
                }
                Ok(Imported::Created(stored.id.0))
            }
            (Err(Error::Store(StoreError::Conflict(detail))), Some(id)) => {
                let holder = self
                    .service
                    .store()
                    .get(&self.tenant, &rt.id, id, false)
                    .await;
                match holder {
                    Ok(_) => Ok(Imported::AlreadyPresent(id.0.clone())),
                    Err(StoreError::NotFound(_)) => Err(Error::Scim(ScimError::bad_request(
                        ScimType::Uniqueness,
                        format!("id: '{}' is held by a resource of another type", id.0),
                    ))),
                    Err(_) => Err(Error::Store(StoreError::Conflict(detail))),
                }
            }
            (Err(error), _) => Err(error),
        }
    }

    async fn create_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        id: Option<ResourceId>,
        body: Value,
    ) -> Result<StoredResource, Error> {
        let Prepared {
            resource,
            members,
            unmapped,
        } = prepare(&view, &rt, &body).await?;
        // A foreign source-of-truth tag: refused, or ignored (`crate::origin`).
        if let crate::origin::Decision::Ignore(tag) = view.origin.decide(&resource)? {
            return crate::origin::ignored_create(self, &view, &rt, id, resource, &tag).await;
        }
        let new = NewResource {
            id,
            resource,
            members,
            unmapped,
            unique: view.unique_attributes(&rt),
            schema_generation: Some(view.generation),
            never_returned: view.never_returned(&rt),
            derivation: view.derivation.clone(),
        };
        // A User soft-deleted within the retention with the same
        // `externalId` comes back with its id: no duplicate.
        if let Some(restored) = self.restore_by_external_id(&rt, &new).await? {
            return Ok(restored);
        }
        Ok(self
            .service
            .store()
            .create(&self.tenant, &self.actor, &rt.id, new)
            .await?)
    }

    /// Restores the newest User soft-deleted within the retention whose
    /// `externalId` (compared exactly) is the one `new` carries, with
    /// `new` as its state (see [`crate::lifecycle`]); `None` when there is
    /// none (or a concurrent restore took it first).
    async fn restore_by_external_id(
        &self,
        rt: &ResourceType,
        new: &NewResource,
    ) -> Result<Option<StoredResource>, Error> {
        let external_id = new.resource.get("externalId").and_then(Value::as_str);
        let (Some(external_id), None, crate::lifecycle::USER) =
            (external_id, &new.id, rt.id.as_str())
        else {
            return Ok(None);
        };
        let store = self.service.store();
        // The common case (no tombstone holds it) costs one indexed read;
        // the tenant's retention is read only when one does, and the store
        // checks it in the restore's transaction.
        let Some(id) = store
            .restorable_by_external_id(
                &self.tenant,
                &rt.id,
                external_id,
                crate::lifecycle::longest_retention(),
            )
            .await?
        else {
            return Ok(None);
        };
        let settings = crate::lifecycle::lifecycle_settings(store, &self.tenant).await?;
        // A user offboarded before its soft delete comes back locked and
        // inactive (`crate::offboard`).
        let new =
            crate::offboard::keep_lock_on_restore(store, &self.tenant, &id, new.clone()).await?;
        let restored = store
            .restore(
                &self.tenant,
                &self.actor,
                &rt.id,
                &id,
                new,
                settings.retention(),
            )
            .await;
        match restored {
            Ok(stored) => Ok(Some(stored)),
            // Taken by a concurrent restore, or past this tenant's
            // retention: a new user.
            Err(StoreError::NotFound(_) | StoreError::Refused(_)) => Ok(None),
            Err(error) => Err(crate::lifecycle::restore_error(Error::Store(error))),
        }
    }

    /// Restores a soft-deleted User an admin names (its id, or its
    /// `userName`): the same id comes back with a new version, in the
    /// groups that still exist. 404 when there is no such tombstone, 409
    /// when it was purged or its retention ended, or naming the attribute
    /// when its `userName` (or another unique value) was taken meanwhile.
    pub async fn restore_user(&self, key: &str) -> Result<Rendered, Error> {
        let rt = self
            .registry()
            .resource_type(crate::lifecycle::USER)
            .cloned()
            .ok_or_else(|| Error::not_found("no resource type 'User'"))?;
        let store = self.service.store();
        let tombstone = crate::lifecycle::find_deleted_user(store, &self.tenant, key).await?;
        crate::lifecycle::check_restorable(&tombstone, &rt)?;
        let stored = self
            .with_fresh_view(&rt, |view, rt| self.restore_at(view, rt, &tombstone))
            .await?;
        let projection = self.projection(&rt, None, None)?;
        Ok(self.rendered(&rt, stored, &projection))
    }

    async fn restore_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        tombstone: &muster_store::lifecycle::Tombstone,
    ) -> Result<StoredResource, Error> {
        let Some(stored) = tombstone.resource.clone() else {
            crate::lifecycle::check_restorable(tombstone, &rt)?;
            return Err(Error::not_found(format!(
                "no deleted User '{}' to restore",
                tombstone.id.0
            )));
        };
        // Validated again (the schemas may have changed since: values no
        // schema declares any more are kept apart as captured values, not
        // refused), its stored password hash kept as it is rather than
        // hashed again, its offboarding lock (`crate::offboard`) kept.
        let (_, mut body) = importable(stored.clone())?;
        let password = body.as_object_mut().and_then(|body| {
            body.retain(|key, _| !key.eq_ignore_ascii_case(crate::offboard::LOCK_URN));
            body.remove("password")
        });
        let Normalized { resource, unmapped } =
            normalize_with(&view.registry, &rt, &body, UndeclaredPolicy::Capture)?;
        let (mut resource, _) = split_members(resource)?;
        if let (Some(password), Some(resource)) = (password, resource.as_object_mut()) {
            resource.insert("password".to_owned(), password);
        }
        crate::offboard::hold_lock(&stored, &mut resource);
        let mut unmapped = unmapped;
        unmapped.extend(tombstone.unmapped.clone());
        let settings =
            crate::lifecycle::lifecycle_settings(self.service.store(), &self.tenant).await?;
        self.service
            .store()
            .restore(
                &self.tenant,
                &self.actor,
                &rt.id,
                &tombstone.id,
                NewResource {
                    id: Some(tombstone.id.clone()),
                    resource,
                    members: Vec::new(),
                    unmapped,
                    unique: view.unique_attributes(&rt),
                    schema_generation: Some(view.generation),
                    never_returned: view.never_returned(&rt),
                    derivation: view.derivation.clone(),
                },
                settings.retention(),
            )
            .await
            .map_err(|error| crate::lifecycle::restore_error(Error::Store(error)))
    }

    /// Runs a write validated against the tenant's view, again against a
    /// fresh view when the store says the schemas changed meanwhile (a write
    /// is never decided by a stale schema), or that it collided with a
    /// concurrent write and rolled back.
    pub(crate) async fn with_fresh_view<T, F, Fut>(
        &self,
        rt: &ResourceType,
        write: F,
    ) -> Result<T, Error>
    where
        F: Fn(Arc<TenantView>, ResourceType) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut view = Arc::clone(&self.view);
        let mut rt = rt.clone();
        let mut retries = 0;
        loop {
            let result = write(Arc::clone(&view), rt.clone()).await;
            let stale = match &result {
                // Rolled back, nothing written: a concurrent write through
                // another connection or replica won a lock first.
                Err(Error::Store(StoreError::StaleSchema { .. } | StoreError::Contention(_))) => {
                    true
                }
                // A refusal by a view that is no longer current (an
                // attribute declared a moment ago by the CLI or another
                // replica) is decided again by the current one.
                Err(Error::Scim(error)) if error.status == 400 => {
                    self.service.store().schema_generation(&self.tenant).await? != view.generation
                }
                _ => false,
            };
            match result {
                Err(_) if stale && retries < crate::STALE_RETRIES => {
                    retries += 1;
                    self.service.invalidate(&self.tenant);
                    view = self.service.view(&self.tenant).await?;
                    rt = view
                        .registry
                        .resource_type(&rt.id)
                        .cloned()
                        .ok_or_else(|| Error::not_found(format!("no resource type '{}'", rt.id)))?;
                }
                result => return result,
            }
        }
    }

    /// Replaces a resource from a client body (PUT and Bulk). The captured
    /// undeclared values are replaced too.
    pub async fn replace(
        &self,
        rt: &ResourceType,
        id: &str,
        precondition: Precondition,
        body: Value,
        projection: &Projection,
    ) -> Result<Rendered, Error> {
        let include_members = projection.includes_members();
        let stored = self
            .with_fresh_view(rt, |view, rt| {
                self.replace_at(view, rt, id, precondition, body.clone(), include_members)
            })
            .await?;
        Ok(self.rendered(rt, stored, projection))
    }

    async fn replace_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        id: &str,
        precondition: Precondition,
        body: Value,
        include_members: bool,
    ) -> Result<StoredResource, Error> {
        let Prepared {
            resource,
            members,
            unmapped,
        } = prepare(&view, &rt, &body).await?;
        let is_group_like = has_members(&view.registry, &rt);
        let unique = view.unique_attributes(&rt);
        let never_returned = view.never_returned(&rt);
        let generation = view.generation;
        let derivation = view.derivation.clone();
        let registry = Arc::clone(&view.registry);
        let rt_id = rt.id.clone();
        let (origin, ignored) = (view.origin.clone(), crate::origin::IgnoredWrite::default());
        let noted = ignored.clone();
        let update: muster_store::UpdateFn = Box::new(move |current: &StoredResource| {
            let mut replacement = resource;
            keep_server_attributes(&current.resource, &mut replacement);
            // A locked user stays inactive whatever the body says (checked
            // here, on the row the write transaction holds).
            crate::offboard::hold_lock(&current.resource, &mut replacement);
            check_immutable(&registry, &rt, &current.resource, &replacement)?;
            if let crate::origin::Decision::Ignore(tag) = origin.decide(&replacement)? {
                noted.note(tag, replacement);
                return Ok(None);
            }
            let member_changes = if is_group_like {
                vec![MemberChange::ReplaceAll(members)]
            } else {
                Vec::new()
            };
            // The computed entitlements are not carried over: the store
            // derives them again from the replacement.
            Ok(Some(Update {
                resource: replacement,
                member_changes,
                unmapped: Some(unmapped),
                unique,
                schema_generation: Some(generation),
                never_returned,
                derivation,
            }))
        });
        let stored = self
            .update(&rt_id, id, precondition, include_members, update)
            .await?;
        crate::origin::after_update(self, &view, stored, &ignored, "replace").await
    }

    /// Applies a PatchOp (PATCH and Bulk), all or nothing.
    ///
    /// Operations on `members` become membership row changes. The resource
    /// is rendered only when `wants_body`; a group PATCH is usually
    /// answered with no content (RFC 7644 section 3.5.2 allows it).
    pub async fn patch(
        &self,
        rt: &ResourceType,
        id: &str,
        precondition: Precondition,
        body: Value,
        projection: &Projection,
        wants_body: bool,
    ) -> Result<Rendered, Error> {
        let patch = PatchOp::from_json_with(&body, &self.service.limits().filter_limits)?;
        let include_members = wants_body && projection.includes_members();
        let stored = self
            .with_fresh_view(rt, |view, rt| {
                self.patch_at(view, rt, id, precondition, patch.clone(), include_members)
            })
            .await?;
        if wants_body {
            Ok(self.rendered(rt, stored, projection))
        } else {
            Ok(Rendered {
                location: self.location(rt, &stored.id.0),
                id: stored.id.0,
                version: stored.version,
                body: None,
            })
        }
    }

    async fn patch_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        id: &str,
        precondition: Precondition,
        patch: PatchOp,
        include_members: bool,
    ) -> Result<StoredResource, Error> {
        // Canonical paths first: whatever decides on an attribute below
        // (members, hashing, the store's checks) sees one spelling of it.
        let operations = canonical_operations(&view.registry, &rt, patch.operations)?;
        let (member_changes, operations) = if has_members(&view.registry, &rt) {
            split_member_operations(operations)?
        } else {
            (Vec::new(), operations)
        };
        let operations = hash_patch_passwords(operations).await?;
        let registry = Arc::clone(&view.registry);
        let policy = view.undeclared;
        let unique = view.unique_attributes(&rt);
        let never_returned = view.never_returned(&rt);
        let generation = view.generation;
        let derivation = view.derivation.clone();
        let rt_id = rt.id.clone();
        let (origin, ignored) = (view.origin.clone(), crate::origin::IgnoredWrite::default());
        let noted = ignored.clone();
        let update: muster_store::UpdateFn = Box::new(move |current: &StoredResource| {
            // The patch sees the user without the offboarding lock (no
            // operation can reach it); the lock is put back afterwards and
            // keeps a locked user inactive whatever the operations said
            // (checked here, on the row the write transaction holds).
            let mut unlocked = current.resource.clone();
            crate::offboard::hide_lock(&mut unlocked);
            let mut patched = apply_patch_with(
                &registry,
                &rt,
                &unlocked,
                &current.unmapped,
                &operations,
                policy,
            )?;
            crate::offboard::hold_lock(&current.resource, &mut patched.resource);
            if !patched.changed && !patched.unmapped_changed && member_changes.is_empty() {
                return Ok(None);
            }
            if let crate::origin::Decision::Ignore(tag) = origin.decide(&patched.resource)? {
                noted.note(tag, patched.resource);
                return Ok(None);
            }
            // Whatever the patched resource holds under the computed
            // extension, the store derives it again.
            Ok(Some(Update {
                resource: patched.resource,
                member_changes,
                unmapped: patched.unmapped_changed.then_some(patched.unmapped),
                unique,
                schema_generation: Some(generation),
                never_returned,
                derivation,
            }))
        });
        let stored = self
            .update(&rt_id, id, precondition, include_members, update)
            .await?;
        crate::origin::after_update(self, &view, stored, &ignored, "patch").await
    }

    /// Runs an update closure on a stored resource in the store's write
    /// transaction.
    pub(crate) async fn update(
        &self,
        rt_id: &str,
        id: &str,
        precondition: Precondition,
        include_members: bool,
        update: muster_store::UpdateFn,
    ) -> Result<StoredResource, Error> {
        let (stored, _) = self
            .service
            .store()
            .update(
                &self.tenant,
                &self.actor,
                rt_id,
                &ResourceId(id.to_owned()),
                precondition,
                include_members,
                update,
            )
            .await?;
        Ok(stored)
    }

    /// Deletes a resource (DELETE and Bulk). The users under a deleted
    /// group get their entitlements recomputed, with the derivation of a
    /// current view.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        id: &str,
        precondition: Precondition,
    ) -> Result<(), Error> {
        self.with_fresh_view(rt, |view, rt| self.delete_at(view, rt, id, precondition))
            .await
    }

    async fn delete_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        id: &str,
        precondition: Precondition,
    ) -> Result<(), Error> {
        let removal = Removal {
            derivation: view.derivation.clone(),
            schema_generation: Some(view.generation),
        };
        let id = ResourceId(id.to_owned());
        let store = self.service.store();
        if rt.id != crate::lifecycle::USER {
            // Groups (and other types) are deleted for good.
            store
                .delete_with(
                    &self.tenant,
                    &self.actor,
                    &rt.id,
                    &id,
                    precondition,
                    removal,
                )
                .await?;
            return Ok(());
        }
        let settings = crate::lifecycle::lifecycle_settings(store, &self.tenant).await?;
        match settings.delete_means {
            crate::lifecycle::DeleteMeans::SoftDelete => {
                store
                    .soft_delete(
                        &self.tenant,
                        &self.actor,
                        &rt.id,
                        &id,
                        precondition,
                        removal,
                    )
                    .await?;
            }
            crate::lifecycle::DeleteMeans::Deactivate => {
                self.deactivate_at(view, rt, &id, precondition).await?;
            }
        }
        Ok(())
    }

    /// A `DELETE` under `deleteMeans: deactivate`: `active` set to false,
    /// the user kept (nothing changes when it is inactive already).
    async fn deactivate_at(
        &self,
        view: Arc<TenantView>,
        rt: ResourceType,
        id: &ResourceId,
        precondition: Precondition,
    ) -> Result<StoredResource, Error> {
        let unique = view.unique_attributes(&rt);
        let never_returned = view.never_returned(&rt);
        let generation = view.generation;
        let derivation = view.derivation.clone();
        let update: muster_store::UpdateFn = Box::new(move |current: &StoredResource| {
            if current.resource.get("active") == Some(&Value::Bool(false)) {
                return Ok(None);
            }
            let mut resource = current.resource.clone();
            if let Some(object) = resource.as_object_mut() {
                object.insert("active".to_owned(), Value::Bool(false));
            }
            Ok(Some(Update {
                resource,
                member_changes: Vec::new(),
                unmapped: None,
                unique,
                schema_generation: Some(generation),
                never_returned,
                derivation,
            }))
        });
        self.update(&rt.id, &id.0, precondition, false, update)
            .await
    }
}

/// A POST or PUT body made ready for the store.
struct Prepared {
    /// Canonical, without `members`, its password hashed.
    resource: Value,
    /// The group's members, kept as rows.
    members: Vec<Member>,
    /// Undeclared values captured under the tenant's policy.
    unmapped: Map<String, Value>,
}

/// Validates a POST or PUT body against the view, takes its members out
/// and hashes its password: what create and replace share.
async fn prepare(view: &TenantView, rt: &ResourceType, body: &Value) -> Result<Prepared, Error> {
    refuse_entitlements(body)?;
    let Normalized { resource, unmapped } =
        normalize_with(&view.registry, rt, body, view.undeclared)?;
    let (resource, members) = split_members(resource)?;
    Ok(Prepared {
        resource: hash_resource_password(resource).await?,
        members,
        unmapped,
    })
}

/// Refuses a body that writes the computed contact-center extension: its
/// values come from the rules, never from a client.
fn refuse_entitlements(body: &Value) -> Result<(), Error> {
    if crate::rules::writes_entitlements(body) {
        return Err(Error::Scim(ScimError::mutability(format!(
            "'{}' is computed by Muster's entitlement rules and cannot be written",
            muster_rules::CONTACT_CENTER_URN
        ))));
    }
    Ok(())
}

/// The weak ETag of a version: `W/"<version>"`.
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// The version a weak or strong ETag names, if it is one of this server's.
pub fn parse_etag(text: &str) -> Option<u64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// A precondition from an ETag text (`If-Match` or a bulk `version`); `*`
/// matches any version.
pub fn precondition_from_text(text: &str) -> Result<Precondition, ScimError> {
    let text = text.trim();
    if text == "*" {
        return Ok(Precondition::None);
    }
    parse_etag(text).map(Precondition::Version).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "If-Match '{text}' is not an ETag of this server (expected W/\"<version>\")"
        ))
    })
}

/// Server-owned attributes a PUT body cannot set: carried over from the
/// stored resource so the store sees a complete replacement.
fn keep_server_attributes(current: &Value, replacement: &mut Value) {
    if let (Some(current), Some(replacement)) = (current.as_object(), replacement.as_object_mut()) {
        for key in ["id", "meta"] {
            if let Some(value) = current.get(key) {
                replacement.insert(key.to_owned(), value.clone());
            }
        }
    }
}

/// An export line made ready for [`Session::import`]: its `id` (any case
/// of the key; a UUID in any of its spellings, kept in the canonical
/// lower-case hyphenated one) and the body without the `id` and without
/// the contact-center values the rules computed (computed again here).
fn importable(body: Value) -> Result<(Option<ResourceId>, Value), Error> {
    let Value::Object(mut fields) = body else {
        return Err(Error::Scim(ScimError::invalid_value(
            "the line is not a JSON object",
        )));
    };
    let urn = muster_rules::CONTACT_CENTER_URN;
    let keys: Vec<String> = fields.keys().cloned().collect();
    let mut id = None;
    for key in keys {
        if key.eq_ignore_ascii_case("id") {
            id = fields.remove(&key);
        } else if key.eq_ignore_ascii_case(urn) {
            fields.remove(&key);
        }
    }
    if let Some(Value::Array(schemas)) = fields
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case("schemas"))
        .map(|(_, schemas)| schemas)
    {
        schemas.retain(|schema| {
            !schema
                .as_str()
                .is_some_and(|text| text.eq_ignore_ascii_case(urn))
        });
    }
    let id = match id {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match uuid::Uuid::try_parse(&text) {
            Ok(uuid) => Some(ResourceId(uuid.hyphenated().to_string())),
            Err(_) => {
                return Err(Error::Scim(ScimError::invalid_value(format!(
                    "id: expected a UUID (as Muster exports), got \"{text}\""
                ))))
            }
        },
        Some(other) => {
            return Err(Error::Scim(ScimError::invalid_value(format!(
                "id: expected a UUID (as Muster exports), got {other}"
            ))))
        }
    };
    Ok((id, Value::Object(fields)))
}

/// What importing one resource did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Created, with this id.
    Created(String),
    /// The tenant held a resource with the line's id already.
    AlreadyPresent(String),
}
