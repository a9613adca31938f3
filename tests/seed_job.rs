//! The seed job (Dagster's canonical files_in_directory → map(process_file) → collect →
//! summarize_directory) on generated directories, with exact totals and per-file results.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{MAP_ONLY_JOB, SEED_JOB, Workspace, keys_of};
use sandmap::executor::{RunStatus, StepStatus};
use serde_json::json;

#[test]
fn zero_files_resolve_to_zero_keys_and_the_collect_runs_with_an_empty_list() {
    let ws = Workspace::new();
    ws.files("sample", &[]);
    let report = ws.run(SEED_JOB);
    assert_eq!(report.status, RunStatus::Success);
    assert!(keys_of(&report, "process_file").is_empty());
    assert_eq!(report.step("files_in_directory").unwrap().records.len(), 0);
    assert_eq!(report.output("summarize_directory", "result"), Some(&json!({"files": 0, "bytes": 0, "lines": 0})));
}

#[test]
fn one_file() {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"hello\nworld\n")]);
    let report = ws.run(SEED_JOB);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(keys_of(&report, "process_file"), ["process_file[a_txt]"]);
    assert_eq!(report.output("summarize_directory", "result"), Some(&json!({"files": 1, "bytes": 12, "lines": 2})));
}

#[test]
fn two_hundred_files_each_in_its_own_clone() {
    let ws = Workspace::new();
    let contents: Vec<(String, Vec<u8>)> =
        (0..200).map(|i| (format!("f{i:03}.txt"), "line\n".repeat(i % 7).into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
    ws.files("sample", &files);
    let report = ws.run(SEED_JOB);
    assert_eq!(report.status, RunStatus::Success);
    let keys = keys_of(&report, "process_file");
    assert_eq!(keys.len(), 200);
    let expected: Vec<String> = (0..200).map(|i| format!("process_file[f{i:03}_txt]")).collect();
    assert_eq!(keys, expected, "clones come into being in emission (sorted file name) order");
    let bytes: usize = contents.iter().map(|(_, c)| c.len()).sum();
    let lines: usize = (0..200).map(|i| i % 7).sum();
    assert_eq!(
        report.output("summarize_directory", "result"),
        Some(&json!({"files": 200, "bytes": bytes, "lines": lines}))
    );
    assert!(report.steps.iter().all(|s| s.status == StepStatus::Success && s.attempts == 1));
}

#[test]
fn per_file_results_are_exact_and_in_emission_order() {
    let ws = Workspace::new();
    let files: &[(&str, &[u8])] = &[
        ("über.txt", "grüße\n".as_bytes()),
        ("my file.txt", b"a b c\nd\n"),
        ("empty.txt", b""),
        ("no-newline.txt", b"last line has none"),
        ("z.md", b"\n\n\n"),
    ];
    ws.files("sample", files);
    let report = ws.run(MAP_ONLY_JOB);
    assert_eq!(report.status, RunStatus::Success);
    let results = report.output("process_file", "result").unwrap().as_object().unwrap();
    // Sorted by file name (bytes): "empty.txt" < "my file.txt" < "no-newline.txt" < "z.md" < "über.txt".
    let keys: Vec<&str> = results.keys().map(String::as_str).collect();
    assert_eq!(keys, ["empty_txt", "my_file_txt", "no_newline_txt", "z_md", "_ber_txt"]);
    for (name, content) in files {
        assert_eq!(results[&common::cleaned_key(name)], common::process_file_result(name, content), "{name}");
    }
    assert_eq!(results["empty_txt"]["sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/// The example op's key rule, restated: every character outside [A-Za-z0-9_] becomes `_`.
#[test]
fn names_that_clean_to_one_key_fail_the_fan_out_with_a_duplicate_key_error() {
    let ws = Workspace::new();
    ws.files("sample", &[("a-b.txt", b"1\n"), ("a_b.txt", b"2\n"), ("c.txt", b"3\n")]);
    let report = ws.run(SEED_JOB);
    assert_eq!(report.status, RunStatus::Failure);
    let fan_out = report.step("files_in_directory").unwrap();
    assert_eq!(fan_out.status, StepStatus::Failure);
    assert_eq!(
        fan_out.error.as_deref(),
        Some(
            "op \"files_in_directory\" emitted a DynamicOutput with mapping_key \"a_b_txt\" on output \"result\" multiple times"
        )
    );
    // The record emitted before the failure stays recorded (Dagster case 9).
    let recorded: Vec<&str> = fan_out.records.iter().map(|r| r.mapping_key.as_str()).collect();
    assert_eq!(recorded, ["a_b_txt"]);
    // No clone for the rejected or later records; the collect never runs.
    assert!(report.step("process_file[c_txt]").is_none());
    let summary = report.step("summarize_directory").unwrap();
    assert_eq!(summary.status, StepStatus::Abandoned);
    assert_eq!(summary.attempts, 0);
    assert_eq!(
        report.error.as_deref(),
        Some("Execution of run for \"process_directory\" failed. Steps failed: ['files_in_directory'].")
    );
}

#[test]
fn records_carry_their_metadata() {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"x")]);
    let report = ws.run(SEED_JOB);
    let record = &report.step("files_in_directory").unwrap().records[0];
    assert_eq!(record.mapping_key, "a_txt");
    assert_eq!(record.metadata, vec![("filename".to_owned(), sandmap::value::MetadataValue::Text("a.txt".into()))]);
}

#[test]
fn the_fan_out_lists_only_regular_files_directly_in_its_folder() {
    let ws = Workspace::new();
    let sample = ws.files("sample", &[("a.txt", b"1\n")]);
    std::fs::create_dir(sample.join("subdir")).unwrap();
    std::fs::write(sample.join("subdir/deep.txt"), b"2\n").unwrap();
    std::os::unix::fs::symlink(sample.join("a.txt"), sample.join("link.txt")).unwrap();
    let report = ws.run(SEED_JOB);
    assert_eq!(keys_of(&report, "process_file"), ["process_file[a_txt]"]);
    assert_eq!(report.output("summarize_directory", "result"), Some(&json!({"files": 1, "bytes": 2, "lines": 1})));
}

#[test]
fn a_file_larger_than_the_memory_limit_is_processed_in_chunks() {
    // 48 MiB of data under a 16 MiB memory limit: process_file must not hold the file.
    let ws = Workspace::new();
    let content: Vec<u8> = (0..48u32 << 20).map(|i| if i % 1000 == 999 { b'\n' } else { (i % 251) as u8 }).collect();
    ws.files("sample", &[("big.bin", &content)]);
    let text = MAP_ONLY_JOB
        .replace("component = \"process_file\"\n", "component = \"process_file\"\nlimits = { memory = \"16 MiB\" }\n");
    let job = ws.job(&text);
    let (code, report) = common::run_json(&job);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["outputs"]["process_file"]["result"]["big_bin"],
        common::process_file_result("big.bin", &content)
    );
}

#[test]
fn a_collect_of_many_results_fits_an_op_memory_little_larger_than_its_text() {
    // 20,000 results (~2 MB of JSON) into summarize_directory limited to 8 MiB: the Rust SDK
    // reads the collected list straight into the op's own type. Parsed into a JSON tree first
    // (as it was), the same list took ~14 MB of the op's memory and the step failed at the limit.
    const FILES: usize = 20_000;
    let ws = Workspace::new();
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i:05}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x\n"[..])).collect();
    ws.files("sample", &files);
    let text = SEED_JOB.replace(
        "component = \"summarize_directory\"\n",
        "component = \"summarize_directory\"\nlimits = { memory = \"8 MiB\" }\n",
    );
    let (code, report) = common::run_json(&ws.job(&text));
    assert_eq!(code, 0, "{}", report["error"]);
    assert_eq!(
        report["outputs"]["summarize_directory"]["result"],
        json!({"files": FILES, "bytes": 2 * FILES, "lines": FILES})
    );
}

