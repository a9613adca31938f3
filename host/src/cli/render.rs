//! How a run report looks: human lines, or one JSON object.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::executor::{RunReport, RunStatus, StepStatus, short_run_id};
use crate::runtime::printable;
use crate::store::RecordedStatus;

/// Above this many steps, successful clones are summarized per op instead of listed.
const LIST_ALL_UP_TO: usize = 50;

/// The `--json` object: `{run_id, status, steps: [{key, op, mapping_key, status, error, ...}],
/// outputs}`.
pub fn json_report(report: &RunReport<RecordedStatus>) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("job".into(), json!(report.job));
    }
    value
}

/// Human lines: every step (or, for large runs, failures plus a count per op), the leaf outputs,
/// and a closing line. Everything a guest wrote is escaped for the terminal.
pub fn human_report(out: &mut impl Write, report: &RunReport<RecordedStatus>, quiet: bool) -> io::Result<()> {
    let list_all = report.steps.len() <= LIST_ALL_UP_TO;
    if !quiet {
        let parent =
            report.parent_run_id.as_deref().map(|p| format!(" (reexecute of {})", short_run_id(p))).unwrap_or_default();
        writeln!(out, "run {} of job \"{}\"{parent}", short_run_id(&report.run_id), report.job)?;
    }
    let width = report.steps.iter().map(|s| s.key.chars().count()).max().unwrap_or(0).min(60);
    let mut per_op: BTreeMap<&str, BTreeMap<&'static str, usize>> = BTreeMap::new();
    // Clones cancelled with their fan-out, one line per op and reason: a fan-out that fails after
    // thousands of records must not print thousands of lines.
    let mut cancelled: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for step in &report.steps {
        *per_op.entry(step.op.as_str()).or_default().entry(step.status.as_str()).or_default() += 1;
        if step.status == StepStatus::Cancelled && step.mapping_key.is_some() {
            *cancelled.entry((step.op.as_str(), step.error.as_deref().unwrap_or(""))).or_default() += 1;
            continue;
        }
        let show = match step.status {
            StepStatus::Success | StepStatus::Skipped => !quiet && (list_all || step.mapping_key.is_none()),
            _ => true,
        };
        if !show {
            continue;
        }
        write!(out, "  {:<9} {:<width$}", step.status.as_str(), printable(&step.key))?;
        if !step.records.is_empty() {
            write!(out, "  {} records", step.records.len())?;
        }
        if step.attempts > 0 {
            write!(out, "  {:.1} ms", step.duration_ms)?;
        }
        if step.attempts > 1 {
            write!(out, "  (attempt {})", step.attempts)?;
        }
        for earlier in &step.previous_attempts {
            write!(out, "\n            attempt {} failed: {}", earlier.attempt, printable(&earlier.error))?;
        }
        if let Some(error) = &step.error {
            write!(out, "\n            {}", printable(error).replace('\n', "\n            "))?;
        }
        writeln!(out)?;
    }
    for ((op, error), n) in &cancelled {
        let clones = if *n == 1 { "clone" } else { "clones" };
        writeln!(out, "  {:<9} {:<width$}  {n} {clones}", "cancelled", format!("{}[…]", printable(op)))?;
        writeln!(out, "            {}", printable(error))?;
    }
    if !list_all && !quiet {
        for (op, counts) in &per_op {
            let parts: Vec<String> = counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
            writeln!(out, "  {op}: {}", parts.join(", "))?;
        }
    }
    // A leaf op that failed has no outputs: the heading comes only with something under it.
    let mut heading = false;
    for (op, outputs) in &report.outputs {
        let Value::Object(outputs) = outputs else { continue };
        for (name, value) in outputs {
            if !std::mem::replace(&mut heading, true) {
                writeln!(out, "outputs:")?;
            }
            writeln!(out, "  {op}.{name} = {}", printable(&value.to_string()))?;
        }
    }
    let succeeded = report.steps.iter().filter(|s| s.status == StepStatus::Success).count();
    match report.status {
        RecordedStatus::Ended(RunStatus::Success) => writeln!(
            out,
            "success: {} steps ({succeeded} succeeded) in {:.0} ms",
            report.steps.len(),
            report.duration_ms
        )?,
        RecordedStatus::Ended(RunStatus::SuccessWithFailures) => {
            writeln!(out, "success with failures: {}", printable(report.error.as_deref().unwrap_or("")))?
        }
        RecordedStatus::Ended(RunStatus::Failure) => {
            writeln!(out, "failure: {}", printable(report.error.as_deref().unwrap_or("the run failed")))?
        }
        RecordedStatus::Ended(RunStatus::Cancelled) => writeln!(
            out,
            "cancelled after {:.0} ms: {} steps ended, {} cancelled; `sandmap resume {}` runs the rest",
            report.duration_ms,
            report.steps.iter().filter(|s| s.status != StepStatus::Cancelled).count(),
            report.steps.iter().filter(|s| s.status == StepStatus::Cancelled).count(),
            short_run_id(&report.run_id)
        )?,
        RecordedStatus::Running => writeln!(out, "running: {} steps ended so far", report.steps.len())?,
        RecordedStatus::Interrupted => writeln!(
            out,
            "interrupted: its process died after {} steps ended; `sandmap resume {}` finishes it",
            report.steps.len(),
            short_run_id(&report.run_id)
        )?,
    }
    Ok(())
}

