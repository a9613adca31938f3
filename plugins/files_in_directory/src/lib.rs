//! `files_in_directory`: Dagster's canonical fan-out op. Lists the regular files in `path` (only
//! those directly in it, or with `recursive` those in every sub-folder too), optionally only the
//! ones whose name matches `pattern`, and emits one `DynamicOutput` per file, sorted by the UTF-8
//! bytes of its path relative to `path`: the value is the file's full guest path, the mapping key
//! its cleaned relative path (`sub/a.txt` → `sub_a_txt`; directly in `path`, its cleaned name).
//!
//! Symlinks are never followed (neither to files nor to folders). What is not listed is counted,
//! and one info line says so: `skipped 3 entries: 1 hidden, 1 symlink, 1 not matching "*.csv"`.
//!
//! The Python and JavaScript builds (`plugins/{python,js}/files_in_directory`) must stay
//! indistinguishable from this one (`tests/conformance.rs`): change them together.

mod pattern;

use std::collections::VecDeque;
use std::path::Path;

use sandmap_guest::fs::{DirEntry, EntryKind};
use sandmap_guest::prelude::*;

use crate::pattern::Pattern;

/// Config of `files_in_directory`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FilesConfig {
    // Each field's doc comment is its description in the config schema: one line each (schemars
    // keeps line breaks), the same text in the Python and JavaScript builds.
    /// The directory to list, as the op sees it (a guest path inside a granted directory).
    #[serde(default = "default_path")]
    path: String,
    // Exact glob semantics: `pattern.rs`.
    /// Only list files whose name matches this glob (`*`, `?`, `[a-z]`, `[!a-z]`, `{a,b}`; see the README).
    #[serde(default)]
    pattern: Option<String>,
    /// Also list the files in sub-folders, at any depth (never through a symlink), keyed by cleaned relative path.
    #[serde(default)]
    recursive: bool,
    /// List entries whose name starts with `.` (true by default: every file); false also skips hidden folders.
    #[serde(default = "default_true")]
    include_hidden: bool,
}

fn default_path() -> String {
    "/data".into()
}

fn default_true() -> bool {
    true
}

/// The entries left out, by the first reason that applies, in this order.
#[derive(Default)]
struct Skipped {
    hidden: usize,
    symlinks: usize,
    /// Folders, when not recursive.
    directories: usize,
    /// Sockets, fifos, devices: neither a regular file, a folder nor a symlink.
    special: usize,
    not_matching: usize,
}

impl Skipped {
    /// The log line (`skipped 2 entries: 1 symlink, 1 not matching "*.csv"`), or `None` when
    /// nothing was skipped.
    fn summary(&self, pattern: Option<&str>) -> Option<String> {
        let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        if self.hidden > 0 {
            parts.push(format!("{} hidden", self.hidden));
        }
        if self.symlinks > 0 {
            parts.push(count(self.symlinks, "symlink", "symlinks"));
        }
        if self.directories > 0 {
            parts.push(count(self.directories, "directory", "directories"));
        }
        if self.special > 0 {
            parts.push(count(self.special, "special file", "special files"));
        }
        if self.not_matching > 0 {
            parts.push(format!("{} not matching \"{}\"", self.not_matching, pattern.unwrap_or_default()));
        }
        let total = self.hidden + self.symlinks + self.directories + self.special + self.not_matching;
        (total > 0).then(|| format!("skipped {}: {}", count(total, "entry", "entries"), parts.join(", ")))
    }
}

/// A file to emit.
///
/// Only the relative path is held (its full path is made when it is emitted): a listing of
/// 100,000 files held three paths each, ~10 MB more of the op's memory.
struct Listed {
    /// Its path relative to `path`, with `/` between folders: the sort order and the key.
    relative: String,
    /// Where its own name starts in `relative`.
    name_at: usize,
}

struct FilesInDirectory;

impl Op for FilesInDirectory {
    type Config = FilesConfig;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("files_in_directory")
            .description(
                "Emit one record per regular file in `path` (with `recursive`, in its sub-folders too), \
                 sorted by relative path",
            )
            .dynamic_output("result")
            .output_description("the file's full guest path, keyed by its cleaned path relative to `path`")
    }

    fn run(ctx: &mut Context, config: FilesConfig) -> Result<(), OpError> {
        let pattern = config.pattern.as_deref().map(Pattern::new).transpose().map_err(OpError::new)?;
        let mut skipped = Skipped::default();
        let mut files = Vec::new();
        // (guest path, relative path with a trailing `/`), breadth first: which folder is listed
        // first (and so which error is met first) is the same in every language.
        let mut folders = VecDeque::from([(config.path.clone(), String::new())]);
        while let Some((dir, prefix)) = folders.pop_front() {
            // Each entry's own type: a symlink is not followed, whatever it points at.
            let mut entries = sandmap_guest::fs::read_dir(&dir).context(format!("list {dir}"))?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for DirEntry { name, kind } in entries {
                if !config.include_hidden && name.starts_with('.') {
                    skipped.hidden += 1;
                } else if kind == EntryKind::Symlink {
                    skipped.symlinks += 1;
                } else if kind == EntryKind::Dir {
                    if config.recursive {
                        let path = Path::new(&dir).join(&name).to_string_lossy().into_owned();
                        folders.push_back((path, format!("{prefix}{name}/")));
                    } else {
                        skipped.directories += 1;
                    }
                } else if kind != EntryKind::File {
                    skipped.special += 1;
                } else if pattern.as_ref().is_some_and(|p| !p.is_match(&name)) {
                    skipped.not_matching += 1;
                } else {
                    files.push(Listed { relative: format!("{prefix}{name}"), name_at: prefix.len() });
                }
            }
        }
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        if let Some(line) = skipped.summary(config.pattern.as_deref()) {
            ctx.info(line);
        }
        for file in files {
            // Two paths may clean to one key (`a-b.txt`, `a_b.txt`): the host refuses the second.
            let key = clean(&file.relative);
            let path = Path::new(&config.path).join(&file.relative).to_string_lossy().into_owned();
            ctx.emit(DynamicOutput::new(path, key).metadata("filename", &file.relative[file.name_at..]))?;
        }
        Ok(())
    }
}

export_op!(FilesInDirectory);
