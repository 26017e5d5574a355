//! `muster serve`: its settings (flags, `MUSTER_*` variables, the
//! configuration file of [`crate::config`]), the store it opens, HTTP or
//! HTTPS (rustls; the certificate reloaded when its files change), the
//! first-run guidance, and a graceful stop on SIGINT / SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use clap::Args;
use muster_server::{AppState, ServerConfig};
use muster_store::postgres::PostgresOptions;
use muster_store::sqlite::SqliteOptions;
use muster_store::{Store, TenantId};

use crate::logging::{self, LogFormat};
use crate::{database_name, lifecycle, open_store_with, say, DataDir};

/// How often the certificate and key files are read to see whether they
/// changed (two small reads; a renewal is served within this time).
const TLS_RELOAD_POLL: Duration = Duration::from_secs(1);

/// The settings of `muster serve`. Each can also come from the
/// configuration file (`--config`), whose keys are the long flag names;
/// flags win over environment variables, which win over the file.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// A TOML file holding any of these settings, keys named as the flags
    /// (`listen = "0.0.0.0:8443"`); flags and environment variables win
    /// over it. Check one with `muster config check FILE`.
    #[arg(long, env = "MUSTER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "MUSTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Read again when the files change, so a renewal needs no
    /// restart.
    #[arg(long, env = "MUSTER_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "MUSTER_TLS_KEY")]
    tls_key: Option<PathBuf>,
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
    /// https://muster.example.com: `Location` and `meta.location` are built
    /// from it. Without it, the listen address.
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
    export_root: Option<PathBuf>,
    /// How long an OAuth access token from POST /oauth/token lives, e.g.
    /// 1h, 15m.
    #[arg(long, env = "MUSTER_ACCESS_TOKEN_TTL", default_value = "1h",
          value_parser = parse_positive_duration)]
    access_token_ttl: Duration,
    /// Requests per second of a client (token or OAuth client) that has no
    /// limit of its own, with a burst of one second's worth; `off` or 0 for
    /// none. Each replica counts its own requests.
    #[arg(long, env = "MUSTER_CLIENT_RATE_LIMIT", default_value = "1000",
          value_parser = muster_core::clients::parse_rate_limit)]
    client_rate_limit: u32,
    /// The longest a request may take before it is answered 503, e.g. 60s.
    #[arg(long, env = "MUSTER_REQUEST_TIMEOUT", default_value = "60s",
          value_parser = parse_positive_duration)]
    request_timeout: Duration,
    /// What is logged: a level (error, warn, info, debug, trace) or a
    /// filter such as `info,muster_sync=debug`.
    #[arg(long, env = "MUSTER_LOG", default_value = "info",
          value_parser = logging::parse_log_level)]
    log_level: String,
    /// How log lines are written: `text`, or `json` (one object a line,
    /// with the request id, tenant and client of each request).
    #[arg(long, env = "MUSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Export traces to this OpenTelemetry collector over OTLP/HTTP
    /// (protobuf), e.g. http://otel-collector:4318; spans go to
    /// `URL/v1/traces`. Off without it.
    #[arg(long, env = "MUSTER_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    otlp_endpoint: Option<String>,
    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// A duration such as `30s`, `15m`, `1h`, more than zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = muster_core::clients::parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    Ok(duration)
}

/// An absolute `http` or `https` URL without query or fragment; a trailing
/// slash is dropped.
fn parse_public_url(text: &str) -> Result<String, String> {
    parse_http_url(text, "https://muster.example.com")
}

/// The collector's base URL, as [`parse_public_url`] checks it.
fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    parse_http_url(text, "http://otel-collector:4318")
}

/// An absolute `http` or `https` URL with a host, an optional path and no
/// query or fragment, without its trailing slash; `example` shows the form
/// in the refusal.
fn parse_http_url(text: &str, example: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("'{text}' is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "'{text}' must be a URL such as {example} (a host, an optional path, no query)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The certificate and key files of HTTPS.
#[derive(Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// The pair the settings name: both or neither.
    fn of(args: &ServeArgs) -> Result<Option<TlsFiles>> {
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => {
                bail!("--tls-cert needs --tls-key (tls-key in the file, MUSTER_TLS_KEY)")
            }
            (None, Some(_)) => {
                bail!("--tls-key needs --tls-cert (tls-cert in the file, MUSTER_TLS_CERT)")
            }
        }
    }

    /// Both files' bytes.
    async fn read(&self) -> Result<PemPair> {
        let cert = tokio::fs::read(&self.cert)
            .await
            .with_context(|| format!("reading --tls-cert {}", self.cert.display()))?;
        let key = tokio::fs::read(&self.key)
            .await
            .with_context(|| format!("reading --tls-key {}", self.key.display()))?;
        Ok(PemPair { cert, key })
    }
}

