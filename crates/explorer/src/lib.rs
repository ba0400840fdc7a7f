//! The UtilityNet block explorer: a static single-page app (plain HTML, CSS and ES modules, no
//! build step) embedded in the binary and served by an axum [`Router`].
//!
//! The node merges [`router`] into its API router, so the explorer is served from the same
//! origin as the JSON-RPC API it reads: `GET /` is the page, `GET /explorer/<file>` its assets.
//! The page talks to `POST /` (JSON-RPC) and `GET /ws` (subscriptions) of that node.
//!
//! Every response carries a strict Content-Security-Policy: scripts, styles and images only from
//! this origin (no inline script or style attributes), connections only to this origin and its
//! WebSocket, no framing, no plugins, and Trusted Types enforced (the page never assigns HTML).
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

/// URL prefix of the assets.
pub const ASSET_PREFIX: &str = "/explorer/";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: u64,
}

/// FNV-1a, at compile time: a stable ETag for each embedded file.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $ct:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("../assets/", $path));
        Asset {
            path: $path,
            content_type: $ct,
            body: BODY,
            etag: fnv1a(BODY),
        }
    }};
}

/// Every file the page uses. Requests for anything else are 404: paths are looked up in this
/// table, never on a file system.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/errors.js", JS),
    asset!("js/main.js", JS),
    asset!("js/rpc.js", JS),
    asset!("js/live.js", JS),
    asset!("js/util.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/compute.js", JS),
    asset!("js/views/home.js", JS),
    asset!("js/views/blocks.js", JS),
    asset!("js/views/tx.js", JS),
    asset!("js/views/account.js", JS),
    asset!("js/views/chips.js", JS),
    asset!("js/views/models.js", JS),
    asset!("js/views/search.js", JS),
    asset!("js/views/rewards.js", JS),
    asset!("js/views/validators.js", JS),
    asset!("js/views/market.js", JS),
];

/// The explorer's routes: `GET /` (the page) and `GET /explorer/{*path}` (its assets). Merge it
/// into a router that serves the JSON-RPC API on `POST /` and the WebSocket on `/ws`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/explorer/{*path}", get(asset))
}

/// The names of the embedded files (relative to [`ASSET_PREFIX`]).
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        let mut r = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response();
        security_headers(r.headers_mut(), request);
        return r;
    };
    let etag = format!("\"{:016x}\"", a.etag);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: the assets change with the node binary, and a 304 is cheap.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h, request);
    r
}

fn security_headers(h: &mut HeaderMap, request: &HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&csp(request_host(request))) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// The request's `Host`, when it is a plain `host[:port]` (anything else is left out of the
/// policy rather than echoed into a header).
fn request_host(request: &HeaderMap) -> Option<&str> {
    let host = request.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then_some(host)
}

/// The Content-Security-Policy for a page served to `host`.
pub fn csp(host: Option<&str>) -> String {
    let connect = match host {
        Some(h) => format!("'self' ws://{h} wss://{h}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src {connect}; manifest-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'; object-src 'none'; \
         require-trusted-types-for 'script'; trusted-types 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn index_is_html_with_a_strict_policy() {
        let r = get("/", &[("host", "127.0.0.1:8545")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        let csp = header(&r, "content-security-policy");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:8545 wss://127.0.0.1:8545;"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type() {
        for a in ASSETS {
            let r = get(&format!("{ASSET_PREFIX}{}", a.path), &[]).await;
            assert_eq!(r.status(), StatusCode::OK, "{}", a.path);
            assert_eq!(header(&r, "content-type"), a.content_type, "{}", a.path);
            let expected = match a.path.rsplit('.').next() {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("html") => "text/html",
                Some("svg") => "image/svg+xml",
                other => panic!("unexpected asset type {other:?}"),
            };
            assert!(a.content_type.starts_with(expected), "{}", a.path);
        }
    }

    #[tokio::test]
    async fn unknown_and_hostile_paths_are_not_found() {
        for p in [
            "/explorer/nope.js",
            "/explorer/../Cargo.toml",
            "/explorer/%2e%2e/src/lib.rs",
            "/explorer/js/",
            "/explorer/js/../../Cargo.toml",
        ] {
            let r = get(p, &[]).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
            assert!(r.headers().contains_key("content-security-policy"));
        }
    }

    #[tokio::test]
    async fn etag_revalidation() {
        let r = get("/explorer/style.css", &[]).await;
        let etag = header(&r, "etag").to_string();
        let r = get("/explorer/style.css", &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = get("/explorer/style.css", &[("if-none-match", "\"0\"")]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn hostile_host_headers_stay_out_of_the_policy() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("evil.com; script-src *"),
        );
        assert_eq!(request_host(&h), None);
        assert!(!csp(request_host(&h)).contains("evil"));
        h.insert(header::HOST, HeaderValue::from_static("[::1]:8545"));
        assert_eq!(request_host(&h), Some("[::1]:8545"));
    }

    #[test]
    fn html_references_only_embedded_assets() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        for part in html.split(ASSET_PREFIX).skip(1) {
            let path: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(asset_paths().any(|p| p == path), "missing asset {path}");
        }
        assert!(!html.contains("<script>"), "no inline scripts");
        assert!(!html.contains("style=\""), "no inline styles");
    }

    #[test]
    fn every_module_import_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for part in text.split(" from \"").skip(1) {
                let Some((spec, _)) = part.split_once('"') else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    asset_paths().any(|p| p == resolved),
                    "{} imports {spec} ({resolved}), not embedded",
                    a.path
                );
            }
        }
    }
}
