//! Watching a run as it goes: the run store records each step the moment it ends (so that a
//! killed run can be resumed without redoing it), and the CLI draws progress.

use std::sync::Arc;

use super::report::EndedStep;

/// Told about every step of a run, on the scheduler thread: implementations must be quick (count,
/// or hand the work to another thread) or they slow the whole run down.
pub trait RunObserver: Send + Sync {
    /// A step came into being (a clone, when its record was emitted). `op` is the op's index in
    /// the plan.
    fn step_created(&self, _op: usize) {}

    /// A worker started an attempt of step `key` (`attempt` 1 first, more for retries).
    fn step_started(&self, _op: usize, _key: &str, _attempt: u32) {}

    /// A step reached its final status. Shared, so that an observer that keeps it (the
    /// recorder's queue) holds no copy of its log, records or values.
    fn step_finished(&self, _op: usize, _step: &Arc<EndedStep>) {}
}

/// Several observers, each told everything in turn.
impl RunObserver for Vec<std::sync::Arc<dyn RunObserver>> {
    fn step_created(&self, op: usize) {
        self.iter().for_each(|o| o.step_created(op));
    }

    fn step_started(&self, op: usize, key: &str, attempt: u32) {
        self.iter().for_each(|o| o.step_started(op, key, attempt));
    }

    fn step_finished(&self, op: usize, step: &Arc<EndedStep>) {
        self.iter().for_each(|o| o.step_finished(op, step));
    }
}
