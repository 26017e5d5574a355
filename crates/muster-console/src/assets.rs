//! The console's static files, embedded in the binary and served under
//! `/admin/assets/{name}` with an `ETag` (their SHA-256) and, since every
//! link carries that hash as `?v=`, a year-long immutable cache.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use muster_server::AppState;
use sha2::{Digest, Sha256};

/// An embedded file: its name, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

/// Every file served.
const ASSETS: [Asset; 3] = [
    Asset {
        name: "console.css",
        media_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/console.css"),
    },
    Asset {
        name: "console.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/console.js"),
    },
    Asset {
        // htmx 2 (https://htmx.org), Zero-Clause BSD: assets/htmx-LICENSE.
        name: "htmx.min.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/htmx.min.js"),
    },
];

/// Each file's hash (the first 16 hex digits of its SHA-256), by position.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            hex::encode(Sha256::digest(asset.bytes))
                .chars()
                .take(16)
                .collect()
        })
        .collect()
});

/// The URL of an asset, relative to the site's root, with its hash: pages
/// of every tenant load the same file.
pub fn url(name: &str) -> String {
    let hash = ASSETS
        .iter()
        .zip(HASHES.iter())
        .find(|(asset, _)| asset.name == name)
        .map(|(_, hash)| hash.as_str())
        .unwrap_or_default();
    format!("/admin/assets/{name}?v={hash}")
}

/// `GET /admin/assets/{name}`.
async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, hash)) = ASSETS
        .iter()
        .zip(HASHES.iter())
        .find(|(asset, _)| asset.name == name)
    else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{hash}\"");
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/admin/assets/{name}", get(asset))
}
