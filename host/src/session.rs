//! Running a job end to end, as a library: find and prepare the job (a new run, a re-execution of
//! a recorded run, or a resumed one), record it into the run store as it goes, tell observers of
//! every step, and execute it. `sandmap run`, `reexecute` and `resume` are thin layers over this,
//! and so is anything else that runs jobs (a coordinator of remote workers).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::executor::{
    self, ExecOptions, ParentRun, PreparedJob, Reuse, RunObserver, RunReport, RunStatus, short_run_id,
};
use crate::job::{JobError, JobModel, Plan};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::store::{RecordedStatus, Recorder, RunLock, RunStart, RunStore, StoreError};

/// Where a job comes from: its file, the folders searched for components first, and `--set`
/// overrides (`OP.config.KEY=VALUE`).
#[derive(Debug, Clone, Default)]
pub struct JobSource {
    /// The job file (TOML).
    pub file: PathBuf,
    /// Folders searched for `NAME.wasm` first.
    pub plugin_path: Vec<PathBuf>,
    /// Config overrides.
    pub set: Vec<String>,
}

impl JobSource {
    /// Parse the job file and apply the overrides.
    pub fn load(&self) -> Result<crate::job::Job, JobError> {
        let mut job = crate::job::parse_file(&self.file)?;
        for assignment in &self.set {
            job.set(assignment)?;
        }
        Ok(job)
    }
}

/// What a re-execution runs again (recorded with it, as JSON, so that it resumes as planned).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The failed, abandoned, cancelled and skipped steps, and what is downstream of them.
    FromFailure,
    /// These step selections, in Dagster's syntax (`op[key]`, `op[?]`, `op`, with `+` or `*`
    /// before for upstream levels and after for downstream ones).
    Steps(Vec<String>),
}

impl Selection {
    /// What this selection reuses of `parent`, a run of `plan`.
    pub fn reuse(&self, parent: &ParentRun<'_>, plan: &Plan) -> Result<Reuse, executor::ReuseError> {
        match self {
            Self::FromFailure => Reuse::from_failure(parent, plan),
            Self::Steps(steps) => Reuse::selecting(parent, steps, plan),
        }
    }
}

/// Where a run's steps run.
#[derive(Debug, Clone, Default)]
pub enum Executor {
    /// On this process's threads (the default).
    #[default]
    Local,
    /// On `sandmap worker`s, through a NATS JetStream server.
    Nats(crate::nats::NatsOptions),
}

/// Steps handed to remote workers at once when `--max-concurrent` is not given: enough to keep
/// many machines busy, few enough that what waits on the bus stays small.
const REMOTE_IN_FLIGHT: usize = 256;

