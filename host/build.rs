//! Builds the example ops (`plugins/*`) for wasm32-wasip2 and embeds them in the binary, so
//! that `sandmap run examples/process_directory.toml` works with no install step.

use std::fmt::Write as _;

include!("guest_build.rs");

fn main() {
    // The binary's ~64,000 relative relocations in packed form (DT_RELR), which the loader applies
    // several at a time: with the plain RELA form their processing was ~7% of a warm 1-file run's
    // CPU (perf). It needs GNU ld 2.38 and, to run, glibc 2.36 (Debian 12, Ubuntu 24.04): an
    // older loader refuses the binary at once, naming GLIBC_ABI_DT_RELR. Set
    // SANDMAP_PLAIN_RELOCATIONS=1 to build for one. Only the `sandmap` binary is linked so.
    println!("cargo:rerun-if-env-changed=SANDMAP_PLAIN_RELOCATIONS");
    let plain = std::env::var_os("SANDMAP_PLAIN_RELOCATIONS").is_some_and(|v| !v.is_empty() && v != "0");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") && !plain {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| panic!("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = Path::new(&manifest).parent().unwrap_or_else(|| panic!("host/ has a parent"));
    let packages = guest_packages(&workspace.join("plugins"));
    let wasm_dir = build_guests(workspace, &packages, &["plugins", "guest-sdk", "wit"]);
    // Each op's SHA-256 is computed here, once, rather than over its bytes at every start (half
    // a millisecond of a warm 1-file run, perf); a unit test checks it against the bytes.
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| panic!("cargo sets OUT_DIR"));
    let mut code = String::from("/// The built-in ops.\npub const PLUGINS: &[Builtin] = &[\n");
    for package in &packages {
        let built = wasm_dir.join(format!("{package}.wasm"));
        let bytes = std::fs::read(&built).unwrap_or_else(|e| panic!("cannot read {}: {e}", built.display()));
        // Embedded from a copy of its own: the guests' folder is shared by every build of the
        // workspace, and a later one may rewrite it before this crate is compiled, which would
        // embed other bytes than those digested here.
        let path = Path::new(&out).join(format!("{package}.wasm"));
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let digest: String = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(
            code,
            "    Builtin {{ name: {package:?}, bytes: include_bytes!({:?}), digest: {digest:?} }},",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(Path::new(&out).join("builtin_plugins.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write builtin_plugins.rs: {e}"));
}
