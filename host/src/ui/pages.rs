//! The HTML pages, rendered on the server with maud (which escapes every value), plus the two
//! assets. The pages work without script; `app.js` makes them live (counters and classes from
//! server-sent events, clone table pages fetched in place, logs loaded on demand, the action
//! buttons).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::api::{RunsQuery, StepsQuery};
use super::db::ViewError;
use super::render::{duration, metadata, query, segment, strip_terminal, time};
use super::server::Shared;
use crate::executor::short_run_id as short;
use crate::executor::{EndedStep, StepReport};
use crate::job::JobModel;
use crate::runtime::StepLog;
use crate::store::{OpSpan, RunHead, RunStore, StepDetail, StepPage, StepQuery, StepRow};

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// A value shown on a page is cut after this many bytes of its JSON (a collect of 100,000
/// values would otherwise be the page); the API has it whole.
const SHOWN_VALUE_BYTES: usize = 16 * 1024;

/// `GET /assets/app.js`.
pub(crate) async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], SCRIPT)
        .into_response()
}

/// `GET /assets/app.css`.
pub(crate) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE).into_response()
}

fn page(title: &str, token: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="sandmap-token" content=(token);
                title { (title) " · sandmap" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top { a.brand href="/" { "sandmap" } span.sub { "runs" } }
                main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("badge status-{status}")) data-status=(status) { (super::graph::status_word(status)) } }
}

fn run_link(id: &str) -> Markup {
    html! { a.run-link href=(format!("/runs/{}", segment(id))) title=(id) { code { (short(id)) } } }
}

/// `GET /` (`?fragment=1`: the table alone, for the script to refresh).
pub(crate) async fn runs(State(state): State<Shared>, Query(q): Query<RunsListQuery>) -> Result<Response, ViewError> {
    let filter = q.runs.filter()?;
    let limit = filter.limit;
    let (runs, jobs, children) = state
        .db
        .with(move |store| {
            let runs = store.runs(&filter)?;
            let children: Vec<Vec<String>> =
                runs.iter().map(|r| store.children(&r.run_id)).collect::<Result<_, _>>()?;
            Ok((runs, store.job_names()?, children))
        })
        .await?;
    let job = q.runs.job.clone().unwrap_or_default();
    let status = q.runs.status.clone().unwrap_or_default();
    let older = runs.last().filter(|_| runs.len() >= limit).map(|r| r.recorded_at_ms.to_string());
    let table = html! {
        table #runs-table.runs {
            thead { tr { th { "run" } th { "job" } th { "status" } th { "started" } th { "duration" } th { "steps" } th { "failed" } th { "lineage" } } }
            tbody {
                @for (run, children) in runs.iter().zip(&children) {
                    tr.run-row data-run=(run.run_id) {
                        td { (run_link(&run.run_id)) }
                        td { (run.job) }
                        td { (status_badge(&run.status)) }
                        td { (time(run.recorded_at_ms)) }
                        td { (if run.status == "running" { "-".to_owned() } else { duration(run.duration_ms) }) }
                        td.num { (run.steps) }
                        td.num { (run.failed) }
                        td.lineage {
                            @if let Some(parent) = &run.parent_run_id { span.parent { "re-executes " (run_link(parent)) } }
                            @for child in children { span.child { "re-executed by " (run_link(child)) } }
                        }
                    }
                }
                @if runs.is_empty() { tr { td colspan="8" { "No runs match." } } }
            }
        }
    };
    if q.fragment.is_some() {
        return Ok(Html(table.into_string()).into_response());
    }
    let statuses = crate::store::RecordedStatus::ALL.map(|s| s.as_str());
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/" {
            label { "job " select name="job" {
                option value="" { "any" }
                @for name in &jobs { option value=(name) selected[*name == job] { (name) } }
            } }
            label { "status " select name="status" {
                option value="" { "any" }
                @for s in statuses { option value=(s) selected[s == status] { (s) } }
            } }
            button type="submit" { "Filter" }
        }
        div #runs data-refresh=(format!("/{}", query(&[("job", &job), ("status", &status), ("fragment", "1")]))) { (table) }
        @if let Some(before) = older {
            p { a.older href=(format!("/{}", query(&[("job", &job), ("status", &status), ("before", &before)]))) { "Older runs →" } }
        }
    };
    Ok(page("Runs", &state.guard.token, body).into_response())
}

/// The runs page's query: the API's, and whether only the table is wanted.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsListQuery {
    #[serde(flatten)]
    runs: RunsQuery,
    fragment: Option<String>,
}

