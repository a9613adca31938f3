//! Step selections for `reexecute --step`, in Dagster's syntax (`_core/selector/subset_selector.py`,
//! `parse_clause`): a step key or pattern, `op[key]` or `op[?]` (every key) for a mapped op, with
//! `+` (one level) or `*` (every level) upstream before it and downstream after it, and the graph
//! of a recorded run's steps those levels are counted on.

use std::collections::{HashMap, VecDeque};

use super::reuse::ReuseError;
use crate::job::{Binding, Plan};

/// Every level (`*`).
const ALL_LEVELS: usize = usize::MAX;

/// One key of a selected step: a key, or `?` for every key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyPattern {
    Any,
    Key(String),
}

/// A parsed selection: `[*|+…]op[key]…[+…|*]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Levels upstream: the number of leading `+`, or every level for a leading `*`.
    pub up: usize,
    /// Levels downstream: the number of trailing `+`, or every level for a trailing `*`.
    pub down: usize,
    /// The step part, as written (`op[key]`, `op[?]`): what an unknown-step error names.
    pub name: String,
    op: String,
    keys: Vec<KeyPattern>,
}

impl Selector {
    /// Parse one selection as Dagster does: `^(\*?\+*)?(name)(\+*\*?)?$`.
    pub fn parse(text: &str) -> Result<Self, ReuseError> {
        let invalid = |reason: &str| ReuseError::InvalidSelection { selection: text.to_owned(), reason: reason.into() };
        let body = text.trim();
        let (up, rest) = match body.strip_prefix('*') {
            Some(rest) => (ALL_LEVELS, rest.trim_start_matches('+')),
            None => {
                let rest = body.trim_start_matches('+');
                (body.len() - rest.len(), rest)
            }
        };
        let (down, name) = match rest.strip_suffix('*') {
            Some(name) => (ALL_LEVELS, name.trim_end_matches('+')),
            None => {
                let name = rest.trim_end_matches('+');
                (rest.len() - name.len(), name)
            }
        };
        let (op, keys) = split_key(name);
        if op.is_empty() {
            return Err(invalid("it names no op"));
        }
        if !op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid(
                "a selection is an op name, then `[key]` or `[?]` per mapping level, with `+` or `*` before or after \
                 (`op[k]`, `op[?]*`, `+op`, `++op[k]+`)",
            ));
        }
        let well_formed = name[op.len()..].is_empty() || (name.ends_with(']') && step_key_of(op, &keys) == name);
        if !well_formed {
            return Err(invalid("its mapping keys must each be written `[key]` or `[?]`"));
        }
        let mut patterns = Vec::with_capacity(keys.len());
        for key in keys {
            if key == "?" {
                patterns.push(KeyPattern::Any);
            } else if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                patterns.push(KeyPattern::Key(key.to_owned()));
            } else {
                return Err(invalid(&format!("\"{key}\" is not a mapping key (^[A-Za-z0-9_]+$) nor `?`")));
            }
        }
        Ok(Self { up, down, name: name.to_owned(), op: op.to_owned(), keys: patterns })
    }

    /// Whether the step `key` is one this selection names (before its `+` and `*` levels).
    pub fn matches(&self, key: &str) -> bool {
        let (op, keys) = split_key(key);
        op == self.op
            && keys.len() == self.keys.len()
            && self.keys.iter().zip(&keys).all(|(pattern, key)| match pattern {
                KeyPattern::Any => true,
                KeyPattern::Key(k) => k == key,
            })
    }

    /// For a selection of one step by its full key (no `?`): that step's op and mapping keys.
    pub fn exact(&self) -> Option<(&str, Vec<String>)> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for pattern in &self.keys {
            match pattern {
                KeyPattern::Any => return None,
                KeyPattern::Key(k) => keys.push(k.clone()),
            }
        }
        Some((&self.op, keys))
    }
}

/// The parts of a step key: `b[k][j]` → (`b`, [`k`, `j`]). Never fails: a malformed key (from an
/// edited store) gives parts that match no op or no step.
pub fn split_key(key: &str) -> (&str, Vec<&str>) {
    let op_end = key.find('[').unwrap_or(key.len());
    let rest = &key[op_end..];
    let inner = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    let keys = match inner {
        Some(inner) => inner.split("][").collect(),
        None if rest.is_empty() => Vec::new(),
        None => vec![rest],
    };
    (&key[..op_end], keys)
}

fn step_key_of(op: &str, keys: &[&str]) -> String {
    let owned: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    crate::keys::step_key(op, &owned)
}

/// The dependencies between the steps of a recorded run, by the plan's bindings: step `t`
/// reads step `s` when `t`'s op has an input from `s`'s op and their key paths agree on the
/// levels they share (a plain input, a record or a chained map: `s` at `t`'s keys cut to `s`'s
/// depth; a collect: every clone under `t`'s keys).
#[derive(Debug, Default)]
pub struct StepGraph {
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
}

