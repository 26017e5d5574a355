//! `muster client create|list|rotate|revoke`: OAuth 2.0 clients that get
//! access tokens from `POST /oauth/token` (client credentials). Secrets are
//! printed once and stored as argon2id hashes only; `list` never shows one.
//!
//! Also the options `--match` and `--rate-limit`, which `muster token
//! create` takes too.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use muster_core::clients::{credential_options, parse_duration, unix_now};
use muster_store::clients::CredentialOptions;

use crate::{open_existing_store, open_store, say, DataDir};

/// The options a credential (a client or a bearer token) carries.
#[derive(Args, Clone, Default)]
pub(crate) struct CredentialArgs {
    /// Attributes a POST of an existing user is matched on instead of a
    /// 409, in order: a comma-separated list of externalId, userName,
    /// emails (the work email). Default: none.
    #[arg(long = "match", value_name = "ATTRIBUTES")]
    matching: Option<String>,
    /// Requests per second this credential may make (burst: one second's
    /// worth); `off` or 0 for no limit. Default: the server's
    /// `--client-rate-limit`.
    #[arg(long, value_name = "PER_SECOND")]
    rate_limit: Option<String>,
}

impl CredentialArgs {
    /// The options as stored, checked.
    pub(crate) fn options(&self) -> Result<CredentialOptions> {
        credential_options(self.matching.as_deref(), self.rate_limit.as_deref())
            .map_err(|problem| anyhow!("{problem}"))
    }
}

/// `muster client ...`.
#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Create an OAuth client and print its client_id and client_secret.
    ///
    /// The secret is shown this once; only its hash is stored.
    #[command(after_help = "Examples:\n  \
        muster client create --name okta --scope scim.write\n  \
        muster client create --name reports --scope scim.read --rate-limit 50")]
    Create {
        #[command(flatten)]
        data: DataDir,
        /// Unique client name; shows as the client in logs and the change
        /// log.
        #[arg(long)]
        name: String,
        /// Scope it may ask for (repeatable): scim.read, scim.write or
        /// admin. Without any, scim.read and scim.write.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        options: CredentialArgs,
    },
    /// List clients: name, client_id, scopes, options (never secrets).
    #[command(after_help = "Example:\n  muster client list")]
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Give a client a new secret and print it (shown this once).
    ///
    /// The old one keeps working for the grace period. With no grace
    /// (`0s`) the old secret stops at once and so do the access tokens
    /// issued to the client (within a second on every server).
    #[command(after_help = "Examples:\n  \
        muster client rotate okta --grace 24h\n  \
        muster client rotate okta --grace 0s")]
    Rotate {
        #[command(flatten)]
        data: DataDir,
        /// The client name.
        name: String,
        /// How long the old secret stays valid, e.g. 24h, 30m, 0s; at most
        /// 30d.
        #[arg(long, default_value = "24h")]
        grace: String,
    },
    /// Delete a client; its access tokens stop working within a second on
    /// every server.
    #[command(after_help = "Example:\n  muster client revoke okta")]
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// The client name.
        name: String,
    },
}

/// Runs a `muster client` command.
pub(crate) async fn client(command: ClientCommand) -> Result<()> {
    match command {
        ClientCommand::Create {
            data,
            name,
            scopes,
            options,
        } => {
            let tenant = data.tenant()?;
            let options = options.options()?;
            // Refused before the store is opened: a refusal creates nothing.
            muster_core::clients::check_scopes(&scopes).map_err(|problem| anyhow!("{problem}"))?;
            let store = open_store(&data).await?;
            let new = muster_core::credentials::create_client(
                &*store,
                &tenant,
                &crate::cli_actor(),
                &name,
                &scopes,
                options,
            )
            .await
            .map_err(crate::refused)?;
            say(format_args!(
                "client_id: {}\nclient_secret: {}",
                new.client_id, new.secret
            ))
            .with_context(|| {
                format!(
                    "client '{name}' was created but its secret could not be printed; \
                     rotate it with 'muster client rotate {name} --grace 0s'"
                )
            })?;
        }
        ClientCommand::List { data } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            let now = unix_now();
            for client in store.list_clients(&tenant).await? {
                let grace = match (&client.previous_secret_hash, client.previous_valid_until) {
                    (Some(_), Some(until)) if until > now => {
                        format!("\tprevious secret valid {} s more", until - now)
                    }
                    _ => String::new(),
                };
                say(format_args!(
                    "{}\t{}\t{}\tmatch={}\trate-limit={}\t{}{grace}",
                    client.name,
                    client.client_id,
                    client.scopes.join(","),
                    describe_matching(&client.options),
                    describe_rate_limit(&client.options),
                    client.created,
                ))?;
            }
        }
        ClientCommand::Rotate { data, name, grace } => {
            let tenant = data.tenant()?;
            let grace = parse_duration(&grace).map_err(|problem| anyhow!("--grace: {problem}"))?;
            let store = open_existing_store(&data).await?;
            let secret = muster_core::credentials::rotate_client(
                &*store,
                &tenant,
                &crate::cli_actor(),
                &name,
                grace,
            )
            .await
            .map_err(crate::refused)?;
            say(secret).with_context(|| {
                format!(
                    "client '{name}' has a new secret that could not be printed; rotate it again"
                )
            })?;
            if grace.is_zero() {
                eprintln!(
                    "rotated client '{name}'; its previous secret and its access tokens no longer work"
                );
            } else {
                eprintln!(
                    "rotated client '{name}'; its previous secret stays valid for {} s",
                    grace.as_secs()
                );
            }
        }
        ClientCommand::Revoke { data, name } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            muster_core::credentials::revoke_client(&*store, &tenant, &crate::cli_actor(), &name)
                .await
                .map_err(crate::refused)?;
            eprintln!("revoked client '{name}' and its access tokens");
        }
    }
    Ok(())
}

/// A matching policy for a listing (`none` when empty).
pub(crate) fn describe_matching(options: &CredentialOptions) -> String {
    if options.matching.is_empty() {
        "none".to_owned()
    } else {
        options.matching.join(",")
    }
}

/// A rate limit for a listing.
pub(crate) fn describe_rate_limit(options: &CredentialOptions) -> String {
    match options.rate_limit {
        None => "default".to_owned(),
        Some(0) => "off".to_owned(),
        Some(limit) => format!("{limit}/s"),
    }
}
