//! Where every value of the generated passes lives: the memory plan of a network.
//!
//! - **Inference** (`forward_in`, in the generated workspace): each node's value, from the
//!   step that computes it to its last reader, in a slot of the workspace ([`crate::plan`]);
//!   the outputs in the workspace's `output` field; the inputs stay where the caller has them.
//! - **Training** (`forward_train` and `backward`, in the generated tape): the values some
//!   backward pass reads are *saved*, each in a field named after its node, kept from the
//!   forward pass to the backward pass (a layer reads its input; an activation its input,
//!   its output or nothing, as its `Reads` says; `a * b` both operands; `+`, `concat` and
//!   `flatten` nothing). Every other forward value, and every gradient, lives in a slot for
//!   its live range only: the forward values while the forward pass runs, the gradient of a
//!   node from the backward step of its last child to its own. The outputs and their
//!   gradients have fields of their own (`output`, `d_output`), as have the inputs'
//!   gradients (`d_input`).
//!
//! Steps: forward step `k` computes node `k`; backward step `n + (n − 1 − k)` runs node
//! `k`'s backward, so the backward pass visits the nodes in reverse order.

use super::{Model, NodeId, Op};
use crate::builtins::Reads;
use crate::plan::{self, Value};
use crate::shape::Dim;

/// The plan of one pass (inference, or training's forward and backward together).
pub struct Placement {
    /// Each slot's size per sample (scalars): the largest of its values.
    pub slot_sizes: Vec<Dim>,
    /// The slot of each node's value, if it has one.
    pub value_slot: Vec<Option<usize>>,
    /// The slot of each node's gradient, if it has one (training).
    pub grad_slot: Vec<Option<usize>>,
    /// The slot of the scratch memory of each layer application, forward and backward.
    pub scratch_slot: Vec<Option<usize>>,
    pub backward_scratch_slot: Vec<Option<usize>>,
    /// Scalars per sample no plan can go below: the most live at one step.
    pub lower_bound: Dim,
}

impl Placement {
    /// Scalars per sample over all slots.
    pub fn total(&self) -> Dim {
        self.slot_sizes.iter().sum()
    }
}

/// The network's memory plan.
pub struct Memory {
    /// Whether the tape keeps a node's value for the backward pass.
    pub saved: Vec<bool>,
    /// Inference.
    pub infer: Placement,
    /// Training.
    pub train: Placement,
}

/// The plan's sizes in scalars per sample, as the generated constants and `summary()` give
/// them (`nn::MemoryPlan`).
pub struct PerSample {
    /// The workspace: the outputs and the inference slots.
    pub workspace: Dim,
    /// The most the values of one inference step need.
    pub workspace_lower_bound: Dim,
    /// The values the tape keeps for the backward pass (besides the outputs).
    pub tape_saved: Dim,
    /// The outputs, their gradients and the inputs' gradients.
    pub tape_ends: Dim,
    /// The tape's slots.
    pub tape_work: Dim,
    /// The most the values in those slots need at one step.
    pub tape_work_lower_bound: Dim,
}

impl Memory {
    /// The plan's sizes per sample.
    pub fn per_sample(&self, model: &Model) -> PerSample {
        let size_of = |ids: &[NodeId]| -> Dim {
            let sizes: Vec<Dim> = ids.iter().map(|&id| model.nodes[id].size()).collect();
            sizes.iter().sum()
        };
        let outputs = size_of(&model.outputs);
        let saved: Vec<NodeId> = (0..model.nodes.len())
            .filter(|&id| self.saved[id] && !model.outputs.contains(&id))
            .collect();
        PerSample {
            workspace: outputs.add(&self.infer.total()),
            workspace_lower_bound: outputs.add(&self.infer.lower_bound),
            tape_saved: size_of(&saved),
            tape_ends: outputs.add(&outputs).add(&size_of(&model.inputs)),
            tape_work: self.train.total(),
            tape_work_lower_bound: self.train.lower_bound.clone(),
        }
    }
}

/// Which nodes some backward pass reads.
pub fn saved_nodes(model: &Model) -> Vec<bool> {
    let mut saved = vec![false; model.nodes.len()];
    for (id, node) in model.nodes.iter().enumerate() {
        match &node.op {
            Op::Layer { arg, .. } => saved[*arg] = true,
            Op::Activation { info, arg, .. } => match info.reads {
                Reads::Input => saved[*arg] = true,
                Reads::Output => saved[id] = true,
                Reads::Nothing => {}
            },
            Op::Binary {
                op: super::BinOp::Mul,
                left,
                right,
            } => {
                saved[*left] = true;
                saved[*right] = true;
            }
            Op::Input | Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => {}
        }
    }
    saved
}

/// The plan of `model`.
pub fn plan(model: &Model) -> Memory {
    let saved = saved_nodes(model);
    let infer = infer_placement(model);
    let train = train_placement(model, &saved);
    Memory {
        saved,
        infer,
        train,
    }
}

/// A value to place, and what it belongs to.
enum Owner {
    Value(NodeId),
    Grad(NodeId),
    Scratch(NodeId),
    BackwardScratch(NodeId),
}

/// For each node, the last forward step that reads it (itself if nothing does).
fn last_reads(model: &Model) -> Vec<usize> {
    let mut last: Vec<usize> = (0..model.nodes.len()).collect();
    for (id, node) in model.nodes.iter().enumerate() {
        for parent in node.op.parents() {
            last[parent] = last[parent].max(id);
        }
    }
    last
}

