//! `muster tenant create|list|remove`: the tenant registry.
//!
//! These commands work on the registry itself, so the `--tenant` every
//! command takes plays no part here; the tenant is the NAME argument.

use anyhow::{bail, Result};
use clap::Subcommand;
use muster_store::tenants::parse_tenant_name;
use muster_store::TenantId;

use crate::{open_existing_registry, open_registry, print_table, say, DataDir};

/// `muster tenant ...`.
#[derive(Subcommand)]
pub(crate) enum TenantCommand {
    /// Register a tenant, served at `/t/NAME/scim/v2`.
    ///
    /// Then give it tokens with `muster token create --tenant NAME`.
    #[command(after_help = "Example:\n  muster tenant create emea")]
    Create {
        #[command(flatten)]
        data: DataDir,
        /// 1 to 63 lowercase letters, digits and `-`, starting with a
        /// letter or digit.
        name: String,
    },
    /// List the tenants with their users, groups and tokens.
    #[command(after_help = "Example:\n  muster tenant list")]
    List {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant (refused while it holds anything, unless --force).
    ///
    /// Refused while it holds anything (resources, tokens, change records,
    /// schemas, rules, targets, ...) unless --force, which erases all of it
    /// in one transaction. `default` cannot be removed.
    #[command(after_help = "Example:\n  muster tenant remove emea --force")]
    Remove {
        #[command(flatten)]
        data: DataDir,
        /// The tenant.
        name: String,
        /// Erase everything the tenant holds with it.
        #[arg(long)]
        force: bool,
    },
}

/// A tenant named on the command line: its form checked first, so that a
/// refused name is reported as such and never reaches the database.
fn named(name: &str) -> Result<TenantId> {
    parse_tenant_name(name).map_err(anyhow::Error::msg)
}

pub(crate) async fn tenant(command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Create { data, name } => {
            let tenant = named(&name)?;
            let store = open_registry(&data).await?;
            store.create_tenant(&tenant).await?;
            audited(&*store, "create", &tenant).await?;
            eprintln!(
                "created tenant '{}'; its SCIM base URL is <public URL>/t/{}/scim/v2",
                tenant.0, tenant.0
            );
        }
        TenantCommand::List { data, json } => {
            let store = open_existing_registry(&data).await?;
            let tenants = store.list_tenants().await?;
            if json {
                let all: Vec<serde_json::Value> = tenants
                    .iter()
                    .map(|summary| {
                        serde_json::json!({
                            "name": summary.tenant.0,
                            "created": summary.created,
                            "users": summary.users,
                            "groups": summary.groups,
                            "tokens": summary.tokens,
                        })
                    })
                    .collect();
                return say(serde_json::to_string_pretty(&all)?);
            }
            let rows: Vec<Vec<String>> = tenants
                .iter()
                .map(|summary| {
                    vec![
                        summary.tenant.0.clone(),
                        summary.users.to_string(),
                        summary.groups.to_string(),
                        summary.tokens.to_string(),
                        summary.created.clone(),
                    ]
                })
                .collect();
            print_table(&["TENANT", "USERS", "GROUPS", "TOKENS", "CREATED"], &rows)?;
        }
        TenantCommand::Remove { data, name, force } => {
            let tenant = named(&name)?;
            if tenant == TenantId::default_tenant() {
                bail!("the default tenant cannot be removed");
            }
            let store = open_existing_registry(&data).await?;
            let erased = store.remove_tenant(&tenant, force).await?;
            audited(&*store, "remove", &tenant).await?;
            let rows: u64 = erased.iter().map(|(_, count)| count).sum();
            if rows == 0 {
                eprintln!("removed tenant '{}'", tenant.0);
            } else {
                let tables: Vec<String> = erased
                    .iter()
                    .map(|(table, count)| format!("{table}: {count}"))
                    .collect();
                eprintln!(
                    "removed tenant '{}' and its {rows} rows ({})",
                    tenant.0,
                    tables.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Records a tenant created or removed in the default tenant's audit trail,
/// the deployment's own (a removed tenant can hold no new entry).
async fn audited(
    store: &dyn muster_store::Store,
    operation: &str,
    tenant: &TenantId,
) -> Result<()> {
    muster_core::audit::record_admin_action(
        store,
        &TenantId::default_tenant(),
        &crate::cli_actor(),
        operation,
        "Tenant",
        &tenant.0,
        serde_json::json!({}),
    )
    .await
    .map_err(crate::refused)
}
