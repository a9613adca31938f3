//! Builds the test plugins (`tests/plugins/*`) for wasm32-wasip2 and writes their paths into
//! `programs.rs`, as wasmtime's `test-programs-artifacts` does.

use std::fmt::Write as _;

include!("../../host/guest_build.rs");
include!("polyglot_build.rs");

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| panic!("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = Path::new(&manifest)
        .ancestors()
        .nth(2)
        .unwrap_or_else(|| panic!("tests/programs sits two levels below the workspace"))
        .to_path_buf();
    let packages = guest_packages(&workspace.join("tests/plugins"));
    let wasm_dir = build_guests(&workspace, &packages, &["tests/plugins", "guest-sdk", "wit"]);
    let mut code = String::new();
    let _ = writeln!(code, "/// The folder holding every test plugin's component.");
    let _ = writeln!(code, "pub const DIR: &str = {:?};", wasm_dir.display().to_string());
    for package in &packages {
        let path = wasm_dir.join(format!("{package}.wasm"));
        let _ = writeln!(code, "/// The `{package}` test plugin's component.");
        let _ = writeln!(code, "pub const {}: &str = {:?};", package.to_uppercase(), path.display().to_string());
    }
    code.push_str(&build_polyglot(&workspace, &wasm_dir));
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| panic!("cargo sets OUT_DIR"));
    std::fs::write(Path::new(&out).join("programs.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write programs.rs: {e}"));
}
