//! The yardstick of issue 15's read target: an axum server answering every
//! GET with one fixed body (a user as Muster renders it), on the same
//! runtime and allocator as `muster serve`. `scripts/bench-reads.sh` runs
//! wrk against it and against Muster's GET by id in one run.
//!
//! Usage: `static-reference --listen 127.0.0.1:9002 --body FILE`

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves one body to every GET.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9002")]
    listen: SocketAddr,
    /// The body to answer with (e.g. a user fetched from Muster).
    #[arg(long)]
    body: std::path::PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let body = bytes::Bytes::from(
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let answer = move || {
            let body = body.clone();
            async move {
                (
                    [(CONTENT_TYPE, "application/scim+json"), (ETAG, "W/\"1\"")],
                    body,
                )
                    .into_response()
            }
        };
        let app = Router::new().fallback(get(answer));
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