/// What HTTPS serves: the rustls configuration (HTTP/2 and HTTP/1.1
/// offered by ALPN), the files it came from and their contents.
struct Tls {
    config: RustlsConfig,
    files: TlsFiles,
    served: PemPair,
}

impl Tls {
    /// The configuration from the files, refused when they do not hold a
    /// certificate chain and its private key.
    async fn load(files: TlsFiles) -> Result<Tls> {
        let served = files.read().await?;
        let config = RustlsConfig::from_pem(served.cert.clone(), served.key.clone())
            .await
            .with_context(|| {
                format!(
                    "--tls-cert {} and --tls-key {} must hold a PEM certificate chain and its private key",
                    files.cert.display(),
                    files.key.display()
                )
            })?;
        Ok(Tls {
            config,
            files,
            served,
        })
    }
}

/// The contents of a certificate file and its key file.
#[derive(PartialEq, Eq)]
struct PemPair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Checks what `muster config check` can check beyond each value: the TLS
/// files are a pair that loads.
pub(crate) async fn check(args: &ServeArgs) -> Result<()> {
    if let Some(files) = TlsFiles::of(args)? {
        Tls::load(files).await?;
    }
    Ok(())
}

/// `muster serve`: logging, then the server until SIGINT or SIGTERM, then
/// the traces still buffered.
pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
    let traces = logging::init_for_serve(
        &args.log_level,
        args.log_format,
        args.otlp_endpoint.as_deref(),
    )?;
    let served = run(args).await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    served
}

async fn run(args: ServeArgs) -> Result<()> {
    let tls = match TlsFiles::of(&args)? {
        Some(files) => Some(Tls::load(files).await?),
        None => None,
    };
    // `muster restore` refuses a SQLite database a server is using. (Replicas
    // on PostgreSQL may share a data directory: theirs is not locked.)
    let _serving = match &args.data.database {
        None => Some(crate::backup::lock_serving(&args.data.data_dir)?),
        Some(_) => None,
    };
    let mut options = SqliteOptions::default();
    if let Some(readers) = args.readers {
        options.max_readers = usize::from(readers);
    }
    let postgres = PostgresOptions {
        max_connections: usize::from(args.max_connections),
    };
    let store = open_store_with(&args.data, &options, &postgres).await?;
    let first_run = has_no_credentials(&*store).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{address}"));
    let config = ServerConfig {
        // Under TLS the listen address is reached over https: locations
        // say so (the server's own fallback is http).
        public_url: args
            .public_url
            .clone()
            .or_else(|| (tls.is_some() && !args.trust_proxy_headers).then(|| public.clone())),
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
        .then(|| Duration::from_secs(u64::from(args.feed_retention_days) * 86_400));
    let export_root = args
        .export_root
        .clone()
        .unwrap_or_else(|| args.data.data_dir.join("exports"));
    let sweeping = lifecycle::spawn_sweep(Arc::clone(&store));
    let sealing = lifecycle::spawn_audit_sealer(Arc::clone(&store));
    let state = AppState::new(store, config)
        .with_sync(key, retention, export_root)
        .listening_on(address);
    let engine = state
        .sync
        .as_ref()
        .map(|sync| tokio::spawn(Arc::clone(&sync.engine).run()));
    let app = muster_server::router_with(state.clone(), muster_console::router());

    if !address.ip().is_loopback() {
        let behind_proxy = args.trust_proxy_headers
            || args
                .public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://"));
        if tls.is_none() && behind_proxy {
            tracing::warn!(
                %address,
                "serving plain HTTP beyond loopback behind a TLS proxy: tokens cross the hop \
                 between the proxy and Muster in clear; keep that hop on a private network, or \
                 give --tls-cert and --tls-key"
            );
        } else if tls.is_none() {
            tracing::warn!(
                %address,
                "serving plain HTTP beyond loopback: identity providers provision only to HTTPS \
                 and tokens cross the network in clear; give --tls-cert and --tls-key, or put a \
                 TLS proxy in front and set --public-url"
            );
        }
        if args.public_url.is_none() && !args.trust_proxy_headers {
            tracing::warn!(
                %address,
                "listening beyond loopback without --public-url: resource locations name the listen address"
            );
        }
    }
    let storage = match &args.data.database {
        Some(url) => format!("Database: PostgreSQL, {}", database_name(url)),
        None => format!("Data directory: {}", args.data.data_dir.display()),
    };
    let banner = say(format_args!("Muster SCIM base URL: {public}/scim/v2"))
        .and_then(|()| say(format_args!("{storage}")))
        .and_then(|()| say(format_args!("Admin console: {public}/admin")));
    if banner.is_err() {
        // Serving matters more than the banner; the log says it all too.
        tracing::warn!("standard output is closed; the base URL is in this log only");
    }
    if first_run {
        first_run_guidance(&args.data, &public);
    }
    tracing::info!(%address, %storage, tls = tls.is_some(), "serving");

    let served = match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP"),
        Some(tls) => serve_https(listener, app, tls).await,
    };
    if let Some(engine) = engine {
        engine.abort();
    }
    sweeping.abort();
    sealing.abort();
    served
}