/// Why a session could not start.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The job is invalid (its file, a component, the graph, a config, a grant).
    #[error(transparent)]
    Invalid(#[from] JobError),
    /// The request does not fit the recorded run (it is still running, it ended, its job file
    /// changed, a selection names nothing): the message says what to do instead.
    #[error("{0}")]
    Refused(String),
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The WebAssembly runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The executor could not be reached (nothing was run or recorded).
    #[error(transparent)]
    Executor(#[from] crate::nats::NatsError),
}

/// How the run is recorded in the store.
enum Recording {
    /// A new run; a re-execution names its parent and its selection, and keeps its overrides.
    New { parent: Option<String>, overrides: Vec<String>, selection: Option<String> },
    /// An interrupted run going on: its lock, held by this process, and its store.
    Resumed { store: RunStore, lock: RunLock, parent: Option<String> },
}

/// A job prepared to run, and how its run is recorded.
pub struct Session {
    store_dir: PathBuf,
    runtime: Runtime,
    prepared: PreparedJob,
    options: ExecOptions,
    recording: Recording,
    /// `--max-concurrent`, if given.
    requested_concurrency: Option<usize>,
    /// Things worth telling the user before the run starts (components that changed since the
    /// run re-executed or resumed).
    pub notes: Vec<String>,
}

/// A run that ended.
#[derive(Debug)]
pub struct Finished {
    /// What it did.
    pub report: RunReport,
    /// What went wrong recording it (the run itself happened regardless).
    pub warnings: Vec<String>,
}

impl Session {
    /// A new run of `source`, recorded into the store in `store_dir`.
    pub fn run(source: &JobSource, max_concurrent: Option<usize>, store_dir: &Path) -> Result<Self, SessionError> {
        let (runtime, prepared, threads) = prepare(source, max_concurrent, store_dir)?;
        let options = ExecOptions { max_concurrent: threads, ..ExecOptions::default() };
        let recording = Recording::New { parent: None, overrides: source.set.clone(), selection: None };
        Ok(Self {
            store_dir: store_dir.to_owned(),
            runtime,
            prepared,
            options,
            recording,
            requested_concurrency: max_concurrent,
            notes: Vec::new(),
        })
    }

    /// Re-execute recorded run `run` (an id or a unique prefix): what `selection` names runs
    /// again, everything else is taken from it. Its job file and `--set` overrides are the
    /// parent's; `plugin_path` is searched for components first.
    pub fn reexecute(
        store_dir: &Path,
        run: &str,
        selection: &Selection,
        set: &[String],
        plugin_path: &[PathBuf],
        max_concurrent: Option<usize>,
    ) -> Result<Self, SessionError> {
        let store = RunStore::open_existing(store_dir)?;
        let id = store.resolve(run)?;
        let parent = store.report(&id)?;
        let parent_status = match parent.status {
            RecordedStatus::Ended(status) => status,
            unfinished => {
                let what = if unfinished == RecordedStatus::Running { "is still running" } else { "was interrupted" };
                let id = short_run_id(&id);
                return Err(SessionError::Refused(format!(
                    "run {id} {what}; `sandmap resume {id}` finishes it before it can be re-executed"
                )));
            }
        };
        let provenance = store.provenance(&id)?;
        // Every step the parent holds: the ones it ran and the ones it took from its own parent.
        let steps = store.ended_steps(&id)?;
        drop(store);
        // The parent's overrides, then this re-execution's (a later `--set` of a key wins).
        let overrides: Vec<String> = provenance.overrides.iter().chain(set).cloned().collect();
        let source = JobSource { file: provenance.job_file.clone(), plugin_path: plugin_path.to_vec(), set: overrides };
        let (runtime, prepared, threads) = prepare(&source, max_concurrent, store_dir)?;
        let reuse = selection
            .reuse(&ParentRun { run_id: &id, status: parent_status, steps: &steps }, &prepared.plan)
            .map_err(|e| SessionError::Refused(e.to_string()))?;
        let mut notes = changed_components(&prepared, &provenance.components, &id);
        // What else changed since the parent (an edited job file, a new `--set`): steps that run
        // use it, steps taken from the parent do not.
        if let Some(recorded) = &provenance.job_model {
            for change in JobModel::of(&prepared.plan).changes_since(recorded) {
                notes.push(format!(
                    "{change} since run {}: steps that run use it; steps taken from that run are as they were",
                    short_run_id(&id)
                ));
            }
        }
        let options = ExecOptions { max_concurrent: threads, reuse: Some(Arc::new(reuse)), ..ExecOptions::default() };
        let recording = Recording::New {
            parent: Some(id),
            overrides: source.set,
            selection: serde_json::to_string(selection).ok(),
        };
        Ok(Self {
            store_dir: store_dir.to_owned(),
            runtime,
            prepared,
            options,
            recording,
            requested_concurrency: max_concurrent,
            notes,
        })
    }

    /// Finish recorded run `run`, whose process died: every step that ended stands, only the
    /// rest runs, under the same run id.
    pub fn resume(
        store_dir: &Path,
        run: &str,
        plugin_path: &[PathBuf],
        max_concurrent: Option<usize>,
    ) -> Result<Self, SessionError> {
        let store = RunStore::open_existing(store_dir)?;
        let id = store.resolve(run)?;
        let recorded = store.report(&id)?;
        let short = short_run_id(&id);
        match recorded.status {
            RecordedStatus::Interrupted | RecordedStatus::Ended(RunStatus::Cancelled) => {}
            RecordedStatus::Running => {
                return Err(SessionError::Refused(format!(
                    "run {short} is still running (its process holds the run lock)"
                )));
            }
            RecordedStatus::Ended(RunStatus::Success) => {
                return Err(SessionError::Refused(format!(
                    "run {short} is not interrupted: it ended (success), so there is nothing to finish; \
                     `sandmap reexecute {short} --step SELECTION` runs steps of it again"
                )));
            }
            ended => {
                return Err(SessionError::Refused(format!(
                    "run {short} is not interrupted: it ended ({}); `sandmap reexecute {short} --from-failure` runs its \
                     failed steps again",
                    ended.as_str()
                )));
            }
        }
        // Taken before anything else: two `resume`s of one run cannot both go on.
        let lock = store.lock_run(&id)?;
        let provenance = store.provenance(&id)?;
        let ended = store.ended_steps(&id)?;
        let source = JobSource {
            file: provenance.job_file.clone(),
            plugin_path: plugin_path.to_vec(),
            set: provenance.overrides.clone(),
        };
        let (runtime, prepared, threads) = prepare(&source, max_concurrent, store_dir)?;
        let changes = job_changes(&prepared, &provenance);
        if !changes.is_empty() {
            return Err(SessionError::Refused(format!(
                "{}: the job changed since run {} started: {}; resume needs the job it started with (or start a \
                 new run)",
                provenance.job_file.display(),
                short,
                changes.join("; ")
            )));
        }
        let notes = changed_components(&prepared, &provenance.components, &id);
        let refused = |e: executor::ReuseError| SessionError::Refused(e.to_string());
        let mut reuse = Reuse::resuming(&id, &ended).map_err(refused)?;
        // An interrupted re-execution goes on as planned: what it had not come to yet is taken
        // from its parent by the selection it started with.
        if let (Some(parent_id), Some(selection)) = (&recorded.parent_run_id, &provenance.selection) {
            let selection: Selection = serde_json::from_str(selection).map_err(|e| {
                SessionError::Store(StoreError::Corrupt {
                    path: store.path().to_owned(),
                    what: "re-execution selection",
                    reason: e.to_string(),
                })
            })?;
            let parent = store.report(parent_id)?;
            let steps = store.ended_steps(parent_id)?;
            let planned = selection
                .reuse(
                    &ParentRun { run_id: parent_id, status: parent_ended(parent_id, parent.status)?, steps: &steps },
                    &prepared.plan,
                )
                .map_err(refused)?;
            reuse = planned.overlaid_by(reuse);
        }
        let options =
            ExecOptions { run_id: id, max_concurrent: threads, reuse: Some(Arc::new(reuse)), ..ExecOptions::default() };
        let recording = Recording::Resumed { store, lock, parent: recorded.parent_run_id };
        Ok(Self {
            store_dir: store_dir.to_owned(),
            runtime,
            prepared,
            options,
            recording,
            requested_concurrency: max_concurrent,
            notes,
        })
    }

    /// The plan it runs (for progress displays).
    pub fn plan(&self) -> &Plan {
        &self.prepared.plan
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.options.run_id
    }

    /// What cancels the run once it executes.
    pub fn cancel(&self) -> executor::Cancel {
        self.options.cancel.clone()
    }

    /// Execute the run with `executor`, recording each step as it ends and telling `observers`
    /// of every step. A store that cannot record is reported in [`Finished::warnings`], never
    /// fatal: the run happens regardless. An executor that cannot be reached is an error, before
    /// anything is run or recorded.
    pub fn execute(self, executor: &Executor, observers: Vec<Arc<dyn RunObserver>>) -> Result<Finished, SessionError> {
        let Self { store_dir, runtime, prepared, mut options, recording, requested_concurrency, notes: _ } = self;
        let mut remote = match executor {
            Executor::Local => None,
            Executor::Nats(nats) => Some(crate::nats::NatsRunner::connect(
                nats,
                &options.run_id,
                &prepared.ops,
                requested_concurrency.unwrap_or(REMOTE_IN_FLIGHT),
            )?),
        };
        let mut warnings = Vec::new();
        let (recorder, resumed_parent) = match recording {
            Recording::New { parent, overrides, selection } => {
                let components = component_digests(&prepared);
                let configs: Vec<(String, String)> =
                    prepared.plan.ops.iter().map(|op| (op.name.clone(), op.config.as_str().to_owned())).collect();
                // Recorded by its canonical path, so that a re-execution finds it from any folder.
                let job_file = prepared.job.file.canonicalize().unwrap_or_else(|_| prepared.job.file.clone());
                let job_model = serde_json::to_string(&crate::job::JobModel::of(&prepared.plan)).ok();
                let start = RunStart {
                    run_id: &options.run_id,
                    job: &prepared.plan.job,
                    job_file: &job_file,
                    job_text: &prepared.job.text,
                    components: &components,
                    configs: &configs,
                    parent_run_id: parent.as_deref(),
                    overrides: &overrides,
                    selection: selection.as_deref(),
                    job_model: job_model.as_deref(),
                };
                match RunStore::open(&store_dir).and_then(|store| Recorder::start(store, &start)) {
                    Ok(recorder) => (Some(Arc::new(recorder)), None),
                    Err(error) => {
                        warnings.push(format!("the run is not recorded: {error}"));
                        (None, None)
                    }
                }
            }
            Recording::Resumed { store, lock, parent } => match Recorder::resume(
                store,
                &options.run_id,
                lock,
                prepared.plan.ops.iter().map(|op| op.name.clone()).collect(),
            ) {
                Ok(recorder) => (Some(Arc::new(recorder)), Some(parent)),
                Err(error) => {
                    warnings.push(format!("the resumed run is not recorded: {error}"));
                    (None, Some(parent))
                }
            },
        };
        let mut all: Vec<Arc<dyn RunObserver>> = Vec::with_capacity(observers.len() + 1);
        if let Some(recorder) = &recorder {
            all.push(recorder.clone());
        }
        all.extend(observers);
        if !all.is_empty() {
            options.observer = Some(Arc::new(all));
        }
        let mut report = match remote.as_mut() {
            None => executor::execute(&prepared.plan, &prepared.ops, &runtime, &options),
            Some(runner) => executor::execute_with(&prepared.plan, &prepared.ops, runner, &options),
        };
        if let Some(runner) = remote {
            runner.close();
        }
        if let Some(parent) = resumed_parent {
            report.parent_run_id = parent;
        }
        if let Some(recorder) = recorder
            && let Err(error) = recorder.finish(&report)
        {
            warnings.push(format!("the run was not fully recorded: {error}"));
        }
        Ok(Finished { report, warnings })
    }
}

/// How the parent `id` of a re-execution ended (a re-execution starts only from a run that did).
fn parent_ended(id: &str, status: RecordedStatus) -> Result<RunStatus, SessionError> {
    match status {
        RecordedStatus::Ended(status) => Ok(status),
        other => Err(SessionError::Refused(format!(
            "run {id}, which this run re-executes, is {}: `sandmap resume {id}` finishes it first",
            other.as_str(),
            id = short_run_id(id),
        ))),
    }
}

/// What changed in the job since the run of `provenance` started: its planned job compared with
/// the recorded one (comments and layout do not count), or, for a run recorded before sandmap
/// kept that, the file's digest.
fn job_changes(prepared: &PreparedJob, provenance: &crate::store::Provenance) -> Vec<String> {
    match &provenance.job_model {
        Some(recorded) => JobModel::of(&prepared.plan).changes_since(recorded),
        None => {
            let digest = crate::runtime::digest(prepared.job.text.as_bytes());
            if digest == provenance.job_digest {
                Vec::new()
            } else {
                vec![format!("the file's sha256 {:.12} → {digest:.12}", provenance.job_digest)]
            }
        }
    }
}

/// The job parsed once (with its overrides), a runtime that meters fuel only when an op sets a
/// fuel limit (it costs every guest instruction), and the job prepared with the run store
/// protected from grants; and the number of steps that may run at once.
pub fn prepare(
    source: &JobSource,
    max_concurrent: Option<usize>,
    store_dir: &Path,
) -> Result<(Runtime, PreparedJob, usize), SessionError> {
    let job = source.load()?;
    let mut settings = RuntimeConfig { fuel: job.uses_fuel(), ..RuntimeConfig::default() };
    if let Some(n) = max_concurrent {
        settings.max_concurrent = n;
    }
    let runtime = Runtime::new(&settings)?;
    let prepared = executor::prepare_parsed(job, &source.plugin_path, &runtime, &[store_dir.to_owned()])?;
    Ok((runtime, prepared, settings.max_concurrent))
}

/// Each op's component digest.
pub fn component_digests(prepared: &PreparedJob) -> Vec<(String, String)> {
    prepared.job.ops.iter().zip(&prepared.ops).map(|(op, loaded)| (op.name.clone(), loaded.digest.clone())).collect()
}

/// Which ops' components changed since run `id` recorded theirs, said as notes.
fn changed_components(prepared: &PreparedJob, recorded: &[(String, String)], id: &str) -> Vec<String> {
    let mut notes = Vec::new();
    for (op, digest) in component_digests(prepared) {
        if let Some((_, old)) = recorded.iter().find(|(name, _)| *name == op)
            && *old != digest
        {
            notes.push(format!(
                "op \"{op}\"'s component changed since run {}: sha256 {old:.12} → {digest:.12}",
                short_run_id(id)
            ));
        }
    }
    notes
}
