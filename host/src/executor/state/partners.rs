//! Zip and join: a clone of a mapped op also takes the record of a sibling fan-out (its
//! *partner*) that pairs with the record it was cloned from, at the same position (`zip`) or
//! with the same mapping key (`join`).
//!
//! It streams: a clone is created by its own record, as any clone, and waits until its partner
//! record exists, so it starts once both are there, whichever comes first. What cannot pair is
//! decided when the fan-outs close: a clone without a partner fails (`zip`, `join` with
//! `how = "exact"`) or is skipped (an inner `join`); records of the partner that nothing pairs
//! with fail one step each, named by their own key, which the collects of the op wait for.

use std::collections::{HashMap, VecDeque};

use super::rules::{Outcome, Unmet};
use super::{FanId, InstanceId, RunState};
use crate::executor::report::StepStatus;
use crate::job::{Binding, DynamicRef, JoinHow, Pairing};
use crate::value::JsonText;

/// The inputs digest recorded for a step failed because it had no partner: it matches no real
/// inputs, so a re-execution or resume never takes that failure as the step's result.
pub(super) const UNPAIRED: &str = "unpaired";

/// Which record of a partner fan-out a clone pairs with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum PairAt {
    /// The record at this index (emission order).
    Position(usize),
    /// The record with this mapping key.
    Key(String),
}

/// What a fan-out that is some op's partner keeps: the clones waiting on its records, and its
/// records by key (only fan-outs that are zipped or joined carry it).
#[derive(Default)]
pub(super) struct PartnerSide {
    waiting: HashMap<PairAt, Vec<(InstanceId, usize)>>,
    by_key: HashMap<String, usize>,
}

/// One zipped or joined op of the plan: the output it is mapped over, and one partner.
#[derive(Debug, Clone)]
pub(super) struct PairedOp {
    /// The mapped op.
    pub(super) op: usize,
    /// The dynamic output its clones come from.
    pub(super) mapped_over: DynamicRef,
    /// The partner output.
    pub(super) partner: DynamicRef,
    /// How the two pair.
    pub(super) pairing: Pairing,
}

/// Every zipped or joined (op, partner) of `plan`.
pub(super) fn paired_ops(plan: &crate::job::Plan) -> Vec<PairedOp> {
    let mut paired = Vec::new();
    for (index, op) in plan.ops.iter().enumerate() {
        let Some(mapped_over) = op.scope.last() else { continue };
        for input in &op.inputs {
            if let Binding::Partner { op: partner, output, pairing } = &input.binding {
                paired.push(PairedOp {
                    op: index,
                    mapped_over: mapped_over.clone(),
                    partner: DynamicRef { op: *partner, output: output.clone() },
                    pairing: *pairing,
                });
            }
        }
    }
    paired
}

