// Included by build.rs: builds the Python and JavaScript example ops (plugins/python/*,
// plugins/js/*) with pinned tools installed into the target folder (a venv with componentize-py,
// a node_modules with componentize-js from guest-sdk/js/package-lock.json), never global ones.
//
// Each component is cached by a digest of everything it is built from (tool version, WIT, kit,
// the op's own files), so an unchanged tree costs nothing. A tool that cannot be installed skips
// that language with a warning (the tests say so), unless SANDMAP_REQUIRE_POLYGLOT=1 (CI), which
// makes it an error.

use std::hash::{DefaultHasher, Hasher};
use std::io::Read as _;

/// componentize-py, from PyPI.
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The ops each language must have: the conformance suite runs each against the Rust build.
const POLYGLOT_OPS: &[&str] = &["files_in_directory", "process_file"];

/// What the build produced for one language.
struct LangBuild {
    /// Why it was not built, if it was not.
    skipped: Option<String>,
    /// The folder holding `<op>.wasm`.
    dir: PathBuf,
    /// Seconds each component took to build (0 when it came from the cache).
    timings: Vec<(String, f64)>,
}

fn require_polyglot() -> bool {
    std::env::var("SANDMAP_REQUIRE_POLYGLOT").is_ok_and(|v| v == "1")
}

fn skip_or_fail(lang: &str, reason: String) -> String {
    if require_polyglot() {
        panic!("SANDMAP_REQUIRE_POLYGLOT=1 and the {lang} ops cannot be built: {reason}");
    }
    println!("cargo:warning=skipping the {lang} ops (their conformance tests will say so):");
    for line in reason.lines() {
        println!("cargo:warning=  {line}");
    }
    reason
}

/// A digest of `files` (paths and contents, folders recursively) and `extra`. `__pycache__`
/// folders are left out: componentize-py writes them into the op's folder while it builds, which
/// would change the digest of a tree that did not change.
fn digest_inputs(files: &[PathBuf], extra: &str) -> String {
    fn add(hasher: &mut DefaultHasher, path: &Path) {
        hasher.write(path.to_string_lossy().as_bytes());
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|rd| {
                    rd.filter_map(Result::ok).filter(|e| e.file_name() != "__pycache__").map(|e| e.path()).collect()
                })
                .unwrap_or_default();
            entries.sort();
            for entry in entries {
                add(hasher, &entry);
            }
        } else if let Ok(mut file) = std::fs::File::open(path) {
            let mut data = Vec::new();
            let _ = file.read_to_end(&mut data);
            hasher.write_usize(data.len());
            hasher.write(&data);
        }
    }
    let mut hasher = DefaultHasher::new();
    hasher.write(extra.as_bytes());
    for file in files {
        add(&mut hasher, file);
    }
    format!("{:016x}", hasher.finish())
}

fn run_quiet(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        Err(format!("{what} failed ({}):\n{tail}", output.status))
    }
}

/// Build `op` into `out_dir/<op>.wasm` with `build` unless its digest is unchanged.
fn build_cached(
    out_dir: &Path,
    op: &str,
    digest: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<f64, String> {
    let wasm = out_dir.join(format!("{op}.wasm"));
    let stamp = out_dir.join(format!("{op}.digest"));
    if wasm.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == digest) {
        return Ok(0.0);
    }
    let started = std::time::Instant::now();
    let partial = out_dir.join(format!("{op}.wasm.partial"));
    let _ = std::fs::remove_file(&partial);
    build(&partial)?;
    std::fs::rename(&partial, &wasm).map_err(|e| format!("cannot move {}: {e}", partial.display()))?;
    std::fs::write(&stamp, digest).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(started.elapsed().as_secs_f64())
}

fn op_sources(dir: &Path) -> Result<(), String> {
    for op in POLYGLOT_OPS {
        if !dir.join(op).is_dir() {
            return Err(format!("{} has no {op}", dir.display()));
        }
    }
    Ok(())
}

fn build_python(workspace: &Path, root: &Path) -> LangBuild {
    let dir = root.join("python");
    let mut timings = Vec::new();
    let result = (|| -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let venv = root.join(format!("venv-componentize-py-{COMPONENTIZE_PY_VERSION}"));
        let tool = venv.join("bin").join("componentize-py");
        let ready = venv.join("installed");
        if !ready.is_file() || !tool.is_file() {
            let python = std::env::var("SANDMAP_PYTHON").unwrap_or_else(|_| "python3".into());
            let _ = std::fs::remove_dir_all(&venv);
            run_quiet(Command::new(&python).args(["-m", "venv"]).arg(&venv), &format!("{python} -m venv"))?;
            run_quiet(
                Command::new(venv.join("bin").join("pip")).args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
                ]),
                &format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
            )?;
            std::fs::write(&ready, COMPONENTIZE_PY_VERSION).map_err(|e| e.to_string())?;
        }
        let plugins = workspace.join("plugins/python");
        op_sources(&plugins)?;
        for op in POLYGLOT_OPS {
            let digest = digest_inputs(
                &[workspace.join("wit/op.wit"), workspace.join("guest-sdk/python/sandmap_op.py"), plugins.join(op)],
                COMPONENTIZE_PY_VERSION,
            );
            let seconds = build_cached(&dir, op, &digest, |out| {
                run_quiet(
                    Command::new(&tool)
                        .current_dir(workspace)
                        .args(["-d", "wit", "-w", "op-component", "componentize", "-p", "guest-sdk/python", "-p"])
                        .arg(format!("plugins/python/{op}"))
                        .arg("app")
                        .arg("-o")
                        .arg(out),
                    &format!("componentize-py for {op}"),
                )
            })?;
            timings.push((op.to_string(), seconds));
        }
        Ok(())
    })();
    LangBuild { skipped: result.err().map(|r| skip_or_fail("Python", r)), dir, timings }
}

