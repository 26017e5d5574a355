//! Bearer tokens on PostgreSQL (hashes only).

use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::consumers::instant_text;
use super::{unique_violation, PostgresStore};
use crate::{StoreError, TenantId, TokenRecord};

/// The columns [`token`] reads, `created` as RFC 3339.
fn token_columns() -> String {
    format!("name, secret_hash, scopes, {}", instant_text("created"))
}

/// A token from the columns of [`token_columns`].
fn token(row: &Row) -> Result<TokenRecord, StoreError> {
    let scopes: String = row.get(2);
    Ok(TokenRecord {
        name: row.get(0),
        secret_hash: row.get(1),
        scopes: serde_json::from_str(&scopes).map_err(|error| {
            StoreError::Database(format!("stored token scopes are not valid JSON: {error}"))
        })?,
        created: row.get(3),
    })
}

/// [`crate::Store::create_token`]: a name or secret already in use is a
/// conflict (the name is checked first, as on SQLite).
pub(super) async fn create(
    store: &PostgresStore,
    tenant: &TenantId,
    token: TokenRecord,
) -> Result<(), StoreError> {
    let scopes = serde_json::to_string(&token.scopes)
        .map_err(|error| StoreError::Database(format!("cannot serialise scopes: {error}")))?;
    let client = store.client().await?;
    // The name's constraint is the arbiter, so a taken name is reported
    // before a taken secret.
    let inserted = client
        .execute(
            "INSERT INTO tokens (tenant_id, name, secret_hash, scopes, created)
             VALUES ($1, $2, $3, $4, coalesce(nullif($5::text, '')::timestamptz, now()))
             ON CONFLICT (tenant_id, name) DO NOTHING",
            &[
                &tenant.0,
                &token.name,
                &token.secret_hash,
                &scopes,
                &token.created,
            ],
        )
        .await;
    match inserted {
        Ok(0) => Err(StoreError::Conflict(format!(
            "a token named '{}' already exists",
            token.name
        ))),
        Ok(_) => Ok(()),
        Err(error) if unique_violation(&error).is_some() => Err(StoreError::Conflict(
            "another token already has this secret".to_owned(),
        )),
        Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Err(
            StoreError::NotFound(format!("tenant '{}' does not exist", tenant.0)),
        ),
        Err(error) => Err(error.into()),
    }
}

/// [`crate::Store::list_tokens`]: by name (in byte order, as on SQLite).
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<TokenRecord>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM tokens WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"",
                token_columns()
            ),
            &[&tenant.0],
        )
        .await?;
    rows.iter().map(token).collect()
}

/// [`crate::Store::revoke_token`].
pub(super) async fn revoke(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let deleted = client
        .execute(
            "DELETE FROM tokens WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name],
        )
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("no token named '{name}'")));
    }
    Ok(())
}

/// [`crate::Store::find_token`]: in any tenant.
pub(super) async fn find(
    store: &PostgresStore,
    secret_hash: &str,
) -> Result<Option<(TenantId, TokenRecord)>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {}, tenant_id FROM tokens WHERE secret_hash = $1",
                token_columns()
            ),
            &[&secret_hash],
        )
        .await?;
    row.map(|row| Ok((TenantId(row.get(4)), token(&row)?)))
        .transpose()
}
