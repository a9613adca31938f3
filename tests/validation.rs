//! Every job-validation error: the job is rejected before anything runs, and the message names
//! the job file, the op and the field.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{SEED_JOB, Workspace};

fn ws() -> Workspace {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"1\n")]);
    ws
}

/// The message after `<job file>:<line>:<col>: `.
fn message(ws: &Workspace, job: &str) -> String {
    let error = ws.invalid(job);
    let file = ws.path().join("job.toml").display().to_string();
    let rest = error.strip_prefix(&file).unwrap_or_else(|| panic!("error does not start with the job file: {error}"));
    let rest = rest.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit());
    rest.trim_start().to_owned()
}

const FAN_OUT: &str = r#"
name = "j"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{ host = "sample", guest = "/data" }]
"#;

#[test]
fn the_seed_job_is_valid() {
    let ws = ws();
    let prepared = ws.prepare(SEED_JOB).unwrap();
    let scopes: Vec<usize> = prepared.plan.ops.iter().map(|o| o.scope.len()).collect();
    assert_eq!(scopes, [0, 1, 0]);
}

#[test]
fn unknown_upstream_op() {
    let ws = ws();
    let job = format!("{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"nope\" }} }}\n");
    assert_eq!(message(&ws, &job), "op \"p\": inputs.path: unknown op \"nope\"");
}

#[test]
fn unknown_output() {
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"files_in_directory.files\" }} }}\n"
    );
    assert_eq!(
        message(&ws, &job),
        "op \"p\": inputs.path: op \"files_in_directory\" has no output \"files\" (its outputs are ['result'])"
    );
}

#[test]
fn unknown_input() {
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"files_in_directory\" }}, colour = \"files_in_directory\" }}\n"
    );
    assert_eq!(
        message(&ws, &job),
        "op \"p\": inputs.colour: component \"process_file\" has no input \"colour\" (its inputs are ['path'])"
    );
}

#[test]
fn required_input_left_unconnected() {
    let ws = ws();
    let job = format!("{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\n");
    assert_eq!(message(&ws, &job), "op \"p\": inputs: required input \"path\" is not connected");
}

#[test]
fn cycle() {
    let ws = ws();
    let job = "name = \"j\"\n[ops.a]\ncomponent = \"process_file\"\ninputs = { path = \"b\" }\n[ops.b]\ncomponent = \"process_file\"\ninputs = { path = \"a\" }\n";
    assert_eq!(message(&ws, job), "the ops form a cycle: b -> a -> b");
}

#[test]
fn map_over_a_plain_output_of_an_unmapped_op() {
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.s]\ncomponent = \"summarize_directory\"\ninputs = {{ results = {{ collect = \"files_in_directory\" }} }}\n[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"s\" }} }}\n"
    );
    assert_eq!(
        message(&ws, &job),
        "op \"p\": inputs.path: cannot map over s:result: it is not a dynamic output, and op \"s\" is not mapped"
    );
}

#[test]
fn case_14_collect_of_a_collect_is_rejected() {
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.s]\ncomponent = \"summarize_directory\"\ninputs = {{ results = {{ collect = \"files_in_directory\" }} }}\n[ops.t]\ncomponent = \"summarize_directory\"\ninputs = {{ results = {{ collect = \"s\" }} }}\n"
    );
    assert_eq!(
        message(&ws, &job),
        "op \"t\": inputs.results: cannot collect s:result: it is neither a dynamic output nor the output of a mapped op"
    );
}

#[test]
fn case_15_a_dynamic_output_used_directly_is_rejected() {
    // Dagster case 15.
    let ws = ws();
    let job = format!("{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = \"files_in_directory\" }}\n");
    assert_eq!(
        message(&ws, &job),
        "op \"p\": inputs.path: received the dynamic output \"result\" from op \"files_in_directory\" directly. \
         Dynamic output must be unpacked with map or collect"
    );
}

#[test]
fn a_mapped_output_used_without_map_or_collect() {
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.p]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"files_in_directory\" }} }}\n[ops.s]\ncomponent = \"summarize_directory\"\ninputs = {{ results = \"p\" }}\n"
    );
    assert_eq!(
        message(&ws, &job),
        "op \"s\": inputs.results: received output \"result\" of mapped op \"p\" directly. A mapped op's output must be \
         used with map (to continue per key) or collect"
    );
}

