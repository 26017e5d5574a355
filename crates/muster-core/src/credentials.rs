//! Creating, rotating and revoking credentials (bearer tokens and OAuth
//! clients), each recorded in the tenant's audit trail: the procedures of
//! the admin console's clients page, callable by the CLI as well.
//!
//! A secret is returned once, to be shown once; only its hash is stored
//! ([`crate::tokens`], [`crate::clients`]), and the audit trail records
//! names, scopes and grace periods, never a secret. Revoking a credential
//! (or rotating a client's secret with no grace) ends the console sessions
//! it signed in.

use std::time::Duration;

use muster_scim::ScimError;
use muster_store::clients::{ClientRecord, CredentialOptions};
use muster_store::{Actor, Store, TenantId, TokenRecord};
use serde_json::json;

use crate::audit::record_admin_action;
use crate::clients::{
    check_scopes, mint_client, mint_client_secret, unix_now, NewClient, MAX_ROTATION_GRACE,
};
use crate::tokens::{mint_token, NewToken, SCOPE_READ, SCOPE_WRITE};
use crate::Error;

/// The scopes of a new credential: those given, checked, or `scim.read`
/// and `scim.write` when none are.
fn scopes_or_default(scopes: &[String]) -> Result<Vec<String>, Error> {
    if scopes.is_empty() {
        return Ok(vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()]);
    }
    check_scopes(scopes).map_err(|problem| ScimError::invalid_value(problem).into())
}

/// A credential's name: not empty.
fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(ScimError::invalid_value("name: must not be empty").into());
    }
    Ok(())
}

/// Creates a bearer token named `name` with `scopes` (none: read and
/// write) and `options`; returns its secret, to show once.
pub async fn create_token(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    scopes: &[String],
    options: CredentialOptions,
) -> Result<NewToken, Error> {
    check_name(name)?;
    let scopes = scopes_or_default(scopes)?;
    let token = mint_token();
    store
        .create_token(
            tenant,
            TokenRecord {
                name: name.to_owned(),
                secret_hash: token.secret_hash.clone(),
                scopes: scopes.clone(),
                created: String::new(),
            },
        )
        .await?;
    if options != CredentialOptions::default() {
        if let Err(error) = store.set_token_options(tenant, name, options).await {
            // A token without the options asked for must not stay.
            let _ = store.revoke_token(tenant, name).await;
            return Err(error.into());
        }
    }
    record_admin_action(
        store,
        tenant,
        actor,
        "create",
        "Token",
        name,
        json!({"scopes": scopes}),
    )
    .await?;
    Ok(token)
}

/// Revokes the bearer token `name`.
pub async fn revoke_token(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
) -> Result<(), Error> {
    store.revoke_token(tenant, name).await?;
    store.delete_console_sessions_of(tenant, name).await?;
    record_admin_action(store, tenant, actor, "revoke", "Token", name, json!({})).await
}

/// Creates an OAuth client named `name` with `scopes` (none: read and
/// write) and `options`; returns its `client_id` and secret, to show once.
pub async fn create_client(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    scopes: &[String],
    options: CredentialOptions,
) -> Result<NewClient, Error> {
    check_name(name)?;
    let scopes = scopes_or_default(scopes)?;
    let new = mint_client().await?;
    store
        .create_client(
            tenant,
            ClientRecord {
                name: name.to_owned(),
                client_id: new.client_id.clone(),
                secret_hash: new.secret_hash.clone(),
                previous_secret_hash: None,
                previous_valid_until: None,
                scopes: scopes.clone(),
                options,
                created: String::new(),
            },
        )
        .await?;
    record_admin_action(
        store,
        tenant,
        actor,
        "create",
        "OAuthClient",
        name,
        json!({"clientId": new.client_id, "scopes": scopes}),
    )
    .await?;
    Ok(new)
}

/// Gives the OAuth client `name` a new secret, returned to show once; the
/// old one stays valid for `grace` (at most [`MAX_ROTATION_GRACE`]), or,
/// with none, stops at once with every access token issued to the client.
pub async fn rotate_client(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    grace: Duration,
) -> Result<String, Error> {
    if grace > MAX_ROTATION_GRACE {
        return Err(ScimError::invalid_value(format!(
            "grace: the old secret may stay valid at most {} days ({} s)",
            MAX_ROTATION_GRACE.as_secs() / 86_400,
            MAX_ROTATION_GRACE.as_secs()
        ))
        .into());
    }
    let (secret, hash) = mint_client_secret().await?;
    let until = (grace > Duration::ZERO)
        .then(|| unix_now().saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX)));
    store
        .rotate_client_secret(tenant, name, hash, until)
        .await?;
    if until.is_none() {
        // The old secret stops now: so do the console sessions it opened.
        store.delete_console_sessions_of(tenant, name).await?;
    }
    record_admin_action(
        store,
        tenant,
        actor,
        "rotate",
        "OAuthClient",
        name,
        json!({"graceSeconds": grace.as_secs(), "accessTokensRevoked": until.is_none()}),
    )
    .await?;
    Ok(secret)
}

/// Revokes the OAuth client `name` and every access token issued to it.
pub async fn revoke_client(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
) -> Result<(), Error> {
    store.revoke_client(tenant, name).await?;
    store.delete_console_sessions_of(tenant, name).await?;
    record_admin_action(
        store,
        tenant,
        actor,
        "revoke",
        "OAuthClient",
        name,
        json!({}),
    )
    .await
}
