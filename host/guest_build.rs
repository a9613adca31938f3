// Shared by `host/build.rs` and `tests/programs/build.rs` (through `include!`): builds guest
// crates of this workspace for wasm32-wasip2, as wasmtime's `crates/test-programs` does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages under `dir` (one folder with a Cargo.toml each), sorted.
fn guest_packages(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Build `packages` (release, wasm32-wasip2) into a target folder shared by every build script
/// of this workspace, and return the folder holding the `.wasm` components.
fn build_guests(workspace: &Path, packages: &[String], watch: &[&str]) -> PathBuf {
    for path in watch {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
    // The guests' rustflags (SIMD).
    println!("cargo:rerun-if-changed={}", workspace.join(".cargo/config.toml").display());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| panic!("cargo sets OUT_DIR")));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: share <target>/wasm-guests.
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent())
        .map(|target| target.join("wasm-guests"))
        .unwrap_or_else(|| out_dir.join("wasm-guests"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy's, coverage's) are for the host target.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CLIPPY_ARGS",
    ] {
        command.env_remove(var);
    }
    let output = command.output().unwrap_or_else(|e| panic!("cannot run cargo to build the guest plugins: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2") && (stderr.contains("not installed") || stderr.contains("can't find crate")) {
            "\n\nThe wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`."
        } else {
            ""
        };
        panic!("building the guest plugins for wasm32-wasip2 failed:\n{stderr}{hint}");
    }
    target_dir.join("wasm32-wasip2").join("release")
}
