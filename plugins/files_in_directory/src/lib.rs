//! `files_in_directory`: Dagster's canonical fan-out op. Lists the regular files directly in
//! `path` (not recursively), sorted by file name, and emits one `DynamicOutput` per file:
//! the value is the file's full guest path, the mapping key its cleaned name.

use std::path::Path;

use sandmap_guest::prelude::*;

/// Config of `files_in_directory`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FilesConfig {
    /// The directory to list, as the op sees it (a guest path inside a granted directory).
    #[serde(default = "default_path")]
    path: String,
}

fn default_path() -> String {
    "/data".into()
}

struct FilesInDirectory;

impl Op for FilesInDirectory {
    type Config = FilesConfig;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("files_in_directory")
            .description("Emit one record per regular file directly in `path`, sorted by name")
            .dynamic_output("result")
            .output_description("the file's full guest path, keyed by its cleaned file name")
    }

    fn run(ctx: &mut Context, config: FilesConfig) -> Result<(), OpError> {
        let dir = Path::new(&config.path);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).context(format!("list {}", config.path))? {
            let entry = entry.context(format!("list {}", config.path))?;
            // The entry's own type: a symlink is not a regular file, even if it points at one.
            if entry.file_type().context(format!("stat {}", entry.path().display()))?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        for name in names {
            let path = dir.join(&name).to_string_lossy().into_owned();
            ctx.emit(DynamicOutput::new(path, clean(&name)).metadata("filename", name.as_str()))?;
        }
        Ok(())
    }
}

export_op!(FilesInDirectory);
