//! The `muster` binary: argument parsing, logging set-up and wiring of the
//! store into the server. No SCIM logic lives here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod audit;
mod backup;
mod clients;
mod completions;
mod config;
mod expr;
mod help;
mod lifecycle;
mod logging;
mod offboard;
mod rules;
mod serve;
mod sync;
mod tenants;
mod transfer;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use muster_core::explain::explain;
use muster_core::schemas::{apply_schema, remove_schema, ApplyOptions, SchemaReport};
use muster_core::settings::{put_settings, settings as tenant_settings};
use muster_core::tenant::load_view;
use muster_scim::parse_schema_definitions;
use muster_scim::UndeclaredPolicy;
use muster_store::postgres::{PostgresOptions, PostgresStore};
use muster_store::sqlite::{pending_migrations, SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{Actor, Store, TenantId};
use serde_json::Value;

/// mimalloc rather than the system allocator: serving a request allocates
/// many small JSON values on several threads, where glibc's malloc spent a
/// fifth of the server's CPU time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Muster: a SCIM 2.0 provisioning hub for contact centers.
#[derive(Parser)]
#[command(
    name = "muster",
    version = help::VERSION,
    about = help::ABOUT,
    long_about = help::LONG_ABOUT,
    after_help = help::GETTING_STARTED
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server identity providers provision.
    ///
    /// Serves SCIM 2.0 at /scim/v2 (each tenant at /t/TENANT/scim/v2), the
    /// admin API at /admin/v1 and a health check at /healthz, and delivers
    /// every change to the targets while it runs. HTTPS with --tls-cert and
    /// --tls-key; settings from flags, MUSTER_* variables or --config. On
    /// first start it says how to create a token.
    #[command(after_help = "Examples:\n  \
        muster serve --data-dir ./muster-data\n  \
        muster serve --listen 0.0.0.0:443 --tls-cert /etc/muster/cert.pem \
        --tls-key /etc/muster/key.pem --public-url https://muster.example.com\n  \
        muster serve --config /etc/muster/muster.toml")]
    Serve(serve::ServeArgs),
    /// Check a configuration file of `muster serve`.
    ///
    /// Prints the settings it gives with the environment (secrets masked).
    #[command(
        subcommand,
        after_help = "Example:\n  muster config check /etc/muster/muster.toml"
    )]
    Config(config::ConfigCommand),
    /// Create, list and revoke the bearer tokens identity providers use.
    ///
    /// A token is printed once, when it is created; only its hash is
    /// stored. Scopes: scim.read, scim.write (which implies scim.read) and
    /// admin (which implies both).
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster token create --name entra --scope scim.write\n  \
        muster token list\n  \
        muster token revoke entra"
    )]
    Token(TokenCommand),
    /// Create, list, rotate and revoke OAuth 2.0 clients.
    ///
    /// A client exchanges its client_id and client_secret for short-lived
    /// access tokens at POST /oauth/token (the client credentials grant),
    /// for identity providers and scripts that prefer OAuth to a fixed
    /// bearer token.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster client create --name okta --scope scim.write\n  \
        muster client rotate okta --grace 24h"
    )]
    Client(clients::ClientCommand),
    /// Create, list and remove tenants (one Muster for several directories).
    ///
    /// Each tenant has its own SCIM base URL (`/t/NAME/scim/v2`), tokens,
    /// schemas, rules, targets and data; `default` is served at /scim/v2.
    /// Every other command takes --tenant NAME.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster tenant create emea\n  \
        muster token create --tenant emea --name entra-emea"
    )]
    Tenant(tenants::TenantCommand),
    /// Declare, list and remove custom attributes (extension schemas).
    ///
    /// An extension schema (RFC 7643 section 7) declares the attributes an
    /// identity provider sends beyond the standard ones, such as
    /// `extension_abc123_region`, so that they are typed, filterable and
    /// explained rather than refused.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster schema apply contoso.json --searchable costCenter\n  \
        muster schema list"
    )]
    Schema(SchemaCommand),
    /// Show every attribute: its type, how many users hold it, who set it.
    ///
    /// One row per attribute path: schema, type, how many resources hold a
    /// value, and the last client and time that set one; undeclared
    /// (captured) attributes too.
    #[command(after_help = "Examples:\n  \
        muster attributes\n  \
        muster attributes --tenant emea --json")]
    Attributes {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show or change a tenant's settings (undeclared attributes, deletes).
    ///
    /// What happens to attributes no schema declares, what an identity
    /// provider's DELETE means, how long deleted users stay restorable,
    /// and which directory is the source of truth.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster settings show\n  \
        muster settings set --delete-means deactivate"
    )]
    Settings(SettingsCommand),
    /// Rules that give agents their roles, skills, languages and licenses.
    ///
    /// Contact-center entitlements (roles in divisions, routing skills and
    /// languages, a management unit, licenses) from groups and attributes.
    /// Check a rule file, apply it (after a dry run), roll back, show the
    /// rules in force, their history and how many users each matches.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster rules check rules.toml\n  \
        muster rules apply --dry-run rules.toml\n  \
        muster rules apply rules.toml"
    )]
    Rules(rules::RulesCommand),
    /// Explain a user's entitlements, or how it is delivered to a target.
    ///
    /// Why a user holds each entitlement (and why other rules did not
    /// match), or, with --target, where each delivered value comes from.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster explain user agent.one@contoso.com\n  \
        muster explain user agent.one@contoso.com --target genesys"
    )]
    Explain(sync::ExplainCommand),
    /// Declare where Muster delivers: Genesys Cloud, NICE CXone, Five9, SCIM, CSV.
    ///
    /// A target document names the system, its credentials, which users it
    /// gets and how each attribute is mapped.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster target apply genesys.json\n  \
        muster target list"
    )]
    Target(sync::TargetCommand),
    /// Watch and steer delivery to targets.
    ///
    /// Status, dead letters (retry or discard them), pause and resume,
    /// reconcile a target with Muster, provision one user now, write a CSV
    /// export.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster sync status\n  \
        muster sync reconcile --target genesys --dry-run"
    )]
    Sync(sync::SyncCommand),
    /// Try an Entra attribute-mapping expression against sample values.
    #[command(
        subcommand,
        after_help = "Example:\n  \
        muster expr eval 'Join(\" \", [givenName], [surname])' --attributes user.json"
    )]
    Expr(expr::ExprCommand),
    /// Load users and groups from a JSON Lines file.
    ///
    /// As `muster export` writes it, or any file of SCIM User and Group
    /// bodies: each line is checked as a POST would be, ids are kept,
    /// refused lines are reported in FILE.refused.jsonl, and an interrupted
    /// import resumes where it stopped.
    #[command(after_help = "Examples:\n  \
        muster import --data-dir ./new-data muster.jsonl\n  \
        muster import --database postgres://muster@db/muster muster.jsonl")]
    Import(transfer::ImportArgs),
    /// Write every user and group to a JSON Lines file (users first).
    ///
    /// One SCIM resource per line, with its id and members (never password
    /// hashes); `muster import` reads it back.
    #[command(after_help = "Example:\n  \
        muster export --data-dir ./muster-data --output muster.jsonl")]
    Export(transfer::ExportArgs),
    /// Emergency offboarding: deactivate and lock a user now.
    ///
    /// Its entitlements are revoked and the running server's sync workers
    /// deliver the change before any other; an identity provider cannot
    /// reactivate the user until `muster unlock`.
    #[command(after_help = "Example:\n  \
        muster offboard agent.one@contoso.com --reason \"left the company\"")]
    Offboard(offboard::OffboardArgs),
    /// Remove a user's offboarding lock.
    ///
    /// The user stays inactive until the identity provider or an admin
    /// sets `active` again.
    #[command(after_help = "Example:\n  muster unlock agent.one@contoso.com")]
    Unlock(offboard::UnlockArgs),
    /// List, restore or purge deleted users.
    ///
    /// A user an identity provider deletes is soft-deleted: restorable
    /// within the retention (`muster settings`), then purged.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        muster user deleted\n  \
        muster user restore agent.one@contoso.com"
    )]
    User(lifecycle::UserCommand),
    /// Show the audit trail: who changed what, and when.
    ///
    /// Every change by user, client and time range (`--jsonl` exports
    /// JSON Lines); `muster audit verify` checks its hash chain.
    #[command(after_help = "Examples:\n  \
        muster audit --user agent.one@contoso.com --since 2026-12-01T00:00:00Z\n  \
        muster audit --jsonl > audit.jsonl\n  \
        muster audit verify")]
    Audit(audit::AuditArgs),
    /// Bring the database schema up to this version of Muster.
    ///
    /// `muster serve` does it on start; `--dry-run` prints the steps and
    /// their SQL instead.
    #[command(after_help = "Examples:\n  \
        muster migrate --dry-run\n  \
        muster migrate --database postgres://muster@db.example.com/muster")]
    Migrate {
        #[command(flatten)]
        data: DataDir,
        /// Print the pending steps and their SQL; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the database to a file while `muster serve` runs.
    ///
    /// A consistent copy of the SQLite database as of one moment, checked
    /// (integrity, schema version) before it takes the file's name; an
    /// existing file is never overwritten. PostgreSQL deployments use
    /// `pg_dump` (the command says how).
    #[command(after_help = "Examples:\n  \
        muster backup --data-dir /var/lib/muster /backups/muster-2026-12-06.db\n  \
        muster backup --data-dir ./muster-data ./muster-backup.db")]
    Backup(backup::BackupArgs),
    /// Replace a data directory's database with a backup (server stopped).
    ///
    /// Refused while a `muster serve` runs on the directory. The file must
    /// be a Muster database that passes SQLite's integrity check; the
    /// database it replaces is kept aside (renamed), never deleted.
    #[command(after_help = "Example (stop muster serve first):\n  \
        muster restore /backups/muster-2026-12-06.db --data-dir /var/lib/muster")]
    Restore(backup::RestoreArgs),
    /// Print a shell completion script for bash, zsh or fish.
    ///
    /// Also elvish and powershell. Install it where the shell looks for
    /// completions (examples below), then start a new shell.
    #[command(after_help = "Examples:\n  \
        muster completions bash > /etc/bash_completion.d/muster\n  \
        muster completions zsh > \"${fpath[1]}/_muster\"\n  \
        muster completions fish > ~/.config/fish/completions/muster.fish")]
    Completions(completions::CompletionsArgs),
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Declare or change custom schemas from a JSON file.
    ///
    /// The file holds one schema or an array of schemas; a running server
    /// picks them up within a second.
    #[command(after_help = "Examples:\n  \
        muster schema apply contoso.json --dry-run\n  \
        muster schema apply contoso.json --searchable costCenter,region")]
    Apply {
        #[command(flatten)]
        data: DataDir,
        /// The JSON file.
        file: PathBuf,
        /// Resource type to bind to (default: as bound, else the URN's last
        /// segment if it names one, else User).
        #[arg(long)]
        resource_type: Option<String>,
        /// Make the extension required on its resource type.
        #[arg(long)]
        required: bool,
        /// Remove attributes that hold values (the values go to the change log).
        #[arg(long)]
        force: bool,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
        /// Attributes to index for filtering, comma-separated (default: as
        /// before; none for a new schema; unique ones always). Filters on
        /// the others work but scan.
        #[arg(long)]
        searchable: Option<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the custom schemas.
    #[command(after_help = "Example:\n  muster schema list --json")]
    List {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON (the stored schema documents) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom schema and, with --force, the values stored under it.
    #[command(after_help = "Example:\n  \
        muster schema remove urn:ietf:params:scim:schemas:extension:contoso:2.0:User --dry-run")]
    Remove {
        #[command(flatten)]
        data: DataDir,
        /// The schema URN.
        urn: String,
        /// Remove the values stored under it (they go to the change log).
        #[arg(long)]
        force: bool,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

impl SchemaCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            SchemaCommand::Apply { data, .. }
            | SchemaCommand::List { data, .. }
            | SchemaCommand::Remove { data, .. } => data,
        }
    }
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// Print the tenant's settings.
    #[command(after_help = "Example:\n  muster settings show --tenant emea")]
    Show {
        #[command(flatten)]
        data: DataDir,
    },
    /// Change the tenant's settings; the flags not given keep their values.
    #[command(after_help = "Examples:\n  \
        muster settings set --undeclared-attributes capture\n  \
        muster settings set --delete-means softDelete --soft-delete-retention-days 30")]
    Set {
        #[command(flatten)]
        data: DataDir,
        /// What happens to attributes no schema declares: `reject` (400
        /// naming the attribute) or `capture` (kept apart, shown to admins).
        #[arg(long, value_parser = ["reject", "capture"])]
        undeclared_attributes: Option<String>,
        /// What an identity provider's DELETE of a user means: `softDelete`
        /// (hidden, userName freed, restorable within the retention) or
        /// `deactivate` (active set to false, kept visible).
        #[arg(long, value_parser = ["softDelete", "deactivate"])]
        delete_means: Option<String>,
        /// Days a soft-deleted user stays restorable before it is purged
        /// (0 to 3650).
        #[arg(long)]
        soft_delete_retention_days: Option<u32>,
        /// The User attribute holding the source-of-truth tag (a declared
        /// single-valued attribute, e.g.
        /// urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg);
        /// "" unsets it.
        #[arg(long)]
        origin_attribute: Option<String>,
        /// The primary directory's tag; "" unsets it.
        #[arg(long)]
        expected_origin: Option<String>,
        /// What a write tagged with another origin gets: `accept`, `refuse`
        /// (400 naming the attribute) or `ignore` (answered as if applied,
        /// nothing stored, audited).
        #[arg(long, value_parser = ["accept", "refuse", "ignore"])]
        foreign_origin_writes: Option<String>,
    },
}