/// Everything the run page shows, read in one go.
struct RunView {
    head: RunHead,
    counts: BTreeMap<String, BTreeMap<String, i64>>,
    seq: i64,
    query: StepQuery,
    page: StepPage,
    spans: Vec<OpSpan>,
}

/// `GET /runs/{id}`.
pub(crate) async fn run(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<StepsQuery>,
) -> Result<Response, ViewError> {
    let view = state
        .db
        .with(move |store| {
            let id = store.resolve(&id)?;
            let head = store.run_head(&id)?;
            let counts = store.op_counts(&id)?;
            let query = q.query(|| Ok(super::api::first_op(&head)))?;
            let page = store.step_page(&id, &query)?;
            let spans = store.timeline(&id)?;
            Ok(RunView { head, counts: counts.ops, seq: counts.seq, query, page, spans })
        })
        .await?;
    let head = &view.head;
    let live = head.status == "running";
    let id = &head.run_id;
    let can_resume = matches!(head.status.as_str(), "interrupted" | "cancelled");
    let can_reexecute = !matches!(head.status.as_str(), "running" | "interrupted");
    let body = html! {
        section #run data-run=(id) data-seq=(view.seq) data-op=(view.query.op) {
            h1 { "Run " code { (short(id)) } " of job " (head.job) }
            p.run-meta {
                span #run-status { (status_badge(&head.status)) }
                " started " (time(head.recorded_at_ms))
                span #run-duration { @if !live { " · took " (duration(head.duration_ms)) } }
                @if let Some(parent) = &head.parent_run_id { " · re-executes " (run_link(parent)) }
                @for child in &head.children { " · re-executed by " (run_link(child)) }
            }
            p #run-error.error hidden[head.error.is_none()] { (head.error.as_deref().map(strip_terminal).unwrap_or_default()) }
            div.actions {
                @if can_reexecute {
                    button type="button" data-action="reexecute" data-from-failure="1" disabled[head.status == "success"] { "Re-execute from failure" }
                    button type="button" data-action="reexecute" data-op=(view.query.op) { "Re-execute selected" }
                }
                @if can_resume { button type="button" data-action="resume" { "Resume" } }
                span #action-status role="status" {}
            }
        }
        section.graph {
            h2 { "Graph" }
            @match &head.job_model {
                Some(model) => (super::graph::svg(model, &view.counts, live, |n| if n.depth > 0 {
                    format!("/runs/{}{}#clones", segment(id), query(&[("op", &n.op)]))
                } else {
                    format!("/runs/{}/steps/{}", segment(id), segment(&n.op))
                })),
                None => p { "This run was recorded before sandmap kept its job's graph." },
            }
        }
        section #clones {
            h2 { "Steps of " code { (view.query.op) } }
            (clone_filters(id, &view.query, head.job_model.as_ref()))
            (clone_table_markup(id, &view.query, &view.page))
        }
        section #timeline {
            h2 { "Timeline" }
            (timeline_markup(id, &view.spans))
        }
        section #record {
            h2 { "Run record" }
            h3 { "Outputs" }
            (value_block(&serde_json::Value::Object(head.outputs.clone())))
            @if !head.overrides.is_empty() {
                h3 { "Overrides (--set)" }
                ul { @for o in &head.overrides { li { code { (strip_terminal(o)) } } } }
            }
            @if let Some(selection) = &head.selection { h3 { "Selection" } pre { (strip_terminal(selection)) } }
            h3 { "Ops" }
            table.ops {
                thead { tr { th { "op" } th { "component sha256" } th { "effective config" } } }
                tbody { @for c in &head.components {
                    tr {
                        td { code { (c.op) } }
                        td { code.digest { (c.digest) } }
                        td { @match c.config.as_deref().and_then(|t| serde_json::from_str(t).ok()) {
                            Some(config) => (value_block(&config)),
                            None => "-",
                        } }
                    }
                } }
            }
            p.job-file { "Job file: " code { (strip_terminal(&head.job_file)) } }
        }
    };
    Ok(page(&format!("Run {}", short(id)), &state.guard.token, body).into_response())
}

