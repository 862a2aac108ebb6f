//! The desk's stylesheet, script and icon, compiled into the binary. Each is
//! served at an address carrying a hash of its content, so it may be cached
//! for good and a new build is never mixed with an old asset.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One asset: its name, its content and its type.
struct Asset {
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset { name: "desk.css", body: include_str!("assets/desk.css"), content_type: "text/css; charset=utf-8" },
    Asset { name: "desk.js", body: include_str!("assets/desk.js"), content_type: "text/javascript; charset=utf-8" },
    Asset { name: "icon.svg", body: include_str!("assets/icon.svg"), content_type: "image/svg+xml" },
];

/// Each asset's address (`/desk/assets/desk.<hash>.css`), by name.
static ADDRESSES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let hash = hex::encode(Sha256::digest(asset.body.as_bytes()));
            let short = hash.get(..12).unwrap_or(&hash);
            let (stem, extension) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
            (asset.name, format!("/desk/assets/{stem}.{short}.{extension}"))
        })
        .collect()
});

/// The address of asset `name` (`desk.css`, `desk.js` or `icon.svg`).
pub(crate) fn address(name: &str) -> &'static str {
    ADDRESSES.iter().find(|(known, _)| *known == name).map(|(_, address)| address.as_str()).unwrap_or("")
}

/// `GET /desk/assets/{name}`: an asset by its hashed address only.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let requested = format!("/desk/assets/{name}");
    let found = ASSETS.iter().find(|asset| address(asset.name) == requested);
    let Some(asset) = found else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}
