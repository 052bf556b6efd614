//! `#[nn(int8)]`: which networks have an int8 form, and its layers. Only a sequence of Dense
//! layers, each maybe followed by a ReLU (fused into the int8 layer's clamp), for now: the
//! other layers and graph operations have no int8 kernel yet (`docs/int8-design.md`).

use super::{LayerKind, Model, NodeId, Op};
use proc_macro2::Span;

/// A layer of the int8 network.
pub struct Int8Layer {
    /// Index in [`Model::layers`] (a Dense layer).
    pub layer: usize,
    /// The node of its output: the ReLU's if one follows, else the layer's.
    pub node: NodeId,
    /// Whether a ReLU follows (fused).
    pub relu: bool,
}

/// The int8 layers of `model`, or an error at the first node without an int8 form (at the
/// attribute `at` if the node has no place of its own).
pub fn plan(model: &Model, at: Span) -> syn::Result<Vec<Int8Layer>> {
    let unsupported = |what: &str| {
        syn::Error::new(
            at,
            format!(
                "`#[nn(int8)]`: {what} has no int8 form; an int8 network is a sequence of Dense \
                 layers, each maybe followed by Relu (keep this network in f32, or leave the \
                 attribute out)"
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
                let dense = matches!(&decl.kind, LayerKind::Builtin(b) if b.name() == "Dense");
                if !dense {
                    return Err(syn::Error::new(
                        decl.name.span(),
                        format!(
                            "`#[nn(int8)]`: `{}`: {} has no int8 form; an int8 network is a \
                             sequence of Dense layers, each maybe followed by Relu",
                            decl.name,
                            decl.describe()
                        ),
                    ));
                }
                layers.push(Int8Layer {
                    layer: *layer,
                    node: id,
                    relu: false,
                });
            }
            Op::Activation { info, arg, .. }
                if info.func == "relu"
                    && *arg == previous
                    && layers.last().is_some_and(|l| l.node == previous && !l.relu) =>
            {
                let last = layers.last_mut().expect("checked just above");
                last.node = id;
                last.relu = true;
            }
            _ => return Err(unsupported(&format!("`{}`", node.label))),
        }
        previous = id;
    }
    if layers.is_empty() || previous != model.outputs[0] {
        return Err(unsupported(
            "a network whose output is not its last Dense layer's",
        ));
    }
    Ok(layers)
}
