//! The page's buttons: each starts the same CLI command a user would type (`sandmap reexecute`,
//! `sandmap resume`) as a child process of this binary. The viewer never runs a job itself;
//! the child records its run into the store like any other, and the answer names the run once
//! it has started.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::db::ViewError;
use super::render::strip_terminal;
use super::server::Shared;

/// How long a button waits for its run to start.
const START_WITHIN: Duration = Duration::from_secs(60);
/// A selection is at most this many steps, each at most this long.
const MAX_SELECTED: usize = 1000;
const MAX_SELECTION_LEN: usize = 1000;

/// What starts the commands.
pub(crate) struct Launcher {
    store_dir: PathBuf,
    plugin_path: Vec<PathBuf>,
}

impl Launcher {
    /// Children record into `store_dir` and search `plugin_path` for components first.
    pub fn new(store_dir: PathBuf, plugin_path: Vec<PathBuf>) -> Self {
        Self { store_dir, plugin_path }
    }

    /// `sandmap ARGS… --store DIR --plugin-path P…`, its output kept in a file (read if it fails
    /// before its run starts).
    fn spawn(&self, args: &[String]) -> Result<(Child, tempfile::NamedTempFile), ViewError> {
        let exe =
            std::env::current_exe().map_err(|e| ViewError::Internal(format!("cannot find sandmap itself: {e}")))?;
        let output = tempfile::NamedTempFile::new().map_err(|e| ViewError::Internal(format!("cannot start: {e}")))?;
        let (out, err) = match (output.reopen(), output.reopen()) {
            (Ok(out), Ok(err)) => (out, err),
            (Err(e), _) | (_, Err(e)) => return Err(ViewError::Internal(format!("cannot start: {e}"))),
        };
        let mut command = Command::new(exe);
        command.args(args).arg("--store").arg(&self.store_dir);
        for dir in &self.plugin_path {
            command.arg("--plugin-path").arg(dir);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| ViewError::Internal(format!("cannot start sandmap {}: {e}", args.join(" "))))?;
        Ok((child, output))
    }
}

/// `POST /api/runs/{id}/reexecute` body: `{"from_failure": true}` or `{"steps": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReexecuteBody {
    #[serde(default)]
    from_failure: bool,
    #[serde(default)]
    steps: Vec<String>,
}

/// A started run, or why not.
struct Started(Result<String, ViewError>);

impl IntoResponse for Started {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(run_id) => (StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))).into_response(),
            Err(ViewError::BadRequest(why)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": why }))).into_response()
            }
            Err(other) => other.into_response(),
        }
    }
}

/// `POST /api/runs/{id}/reexecute`.
pub(crate) async fn reexecute(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<ReexecuteBody>,
) -> Response {
    let args = match (body.from_failure, body.steps.is_empty()) {
        (true, true) => Ok(vec!["--from-failure".to_owned()]),
        (false, false) if body.steps.len() <= MAX_SELECTED => body
            .steps
            .iter()
            .map(|s| {
                if s.is_empty() || s.len() > MAX_SELECTION_LEN || s.chars().any(char::is_control) {
                    Err(ViewError::BadRequest(format!("not a step selection: {:?}", strip_terminal(s))))
                } else {
                    // `--step=` keeps a selection that starts with `-` a value, never a flag.
                    Ok(format!("--step={s}"))
                }
            })
            .collect(),
        (false, false) => Err(ViewError::BadRequest(format!("at most {MAX_SELECTED} steps at once"))),
        _ => Err(ViewError::BadRequest("say either from_failure or steps".into())),
    };
    let args = match args {
        Ok(args) => args,
        Err(e) => return Started(Err(e)).into_response(),
    };
    let state2 = state.clone();
    let result = state
        .db
        .with(move |store| {
            let run = checked(store.resolve(&id)?)?;
            let before = store.children(&run)?;
            let mut all = vec!["reexecute".to_owned(), run.clone()];
            all.extend(args);
            let (child, output) = state2.actions.spawn(&all)?;
            wait_for(child, output, || Ok(store.children(&run)?.into_iter().find(|c| !before.contains(c))))
        })
        .await;
    Started(result).into_response()
}

/// `POST /api/runs/{id}/resume`.
pub(crate) async fn resume(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let state2 = state.clone();
    let result = state
        .db
        .with(move |store| {
            let run = checked(store.resolve(&id)?)?;
            let status = store.run_state(&run)?.status;
            if !matches!(status.as_str(), "interrupted" | "cancelled") {
                return Err(ViewError::BadRequest(format!(
                    "run {} is {status}: only an interrupted or cancelled run resumes",
                    crate::executor::short_run_id(&run)
                )));
            }
            let (child, output) = state2.actions.spawn(&["resume".to_owned(), run.clone()])?;
            wait_for(child, output, || {
                let now = store.run_state(&run)?.status;
                Ok((store.is_running(&run) || !matches!(now.as_str(), "interrupted" | "cancelled"))
                    .then(|| run.clone()))
            })
        })
        .await;
    Started(result).into_response()
}

/// `id` as a run id the child may take as an argument: a UUID, as every run id is (one from an
/// edited store must not read as an option).
fn checked(id: String) -> Result<String, ViewError> {
    match uuid::Uuid::try_parse(&id) {
        Ok(uuid) if uuid.hyphenated().to_string() == id => Ok(id),
        _ => Err(ViewError::BadRequest(format!("{:?} is not a run id", strip_terminal(&id)))),
    }
}

/// Wait until `started` names the child's run, or the child ends without one (its output says
/// why). The child is reaped on a thread of its own either way.
fn wait_for(
    mut child: Child,
    output: tempfile::NamedTempFile,
    mut started: impl FnMut() -> Result<Option<String>, ViewError>,
) -> Result<String, ViewError> {
    let deadline = Instant::now() + START_WITHIN;
    let result = loop {
        if let Some(run) = started()? {
            break Ok(run);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // It may have started and ended between two looks.
                if let Some(run) = started()? {
                    break Ok(run);
                }
                let said = std::fs::read_to_string(output.path()).unwrap_or_default();
                let said = strip_terminal(said.trim()).into_owned();
                break Err(ViewError::BadRequest(format!("sandmap ended ({status}) before its run started: {said}")));
            }
            Ok(None) => {}
            Err(e) => break Err(ViewError::Internal(format!("cannot watch the child: {e}"))),
        }
        if Instant::now() >= deadline {
            break Err(ViewError::Internal(format!("no run started within {} s", START_WITHIN.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::spawn(move || {
        let _ = child.wait();
        drop(output);
    });
    result
}
