//! Tenant settings: what an admin may change about how a tenant's SCIM
//! writes are taken.

use muster_scim::{ScimError, UndeclaredPolicy};
use muster_store::{Actor, Store, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tenant::{load_view, UNDECLARED_SETTING};
use crate::Error;

/// The tenant settings, as the admin API and the CLI read and write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// What happens to attributes no schema declares.
    pub undeclared_attributes: UndeclaredPolicy,
    /// What an identity provider's `DELETE` of a User means
    /// (`softDelete` or `deactivate`; see [`crate::lifecycle`]).
    #[serde(default)]
    pub delete_means: crate::lifecycle::DeleteMeans,
    /// How many days a soft-deleted User stays restorable before it is
    /// purged (see [`crate::lifecycle`]).
    #[serde(default = "crate::lifecycle::default_retention_days")]
    pub soft_delete_retention_days: u32,
    /// The attribute holding each User's source-of-truth tag (a declared
    /// single-valued attribute, for example
    /// `urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg`;
    /// see [`crate::origin`]); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_attribute: Option<String>,
    /// The primary directory's tag: writes whose tag is another are
    /// handled by `foreign_origin_writes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_origin: Option<String>,
    /// What a write with a foreign tag gets: `accept` (default),
    /// `refuse` or `ignore`.
    #[serde(default)]
    pub foreign_origin_writes: crate::origin::ForeignOriginWrites,
}

impl Settings {
    /// Parses a settings document, naming what is wrong with it.
    pub fn from_json(body: Value) -> Result<Settings, ScimError> {
        serde_json::from_value(body).map_err(|error| {
            ScimError::invalid_value(format!(
                "settings: {error}; expected {{\"undeclaredAttributes\": \"reject\" | \"capture\", \
                 \"deleteMeans\": \"softDelete\" | \"deactivate\", \"softDeleteRetentionDays\": days, \
                 \"originAttribute\": path, \"expectedOrigin\": tag, \
                 \"foreignOriginWrites\": \"accept\" | \"refuse\" | \"ignore\"}}"
            ))
        })
    }
}

/// The tenant's settings as stored.
pub async fn settings(store: &dyn Store, tenant: &TenantId) -> Result<Settings, Error> {
    let view = load_view(store, tenant).await?;
    let lifecycle = crate::lifecycle::lifecycle_settings(store, tenant).await?;
    let origin = &view.origin;
    Ok(Settings {
        origin_attribute: origin.attribute.clone(),
        expected_origin: origin.expected.clone(),
        foreign_origin_writes: origin.foreign_writes,
        undeclared_attributes: view.undeclared,
        delete_means: lifecycle.delete_means,
        soft_delete_retention_days: lifecycle.retention_days,
    })
}

/// Stores the tenant's settings; a running server serves them within
/// [`crate::tenant::TENANT_VIEW_TTL`].
pub async fn put_settings(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    settings: &Settings,
) -> Result<(), Error> {
    // Checked before anything is written: a refused document changes nothing.
    crate::lifecycle::check_retention(settings.soft_delete_retention_days)?;
    let origin = crate::origin::checked(
        &load_view(store, tenant).await?.registry,
        &crate::origin::OriginPolicy {
            attribute: settings.origin_attribute.clone(),
            expected: settings.expected_origin.clone(),
            foreign_writes: settings.foreign_origin_writes,
        },
    )?;
    store
        .set_setting(
            tenant,
            actor,
            UNDECLARED_SETTING,
            settings.undeclared_attributes.as_str(),
        )
        .await?;
    crate::lifecycle::put_lifecycle_settings(
        store,
        tenant,
        actor,
        settings.delete_means,
        settings.soft_delete_retention_days,
    )
    .await?;
    crate::origin::write(store, tenant, actor, origin).await?;
    Ok(())
}
