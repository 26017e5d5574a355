//! OAuth clients, their access tokens and the options of bearer tokens on
//! PostgreSQL (see [`crate::clients`]). Hashes only.
//!
//! Revocation deletes the client and its tokens in one transaction; an
//! issue racing it may still commit a token, which is useless: a token is
//! found only joined to its client's `client_id`.

use async_trait::async_trait;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::consumers::instant_text;
use super::{unique_violation, PostgresStore};
use crate::clients::{
    rate_limit, string_list, string_list_text, AccessTokenRecord, ClientRecord, ClientStore,
    Credential, CredentialOptions,
};
use crate::{StoreError, TenantId};

/// The migration step of this module (see `schema.rs`), version 2: the
/// `oauth_clients` and `oauth_access_tokens` tables, and the matching policy
/// and rate limit of bearer tokens (as SQLite's version 9).
pub(crate) const MIGRATION: &str = "
CREATE TABLE oauth_clients (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    name text NOT NULL,
    client_id text NOT NULL UNIQUE,
    secret_hash text NOT NULL,
    previous_secret_hash text,
    previous_valid_until bigint,
    scopes text NOT NULL,
    match_policy text NOT NULL DEFAULT '[]',
    rate_limit bigint,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE oauth_access_tokens (
    secret_hash text PRIMARY KEY,
    tenant_id text NOT NULL,
    client_id text NOT NULL,
    scopes text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX oauth_access_tokens_by_expiry ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_by_client ON oauth_access_tokens (client_id);
ALTER TABLE tokens ADD COLUMN match_policy text NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN rate_limit bigint;
";

fn client_columns() -> String {
    format!(
        "name, client_id, secret_hash, previous_secret_hash, previous_valid_until, scopes, \
         match_policy, rate_limit, {}",
        instant_text("created")
    )
}

fn client_record(row: &Row) -> Result<ClientRecord, StoreError> {
    let scopes: String = row.get(5);
    let matching: String = row.get(6);
    Ok(ClientRecord {
        name: row.get(0),
        client_id: row.get(1),
        secret_hash: row.get(2),
        previous_secret_hash: row.get(3),
        previous_valid_until: row.get(4),
        scopes: string_list(&scopes, "client scopes")?,
        options: CredentialOptions {
            matching: string_list(&matching, "matching attributes")?,
            rate_limit: rate_limit(row.get(7)),
        },
        created: row.get(8),
    })
}

fn options(row: &Row, matching: usize, limit: usize) -> Result<CredentialOptions, StoreError> {
    let text: String = row.get(matching);
    Ok(CredentialOptions {
        matching: string_list(&text, "matching attributes")?,
        rate_limit: rate_limit(row.get(limit)),
    })
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn create_client(
        &self,
        tenant: &TenantId,
        client: ClientRecord,
    ) -> Result<(), StoreError> {
        let scopes = string_list_text(&client.scopes)?;
        let matching = string_list_text(&client.options.matching)?;
        let limit = client.options.rate_limit.map(i64::from);
        let connection = self.client().await?;
        let inserted = connection
            .execute(
                "INSERT INTO oauth_clients (tenant_id, name, client_id, secret_hash,
                     previous_secret_hash, previous_valid_until, scopes, match_policy,
                     rate_limit, created)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                     coalesce(nullif($10::text, '')::timestamptz, now()))
                 ON CONFLICT (tenant_id, name) DO NOTHING",
                &[
                    &tenant.0,
                    &client.name,
                    &client.client_id,
                    &client.secret_hash,
                    &client.previous_secret_hash,
                    &client.previous_valid_until,
                    &scopes,
                    &matching,
                    &limit,
                    &client.created,
                ],
            )
            .await;
        match inserted {
            Ok(0) => Err(StoreError::Conflict(format!(
                "a client named '{}' already exists",
                client.name
            ))),
            Ok(_) => Ok(()),
            Err(error) if unique_violation(&error).is_some() => Err(StoreError::Conflict(
                "another client already has this client id".to_owned(),
            )),
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Err(
                StoreError::NotFound(format!("tenant '{}' does not exist", tenant.0)),
            ),
            Err(error) => Err(error.into()),
        }
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<ClientRecord>, StoreError> {
        let connection = self.client().await?;
        let rows = connection
            .query(
                &format!(
                    "SELECT {} FROM oauth_clients WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"",
                    client_columns()
                ),
                &[&tenant.0],
            )
            .await?;
        rows.iter().map(client_record).collect()
    }

    async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Option<(TenantId, ClientRecord)>, StoreError> {
        let connection = self.client().await?;
        let row = connection
            .query_opt(
                &format!(
                    "SELECT {}, tenant_id FROM oauth_clients WHERE client_id = $1",
                    client_columns()
                ),
                &[&client_id],
            )
            .await?;
        row.map(|row| Ok((TenantId(row.get(9)), client_record(&row)?)))
            .transpose()
    }

    async fn rotate_client_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        secret_hash: String,
        previous_valid_until: Option<i64>,
    ) -> Result<ClientRecord, StoreError> {
        let mut connection = self.client().await?;
        let transaction = connection.transaction().await?;
        // One statement: the row is locked while the current secret moves
        // to the previous one (and stays locked until the commit).
        let row = transaction
            .query_opt(
                &format!(
                    "UPDATE oauth_clients SET
                         previous_secret_hash = CASE WHEN $4::bigint IS NULL THEN NULL
                             ELSE secret_hash END,
                         previous_valid_until = $4::bigint,
                         secret_hash = $3
                     WHERE tenant_id = $1 AND name = $2
                     RETURNING {}",
                    client_columns()
                ),
                &[&tenant.0, &name, &secret_hash, &previous_valid_until],
            )
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("no client named '{name}'")));
        };
        let client = client_record(&row)?;
        if previous_valid_until.is_none() {
            // No grace: the tokens got with the old secret end with it.
            transaction
                .execute(
                    "DELETE FROM oauth_access_tokens WHERE client_id = $1",
                    &[&client.client_id],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(client)
    }

    async fn revoke_client(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        let mut connection = self.client().await?;
        let transaction = connection.transaction().await?;
        let deleted = transaction
            .query_opt(
                "DELETE FROM oauth_clients WHERE tenant_id = $1 AND name = $2
                 RETURNING client_id",
                &[&tenant.0, &name],
            )
            .await?;
        let Some(row) = deleted else {
            return Err(StoreError::NotFound(format!("no client named '{name}'")));
        };
        let client_id: String = row.get(0);
        transaction
            .execute(
                "DELETE FROM oauth_access_tokens WHERE client_id = $1",
                &[&client_id],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn issue_access_token(
        &self,
        tenant: &TenantId,
        token: AccessTokenRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        let scopes = string_list_text(&token.scopes)?;
        let connection = self.client().await?;
        connection
            .execute(
                "DELETE FROM oauth_access_tokens WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        // FOR SHARE: a rotation or revocation under way is waited for and
        // the client read again, so a token got with a secret dropped by a
        // rotation without grace is never stored after that rotation's
        // deletion of the client's tokens.
        let inserted = connection
            .execute(
                "INSERT INTO oauth_access_tokens (secret_hash, tenant_id, client_id, scopes,
                     expires_at)
                 SELECT $1, tenant_id, client_id, $3, $4 FROM oauth_clients
                 WHERE tenant_id = $2 AND client_id = $5
                   AND (secret_hash = $6 OR previous_secret_hash = $6)
                 FOR SHARE",
                &[
                    &token.secret_hash,
                    &tenant.0,
                    &scopes,
                    &token.expires_at,
                    &token.client_id,
                    &token.verified_with,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::NotFound(format!(
                "no client with id '{}'",
                token.client_id
            )));
        }
        Ok(())
    }

    async fn find_credential(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<Credential>, StoreError> {
        let connection = self.client().await?;
        // One round trip for both kinds: a bearer token, else an unexpired
        // access token of a client that still exists.
        let row = connection
            .query_opt(
                "SELECT tenant_id, name, scopes, match_policy, rate_limit, NULL::bigint
                 FROM tokens WHERE secret_hash = $1
                 UNION ALL
                 SELECT a.tenant_id, c.name, a.scopes, c.match_policy, c.rate_limit,
                     a.expires_at
                 FROM oauth_access_tokens a
                 JOIN oauth_clients c ON c.client_id = a.client_id AND c.tenant_id = a.tenant_id
                 WHERE a.secret_hash = $1 AND a.expires_at > $2
                 LIMIT 1",
                &[&secret_hash, &now],
            )
            .await?;
        row.map(|row| {
            let scopes: String = row.get(2);
            Ok(Credential {
                tenant: TenantId(row.get(0)),
                name: row.get(1),
                scopes: string_list(&scopes, "credential scopes")?,
                options: options(&row, 3, 4)?,
                expires_at: row.get(5),
            })
        })
        .transpose()
    }

    async fn set_token_options(
        &self,
        tenant: &TenantId,
        name: &str,
        options: CredentialOptions,
    ) -> Result<(), StoreError> {
        let matching = string_list_text(&options.matching)?;
        let limit = options.rate_limit.map(i64::from);
        let connection = self.client().await?;
        let updated = connection
            .execute(
                "UPDATE tokens SET match_policy = $3, rate_limit = $4
                 WHERE tenant_id = $1 AND name = $2",
                &[&tenant.0, &name, &matching, &limit],
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound(format!("no token named '{name}'")));
        }
        Ok(())
    }

    async fn token_options(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, CredentialOptions)>, StoreError> {
        let connection = self.client().await?;
        let rows = connection
            .query(
                "SELECT name, match_policy, rate_limit FROM tokens WHERE tenant_id = $1
                 ORDER BY name COLLATE \"C\"",
                &[&tenant.0],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.get(0), options(row, 1, 2)?)))
            .collect()
    }

    async fn sweep_access_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let connection = self.client().await?;
        let deleted = connection
            .execute(
                "DELETE FROM oauth_access_tokens WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(deleted)
    }
}
