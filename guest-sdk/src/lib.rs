//! Write sandmap ops in Rust.
//!
//! An op is a type that implements [`Op`], exported with [`export_op!`]. The SDK hides the
//! generated WIT bindings: config arrives as your own serde type (its JSON Schema, defaults
//! included, is derived with `schemars`), inputs are read with [`Context::input`], records are
//! emitted with [`Context::emit`] while the op runs, and the value `run` returns becomes the
//! op's plain output `"result"`.
//!
//! ```ignore
//! use sandmap_guest::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Config {
//!     #[serde(default = "default_path")]
//!     path: String,
//! }
//! fn default_path() -> String { "/data".into() }
//!
//! struct FilesInDirectory;
//!
//! impl Op for FilesInDirectory {
//!     type Config = Config;
//!     type Output = ();
//!     fn definition() -> OpDefinition {
//!         OpDefinition::new("files_in_directory").dynamic_output("result")
//!     }
//!     fn run(ctx: &mut Context, config: Config) -> Result<(), OpError> {
//!         for name in ["a.txt", "b.txt"] {
//!             ctx.emit(DynamicOutput::new(format!("{}/{name}", config.path), clean(name)))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_op!(FilesInDirectory);
//! ```

pub mod bytes;
mod context;
mod definition;
pub mod digest;
mod error;
pub mod fs;
#[doc(hidden)]
pub mod glue;
mod key;
mod output;

/// The bindings generated from `wit/op.wit`. Ops do not need them; they are public only so
/// that [`export_op!`] can name them from the op's crate.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "op-component",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_op_component",
        default_bindings_module: "sandmap_guest::bindings",
    });
}

pub use context::{CollectFailure, Context, LogLevel};
pub use definition::{InputDefinition, OpDefinition, OutputDefinition};
pub use error::{OpError, ResultExt};
pub use key::{clean, is_valid_mapping_key};
pub use output::{DynamicOutput, MetadataValue, Output};

/// An op's config when it takes none: accepts only an empty table.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// An op: its definition and what it does when it runs.
pub trait Op {
    /// The op's config, read from the job file. Its JSON Schema (derived with `schemars`,
    /// serde defaults included) is part of the op's definition.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// What `run` returns: the value of the plain output `"result"`. Use `()` for an op whose
    /// outputs are all emitted through the [`Context`] (a fan-out op, for example).
    type Output: serde::Serialize;

    /// Name, description, inputs and outputs. With no output declared, the op has one plain,
    /// required output `"result"`, as in Dagster.
    fn definition() -> OpDefinition;

    /// Run once with the validated config (the host has applied the schema's defaults).
    fn run(ctx: &mut Context, config: Self::Config) -> Result<Self::Output, OpError>;
}

/// Everything an op's source needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Context, DynamicOutput, LogLevel, MetadataValue, NoConfig, Op, OpDefinition, OpError, Output, ResultExt, clean,
        export_op,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// Export a type that implements [`Op`] as this component's op.
///
/// Use it once per crate, at the crate root: `export_op!(FilesInDirectory);`.
#[macro_export]
macro_rules! export_op {
    ($op:ty) => {
        #[doc(hidden)]
        struct __SandmapExportedOp;

        impl $crate::bindings::exports::sandmap::op::op::Guest for __SandmapExportedOp {
            fn definition() -> $crate::bindings::sandmap::op::types::OpDefinition {
                $crate::glue::definition::<$op>()
            }

            fn run(
                context: $crate::bindings::sandmap::op::types::RunContext,
                config: ::std::string::String,
                inputs: ::std::vec::Vec<$crate::bindings::sandmap::op::types::NamedValue>,
            ) -> ::std::result::Result<(), $crate::bindings::sandmap::op::types::OpError> {
                $crate::glue::run::<$op>(context, config, inputs)
            }
        }

        $crate::bindings::__export_op_component!(__SandmapExportedOp with_types_in $crate::bindings);
    };
}
