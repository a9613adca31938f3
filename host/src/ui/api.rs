//! The JSON API the pages use (documented in the README). `GET /api/runs/{id}` is the object
//! `sandmap show RUN --json` prints, and a step's is `show RUN --step KEY --json`'s, with its
//! times.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;

use super::db::ViewError;
use super::server::Shared;
use crate::store::{RunFilter, RunStore, StepOrder, StepPage, StepQuery};

/// `?job=&status=&before=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    pub job: Option<String>,
    pub status: Option<String>,
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

/// Runs listed per page at most.
pub(crate) const RUNS_PAGE: usize = 50;

impl RunsQuery {
    pub fn filter(&self) -> Result<RunFilter, ViewError> {
        let status = self.status.clone().filter(|s| !s.is_empty());
        if let Some(status) = &status
            && crate::store::RecordedStatus::parse(status).is_none()
        {
            return Err(ViewError::BadRequest(format!("no run status {status:?}")));
        }
        Ok(RunFilter {
            job: self.job.clone().filter(|j| !j.is_empty()),
            status,
            before: self.before,
            limit: self.limit.unwrap_or(RUNS_PAGE).clamp(1, 500),
        })
    }
}

/// `GET /api/runs`.
pub(crate) async fn runs(State(state): State<Shared>, Query(q): Query<RunsQuery>) -> Result<Json<Value>, ViewError> {
    let filter = q.filter()?;
    let runs = state.db.with(move |store| Ok(store.runs(&filter)?)).await?;
    Ok(Json(serde_json::to_value(runs).unwrap_or(Value::Null)))
}

/// `GET /api/runs/{id}`: as `sandmap show RUN --json`.
pub(crate) async fn run(State(state): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ViewError> {
    let report = state.db.with(move |store| Ok(store.report(&store.resolve(&id)?)?)).await?;
    Ok(Json(crate::cli::render::json_report(&report)))
}

/// `?op=&status=&prefix=&order=&after=&limit=`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct StepsQuery {
    pub op: Option<String>,
    pub status: Option<String>,
    pub prefix: Option<String>,
    pub order: Option<String>,
    pub after: Option<usize>,
    pub limit: Option<usize>,
}

/// Rows per page of clones.
pub(crate) const CLONE_PAGE: usize = 100;

/// The step statuses a page of steps can be filtered by.
pub(crate) const STEP_STATUSES: [&str; 6] = ["success", "failure", "running", "skipped", "cancelled", "abandoned"];

impl StepsQuery {
    /// The store query, for run `op` when none is asked for.
    /// The store query; `default_op` names the op when none is asked for.
    pub fn query(&self, default_op: impl FnOnce() -> Result<String, ViewError>) -> Result<StepQuery, ViewError> {
        let op = match self.op.clone().filter(|o| !o.is_empty()) {
            Some(op) => op,
            None => default_op()?,
        };
        let status = self.status.clone().filter(|s| !s.is_empty());
        if let Some(status) = &status
            && !STEP_STATUSES.contains(&status.as_str())
        {
            return Err(ViewError::BadRequest(format!("no step status {status:?}")));
        }
        let order = match self.order.as_deref().filter(|o| !o.is_empty()) {
            None => StepOrder::Emission,
            Some(o) => StepOrder::parse(o).ok_or_else(|| ViewError::BadRequest(format!("no order {o:?}")))?,
        };
        Ok(StepQuery {
            op,
            status,
            prefix: self.prefix.clone().filter(|p| !p.is_empty()),
            order,
            // Past the largest offset SQLite takes, a page is simply empty.
            offset: self.after.unwrap_or(0).min(i64::MAX as usize / 2),
            limit: self.limit.unwrap_or(CLONE_PAGE).clamp(1, crate::store::MAX_STEP_PAGE),
        })
    }
}

/// The op a run page shows clones of when none is asked for: the first mapped op, else the
/// first op.
pub(crate) fn default_op(store: &RunStore, id: &str) -> Result<String, ViewError> {
    Ok(first_op(&store.run_head(id)?))
}

/// The first mapped op of the run `head` heads, else its first op.
pub(crate) fn first_op(head: &crate::store::RunHead) -> String {
    let first = head.job_model.as_ref().and_then(|m| {
        let (nodes, _) = super::graph::layout(m);
        nodes.iter().find(|n| n.depth > 0).or(nodes.first()).map(|n| n.op.clone())
    });
    first.or_else(|| head.components.first().map(|c| c.op.clone())).unwrap_or_default()
}

/// `GET /api/runs/{id}/steps`.
pub(crate) async fn steps(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<StepsQuery>,
) -> Result<Json<StepPage>, ViewError> {
    let page = state
        .db
        .with(move |store| {
            let id = store.resolve(&id)?;
            let query = q.query(|| default_op(store, &id))?;
            Ok(store.step_page(&id, &query)?)
        })
        .await?;
    Ok(Json(page))
}

/// `GET /api/runs/{id}/steps/{key}`: `show --step --json`, with when each attempt started and
/// when the step ended.
pub(crate) async fn step(
    State(state): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ViewError> {
    let value = state.db.with(move |store| step_json(store, &id, &key)).await?;
    Ok(Json(value))
}

/// A step's detail as JSON.
pub(crate) fn step_json(store: &RunStore, id: &str, key: &str) -> Result<Value, ViewError> {
    let id = store.resolve(id)?;
    let loaded = super::pages::load_step(store, &id, key)?;
    let detail = loaded.detail()?;
    let mut value = detail.to_json();
    if let Some(object) = value.as_object_mut() {
        object.insert("started_at_ms".into(), serde_json::json!(loaded.times.0));
        object.insert("ended_at_ms".into(), serde_json::json!(loaded.times.1));
        let starts: Vec<Value> = loaded
            .attempt_starts
            .iter()
            .map(|(n, at)| serde_json::json!({"attempt": n, "started_at_ms": at}))
            .collect();
        object.insert("attempt_starts".into(), Value::Array(starts));
    }
    Ok(value)
}
