//! The run viewer (`sandmap ui`), in a real headless Chromium driven through chromedriver, and
//! over plain HTTP where a browser would hide what is sent. Without chromium and chromedriver
//! the browser tests say SKIPPED; with `SANDMAP_REQUIRE_BROWSER=1` (CI) that is a failure.
//! Every assertion is on the DOM (screenshots are saved under `target/ui-screens/` for people).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::browser::{Browser, Ui, http, sse_events};
use common::{StoredJob, Workspace, wait_for};
use serde_json::{Value, json};

/// The seed job over four files, recorded in its own store.
fn seed_job() -> StoredJob {
    let ws = Workspace::new();
    ws.files("sample", &[("b.txt", b"two\nlines\n"), ("a.txt", b"one\n"), ("c.md", b"# c\n"), ("d.txt", b"")]);
    StoredJob::new(ws, common::SEED_JOB)
}

fn run_id(job: &StoredJob, args: &[&str]) -> String {
    let (_, report, stderr) = job.run(args);
    report["run_id"].as_str().unwrap_or_else(|| panic!("no run id: {stderr}")).to_owned()
}

/// The id of the run a spawned `sandmap run` records, once its row is there.
fn first_recorded_run(job: &StoredJob) -> String {
    wait_for("the run to be recorded", || {
        let (_, runs, _) = job.run(&["runs", "--json"]);
        runs[0]["run_id"].as_str().map(str::to_owned)
    })
}

fn no_page_errors(browser: &Browser) {
    assert_eq!(browser.page_errors(), json!([]), "the page recorded errors");
}

fn text(browser: &Browser, css: &str) -> String {
    let script = format!("const e = document.querySelector({css:?}); return e ? e.textContent : null");
    browser.js(&script).as_str().map(str::to_owned).unwrap_or_else(|| panic!("no {css}"))
}

/// Runs the page lists, each row's id and lineage.
fn listed(browser: &Browser) -> Value {
    browser.js("return [...document.querySelectorAll('#runs-table tr.run-row')].map(r => ({
            run: r.dataset.run,
            status: r.querySelector('.badge').dataset.status,
            parent: [...r.querySelectorAll('.parent a')].map(a => a.title),
            children: [...r.querySelectorAll('.child a')].map(a => a.title),
        }))")
}

#[test]
fn the_runs_list_links_reexecutions_both_ways_and_keeps_its_filter() {
    let Some(browser) = Browser::start() else { return };
    let job = seed_job();
    let parent = run_id(&job, &["run", &job.job, "--json"]);
    let child = run_id(&job, &["reexecute", &parent, "--step", "process_file[a_txt]", "--json"]);
    let failed = run_id(&job, &["run", &job.job, "--json", "--set", "files_in_directory.config.path=/nowhere"]);
    let ui = Ui::start(&job.store);
    browser.goto(&ui.url("/"));
    let rows = listed(&browser);
    assert_eq!(
        rows,
        json!([
            {"run": failed, "status": "failure", "parent": [], "children": []},
            {"run": child, "status": "success", "parent": [parent], "children": []},
            {"run": parent, "status": "success", "parent": [], "children": [child]},
        ])
    );
    browser.screenshot("runs");
    // The status filter is in the URL: a reload keeps it.
    browser.js("document.querySelector('select[name=status]').value = 'failure'; document.querySelector('form.filters').submit()");
    browser.wait("the filtered list", "return location.search.includes('status=failure')");
    browser.reload();
    assert_eq!(browser.js("return document.querySelector('select[name=status]').value"), json!("failure"));
    let rows = listed(&browser);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["run"], json!(failed));
    no_page_errors(&browser);
}

