//! One conformance suite for every language: the Rust, Python and JavaScript builds of
//! `files_in_directory` and `process_file` must be indistinguishable to the host. Same definition,
//! same records (keys, order, values, metadata), same outputs, same error texts (bad config,
//! missing file or directory, duplicate key, paths outside the grants), same limits. Rust's
//! results are asserted exactly; every other language is asserted equal to Rust's.
//!
//! A language whose tools could not be installed is skipped with a message (the build says why);
//! with SANDMAP_REQUIRE_POLYGLOT=1 (CI) the build fails instead, so nothing is skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workspace, run_binary, sha256_hex};
use sandmap::executor::{RunReport, StepReport};
use sandmap::runtime::LogSource;
use sandmap_test_programs::polyglot;
use serde_json::{Value, json};

/// One language's build of the example ops.
struct Lang {
    name: &'static str,
    files_in_directory: String,
    process_file: String,
}

/// Rust (the built-in ops), then every other language that was built.
fn langs() -> Vec<Lang> {
    let mut langs = vec![Lang {
        name: "rust",
        files_in_directory: "files_in_directory".into(),
        process_file: "process_file".into(),
    }];
    for lang in [polyglot::PYTHON, polyglot::JS] {
        match lang.skipped {
            Some(reason) => eprintln!("SKIPPED: the {} ops were not built: {reason}", lang.name),
            None => langs.push(Lang {
                name: lang.name,
                files_in_directory: format!("{}/files_in_directory.wasm", lang.dir),
                process_file: format!("{}/process_file.wasm", lang.dir),
            }),
        }
    }
    langs
}

/// What the host saw of a run: status, each step (key, op, status, error, records with values,
/// info log lines), and the outputs. Durations, the other log lines (stdout, a runtime's own
/// messages) and the run id are left out.
fn observed(report: &RunReport) -> Value {
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| {
            let records: Vec<Value> = s
                .records
                .iter()
                .map(|r| {
                    json!({
                        "output": r.output,
                        "mapping_key": r.mapping_key,
                        "metadata": serde_json::to_value(r).unwrap()["metadata"],
                        "value": r.value.as_ref().map(|v| serde_json::from_str::<Value>(v.as_str()).unwrap()),
                    })
                })
                .collect();
            json!({
                "key": s.key,
                "op": s.op,
                "status": s.status.as_str(),
                "error": s.error,
                "attempts": s.attempts,
                "records": records,
                "info": info_lines(s),
            })
        })
        .collect();
    json!({ "status": format!("{:?}", report.status), "steps": steps, "outputs": report.outputs })
}

/// The step's info-level log lines: what an op says through the SDK's `log` call.
fn info_lines(step: &StepReport) -> Vec<String> {
    step.log.entries.iter().filter(|e| e.source == LogSource::Info).map(|e| e.text.clone()).collect()
}

/// Run `job(lang)` for every language in a fresh copy of the workspace `setup` makes; assert that
/// every language observes what Rust observes, and return Rust's observation.
fn same_everywhere(setup: impl Fn(&Workspace), job: impl Fn(&Lang) -> String) -> Value {
    let mut rust: Option<Value> = None;
    for lang in langs() {
        let ws = Workspace::new();
        setup(&ws);
        let seen = observed(&ws.run(&job(&lang)));
        match &rust {
            None => rust = Some(seen),
            Some(expected) => assert_eq!(&seen, expected, "{} differs from rust", lang.name),
        }
    }
    rust.unwrap()
}

/// files_in_directory over the guest folder `/data` (granted `sample/`) with `config`, mapped to
/// process_file, both in `lang`. `extra` adds lines to files_in_directory's table.
fn map_job(lang: &Lang, config: &str, extra: &str) -> String {
    format!(
        r#"
name = "conformance"
[ops.files_in_directory]
component = "{fid}"
config = {config}
grants = [{{ host = "sample", guest = "/data", access = "read" }}]
{extra}
[ops.process_file]
component = "{pf}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "sample", guest = "/data" }}]
"#,
        fid = lang.files_in_directory,
        pf = lang.process_file,
    )
}

/// files_in_directory alone (in `lang`) over `/data` with `config`.
fn list_job(lang: &Lang, config: &str) -> String {
    format!(
        "name = \"list\"\n[ops.files_in_directory]\ncomponent = \"{}\"\nconfig = {config}\n\
         grants = [{{ host = \"sample\", guest = \"/data\", access = \"read\" }}]\n",
        lang.files_in_directory
    )
}