impl SettingsCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            SettingsCommand::Show { data } | SettingsCommand::Set { data, .. } => data,
        }
    }
}

#[derive(Args)]
struct DataDir {
    /// Directory holding Muster's SQLite database (and, with --database,
    /// the key that seals target secrets and CSV exports).
    #[arg(long, env = "MUSTER_DATA_DIR", default_value = "./muster-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database to use instead of SQLite in the data
    /// directory, e.g. postgres://muster@db.example.com/muster. Several
    /// `muster serve` may share one (see README, "Running on PostgreSQL").
    #[arg(long, env = "MUSTER_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// The tenant the command works in (see `muster tenant list`).
    #[arg(long, env = "MUSTER_TENANT", default_value = "default")]
    tenant: String,
}

impl DataDir {
    /// The tenant `--tenant` names, checked for its form only (lowercase
    /// letters, digits and `-`). Whether it exists is checked when the
    /// store is opened ([`open_store`], [`open_existing_store`]), so a
    /// command never writes to a tenant that is not registered.
    fn tenant(&self) -> Result<TenantId> {
        muster_store::tenants::parse_tenant_name(&self.tenant)
            .map_err(|error| anyhow!("--tenant: {error}"))
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it, alone, on standard output.
    ///
    /// Give it to the identity provider (Entra ID: Secret Token). It is
    /// shown this once: only its hash is stored.
    #[command(after_help = "Examples:\n  \
        muster token create --name entra --scope scim.write\n  \
        muster token create --name console --scope admin")]
    Create {
        #[command(flatten)]
        data: DataDir,
        /// Unique token name; shows as the client in logs and the change log.
        #[arg(long)]
        name: String,
        /// Scope to grant (repeatable): scim.read, scim.write or admin.
        /// Without any, the token gets scim.read and scim.write.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        options: clients::CredentialArgs,
    },
    /// List tokens: names, scopes, creation time, options (never secrets).
    ///
    /// Options are the matching policy and the rate limit.
    #[command(after_help = "Example:\n  muster token list")]
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by name.
    #[command(after_help = "Example:\n  muster token revoke entra")]
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// The token name.
        name: String,
    },
}