#[test]
fn a_finished_seed_run_shows_its_graph_its_clones_in_emission_order_and_its_output() {
    let Some(browser) = Browser::start() else { return };
    let job = seed_job();
    let (_, report, _) = job.run(&["run", &job.job, "--json"]);
    let id = report["run_id"].as_str().unwrap();
    let emitted: Vec<Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == "process_file")
        .map(|s| s["key"].clone())
        .collect();
    let ui = Ui::start(&job.store);
    browser.goto(&ui.url(&format!("/runs/{id}")));
    let nodes = browser.js(
        "return [...document.querySelectorAll('#graph g.node')].map(g => [g.querySelector('text.label').textContent, g.querySelector('text.counts').textContent])",
    );
    assert_eq!(
        nodes,
        json!([["files_in_directory", "ok"], ["process_file[?]", "4/4 ok"], ["summarize_directory", "ok"]])
    );
    let keys = browser.js("return [...document.querySelectorAll('#clone-table tr.clone-row')].map(r => r.dataset.key)");
    assert_eq!(keys, Value::Array(emitted));
    // The summary's output is in the run record.
    let outputs: Value = serde_json::from_str(&text(&browser, "#record pre.json")).unwrap();
    assert_eq!(outputs, report["outputs"]);
    assert_eq!(outputs["summarize_directory"]["result"]["files"], json!(4));
    // Status is written, never shown by colour alone.
    let badges =
        browser.js("return [...document.querySelectorAll('.badge')].every(b => b.textContent.trim().length > 0)");
    assert_eq!(badges, json!(true));
    browser.screenshot("run-seed");
    no_page_errors(&browser);
}

#[test]
fn counters_move_live_and_a_restarted_server_resyncs_with_nothing_missing_or_doubled() {
    let Some(browser) = Browser::start() else { return };
    let job = common::gated_behave_job(&["await:/gate/open\n"; 4], "");
    let mut run = job.spawn_run(&["--max-concurrent", "2"]);
    let ui = Ui::start(&job.store);
    let id = first_recorded_run(&job);
    browser.goto(&ui.url(&format!("/runs/{id}")));
    let counts = "return document.querySelector('#graph g.node[data-op=behave] text.counts').textContent";
    browser.wait("two running clones", &format!("{counts}.includes('2 running')"));
    // Restart the server mid-run, on the same address; the page reconnects by itself.
    let addr = ui.addr.to_string();
    drop(ui);
    let ui = Ui::start_on(&job.store, &addr);
    std::fs::write(job.ws.path().join("gate/open"), b"").unwrap();
    assert!(run.wait().unwrap().success());
    browser.wait("the clones' end, without a reload", &format!("{counts} === '4/4 ok'"));
    browser.wait("the run's end", "return document.querySelector('#run-status .badge').dataset.status === 'success'");
    let node = browser.js("return JSON.parse(document.querySelector('#graph g.node[data-op=behave]').dataset.counts)");
    assert_eq!(node, json!({"success": 4}), "a count was missed or doubled");
    let rows = browser.wait(
        "the clone table's refresh",
        "const r = [...document.querySelectorAll('#clone-table tr.clone-row')].map(r => r.dataset.status); return r.length === 4 && r.every(s => s === 'success') && r",
    );
    assert_eq!(rows, json!(["success", "success", "success", "success"]));
    assert_eq!(browser.js("return performance.getEntriesByType('navigation').length"), json!(1), "the page reloaded");
    drop(ui);
    no_page_errors(&browser);
}