/// The rust emit_script op emits `paths` (key k0, k1, ...) and process_file in `lang` reads each.
fn process_paths_job(lang: &Lang, paths: &[&str]) -> String {
    let script: Vec<String> =
        paths.iter().enumerate().map(|(i, p)| format!("{{ emit = \"k{i}\", value = {p:?} }}")).collect();
    format!(
        r#"
name = "paths"
[ops.emit]
component = "emit_script"
config = {{ script = [{}] }}
[ops.process_file]
component = "{pf}"
inputs = {{ path = {{ map = "emit" }} }}
grants = [{{ host = "sample", guest = "/data" }}]
"#,
        script.join(", "),
        pf = lang.process_file,
    )
}

const TRICKY: &[(&str, &[u8])] = &[
    ("über.txt", "grüße\n".as_bytes()),
    ("my file.txt", b"a b c\nd\n"),
    ("empty.txt", b""),
    ("no-newline.txt", b"last line has none"),
    ("z.md", b"\n\n\n"),
    ("B.TXT", b"upper\n"),
    (".hidden", b"dot\n"),
    ("\u{1F600}1.txt", b"astral\n"),
    ("\u{FF21}2.txt", b"fullwidth\n"),
];

fn tricky_sample(ws: &Workspace) {
    let dir = ws.files("sample", TRICKY);
    std::fs::create_dir(dir.join("subdir")).unwrap();
    std::fs::write(dir.join("subdir/inner.txt"), b"not listed\n").unwrap();
    std::os::unix::fs::symlink("empty.txt", dir.join("link_to_empty")).unwrap();
    ws.files("outside", &[("secret.txt", b"the secret")]);
    std::os::unix::fs::symlink(ws.path().join("outside/secret.txt"), dir.join("abs_link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", dir.join("rel_link")).unwrap();
    std::os::unix::fs::symlink(ws.path().join("outside"), dir.join("dir_link")).unwrap();
}

#[test]
fn every_language_was_built_or_says_why_not() {
    for lang in [polyglot::PYTHON, polyglot::JS] {
        match lang.skipped {
            Some(reason) => eprintln!("SKIPPED: the {} ops were not built: {reason}", lang.name),
            None => {
                for op in ["files_in_directory", "process_file"] {
                    let path = format!("{}/{op}.wasm", lang.dir);
                    assert!(std::path::Path::new(&path).is_file(), "{path} is missing");
                }
                eprintln!("{} build times (s, 0 = cached): {:?}", lang.name, lang.build_seconds);
            }
        }
    }
}

#[test]
fn definitions_are_identical() {
    let definition = |component: &str| {
        let (code, stdout, stderr) = run_binary(&["inspect", "--json", component]);
        assert_eq!(code, 0, "inspect {component}: {stderr}");
        let value: Value = serde_json::from_str(&stdout).unwrap();
        value["definition"].clone()
    };
    let langs = langs();
    let rust = &langs[0];
    let (rust_fid, rust_pf) = (definition(&rust.files_in_directory), definition(&rust.process_file));
    let properties = &rust_fid["config_schema"]["properties"];
    assert_eq!(properties["path"]["default"], json!("/data"));
    // The defaults list what the op always listed: every regular file directly in `path`.
    assert_eq!(properties["pattern"]["default"], json!(null));
    assert_eq!(properties["pattern"]["type"], json!(["string", "null"]));
    assert_eq!(properties["recursive"]["default"], json!(false));
    assert_eq!(properties["include_hidden"]["default"], json!(true));
    assert_eq!(rust_pf["inputs"], json!([{"name": "path", "description": "the file's guest path", "required": true}]));
    for lang in &langs[1..] {
        assert_eq!(definition(&lang.files_in_directory), rust_fid, "{} files_in_directory", lang.name);
        assert_eq!(definition(&lang.process_file), rust_pf, "{} process_file", lang.name);
    }
}

#[test]
fn records_keys_order_values_and_metadata_are_identical() {
    let seen = same_everywhere(tricky_sample, |lang| map_job(lang, "{ path = \"/data\" }", ""));
    let fid = &seen["steps"][0];
    assert_eq!(fid["status"], "success");
    // Regular files only (not the folder, not symlinks), sorted by UTF-8 bytes.
    let expected_names = [
        ".hidden",
        "B.TXT",
        "empty.txt",
        "my file.txt",
        "no-newline.txt",
        "z.md",
        "über.txt",
        "\u{FF21}2.txt",
        "\u{1F600}1.txt",
    ];
    let mut sorted = expected_names.to_vec();
    sorted.sort();
    assert_eq!(sorted, expected_names);
    let records: Vec<Value> = expected_names
        .iter()
        .map(|name| {
            let key: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            json!({
                "output": "result",
                "mapping_key": key,
                "metadata": {"filename": {"type": "text", "value": name}},
                "value": format!("/data/{name}"),
            })
        })
        .collect();
    assert_eq!(fid["records"], json!(records));
    // By default hidden files are listed, as they always were; what is not listed is said.
    assert_eq!(fid["info"], json!(["skipped 5 entries: 4 symlinks, 1 directory"]));
    let results = seen["outputs"]["process_file"]["result"].as_object().unwrap();
    assert_eq!(results.len(), expected_names.len());
    for (name, content) in TRICKY {
        assert_eq!(results[&common::cleaned_key(name)], common::process_file_result(name, content), "{name}");
    }
}

#[test]
fn a_trailing_slash_and_the_default_path_give_the_same_records() {
    let setup = |ws: &Workspace| {
        ws.files("sample", &[("a.txt", b"a\n"), ("b.txt", b"bb\n")]);
    };
    let slash = same_everywhere(setup, |lang| map_job(lang, "{ path = \"/data/\" }", ""));
    assert_eq!(slash["steps"][0]["records"][0]["value"], "/data/a.txt");
    let default = same_everywhere(setup, |lang| map_job(lang, "{}", ""));
    assert_eq!(default["steps"][0]["records"][1]["value"], "/data/b.txt");
    assert_eq!(default["outputs"]["process_file"]["result"]["b_txt"]["bytes"], 3);
}

/// The Rust op reads a folder's entries from `wasi:filesystem` directly (`sandmap_guest::fs`),
/// and leaves a path with `.` or doubled slashes to `std::fs`: both give the same records, types
/// included (a symlink stays a symlink, a folder a folder), as the other languages do.
#[test]
fn a_folder_below_the_grant_lists_alike_however_its_path_is_written() {
    let setup = |ws: &Workspace| {
        let dir = ws.files("sample", &[("top.txt", b"t\n")]);
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        std::fs::write(dir.join("sub/a.txt"), b"a\n").unwrap();
        std::fs::write(dir.join("sub/.hidden"), b"h\n").unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("sub/link_to_a")).unwrap();
        std::os::unix::fs::symlink("deeper", dir.join("sub/link_to_deeper")).unwrap();
    };
    let mut seen = Vec::new();
    for path in ["/data/sub", "/data/./sub", "/data//sub", "/data/sub/../sub"] {
        let listed = same_everywhere(setup, |lang| list_job(lang, &format!("{{ path = {path:?} }}")));
        let records = listed["steps"][0]["records"].clone();
        let info = listed["steps"][0]["info"].clone();
        seen.push((path, records, info));
    }
    let (_, records, info) = &seen[0];
    let values: Vec<&str> = records.as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["/data/sub/.hidden", "/data/sub/a.txt"]);
    assert_eq!(info, &json!(["skipped 3 entries: 2 symlinks, 1 directory"]));
    // A grant named with a trailing slash (or two grants of one folder, spelled apart) is
    // matched by wasi-libc as written: the direct read steps aside, and every language agrees.
    for (grants, path) in [
        (r#"[{ host = "sample", guest = "/data/", access = "read" }]"#, "/data"),
        (r#"[{ host = "sample", guest = "/data/", access = "read" }]"#, "/data/sub"),
        (
            r#"[{ host = "sample/sub", guest = "/data", access = "read" }, { host = "sample", guest = "/data/", access = "read" }]"#,
            "/data",
        ),
    ] {
        same_everywhere(setup, |lang| {
            let job = list_job(lang, &format!("{{ path = {path:?} }}"));
            let usual = r#"grants = [{ host = "sample", guest = "/data", access = "read" }]"#;
            assert!(job.contains(usual), "{job}");
            job.replace(usual, &format!("grants = {grants}"))
        });
    }
    for (path, other_records, other_info) in &seen[1..] {
        let keys =
            |r: &Value| -> Vec<Value> { r.as_array().unwrap().iter().map(|x| x["mapping_key"].clone()).collect() };
        assert_eq!(keys(other_records), keys(records), "{path}");
        assert_eq!(other_info, info, "{path}");
    }
}

#[test]
fn a_large_file_hashes_identically() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let seen = same_everywhere(
        |ws| {
            ws.files("sample", &[("big.bin", &data)]);
        },
        |lang| map_job(lang, "{}", ""),
    );
    assert_eq!(seen["outputs"]["process_file"]["result"]["big_bin"]["sha256"], json!(sha256_hex(&data)));
}