fn clone_filters(id: &str, q: &StepQuery, model: Option<&JobModel>) -> Markup {
    let ops: Vec<String> = model.map(|m| m.ops.keys().cloned().collect()).unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    let prefix = q.prefix.clone().unwrap_or_default();
    let failed_first = format!(
        "/runs/{}{}#clones",
        segment(id),
        query(&[("op", &q.op), ("order", "failed_first"), ("prefix", &prefix)])
    );
    html! {
        form #clone-filters.filters method="get" action=(format!("/runs/{}#clones", segment(id))) {
            label { "op " select name="op" { @for op in &ops { option value=(op) selected[*op == q.op] { (op) } } } }
            label { "status " select name="status" {
                option value="" { "any" }
                @for s in super::api::STEP_STATUSES {
                    option value=(s) selected[s == status] { (s) }
                }
            } }
            label { "key prefix " input type="search" name="prefix" value=(prefix) maxlength="200"; }
            label { "order " select name="order" {
                @for o in crate::store::StepOrder::ALL { option value=(o.as_str()) selected[o == q.order] { (o.as_str().replace('_', " ")) } }
            } }
            button type="submit" { "Show" }
            " "
            a #failed-first.button href=(failed_first) { "Failed first" }
        }
    }
}

fn clone_table_markup(id: &str, q: &StepQuery, page: &StepPage) -> Markup {
    let shown_to = q.offset.saturating_add(page.rows.len());
    let here = |after: usize| format!("/runs/{}{}#clones", segment(id), query_of(q, after));
    let fragment = format!("/runs/{}/clones{}", segment(id), query_of(q, q.offset));
    html! {
        div #clone-table data-src=(fragment) {
            p.page-info { "Showing " (if page.rows.is_empty() { 0 } else { q.offset.saturating_add(1) }) "–" (shown_to) " of " span #clone-total { (page.total) } }
            table.clones {
                thead { tr { th { "pick" } th { "step" } th { "status" } th { "attempts" } th { "duration" } th { "started" } th { "worker" } th { "error" } } }
                tbody {
                    @for row in &page.rows { (clone_row(id, row)) }
                    @if page.rows.is_empty() { tr { td colspan="8" { "No steps match." } } }
                }
            }
            p.pager {
                @if q.offset > 0 { a.prev href=(here(q.offset.saturating_sub(q.limit))) { "← Previous" } " " }
                @if let Some(next) = page.next { a.next href=(here(next)) { "Next →" } }
            }
        }
    }
}

fn clone_row(id: &str, row: &StepRow) -> Markup {
    let error =
        row.error.as_deref().map(|e| strip_terminal(e.lines().next().unwrap_or("")).into_owned()).unwrap_or_default();
    html! {
        tr.clone-row data-key=(row.key) data-status=(row.status) {
            td { input.pick type="checkbox" value=(row.key) aria-label=(format!("pick {}", row.key)); }
            td { a.step-link href=(format!("/runs/{}/steps/{}", segment(id), segment(&row.key))) { code { (row.key) } } }
            td.status { (status_badge(&row.status)) @if row.reused { " (reused)" } }
            td.num { (row.attempts) }
            td.num { (if row.status == "running" { "-".into() } else { duration(row.duration_ms) }) }
            td { (row.started_at_ms.map(time).unwrap_or_else(|| "-".into())) }
            td { (row.worker.as_deref().map(strip_terminal).unwrap_or_default()) }
            td.error { (error) }
        }
    }
}

/// `GET /runs/{id}/clones`: one page of the clone table, for the script.
pub(crate) async fn clone_table(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<StepsQuery>,
) -> Result<Html<String>, ViewError> {
    let (id, query, page) = state
        .db
        .with(move |store| {
            let id = store.resolve(&id)?;
            let query = q.query(|| super::api::default_op(store, &id))?;
            let page = store.step_page(&id, &query)?;
            Ok((id, query, page))
        })
        .await?;
    Ok(Html(clone_table_markup(&id, &query, &page).into_string()))
}

const BAR_W: f64 = 640.0;

fn timeline_markup(id: &str, spans: &[OpSpan]) -> Markup {
    let start = spans.iter().filter_map(|s| s.first_start_ms).min();
    let end = spans.iter().filter_map(|s| s.last_end_ms).max();
    let (Some(start), Some(end)) = (start, end) else {
        return html! { p { "No step has ended yet." } };
    };
    let total = ((end - start) as f64).max(1.0);
    html! {
        table.timeline {
            thead { tr { th { "op" } th { "steps" } th { "span" } th { "first start → last end" } th { "clone durations" } } }
            tbody { @for span in spans {
                @let (a, b) = (span.first_start_ms.unwrap_or(start), span.last_end_ms.unwrap_or(end));
                @let x = (a - start) as f64 / total * BAR_W;
                @let w = ((b - a) as f64 / total * BAR_W).max(2.0);
                tr {
                    td { a href=(format!("/runs/{}/timeline{}", segment(id), query(&[("op", &span.op)]))) { code { (span.op) } } }
                    td.num { (span.steps) }
                    td { (duration((b - a) as f64)) }
                    td { svg.bar width=(BAR_W) height="14" viewBox=(format!("0 0 {BAR_W} 14")) role="img"
                            aria-label=(format!("{} from {} to {}", span.op, time(a), time(b))) {
                        rect.track x="0" y="3" width=(BAR_W) height="8" {}
                        rect.span x=(x) y="0" width=(w) height="14" {}
                    } }
                    td { (histogram(span)) }
                }
            } }
        }
    }
}