/// A value printed by `show --step`: compact JSON, cut after this many characters.
const SHOWN_VALUE_CHARS: usize = 2_000;

fn shown_value(value: &Value) -> String {
    let text = value.to_string();
    let count = text.chars().count();
    if count <= SHOWN_VALUE_CHARS {
        return printable(&text);
    }
    let head: String = text.chars().take(SHOWN_VALUE_CHARS).collect();
    format!("{}… ({count} characters; --json prints it whole)", printable(&head))
}

fn shown_metadata(metadata: &serde_json::Map<String, Value>) -> String {
    let entries: Vec<String> = metadata
        .iter()
        .map(|(key, entry)| {
            let value = entry.get("value").map_or_else(String::new, |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            format!("{key} = {value}")
        })
        .collect();
    printable(&entries.join(", "))
}

/// `show RUN --step KEY`: the step, what each input received, each record and output with its
/// metadata. `wired`: whether the run's wiring is known (it is not for runs recorded before
/// sandmap kept it, whose inputs cannot be shown); `taken_from`: the parent run it was taken from.
pub fn step_detail(
    out: &mut impl Write,
    detail: &crate::store::StepDetail<'_>,
    wired: bool,
    taken_from: Option<&str>,
) -> io::Result<()> {
    let step = detail.step;
    let taken = taken_from.map(|p| format!(", taken from run {}", short_run_id(p))).unwrap_or_default();
    writeln!(out, "step {} (op \"{}\"{taken})", printable(&step.key), printable(&step.op))?;
    // A step taken from a parent run made no attempt in this one.
    let mut status = step.status.as_str().to_owned();
    if step.attempts > 0 {
        status.push_str(&format!(", {} attempt(s), {:.1} ms", step.attempts, step.duration_ms));
    }
    if let Some(worker) = &step.worker {
        status.push_str(&format!(", on {}", printable(worker)));
    }
    writeln!(out, "  status   {status}")?;
    if let Some(error) = &step.error {
        writeln!(out, "  error    {}", printable(error))?;
    }
    for attempt in &step.previous_attempts {
        writeln!(out, "  attempt {} failed: {}", attempt.attempt, printable(&attempt.error))?;
    }
    writeln!(out, "inputs:")?;
    if !wired {
        writeln!(out, "  (not known: the run was recorded before sandmap kept its wiring)")?;
    } else if detail.inputs.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for input in &detail.inputs {
        let from = if input.from.is_empty() { String::new() } else { format!(" from {}", input.from.join(", ")) };
        writeln!(out, "  {} ← {}{}", input.name, input.source, printable(&from))?;
        match &input.value {
            Some(value) => writeln!(out, "    {}", shown_value(value))?,
            None => writeln!(out, "    (nothing was produced for it)")?,
        }
    }
    writeln!(out, "records:")?;
    if detail.records.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for record in &detail.records {
        let value = record.value.as_ref().map_or_else(|| "(not kept)".to_owned(), shown_value);
        writeln!(out, "  {}[{}] = {value}", record.output, printable(&record.mapping_key))?;
        if !record.metadata.is_empty() {
            writeln!(out, "    metadata: {}", shown_metadata(&record.metadata))?;
        }
    }
    writeln!(out, "outputs:")?;
    if detail.outputs.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for (name, entry) in &detail.outputs {
        writeln!(out, "  {name} = {}", entry.get("value").map_or_else(String::new, shown_value))?;
        if let Some(Value::Object(metadata)) = entry.get("metadata")
            && !metadata.is_empty()
        {
            writeln!(out, "    metadata: {}", shown_metadata(metadata))?;
        }
    }
    Ok(())
}
