//! The web app's static files, embedded in the binary. Each is served at
//! `/assets/<content hash>/<name>` with a year-long immutable cache: a changed file gets a new URL.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Files;

/// Name → the first 16 hex digits of its content's SHA-256.
static HASHES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    Files::iter()
        .filter_map(|name| {
            let file = Files::get(&name)?;
            let hash = hex::encode(Sha256::digest(&file.data));
            Some((name.into_owned(), hash[..16].to_owned()))
        })
        .collect()
});

/// The URL an embedded file is served at. Panics on a name that is not embedded: templates name
/// their assets by literal, and every page is rendered by the tests.
pub fn url(name: &str) -> String {
    let hash = HASHES
        .get(name)
        .unwrap_or_else(|| panic!("asset {name} is not embedded"));
    format!("/assets/{hash}/{name}")
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /assets/{hash}/{*name}`: the file when the hash is its current one (an old hash is a 404,
/// so a cached page never mixes versions silently).
pub async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    match (HASHES.get(&name), Files::get(&name)) {
        (Some(current), Some(file)) if *current == hash => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(&name)),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            file.data.into_owned(),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