#[test]
fn one_failure_in_a_fifty_way_map_is_one_click_away_with_its_attempts_and_reexecutes_from_the_page() {
    let Some(browser) = Browser::start() else { return };
    let commands: Vec<&str> = (0..50).map(|i| if i == 31 { "noisy_fail:disk on fire\n" } else { "ok\n" }).collect();
    let job = common::gated_behave_job(&commands, "retries = { max = 1 }");
    let (code, report, _) = job.run(&["run", &job.job, "--json"]);
    assert_eq!(code, 1);
    let id = report["run_id"].as_str().unwrap().to_owned();
    let ui = Ui::start(&job.store);
    browser.goto(&ui.url(&format!("/runs/{id}?op=behave")));
    assert!(text(&browser, "#graph g.node[data-op=behave] text.counts").starts_with("49/50 ok · 1 failed"));
    browser.click("#failed-first");
    browser.wait("the failed-first page", "return location.search.includes('failed_first')");
    let rows = browser.js("return [...document.querySelectorAll('#clone-table tr.clone-row')].map(r => [r.dataset.key, r.dataset.status])");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], json!(["behave[f31_txt]", "failure"]));
    assert!(rows[1..].iter().all(|r| r[1] == "success"), "{rows:?}");
    browser.click("#clone-table tr.clone-row a.step-link");
    browser.wait("the step page", "return document.querySelector('#step-key')");
    assert_eq!(text(&browser, "#step-key"), "behave[f31_txt]");
    // The error comes first, before the facts and the logs.
    let first = browser.js("return document.querySelector('main h1').nextElementSibling.id");
    assert_eq!(first, json!("step-error"));
    assert!(text(&browser, "#step-error").contains("disk on fire"));
    // Both attempts' logs, loaded on demand.
    browser.js("document.querySelectorAll('details.log').forEach(d => d.open = true)");
    browser.wait("both logs", "return document.querySelectorAll('details.log[data-ready]').length === 2");
    let logs = browser.js("return [...document.querySelectorAll('details.log')].map(d => [d.querySelector('summary').textContent.split(' — ')[0], [...d.querySelectorAll('li .text')].map(t => t.textContent.trim())])");
    assert_eq!(
        logs,
        json!([
            ["attempt 1", ["noisy attempt on stdout", "noisy attempt on stderr"]],
            ["attempt 2", ["noisy attempt on stdout", "noisy attempt on stderr"]],
        ])
    );
    browser.screenshot("step-failed");
    browser.goto(&ui.url(&format!("/runs/{id}")));
    browser.click("button[data-from-failure]");
    let child_url = browser.wait(
        "the child run's page",
        &format!(
            "return !location.pathname.endsWith('{id}') && location.pathname.startsWith('/runs/') && location.pathname"
        ),
    );
    let child = child_url.as_str().unwrap().trim_start_matches("/runs/").to_owned();
    wait_for("the child run to end", || {
        let (_, r, _) = job.run(&["show", &child, "--json"]);
        (r["status"] != "running").then_some(())
    });
    let (_, child_report, _) = job.run(&["show", &child, "--json"]);
    assert_eq!(child_report["parent_run_id"], json!(id));
    let reused: Vec<&str> = child_report["reused"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let reused_clones: Vec<&&str> = reused.iter().filter(|k| k.starts_with("behave[")).collect();
    assert_eq!(reused_clones.len(), 49, "{reused:?}");
    assert!(!reused.contains(&"behave[f31_txt]"));
    no_page_errors(&browser);
}

#[test]
fn a_killed_runner_shows_interrupted_and_the_resume_button_finishes_it() {
    let Some(browser) = Browser::start() else { return };
    let job = common::gated_behave_job(&["ok\n", "await:/gate/open\n", "await:/gate/open\n"], "");
    let mut run = job.spawn_run(&["--max-concurrent", "2"]);
    let ui = Ui::start(&job.store);
    let id = first_recorded_run(&job);
    browser.goto(&ui.url(&format!("/runs/{id}")));
    browser.wait(
        "a running clone",
        "return document.querySelector('#graph g.node[data-op=behave] text.counts').textContent.includes('running')",
    );
    run.kill().unwrap();
    run.wait().unwrap();
    browser.wait("interrupted", "return document.querySelector('#run-status .badge').dataset.status === 'interrupted'");
    assert!(text(&browser, "#graph g.node[data-op=behave] text.counts").contains("interrupted"));
    browser.wait("the resume button", "return document.querySelector('button[data-action=resume]')");
    std::fs::write(job.ws.path().join("gate/open"), b"").unwrap();
    browser.click("button[data-action=resume]");
    browser.wait(
        "the resumed run's end",
        "return document.querySelector('#run-status .badge').dataset.status === 'success'",
    );
    browser.wait(
        "every clone ok",
        "return document.querySelector('#graph g.node[data-op=behave] text.counts').textContent === '3/3 ok'",
    );
    let (_, report, _) = job.run(&["show", &id, "--json"]);
    assert_eq!(report["status"], json!("success"));
    no_page_errors(&browser);
}