impl RunState<'_> {
    /// The partner side of `fan`, made (and its records indexed by key) on first use.
    fn partner_side(&mut self, fan: FanId) -> &mut PartnerSide {
        let fan = &mut self.fans[fan];
        fan.partner.get_or_insert_with(|| {
            let by_key = fan.keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
            Box::new(PartnerSide { waiting: HashMap::new(), by_key })
        })
    }

    /// The index of the record of `fan` at `at`, if it exists yet.
    fn partner_index(&self, fan: FanId, at: &PairAt) -> Option<usize> {
        let fan = &self.fans[fan];
        match at {
            PairAt::Position(i) => (*i < fan.keys.len()).then_some(*i),
            // Every fan-out a clone pairs with has its side ([`Self::partner_of`]).
            PairAt::Key(key) => fan.partner.as_ref().and_then(|side| side.by_key.get(key).copied()),
        }
    }

    /// Which partner record clone `id` pairs with: its own record's position, or its key.
    fn pair_at(&self, id: InstanceId, pairing: Pairing) -> Option<PairAt> {
        let instance = &self.instances[id];
        let (_, index) = instance.record?;
        Some(match pairing {
            Pairing::Position => PairAt::Position(index),
            Pairing::Key(_) => PairAt::Key(instance.keys.last()?.clone()),
        })
    }

    /// Where the partner record of clone `id` is: its fan-out (of the partner op's step under the
    /// same outer keys) and the position or key to look at.
    pub(super) fn partner_of(
        &mut self,
        id: InstanceId,
        partner: usize,
        output: &str,
        pairing: Pairing,
    ) -> Option<(FanId, PairAt)> {
        let at = self.pair_at(id, pairing)?;
        let producer = self.instance_at(partner, &self.instances[id].keys)?;
        let fan = self.fan_for(producer, output);
        // Indexed by key from now on: a join looks each clone's key up once, not by a scan.
        self.partner_side(fan);
        Some((fan, at))
    }

    /// The partner record's value for clone `id`, once it exists.
    pub(super) fn partner_value(
        &self,
        id: InstanceId,
        partner: usize,
        output: &str,
        pairing: Pairing,
    ) -> Option<JsonText> {
        let at = self.pair_at(id, pairing)?;
        let producer = self.instance_at(partner, &self.instances[id].keys)?;
        let fan = *self.fan_index.get(&(producer, output.to_owned()))?;
        self.partner_index(fan, &at).map(|i| self.fans[fan].values[i].clone())
    }

    /// Wait, as dependency `dep` of `waiter`, for the record of `fan` at `at`.
    pub(super) fn wait_for_partner(&mut self, fan: FanId, at: PairAt, waiter: InstanceId, dep: usize) {
        self.partner_side(fan).waiting.entry(at).or_default().push((waiter, dep));
    }

    /// Whether a partner dependency is met, lost, or still open.
    pub(super) fn resolve_partner(
        &self,
        fan: FanId,
        at: &PairAt,
        pairing: Pairing,
        waiter: InstanceId,
    ) -> Option<Outcome<InstanceId>> {
        // A partner that did not succeed lends nothing, not even records it emitted first (an op
        // with retries keeps those of its last attempt in the run record only).
        let found = self.partner_index(fan, at).is_some();
        if found && self.fans[fan].closed.is_none_or(|s| s == StepStatus::Success) {
            return Some(Outcome::Met);
        }
        let fan = &self.fans[fan];
        let ended = fan.closed?;
        let producer = &self.instances[fan.producer].step_key;
        let partner = format!("{producer}.{}", fan.output);
        let lost = match ended {
            StepStatus::Failure => Unmet::Failed(vec![producer.clone()]),
            StepStatus::Skipped => Unmet::Skipped(vec![partner]),
            StepStatus::Abandoned | StepStatus::Cancelled => Unmet::NotExecuted(vec![producer.clone()]),
            StepStatus::Success if !super::rules::dynamic_output_supplied(fan.keys.len(), fan.required) => {
                Unmet::Skipped(vec![partner])
            }
            StepStatus::Success => {
                let own = self.instances[waiter].keys.last().cloned().unwrap_or_default();
                match (pairing, at) {
                    (Pairing::Position, PairAt::Position(i)) => Unmet::Invalid(format!(
                        "zip: {partner} emitted {} records, so this clone's record (position {i}, key \"{own}\") has \
                         no partner; a zipped map needs as many records from each output",
                        fan.keys.len()
                    )),
                    (Pairing::Key(JoinHow::Inner), _) => Unmet::Skipped(vec![format!("{partner}[{own}]")]),
                    _ => Unmet::Invalid(format!(
                        "join: {partner} has no record with key \"{own}\" (how = \"exact\" needs every key on both \
                         sides)"
                    )),
                }
            }
        };
        Some(Outcome::Unmet(lost))
    }

    /// `fan` has a new record at `index` with `key`: wake the clones waiting for it.
    pub(super) fn partner_arrived(&mut self, fan: FanId, index: usize, key: &str, ready: &mut VecDeque<InstanceId>) {
        let Some(side) = self.fans[fan].partner.as_deref_mut() else { return };
        side.by_key.insert(key.to_owned(), index);
        let mut woken = side.waiting.remove(&PairAt::Position(index)).unwrap_or_default();
        woken.extend(side.waiting.remove(&PairAt::Key(key.to_owned())).unwrap_or_default());
        for (waiter, dep) in woken {
            self.notify(waiter, dep, ready);
        }
    }

    /// `fan` closed: the clones still waiting on it will find no record.
    pub(super) fn partner_closed(&mut self, fan: FanId, ready: &mut VecDeque<InstanceId>) {
        let Some(side) = self.fans[fan].partner.as_deref_mut() else { return };
        let woken: Vec<(InstanceId, usize)> = side.waiting.drain().flat_map(|(_, w)| w).collect();
        for (waiter, dep) in woken {
            self.notify(waiter, dep, ready);
        }
    }

    /// The fan-outs that `fan` is paired with (as the mapped-over or the partner side), for the
    /// same outer keys: (paired op index in `self.paired`, mapped-over fan, partner fan).
    fn pairings_of(&mut self, fan: FanId) -> Vec<(usize, FanId, FanId)> {
        let producer = self.fans[fan].producer;
        let (op, output) = (self.instances[producer].op, self.fans[fan].output.clone());
        let keys = self.instances[producer].keys.clone();
        let mut found = Vec::new();
        for (index, paired) in self.paired.clone().iter().enumerate() {
            let touches = |side: &DynamicRef| side.op == op && side.output == output;
            if !touches(&paired.mapped_over) && !touches(&paired.partner) {
                continue;
            }
            let (Some(mapped), Some(partner)) =
                (self.instance_at(paired.mapped_over.op, &keys), self.instance_at(paired.partner.op, &keys))
            else {
                continue;
            };
            found.push((
                index,
                self.fan_for(mapped, &paired.mapped_over.output),
                self.fan_for(partner, &paired.partner.output),
            ));
        }
        found
    }

    /// Whether a collect over op `op`'s clones under `mapped` must still wait: the step of some
    /// partner of `op` has not ended, so a record of it that pairs with nothing may still fail a
    /// step of `op`.
    pub(super) fn partners_open(&self, mapped: FanId, op: usize) -> bool {
        let keys = &self.instances[self.fans[mapped].producer].keys;
        self.paired.iter().filter(|p| p.op == op).any(|p| {
            let Some(producer) = self.instance_at(p.partner.op, keys) else { return true };
            // Its fan-out, not its step: both sides may be one op's, whose fan-outs close one
            // after the other once it ends.
            match self.fan_index.get(&(producer, p.partner.output.clone())) {
                Some(&fan) => self.fans[fan].closed.is_none(),
                None => self.instances[producer].ended().is_none(),
            }
        })
    }

    /// A new fan-out `fan` that is one side of a pairing: make the other side's too, so that
    /// each closes with its producer and the pairing is settled even if one side emits nothing.
    pub(super) fn pair_fans(&mut self, fan: FanId) {
        if !self.paired.is_empty() {
            let _ = self.pairings_of(fan);
        }
    }

    /// `fan` closed. Once both sides of a pairing have succeeded, every partner record that pairs
    /// with no clone fails one step of the paired op, named by that record's key; then the
    /// collects over the op may resolve.
    pub(super) fn settle_pairings(&mut self, fan: FanId, ready: &mut VecDeque<InstanceId>) {
        for (paired, mapped, partner) in self.pairings_of(fan) {
            // A mapped-over optional output that emitted nothing was not produced: the op is
            // skipped there, and its partner's records pair with nothing to fail.
            let supplied =
                super::rules::dynamic_output_supplied(self.fans[mapped].keys.len(), self.fans[mapped].required);
            let both_ok = self.fans[mapped].closed == Some(StepStatus::Success)
                && self.fans[partner].closed == Some(StepStatus::Success)
                && supplied;
            if both_ok && self.settled_pairings.insert((paired, mapped)) {
                self.fail_unpaired(paired, mapped, partner);
            }
            if partner == fan {
                self.fire_fan(mapped, None, ready);
            }
        }
    }

    fn fail_unpaired(&mut self, paired: usize, mapped: FanId, partner: FanId) {
        let PairedOp { op, pairing, .. } = self.paired[paired].clone();
        let mapped_name =
            format!("{}.{}", self.instances[self.fans[mapped].producer].step_key, self.fans[mapped].output);
        let partner_name =
            format!("{}.{}", self.instances[self.fans[partner].producer].step_key, self.fans[partner].output);
        let (mapped_count, partner_count) = (self.fans[mapped].keys.len(), self.fans[partner].keys.len());
        let unpaired: Vec<(usize, String)> = match pairing {
            Pairing::Position => {
                (mapped_count..partner_count).map(|i| (i, self.fans[partner].keys[i].clone())).collect()
            }
            Pairing::Key(JoinHow::Inner) => Vec::new(),
            Pairing::Key(JoinHow::Exact) => {
                let mapped_keys: std::collections::HashSet<&String> = self.fans[mapped].keys.iter().collect();
                self.fans[partner]
                    .keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| !mapped_keys.contains(k))
                    .map(|(i, k)| (i, k.clone()))
                    .collect()
            }
        };
        let outer = self.instances[self.fans[mapped].producer].keys.clone();
        let name = self.plan.ops[op].name.clone();
        for (position, key) in unpaired {
            let message = match pairing {
                Pairing::Position => format!(
                    "zip: {partner_name} emitted {partner_count} records and {mapped_name} {mapped_count}; the record \
                     at position {position} (key \"{key}\") has no partner (a zipped map needs as many records from \
                     each output)"
                ),
                Pairing::Key(_) => format!(
                    "join: {partner_name} emitted key \"{key}\", which {mapped_name} did not (how = \"exact\" needs \
                     every key on both sides)"
                ),
            };
            // A zipped partner's key may already name a clone: then the position names the step
            // (`zip_2`, or `zip_2_1`… if even that is taken), so the failure is never lost.
            let mut keys = outer.clone();
            keys.push(key);
            let mut n = 0;
            while self.by_key.contains_key(&crate::keys::step_key(&name, &keys)) {
                keys.pop();
                keys.push(if n == 0 { format!("zip_{position}") } else { format!("zip_{position}_{n}") });
                n += 1;
            }
            let id = self.create(op, keys, None);
            self.instances[id].inputs_digest = Some(UNPAIRED.into());
            // Counted among the op's clones under the mapped fan-out, so its collects see it.
            self.instances[id].fan_parent = Some(mapped);
            self.fans[mapped].children.push(id);
            *self.fans[mapped].unfinished.entry(op).or_insert(0) += 1;
            self.terminate(id, StepStatus::Failure, Some(message));
        }
    }
}