#[test]
fn the_host_digest_and_the_in_guest_digest_agree_in_every_language() {
    // Sizes around SHA-256's 64-byte blocks and its 55/56-byte padding edge, a file crossing the
    // host's 1 MiB hashing slices and the ops' 256 KiB read chunks, and an empty one.
    let sizes = [0usize, 1, 55, 56, 63, 64, 65, 1000, (1 << 20) + 1, (1 << 18) * 3 + 7];
    let files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .map(|&n| {
            (format!("s{n:08}.bin"), (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect())
        })
        .collect();
    let setup = |ws: &Workspace| {
        let named: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        ws.files("sample", &named);
    };
    let mut seen = Vec::new();
    for host_digest in [true, false] {
        seen.push(same_everywhere(setup, |lang| {
            map_job(lang, "{}", "").replace(
                "[ops.process_file]\n",
                &format!("[ops.process_file]\nconfig = {{ host_digest = {host_digest} }}\n"),
            )
        }));
    }
    assert_eq!(seen[0], seen[1], "the host's digests are the guest's, in every language");
    let results = &seen[0]["outputs"]["process_file"]["result"];
    for (name, data) in &files {
        assert_eq!(results[common::cleaned_key(name)]["sha256"], json!(sha256_hex(data)), "{name}");
    }
}

#[test]
fn bad_config_is_refused_with_the_same_error() {
    for config in [
        "{ path = 5 }",
        "{ nope = \"x\" }",
        "{ path = [\"/data\"] }",
        "{ pattern = 5 }",
        "{ recursive = \"yes\" }",
        "{ include_hidden = 1 }",
    ] {
        let mut errors = Vec::new();
        for lang in langs() {
            let ws = Workspace::new();
            ws.files("sample", &[]);
            let error = ws.invalid(&map_job(&lang, config, ""));
            errors.push((lang.name, error.replace(&ws.path().display().to_string(), "WS")));
        }
        assert!(errors[0].1.starts_with("WS/job.toml:5:10: op \"files_in_directory\": config: "), "{}", errors[0].1);
        for (name, error) in &errors[1..] {
            assert_eq!(error, &errors[0].1, "{name}, config {config}");
        }
    }
}

fn fid_error(seen: &Value) -> &Value {
    &seen["steps"][0]["error"]
}

#[test]
fn a_missing_or_wrong_directory_fails_with_the_same_error() {
    let setup = |ws: &Workspace| tricky_sample(ws);
    let cases = [
        ("/data/missing", "list /data/missing: No such file or directory (os error 44)"),
        ("/data/empty.txt", "list /data/empty.txt: Not a directory (os error 54)"),
        ("/data/link_to_empty", "list /data/link_to_empty: Not a directory (os error 54)"),
    ];
    for (path, error) in cases {
        let seen = same_everywhere(setup, |lang| map_job(lang, &format!("{{ path = {path:?} }}"), ""));
        assert_eq!(fid_error(&seen), &json!(error), "{path}");
        assert_eq!(seen["status"], "Failure");
    }
}

#[test]
fn listing_outside_the_grants_fails_with_the_same_error() {
    for path in
        ["/", "/etc", "/outside", "/data/..", "/data/../outside", "../outside", "/data/dir_link", "/data/dir_link/"]
    {
        let seen = same_everywhere(tricky_sample, |lang| list_job(lang, &format!("{{ path = {path:?} }}")));
        let error = fid_error(&seen).as_str().unwrap_or_else(|| panic!("{path} was listed: {seen}"));
        assert!(error.starts_with(&format!("list {path}: ")), "{error}");
        assert!(error.ends_with(')'), "an os error: {error}");
    }
}

#[test]
fn reading_missing_and_outside_files_fails_with_the_same_error() {
    let paths = [
        "/data/missing.txt",
        "/data/subdir",
        "/data/subdir/inner.txt",
        "/data/abs_link",
        "/data/rel_link",
        "/data/dir_link/secret.txt",
        "/data/dir_link/",
        "/data/empty.txt/",
        "/data/../outside/secret.txt",
        "../outside/secret.txt",
        "/outside/secret.txt",
        "/etc/passwd",
        "/",
        "data/empty.txt",
        "./data/empty.txt",
        "//data//empty.txt",
    ];
    let seen = same_everywhere(tricky_sample, |lang| process_paths_job(lang, &paths));
    let results = &seen["steps"];
    let by_path: Vec<(String, Value)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let step = results.as_array().unwrap().iter().find(|s| s["key"] == format!("process_file[k{i}]")).unwrap();
            (p.to_string(), step["error"].clone())
        })
        .collect();
    let expect = |path: &str, error: Option<&str>| {
        let (_, got) = by_path.iter().find(|(p, _)| p == path).unwrap();
        assert_eq!(got, &json!(error.map(|e| format!("read {path}: {e}"))), "{path}");
    };
    expect("/data/missing.txt", Some("No such file or directory (os error 44)"));
    expect("/data/subdir/inner.txt", None);
    expect("data/empty.txt", None);
    expect("./data/empty.txt", None);
    expect("//data//empty.txt", None);
    expect("/data/../outside/secret.txt", Some("Operation not permitted (os error 63)"));
    expect("/etc/passwd", Some("No such file or directory (os error 44)"));
    for (path, error) in &by_path {
        if path.contains("outside") || path.contains("link") || path == "/" || path == "/etc/passwd" {
            assert!(error.is_string(), "{path} was read");
        }
    }
    // The secret never appears in any output.
    assert!(!seen["outputs"].to_string().contains(&sha256_hex(b"the secret")));
}

