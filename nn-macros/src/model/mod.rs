//! Stage 2: the checked model of a network, what `expand` and `explain` read. Built from the
//! syntax tree by [`check`], which resolves names, orders the nodes (statement order is a
//! topological order, since a node may only use nodes defined before it), infers every shape
//! and checks every rule. Nothing here refers to the syntax tree.

mod check;
mod int8;
pub mod memory;

pub use check::build;
pub use int8::{Int8Kind, Int8Layer};

use crate::builtins::ActivationInfo;
use crate::layers::BuiltinLayer;
use crate::shape::{Check, Dim, Shape};
use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, Ident, Type, Visibility};

/// Index of a node in [`Model::nodes`].
pub type NodeId = usize;

/// A checked network: layers, nodes in execution order, inputs and outputs.
pub struct Model {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub layers: Vec<LayerDecl>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<NodeId>,
    pub outputs: Vec<NodeId>,
    /// The shape rules the macro could not decide (a size is a constant), for rustc.
    pub checks: Vec<Check>,
    /// With `#[nn(int8)]`: the layers of the int8 network, in order (checked to be a
    /// sequence of Dense and Conv2d layers, each maybe followed by a ReLU, with MaxPool2d,
    /// Flatten and Dropout between them).
    pub int8: Option<Vec<Int8Layer>>,
}

/// A parameterised layer: a field of the network struct. Its input is that of its first
/// use (every use of a layer has the same).
pub struct LayerDecl {
    pub name: Ident,
    pub kind: LayerKind,
    /// Input features: the rows of the matrix the layer reads (for a recurrent layer called
    /// with an initial state, the sequence and the state packed together).
    pub input: Dim,
    /// Input shape, as the layer's rules see it (for a recurrent layer, the sequence's).
    pub input_shape: Shape,
    /// Output shape.
    pub output: Shape,
    /// A recurrent layer called with its initial state (`gru(x, h0)`).
    pub with_state: bool,
    /// Its initialisation scheme, an `nn::init::Init` variant: `#[init(..)]`, or the default
    /// for the activation after it.
    pub init: &'static str,
}

/// What a layer is.
pub enum LayerKind {
    /// A built-in layer, its arguments checked.
    Builtin(Box<dyn BuiltinLayer>),
    /// A user type implementing `nn::Layer`.
    Custom(Box<Type>),
}

impl LayerDecl {
    /// The layer's operation as the summary shows it: `Dense(16 → 32)`, `Conv2d(1 → 6, 5×5)`,
    /// or a user's type.
    pub fn describe(&self) -> String {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.describe(&self.input_shape, &self.output),
            LayerKind::Custom(ty) => ty.to_token_stream().to_string().replace(' ', ""),
        }
    }

    /// The number of trainable scalars, if the macro knows it (a user's type knows its own).
    pub fn param_count(&self) -> Option<Dim> {
        match &self.kind {
            LayerKind::Builtin(builtin) => Some(builtin.param_count(&self.input_shape)),
            LayerKind::Custom(_) => None,
        }
    }

    /// Whether the layer may keep state across passes (a field of the network's `state`):
    /// built-in layers say; a user's layer is assumed to.
    pub fn has_state(&self) -> bool {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.has_state(),
            LayerKind::Custom(_) => true,
        }
    }

    /// Scalars of scratch memory per sample its passes use: a built-in layer's rule; none
    /// for a user's layer (the generated code checks its `Layer::SCRATCH` is 0).
    pub fn scratch_per_sample(&self) -> Dim {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.scratch_per_sample(&self.input_shape),
            LayerKind::Custom(_) => Dim::Known(0),
        }
    }

    /// Scalars of scratch memory its passes use whatever the batch: a built-in layer's rule;
    /// none for a user's layer (the generated code checks its `Layer::SCRATCH_PER_CALL` is 0).
    pub fn scratch_per_call(&self) -> Dim {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.scratch_per_call(&self.input_shape),
            LayerKind::Custom(_) => Dim::Known(0),
        }
    }

    /// Scalars of the buffer shared by the layers' scratch that does not grow with the batch:
    /// the largest layer's.
    pub fn call_scratch(layers: &[Self]) -> Dim {
        layers
            .iter()
            .map(Self::scratch_per_call)
            .fold(Dim::Known(0), |most, size| most.max(&size))
    }

    /// Whether the layer may keep a cache in the tape for its backward pass.
    pub fn has_cache(&self) -> bool {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.has_cache(&self.input_shape),
            LayerKind::Custom(_) => true,
        }
    }
}

/// A node of the graph: a value computed once per forward pass.
pub struct Node {
    /// The user's name for it, or one the macro chose (`fc1_out`).
    pub name: Ident,
    pub op: Op,
    /// Shape of one sample; stored as a vector of `shape.size()` features.
    pub shape: Shape,
    /// How messages name it: its name if the user gave one, else its expression (`fc1(x)`).
    pub label: String,
    /// The expression that computes it, in terms of its parents' labels: `h + r`.
    pub expr: String,
    /// Where the user declared its shape (inputs), for rustc's errors on the generated code.
    pub span: Span,
}

impl Node {
    /// Number of features of one sample.
    pub fn size(&self) -> Dim {
        self.shape.size()
    }
}

/// How a node's value is computed from its parents.
pub enum Op {
    Input,
    /// A layer applied to a node; `shared`: not the layer's first use.
    Layer {
        layer: usize,
        arg: NodeId,
        shared: bool,
    },
    Activation {
        info: &'static ActivationInfo,
        params: Vec<f64>,
        arg: NodeId,
    },
    Binary {
        op: BinOp,
        left: NodeId,
        right: NodeId,
    },
    /// Vectors (or tensors agreeing but in their first size) stacked.
    Concat(Vec<NodeId>),
    /// The same values as a vector: `[C, H, W]` → `[C·H·W]`.
    Flatten(NodeId),
}

/// An element-wise operation of two nodes of one shape.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a * b`, element by element.
    Mul,
}

impl Op {
    /// The nodes this one reads.
    pub fn parents(&self) -> Vec<NodeId> {
        match self {
            Op::Input => Vec::new(),
            Op::Layer { arg, .. } | Op::Activation { arg, .. } | Op::Flatten(arg) => vec![*arg],
            Op::Binary { left, right, .. } => vec![*left, *right],
            Op::Concat(parts) => parts.clone(),
        }
    }
}