#[test]
fn a_run_of_100000_clones_shows_one_page_of_rows_with_bounded_events_and_memory() {
    let Some(browser) = Browser::start() else { return };
    const N: usize = 100_000;
    let ws = Workspace::new();
    let job = StoredJob::new(
        ws,
        &format!(
            "name = \"fan\"\n[ops.emit]\ncomponent = \"emit_range\"\nconfig = {{ n = {N} }}\nlimits = {{ max_emits = {N}, max_fan_out = {N} }}\n\
             [ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n\
             [ops.all]\ncomponent = \"noop\"\ninputs = {{ x = {{ collect = \"each\" }} }}\n"
        ),
    );
    let ui = Ui::start(&job.store);
    let started = std::time::Instant::now();
    let mut run = job.spawn_run(&["--quiet"]);
    let id = first_recorded_run(&job);
    // A stream's events while the run goes: at most one per 250 ms, however fast clones end.
    let watched = Duration::from_secs(3);
    let events = sse_events(ui.addr, &format!("/api/runs/{id}/events"), watched);
    assert!(!events.is_empty() && events[0].contains("event: snapshot"), "{events:?}");
    assert!(events.len() <= 1 + 12 + 2, "{} events in {watched:?}", events.len());
    assert!(run.wait().unwrap().success());
    let run_secs = started.elapsed().as_secs_f64();
    let before = std::time::Instant::now();
    browser.goto(&ui.url(&format!("/runs/{id}")));
    let loaded = before.elapsed();
    assert_eq!(text(&browser, "#graph g.node[data-op=each] text.counts"), format!("{N}/{N} ok"));
    assert_eq!(text(&browser, "#clone-total"), N.to_string());
    browser.screenshot("run-100k");
    let rows = browser.js("return document.querySelectorAll('tr').length");
    assert!(rows.as_u64().unwrap() <= 110, "the page holds {rows} rows");
    // The next page is one click away and still one page.
    browser.click("#clone-table a.next");
    browser.wait("page 2", "return location.search.includes('after=100')");
    assert_eq!(
        browser.js("return document.querySelector('#clone-table tr.clone-row').dataset.key"),
        json!("each[k100]")
    );
    browser.goto(&ui.url(&format!("/runs/{id}/timeline?op=each")));
    assert_eq!(browser.js("return document.querySelectorAll('svg.bar').length"), json!(100));
    let rss = ui.rss();
    eprintln!(
        "100,000 clones: run {run_secs:.1} s; run page loaded in {:.0} ms; ui server RSS {} MiB",
        loaded.as_secs_f64() * 1000.0,
        rss >> 20
    );
    assert!(rss < 200 << 20, "the server holds {} MiB", rss >> 20);
    browser.screenshot("timeline-100k");
    no_page_errors(&browser);
}

#[test]
fn hostile_output_is_shown_as_text_and_never_runs() {
    let Some(browser) = Browser::start() else { return };
    let job = common::gated_behave_job(&["hostile_ui\n"], "");
    let id = run_id(&job, &["run", &job.job, "--json"]);
    let ui = Ui::start(&job.store);
    browser.goto(&ui.url(&format!("/runs/{id}/steps/behave%5Bf00_txt%5D")));
    browser.wait("the log", "return document.querySelector('details.log[data-ready]')");
    assert_eq!(browser.js("return typeof window.__pwned"), json!("undefined"));
    assert_eq!(browser.js("return document.querySelectorAll('script').length"), json!(1), "only the page's own script");
    assert_eq!(browser.js("return document.querySelectorAll('main img').length"), json!(0));
    let links = browser.js(
        "return [...document.querySelectorAll('a')].map(a => a.getAttribute('href')).filter(h => !h.startsWith('/'))",
    );
    assert_eq!(links, json!(["https://example.com/a?b=1"]), "only the http(s) link is a link");
    assert_eq!(browser.js("return document.querySelector('a[href^=\"https\"]').rel"), json!("noopener noreferrer"));
    let log = browser.js("return [...document.querySelectorAll('li .text')].map(t => t.textContent)");
    assert_eq!(log, json!(["<script>window.__pwned=1</script> red \n", "logged <script>window.__pwned=1</script>"]));
    let page = browser.js("return document.body.innerText");
    let page = page.as_str().unwrap();
    assert!(page.contains("javascript:window.__pwned=1"), "the script URL is shown as text");
    assert!(page.contains("<img src=x onerror=\"window.__pwned=1\">"), "raw HTML in Markdown is text");
    assert!(!page.contains('\u{1b}'), "terminal escapes are stripped");
    assert_eq!(text(&browser, ".markdown strong"), "bold");
    let (_, headers, _) = http(ui.addr, "GET", &format!("/runs/{id}/steps/behave%5Bf00_txt%5D"), &[], "");
    assert!(headers.contains("content-security-policy: default-src 'self'"), "{headers}");
    browser.screenshot("step-hostile");
    no_page_errors(&browser);
}