#[test]
fn a_duplicate_mapping_key_fails_with_the_same_error() {
    let seen = same_everywhere(
        |ws| {
            ws.files("sample", &[("a-b.txt", b"1"), ("a.b.txt", b"2"), ("c.txt", b"3")]);
        },
        |lang| list_job(lang, "{}"),
    );
    let error = fid_error(&seen).as_str().unwrap();
    assert_eq!(
        error,
        "op \"files_in_directory\" emitted a DynamicOutput with mapping_key \"a_b_txt\" on output \"result\" multiple times"
    );
    assert_eq!(seen["steps"][0]["records"].as_array().unwrap().len(), 1, "the first record was kept");
}

#[test]
fn an_invalid_mapping_key_fails_with_the_same_error() {
    // A file named like one of Dagster's reserved names cleans to an invalid key.
    let seen = same_everywhere(
        |ws| {
            ws.files("sample", &[("a.txt", b"1"), ("input", b"2")]);
        },
        |lang| list_job(lang, "{}"),
    );
    assert_eq!(
        fid_error(&seen),
        "op \"files_in_directory\": \"input\" is not a valid mapping key. It conflicts with a Dagster or Python reserved keyword"
    );
    assert_eq!(seen["steps"][0]["records"].as_array().unwrap().len(), 1, "the record before it was kept");
}

