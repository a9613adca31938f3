//! The viewer's connections to the run store: SQLite is blocking, so every query runs on
//! tokio's blocking pool, on a connection taken from a small pool (opening one costs a
//! migration check).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::{RunStore, StoreError};

/// Connections kept for reuse at most.
const POOL: usize = 4;

/// The store, for handlers.
pub(crate) struct Db {
    dir: PathBuf,
    pool: Mutex<Vec<RunStore>>,
}

impl Db {
    /// Open (creating it if need be: the viewer may start before the first run) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let first = RunStore::open(dir)?;
        Ok(Self { dir: dir.to_owned(), pool: Mutex::new(vec![first]) })
    }

    /// Run `f` on a connection, off the async threads.
    pub async fn with<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&RunStore) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let db = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let store = match db.pool.lock().ok().and_then(|mut p| p.pop()) {
                Some(store) => store,
                None => RunStore::open(&db.dir)?,
            };
            let result = f(&store);
            if let Ok(mut pool) = db.pool.lock()
                && pool.len() < POOL
            {
                pool.push(store);
            }
            result
        })
        .await
        .map_err(|e| ViewError::Internal(format!("a store query stopped: {e}")))?
    }
}

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    /// No such run, step or page.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Something on the server failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ViewError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NoSuchRun(_) | StoreError::NotFound => Self::NotFound(error.to_string()),
            StoreError::Ambiguous { .. } => Self::BadRequest(error.to_string()),
            other => Self::Store(other),
        }
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Plain text: an error may quote what a request or the store held, and text cannot run.
        (status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.to_string()).into_response()
    }
}