fn build_js(workspace: &Path, root: &Path) -> LangBuild {
    let dir = root.join("js");
    let mut timings = Vec::new();
    let result = (|| -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let kit = workspace.join("guest-sdk/js");
        let tools = root.join("js-tools");
        std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
        let lock_digest = digest_inputs(&[kit.join("package.json"), kit.join("package-lock.json")], "");
        let ready = tools.join("installed");
        let cli = tools.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
        if !cli.is_file() || std::fs::read_to_string(&ready).ok().as_deref() != Some(lock_digest.as_str()) {
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(kit.join(file), tools.join(file)).map_err(|e| format!("cannot copy {file}: {e}"))?;
            }
            run_quiet(
                Command::new("npm").current_dir(&tools).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
                "npm ci (componentize-js)",
            )?;
            std::fs::write(&ready, &lock_digest).map_err(|e| e.to_string())?;
        }
        let plugins = workspace.join("plugins/js");
        op_sources(&plugins)?;
        for op in POLYGLOT_OPS {
            let digest = digest_inputs(
                &[
                    workspace.join("wit/op.wit"),
                    kit.join("sandmap-op.js"),
                    kit.join("wit/world.wit"),
                    kit.join("wit/deps/filesystem"),
                    kit.join("wit/deps/io"),
                    kit.join("wit/deps/clocks"),
                    plugins.join(op),
                ],
                &lock_digest,
            );
            let seconds = build_cached(&dir, op, &digest, |out| {
                // Run from the workspace root: componentize-js maps the working folder into the
                // engine, so the op's relative import of guest-sdk/js/sandmap-op.js resolves.
                run_quiet(
                    Command::new("node")
                        .current_dir(workspace)
                        .arg(&cli)
                        .arg(format!("plugins/js/{op}/app.js"))
                        .args(["--wit", "guest-sdk/js/wit", "--world-name", "op-component-fs", "-d"])
                        .args(["stdio", "random", "clocks", "http", "fetch-event", "-o"])
                        .arg(out),
                    &format!("componentize-js for {op}"),
                )
            })?;
            timings.push((op.to_string(), seconds));
        }
        Ok(())
    })();
    LangBuild { skipped: result.err().map(|r| skip_or_fail("JavaScript", r)), dir, timings }
}

/// Build both languages (in parallel: each tool is mostly single-threaded) and return the Rust
/// source of the `polyglot` module for programs.rs.
fn build_polyglot(workspace: &Path, guests_dir: &Path) -> String {
    for path in ["plugins/python", "plugins/js", "guest-sdk/python", "guest-sdk/js"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=SANDMAP_REQUIRE_POLYGLOT");
    println!("cargo:rerun-if-env-changed=SANDMAP_PYTHON");
    // guests_dir is <target>/wasm-guests/wasm32-wasip2/release.
    let root = guests_dir.ancestors().nth(3).map_or_else(|| guests_dir.join("polyglot"), |t| t.join("polyglot"));
    let (python, js) = std::thread::scope(|scope| {
        let python = scope.spawn(|| build_python(workspace, &root));
        let js = build_js(workspace, &root);
        (python.join().unwrap_or_else(|_| panic!("the Python build panicked")), js)
    });
    let mut code = String::from("/// The example ops built in other languages than Rust.\npub mod polyglot {\n");
    code.push_str(
        "    /// One language's build of the example ops.\n    #[derive(Debug, Clone, Copy)]\n    pub struct Lang {\n        /// `python` or `js`.\n        pub name: &'static str,\n        /// Why the ops were not built (a tool could not be installed), if they were not.\n        pub skipped: Option<&'static str>,\n        /// The folder holding `<op>.wasm`.\n        pub dir: &'static str,\n        /// (op, seconds the last build took; 0 when cached).\n        pub build_seconds: &'static [(&'static str, f64)],\n    }\n",
    );
    for (name, constant, build) in [("python", "PYTHON", &python), ("js", "JS", &js)] {
        let _ = writeln!(code, "    /// The {name} build.");
        let _ = writeln!(
            code,
            "    pub const {constant}: Lang = Lang {{ name: {name:?}, skipped: {:?}, dir: {:?}, build_seconds: &{:?} }};",
            build.skipped,
            build.dir.display().to_string(),
            build.timings,
        );
    }
    code.push_str("}\n");
    code
}
