//! The `muster` binary: argument parsing, logging set-up and wiring of the
//! store into the server. No SCIM logic lives here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use muster_server::auth::{mint_token, SCOPES, SCOPE_READ, SCOPE_WRITE};
use muster_server::{AppState, ServerConfig};
use muster_store::sqlite::{SqliteStore, DATABASE_FILE};
use muster_store::{Store, TenantId, TokenRecord};

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
}

#[derive(Args)]
struct DataDir {
    /// Directory holding Muster's SQLite database.
    #[arg(long, env = "MUSTER_DATA_DIR", default_value = "./muster-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MUSTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
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
    },
    /// List tokens (names, scopes, creation time; never secrets).
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUSTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Token(command) => token(command).await,
    }
}

/// Opens (creating if needed) the database in `data_dir`.
fn open_store(data_dir: &Path) -> Result<SqliteStore> {
    SqliteStore::open(data_dir)
        .with_context(|| format!("opening the database in {}", data_dir.display()))
}

/// Opens the database in `data_dir`, which must exist already: commands that
/// only read or remove never create an empty database in a mistyped place.
fn open_existing_store(data_dir: &Path) -> Result<SqliteStore> {
    if !data_dir.join(DATABASE_FILE).is_file() {
        bail!(
            "no Muster database in {} (run 'muster serve' or 'muster token create' there first, or check --data-dir)",
            data_dir.display()
        );
    }
    open_store(data_dir)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let store = open_store(&args.data.data_dir)?;
    let state = AppState::new(Arc::new(store), ServerConfig::default());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("Muster SCIM base URL: http://{address}/scim/v2");
    println!("Data directory: {}", args.data.data_dir.display());
    tracing::info!(%address, "serving");
    muster_server::serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")
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
    let tenant = TenantId::default_tenant();
    match command {
        TokenCommand::Create {
            data,
            name,
            mut scopes,
        } => {
            if scopes.is_empty() {
                scopes = vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()];
            }
            if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                bail!(
                    "unknown scope '{unknown}'; use one of {}",
                    SCOPES.join(", ")
                );
            }
            let store = open_store(&data.data_dir)?;
            let token = mint_token();
            store
                .create_token(
                    &tenant,
                    TokenRecord {
                        name,
                        secret_hash: token.secret_hash,
                        scopes,
                        created: String::new(),
                    },
                )
                .await?;
            println!("{}", token.secret);
        }
        TokenCommand::List { data } => {
            let store = open_existing_store(&data.data_dir)?;
            for token in store.list_tokens(&tenant).await? {
                println!(
                    "{}\t{}\t{}",
                    token.name,
                    token.scopes.join(","),
                    token.created
                );
            }
        }
        TokenCommand::Revoke { data, name } => {
            let store = open_existing_store(&data.data_dir)?;
            store.revoke_token(&tenant, &name).await?;
            eprintln!("revoked token '{name}'");
        }
    }
    Ok(())
}