fn histogram(span: &OpSpan) -> Markup {
    let max = span.histogram.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bin_w = 8.0;
    let w = bin_w * span.histogram.len() as f64;
    html! {
        svg.histogram width=(w) height="24" viewBox=(format!("0 0 {w} 24")) role="img"
            aria-label=(format!("{} steps from {} to {}", span.steps, duration(span.min_ms), duration(span.max_ms))) {
            @for (i, n) in span.histogram.iter().enumerate() {
                @let h = *n as f64 / max * 22.0;
                rect x=(i as f64 * bin_w) y=(24.0 - h) width=(bin_w - 1.0) height=(h) {
                    title { (n) " steps" }
                }
            }
        }
        span.range { (duration(span.min_ms)) " – " (duration(span.max_ms)) }
    }
}

/// `GET /runs/{id}/timeline?op=…&after=…`: one page of an op's clones as bars.
pub(crate) async fn timeline(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<StepsQuery>,
) -> Result<Response, ViewError> {
    let (id, query, clones, spans) = state
        .db
        .with(move |store| {
            let id = store.resolve(&id)?;
            let query = q.query(|| super::api::default_op(store, &id))?;
            let page = store.step_page(&id, &query)?;
            Ok((id.clone(), query, page, store.timeline(&id)?))
        })
        .await?;
    let span = spans.iter().find(|s| s.op == query.op);
    let (start, end) = span.map_or((0, 1), |s| (s.first_start_ms.unwrap_or(0), s.last_end_ms.unwrap_or(1)));
    let total = ((end - start) as f64).max(1.0);
    let next = clones.next.map(|n| format!("/runs/{}/timeline{}", segment(&id), query_of(&query, n)));
    let body = html! {
        p { a href=(format!("/runs/{}#timeline", segment(&id))) { "← Run " code { (short(&id)) } } }
        h1 { "Timeline of " code { (query.op) } }
        table.timeline {
            tbody { @for row in &clones.rows {
                @let a = row.started_at_ms.unwrap_or(start);
                @let b = row.ended_at_ms.unwrap_or(a);
                tr {
                    td { a href=(format!("/runs/{}/steps/{}", segment(&id), segment(&row.key))) { code { (row.key) } } }
                    td { (status_badge(&row.status)) }
                    td { (duration(row.duration_ms)) }
                    td { svg.bar width=(BAR_W) height="12" viewBox=(format!("0 0 {BAR_W} 12")) {
                        rect.track x="0" y="3" width=(BAR_W) height="6" {}
                        rect class=(format!("span status-{}", row.status)) x=((a - start) as f64 / total * BAR_W) y="0"
                            width=(((b - a) as f64 / total * BAR_W).max(1.0)) height="12" {}
                    } }
                }
            } }
        }
        @if let Some(next) = next { p { a.next href=(next) { "Next →" } } }
    };
    Ok(page(&format!("Timeline of {}", query.op), &state.guard.token, body).into_response())
}

/// `q`'s query string, from row `after` on.
fn query_of(q: &StepQuery, after: usize) -> String {
    query(&[
        ("op", &q.op),
        ("status", q.status.as_deref().unwrap_or("")),
        ("prefix", q.prefix.as_deref().unwrap_or("")),
        ("order", q.order.as_str()),
        ("after", &after.to_string()),
    ])
}

/// A step, with what its detail is read from.
pub(crate) struct LoadedStep {
    steps: Vec<EndedStep>,
    model: Option<JobModel>,
    key: String,
    run_id: String,
    /// The run it was taken from, if it was reused.
    pub parent: Option<String>,
    /// When it started and ended (Unix ms).
    pub times: (Option<i64>, Option<i64>),
    /// When each attempt started.
    pub attempt_starts: Vec<(u32, Option<i64>)>,
}