impl TokenCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            TokenCommand::Create { data, .. }
            | TokenCommand::List { data }
            | TokenCommand::Revoke { data, .. } => data,
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let listing = cli.command.only_lists();
    // `serve` sets up its own logging from its settings (format, level,
    // trace export), once the runtime it exports on runs.
    if !matches!(cli.command, Command::Serve(_)) {
        logging::init_for_commands();
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of a listing went away (`muster attributes | head`):
        // nothing was left undone.
        Err(error) if listing && error.is::<ClosedOutput>() => ExitCode::SUCCESS,
        // A refused target document: every problem on its own line.
        Err(error) if error.is::<sync::Refused>() => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, with `serve`'s configuration file (`--config`,
/// `MUSTER_CONFIG`) read as the defaults of its settings: flags, then
/// environment variables, then the file, then built-in defaults.
fn parse_cli() -> Result<Cli> {
    let matches = Cli::command().get_matches();
    let file = matches
        .subcommand_matches("serve")
        .and_then(|serve| serve.get_one::<PathBuf>("config"));
    let matches = match file {
        Some(file) => config::with_file_defaults(Cli::command(), file)?.get_matches(),
        None => matches,
    };
    Cli::from_arg_matches(&matches).map_err(|error| error.exit())
}

impl Command {
    /// Whether the command only prints what it reads (so that a reader
    /// closing its output early leaves nothing undone).
    fn only_lists(&self) -> bool {
        matches!(
            self,
            Command::Attributes { .. }
                | Command::Token(TokenCommand::List { .. })
                | Command::Client(clients::ClientCommand::List { .. })
                | Command::Tenant(tenants::TenantCommand::List { .. })
                | Command::Schema(SchemaCommand::List { .. })
                | Command::Settings(SettingsCommand::Show { .. })
        ) || matches!(self, Command::User(command) if command.only_lists())
    }
}

/// Standard output was closed by its reader before everything was written.
#[derive(Debug)]
struct ClosedOutput;

impl std::fmt::Display for ClosedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed before everything was written")
    }
}