/// Serves `app` over TLS on `listener` until SIGINT or SIGTERM, reloading
/// the certificate when its files change.
async fn serve_https(listener: tokio::net::TcpListener, app: axum::Router, tls: Tls) -> Result<()> {
    let reloading = tokio::spawn(reload_on_change(tls.config.clone(), tls.files, tls.served));
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopping.graceful_shutdown(None);
    });
    let served = axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, tls.config)
        .context("serving HTTPS")?
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .context("serving HTTPS");
    reloading.abort();
    served
}

/// Whether the default tenant has neither a token nor an OAuth client yet:
/// nobody can call this server until an admin creates one.
async fn has_no_credentials(store: &dyn Store) -> Result<bool> {
    let tenant = TenantId::default_tenant();
    Ok(store.list_tokens(&tenant).await?.is_empty()
        && store.list_clients(&tenant).await?.is_empty())
}

/// Tells the admin of a new server how to make its first credentials and
/// where to point an identity provider and a browser.
fn first_run_guidance(data: &DataDir, public: &str) {
    let mut place = format!(
        "--data-dir {}",
        shell_word(&data.data_dir.to_string_lossy())
    );
    if let Some(url) = &data.database {
        place.push_str(&format!(
            " --database {}",
            shell_word(&crate::config::mask_credentials(url))
        ));
    }
    tracing::info!(
        "no token or OAuth client exists yet; create the identity provider's token with: \
         muster token create {place} --name entra --scope scim.write"
    );
    tracing::info!(
        "admin console: {public}/admin (sign in with a token made by: \
         muster token create {place} --name admin --scope admin)"
    );
    tracing::info!(
        "SCIM base URL (the Tenant URL in Entra ID, the base URL in Okta): {public}/scim/v2"
    );
}

/// `text` quoted for a POSIX shell when it holds anything but plain path
/// characters.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | ':' | '@'));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Serves the certificate and key anew whenever their files change
/// (renewals by certbot, a Kubernetes secret or by hand need no restart).
/// Files that do not load are reported once and the previous pair stays.
async fn reload_on_change(config: RustlsConfig, files: TlsFiles, mut served: PemPair) {
    let mut ticks = tokio::time::interval(TLS_RELOAD_POLL);
    let mut reported: Option<String> = None;
    loop {
        ticks.tick().await;
        let outcome = match files.read().await {
            Ok(current) if current == served => Ok(None),
            Ok(current) => config
                .reload_from_pem(current.cert.clone(), current.key.clone())
                .await
                .map(|()| Some(current))
                .map_err(|error| format!("{error}")),
            Err(error) => Err(format!("{error:#}")),
        };
        match outcome {
            Ok(None) => {}
            Ok(Some(current)) => {
                served = current;
                reported = None;
                tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
            }
            Err(problem) => {
                if reported.as_ref() != Some(&problem) {
                    tracing::warn!(
                        cert = %files.cert.display(),
                        key = %files.key.display(),
                        %problem,
                        "the TLS certificate files changed but do not load; still serving the previous certificate"
                    );
                    reported = Some(problem);
                }
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        for (text, expected) in [
            ("./muster-data", "./muster-data"),
            ("/var/lib/muster", "/var/lib/muster"),
            ("my data", "'my data'"),
            ("it's", r"'it'\''s'"),
        ] {
            assert_eq!(shell_word(text), expected, "{text}");
        }
    }
}
