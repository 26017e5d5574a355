//! OAuth clients, their access tokens and the options of bearer tokens on
//! SQLite (see [`crate::clients`]): writes through the writer thread, reads
//! on the reader pool. Hashes only.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::values::now_text;
use super::write::insert_error;
use super::SqliteStore;
use crate::clients::{
    rate_limit, string_list, string_list_text, AccessTokenRecord, ClientRecord, ClientStore,
    Credential, CredentialOptions,
};
use crate::{StoreError, TenantId};

/// The migration step of this module (see `schema.rs`), version 9: the
/// `oauth_clients` and `oauth_access_tokens` tables, and the matching policy
/// and rate limit of bearer tokens.
///
/// - `oauth_clients.previous_secret_hash` / `previous_valid_until` (Unix
///   seconds): the secret before the last rotation, during its grace.
/// - `oauth_access_tokens.expires_at`: Unix milliseconds, indexed for the
///   sweep.
/// - `match_policy`: a JSON array of attribute names; `rate_limit`:
///   requests per second, NULL for the server's default, 0 for none.
pub(crate) const MIGRATION: &str = "
CREATE TABLE oauth_clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_valid_until INTEGER,
    scopes TEXT NOT NULL,
    match_policy TEXT NOT NULL DEFAULT '[]',
    rate_limit INTEGER,
    created TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
CREATE TABLE oauth_access_tokens (
    secret_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX oauth_access_tokens_by_expiry ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_by_client ON oauth_access_tokens (client_id);
ALTER TABLE tokens ADD COLUMN match_policy TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN rate_limit INTEGER;
";

const CLIENT_COLUMNS: &str = "name, client_id, secret_hash, previous_secret_hash, \
     previous_valid_until, scopes, match_policy, rate_limit, created";

fn client_record(row: &Row<'_>) -> Result<ClientRecord, StoreError> {
    let scopes: String = row.get(5)?;
    let matching: String = row.get(6)?;
    Ok(ClientRecord {
        name: row.get(0)?,
        client_id: row.get(1)?,
        secret_hash: row.get(2)?,
        previous_secret_hash: row.get(3)?,
        previous_valid_until: row.get(4)?,
        scopes: string_list(&scopes, "client scopes")?,
        options: CredentialOptions {
            matching: string_list(&matching, "matching attributes")?,
            rate_limit: rate_limit(row.get(7)?),
        },
        created: row.get(8)?,
    })
}

fn create_client(
    connection: &Connection,
    tenant: &TenantId,
    client: ClientRecord,
) -> Result<(), StoreError> {
    let taken: Option<String> = connection
        .prepare_cached("SELECT name FROM oauth_clients WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant.0, client.name], |row| row.get(0))
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "a client named '{}' already exists",
            client.name
        )));
    }
    let created = if client.created.is_empty() {
        now_text()
    } else {
        client.created
    };
    connection
        .prepare_cached(
            "INSERT INTO oauth_clients (tenant_id, name, client_id, secret_hash,
                 previous_secret_hash, previous_valid_until, scopes, match_policy, rate_limit,
                 created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            tenant.0,
            client.name,
            client.client_id,
            client.secret_hash,
            client.previous_secret_hash,
            client.previous_valid_until,
            string_list_text(&client.scopes)?,
            string_list_text(&client.options.matching)?,
            client.options.rate_limit.map(i64::from),
            created,
        ])
        .map_err(|error| insert_error(error, tenant))?;
    Ok(())
}

fn client_by_name(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE tenant_id = ?1 AND name = ?2"
    ))?;
    let mut rows = statement.query(params![tenant.0, name])?;
    rows.next()?.map(client_record).transpose()
}

fn rotate(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
    secret_hash: &str,
    previous_valid_until: Option<i64>,
) -> Result<ClientRecord, StoreError> {
    let updated = connection
        .prepare_cached(
            "UPDATE oauth_clients SET
                 previous_secret_hash = CASE WHEN ?4 IS NULL THEN NULL ELSE secret_hash END,
                 previous_valid_until = ?4,
                 secret_hash = ?3
             WHERE tenant_id = ?1 AND name = ?2",
        )?
        .execute(params![tenant.0, name, secret_hash, previous_valid_until])?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("no client named '{name}'")));
    }
    let client = client_by_name(connection, tenant, name)?.ok_or_else(|| {
        StoreError::Database(format!("client {name} vanished after its rotation"))
    })?;
    if previous_valid_until.is_none() {
        // No grace: the tokens got with the old secret end with it.
        connection
            .prepare_cached("DELETE FROM oauth_access_tokens WHERE client_id = ?1")?
            .execute(params![client.client_id])?;
    }
    Ok(client)
}

