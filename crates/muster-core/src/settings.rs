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
}

impl Settings {
    /// Parses a settings document, naming what is wrong with it.
    pub fn from_json(body: Value) -> Result<Settings, ScimError> {
        serde_json::from_value(body).map_err(|error| {
            ScimError::invalid_value(format!(
                "settings: {error}; expected {{\"undeclaredAttributes\": \"reject\" | \"capture\"}}"
            ))
        })
    }
}

/// The tenant's settings as stored.
pub async fn settings(store: &dyn Store, tenant: &TenantId) -> Result<Settings, Error> {
    let view = load_view(store, tenant).await?;
    Ok(Settings {
        undeclared_attributes: view.undeclared,
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
    store
        .set_setting(
            tenant,
            actor,
            UNDECLARED_SETTING,
            settings.undeclared_attributes.as_str(),
        )
        .await?;
    Ok(())
}