#[test]
fn limits_stop_every_language_with_the_same_error() {
    let setup = |ws: &Workspace| {
        ws.files("sample", &[("a.txt", b"a\n")]);
    };
    let seen = same_everywhere(setup, |lang| map_job(lang, "{}", "limits = { memory = \"1 MiB\" }"));
    assert_eq!(fid_error(&seen), &json!("exceeded memory limit 1 MiB"));
    let seen = same_everywhere(setup, |lang| map_job(lang, "{}", "limits = { max_emits = 0 }"));
    let error = fid_error(&seen).as_str().unwrap();
    assert!(error.contains("max_emits"), "{error}");
}

#[test]
fn a_time_limit_stops_every_language_with_the_same_error() {
    // 64 MiB to hash: ~0.2 s for the Rust build, far longer for the others; 20 ms stops each.
    let seen = same_everywhere(
        |ws| {
            ws.files("sample", &[("big.bin", &vec![7u8; 64 << 20])]);
        },
        |lang| {
            map_job(lang, "{}", "").replace(
                "inputs = { path = { map = \"files_in_directory\" } }",
                "inputs = { path = { map = \"files_in_directory\" } }\nlimits = { timeout = \"20 ms\" }",
            )
        },
    );
    assert_eq!(seen["steps"][1]["key"], "process_file[big_bin]");
    assert_eq!(seen["steps"][1]["error"], "exceeded time limit 20 ms");
}

// ---- files_in_directory's options: pattern, recursive, include_hidden ----

