//! Builds the example ops (`plugins/*`) for wasm32-wasip2 and embeds them in the binary, so
//! that `sandmap run examples/process_directory.toml` works with no install step.

use std::fmt::Write as _;

include!("guest_build.rs");

fn main() {
    // The binary's ~64,000 relative relocations in packed form (DT_RELR), which the loader applies
    // several at a time: with the plain RELA form their processing was a tenth of a warm 1-file
    // run's CPU (perf). GNU ld 2.38 and glibc 2.36 read it; only the `sandmap` binary is linked
    // so, which changes nothing that tests or other crates build.
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| panic!("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = Path::new(&manifest).parent().unwrap_or_else(|| panic!("host/ has a parent"));
    let packages = guest_packages(&workspace.join("plugins"));
    let wasm_dir = build_guests(workspace, &packages, &["plugins", "guest-sdk", "wit"]);
    let mut code =
        String::from("/// The built-in ops: (name, component bytes).\npub const PLUGINS: &[(&str, &[u8])] = &[\n");
    for package in &packages {
        let path = wasm_dir.join(format!("{package}.wasm"));
        let _ = writeln!(code, "    ({package:?}, include_bytes!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| panic!("cargo sets OUT_DIR"));
    std::fs::write(Path::new(&out).join("builtin_plugins.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write builtin_plugins.rs: {e}"));
}