impl LoadedStep {
    /// Its detail.
    pub fn detail(&self) -> Result<StepDetail<'_>, ViewError> {
        crate::store::step_detail(&self.steps, self.model.as_ref(), &self.key)
            .ok_or_else(|| no_step(&self.run_id, &self.key))
    }
}

fn no_step(run_id: &str, key: &str) -> ViewError {
    ViewError::NotFound(format!("run {} has no step {}", short(run_id), strip_terminal(key)))
}

/// Step `key` of run `id` and the steps its inputs come from: for a collect, every step of the
/// collected op (its value is their list); for any other input, only the upstream steps whose
/// keys are a prefix of this one's (never a whole fan-out of 100,000 clones).
pub(crate) fn load_step(store: &RunStore, id: &str, key: &str) -> Result<LoadedStep, ViewError> {
    let provenance = store.provenance(id)?;
    let op = key.split('[').next().unwrap_or(key);
    let keys: Vec<String> = crate::keys::key_path(key, op).unwrap_or_default().into_iter().map(str::to_owned).collect();
    let mut whole_ops = std::collections::BTreeSet::new();
    let mut upstream_keys = std::collections::BTreeSet::new();
    for input in provenance.job_model.as_ref().and_then(|m| m.wiring.get(op)).map(Vec::as_slice).unwrap_or_default() {
        match input.kind {
            crate::job::WireKind::Collect | crate::job::WireKind::CollectRecords => {
                whole_ops.insert(input.op.clone());
            }
            _ => {
                for depth in 0..=keys.len() {
                    upstream_keys.insert(crate::keys::step_key(&input.op, &keys[..depth]));
                }
            }
        }
    }
    let whole_ops: Vec<String> = whole_ops.into_iter().collect();
    let mut steps = store.steps_around(id, key, &whole_ops)?;
    for upstream in upstream_keys {
        if upstream != key && !steps.iter().any(|s| s.report.key == upstream) {
            steps.extend(store.steps_around(id, &upstream, &[])?);
        }
    }
    let times = store.step_times(id, key)?;
    let mut attempt_starts = store.attempt_starts(id, key)?;
    // A first attempt that ended in the batch it started in has no event of its own.
    if !attempt_starts.iter().any(|(n, _)| *n == 1)
        && let Some(started) = times.0
    {
        attempt_starts.insert(0, (1, Some(started)));
    }
    Ok(LoadedStep {
        times,
        attempt_starts,
        steps,
        model: provenance.job_model,
        key: key.to_owned(),
        run_id: id.to_owned(),
        parent: provenance.parent_run_id,
    })
}