#[test]
fn config_that_fails_its_schema() {
    let ws = ws();
    let job = FAN_OUT
        .replace("component = \"files_in_directory\"", "component = \"files_in_directory\"\nconfig = { path = 5 }");
    assert_eq!(message(&ws, &job), "op \"files_in_directory\": config: /path: 5 is not of type \"string\"");
    let job = FAN_OUT.replace(
        "component = \"files_in_directory\"",
        "component = \"files_in_directory\"\nconfig = { colour = \"red\" }",
    );
    let m = message(&ws, &job);
    assert!(m.starts_with("op \"files_in_directory\": config: ") && m.contains("colour"), "{m}");
}

#[test]
fn config_defaults_are_applied() {
    let ws = ws();
    let prepared = ws.prepare(FAN_OUT).unwrap();
    assert_eq!(
        prepared.plan.ops[0].config.as_str(),
        r#"{"include_hidden":true,"path":"/data","pattern":null,"recursive":false}"#
    );
}

#[test]
fn a_grant_whose_host_path_does_not_exist_or_is_not_a_folder() {
    let ws = ws();
    let job = FAN_OUT.replace("host = \"sample\"", "host = \"missing\"");
    let m = message(&ws, &job);
    assert!(
        m.starts_with("op \"files_in_directory\": grants[0].host: ") && m.contains("missing cannot be granted"),
        "{m}"
    );
    let job = FAN_OUT.replace("host = \"sample\"", "host = \"sample/a.txt\"");
    let m = message(&ws, &job);
    assert!(m.ends_with("sample/a.txt is not a directory"), "{m}");
}

#[test]
fn components_that_are_not_ops() {
    let ws = ws();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.wasm", b"", "is empty (0 bytes), not a WebAssembly component"),
        (
            "garbage.wasm",
            b"this is not wasm at all",
            "is not a WebAssembly component (it does not start with the \\0asm header)",
        ),
        ("core.wasm", b"\0asm\x01\0\0\0", "is a core WebAssembly module, not a component"),
        ("truncated.wasm", b"\0asm\x0d\0\x01\0\x01\x05", "is not a valid component"),
    ];
    for (name, bytes, expected) in cases {
        std::fs::write(ws.path().join(name), bytes).unwrap();
        let job = format!("name = \"j\"\n[ops.x]\ncomponent = \"{name}\"\n");
        let m = message(&ws, &job);
        assert!(m.starts_with("op \"x\": component: ") && m.contains(expected) && m.contains(name), "{name}: {m}");
    }
    let job = format!("name = \"j\"\n[ops.x]\ncomponent = \"{}\"\n", sandmap_test_programs::NOT_AN_OP);
    let m = message(&ws, &job);
    assert!(m.contains("is not a sandmap op (it does not implement sandmap:op/op-component@0.1.0)"), "{m}");
    let job = "name = \"j\"\n[ops.x]\ncomponent = \"no_such_op\"\n";
    let m = message(&ws, job);
    assert!(m.starts_with("op \"x\": component: component \"no_such_op\" not found"), "{m}");
}

#[test]
fn toml_errors_point_at_line_and_column() {
    let ws = ws();
    let error = ws.invalid("name = \"j\"\n[ops.x\ncomponent = 1\n");
    let file = ws.path().join("job.toml").display().to_string();
    assert!(error.starts_with(&format!("{file}:2:")), "{error}");
    let error = ws.invalid("name = \"j\"\n[ops.x]\ncomponent = \"files_in_directory\"\ninputs = { p = 3 }\n");
    assert!(error.starts_with(&format!("{file}:4:16: op \"x\": inputs.p: an input is")), "{error}");
}

#[test]
fn case_16_two_unrelated_dynamic_upstreams_are_rejected() {
    // Dagster case 16.
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.other]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"sample\", guest = \"/data\" }}]\n\
         [ops.j]\ncomponent = \"{}\"\ninputs = {{ a = {{ map = \"files_in_directory\" }}, b = {{ map = \"other\" }} }}\n",
        sandmap_test_programs::JOIN2
    );
    assert_eq!(
        message(&ws, &job),
        "op \"j\": inputs: op 'j' cannot be downstream of more than one dynamic output. It is downstream of both \
         \"files_in_directory:result\" and \"other:result\""
    );
}

#[test]
fn case_16_map_and_collect_of_one_output_in_one_op_is_rejected() {
    // Dagster case 16.
    let ws = ws();
    let job = format!(
        "{FAN_OUT}[ops.j]\ncomponent = \"{}\"\ninputs = {{ a = {{ map = \"files_in_directory\" }}, b = {{ collect = \"files_in_directory\" }} }}\n",
        sandmap_test_programs::JOIN2
    );
    assert_eq!(
        message(&ws, &job),
        "op \"j\": inputs: op 'j' cannot both collect over dynamic output files_in_directory:result and be downstream \
         of the dynamic output files_in_directory:result"
    );
}