impl std::error::Error for ClosedOutput {}

/// Writes a line to standard output, failing with [`ClosedOutput`] (rather
/// than panicking as `println!` does) when its reader has gone.
fn say(line: impl std::fmt::Display) -> Result<()> {
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedOutput.into()),
        written => written.context("writing to standard output"),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Config(command) => config::config(command).await,
        Command::Token(command) => token(command).await,
        Command::Client(command) => clients::client(command).await,
        Command::Tenant(command) => tenants::tenant(command).await,
        Command::Schema(command) => schema(command).await,
        Command::Attributes { data, json } => attributes(&data, json).await,
        Command::Settings(command) => settings(command).await,
        Command::Rules(command) => rules::rules(command).await,
        Command::Explain(command) => sync::explain(command).await,
        Command::Target(command) => sync::target(command).await,
        Command::Sync(command) => sync::sync(command).await,
        Command::Expr(command) => expr::expr(command),
        Command::Import(args) => transfer::import(args).await,
        Command::Export(args) => transfer::export(args).await,
        Command::Offboard(args) => offboard::offboard(args).await,
        Command::Unlock(args) => offboard::unlock(args).await,
        Command::User(command) => lifecycle::user(command).await,
        Command::Audit(args) => audit::audit(args).await,
        Command::Migrate { data, dry_run } => {
            migrate(&data.data_dir, data.database.as_deref(), dry_run).await
        }
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Completions(args) => completions::completions(&args, Cli::command()),
    }
}

