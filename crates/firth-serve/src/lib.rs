//! `firth serve`: one local page and a JSON API over the models and vector files given at
//! start, to look inside them (nearest words, n-gram scores, what an LM predicts and how sure
//! it is, tags, class probabilities and attention, translations, training curves).
//!
//! The server is axum on tokio. Model work never runs on the async threads: it goes to
//! tokio's blocking pool (or, for nearest-neighbour queries, to the vector file's batching
//! worker, `nearest`), bounded in time; request bodies and inputs are bounded in size. Every
//! error is JSON `{"error": "..."}` with a 4xx status (503 only when the server is out of
//! time), and the server keeps serving after it.

pub mod api;
pub mod nearest;
pub mod registry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use registry::Registry;

/// Bytes a request body may have.
pub const MAX_BODY: usize = 64 * 1024;
/// Characters a text input may have.
pub const MAX_CHARS: usize = 2000;
/// Tokens (words) a text input may have.
pub const MAX_TOKENS: usize = 200;
/// Time one request's model work may take before the client is told so.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Where and what to serve.
pub struct Options {
    pub paths: Vec<PathBuf>,
    pub addr: SocketAddr,
}

/// The page and its assets, compiled into the binary: the server needs nothing on disk but
/// the models, and the page nothing from the network.
const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The whole application over a loaded registry (what tests drive without a socket too).
pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/models", get(api::models))
        .route("/api/vectors/neighbors", post(api::neighbors))
        .route("/api/vectors/analogy", post(api::analogy))
        .route("/api/vectors/map", post(api::map))
        .route("/api/ngram/score", post(api::ngram_score))
        .route("/api/lm/generate", post(api::lm_generate))
        .route("/api/tagger/tag", post(api::tag))
        .route("/api/classifier/classify", post(api::classify))
        .route("/api/translator/translate", post(api::translate))
        .route("/api/insight/run", post(api::insight))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(reg)
}

fn asset(mime: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Loads everything, binds, prints the address and serves until Ctrl-C.
pub fn serve(o: Options) -> Result<()> {
    let reg = Arc::new(Registry::load(&o.paths)?);
    for l in &reg.listed {
        eprintln!("  {:<24} {:<10} {}", l.id, l.kind.name(), l.about);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(o.addr)
            .await
            .with_context(|| format!("cannot listen on {}; choose another --port", o.addr))?;
        let addr = listener.local_addr()?;
        // The one line scripts (and the browser tests) wait for.
        println!("serving on http://{addr}/");
        use std::io::Write;
        std::io::stdout().flush().ok();
        axum::serve(listener, router(reg))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server stopped")
    })
}