/// files_in_directory alone (in `lang`) once per pattern, as the ops `p0`, `p1`, ... of one job.
fn patterns_job(lang: &Lang, patterns: &[&str]) -> String {
    let mut job = String::from("name = \"patterns\"\n");
    for (i, pattern) in patterns.iter().enumerate() {
        // A Rust string literal of these patterns is also a TOML basic string.
        job.push_str(&format!(
            "[ops.p{i}]\ncomponent = \"{}\"\nconfig = {{ pattern = {pattern:?} }}\n\
             grants = [{{ host = \"sample\", guest = \"/data\", access = \"read\" }}]\n",
            lang.files_in_directory
        ));
    }
    job
}

fn step<'a>(seen: &'a Value, key: &str) -> &'a Value {
    seen["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key}"))
}

fn record_keys(step: &Value) -> Vec<&str> {
    step["records"].as_array().unwrap().iter().map(|r| r["mapping_key"].as_str().unwrap()).collect()
}

#[test]
fn a_pattern_matches_the_same_names_in_every_language() {
    let names = ["a.txt", "b.txt", "ab.txt", "ü.txt", "[x].txt", "a,b", "-y", "]x", "c.TXT", ".a.txt", "x{y}"];
    let setup = |ws: &Workspace| {
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, n.as_bytes())).collect();
        ws.files("sample", &files);
    };
    // (pattern, the keys it lists): globset's semantics, on the UTF-8 bytes of the name.
    let cases: &[(&str, &[&str])] = &[
        ("?.txt", &["a_txt", "b_txt"]),             // one byte: not "ü" (two bytes)
        ("??.txt", &["_a_txt", "ab_txt", "__txt"]), // "ü" is two bytes; `?` matches a leading "."
        ("[ab].txt", &["a_txt", "b_txt"]),
        ("[!a].txt", &["b_txt"]), // one byte, so not "ü"
        ("[^a].txt", &["b_txt"]),
        ("{a,ab,ü}.txt", &["a_txt", "ab_txt", "__txt"]),
        ("\\[x\\].txt", &["_x__txt"]), // escaped
        ("[[]x].txt", &["_x__txt"]),   // `[` inside a class is literal
        ("*.TXT", &["c_TXT"]),         // case-sensitive
        ("a,b", &["a_b"]),             // a comma outside `{}` is literal
        ("[]-]?", &["_y", "_x"]),      // `]` first and `-` last are literal
        ("x{y}", &[]),                 // a group of one: only "xy"
        ("x\\{y\\}", &["x_y_"]),
        (".*", &["_a_txt"]),
        ("*.*", &["_a_txt", "_x__txt", "a_txt", "ab_txt", "b_txt", "c_TXT", "__txt"]),
        ("**", &["_y", "_a_txt", "_x__txt", "_x", "a_b", "a_txt", "ab_txt", "b_txt", "c_TXT", "x_y_", "__txt"]),
    ];
    let patterns: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let seen = same_everywhere(setup, |lang| patterns_job(lang, &patterns));
    assert_eq!(seen["status"], "Success");
    for (i, (pattern, keys)) in cases.iter().enumerate() {
        let step = step(&seen, &format!("p{i}"));
        assert_eq!(record_keys(step), *keys, "{pattern}");
        let skipped = names.len() - keys.len();
        let info = if skipped == 0 {
            json!([])
        } else {
            let entries = if skipped == 1 { "entry" } else { "entries" };
            json!([format!("skipped {skipped} {entries}: {skipped} not matching \"{pattern}\"")])
        };
        assert_eq!(step["info"], info, "{pattern}");
    }
}

