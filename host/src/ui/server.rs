//! Binding, routing and serving: one tokio runtime, one axum router, every route behind the
//! guard.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use thiserror::Error;

use super::db::Db;
use super::guard::Guard;
use super::live::Follower;
use super::{actions, api, pages};

/// How `sandmap ui` serves.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The run store's folder.
    pub store_dir: PathBuf,
    /// Where to listen (loopback unless the user says otherwise).
    pub listen: SocketAddr,
    /// Folders the child `reexecute`/`resume` commands search for components first.
    pub plugin_path: Vec<PathBuf>,
}

/// Why the viewer could not serve.
#[derive(Debug, Error)]
pub enum UiError {
    /// The run store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The address could not be bound or served.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No randomness for the POST token.
    #[error("cannot make the viewer's token: {0}")]
    Token(String),
}

/// Everything a handler needs.
pub(crate) struct AppState {
    pub db: Arc<Db>,
    pub guard: Guard,
    pub follower: Follower,
    pub actions: actions::Launcher,
}

pub(crate) type Shared = Arc<AppState>;

/// Serve the viewer until the process is stopped. `ready` is told the address bound (the
/// port, when 0 was asked for) before the first request is served.
pub fn serve(options: UiOptions, ready: impl FnOnce(SocketAddr)) -> Result<(), UiError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| UiError::Listen { addr: options.listen, source })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| UiError::Listen { addr: options.listen, source })?;
        let addr = listener.local_addr().map_err(|source| UiError::Listen { addr: options.listen, source })?;
        let db = Db::open(&options.store_dir)?;
        let follower = Follower::start(&options.store_dir)?;
        let state = Arc::new(AppState {
            db: Arc::new(db),
            guard: Guard::new(addr)?,
            follower,
            actions: actions::Launcher::new(options.store_dir.clone(), options.plugin_path.clone()),
        });
        ready(addr);
        axum::serve(listener, router(state)).await.map_err(|source| UiError::Listen { addr, source })
    })
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/clones", get(pages::clone_table))
        .route("/runs/{id}/timeline", get(pages::timeline))
        .route("/runs/{id}/steps/{key}", get(pages::step))
        .route("/runs/{id}/steps/{key}/logs", get(pages::step_logs))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/app.css", get(pages::style))
        .route("/api/version", get(super::live::version))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/steps", get(api::steps))
        .route("/api/runs/{id}/steps/{key}", get(api::step))
        .route("/api/runs/{id}/events", get(super::live::events))
        .route("/api/runs/{id}/reexecute", post(actions::reexecute))
        .route("/api/runs/{id}/resume", post(actions::resume))
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::guard::check))
        .with_state(state)
}
