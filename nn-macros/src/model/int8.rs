//! `#[nn(int8)]`: which networks have an int8 form, and its layers. A sequence of Dense and
//! Conv2d layers, each maybe followed by a ReLU (fused into the int8 layer's clamp), with
//! MaxPool2d (exact on `i8`), Flatten (nothing to do) and Dropout (the identity in inference)
//! between them: the other layers and graph operations have no int8 kernel yet
//! (`docs/int8-design.md`).

use super::{LayerKind, Model, NodeId, Op};
use proc_macro2::Span;

/// What an int8 layer computes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Int8Kind {
    /// `nn::quant::DenseQ8`.
    Dense,
    /// `nn::quant::Conv2dQ8`.
    Conv2d,
    /// `nn::quant::MaxPool2dQ8`: no parameters, the scales pass through.
    MaxPool2d,
}

/// A layer of the int8 network.
pub struct Int8Layer {
    /// Index in [`Model::layers`].
    pub layer: usize,
    pub kind: Int8Kind,
    /// The node of its output: the ReLU's if one follows, else the layer's.
    pub node: NodeId,
    /// Whether a ReLU follows (fused).
    pub relu: bool,
    /// The nodes holding the values of [`node`](Self::node): it, then the Flatten nodes of it
    /// (calibration reads the first one the tape keeps).
    pub same_values: Vec<NodeId>,
}

impl Int8Layer {
    /// Whether it has parameters and quantizes its output (Dense, Conv2d).
    pub fn quantizes(&self) -> bool {
        self.kind != Int8Kind::MaxPool2d
    }
}

const SUPPORTED: &str = "an int8 network is a sequence of Dense and Conv2d layers, each maybe \
                         followed by Relu, with MaxPool2d, Flatten and Dropout between them";

/// The int8 layers of `model`, or an error at the first node without an int8 form (at the
/// attribute `at` if the node has no place of its own).
pub fn plan(model: &Model, at: Span) -> syn::Result<Vec<Int8Layer>> {
    let unsupported = |what: &str| {
        syn::Error::new(
            at,
            format!(
                "`#[nn(int8)]`: {what} has no int8 form; {SUPPORTED} (keep this network in f32, \
                 or leave the attribute out)"
            ),
        )
    };
    if model.inputs.len() != 1 || model.outputs.len() != 1 {
        return Err(unsupported("a network of several inputs or outputs"));
    }
    let mut layers: Vec<Int8Layer> = Vec::new();
    let mut previous = model.inputs[0];
    for (id, node) in model.nodes.iter().enumerate() {
        match &node.op {
            Op::Input => continue,
            Op::Layer { layer, arg, shared } if *arg == previous && !shared => {
                let decl = &model.layers[*layer];
                let name = match &decl.kind {
                    LayerKind::Builtin(b) => b.name(),
                    LayerKind::Custom(_) => "",
                };
                let kind = match name {
                    "Dense" if decl.input_shape.rank() == 1 => Int8Kind::Dense,
                    "Conv2d" => Int8Kind::Conv2d,
                    "MaxPool2d" => Int8Kind::MaxPool2d,
                    "Dropout" => {
                        // The identity in inference.
                        previous = id;
                        continue;
                    }
                    _ => {
                        let on = if name == "Dense" {
                            format!(" on a sequence {}", decl.input_shape)
                        } else {
                            String::new()
                        };
                        return Err(syn::Error::new(
                            decl.name.span(),
                            format!(
                                "`#[nn(int8)]`: `{}`: {}{on} has no int8 form; {SUPPORTED}",
                                decl.name,
                                decl.describe()
                            ),
                        ));
                    }
                };
                layers.push(Int8Layer {
                    layer: *layer,
                    kind,
                    node: id,
                    relu: false,
                    same_values: vec![id],
                });
            }
            Op::Activation { info, arg, .. }
                if info.func == "relu"
                    && *arg == previous
                    && layers
                        .last()
                        .is_some_and(|l| l.quantizes() && l.node == previous && !l.relu) =>
            {
                let last = layers.last_mut().expect("checked just above");
                last.node = id;
                last.relu = true;
                last.same_values = vec![id];
            }
            Op::Flatten(arg) if *arg == previous => {
                // The same bytes: nothing to do. Calibration may read the flattened node.
                if let Some(last) = layers.last_mut()
                    && last.same_values.last() == Some(arg)
                {
                    last.same_values.push(id);
                }
            }
            _ => return Err(unsupported(&format!("`{}`", node.label))),
        }
        previous = id;
    }
    if !layers.iter().any(Int8Layer::quantizes) || previous != model.outputs[0] {
        return Err(unsupported(
            "a network without a Dense or Conv2d layer, or whose output is not its last layer's",
        ));
    }
    Ok(layers)
}
