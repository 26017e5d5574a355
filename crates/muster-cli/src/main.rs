//! The `muster` binary: argument parsing, logging set-up and wiring of the
//! store into the server. No SCIM logic lives here.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod audit;
mod clients;
mod expr;
mod lifecycle;
mod offboard;
mod rules;
mod sync;
mod tenants;
mod transfer;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use muster_core::explain::explain;
use muster_core::schemas::{apply_schema, remove_schema, ApplyOptions, SchemaReport};
use muster_core::settings::{put_settings, settings as tenant_settings};
use muster_core::tenant::load_view;
use muster_core::tokens::{mint_token, SCOPES, SCOPE_READ, SCOPE_WRITE};
use muster_scim::parse_schema_definitions;
use muster_scim::UndeclaredPolicy;
use muster_server::{AppState, ServerConfig};
use muster_store::postgres::{PostgresOptions, PostgresStore};
use muster_store::sqlite::{pending_migrations, SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{Actor, Store, TenantId, TokenRecord};
use serde_json::Value;

/// mimalloc rather than the system allocator: serving a request allocates
/// many small JSON values on several threads, where glibc's malloc spent a
/// fifth of the server's CPU time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Muster: a SCIM 2.0 provisioning hub for contact centers.
#[derive(Parser)]
#[command(name = "muster", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve(ServeArgs),
    /// Manage API bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// OAuth 2.0 clients (client credentials at POST /oauth/token):
    /// create, list, rotate, revoke.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// Tenants: create, list, remove. Each has its own SCIM base URL
    /// (`/t/NAME/scim/v2`), tokens, schemas, rules, targets and data.
    #[command(subcommand)]
    Tenant(tenants::TenantCommand),
    /// Declare, list and remove custom extension schemas (RFC 7643 section 7).
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Explain every attribute path: schema, type, how many resources hold a
    /// value, and the last client and time that set one.
    Attributes {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show or change tenant settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Contact-center entitlement rules: check, apply (with a dry run),
    /// roll back, show, history, coverage.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Explain why a user holds its entitlements, or (with --target) how
    /// its attributes are delivered to a target.
    #[command(subcommand)]
    Explain(sync::ExplainCommand),
    /// Downstream targets: apply, list, show, remove.
    #[command(subcommand)]
    Target(sync::TargetCommand),
    /// Delivery to targets: status, dead letters, retry, discard, pause,
    /// resume, reconcile, provision one user, CSV export.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Entra attribute-mapping expressions: evaluate one against attributes.
    #[command(subcommand)]
    Expr(expr::ExprCommand),
    /// Import users and groups from JSON Lines (as `muster export` writes):
    /// ids kept, refused lines reported, resumable.
    Import(transfer::ImportArgs),
    /// Export every user and group as JSON Lines (users first).
    Export(transfer::ExportArgs),
    /// Emergency offboarding: deactivate and lock a user now (its
    /// entitlements revoked; the running server's sync workers deliver it
    /// first); an identity provider cannot reactivate it until `muster unlock`.
    Offboard(offboard::OffboardArgs),
    /// Remove a user's offboarding lock (it stays inactive until the
    /// identity provider or an admin sets `active` again).
    Unlock(offboard::UnlockArgs),
    /// Soft-deleted users: list them, restore one, purge one or every
    /// expired one (`muster user deleted|restore|purge`).
    #[command(subcommand)]
    User(lifecycle::UserCommand),
    /// The audit trail: every change by user, client and time range
    /// (`--jsonl` exports JSON Lines); `muster audit verify` checks its
    /// hash chain.
    Audit(audit::AuditArgs),
    /// Bring the database schema up to this build's version (as `serve`
    /// does on start); `--dry-run` prints the steps instead.
    Migrate {
        #[command(flatten)]
        data: DataDir,
        /// Print the pending steps and their SQL; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Declare or change custom schemas from a JSON file holding one schema
    /// or an array of schemas; a running server picks them up within a second.
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
    List {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON (the stored schema documents) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom schema and, with --force, the values stored under it.
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
    /// Print the settings.
    Show {
        #[command(flatten)]
        data: DataDir,
    },
    /// Change settings.
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

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MUSTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Reader threads, each with its own database connection [default: one
    /// per CPU, at least two]. More help only when reads wait on the disk.
    #[arg(long, env = "MUSTER_READERS", value_parser = clap::value_parser!(u16).range(1..))]
    readers: Option<u16>,
    /// With --database: the most PostgreSQL connections this process
    /// holds. Every replica holds its own, so the server's
    /// `max_connections` must cover replicas times this, plus the admins'.
    #[arg(long, env = "MUSTER_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// The URL identity providers reach Muster at, e.g.
    /// https://muster.example.com (behind a TLS proxy): `Location` and
    /// `meta.location` are built from it. Without it, the listen address.
    #[arg(long, env = "MUSTER_PUBLIC_URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// Take the public URL from the `Forwarded` / `X-Forwarded-Proto` /
    /// `X-Forwarded-Host` headers. Only behind a proxy that sets them: any
    /// client can send them.
    #[arg(long, env = "MUSTER_TRUST_PROXY_HEADERS")]
    trust_proxy_headers: bool,
    /// Days the change feed keeps records that every sync target has
    /// delivered (0 keeps them forever; records a target still needs are
    /// never pruned).
    #[arg(long, env = "MUSTER_FEED_RETENTION_DAYS", default_value_t = 90)]
    feed_retention_days: u32,
    /// The only directory (and below) CSV targets may write to [default:
    /// DATA_DIR/exports].
    #[arg(long, env = "MUSTER_EXPORT_ROOT")]
    export_root: Option<std::path::PathBuf>,
    /// How long an OAuth access token from POST /oauth/token lives, e.g.
    /// 1h, 15m.
    #[arg(long, env = "MUSTER_ACCESS_TOKEN_TTL", default_value = "1h",
          value_parser = parse_positive_duration)]
    access_token_ttl: std::time::Duration,
    /// Requests per second of a client (token or OAuth client) that has no
    /// limit of its own, with a burst of one second's worth; `off` or 0 for
    /// none. Each replica counts its own requests.
    #[arg(long, env = "MUSTER_CLIENT_RATE_LIMIT", default_value = "1000",
          value_parser = muster_core::clients::parse_rate_limit)]
    client_rate_limit: u32,
    /// The longest a request may take before it is answered 503, e.g. 60s.
    #[arg(long, env = "MUSTER_REQUEST_TIMEOUT", default_value = "60s",
          value_parser = parse_positive_duration)]
    request_timeout: std::time::Duration,
    #[command(flatten)]
    data: DataDir,
}