/// Opens (creating if needed) the store for a short command: the
/// PostgreSQL database `--database` names, else SQLite in the data
/// directory with one reader thread (plenty for one command). The tenant
/// `--tenant` names must exist ([`check_tenant`]).
async fn open_store(data: &DataDir) -> Result<Arc<dyn Store>> {
    let store = open_registry(data).await?;
    check_tenant(&*store, data).await?;
    Ok(store)
}

/// [`open_store`] without the tenant check: for `muster tenant`, which
/// works on the registry itself.
async fn open_registry(data: &DataDir) -> Result<Arc<dyn Store>> {
    let options = SqliteOptions {
        max_readers: 1,
        ..SqliteOptions::default()
    };
    let postgres = PostgresOptions { max_connections: 4 };
    open_store_with(data, &options, &postgres).await
}

/// Refuses a `--tenant` that is not registered: a command never reads an
/// empty tenant for a mistyped name, nor writes to one that does not exist.
async fn check_tenant(store: &dyn Store, data: &DataDir) -> Result<()> {
    let tenant = data.tenant()?;
    if !store.tenant_exists(&tenant).await? {
        bail!(
            "tenant '{}' does not exist (see 'muster tenant list'; 'muster tenant create {}' \
             registers it)",
            tenant.0,
            tenant.0
        );
    }
    Ok(())
}

/// Opens (creating if needed) the store `data` names.
async fn open_store_with(
    data: &DataDir,
    sqlite: &SqliteOptions,
    postgres: &PostgresOptions,
) -> Result<Arc<dyn Store>> {
    match &data.database {
        // The URL may hold a password: it is never printed. The data
        // directory still holds the key that seals target secrets.
        Some(url) => {
            std::fs::create_dir_all(&data.data_dir).with_context(|| {
                format!("creating the data directory {}", data.data_dir.display())
            })?;
            Ok(Arc::new(
                PostgresStore::connect(url, postgres)
                    .await
                    .context("opening the PostgreSQL database")?,
            ))
        }
        None => Ok(Arc::new(
            SqliteStore::open_with(&data.data_dir, sqlite)
                .with_context(|| format!("opening the database in {}", data.data_dir.display()))?,
        )),
    }
}

/// A PostgreSQL URL's database and hosts, for messages: never its password.
fn database_name(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "(an unreadable URL)".to_owned();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "database {} on {}",
        config.get_dbname().unwrap_or("(default)"),
        hosts.join(",")
    )
}

