//! The op graph of a plan as Mermaid or Graphviz DOT, with map and collect edges marked.
//! A mapped op is drawn with Dagster's unresolved step key, `op[?]` (`op[?][?]` when nested).

use std::fmt::Write as _;

use super::plan::{Binding, Plan, PlannedOp};

/// How an input reaches its op.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// A plain output, or a broadcast from an unmapped op.
    Plain,
    /// One clone per record or key.
    Map,
    /// A list of every clone's value.
    Collect,
}

impl Edge {
    fn prefix(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Map => "map ",
            Self::Collect => "collect ",
        }
    }
}

/// Each input's edge: (upstream op, label like `map result → path`, kind).
fn edges(op: &PlannedOp, plan: &Plan) -> Vec<(usize, String, Edge)> {
    op.inputs
        .iter()
        .map(|input| {
            let (edge, output) = match &input.binding {
                // From a mapped op, a plain binding continues per key; from an unmapped one it is
                // a broadcast.
                Binding::Plain { op: upstream, output } if !plan.ops[*upstream].scope.is_empty() => (Edge::Map, output),
                Binding::Plain { output, .. } => (Edge::Plain, output),
                Binding::Record { output, .. } => (Edge::Map, output),
                Binding::Collect { output, .. } | Binding::CollectRecords { output, .. } => (Edge::Collect, output),
                // Drawn as a map (one record per clone), labelled with how it pairs.
                Binding::Partner { output, pairing, .. } => {
                    let how = match pairing {
                        crate::job::Pairing::Position => "zip",
                        crate::job::Pairing::Key(_) => "join",
                    };
                    return (input.binding.op(), format!("{how} {output} → {}", input.name), Edge::Map);
                }
            };
            (input.binding.op(), format!("{}{output} → {}", edge.prefix(), input.name), edge)
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
        for (from, label, edge) in edges(op, plan) {
            // Bold for map, dashed for collect, as in the DOT graph.
            let arrow = match edge {
                Edge::Plain => "-->",
                Edge::Map => "==>",
                Edge::Collect => "-.->",
            };
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
        for (from, label, edge) in edges(op, plan) {
            let line = match edge {
                Edge::Map => "style=bold",
                Edge::Collect => "style=dashed",
                Edge::Plain => "style=solid",
            };
            let _ = writeln!(out, "    \"{}\" -> \"{}\" [label=\"{label}\", {line}];", plan.ops[from].name, op.name);
        }
    }
    out.push_str("}\n");
    out
}
