//! The op graph of a plan as Mermaid or Graphviz DOT, with map and collect edges marked.
//! A mapped op is drawn with Dagster's unresolved step key, `op[?]` (`op[?][?]` when nested).

use std::fmt::Write as _;

use super::plan::{Binding, Plan, PlannedOp};

/// How an edge reads: `map result → path`.
fn edge_label(op: &PlannedOp, plan: &Plan) -> Vec<(usize, String, &'static str)> {
    op.inputs
        .iter()
        .map(|input| {
            let (kind, output) = match &input.binding {
                // From a mapped op, a plain binding continues per key; from an unmapped one it is
                // a broadcast.
                Binding::Plain { op: upstream, output } if !plan.ops[*upstream].scope.is_empty() => ("map ", output),
                Binding::Plain { output, .. } => ("", output),
                Binding::Record { output, .. } => ("map ", output),
                Binding::Collect { output, .. } | Binding::CollectRecords { output, .. } => ("collect ", output),
            };
            let style = match kind {
                "map " => "map",
                "collect " => "collect",
                _ => "plain",
            };
            (input.binding.op(), format!("{kind}{output} → {}", input.name), style)
        })
        .collect()
}

fn node_label(op: &PlannedOp) -> String {
    format!("{}{}", op.name, "[?]".repeat(op.scope.len()))
}

/// The graph as a Mermaid flowchart.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    for op in &plan.ops {
        let _ = writeln!(out, "    {}[\"{}\"]", op.name, node_label(op));
    }
    for op in &plan.ops {
        for (from, label, style) in edge_label(op, plan) {
            let arrow = if style == "plain" { "-->" } else { "==>" };
            let _ = writeln!(out, "    {} {arrow}|\"{label}\"| {}", plan.ops[from].name, op.name);
        }
    }
    out
}

/// The graph as Graphviz DOT.
pub fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n    rankdir=LR;\n", plan.job.replace('"', "\\\""));
    for op in &plan.ops {
        let shape = if op.scope.is_empty() { "box" } else { "box3d" };
        let _ = writeln!(out, "    \"{}\" [label=\"{}\", shape={shape}];", op.name, node_label(op));
    }
    for op in &plan.ops {
        for (from, label, style) in edge_label(op, plan) {
            let line = match style {
                "map" => "style=bold",
                "collect" => "style=dashed",
                _ => "style=solid",
            };
            let _ = writeln!(out, "    \"{}\" -> \"{}\" [label=\"{label}\", {line}];", plan.ops[from].name, op.name);
        }
    }
    out.push_str("}\n");
    out
}
