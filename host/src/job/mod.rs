//! Job files: parse, validate against the ops' definitions, and plan. Knows nothing of
//! wasmtime: an op is its [`OpDefinition`](crate::definition::OpDefinition) here.

pub mod config;
mod error;
mod file;
pub mod graph;
mod model;
mod plan;

pub use error::JobError;
pub use file::{InputSource, Job, JobInput, JobOp, JoinHow, MinSuccess, OutputRef, RetryPolicy, parse_file, parse_str};
pub use model::{JobModel, WireKind, WiredInput};
pub use plan::{Binding, DynamicRef, HeldGrant, Pairing, Plan, PlannedInput, PlannedOp, Protected, plan};