impl StepGraph {
    /// The graph of the steps `keys` (indices into it) of a run of `plan`. Steps of an op the
    /// plan does not have (the job changed since) have no edges.
    pub fn new(plan: &Plan, keys: &[&str]) -> Self {
        let op_index: HashMap<&str, usize> = plan.ops.iter().enumerate().map(|(i, op)| (op.name.as_str(), i)).collect();
        let parsed: Vec<(Option<usize>, Vec<&str>)> = keys
            .iter()
            .map(|key| {
                let (op, keys) = split_key(key);
                (op_index.get(op).copied().filter(|&i| plan.ops[i].scope.len() == keys.len()), keys)
            })
            .collect();
        let by_key: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, key)| (*key, i)).collect();
        // The clones of each op under each key path one level up: what a collect reads.
        let mut by_parent: HashMap<(usize, &[&str]), Vec<usize>> = HashMap::new();
        for (i, (op, keys)) in parsed.iter().enumerate() {
            if let (Some(op), Some((_, parent))) = (op, keys.split_last()) {
                by_parent.entry((*op, parent)).or_default().push(i);
            }
        }
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (t, (op, keys)) in parsed.iter().enumerate() {
            let Some(op) = *op else { continue };
            for input in &plan.ops[op].inputs {
                let upstream = input.binding.op();
                let depth = plan.ops[upstream].scope.len();
                match input.binding {
                    Binding::Collect { .. } => {
                        let Some(shared) = depth.checked_sub(1).filter(|&n| n <= keys.len()) else { continue };
                        if let Some(clones) = by_parent.get(&(upstream, &keys[..shared])) {
                            up[t].extend(clones.iter().copied());
                        }
                    }
                    Binding::Plain { .. }
                    | Binding::Record { .. }
                    | Binding::CollectRecords { .. }
                    | Binding::Partner { .. } => {
                        if depth > keys.len() {
                            continue;
                        }
                        let key = step_key_of(&plan.ops[upstream].name, &keys[..depth]);
                        if let Some(&s) = by_key.get(key.as_str()) {
                            up[t].push(s);
                        }
                    }
                }
            }
            up[t].sort_unstable();
            up[t].dedup();
        }
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (t, sources) in up.iter().enumerate() {
            for &s in sources {
                down[s].push(t);
            }
        }
        Self { up, down }
    }

    /// `from` and the steps up to `levels` levels upstream of them.
    pub fn upstream(&self, from: &[usize], levels: usize) -> Vec<usize> {
        reach(&self.up, from, levels)
    }

    /// `from` and the steps up to `levels` levels downstream of them.
    pub fn downstream(&self, from: &[usize], levels: usize) -> Vec<usize> {
        reach(&self.down, from, levels)
    }
}

/// Breadth-first from `from` along `edges`, at most `levels` steps away.
fn reach(edges: &[Vec<usize>], from: &[usize], levels: usize) -> Vec<usize> {
    let mut depth: HashMap<usize, usize> = HashMap::new();
    let mut queue: VecDeque<usize> = VecDeque::new();
    for &i in from {
        if i < edges.len() && depth.insert(i, 0).is_none() {
            queue.push_back(i);
        }
    }
    let mut out: Vec<usize> = Vec::new();
    while let Some(i) = queue.pop_front() {
        out.push(i);
        let d = depth.get(&i).copied().unwrap_or(0);
        if d >= levels {
            continue;
        }
        for &next in &edges[i] {
            if let std::collections::hash_map::Entry::Vacant(entry) = depth.entry(next) {
                entry.insert(d + 1);
                queue.push_back(next);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_keys_split_into_op_and_keys() {
        assert_eq!(split_key("emit"), ("emit", vec![]));
        assert_eq!(split_key("process_file[a_txt]"), ("process_file", vec!["a_txt"]));
        assert_eq!(split_key("b[k][j]"), ("b", vec!["k", "j"]));
        assert_eq!(split_key("b[?]"), ("b", vec!["?"]));
        assert_eq!(split_key("b[k"), ("b", vec!["[k"]));
    }

    #[test]
    fn selections_parse_as_dagster_clauses() {
        let levels = |text: &str| Selector::parse(text).map(|s| (s.up, s.name, s.down));
        assert_eq!(levels("op"), Ok((0, "op".into(), 0)));
        assert_eq!(levels("op*"), Ok((0, "op".into(), ALL_LEVELS)));
        assert_eq!(levels("*op"), Ok((ALL_LEVELS, "op".into(), 0)));
        assert_eq!(levels("+op[k]++"), Ok((1, "op[k]".into(), 2)));
        assert_eq!(levels("++op[?]+*"), Ok((2, "op[?]".into(), ALL_LEVELS)));
        assert_eq!(levels("*+op"), Ok((ALL_LEVELS, "op".into(), 0)));
        assert_eq!(levels(" b[k][?] "), Ok((0, "b[k][?]".into(), 0)));
        for bad in ["", "*", "++", "op*+", "op**", "+*op", "op[", "op[]", "op[a-b]", "op[k]x", "op[k]]", "o-p", "[k]"] {
            assert!(
                matches!(Selector::parse(bad), Err(ReuseError::InvalidSelection { .. })),
                "{bad:?} parsed: {:?}",
                Selector::parse(bad)
            );
        }
    }

    #[test]
    fn a_selection_matches_its_op_and_keys() {
        let s = Selector::parse("b[?][j]").unwrap();
        assert!(s.matches("b[k][j]") && s.matches("b[x][j]"));
        assert!(!s.matches("b[k][i]") && !s.matches("b[k]") && !s.matches("bb[k][j]") && !s.matches("b"));
        assert_eq!(s.exact(), None);
        assert_eq!(Selector::parse("b[k]+").unwrap().exact(), Some(("b", vec!["k".to_owned()])));
        assert!(!Selector::parse("behave").unwrap().matches("behave[f00_txt]"));
    }

    #[test]
    fn levels_are_counted_breadth_first() {
        // 0 → 1 → 2 → 3, and 0 → 3.
        let edges = vec![vec![1, 3], vec![2], vec![3], vec![]];
        let mut one = reach(&edges, &[0], 1);
        one.sort_unstable();
        assert_eq!(one, [0, 1, 3]);
        let mut all = reach(&edges, &[1], ALL_LEVELS);
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(reach(&edges, &[2], 0), [2]);
    }
}