#[test]
fn an_input_of_the_wrong_shape_fails_its_clone_naming_the_input() {
    // The Rust SDK reads each input's JSON text into the op's type when the op asks for it: a
    // record that is a number where process_file reads a path fails that clone, saying so and
    // where in the input's text (in a collected list of megabytes, the place is what helps).
    let ws = Workspace::new();
    let job = ws.job(
        "name = \"shape\"\n[ops.emit]\ncomponent = \"emit_range\"\nconfig = { n = 2 }\n\
         [ops.process_file]\ncomponent = \"process_file\"\ninputs = { path = { map = \"emit\" } }\n",
    );
    let (code, report) = common::run_json(&job);
    assert_eq!(code, 1, "{report}");
    let steps = report["steps"].as_array().unwrap();
    for (key, number) in [("process_file[k0]", 0), ("process_file[k1]", 1)] {
        let step = steps.iter().find(|s| s["key"] == key).unwrap();
        assert_eq!(step["status"], "failure");
        assert_eq!(
            step["error"],
            format!(
                "input \"path\" has an unexpected shape: invalid type: integer `{number}`, expected a string \
                 at line 1 column 1"
            )
        );
    }
}

#[test]
fn lines_are_counted_exactly_at_every_vector_block_and_chunk_edge() {
    // The guests count newlines sixteen bytes at a time in wasm SIMD, widening every 255
    // vectors (4,080 bytes), and process_file reads 256 KiB chunks: lengths on each side of
    // those edges, all newlines (the lane counters' worst case) and mixed bytes, in real clones.
    const VECTOR: usize = 16;
    const BLOCK: usize = 255 * VECTOR;
    const CHUNK: usize = 256 << 10;
    let lengths = [
        0,
        1,
        VECTOR - 1,
        VECTOR,
        VECTOR + 1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        3 * BLOCK + 7,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK + BLOCK,
    ];
    let mut contents: Vec<(String, Vec<u8>)> = Vec::new();
    for len in lengths {
        contents.push((format!("newlines_{len}"), vec![b'\n'; len]));
        // Every byte value, the newline's neighbours included, with newlines at uneven gaps.
        let mixed = (0..len).map(|i| if i % 7 == 3 || i % 13 == 0 { b'\n' } else { (i * 31 % 256) as u8 }).collect();
        contents.push((format!("mixed_{len}"), mixed));
    }
    let files: Vec<(&str, &[u8])> = contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
    let ws = Workspace::new();
    ws.files("sample", &files);
    let report = ws.run(MAP_ONLY_JOB);
    assert_eq!(report.status, RunStatus::Success);
    let results = report.output("process_file", "result").unwrap();
    for (name, content) in &files {
        assert_eq!(results[name], common::process_file_result(name, content), "{name}");
    }
}