/// Scratch memory per sample of the layer application computing `node`, if it has any.
fn scratch(model: &Model, node: NodeId) -> Option<Dim> {
    match model.nodes[node].op {
        Op::Layer { layer, .. } => {
            Some(model.layers[layer].scratch_per_sample()).filter(|size| size.known() != Some(0))
        }
        _ => None,
    }
}

/// A value to place: its size, as the macro knows it, and its live range.
struct Sized {
    size: Dim,
    first: usize,
    last: usize,
}

fn infer_placement(model: &Model) -> Placement {
    let last = last_reads(model);
    let mut values = Vec::new();
    let mut owners = Vec::new();
    for (id, node) in model.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Input) && !model.outputs.contains(&id) {
            values.push(Sized {
                size: node.size(),
                first: id,
                last: last[id],
            });
            owners.push(Owner::Value(id));
        }
        if let Some(scratch) = scratch(model, id) {
            values.push(Sized {
                size: scratch,
                first: id,
                last: id,
            });
            owners.push(Owner::Scratch(id));
        }
    }
    place(model, &values, &owners)
}

fn train_placement(model: &Model, saved: &[bool]) -> Placement {
    let n = model.nodes.len();
    let last = last_reads(model);
    let backward_step = |id: NodeId| n + (n - 1 - id);
    let mut last_child: Vec<Option<NodeId>> = vec![None; n];
    for (id, node) in model.nodes.iter().enumerate() {
        for parent in node.op.parents() {
            last_child[parent] = Some(id);
        }
    }
    let mut values = Vec::new();
    let mut owners = Vec::new();
    for (id, node) in model.nodes.iter().enumerate() {
        let output = model.outputs.contains(&id);
        let input = matches!(node.op, Op::Input);
        if !input && !output && !saved[id] {
            values.push(Sized {
                size: node.size(),
                first: id,
                last: last[id],
            });
            owners.push(Owner::Value(id));
        }
        if !input
            && !output
            && let Some(child) = last_child[id]
        {
            values.push(Sized {
                size: node.size(),
                first: backward_step(child),
                last: backward_step(id),
            });
            owners.push(Owner::Grad(id));
        }
        if let Some(scratch) = scratch(model, id) {
            values.push(Sized {
                size: scratch.clone(),
                first: id,
                last: id,
            });
            owners.push(Owner::Scratch(id));
            values.push(Sized {
                size: scratch,
                first: backward_step(id),
                last: backward_step(id),
            });
            owners.push(Owner::BackwardScratch(id));
        }
    }
    place(model, &values, &owners)
}

/// Slots for `values`. When every size is a number, [`plan::assign`] weighs them; when one is
/// a constant of the user's (`Dense<H>`), the macro cannot compare sizes, so it gives every
/// value the same weight: the fewest slots any plan can have (one per value live at the
/// busiest step), each as large as its largest value, `max(H, 2 * H)` for rustc to evaluate.
fn place(model: &Model, values: &[Sized], owners: &[Owner]) -> Placement {
    let all_known = values.iter().all(|v| v.size.known().is_some());
    let weighed: Vec<Value> = values
        .iter()
        .map(|v| Value {
            size: if all_known {
                v.size.known().unwrap_or(1)
            } else {
                1
            },
            first: v.first,
            last: v.last,
        })
        .collect();
    let assignment = plan::assign(&weighed);
    let mut slot_sizes = vec![Dim::Known(0); assignment.slot_sizes.len()];
    for (value, &slot) in values.iter().zip(&assignment.slot_of) {
        slot_sizes[slot] = slot_sizes[slot].max(&value.size);
    }
    let n = model.nodes.len();
    let mut placement = Placement {
        slot_sizes,
        value_slot: vec![None; n],
        grad_slot: vec![None; n],
        scratch_slot: vec![None; n],
        backward_scratch_slot: vec![None; n],
        lower_bound: lower_bound(values),
    };
    for (owner, &slot) in owners.iter().zip(&assignment.slot_of) {
        match *owner {
            Owner::Value(id) => placement.value_slot[id] = Some(slot),
            Owner::Grad(id) => placement.grad_slot[id] = Some(slot),
            Owner::Scratch(id) => placement.scratch_slot[id] = Some(slot),
            Owner::BackwardScratch(id) => placement.backward_scratch_slot[id] = Some(slot),
        }
    }
    placement
}

/// The most memory (scalars per sample) live at one step: [`plan::lower_bound`], or, when a
/// size is symbolic, the expression of the largest sum over the steps.
fn lower_bound(values: &[Sized]) -> Dim {
    let known: Option<Vec<Value>> = values
        .iter()
        .map(|v| {
            v.size.known().map(|size| Value {
                size,
                first: v.first,
                last: v.last,
            })
        })
        .collect();
    if let Some(known) = known {
        return Dim::Known(plan::lower_bound(&known));
    }
    let steps = values.iter().map(|v| v.last + 1).max().unwrap_or(0);
    (0..steps)
        .map(|step| {
            let live: Vec<Dim> = values
                .iter()
                .filter(|v| v.first <= step && step <= v.last)
                .map(|v| v.size.clone())
                .collect();
            live.iter().sum::<Dim>()
        })
        .fold(Dim::Known(0), |bound, live| bound.max(&live))
}
