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

/// The plan of one pass (inference, or training's forward and backward together).
pub struct Placement {
    /// Each slot's size per sample (scalars).
    pub slot_sizes: Vec<usize>,
    /// The slot of each node's value, if it has one.
    pub value_slot: Vec<Option<usize>>,
    /// The slot of each node's gradient, if it has one (training).
    pub grad_slot: Vec<Option<usize>>,
    /// The slot of the scratch memory of each layer application, forward and backward.
    pub scratch_slot: Vec<Option<usize>>,
    pub backward_scratch_slot: Vec<Option<usize>>,
    /// Scalars per sample no plan can go below: the most live at one step.
    pub lower_bound: usize,
}

impl Placement {
    /// Scalars per sample over all slots.
    pub fn total(&self) -> usize {
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
    pub workspace: usize,
    /// The most the values of one inference step need.
    pub workspace_lower_bound: usize,
    /// The values the tape keeps for the backward pass (besides the outputs).
    pub tape_saved: usize,
    /// The outputs, their gradients and the inputs' gradients.
    pub tape_ends: usize,
    /// The tape's slots.
    pub tape_work: usize,
    /// The most the values in those slots need at one step.
    pub tape_work_lower_bound: usize,
}

impl Memory {
    /// The plan's sizes per sample.
    pub fn per_sample(&self, model: &Model) -> PerSample {
        let size_of = |ids: &[NodeId]| ids.iter().map(|&id| model.nodes[id].size()).sum::<usize>();
        let outputs = size_of(&model.outputs);
        let saved = model
            .nodes
            .iter()
            .enumerate()
            .filter(|&(id, _)| self.saved[id] && !model.outputs.contains(&id))
            .map(|(_, node)| node.size())
            .sum();
        PerSample {
            workspace: outputs + self.infer.total(),
            workspace_lower_bound: outputs + self.infer.lower_bound,
            tape_saved: saved,
            tape_ends: 2 * outputs + size_of(&model.inputs),
            tape_work: self.train.total(),
            tape_work_lower_bound: self.train.lower_bound,
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

/// Scratch memory per sample of the layer application computing `node` (0 if none).
fn scratch(model: &Model, node: NodeId) -> usize {
    match model.nodes[node].op {
        Op::Layer { layer, .. } => model.layers[layer].scratch_per_sample(),
        _ => 0,
    }
}

fn infer_placement(model: &Model) -> Placement {
    let last = last_reads(model);
    let mut values = Vec::new();
    let mut owners = Vec::new();
    for (id, node) in model.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Input) && !model.outputs.contains(&id) {
            values.push(Value {
                size: node.size(),
                first: id,
                last: last[id],
            });
            owners.push(Owner::Value(id));
        }
        let scratch = scratch(model, id);
        if scratch > 0 {
            values.push(Value {
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
            values.push(Value {
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
            values.push(Value {
                size: node.size(),
                first: backward_step(child),
                last: backward_step(id),
            });
            owners.push(Owner::Grad(id));
        }
        let scratch = scratch(model, id);
        if scratch > 0 {
            values.push(Value {
                size: scratch,
                first: id,
                last: id,
            });
            owners.push(Owner::Scratch(id));
            values.push(Value {
                size: scratch,
                first: backward_step(id),
                last: backward_step(id),
            });
            owners.push(Owner::BackwardScratch(id));
        }
    }
    place(model, &values, &owners)
}

fn place(model: &Model, values: &[Value], owners: &[Owner]) -> Placement {
    let assignment = plan::assign(values);
    let n = model.nodes.len();
    let mut placement = Placement {
        slot_sizes: assignment.slot_sizes.clone(),
        value_slot: vec![None; n],
        grad_slot: vec![None; n],
        scratch_slot: vec![None; n],
        backward_scratch_slot: vec![None; n],
        lower_bound: plan::lower_bound(values),
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
