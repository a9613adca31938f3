//! A run's op graph as SVG, drawn on the server from the job model the run recorded (never from
//! the job file, which may have changed since). A small layered layout: an op's layer is its
//! longest path from a source, left to right; ops keep plan order within a layer. A mapped op is
//! one node, `op[?]`, with its counts per status; each node has an id and classes, so the page
//! updates only its text and classes as events come.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::job::{JobModel, WireKind};

const NODE_W: f64 = 210.0;
const NODE_H: f64 = 58.0;
const GAP_X: f64 = 90.0;
const GAP_Y: f64 = 26.0;
const PAD: f64 = 12.0;

/// One op as the graph draws it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The op's name.
    pub op: String,
    /// Levels of mapping (0 for an op that runs once).
    pub depth: usize,
    layer: usize,
    row: usize,
}

impl Node {
    /// `op`, or `op[?]` per level of mapping, as Dagster writes an unresolved step.
    pub fn label(&self) -> String {
        format!("{}{}", self.op, "[?]".repeat(self.depth))
    }
}

/// The ops of `model` with their levels of mapping and places, and the edges between them
/// (upstream index, downstream index, label).
pub(crate) fn layout(model: &JobModel) -> (Vec<Node>, Vec<(usize, usize, String)>) {
    let names: Vec<&String> = model.ops.keys().collect();
    let index = |name: &str| names.iter().position(|n| n.as_str() == name);
    let mut edges = Vec::new();
    for (to, name) in names.iter().enumerate() {
        for input in model.wiring.get(name.as_str()).map(Vec::as_slice).unwrap_or_default() {
            if let Some(from) = index(&input.op) {
                let how = match input.kind {
                    WireKind::Plain => "",
                    WireKind::Map => "map ",
                    WireKind::Collect | WireKind::CollectRecords => "collect ",
                    WireKind::Zip => "zip ",
                    WireKind::Join => "join ",
                };
                edges.push((from, to, format!("{how}{}", input.output)));
            }
        }
    }
    // Plan order is topological: every input's op comes first.
    let mut depth = vec![0usize; names.len()];
    let mut layer = vec![0usize; names.len()];
    for (to, name) in names.iter().enumerate() {
        for input in model.wiring.get(name.as_str()).map(Vec::as_slice).unwrap_or_default() {
            let Some(from) = index(&input.op).filter(|&f| f < to) else { continue };
            let d = match input.kind {
                WireKind::Map | WireKind::Zip | WireKind::Join => depth[from] + 1,
                WireKind::Plain | WireKind::CollectRecords => depth[from],
                WireKind::Collect => depth[from].saturating_sub(1),
            };
            depth[to] = depth[to].max(d);
            layer[to] = layer[to].max(layer[from] + 1);
        }
    }
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let row = rows.entry(layer[i]).or_default();
            let node = Node { op: (*name).clone(), depth: depth[i], layer: layer[i], row: *row };
            *row += 1;
            node
        })
        .collect();
    (nodes, edges)
}

/// A status in the words the pages use: `ok`, `failed`, `ok with failures`, else its own name.
pub(crate) fn status_word(status: &str) -> &str {
    match status {
        "success" => "ok",
        "failure" => "failed",
        "success_with_failures" => "ok with failures",
        other => other,
    }
}

/// A node's counts in words, as the page's script writes them too: `4/4 ok`, then the others
/// (`1 failed · 2 running`); for an op that runs once, its status.
pub(crate) fn summary(counts: &BTreeMap<String, i64>, mapped: bool, live: bool) -> (String, String) {
    // A step still running in a run whose process died runs no more.
    let word = |status: &str| {
        if status == "running" && !live { "interrupted".to_owned() } else { status_word(status).to_owned() }
    };
    let total: i64 = counts.values().sum();
    let ok = counts.get("success").copied().unwrap_or(0);
    let class = ["failure", "running", "abandoned", "cancelled", "skipped"]
        .into_iter()
        .find(|s| counts.get(*s).copied().unwrap_or(0) > 0)
        .map(|s| if s == "running" && !live { "interrupted" } else { s })
        .unwrap_or(if total > 0 { "success" } else { "pending" });
    if !mapped {
        let text = counts.iter().find(|(_, n)| **n > 0).map_or_else(|| "pending".to_owned(), |(s, _)| word(s));
        return (text, class.to_owned());
    }
    let mut parts = vec![format!("{ok}/{total} ok")];
    for status in ["failure", "running", "skipped", "cancelled", "abandoned"] {
        if let Some(n) = counts.get(status).filter(|n| **n > 0) {
            parts.push(format!("{n} {}", word(status)));
        }
    }
    (parts.join(" · "), class.to_owned())
}