/// A duration such as `30s`, `15m`, `1h`, more than zero.
fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = muster_core::clients::parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    Ok(duration)
}

/// An absolute `http` or `https` URL without query or fragment; a trailing
/// slash is dropped.
fn parse_public_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("'{text}' is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "'{text}' must be a URL such as https://muster.example.com (a host, an optional path, no query)"
        ));
    }
    Ok(trimmed.to_owned())
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it, alone, on standard output.
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
    /// List tokens (names, scopes, creation time, matching policy, rate
    /// limit; never secrets).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by name.
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
    let cli = Cli::parse();
    let listing = cli.command.only_lists();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUSTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs sent to a file or a collector
        // must not carry escape codes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
        Command::Serve(args) => serve(args).await,
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

async fn serve(args: ServeArgs) -> Result<()> {
    let mut options = SqliteOptions::default();
    if let Some(readers) = args.readers {
        options.max_readers = usize::from(readers);
    }
    let postgres = PostgresOptions {
        max_connections: usize::from(args.max_connections),
    };
    let store = open_store_with(&args.data, &options, &postgres).await?;
    let config = ServerConfig {
        public_url: args.public_url.clone(),
        trust_proxy_headers: args.trust_proxy_headers,
        clients: muster_server::limits::ClientLimits {
            access_token_ttl: args.access_token_ttl,
            default_rate_limit: args.client_rate_limit,
            request_timeout: args.request_timeout,
        },
        ..ServerConfig::default()
    };
    let key = muster_sync::secrets::SecretKey::load_or_create(&args.data.data_dir)
        .context("the key that seals target secrets")?;
    let retention = (args.feed_retention_days > 0)
        .then(|| std::time::Duration::from_secs(u64::from(args.feed_retention_days) * 86_400));
    let export_root = args
        .export_root
        .clone()
        .unwrap_or_else(|| args.data.data_dir.join("exports"));
    let sweeping = lifecycle::spawn_sweep(Arc::clone(&store));
    let sealing = lifecycle::spawn_audit_sealer(Arc::clone(&store));
    let state = AppState::new(store, config).with_sync(key, retention, export_root);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    if args.public_url.is_none() && !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "listening beyond loopback without --public-url: resource locations name the listen address"
        );
    }
    let storage = match &args.data.database {
        Some(url) => format!("Database: PostgreSQL, {}", database_name(url)),
        None => format!("Data directory: {}", args.data.data_dir.display()),
    };
    let banner = say(format_args!("Muster SCIM base URL: {public}/scim/v2"))
        .and_then(|()| say(format_args!("{storage}")));
    if banner.is_err() {
        // Serving matters more than the banner; the log says it all too.
        tracing::warn!("standard output is closed; the base URL is in this log only");
    }
    tracing::info!(%address, %storage, "serving");
    let served = muster_server::serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP");
    sweeping.abort();
    sealing.abort();
    served
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

async fn token(command: TokenCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        TokenCommand::Create {
            data,
            name,
            mut scopes,
            options,
        } => {
            let options = options.options()?;
            if scopes.is_empty() {
                scopes = vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()];
            }
            if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                bail!(
                    "unknown scope '{unknown}'; use one of {}",
                    SCOPES.join(", ")
                );
            }
            let store = open_store(&data).await?;
            let token = mint_token();
            store
                .create_token(
                    &tenant,
                    TokenRecord {
                        name: name.clone(),
                        secret_hash: token.secret_hash,
                        scopes: scopes.clone(),
                        created: String::new(),
                    },
                )
                .await?;
            if options != muster_store::clients::CredentialOptions::default() {
                if let Err(error) = store.set_token_options(&tenant, &name, options).await {
                    // A token without the options asked for must not stay.
                    let _ = store.revoke_token(&tenant, &name).await;
                    return Err(error).context("storing the token's options");
                }
            }
            muster_core::audit::record_admin_action(
                &*store,
                &tenant,
                &cli_actor(),
                "create",
                "Token",
                &name,
                serde_json::json!({"scopes": scopes}),
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
            store.revoke_token(&tenant, &name).await?;
            muster_core::audit::record_admin_action(
                &*store,
                &tenant,
                &cli_actor(),
                "revoke",
                "Token",
                &name,
                serde_json::json!({}),
            )
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