#[test]
fn over_http_foreign_hosts_and_tokenless_posts_are_refused_and_the_api_is_show_json() {
    let job = seed_job();
    let id = run_id(&job, &["run", &job.job, "--json"]);
    let ui = Ui::start(&job.store);
    let (status, _, _) = http(ui.addr, "GET", "/", &[("Host", "evil.example:80")], "");
    assert_eq!(status, 421);
    let (status, _, _) = http(
        ui.addr,
        "GET",
        &format!("/api/runs/{id}"),
        &[("Host", &format!("attacker.example:{}", ui.addr.port()))],
        "",
    );
    assert_eq!(status, 421);
    // A POST without the token, with a wrong one, or from another origin.
    let post = format!("/api/runs/{id}/reexecute");
    let body = r#"{"from_failure":true}"#;
    let json_type = ("Content-Type", "application/json");
    assert_eq!(http(ui.addr, "POST", &post, &[json_type], body).0, 403);
    assert_eq!(http(ui.addr, "POST", &post, &[json_type, ("X-Sandmap-Token", "0000")], body).0, 403);
    let (_, _, page) = http(ui.addr, "GET", "/", &[], "");
    let token = page.split("name=\"sandmap-token\" content=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let origin = ("Origin", "http://evil.example");
    assert_eq!(http(ui.addr, "POST", &post, &[json_type, ("X-Sandmap-Token", &token), origin], body).0, 403);
    // A hostile selection is refused before anything starts; a flag-like one stays a selection.
    let (status, _, said) = http(
        ui.addr,
        "POST",
        &post,
        &[json_type, ("X-Sandmap-Token", &token)],
        r#"{"steps":["--store=/tmp/elsewhere"]}"#,
    );
    assert_eq!(status, 422, "{said}");
    assert!(said.contains("--store=/tmp/elsewhere"), "{said}");
    let (_, runs, _) = job.run(&["runs", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "nothing ran");
    assert_eq!(http(ui.addr, "DELETE", &format!("/api/runs/{id}"), &[], "").0, 405);
    // The API's run is `show --json`'s.
    let (status, headers, api) = http(ui.addr, "GET", &format!("/api/runs/{id}"), &[], "");
    assert_eq!(status, 200);
    assert!(headers.contains("content-security-policy: default-src 'self'"));
    let (_, shown, _) = job.run(&["show", &id, "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&api).unwrap(), shown);
    // A step's, `show --step --json`'s, with its times.
    let (_, _, api) = http(ui.addr, "GET", &format!("/api/runs/{id}/steps/process_file%5Ba_txt%5D"), &[], "");
    let mut api: Value = serde_json::from_str(&api).unwrap_or_else(|e| panic!("{e}: {api}"));
    let (_, step, _) = job.run(&["show", &id, "--step", "process_file[a_txt]", "--json"]);
    let object = api.as_object_mut().unwrap();
    assert!(object.remove("started_at_ms").unwrap().as_i64().unwrap() > 0);
    assert!(object.remove("ended_at_ms").unwrap().as_i64().unwrap() > 0);
    assert_eq!(object.remove("attempt_starts").unwrap().as_array().unwrap().len(), 1);
    assert_eq!(api, step);
    // Pages of clones, filtered by key prefix.
    let (_, _, page) = http(ui.addr, "GET", &format!("/api/runs/{id}/steps?op=process_file&prefix=c&limit=5"), &[], "");
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], json!(1));
    assert_eq!(page["rows"][0]["key"], json!("process_file[c_md]"));
    let (status, _, _) = http(ui.addr, "GET", &format!("/api/runs/{id}/steps?status=%3Cscript%3E"), &[], "");
    assert_eq!(status, 400);
    let (status, _, page) =
        http(ui.addr, "GET", &format!("/api/runs/{id}/steps?op=process_file&after=9223372036854775807"), &[], "");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&page).unwrap()["rows"], json!([]));
    let (status, _, said) =
        http(ui.addr, "POST", &format!("/api/runs/{id}/resume"), &[json_type, ("X-Sandmap-Token", &token)], "");
    assert_eq!(status, 422, "{said}");
    assert!(said.contains("only an interrupted or cancelled run resumes"), "{said}");
    let (status, _, said) = http(ui.addr, "GET", "/runs/not-a-run", &[], "");
    assert_eq!(status, 404, "{said}");
    // Runs, filtered.
    let (_, _, list) = http(ui.addr, "GET", "/api/runs?status=failure", &[], "");
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap(), json!([]));
}