#[test]
fn an_invalid_pattern_fails_with_the_same_error() {
    let long = "a".repeat(1025);
    let cases: &[(&str, &str)] = &[
        ("", "it is empty"),
        (&long, "it is longer than 1024 bytes"),
        ("sub/*.txt", "it is matched against a file name, which never contains \"/\""),
        ("[a", "a \"[\" is never closed with \"]\""),
        ("[!]", "a \"[\" is never closed with \"]\""),
        ("[z-a]", "a \"[...]\" range ends before it starts"),
        ("[a-c-e]", "a \"[...]\" range is followed by \"-\" (put a literal \"-\" last)"),
        ("[ü]", "a \"[...]\" class may hold only ASCII characters"),
        ("[\\]]", "a \"[...]\" class cannot hold \"\\\""),
        ("[[:digit:]]", "POSIX classes such as \"[:alpha:]\" are not supported"),
        ("{a,{b,c}}", "\"{...}\" groups cannot be nested"),
        ("{a,}", "a \"{...}\" group has an empty alternative"),
        ("{}", "a \"{...}\" group has an empty alternative"),
        ("a}", "\"}\" has no \"{\" before it"),
        ("{a,b", "a \"{\" is never closed with \"}\""),
        ("a\\", "it ends with a lone \"\\\""),
    ];
    let patterns: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let seen = same_everywhere(
        |ws| {
            ws.files("sample", &[("a.txt", b"a")]);
        },
        |lang| patterns_job(lang, &patterns),
    );
    assert_eq!(seen["status"], "Failure");
    for (i, (pattern, reason)) in cases.iter().enumerate() {
        let step = step(&seen, &format!("p{i}"));
        assert_eq!(step["status"], "failure", "{pattern}");
        assert_eq!(step["error"], json!(format!("invalid pattern \"{pattern}\": {reason}")), "{pattern}");
        assert_eq!(step["records"], json!([]), "{pattern}");
    }
}

/// Nested folders, names that clean, a symlinked folder and file, hidden entries, a socket.
fn nested_sample(ws: &Workspace) {
    let dir = ws.files("sample", &[("a.txt", b"a\n"), ("sub.txt", b"s\n"), (".env", b"x\n"), ("notes.md", b"n\n")]);
    for (path, content) in [
        ("sub/b.txt", "b\n"),
        ("sub/deeper/c.txt", "c\n"),
        ("sub/deeper/d.md", "d\n"),
        ("sub/.cache/e.txt", "e\n"),
        ("my dir/d-e.txt", "de\n"),
        ("sub-x/a.txt", "x\n"),
        (".git/config", "g\n"),
    ] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::os::unix::fs::symlink("sub", dir.join("link_dir")).unwrap();
    std::os::unix::fs::symlink("../a.txt", dir.join("sub/link.txt")).unwrap();
    // A socket file stays behind its listener: neither a file, a folder nor a symlink.
    drop(std::os::unix::net::UnixListener::bind(dir.join("sub/sock")).unwrap());
}

#[test]
fn recursive_lists_every_folder_keyed_by_the_cleaned_relative_path() {
    let seen = same_everywhere(nested_sample, |lang| map_job(lang, "{ recursive = true }", ""));
    assert_eq!(seen["status"], "Success");
    let fid = step(&seen, "files_in_directory");
    // Sorted by the UTF-8 bytes of the relative path ("-" < "." < "/"); hidden entries are listed
    // by default; neither symlink is followed.
    let relative = [
        ".env",
        ".git/config",
        "a.txt",
        "my dir/d-e.txt",
        "notes.md",
        "sub-x/a.txt",
        "sub.txt",
        "sub/.cache/e.txt",
        "sub/b.txt",
        "sub/deeper/c.txt",
        "sub/deeper/d.md",
    ];
    let records: Vec<Value> = relative
        .iter()
        .map(|rel| {
            json!({
                "output": "result",
                "mapping_key": common::cleaned_key(rel),
                "metadata": {"filename": {"type": "text", "value": rel.rsplit('/').next().unwrap()}},
                "value": format!("/data/{rel}"),
            })
        })
        .collect();
    assert_eq!(fid["records"], json!(records));
    assert_eq!(record_keys(fid)[3], "my_dir_d_e_txt");
    assert_eq!(fid["info"], json!(["skipped 3 entries: 2 symlinks, 1 special file"]));
    // Each value is a path process_file reads.
    let results = &seen["outputs"]["process_file"]["result"];
    assert_eq!(results.as_object().unwrap().len(), relative.len());
    assert_eq!(results["sub_deeper_c_txt"], common::process_file_result("sub/deeper/c.txt", b"c\n"));
}

#[test]
fn recursive_with_a_pattern_and_without_hidden_entries() {
    let config = "{ recursive = true, include_hidden = false, pattern = \"*.txt\" }";
    let seen = same_everywhere(nested_sample, |lang| list_job(lang, config));
    let fid = step(&seen, "files_in_directory");
    assert_eq!(fid["status"], "success");
    // `.git` and `sub/.cache` are not descended into; the pattern is matched on names only.
    assert_eq!(
        record_keys(fid),
        ["a_txt", "my_dir_d_e_txt", "sub_x_a_txt", "sub_txt", "sub_b_txt", "sub_deeper_c_txt"]
    );
    assert_eq!(
        fid["info"],
        json!(["skipped 8 entries: 3 hidden, 2 symlinks, 1 special file, 2 not matching \"*.txt\""])
    );
}