/// `muster migrate [--database URL] [--dry-run]`.
async fn migrate(data_dir: &Path, database: Option<&str>, dry_run: bool) -> Result<()> {
    // The URL may hold a password: it is never printed.
    let pending = match database {
        Some(url) => muster_store::postgres::pending_migrations(url)
            .await
            .context("reading the PostgreSQL database")?,
        None => pending_migrations(&data_dir.join(DATABASE_FILE))
            .with_context(|| format!("reading the database in {}", data_dir.display()))?,
    };
    if pending.is_empty() {
        return say("the database is up to date; nothing to apply");
    }
    if dry_run {
        for step in &pending {
            say(format_args!(
                "-- migration {}: {}\n{}\n",
                step.version,
                step.name,
                step.sql.trim()
            ))?;
        }
        return say(format_args!(
            "-- {} migration(s) pending; nothing was applied",
            pending.len()
        ));
    }
    let applied = match database {
        Some(url) => muster_store::postgres::migrate(url)
            .await
            .context("migrating the PostgreSQL database")?,
        None => {
            SqliteStore::open(data_dir)
                .with_context(|| format!("opening the database in {}", data_dir.display()))?;
            pending
        }
    };
    for step in &applied {
        say(format_args!(
            "applied migration {}: {}",
            step.version, step.name
        ))?;
    }
    if applied.is_empty() {
        say("the database is up to date; nothing to apply")?;
    }
    Ok(())
}

/// Opens the store, which must exist already: commands that only read or
/// remove never create an empty SQLite database in a mistyped place.
async fn open_existing_store(data: &DataDir) -> Result<Arc<dyn Store>> {
    let store = open_existing_registry(data).await?;
    check_tenant(&*store, data).await?;
    Ok(store)
}

/// [`open_existing_store`] without the tenant check (`muster tenant`).
async fn open_existing_registry(data: &DataDir) -> Result<Arc<dyn Store>> {
    if data.database.is_none() && !data.data_dir.join(DATABASE_FILE).is_file() {
        bail!(
            "no Muster database in {} (run 'muster serve' or 'muster token create' there first, or check --data-dir)",
            data.data_dir.display()
        );
    }
    open_registry(data).await
}

async fn token(command: TokenCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        TokenCommand::Create {
            data,
            name,
            scopes,
            options,
        } => {
            let options = options.options()?;
            // Refused before the store is opened: a refusal creates nothing.
            muster_core::clients::check_scopes(&scopes).map_err(|problem| anyhow!("{problem}"))?;
            let store = open_store(&data).await?;
            let token = muster_core::credentials::create_token(
                &*store,
                &tenant,
                &cli_actor(),
                &name,
                &scopes,
                options,
            )
            .await
            .map_err(refused)?;
            say(token.secret).with_context(|| {
                format!(
                    "token '{name}' was created but its secret could not be printed; \
                     revoke it with 'muster token revoke {name}' and create another"
                )
            })?;
        }
        TokenCommand::List { data } => {
            let store = open_existing_store(&data).await?;
            let options: std::collections::HashMap<_, _> =
                store.token_options(&tenant).await?.into_iter().collect();
            for token in store.list_tokens(&tenant).await? {
                let options = options.get(&token.name).cloned().unwrap_or_default();
                say(format_args!(
                    "{}\t{}\t{}\tmatch={}\trate-limit={}",
                    token.name,
                    token.scopes.join(","),
                    token.created,
                    clients::describe_matching(&options),
                    clients::describe_rate_limit(&options),
                ))?;
            }
        }
        TokenCommand::Revoke { data, name } => {
            let store = open_existing_store(&data).await?;
            muster_core::credentials::revoke_token(&*store, &tenant, &cli_actor(), &name)
                .await
                .map_err(refused)?;
            eprintln!("revoked token '{name}'");
        }
    }
    Ok(())
}

/// A refusal or failure of a Muster procedure, as one line.
pub(crate) fn refused(error: muster_core::Error) -> anyhow::Error {
    anyhow!("{}", error.into_scim().detail)
}

/// The actor the change log records for CLI changes: `cli:<login>`.
pub(crate) fn cli_actor() -> Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Actor {
        client: format!("cli:{user}"),
        request_id: String::new(),
    }
}

