//! Finding a job's components: a path to a `.wasm`, a name on the plugin path, or one of the
//! example ops built into the binary.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The example ops, built for wasm32-wasip2 by `host/build.rs` and embedded, so that
/// `sandmap run examples/process_directory.toml` needs no separate install step.
pub mod builtin {
    /// One built-in op.
    #[derive(Debug)]
    pub struct Builtin {
        /// Its name, as a job file names it.
        pub name: &'static str,
        /// Its component.
        pub bytes: &'static [u8],
        /// The SHA-256 of `bytes`, hex, computed when it was embedded.
        pub digest: &'static str,
    }

    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Where a component's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentOrigin {
    /// A file.
    File(PathBuf),
    /// An op built into the binary.
    Builtin(&'static str),
}

impl std::fmt::Display for ComponentOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Builtin(name) => write!(f, "built-in op {name}"),
        }
    }
}

/// A component found: its bytes and where they came from.
#[derive(Debug, Clone)]
pub struct FoundComponent {
    /// The component's bytes.
    pub bytes: std::borrow::Cow<'static, [u8]>,
    /// Where they came from.
    pub origin: ComponentOrigin,
    /// Their SHA-256, where it is known without reading them (a built-in op's).
    digest: Option<&'static str>,
}

impl FoundComponent {
    /// The SHA-256 of the bytes, hex.
    pub fn digest(&self) -> String {
        self.digest.map_or_else(|| crate::runtime::digest(&self.bytes), str::to_owned)
    }
}

/// Why a component could not be found.
#[derive(Debug, Error)]
pub enum FindError {
    /// A path that could not be read.
    #[error("cannot read component {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A name found nowhere.
    #[error(
        "component \"{name}\" not found: no {name}.wasm in the plugin path ({searched}) and no built-in op of that name ({builtins})"
    )]
    NotFound {
        /// The name.
        name: String,
        /// The folders searched.
        searched: String,
        /// The built-in ops.
        builtins: String,
    },
}

/// The plugin path: `--plugin-path` folders first, then `SANDMAP_PLUGIN_PATH` (`:`-separated),
/// then the job file's `plugins/` folder.
pub fn plugin_path(cli: &[PathBuf], job_dir: &Path) -> Vec<PathBuf> {
    let mut path: Vec<PathBuf> = cli.to_vec();
    if let Some(env) = std::env::var_os("SANDMAP_PLUGIN_PATH") {
        path.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    path.push(job_dir.join("plugins"));
    path
}

/// A component located, not yet read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Located {
    /// A file, by its canonical path (symlinks resolved) where it has one: two names for one
    /// file are one component.
    File(PathBuf),
    /// An op built into the binary.
    Builtin(&'static str),
}

impl Located {
    /// Read the component's bytes (a file is read now; a built-in op's bytes are borrowed).
    pub fn read(&self) -> Result<FoundComponent, FindError> {
        match self {
            Self::File(path) => read(path),
            Self::Builtin(name) => builtin::PLUGINS
                .iter()
                .find(|builtin| builtin.name == *name)
                .map(|builtin| FoundComponent {
                    bytes: std::borrow::Cow::Borrowed(builtin.bytes),
                    origin: ComponentOrigin::Builtin(builtin.name),
                    digest: Some(builtin.digest),
                })
                .ok_or_else(|| not_found(name, &[])),
        }
    }
}

/// Find `component` as a job file names it: a path (contains `/` or ends in `.wasm`, relative
/// to `job_dir`), else `NAME.wasm` on the plugin path, else a built-in op. Nothing is read.
pub fn locate(component: &str, job_dir: &Path, plugin_path: &[PathBuf]) -> Result<Located, FindError> {
    let file = |path: PathBuf| Located::File(path.canonicalize().unwrap_or(path));
    if component.contains('/') || component.ends_with(".wasm") {
        return Ok(file(job_dir.join(component)));
    }
    for dir in plugin_path {
        let candidate = dir.join(format!("{component}.wasm"));
        if candidate.is_file() {
            return Ok(file(candidate));
        }
    }
    if let Some(builtin) = builtin::PLUGINS.iter().find(|builtin| builtin.name == component) {
        return Ok(Located::Builtin(builtin.name));
    }
    Err(not_found(component, plugin_path))
}

/// [`locate`], then read.
pub fn find(component: &str, job_dir: &Path, plugin_path: &[PathBuf]) -> Result<FoundComponent, FindError> {
    locate(component, job_dir, plugin_path)?.read()
}

fn not_found(name: &str, plugin_path: &[PathBuf]) -> FindError {
    FindError::NotFound {
        name: name.to_owned(),
        searched: plugin_path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        builtins: builtin::PLUGINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", "),
    }
}

fn read(path: &Path) -> Result<FoundComponent, FindError> {
    let bytes = std::fs::read(path).map_err(|source| FindError::Read { path: path.to_owned(), source })?;
    Ok(FoundComponent {
        bytes: std::borrow::Cow::Owned(bytes),
        origin: ComponentOrigin::File(path.to_owned()),
        digest: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_built_in_digest_is_that_of_its_bytes() {
        for builtin in super::builtin::PLUGINS {
            assert_eq!(builtin.digest, crate::runtime::digest(builtin.bytes), "{}", builtin.name);
        }
    }
}