/// `GET /runs/{id}/steps/{key}`.
pub(crate) async fn step(
    State(state): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ViewError> {
    let (id, loaded) = state
        .db
        .with(move |store| {
            let id = store.resolve(&id)?;
            let loaded = load_step(store, &id, &key)?;
            Ok((id, loaded))
        })
        .await?;
    let detail = loaded.detail()?;
    let step = detail.step;
    let logs_src = |attempt: u32| format!("/runs/{}/steps/{}/logs?attempt={attempt}", segment(&id), segment(&step.key));
    let start_of = |n: u32| loaded.attempt_starts.iter().find(|(a, _)| *a == n).and_then(|(_, at)| *at);
    let body = html! {
        p { a href=(format!("/runs/{}{}#clones", segment(&id), query(&[("op", &step.op)]))) { "← Run " code { (short(&id)) } } }
        h1 { "Step " code #step-key { (step.key) } }
        @if let Some(error) = &step.error {
            pre #step-error.error { (strip_terminal(error)) }
        }
        dl.facts {
            dt { "status" } dd #step-status { (status_badge(step.status.as_str())) }
            dt { "attempts" } dd { (step.attempts) }
            dt { "started" } dd { (loaded.times.0.map(time).unwrap_or_else(|| "-".into())) }
            dt { "ended" } dd { (loaded.times.1.map(time).unwrap_or_else(|| "-".into())) }
            dt { "duration" } dd { (duration(step.duration_ms)) }
            dt { "worker" } dd { (step.worker.as_deref().map(strip_terminal).unwrap_or_default()) }
            @if detail.reused {
                dt { "taken from" } dd { @match &loaded.parent { Some(p) => { "run " (run_link(p)) }, None => "the parent run" } }
            }
        }
        h2 { "Logs" }
        @for attempt in &step.previous_attempts {
            details.log data-src=(logs_src(attempt.attempt)) {
                summary { "attempt " (attempt.attempt) " — failed: " (strip_terminal(attempt.error.lines().next().unwrap_or("")))
                    " · " (duration(attempt.duration_ms)) @if let Some(at) = start_of(attempt.attempt) { " · started " (time(at)) } }
                div.log-body { noscript { a href=(logs_src(attempt.attempt)) { "show the log" } } }
            }
        }
        @if step.attempts > 0 {
            details.log open[step.previous_attempts.is_empty()] data-src=(logs_src(step.attempts)) {
                summary { "attempt " (step.attempts) " — " (step.status.as_str()) " · " (duration(step.duration_ms))
                    @if let Some(at) = start_of(step.attempts) { " · started " (time(at)) } }
                div.log-body { noscript { a href=(logs_src(step.attempts)) { "show the log" } } }
            }
        } @else {
            p { "It did not run in this run." }
        }
        @if !detail.inputs.is_empty() {
            h2 { "Inputs" }
            table.values { @for input in &detail.inputs {
                tr {
                    th { code { (input.name) } br; span.source { (input.source) } }
                    td { @match &input.value { Some(v) => (value_block(v)), None => span.none { "nothing" } } }
                }
            } }
        }
        @if !detail.records.is_empty() {
            h2 { "Records" }
            table.values { @for (record, typed) in detail.records.iter().zip(&step.records) {
                tr {
                    th { code { (record.mapping_key) } br; span.source { (record.output) } }
                    td { @if let Some(v) = &record.value { (value_block(v)) } (metadata(&typed.metadata)) }
                }
            } }
        }
        @if !detail.outputs.is_empty() {
            h2 { "Outputs" }
            table.values { @for (name, output) in &detail.outputs {
                tr {
                    th { code { (name) } }
                    td {
                        @if let Some(v) = output.get("value") { (value_block(v)) }
                        @if let Some(entries) = output_metadata(step, name) { (metadata(entries)) }
                    }
                }
            } }
        }
    };
    Ok(page(&format!("Step {}", step.key), &state.guard.token, body).into_response())
}

fn output_metadata<'s>(step: &'s StepReport, name: &str) -> Option<&'s crate::value::Metadata> {
    step.output_metadata.iter().find(|(n, _)| n == name).map(|(_, m)| m)
}

fn value_block(value: &serde_json::Value) -> Markup {
    let text = super::render::pretty(value);
    if text.len() <= SHOWN_VALUE_BYTES {
        return html! { pre.json { (strip_terminal(&text)) } };
    }
    let mut cut = SHOWN_VALUE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    html! {
        pre.json { (strip_terminal(&text[..cut])) }
        p.cut { "… cut: " (text.len() - cut) " more bytes (the API has the whole value)" }
    }
}

/// `?attempt=N`.
#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    attempt: Option<u32>,
}

/// `GET /runs/{id}/steps/{key}/logs?attempt=N`: one attempt's log, as a fragment.
pub(crate) async fn step_logs(
    State(state): State<Shared>,
    Path((id, key)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Html<String>, ViewError> {
    let log =
        state
            .db
            .with(move |store| {
                let id = store.resolve(&id)?;
                let steps = store.steps_around(&id, &key, &[])?;
                let step = steps.into_iter().find(|s| s.report.key == key).ok_or_else(|| no_step(&id, &key))?.report;
                let attempt = q.attempt.unwrap_or(step.attempts);
                if attempt == step.attempts {
                    return Ok(step.log);
                }
                step.previous_attempts.into_iter().find(|a| a.attempt == attempt).map(|a| a.log).ok_or_else(|| {
                    ViewError::NotFound(format!("step {} has no attempt {attempt}", strip_terminal(&key)))
                })
            })
            .await?;
    Ok(Html(log_markup(&log).into_string()))
}

fn log_markup(log: &StepLog) -> Markup {
    html! {
        @if log.entries.is_empty() { p.empty { "Nothing was logged." } }
        ol.log-lines {
            @for entry in &log.entries {
                @let source = entry.source.as_str();
                li class=(format!("log-{source}")) {
                    span.at { (if entry.at_ms == 0 { "-".into() } else { time(i64::try_from(entry.at_ms).unwrap_or(0)) }) }
                    " " span.source { (source) } " "
                    span.text { (strip_terminal(&entry.text)) }
                }
            }
        }
        @if log.truncated_bytes > 0 {
            p.cut { "✂ " (log.truncated_bytes) " bytes cut (the step's log limit)" }
        }
    }
}