async fn schema(command: SchemaCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        SchemaCommand::Apply {
            data,
            file,
            resource_type,
            required,
            force,
            dry_run,
            searchable,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let document: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let documents = match document {
                Value::Array(items) => items,
                single => vec![single],
            };
            // Every schema must be valid before any is applied.
            parse_schema_definitions(&Value::Array(documents.clone()))
                .map_err(|error| anyhow!("{}: {}", file.display(), error.detail))?;
            let store = open_store(&data).await?;
            let options = ApplyOptions {
                resource_type,
                required: required.then_some(true),
                force,
                dry_run,
                searchable,
            };
            let actor = cli_actor();
            // A closed output does not stop the schemas after it from
            // being applied; it fails the command once they are.
            let mut printed = Ok(());
            for document in &documents {
                let report = apply_schema(&*store, &tenant, &actor, document, None, &options)
                    .await
                    .map_err(refused)?;
                let text = if json {
                    serde_json::to_string_pretty(&report)?
                } else {
                    describe_report(&report, Action::Apply)
                };
                if printed.is_ok() {
                    printed = say(text);
                }
            }
            printed?;
        }
        SchemaCommand::List { data, json } => {
            let store = open_existing_store(&data).await?;
            let records = store.list_schemas(&tenant).await?;
            if json {
                let documents: Vec<&Value> = records.iter().map(|r| &r.document).collect();
                say(serde_json::to_string_pretty(&documents)?)?;
            } else {
                let rows: Vec<Vec<String>> = records
                    .iter()
                    .map(|record| {
                        let attributes = record
                            .document
                            .get("attributes")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        vec![
                            record.urn.clone(),
                            record.resource_type.clone(),
                            if record.required {
                                "required"
                            } else {
                                "optional"
                            }
                            .to_owned(),
                            attributes.to_string(),
                            record.updated.clone(),
                            record.client.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "SCHEMA",
                        "RESOURCE TYPE",
                        "BINDING",
                        "ATTRIBUTES",
                        "UPDATED",
                        "BY",
                    ],
                    &rows,
                )?;
            }
        }
        SchemaCommand::Remove {
            data,
            urn,
            force,
            dry_run,
        } => {
            let store = open_existing_store(&data).await?;
            let report = remove_schema(&*store, &tenant, &cli_actor(), &urn, force, dry_run)
                .await
                .map_err(refused)?;
            say(describe_report(&report, Action::Remove))?;
        }
    }
    Ok(())
}

/// What a schema command did.
#[derive(Clone, Copy)]
enum Action {
    /// `schema apply`.
    Apply,
    /// `schema remove`.
    Remove,
}

/// One line, or a few, saying what a schema change did.
fn describe_report(report: &SchemaReport, action: Action) -> String {
    let binding = if report.required {
        "required"
    } else {
        "optional"
    };
    let first = match (action, report.applied, report.created) {
        (Action::Apply, false, _) => format!(
            "dry run: {} on {} ({binding})",
            report.id, report.resource_type
        ),
        (Action::Apply, true, true) => format!(
            "declared {} on {} ({binding})",
            report.id, report.resource_type
        ),
        (Action::Apply, true, false) => format!(
            "applied {} on {} ({binding})",
            report.id, report.resource_type
        ),
        (Action::Remove, false, _) => format!(
            "dry run: would remove {} from {}",
            report.id, report.resource_type
        ),
        (Action::Remove, true, _) => {
            format!("removed {} from {}", report.id, report.resource_type)
        }
    };
    let mut lines = vec![first];
    if !report.searchable.is_empty() {
        lines.push(format!("  searchable: {}", report.searchable.join(", ")));
    }
    let changes = &report.changes;
    if !changes.added.is_empty() {
        lines.push(format!("  added: {}", changes.added.join(", ")));
    }
    if !changes.removed.is_empty() {
        lines.push(format!("  removed: {}", changes.removed.join(", ")));
    }
    for change in &changes.type_changes {
        lines.push(format!(
            "  type of {}: {} -> {}",
            change.path,
            change.old.as_str(),
            change.new.as_str()
        ));
    }
    for removed in &report.removed_values {
        lines.push(format!(
            "  values removed at {}: {} resources",
            removed.path, removed.holders
        ));
    }
    for adopted in &report.adopted_values {
        lines.push(format!(
            "  captured values adopted at {}: {} resources",
            adopted.path, adopted.holders
        ));
    }
    for failure in &report.conversion_failures {
        lines.push(format!(
            "  would not convert: {} of {} = {} ({})",
            failure.path, failure.id, failure.value, failure.reason
        ));
    }
    if report.applied && report.rewritten > 0 {
        lines.push(format!("  resources rewritten: {}", report.rewritten));
    }
    lines.join("\n")
}

