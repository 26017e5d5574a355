//! Logs and traces: text or JSON lines on standard error at a level
//! (`--log-level`, `MUSTER_LOG`), and, with `--otlp-endpoint`, every span
//! (each request's carries its request id, tenant and client) exported to an
//! OpenTelemetry collector over OTLP/HTTP with protobuf bodies.
//!
//! The exporter sends with the reqwest client the sync engine already
//! builds (rustls, ring), run on the server's tokio runtime: no second HTTP
//! stack and no gRPC in the binary.

use std::io::IsTerminal;

use anyhow::{anyhow, Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event (colours only on a terminal).
    Text,
    /// One JSON object per event, with the fields of its span (request id,
    /// tenant, client), for log collectors.
    Json,
}

/// A level or `tracing` filter directive (`info`, `debug`,
/// `muster_server=debug,info`), checked when the arguments are read.
pub(crate) fn parse_log_level(text: &str) -> Result<String, String> {
    EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|error| format!("'{text}' is not a log level or filter ({error})"))
}

/// `directives` with the PostgreSQL driver held at `info` unless they name
/// it: at `debug` it logs every statement's parameters, which carry
/// personal data and a console session's CSRF token.
fn with_quiet_driver(directives: &str) -> String {
    if directives.contains("tokio_postgres") {
        directives.to_owned()
    } else {
        format!("{directives},tokio_postgres=info")
    }
}

/// Logging of the commands other than `serve`: text on standard error at
/// the level `MUSTER_LOG` names (default `info`).
pub(crate) fn init_for_commands() {
    let directives = std::env::var("MUSTER_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(with_quiet_driver(&directives))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs sent to a file or a collector
        // must not carry escape codes.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The trace exporter of a server, flushed by [`Traces::shutdown`].
pub(crate) struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends the spans still buffered and stops the exporter. Blocking (the
    /// exporter's thread waits on the runtime), so it runs off the runtime's
    /// worker threads.
    pub(crate) async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "the last traces could not be exported");
        }
    }
}

/// Logging (and, with `otlp_endpoint`, trace export) for `serve`. Must run
/// on the tokio runtime that serves: the exporter sends on it.
pub(crate) fn init_for_serve(
    level: &str,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<Option<Traces>> {
    let filter = EnvFilter::try_new(with_quiet_driver(level))
        .map_err(|error| anyhow!("--log-level: {error}"))?;
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("muster"))
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces)
        .try_init()
        .context("setting up logging")?;
    Ok(provider.map(|provider| Traces { provider }))
}

/// A tracer provider exporting batches of spans to
/// `{endpoint}/v1/traces` (the OTLP/HTTP path of traces).
fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("building the OTLP HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_http_client(OnRuntime {
            client,
            runtime: tokio::runtime::Handle::current(),
        })
        .build()
        .context("--otlp-endpoint")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("muster")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The OTLP exporter's HTTP client: reqwest on the server's runtime. The
/// batch processor exports from a thread of its own, outside any runtime,
/// so each request is spawned onto `runtime` and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        self.runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    headers.clone_from(response.headers());
                }
                // The collector's answer is small (an empty or partial
                // success message); reqwest's timeout bounds the wait.
                let body = response.bytes().await?;
                Ok::<_, HttpError>(answer.body(body)?)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_driver_stays_at_info_unless_named() {
        assert_eq!(with_quiet_driver("debug"), "debug,tokio_postgres=info");
        assert_eq!(
            with_quiet_driver("tokio_postgres=debug,info"),
            "tokio_postgres=debug,info"
        );
        let filter = EnvFilter::try_new(with_quiet_driver("muster_server=debug,debug"));
        assert!(filter.is_ok(), "{filter:?}");
    }
}