fn revoke(connection: &Connection, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
    let client_id: Option<String> = connection
        .prepare_cached("SELECT client_id FROM oauth_clients WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant.0, name], |row| row.get(0))
        .optional()?;
    let Some(client_id) = client_id else {
        return Err(StoreError::NotFound(format!("no client named '{name}'")));
    };
    connection
        .prepare_cached("DELETE FROM oauth_access_tokens WHERE client_id = ?1")?
        .execute(params![client_id])?;
    connection
        .prepare_cached("DELETE FROM oauth_clients WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant.0, name])?;
    Ok(())
}

fn issue(
    connection: &Connection,
    tenant: &TenantId,
    token: &AccessTokenRecord,
    now: i64,
) -> Result<(), StoreError> {
    sweep(connection, now)?;
    let inserted = connection
        .prepare_cached(
            "INSERT INTO oauth_access_tokens (secret_hash, tenant_id, client_id, scopes, expires_at)
             SELECT ?1, tenant_id, client_id, ?3, ?4 FROM oauth_clients
             WHERE tenant_id = ?2 AND client_id = ?5
               AND (secret_hash = ?6 OR previous_secret_hash = ?6)",
        )?
        .execute(params![
            token.secret_hash,
            tenant.0,
            string_list_text(&token.scopes)?,
            token.expires_at,
            token.client_id,
            token.verified_with,
        ])?;
    if inserted == 0 {
        return Err(StoreError::NotFound(format!(
            "no client with id '{}' accepting that secret",
            token.client_id
        )));
    }
    Ok(())
}

fn sweep(connection: &Connection, now: i64) -> Result<u64, StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM oauth_access_tokens WHERE expires_at <= ?1")?
        .execute(params![now])?;
    Ok(u64::try_from(deleted).unwrap_or_default())
}

fn find_credential(
    connection: &Connection,
    secret_hash: &str,
    now: i64,
) -> Result<Option<Credential>, StoreError> {
    let token = connection
        .prepare_cached(
            "SELECT tenant_id, name, scopes, match_policy, rate_limit FROM tokens
             WHERE secret_hash = ?1",
        )?
        .query_row(params![secret_hash], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    if let Some((tenant, name, scopes, matching, limit)) = token {
        return Ok(Some(Credential {
            tenant: TenantId(tenant),
            name,
            scopes: string_list(&scopes, "token scopes")?,
            options: CredentialOptions {
                matching: string_list(&matching, "matching attributes")?,
                rate_limit: rate_limit(limit),
            },
            expires_at: None,
        }));
    }
    let access = connection
        .prepare_cached(
            "SELECT a.tenant_id, c.name, a.scopes, c.match_policy, c.rate_limit, a.expires_at
             FROM oauth_access_tokens a
             JOIN oauth_clients c ON c.client_id = a.client_id AND c.tenant_id = a.tenant_id
             WHERE a.secret_hash = ?1 AND a.expires_at > ?2",
        )?
        .query_row(params![secret_hash, now], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    access
        .map(|(tenant, name, scopes, matching, limit, expires_at)| {
            Ok(Credential {
                tenant: TenantId(tenant),
                name,
                scopes: string_list(&scopes, "access token scopes")?,
                options: CredentialOptions {
                    matching: string_list(&matching, "matching attributes")?,
                    rate_limit: rate_limit(limit),
                },
                expires_at: Some(expires_at),
            })
        })
        .transpose()
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(
        &self,
        tenant: &TenantId,
        client: ClientRecord,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.writer
            .submit(move |connection| create_client(connection, &tenant, client))
            .await
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<ClientRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE tenant_id = ?1
                     ORDER BY name"
                ))?;
                let mut rows = statement.query(params![tenant.0])?;
                let mut clients = Vec::new();
                while let Some(row) = rows.next()? {
                    clients.push(client_record(row)?);
                }
                Ok(clients)
            })
            .await
    }

    async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Option<(TenantId, ClientRecord)>, StoreError> {
        let client_id = client_id.to_owned();
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {CLIENT_COLUMNS}, tenant_id FROM oauth_clients WHERE client_id = ?1"
                ))?;
                let mut rows = statement.query(params![client_id])?;
                match rows.next()? {
                    Some(row) => Ok(Some((TenantId(row.get(9)?), client_record(row)?))),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn rotate_client_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        secret_hash: String,
        previous_valid_until: Option<i64>,
    ) -> Result<ClientRecord, StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| {
                rotate(
                    connection,
                    &tenant,
                    &name,
                    &secret_hash,
                    previous_valid_until,
                )
            })
            .await
    }

    async fn revoke_client(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| revoke(connection, &tenant, &name))
            .await
    }

    async fn issue_access_token(
        &self,
        tenant: &TenantId,
        token: AccessTokenRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.writer
            .submit(move |connection| issue(connection, &tenant, &token, now))
            .await
    }

    async fn find_credential(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<Credential>, StoreError> {
        let secret_hash = secret_hash.to_owned();
        self.readers
            .read(move |connection| find_credential(connection, &secret_hash, now))
            .await
    }

    async fn set_token_options(
        &self,
        tenant: &TenantId,
        name: &str,
        options: CredentialOptions,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| {
                let updated = connection
                    .prepare_cached(
                        "UPDATE tokens SET match_policy = ?3, rate_limit = ?4
                         WHERE tenant_id = ?1 AND name = ?2",
                    )?
                    .execute(params![
                        tenant.0,
                        name,
                        string_list_text(&options.matching)?,
                        options.rate_limit.map(i64::from),
                    ])?;
                if updated == 0 {
                    return Err(StoreError::NotFound(format!("no token named '{name}'")));
                }
                Ok(())
            })
            .await
    }

    async fn token_options(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, CredentialOptions)>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT name, match_policy, rate_limit FROM tokens WHERE tenant_id = ?1
                     ORDER BY name",
                )?;
                let mut rows = statement.query(params![tenant.0])?;
                let mut options = Vec::new();
                while let Some(row) = rows.next()? {
                    let matching: String = row.get(1)?;
                    options.push((
                        row.get(0)?,
                        CredentialOptions {
                            matching: string_list(&matching, "matching attributes")?,
                            rate_limit: rate_limit(row.get(2)?),
                        },
                    ));
                }
                Ok(options)
            })
            .await
    }

    async fn sweep_access_tokens(&self, now: i64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |connection| sweep(connection, now))
            .await
    }
}