async fn attributes(data: &DataDir, json: bool) -> Result<()> {
    let tenant = data.tenant()?;
    let store = open_existing_store(data).await?;
    let view = load_view(&*store, &tenant)
        .await
        .map_err(|error| refused(error.into()))?;
    let usage = store.attribute_usage(&tenant).await?;
    let schemas = store.list_schemas(&tenant).await?;
    let rows = explain(&view.registry, &usage, &schemas);
    if json {
        say(serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let indexed = if row.declared && !row.indexed {
                " (not searchable)"
            } else {
                ""
            };
            let kind = match (&row.r#type, row.multi_valued, row.declared) {
                (_, _, false) => "(undeclared)".to_owned(),
                (Some(kind), Some(true), _) => format!("{kind}[]"),
                (Some(kind), _, _) => kind.clone(),
                (None, _, _) => "-".to_owned(),
            };
            vec![
                row.resource_type.clone(),
                row.path.clone(),
                format!("{kind}{indexed}"),
                row.holders.to_string(),
                row.last_client.clone().unwrap_or_else(|| "-".to_owned()),
                row.last_set.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    print_table(
        &[
            "RESOURCE TYPE",
            "PATH",
            "TYPE",
            "HOLDERS",
            "LAST CLIENT",
            "LAST SET",
        ],
        &table,
    )
}

async fn settings(command: SettingsCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        SettingsCommand::Show { data } => {
            let store = open_existing_store(&data).await?;
            let settings = tenant_settings(&*store, &tenant).await.map_err(refused)?;
            say(format_args!(
                "undeclared-attributes\t{}",
                settings.undeclared_attributes.as_str()
            ))?;
            say(format_args!(
                "delete-means\t{}",
                settings.delete_means.as_str()
            ))?;
            say(format_args!(
                "soft-delete-retention-days\t{}",
                settings.soft_delete_retention_days
            ))?;
            say(format_args!(
                "origin-attribute\t{}",
                settings.origin_attribute.as_deref().unwrap_or("")
            ))?;
            say(format_args!(
                "expected-origin\t{}",
                settings.expected_origin.as_deref().unwrap_or("")
            ))?;
            say(format_args!(
                "foreign-origin-writes\t{}",
                settings.foreign_origin_writes.as_str()
            ))?;
        }
        SettingsCommand::Set {
            data,
            undeclared_attributes,
            delete_means,
            soft_delete_retention_days,
            origin_attribute,
            expected_origin,
            foreign_origin_writes,
        } => {
            let store = open_store(&data).await?;
            // Flags not given keep their stored values.
            let mut settings = tenant_settings(&*store, &tenant).await.map_err(refused)?;
            if let Some(undeclared_attributes) = &undeclared_attributes {
                settings.undeclared_attributes = UndeclaredPolicy::parse(undeclared_attributes)
                    .ok_or_else(|| {
                        anyhow!(
                            "--undeclared-attributes takes 'reject' or 'capture', got '{undeclared_attributes}'"
                        )
                    })?;
            }
            if let Some(delete_means) = &delete_means {
                settings.delete_means = muster_core::lifecycle::DeleteMeans::parse(delete_means)
                    .ok_or_else(|| {
                        anyhow!(
                            "--delete-means takes 'softDelete' or 'deactivate', got '{delete_means}'"
                        )
                    })?;
            }
            if let Some(days) = soft_delete_retention_days {
                settings.soft_delete_retention_days = days;
            }
            if let Some(path) = &origin_attribute {
                settings.origin_attribute = Some(path.clone()).filter(|path| !path.is_empty());
            }
            if let Some(tag) = &expected_origin {
                settings.expected_origin = Some(tag.clone()).filter(|tag| !tag.is_empty());
            }
            if let Some(policy) = &foreign_origin_writes {
                settings.foreign_origin_writes =
                    muster_core::origin::ForeignOriginWrites::parse(policy).ok_or_else(|| {
                        anyhow!("--foreign-origin-writes takes 'accept', 'refuse' or 'ignore', got '{policy}'")
                    })?;
            }
            put_settings(&*store, &tenant, &cli_actor(), &settings)
                .await
                .map_err(refused)?;
            if let Some(undeclared_attributes) = undeclared_attributes {
                eprintln!("undeclared-attributes set to {undeclared_attributes}");
            }
            if let Some(delete_means) = delete_means {
                eprintln!("delete-means set to {delete_means}");
            }
            if let Some(days) = soft_delete_retention_days {
                eprintln!("soft-delete-retention-days set to {days}");
            }
            if let Some(path) = origin_attribute {
                eprintln!("origin-attribute set to '{path}'");
            }
            if let Some(tag) = expected_origin {
                eprintln!("expected-origin set to '{tag}'");
            }
            if let Some(policy) = foreign_origin_writes {
                eprintln!("foreign-origin-writes set to {policy}");
            }
        }
    }
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        say(padded.join("  ").trim_end())
    };
    line(header.to_vec())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}
