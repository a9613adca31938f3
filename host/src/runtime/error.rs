//! The runtime's typed errors.

use thiserror::Error;

/// Why a component could not be loaded as an op.
#[derive(Debug, Error)]
pub enum LoadError {
    /// A 0-byte file.
    #[error("{origin} is empty (0 bytes), not a WebAssembly component")]
    Empty {
        /// Where the bytes came from.
        origin: String,
    },
    /// Not WebAssembly at all.
    #[error("{origin} is not a WebAssembly component (it does not start with the \\0asm header)")]
    NotWasm {
        /// Where the bytes came from.
        origin: String,
    },
    /// A core module instead of a component.
    #[error(
        "{origin} is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// Where the bytes came from.
        origin: String,
    },
    /// Malformed or unsupported component.
    #[error("{origin} is not a valid component: {reason}")]
    Invalid {
        /// Where the bytes came from.
        origin: String,
        /// wasmtime's reason.
        reason: String,
    },
    /// It imports something the host does not provide.
    #[error("{origin} imports something sandmap does not provide: {reason}")]
    UnsupportedImport {
        /// Where the bytes came from.
        origin: String,
        /// wasmtime's reason.
        reason: String,
    },
    /// It is a component of another world.
    #[error("{origin} is not a sandmap op (it does not implement sandmap:op/op-component@0.1.0): {reason}")]
    WrongWorld {
        /// Where the bytes came from.
        origin: String,
        /// wasmtime's reason.
        reason: String,
    },
    /// Its `definition` export failed or returned nonsense.
    #[error("{origin}: cannot read the op's definition: {reason}")]
    Definition {
        /// Where the bytes came from.
        origin: String,
        /// Why.
        reason: String,
    },
}

/// Why the runtime could not be set up.
#[derive(Debug, Error)]
#[error("cannot set up the WebAssembly runtime: {0}")]
pub struct RuntimeError(pub String);

/// Why a step failed. Its `Display` is the message users see after the step key. Plain data:
/// it travels back from wherever the step ran.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum StepFailure {
    /// The op returned an error.
    #[error("{0}")]
    Op(String),
    /// The host refused an emission (invalid or duplicate key, wrong output kind, …).
    #[error("{0}")]
    Emission(String),
    /// A required output was never produced.
    #[error("{0}")]
    MissingOutput(String),
    /// A resource limit was hit.
    #[error("exceeded {limit} limit {value}")]
    Limit {
        /// Which limit (`memory`, `time`, `max_emits`, …).
        limit: std::borrow::Cow<'static, str>,
        /// Its value, human-readable (`256 MiB`, `60 s`).
        value: String,
    },
    /// The op crashed (a trap).
    #[error("op crashed: {0}")]
    Trap(String),
    /// The sandbox could not be set up (a grant could not be opened, …).
    #[error("cannot set up the sandbox: {0}")]
    Sandbox(String),
    /// Running it elsewhere failed: its workers were lost, a worker lacks a grant's folder or
    /// could not fetch its component, or a redelivery emitted other records. Names the step and
    /// the workers involved.
    #[error("{0}")]
    Remote(String),
    /// The run was cancelled while the step ran (Ctrl-C, SIGTERM, `sandmap cancel`).
    #[error("cancelled while it ran (the run was cancelled)")]
    Cancelled,
}
