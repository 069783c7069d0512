//! The browser pages Switchyard serves itself: GraphiQL at `/` and the operations dashboard at
//! `/dashboard`, with every file they load compiled into the binary, so both work on a closed
//! network.
//!
//! - Files are served at `/assets/<stem>.<hash>.<ext>`, the hash being the first 12 hex digits
//!   of the content's SHA-256: a URL never changes meaning, so browsers may keep it a year
//!   (`immutable`); a new build with changed files has new URLs.
//! - The pages are templates naming the files as `{{name}}`; each placeholder becomes the
//!   file's hashed URL once, at first use. Pages are never cached (`no-cache`), so a browser
//!   always learns the current URLs.
//! - Every page carries a Content-Security-Policy that allows only this origin (scripts,
//!   styles, fonts inlined as `data:`, and `connect-src` for `/graphql` over HTTP and
//!   WebSocket): a page cannot load, or leak to, anything else.
//! - Third-party files live in `assets/vendor` (pinned versions; `assets/vendor/update.sh`
//!   refreshes them from npm, checking each package's integrity hash).

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// One file: its name in the templates, its content type and its bytes.
struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! file {
    ($name:literal, $path:literal, $content_type:expr) => {
        File { name: $name, content_type: $content_type, bytes: include_bytes!(concat!("../../assets/", $path)) }
    };
}

const FILES: &[File] = &[
    file!("react.js", "vendor/react.production.min.js", JS),
    file!("react-dom.js", "vendor/react-dom.production.min.js", JS),
    file!("graphiql.js", "vendor/graphiql.min.js", JS),
    file!("graphiql.css", "vendor/graphiql.min.css", CSS),
    file!("graphql-ws.js", "vendor/graphql-ws.min.js", JS),
    file!("graphiql-start.js", "graphiql-start.js", JS),
    file!("dashboard.js", "dashboard.js", JS),
    file!("dashboard.css", "dashboard.css", CSS),
    file!("favicon.svg", "favicon.svg", "image/svg+xml"),
];

const GRAPHIQL_PAGE: &str = include_str!("../../assets/graphiql.html");
const DASHBOARD_PAGE: &str = include_str!("../../assets/dashboard.html");

/// What a page may load and connect to: this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Assets {
    /// Hashed URL path → file.
    files: HashMap<String, &'static File>,
    graphiql: String,
    dashboard: String,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut files = HashMap::new();
    let mut urls = Vec::new();
    for file in FILES {
        let hash = hex::encode(&Sha256::digest(file.bytes)[..6]);
        let (stem, extension) = file.name.rsplit_once('.').unwrap_or((file.name, ""));
        let path = format!("/assets/{stem}.{hash}.{extension}");
        urls.push((format!("{{{{{}}}}}", file.name), path.clone()));
        files.insert(path, file);
    }
    let fill = |template: &str| urls.iter().fold(template.to_owned(), |page, (name, url)| page.replace(name, url));
    Assets { files, graphiql: fill(GRAPHIQL_PAGE), dashboard: fill(DASHBOARD_PAGE) }
});

/// `GET /assets/{file}`: a file by its hashed name, cached for a year; 404 for any other.
pub async fn file(path: web::Path<String>) -> HttpResponse {
    match ASSETS.files.get(&format!("/assets/{}", path.into_inner())) {
        Some(file) => HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(file.bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

fn page(html: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(html.to_owned())
}

/// `GET /`: GraphiQL, when `SWITCHYARD_GRAPHIQL` is on.
pub async fn graphiql(state: web::Data<AppState>) -> HttpResponse {
    if !state.config.graphiql {
        return HttpResponse::NotFound().finish();
    }
    page(&ASSETS.graphiql)
}

/// `GET /dashboard`: the operations dashboard, when `SWITCHYARD_DASHBOARD` is on. The page
/// itself holds no data: it signs in and reads everything through `/graphql`, as the caller.
pub async fn dashboard(state: web::Data<AppState>) -> HttpResponse {
    if !state.config.dashboard {
        return HttpResponse::NotFound().finish();
    }
    page(&ASSETS.dashboard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_in_the_pages_names_a_file() {
        for page in [&ASSETS.graphiql, &ASSETS.dashboard] {
            assert!(!page.contains("{{"), "an unknown placeholder is left: {page}");
        }
        for file in FILES {
            let named = format!("{{{{{}}}}}", file.name);
            assert!(
                GRAPHIQL_PAGE.contains(&named) || DASHBOARD_PAGE.contains(&named),
                "{} is compiled in but no page loads it",
                file.name
            );
        }
    }

    #[test]
    fn no_page_loads_anything_from_another_origin() {
        for page in [GRAPHIQL_PAGE, DASHBOARD_PAGE] {
            for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
                assert!(!page.contains(attribute), "{attribute} in {page}");
            }
        }
    }
}