#[test]
fn without_recursive_folders_are_skipped_and_said_so() {
    let seen = same_everywhere(nested_sample, |lang| list_job(lang, "{}"));
    let fid = step(&seen, "files_in_directory");
    assert_eq!(record_keys(fid), ["_env", "a_txt", "notes_md", "sub_txt"]);
    assert_eq!(fid["info"], json!(["skipped 6 entries: 1 symlink, 5 directories"]));
}

#[test]
fn include_hidden_false_skips_hidden_files() {
    let seen = same_everywhere(tricky_sample, |lang| list_job(lang, "{ include_hidden = false }"));
    let fid = step(&seen, "files_in_directory");
    let keys = record_keys(fid);
    assert_eq!(keys.len(), TRICKY.len() - 1);
    assert!(!keys.contains(&"_hidden"), "{keys:?}");
    assert_eq!(keys[0], "B_TXT");
    assert_eq!(fid["info"], json!(["skipped 6 entries: 1 hidden, 4 symlinks, 1 directory"]));
}

#[test]
fn relative_paths_that_clean_to_one_key_fail_with_the_duplicate_key_error() {
    let seen = same_everywhere(
        |ws| {
            let dir = ws.files("sample", &[("sub_a.txt", b"1")]);
            std::fs::create_dir(dir.join("sub")).unwrap();
            std::fs::write(dir.join("sub/a.txt"), b"2").unwrap();
        },
        |lang| list_job(lang, "{ recursive = true }"),
    );
    assert_eq!(
        fid_error(&seen),
        "op \"files_in_directory\" emitted a DynamicOutput with mapping_key \"sub_a_txt\" on output \"result\" multiple times"
    );
    // "sub/a.txt" sorts first ("/" < "_") and was kept.
    let records = seen["steps"][0]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["value"], "/data/sub/a.txt");
}

/// The seed job with its three ops from any mix of languages.
fn seed_job(fid: &str, pf: &str) -> String {
    format!(
        r#"
name = "process_directory"
[ops.files_in_directory]
component = "{fid}"
config = {{ path = "/data" }}
grants = [{{ host = "sample", guest = "/data", access = "read" }}]
[ops.process_file]
component = "{pf}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "sample", guest = "/data" }}]
[ops.summarize_directory]
component = "summarize_directory"
inputs = {{ results = {{ collect = "process_file" }} }}
"#
    )
}

#[test]
fn the_seed_job_runs_with_any_mix_of_languages() {
    let contents: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("f{i:02}-{}.txt", i % 3), "line\n".repeat(i % 7).into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
    let bytes: usize = contents.iter().map(|(_, c)| c.len()).sum();
    let lines: usize = (0..40).map(|i| i % 7).sum();
    let expected = json!({"files": 40, "bytes": bytes, "lines": lines});
    let langs = langs();
    let mut all_rust: Option<Value> = None;
    for fid in &langs {
        for pf in &langs {
            let ws = Workspace::new();
            ws.files("sample", &files);
            let report = ws.run(&seed_job(&fid.files_in_directory, &pf.process_file));
            let seen = observed(&report);
            assert_eq!(
                report.output("summarize_directory", "result"),
                Some(&expected),
                "files_in_directory in {}, process_file in {}",
                fid.name,
                pf.name
            );
            match &all_rust {
                None => all_rust = Some(seen),
                Some(rust) => {
                    assert_eq!(&seen, rust, "files_in_directory in {}, process_file in {}", fid.name, pf.name)
                }
            }
        }
    }
}

#[test]
fn python_files_js_process_rust_summarize_through_the_binary() {
    let (Some(py), Some(js)) =
        (langs().into_iter().find(|l| l.name == "python"), langs().into_iter().find(|l| l.name == "js"))
    else {
        eprintln!("SKIPPED: needs both the Python and the JavaScript build");
        return;
    };
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"hello\nworld\n"), ("b.txt", b"x")]);
    let job = ws.job(&seed_job(&py.files_in_directory, &js.process_file));
    let (code, report) = common::run_json(&job);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outputs"]["summarize_directory"]["result"], json!({"files": 2, "bytes": 13, "lines": 2}));
}
