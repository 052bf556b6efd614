//! The graph, as the derivation and the diagrams read it.

use crate::layers::{BuiltinLayer, Use};
use crate::math::{Math, numbers};
use crate::model::{LayerKind, Model, NodeId, Op};
use crate::shape::Dim;

/// The model with what the derivation needs precomputed.
pub struct Graph<'a> {
    pub model: &'a Model,
    /// Each node's children (the nodes reading it), in execution order, each once.
    pub children: Vec<Vec<NodeId>>,
    /// Each layer's uses (the nodes applying it), in execution order.
    pub uses: Vec<Vec<NodeId>>,
}

impl<'a> Graph<'a> {
    pub fn new(model: &'a Model) -> Self {
        let mut children = vec![Vec::new(); model.nodes.len()];
        let mut uses = vec![Vec::new(); model.layers.len()];
        for (id, node) in model.nodes.iter().enumerate() {
            for parent in node.op.parents() {
                if !children[parent].contains(&id) {
                    children[parent].push(id);
                }
            }
            if let Op::Layer { layer, .. } = node.op {
                uses[layer].push(id);
            }
        }
        Graph {
            model,
            children,
            uses,
        }
    }

    /// A node's name.
    pub fn name(&self, id: NodeId) -> String {
        self.model.nodes[id].name.to_string()
    }

    /// A node's value, as an expression.
    pub fn node(&self, id: NodeId) -> Math {
        Math::Node(self.name(id))
    }

    /// `∂L/∂node`.
    pub fn grad(&self, id: NodeId) -> Math {
        Math::Grad(Box::new(self.node(id)))
    }

    /// Whether the node is an output of the network.
    pub fn is_output(&self, id: NodeId) -> bool {
        self.model.outputs.contains(&id)
    }

    /// `(k, n)` if the node is use `k` (from 1) of a layer used `n > 1` times.
    pub fn shared_use(&self, id: NodeId) -> Option<(usize, usize)> {
        let Op::Layer { layer, .. } = self.model.nodes[id].op else {
            return None;
        };
        let uses = &self.uses[layer];
        let k = uses.iter().position(|&u| u == id)? + 1;
        (uses.len() > 1).then_some((k, uses.len()))
    }

    /// The operation as the summary table writes it (`fc1: Dense(16 → 32)`), without the
    /// summary's `, shared` mark.
    pub fn operation(&self, id: NodeId) -> String {
        let node = &self.model.nodes[id];
        match &node.op {
            Op::Input => "input".to_string(),
            Op::Layer { layer, .. } => {
                let decl = &self.model.layers[*layer];
                format!("{}: {}", decl.name, decl.describe())
            }
            Op::Activation { info, params, .. } => {
                if params.is_empty() {
                    info.func.to_string()
                } else {
                    format!("{}({})", info.func, numbers(params))
                }
            }
            Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => node.expr.clone(),
        }
    }

    /// The rows (from 1) that the `k`-th part of a concatenation fills, if `child` is one:
    /// along the first dimension, or, for a vector, of the parts' values (a recurrent
    /// layer's sequence and initial state are packed so).
    pub fn concat_rows(&self, child: NodeId, k: usize) -> Option<(Dim, Dim)> {
        let Op::Concat(parts) = &self.model.nodes[child].op else {
            return None;
        };
        let flat = self.model.nodes[child].shape.rank() == 1;
        let rows = |part: NodeId| {
            let shape = &self.model.nodes[part].shape;
            if flat {
                shape.size()
            } else {
                shape.dims()[0].clone()
            }
        };
        let before = parts[..k]
            .iter()
            .fold(Dim::Known(0), |sum, &p| sum.add(&rows(p)));
        Some((before.add(&Dim::Known(1)), before.add(&rows(parts[k]))))
    }

    /// If node `id` applies a built-in layer: the layer, and the use as its equations name
    /// it.
    pub fn builtin_use(&self, id: NodeId) -> Option<(&'a dyn BuiltinLayer, Use<'a>)> {
        let model = self.model;
        let Op::Layer { layer, arg, .. } = model.nodes[id].op else {
            return None;
        };
        let decl = &model.layers[layer];
        let LayerKind::Builtin(builtin) = &decl.kind else {
            return None;
        };
        // A recurrent layer called with its initial state reads the sequence and the state
        // packed into one node.
        let parts = match &model.nodes[arg].op {
            Op::Concat(parts) if decl.with_state => parts.iter().map(|&p| self.node(p)).collect(),
            _ => Vec::new(),
        };
        let at = Use {
            layer: decl.name.to_string(),
            x: self.node(arg),
            parts,
            y: self.node(id),
            input: &decl.input_shape,
        };
        Some((builtin.as_ref(), at))
    }
}
