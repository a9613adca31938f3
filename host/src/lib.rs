//! sandmap: run data-pipeline ops as sandboxed WebAssembly components, orchestrated with
//! Dagster's dynamic mapping & collect model.
//!
//! The crate is split so that each part knows only what it must:
//! - [`job`] parses, validates and plans a job file. It knows nothing of wasmtime.
//! - [`runtime`] compiles, sandboxes and runs one component step. It knows nothing of graphs.
//! - [`executor`] joins them through a runner seam: it schedules steps as dynamic records stream
//!   in, and a [`executor::Runner`] runs them.
//! - [`store`] is the run store; [`session`] runs a job end to end (prepare, record, observe,
//!   execute), shared by every command that runs one.
//! - [`step`], [`definition`], [`value`] and [`keys`] are the plain data both sides share; a
//!   [`step::StepSpec`] is run by another process or machine as it is.
//! - [`nats`] runs steps on `sandmap worker`s over NATS JetStream: a second runner, and the
//!   worker.
//! - [`ui`] serves the run viewer over the store (`sandmap ui`).

pub mod cli;
pub mod definition;
pub mod executor;
pub mod job;
pub mod keys;
pub mod nats;
pub mod plugins;
pub mod runtime;
pub mod session;
pub mod step;
pub mod store;
pub mod ui;
pub mod units;
pub mod value;