/// The graph, each node a link to its clones (mapped) or its step.
pub(crate) fn svg(
    model: &JobModel,
    counts: &BTreeMap<String, BTreeMap<String, i64>>,
    live: bool,
    href: impl Fn(&Node) -> String,
) -> Markup {
    let (nodes, edges) = layout(model);
    let layers = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(1);
    let rows = nodes.iter().map(|n| n.row + 1).max().unwrap_or(1);
    let width = PAD * 2.0 + layers as f64 * NODE_W + (layers - 1) as f64 * GAP_X;
    let height = PAD * 2.0 + rows as f64 * NODE_H + (rows - 1) as f64 * GAP_Y;
    let x = |n: &Node| PAD + n.layer as f64 * (NODE_W + GAP_X);
    let y = |n: &Node| PAD + n.row as f64 * (NODE_H + GAP_Y);
    let empty = BTreeMap::new();
    html! {
        svg #graph xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}"))
            width=(width) height=(height) role="img" aria-label="op graph" {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                }
            }
            @for (from, to, label) in &edges {
                @let (a, b) = (&nodes[*from], &nodes[*to]);
                @let (x1, y1) = (x(a) + NODE_W, y(a) + NODE_H / 2.0);
                @let (x2, y2) = (x(b), y(b) + NODE_H / 2.0);
                @let mid = (x1 + x2) / 2.0;
                path.edge d=(format!("M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}")) marker-end="url(#arrow)" {}
                text.edge-label x=(mid) y=((y1 + y2) / 2.0 - 4.0) text-anchor="middle" { (label) }
            }
            @for (i, node) in nodes.iter().enumerate() {
                @let op_counts = counts.get(&node.op).unwrap_or(&empty);
                @let (text, class) = summary(op_counts, node.depth > 0, live);
                @let counts_json = serde_json::to_string(op_counts).unwrap_or_else(|_| "{}".into());
                a href=(href(node)) {
                    g id=(format!("node-{i}")) class=(format!("node status-{class}")) data-op=(node.op)
                        data-mapped=(if node.depth > 0 { "1" } else { "0" }) data-counts=(counts_json) {
                        rect x=(x(node)) y=(y(node)) width=(NODE_W) height=(NODE_H) rx="6" {}
                        text.label x=(x(node) + 10.0) y=(y(node) + 23.0) { (node.label()) }
                        text.counts id=(format!("counts-{i}")) x=(x(node) + 10.0) y=(y(node) + 44.0) { (text) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::WiredInput;

    fn model(wiring: &[(&str, &[(&str, WireKind)])]) -> JobModel {
        JobModel {
            job: "j".into(),
            ops: wiring.iter().map(|(op, _)| ((*op).to_owned(), Default::default())).collect(),
            wiring: wiring
                .iter()
                .map(|(op, inputs)| {
                    let inputs = inputs
                        .iter()
                        .map(|(from, kind)| WiredInput {
                            name: "x".into(),
                            kind: *kind,
                            op: (*from).to_owned(),
                            output: "result".into(),
                        })
                        .collect();
                    ((*op).to_owned(), inputs)
                })
                .collect(),
        }
    }

    #[test]
    fn the_seed_job_is_three_layers_with_one_mapped_node() {
        let m = model(&[
            ("files", &[]),
            ("process", &[("files", WireKind::Map)]),
            ("summarize", &[("process", WireKind::Collect)]),
        ]);
        let (nodes, edges) = layout(&m);
        let labels: Vec<String> = nodes.iter().map(Node::label).collect();
        assert_eq!(labels, ["files", "process[?]", "summarize"]);
        assert_eq!(nodes.iter().map(|n| n.layer).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(edges, [(0, 1, "map result".into()), (1, 2, "collect result".into())]);
        let counts = BTreeMap::from([("process".to_owned(), BTreeMap::from([("success".to_owned(), 4)]))]);
        let out = svg(&m, &counts, true, |n| format!("/{}", n.op)).into_string();
        assert!(out.contains("4/4 ok"), "{out}");
        assert!(out.contains(r#"id="node-1""#) && out.contains("status-success"), "{out}");
    }

    #[test]
    fn summaries_say_every_status_in_words() {
        let counts = BTreeMap::from([("success".into(), 47), ("failure".into(), 1), ("running".into(), 2)]);
        assert_eq!(summary(&counts, true, true), ("47/50 ok · 1 failed · 2 running".into(), "failure".into()));
        assert_eq!(summary(&counts, true, false).0, "47/50 ok · 1 failed · 2 interrupted");
        assert_eq!(summary(&BTreeMap::new(), false, true), ("pending".into(), "pending".into()));
    }
}
